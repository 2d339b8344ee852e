//! The provider seam: what every provider does once it is built.
use async_trait::async_trait;
use callsign_domain::Channel;
use serde::Serialize;
use serde_json::Value;

use crate::callback::{Callback, CallbackError, CallbackOutcome};
use crate::message::Message;

/// What a provider can do, declared (the router and the dashboard read it; nothing probes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// The channels it delivers.
    pub channels: &'static [Channel],
    /// Whether it pushes delivery receipts ([`Provider::parse_callback`] reads them).
    pub receipts: bool,
    /// Whether it makes and checks the codes itself (a verification service); none does yet.
    pub provider_codes: bool,
}

impl Capabilities {
    /// Whether `channel` is one of [`Capabilities::channels`].
    pub fn supports(&self, channel: Channel) -> bool {
        self.channels.contains(&channel)
    }
}

/// A provider took a message. `details` is what the log event shows as `provider_response` (Twilio: `{sid,
/// status}`; the development provider: `{message_id, remaining}`; the webhook: `{status}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Receipt {
    /// The provider's Guardian name.
    pub provider: &'static str,
    /// What the provider answered, for the log.
    pub details: Value,
}

/// A send that failed. `retryable` failures (rate limits, server errors, timeouts, connection errors) are tried
/// again with backoff; the others are final. `message` is the log event's `description` (never a secret, never a
/// full URL); `details` its `provider_error`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// Whether trying again later may succeed.
    pub retryable: bool,
    /// What went wrong, for people.
    pub message: String,
    /// The provider's error, structured (`null` when there is none).
    pub details: Value,
}

impl SendError {
    /// A final failure without provider details.
    pub fn fatal(message: impl Into<String>) -> Self {
        Self { retryable: false, message: message.into(), details: Value::Null }
    }

    /// A retryable failure without provider details.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self { retryable: true, message: message.into(), details: Value::Null }
    }

    /// The same failure with these provider details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// A phone-message provider, built once from its validated settings (see [`crate::ProviderKind::build`]). It holds
/// everything it needs (settings, secrets, the HTTP client, the clock): a send does no configuration I/O.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The Guardian name (`auth0`, `twilio`, `phone-message-hook`).
    fn name(&self) -> &'static str;

    /// What it can do.
    fn capabilities(&self) -> Capabilities;

    /// Deliver `msg`. `Ok` carries what the provider answered, for the log event.
    async fn send(&self, msg: &Message) -> Result<Receipt, SendError>;

    /// Check and read a delivery receipt the provider pushed to `/callbacks/{provider}/status/{message id}`.
    /// The default: [`CallbackError::Unsupported`] (the provider sends no receipts).
    fn parse_callback(&self, cb: &Callback<'_>) -> Result<CallbackOutcome, CallbackError> {
        let _ = cb;
        Err(CallbackError::Unsupported)
    }
}
