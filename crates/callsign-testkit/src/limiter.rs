//! [`MemoryLimiter`]: a second [`RateLimiter`], next to the stores' SQL one, to show (and test) that the rate limits
//! can come from somewhere else than the store.
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use callsign_domain::Timestamp;
use callsign_store::bucket::{self, Level};
use callsign_store::{
    BackoffSpec, BackoffState, BucketSpec, BucketState, CounterRow, CounterWindow, RateLimiter, StoreResult,
};

/// Token buckets in this process's memory, with the same arithmetic as the stores ([`callsign_store::bucket`]).
/// Every call holds one lock for its read-refill-write, so concurrent callers cannot both spend the last token;
/// but nothing is shared with another process, so this is for tests (and single-node experiments), not for several
/// nodes.
#[derive(Debug, Default)]
pub struct MemoryLimiter {
    levels: Mutex<HashMap<String, Level>>,
    /// Windowed counters by (namespace, slot, key): value and expiry (Unix ms).
    #[allow(clippy::type_complexity)]
    counters: Mutex<HashMap<(String, i64, String), (i64, i64)>>,
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

    async fn counters_add(
        &self,
        ns: &str,
        slot: i64,
        adds: &[(&str, i64)],
        now: Timestamp,
        ttl_ms: i64,
    ) -> StoreResult<()> {
        let expires = now.millis().saturating_add(ttl_ms.max(0));
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, amount) in adds {
            let c = counters.entry((ns.to_owned(), slot, (*key).to_owned())).or_insert((0, expires));
            c.0 += amount;
            c.1 = c.1.max(expires);
        }
        Ok(())
    }

    async fn counters_sum(&self, ns: &str, window: CounterWindow, keys: &[&str]) -> StoreResult<Vec<i64>> {
        let counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(keys
            .iter()
            .map(|k| {
                counters
                    .iter()
                    .filter(|((n, slot, key), _)| n == ns && key == k && (window.from..=window.to).contains(slot))
                    .map(|(_, (v, _))| *v)
                    .sum()
            })
            .collect())
    }

    async fn counters_list(&self, ns: &str, window: CounterWindow) -> StoreResult<Vec<CounterRow>> {
        let counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let mut rows: Vec<CounterRow> = counters
            .iter()
            .filter(|((n, slot, _), _)| n == ns && (window.from..=window.to).contains(slot))
            .map(|((_, slot, key), (value, _))| CounterRow { key: key.clone(), slot: *slot, value: *value })
            .collect();
        rows.sort_by(|a, b| a.key.cmp(&b.key).then(a.slot.cmp(&b.slot)));
        Ok(rows)
    }

    async fn counter_take(
        &self,
        ns: &str,
        slot: i64,
        key: &str,
        amount: i64,
        cap: i64,
        now: Timestamp,
        ttl_ms: i64,
    ) -> StoreResult<Option<i64>> {
        let expires = now.millis().saturating_add(ttl_ms.max(0));
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let c = counters.entry((ns.to_owned(), slot, key.to_owned())).or_insert((0, expires));
        if c.0 + amount > cap {
            return Ok(None);
        }
        c.0 += amount;
        c.1 = c.1.max(expires);
        Ok(Some(c.0))
    }

    async fn counters_purge(&self, now: Timestamp) -> StoreResult<u64> {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let before = counters.len();
        counters.retain(|_, (_, expires)| *expires >= now.millis());
        Ok((before - counters.len()) as u64)
    }
}
