//! The Esendex provider against the strict fake of Esendex's message dispatcher (`callsign_fakes::esendex`).
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use callsign_domain::Channel;
use callsign_fakes::esendex;
use callsign_messaging::callback::{Callback, CallbackError, callback_url};
use callsign_messaging::providers::esendex::EsendexKind;
use callsign_messaging::{Provider, ProviderKind, ProviderSettings, Registry, SecretState};
use serde_json::{Map, Value, json};

use crate::fake::{Reply, dead_url};
use crate::{PHONE, PUBLIC_URL, env, env_with, impatient_client, message};

fn settings_with(account: &str, user: &str, password: &str, from: Option<&str>) -> ProviderSettings {
    ProviderSettings::from_values(
        json!({"account_reference": account, "username": user, "from": from}).as_object().cloned().unwrap(),
    )
    .with_secret("api_password", password)
}

fn settings(from: Option<&str>) -> ProviderSettings {
    settings_with(esendex::ACCOUNT_REFERENCE, esendex::USERNAME, esendex::API_PASSWORD, from)
}

fn provider(base: &str, s: ProviderSettings) -> Arc<dyn Provider> {
    EsendexKind.build(s, &env(&[("esendex", base)]).deps).unwrap()
}

fn digits() -> &'static str {
    PHONE.trim_start_matches('+')
}

#[tokio::test]
async fn an_sms_goes_out_in_esendexs_format() {
    let fake = esendex::start().await;
    let p = provider(&fake.url, settings(Some(esendex::FROM)));
    let r = p.send(&message(Channel::Sms, "123456 is your code & <secret>")).await.unwrap();
    assert_eq!(r.provider, "esendex");
    assert!(r.details["id"].as_str().is_some_and(|id| id.starts_with("1183C73D-")), "{}", r.details);
    assert!(r.details["batch_id"].as_str().is_some_and(|id| id.starts_with("F8BF9867-")), "{}", r.details);

    let seen = fake.one();
    assert_eq!((seen.method.as_str(), seen.path.as_str()), ("POST", "/v1.0/messagedispatcher"));
    assert_eq!(seen.basic_auth(), Some((esendex::USERNAME.to_owned(), esendex::API_PASSWORD.to_owned())));
    assert_eq!(seen.header("content-type"), Some("application/xml"));
    assert_eq!(seen.header("accept"), Some("application/xml"));
    assert!(seen.header("user-agent").unwrap().starts_with("Callsign/"));
    assert_eq!(
        seen.text(),
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><messages><accountreference>{}</accountreference><message><from>{}</from><to>{}</to><body>123456 is your code &amp; &lt;secret&gt;</body><characterset>Auto</characterset></message></messages>"#,
            esendex::ACCOUNT_REFERENCE,
            esendex::FROM,
            digits()
        )
    );
    let d = esendex::delivered(&seen).unwrap();
    assert_eq!((d.channel, d.to.as_str(), d.text.as_str()), ("sms", PHONE, "123456 is your code & <secret>"));
}

#[tokio::test]
async fn a_voice_call_reads_the_script_twice_in_the_locales_language() {
    let fake = esendex::start().await;
    let p = provider(&fake.url, settings(None));
    let mut m = message(Channel::Voice, "Your code is 1, 2, 3, 4, 5, 6.");
    m.locale = "fr-CA".into();
    p.send(&m).await.unwrap();
    let seen = fake.one();
    let root = esendex::parse(&seen.text()).unwrap();
    assert_eq!(root.names(), ["accountreference", "message"]);
    let msg = root.child("message").unwrap();
    assert_eq!(msg.names(), ["to", "type", "body", "lang", "retries"], "no sender set: the account's default");
    assert_eq!(msg.child_text("type"), Some("Voice"));
    assert_eq!(msg.child_text("lang"), Some("fr-FR"));
    assert_eq!(msg.child_text("retries"), Some("1"));
    let d = esendex::delivered(&seen).unwrap();
    assert_eq!(d.channel, "voice");
    assert_eq!(d.text, "Your code is 1, 2, 3, 4, 5, 6. ... Your code is 1, 2, 3, 4, 5, 6.");

    for (locale, lang) in [("en", "en-GB"), ("en-AU", "en-AU"), ("de", "de-DE"), ("es_MX", "es-ES"), ("ja", "en-GB")] {
        let mut m = message(Channel::Voice, "x");
        m.locale = locale.into();
        p.send(&m).await.unwrap();
        let last = fake.seen().pop().unwrap();
        let root = esendex::parse(&last.text()).unwrap();
        assert_eq!(root.child("message").unwrap().child_text("lang"), Some(lang), "{locale}");
    }
}

#[tokio::test]
async fn a_templates_sender_wins() {
    let fake = esendex::start().await;
    let p = provider(&fake.url, settings(Some(esendex::FROM)));
    let mut m = message(Channel::Sms, "x");
    m.from = Some("Acme".into());
    p.send(&m).await.unwrap();
    let root = esendex::parse(&fake.one().text()).unwrap();
    assert_eq!(root.child("message").unwrap().child_text("from"), Some("Acme"));
}

#[tokio::test]
async fn missing_settings_fail_finally_without_a_request() {
    let fake = esendex::start().await;
    let p = provider(&fake.url, ProviderSettings::default());
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(!e.retryable, "{e:?}");
    assert_eq!(
        e.message,
        "the Esendex provider is not fully configured: missing account_reference, username, api_password; set it with PUT /api/v2/guardian/factors/phone/providers/esendex"
    );
    let p = provider(&fake.url, settings(None).with_secret("api_password", "  "));
    let e = p.send(&message(Channel::Voice, "x")).await.unwrap_err();
    assert!(!e.retryable && e.message.contains("missing api_password"), "{e:?}");
    assert!(fake.seen().is_empty());
}

#[tokio::test]
async fn wrong_credentials_and_accounts_are_final_and_never_shown() {
    let fake = esendex::start().await;
    let p = provider(
        &fake.url,
        settings_with(esendex::ACCOUNT_REFERENCE, esendex::USERNAME, "wrong-password-0123456789", None),
    );
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(!e.retryable, "{e:?}");
    assert_eq!(e.details, json!({"code": null, "message": "Unauthorised", "status": 401}));
    assert!(e.message.contains("HTTP 401") && e.message.contains("username and API password"), "{}", e.message);
    assert!(!format!("{e:?}").contains("wrong-password"));

    let p = provider(&fake.url, settings_with("EX9999999", esendex::USERNAME, esendex::API_PASSWORD, None));
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(!e.retryable, "{e:?}");
    assert_eq!(e.details["status"], 403);
    assert_eq!(e.details["message"], "You do not have access to account EX9999999");
    assert!(e.message.contains("account reference"), "{}", e.message);
    assert!(!format!("{e:?}").contains(esendex::API_PASSWORD));
}

#[tokio::test]
async fn errors_are_classified() {
    let fake = esendex::start().await;
    let p = provider(&fake.url, settings(Some(esendex::FROM)));
    let xml_error =
        r#"<?xml version="1.0" encoding="utf-8"?><errors><error>Insufficient   credits &amp; more</error></errors>"#;
    let cases: Vec<(Reply, bool, Value)> = vec![
        (esendex::unavailable(), true, json!("Service Unavailable")),
        (esendex::bad_number(), false, json!("Invalid recipient: expected an international number, digits only")),
        (Reply::text(429, "Too Many Requests"), true, json!("Too Many Requests")),
        (Reply::text(500, ""), true, Value::Null),
        (Reply::text(408, "Request Timeout"), true, json!("Request Timeout")),
        (Reply::xml(402, xml_error), false, json!("Insufficient credits & more")),
        (Reply::text(403, "Account not live"), false, json!("Account not live")),
        (Reply::text(404, "Not Found"), false, json!("Not Found")),
    ];
    for (reply, retryable, text) in cases {
        fake.then(reply.clone());
        let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
        assert_eq!((e.retryable, &e.details["message"]), (retryable, &text), "{reply:?} → {e:?}");
        assert_eq!(e.details["status"], reply.status);
        assert_eq!(e.details["code"], Value::Null);
        assert!(
            e.message.starts_with(&format!("Esendex refused the message (HTTP {})", reply.status)),
            "{}",
            e.message
        );
    }
    fake.then(Reply::text(402, "Payment Required"));
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(e.message.contains("no credits"), "{}", e.message);

    // A long error text is bounded.
    fake.then(Reply::text(400, &"x".repeat(5000)));
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert_eq!(e.details["message"].as_str().unwrap().len(), 300);

    // The fake's own checks refuse what Esendex refuses.
    let mut m = message(Channel::Sms, "x");
    m.from = Some("MuchTooLongSender".into());
    let e = p.send(&m).await.unwrap_err();
    assert_eq!((e.retryable, &e.details["status"]), (false, &json!(400)), "{e:?}");
    assert_eq!(e.details["message"], "Invalid originator");
}

#[tokio::test]
async fn a_success_without_a_message_header_is_retried() {
    let fake = esendex::start().await;
    let p = provider(&fake.url, settings(None));
    for reply in [
        Reply::xml(
            200,
            r#"<messageheaders batchid="F8BF9867-FF81-49E4-ACC5-774DE793B776" xmlns="http://api.esendex.com/ns/"/>"#,
        ),
        Reply::xml(200, r#"<messageheaders batchid="b"><messageheader uri="u" id=""/></messageheaders>"#),
        Reply::text(200, "<html>proxy</html>"),
        Reply::text(200, ""),
    ] {
        fake.then(reply.clone());
        let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
        assert!(e.retryable && e.message.contains("not a message dispatch result"), "{reply:?} → {e:?}");
        assert_eq!(e.details["status"], 200);
    }
}

#[tokio::test]
async fn timeouts_and_dead_endpoints_are_retried() {
    let fake = esendex::start().await;
    fake.then(
        Reply::xml(200, r#"<messageheaders><messageheader id="x"/></messageheaders>"#).after(Duration::from_secs(2)),
    );
    let deps = env_with(&[("esendex", &fake.url)], impatient_client()).deps;
    let p = EsendexKind.build(settings(None), &deps).unwrap();
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(e.retryable && e.message.contains("timed out"), "{e:?}");
    assert_eq!(e.details, json!({"code": null, "message": "Esendex timed out", "status": null}));

    let p = provider(&dead_url().await, settings(None));
    let e = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(e.retryable && e.message.contains("could not connect"), "{e:?}");
}

#[test]
fn it_is_registered_with_sms_voice_and_no_receipts() {
    let kind = Registry::builtin().get("esendex").unwrap();
    assert_eq!(kind.label(), "Esendex");
    let caps = kind.capabilities();
    assert!(caps.supports(Channel::Sms) && caps.supports(Channel::Voice) && !caps.receipts);
    let names: Vec<&str> = kind.fields().iter().map(|f| f.name).collect();
    assert_eq!(names, ["account_reference", "username", "api_password", "from"]);
    let missing = kind.check(&ProviderSettings::default(), &[Channel::Sms]).unwrap_err();
    assert_eq!(
        missing.iter().map(|p| p.field.as_str()).collect::<Vec<_>>(),
        ["account_reference", "username", "api_password"]
    );
    assert!(kind.check(&settings(None), &[Channel::Sms, Channel::Voice]).is_ok());
}

#[test]
fn the_guardian_view_masks_the_password_and_puts_are_checked() {
    let kind = EsendexKind;
    let values: Map<String, Value> =
        json!({"account_reference": esendex::ACCOUNT_REFERENCE, "username": esendex::USERNAME})
            .as_object()
            .cloned()
            .unwrap();
    let secrets = BTreeMap::from([("api_password".to_owned(), SecretState::Plain(esendex::API_PASSWORD))]);
    let view = kind.guardian_view(&values, &secrets).unwrap();
    assert_eq!(
        view,
        json!({"account_reference": esendex::ACCOUNT_REFERENCE, "username": esendex::USERNAME, "api_password": "****6789", "from": null})
    );
    assert!(!view.to_string().contains(esendex::API_PASSWORD));

    let mut v = Map::new();
    let u = kind.apply_guardian_update(&esendex::settings(), &mut v).unwrap();
    assert_eq!(u.echo["api_password"], "****6789");
    assert_eq!(u.audit["esendex"]["api_password"], "set");
    assert_eq!(u.secrets["api_password"].as_deref().map(|s| s.as_str()), Some(esendex::API_PASSWORD));
    assert!(!v.contains_key("api_password"), "the secret is sealed, not stored in the values");

    let e = kind.apply_guardian_update(&json!({"password": "x"}), &mut v).unwrap_err();
    assert_eq!(
        e.api_message(),
        "Payload validation error: 'Additional properties not allowed: password; allowed are account_reference, username, api_password, from'."
    );
    let e = kind.apply_guardian_update(&json!({"account_reference": 7}), &mut v).unwrap_err();
    assert_eq!(
        e.api_message(),
        "Payload validation error: 'Expected type string but found type number' on property account_reference."
    );
}

#[test]
fn pushed_notifications_are_not_taken() {
    let p = EsendexKind.build(settings(None), &env(&[]).deps).unwrap();
    let body = esendex::receipt("1183C73D-2E62-4F60-B610-30F160BDFBD5");
    let url = callback_url(PUBLIC_URL, "esendex", "job_0123456789abcdefABCDEFGH");
    let headers = vec![("content-type".to_owned(), "text/xml".to_owned())];
    let cb =
        Callback { message_id: "job_0123456789abcdefABCDEFGH", url: &url, headers: &headers, body: body.as_bytes() };
    assert_eq!(p.parse_callback(&cb), Err(CallbackError::Unsupported));
}
