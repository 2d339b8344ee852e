//! The Twilio provider against a fake Twilio that checks path, Basic auth, content type and form fields as
//! Twilio's API does, and refuses anything else.
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use callsign_domain::Channel;
use callsign_messaging::providers::twilio::{self, TwilioKind};
use callsign_messaging::{
    Callback, CallbackError, FieldProblem, Provider, ProviderKind, ProviderSettings, Registry, SendError,
};
use serde_json::{Map, Value, json};

use crate::fake::{Fake, Reply, Seen, dead_url};
use crate::{PHONE, PUBLIC_URL, env, env_with, impatient_client, message};

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "f00dfeedf00dfeedf00dfeedf00dfeed";
const FROM: &str = "+15005550006";
const MG: &str = "MG0123456789abcdef0123456789abcdef";

fn twilio_error(status: u16, code: u32, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"code": code, "message": message, "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status}),
    )
}

/// What Twilio checks: Basic auth for the path's account, a form body, `To` and `StatusCallback`, and per resource
/// `Body` + exactly one of `From` / `MessagingServiceSid`, or `From` + `Twiml` (and no `Url`).
fn check(seen: &Seen) -> Result<(), Reply> {
    let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}")));
    let Some(resource) = seen.path.strip_prefix(&format!("/2010-04-01/Accounts/{SID}/")) else {
        return Err(twilio_error(404, 20404, "The requested resource was not found"));
    };
    let has = |k: &str| seen.field(k).is_some_and(|v| !v.is_empty());
    if seen.method != "POST" {
        return Err(twilio_error(405, 20004, "Method not allowed"));
    }
    if seen.header("authorization") != Some(auth.as_str()) {
        return Err(twilio_error(401, 20003, "Authenticate"));
    }
    if !seen.header("content-type").unwrap_or_default().starts_with("application/x-www-form-urlencoded") {
        return Err(twilio_error(415, 20415, "Unsupported Media Type"));
    }
    if !has("To") || !has("StatusCallback") {
        return Err(twilio_error(400, 21604, "A 'To' phone number and a StatusCallback are required."));
    }
    match resource {
        "Messages.json" if !has("Body") => Err(twilio_error(400, 21602, "Message body is required.")),
        "Messages.json" if has("From") == has("MessagingServiceSid") => {
            Err(twilio_error(400, 21603, "Exactly one of From and MessagingServiceSid is required."))
        }
        "Calls.json" if !has("From") => Err(twilio_error(400, 21213, "No 'From' number is specified")),
        "Calls.json" if !has("Twiml") || has("Url") || has("Body") => {
            Err(twilio_error(400, 21205, "Twiml is required"))
        }
        "Messages.json" | "Calls.json" => Ok(()),
        _ => Err(twilio_error(404, 20404, "The requested resource was not found")),
    }
}

fn created(seen: &Seen, n: usize) -> Reply {
    let prefix = if seen.path.ends_with("Calls.json") { "CA" } else { "SM" };
    Reply::json(201, json!({"sid": format!("{prefix}{n:032x}"), "status": "queued", "account_sid": SID}))
}

async fn fake() -> Fake {
    Fake::start(Box::new(check), Box::new(created)).await
}

fn settings(v: Value) -> ProviderSettings {
    ProviderSettings::from_values(v.as_object().cloned().unwrap()).with_secret("auth_token", TOKEN)
}

fn provider(base: &str, v: Value) -> Arc<dyn Provider> {
    provider_with(base, v, callsign_messaging::transport::client().unwrap())
}

fn provider_with(base: &str, v: Value, http: reqwest::Client) -> Arc<dyn Provider> {
    let e = env_with(&[("twilio", base)], http);
    Registry::builtin().get("twilio").unwrap().build(settings(v), &e.deps).unwrap()
}

const CALLBACK: &str = "https://callsign.example/callbacks/twilio/status/job_0123456789abcdefABCDEFGH";

#[tokio::test]
async fn sms_goes_through_the_messaging_service_with_a_status_callback() {
    let f = fake().await;
    let p = provider(&f.url, json!({"sid": SID, "from": FROM, "messaging_service_sid": MG}));
    let r = p.send(&message(Channel::Sms, "123456 is your code")).await.unwrap();
    assert_eq!((r.provider, r.details), ("twilio", json!({"sid": format!("SM{:032x}", 1), "status": "queued"})));
    let s = f.one();
    assert_eq!((s.path.as_str(), s.status), (format!("/2010-04-01/Accounts/{SID}/Messages.json").as_str(), 201));
    assert_eq!(
        s.form(),
        [("To", PHONE), ("MessagingServiceSid", MG), ("Body", "123456 is your code"), ("StatusCallback", CALLBACK)]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .to_vec(),
        "the exact form, in order; no From beside the Messaging Service"
    );
    assert_eq!(s.header("accept"), Some("application/json"));
    assert!(s.header("user-agent").unwrap().starts_with("Callsign/"), "{s:?}");
}

#[tokio::test]
async fn sms_uses_from_without_a_messaging_service_and_a_template_sender_wins() {
    let f = fake().await;
    let p = provider(&f.url, json!({"sid": SID, "from": FROM}));
    p.send(&message(Channel::Sms, "a")).await.unwrap();
    let mut m = message(Channel::Sms, "b");
    m.from = Some("+15005550009".into());
    p.send(&m).await.unwrap();
    let p = provider(&f.url, json!({"sid": SID, "from": FROM, "messaging_service_sid": MG}));
    p.send(&m).await.unwrap();
    let seen = f.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!((seen[0].field("From").as_deref(), seen[0].field("MessagingServiceSid")), (Some(FROM), None));
    assert_eq!(seen[1].field("From").as_deref(), Some("+15005550009"));
    assert_eq!(
        (seen[2].field("From").as_deref(), seen[2].field("MessagingServiceSid")),
        (Some("+15005550009"), None),
        "the template's sender wins over the Messaging Service"
    );
}

#[tokio::test]
async fn voice_is_a_call_with_inline_twiml_in_the_message_language() {
    let f = fake().await;
    let p = provider(&f.url, json!({"sid": SID, "from": FROM, "messaging_service_sid": MG}));
    let mut m = message(Channel::Voice, "Your code is 1.2.3.4.5.6 <&>");
    m.locale = "fr".into();
    let r = p.send(&m).await.unwrap();
    assert_eq!(r.details["sid"], format!("CA{:032x}", 1));
    let s = f.one();
    assert!(s.path.ends_with("/Calls.json"), "{s:?}");
    let twiml = r#"<Response><Say language="fr-FR">Your code is 1.2.3.4.5.6 &lt;&amp;&gt;</Say><Pause length="1"/><Say language="fr-FR">Your code is 1.2.3.4.5.6 &lt;&amp;&gt;</Say></Response>"#;
    assert_eq!(
        s.form(),
        [("To", PHONE), ("From", FROM), ("Twiml", twiml), ("StatusCallback", CALLBACK)]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .to_vec(),
        "voice always uses From, never the Messaging Service"
    );
    // A template's sender is the caller id of a call too.
    m.from = Some("+15005550009".into());
    p.send(&m).await.unwrap();
    assert_eq!(f.seen()[1].field("From").as_deref(), Some("+15005550009"));
}

#[tokio::test]
async fn a_voice_message_longer_than_twilio_takes_fails_before_sending() {
    let f = fake().await;
    let p = provider(&f.url, json!({"sid": SID, "from": FROM}));
    let e = p.send(&message(Channel::Voice, &"1.2.3. ".repeat(300))).await.unwrap_err();
    assert!(!e.retryable);
    assert!(e.message.starts_with("the voice message is too long for Twilio ("), "{}", e.message);
    assert!(e.message.contains("at most 4000); shorten the template"), "{}", e.message);
    assert!(f.seen().is_empty());
    // Just under the limit goes.
    let overhead = twilio::twiml("", "en").len();
    let text = "x".repeat((twilio::MAX_TWIML - overhead) / 2);
    assert!(p.send(&message(Channel::Voice, &text)).await.is_ok());
}

async fn refused(reply: Reply, channel: Channel) -> SendError {
    let f = fake().await;
    f.then(reply);
    let p = provider(&f.url, json!({"sid": SID, "from": FROM}));
    let e = p.send(&message(channel, "123456")).await.unwrap_err();
    assert_eq!(f.seen().len(), 1);
    e
}

#[tokio::test]
async fn twilio_errors_are_final_or_retryable() {
    let e =
        refused(twilio_error(400, 21211, "The 'To' number +14155552671 is not a valid phone number."), Channel::Sms)
            .await;
    assert!(!e.retryable);
    assert_eq!(
        e.message,
        "Twilio refused the message (HTTP 400), code 21211: The 'To' number +14155552671 is not a valid phone number. (the To number is not a valid phone number)"
    );
    assert_eq!(
        e.details,
        json!({"code": 21211, "message": "The 'To' number +14155552671 is not a valid phone number.", "status": 400})
    );

    let e = refused(twilio_error(429, 20429, "Too Many Requests"), Channel::Sms).await;
    assert!(e.retryable, "{e:?}");
    let e = refused(twilio_error(400, 20429, "Too Many Requests"), Channel::Voice).await;
    assert!(e.retryable, "code 20429 is a rate limit whatever the status: {e:?}");
    assert!(e.message.starts_with("Twilio refused the call (HTTP 400), code 20429"), "{}", e.message);
    let e = refused(twilio_error(500, 20500, "Internal Server Error"), Channel::Sms).await;
    assert!(e.retryable && e.message.contains("HTTP 500"), "{e:?}");
    let e = refused(Reply::text(502, "Bad Gateway"), Channel::Sms).await;
    assert!(e.retryable);
    assert_eq!(e.message, "Twilio refused the message (HTTP 502): Bad Gateway");
    assert_eq!(e.details, json!({"code": null, "message": "Bad Gateway", "status": 502}));
    for (status, code) in [(400, 21408), (400, 21606), (400, 21219), (401, 20003), (404, 20404)] {
        let e = refused(twilio_error(status, code, "no"), Channel::Sms).await;
        assert!(!e.retryable, "{status} {code}");
        assert_eq!(e.details["code"], code);
    }
    // RFC 9457 bodies.
    let e = refused(
        Reply::json(429, json!({"type": "https://www.twilio.com/docs/errors/20429", "title": "Too Many Requests", "status": 429, "code": 20429, "detail": "Too many requests"})),
        Channel::Sms,
    )
    .await;
    assert!(e.retryable);
    assert_eq!(e.details, json!({"code": 20429, "message": "Too many requests", "status": 429}));
}

#[tokio::test]
async fn the_fake_refuses_a_wrong_request() {
    // The fake really checks: a wrong token is refused (final: 20003).
    let f = fake().await;
    let e = env(&[("twilio", &f.url)]);
    let s = ProviderSettings::from_values(json!({"sid": SID, "from": FROM}).as_object().cloned().unwrap())
        .with_secret("auth_token", "another-token-entirely");
    let p = TwilioKind.build(s, &e.deps).unwrap();
    let err = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(!err.retryable);
    assert_eq!(err.details["code"], 20003);
    assert!(err.message.contains("refused the account SID / auth token"), "{}", err.message);
}

#[tokio::test]
async fn timeouts_and_connection_errors_are_retried() {
    let f = fake().await;
    f.then(Reply::json(201, json!({"sid": "SM1", "status": "queued"})).after(Duration::from_secs(3)));
    let p = provider_with(&f.url, json!({"sid": SID, "from": FROM}), impatient_client());
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(e.retryable);
    assert!(e.message.starts_with("Twilio timed out: "), "{}", e.message);
    assert!(!e.message.contains("127.0.0.1"), "no URL in the message: {}", e.message);
    assert_eq!(e.details, json!({"code": null, "message": "Twilio timed out", "status": null}));

    let p = provider(&dead_url().await, json!({"sid": SID, "from": FROM}));
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(e.retryable);
    assert!(e.message.starts_with("Twilio could not connect: "), "{}", e.message);
    assert_eq!(e.details, json!({"code": null, "message": "Twilio could not connect", "status": null}));
}

#[tokio::test]
async fn incomplete_settings_fail_each_send_naming_what_is_missing() {
    let f = fake().await;
    let e = env(&[("twilio", &f.url)]);
    let build = |v: Value, token: bool| {
        let mut s = ProviderSettings::from_values(v.as_object().cloned().unwrap());
        if token {
            s = s.with_secret("auth_token", TOKEN);
        }
        TwilioKind.build(s, &e.deps).unwrap()
    };
    let cases = [
        (build(json!({}), false), Channel::Sms, "missing sid, auth_token, from or messaging_service_sid;"),
        (build(json!({"sid": SID, "from": FROM}), false), Channel::Sms, "missing auth_token;"),
        (
            build(json!({"sid": SID, "messaging_service_sid": MG}), true),
            Channel::Voice,
            "missing from (voice calls need a From number even when SMS uses a Messaging Service);",
        ),
        (build(json!({"sid": "  ", "from": " "}), true), Channel::Sms, "missing sid, from or messaging_service_sid;"),
    ];
    for (p, channel, needle) in cases {
        let err = p.send(&message(channel, "x")).await.unwrap_err();
        assert!(!err.retryable);
        assert!(err.message.starts_with("the Twilio provider is not fully configured: "), "{}", err.message);
        assert!(err.message.contains(needle), "{needle} in {}", err.message);
        assert!(
            err.message.ends_with("set it with PUT /api/v2/guardian/factors/phone/providers/twilio"),
            "{}",
            err.message
        );
    }
    let err =
        build(json!({"sid": "AC-1/../x", "from": FROM}), true).send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert_eq!(err.message, "the Twilio account SID is not valid (expected AC followed by 32 hex digits)");
    // A Messaging Service is enough for SMS.
    assert!(
        build(json!({"sid": SID, "messaging_service_sid": MG}), true).send(&message(Channel::Sms, "x")).await.is_ok()
    );
    assert_eq!(f.seen().len(), 1, "nothing incomplete reached Twilio");
    // Settings of the wrong shape do not build.
    let bad = ProviderSettings::from_values(json!({"sid": 5}).as_object().cloned().unwrap());
    assert!(TwilioKind.build(bad, &e.deps).is_err());
}

/// Settings stored before the Management API checked their shape (a short Account SID, a sender with spaces) still
/// build and send as they are: the shapes are checked when settings are written, never when they are read.
#[tokio::test]
async fn settings_stored_before_the_shape_checks_still_send() {
    let f = Fake::start(Box::new(|_: &Seen| Ok(())), Box::new(created)).await;
    let p = provider(&f.url, json!({"sid": "AC123", "from": "+1 500 555 0006"}));
    p.send(&message(Channel::Sms, "123456 is your code")).await.unwrap();
    let seen = f.one();
    assert_eq!(seen.path, "/2010-04-01/Accounts/AC123/Messages.json");
    assert_eq!(seen.field("From").as_deref(), Some("+1 500 555 0006"));
}

#[test]
fn check_and_selection_rules() {
    let complete = settings(json!({"sid": SID, "from": FROM}));
    assert!(TwilioKind.check(&complete, &[Channel::Sms, Channel::Voice]).is_ok());
    let mss_only = settings(json!({"sid": SID, "messaging_service_sid": MG}));
    assert!(TwilioKind.check(&mss_only, &[Channel::Sms]).is_ok());
    let problems = TwilioKind.check(&mss_only, &[Channel::Sms, Channel::Voice]).unwrap_err();
    assert_eq!(problems.iter().map(|p| p.field.as_str()).collect::<Vec<_>>(), ["from"]);
    let problems = TwilioKind.check(&ProviderSettings::default(), &[Channel::Sms]).unwrap_err();
    assert_eq!(problems.iter().map(|p| p.field.as_str()).collect::<Vec<_>>(), ["sid", "auth_token", "from"]);

    let e: FieldProblem = TwilioKind.check_selection(&mss_only, &[Channel::Voice]).unwrap_err();
    assert!(e.api_message().starts_with("Voice requires a From number ("), "{}", e.api_message());
    assert!(TwilioKind.check_selection(&mss_only, &[Channel::Sms]).is_ok());
    assert!(TwilioKind.check_selection(&settings(json!({"from": " "})), &[Channel::Voice]).is_err());
    assert!(TwilioKind.check_selection(&complete, &[Channel::Voice]).is_ok());

    // Declared fields drive a generic form and the UPE record.
    let names: Vec<&str> = TwilioKind.fields().iter().map(|f| f.name).collect();
    assert_eq!(names, ["sid", "auth_token", "from", "messaging_service_sid"]);
    let mut v: Map<String, Value> =
        json!({"sid": SID, "from": FROM, "messaging_service_sid": MG, "kept": 1}).as_object().cloned().unwrap();
    assert_eq!(Value::Object(TwilioKind.upe_configuration(&v)), json!({"sid": SID, "default_from": FROM, "mssid": MG}));
    assert_eq!(TwilioKind.forget_upe(&mut v), ["auth_token"]);
    assert_eq!(Value::Object(v), json!({"kept": 1}));
}

// --- delivery receipts ------------------------------------------------------------------------------------------

/// X-Twilio-Signature written out independently: base64(HMAC-SHA1(token, url + sorted key/value pairs)).
fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    use hmac::Mac;
    let mut sorted: Vec<(&str, &str)> = params.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[test]
fn the_test_signature_matches_twilios_vector() {
    let params = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ];
    assert_eq!(
        twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &params),
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    );
}

fn callback<'a>(url: &'a str, headers: &'a [(String, String)], body: &'a [u8]) -> Callback<'a> {
    Callback { message_id: "job_0123456789abcdefABCDEFGH", url, headers, body }
}

fn form(params: &[(&str, &str)]) -> Vec<u8> {
    serde_urlencoded::to_string(params).unwrap().into_bytes()
}

fn sig(s: String) -> Vec<(String, String)> {
    vec![("content-type".into(), "application/x-www-form-urlencoded".into()), ("x-twilio-signature".into(), s)]
}

#[test]
fn status_callbacks_must_be_signed_and_read_as_receipts() {
    let p = provider("http://unused.invalid", json!({"sid": SID, "from": FROM}));
    assert!(p.capabilities().receipts);
    let params = [
        ("AccountSid", SID),
        ("MessageSid", "SM00000000000000000000000000000001"),
        ("MessageStatus", "delivered"),
        ("From", FROM),
        ("To", PHONE),
        ("ApiVersion", "2010-04-01"),
    ];
    let body = form(&params);
    assert_eq!(callsign_messaging::callback_url(PUBLIC_URL, "twilio", "job_0123456789abcdefABCDEFGH"), CALLBACK);

    // Unsigned, wrongly signed (other token, other URL, other params), or a body that is not a form: refused.
    let good = twilio_signature(TOKEN, CALLBACK, &params);
    let mut tampered = params;
    tampered[2] = ("MessageStatus", "failed");
    for (headers, url, body) in [
        (vec![], CALLBACK, body.clone()),
        (sig(String::new()), CALLBACK, body.clone()),
        (sig(twilio_signature("another-token", CALLBACK, &params)), CALLBACK, body.clone()),
        (sig(good.clone()), &*format!("{CALLBACK}x"), body.clone()),
        (sig(good.clone()), CALLBACK, form(&tampered)),
        (sig(good.clone()), CALLBACK, b"%zz=&&=%".to_vec()),
    ] {
        assert_eq!(p.parse_callback(&callback(url, &headers, &body)), Err(CallbackError::Unauthenticated), "{url}");
    }

    let h = sig(good);
    let out = p.parse_callback(&callback(CALLBACK, &h, &body)).unwrap();
    assert_eq!(
        out.receipt,
        json!({"provider": "twilio", "status": "delivered", "state": "delivered", "error_code": null, "sid": "SM00000000000000000000000000000001"})
    );
    assert_eq!(out.hint, None);
    assert_eq!(out.state, callsign_messaging::ReceiptState::Delivered);

    // An undelivered call with an error code, a duration and a message; signed over a URL with a query string
    // and the default port written out.
    let params = [
        ("CallSid", "CA00000000000000000000000000000001"),
        ("CallStatus", "failed"),
        ("ErrorCode", "30003"),
        ("ErrorMessage", "Unreachable destination handset"),
        ("CallDuration", "0"),
    ];
    let url = format!("{CALLBACK}?attempt=2");
    let signed_with_port = twilio_signature(
        TOKEN,
        "https://callsign.example:443/callbacks/twilio/status/job_0123456789abcdefABCDEFGH?attempt=2",
        &params,
    );
    let (h, body) = (sig(signed_with_port), form(&params));
    let out = p.parse_callback(&callback(&url, &h, &body)).unwrap();
    assert_eq!(
        out.receipt,
        json!({"provider": "twilio", "status": "failed", "state": "failed", "error_code": 30003, "sid": "CA00000000000000000000000000000001",
               "call_duration": "0", "error_message": "Unreachable destination handset"})
    );
    assert_eq!(out.state, callsign_messaging::ReceiptState::Failed);
    assert_eq!(out.hint, Some("the handset is unreachable"));
    assert_eq!(
        Value::Object(out.event_details()),
        json!({"provider": "twilio", "status": "failed", "state": "failed", "error_code": 30003, "sid": "CA00000000000000000000000000000001",
               "error_hint": "the handset is unreachable"})
    );
    // A non-numeric error code is kept as text.
    let params = [("SmsSid", "SM1"), ("SmsStatus", "undelivered"), ("ErrorCode", "x1")];
    let (h, body) = (sig(twilio_signature(TOKEN, CALLBACK, &params)), form(&params));
    let out = p.parse_callback(&callback(CALLBACK, &h, &body)).unwrap();
    assert_eq!(
        out.receipt,
        json!({"provider": "twilio", "status": "undelivered", "state": "failed", "error_code": "x1", "sid": "SM1"})
    );
    // A status on the way is neither delivered nor failed.
    let params = [("MessageSid", "SM2"), ("MessageStatus", "sent")];
    let (h, body) = (sig(twilio_signature(TOKEN, CALLBACK, &params)), form(&params));
    let out = p.parse_callback(&callback(CALLBACK, &h, &body)).unwrap();
    assert_eq!(
        (out.state, &out.receipt["state"]),
        (callsign_messaging::ReceiptState::InProgress, &json!("in_progress"))
    );

    // Without an auth token nothing can be verified: refused.
    let e = env(&[]);
    let tokenless = TwilioKind
        .build(ProviderSettings::from_values(json!({"sid": SID}).as_object().cloned().unwrap()), &e.deps)
        .unwrap();
    assert_eq!(tokenless.parse_callback(&callback(CALLBACK, &h, &body)), Err(CallbackError::Unauthenticated));
}

// --- contract test against Prism ------------------------------------------------------------------------------------

/// The client against Prism serving Twilio's OpenAPI description (start it as `sdk-tests/prism/run.sh` does and set
/// `CALLSIGN_TEST_PRISM_URL`): every form Callsign sends must be valid for the spec.
#[tokio::test]
#[ignore = "needs Prism: see sdk-tests/prism/run.sh"]
async fn prism_contract() {
    let prism = std::env::var("CALLSIGN_TEST_PRISM_URL").expect("CALLSIGN_TEST_PRISM_URL");
    for v in [json!({"sid": SID, "from": FROM}), json!({"sid": SID, "from": FROM, "messaging_service_sid": MG})] {
        let p = provider(&prism, v);
        let mut m = message(Channel::Sms, "123456 is your verification code for Callsign");
        m.locale = "fr".into();
        let r = p.send(&m).await.unwrap_or_else(|e| panic!("SMS through Prism: {} {}", e.message, e.details));
        assert!(r.details["sid"].is_string(), "{}", r.details);
        let r = p
            .send(&message(Channel::Voice, "Your code is 1.2.3.4.5.6."))
            .await
            .unwrap_or_else(|e| panic!("voice through Prism: {} {}", e.message, e.details));
        assert!(r.details["sid"].is_string(), "{}", r.details);
    }
}
