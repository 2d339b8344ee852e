//! The Mitto provider against the strict fake of Mitto's SMS API (`callsign_fakes::mitto`).
use std::time::Duration;

use callsign_domain::Channel;
use callsign_fakes::mitto;
use callsign_messaging::providers::mitto::MittoKind;
use callsign_messaging::{Provider, ProviderKind, ProviderSettings, Registry};
use serde_json::{Value, json};
use std::sync::Arc;

use crate::fake::{Reply, dead_url};
use crate::{PHONE, env, env_with, impatient_client, message};

fn settings(key: &str, from: Option<&str>) -> ProviderSettings {
    ProviderSettings::from_values(json!({"from": from}).as_object().cloned().unwrap()).with_secret("api_key", key)
}

fn provider(base: &str, s: ProviderSettings) -> Arc<dyn Provider> {
    MittoKind.build(s, &env(&[("mitto", base)]).deps).unwrap()
}

#[tokio::test]
async fn an_sms_goes_out_in_mittos_format() {
    let fake = mitto::start().await;
    let p = provider(&fake.url, settings(mitto::API_KEY, Some(mitto::FROM)));
    let r = p.send(&message(Channel::Sms, "123456 is your code")).await.unwrap();
    assert_eq!(r.provider, "mitto");
    assert_eq!(r.details["status"], "SMS sent");
    assert!(r.details["id"].as_str().is_some_and(|s| !s.is_empty()));
    let seen = fake.one();
    assert_eq!((seen.method.as_str(), seen.path.as_str()), ("POST", "/sms"));
    assert_eq!(
        seen.json(),
        json!({"from": mitto::FROM, "to": PHONE.trim_start_matches('+'), "text": "123456 is your code"})
    );
    assert_eq!(mitto::delivered(&seen).unwrap().to, PHONE);
    assert!(seen.header("user-agent").unwrap().starts_with("Callsign/"));
}

#[tokio::test]
async fn a_templates_sender_wins_and_no_sender_is_a_clear_final_failure() {
    let fake = mitto::start().await;
    let p = provider(&fake.url, settings(mitto::API_KEY, Some(mitto::FROM)));
    let mut m = message(Channel::Sms, "x");
    m.from = Some("Acme".into());
    p.send(&m).await.unwrap();
    assert_eq!(fake.one().json()["from"], "Acme");

    let p = provider(&fake.url, settings(mitto::API_KEY, None));
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(!e.retryable && e.message.contains("needs a sender"), "{e:?}");
    assert_eq!(fake.seen().len(), 1, "nothing was sent");
}

#[tokio::test]
async fn a_wrong_key_is_final_and_never_shown() {
    let fake = mitto::start().await;
    let p = provider(&fake.url, settings("wrong-key-0123456789", Some(mitto::FROM)));
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(!e.retryable, "{e:?}");
    assert!(e.message.contains("HTTP 401") && e.message.contains("API key"), "{}", e.message);
    assert_eq!(e.details["status"], 401);
    assert!(!format!("{e:?}").contains("wrong-key"));
}

#[tokio::test]
async fn errors_are_classified() {
    let fake = mitto::start().await;
    let p = provider(&fake.url, settings(mitto::API_KEY, Some(mitto::FROM)));
    let cases: Vec<(Reply, bool, Value)> = vec![
        (mitto::unavailable(), true, json!(1)),
        (mitto::bad_number(), false, json!(8)),
        (Reply::json(429, json!({"responseText": "Too many requests"})), true, Value::Null),
        (Reply::json(200, json!({"responseCode": 1, "responseText": "Internal error"})), true, json!(1)),
        (Reply::json(200, json!({"responseCode": 6, "responseText": "Invalid sender"})), false, json!(6)),
        (Reply::text(200, "<html>proxy</html>"), true, Value::Null),
    ];
    for (reply, retryable, code) in cases {
        fake.then(reply.clone());
        let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
        assert_eq!((e.retryable, &e.details["code"]), (retryable, &code), "{reply:?} → {e:?}");
    }
    // The fake's own checks refuse what Mitto refuses.
    let mut m = message(Channel::Sms, "x");
    m.text = String::new();
    let e = p.send(&m).await.unwrap_err();
    assert_eq!((e.retryable, &e.details["code"]), (false, &json!(3)), "an empty text is Mitto's code 3");
}

#[tokio::test]
async fn timeouts_and_dead_endpoints_are_retried() {
    let fake = mitto::start().await;
    fake.then(Reply::json(200, json!({"id": "x", "responseCode": 0})).after(Duration::from_secs(2)));
    let deps = env_with(&[("mitto", &fake.url)], impatient_client()).deps;
    let p = MittoKind.build(settings(mitto::API_KEY, Some(mitto::FROM)), &deps).unwrap();
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(e.retryable && e.message.contains("timed out"), "{e:?}");

    let p = provider(&dead_url().await, settings(mitto::API_KEY, Some(mitto::FROM)));
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(e.retryable && e.message.contains("could not connect"), "{e:?}");
}

#[test]
fn it_is_registered_sms_only_with_settings_the_api_reads() {
    let kind = Registry::builtin().get("mitto").unwrap();
    assert!(kind.capabilities().supports(Channel::Sms) && !kind.capabilities().supports(Channel::Voice));
    let names: Vec<&str> = kind.fields().iter().map(|f| f.name).collect();
    assert_eq!(names, ["api_key", "from"]);
    let missing = kind.check(&ProviderSettings::default(), &[Channel::Sms]).unwrap_err();
    assert_eq!(missing[0].field, "api_key");
}
