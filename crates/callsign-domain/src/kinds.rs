//! The fixed vocabularies of the phone factor, as types: what an enrollment is ([`EnrollmentKind`]), how far it got
//! ([`EnrollmentStatus`]), and where a delivery job stands ([`JobStatus`]). (The channel a message goes out on is
//! [`crate::channel::Channel`].)
//!
//! Each is stored as exactly the text [`as_str`](JobStatus::as_str) gives (the `TEXT` columns of `enrollments` and
//! `delivery_jobs`, unchanged since before these types existed), is written the same way by serde (the APIs show
//! these names), and is read back with `FromStr` / `TryFrom<&str>`, which refuse any other text with an
//! [`UnknownName`] that names it.
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A text that is not one of a vocabulary's names. The message says which vocabulary, the text, and what was
/// expected: ``"`archived` is not a job status; expected `pending`, `running`, `sent`, `failed` or `cancelled`"``.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not {what}; expected {expected}")]
pub struct UnknownName {
    /// The vocabulary, with its article (`a job status`).
    pub what: &'static str,
    /// The text that was refused.
    pub value: String,
    /// The names it could have been.
    pub expected: &'static str,
}

/// An enum of fixed names: the enum (serde renames each variant to its name), `ALL`, `as_str`, `Display`, `FromStr`
/// and `TryFrom<&str>`, all from one list, so the names cannot drift apart.
macro_rules! names {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal, expected $expected:literal) {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every name, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            #[doc = concat!("The stored and displayed name: ", $expected, ".")]
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            /// Exactly one of the names (case matters: they are stored and shown lowercase).
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(UnknownName { what: $what, value: other.to_owned(), expected: $expected }),
                }
            }
        }

        impl TryFrom<&str> for $name {
            type Error = UnknownName;

            fn try_from(s: &str) -> Result<Self, Self::Error> {
                s.parse()
            }
        }
    };
}

names! {
    /// What an enrollment (an MFA authenticator) is. Its API ids are `<type>|<id>`, with `type` this name for a
    /// recovery code and the channel for a phone (`sms|dev_…`, `voice|dev_…`).
    pub enum EnrollmentKind ("an enrollment kind", expected "`phone` or `recovery-code`") {
        /// A phone that receives codes by SMS or voice call.
        Phone = "phone",
        /// A recovery code, created with a user's first phone.
        RecoveryCode = "recovery-code",
    }
}

names! {
    /// How far an enrollment got.
    pub enum EnrollmentStatus ("an enrollment status", expected "`pending` or `confirmed`") {
        /// Started; not verified yet (a phone until its first right code; a recovery code until that phone).
        Pending = "pending",
        /// Verified: usable to sign in.
        Confirmed = "confirmed",
    }
}

names! {
    /// Where a delivery job stands.
    pub enum JobStatus ("a job status", expected "`pending`, `running`, `sent`, `failed` or `cancelled`") {
        /// Waiting to be claimed (new, or back after a retryable failure).
        Pending = "pending",
        /// Claimed by a worker, under a lease.
        Running = "running",
        /// Terminal: the provider accepted the message.
        Sent = "sent",
        /// Terminal: given up on.
        Failed = "failed",
        /// Terminal: no longer wanted, nothing sent (a standby voice fallback whose SMS was delivered, or whose
        /// code was used or expired first).
        Cancelled = "cancelled",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T>(all: &[T], as_str: fn(T) -> &'static str)
    where
        T: Copy + fmt::Debug + PartialEq + fmt::Display + FromStr<Err = UnknownName> + Serialize,
        T: for<'a> TryFrom<&'a str, Error = UnknownName> + serde::de::DeserializeOwned,
    {
        for &v in all {
            let name = as_str(v);
            assert_eq!(name.parse::<T>(), Ok(v));
            assert_eq!(T::try_from(name), Ok(v));
            assert_eq!(v.to_string(), name);
            assert_eq!(serde_json::to_value(v).unwrap(), serde_json::json!(name));
            assert_eq!(serde_json::from_value::<T>(serde_json::json!(name)).unwrap(), v);
        }
    }

    #[test]
    fn names_are_the_stored_strings() {
        // These are the TEXT values in the databases: they must never change.
        let kinds: Vec<&str> = EnrollmentKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(kinds, ["phone", "recovery-code"]);
        let statuses: Vec<&str> = EnrollmentStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(statuses, ["pending", "confirmed"]);
        let jobs: Vec<&str> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(jobs, ["pending", "running", "sent", "failed", "cancelled"]);
    }

    #[test]
    fn names_round_trip() {
        round_trips(EnrollmentKind::ALL, EnrollmentKind::as_str);
        round_trips(EnrollmentStatus::ALL, EnrollmentStatus::as_str);
        round_trips(JobStatus::ALL, JobStatus::as_str);
    }

    #[test]
    fn other_text_is_refused_and_named() {
        let e = "archived".parse::<JobStatus>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "`archived` is not a job status; expected `pending`, `running`, `sent`, `failed` or `cancelled`"
        );
        let e = EnrollmentKind::try_from("recovery_code").unwrap_err();
        assert_eq!(e.to_string(), "`recovery_code` is not an enrollment kind; expected `phone` or `recovery-code`");
        assert_eq!(e.value, "recovery_code");
        assert!("Confirmed".parse::<EnrollmentStatus>().is_err(), "case matters");
        assert!("".parse::<EnrollmentStatus>().is_err());
        assert!(serde_json::from_value::<JobStatus>(serde_json::json!("done")).is_err());
        assert!(serde_json::from_value::<EnrollmentKind>(serde_json::json!("RecoveryCode")).is_err());
    }
}
