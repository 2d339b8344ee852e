//! Randomness is injected too: production uses the OS CSPRNG, tests may use a seeded one.
use std::sync::Mutex;

use rand::{RngCore, SeedableRng};

pub trait RandomSource: Send + Sync + std::fmt::Debug {
    fn fill(&self, buf: &mut [u8]);
}

#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        rand::rngs::OsRng.fill_bytes(buf);
    }
}

/// Deterministic, for tests only.
#[derive(Debug)]
pub struct SeededRandom(Mutex<rand::rngs::StdRng>);

impl SeededRandom {
    pub fn new(seed: u64) -> Self {
        Self(Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)))
    }
}

impl RandomSource for SeededRandom {
    fn fill(&self, buf: &mut [u8]) {
        match self.0.lock() {
            Ok(mut g) => g.fill_bytes(buf),
            Err(poisoned) => poisoned.into_inner().fill_bytes(buf),
        }
    }
}

/// Helpers every id and token generator shares.
pub fn bytes<const N: usize>(rng: &dyn RandomSource) -> [u8; N] {
    let mut b = [0u8; N];
    rng.fill(&mut b);
    b
}

/// Uniformly random characters from `alphabet` (rejection sampling, no modulo bias).
pub fn from_alphabet(rng: &dyn RandomSource, alphabet: &[u8], len: usize) -> String {
    debug_assert!(!alphabet.is_empty() && alphabet.len() <= 256);
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        rng.fill(&mut buf);
        for &b in &buf {
            if (b as usize) < limit {
                out.push(alphabet[b as usize % alphabet.len()] as char);
                if out.len() == len {
                    break;
                }
            }
        }
    }
    out
}

pub const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub const HEX: &[u8] = b"0123456789abcdef";
pub const DIGITS: &[u8] = b"0123456789";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabet_output_has_requested_length_and_charset() {
        let r = SeededRandom::new(7);
        let s = from_alphabet(&r, DIGITS, 6);
        assert_eq!(s.len(), 6);
        assert!(s.bytes().all(|b| b.is_ascii_digit()));
    }

    #[test]
    fn seeded_is_repeatable_and_os_is_not_constant() {
        assert_eq!(from_alphabet(&SeededRandom::new(1), ALNUM, 20), from_alphabet(&SeededRandom::new(1), ALNUM, 20));
        assert_ne!(from_alphabet(&OsRandom, ALNUM, 32), from_alphabet(&OsRandom, ALNUM, 32));
    }
}
