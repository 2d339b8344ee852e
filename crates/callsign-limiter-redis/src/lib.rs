//! [`RedisLimiter`]: the rate-limit buckets ([`callsign_store::RateLimiter`]) in Redis, so that several nodes share
//! them without putting every login attempt through the database.
//!
//! Each call is one Lua script (`EVALSHA`, loaded on first use by [`redis::Script`]) that reads, refills, changes
//! and writes one bucket atomically: the arithmetic of [`callsign_store::bucket`], written once more in Lua (see
//! `bucket.lua`) and held to the same rules by `callsign_testkit::rate_limiter_suite!`. Times come from the caller's
//! clock (an argument of the script), never from Redis' clock, so a `ManualClock` moves Redis buckets too; only the
//! key's expiry (`PEXPIRE`, once the bucket would be full again, when it means the same as a missing key) runs on
//! Redis' time.
//!
//! A bucket is a hash `{tokens, updated_at}` under `<prefix><key>` (prefix `callsign:` by default). A bucket that is
//! full after a call is deleted rather than stored (a missing bucket is full, dated now: the same thing), and
//! [`RateLimiter::bucket_reset`] is a `DEL`. One consequence differs from the stores, which keep a full bucket's
//! row: when a limit's capacity is *raised* (an operator changes `max_attempts`), a bucket that was full under the
//! old capacity is full under the new one at once, where a store would refill it to the new capacity over time.
//! The answers are otherwise the same, call for call (`the_script_matches_the_rust_arithmetic_step_by_step`).
//!
//! The connection is a [`redis::aio::ConnectionManager`], made lazily (a node starts while Redis is down and
//! works once it is up) that reconnects by itself; every call is bounded by [`RedisLimiter::CALL_TIMEOUT`], so an
//! unreachable Redis answers an error fast and never hangs a request. Errors are `StoreError::Other` with a text
//! that starts with `Redis` and never holds the URL (it may carry a password).
//!
//! Numbers: Lua's numbers are doubles, exact for integers up to 2^53. Times are Unix milliseconds (2^53 ms is
//! about 285 000 years) and the capacity is at most `i32::MAX`, as in the stores; a refill period above 2^53 ms
//! (which no setting allows) would lose precision.
//!
//! Build cost (measured cold, debug, `cargo build -p callsign-limiter-redis --timings` in an empty build dir after
//! `cargo build -p callsign-store`, on 2 cores shared with another build, so ±20 %): the `redis` crate (1.8, with
//! only `tokio-comp`, `connection-manager` and `script`) brings 9 crates the workspace did not build before, about
//! **15 s of compile time**: `redis` 8.0 s, `combine` 4.9 s (its parser; the two run one after the other, so
//! about 13 s of wall time on the critical path), and `arcstr`, `async-lock`, `xxhash-rust`, `sha1_smol`,
//! `arc-swap`, `backon`, `event-listener-strategy` 2 s together; this crate itself 0.9 s. Everything else it uses
//! (tokio, futures, url, bytes) the server already builds: the whole cold build of this crate took 43 s, 28 s of
//! which are those shared crates.
#![forbid(unsafe_code)]

use std::time::Duration;

use async_trait::async_trait;
use callsign_domain::Timestamp;
use callsign_store::{
    BackoffSpec, BackoffState, BucketSpec, BucketState, CounterRow, CounterWindow, RateLimiter, StoreError,
    StoreResult, bucket,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// The bucket script: `KEYS[1]` the bucket, `ARGV` = operation (`take`, `give_back`, `peek`), capacity, refill
/// period (ms), now (Unix ms). Answers `{allowed, remaining, next_refill_at or -1}`.
const BUCKET_LUA: &str = include_str!("bucket.lua");
/// The backoff script (`RateLimiter::backoff_take`): `KEYS[1]` the backoff, `ARGV` = base, longest wait, reset
/// after, now.
const BACKOFF_LUA: &str = include_str!("backoff.lua");
/// The hard-cap script (`RateLimiter::counter_take`): `KEYS[1]` the slot's hash, `ARGV` = field, amount, cap, ttl
/// (ms). Answers the new value, or -1 when it would not fit.
const COUNTER_TAKE_LUA: &str = "local v = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') \
if v + tonumber(ARGV[2]) > tonumber(ARGV[3]) then return -1 end \
v = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2]) \
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end \
return v";

/// What a bucket call does to the level after the refill.
#[derive(Debug, Clone, Copy)]
enum Op {
    Take,
    GiveBack,
    Peek,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Take => "take",
            Op::GiveBack => "give_back",
            Op::Peek => "peek",
        }
    }
}

/// Rate-limit buckets in Redis (see the crate docs). Cloning shares the connection.
#[derive(Clone)]
pub struct RedisLimiter {
    connection: ConnectionManager,
    script: redis::Script,
    backoff_script: redis::Script,
    counter_script: redis::Script,
    prefix: String,
}

/// Never prints the connection (its URL may hold a password).
impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimiter").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RedisLimiter {
    /// The key prefix unless another is given.
    pub const DEFAULT_PREFIX: &'static str = "callsign:";
    /// The longest any call waits for Redis (connecting included) before it answers an error.
    pub const CALL_TIMEOUT: Duration = Duration::from_secs(1);

    /// Whether `url` is a Redis URL this build can use (without connecting, and without repeating the URL in the
    /// error: it may hold a password).
    pub fn check_url(url: &str) -> StoreResult<()> {
        use redis::IntoConnectionInfo;
        if url.trim_start().to_ascii_lowercase().starts_with("rediss://") {
            return Err(StoreError::Other(
                "rediss:// (TLS) is not built in; use redis:// on a private network or through a TLS tunnel".into(),
            ));
        }
        url.into_connection_info().map(|_| ()).map_err(|e| {
            StoreError::Other(format!(
                "not a Redis URL this build can use ({:?}); write it like redis://[:PASSWORD@]HOST[:PORT][/DB]",
                e.kind()
            ))
        })
    }

    /// A limiter on the Redis at `url` (`redis://[user:password@]host[:port][/db]`, or `redis+unix:///path`; not
    /// `rediss://`: no TLS is built in), with keys under `prefix`, from within a Tokio runtime. Only the URL is checked here; the connection is made on first use and
    /// remade whenever it is lost, so this succeeds while Redis is down (calls fail until it is back).
    pub fn connect(url: &str, prefix: &str) -> StoreResult<Self> {
        Self::check_url(url)?;
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::Other(format!("Redis URL is not valid ({:?})", e.kind())))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Self::CALL_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(200));
        let connection = ConnectionManager::new_lazy_with_config(client, config).map_err(redis_error)?;
        Ok(Self {
            connection,
            script: redis::Script::new(BUCKET_LUA),
            backoff_script: redis::Script::new(BACKOFF_LUA),
            counter_script: redis::Script::new(COUNTER_TAKE_LUA),
            prefix: prefix.to_owned(),
        })
    }

    /// The key prefix in use.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Ok when Redis answers a `PING` within [`Self::CALL_TIMEOUT`] (for `/readyz`).
    pub async fn check_ready(&self) -> StoreResult<()> {
        let mut connection = self.connection.clone();
        let pong: String = bounded(redis::cmd("PING").query_async(&mut connection)).await?;
        if pong == "PONG" { Ok(()) } else { Err(StoreError::Other(format!("Redis answered PING with {pong:?}"))) }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// The hash that holds a namespace's counters of one slot (field = counter key).
    fn slot_key(&self, ns: &str, slot: i64) -> String {
        format!("{}ctr:{ns}:{slot}", self.prefix)
    }

    async fn run(&self, op: Op, key: &str, spec: BucketSpec, now: Timestamp) -> StoreResult<BucketState> {
        let mut connection = self.connection.clone();
        let mut invocation = self.script.key(self.key(key));
        invocation.arg(op.as_str()).arg(bucket::capacity(spec)).arg(spec.refill_every_ms.max(1)).arg(now.millis());
        let (allowed, remaining, next): (i64, i64, i64) = bounded(invocation.invoke_async(&mut connection)).await?;
        Ok(BucketState {
            allowed: allowed == 1,
            remaining: u32::try_from(remaining).unwrap_or(0),
            next_refill_at: (next >= 0).then(|| Timestamp::from_millis(next)),
        })
    }
}

fn redis_error(e: redis::RedisError) -> StoreError {
    StoreError::Other(format!("Redis: {e}"))
}

/// Run one Redis call, bounded by [`RedisLimiter::CALL_TIMEOUT`].
async fn bounded<T>(call: impl Future<Output = redis::RedisResult<T>>) -> StoreResult<T> {
    match tokio::time::timeout(RedisLimiter::CALL_TIMEOUT, call).await {
        Ok(result) => result.map_err(redis_error),
        Err(_) => Err(StoreError::Other(format!("Redis did not answer within {:?}", RedisLimiter::CALL_TIMEOUT))),
    }
}

#[async_trait]
impl RateLimiter for RedisLimiter {
    async fn bucket_take(&self, key: &str, spec: BucketSpec, now: Timestamp) -> StoreResult<BucketState> {
        self.run(Op::Take, key, spec, now).await
    }

    async fn bucket_peek(&self, key: &str, spec: BucketSpec, now: Timestamp) -> StoreResult<BucketState> {
        self.run(Op::Peek, key, spec, now).await
    }

    async fn bucket_give_back(&self, key: &str, spec: BucketSpec, now: Timestamp) -> StoreResult<BucketState> {
        self.run(Op::GiveBack, key, spec, now).await
    }

    async fn bucket_reset(&self, key: &str) -> StoreResult<()> {
        let mut connection = self.connection.clone();
        let _: i64 = bounded(redis::cmd("DEL").arg(self.key(key)).query_async(&mut connection)).await?;
        Ok(())
    }

    async fn backoff_take(&self, key: &str, spec: BackoffSpec, now: Timestamp) -> StoreResult<BackoffState> {
        let mut connection = self.connection.clone();
        let mut invocation = self.backoff_script.key(self.key(key));
        invocation.arg(spec.base_ms).arg(spec.max_ms).arg(spec.reset_after_ms).arg(now.millis());
        let (allowed, level, wait, retry): (i64, i64, i64, i64) =
            bounded(invocation.invoke_async(&mut connection)).await?;
        Ok(BackoffState {
            allowed: allowed == 1,
            level: u32::try_from(level).unwrap_or(0),
            wait_ms: wait,
            retry_at: (retry >= 0).then(|| Timestamp::from_millis(retry)),
        })
    }

    async fn counters_add(
        &self,
        ns: &str,
        slot: i64,
        adds: &[(&str, i64)],
        _now: Timestamp,
        ttl_ms: i64,
    ) -> StoreResult<()> {
        if adds.is_empty() {
            return Ok(());
        }
        let hash = self.slot_key(ns, slot);
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (key, amount) in adds {
            pipe.hincr(&hash, *key, *amount).ignore();
        }
        pipe.cmd("PEXPIRE").arg(&hash).arg(ttl_ms.max(1)).ignore();
        let mut connection = self.connection.clone();
        let () = bounded(pipe.query_async(&mut connection)).await?;
        Ok(())
    }

    async fn counters_sum(&self, ns: &str, window: CounterWindow, keys: &[&str]) -> StoreResult<Vec<i64>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for slot in window.slots() {
            pipe.cmd("HMGET").arg(self.slot_key(ns, slot)).arg(keys);
        }
        let mut connection = self.connection.clone();
        let per_slot: Vec<Vec<Option<i64>>> = bounded(pipe.query_async(&mut connection)).await?;
        let mut sums = vec![0i64; keys.len()];
        for values in per_slot {
            for (sum, v) in sums.iter_mut().zip(values) {
                *sum = sum.saturating_add(v.unwrap_or(0));
            }
        }
        Ok(sums)
    }

    async fn counters_list(&self, ns: &str, window: CounterWindow) -> StoreResult<Vec<CounterRow>> {
        let slots: Vec<i64> = window.slots().collect();
        let mut pipe = redis::pipe();
        for slot in &slots {
            pipe.cmd("HGETALL").arg(self.slot_key(ns, *slot));
        }
        let mut connection = self.connection.clone();
        let per_slot: Vec<Vec<(String, i64)>> = bounded(pipe.query_async(&mut connection)).await?;
        let mut rows: Vec<CounterRow> = slots
            .iter()
            .zip(per_slot)
            .flat_map(|(slot, fields)| fields.into_iter().map(|(key, value)| CounterRow { key, slot: *slot, value }))
            .collect();
        rows.sort_by(|a, b| a.key.cmp(&b.key).then(a.slot.cmp(&b.slot)));
        Ok(rows)
    }

    #[allow(clippy::too_many_arguments)]
    async fn counter_take(
        &self,
        ns: &str,
        slot: i64,
        key: &str,
        amount: i64,
        cap: i64,
        _now: Timestamp,
        ttl_ms: i64,
    ) -> StoreResult<Option<i64>> {
        let mut connection = self.connection.clone();
        let mut invocation = self.counter_script.key(self.slot_key(ns, slot));
        invocation.arg(key).arg(amount).arg(cap).arg(ttl_ms.max(1));
        let value: i64 = bounded(invocation.invoke_async(&mut connection)).await?;
        Ok((value >= 0).then_some(value))
    }

    async fn counters_purge(&self, _now: Timestamp) -> StoreResult<u64> {
        // Redis expires each slot's hash itself (PEXPIRE).
        Ok(0)
    }

    async fn limiter_ready(&self) -> StoreResult<()> {
        self.check_ready().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn debug_never_shows_the_url() {
        let limiter = RedisLimiter::connect("redis://user:hunter2@127.0.0.1:1/", "p:").expect("a valid URL");
        let shown = format!("{limiter:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("p:"), "{shown}");
    }

    #[tokio::test]
    async fn a_bad_url_is_refused_without_repeating_it() {
        let e = RedisLimiter::connect("http://user:hunter2@example.com/", "p:").expect_err("not a Redis URL");
        let shown = e.to_string();
        assert!(shown.contains("Redis"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
