//! The custom webhook provider against a receiver that verifies the Standard Webhooks signature itself
//! (HMAC-SHA256 recomputed here, not with the crate's code) and refuses anything unsigned.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use callsign_domain::Channel;
use callsign_messaging::providers::webhook::{self, WebhookKind};
use callsign_messaging::{Action, ProviderKind, ProviderSettings, SendError};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::fake::{Fake, Reply, Seen, dead_url};
use crate::{PHONE, START, env, env_with, impatient_client, message};

const OLD: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NEW: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Standard Webhooks verification, written out: HMAC-SHA256 over `{id}.{timestamp}.{body}` with the base64 key
/// after `whsec_`, compared with each `v1,<base64>` entry.
fn verifies(secret: &str, seen: &Seen) -> bool {
    let (id, ts) = (seen.header("webhook-id").unwrap_or(""), seen.header("webhook-timestamp").unwrap_or(""));
    let key = B64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut signed = format!("{id}.{ts}.").into_bytes();
    signed.extend_from_slice(&seen.body);
    seen.header("webhook-signature").unwrap_or("").split(' ').filter_map(|s| s.strip_prefix("v1,")).any(|sig| {
        let Ok(sig) = B64.decode(sig) else { return false };
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(&signed);
        mac.verify_slice(&sig).is_ok()
    })
}

/// A receiver trusting `secrets`: 401 for anything not signed by one of them, or not JSON, or not at `/hook`.
async fn receiver(secrets: &[&'static str]) -> Fake {
    let trusted: Arc<Mutex<Vec<&'static str>>> = Arc::new(Mutex::new(secrets.to_vec()));
    Fake::start(
        Box::new(move |seen: &Seen| {
            let ok = seen.method == "POST"
                && seen.path.split('?').next() == Some("/hook")
                && seen.header("content-type") == Some("application/json")
                && trusted.lock().unwrap().iter().any(|s| verifies(s, seen));
            if ok { Ok(()) } else { Err(Reply::text(401, "bad signature")) }
        }),
        Box::new(|_, _| Reply::text(204, "")),
    )
    .await
}

/// Settings: the receiver's URL and these listed secrets (`(id, secret)`; a `None` secret is listed but missing).
fn settings(url: &str, secrets: &[(&str, Option<&str>)]) -> ProviderSettings {
    let refs: Vec<Value> =
        secrets.iter().map(|(id, _)| json!({"id": id, "created_at": "2026-01-01T00:00:00.000Z"})).collect();
    let mut s = ProviderSettings::from_values(json!({"url": url, "secrets": refs}).as_object().cloned().unwrap());
    for (id, secret) in secrets {
        if let Some(secret) = secret {
            s.secrets.insert(webhook::secret_settings_key(id), Zeroizing::new((*secret).to_owned()));
        }
    }
    s
}

fn hook(f: &Fake) -> String {
    format!("{}/hook", f.url)
}

/// A message as the MFA flow sends it: an enrollment, with the whole request context and the user.
fn enrollment() -> callsign_messaging::Message {
    let mut m = message(
        Channel::Sms,
        "123456 is your verification code for Acme. Please enter this code to verify your enrollment.",
    );
    m.locale = "fr".into();
    m.context = callsign_messaging::MessageContext {
        action: Some(Action::Enrollment),
        code: Some(Zeroizing::new("123456".into())),
        client_id: Some("cl_1".into()),
        client_name: Some("My App".into()),
        ip: Some("203.0.113.7".into()),
        user_agent: Some("webhook-test/1.0".into()),
        language: Some("en".into()),
        user_id: Some("auth0|u1".into()),
        user: Some(json!({"user_id": "auth0|u1", "email": "ann@example.com"})),
        tenant_friendly_name: "Acme".into(),
    };
    m
}

#[tokio::test]
async fn the_event_is_posted_signed_with_every_active_secret() {
    let f = receiver(&[OLD]).await;
    let e = env(&[]);
    e.clock.advance(Duration::from_millis(1_500));
    let p = WebhookKind.build(settings(&hook(&f), &[("whs_old", Some(OLD)), ("whs_new", Some(NEW))]), &e.deps).unwrap();
    let r = p.send(&enrollment()).await.unwrap();
    assert_eq!((r.provider, r.details), ("phone-message-hook", json!({"status": 204})));
    let s = f.one();
    assert_eq!(s.header("webhook-id"), Some("job_0123456789abcdefABCDEFGH"), "the message id");
    assert_eq!(s.header("webhook-timestamp"), Some((START.seconds() + 1).to_string().as_str()), "the clock's seconds");
    assert_eq!(s.header("content-type"), Some("application/json"));
    assert!(s.header("user-agent").unwrap().starts_with("Callsign/"));
    // One signature per secret, each verifying with exactly one of them, oldest first.
    let sigs: Vec<&str> = s.header("webhook-signature").unwrap().split(' ').collect();
    assert_eq!(sigs.len(), 2);
    for (i, secret) in [OLD, NEW].into_iter().enumerate() {
        let only = Seen {
            headers: vec![
                ("webhook-id".into(), s.header("webhook-id").unwrap().into()),
                ("webhook-timestamp".into(), s.header("webhook-timestamp").unwrap().into()),
                ("webhook-signature".into(), sigs[i].into()),
            ],
            ..s.clone()
        };
        assert!(verifies(secret, &only), "signature {i}");
        assert!(!verifies([NEW, OLD][i], &only), "signature {i} is only {secret}'s");
    }
    // The body, byte for byte (keys sorted, as serde_json writes a map).
    assert_eq!(
        s.text(),
        concat!(
            r#"{"client":{"client_id":"cl_1","name":"My App"},"#,
            r#""message_options":{"action":"enrollment","code":"123456","message_type":"sms","recipient":"+14155552671","#,
            r#""text":"123456 is your verification code for Acme. Please enter this code to verify your enrollment."},"#,
            r#""request":{"ip":"203.0.113.7","language":"en","user_agent":"webhook-test/1.0"},"#,
            r#""tenant":{"friendly_name":"Acme","id":"callsign"},"#,
            r#""user":{"email":"ann@example.com","user_id":"auth0|u1"}}"#
        )
    );
}

#[tokio::test]
async fn a_test_message_carries_nulls_for_what_is_not_known() {
    let f = receiver(&[NEW]).await;
    let e = env(&[]);
    let p = WebhookKind.build(settings(&hook(&f), &[("whs_new", Some(NEW))]), &e.deps).unwrap();
    let mut m = message(Channel::Voice, "This is a test message from Callsign. Your phone provider works.");
    m.locale = "es".into();
    p.send(&m).await.unwrap();
    let event: Value = serde_json::from_slice(&f.one().body).unwrap();
    assert_eq!(
        event,
        json!({
            "message_options": {"action": null, "code": null, "message_type": "voice", "recipient": PHONE,
                                "text": "This is a test message from Callsign. Your phone provider works."},
            "user": {"user_id": null},
            "client": {"client_id": null, "name": null},
            "request": {"ip": null, "language": "es", "user_agent": null},
            "tenant": {"id": "callsign", "friendly_name": "Callsign"},
        })
    );
    // A user that no longer exists: only its id.
    let mut m = enrollment();
    m.context.user = None;
    p.send(&m).await.unwrap();
    let event: Value = serde_json::from_slice(&f.seen()[1].body).unwrap();
    assert_eq!(event["user"], json!({"user_id": "auth0|u1"}));
}

#[tokio::test]
async fn missing_and_malformed_secrets_are_skipped_and_unlisted_ones_never_sign() {
    let f = receiver(&[NEW]).await;
    let e = env(&[]);
    let mut s = settings(&hook(&f), &[("whs_gone", None), ("whs_bad", Some("whsec_***")), ("whs_new", Some(NEW))]);
    s.secrets.insert(webhook::secret_settings_key("whs_unlisted"), Zeroizing::new(OLD.to_owned()));
    let p = WebhookKind.build(s, &e.deps).unwrap();
    p.send(&enrollment()).await.unwrap();
    let seen = f.one();
    assert_eq!(seen.header("webhook-signature").unwrap().split(' ').count(), 1, "{seen:?}");
    assert!(!verifies(OLD, &seen));
}

async fn answered(reply: Reply) -> SendError {
    let f = receiver(&[OLD]).await;
    f.then(reply);
    let e = env(&[]);
    let p = WebhookKind.build(settings(&hook(&f), &[("whs_old", Some(OLD))]), &e.deps).unwrap();
    let err = p.send(&enrollment()).await.unwrap_err();
    assert_eq!(f.seen().len(), 1);
    err
}

#[tokio::test]
async fn answers_are_retried_or_final() {
    for status in [500, 502, 503, 429] {
        let e = answered(Reply::text(status, "busy")).await;
        assert!(e.retryable, "{status}");
        assert_eq!(e.details, json!({"status": status, "body": "busy"}));
    }
    let e = answered(Reply::text(400, "invalid recipient for this tenant")).await;
    assert!(!e.retryable);
    let host = "127.0.0.1";
    assert_eq!(e.message, format!("the phone-message-hook at {host} answered 400 Bad Request"));
    assert_eq!(e.details, json!({"status": 400, "body": "invalid recipient for this tenant"}));
    for status in [401, 404, 409, 410, 422, 304] {
        let e = answered(Reply::text(status, "no")).await;
        assert!(!e.retryable, "{status}");
    }
    // Only the first 500 bytes of the answer are kept.
    let e = answered(Reply::text(400, &"é".repeat(600))).await;
    let body = e.details["body"].as_str().unwrap();
    assert_eq!(body.chars().count(), 250, "500 bytes of two-byte characters");
    // Any 2xx delivers, the body ignored.
    let f = receiver(&[OLD]).await;
    f.then(Reply::text(202, "queued"));
    let env = env(&[]);
    let p = WebhookKind.build(settings(&hook(&f), &[("whs_old", Some(OLD))]), &env.deps).unwrap();
    assert_eq!(p.send(&enrollment()).await.unwrap().details, json!({"status": 202}));
}

#[tokio::test]
async fn the_receiver_refuses_a_wrong_signature() {
    // The receiver really checks: a secret it does not trust gets a 401, which is final.
    let f = receiver(&[OLD]).await;
    let e = env(&[]);
    let p = WebhookKind.build(settings(&hook(&f), &[("whs_new", Some(NEW))]), &e.deps).unwrap();
    let err = p.send(&enrollment()).await.unwrap_err();
    assert!(!err.retryable);
    assert_eq!(err.details["status"], 401);
}

#[tokio::test]
async fn timeouts_and_connection_errors_are_retried_naming_only_the_host() {
    let f = receiver(&[OLD]).await;
    f.then(Reply::text(204, "").after(Duration::from_secs(3)));
    let e = env_with(&[], impatient_client());
    let p = WebhookKind.build(settings(&format!("{}/hook?token=abc", f.url), &[("whs_old", Some(OLD))]), &e.deps);
    let err = p.unwrap().send(&enrollment()).await.unwrap_err();
    assert!(err.retryable);
    assert!(err.message.starts_with("the phone-message-hook at 127.0.0.1 timed out: "), "{}", err.message);
    assert!(!err.message.contains("token=abc") && !err.message.contains("/hook"), "{}", err.message);
    assert_eq!(err.details, json!({"host": "127.0.0.1", "error": "timed out"}));

    let dead = dead_url().await;
    let p = WebhookKind.build(settings(&format!("{dead}/hook"), &[("whs_old", Some(OLD))]), &e.deps).unwrap();
    let err = p.send(&enrollment()).await.unwrap_err();
    assert!(err.retryable);
    assert!(err.message.starts_with("the phone-message-hook at 127.0.0.1 could not connect: "), "{}", err.message);
    assert_eq!(err.details, json!({"host": "127.0.0.1", "error": "could not connect"}));
}

#[tokio::test]
async fn incomplete_settings_fail_at_once() {
    let e = env(&[]);
    let cases = [
        (
            ProviderSettings::default(),
            "the phone-message-hook provider has no url; set it with PUT /api/v2/guardian/factors/phone/providers/phone-message-hook",
        ),
        (
            settings("https://hooks.example.com/sms", &[]),
            "the phone-message-hook provider has no signing secret; create one with POST /api/v2/guardian/factors/phone/providers/phone-message-hook/secrets",
        ),
        (
            settings("https://hooks.example.com/sms", &[("whs_gone", None)]),
            "the phone-message-hook provider has no signing secret;",
        ),
        (
            settings("http://hooks.example.com/sms", &[("whs_old", Some(OLD))]),
            "the phone-message-hook url: the url must use https (plain http is allowed only for 127.0.0.1 and localhost)",
        ),
    ];
    for (s, text) in cases {
        assert!(WebhookKind.check(&s, &[Channel::Sms]).is_err());
        let err = WebhookKind.build(s, &e.deps).unwrap().send(&enrollment()).await.unwrap_err();
        assert!(!err.retryable);
        assert!(err.message.starts_with(text), "{text} / {}", err.message);
    }
    assert!(
        WebhookKind
            .check(&settings("https://hooks.example.com/sms", &[("whs_old", Some(OLD))]), &[Channel::Sms])
            .is_ok()
    );
    let bad = ProviderSettings::from_values(json!({"url": 5}).as_object().cloned().unwrap());
    assert!(WebhookKind.build(bad, &e.deps).is_err());
    let bad = ProviderSettings::from_values(json!({"secrets": "x"}).as_object().cloned().unwrap());
    assert!(WebhookKind.build(bad, &e.deps).is_err());
}

#[test]
fn signing_is_standard_webhooks() {
    let key = webhook::secret_key(OLD).unwrap();
    let sig = webhook::sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#).unwrap();
    assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    let e = env(&[]);
    let s = webhook::new_secret(e.deps.rng.as_ref());
    assert!(s.starts_with("whsec_"));
    assert_eq!(B64.decode(&s[6..]).unwrap().len(), 32);
    assert_eq!(e.deps.clock.now(), START);
}
