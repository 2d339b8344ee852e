//! The development provider: it records into the inbox and stops at the cap.
use std::sync::atomic::Ordering;

use callsign_domain::Channel;
use callsign_messaging::providers::dev::DevKind;
use callsign_messaging::{ProviderKind, ProviderSettings};
use serde_json::json;

use crate::{PHONE, START, env, message};

#[tokio::test]
async fn messages_go_to_the_inbox_until_the_cap() {
    let e = env(&[]);
    let p = DevKind.build(ProviderSettings::default(), &e.deps).unwrap();
    assert_eq!(p.name(), "auth0");
    let r = p.send(&message(Channel::Sms, "123456 is your code")).await.unwrap();
    assert_eq!(r.provider, "auth0");
    let id = r.details["message_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("msg_") && id.len() == 24, "{id}");
    assert_eq!(r.details, json!({"message_id": id, "remaining": 2}));
    {
        let inbox = e.inbox.messages.lock().unwrap();
        let m = &inbox[0];
        assert_eq!((m.id.as_str(), m.to.as_str(), m.channel), (id.as_str(), PHONE, Channel::Sms));
        assert_eq!((m.text.as_str(), m.created_at), ("123456 is your code", START));
        assert!(!format!("{m:?}").contains("123456"), "no code in Debug");
    }
    let r = p.send(&message(Channel::Voice, "1.2.3.4.5.6")).await.unwrap();
    assert_eq!(r.details["remaining"], 1);
    assert_eq!(e.inbox.messages.lock().unwrap()[1].channel, Channel::Voice);
    let r = p.send(&message(Channel::Sms, "x")).await.unwrap();
    assert_eq!(r.details["remaining"], 0);
    let err = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(!err.retryable);
    assert_eq!(err.message, "the development provider's limit of 3 messages is reached; configure a real provider");
    assert_eq!(e.inbox.messages.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn an_unavailable_inbox_is_retried() {
    let e = env(&[]);
    e.inbox.failing.store(true, Ordering::SeqCst);
    let p = DevKind.build(ProviderSettings::default(), &e.deps).unwrap();
    let err = p.send(&message(Channel::Sms, "x")).await.unwrap_err();
    assert!(err.retryable);
    assert_eq!(err.message, "dev inbox unavailable: database is locked");
}

#[tokio::test]
async fn logging_the_messages_is_a_choice() {
    let mut e = env(&[]);
    e.deps.log_dev_messages = true;
    let p = DevKind.build(ProviderSettings::default(), &e.deps).unwrap();
    assert!(p.send(&message(Channel::Sms, "x")).await.is_ok());
    assert!(DevKind.check(&ProviderSettings::default(), &Channel::ALL).is_ok());
    assert!(DevKind.fields().is_empty() && DevKind.upe_name().is_none());
}
