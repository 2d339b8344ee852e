//! Password hashing with argon2id, always off the async runtime, and never more at once than the machine can bear.
//!
//! Each hash takes 19 MiB and a core for tens of milliseconds. Without a bound, a login flood queues hundreds of
//! them on the blocking pool and the process's memory grows with the queue. [`Passwords`] admits at most
//! `password_hash_concurrency` at a time; a request that finds them all busy waits up to `password_hash_queue_ms`
//! for a turn and is then refused with [`Busy`] (the HTTP layers answer 503 with `Retry-After`).
//!
//! The 19 MiB of working memory are not allocated per hash: each slot reuses one buffer from a pool of at most
//! `password_hash_concurrency` (kept for the life of the process). Allocated per hash, as `argon2`'s own
//! `hash_password` does, the blocks came from whichever blocking-pool thread ran the hash, glibc kept them in that
//! thread's arena after the free, and a server that had hashed a few thousand passwords held 500 MB or more
//! (docs/BENCHMARKS.md, "Memory").
use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use std::sync::Mutex;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// OWASP's argon2id recommendation: m=19 MiB, t=2, p=1.
fn params() -> Params {
    Params::new(19 * 1024, 2, 1, None).unwrap_or_default()
}

/// A hash of a random password, verified against when the user does not exist, so both paths cost the same.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt =
        SaltString::from_b64("c2FsdHNhbHRzYWx0c2FsdA").unwrap_or_else(|_| SaltString::generate(&mut rand::rngs::OsRng));
    let mut memory = Vec::new();
    hash_with(b"not-a-real-password-0", &salt, &mut memory).unwrap_or_default()
});

/// Grow `memory` to at least `blocks` blocks (it is only ever grown, so a pooled buffer is allocated once).
fn at_least(memory: &mut Vec<Block>, blocks: usize) -> &mut [Block] {
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    &mut memory[..blocks]
}

/// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) of `password` with the current parameters, computed in
/// `memory`: the same string `argon2`'s `PasswordHasher::hash_password` gives (a test checks it).
fn hash_with(password: &[u8], salt: &SaltString, memory: &mut Vec<Block>) -> crate::BoxResult<String> {
    let params = params();
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_buf).map_err(|e| e.to_string())?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let blocks = params.block_count();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, salt_bytes, &mut out, at_least(memory, blocks))
        .map_err(|e| e.to_string())?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the stored PHC string `phc` (any argon2 variant, version and parameters), computed in
/// `memory` and compared in constant time. Anything unreadable is a mismatch.
fn verify_with(password: &[u8], phc: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(stored) = PasswordHash::new(phc) else { return false };
    let (Ok(algorithm), Some(expected), Some(salt)) = (Algorithm::try_from(stored.algorithm), stored.hash, stored.salt)
    else {
        return false;
    };
    let version = match stored.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&stored) else { return false };
    let mut salt_buf = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_buf) else { return false };
    let mut out = vec![0u8; expected.len()];
    let blocks = params.block_count();
    let computed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password,
        salt_bytes,
        &mut out,
        at_least(memory, blocks),
    );
    computed.is_ok() && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

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
    /// The working memory of the hashes: at most one buffer per slot, reused (see the module's comment).
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    queue_wait: Duration,
    in_flight: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    refused: AtomicUsize,
}

/// Counts a hash in flight for as long as it lives (it moves into the blocking task, with the slot's permit), and
/// lends it a working-memory buffer from the pool, given back when it ends.
struct InFlight {
    count: Arc<AtomicUsize>,
    pool: Arc<Mutex<Vec<Vec<Block>>>>,
    memory: Vec<Block>,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let memory = std::mem::take(&mut self.memory);
        if let Ok(mut pool) = self.pool.lock() {
            pool.push(memory);
        }
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Passwords {
    pub fn new(concurrency: usize, queue_wait: Duration) -> Self {
        Passwords {
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            memory: Arc::new(Mutex::new(Vec::new())),
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
        // A slot holder finds a buffer (or none yet, the first few times): there are never more buffers than slots.
        let memory = self.memory.lock().ok().and_then(|mut pool| pool.pop()).unwrap_or_default();
        Ok(InFlight { count: self.in_flight.clone(), pool: self.memory.clone(), memory, _slot: permit })
    }

    /// Hash `password` with a salt made of `salt_bytes`.
    pub async fn hash(&self, password: String, salt_bytes: [u8; 16]) -> Result<crate::BoxResult<String>, Busy> {
        let mut slot = self.slot().await?;
        let job = tokio::task::spawn_blocking(move || -> crate::BoxResult<String> {
            let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| e.to_string())?;
            hash_with(password.as_bytes(), &salt, &mut slot.memory)
        });
        Ok(match job.await {
            Ok(r) => r,
            Err(e) => Err(e.into()),
        })
    }

    /// Verify `password` against `stored`; with `None` (unknown user) verify against a dummy hash and return false.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, Busy> {
        let mut slot = self.slot().await?;
        let job = tokio::task::spawn_blocking(move || {
            let known = stored.is_some();
            let phc = stored.unwrap_or_else(|| DUMMY_HASH.clone());
            let ok = verify_with(password.as_bytes(), &phc, &mut slot.memory);
            known && ok
        });
        Ok(job.await.unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pooled_hash_is_the_one_argon2_itself_gives_and_verifies() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let salt = SaltString::encode_b64(&[9; 16]).unwrap();
        let mut memory = Vec::new();
        let ours = hash_with(b"Correct-horse-1", &salt, &mut memory).unwrap();
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, params());
        let theirs = reference.hash_password(b"Correct-horse-1", &salt).unwrap().to_string();
        assert_eq!(ours, theirs);
        assert!(reference.verify_password(b"Correct-horse-1", &PasswordHash::new(&ours).unwrap()).is_ok());
        // The buffer is reused: a second hash in the same memory gives the same answer.
        assert_eq!(memory.len(), params().block_count());
        assert_eq!(hash_with(b"Correct-horse-1", &salt, &mut memory).unwrap(), theirs);
        // Hashes made with other parameters or variants (an import) still verify, in the same buffer (grown).
        let other = Argon2::new(Algorithm::Argon2i, Version::V0x10, Params::new(32 * 1024, 1, 2, Some(24)).unwrap());
        let imported = other.hash_password(b"pw", &salt).unwrap().to_string();
        assert!(verify_with(b"pw", &imported, &mut memory));
        assert!(!verify_with(b"pW", &imported, &mut memory));
        assert!(!verify_with(b"pw", "$bcrypt$nonsense", &mut memory));
        assert!(!verify_with(b"pw", "", &mut memory));
    }

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
        // The working memory: one buffer per slot at most, each the 19 MiB a hash needs, kept for the next.
        let pool = p.memory.lock().unwrap();
        assert!(!pool.is_empty() && pool.len() <= 2, "{} buffers for 2 slots", pool.len());
        assert!(pool.iter().all(|m| m.len() == params().block_count()));
    }
}
