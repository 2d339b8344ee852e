//! What a provider is asked to deliver.
use std::fmt;

use callsign_domain::Channel;
use callsign_domain::phone::PhoneNumber;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// One message to deliver: who to, on which channel, what it says, and what only the request knew.
///
/// No `Debug` that prints the text (it holds the code) or the full number: `{:?}` shows the id, the channel, the
/// masked number, the locale and the sender.
#[derive(Clone)]
pub struct Message {
    /// The delivery job's id: the idempotency key providers pass on (the custom webhook's `webhook-id`, the same on
    /// every retry) and the correlation key of delivery receipts (`/callbacks/{provider}/status/{id}`).
    pub id: String,
    /// SMS or voice.
    pub channel: Channel,
    /// The recipient, parsed: E.164, country, number type (for routing).
    pub to: PhoneNumber,
    /// The rendered SMS text, or the voice script (what is read out; the code spelled digit by digit).
    pub text: String,
    /// The language the text was rendered in (`en`, `fr-CA`…); voice providers pick their voice from it.
    pub locale: String,
    /// A sender that overrides the provider's configured one (the template's `from`); `None`: the provider's own.
    pub from: Option<String>,
    /// What only the request knew, for providers that forward it (the custom webhook's event).
    pub context: MessageContext,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("id", &self.id)
            .field("channel", &self.channel)
            .field("to", &self.to)
            .field("text", &"[redacted]")
            .field("locale", &self.locale)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// Why a code is sent (the custom webhook's `message_options.action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// `enrollment`: from `POST /mfa/associate` (or the enrollment pages).
    #[serde(rename = "enrollment")]
    Enrollment,
    /// `second-factor-authentication`: from `POST /mfa/challenge` (or the code page of a login).
    #[serde(rename = "second-factor-authentication")]
    SecondFactorAuthentication,
}

impl Action {
    /// The name the custom webhook's event carries.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Enrollment => "enrollment",
            Action::SecondFactorAuthentication => "second-factor-authentication",
        }
    }
}

/// What a message's request knew that a provider may need: the custom webhook's Send Phone Message event is built
/// from it. Captured when the code is sent (the request is gone by the time a worker delivers) and sealed with the
/// rest of the job's payload, so the code is never at rest in clear. Every member defaults, so payloads written
/// before a member existed still open.
///
/// No `Debug` that shows the code: `{:?}` prints `[redacted]` for it, and the user object only as present or not.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MessageContext {
    /// Why the code is sent; `None` for test messages.
    pub action: Option<Action>,
    /// The one-time code in clear (the webhook's `message_options.code`); `None` for test messages.
    #[serde(with = "zeroizing_opt")]
    pub code: Option<Zeroizing<String>>,
    /// The application the login is for.
    pub client_id: Option<String>,
    /// Its name.
    pub client_name: Option<String>,
    /// The address the request came from.
    pub ip: Option<String>,
    /// The request's `User-Agent`.
    pub user_agent: Option<String>,
    /// The language the message was rendered in (the requested one when the tenant enables it, else the tenant's
    /// default); `None`: the message's [`Message::locale`].
    pub language: Option<String>,
    /// The user's id (the event's `{"user_id": …}` when [`MessageContext::user`] is `None`).
    pub user_id: Option<String>,
    /// The Auth0-shaped `user` object of the event (Auth0's Actions user: `user_id`, `email`, `identities`…),
    /// built by the caller from the user record when the message is sent; `None`: `{"user_id": user_id}`.
    pub user: Option<serde_json::Value>,
    /// The tenant's friendly name (`tenant.friendly_name` of the event); the caller defaults it (`Callsign`).
    pub tenant_friendly_name: String,
}

impl fmt::Debug for MessageContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageContext")
            .field("action", &self.action)
            .field("code", &self.code.as_ref().map(|_| "[redacted]"))
            .field("client_id", &self.client_id)
            .field("client_name", &self.client_name)
            .field("ip", &self.ip)
            .field("user_agent", &self.user_agent)
            .field("language", &self.language)
            .field("user_id", &self.user_id)
            .field("user", &self.user.as_ref().map(|_| "{…}"))
            .field("tenant_friendly_name", &self.tenant_friendly_name)
            .finish()
    }
}

/// Serde for `Option<Zeroizing<String>>` (zeroize's own serde support is behind a feature the workspace does not
/// turn on): a plain string or null.
mod zeroizing_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use zeroize::Zeroizing;

    pub fn serialize<S: Serializer>(v: &Option<Zeroizing<String>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(z) => s.serialize_some(z.as_str()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Zeroizing<String>>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.map(Zeroizing::new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_round_trips_and_hides_the_code() {
        let ctx = MessageContext {
            action: Some(Action::Enrollment),
            code: Some(Zeroizing::new("123456".into())),
            client_id: Some("cid".into()),
            tenant_friendly_name: "Acme".into(),
            ..Default::default()
        };
        let v = serde_json::to_value(&ctx).unwrap();
        assert_eq!(v["action"], "enrollment");
        assert_eq!(v["code"], "123456");
        let back: MessageContext = serde_json::from_value(v).unwrap();
        assert_eq!(back.code.as_deref().map(String::as_str), Some("123456"));
        assert_eq!(back.action, Some(Action::Enrollment));
        assert!(!format!("{back:?}").contains("123456"));
        // Payloads from before a member existed still open.
        let old: MessageContext = serde_json::from_value(serde_json::json!({"action": null})).unwrap();
        assert!(old.code.is_none() && old.action.is_none());
    }

    #[test]
    fn message_debug_hides_text_and_number() {
        let m = Message {
            id: "job_1".into(),
            channel: Channel::Sms,
            to: PhoneNumber::parse("+14155552671").unwrap(),
            text: "123456 is your code".into(),
            locale: "en".into(),
            from: None,
            context: MessageContext::default(),
        };
        let d = format!("{m:?}");
        assert!(!d.contains("123456") && !d.contains("415555"), "{d}");
    }
}
