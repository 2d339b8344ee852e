//! The rate-limit seam: `Core.limiter` is where every bucket is taken from. By default it is the store itself (one
//! set of buckets, whichever way they are reached); another `RateLimiter` (here the testkit's in-memory one) can be
//! plugged in instead, and the limits still apply, now counted there.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::sync::Arc;

use callsign_core::mfa::SEND_BUCKET;
use callsign_domain::Clock;
use callsign_store::{BucketSpec, BucketState, RateLimiter};
use callsign_testkit::MemoryLimiter;
use common::TestApp;
use common::mfa::{PHONE, setup_app};
use serde_json::json;

const SPEC: BucketSpec = BucketSpec { capacity: 3, refill_every_ms: 60_000 };

async fn default_limiter_is_the_store(t: TestApp) {
    let now = t.clock.now();
    let (limiter, store) = (&t.app.limiter, &t.app.store);
    // A take through the limiter is seen through the store, and the other way round.
    assert!(limiter.bucket_take("k", SPEC, now).await.unwrap().allowed);
    assert_eq!(store.bucket_peek("k", SPEC, now).await.unwrap().remaining, 2);
    assert!(store.bucket_take("k", SPEC, now).await.unwrap().allowed);
    assert_eq!(limiter.bucket_peek("k", SPEC, now).await.unwrap().remaining, 1);
    // So are a give-back and a reset.
    limiter.bucket_give_back("k", SPEC, now).await.unwrap();
    assert_eq!(store.bucket_peek("k", SPEC, now).await.unwrap().remaining, 2);
    store.bucket_reset("k").await.unwrap();
    assert_eq!(
        limiter.bucket_peek("k", SPEC, now).await.unwrap(),
        BucketState { allowed: true, remaining: 3, next_refill_at: None }
    );
    t.stop().await;
}

#[tokio::test]
async fn the_default_limiter_and_the_store_see_the_same_buckets() {
    default_limiter_is_the_store(TestApp::spawn().await).await;
}

#[tokio::test]
async fn the_default_limiter_and_the_store_see_the_same_buckets_on_postgres() {
    let Some(t) = TestApp::spawn_postgres().await else { return };
    default_limiter_is_the_store(t).await;
}

#[tokio::test]
async fn another_limiter_can_be_plugged_in_and_the_send_limit_still_applies() {
    let memory = Arc::new(MemoryLimiter::new());
    let limiter: Arc<dyn RateLimiter> = memory.clone();
    let c = setup_app(TestApp::spawn_with_limiter(limiter).await, &["sms", "voice"]).await;
    let mfa = c.mfa_token().await;
    let associate = json!({"authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": PHONE});
    // SEND_BUCKET allows 10 messages; the 11th is refused.
    for i in 0..SEND_BUCKET.capacity {
        let (s, v) = c.associate(&mfa, associate.clone()).await;
        assert_eq!(s, 200, "send {}: {v}", i + 1);
    }
    let (s, v) = c.associate(&mfa, associate.clone()).await;
    assert_eq!(
        (s, v["error"].as_str(), v["error_description"].as_str()),
        (429, Some("too_many_attempts"), Some("Too many SMS sent by the user. Wait for some minutes before retrying."))
    );
    // Counted in the plugged-in limiter, not in the store's buckets.
    let key = format!("send:{}", c.user_id);
    assert_eq!(memory.level(&key).map(|l| l.tokens), Some(0));
    let now = c.t.clock.now();
    assert!(!c.t.app.limiter.bucket_peek(&key, SEND_BUCKET, now).await.unwrap().allowed);
    let stored = c.t.app.store.bucket_peek(&key, SEND_BUCKET, now).await.unwrap();
    assert_eq!((stored.remaining, stored.next_refill_at), (SEND_BUCKET.capacity, None), "the store was not used");
    // And it refills like the store's: an hour later one more message goes out.
    c.t.clock.advance(std::time::Duration::from_secs(3600));
    let mfa = c.mfa_token().await;
    assert_eq!(c.associate(&mfa, associate.clone()).await.0, 200);
    assert_eq!(c.associate(&mfa, associate).await.0, 429);
    c.t.stop().await;
}
