//! Password hashing with argon2id, always off the async runtime, and never more at once than the machine can bear.
//!
//! Each hash takes 19 MiB and a core for tens of milliseconds. Without a bound, a login flood queues hundreds of
//! them on the blocking pool and the process's memory grows with the queue. [`Passwords`] admits at most
//! `password_hash_concurrency` at a time; a request that finds them all busy waits up to `password_hash_queue_ms`
//! for a turn and is then refused with [`Busy`] (the HTTP layers answer 503 with `Retry-After`).
use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

fn hasher() -> Argon2<'static> {
    // OWASP's argon2id recommendation: m=19 MiB, t=2, p=1.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A hash of a random password, verified against when the user does not exist, so both paths cost the same.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt =
        SaltString::from_b64("c2FsdHNhbHRzYWx0c2FsdA").unwrap_or_else(|_| SaltString::generate(&mut rand::rngs::OsRng));
    hasher().hash_password(b"not-a-real-password-0", &salt).map(|h| h.to_string()).unwrap_or_default()
});

/// Every hashing slot was busy for the whole queue wait: try again shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks in progress; try again shortly")]
pub struct Busy;

/// How long a refused caller is told to wait (`Retry-After`, seconds).
pub const RETRY_AFTER_SECS: u32 = 1;

/// The bounded password hasher, one per process (in the app state).
#[derive(Debug)]
pub struct Passwords {
    slots: Arc<Semaphore>,
    queue_wait: Duration,
    in_flight: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    refused: AtomicUsize,
}

/// Counts a hash in flight for as long as it lives (it moves into the blocking task, with the slot's permit).
struct InFlight {
    count: Arc<AtomicUsize>,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Passwords {
    pub fn new(concurrency: usize, queue_wait: Duration) -> Self {
        Passwords {
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            queue_wait,
            in_flight: Arc::new(AtomicUsize::new(0)),
            peak: Arc::new(AtomicUsize::new(0)),
            refused: AtomicUsize::new(0),
        }
    }

    /// Hashes being computed now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// The most hashes ever computed at once in this process.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Requests refused with [`Busy`] so far.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    /// Wait (bounded) for a slot. The permit travels into the blocking task, so a request that gives up (its
    /// client went away) cannot free the slot while its hash still runs.
    async fn slot(&self) -> Result<InFlight, Busy> {
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(p) => Ok(p),
            Err(_) if self.queue_wait.is_zero() => Err(Busy),
            Err(_) => match tokio::time::timeout(self.queue_wait, self.slots.clone().acquire_owned()).await {
                Ok(Ok(p)) => Ok(p),
                _ => Err(Busy),
            },
        };
        let Ok(permit) = permit else {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(Busy);
        };
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        Ok(InFlight { count: self.in_flight.clone(), _slot: permit })
    }

    /// Hash `password` with a salt made of `salt_bytes`.
    pub async fn hash(&self, password: String, salt_bytes: [u8; 16]) -> Result<crate::BoxResult<String>, Busy> {
        let slot = self.slot().await?;
        let job = tokio::task::spawn_blocking(move || -> crate::BoxResult<String> {
            let _slot = slot;
            let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| e.to_string())?;
            Ok(hasher().hash_password(password.as_bytes(), &salt).map_err(|e| e.to_string())?.to_string())
        });
        Ok(match job.await {
            Ok(r) => r,
            Err(e) => Err(e.into()),
        })
    }

    /// Verify `password` against `stored`; with `None` (unknown user) verify against a dummy hash and return false.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, Busy> {
        let slot = self.slot().await?;
        let job = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let known = stored.is_some();
            let phc = stored.unwrap_or_else(|| DUMMY_HASH.clone());
            let ok = PasswordHash::new(&phc).is_ok_and(|h| hasher().verify_password(password.as_bytes(), &h).is_ok());
            known && ok
        });
        Ok(job.await.unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let p = Passwords::new(2, Duration::from_secs(5));
        let h = p.hash("Correct-horse-1".into(), [7; 16]).await.unwrap().unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(p.verify("Correct-horse-1".into(), Some(h.clone())).await.unwrap());
        assert!(!p.verify("wrong".into(), Some(h)).await.unwrap());
        assert!(!p.verify("not-a-real-password-0".into(), None).await.unwrap());
        assert_eq!(p.in_flight(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn never_more_than_the_bound_at_once_and_the_rest_are_refused_after_the_wait() {
        let p = Arc::new(Passwords::new(2, Duration::from_millis(1)));
        let tasks: Vec<_> = (0..24)
            .map(|_| {
                let p = p.clone();
                tokio::spawn(async move { p.verify("x".into(), None).await })
            })
            .collect();
        let mut busy = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(ok) => assert!(!ok),
                Err(Busy) => busy += 1,
            }
        }
        assert!(p.peak() <= 2, "peak {}", p.peak());
        assert!(busy > 0, "24 checks at once with 2 slots and a 1 ms wait refuse some");
        assert_eq!(p.refused(), busy);
        assert_eq!(p.in_flight(), 0);
    }
}
