//! [`MemoryLimiter`]: a second [`RateLimiter`], next to the stores' SQL one, to show (and test) that the rate limits
//! can come from somewhere else than the store.
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use callsign_domain::Timestamp;
use callsign_store::bucket::{self, Level};
use callsign_store::{BackoffSpec, BackoffState, BucketSpec, BucketState, RateLimiter, StoreResult};

/// Token buckets in this process's memory, with the same arithmetic as the stores ([`callsign_store::bucket`]).
/// Every call holds one lock for its read-refill-write, so concurrent callers cannot both spend the last token;
/// but nothing is shared with another process, so this is for tests (and single-node experiments), not for several
/// nodes.
#[derive(Debug, Default)]
pub struct MemoryLimiter {
    levels: Mutex<HashMap<String, Level>>,
}

impl MemoryLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    /// The stored level of `key` (None: never touched, or reset), for tests to look at.
    pub fn level(&self, key: &str) -> Option<Level> {
        self.levels.lock().unwrap_or_else(PoisonError::into_inner).get(key).copied()
    }

    /// Apply `change` to the level of `key` and store the result, under the lock.
    fn change(
        &self,
        key: &str,
        spec: BucketSpec,
        now: Timestamp,
        change: fn(BucketSpec, Option<Level>, Timestamp) -> (BucketState, Level),
    ) -> BucketState {
        // No code runs under this lock that could panic and poison it; if one did, the levels are still whole.
        let mut levels = self.levels.lock().unwrap_or_else(PoisonError::into_inner);
        let (state, level) = change(spec, levels.get(key).copied(), now);
        levels.insert(key.to_owned(), level);
        state
    }
}

#[async_trait]
impl RateLimiter for MemoryLimiter {
    async fn bucket_take(&self, key: &str, spec: BucketSpec, now: Timestamp) -> StoreResult<BucketState> {
        Ok(self.change(key, spec, now, bucket::take))
    }

    async fn bucket_peek(&self, key: &str, spec: BucketSpec, now: Timestamp) -> StoreResult<BucketState> {
        // Read only, like the stores: the refill is computed, not written.
        Ok(bucket::peek(spec, self.level(key), now))
    }

    async fn bucket_give_back(&self, key: &str, spec: BucketSpec, now: Timestamp) -> StoreResult<BucketState> {
        Ok(self.change(key, spec, now, bucket::give_back))
    }

    async fn bucket_reset(&self, key: &str) -> StoreResult<()> {
        self.levels.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
        Ok(())
    }

    async fn backoff_take(&self, key: &str, spec: BackoffSpec, now: Timestamp) -> StoreResult<BackoffState> {
        let mut levels = self.levels.lock().unwrap_or_else(PoisonError::into_inner);
        let (state, level) = bucket::backoff(spec, levels.get(key).copied(), now);
        levels.insert(key.to_owned(), level);
        Ok(state)
    }
}
