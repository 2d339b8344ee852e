//! Identifier formats, following Auth0's where it has one.
use crate::clock::Timestamp;
use crate::rng::{self, RandomSource};

/// Client ids: 32 alphanumerics, like Auth0's.
pub fn client_id(rng: &dyn RandomSource) -> String {
    rng::from_alphabet(rng, rng::ALNUM, 32)
}

/// Client secrets: 64 characters of base64url-ish alphanumerics (~380 bits).
pub fn client_secret(rng: &dyn RandomSource) -> String {
    rng::from_alphabet(rng, rng::ALNUM, 64)
}

/// Database users: `auth0|` + 24 hex digits (Auth0 uses an ObjectId-shaped id).
pub fn user_id(rng: &dyn RandomSource) -> String {
    format!("auth0|{}", rng::from_alphabet(rng, rng::HEX, 24))
}

/// Client grants: `cgr_` + 16 alphanumerics.
pub fn client_grant_id(rng: &dyn RandomSource) -> String {
    format!("cgr_{}", rng::from_alphabet(rng, rng::ALNUM, 16))
}

/// Log ids: 56 decimal digits starting `900`, then the timestamp (sortable by time), then random digits.
pub fn log_id(rng: &dyn RandomSource, at: Timestamp) -> String {
    let ts = format!("{:017}", at.millis().max(0));
    let tail = rng::from_alphabet(rng, rng::DIGITS, 56 - 3 - ts.len());
    format!("900{ts}{tail}")
}

/// Signing key ids.
pub fn key_id(rng: &dyn RandomSource) -> String {
    rng::from_alphabet(rng, rng::ALNUM, 22)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeededRandom;

    #[test]
    fn formats() {
        let r = SeededRandom::new(9);
        assert_eq!(client_id(&r).len(), 32);
        let u = user_id(&r);
        assert!(u.starts_with("auth0|") && u.len() == 30);
        let l = log_id(&r, Timestamp(1_700_000_000_000));
        assert_eq!(l.len(), 56);
        assert!(l.starts_with("90000001700000000000"));
        assert!(l.bytes().all(|b| b.is_ascii_digit()));
        assert!(log_id(&r, Timestamp(2)) < log_id(&r, Timestamp(1_000)));
    }
}
