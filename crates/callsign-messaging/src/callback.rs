//! Delivery receipts pushed by providers, at one route for all of them: `POST
//! <public_url>callbacks/{provider}/status/{message id}`.
use serde_json::{Map, Value};

/// The callback path of a message below the public URL (no leading slash):
/// `callbacks/{provider}/status/{message_id}`.
pub fn callback_path(provider: &str, message_id: &str) -> String {
    format!("callbacks/{provider}/status/{message_id}")
}

/// The full callback URL a provider is given for a message (and, for Twilio, signs): `public_url` (with or
/// without its trailing slash) followed by [`callback_path`].
pub fn callback_url(public_url: &str, provider: &str, message_id: &str) -> String {
    let sep = if public_url.ends_with('/') { "" } else { "/" };
    format!("{public_url}{sep}{}", callback_path(provider, message_id))
}

/// A callback request as it arrived.
#[derive(Debug, Clone, Copy)]
pub struct Callback<'a> {
    /// The message (delivery job) id from the path.
    pub message_id: &'a str,
    /// The public URL it was posted to, query string included: [`callback_url`] plus `?query` when there is one
    /// (what the provider signed).
    pub url: &'a str,
    /// The request headers, names in lowercase.
    pub headers: &'a [(String, String)],
    /// The raw body.
    pub body: &'a [u8],
}

impl Callback<'_> {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Where a receipt says the message is, in the provider's words mapped to three states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptState {
    /// On its way (queued, sent to the carrier, delivered to a gateway): more receipts may follow.
    InProgress,
    /// Reached the handset (a call: answered).
    Delivered,
    /// Will not arrive (undelivered, rejected, expired, blocked; a call not answered, busy).
    Failed,
}

impl ReceiptState {
    /// The name kept in a stored receipt's `state`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptState::InProgress => "in_progress",
            ReceiptState::Delivered => "delivered",
            ReceiptState::Failed => "failed",
        }
    }
}

/// A verified receipt.
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackOutcome {
    /// What is appended to the job's `details.receipts`: `{provider, status, state, error_code, sid, …}` (`state` is
    /// [`CallbackOutcome::state`]'s name, set by [`CallbackOutcome::new`]).
    pub receipt: Value,
    /// What the provider's error code means, for people (the `gd_delivery_receipt` event's `error_hint`).
    pub hint: Option<&'static str>,
    /// What the receipt means for the message (the voice fallback acts on it).
    pub state: ReceiptState,
}

impl CallbackOutcome {
    /// A receipt in `state`; `receipt` gets its `state` name.
    pub fn new(mut receipt: Value, state: ReceiptState, hint: Option<&'static str>) -> Self {
        if let Some(o) = receipt.as_object_mut() {
            o.insert("state".into(), Value::String(state.as_str().to_owned()));
        }
        CallbackOutcome { receipt, hint, state }
    }
}

impl CallbackOutcome {
    /// The `gd_delivery_receipt` event's details that come from the receipt: `provider`, `status`, `state`, `error_code`,
    /// `sid`, and `error_hint` when there is one. The caller adds `job_id`, `channel` and `authenticator_id`.
    pub fn event_details(&self) -> Map<String, Value> {
        let mut d = Map::new();
        for k in ["provider", "status", "state", "error_code", "sid"] {
            d.insert(k.to_owned(), self.receipt.get(k).cloned().unwrap_or(Value::Null));
        }
        if let Some(h) = self.hint {
            d.insert("error_hint".into(), Value::String(h.to_owned()));
        }
        d
    }
}

/// A callback that is not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// The provider sends no receipts (answer 404).
    #[error("this provider sends no delivery receipts")]
    Unsupported,
    /// The request is not the provider's: no signature, a wrong one, no secret to check it with, or a body that
    /// cannot be what was signed (answer 403 `invalid_signature`; nothing about the job is looked at).
    #[error("the callback's signature is missing or wrong")]
    Unauthenticated,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_below_the_public_url() {
        assert_eq!(callback_url("https://a.example/", "p", "job_1"), "https://a.example/callbacks/p/status/job_1");
        assert_eq!(callback_url("https://a.example/x", "p", "j"), "https://a.example/x/callbacks/p/status/j");
    }

    #[test]
    fn a_receipt_carries_its_state() {
        let o = CallbackOutcome::new(serde_json::json!({"status": "undelivered"}), ReceiptState::Failed, None);
        assert_eq!(o.receipt["state"], "failed");
        assert_eq!(o.event_details()["state"], "failed");
        assert_eq!(ReceiptState::InProgress.as_str(), "in_progress");
    }
}
