//! One-time codes: 6 digits from the injected CSPRNG, stored only as a keyed hash, compared in constant time;
//! and recovery codes (24 upper-case alphanumerics, stored as a token hash).
use crate::hash::{constant_time_eq, keyed_hash};
use crate::rng::{self, RandomSource};

pub const CODE_DIGITS: usize = 6;
pub const RECOVERY_CODE_LEN: usize = 24;
const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// A freshly generated code. Its only way out is [`OtpCode::expose`], for the message that delivers it.
pub struct OtpCode(String);

impl std::fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OtpCode([redacted])")
    }
}

impl OtpCode {
    pub fn generate(rng: &dyn RandomSource) -> Self {
        Self(rng::from_alphabet(rng, rng::DIGITS, CODE_DIGITS))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The keyed hash stored in place of the code. `binding` ties it to one challenge, so equal codes of two
    /// challenges hash differently.
    pub fn hash(&self, key: &[u8], binding: &str) -> String {
        hash_code(key, binding, &self.0)
    }
}

fn hash_code(key: &[u8], binding: &str, code: &str) -> String {
    keyed_hash(key, format!("{binding}:{code}").as_bytes())
}

/// Whether `presented` (as typed by the user: spaces and dashes ignored) matches `stored`.
pub fn verify_code(key: &[u8], binding: &str, presented: &str, stored: &str) -> bool {
    let cleaned: String = presented.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    if cleaned.len() != CODE_DIGITS || !cleaned.bytes().all(|b| b.is_ascii_digit()) {
        // Still do the work, so a malformed code costs the same as a wrong one.
        let _ = constant_time_eq(hash_code(key, binding, "000000").as_bytes(), stored.as_bytes());
        return false;
    }
    constant_time_eq(hash_code(key, binding, &cleaned).as_bytes(), stored.as_bytes())
}

pub fn generate_recovery_code(rng: &dyn RandomSource) -> String {
    rng::from_alphabet(rng, UPPER_ALNUM, RECOVERY_CODE_LEN)
}

/// Recovery codes are compared upper-cased, without spaces or dashes.
pub fn normalize_recovery_code(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace() && *c != '-').collect::<String>().to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeededRandom;

    #[test]
    fn codes_are_six_digits_and_verify_only_with_key_and_binding() {
        let r = SeededRandom::new(5);
        let c = OtpCode::generate(&r);
        assert_eq!(c.expose().len(), 6);
        assert!(c.expose().bytes().all(|b| b.is_ascii_digit()));
        let h = c.hash(b"key", "ch1");
        assert!(!h.contains(c.expose()));
        assert!(verify_code(b"key", "ch1", c.expose(), &h));
        let spaced = format!("{} {}", &c.expose()[..3], &c.expose()[3..]);
        assert!(verify_code(b"key", "ch1", &spaced, &h));
        assert!(!verify_code(b"other", "ch1", c.expose(), &h));
        assert!(!verify_code(b"key", "ch2", c.expose(), &h));
        assert!(!verify_code(b"key", "ch1", "12345", &h));
        assert!(!format!("{c:?}").contains(c.expose()));
    }

    #[test]
    fn recovery_codes() {
        let code = generate_recovery_code(&SeededRandom::new(6));
        assert_eq!(code.len(), 24);
        assert!(code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        assert_eq!(normalize_recovery_code(" abcd-efgh "), "ABCDEFGH");
    }
}
