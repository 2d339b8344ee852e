//! The rate-limit conformance suite on Redis, in the Redis that `CALLSIGN_TEST_REDIS_URL` names, each test under a
//! key prefix of its own (so parallel tests and earlier runs never meet). Without that variable the tests are
//! skipped, except in CI (`CI=true`), where they fail.
use std::sync::Arc;
use std::time::Duration;

use callsign_domain::Timestamp;
use callsign_limiter_redis::RedisLimiter;
use callsign_store::{BucketSpec, BucketState, RateLimiter};

const URL_VAR: &str = "CALLSIGN_TEST_REDIS_URL";

/// The Redis URL, or None when the tests should be skipped.
fn redis_url() -> Option<String> {
    callsign_testkit::service_url(URL_VAR)
}

/// Unique across tests in this process and across runs.
fn prefix() -> String {
    format!("{}:", callsign_testkit::unique_name("cs_test"))
}

fn limiter(url: &str, prefix: &str) -> RedisLimiter {
    RedisLimiter::connect(url, prefix).unwrap_or_else(|e| panic!("cannot use {URL_VAR}: {e}"))
}

async fn fresh() -> Option<Box<dyn RateLimiter>> {
    let url = redis_url()?;
    let limiter = limiter(&url, &prefix());
    limiter.check_ready().await.unwrap_or_else(|e| panic!("{URL_VAR} does not answer: {e}"));
    Some(Box::new(limiter))
}

callsign_testkit::rate_limiter_suite!(fresh);

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

/// N takes at once, from separate connections (as separate nodes would be) and threads, on a bucket of capacity k:
/// exactly k are granted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_takes_across_connections_grant_exactly_the_capacity() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix();
    const CAPACITY: u32 = 7;
    const TAKES: usize = 60;
    let spec = BucketSpec { capacity: CAPACITY, refill_every_ms: 3_600_000 };
    let nodes: Vec<Arc<RedisLimiter>> = (0..4).map(|_| Arc::new(limiter(&url, &prefix))).collect();
    let mut tasks = Vec::new();
    for i in 0..TAKES {
        let node = nodes[i % nodes.len()].clone();
        tasks.push(tokio::spawn(async move { node.bucket_take("send:u1", spec, ts(1_000)).await }));
    }
    let mut granted = Vec::new();
    for task in tasks {
        let state = task.await.expect("task").expect("take");
        if state.allowed {
            granted.push(state.remaining);
        }
    }
    granted.sort_unstable();
    assert_eq!(granted, (0..CAPACITY).collect::<Vec<_>>(), "exactly {CAPACITY} winners, each saw the one before");
    let state = nodes[0].bucket_peek("send:u1", spec, ts(1_000)).await.expect("peek");
    assert_eq!(state, BucketState { allowed: false, remaining: 0, next_refill_at: Some(ts(3_601_000)) });
}

/// The same keys under two prefixes are two buckets; a bucket is deleted once it is full again, and otherwise
/// expires when it would be.
#[tokio::test]
async fn prefixes_separate_buckets_and_idle_buckets_expire() {
    let Some(url) = redis_url() else { return };
    let (a, b) = (prefix(), prefix());
    let (la, lb) = (limiter(&url, &a), limiter(&url, &b));
    let spec = BucketSpec { capacity: 2, refill_every_ms: 60_000 };
    assert_eq!(la.bucket_take("k", spec, ts(0)).await.expect("take").remaining, 1);
    assert_eq!(la.bucket_take("k", spec, ts(0)).await.expect("take").remaining, 0);
    assert_eq!(lb.bucket_peek("k", spec, ts(0)).await.expect("peek").remaining, 2, "another prefix");

    let client = redis::Client::open(url.as_str()).expect("url");
    let mut raw = client.get_multiplexed_async_connection().await.expect("connect");
    let key = format!("{a}k");
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut raw).await.expect("pttl");
    assert!((119_000..=120_000).contains(&ttl), "empty: full again two periods from now, got {ttl}");
    let fields: Vec<String> = redis::cmd("HKEYS").arg(&key).query_async(&mut raw).await.expect("hkeys");
    assert_eq!(fields.len(), 2, "{fields:?}");

    la.bucket_give_back("k", spec, ts(30_000)).await.expect("give back");
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut raw).await.expect("pttl");
    assert!((29_000..=30_000).contains(&ttl), "one token out, the period half gone: {ttl}");
    la.bucket_give_back("k", spec, ts(30_000)).await.expect("give back");
    let exists: i64 = redis::cmd("EXISTS").arg(&key).query_async(&mut raw).await.expect("exists");
    assert_eq!(exists, 0, "a full bucket is not stored");
}

/// A closed port answers an error that names Redis, quickly, and never holds the URL's password.
#[tokio::test]
async fn an_unreachable_redis_fails_fast_and_says_so() {
    if redis_url().is_none() {
        return;
    }
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let down = limiter(&format!("redis://:hunter2@127.0.0.1:{port}/"), "p:");
    let spec = BucketSpec { capacity: 1, refill_every_ms: 1_000 };
    for _ in 0..3 {
        let call = down.bucket_take("k", spec, ts(0));
        let result = tokio::time::timeout(Duration::from_secs(3), call).await.expect("answered within the bound");
        let message = result.expect_err("no Redis there").to_string();
        assert!(message.contains("Redis"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
    assert!(down.check_ready().await.is_err());
}

/// The Lua arithmetic answers exactly what `callsign_store::bucket` answers (through `MemoryLimiter`), over a long
/// pseudo-random walk of takes, give-backs, peeks and resets, with odd specs and a clock that sometimes goes back.
/// Each key keeps one spec, as every limit in Callsign does between two settings changes (see the crate docs for
/// what a raised capacity does to a full bucket).
#[tokio::test]
async fn the_script_matches_the_rust_arithmetic_step_by_step() {
    let Some(url) = redis_url() else { return };
    let redis = limiter(&url, &prefix());
    let memory = callsign_testkit::MemoryLimiter::new();
    let specs = [
        BucketSpec { capacity: 3, refill_every_ms: 1_000 },
        BucketSpec { capacity: 1, refill_every_ms: 7 },
        BucketSpec { capacity: 0, refill_every_ms: 1_000 },
        BucketSpec { capacity: 10, refill_every_ms: 0 },
        BucketSpec { capacity: u32::MAX, refill_every_ms: 86_400_000 },
    ];
    let mut seed: u64 = 0x5eed_1234_abcd_0001;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut now: i64 = 1_700_000_000_000;
    for step in 0..2_000 {
        let r = next();
        // Mostly forward by up to 3 s, sometimes back by up to 1 s.
        now += i64::try_from(r % 3_000).expect("small") - if r % 11 == 0 { 1_000 } else { 0 };
        let which = (r >> 8) % 5;
        let spec = specs[usize::try_from(which).expect("small")];
        let key = format!("k{which}:{}", (r >> 16) % 3);
        let at = ts(now);
        let (a, b) = match (r >> 24) % 10 {
            0..=4 => (redis.bucket_take(&key, spec, at).await, memory.bucket_take(&key, spec, at).await),
            5..=6 => (redis.bucket_give_back(&key, spec, at).await, memory.bucket_give_back(&key, spec, at).await),
            7..=8 => (redis.bucket_peek(&key, spec, at).await, memory.bucket_peek(&key, spec, at).await),
            _ => {
                redis.bucket_reset(&key).await.expect("reset");
                memory.bucket_reset(&key).await.expect("reset");
                continue;
            }
        };
        assert_eq!(a.expect("redis"), b.expect("memory"), "step {step}: {key} {spec:?} at {now}");
    }
}
