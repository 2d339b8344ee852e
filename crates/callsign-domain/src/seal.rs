//! Encryption at rest for reversible secrets: AES-256-GCM with a key id, so keys can rotate.
//!
//! A keyring is written as text, one key a line, `<key-id>:<base64 of 32 bytes>`; the first line is the
//! active key (used to seal), the others only open what was sealed under them before a rotation.
use std::collections::BTreeMap;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::rng::{self, RandomSource};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("no encryption key with id `{0}` is configured")]
    UnknownKey(String),
    #[error("the sealed value could not be decrypted (wrong key or tampered data)")]
    Decrypt,
    #[error("invalid keyring: {0}")]
    Invalid(String),
}

/// A sealed value as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

pub struct Keyring {
    active: String,
    keys: BTreeMap<String, Zeroizing<[u8; 32]>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.active)
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn valid_key_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Keyring {
    /// Parse keyring lines; blank lines and `#` comments are ignored.
    pub fn parse(text: &str) -> Result<Self, SealError> {
        let mut active = None;
        let mut keys = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (id, b64) = line
                .split_once(':')
                .ok_or_else(|| SealError::Invalid(format!("line {}: expected `<key-id>:<base64 key>`", n + 1)))?;
            let id = id.trim();
            if !valid_key_id(id) {
                return Err(SealError::Invalid(format!(
                    "line {}: key id must be 1-64 letters, digits, `-` or `_`",
                    n + 1
                )));
            }
            let raw = Zeroizing::new(
                STANDARD
                    .decode(b64.trim())
                    .map_err(|_| SealError::Invalid(format!("line {}: the key is not valid base64", n + 1)))?,
            );
            let key: [u8; 32] = raw.as_slice().try_into().map_err(|_| {
                SealError::Invalid(format!("line {}: the key must be 32 bytes (256 bits), got {}", n + 1, raw.len()))
            })?;
            if keys.insert(id.to_owned(), Zeroizing::new(key)).is_some() {
                return Err(SealError::Invalid(format!("line {}: key id `{id}` appears twice", n + 1)));
            }
            active.get_or_insert_with(|| id.to_owned());
        }
        let active = active.ok_or_else(|| SealError::Invalid("no key found".into()))?;
        Ok(Self { active, keys })
    }

    /// A fresh random key line, `<id>:<base64>`.
    pub fn generate_line(rng: &dyn RandomSource, id: &str) -> String {
        let key = Zeroizing::new(rng::bytes::<32>(rng));
        format!("{id}:{}", STANDARD.encode(key.as_slice()))
    }

    pub fn active_key_id(&self) -> &str {
        &self.active
    }

    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    fn cipher(&self, id: &str) -> Result<Aes256Gcm, SealError> {
        let key = self.keys.get(id).ok_or_else(|| SealError::UnknownKey(id.to_owned()))?;
        Aes256Gcm::new_from_slice(key.as_slice()).map_err(|_| SealError::Invalid("bad key length".into()))
    }

    /// Seal `plaintext` under the active key. `context` (e.g. the secret's name) is bound as associated data,
    /// so a sealed value copied to another row does not open there.
    pub fn seal(&self, rng: &dyn RandomSource, context: &str, plaintext: &[u8]) -> Result<Sealed, SealError> {
        let nonce = rng::bytes::<12>(rng);
        let ciphertext = self
            .cipher(&self.active)?
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: context.as_bytes() })
            .map_err(|_| SealError::Decrypt)?;
        Ok(Sealed { key_id: self.active.clone(), nonce: nonce.to_vec(), ciphertext })
    }

    pub fn open(&self, context: &str, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if sealed.nonce.len() != 12 {
            return Err(SealError::Decrypt);
        }
        self.cipher(&sealed.key_id)?
            .decrypt(Nonce::from_slice(&sealed.nonce), Payload { msg: &sealed.ciphertext, aad: context.as_bytes() })
            .map(Zeroizing::new)
            .map_err(|_| SealError::Decrypt)
    }

    /// Whether `sealed` should be re-encrypted under the active key.
    pub fn is_stale(&self, sealed: &Sealed) -> bool {
        sealed.key_id != self.active
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeededRandom;

    fn ring(lines: &[String]) -> Keyring {
        Keyring::parse(&lines.join("\n")).unwrap()
    }

    #[test]
    fn seal_open_roundtrip_and_context_binding() {
        let r = SeededRandom::new(1);
        let k = ring(&[Keyring::generate_line(&r, "k1")]);
        let s = k.seal(&r, "twilio", b"auth-token").unwrap();
        assert_eq!(s.key_id, "k1");
        assert_ne!(s.ciphertext, b"auth-token");
        assert_eq!(k.open("twilio", &s).unwrap().as_slice(), b"auth-token");
        assert_eq!(k.open("other", &s), Err(SealError::Decrypt));
        let mut tampered = s.clone();
        tampered.ciphertext[0] ^= 1;
        assert_eq!(k.open("twilio", &tampered), Err(SealError::Decrypt));
    }

    #[test]
    fn rotation_keeps_old_keys_readable() {
        let r = SeededRandom::new(2);
        let old_line = Keyring::generate_line(&r, "old");
        let old = ring(std::slice::from_ref(&old_line));
        let s = old.seal(&r, "x", b"v").unwrap();
        let rotated = ring(&[Keyring::generate_line(&r, "new"), old_line]);
        assert_eq!(rotated.active_key_id(), "new");
        assert!(rotated.is_stale(&s));
        assert_eq!(rotated.open("x", &s).unwrap().as_slice(), b"v");
        let resealed = rotated.seal(&r, "x", b"v").unwrap();
        assert!(!rotated.is_stale(&resealed));
        assert_eq!(old.open("x", &resealed), Err(SealError::UnknownKey("new".into())));
    }

    #[test]
    fn parse_errors_are_specific() {
        assert!(matches!(Keyring::parse(""), Err(SealError::Invalid(m)) if m.contains("no key")));
        assert!(matches!(Keyring::parse("k1:YWJj"), Err(SealError::Invalid(m)) if m.contains("32 bytes")));
        assert!(matches!(Keyring::parse("nocolon"), Err(SealError::Invalid(m)) if m.contains("line 1")));
        let l = Keyring::generate_line(&SeededRandom::new(3), "a");
        assert!(matches!(Keyring::parse(&format!("{l}\n{l}")), Err(SealError::Invalid(m)) if m.contains("twice")));
    }

    #[test]
    fn debug_never_shows_key_material() {
        let l = Keyring::generate_line(&SeededRandom::new(4), "a");
        let k = Keyring::parse(&l).unwrap();
        let b64 = l.split_once(':').unwrap().1;
        assert!(!format!("{k:?}").contains(b64));
    }
}
