//! The ClickSend provider against the strict fake of ClickSend's send API (`callsign_fakes::clicksend`).
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use callsign_domain::Channel;
use callsign_fakes::clicksend;
use callsign_messaging::providers::clicksend::{ClicksendKind, DEFAULT_BASE_URL};
use callsign_messaging::{
    Callback, CallbackError, Provider, ProviderKind, ProviderSettings, Registry, SecretState, SendError,
};
use serde_json::{Map, Value, json};

use crate::fake::{Reply, dead_url};
use crate::{PHONE, env, env_with, impatient_client, message};

fn settings(user: &str, key: &str, from: Option<&str>) -> ProviderSettings {
    ProviderSettings::from_values(json!({"username": user, "from": from}).as_object().cloned().unwrap())
        .with_secret("api_key", key)
}

fn good() -> ProviderSettings {
    settings(clicksend::USERNAME, clicksend::API_KEY, Some(clicksend::FROM))
}

fn provider(base: &str, s: ProviderSettings) -> Arc<dyn Provider> {
    ClicksendKind.build(s, &env(&[("clicksend", base)]).deps).unwrap()
}

#[tokio::test]
async fn an_sms_goes_out_in_clicksends_format() {
    let fake = clicksend::start().await;
    let p = provider(&fake.url, good());
    let m = message(Channel::Sms, "123456 is your code");
    let r = p.send(&m).await.unwrap();
    assert_eq!(r.provider, "clicksend");
    assert_eq!(r.details["status"], "SUCCESS");
    assert!(r.details["message_id"].as_str().is_some_and(|s| s.starts_with("BF7AD270-")), "{r:?}");
    let seen = fake.one();
    assert_eq!((seen.method.as_str(), seen.path.as_str()), ("POST", "/v3/sms/send"));
    assert_eq!(seen.basic_auth(), Some((clicksend::USERNAME.to_owned(), clicksend::API_KEY.to_owned())));
    assert!(seen.content_type_is("application/json"));
    assert!(seen.header("user-agent").unwrap().starts_with("Callsign/"));
    assert_eq!(
        seen.json(),
        json!({"messages": [{
            "to": PHONE,
            "body": "123456 is your code",
            "from": clicksend::FROM,
            "source": "callsign",
            "custom_string": m.id,
        }]})
    );
    let d = clicksend::delivered(&seen).unwrap();
    assert_eq!((d.channel, d.to.as_str(), d.text.as_str()), ("sms", PHONE, "123456 is your code"));
}

#[tokio::test]
async fn a_voice_call_reads_the_script_twice_in_the_message_language() {
    let fake = clicksend::start().await;
    let p = provider(&fake.url, good());
    let mut m = message(Channel::Voice, "Your code is 1, 2, 3, 4, 5, 6.");
    m.locale = "fr-CA".into();
    m.from = Some("+15005550006".into());
    let r = p.send(&m).await.unwrap();
    assert_eq!(r.details["status"], "SUCCESS");
    let seen = fake.one();
    assert_eq!((seen.method.as_str(), seen.path.as_str()), ("POST", "/v3/voice/send"));
    assert_eq!(seen.basic_auth(), Some((clicksend::USERNAME.to_owned(), clicksend::API_KEY.to_owned())));
    let script = "Your code is 1, 2, 3, 4, 5, 6. ... Your code is 1, 2, 3, 4, 5, 6.";
    assert_eq!(
        seen.json(),
        json!({"messages": [{
            "to": PHONE,
            "body": script,
            "voice": "female",
            "lang": "fr-ca",
            "source": "callsign",
            "machine_detection": 0,
        }]}),
        "no sender on a voice call: the voice request has none"
    );
    let d = clicksend::delivered(&seen).unwrap();
    assert_eq!((d.channel, d.text.as_str()), ("voice", script));

    for (locale, lang, voice) in [
        ("en", "en-us", "female"),
        ("en-AU", "en-au", "female"),
        ("en_GB", "en-gb", "female"),
        ("de", "de-de", "female"),
        ("pt-PT", "pt-pt", "male"),
        ("pt", "pt-br", "female"),
        ("ja", "en-us", "female"),
    ] {
        let mut m = message(Channel::Voice, "1, 2, 3.");
        m.locale = locale.into();
        p.send(&m).await.unwrap_or_else(|e| panic!("{locale}: {e:?}"));
        let b = fake.seen().last().unwrap().json();
        assert_eq!((&b["messages"][0]["lang"], &b["messages"][0]["voice"]), (&json!(lang), &json!(voice)), "{locale}");
    }
}

#[tokio::test]
async fn a_templates_sender_wins_and_without_one_clicksend_picks_the_default() {
    let fake = clicksend::start().await;
    let p = provider(&fake.url, good());
    let mut m = message(Channel::Sms, "x");
    m.from = Some("Acme".into());
    p.send(&m).await.unwrap();
    assert_eq!(fake.one().json()["messages"][0]["from"], "Acme");

    let p = provider(&fake.url, settings(clicksend::USERNAME, clicksend::API_KEY, None));
    p.send(&message(Channel::Sms, "x")).await.unwrap();
    let b = fake.seen()[1].json();
    assert!(b["messages"][0].get("from").is_none(), "no `from` at all: {b}");
}

#[tokio::test]
async fn missing_settings_fail_clearly_before_any_request() {
    let fake = clicksend::start().await;
    let p = provider(&fake.url, ProviderSettings::default());
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(!e.retryable, "{e:?}");
    assert_eq!(
        e.message,
        "the ClickSend provider is not fully configured: missing username, api_key; set it with PUT /api/v2/guardian/factors/phone/providers/clicksend"
    );
    let p = provider(&fake.url, settings(clicksend::USERNAME, "", None));
    let e = p.send(&message(Channel::Voice, "x")).await.unwrap_err();
    assert!(!e.retryable && e.message.contains("missing api_key"), "{e:?}");
    let p = provider(&fake.url, settings("a:b", clicksend::API_KEY, None));
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(!e.retryable && e.message.contains("must not contain ':'"), "{e:?}");
    assert!(fake.seen().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn wrong_credentials_are_final_and_never_shown() {
    let fake = clicksend::start().await;
    let p = provider(&fake.url, settings(clicksend::USERNAME, "wrong-key-0123456789", None));
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(!e.retryable, "{e:?}");
    assert!(e.message.contains("HTTP 401 UNAUTHORIZED") && e.message.contains("username and API key"), "{e:?}");
    assert_eq!(e.details, json!({"code": "UNAUTHORIZED", "message": "Authorization failed.", "status": 401}));
    assert!(!format!("{e:?}").contains("wrong-key"));
    assert_eq!(fake.one().status, 401);

    let p = provider(&fake.url, good());
    fake.then(clicksend::error(403, "FORBIDDEN", "Access denied."));
    let e = p.send(&message(Channel::Voice, "x")).await.unwrap_err();
    assert!(!e.retryable && e.message.contains("HTTP 403 FORBIDDEN"), "{e:?}");
    assert!(!format!("{e:?}").contains(clicksend::API_KEY));
}

async fn refused(p: &dyn Provider, fake: &callsign_fakes::Fake, reply: Reply) -> SendError {
    fake.then(reply.clone());
    p.send(&message(Channel::Sms, "x")).await.expect_err(&format!("{reply:?}"))
}

#[tokio::test]
async fn errors_are_classified() {
    let fake = clicksend::start().await;
    let p = provider(&fake.url, good());
    let cases: Vec<(Reply, bool, Value)> = vec![
        (clicksend::unavailable(), true, json!("INTERNAL_SERVER_ERROR")),
        (clicksend::throttled(), true, json!("TOO_MANY_REQUESTS")),
        (Reply::text(503, "<html>upstream</html>"), true, Value::Null),
        (clicksend::error(400, "BAD_REQUEST", "Invalid input."), false, json!("BAD_REQUEST")),
        (clicksend::error(404, "NOT_FOUND", "Resource not found."), false, json!("NOT_FOUND")),
        (clicksend::bad_number(), false, json!("INVALID_RECIPIENT")),
        (clicksend::refused("COUNTRY_NOT_ENABLED"), false, json!("COUNTRY_NOT_ENABLED")),
        (clicksend::refused("INSUFFICIENT_CREDIT"), false, json!("INSUFFICIENT_CREDIT")),
        (clicksend::refused("INVALID_RETURN_ADDRESS"), false, json!("INVALID_RETURN_ADDRESS")),
        (clicksend::refused("MISSING_REQUIRED_FIELDS"), false, json!("MISSING_REQUIRED_FIELDS")),
        (clicksend::refused("SOMETHING_NEW"), false, json!("SOMETHING_NEW")),
        (clicksend::refused("TOO_MANY_REQUESTS"), true, json!("TOO_MANY_REQUESTS")),
    ];
    for (reply, retryable, code) in cases {
        let e = refused(p.as_ref(), &fake, reply.clone()).await;
        assert_eq!((e.retryable, &e.details["code"]), (retryable, &code), "{reply:?} → {e:?}");
        assert_eq!(e.details["status"], reply.status, "{e:?}");
    }
    let e = refused(p.as_ref(), &fake, clicksend::bad_number()).await;
    assert_eq!(e.message, "ClickSend refused the message: INVALID_RECIPIENT (the destination number is invalid)");
    assert_eq!(e.details["message"], "Messages queued for delivery.");
    let e = refused(p.as_ref(), &fake, clicksend::refused("COUNTRY_NOT_ENABLED")).await;
    assert!(e.message.contains("global sending"), "{e:?}");
}

#[tokio::test]
async fn a_200_that_is_not_a_send_result_is_retried_and_a_blocked_message_is_final() {
    let fake = clicksend::start().await;
    let p = provider(&fake.url, good());
    let ok = |data: Value| {
        Reply::json(
            200,
            json!({"http_code": 200, "response_code": "SUCCESS", "response_msg": "Messages queued for delivery.", "data": data}),
        )
    };
    for reply in [
        Reply::text(200, "<html>captive portal</html>"),
        Reply::json(200, json!({"http_code": 200, "response_code": "SUCCESS"})),
        ok(json!({"messages": []})),
        ok(json!({"messages": [{"status": "SUCCESS"}]})),
        ok(json!({"messages": [{"message_id": "X"}]})),
    ] {
        let e = refused(p.as_ref(), &fake, reply.clone()).await;
        assert!(e.retryable && e.message.contains("not a send result"), "{reply:?} → {e:?}");
    }
    let e = refused(p.as_ref(), &fake, ok(json!({"messages": [], "blocked_count": 1, "queued_count": 0}))).await;
    assert!(!e.retryable && e.message.contains("blocked"), "{e:?}");
    assert_eq!(e.details["code"], "BLOCKED");
}

#[tokio::test]
async fn the_fake_refuses_what_clicksend_refuses() {
    let fake = clicksend::start().await;
    let p = provider(&fake.url, good());
    let mut m = message(Channel::Sms, "");
    let e = p.send(&m).await.unwrap_err();
    assert_eq!((e.retryable, &e.details["code"]), (false, &json!("MISSING_REQUIRED_FIELDS")));
    assert!(clicksend::delivered(&fake.seen()[0]).is_none(), "a per-message refusal delivered nothing");
    m.text = "x".into();
    m.from = Some("  ".into());
    p.send(&m).await.unwrap();
    assert_eq!(fake.seen()[1].json()["messages"][0]["from"], clicksend::FROM, "a blank template sender is no sender");

    // The fake's own request checks.
    let seen = |path: &str, body: Value| callsign_fakes::Seen {
        method: "POST".into(),
        path: path.into(),
        headers: vec![
            (
                "authorization".into(),
                format!("Basic {}", b64(&format!("{}:{}", clicksend::USERNAME, clicksend::API_KEY))),
            ),
            ("content-type".into(), "application/json".into()),
        ],
        body: body.to_string().into_bytes(),
        status: 200,
    };
    let code = |s: &callsign_fakes::Seen| match clicksend::check(s) {
        Ok(()) => "OK".to_owned(),
        Err(r) => {
            let b: Value = serde_json::from_str(&r.body).unwrap();
            b["data"]["messages"][0]["status"].as_str().or(b["response_code"].as_str()).unwrap().to_owned()
        }
    };
    let voice = |extra: Value| {
        let mut m = json!({"to": PHONE, "body": "1 2 3", "voice": "female", "lang": "en-us"});
        m.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap());
        seen("/v3/voice/send", json!({"messages": [m]}))
    };
    assert_eq!(code(&voice(json!({}))), "OK");
    assert_eq!(code(&voice(json!({"lang": "ja-jp"}))), "BAD_REQUEST");
    assert_eq!(code(&voice(json!({"lang": "pt-pt"}))), "BAD_REQUEST", "pt-pt has only a male voice");
    assert_eq!(code(&voice(json!({"voice": "robot"}))), "BAD_REQUEST");
    assert_eq!(code(&voice(json!({"machine_detection": "0"}))), "BAD_REQUEST");
    assert_eq!(code(&voice(json!({"from": "Acme"}))), "BAD_REQUEST", "the voice send has no `from`");
    assert_eq!(code(&voice(json!({"to": "4155552671"}))), "INVALID_RECIPIENT");
    assert_eq!(code(&seen("/v3/sms/send", json!({"messages": [{"to": PHONE}]}))), "MISSING_REQUIRED_FIELDS");
    assert_eq!(code(&seen("/v3/sms/send", json!({"messages": [{"to": PHONE, "body": 1}]}))), "BAD_REQUEST");
    assert_eq!(code(&seen("/v3/sms/send", json!({"message": [{"to": PHONE, "body": "x"}]}))), "BAD_REQUEST");
    assert_eq!(code(&seen("/v3/sms/send", json!({"messages": []}))), "BAD_REQUEST");
    assert_eq!(code(&seen("/v3/sms", json!({}))), "NOT_FOUND");
    let mut s = seen("/v3/sms/send", json!({"messages": [{"to": PHONE, "body": "x"}]}));
    assert_eq!(code(&s), "OK");
    s.headers[1].1 = "application/x-www-form-urlencoded".into();
    assert_eq!(code(&s), "BAD_REQUEST");
    s.headers.remove(0);
    assert_eq!(code(&s), "UNAUTHORIZED");
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn timeouts_and_dead_endpoints_are_retried() {
    let fake = clicksend::start().await;
    fake.then(clicksend::bad_number().after(Duration::from_secs(2)));
    let deps = env_with(&[("clicksend", &fake.url)], impatient_client()).deps;
    let p = ClicksendKind.build(good(), &deps).unwrap();
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(e.retryable && e.message.contains("timed out"), "{e:?}");

    let p = provider(&dead_url().await, good());
    let e = p.send(&message(Channel::Voice, "x")).await.unwrap_err();
    assert!(e.retryable && e.message.contains("could not connect"), "{e:?}");
    assert_eq!(e.details["status"], Value::Null);
}

#[test]
fn it_is_registered_for_sms_and_voice_without_receipts() {
    let kind = Registry::builtin().get("clicksend").unwrap();
    let caps = kind.capabilities();
    assert!(caps.supports(Channel::Sms) && caps.supports(Channel::Voice) && !caps.receipts);
    assert_eq!(kind.label(), "ClickSend");
    assert_eq!(kind.upe_name(), Some("clicksend"));
    let names: Vec<&str> = kind.fields().iter().map(|f| f.name).collect();
    assert_eq!(names, ["username", "api_key", "from"]);
    let missing = kind.check(&ProviderSettings::default(), &[Channel::Sms]).unwrap_err();
    assert_eq!(missing.iter().map(|p| p.field.as_str()).collect::<Vec<_>>(), ["username", "api_key"]);
    assert!(kind.check(&good(), &Channel::ALL).is_ok());
    assert_eq!(DEFAULT_BASE_URL, "https://rest.clicksend.com");

    let p = kind.build(good(), &env(&[]).deps).unwrap();
    let cb = Callback {
        message_id: "job_1",
        url: "https://callsign.example/callbacks/clicksend/status/job_1",
        headers: &[],
        body: b"{}",
    };
    assert_eq!(p.parse_callback(&cb), Err(CallbackError::Unsupported), "receipts cannot be verified: none are taken");
}

#[test]
fn the_guardian_view_masks_the_key_and_an_update_is_checked() {
    let kind = Registry::builtin().get("clicksend").unwrap();
    let mut values = Map::new();
    let upd = kind.apply_guardian_update(&clicksend::settings(), &mut values).unwrap();
    assert_eq!(upd.echo, json!({"username": clicksend::USERNAME, "api_key": "****4567", "from": clicksend::FROM}));
    assert_eq!(
        upd.audit,
        json!({"clicksend": {"username": clicksend::USERNAME, "api_key": "set", "from": clicksend::FROM}})
    );
    assert_eq!(upd.secrets.get("api_key").unwrap().as_deref().map(String::as_str), Some(clicksend::API_KEY));
    let secrets = BTreeMap::from([("api_key".to_owned(), SecretState::Plain(clicksend::API_KEY))]);
    let view = kind.guardian_view(&values, &secrets).unwrap();
    assert_eq!(view, json!({"username": clicksend::USERNAME, "api_key": "****4567", "from": clicksend::FROM}));
    assert!(!view.to_string().contains(clicksend::API_KEY));
    assert_eq!(kind.guardian_view(&Map::new(), &BTreeMap::new()).unwrap()["api_key"], Value::Null);

    let e = kind.apply_guardian_update(&json!({"password": "x"}), &mut values).unwrap_err();
    assert!(e.api_message().contains("Additional properties not allowed: password"), "{e:?}");
    let e = kind.apply_guardian_update(&json!({"username": 42}), &mut values).unwrap_err();
    assert_eq!(e.field, "username");
    assert!(e.api_message().contains("Expected type string but found type number"), "{e:?}");
    assert_eq!(values["username"], clicksend::USERNAME, "a refused update changes nothing");
}

/// The bodies Callsign sends (an SMS, a call), written to `$CALLSIGN_MODEL_BODIES_DIR` for `sdk-tests/models/run.sh`
/// to check with ClickSend's generated request models (`clicksend-client`).
#[tokio::test]
#[ignore = "needs ClickSend's Python models: see sdk-tests/models/run.sh"]
async fn bodies_for_clicksends_generated_models() {
    let dir = std::path::PathBuf::from(std::env::var("CALLSIGN_MODEL_BODIES_DIR").expect("CALLSIGN_MODEL_BODIES_DIR"));
    let fake = clicksend::start().await;
    let p = provider(&fake.url, good());
    p.send(&message(Channel::Sms, "123456 is your code")).await.unwrap();
    let mut call = message(Channel::Voice, "Your code is 1, 2, 3, 4, 5, 6.");
    call.locale = "fr-CA".into();
    p.send(&call).await.unwrap();
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    for (s, name) in seen.iter().zip(["clicksend-sms.json", "clicksend-voice.json"]) {
        std::fs::write(dir.join(name), &s.body).unwrap();
    }
}
