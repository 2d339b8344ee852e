//! The registry (names, never a silent fallback) and the router (which provider handled each attempt).
use std::sync::Arc;

use async_trait::async_trait;
use callsign_domain::Channel;
use callsign_messaging::{
    Capabilities, Message, Provider, ProviderSettings, Receipt, Registry, Route, Router, SendError,
};
use serde_json::json;

use crate::{env, message};

#[test]
fn the_registry_knows_its_providers_and_nothing_else() {
    let r = Registry::builtin();
    assert_eq!(r.names()[..3], ["auth0", "twilio", "phone-message-hook"]);
    assert_eq!(r.upe_names()[..2], ["twilio", "custom"]);
    let integrated = &r.names()[3..];
    assert!(integrated.windows(2).all(|w| w[0] < w[1]), "the integrated providers follow, in order: {integrated:?}");
    for n in integrated {
        assert!(r.upe_names().contains(n), "{n} is a UPE provider under its own name");
    }
    assert_eq!(r.default_provider().name(), "auth0");
    for name in r.names() {
        assert_eq!(r.get(name).unwrap().name(), name);
    }
    assert_eq!(r.by_upe_name("custom").unwrap().name(), "phone-message-hook");
    assert_eq!(r.by_upe_name("twilio").unwrap().name(), "twilio");
    let e = r.get("twillio").err().unwrap();
    assert_eq!(e.to_string(), format!("unknown phone provider `twillio`; the providers are {}", r.names().join(", ")));
    assert!(r.get("").is_err() && r.get("Twilio").is_err());
    assert!(r.by_upe_name("auth0").is_err());
    for k in r.kinds() {
        assert!(!k.label().is_empty() && !k.description().is_empty(), "{}", k.name());
        assert!(k.capabilities().supports(Channel::Sms), "{}", k.name());
    }
    for k in r.kinds().take(3) {
        for c in Channel::ALL {
            assert!(k.capabilities().supports(c), "{} {c}", k.name());
        }
    }
    assert!(r.get("twilio").unwrap().capabilities().receipts);
    assert!(Registry::new(vec![]).is_none());
    let twice: Vec<&'static dyn callsign_messaging::ProviderKind> =
        vec![&callsign_messaging::providers::dev::DevKind, &callsign_messaging::providers::dev::DevKind];
    assert!(Registry::new(twice).is_none());
}

#[tokio::test]
async fn every_kind_builds_from_empty_settings() {
    let e = env(&[]);
    for k in Registry::builtin().kinds() {
        let p = k.build(ProviderSettings::default(), &e.deps).unwrap();
        assert_eq!(p.name(), k.name());
        assert_eq!(p.capabilities(), k.capabilities());
    }
}

/// A provider that only texts and answers what it is told.
struct SmsOnly;

#[async_trait]
impl Provider for SmsOnly {
    fn name(&self) -> &'static str {
        "sms-only"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities { channels: &[Channel::Sms], receipts: false, provider_codes: false }
    }
    async fn send(&self, msg: &Message) -> Result<Receipt, SendError> {
        Ok(Receipt { provider: "sms-only", details: json!({"to": msg.to.e164()}) })
    }
}

#[tokio::test]
async fn the_router_records_which_provider_handled_the_attempt() {
    let e = env(&[]);
    let router = Router::new(e.deps.clock.clone());
    let dev = Registry::builtin().get("auth0").unwrap().build(ProviderSettings::default(), &e.deps).unwrap();
    let route = Route::single(dev);
    assert_eq!(format!("{route:?}"), r#"["auth0"]"#);
    let a = router.send(&route, &message(Channel::Sms, "x")).await;
    assert_eq!((a.provider, a.duration_ms), ("auth0", 0));
    assert_eq!(a.result.unwrap().provider, "auth0");
    assert_eq!(e.inbox.messages.lock().unwrap().len(), 1);

    let route = Route::single(Arc::new(SmsOnly));
    let a = router.send(&route, &message(Channel::Sms, "x")).await;
    assert_eq!(a.provider, "sms-only");
    assert_eq!(a.result.unwrap().details, json!({"to": crate::PHONE}));
    // A channel the provider does not declare fails, final, without reaching it.
    let a = router.send(&route, &message(Channel::Voice, "x")).await;
    assert_eq!(a.provider, "sms-only");
    let err = a.result.unwrap_err();
    assert!(!err.retryable);
    assert_eq!(err.message, "the `sms-only` provider cannot send voice messages");
    // A provider failure is reported as it is.
    let failing =
        Registry::builtin().get("phone-message-hook").unwrap().build(ProviderSettings::default(), &e.deps).unwrap();
    let a = router.send(&Route::single(failing), &message(Channel::Sms, "x")).await;
    assert_eq!(a.provider, "phone-message-hook");
    assert!(a.result.unwrap_err().message.contains("has no url"));
}
