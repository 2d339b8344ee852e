//! The storage seam: one async trait per area (secrets, settings, signing keys, identity, logs, log streams, the phone factor,
//! the delivery outbox, rate limits, the dev inbox, transients), and [`Store`], their sum, implemented once per
//! backend (`callsign-store-sqlite`, `callsign-store-postgres`). Nothing above this crate knows which one it talks
//! to, and an area can get a second implementation of its own (a Redis [`RateLimiter`]) without touching the rest.
#![forbid(unsafe_code)]

pub mod bucket;
mod models;
pub mod sql;

use async_trait::async_trait;
use callsign_domain::Timestamp;
pub use callsign_domain::channel::Channel;
pub use callsign_domain::kinds::{EnrollmentKind, EnrollmentStatus, JobStatus, UnknownName};
pub use callsign_domain::seal::Sealed;
pub use models::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken; the text names what collided (e.g. `email`), never a value.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Anything else (connection lost, corrupt row…). The detail is for logs, never for API responses.
    #[error("storage error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The whole storage seam: every area below, plus what concerns the database as a whole. A backend implements each
/// area trait and this one; callers hold an `Arc<dyn Store>` and call any area's methods on it. Where one area is
/// handed out on its own (the rate limiter in `callsign_core::Core`), the `Arc<dyn Store>` is upcast to it, so that
/// area can also come from a second implementation (a Redis [`RateLimiter`]) without touching the rest.
#[async_trait]
pub trait Store:
    SecretStore
    + SettingStore
    + KeyStore
    + IdentityStore
    + LogStore
    + LogStreamStore
    + MfaStore
    + JobStore
    + RateLimiter
    + DevInboxStore
    + TransientStore
    + std::fmt::Debug
{
    /// `"sqlite"` or `"postgres"`, for logs and metrics.
    fn backend(&self) -> &'static str;

    /// Apply pending migrations (idempotent; safe to run from several nodes at once).
    async fn migrate(&self) -> StoreResult<()>;
    /// Ok when the database answers and every migration this build knows is applied.
    async fn check_ready(&self) -> StoreResult<()>;
}

/// Sealed secrets: reversible secrets, AEAD-encrypted by the caller (the store never sees plaintext).
#[async_trait]
pub trait SecretStore: Send + Sync {
    async fn get_secret(&self, name: &str) -> StoreResult<Option<SealedSecret>>;
    /// Insert or replace.
    async fn put_secret(&self, secret: &SealedSecret) -> StoreResult<()>;
    async fn list_secrets(&self) -> StoreResult<Vec<SealedSecret>>;
    async fn delete_secret(&self, name: &str) -> StoreResult<()>;
}

/// Settings: small JSON documents by key (tenant settings, the Guardian configuration, start-up latches).
#[async_trait]
pub trait SettingStore: Send + Sync {
    async fn get_setting(&self, key: &str) -> StoreResult<Option<serde_json::Value>>;
    async fn put_setting(&self, key: &str, value: &serde_json::Value, at: Timestamp) -> StoreResult<()>;
    /// Insert only if the key is absent; true when this call inserted it (a cross-node "first start" latch).
    async fn insert_setting_if_absent(&self, key: &str, value: &serde_json::Value, at: Timestamp) -> StoreResult<bool>;
    /// Compare-and-set: write `value` only if the stored document is still `expected` (`None`: only if the key is
    /// absent). True when written; false when another writer got there first (read again and retry, or report).
    async fn replace_setting(
        &self,
        key: &str,
        expected: Option<&serde_json::Value>,
        value: &serde_json::Value,
        at: Timestamp,
    ) -> StoreResult<bool>;
    /// How many writes to configuration (settings, applications, client grants) went through this store (and its
    /// clones) since it was opened, counted after each one; `None` when this store does not count them, and then
    /// nothing read from it may be cached. With [`config_generation`](Self::config_generation) it is what a
    /// configuration cache checks: this one for the node's own writes at once, that one for every node's.
    fn config_writes(&self) -> Option<u64> {
        None
    }
    /// The database's configuration generation: raised in the same transaction as every write to configuration, on
    /// any node. Polled by each node to drop what it has cached when another node changed something.
    async fn config_generation(&self) -> StoreResult<i64> {
        Ok(0)
    }
}

/// Signing keys: the public part as a row, the private part as a sealed secret.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Store a new signing key and its sealed private part in one transaction. When `retire_others` is true,
    /// every key without `retired_at` gets `retired_at = key.created_at` in the same transaction.
    async fn add_signing_key(&self, key: &SigningKey, private: &SealedSecret, retire_others: bool) -> StoreResult<()>;
    /// All keys, newest first.
    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKey>>;
    /// Delete a key row and its secret (after it is no longer published).
    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()>;
}

/// Identity: applications, their client grants, and users.
#[async_trait]
pub trait IdentityStore: Send + Sync {
    // --- applications ---
    /// Conflict("client_id") if the id exists.
    async fn create_client(&self, client: &Client) -> StoreResult<()>;
    async fn get_client(&self, client_id: &str) -> StoreResult<Option<Client>>;
    /// Ordered by created_at, then client_id.
    async fn list_clients(&self, page: Page) -> StoreResult<Listed<Client>>;
    /// Replace the stored client with this one. NotFound if absent.
    async fn update_client(&self, client: &Client) -> StoreResult<()>;
    /// Deletes its client grants too. NotFound if absent.
    async fn delete_client(&self, client_id: &str) -> StoreResult<()>;

    // --- client grants ---
    /// Conflict("client_id,audience") if that pair already has a grant.
    async fn create_client_grant(&self, grant: &ClientGrant) -> StoreResult<()>;
    async fn get_client_grant(&self, id: &str) -> StoreResult<Option<ClientGrant>>;
    async fn find_client_grant(&self, client_id: &str, audience: &str) -> StoreResult<Option<ClientGrant>>;
    /// Filters are exact matches; ordered by created_at, then id.
    async fn list_client_grants(&self, filter: &GrantFilter, page: Page) -> StoreResult<Listed<ClientGrant>>;
    async fn update_client_grant(&self, grant: &ClientGrant) -> StoreResult<()>;
    async fn delete_client_grant(&self, id: &str) -> StoreResult<()>;

    // --- users ---
    /// Conflict("email") if another user has this email (emails are stored lowercased by the caller).
    async fn create_user(&self, user: &User) -> StoreResult<()>;
    async fn get_user(&self, user_id: &str) -> StoreResult<Option<User>>;
    async fn get_user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    /// Ordered by created_at, then user_id.
    async fn list_users(&self, filter: &UserFilter, page: Page) -> StoreResult<Listed<User>>;
    /// Replace. NotFound if absent, Conflict("email") on a taken email.
    async fn update_user(&self, user: &User) -> StoreResult<()>;
    async fn delete_user(&self, user_id: &str) -> StoreResult<()>;
    /// Atomically `logins_count += 1`, `last_login = at`. NotFound if absent.
    async fn record_login(&self, user_id: &str, at: Timestamp) -> StoreResult<()>;
}

/// Log events (the audit log behind `/api/v2/logs`).
#[async_trait]
pub trait LogStore: Send + Sync {
    async fn insert_log(&self, event: &LogEvent) -> StoreResult<()>;
    /// Insert several events in one atomic step (all or none): what a group commit writes. A conflict on any
    /// `log_id` fails the whole batch (the caller then inserts them one by one to tell which).
    async fn insert_logs(&self, events: &[LogEvent]) -> StoreResult<()> {
        for e in events {
            self.insert_log(e).await?;
        }
        Ok(())
    }
    async fn get_log(&self, log_id: &str) -> StoreResult<Option<LogEvent>>;
    /// See [`LogQuery`] for ordering.
    async fn list_logs(&self, query: &LogQuery) -> StoreResult<Listed<LogEvent>>;
}

/// Log streams: their settings and status, and the cursor each one follows through the log in delivery order.
///
/// The delivery order is `(tx, seq)`: on SQLite `tx` is 0 and `seq` is assigned by the single writer, so events are
/// visible in `seq` order; on PostgreSQL `tx` is the writing transaction's id and only events whose transaction is
/// older than every transaction still running are read, so an event that commits late is never stepped over
/// (docs/ARCHITECTURE.md, "Log streams").
#[async_trait]
pub trait LogStreamStore: Send + Sync {
    /// Conflict("id") if the id exists.
    async fn create_log_stream(&self, stream: &LogStream) -> StoreResult<()>;
    async fn get_log_stream(&self, id: &str) -> StoreResult<Option<LogStream>>;
    /// Oldest first.
    async fn list_log_streams(&self) -> StoreResult<Vec<LogStream>>;
    /// Replace the settings document and set the status. A change of status to `active` from another one also
    /// sets `failures = 0` and `run_at = at` (a resumed stream is tried at once, from its cursor). False if absent.
    async fn update_log_stream(
        &self,
        id: &str,
        config: &serde_json::Value,
        status: &str,
        at: Timestamp,
    ) -> StoreResult<bool>;
    /// False if absent.
    async fn delete_log_stream(&self, id: &str) -> StoreResult<bool>;
    /// Claim up to `limit` streams that are `active` with `run_at <= now` and no live claim (none, or expired):
    /// `claimed_by = worker`, `claim_expires_at = now + lease`. No stream is handed to two workers, also across
    /// processes, so one batch is never sent twice by two nodes.
    async fn claim_log_streams(
        &self,
        worker: &str,
        now: Timestamp,
        lease_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<LogStream>>;
    /// End `worker`'s claim with `outcome` (see [`LogStreamOutcome`]); the next turn may start at `next_run`
    /// (`Advanced`) or at the outcome's `retry_at` (`Failed`). Only while `claimed_by = worker`: false otherwise (the
    /// claim was lost, nothing changes).
    async fn finish_log_stream(
        &self,
        id: &str,
        worker: &str,
        outcome: &LogStreamOutcome,
        next_run: Timestamp,
        at: Timestamp,
    ) -> StoreResult<bool>;
    /// Up to `limit` log events strictly after `after` in delivery order, that every later reader will also see
    /// before anything newer (see the trait docs).
    async fn list_logs_after(&self, after: LogCursor, limit: u32) -> StoreResult<Vec<OrderedLogEvent>>;
    /// How many log events lie after `after` (a stream's lag), and the last event's place (None: no events).
    async fn log_lag(&self, after: LogCursor) -> StoreResult<(u64, Option<LogCursor>)>;
}

/// The phone factor's state: enrollments (authenticators), `mfa_token`s, challenges, enrollment tickets. The
/// methods that start a challenge also queue its delivery job (in the same transaction), which the
/// [`JobStore`] then hands to workers.
#[async_trait]
pub trait MfaStore: Send + Sync {
    // --- MFA enrollments (authenticators) ---
    /// Conflict("id") if the id exists. The user must exist (Other otherwise).
    async fn create_enrollment(&self, enrollment: &Enrollment) -> StoreResult<()>;
    async fn get_enrollment(&self, id: &str) -> StoreResult<Option<Enrollment>>;
    /// A user's enrollments, oldest first (those created in the same millisecond in the order they were stored).
    async fn list_enrollments(&self, user_id: &str) -> StoreResult<Vec<Enrollment>>;
    /// Replace. NotFound if absent.
    async fn update_enrollment(&self, enrollment: &Enrollment) -> StoreResult<()>;
    /// NotFound if absent. Its unconsumed challenges go with it.
    async fn delete_enrollment(&self, id: &str) -> StoreResult<()>;
    /// Delete every enrollment of a user (and their challenges); returns how many enrollments went.
    async fn delete_user_enrollments(&self, user_id: &str) -> StoreResult<u64>;
    /// In one transaction: delete the user's enrollments of `kind` (and their challenges) and create `new`.
    /// Returns the ids removed. On any error (e.g. Conflict("id")) nothing changes.
    async fn replace_user_enrollments(
        &self,
        user_id: &str,
        kind: EnrollmentKind,
        new: &[Enrollment],
    ) -> StoreResult<Vec<String>>;
    /// Start a phone enrollment, in one transaction that holds the user's row: when the user already has a
    /// confirmed phone, write nothing and return false; otherwise delete the user's pending enrollments (and their
    /// challenges), store `phone` and `recovery` (pending) and the enrollment's first `challenge` with its delivery
    /// `job` (waking workers as `create_challenge` does), and return true. So a user never has two pending
    /// enrollments, however many starts race.
    async fn begin_phone_enrollment(
        &self,
        phone: &Enrollment,
        recovery: Option<&Enrollment>,
        challenge: &Challenge,
        job: &DeliveryJob,
    ) -> StoreResult<bool>;
    /// Confirm the pending phone enrollment `id` of `user_id` (`enrolled_at = last_auth = at`) and the user's
    /// pending recovery code, in one transaction that holds the user's row. False, with nothing written, when it is
    /// not pending (any more) or the user already has another confirmed phone: a user never ends up with two.
    async fn confirm_phone_enrollment(&self, user_id: &str, id: &str, at: Timestamp) -> StoreResult<bool>;
    /// Spend a recovery code: replace the `secret_hash` of the confirmed recovery-code enrollment `id` by `new_hash`
    /// (and set `last_auth = at`) only if it still is `presented_hash`. With `mfa_token`, that unexpired token is
    /// deleted in the same transaction and both happen or neither. True when this call spent the code; of racing
    /// callers presenting the same code exactly one gets true, and a false changes nothing.
    async fn spend_recovery_code(
        &self,
        id: &str,
        presented_hash: &str,
        new_hash: &str,
        mfa_token: Option<&str>,
        at: Timestamp,
    ) -> StoreResult<bool>;

    // --- mfa_tokens ---
    async fn insert_mfa_token(&self, token: &MfaToken) -> StoreResult<()>;
    async fn get_mfa_token(&self, token_hash: &str) -> StoreResult<Option<MfaToken>>;
    async fn delete_mfa_token(&self, token_hash: &str) -> StoreResult<()>;

    // --- challenges ---
    /// Insert the challenge and (when given) its delivery job in one transaction, then wake waiting workers
    /// (on PostgreSQL also on other nodes: NOTIFY in the same transaction).
    async fn create_challenge(&self, challenge: &Challenge, job: Option<&DeliveryJob>) -> StoreResult<()>;
    async fn get_challenge(&self, id: &str) -> StoreResult<Option<Challenge>>;
    /// Spend a challenge: mark it consumed if it is unconsumed and `expires_at > at`. With `mfa_token` (the hash of
    /// the mfa_token the grant presented), that unexpired token is deleted in the same transaction, and the call
    /// succeeds only if both happen: a token is spent once even by grants naming different challenges. True when this
    /// call spent it; of racing callers exactly one gets true, and a false changes nothing.
    async fn consume_challenge(&self, id: &str, mfa_token: Option<&str>, at: Timestamp) -> StoreResult<bool>;

    // --- enrollment tickets ---
    async fn create_ticket(&self, ticket: &EnrollmentTicket) -> StoreResult<()>;
    /// Mark used and return it, only if it exists, is unused and `expires_at > at`.
    async fn consume_ticket(&self, ticket_hash: &str, at: Timestamp) -> StoreResult<Option<EnrollmentTicket>>;
}

/// The delivery outbox: durable jobs, claimed by workers under a lease. (Jobs that belong to a challenge are
/// queued with it, by [`MfaStore::create_challenge`] and [`MfaStore::begin_phone_enrollment`].)
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Insert a job on its own (test messages), waking workers likewise.
    async fn enqueue_job(&self, job: &DeliveryJob) -> StoreResult<()>;
    /// Claim up to `limit` jobs that are `pending` with `run_at <= now`, or `running` with an expired claim
    /// (a crashed worker's). Claimed jobs become `running`, `claimed_by = worker`, `claim_expires_at = now + lease`,
    /// `attempts += 1`. No job is handed to two workers, also across processes (SKIP LOCKED on PostgreSQL).
    /// Oldest `run_at` first.
    async fn claim_jobs(
        &self,
        worker: &str,
        now: Timestamp,
        lease_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryJob>>;
    /// Renew `worker`'s lease: every job `running` and `claimed_by = worker` gets `claim_expires_at = now + lease`
    /// (a heartbeat while a send is in flight, so a slow send is not taken over). Returns how many jobs.
    async fn renew_claims(&self, worker: &str, now: Timestamp, lease_ms: i64) -> StoreResult<u64>;
    /// End or reschedule a claimed job. Only applies while `claimed_by = worker` and status is `running`;
    /// returns false otherwise (the claim was lost). Terminal outcomes erase the payload and set `finished_at`.
    async fn finish_job(&self, id: &str, worker: &str, outcome: &JobOutcome, at: Timestamp) -> StoreResult<bool>;
    /// Cancel a job that is still `pending` (not claimed): status `cancelled`, `details` replaced, payload erased,
    /// `finished_at = at`. True when this call cancelled it; a job that is claimed, running or terminal is left
    /// alone (false). Of a cancel racing a claim exactly one wins, also across processes.
    async fn cancel_pending_job(&self, id: &str, details: &serde_json::Value, at: Timestamp) -> StoreResult<bool>;
    /// Move a job that is still `pending` to `run_at` (earlier or later) with `details` replaced, then wake workers.
    /// False (nothing changed) when it is not pending.
    async fn reschedule_pending_job(
        &self,
        id: &str,
        run_at: Timestamp,
        details: &serde_json::Value,
    ) -> StoreResult<bool>;
    async fn get_job(&self, id: &str) -> StoreResult<Option<DeliveryJob>>;
    /// Jobs in the given status (all when None), oldest first; for tests and operators.
    async fn list_jobs(&self, status: Option<JobStatus>, limit: u32) -> StoreResult<Vec<DeliveryJob>>;
    /// The queue as a monitor sees it at `now`: jobs due (pending, `run_at` passed), jobs being sent, and when the
    /// oldest due job became due.
    async fn queue_stats(&self, now: Timestamp) -> StoreResult<QueueStats>;
    /// Append `receipt` (a delivery receipt from the provider) to the job's `details.receipts` array, whatever the
    /// job's status; when `receipt` is an object it gets `received_at` (RFC 3339 of `at`) unless it has one.
    /// Read-modify-write in one transaction. False when there is no such job.
    async fn record_job_receipt(&self, id: &str, receipt: &serde_json::Value, at: Timestamp) -> StoreResult<bool>;
    /// Wait until a job may be ready (a new job was enqueued) or `max_ms` passes. Spurious wake-ups are fine.
    async fn wait_for_jobs(&self, max_ms: u64);
}

/// Rate-limit token buckets, keyed by a string (`send:<user>`, `otp-fail:<user>`…), with the arithmetic of
/// [`bucket`]. Every call must be atomic across every node that shares the limiter: the SQL backends hold the
/// bucket's row for the read-refill-write. `Debug` so that it can be held on its own (`callsign_core::Core`).
#[async_trait]
pub trait RateLimiter: Send + Sync + std::fmt::Debug {
    /// Refill by elapsed time, then take one token if there is one.
    async fn bucket_take(&self, key: &str, spec: BucketSpec, now: Timestamp) -> StoreResult<BucketState>;
    /// Refill by elapsed time and report, taking nothing.
    async fn bucket_peek(&self, key: &str, spec: BucketSpec, now: Timestamp) -> StoreResult<BucketState>;
    /// Refill by elapsed time, then put one token back (never above the capacity): undoes a
    /// [`RateLimiter::bucket_take`] whose request turned out not to count (a right code). Atomic like `bucket_take`.
    async fn bucket_give_back(&self, key: &str, spec: BucketSpec, now: Timestamp) -> StoreResult<BucketState>;
    /// Forget a bucket (it is full again), or a backoff (it starts again from the first event).
    async fn bucket_reset(&self, key: &str) -> StoreResult<()>;
    /// One more event under an exponential backoff ([`bucket::backoff`]), atomic like `bucket_take`: of parallel
    /// callers at one level exactly one is allowed. Its state lives under `key` like a bucket's.
    async fn backoff_take(&self, key: &str, spec: BackoffSpec, now: Timestamp) -> StoreResult<BackoffState>;
    /// Add to windowed counters (SMS-pumping segments, usage periods): `adds` are `(key, amount)` in namespace
    /// `ns` and the time slot that starts at `slot` (Unix ms), all in one atomic step; a counter never added to
    /// is 0. Each counter is kept at least `ttl_ms` after `now`, then may be forgotten
    /// ([`RateLimiter::counters_purge`]).
    async fn counters_add(
        &self,
        ns: &str,
        slot: i64,
        adds: &[(&str, i64)],
        now: Timestamp,
        ttl_ms: i64,
    ) -> StoreResult<()>;
    /// The counters `keys` of `ns`, each summed over the slots `window` covers, in the order of `keys`.
    async fn counters_sum(&self, ns: &str, window: CounterWindow, keys: &[&str]) -> StoreResult<Vec<i64>>;
    /// Every counter of `ns` in the slots `window` covers, one row per key and slot (for the operator's view).
    async fn counters_list(&self, ns: &str, window: CounterWindow) -> StoreResult<Vec<CounterRow>>;
    /// Add `amount` to one counter unless that takes it above `cap` (a hard cap): one atomic step, so of parallel
    /// callers exactly as many win as fit under the cap. The new value, or None when it would not fit.
    #[allow(clippy::too_many_arguments)]
    async fn counter_take(
        &self,
        ns: &str,
        slot: i64,
        key: &str,
        amount: i64,
        cap: i64,
        now: Timestamp,
        ttl_ms: i64,
    ) -> StoreResult<Option<i64>>;
    /// Forget the counters kept past their time (a limiter that expires them itself does nothing).
    async fn counters_purge(&self, now: Timestamp) -> StoreResult<u64>;
    /// Ok when the limiter answers (for `/readyz`). A store's buckets are as ready as the store, which reports
    /// through [`Store::check_ready`]; a limiter of its own (Redis) says here whether it can be reached.
    async fn limiter_ready(&self) -> StoreResult<()> {
        Ok(())
    }
}

/// The development provider's inbox.
#[async_trait]
pub trait DevInboxStore: Send + Sync {
    async fn insert_dev_message(&self, message: &DevMessage) -> StoreResult<()>;
    /// Newest first (the last stored first within a millisecond), optionally only those to one number.
    async fn list_dev_messages(&self, to: Option<&str>, page: Page) -> StoreResult<Listed<DevMessage>>;
    /// Every message ever recorded (the lifetime cap counts these).
    async fn count_dev_messages(&self) -> StoreResult<u64>;
}

/// Transients: short-lived server-side records (browser sessions, login transactions, authorization codes,
/// one-time links), keyed by `(kind, key)` where `key` is normally a hash of a random token.
#[async_trait]
pub trait TransientStore: Send + Sync {
    /// Insert or replace.
    async fn put_transient(
        &self,
        kind: &str,
        key: &str,
        value: &serde_json::Value,
        expires_at: Timestamp,
    ) -> StoreResult<()>;
    /// The value, only if it exists and `expires_at > at`.
    async fn get_transient(&self, kind: &str, key: &str, at: Timestamp) -> StoreResult<Option<serde_json::Value>>;
    /// Delete and return the value, only if it exists and has not expired: exactly one of racing callers gets it.
    async fn take_transient(&self, kind: &str, key: &str, at: Timestamp) -> StoreResult<Option<serde_json::Value>>;
    async fn delete_transient(&self, kind: &str, key: &str) -> StoreResult<()>;
    /// Delete every record with `expires_at <= at`; returns how many.
    async fn purge_transients(&self, at: Timestamp) -> StoreResult<u64>;
}
