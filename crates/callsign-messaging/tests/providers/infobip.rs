//! The Infobip provider against the strict fake of Infobip's SMS v3 and text-to-speech APIs
//! (`callsign_fakes::infobip`).
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use callsign_domain::Channel;
use callsign_fakes::infobip;
use callsign_messaging::providers::infobip::InfobipKind;
use callsign_messaging::{
    Callback, CallbackError, Provider, ProviderKind, ProviderSettings, Registry, SecretState, callback_url,
};
use serde_json::{Map, Value, json};

use crate::fake::{Reply, Seen, dead_url};
use crate::{PHONE, PUBLIC_URL, env, env_with, impatient_client, message};

const JOB: &str = "job_0123456789abcdefABCDEFGH";
const DIGITS: &str = "14155552671";

fn settings(v: Value, key: Option<&str>) -> ProviderSettings {
    let s = ProviderSettings::from_values(v.as_object().cloned().unwrap());
    match key {
        Some(k) => s.with_secret("api_key", k),
        None => s,
    }
}

/// Settings without `base_url`, built with the configuration override aimed at `base`.
fn provider(base: &str, v: Value, key: Option<&str>) -> Arc<dyn Provider> {
    InfobipKind.build(settings(v, key), &env(&[("infobip", base)]).deps).unwrap()
}

fn good(base: &str) -> Arc<dyn Provider> {
    provider(base, json!({"from": infobip::FROM}), Some(infobip::API_KEY))
}

fn callback_for(job: &str) -> String {
    callback_url(PUBLIC_URL, "infobip", job)
}

#[tokio::test]
async fn an_sms_goes_out_in_infobips_v3_format() {
    let fake = infobip::start().await;
    let p = good(&fake.url);
    let r = p.send(&message(Channel::Sms, "123456 is your code")).await.unwrap();
    assert_eq!(r.provider, "infobip");
    assert_eq!(
        r.details,
        json!({"message_id": infobip::message_id(1), "status": "PENDING_ACCEPTED", "group": "PENDING"})
    );
    let seen = fake.one();
    assert_eq!((seen.method.as_str(), seen.path.as_str()), ("POST", "/sms/3/messages"));
    assert_eq!(seen.header("authorization"), Some(format!("App {}", infobip::API_KEY).as_str()));
    assert!(seen.content_type_is("application/json"));
    assert_eq!(seen.header("accept"), Some("application/json"));
    assert!(seen.header("user-agent").unwrap().starts_with("Callsign/"));
    assert_eq!(
        seen.json(),
        json!({"messages": [{
            "sender": infobip::FROM,
            "destinations": [{"to": DIGITS}],
            "content": {"text": "123456 is your code"},
            "webhooks": {
                "delivery": {"url": callback_for(JOB)},
                "contentType": "application/json",
                "callbackData": JOB,
            },
        }]})
    );
    let d = infobip::delivered(&seen).unwrap();
    assert_eq!((d.channel, d.to.as_str(), d.text.as_str()), ("sms", PHONE, "123456 is your code"));
}

#[tokio::test]
async fn an_sms_without_a_sender_leaves_it_to_the_account_and_a_templates_sender_wins() {
    let fake = infobip::start().await;
    let p = provider(&fake.url, json!({}), Some(infobip::API_KEY));
    p.send(&message(Channel::Sms, "x")).await.unwrap();
    let b = fake.one().json();
    assert!(b["messages"][0].get("sender").is_none(), "{b}");

    let p = good(&fake.url);
    let mut m = message(Channel::Sms, "x");
    m.from = Some("Acme".into());
    p.send(&m).await.unwrap();
    assert_eq!(fake.seen()[1].json()["messages"][0]["sender"], "Acme");
    // A numeric sender is written without its `+`.
    m.from = Some("+41793026799".into());
    p.send(&m).await.unwrap();
    assert_eq!(fake.seen()[2].json()["messages"][0]["sender"], "41793026799");
}

#[tokio::test]
async fn a_voice_call_reads_the_code_twice_through_tts_advanced() {
    let fake = infobip::start().await;
    let p = good(&fake.url);
    let r = p.send(&message(Channel::Voice, "Your code is 1, 2, 3, 4, 5, 6.")).await.unwrap();
    assert_eq!(r.details["message_id"], infobip::message_id(1));
    assert_eq!(r.details["group"], "PENDING");
    let seen = fake.one();
    assert_eq!((seen.method.as_str(), seen.path.as_str()), ("POST", "/tts/3/advanced"));
    assert_eq!(seen.header("authorization"), Some(format!("App {}", infobip::API_KEY).as_str()));
    let spoken = "Your code is 1, 2, 3, 4, 5, 6. ... Your code is 1, 2, 3, 4, 5, 6.";
    assert_eq!(
        seen.json(),
        json!({"messages": [{
            "destinations": [{"to": DIGITS}],
            "from": infobip::FROM,
            "text": spoken,
            "language": "en",
            "notifyUrl": callback_for(JOB),
            "notifyContentType": "application/json",
            "callbackData": JOB,
        }]})
    );
    let d = infobip::delivered(&seen).unwrap();
    assert_eq!((d.channel, d.to.as_str(), d.text.as_str()), ("voice", PHONE, spoken));

    // A template's sender wins for calls too (its `+` dropped).
    let mut m = message(Channel::Voice, "x");
    m.from = Some("+41793026711".into());
    p.send(&m).await.unwrap();
    assert_eq!(fake.seen()[1].json()["messages"][0]["from"], "41793026711");
}

#[tokio::test]
async fn the_voice_language_comes_from_the_locale() {
    let fake = infobip::start().await;
    let p = good(&fake.url);
    for (locale, want) in [
        ("de-AT", "de-at"),
        ("fr-CA", "fr-ca"),
        ("fr-BE", "fr"),
        ("pt", "pt-pt"),
        ("es_MX", "es-mx"),
        ("en-GB", "en-gb"),
        ("xx", "en"),
    ] {
        let mut m = message(Channel::Voice, "Code 1 2 3");
        m.locale = locale.into();
        p.send(&m).await.unwrap();
        let last = fake.seen().pop().unwrap();
        assert_eq!(last.json()["messages"][0]["language"], want, "{locale}");
    }
}

#[tokio::test]
async fn missing_or_unsafe_settings_fail_for_good_without_a_request() {
    let fake = infobip::start().await;
    // No API key.
    let e =
        provider(&fake.url, json!({"from": infobip::FROM}), None).send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(!e.retryable && e.message.contains("missing api_key"), "{e:?}");
    // No From number for a call (SMS is fine without one).
    let p = provider(&fake.url, json!({}), Some(infobip::API_KEY));
    let e = p.send(&message(Channel::Voice, "x")).await.unwrap_err();
    assert!(!e.retryable && e.message.contains("missing from"), "{e:?}");
    // No base URL and no configuration override.
    let bare = env(&[]);
    let p = InfobipKind.build(settings(json!({"from": infobip::FROM}), Some(infobip::API_KEY)), &bare.deps).unwrap();
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(!e.retryable && e.message.contains("missing base_url"), "{e:?}");
    // A base URL that is not Infobip's: the key is never sent there.
    let p = InfobipKind
        .build(settings(json!({"base_url": "https://collector.example"}), Some(infobip::API_KEY)), &bare.deps)
        .unwrap();
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(!e.retryable && e.message.contains("base_url") && e.message.contains("api.infobip.com"), "{e:?}");
    // A voice text too long for Infobip (1400 characters once said twice).
    let e = good(&fake.url).send(&message(Channel::Voice, &"1 ".repeat(400))).await.unwrap_err();
    assert!(!e.retryable && e.message.contains("too long"), "{e:?}");
    assert!(fake.seen().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn the_base_url_setting_is_used_and_a_configuration_override_wins() {
    let fake = infobip::start().await;
    let s =
        |base: &str| settings(json!({"base_url": format!("{base}/"), "from": infobip::FROM}), Some(infobip::API_KEY));
    let p = InfobipKind.build(s(&fake.url), &env(&[]).deps).unwrap();
    p.send(&message(Channel::Sms, "x")).await.unwrap();
    assert_eq!(fake.one().path, "/sms/3/messages", "the trailing slash is dropped");

    let dead = dead_url().await;
    let p = InfobipKind.build(s(&dead), &env(&[("infobip", &fake.url)]).deps).unwrap();
    p.send(&message(Channel::Sms, "x")).await.unwrap();
    assert_eq!(fake.seen().len(), 2, "the override, not the setting, was called");
    // With an override, a setting that would be refused does not matter.
    let odd = settings(json!({"base_url": "https://collector.example"}), Some(infobip::API_KEY));
    InfobipKind
        .build(odd, &env(&[("infobip", &fake.url)]).deps)
        .unwrap()
        .send(&message(Channel::Sms, "x"))
        .await
        .unwrap();
    assert_eq!(fake.seen().len(), 3);
}

#[tokio::test]
async fn a_wrong_key_is_final_and_never_shown() {
    let fake = infobip::start().await;
    let p = provider(&fake.url, json!({"from": infobip::FROM}), Some("wrong-key-0123456789"));
    for channel in [Channel::Sms, Channel::Voice] {
        let e = p.send(&message(channel, "x")).await.unwrap_err();
        assert!(!e.retryable, "{e:?}");
        assert!(e.message.contains("HTTP 401") && e.message.contains("API key"), "{}", e.message);
        assert_eq!(e.details["status"], 401);
        assert!(!format!("{e:?}").contains("wrong-key"));
    }
    assert_eq!(fake.seen()[0].header("authorization"), Some("App wrong-key-0123456789"));
    assert_eq!(fake.seen()[1].status, 401);
}

#[tokio::test]
async fn errors_are_classified() {
    let fake = infobip::start().await;
    let p = good(&fake.url);
    let api_error = |status: u16, code: &str| {
        Reply::json(
            status,
            json!({"errorCode": code, "description": "d", "action": "a", "violations": [], "resources": []}),
        )
    };
    let cases: Vec<(Reply, bool, Value, u16)> = vec![
        (infobip::unavailable(), true, json!("E500"), 500),
        (api_error(503, "E503"), true, json!("E503"), 503),
        (api_error(429, "E429"), true, json!("E429"), 429),
        (api_error(400, "E400"), false, json!("E400"), 400),
        (api_error(403, "E403"), false, json!("E403"), 403),
        (
            Reply::json(
                400,
                json!({"requestError": {"serviceException": {"messageId": "BAD_REQUEST", "text": "Bad request"}}}),
            ),
            false,
            json!("BAD_REQUEST"),
            400,
        ),
        (infobip::bad_number(), false, json!("REJECTED_PREFIX_MISSING"), 200),
        (
            infobip::rejected(12, "REJECTED_NOT_ENOUGH_CREDITS", "Not enough credits"),
            false,
            json!("REJECTED_NOT_ENOUGH_CREDITS"),
            200,
        ),
        (infobip::rejected(11, "REJECTED_SOURCE", "Sender not registered"), false, json!("REJECTED_SOURCE"), 200),
        (infobip::rejected(13, "REJECTED_SENDER", "Sender blocklisted"), false, json!("REJECTED_SENDER"), 200),
        (
            infobip::rejected(52, "REJECTED_INVALID_DESTINATION", "Invalid destination"),
            false,
            json!("REJECTED_INVALID_DESTINATION"),
            200,
        ),
        (infobip::rejected(20, "REJECTED_FLOODING_FILTER", "Flooding"), false, json!("REJECTED_FLOODING_FILTER"), 200),
        (infobip::rejected(21, "REJECTED_SYSTEM_ERROR", "System error"), true, json!("REJECTED_SYSTEM_ERROR"), 200),
        (
            Reply::json(
                200,
                json!({"messages": [{"messageId": "m", "status": {"groupId": 2, "groupName": "UNDELIVERABLE", "id": 4, "name": "UNDELIVERABLE_REJECTED_OPERATOR"}}]}),
            ),
            false,
            json!("UNDELIVERABLE_REJECTED_OPERATOR"),
            200,
        ),
        // A rejection known only by its ids.
        (Reply::json(200, json!({"messages": [{"status": {"groupId": 5, "id": 12}}]})), false, json!(12), 200),
        // Not a send result.
        (Reply::text(200, "<html>proxy</html>"), true, Value::Null, 200),
        (Reply::json(200, json!({"messages": []})), true, Value::Null, 200),
        (Reply::json(200, json!({"messages": [{"messageId": "m"}]})), true, Value::Null, 200),
        (Reply::json(200, json!({"messages": [{"status": {"groupName": "SOMETHING_ELSE"}}]})), true, Value::Null, 200),
        (Reply::text(502, "Bad gateway"), true, Value::Null, 502),
    ];
    for (reply, retryable, code, status) in cases {
        fake.then(reply.clone());
        let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
        assert_eq!(
            (e.retryable, &e.details["code"], &e.details["status"]),
            (retryable, &code, &json!(status)),
            "{reply:?} → {e:?}"
        );
        assert!(!e.message.contains(infobip::API_KEY));
    }
    fake.then(infobip::rejected(12, "REJECTED_NOT_ENOUGH_CREDITS", "Not enough credits"));
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert_eq!(
        e.message,
        "Infobip rejected the message (HTTP 200), status REJECTED_NOT_ENOUGH_CREDITS: Not enough credits (the Infobip account is out of credit)"
    );
    assert_eq!(
        e.details,
        json!({"code": "REJECTED_NOT_ENOUGH_CREDITS", "message": "Not enough credits", "status": 200})
    );
    // The fake's own checks refuse what Infobip refuses, in its shape, with the violation named.
    let mut m = message(Channel::Sms, "x");
    m.text = String::new();
    let e = p.send(&m).await.unwrap_err();
    assert!(!e.retryable && e.details["code"] == "E400", "{e:?}");
    assert!(e.message.contains("messages[0].content.text: must not be blank"), "{}", e.message);
}

#[tokio::test]
async fn a_voice_rejection_and_a_voice_error_are_read_too() {
    let fake = infobip::start().await;
    let p = good(&fake.url);
    fake.then(Reply::json(200, json!({"messages": [{"to": DIGITS, "messageId": "v1", "status": {"groupId": 5, "groupName": "REJECTED", "id": 12, "name": "REJECTED_NOT_ENOUGH_CREDITS", "description": "Not enough credits"}}]})));
    let e = p.send(&message(Channel::Voice, "x")).await.unwrap_err();
    assert!(!e.retryable && e.message.starts_with("Infobip rejected the call"), "{e:?}");
    fake.then(Reply::json(
        500,
        json!({"requestError": {"serviceException": {"messageId": "GENERAL_ERROR", "text": "Something went wrong"}}}),
    ));
    let e = p.send(&message(Channel::Voice, "x")).await.unwrap_err();
    assert!(e.retryable, "{e:?}");
    assert_eq!(e.details, json!({"code": "GENERAL_ERROR", "message": "Something went wrong", "status": 500}));
}

fn seen(path: &str, body: Value) -> Seen {
    Seen {
        method: "POST".into(),
        path: path.into(),
        headers: vec![
            ("authorization".into(), format!("App {}", infobip::API_KEY)),
            ("content-type".into(), "application/json".into()),
        ],
        body: body.to_string().into_bytes(),
        status: 0,
    }
}

#[test]
fn the_fake_refuses_what_infobips_models_refuse() {
    let sms = |m: Value| seen(infobip::SMS_PATH, json!({"messages": [m]}));
    let ok = json!({"destinations": [{"to": DIGITS}], "content": {"text": "hi"}});
    assert!(infobip::check(&sms(ok.clone())).is_ok());
    let refused = |s: &Seen| {
        let r = infobip::check(s).unwrap_err();
        let b: Value = serde_json::from_str(&r.body).unwrap();
        (r.status, b)
    };
    // A v2 body (`from`, `text`, no `content`).
    let (st, b) = refused(&sms(json!({"from": "x", "destinations": [{"to": DIGITS}], "text": "hi"})));
    assert_eq!((st, b["errorCode"].as_str()), (400, Some("E400")));
    let (_, b) = refused(&sms(json!({"destinations": [{"to": DIGITS}]})));
    assert_eq!(b["violations"][0]["property"], "messages[0].content");
    let (_, b) = refused(&sms(json!({"destinations": [{"to": "+14155552671"}], "content": {"text": "hi"}})));
    assert_eq!(b["violations"][0]["property"], "messages[0].destinations[0].to");
    let (_, b) = refused(&sms(json!({"content": {"text": "hi"}})));
    assert_eq!(b["violations"][0]["property"], "messages[0].destinations");
    let mut long = ok.clone();
    long["webhooks"] = json!({"callbackData": "x".repeat(4001)});
    assert_eq!(refused(&sms(long)).1["violations"][0]["property"], "messages[0].webhooks.callbackData");

    let voice = |m: Value| seen(infobip::VOICE_PATH, json!({"messages": [m]}));
    let ok = json!({"destinations": [{"to": DIGITS}], "from": infobip::FROM, "text": "Code 1 2 3", "language": "de"});
    assert!(infobip::check(&voice(ok.clone())).is_ok());
    let mut no_from = ok.clone();
    no_from.as_object_mut().unwrap().remove("from");
    let (st, b) = refused(&voice(no_from));
    assert_eq!(
        (st, b["requestError"]["serviceException"]["validationErrors"]["messages[0].from"][0].as_str()),
        (400, Some("must not be null"))
    );
    let mut lang = ok.clone();
    lang["language"] = json!("de-DE");
    assert!(
        refused(&voice(lang)).1["requestError"]["serviceException"]["validationErrors"]["messages[0].language"]
            .is_array()
    );
    let mut long = ok.clone();
    long["text"] = json!("1".repeat(1401));
    assert!(infobip::check(&voice(long)).is_err());

    // Auth, path, content type.
    let mut s = voice(ok.clone());
    s.headers[0].1 = "Basic abc".into();
    let (st, b) = refused(&s);
    assert_eq!((st, b["requestError"]["serviceException"]["messageId"].as_str()), (401, Some("UNAUTHORIZED")));
    assert_eq!(refused(&seen("/sms/2/text/advanced", json!({}))).0, 404);
    let mut s = sms(json!({}));
    s.headers[1].1 = "text/plain".into();
    assert_eq!(refused(&s).0, 415);
}

#[tokio::test]
async fn timeouts_and_dead_endpoints_are_retried() {
    let fake = infobip::start().await;
    fake.then(infobip::rejected(0, "x", "x").after(Duration::from_secs(2)));
    let deps = env_with(&[("infobip", &fake.url)], impatient_client()).deps;
    let p = InfobipKind.build(settings(json!({"from": infobip::FROM}), Some(infobip::API_KEY)), &deps).unwrap();
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(e.retryable && e.message.contains("timed out"), "{e:?}");

    let e = good(&dead_url().await).send(&message(Channel::Voice, "x")).await.unwrap_err();
    assert!(e.retryable && e.message.contains("could not connect"), "{e:?}");
    assert_eq!(e.details, json!({"code": null, "message": "Infobip could not connect", "status": null}));
}

#[test]
fn the_guardian_view_masks_the_key_and_updates_are_checked() {
    let kind = Registry::builtin().get("infobip").unwrap();
    let values: Map<String, Value> =
        json!({"base_url": "https://abcde.api.infobip.com", "from": infobip::FROM}).as_object().cloned().unwrap();
    let mut secrets = BTreeMap::new();
    secrets.insert("api_key".to_owned(), SecretState::Plain(infobip::API_KEY));
    let view = kind.guardian_view(&values, &secrets).unwrap();
    assert_eq!(
        view,
        json!({"base_url": "https://abcde.api.infobip.com", "api_key": "****cdef", "from": infobip::FROM})
    );
    assert!(!view.to_string().contains(infobip::API_KEY));

    let mut v = Map::new();
    let up = kind.apply_guardian_update(&infobip::settings_at("https://abcde.api.infobip.com"), &mut v).unwrap();
    assert_eq!(up.echo["api_key"], "****cdef");
    assert_eq!(
        up.audit,
        json!({"infobip": {"base_url": "https://abcde.api.infobip.com", "api_key": "set", "from": infobip::FROM}})
    );
    assert_eq!(up.secrets["api_key"].as_ref().map(|s| s.as_str()), Some(infobip::API_KEY));
    assert!(!format!("{up:?}").contains(infobip::API_KEY));

    let e = kind.apply_guardian_update(&json!({"apiKey": "x"}), &mut v).unwrap_err();
    assert!(e.api_message().contains("Additional properties not allowed: apiKey"), "{}", e.api_message());
    let e = kind.apply_guardian_update(&json!({"from": 41793026700_i64}), &mut v).unwrap_err();
    assert_eq!(
        e.api_message(),
        "Payload validation error: 'Expected type string but found type number' on property from."
    );
    let e = kind.apply_guardian_update(&json!({"base_url": "abcde.api.infobip.com"}), &mut v).unwrap_err();
    assert_eq!(e.field, "base_url");
}

#[test]
fn selection_needs_a_from_number_for_voice_and_an_infobip_base_url() {
    let s = |v: Value| settings(v, Some(infobip::API_KEY));
    let base = "https://abcde.api.infobip.com";
    let no_from = s(json!({"base_url": base}));
    let e = InfobipKind.check_selection(&no_from, &[Channel::Sms, Channel::Voice]).unwrap_err();
    assert_eq!(e.field, "from");
    assert!(e.api_message().starts_with("Voice requires a From number"), "{}", e.api_message());
    assert!(InfobipKind.check_selection(&no_from, &[Channel::Sms]).is_ok());
    assert!(InfobipKind.check_selection(&s(json!({"base_url": base, "from": FROM_VOICE})), &[Channel::Voice]).is_ok());

    let foreign = s(json!({"base_url": "https://collector.example", "from": FROM_VOICE}));
    let e = InfobipKind.check_selection(&foreign, &[Channel::Sms]).unwrap_err();
    assert_eq!(e.field, "base_url");
    let problems = InfobipKind.check(&foreign, &[Channel::Sms]).unwrap_err();
    assert_eq!(problems[0].field, "base_url");

    let missing = InfobipKind.check(&ProviderSettings::default(), &[Channel::Sms, Channel::Voice]).unwrap_err();
    assert_eq!(missing.iter().map(|p| p.field.as_str()).collect::<Vec<_>>(), ["base_url", "api_key", "from"]);
    assert!(InfobipKind.check(&s(json!({"base_url": base})), &[Channel::Sms]).is_ok());
}

const FROM_VOICE: &str = infobip::FROM;

fn cb<'a>(job: &'a str, url: &'a str, headers: &'a [(String, String)], body: &'a [u8]) -> Callback<'a> {
    Callback { message_id: job, url, headers, body }
}

#[test]
fn delivery_reports_are_taken_by_correlation() {
    let p = good("http://127.0.0.1:9");
    let url = callback_for(JOB);
    let h = vec![("content-type".to_owned(), "application/json".to_owned())];
    let sid = infobip::message_id(1);

    let out = p.parse_callback(&cb(JOB, &url, &h, &infobip::receipt(JOB, &sid, true))).unwrap();
    assert_eq!(
        out.receipt,
        json!({"provider": "infobip", "status": "DELIVERED/DELIVERED_TO_HANDSET", "state": "delivered", "error_code": null, "sid": sid})
    );
    assert_eq!(out.hint, None);

    let out = p.parse_callback(&cb(JOB, &url, &h, &infobip::receipt(JOB, &sid, false))).unwrap();
    assert_eq!(
        out.receipt,
        json!({"provider": "infobip", "status": "UNDELIVERABLE/UNDELIVERABLE_NOT_DELIVERED", "state": "failed", "error_code": 27,
               "sid": sid, "error_message": "EC_ABSENT_SUBSCRIBER: Absent Subscriber"})
    );
    assert_eq!(out.hint, Some("the handset is switched off or out of coverage"));
    assert_eq!(out.event_details()["error_hint"], "the handset is switched off or out of coverage");

    // A rejection with no error object: the hint comes from the status name.
    let body = json!({"results": [{"messageId": "m", "callbackData": JOB,
        "status": {"groupId": 5, "groupName": "REJECTED", "id": 12, "name": "REJECTED_NOT_ENOUGH_CREDITS"}}]});
    let out = p.parse_callback(&cb(JOB, &url, &h, body.to_string().as_bytes())).unwrap();
    assert_eq!(out.receipt["status"], "REJECTED/REJECTED_NOT_ENOUGH_CREDITS");
    assert_eq!(out.state, callsign_messaging::ReceiptState::Failed);
    assert_eq!(out.hint, Some("the Infobip account is out of credit"));

    // A voice report (`CallsReportResponse`) reads the same (the error id here is made up).
    let body = json!({"results": [{"bulkId": "b", "messageId": "v1", "from": infobip::FROM, "to": DIGITS,
        "callbackData": JOB, "voiceCall": {"duration": 0},
        "status": {"groupId": 2, "groupName": "UNDELIVERABLE", "id": 9, "name": "UNDELIVERABLE_NOT_DELIVERED"},
        "error": {"groupId": 2, "groupName": "USER_ERRORS", "id": 5003, "name": "EC_VOICE_NO_ANSWER",
                  "description": "User was notified, but did not answer call", "permanent": true}}]});
    let out = p.parse_callback(&cb(JOB, &url, &h, body.to_string().as_bytes())).unwrap();
    assert_eq!(out.receipt["error_code"], 5003);
    assert_eq!(out.receipt["sid"], "v1");
    assert_eq!(out.hint, Some("the call was not answered"));
}

#[test]
fn reports_that_do_not_name_their_message_are_refused() {
    let p = good("http://127.0.0.1:9");
    let url = callback_for(JOB);
    let h: Vec<(String, String)> = Vec::new();
    let other = "job_ZZZZZZZZZZZZZZZZZZZZZZZZ";
    let two = json!({"results": [
        serde_json::from_slice::<Value>(&infobip::receipt(JOB, "m1", true)).unwrap()["results"][0],
        serde_json::from_slice::<Value>(&infobip::receipt(other, "m2", true)).unwrap()["results"][0],
    ]});
    let mut no_data = serde_json::from_slice::<Value>(&infobip::receipt(JOB, "m1", true)).unwrap();
    no_data["results"][0].as_object_mut().unwrap().remove("callbackData");
    let forged: Vec<Vec<u8>> = vec![
        infobip::receipt(other, "m1", true),
        two.to_string().into_bytes(),
        no_data.to_string().into_bytes(),
        br#"{"results": []}"#.to_vec(),
        b"{}".to_vec(),
        b"messageId=1&callbackData=job_0123456789abcdefABCDEFGH".to_vec(),
        Vec::new(),
    ];
    for body in forged {
        assert_eq!(
            p.parse_callback(&cb(JOB, &url, &h, &body)),
            Err(CallbackError::Unauthenticated),
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
}

#[test]
fn it_is_registered_with_sms_voice_and_receipts() {
    let kind = Registry::builtin().get("infobip").unwrap();
    let c = kind.capabilities();
    assert!(c.supports(Channel::Sms) && c.supports(Channel::Voice) && c.receipts);
    assert_eq!(kind.fields().iter().map(|f| f.name).collect::<Vec<_>>(), ["base_url", "api_key", "from"]);
    assert_eq!(kind.upe_name(), Some("infobip"));
    let names = Registry::builtin().names();
    let at = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(at("phone-message-hook") < at("infobip") && at("infobip") < at("mitto"), "{names:?}");
}

/// The bodies Callsign sends (an SMS with and without a sender, a call), written to `$CALLSIGN_MODEL_BODIES_DIR` for
/// `sdk-tests/models/run.sh` to check with Infobip's generated request models (`infobip-api-python-client`).
#[tokio::test]
#[ignore = "needs Infobip's Python models: see sdk-tests/models/run.sh"]
async fn bodies_for_infobips_generated_models() {
    let dir = std::path::PathBuf::from(std::env::var("CALLSIGN_MODEL_BODIES_DIR").expect("CALLSIGN_MODEL_BODIES_DIR"));
    let fake = infobip::start().await;
    let p = good(&fake.url);
    p.send(&message(Channel::Sms, "123456 is your code")).await.unwrap();
    provider(&fake.url, json!({}), Some(infobip::API_KEY)).send(&message(Channel::Sms, "654321 is it")).await.unwrap();
    p.send(&message(Channel::Voice, "Your code is 1, 2, 3, 4, 5, 6.")).await.unwrap();
    let seen = fake.seen();
    assert_eq!(seen.len(), 3);
    for (s, name) in seen.iter().zip(["infobip-sms.json", "infobip-sms-no-from.json", "infobip-voice.json"]) {
        std::fs::write(dir.join(name), &s.body).unwrap();
    }
}
