//! Test support shared by the crates' test suites.
//!
//! [`conformance`] holds one async function per behaviour of the [`Store`] trait; [`conformance_suite!`] turns them
//! into one `#[tokio::test]` each, run against a fresh store per test, so every backend is held to the same rules.
//! [`rate_limiter_suite!`] does the same with the rate-limit rules for any [`RateLimiter`](callsign_store::RateLimiter)
//! (a store is one; [`MemoryLimiter`] is another).
#![forbid(unsafe_code)]

use std::future::Future;
use std::sync::Arc;

use callsign_store::Store;

/// The URL of a service a test needs (`CALLSIGN_TEST_POSTGRES_URL`, `CALLSIGN_TEST_REDIS_URL`), or None after saying
/// the test is skipped. Under `CI=true` a missing URL is a failure, never a skip.
pub fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => panic!("{var} must be set in CI"),
        _ => {
            eprintln!("skipped: {var} is not set");
            None
        }
    }
}

/// `<base>_<pid>_<nanos>_<n>`: a name (schema, key prefix) no other test of this process or of an earlier run uses.
pub fn unique_name(base: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    #[allow(clippy::disallowed_methods)] // only to make the name unique, not to tell the time
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{base}_{}_{nanos}_{n}", std::process::id())
}

pub mod conformance;
mod limiter;

pub use limiter::MemoryLimiter;

/// A store made for one test, with whatever must live as long as it (a temp dir) or be cleaned up after it
/// (a PostgreSQL schema).
pub trait Fixture {
    fn store(&self) -> &dyn Store;

    /// Called after the test body passed (not after a failure, so the data stays there to look at).
    fn finish(self) -> impl Future<Output = ()>
    where
        Self: Sized,
    {
        async {}
    }
}

impl Fixture for Box<dyn Store> {
    fn store(&self) -> &dyn Store {
        self.as_ref()
    }
}

impl Fixture for Arc<dyn Store> {
    fn store(&self) -> &dyn Store {
        self.as_ref()
    }
}

/// One `#[tokio::test]` per function in [`conformance`], named after it.
///
/// `$make` is called once per test: a function or closure taking no argument and returning a future of
/// `Option<F>` where `F:` [`Fixture`] (for example `Option<Box<dyn Store>>`), holding a fresh, migrated store.
/// `None` skips the test (the maker says why on stderr), for a backend that is not available here.
/// The calling crate needs `tokio` (with `macros` and `rt`) among its dev-dependencies.
///
/// ```ignore
/// async fn fresh() -> Option<Box<dyn Store>> { /* connect, migrate */ }
/// callsign_testkit::conformance_suite!(fresh);
/// ```
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@tests $make;
            migrate_is_idempotent_and_ready,
            secrets_roundtrip,
            secrets_put_replaces,
            secrets_list_and_delete,
            settings_get_and_put,
            config_writes_raise_the_generation,
            settings_insert_if_absent_latches_once,
            settings_replace_is_compare_and_set,
            settings_compare_and_set_has_one_winner,
            signing_keys_add_and_list_newest_first,
            signing_keys_retire_others,
            signing_keys_delete_removes_secret,
            clients_crud,
            clients_absent_is_not_found,
            clients_duplicate_id_conflicts,
            clients_paging_and_total,
            clients_delete_cascades_grants,
            grants_crud,
            grants_absent_is_not_found,
            grants_unique_pair_conflicts,
            grants_filters_and_paging,
            users_crud,
            users_absent_is_not_found,
            users_email_conflict_on_create,
            users_email_conflict_on_update,
            users_get_by_email_and_filter,
            users_paging_and_total,
            users_record_login_increments,
            users_concurrent_logins_are_all_counted,
            logs_insert_and_get,
            logs_insert_many_is_all_or_nothing,
            logs_page_newest_first,
            logs_checkpoint_oldest_first,
            logs_filters_and_totals,
            logs_date_range_is_half_open,
            log_streams_crud,
            log_streams_claim_finish_and_resume,
            log_streams_follow_the_log_in_insertion_order,
            log_streams_concurrent_claims_hand_out_each_stream_once,
            enrollments_crud,
            enrollments_replace_is_all_or_nothing,
            enrollments_absent_or_orphan,
            enrollments_list_oldest_first,
            enrollments_take_their_challenges_along,
            enrollments_cascade_on_user_delete,
            recovery_codes_are_spent_once,
            phone_enrollments_start_and_confirm_one_at_a_time,
            mfa_tokens_roundtrip,
            challenges_with_job_in_one_transaction,
            challenges_consume_once,
            challenges_expire_and_spend_their_mfa_token_once,
            jobs_enqueue_get_and_list,
            jobs_claim_only_due_ones,
            jobs_stale_claims_are_reclaimed,
            jobs_renew_extends_only_own_running_claims,
            jobs_finish_sent_and_failed_erase_the_payload,
            jobs_retry_waits_for_its_time,
            jobs_record_receipts_in_their_details,
            jobs_concurrent_claims_hand_out_each_job_once,
            jobs_concurrent_receipts_are_all_kept,
            jobs_a_claimed_job_finishes_once,
            jobs_cancel_and_reschedule_only_pending_ones,
            jobs_cancel_racing_claims_has_one_winner,
            jobs_wait_wakes_on_enqueue,
            buckets_take_until_empty_then_refill,
            buckets_peek_does_not_consume_and_reset_refills,
            buckets_concurrent_takes_never_over_grant,
            buckets_give_back_undoes_takes_up_to_capacity,
            backoff_waits_double_and_reset,
            backoff_concurrent_takes_allow_one,
            counters_add_sum_list_and_purge,
            counters_add_merges_keys_and_counts_parallel_adds,
            counter_take_concurrent_never_over_cap,
            dev_messages_newest_first_filtered_and_counted,
            tickets_consume_once_and_not_after_expiry,
            transients_put_get_take_and_expire,
            transients_take_once_under_races,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[::tokio::test]
            async fn $name() {
                let Some(fixture) = ($make)().await else { return };
                $crate::conformance::$name($crate::Fixture::store(&fixture)).await;
                $crate::Fixture::finish(fixture).await;
            }
        )*
    };
}

/// One `#[tokio::test]` per rate-limit rule in [`conformance`] (the `buckets_*` functions, which every store also
/// runs through [`conformance_suite!`]), for a [`RateLimiter`](callsign_store::RateLimiter) that is not a store.
///
/// `$make` is called once per test: a function or closure taking no argument and returning a future of `Option<L>`,
/// where `L` dereferences to a fresh limiter (`Box<dyn RateLimiter>`, `Arc<MemoryLimiter>`…); `None` skips the test.
///
/// ```ignore
/// async fn fresh() -> Option<Box<dyn RateLimiter>> { Some(Box::new(MemoryLimiter::new())) }
/// callsign_testkit::rate_limiter_suite!(fresh);
/// ```
#[macro_export]
macro_rules! rate_limiter_suite {
    ($make:expr) => {
        $crate::rate_limiter_suite!(@tests $make;
            buckets_take_until_empty_then_refill,
            buckets_peek_does_not_consume_and_reset_refills,
            buckets_concurrent_takes_never_over_grant,
            buckets_give_back_undoes_takes_up_to_capacity,
            backoff_waits_double_and_reset,
            backoff_concurrent_takes_allow_one,
            counters_add_sum_list_and_purge,
            counters_add_merges_keys_and_counts_parallel_adds,
            counter_take_concurrent_never_over_cap,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[::tokio::test]
            async fn $name() {
                let Some(limiter) = ($make)().await else { return };
                $crate::conformance::$name(&*limiter).await;
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    use callsign_store::RateLimiter;

    use crate::MemoryLimiter;

    async fn fresh() -> Option<Box<dyn RateLimiter>> {
        Some(Box::new(MemoryLimiter::new()))
    }

    // The in-memory limiter keeps the rules the stores keep.
    crate::rate_limiter_suite!(fresh);
}
