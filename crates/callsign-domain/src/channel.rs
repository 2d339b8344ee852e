//! The channels a phone message goes out on.
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How a one-time code reaches a phone: a text message or a voice call. Serialised as Auth0 writes it in the
/// Guardian API (`sms`, `voice`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// A text message.
    Sms,
    /// A voice call that reads the message out.
    Voice,
}

impl Channel {
    /// Every channel, in the order the Guardian API lists them (`sms`, `voice`).
    pub const ALL: [Channel; 2] = [Channel::Sms, Channel::Voice];

    /// `sms` or `voice`.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Voice => "voice",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A channel name that is neither `sms` nor `voice`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a channel; expected `sms` or `voice`")]
pub struct UnknownChannel(pub String);

impl FromStr for Channel {
    type Err = UnknownChannel;

    /// `sms` or `voice`, exactly (lowercase, as stored and as the APIs write them).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sms" => Ok(Channel::Sms),
            "voice" => Ok(Channel::Voice),
            other => Err(UnknownChannel(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>(), Ok(c));
            assert_eq!(serde_json::to_value(c).unwrap(), serde_json::json!(c.as_str()));
            assert_eq!(serde_json::from_value::<Channel>(serde_json::json!(c.as_str())).unwrap(), c);
            assert_eq!(c.to_string(), c.as_str());
        }
        assert!("SMS".parse::<Channel>().is_err());
        assert!("text".parse::<Channel>().is_err());
        assert!(serde_json::from_value::<Channel>(serde_json::json!("email")).is_err());
    }
}
