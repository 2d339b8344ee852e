//! Token-bucket arithmetic, shared by every backend: the database only stores a bucket's [`Level`] and runs
//! these functions inside a transaction that holds the row (see `bucket_take` in
//! [`impl_sqlx_store!`](crate::impl_sqlx_store)).
//!
//! Rules:
//! - a bucket with no stored level is full;
//! - one token comes back per `refill_every_ms` of elapsed time, up to the capacity; `updated_at` then advances by
//!   whole refill periods only, so the part of a period already elapsed is kept for the next token;
//! - a full bucket's `updated_at` is the time it was last seen full (`now`): the next token is due one period after
//!   the bucket stops being full;
//! - time running backwards (another node's clock behind this one) refills nothing and loses nothing.
//!
//! Edge cases: a `refill_every_ms` below 1 counts as 1; a capacity above `i32::MAX` (the stored column is a 32-bit
//! `INTEGER` on PostgreSQL) counts as `i32::MAX`; a stored level above the capacity (the capacity was lowered) is
//! cut down to it.
use callsign_domain::Timestamp;

use crate::{BackoffSpec, BackoffState, BucketSpec, BucketState};

/// What the database stores for a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    pub tokens: i32,
    /// Unix ms the tokens were last counted at (see the module docs).
    pub updated_at: i64,
}

/// The capacity as stored.
pub fn capacity(spec: BucketSpec) -> i32 {
    i32::try_from(spec.capacity).unwrap_or(i32::MAX)
}

fn period(spec: BucketSpec) -> i64 {
    spec.refill_every_ms.max(1)
}

/// A full bucket, as of `now` (what a missing row stands for).
pub fn full(spec: BucketSpec, now: Timestamp) -> Level {
    Level { tokens: capacity(spec), updated_at: now.millis() }
}

/// The level at `now`, after refilling by the time elapsed since `stored` (a missing level is a full bucket).
pub fn refill(spec: BucketSpec, stored: Option<Level>, now: Timestamp) -> Level {
    let capacity = capacity(spec);
    let Some(stored) = stored else { return full(spec, now) };
    let tokens = stored.tokens.clamp(0, capacity);
    if tokens >= capacity {
        return full(spec, now);
    }
    let period = period(spec);
    let elapsed = now.millis().saturating_sub(stored.updated_at).max(0);
    let periods = elapsed / period;
    let refilled = i64::from(tokens).saturating_add(periods);
    if refilled >= i64::from(capacity) {
        return full(spec, now);
    }
    // `refilled < capacity <= i32::MAX`, and `periods * period <= elapsed`: neither conversion nor product overflows.
    Level { tokens: i32::try_from(refilled).unwrap_or(capacity), updated_at: stored.updated_at + periods * period }
}

/// How a bucket at `level` is reported.
fn state(spec: BucketSpec, level: Level, allowed: bool) -> BucketState {
    let remaining = u32::try_from(level.tokens).unwrap_or(0);
    let next_refill_at =
        (level.tokens < capacity(spec)).then(|| Timestamp::from_millis(level.updated_at.saturating_add(period(spec))));
    BucketState { allowed, remaining, next_refill_at }
}

/// Refill, then take one token if there is one. Returns what to report and the level to store.
pub fn take(spec: BucketSpec, stored: Option<Level>, now: Timestamp) -> (BucketState, Level) {
    let level = refill(spec, stored, now);
    if level.tokens > 0 {
        let after = Level { tokens: level.tokens - 1, ..level };
        (state(spec, after, true), after)
    } else {
        (state(spec, level, false), level)
    }
}

/// Refill, then put one token back, up to the capacity (a bucket that becomes full is dated `now`, as a full bucket
/// always is). Returns what to report and the level to store.
pub fn give_back(spec: BucketSpec, stored: Option<Level>, now: Timestamp) -> (BucketState, Level) {
    let level = refill(spec, stored, now);
    let after = if level.tokens.saturating_add(1) >= capacity(spec) {
        full(spec, now)
    } else {
        Level { tokens: level.tokens + 1, ..level }
    };
    (state(spec, after, after.tokens > 0), after)
}

/// Refill and report, taking nothing (`allowed`: at least one token is there).
pub fn peek(spec: BucketSpec, stored: Option<Level>, now: Timestamp) -> BucketState {
    let level = refill(spec, stored, now);
    state(spec, level, level.tokens > 0)
}

/// The wait an exponential backoff at `level` asks for: 0 at level 0, then `base_ms` doubling per level, at most
/// `max_ms`.
pub fn backoff_wait(spec: BackoffSpec, level: u32) -> i64 {
    if level == 0 {
        return 0;
    }
    spec.base_ms.max(0).saturating_mul(1_i64 << (level - 1).min(40)).min(spec.max_ms)
}

/// One more event under an exponential backoff, stored as a [`Level`] whose `tokens` count the events since the last
/// reset and whose `updated_at` is the last event's time (no stored level: no event yet). Allowed when there was no
/// event for `reset_after_ms` (the count starts again: level 0) or when the level's wait has passed since the last
/// one; then the count goes up by one and the time is `now`. A refusal stores nothing new. Time running backwards
/// waits as if no time had passed.
pub fn backoff(spec: BackoffSpec, stored: Option<Level>, now: Timestamp) -> (BackoffState, Level) {
    let (level, last) = match stored {
        Some(l) if now.millis().saturating_sub(l.updated_at) < spec.reset_after_ms => {
            (u32::try_from(l.tokens).unwrap_or(0), Some(l.updated_at))
        }
        _ => (0, None),
    };
    let wait_ms = backoff_wait(spec, level);
    if let Some(last) = last {
        let due = last.saturating_add(wait_ms);
        if now.millis() < due {
            let state = BackoffState { allowed: false, level, wait_ms, retry_at: Some(Timestamp::from_millis(due)) };
            return (state, Level { tokens: i32::try_from(level).unwrap_or(i32::MAX), updated_at: last });
        }
    }
    let after =
        Level { tokens: i32::try_from(level.saturating_add(1).min(62)).unwrap_or(62), updated_at: now.millis() };
    (BackoffState { allowed: true, level, wait_ms, retry_at: None }, after)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: BucketSpec = BucketSpec { capacity: 3, refill_every_ms: 1_000 };

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    fn level(tokens: i32, updated_at: i64) -> Option<Level> {
        Some(Level { tokens, updated_at })
    }

    #[test]
    fn a_missing_bucket_is_full() {
        assert_eq!(refill(SPEC, None, at(5)), Level { tokens: 3, updated_at: 5 });
        assert_eq!(peek(SPEC, None, at(5)), BucketState { allowed: true, remaining: 3, next_refill_at: None });
    }

    #[test]
    fn taking_from_a_full_bucket_starts_the_refill_clock() {
        let (state, stored) = take(SPEC, None, at(10_000));
        assert_eq!(state, BucketState { allowed: true, remaining: 2, next_refill_at: Some(at(11_000)) });
        assert_eq!(stored, Level { tokens: 2, updated_at: 10_000 });
        // A stored full bucket, however old, behaves the same.
        let (state, stored) = take(SPEC, level(3, 0), at(10_000));
        assert_eq!(state.next_refill_at, Some(at(11_000)));
        assert_eq!(stored, Level { tokens: 2, updated_at: 10_000 });
    }

    #[test]
    fn an_empty_bucket_refuses_and_says_when_the_next_token_comes() {
        let (state, stored) = take(SPEC, level(0, 10_000), at(10_999));
        assert_eq!(state, BucketState { allowed: false, remaining: 0, next_refill_at: Some(at(11_000)) });
        assert_eq!(stored, Level { tokens: 0, updated_at: 10_000 });
    }

    #[test]
    fn refill_advances_by_whole_periods_and_keeps_the_remainder() {
        assert_eq!(refill(SPEC, level(0, 10_000), at(11_000)), Level { tokens: 1, updated_at: 11_000 });
        assert_eq!(refill(SPEC, level(0, 10_000), at(12_400)), Level { tokens: 2, updated_at: 12_000 });
        let (state, stored) = take(SPEC, level(0, 10_000), at(12_400));
        assert_eq!(state, BucketState { allowed: true, remaining: 1, next_refill_at: Some(at(13_000)) });
        assert_eq!(stored, Level { tokens: 1, updated_at: 12_000 });
    }

    #[test]
    fn refill_stops_at_capacity_and_a_full_bucket_is_dated_now() {
        assert_eq!(refill(SPEC, level(1, 10_000), at(12_000)), Level { tokens: 3, updated_at: 12_000 });
        assert_eq!(refill(SPEC, level(1, 10_000), at(99_999)), Level { tokens: 3, updated_at: 99_999 });
        assert_eq!(peek(SPEC, level(1, 10_000), at(99_999)).next_refill_at, None);
    }

    #[test]
    fn peek_reports_without_taking() {
        let state = peek(SPEC, level(1, 10_000), at(10_500));
        assert_eq!(state, BucketState { allowed: true, remaining: 1, next_refill_at: Some(at(11_000)) });
        assert!(!peek(SPEC, level(0, 10_000), at(10_500)).allowed);
    }

    #[test]
    fn give_back_undoes_a_take_and_never_overfills() {
        let (_, taken) = take(SPEC, level(2, 10_000), at(10_500));
        assert_eq!(taken, Level { tokens: 1, updated_at: 10_000 });
        let (state, back) = give_back(SPEC, Some(taken), at(10_600));
        assert_eq!(back, Level { tokens: 2, updated_at: 10_000 }, "the refill clock keeps running");
        assert_eq!(state, BucketState { allowed: true, remaining: 2, next_refill_at: Some(at(11_000)) });
        // Back to the capacity: full, dated now.
        let (state, back) = give_back(SPEC, level(2, 10_000), at(10_600));
        assert_eq!(back, Level { tokens: 3, updated_at: 10_600 });
        assert_eq!(state.next_refill_at, None);
        // Already full (or missing): stays full.
        assert_eq!(give_back(SPEC, None, at(7)).1, Level { tokens: 3, updated_at: 7 });
        assert_eq!(give_back(SPEC, level(3, 0), at(7)).1, Level { tokens: 3, updated_at: 7 });
        // A refill that is due is counted first.
        assert_eq!(give_back(SPEC, level(0, 10_000), at(11_000)).1, Level { tokens: 2, updated_at: 11_000 });
    }

    #[test]
    fn a_clock_running_backwards_refills_nothing() {
        assert_eq!(refill(SPEC, level(1, 10_000), at(9_000)), Level { tokens: 1, updated_at: 10_000 });
    }

    #[test]
    fn odd_specs_are_tamed() {
        // A lowered capacity cuts the stored level down.
        let small = BucketSpec { capacity: 1, refill_every_ms: 1_000 };
        assert_eq!(refill(small, level(3, 0), at(5)), Level { tokens: 1, updated_at: 5 });
        // No capacity: always refused, and nothing to wait for.
        let none = BucketSpec { capacity: 0, refill_every_ms: 1_000 };
        assert_eq!(take(none, None, at(5)).0, BucketState { allowed: false, remaining: 0, next_refill_at: None });
        // A zero period counts as 1 ms, not as a division by zero.
        let fast = BucketSpec { capacity: 2, refill_every_ms: 0 };
        assert_eq!(refill(fast, level(0, 0), at(1)), Level { tokens: 1, updated_at: 1 });
        // A capacity too big for the column is capped.
        let huge = BucketSpec { capacity: u32::MAX, refill_every_ms: 1 };
        assert_eq!(refill(huge, None, at(0)).tokens, i32::MAX);
        assert_eq!(refill(huge, level(0, i64::MIN), at(i64::MAX)).tokens, i32::MAX);
    }

    const BACKOFF: BackoffSpec = BackoffSpec { base_ms: 1_000, max_ms: 5_000, reset_after_ms: 60_000 };

    #[test]
    fn backoff_waits_double_up_to_the_maximum_and_reset_after_quiet() {
        let (s, l) = backoff(BACKOFF, None, at(100));
        assert_eq!((s.allowed, s.level, s.wait_ms), (true, 0, 0));
        assert_eq!(l, Level { tokens: 1, updated_at: 100 });
        let (s, same) = backoff(BACKOFF, Some(l), at(1_099));
        assert_eq!(s, BackoffState { allowed: false, level: 1, wait_ms: 1_000, retry_at: Some(at(1_100)) });
        assert_eq!(same, l, "a refusal changes nothing");
        let mut l = l;
        let mut t = 100;
        for (level, wait) in [(1, 1_000), (2, 2_000), (3, 4_000), (4, 5_000), (5, 5_000)] {
            t += wait;
            let (s, next) = backoff(BACKOFF, Some(l), at(t));
            assert_eq!((s.allowed, s.level, s.wait_ms), (true, level, wait), "level {level}");
            l = next;
        }
        // A minute without an event: level 0 again.
        let (s, l) = backoff(BACKOFF, Some(l), at(t + 60_000));
        assert_eq!((s.allowed, s.level), (true, 0));
        assert_eq!(l.tokens, 1);
        // A clock behind the last event waits the whole wait.
        let (s, _) = backoff(BACKOFF, Some(l), at(t + 59_000));
        assert!(!s.allowed);
    }
}
