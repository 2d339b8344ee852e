//! The providers against local fakes that check the documented wire format, the registry and the router.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod clicksend;
mod dev;
mod esendex;
mod fake;
mod infobip;
mod mitto;
mod routing;
mod sns;
mod telesign;
mod twilio;
mod webhook;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use callsign_domain::phone::PhoneNumber;
use callsign_domain::{Channel, ManualClock, SeededRandom, Timestamp};
use callsign_messaging::{Deps, DevInbox, DevMessage, Message, MessageContext};

pub const PHONE: &str = "+14155552671";
pub const PUBLIC_URL: &str = "https://callsign.example/";
/// 2026-01-01T00:00:00Z.
pub const START: Timestamp = Timestamp(1_767_225_600_000);

/// An in-memory dev inbox that can be made to fail.
#[derive(Default)]
pub struct MemInbox {
    pub messages: Mutex<Vec<DevMessage>>,
    pub failing: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl DevInbox for MemInbox {
    async fn count(&self) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("database is locked".into());
        }
        Ok(self.messages.lock().unwrap().len() as u64)
    }
    async fn record(&self, message: DevMessage) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.messages.lock().unwrap().push(message);
        Ok(())
    }
}

pub struct Env {
    pub deps: Deps,
    pub clock: ManualClock,
    pub inbox: Arc<MemInbox>,
}

/// Dependencies with a manual clock, seeded randomness, the real client, and these base URL overrides.
pub fn env(base_urls: &[(&str, &str)]) -> Env {
    env_with(base_urls, callsign_messaging::transport::client().unwrap())
}

pub fn env_with(base_urls: &[(&str, &str)], http: reqwest::Client) -> Env {
    let clock = ManualClock::new(START);
    let inbox = Arc::new(MemInbox::default());
    let deps = Deps {
        http,
        clock: Arc::new(clock.clone()),
        rng: Arc::new(SeededRandom::new(7)),
        public_url: PUBLIC_URL.to_owned(),
        base_urls: base_urls.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<BTreeMap<_, _>>(),
        inbox: inbox.clone(),
        dev_cap: 3,
        log_dev_messages: false,
    };
    Env { deps, clock, inbox }
}

/// A message to [`PHONE`] with no request context.
pub fn message(channel: Channel, text: &str) -> Message {
    Message {
        id: "job_0123456789abcdefABCDEFGH".to_owned(),
        channel,
        to: PhoneNumber::parse(PHONE).unwrap(),
        text: text.to_owned(),
        locale: "en".to_owned(),
        from: None,
        context: MessageContext { tenant_friendly_name: "Callsign".into(), ..Default::default() },
    }
}

/// A client that gives up quickly (timeout tests).
pub fn impatient_client() -> reqwest::Client {
    reqwest::Client::builder().timeout(std::time::Duration::from_millis(300)).build().unwrap()
}
