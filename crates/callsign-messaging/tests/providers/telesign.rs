//! The Telesign provider against the strict fake of Telesign's SMS and voice APIs (`callsign_fakes::telesign`).
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use callsign_domain::Channel;
use callsign_fakes::telesign;
use callsign_messaging::providers::telesign::TelesignKind;
use callsign_messaging::{Callback, CallbackError, Provider, ProviderKind, ProviderSettings, Registry, SecretState};
use serde_json::{Map, Value, json};

use crate::fake::{Reply, dead_url};
use crate::{PHONE, PUBLIC_URL, env, env_with, impatient_client, message};

const JOB: &str = "job_0123456789abcdefABCDEFGH";
const CALLBACK: &str = "https://callsign.example/callbacks/telesign/status/job_0123456789abcdefABCDEFGH";

/// Settings from a Guardian body (`api_key` becomes the secret).
fn settings(v: Value) -> ProviderSettings {
    let mut o = v.as_object().cloned().unwrap();
    let key = o.remove("api_key").and_then(|k| k.as_str().map(str::to_owned));
    let s = ProviderSettings::from_values(o);
    match key {
        Some(k) => s.with_secret("api_key", k),
        None => s,
    }
}

fn provider(base: &str, v: Value) -> Arc<dyn Provider> {
    TelesignKind.build(settings(v), &env(&[("telesign", base)]).deps).unwrap()
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

#[tokio::test]
async fn an_sms_goes_out_in_telesigns_format_with_basic_auth() {
    let fake = telesign::start().await;
    let p = provider(&fake.url, telesign::settings());
    let r = p.send(&message(Channel::Sms, "123456 is your code")).await.unwrap();
    assert_eq!(r.provider, "telesign");
    assert_eq!(
        r.details,
        json!({"reference_id": "00000000000000000000000000000001", "status": {"code": 290, "description": "Message in progress"}})
    );
    let seen = fake.one();
    assert_eq!((seen.method.as_str(), seen.path.as_str(), seen.status), ("POST", "/v1/messaging", 200));
    assert_eq!(seen.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(seen.basic_auth(), Some((telesign::CUSTOMER_ID.to_owned(), telesign::API_KEY.to_owned())));
    let form: Vec<(String, String)> = seen.form();
    let expected: Vec<(String, String)> = [
        ("phone_number", PHONE.trim_start_matches('+')),
        ("message", "123456 is your code"),
        ("message_type", "OTP"),
        ("sender_id", telesign::FROM),
        ("callback_url", CALLBACK),
        ("external_id", JOB),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(form, expected);
    assert_eq!(callsign_messaging::callback_url(PUBLIC_URL, "telesign", JOB), CALLBACK);
    let d = telesign::delivered(&seen).unwrap();
    assert_eq!((d.channel, d.to.as_str(), d.text.as_str()), ("sms", PHONE, "123456 is your code"));
    assert!(seen.header("user-agent").unwrap().starts_with("Callsign/"));
    assert!(seen.header("x-ts-nonce").is_none() && seen.header("date").is_none(), "no digest headers with Basic");
}

#[tokio::test]
async fn with_hmac_each_request_is_signed_with_a_date_and_a_fresh_nonce() {
    let fake = telesign::start().await;
    let p = provider(&fake.url, telesign::settings_hmac());
    p.send(&message(Channel::Sms, "123456 is your code")).await.unwrap();
    p.send(&message(Channel::Voice, "Your code is 1. 2. 3.")).await.unwrap();
    let seen = fake.seen();
    assert_eq!(seen.iter().map(|s| s.status).collect::<Vec<_>>(), [200, 200], "the fake verified both signatures");
    for s in &seen {
        // The manual clock's start, 2026-01-01T00:00:00Z.
        assert_eq!(s.header("date"), Some("Thu, 01 Jan 2026 00:00:00 GMT"));
        assert_eq!(s.header("x-ts-auth-method"), Some("HMAC-SHA256"));
        let auth = s.header("authorization").unwrap();
        let (cid, sig) = auth.strip_prefix("TSA ").unwrap().split_once(':').unwrap();
        assert_eq!(cid, telesign::CUSTOMER_ID);
        assert_eq!(sig.len(), 44, "base64 of a SHA-256 MAC");
        assert_eq!(s.header("x-ts-nonce").unwrap().len(), 36);
    }
    assert_ne!(seen[0].header("x-ts-nonce"), seen[1].header("x-ts-nonce"));

    // A key that signs wrong is Telesign's -30006: final.
    let other_key = "b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXk=";
    let p = provider(&fake.url, with(telesign::settings_hmac(), "api_key", json!(other_key)));
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert_eq!((e.retryable, &e.details["code"], &e.details["status"]), (false, &json!(-30006), &json!(401)), "{e:?}");
    assert!(e.message.contains("signature"), "{}", e.message);
    assert!(!format!("{e:?}").contains(other_key));
}

#[tokio::test]
async fn voice_is_the_script_said_twice_in_a_voice_of_the_locale() {
    let fake = telesign::start().await;
    let p = provider(&fake.url, telesign::settings());
    let mut m = message(Channel::Voice, "Votre code est 1. 2. 3.");
    m.locale = "fr-CA".into();
    let r = p.send(&m).await.unwrap();
    assert_eq!(r.details["status"], json!({"code": 103, "description": "Call in progress"}));
    let seen = fake.one();
    assert_eq!(seen.path, "/v1/voice");
    let script = "Votre code est 1. 2. 3. ... Votre code est 1. 2. 3.";
    let form: BTreeMap<String, String> = seen.form().into_iter().collect();
    assert_eq!(
        form,
        [
            ("phone_number", PHONE.trim_start_matches('+')),
            ("message", script),
            ("message_type", "OTP"),
            ("voice", "f-fr-CA"),
            ("callback_url", CALLBACK),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect::<BTreeMap<_, _>>(),
        "no sender or external id on a call"
    );
    assert_eq!(telesign::delivered(&seen).unwrap().channel, "voice");

    for (locale, voice) in
        [("en-GB", "f-en-GB"), ("pt", "f-pt-BR"), ("es_MX", "f-es-MX"), ("de-DE", "f-en-US"), ("", "f-en-US")]
    {
        let mut m = message(Channel::Voice, "x");
        m.locale = locale.into();
        p.send(&m).await.unwrap();
        assert_eq!(fake.seen().last().unwrap().field("voice").as_deref(), Some(voice), "{locale}");
    }
}

#[tokio::test]
async fn a_voice_script_longer_than_telesign_speaks_fails_before_sending() {
    let fake = telesign::start().await;
    let p = provider(&fake.url, telesign::settings());
    let e = p.send(&message(Channel::Voice, &"1. ".repeat(300))).await.unwrap_err();
    assert!(!e.retryable && e.message.contains("too long for Telesign"), "{e:?}");
    assert!(fake.seen().is_empty());
}

#[tokio::test]
async fn a_templates_sender_wins_and_no_sender_is_fine() {
    let fake = telesign::start().await;
    let p = provider(&fake.url, telesign::settings());
    let mut m = message(Channel::Sms, "x");
    m.from = Some("Acme".into());
    p.send(&m).await.unwrap();
    assert_eq!(fake.one().field("sender_id").as_deref(), Some("Acme"));

    let p = provider(&fake.url, with(telesign::settings(), "sender_id", Value::Null));
    p.send(&message(Channel::Sms, "x")).await.unwrap();
    let last = fake.seen().pop().unwrap();
    assert_eq!((last.status, last.field("sender_id")), (200, None));
}

#[tokio::test]
async fn incomplete_or_invalid_settings_fail_each_send_without_a_request() {
    let fake = telesign::start().await;
    let e = provider(&fake.url, json!({})).send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(!e.retryable, "{e:?}");
    assert_eq!(
        e.message,
        "the Telesign provider is not fully configured: missing customer_id, api_key; set it with PUT /api/v2/guardian/factors/phone/providers/telesign"
    );
    let e = provider(&fake.url, with(telesign::settings(), "auth_method", json!("digest")))
        .send(&message(Channel::Voice, "x"))
        .await
        .unwrap_err();
    assert!(!e.retryable && e.message.contains("auth_method"), "{e:?}");
    let e = provider(&fake.url, with(telesign::settings_hmac(), "api_key", json!("not base64!")))
        .send(&message(Channel::Sms, "x"))
        .await
        .unwrap_err();
    assert!(!e.retryable && e.message.contains("api_key") && !e.message.contains("not base64!"), "{e:?}");
    assert!(fake.seen().is_empty());
}

#[tokio::test]
async fn wrong_credentials_are_final_and_never_shown() {
    let fake = telesign::start().await;
    let wrong = "d3Jvbmcta2V5LXdyb25nLWtleQ==";
    let p = provider(&fake.url, with(telesign::settings(), "api_key", json!(wrong)));
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(!e.retryable, "{e:?}");
    assert_eq!(
        e.message,
        "Telesign refused the message (HTTP 401), code -30015: Invalid API Key. (Telesign refused the api_key)"
    );
    assert_eq!(e.details, json!({"code": -30015, "message": "Invalid API Key.", "status": 401}));
    assert!(!format!("{e:?}").contains(wrong));

    let p =
        provider(&fake.url, with(telesign::settings(), "customer_id", json!("11111111-2222-3333-4444-555555555555")));
    let e = p.send(&message(Channel::Voice, "x")).await.unwrap_err();
    assert!(!e.retryable && e.details["code"] == -30000 && e.message.contains("refused the call"), "{e:?}");
}

#[tokio::test]
async fn errors_are_classified_by_telesigns_codes() {
    let fake = telesign::start().await;
    let p = provider(&fake.url, telesign::settings());
    let err = |http: u16, code: i64, description: &str| {
        Reply::json(
            http,
            json!({"status": {"code": 501, "description": "Not authorized"}, "errors": [{"code": code, "description": description}]}),
        )
    };
    let status =
        |http: u16, code: i64| Reply::json(http, json!({"status": {"code": code, "description": "x"}, "errors": []}));
    let cases: Vec<(Reply, bool, Value)> = vec![
        (telesign::unavailable(), true, json!(500)),
        (telesign::bad_number(), false, json!(11000)),
        (Reply::json(429, json!({})), true, Value::Null),
        (Reply::text(502, "<html>bad gateway</html>"), true, Value::Null),
        (status(400, 11001), false, json!(11001)),
        (status(400, 11013), false, json!(11013)),
        (status(400, 12017), false, json!(12017)),
        (err(500, -10033, "+14155552671 has not been verified for this trial account."), false, json!(-10033)),
        (err(401, -20002, "This product is not enabled for this Customer ID."), false, json!(-20002)),
        (err(401, -30001, "Customer ID Account Suspended."), false, json!(-30001)),
        (err(401, -30010, "'Date' or 'x-ts-date' header is not within tolerable range"), true, json!(-30010)),
        (err(401, -30012, "'x-ts-nonce' header value has been used recently"), true, json!(-30012)),
        // HTTP 200 that is not an accepted send: a rejection is final, a body that is not a send result is retried.
        (status(200, 11000), false, json!(11000)),
        (
            Reply::json(
                200,
                json!({"reference_id": "R1", "status": {"code": 290}, "errors": [{"code": -40006, "description": "Bad request"}]}),
            ),
            false,
            json!(-40006),
        ),
        (Reply::text(200, "<html>proxy</html>"), true, Value::Null),
        (Reply::json(200, json!({"status": {"code": 290, "description": "Message in progress"}})), true, json!(290)),
    ];
    for (reply, retryable, code) in cases {
        fake.then(reply.clone());
        let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
        assert_eq!((e.retryable, &e.details["code"]), (retryable, &code), "{reply:?} → {e:?}");
        assert!(e.details["status"].is_u64(), "{e:?}");
    }
    // The fake's own checks refuse what Telesign refuses.
    let e = p.send(&message(Channel::Sms, " ")).await.unwrap_err();
    assert_eq!((e.retryable, &e.details["code"]), (false, &json!(11009)), "an empty message is Telesign's 11009");
    let mut m = message(Channel::Sms, "x");
    m.from = Some("Not a sender id!".into());
    let e = p.send(&m).await.unwrap_err();
    assert_eq!((e.retryable, &e.details["code"]), (false, &json!(11013)), "{e:?}");
    assert!(e.message.contains("sender_id"), "{}", e.message);
}

#[tokio::test]
async fn timeouts_and_dead_endpoints_are_retried() {
    let fake = telesign::start().await;
    fake.then(Reply::json(200, json!({"reference_id": "x", "status": {"code": 290}})).after(Duration::from_secs(2)));
    let deps = env_with(&[("telesign", &fake.url)], impatient_client()).deps;
    let p = TelesignKind.build(settings(telesign::settings()), &deps).unwrap();
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(e.retryable && e.message.contains("timed out"), "{e:?}");

    let p = provider(&dead_url().await, telesign::settings());
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(e.retryable && e.message.contains("could not connect"), "{e:?}");
    assert_eq!(e.details, json!({"code": null, "message": "Telesign could not connect", "status": null}));
}

#[test]
fn the_guardian_view_masks_the_key_and_a_put_is_checked() {
    let kind = Registry::builtin().get("telesign").unwrap();
    let mut values: Map<String, Value> =
        json!({"customer_id": telesign::CUSTOMER_ID, "sender_id": "Callsign"}).as_object().cloned().unwrap();
    let secrets = BTreeMap::from([("api_key".to_owned(), SecretState::Plain(telesign::API_KEY))]);
    assert_eq!(
        kind.guardian_view(&values, &secrets).unwrap(),
        json!({"customer_id": telesign::CUSTOMER_ID, "api_key": "****ZWY=", "sender_id": "Callsign", "auth_method": null})
    );

    let up =
        kind.apply_guardian_update(&json!({"auth_method": "hmac", "api_key": telesign::API_KEY}), &mut values).unwrap();
    assert_eq!(up.echo, json!({"auth_method": "hmac", "api_key": "****ZWY="}));
    assert_eq!(up.audit, json!({"telesign": {"auth_method": "hmac", "api_key": "set"}}));
    assert_eq!(up.secrets["api_key"].as_deref().map(String::as_str), Some(telesign::API_KEY));
    assert_eq!(values["auth_method"], "hmac");

    let before = values.clone();
    for (body, says) in [
        (json!({"auth_method": "digest"}), "'Expected basic or hmac' on property auth_method"),
        (json!({"nope": "x"}), "Additional properties not allowed: nope"),
        (json!({"customer_id": 5}), "'Expected type string but found type number' on property customer_id"),
        (json!({"auth_method": true}), "on property auth_method"),
    ] {
        let p = kind.apply_guardian_update(&body, &mut values).unwrap_err();
        assert!(p.api_message().contains(says), "{body} → {}", p.api_message());
        assert_eq!(values, before, "{body} changed nothing");
    }
    // The Unified Phone Experience configuration holds auth_method too, and is checked the same way.
    let conf = json!({"customer_id": "c", "auth_method": "sha1"}).as_object().cloned().unwrap();
    let p = kind.apply_upe_configuration(&conf, &mut values).unwrap_err();
    assert_eq!(p.field, "configuration.auth_method");
    assert_eq!(values, before);
    let conf = json!({"customer_id": "c", "auth_method": "basic"}).as_object().cloned().unwrap();
    kind.apply_upe_configuration(&conf, &mut values).unwrap();
    assert_eq!(kind.upe_configuration(&values), conf);
    assert!(kind.upe_credentials(&json!({"api_key": "k"})).is_ok());
}

#[test]
fn it_is_registered_with_both_channels_receipts_and_checked_settings() {
    let kind = Registry::builtin().get("telesign").unwrap();
    let caps = kind.capabilities();
    assert!(caps.supports(Channel::Sms) && caps.supports(Channel::Voice) && caps.receipts);
    let names: Vec<&str> = kind.fields().iter().map(|f| f.name).collect();
    assert_eq!(names, ["customer_id", "api_key", "sender_id", "auth_method"]);
    let missing = kind.check(&ProviderSettings::default(), &[Channel::Sms]).unwrap_err();
    assert_eq!(missing.iter().map(|p| p.field.as_str()).collect::<Vec<_>>(), ["customer_id", "api_key"]);
    assert!(kind.check(&settings(telesign::settings()), &[Channel::Sms, Channel::Voice]).is_ok());
    assert!(kind.check(&settings(telesign::settings_hmac()), &[Channel::Voice]).is_ok());
    let bad =
        kind.check(&settings(with(telesign::settings(), "auth_method", json!("HMAC"))), &[Channel::Sms]).unwrap_err();
    assert_eq!(bad[0].field, "auth_method");
    let bad =
        kind.check(&settings(with(telesign::settings_hmac(), "api_key", json!("%%%"))), &[Channel::Sms]).unwrap_err();
    assert_eq!(bad[0].field, "api_key");
    // Basic auth does not decode the key, so it does not need to be base64.
    assert!(kind.check(&settings(with(telesign::settings(), "api_key", json!("%%%"))), &[Channel::Sms]).is_ok());
}

fn callback<'a>(headers: &'a [(String, String)], body: &'a [u8]) -> Callback<'a> {
    Callback { message_id: JOB, url: CALLBACK, headers, body }
}

#[test]
fn receipts_must_be_signed_and_read_as_delivery_states() {
    let p = provider("http://unused.invalid", telesign::settings());
    assert!(p.capabilities().receipts);

    let (body, headers) = telesign::receipt("REF1", 200, "Delivered to handset", Some(JOB));
    let out = p.parse_callback(&callback(&headers, &body)).unwrap();
    assert_eq!(
        out.receipt,
        json!({"provider": "telesign", "status": "delivered", "state": "delivered", "error_code": null, "sid": "REF1", "status_code": 200,
               "description": "Delivered to handset", "updated_on": "2026-01-01T00:00:05.000000Z"})
    );
    assert_eq!(out.hint, None);

    // A failure carries its code and a hint; a call receipt has no external id.
    let (body, headers) = telesign::receipt("REF2", 210, "Temporary phone error", Some(JOB));
    let out = p.parse_callback(&callback(&headers, &body)).unwrap();
    assert_eq!((out.receipt["status"].as_str(), &out.receipt["error_code"]), (Some("failed"), &json!(210)));
    assert!(out.hint.unwrap().contains("temporary phone error"));
    assert_eq!(
        Value::Object(out.event_details()),
        json!({"provider": "telesign", "status": "failed", "state": "failed", "error_code": 210, "sid": "REF2", "error_hint": out.hint.unwrap()})
    );
    for (code, status) in [(107, "busy"), (101, "not_answered"), (130, "blocked"), (230, "blocked"), (106, "failed")] {
        let (body, headers) = telesign::receipt("REF3", code, "x", None);
        let out = p.parse_callback(&callback(&headers, &body)).unwrap();
        assert_eq!((out.receipt["status"].as_str(), &out.receipt["error_code"]), (Some(status), &json!(code)));
        assert!(out.hint.is_some(), "{code}");
        assert_eq!(out.state, callsign_messaging::ReceiptState::Failed, "{code}");
    }
    for (code, status) in
        [(203, "delivered_to_gateway"), (290, "in_progress"), (100, "answered"), (103, "call_in_progress")]
    {
        let (body, headers) = telesign::receipt("REF4", code, "x", None);
        let out = p.parse_callback(&callback(&headers, &body)).unwrap();
        assert_eq!(
            (out.receipt["status"].as_str(), &out.receipt["error_code"], out.hint),
            (Some(status), &Value::Null, None)
        );
        let delivered = code == 100;
        assert_eq!(out.state == callsign_messaging::ReceiptState::Delivered, delivered, "{code}");
    }
    // Only X-TS-Authorization is enough, and the bare signature is taken too.
    let (body, headers) = telesign::receipt("REF5", 200, "Delivered to handset", Some(JOB));
    let only_ts: Vec<(String, String)> = headers.iter().filter(|(k, _)| k != "authorization").cloned().collect();
    assert!(p.parse_callback(&callback(&only_ts, &body)).is_ok());
    let bare = vec![("authorization".to_owned(), telesign::sign(&body))];
    assert!(p.parse_callback(&callback(&bare, &body)).is_ok());

    // Forged ones are refused: unsigned, signed over another body, by another customer, or for another message.
    let unsigned: Vec<(String, String)> = headers.iter().filter(|(k, _)| k == "content-type").cloned().collect();
    let other_customer = vec![("authorization".to_owned(), format!("TSA SOMEONE-ELSE:{}", telesign::sign(&body)))];
    let mut tampered = body.clone();
    tampered.splice(0..0, b" ".iter().copied());
    let (other_job, other_headers) = telesign::receipt("REF6", 200, "Delivered to handset", Some("job_another"));
    for (h, b) in [
        (&unsigned, &body),
        (&headers, &tampered),
        (&other_customer, &body),
        (&vec![("authorization".to_owned(), "TSA x".to_owned())], &body),
        (&other_headers, &other_job),
    ] {
        assert_eq!(p.parse_callback(&callback(h, b)), Err(CallbackError::Unauthenticated), "{h:?}");
    }
    // Signed but not JSON: refused too.
    let junk = b"not json".to_vec();
    let junk_headers =
        vec![("authorization".to_owned(), format!("TSA {}:{}", telesign::CUSTOMER_ID, telesign::sign(&junk)))];
    assert_eq!(p.parse_callback(&callback(&junk_headers, &junk)), Err(CallbackError::Unauthenticated));

    // Without an API key nothing can be verified.
    let keyless = provider("http://unused.invalid", json!({"customer_id": telesign::CUSTOMER_ID}));
    assert_eq!(keyless.parse_callback(&callback(&headers, &body)), Err(CallbackError::Unauthenticated));
}
