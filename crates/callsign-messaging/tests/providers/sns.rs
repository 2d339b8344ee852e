//! The Amazon SNS provider against the strict fake of SNS Publish (`callsign_fakes::sns`, which verifies the SigV4
//! signature with the secret it knows), and, `#[ignore]`d, against moto with signature verification on
//! (`sdk-tests/moto/run.sh`).
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use callsign_domain::{Channel, SystemClock};
use callsign_fakes::sns;
use callsign_messaging::providers::sns::SnsKind;
use callsign_messaging::{Provider, ProviderKind, ProviderSettings, Registry, SecretState};
use serde_json::{Value, json};

use crate::fake::{Reply, dead_url};
use crate::{PHONE, env, env_with, impatient_client, message};

fn settings_with(values: Value, secret: Option<&str>) -> ProviderSettings {
    let s = ProviderSettings::from_values(values.as_object().cloned().unwrap());
    match secret {
        Some(k) => s.with_secret("secret_access_key", k),
        None => s,
    }
}

/// The fake's settings, with these values changed.
fn settings(changes: Value) -> ProviderSettings {
    let mut v = sns::settings();
    v.as_object_mut().unwrap().remove("secret_access_key");
    for (k, x) in changes.as_object().unwrap() {
        v[k] = x.clone();
    }
    settings_with(v, Some(sns::SECRET_ACCESS_KEY))
}

fn provider(base: &str, s: ProviderSettings) -> Arc<dyn Provider> {
    SnsKind.build(s, &env(&[("sns", base)]).deps).unwrap()
}

#[tokio::test]
async fn an_sms_goes_out_as_a_signed_publish() {
    let fake = sns::start().await;
    let p = provider(&fake.url, settings(json!({})));
    let r = p.send(&message(Channel::Sms, "123456 is your code & more")).await.unwrap();
    assert_eq!(r.provider, "sns");
    assert_eq!(r.details["message_id"], "5e2b8a41-0000-4000-8000-000000000001");
    assert_eq!(r.details["request_id"], "0f1e2d3c-0000-4000-8000-000000000001");
    let seen = fake.one();
    assert_eq!((seen.method.as_str(), seen.path.as_str()), ("POST", "/"));
    assert_eq!(seen.header("content-type"), Some("application/x-www-form-urlencoded; charset=utf-8"));
    // The manual clock's 2026-01-01T00:00:00Z, in the credential scope and X-Amz-Date.
    assert_eq!(seen.header("x-amz-date"), Some("20260101T000000Z"));
    let auth = seen.header("authorization").unwrap();
    let prefix = format!(
        "AWS4-HMAC-SHA256 Credential={}/20260101/us-east-1/sns/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=",
        sns::ACCESS_KEY_ID
    );
    assert!(auth.starts_with(&prefix), "{auth}");
    assert_eq!(auth.len(), prefix.len() + 64);
    assert!(!auth.contains(sns::SECRET_ACCESS_KEY));
    assert_eq!(
        seen.form(),
        [
            ("Action", "Publish"),
            ("Version", "2010-03-31"),
            ("PhoneNumber", PHONE),
            ("Message", "123456 is your code & more"),
            ("MessageAttributes.entry.1.Name", "AWS.SNS.SMS.SMSType"),
            ("MessageAttributes.entry.1.Value.DataType", "String"),
            ("MessageAttributes.entry.1.Value.StringValue", "Transactional"),
            ("MessageAttributes.entry.2.Name", "AWS.SNS.SMS.SenderID"),
            ("MessageAttributes.entry.2.Value.DataType", "String"),
            ("MessageAttributes.entry.2.Value.StringValue", sns::FROM),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    assert!(seen.text().contains("PhoneNumber=%2B14155552671"), "{}", seen.text());
    let d = sns::delivered(&seen).unwrap();
    assert_eq!((d.channel, d.to.as_str(), d.text.as_str()), ("sms", PHONE, "123456 is your code & more"));
    assert!(seen.header("user-agent").unwrap().starts_with("Callsign/"));
}

#[tokio::test]
async fn the_signature_follows_the_clock_and_the_body() {
    let fake = sns::start().await;
    let e = env(&[("sns", &fake.url)]);
    let p = SnsKind.build(settings(json!({})), &e.deps).unwrap();
    p.send(&message(Channel::Sms, "a")).await.unwrap();
    e.clock.advance(Duration::from_secs(86_400 + 3_661));
    p.send(&message(Channel::Sms, "b")).await.unwrap();
    let seen = fake.seen();
    assert_eq!(seen[1].header("x-amz-date"), Some("20260102T010101Z"));
    assert!(seen[1].header("authorization").unwrap().contains("/20260102/us-east-1/sns/aws4_request"));
    assert_ne!(seen[0].header("authorization"), seen[1].header("authorization"));
}

#[tokio::test]
async fn senders_go_in_their_attributes_and_a_templates_from_replaces_its_kind() {
    let fake = sns::start().await;
    let p = provider(&fake.url, settings(json!({"sender_id": "Acme", "origination_number": "+18005550100"})));
    p.send(&message(Channel::Sms, "x")).await.unwrap();
    let attrs = |i: usize| sns::attributes(&fake.seen()[i]);
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    assert_eq!(
        attrs(0),
        [
            pair("AWS.SNS.SMS.SMSType", "Transactional"),
            pair("AWS.SNS.SMS.SenderID", "Acme"),
            pair("AWS.MM.SMS.OriginationNumber", "+18005550100")
        ]
    );
    let mut m = message(Channel::Sms, "x");
    m.from = Some("Shop-42".into());
    p.send(&m).await.unwrap();
    assert_eq!(attrs(1)[1], pair("AWS.SNS.SMS.SenderID", "Shop-42"));
    assert_eq!(attrs(1)[2], pair("AWS.MM.SMS.OriginationNumber", "+18005550100"));
    m.from = Some("+15005550006".into());
    p.send(&m).await.unwrap();
    assert_eq!(attrs(2)[1], pair("AWS.SNS.SMS.SenderID", "Acme"));
    assert_eq!(attrs(2)[2], pair("AWS.MM.SMS.OriginationNumber", "+15005550006"));

    // Neither a sender ID nor a number: final, nothing sent.
    m.from = Some("Not a sender!".into());
    let e = p.send(&m).await.unwrap_err();
    assert!(!e.retryable && e.message.contains("neither a sender ID"), "{e:?}");

    // No sender at all: only the SMS type.
    let p = provider(&fake.url, settings(json!({"sender_id": null})));
    p.send(&message(Channel::Sms, "x")).await.unwrap();
    assert_eq!(attrs(3), [pair("AWS.SNS.SMS.SMSType", "Transactional")]);
    assert_eq!(fake.seen().len(), 4);
}

#[tokio::test]
async fn missing_or_invalid_settings_fail_clearly_without_a_request() {
    let fake = sns::start().await;
    let cases: Vec<(ProviderSettings, &str)> = vec![
        (settings_with(json!({}), None), "missing region, access_key_id, secret_access_key"),
        (settings(json!({"access_key_id": null})), "missing access_key_id"),
        (
            settings_with(json!({"region": "us-east-1", "access_key_id": sns::ACCESS_KEY_ID}), None),
            "missing secret_access_key",
        ),
        (settings(json!({"region": "evil.example/x"})), "AWS region"),
        (settings(json!({"access_key_id": "AKIA-not/a-key-id"})), "access key ID"),
        (settings(json!({"sender_id": "12345"})), "sender_id"),
        (settings(json!({"origination_number": "call-me"})), "origination_number"),
        (settings(json!({"region": 5})), "Expected type string"),
    ];
    for (s, says) in cases {
        let p = provider(&fake.url, s);
        let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
        assert!(!e.retryable && e.message.contains(says), "{says}: {e:?}");
        assert!(e.message.contains("Amazon SNS"), "{e:?}");
    }
    assert!(fake.seen().is_empty());
    let e = provider(&fake.url, settings(json!({}))).send(&message(Channel::Voice, "1. 2. 3.")).await.unwrap_err();
    assert!(!e.retryable && e.message.contains("SMS only"), "{e:?}");
    assert!(fake.seen().is_empty());
}

#[tokio::test]
async fn wrong_credentials_are_final_and_never_shown() {
    let fake = sns::start().await;
    let secret = "wrong/Secret+Key0123456789abcdefGHIJKLMNOP";
    let p = provider(
        &fake.url,
        settings_with(json!({"region": sns::REGION, "access_key_id": sns::ACCESS_KEY_ID}), Some(secret)),
    );
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(!e.retryable, "{e:?}");
    assert_eq!((e.details["code"].as_str(), e.details["status"].as_u64()), (Some("SignatureDoesNotMatch"), Some(403)));
    assert!(
        e.message.contains("HTTP 403, SignatureDoesNotMatch") && e.message.contains("secret access key"),
        "{}",
        e.message
    );
    assert!(!format!("{e:?}").contains(secret));

    let e = provider(&fake.url, settings(json!({"access_key_id": "AKIAWRONGWRONG000000"})))
        .send(&message(Channel::Sms, "x"))
        .await
        .unwrap_err();
    assert!(!e.retryable && e.details["code"] == "InvalidClientTokenId", "{e:?}");

    // Signed for another region than the endpoint's.
    let e = provider(&fake.url, settings(json!({"region": "eu-west-1"})))
        .send(&message(Channel::Sms, "x"))
        .await
        .unwrap_err();
    assert!(!e.retryable && e.details["code"] == "SignatureDoesNotMatch", "{e:?}");
    assert!(fake.seen().iter().all(|s| s.status == 403));
}

#[tokio::test]
async fn errors_are_classified() {
    let fake = sns::start().await;
    let p = provider(&fake.url, settings(json!({})));
    let publish_without_id = "<PublishResponse><PublishResult></PublishResult></PublishResponse>";
    let cases: Vec<(Reply, bool, Value)> = vec![
        (sns::unavailable(), true, json!("InternalError")),
        (sns::bad_number(), false, json!("InvalidParameter")),
        (sns::error(429, "Throttled", "Rate exceeded"), true, json!("Throttled")),
        // The code wins over a status that would say otherwise.
        (sns::error(400, "Throttled", "Rate exceeded"), true, json!("Throttled")),
        (sns::error(400, "ParameterValueInvalid", "Invalid sender"), false, json!("ParameterValueInvalid")),
        (sns::error(400, "OptedOut", "Phone number is opted out"), false, json!("OptedOut")),
        (
            sns::error(403, "AuthorizationError", "not authorized to perform: SNS:Publish"),
            false,
            json!("AuthorizationError"),
        ),
        (sns::error(403, "InvalidSecurity", "The request was rejected"), false, json!("InvalidSecurity")),
        (sns::error(404, "NotFound", "Endpoint does not exist"), false, json!("NotFound")),
        (sns::error(503, "ServiceUnavailable", "Service is unavailable"), true, json!("ServiceUnavailable")),
        (Reply::text(502, "<html>bad gateway</html>"), true, Value::Null),
        // HTTP 200 carrying a refusal.
        (sns::error(200, "InvalidParameter", "Invalid parameter: PhoneNumber"), false, json!("InvalidParameter")),
        (sns::error(200, "InternalError", "Internal Error"), true, json!("InternalError")),
        // HTTP 200 that is not a Publish result.
        (Reply::text(200, "<html>captive portal</html>"), true, Value::Null),
        (Reply::xml(200, publish_without_id), true, Value::Null),
    ];
    for (reply, retryable, code) in cases {
        fake.then(reply.clone());
        let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
        assert_eq!((e.retryable, &e.details["code"]), (retryable, &code), "{reply:?} → {e:?}");
        assert_eq!(e.details["status"], reply.status, "{e:?}");
    }
    let e = {
        fake.then(sns::error(400, "OptedOut", "Phone number is opted out"));
        p.send(&message(Channel::Sms, "x")).await.unwrap_err()
    };
    assert_eq!(e.details["message"], "Phone number is opted out");
    assert!(e.message.contains("opted out of SMS"), "{}", e.message);
    // The fake's own checks refuse what SNS refuses.
    let e = p.send(&message(Channel::Sms, &"x".repeat(1601))).await.unwrap_err();
    assert_eq!((e.retryable, &e.details["code"]), (false, &json!("InvalidParameter")), "{e:?}");
    assert!(e.message.contains("Message too long"), "{e:?}");
}

#[tokio::test]
async fn timeouts_and_dead_endpoints_are_retried() {
    let fake = sns::start().await;
    let ok = "<PublishResponse><PublishResult><MessageId>m-1</MessageId></PublishResult></PublishResponse>";
    fake.then(Reply::xml(200, ok).after(Duration::from_secs(2)));
    let deps = env_with(&[("sns", &fake.url)], impatient_client()).deps;
    let p = SnsKind.build(settings(json!({})), &deps).unwrap();
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(e.retryable && e.message.contains("timed out"), "{e:?}");

    let p = provider(&dead_url().await, settings(json!({})));
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(e.retryable && e.message.contains("could not connect"), "{e:?}");
}

#[tokio::test]
async fn a_base_url_override_replaces_the_endpoint_entirely() {
    // The override (trailing slash or not) is the endpoint; the region only signs. The default is regional.
    let fake = sns::start().await;
    let p = provider(&format!("{}/", fake.url), settings(json!({})));
    p.send(&message(Channel::Sms, "x")).await.unwrap();
    assert_eq!(fake.one().path, "/");
    assert_eq!(
        callsign_messaging::providers::sns::default_base_url("ap-southeast-2"),
        "https://sns.ap-southeast-2.amazonaws.com"
    );
}

#[test]
fn the_guardian_view_masks_the_secret_and_a_bad_put_names_the_field() {
    let kind = Registry::builtin().get("sns").unwrap();
    let mut values = serde_json::Map::new();
    let u = kind.apply_guardian_update(&sns::settings(), &mut values).unwrap();
    assert_eq!(u.echo["secret_access_key"], "****MNOP");
    assert_eq!(u.audit["sns"]["secret_access_key"], "set");
    assert!(
        !u.audit.to_string().contains(sns::SECRET_ACCESS_KEY) && !u.echo.to_string().contains(sns::SECRET_ACCESS_KEY)
    );
    assert!(!values.contains_key("secret_access_key"));
    let states = BTreeMap::from([("secret_access_key".to_owned(), SecretState::Plain(sns::SECRET_ACCESS_KEY))]);
    assert_eq!(
        kind.guardian_view(&values, &states).unwrap(),
        json!({
            "region": sns::REGION,
            "access_key_id": sns::ACCESS_KEY_ID,
            "secret_access_key": "****MNOP",
            "sender_id": sns::FROM,
            "origination_number": null,
        })
    );
    for (body, says) in [
        (json!({"secret_key": "x"}), "Additional properties not allowed: secret_key"),
        (json!({"region": 1}), "on property region"),
        (json!({"sender_id": "ThisIsTooLong"}), "on property sender_id"),
    ] {
        let e = kind.apply_guardian_update(&body, &mut values).unwrap_err();
        assert!(e.api_message().contains(says), "{body}: {}", e.api_message());
    }
}

#[test]
fn it_is_registered_sms_only_with_settings_the_api_reads() {
    let kind = Registry::builtin().get("sns").unwrap();
    assert_eq!(kind.label(), "Amazon SNS");
    assert!(kind.capabilities().supports(Channel::Sms) && !kind.capabilities().supports(Channel::Voice));
    assert!(!kind.capabilities().receipts);
    let names: Vec<&str> = kind.fields().iter().map(|f| f.name).collect();
    assert_eq!(names, ["region", "access_key_id", "secret_access_key", "sender_id", "origination_number"]);
    let missing = kind.check(&ProviderSettings::default(), &[Channel::Sms]).unwrap_err();
    let fields: Vec<&str> = missing.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["region", "access_key_id", "secret_access_key"]);
    assert!(kind.check(&settings(json!({})), &[Channel::Sms]).is_ok());
    let bad = kind.check(&settings(json!({"region": "us-east-1.evil"})), &[Channel::Sms]).unwrap_err();
    assert_eq!(bad[0].field, "region");
}

// ---- moto (sdk-tests/moto/run.sh): the real signer against moto_server with signature verification on.

struct Moto {
    url: String,
    key: String,
    secret: String,
}

fn moto() -> Moto {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} (run sdk-tests/moto/run.sh)"));
    Moto {
        url: var("CALLSIGN_TEST_MOTO_URL"),
        key: var("CALLSIGN_TEST_MOTO_ACCESS_KEY_ID"),
        secret: var("CALLSIGN_TEST_MOTO_SECRET_ACCESS_KEY"),
    }
}

fn moto_provider(m: &Moto, secret: &str, sender: Option<&str>) -> Arc<dyn Provider> {
    let mut deps = env(&[("sns", &m.url)]).deps;
    deps.clock = Arc::new(SystemClock); // moto compares the signature's time with its own
    let s = settings_with(json!({"region": "us-east-1", "access_key_id": m.key, "sender_id": sender}), Some(secret));
    SnsKind.build(s, &deps).unwrap()
}

#[tokio::test]
#[ignore = "needs moto: see sdk-tests/moto/run.sh"]
async fn moto_accepts_a_signed_publish_and_records_the_sms() {
    let m = moto();
    let p = moto_provider(&m, &m.secret, Some("Callsign"));
    let text = "654321 is your verification code for Callsign";
    let r = p.send(&message(Channel::Sms, text)).await.unwrap_or_else(|e| panic!("{}: {}", e.message, e.details));
    let id = r.details["message_id"].as_str().unwrap().to_owned();
    let data: Value = reqwest::get(format!("{}/moto-api/data.json", m.url)).await.unwrap().json().await.unwrap();
    let sms = data["sns"]["SMS"].as_array().unwrap_or_else(|| panic!("no sns.SMS in {data}"));
    let ours = sms.iter().find(|s| s["message_id"] == id.as_str()).unwrap_or_else(|| panic!("{id} not in {sms:?}"));
    assert_eq!(ours["phone_number"], PHONE);
    assert_eq!(ours["message"], text);
}

#[tokio::test]
#[ignore = "needs moto: see sdk-tests/moto/run.sh"]
async fn moto_refuses_a_wrong_secret_for_good() {
    let m = moto();
    let p = moto_provider(&m, "wrong/Secret+Key0123456789abcdefGHIJKLMNOP", None);
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(!e.retryable, "{e:?}");
    assert_eq!(
        (e.details["code"].as_str(), e.details["status"].as_u64()),
        (Some("SignatureDoesNotMatch"), Some(403)),
        "{e:?}"
    );
}
