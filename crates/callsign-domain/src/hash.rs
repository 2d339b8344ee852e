//! Hashes for tokens and secrets that are checked, never read back.
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// SHA-256 of a high-entropy token (client secrets, mfa tokens, tickets), hex-encoded.
/// Good enough because the input is random and long: no salt or slow hash is needed.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compare a presented token with a stored [`token_hash`] in constant time.
pub fn token_matches(token: &str, stored_hash: &str) -> bool {
    let h = token_hash(token);
    h.as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

/// HMAC-SHA-256 keyed hash, hex-encoded (for low-entropy values such as OTP codes).
pub fn keyed_hash(key: &[u8], msg: &[u8]) -> String {
    #[allow(clippy::expect_used)] // HMAC accepts keys of any length; this cannot fail
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("hmac takes any key length");
    mac.update(msg);
    hex::encode(mac.finalize().into_bytes())
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hash_roundtrip() {
        let h = token_hash("abc");
        assert_eq!(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(token_matches("abc", &h));
        assert!(!token_matches("abd", &h));
    }

    #[test]
    fn keyed_hash_depends_on_key() {
        assert_ne!(keyed_hash(b"k1", b"123456"), keyed_hash(b"k2", b"123456"));
    }
}
