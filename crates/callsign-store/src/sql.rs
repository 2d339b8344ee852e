//! SQL shared by the sqlx backends (`callsign-store-sqlite`, `callsign-store-postgres`), written once.
//!
//! Both backends create the same tables with the same column names and portable types (timestamps as `BIGINT`
//! milliseconds; documents, JWKs and scope lists as JSON in `TEXT`), so every statement here runs unchanged on
//! SQLite and PostgreSQL: sqlx accepts `$1`-style numbered parameters on both.
//!
//! What is shared:
//! - the statements (`const`s below),
//! - the row shapes (tuples decoded with `sqlx::query_as`) and their mapping to the models,
//! - the whole implementation of [`Store`](crate::Store) and its area traits (one `impl` block per area), through
//!   [`impl_sqlx_store!`](crate::impl_sqlx_store), expanded inside each backend crate so that this crate does not
//!   depend on sqlx.
//!
//! What stays in each backend: pool setup, the migrations themselves (types differ: `BLOB`/`BYTEA`), turning
//! a database error into a [`StoreError`] (unique-violation codes and constraint names differ), and the few places
//! where concurrency control differs (row locks, how a read-modify-write transaction starts, how waiting workers
//! are woken). Those come into [`impl_sqlx_store!`](crate::impl_sqlx_store) as arguments; the statements they go
//! into are still written once here ([`__sql_job_claim!`](crate::__sql_job_claim),
//! [`__sql_bucket_select!`](crate::__sql_bucket_select)).
use std::fmt::Display;
use std::str::FromStr;

use callsign_domain::seal::Sealed;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Re-exported so that [`impl_sqlx_store!`](crate::impl_sqlx_store) needs only `sqlx` and `async-trait` from its caller.
pub use callsign_domain::Timestamp;
pub use serde_json::Value as JsonValue;

use crate::{
    Challenge, Client, ClientGrant, DeliveryJob, DevMessage, Enrollment, EnrollmentTicket, LogEvent, MfaToken,
    SealedSecret, SigningKey, StoreError, StoreResult, User,
};

// --- readiness ---

pub const PING: &str = "SELECT 1";
/// The table sqlx's migrator keeps (same name and columns on both backends).
pub const APPLIED_MIGRATIONS: &str = "SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version";

// --- secrets ---

pub const SECRET_GET: &str = "SELECT name, key_id, nonce, ciphertext, updated_at FROM secrets WHERE name = $1";
pub const SECRET_LIST: &str = "SELECT name, key_id, nonce, ciphertext, updated_at FROM secrets ORDER BY name";
pub const SECRET_UPSERT: &str = "INSERT INTO secrets (name, key_id, nonce, ciphertext, updated_at) \
     VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (name) DO UPDATE SET key_id = excluded.key_id, nonce = excluded.nonce, \
     ciphertext = excluded.ciphertext, updated_at = excluded.updated_at";
pub const SECRET_DELETE: &str = "DELETE FROM secrets WHERE name = $1";

// --- settings ---

pub const SETTING_GET: &str = "SELECT value FROM settings WHERE name = $1";
pub const SETTING_UPSERT: &str = "INSERT INTO settings (name, value, updated_at) VALUES ($1, $2, $3) \
     ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";
/// Compare-and-set on the stored text: every write serializes with [`to_json`], so a document read and written
/// back serializes to the same text.
pub const SETTING_REPLACE: &str = "UPDATE settings SET value = $1, updated_at = $2 WHERE name = $3 AND value = $4";
pub const SETTING_INSERT_IF_ABSENT: &str =
    "INSERT INTO settings (name, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING";

/// Raised in the transaction of every write to configuration (settings, clients, client grants).
pub const CONFIG_BUMP: &str = "UPDATE config_generation SET n = n + 1 WHERE id = 1";
pub const CONFIG_GENERATION: &str = "SELECT n FROM config_generation WHERE id = 1";

// --- signing keys ---

pub const SIGNING_KEY_INSERT: &str =
    "INSERT INTO signing_keys (kid, public_jwk, secret_name, created_at, retired_at) VALUES ($1, $2, $3, $4, $5)";
/// `$1` = the new key's `created_at`, `$2` = its kid.
pub const SIGNING_KEY_RETIRE_OTHERS: &str =
    "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL AND kid <> $2";
pub const SIGNING_KEY_LIST: &str = "SELECT kid, public_jwk, secret_name, created_at, retired_at FROM signing_keys \
     ORDER BY created_at DESC, kid DESC";
pub const SIGNING_KEY_DELETE: &str = "DELETE FROM signing_keys WHERE kid = $1 RETURNING secret_name";

// --- clients ---

pub const CLIENT_INSERT: &str =
    "INSERT INTO clients (client_id, secret_hash, created_at, updated_at, data) VALUES ($1, $2, $3, $4, $5)";
pub const CLIENT_GET: &str =
    "SELECT client_id, secret_hash, created_at, updated_at, data FROM clients WHERE client_id = $1";
pub const CLIENT_LIST: &str = "SELECT client_id, secret_hash, created_at, updated_at, data FROM clients \
     ORDER BY created_at, client_id LIMIT $1 OFFSET $2";
pub const CLIENT_COUNT: &str = "SELECT COUNT(*) FROM clients";
pub const CLIENT_UPDATE: &str =
    "UPDATE clients SET secret_hash = $2, created_at = $3, updated_at = $4, data = $5 WHERE client_id = $1";
pub const CLIENT_DELETE: &str = "DELETE FROM clients WHERE client_id = $1";
pub const CLIENT_DELETE_GRANTS: &str = "DELETE FROM client_grants WHERE client_id = $1";

// --- client grants ---

pub const GRANT_INSERT: &str =
    "INSERT INTO client_grants (id, client_id, audience, scope, created_at) VALUES ($1, $2, $3, $4, $5)";
pub const GRANT_GET: &str = "SELECT id, client_id, audience, scope, created_at FROM client_grants WHERE id = $1";
pub const GRANT_FIND: &str = "SELECT id, client_id, audience, scope, created_at FROM client_grants \
     WHERE client_id = $1 AND audience = $2";
/// `$1` = client_id filter, `$2` = audience filter (NULL matches all), `$3` = limit, `$4` = offset.
pub const GRANT_LIST: &str = "SELECT id, client_id, audience, scope, created_at FROM client_grants \
     WHERE ($1 IS NULL OR client_id = $1) AND ($2 IS NULL OR audience = $2) \
     ORDER BY created_at, id LIMIT $3 OFFSET $4";
pub const GRANT_COUNT: &str = "SELECT COUNT(*) FROM client_grants \
     WHERE ($1 IS NULL OR client_id = $1) AND ($2 IS NULL OR audience = $2)";
pub const GRANT_UPDATE: &str =
    "UPDATE client_grants SET client_id = $2, audience = $3, scope = $4, created_at = $5 WHERE id = $1";
pub const GRANT_DELETE: &str = "DELETE FROM client_grants WHERE id = $1";

// --- users ---

pub const USER_INSERT: &str = "INSERT INTO users \
     (user_id, email, password_hash, created_at, updated_at, last_login, logins_count, data) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
pub const USER_GET: &str = "SELECT user_id, email, password_hash, created_at, updated_at, last_login, logins_count, \
     data FROM users WHERE user_id = $1";
pub const USER_GET_BY_EMAIL: &str = "SELECT user_id, email, password_hash, created_at, updated_at, last_login, \
     logins_count, data FROM users WHERE email = $1";
/// `$1` = email filter (NULL matches all), `$2` = limit, `$3` = offset.
pub const USER_LIST: &str = "SELECT user_id, email, password_hash, created_at, updated_at, last_login, \
     logins_count, data FROM users WHERE ($1 IS NULL OR email = $1) \
     ORDER BY created_at, user_id LIMIT $2 OFFSET $3";
pub const USER_COUNT: &str = "SELECT COUNT(*) FROM users WHERE ($1 IS NULL OR email = $1)";
pub const USER_UPDATE: &str = "UPDATE users SET email = $2, password_hash = $3, created_at = $4, updated_at = $5, \
     last_login = $6, logins_count = $7, data = $8 WHERE user_id = $1";
pub const USER_DELETE: &str = "DELETE FROM users WHERE user_id = $1";
pub const USER_RECORD_LOGIN: &str =
    "UPDATE users SET logins_count = logins_count + 1, last_login = $2 WHERE user_id = $1";

// --- logs ---

pub const LOG_INSERT: &str = "INSERT INTO logs (log_id, date, event_type, user_id, client_id, data) \
     VALUES ($1, $2, $3, $4, $5, $6)";
pub const LOG_GET: &str = "SELECT log_id, date, event_type, user_id, client_id, data FROM logs WHERE log_id = $1";
/// Newest first. `$1` = type filter, `$2` = user filter (NULL matches all), `$3` = limit, `$4` = offset, `$5` / `$6`
/// = the dates (milliseconds) the events are at or after / strictly before (NULL: unbounded).
pub const LOG_LIST_PAGE: &str = "SELECT log_id, date, event_type, user_id, client_id, data FROM logs \
     WHERE ($1 IS NULL OR event_type = $1) AND ($2 IS NULL OR user_id = $2) \
     AND ($5 IS NULL OR date >= $5) AND ($6 IS NULL OR date < $6) \
     ORDER BY date DESC, log_id DESC LIMIT $3 OFFSET $4";
/// `$1` type, `$2` user, `$3` / `$4` the dates as `$5` / `$6` of [`LOG_LIST_PAGE`].
pub const LOG_COUNT: &str = "SELECT COUNT(*) FROM logs \
     WHERE ($1 IS NULL OR event_type = $1) AND ($2 IS NULL OR user_id = $2) \
     AND ($3 IS NULL OR date >= $3) AND ($4 IS NULL OR date < $4)";
/// Oldest first after a checkpoint. `$1` = type, `$2` = user, `$3` = `from` (NULL: from the start), `$4` = take,
/// `$5` / `$6` the dates as in [`LOG_LIST_PAGE`].
/// Log ids are fixed-width and time-ordered, so ordering by the id is ordering by time (PostgreSQL declares the
/// column `COLLATE "C"` so that text order is byte order, as it is on SQLite).
pub const LOG_LIST_FROM: &str = "SELECT log_id, date, event_type, user_id, client_id, data FROM logs \
     WHERE ($1 IS NULL OR event_type = $1) AND ($2 IS NULL OR user_id = $2) AND ($3 IS NULL OR log_id > $3) \
     AND ($5 IS NULL OR date >= $5) AND ($6 IS NULL OR date < $6) \
     ORDER BY log_id LIMIT $4";
/// `$1` type, `$2` user, `$3` `from`, `$4` / `$5` the dates.
pub const LOG_COUNT_FROM: &str = "SELECT COUNT(*) FROM logs \
     WHERE ($1 IS NULL OR event_type = $1) AND ($2 IS NULL OR user_id = $2) AND ($3 IS NULL OR log_id > $3) \
     AND ($4 IS NULL OR date >= $4) AND ($5 IS NULL OR date < $5)";

// --- log streams ---

/// The columns of a stream, in the order [`LogStreamRow`] reads them.
#[doc(hidden)]
#[macro_export]
macro_rules! __sql_log_stream_columns {
    () => {
        "id, config, status, cursor_tx, cursor_seq, run_at, claimed_by, claim_expires_at, failures, last_error, \
         last_error_at, delivered, created_at, updated_at"
    };
}
pub const LOG_STREAM_INSERT: &str = concat!(
    "INSERT INTO log_streams (",
    crate::__sql_log_stream_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
);
pub const LOG_STREAM_GET: &str =
    concat!("SELECT ", crate::__sql_log_stream_columns!(), " FROM log_streams WHERE id = $1");
pub const LOG_STREAM_LIST: &str =
    concat!("SELECT ", crate::__sql_log_stream_columns!(), " FROM log_streams ORDER BY created_at, id");
/// `$1` = id, `$2` = config, `$3` = status, `$4` = when. Resuming (to `active` from another status) clears the
/// failures and makes the stream due at once.
pub const LOG_STREAM_UPDATE: &str = "UPDATE log_streams SET config = $2, \
     failures = CASE WHEN $3 = 'active' AND status <> 'active' THEN 0 ELSE failures END, \
     run_at = CASE WHEN $3 = 'active' AND status <> 'active' THEN $4 ELSE run_at END, \
     status = $3, updated_at = $4 WHERE id = $1";
pub const LOG_STREAM_DELETE: &str = "DELETE FROM log_streams WHERE id = $1";
/// Claim due streams. `$1` = worker, `$2` = now, `$3` = claim expiry, `$4` = limit; `$lock` as for jobs
/// ([`__sql_job_claim!`](crate::__sql_job_claim)).
#[doc(hidden)]
#[macro_export]
macro_rules! __sql_log_stream_claim {
    ($lock:literal) => {
        concat!(
            "UPDATE log_streams SET claimed_by = $1, claim_expires_at = $3 WHERE id IN (SELECT id FROM log_streams \
             WHERE status = 'active' AND run_at <= $2 AND (claimed_by IS NULL OR claim_expires_at < $2) \
             ORDER BY run_at, id LIMIT $4 ",
            $lock,
            ") RETURNING ",
            $crate::__sql_log_stream_columns!()
        )
    };
}
/// `$1` = id, `$2` = worker, `$3` = cursor tx, `$4` = cursor seq, `$5` = events sent, `$6` = next run, `$7` = when.
pub const LOG_STREAM_ADVANCE: &str = "UPDATE log_streams SET cursor_tx = $3, cursor_seq = $4, \
     delivered = delivered + $5, failures = 0, run_at = $6, claimed_by = NULL, claim_expires_at = NULL, \
     updated_at = $7 WHERE id = $1 AND claimed_by = $2";
/// `$1` = id, `$2` = worker, `$3` = error, `$4` = retry at, `$5` = suspend (0/1), `$6` = when.
pub const LOG_STREAM_FAIL: &str = "UPDATE log_streams SET failures = failures + 1, last_error = $3, \
     last_error_at = $6, run_at = $4, status = CASE WHEN $5 = 1 THEN 'suspended' ELSE status END, \
     claimed_by = NULL, claim_expires_at = NULL, updated_at = $6 WHERE id = $1 AND claimed_by = $2";
/// Events after a cursor in delivery order: `$1` / `$2` = the cursor, `$3` = limit. A row-value comparison, which
/// both backends answer from the `(tx, seq)` index. `$horizon` is the backend's
/// condition for events every later reader sees first (nothing on SQLite; the oldest running transaction on
/// PostgreSQL, see [`LogStreamStore`](crate::LogStreamStore)).
#[doc(hidden)]
#[macro_export]
macro_rules! __sql_logs_after {
    ($horizon:literal) => {
        concat!(
            "SELECT tx, seq, log_id, date, event_type, user_id, client_id, data FROM logs \
             WHERE (tx, seq) > ($1, $2) ",
            $horizon,
            " ORDER BY tx, seq LIMIT $3"
        )
    };
}
/// `$1` / `$2` = the cursor.
pub const LOG_COUNT_AFTER: &str = "SELECT COUNT(*) FROM logs WHERE (tx, seq) > ($1, $2)";
pub const LOG_LAST: &str = "SELECT tx, seq FROM logs ORDER BY tx DESC, seq DESC LIMIT 1";

// --- MFA enrollments ---

pub const ENROLLMENT_INSERT: &str = "INSERT INTO enrollments \
     (id, user_id, kind, status, phone_number, preferred_channel, name, secret_hash, created_at, enrolled_at, \
     last_auth) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
pub const ENROLLMENT_GET: &str = "SELECT id, user_id, kind, status, phone_number, preferred_channel, name, \
     secret_hash, created_at, enrolled_at, last_auth FROM enrollments WHERE id = $1";
/// Oldest first; `seq` (not selected) keeps those stored in the same millisecond in the order they were stored.
pub const ENROLLMENT_LIST: &str = "SELECT id, user_id, kind, status, phone_number, preferred_channel, name, \
     secret_hash, created_at, enrolled_at, last_auth FROM enrollments WHERE user_id = $1 ORDER BY created_at, seq";
pub const ENROLLMENT_UPDATE: &str = "UPDATE enrollments SET user_id = $2, kind = $3, status = $4, \
     phone_number = $5, preferred_channel = $6, name = $7, secret_hash = $8, created_at = $9, enrolled_at = $10, \
     last_auth = $11 WHERE id = $1";
pub const ENROLLMENT_DELETE: &str = "DELETE FROM enrollments WHERE id = $1";
/// `$1` user, `$2` an enrollment id to leave out: how many confirmed phones the user has besides it.
pub const ENROLLMENT_COUNT_OTHER_CONFIRMED_PHONES: &str = "SELECT COUNT(*) FROM enrollments \
     WHERE user_id = $1 AND kind = 'phone' AND status = 'confirmed' AND id <> $2";
pub const ENROLLMENT_DELETE_PENDING_CHALLENGES: &str = "DELETE FROM challenges WHERE enrollment_id IN \
     (SELECT id FROM enrollments WHERE user_id = $1 AND status = 'pending')";
pub const ENROLLMENT_DELETE_PENDING: &str = "DELETE FROM enrollments WHERE user_id = $1 AND status = 'pending'";
/// `$1` id, `$2` when, `$3` user: a pending phone becomes confirmed (one row, only while it is pending).
pub const ENROLLMENT_CONFIRM_PHONE: &str = "UPDATE enrollments SET status = 'confirmed', enrolled_at = $2, \
     last_auth = $2 WHERE id = $1 AND user_id = $3 AND kind = 'phone' AND status = 'pending'";
/// `$1` user, `$2` when: the user's pending recovery code is confirmed with the phone.
pub const ENROLLMENT_CONFIRM_RECOVERY: &str = "UPDATE enrollments SET status = 'confirmed', enrolled_at = $2 \
     WHERE user_id = $1 AND kind = 'recovery-code' AND status = 'pending'";
/// Spend a recovery code: `$1` id, `$2` the hash presented, `$3` the new hash, `$4` when. Affects the row only while
/// it is a confirmed recovery code that still holds `$2`, so of racing spenders exactly one succeeds.
pub const ENROLLMENT_SPEND_SECRET: &str = "UPDATE enrollments SET secret_hash = $3, last_auth = $4 \
     WHERE id = $1 AND kind = 'recovery-code' AND status = 'confirmed' AND secret_hash = $2";
pub const ENROLLMENT_IDS_OF_KIND: &str = "SELECT id FROM enrollments WHERE user_id = $1 AND kind = $2 ORDER BY id";
pub const ENROLLMENT_DELETE_CHALLENGES: &str = "DELETE FROM challenges WHERE enrollment_id = $1";
pub const ENROLLMENT_DELETE_BY_USER: &str = "DELETE FROM enrollments WHERE user_id = $1";
pub const ENROLLMENT_DELETE_USER_CHALLENGES: &str =
    "DELETE FROM challenges WHERE enrollment_id IN (SELECT id FROM enrollments WHERE user_id = $1)";

// --- mfa_tokens ---

pub const MFA_TOKEN_INSERT: &str = "INSERT INTO mfa_tokens \
     (token_hash, user_id, client_id, audience, scope, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
pub const MFA_TOKEN_GET: &str = "SELECT token_hash, user_id, client_id, audience, scope, created_at, expires_at \
     FROM mfa_tokens WHERE token_hash = $1";
pub const MFA_TOKEN_DELETE: &str = "DELETE FROM mfa_tokens WHERE token_hash = $1";
/// `$1` hash, `$2` now: spends an unexpired token (affects one row only the first time).
pub const MFA_TOKEN_SPEND: &str = "DELETE FROM mfa_tokens WHERE token_hash = $1 AND expires_at > $2";

// --- challenges ---

pub const CHALLENGE_INSERT: &str = "INSERT INTO challenges \
     (id, user_id, enrollment_id, channel, code_hash, mfa_token_hash, created_at, expires_at, consumed_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
pub const CHALLENGE_GET: &str = "SELECT id, user_id, enrollment_id, channel, code_hash, mfa_token_hash, created_at, \
     expires_at, consumed_at FROM challenges WHERE id = $1";
/// `$1` = id, `$2` = when. Affects one row only the first time, and only before the challenge expires.
pub const CHALLENGE_CONSUME: &str =
    "UPDATE challenges SET consumed_at = $2 WHERE id = $1 AND consumed_at IS NULL AND expires_at > $2";

// --- the delivery outbox ---

/// The columns of a job, in the order [`JobRow`] reads them (a macro, so that statements can be `concat!`ed).
#[doc(hidden)]
#[macro_export]
macro_rules! __sql_job_columns {
    () => {
        "id, channel, user_id, enrollment_id, challenge_id, provider, key_id, nonce, ciphertext, status, attempts, \
         max_attempts, run_at, claimed_by, claim_expires_at, last_error, details, created_at, finished_at"
    };
}

/// Claim due jobs. `$1` = worker, `$2` = now, `$3` = claim expiry, `$4` = limit. `$lock` is the backend's locking
/// clause for the inner `SELECT`: `FOR UPDATE SKIP LOCKED` on PostgreSQL, so that concurrent claimers (on any node)
/// skip rows another one is taking instead of both taking them; nothing on SQLite, whose single writer makes the
/// `UPDATE` atomic on its own. RETURNING gives no order: callers sort.
#[doc(hidden)]
#[macro_export]
macro_rules! __sql_job_claim {
    ($lock:literal) => {
        concat!(
            "UPDATE delivery_jobs SET status = 'running', claimed_by = $1, claim_expires_at = $3, \
             attempts = attempts + 1 WHERE id IN (SELECT id FROM delivery_jobs \
             WHERE (status = 'pending' AND run_at <= $2) OR (status = 'running' AND claim_expires_at < $2) \
             ORDER BY run_at, id LIMIT $4 ",
            $lock,
            ") RETURNING ",
            $crate::__sql_job_columns!()
        )
    };
}

pub const JOB_INSERT: &str = concat!(
    "INSERT INTO delivery_jobs (",
    crate::__sql_job_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
);
pub const JOB_GET: &str = concat!("SELECT ", crate::__sql_job_columns!(), " FROM delivery_jobs WHERE id = $1");
/// `$1` = status filter (NULL matches all), `$2` = limit.
pub const JOB_LIST: &str = concat!(
    "SELECT ",
    crate::__sql_job_columns!(),
    " FROM delivery_jobs WHERE ($1 IS NULL OR status = $1) ORDER BY created_at, id LIMIT $2"
);
/// `$1` = id, `$2` = worker, `$3` = details, `$4` = when. Erases the payload.
pub const JOB_FINISH_SENT: &str = "UPDATE delivery_jobs SET status = 'sent', details = $3, finished_at = $4, \
     key_id = NULL, nonce = NULL, ciphertext = NULL \
     WHERE id = $1 AND claimed_by = $2 AND status = 'running'";
/// `$1` = id, `$2` = worker, `$3` = error, `$4` = details, `$5` = when. Erases the payload.
pub const JOB_FINISH_FAILED: &str = "UPDATE delivery_jobs SET status = 'failed', last_error = $3, details = $4, \
     finished_at = $5, key_id = NULL, nonce = NULL, ciphertext = NULL \
     WHERE id = $1 AND claimed_by = $2 AND status = 'running'";
/// `$1` = id, `$2` = details, `$3` = when. Only a pending job; erases the payload.
pub const JOB_CANCEL_PENDING: &str = "UPDATE delivery_jobs SET status = 'cancelled', details = $2, finished_at = $3, \
     key_id = NULL, nonce = NULL, ciphertext = NULL WHERE id = $1 AND status = 'pending'";
/// `$1` = id, `$2` = run_at, `$3` = details. Only a pending job.
pub const JOB_RESCHEDULE_PENDING: &str =
    "UPDATE delivery_jobs SET run_at = $2, details = $3 WHERE id = $1 AND status = 'pending'";
/// `$1` = id, `$2` = worker, `$3` = details, `$4` = when. Erases the payload.
pub const JOB_FINISH_CANCELLED: &str = "UPDATE delivery_jobs SET status = 'cancelled', details = $3, \
     finished_at = $4, key_id = NULL, nonce = NULL, ciphertext = NULL \
     WHERE id = $1 AND claimed_by = $2 AND status = 'running'";
/// A job's details, read to change them, `$1` = id. `$lock` is the backend's row lock (as for buckets).
#[doc(hidden)]
#[macro_export]
macro_rules! __sql_job_details_select {
    ($lock:literal) => {
        concat!("SELECT details FROM delivery_jobs WHERE id = $1 ", $lock)
    };
}
/// `$1` = id, `$2` = details.
pub const JOB_DETAILS_UPDATE: &str = "UPDATE delivery_jobs SET details = $2 WHERE id = $1";

/// A job's details with `receipt` appended to `details.receipts` (details that are not an object become one).
pub fn append_receipt(details: serde_json::Value, receipt: &serde_json::Value, at: Timestamp) -> serde_json::Value {
    let mut details = match details {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    let mut receipt = receipt.clone();
    if let Some(o) = receipt.as_object_mut() {
        o.entry("received_at").or_insert_with(|| serde_json::Value::String(at.to_rfc3339()));
    }
    match details.get_mut("receipts") {
        Some(serde_json::Value::Array(list)) => list.push(receipt),
        _ => {
            details.insert("receipts".into(), serde_json::Value::Array(vec![receipt]));
        }
    }
    serde_json::Value::Object(details)
}

/// `$1` = worker, `$2` = new claim expiry: renew every running claim the worker holds.
pub const JOB_RENEW_CLAIMS: &str =
    "UPDATE delivery_jobs SET claim_expires_at = $2 WHERE status = 'running' AND claimed_by = $1";

/// `$1` = id, `$2` = worker, `$3` = error, `$4` = when to run again. Keeps the payload.
pub const JOB_RETRY: &str = "UPDATE delivery_jobs SET status = 'pending', last_error = $3, run_at = $4, \
     claimed_by = NULL, claim_expires_at = NULL \
     WHERE id = $1 AND claimed_by = $2 AND status = 'running'";

// --- rate-limit buckets ---

/// `$1` = key, `$2` = tokens, `$3` = updated_at: a full bucket, unless one is there already.
pub const BUCKET_INSERT_FULL: &str =
    "INSERT INTO buckets (key, tokens, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING";
pub const BUCKET_GET: &str = "SELECT tokens, updated_at FROM buckets WHERE key = $1";
pub const BUCKET_UPDATE: &str = "UPDATE buckets SET tokens = $2, updated_at = $3 WHERE key = $1";
/// [`BUCKET_UPDATE`] only if the row is still the level read (`$4`, `$5`): a compare-and-set.
pub const BUCKET_REPLACE: &str =
    "UPDATE buckets SET tokens = $2, updated_at = $3 WHERE key = $1 AND tokens = $4 AND updated_at = $5";
/// How many times a bucket's compare-and-set is tried before its change falls back to a transaction that holds the
/// row (many parallel changes of one bucket).
pub const BUCKET_CAS_ATTEMPTS: usize = 8;
pub const BUCKET_DELETE: &str = "DELETE FROM buckets WHERE key = $1";

/// `$1` = now: due and running jobs, and the oldest due job's `run_at` (the `delivery_jobs_due` index).
pub const JOB_QUEUE_STATS: &str = "SELECT status, COUNT(*), MIN(run_at) FROM delivery_jobs \
     WHERE (status = 'pending' AND run_at <= $1) OR status = 'running' GROUP BY status";

// --- windowed counters ---

/// `$1` ns, `$2` slot, `$3` key, `$4` amount, `$5` expires_at: add to a counter (created at the amount); it is kept
/// until the later of the two expiries.
pub const COUNTER_ADD: &str = "INSERT INTO counters (ns, slot, key, value, expires_at) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (ns, slot, key) DO UPDATE SET value = counters.value + excluded.value, \
     expires_at = CASE WHEN excluded.expires_at > counters.expires_at THEN excluded.expires_at ELSE counters.expires_at END";
/// [`COUNTER_ADD`] only while the sum stays at most `$6`: one statement, so concurrent takers queue on the row
/// and each sees the others' additions. No row back: it would not fit.
pub const COUNTER_TAKE: &str = "INSERT INTO counters (ns, slot, key, value, expires_at) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (ns, slot, key) DO UPDATE SET value = counters.value + excluded.value, \
     expires_at = CASE WHEN excluded.expires_at > counters.expires_at THEN excluded.expires_at ELSE counters.expires_at END \
     WHERE counters.value + excluded.value <= $6 RETURNING value";
/// `$1` ns, `$2` first slot, `$3` last slot: every counter of the window.
pub const COUNTER_LIST: &str =
    "SELECT key, slot, value FROM counters WHERE ns = $1 AND slot >= $2 AND slot <= $3 ORDER BY key, slot";
/// [`COUNTER_LIST`] for the keys bound from `$4` on, summed per key (`counter_sum_sql` writes the placeholders).
pub const COUNTER_SUM_HEAD: &str =
    "SELECT key, CAST(SUM(value) AS BIGINT) FROM counters WHERE ns = $1 AND slot >= $2 AND slot <= $3 AND key IN (";
/// `$1` = now: forget expired counters.
pub const COUNTER_PURGE: &str = "DELETE FROM counters WHERE expires_at < $1";

/// The statement that sums `n` counters of a window: [`COUNTER_SUM_HEAD`] with `$4` … `$(3+n)`.
/// [`LOG_INSERT`] for `n` events in one statement: six parameters per event, in its order.
pub fn log_insert_sql(n: usize) -> String {
    let mut sql = String::from("INSERT INTO logs (log_id, date, event_type, user_id, client_id, data) VALUES ");
    for i in 0..n.max(1) {
        let p = i * 6;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(${}, ${}, ${}, ${}, ${}, ${})", p + 1, p + 2, p + 3, p + 4, p + 5, p + 6));
    }
    sql
}

/// [`COUNTER_ADD`] for `n` counters of one namespace and slot in one statement: `$1` = ns, `$2` = slot, `$3` =
/// expires_at, then (key, amount) pairs. The keys must be distinct (PostgreSQL refuses to change a row twice in one
/// statement).
pub fn counter_add_sql(n: usize) -> String {
    let mut sql = String::from("INSERT INTO counters (ns, slot, key, value, expires_at) VALUES ");
    for i in 0..n.max(1) {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("($1, $2, ${}, ${}, $3)", 4 + 2 * i, 5 + 2 * i));
    }
    sql.push_str(
        " ON CONFLICT (ns, slot, key) DO UPDATE SET value = counters.value + excluded.value, \
         expires_at = CASE WHEN excluded.expires_at > counters.expires_at THEN excluded.expires_at \
         ELSE counters.expires_at END",
    );
    sql
}

/// `adds` with the amounts of equal keys summed, sorted by key: one row each for [`counter_add_sql`], taken in one
/// order by every writer (so two batches cannot wait for each other's rows).
pub fn merged_adds<'a>(adds: &[(&'a str, i64)]) -> Vec<(&'a str, i64)> {
    let mut merged: std::collections::BTreeMap<&'a str, i64> = std::collections::BTreeMap::new();
    for (key, amount) in adds {
        let v = merged.entry(*key).or_insert(0);
        *v = v.saturating_add(*amount);
    }
    merged.into_iter().collect()
}

pub fn counter_sum_sql(n: usize) -> String {
    let mut sql = String::from(COUNTER_SUM_HEAD);
    for i in 0..n.max(1) {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("${}", i + 4));
    }
    sql.push_str(") GROUP BY key");
    sql
}

/// Hold a user's row for the rest of the transaction, `$1` = user id (`$lock` as for buckets): changes to a user's
/// enrollments that must see each other (start one, confirm one) queue up behind it.
#[doc(hidden)]
#[macro_export]
macro_rules! __sql_user_lock {
    ($lock:literal) => {
        concat!("SELECT user_id FROM users WHERE user_id = $1 ", $lock)
    };
}

/// Read a bucket to change it, `$1` = key. `$lock` is the backend's row lock (`FOR UPDATE` on PostgreSQL; nothing on
/// SQLite, whose transaction already holds the write lock from `BEGIN IMMEDIATE`).
#[doc(hidden)]
#[macro_export]
macro_rules! __sql_bucket_select {
    ($lock:literal) => {
        concat!("SELECT tokens, updated_at FROM buckets WHERE key = $1 ", $lock)
    };
}

// --- development provider inbox ---

pub const DEV_MESSAGE_INSERT: &str =
    "INSERT INTO dev_messages (id, to_number, channel, body, created_at) VALUES ($1, $2, $3, $4, $5)";
/// Newest first (the last stored first among those of the same millisecond). `$1` = recipient filter (NULL matches
/// all), `$2` = limit, `$3` = offset.
pub const DEV_MESSAGE_LIST: &str = "SELECT id, to_number, channel, body, created_at FROM dev_messages \
     WHERE ($1 IS NULL OR to_number = $1) ORDER BY created_at DESC, seq DESC LIMIT $2 OFFSET $3";
pub const DEV_MESSAGE_COUNT_TO: &str = "SELECT COUNT(*) FROM dev_messages WHERE ($1 IS NULL OR to_number = $1)";
pub const DEV_MESSAGE_COUNT: &str = "SELECT COUNT(*) FROM dev_messages";

// --- enrollment tickets ---

pub const TICKET_INSERT: &str = "INSERT INTO enrollment_tickets (ticket_hash, user_id, created_at, expires_at, used_at) \
     VALUES ($1, $2, $3, $4, $5)";
/// `$1` = ticket hash, `$2` = now. Returns the ticket only the first time, and only before it expires.
pub const TICKET_CONSUME: &str = "UPDATE enrollment_tickets SET used_at = $2 \
     WHERE ticket_hash = $1 AND used_at IS NULL AND expires_at > $2 \
     RETURNING ticket_hash, user_id, created_at, expires_at, used_at";

// --- transients ---

/// `$1` kind, `$2` key, `$3` value (JSON text), `$4` expires_at.
pub const TRANSIENT_PUT: &str = "INSERT INTO transients (kind, key, value, expires_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at";
pub const TRANSIENT_GET: &str = "SELECT value FROM transients WHERE kind = $1 AND key = $2 AND expires_at > $3";
pub const TRANSIENT_TAKE: &str =
    "DELETE FROM transients WHERE kind = $1 AND key = $2 AND expires_at > $3 RETURNING value";
pub const TRANSIENT_DELETE: &str = "DELETE FROM transients WHERE kind = $1 AND key = $2";
pub const TRANSIENT_PURGE: &str = "DELETE FROM transients WHERE expires_at <= $1";

/// A stored transient value back to JSON (it was written by [`TRANSIENT_PUT`] from valid JSON).
pub fn transient_value(text: String) -> crate::StoreResult<serde_json::Value> {
    serde_json::from_str(&text).map_err(|e| crate::StoreError::Other(format!("corrupt transient value: {e}")))
}

// --- row shapes, in the column order of the statements above ---

/// `name, key_id, nonce, ciphertext, updated_at`
pub type SecretRow = (String, String, Vec<u8>, Vec<u8>, i64);
/// `kid, public_jwk, secret_name, created_at, retired_at`
pub type SigningKeyRow = (String, String, String, i64, Option<i64>);
/// `client_id, secret_hash, created_at, updated_at, data`
pub type ClientRow = (String, String, i64, i64, String);
/// `id, client_id, audience, scope, created_at`
pub type GrantRow = (String, String, String, String, i64);
/// `user_id, email, password_hash, created_at, updated_at, last_login, logins_count, data`
pub type UserRow = (String, Option<String>, Option<String>, i64, i64, Option<i64>, i64, String);
/// `log_id, date, event_type, user_id, client_id, data`
pub type LogRow = (String, i64, String, Option<String>, Option<String>, String);
/// `tx, seq, log_id, date, event_type, user_id, client_id, data`
pub type OrderedLogRow = (i64, i64, String, i64, String, Option<String>, Option<String>, String);
/// The columns of [`__sql_log_stream_columns!`](crate::__sql_log_stream_columns).
pub type LogStreamRow = (
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Option<String>,
    Option<i64>,
    i64,
    Option<String>,
    Option<i64>,
    i64,
    i64,
    i64,
);
/// `id, user_id, kind, status, phone_number, preferred_channel, name, secret_hash, created_at, enrolled_at, last_auth`
pub type EnrollmentRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
);
/// `token_hash, user_id, client_id, audience, scope, created_at, expires_at`
pub type MfaTokenRow = (String, String, String, Option<String>, String, i64, i64);
/// `id, user_id, enrollment_id, channel, code_hash, mfa_token_hash, created_at, expires_at, consumed_at`
pub type ChallengeRow = (String, String, String, String, String, Option<String>, i64, i64, Option<i64>);
/// `tokens, updated_at`
pub type BucketRow = (i32, i64);
/// `id, to_number, channel, body, created_at`
pub type DevMessageRow = (String, String, String, String, i64);
/// `ticket_hash, user_id, created_at, expires_at, used_at`
pub type TicketRow = (String, String, i64, i64, Option<i64>);

/// A `delivery_jobs` row, named after its columns ([`__sql_job_columns!`](crate::__sql_job_columns)). Too wide for
/// sqlx's tuples (16 at most), so [`impl_sqlx_store!`](crate::impl_sqlx_store) reads it column by column.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub id: String,
    pub channel: String,
    pub user_id: Option<String>,
    pub enrollment_id: Option<String>,
    pub challenge_id: Option<String>,
    pub provider: String,
    pub key_id: Option<String>,
    pub nonce: Option<Vec<u8>>,
    pub ciphertext: Option<Vec<u8>>,
    pub status: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_at: i64,
    pub claimed_by: Option<String>,
    pub claim_expires_at: Option<i64>,
    pub last_error: Option<String>,
    pub details: String,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

/// `version, success, checksum` from `_sqlx_migrations`.
pub type AppliedMigrationRow = (i64, bool, Vec<u8>);

/// Serialize a document for a `TEXT` column; `what` names it in the error.
pub fn to_json<T: Serialize + ?Sized>(what: &str, value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Other(format!("cannot encode {what}: {e}")))
}

/// Parse a document from a `TEXT` column; `what` names it in the error (a corrupt row is `Other`).
pub fn from_json<T: DeserializeOwned>(what: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Other(format!("corrupt {what} in the database: {e}")))
}

/// A name from a `TEXT` column (an enrollment's `kind` or `status`, a channel, a job's `status`) as its enum; `what`
/// names the column in the error (a name this build does not know is a corrupt row: `Other`).
pub fn from_name<T>(what: &str, text: &str) -> StoreResult<T>
where
    T: FromStr,
    T::Err: Display,
{
    text.parse().map_err(|e| StoreError::Other(format!("corrupt {what} in the database: {e}")))
}

/// A `COUNT(*)` as the model's total.
pub fn total(count: i64) -> u64 {
    u64::try_from(count).unwrap_or(0)
}

pub fn secret_from_row((name, key_id, nonce, ciphertext, updated_at): SecretRow) -> SealedSecret {
    SealedSecret { name, sealed: Sealed { key_id, nonce, ciphertext }, updated_at: Timestamp::from_millis(updated_at) }
}

pub fn signing_key_from_row(
    (kid, public_jwk, secret_name, created_at, retired_at): SigningKeyRow,
) -> StoreResult<SigningKey> {
    Ok(SigningKey {
        public_jwk: from_json("public JWK", &public_jwk)?,
        kid,
        secret_name,
        created_at: Timestamp::from_millis(created_at),
        retired_at: retired_at.map(Timestamp::from_millis),
    })
}

pub fn client_from_row((client_id, secret_hash, created_at, updated_at, data): ClientRow) -> StoreResult<Client> {
    Ok(Client {
        spec: from_json("client", &data)?,
        client_id,
        secret_hash,
        created_at: Timestamp::from_millis(created_at),
        updated_at: Timestamp::from_millis(updated_at),
    })
}

pub fn grant_from_row((id, client_id, audience, scope, created_at): GrantRow) -> StoreResult<ClientGrant> {
    Ok(ClientGrant {
        scope: from_json("client grant scope", &scope)?,
        id,
        client_id,
        audience,
        created_at: Timestamp::from_millis(created_at),
    })
}

pub fn user_from_row(
    (user_id, email, password_hash, created_at, updated_at, last_login, logins_count, data): UserRow,
) -> StoreResult<User> {
    Ok(User {
        profile: from_json("user profile", &data)?,
        user_id,
        email,
        password_hash,
        created_at: Timestamp::from_millis(created_at),
        updated_at: Timestamp::from_millis(updated_at),
        last_login: last_login.map(Timestamp::from_millis),
        logins_count,
    })
}

pub fn ordered_log_from_row(
    (tx, seq, log_id, date, event_type, user_id, client_id, data): OrderedLogRow,
) -> StoreResult<crate::OrderedLogEvent> {
    Ok(crate::OrderedLogEvent {
        cursor: crate::LogCursor { tx, seq },
        event: log_from_row((log_id, date, event_type, user_id, client_id, data))?,
    })
}

pub fn log_stream_from_row(
    (
        id,
        config,
        status,
        cursor_tx,
        cursor_seq,
        run_at,
        claimed_by,
        claim_expires_at,
        failures,
        last_error,
        last_error_at,
        delivered,
        created_at,
        updated_at,
    ): LogStreamRow,
) -> StoreResult<crate::LogStream> {
    Ok(crate::LogStream {
        id,
        config: from_json("log stream", &config)?,
        status,
        cursor: crate::LogCursor { tx: cursor_tx, seq: cursor_seq },
        run_at: Timestamp::from_millis(run_at),
        claimed_by,
        claim_expires_at: claim_expires_at.map(Timestamp::from_millis),
        failures,
        last_error,
        last_error_at: last_error_at.map(Timestamp::from_millis),
        delivered,
        created_at: Timestamp::from_millis(created_at),
        updated_at: Timestamp::from_millis(updated_at),
    })
}

pub fn log_from_row((log_id, date, event_type, user_id, client_id, data): LogRow) -> StoreResult<LogEvent> {
    Ok(LogEvent {
        body: from_json("log event", &data)?,
        log_id,
        date: Timestamp::from_millis(date),
        event_type,
        user_id,
        client_id,
    })
}

pub fn enrollment_from_row(
    (
        id,
        user_id,
        kind,
        status,
        phone_number,
        preferred_channel,
        name,
        secret_hash,
        created_at,
        enrolled_at,
        last_auth,
    ): EnrollmentRow,
) -> StoreResult<Enrollment> {
    Ok(Enrollment {
        kind: from_name("enrollment kind", &kind)?,
        status: from_name("enrollment status", &status)?,
        preferred_channel: preferred_channel.map(|c| from_name("enrollment channel", &c)).transpose()?,
        id,
        user_id,
        phone_number,
        name,
        secret_hash,
        created_at: Timestamp::from_millis(created_at),
        enrolled_at: enrolled_at.map(Timestamp::from_millis),
        last_auth: last_auth.map(Timestamp::from_millis),
    })
}

pub fn mfa_token_from_row(
    (token_hash, user_id, client_id, audience, scope, created_at, expires_at): MfaTokenRow,
) -> MfaToken {
    MfaToken {
        token_hash,
        user_id,
        client_id,
        audience,
        scope,
        created_at: Timestamp::from_millis(created_at),
        expires_at: Timestamp::from_millis(expires_at),
    }
}

pub fn challenge_from_row(
    (id, user_id, enrollment_id, channel, code_hash, mfa_token_hash, created_at, expires_at, consumed_at): ChallengeRow,
) -> StoreResult<Challenge> {
    Ok(Challenge {
        channel: from_name("challenge channel", &channel)?,
        id,
        user_id,
        enrollment_id,
        code_hash,
        mfa_token_hash,
        created_at: Timestamp::from_millis(created_at),
        expires_at: Timestamp::from_millis(expires_at),
        consumed_at: consumed_at.map(Timestamp::from_millis),
    })
}

/// The payload columns of a job (`key_id, nonce, ciphertext`), all NULL once it is erased.
pub fn job_payload(job: &DeliveryJob) -> (Option<&str>, Option<&[u8]>, Option<&[u8]>) {
    match &job.payload {
        Some(p) => (Some(p.key_id.as_str()), Some(p.nonce.as_slice()), Some(p.ciphertext.as_slice())),
        None => (None, None, None),
    }
}

pub fn job_from_row(row: JobRow) -> StoreResult<DeliveryJob> {
    let payload = match (row.key_id, row.nonce, row.ciphertext) {
        (Some(key_id), Some(nonce), Some(ciphertext)) => Some(Sealed { key_id, nonce, ciphertext }),
        (None, None, None) => None,
        _ => return Err(StoreError::Other(format!("corrupt payload of job {} in the database", row.id))),
    };
    Ok(DeliveryJob {
        details: from_json("job details", &row.details)?,
        channel: from_name("job channel", &row.channel)?,
        status: from_name("job status", &row.status)?,
        id: row.id,
        user_id: row.user_id,
        enrollment_id: row.enrollment_id,
        challenge_id: row.challenge_id,
        provider: row.provider,
        payload,
        attempts: row.attempts,
        max_attempts: row.max_attempts,
        run_at: Timestamp::from_millis(row.run_at),
        claimed_by: row.claimed_by,
        claim_expires_at: row.claim_expires_at.map(Timestamp::from_millis),
        last_error: row.last_error,
        created_at: Timestamp::from_millis(row.created_at),
        finished_at: row.finished_at.map(Timestamp::from_millis),
    })
}

/// Oldest `run_at` first, then by id (RETURNING has no order of its own).
pub fn sort_claimed(jobs: &mut [DeliveryJob]) {
    jobs.sort_by(|a, b| (a.run_at, &a.id).cmp(&(b.run_at, &b.id)));
}

pub fn bucket_level_from_row((tokens, updated_at): BucketRow) -> crate::bucket::Level {
    crate::bucket::Level { tokens, updated_at }
}

pub fn dev_message_from_row((id, to, channel, text, created_at): DevMessageRow) -> DevMessage {
    DevMessage { id, to, channel, text, created_at: Timestamp::from_millis(created_at) }
}

pub fn ticket_from_row((ticket_hash, user_id, created_at, expires_at, used_at): TicketRow) -> EnrollmentTicket {
    EnrollmentTicket {
        ticket_hash,
        user_id,
        created_at: Timestamp::from_millis(created_at),
        expires_at: Timestamp::from_millis(expires_at),
        used_at: used_at.map(Timestamp::from_millis),
    }
}

/// Compare the migrations this build embeds (`version`, `checksum`; up migrations only) with the rows in
/// `_sqlx_migrations`. Ok when every known migration is applied successfully and unchanged.
pub fn check_migrations<'a>(
    known: impl IntoIterator<Item = (i64, &'a [u8])>,
    applied: &[AppliedMigrationRow],
) -> StoreResult<()> {
    let mut pending = 0usize;
    for (version, checksum) in known {
        match applied.iter().find(|(v, _, _)| *v == version) {
            Some((_, true, stored)) if stored.as_slice() == checksum => {}
            Some((_, true, _)) => {
                return Err(StoreError::Other(format!("migration {version} was changed after it was applied")));
            }
            Some((_, false, _)) | None => pending += 1,
        }
    }
    match pending {
        0 => Ok(()),
        1 => Err(StoreError::Other("1 migration pending".into())),
        n => Err(StoreError::Other(format!("{n} migrations pending"))),
    }
}

/// Implements [`Store`](crate::Store) and each of its area traits ([`SecretStore`](crate::SecretStore),
/// [`SettingStore`](crate::SettingStore), [`KeyStore`](crate::KeyStore), [`IdentityStore`](crate::IdentityStore),
/// [`LogStore`](crate::LogStore), [`MfaStore`](crate::MfaStore), [`JobStore`](crate::JobStore),
/// [`RateLimiter`](crate::RateLimiter), [`DevInboxStore`](crate::DevInboxStore),
/// [`TransientStore`](crate::TransientStore)), one `impl` block per area, for a sqlx-backed store, once for both
/// backends.
///
/// Expand it in a backend crate that depends on `sqlx` and `async-trait`:
///
/// ```ignore
/// callsign_store::impl_sqlx_store! {
///     store: SqliteStore,          // a struct with `pool` and `writer` fields (`sqlx::Pool<_>`): writes and
///                                  // transactions go to `writer`, reads to `pool` (they may be the same pool);
///                                  // and `config_writes: Arc<AtomicU64>` (SettingStore::config_writes)
///     backend: "sqlite",           // what `Store::backend` returns
///     database: ::sqlx::Sqlite,    // the sqlx database type of the pool
///     migrator: MIGRATOR,          // a `sqlx::migrate::Migrator` (usually `sqlx::migrate!()`)
///     map_error: map_error,        // fn(sqlx::Error) -> StoreError: unique violations become `Conflict(columns)`
///     // Where the backends' concurrency control differs:
///     claim_lock: "",              // locking clause of the inner SELECT that picks jobs to claim
///     bucket_lock: "",             // locking clause of the SELECT that reads a bucket to change it
///     begin_write: "BEGIN IMMEDIATE", // how a read-modify-write transaction starts
///     log_horizon: "",                // condition on `logs` for events every later reader sees first
///     announce_jobs: SqliteStore::announce_jobs,   // async fn(&Self, &mut Connection) -> StoreResult<()>:
///                                                  // called inside the transaction that inserted a job
///     wake_workers: SqliteStore::wake_workers,     // fn(&Self): called after that transaction committed
///     wait_for_jobs: SqliteStore::wait_for_new_jobs, // async fn(&Self, u64): `JobStore::wait_for_jobs`
/// }
/// ```
///
/// It also defines a private fn `__callsign_job_row` in the calling module.
#[macro_export]
macro_rules! impl_sqlx_store {
    (
        store: $store:ty,
        backend: $backend:literal,
        database: $db:ty,
        migrator: $migrator:expr,
        map_error: $map_error:expr,
        claim_lock: $claim_lock:literal,
        bucket_lock: $bucket_lock:literal,
        begin_write: $begin_write:literal,
        log_horizon: $log_horizon:literal,
        announce_jobs: $announce_jobs:expr,
        wake_workers: $wake_workers:expr,
        wait_for_jobs: $wait_for_jobs:expr $(,)?
    ) => {
        /// Read a `delivery_jobs` row (wider than sqlx's tuples) by column name.
        fn __callsign_job_row(
            row: &<$db as ::sqlx::Database>::Row,
        ) -> ::std::result::Result<$crate::sql::JobRow, ::sqlx::Error> {
            use ::sqlx::Row as _;
            Ok($crate::sql::JobRow {
                id: row.try_get("id")?,
                channel: row.try_get("channel")?,
                user_id: row.try_get("user_id")?,
                enrollment_id: row.try_get("enrollment_id")?,
                challenge_id: row.try_get("challenge_id")?,
                provider: row.try_get("provider")?,
                key_id: row.try_get("key_id")?,
                nonce: row.try_get("nonce")?,
                ciphertext: row.try_get("ciphertext")?,
                status: row.try_get("status")?,
                attempts: row.try_get("attempts")?,
                max_attempts: row.try_get("max_attempts")?,
                run_at: row.try_get("run_at")?,
                claimed_by: row.try_get("claimed_by")?,
                claim_expires_at: row.try_get("claim_expires_at")?,
                last_error: row.try_get("last_error")?,
                details: row.try_get("details")?,
                created_at: row.try_get("created_at")?,
                finished_at: row.try_get("finished_at")?,
            })
        }

        impl $store {
            /// Raise the configuration generation, inside the transaction of a write to configuration that changed
            /// something (`SettingStore::config_generation`).
            async fn __callsign_config_bump(
                conn: &mut <$db as ::sqlx::Database>::Connection,
            ) -> $crate::StoreResult<()> {
                ::sqlx::query($crate::sql::CONFIG_BUMP).execute(&mut *conn).await.map_err($map_error)?;
                Ok(())
            }

            /// Count a write to configuration once it is over, whatever its outcome (`SettingStore::config_writes`),
            /// so that no cache keeps what might have changed.
            fn __callsign_config_counted<T>(&self, done: $crate::StoreResult<T>) -> $crate::StoreResult<T> {
                self.config_writes.fetch_add(1, ::std::sync::atomic::Ordering::SeqCst);
                done
            }

            /// Read, refill, change (`change`: take or give back) and write back a bucket in one transaction that
            /// holds the row: `begin_write` and `bucket_lock` make concurrent callers (on any node) queue up instead
            /// of interleaving, so the check and the spend cannot be separated.
            async fn __callsign_bucket_change(
                &self,
                key: &str,
                spec: $crate::BucketSpec,
                now: $crate::sql::Timestamp,
                change: fn(
                    $crate::BucketSpec,
                    Option<$crate::bucket::Level>,
                    $crate::sql::Timestamp,
                ) -> ($crate::BucketState, $crate::bucket::Level),
            ) -> $crate::StoreResult<$crate::BucketState> {
                let full = $crate::bucket::full(spec, now);
                self.__callsign_level_change(key, full, |stored| change(spec, Some(stored), now)).await
            }

            /// The one read-change-write of a row of `buckets` (a missing row stands for `initial`). Buckets and
            /// backoffs both go through here.
            ///
            /// First as a compare-and-set: read the row (no lock, a reader connection), compute, and write the new
            /// level only if the row is still the one read (or, missing, is still missing); a change that changes
            /// nothing (a refused take) writes nothing. Each change that stands is thus applied to the level it
            /// was computed from, so parallel callers serialize as if one at a time; one that lost re-reads. That
            /// is one write (one round trip to the writer) instead of a transaction of five. After
            /// `BUCKET_CAS_ATTEMPTS` lost races the change runs in a transaction that holds the row, where
            /// callers queue instead of retrying.
            async fn __callsign_level_change<T>(
                &self,
                key: &str,
                initial: $crate::bucket::Level,
                change: impl Fn($crate::bucket::Level) -> (T, $crate::bucket::Level),
            ) -> $crate::StoreResult<T> {
                for _ in 0..$crate::sql::BUCKET_CAS_ATTEMPTS {
                    let row: Option<$crate::sql::BucketRow> = ::sqlx::query_as($crate::sql::BUCKET_GET)
                        .bind(key)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err($map_error)?;
                    let done = match row.map($crate::sql::bucket_level_from_row) {
                        None => {
                            let (out, level) = change(initial);
                            let done = ::sqlx::query($crate::sql::BUCKET_INSERT_FULL)
                                .bind(key)
                                .bind(level.tokens)
                                .bind(level.updated_at)
                                .execute(&self.writer)
                                .await
                                .map_err($map_error)?;
                            (done.rows_affected() == 1).then_some(out)
                        }
                        Some(stored) => {
                            let (out, level) = change(stored);
                            if level == stored {
                                return Ok(out);
                            }
                            let done = ::sqlx::query($crate::sql::BUCKET_REPLACE)
                                .bind(key)
                                .bind(level.tokens)
                                .bind(level.updated_at)
                                .bind(stored.tokens)
                                .bind(stored.updated_at)
                                .execute(&self.writer)
                                .await
                                .map_err($map_error)?;
                            (done.rows_affected() == 1).then_some(out)
                        }
                    };
                    if let Some(out) = done {
                        return Ok(out);
                    }
                }
                self.__callsign_level_change_locked(key, initial, change).await
            }

            /// [`__callsign_level_change`] in a transaction that holds the row (a missing row is inserted as
            /// `initial` first).
            async fn __callsign_level_change_locked<T>(
                &self,
                key: &str,
                initial: $crate::bucket::Level,
                change: impl Fn($crate::bucket::Level) -> (T, $crate::bucket::Level),
            ) -> $crate::StoreResult<T> {
                const SELECT: &str = $crate::__sql_bucket_select!($bucket_lock);
                let mut tx = self.writer.begin_with($begin_write).await.map_err($map_error)?;
                ::sqlx::query($crate::sql::BUCKET_INSERT_FULL)
                    .bind(key)
                    .bind(initial.tokens)
                    .bind(initial.updated_at)
                    .execute(&mut *tx)
                    .await
                    .map_err($map_error)?;
                let row: $crate::sql::BucketRow =
                    ::sqlx::query_as(SELECT).bind(key).fetch_one(&mut *tx).await.map_err($map_error)?;
                let (out, level) = change($crate::sql::bucket_level_from_row(row));
                ::sqlx::query($crate::sql::BUCKET_UPDATE)
                    .bind(key)
                    .bind(level.tokens)
                    .bind(level.updated_at)
                    .execute(&mut *tx)
                    .await
                    .map_err($map_error)?;
                tx.commit().await.map_err($map_error)?;
                Ok(out)
            }

            async fn __callsign_insert_enrollment(
                conn: &mut <$db as ::sqlx::Database>::Connection,
                e: &$crate::Enrollment,
            ) -> $crate::StoreResult<()> {
                ::sqlx::query($crate::sql::ENROLLMENT_INSERT)
                    .bind(e.id.as_str())
                    .bind(e.user_id.as_str())
                    .bind(e.kind.as_str())
                    .bind(e.status.as_str())
                    .bind(e.phone_number.as_deref())
                    .bind(e.preferred_channel.map($crate::Channel::as_str))
                    .bind(e.name.as_deref())
                    .bind(e.secret_hash.as_deref())
                    .bind(e.created_at.millis())
                    .bind(e.enrolled_at.map(|t| t.millis()))
                    .bind(e.last_auth.map(|t| t.millis()))
                    .execute(&mut *conn)
                    .await
                    .map_err($map_error)?;
                Ok(())
            }

            async fn __callsign_insert_challenge(
                conn: &mut <$db as ::sqlx::Database>::Connection,
                challenge: &$crate::Challenge,
            ) -> $crate::StoreResult<()> {
                ::sqlx::query($crate::sql::CHALLENGE_INSERT)
                    .bind(challenge.id.as_str())
                    .bind(challenge.user_id.as_str())
                    .bind(challenge.enrollment_id.as_str())
                    .bind(challenge.channel.as_str())
                    .bind(challenge.code_hash.as_str())
                    .bind(challenge.mfa_token_hash.as_deref())
                    .bind(challenge.created_at.millis())
                    .bind(challenge.expires_at.millis())
                    .bind(challenge.consumed_at.map(|t| t.millis()))
                    .execute(&mut *conn)
                    .await
                    .map_err($map_error)?;
                Ok(())
            }

            /// Insert a job and announce it (inside the transaction; the caller wakes the workers after commit).
            async fn __callsign_insert_job(
                &self,
                conn: &mut <$db as ::sqlx::Database>::Connection,
                job: &$crate::DeliveryJob,
            ) -> $crate::StoreResult<()> {
                let details = $crate::sql::to_json("job details", &job.details)?;
                let (key_id, nonce, ciphertext) = $crate::sql::job_payload(job);
                ::sqlx::query($crate::sql::JOB_INSERT)
                    .bind(job.id.as_str())
                    .bind(job.channel.as_str())
                    .bind(job.user_id.as_deref())
                    .bind(job.enrollment_id.as_deref())
                    .bind(job.challenge_id.as_deref())
                    .bind(job.provider.as_str())
                    .bind(key_id)
                    .bind(nonce)
                    .bind(ciphertext)
                    .bind(job.status.as_str())
                    .bind(job.attempts)
                    .bind(job.max_attempts)
                    .bind(job.run_at.millis())
                    .bind(job.claimed_by.as_deref())
                    .bind(job.claim_expires_at.map(|t| t.millis()))
                    .bind(job.last_error.as_deref())
                    .bind(details)
                    .bind(job.created_at.millis())
                    .bind(job.finished_at.map(|t| t.millis()))
                    .execute(&mut *conn)
                    .await
                    .map_err($map_error)?;
                ($announce_jobs)(self, &mut *conn).await
            }

            /// Inside a write transaction: hold the user's row; false when there is no such user.
            async fn __callsign_lock_user(
                conn: &mut <$db as ::sqlx::Database>::Connection,
                user_id: &str,
            ) -> $crate::StoreResult<bool> {
                const LOCK: &str = $crate::__sql_user_lock!($bucket_lock);
                let row: Option<(String,)> =
                    ::sqlx::query_as(LOCK).bind(user_id).fetch_optional(&mut *conn).await.map_err($map_error)?;
                Ok(row.is_some())
            }

            /// Inside a write transaction: how many confirmed phones the user has besides `except`.
            async fn __callsign_other_confirmed_phones(
                conn: &mut <$db as ::sqlx::Database>::Connection,
                user_id: &str,
                except: &str,
            ) -> $crate::StoreResult<i64> {
                let (n,): (i64,) = ::sqlx::query_as($crate::sql::ENROLLMENT_COUNT_OTHER_CONFIRMED_PHONES)
                    .bind(user_id)
                    .bind(except)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err($map_error)?;
                Ok(n)
            }

            /// Inside a write transaction: spend the unexpired mfa_token `hash`; false when it was not there.
            async fn __callsign_spend_mfa_token(
                tx: &mut <$db as ::sqlx::Database>::Connection,
                hash: &str,
                at: $crate::sql::Timestamp,
            ) -> $crate::StoreResult<bool> {
                let done = ::sqlx::query($crate::sql::MFA_TOKEN_SPEND)
                    .bind(hash)
                    .bind(at.millis())
                    .execute(&mut *tx)
                    .await
                    .map_err($map_error)?;
                Ok(done.rows_affected() == 1)
            }
        }

        #[::async_trait::async_trait]
        impl $crate::Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn migrate(&self) -> $crate::StoreResult<()> {
                $migrator
                    .run(&self.writer)
                    .await
                    .map_err(|e| $crate::StoreError::Other(format!("migration failed: {e}")))
            }

            async fn check_ready(&self) -> $crate::StoreResult<()> {
                ::sqlx::query($crate::sql::PING).execute(&self.pool).await.map_err($map_error)?;
                // The database answers; a missing migrations table means nothing is applied yet.
                let applied: Vec<$crate::sql::AppliedMigrationRow> =
                    ::sqlx::query_as($crate::sql::APPLIED_MIGRATIONS).fetch_all(&self.pool).await.unwrap_or_default();
                let known = $migrator
                    .iter()
                    .filter(|m| m.migration_type.is_up_migration())
                    .map(|m| (m.version, m.checksum.as_ref()));
                $crate::sql::check_migrations(known, &applied)
            }
        }

        #[::async_trait::async_trait]
        impl $crate::SecretStore for $store {
            async fn get_secret(&self, name: &str) -> $crate::StoreResult<Option<$crate::SealedSecret>> {
                let row: Option<$crate::sql::SecretRow> = ::sqlx::query_as($crate::sql::SECRET_GET)
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($map_error)?;
                Ok(row.map($crate::sql::secret_from_row))
            }

            async fn put_secret(&self, secret: &$crate::SealedSecret) -> $crate::StoreResult<()> {
                ::sqlx::query($crate::sql::SECRET_UPSERT)
                    .bind(secret.name.as_str())
                    .bind(secret.sealed.key_id.as_str())
                    .bind(secret.sealed.nonce.as_slice())
                    .bind(secret.sealed.ciphertext.as_slice())
                    .bind(secret.updated_at.millis())
                    .execute(&self.writer)
                    .await
                    .map_err($map_error)?;
                Ok(())
            }

            async fn list_secrets(&self) -> $crate::StoreResult<Vec<$crate::SealedSecret>> {
                let rows: Vec<$crate::sql::SecretRow> =
                    ::sqlx::query_as($crate::sql::SECRET_LIST).fetch_all(&self.pool).await.map_err($map_error)?;
                Ok(rows.into_iter().map($crate::sql::secret_from_row).collect())
            }

            async fn delete_secret(&self, name: &str) -> $crate::StoreResult<()> {
                ::sqlx::query($crate::sql::SECRET_DELETE).bind(name).execute(&self.writer).await.map_err($map_error)?;
                Ok(())
            }
        }

        #[::async_trait::async_trait]
        impl $crate::SettingStore for $store {
            async fn get_setting(&self, key: &str) -> $crate::StoreResult<Option<$crate::sql::JsonValue>> {
                let row: Option<(String,)> = ::sqlx::query_as($crate::sql::SETTING_GET)
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($map_error)?;
                row.map(|(text,)| $crate::sql::from_json("setting", &text)).transpose()
            }

            async fn put_setting(
                &self,
                key: &str,
                value: &$crate::sql::JsonValue,
                at: $crate::sql::Timestamp,
            ) -> $crate::StoreResult<()> {
                let text = $crate::sql::to_json("setting", value)?;
                let done = async {
                    let mut tx = self.writer.begin().await.map_err($map_error)?;
                    ::sqlx::query($crate::sql::SETTING_UPSERT)
                        .bind(key)
                        .bind(text)
                        .bind(at.millis())
                        .execute(&mut *tx)
                        .await
                        .map_err($map_error)?;
                    Self::__callsign_config_bump(&mut *tx).await?;
                    tx.commit().await.map_err($map_error)
                }
                .await;
                self.__callsign_config_counted(done)
            }

            async fn insert_setting_if_absent(
                &self,
                key: &str,
                value: &$crate::sql::JsonValue,
                at: $crate::sql::Timestamp,
            ) -> $crate::StoreResult<bool> {
                let text = $crate::sql::to_json("setting", value)?;
                let done = async {
                    let mut tx = self.writer.begin().await.map_err($map_error)?;
                    let done = ::sqlx::query($crate::sql::SETTING_INSERT_IF_ABSENT)
                        .bind(key)
                        .bind(text)
                        .bind(at.millis())
                        .execute(&mut *tx)
                        .await
                        .map_err($map_error)?;
                    let inserted = done.rows_affected() == 1;
                    if inserted {
                        Self::__callsign_config_bump(&mut *tx).await?;
                    }
                    tx.commit().await.map_err($map_error)?;
                    Ok(inserted)
                }
                .await;
                self.__callsign_config_counted(done)
            }

            async fn replace_setting(
                &self,
                key: &str,
                expected: Option<&$crate::sql::JsonValue>,
                value: &$crate::sql::JsonValue,
                at: $crate::sql::Timestamp,
            ) -> $crate::StoreResult<bool> {
                let Some(expected) = expected else {
                    return self.insert_setting_if_absent(key, value, at).await;
                };
                let (text, expected) =
                    ($crate::sql::to_json("setting", value)?, $crate::sql::to_json("setting", expected)?);
                let done = async {
                    let mut tx = self.writer.begin().await.map_err($map_error)?;
                    let done = ::sqlx::query($crate::sql::SETTING_REPLACE)
                        .bind(text)
                        .bind(at.millis())
                        .bind(key)
                        .bind(expected)
                        .execute(&mut *tx)
                        .await
                        .map_err($map_error)?;
                    let replaced = done.rows_affected() == 1;
                    if replaced {
                        Self::__callsign_config_bump(&mut *tx).await?;
                    }
                    tx.commit().await.map_err($map_error)?;
                    Ok(replaced)
                }
                .await;
                self.__callsign_config_counted(done)
            }

            fn config_writes(&self) -> Option<u64> {
                Some(self.config_writes.load(::std::sync::atomic::Ordering::SeqCst))
            }

            async fn config_generation(&self) -> $crate::StoreResult<i64> {
                let (n,): (i64,) =
                    ::sqlx::query_as($crate::sql::CONFIG_GENERATION).fetch_one(&self.pool).await.map_err($map_error)?;
                Ok(n)
            }
        }

        #[::async_trait::async_trait]
        impl $crate::KeyStore for $store {
            async fn add_signing_key(
                &self,
                key: &$crate::SigningKey,
                private: &$crate::SealedSecret,
                retire_others: bool,
            ) -> $crate::StoreResult<()> {
                let jwk = $crate::sql::to_json("public JWK", &key.public_jwk)?;
                let mut tx = self.writer.begin().await.map_err($map_error)?;
                ::sqlx::query($crate::sql::SECRET_UPSERT)
                    .bind(private.name.as_str())
                    .bind(private.sealed.key_id.as_str())
                    .bind(private.sealed.nonce.as_slice())
                    .bind(private.sealed.ciphertext.as_slice())
                    .bind(private.updated_at.millis())
                    .execute(&mut *tx)
                    .await
                    .map_err($map_error)?;
                if retire_others {
                    ::sqlx::query($crate::sql::SIGNING_KEY_RETIRE_OTHERS)
                        .bind(key.created_at.millis())
                        .bind(key.kid.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err($map_error)?;
                }
                ::sqlx::query($crate::sql::SIGNING_KEY_INSERT)
                    .bind(key.kid.as_str())
                    .bind(jwk)
                    .bind(key.secret_name.as_str())
                    .bind(key.created_at.millis())
                    .bind(key.retired_at.map(|t| t.millis()))
                    .execute(&mut *tx)
                    .await
                    .map_err($map_error)?;
                tx.commit().await.map_err($map_error)
            }

            async fn list_signing_keys(&self) -> $crate::StoreResult<Vec<$crate::SigningKey>> {
                let rows: Vec<$crate::sql::SigningKeyRow> =
                    ::sqlx::query_as($crate::sql::SIGNING_KEY_LIST).fetch_all(&self.pool).await.map_err($map_error)?;
                rows.into_iter().map($crate::sql::signing_key_from_row).collect()
            }

            async fn delete_signing_key(&self, kid: &str) -> $crate::StoreResult<()> {
                let mut tx = self.writer.begin().await.map_err($map_error)?;
                let row: Option<(String,)> = ::sqlx::query_as($crate::sql::SIGNING_KEY_DELETE)
                    .bind(kid)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err($map_error)?;
                let Some((secret_name,)) = row else {
                    return Err($crate::StoreError::NotFound);
                };
                ::sqlx::query($crate::sql::SECRET_DELETE)
                    .bind(secret_name)
                    .execute(&mut *tx)
                    .await
                    .map_err($map_error)?;
                tx.commit().await.map_err($map_error)
            }
        }

        #[::async_trait::async_trait]
        impl $crate::IdentityStore for $store {
            // --- applications ---

            async fn create_client(&self, client: &$crate::Client) -> $crate::StoreResult<()> {
                let spec = $crate::sql::to_json("client", &client.spec)?;
                let done = async {
                    let mut tx = self.writer.begin().await.map_err($map_error)?;
                    ::sqlx::query($crate::sql::CLIENT_INSERT)
                        .bind(client.client_id.as_str())
                        .bind(client.secret_hash.as_str())
                        .bind(client.created_at.millis())
                        .bind(client.updated_at.millis())
                        .bind(spec)
                        .execute(&mut *tx)
                        .await
                        .map_err($map_error)?;
                    Self::__callsign_config_bump(&mut *tx).await?;
                    tx.commit().await.map_err($map_error)
                }
                .await;
                self.__callsign_config_counted(done)
            }

            async fn get_client(&self, client_id: &str) -> $crate::StoreResult<Option<$crate::Client>> {
                let row: Option<$crate::sql::ClientRow> = ::sqlx::query_as($crate::sql::CLIENT_GET)
                    .bind(client_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($map_error)?;
                row.map($crate::sql::client_from_row).transpose()
            }

            async fn list_clients(&self, page: $crate::Page) -> $crate::StoreResult<$crate::Listed<$crate::Client>> {
                let rows: Vec<$crate::sql::ClientRow> = ::sqlx::query_as($crate::sql::CLIENT_LIST)
                    .bind(page.limit())
                    .bind(page.offset())
                    .fetch_all(&self.pool)
                    .await
                    .map_err($map_error)?;
                let (count,): (i64,) =
                    ::sqlx::query_as($crate::sql::CLIENT_COUNT).fetch_one(&self.pool).await.map_err($map_error)?;
                Ok($crate::Listed {
                    items: rows.into_iter().map($crate::sql::client_from_row).collect::<Result<_, _>>()?,
                    total: $crate::sql::total(count),
                })
            }

            async fn update_client(&self, client: &$crate::Client) -> $crate::StoreResult<()> {
                let spec = $crate::sql::to_json("client", &client.spec)?;
                let done = async {
                    let mut tx = self.writer.begin().await.map_err($map_error)?;
                    let done = ::sqlx::query($crate::sql::CLIENT_UPDATE)
                        .bind(client.client_id.as_str())
                        .bind(client.secret_hash.as_str())
                        .bind(client.created_at.millis())
                        .bind(client.updated_at.millis())
                        .bind(spec)
                        .execute(&mut *tx)
                        .await
                        .map_err($map_error)?;
                    if done.rows_affected() == 0 {
                        return Err($crate::StoreError::NotFound);
                    }
                    Self::__callsign_config_bump(&mut *tx).await?;
                    tx.commit().await.map_err($map_error)
                }
                .await;
                self.__callsign_config_counted(done)
            }

            async fn delete_client(&self, client_id: &str) -> $crate::StoreResult<()> {
                let done = async {
                    let mut tx = self.writer.begin().await.map_err($map_error)?;
                    ::sqlx::query($crate::sql::CLIENT_DELETE_GRANTS)
                        .bind(client_id)
                        .execute(&mut *tx)
                        .await
                        .map_err($map_error)?;
                    let done = ::sqlx::query($crate::sql::CLIENT_DELETE)
                        .bind(client_id)
                        .execute(&mut *tx)
                        .await
                        .map_err($map_error)?;
                    if done.rows_affected() == 0 {
                        // Dropping the transaction rolls it back.
                        return Err($crate::StoreError::NotFound);
                    }
                    Self::__callsign_config_bump(&mut *tx).await?;
                    tx.commit().await.map_err($map_error)
                }
                .await;
                self.__callsign_config_counted(done)
            }

            // --- client grants ---

            async fn create_client_grant(&self, grant: &$crate::ClientGrant) -> $crate::StoreResult<()> {
                let scope = $crate::sql::to_json("client grant scope", &grant.scope)?;
                let done = async {
                    let mut tx = self.writer.begin().await.map_err($map_error)?;
                    ::sqlx::query($crate::sql::GRANT_INSERT)
                        .bind(grant.id.as_str())
                        .bind(grant.client_id.as_str())
                        .bind(grant.audience.as_str())
                        .bind(scope)
                        .bind(grant.created_at.millis())
                        .execute(&mut *tx)
                        .await
                        .map_err($map_error)?;
                    Self::__callsign_config_bump(&mut *tx).await?;
                    tx.commit().await.map_err($map_error)
                }
                .await;
                self.__callsign_config_counted(done)
            }

            async fn get_client_grant(&self, id: &str) -> $crate::StoreResult<Option<$crate::ClientGrant>> {
                let row: Option<$crate::sql::GrantRow> = ::sqlx::query_as($crate::sql::GRANT_GET)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($map_error)?;
                row.map($crate::sql::grant_from_row).transpose()
            }

            async fn find_client_grant(
                &self,
                client_id: &str,
                audience: &str,
            ) -> $crate::StoreResult<Option<$crate::ClientGrant>> {
                let row: Option<$crate::sql::GrantRow> = ::sqlx::query_as($crate::sql::GRANT_FIND)
                    .bind(client_id)
                    .bind(audience)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($map_error)?;
                row.map($crate::sql::grant_from_row).transpose()
            }

            async fn list_client_grants(
                &self,
                filter: &$crate::GrantFilter,
                page: $crate::Page,
            ) -> $crate::StoreResult<$crate::Listed<$crate::ClientGrant>> {
                let rows: Vec<$crate::sql::GrantRow> = ::sqlx::query_as($crate::sql::GRANT_LIST)
                    .bind(filter.client_id.as_deref())
                    .bind(filter.audience.as_deref())
                    .bind(page.limit())
                    .bind(page.offset())
                    .fetch_all(&self.pool)
                    .await
                    .map_err($map_error)?;
                let (count,): (i64,) = ::sqlx::query_as($crate::sql::GRANT_COUNT)
                    .bind(filter.client_id.as_deref())
                    .bind(filter.audience.as_deref())
                    .fetch_one(&self.pool)
                    .await
                    .map_err($map_error)?;
                Ok($crate::Listed {
                    items: rows.into_iter().map($crate::sql::grant_from_row).collect::<Result<_, _>>()?,
                    total: $crate::sql::total(count),
                })
            }

            async fn update_client_grant(&self, grant: &$crate::ClientGrant) -> $crate::StoreResult<()> {
                let scope = $crate::sql::to_json("client grant scope", &grant.scope)?;
                let done = async {
                    let mut tx = self.writer.begin().await.map_err($map_error)?;
                    let done = ::sqlx::query($crate::sql::GRANT_UPDATE)
                        .bind(grant.id.as_str())
                        .bind(grant.client_id.as_str())
                        .bind(grant.audience.as_str())
                        .bind(scope)
                        .bind(grant.created_at.millis())
                        .execute(&mut *tx)
                        .await
                        .map_err($map_error)?;
                    if done.rows_affected() == 0 {
                        return Err($crate::StoreError::NotFound);
                    }
                    Self::__callsign_config_bump(&mut *tx).await?;
                    tx.commit().await.map_err($map_error)
                }
                .await;
                self.__callsign_config_counted(done)
            }

            async fn delete_client_grant(&self, id: &str) -> $crate::StoreResult<()> {
                let done = async {
                    let mut tx = self.writer.begin().await.map_err($map_error)?;
                    let done = ::sqlx::query($crate::sql::GRANT_DELETE)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err($map_error)?;
                    if done.rows_affected() == 0 {
                        return Err($crate::StoreError::NotFound);
                    }
                    Self::__callsign_config_bump(&mut *tx).await?;
                    tx.commit().await.map_err($map_error)
                }
                .await;
                self.__callsign_config_counted(done)
            }

            // --- users ---

            async fn create_user(&self, user: &$crate::User) -> $crate::StoreResult<()> {
                ::sqlx::query($crate::sql::USER_INSERT)
                    .bind(user.user_id.as_str())
                    .bind(user.email.as_deref())
                    .bind(user.password_hash.as_deref())
                    .bind(user.created_at.millis())
                    .bind(user.updated_at.millis())
                    .bind(user.last_login.map(|t| t.millis()))
                    .bind(user.logins_count)
                    .bind($crate::sql::to_json("user profile", &user.profile)?)
                    .execute(&self.writer)
                    .await
                    .map_err($map_error)?;
                Ok(())
            }

            async fn get_user(&self, user_id: &str) -> $crate::StoreResult<Option<$crate::User>> {
                let row: Option<$crate::sql::UserRow> = ::sqlx::query_as($crate::sql::USER_GET)
                    .bind(user_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($map_error)?;
                row.map($crate::sql::user_from_row).transpose()
            }

            async fn get_user_by_email(&self, email: &str) -> $crate::StoreResult<Option<$crate::User>> {
                let row: Option<$crate::sql::UserRow> = ::sqlx::query_as($crate::sql::USER_GET_BY_EMAIL)
                    .bind(email)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($map_error)?;
                row.map($crate::sql::user_from_row).transpose()
            }

            async fn list_users(
                &self,
                filter: &$crate::UserFilter,
                page: $crate::Page,
            ) -> $crate::StoreResult<$crate::Listed<$crate::User>> {
                let rows: Vec<$crate::sql::UserRow> = ::sqlx::query_as($crate::sql::USER_LIST)
                    .bind(filter.email.as_deref())
                    .bind(page.limit())
                    .bind(page.offset())
                    .fetch_all(&self.pool)
                    .await
                    .map_err($map_error)?;
                let (count,): (i64,) = ::sqlx::query_as($crate::sql::USER_COUNT)
                    .bind(filter.email.as_deref())
                    .fetch_one(&self.pool)
                    .await
                    .map_err($map_error)?;
                Ok($crate::Listed {
                    items: rows.into_iter().map($crate::sql::user_from_row).collect::<Result<_, _>>()?,
                    total: $crate::sql::total(count),
                })
            }

            async fn update_user(&self, user: &$crate::User) -> $crate::StoreResult<()> {
                let done = ::sqlx::query($crate::sql::USER_UPDATE)
                    .bind(user.user_id.as_str())
                    .bind(user.email.as_deref())
                    .bind(user.password_hash.as_deref())
                    .bind(user.created_at.millis())
                    .bind(user.updated_at.millis())
                    .bind(user.last_login.map(|t| t.millis()))
                    .bind(user.logins_count)
                    .bind($crate::sql::to_json("user profile", &user.profile)?)
                    .execute(&self.writer)
                    .await
                    .map_err($map_error)?;
                if done.rows_affected() == 0 { Err($crate::StoreError::NotFound) } else { Ok(()) }
            }

            async fn delete_user(&self, user_id: &str) -> $crate::StoreResult<()> {
                let done = ::sqlx::query($crate::sql::USER_DELETE)
                    .bind(user_id)
                    .execute(&self.writer)
                    .await
                    .map_err($map_error)?;
                if done.rows_affected() == 0 { Err($crate::StoreError::NotFound) } else { Ok(()) }
            }

            async fn record_login(&self, user_id: &str, at: $crate::sql::Timestamp) -> $crate::StoreResult<()> {
                let done = ::sqlx::query($crate::sql::USER_RECORD_LOGIN)
                    .bind(user_id)
                    .bind(at.millis())
                    .execute(&self.writer)
                    .await
                    .map_err($map_error)?;
                if done.rows_affected() == 0 { Err($crate::StoreError::NotFound) } else { Ok(()) }
            }
        }

        #[::async_trait::async_trait]
        impl $crate::LogStore for $store {
            async fn insert_log(&self, event: &$crate::LogEvent) -> $crate::StoreResult<()> {
                ::sqlx::query($crate::sql::LOG_INSERT)
                    .bind(event.log_id.as_str())
                    .bind(event.date.millis())
                    .bind(event.event_type.as_str())
                    .bind(event.user_id.as_deref())
                    .bind(event.client_id.as_deref())
                    .bind($crate::sql::to_json("log event", &event.body)?)
                    .execute(&self.writer)
                    .await
                    .map_err($map_error)?;
                Ok(())
            }

            async fn insert_logs(&self, events: &[$crate::LogEvent]) -> $crate::StoreResult<()> {
                if events.is_empty() {
                    return Ok(());
                }
                let bodies =
                    events.iter().map(|e| $crate::sql::to_json("log event", &e.body)).collect::<Result<Vec<_>, _>>()?;
                let sql = $crate::sql::log_insert_sql(events.len());
                let mut q = ::sqlx::query(&sql);
                for (e, body) in events.iter().zip(bodies) {
                    q = q
                        .bind(e.log_id.as_str())
                        .bind(e.date.millis())
                        .bind(e.event_type.as_str())
                        .bind(e.user_id.as_deref())
                        .bind(e.client_id.as_deref())
                        .bind(body);
                }
                // One statement: all the events or none.
                q.execute(&self.writer).await.map_err($map_error)?;
                Ok(())
            }

            async fn get_log(&self, log_id: &str) -> $crate::StoreResult<Option<$crate::LogEvent>> {
                let row: Option<$crate::sql::LogRow> = ::sqlx::query_as($crate::sql::LOG_GET)
                    .bind(log_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($map_error)?;
                row.map($crate::sql::log_from_row).transpose()
            }

            async fn list_logs(
                &self,
                query: &$crate::LogQuery,
            ) -> $crate::StoreResult<$crate::Listed<$crate::LogEvent>> {
                let event_type = query.event_type.as_deref();
                let user_id = query.user_id.as_deref();
                let since = query.since.map(|t| t.millis());
                let before = query.before.map(|t| t.millis());
                let (rows, count): (Vec<$crate::sql::LogRow>, (i64,)) = match &query.paging {
                    $crate::LogPaging::Page(page) => {
                        let rows = ::sqlx::query_as($crate::sql::LOG_LIST_PAGE)
                            .bind(event_type)
                            .bind(user_id)
                            .bind(page.limit())
                            .bind(page.offset())
                            .bind(since)
                            .bind(before)
                            .fetch_all(&self.pool)
                            .await
                            .map_err($map_error)?;
                        let count = ::sqlx::query_as($crate::sql::LOG_COUNT)
                            .bind(event_type)
                            .bind(user_id)
                            .bind(since)
                            .bind(before)
                            .fetch_one(&self.pool)
                            .await
                            .map_err($map_error)?;
                        (rows, count)
                    }
                    $crate::LogPaging::From { from, take } => {
                        let rows = ::sqlx::query_as($crate::sql::LOG_LIST_FROM)
                            .bind(event_type)
                            .bind(user_id)
                            .bind(from.as_deref())
                            .bind(i64::from(*take))
                            .bind(since)
                            .bind(before)
                            .fetch_all(&self.pool)
                            .await
                            .map_err($map_error)?;
                        let count = ::sqlx::query_as($crate::sql::LOG_COUNT_FROM)
                            .bind(event_type)
                            .bind(user_id)
                            .bind(from.as_deref())
                            .bind(since)
                            .bind(before)
                            .fetch_one(&self.pool)
                            .await
                            .map_err($map_error)?;
                        (rows, count)
                    }
                };
                Ok($crate::Listed {
                    items: rows.into_iter().map($crate::sql::log_from_row).collect::<Result<_, _>>()?,
                    total: $crate::sql::total(count.0),
                })
            }
        }

        #[::async_trait::async_trait]
        impl $crate::LogStreamStore for $store {
            async fn create_log_stream(&self, s: &$crate::LogStream) -> $crate::StoreResult<()> {
                ::sqlx::query($crate::sql::LOG_STREAM_INSERT)
                    .bind(s.id.as_str())
                    .bind($crate::sql::to_json("log stream", &s.config)?)
                    .bind(s.status.as_str())
                    .bind(s.cursor.tx)
                    .bind(s.cursor.seq)
                    .bind(s.run_at.millis())
                    .bind(s.claimed_by.as_deref())
                    .bind(s.claim_expires_at.map(|t| t.millis()))
                    .bind(s.failures)
                    .bind(s.last_error.as_deref())
                    .bind(s.last_error_at.map(|t| t.millis()))
                    .bind(s.delivered)
                    .bind(s.created_at.millis())
                    .bind(s.updated_at.millis())
                    .execute(&self.writer)
                    .await
                    .map_err($map_error)?;
                Ok(())
            }

            async fn get_log_stream(&self, id: &str) -> $crate::StoreResult<Option<$crate::LogStream>> {
                let row: Option<$crate::sql::LogStreamRow> = ::sqlx::query_as($crate::sql::LOG_STREAM_GET)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($map_error)?;
                row.map($crate::sql::log_stream_from_row).transpose()
            }

            async fn list_log_streams(&self) -> $crate::StoreResult<Vec<$crate::LogStream>> {
                let rows: Vec<$crate::sql::LogStreamRow> =
                    ::sqlx::query_as($crate::sql::LOG_STREAM_LIST).fetch_all(&self.pool).await.map_err($map_error)?;
                rows.into_iter().map($crate::sql::log_stream_from_row).collect()
            }

            async fn update_log_stream(
                &self,
                id: &str,
                config: &$crate::sql::JsonValue,
                status: &str,
                at: $crate::sql::Timestamp,
            ) -> $crate::StoreResult<bool> {
                let done = ::sqlx::query($crate::sql::LOG_STREAM_UPDATE)
                    .bind(id)
                    .bind($crate::sql::to_json("log stream", config)?)
                    .bind(status)
                    .bind(at.millis())
                    .execute(&self.writer)
                    .await
                    .map_err($map_error)?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_log_stream(&self, id: &str) -> $crate::StoreResult<bool> {
                let done = ::sqlx::query($crate::sql::LOG_STREAM_DELETE)
                    .bind(id)
                    .execute(&self.writer)
                    .await
                    .map_err($map_error)?;
                Ok(done.rows_affected() > 0)
            }

            async fn claim_log_streams(
                &self,
                worker: &str,
                now: $crate::sql::Timestamp,
                lease_ms: i64,
                limit: u32,
            ) -> $crate::StoreResult<Vec<$crate::LogStream>> {
                const CLAIM: &str = $crate::__sql_log_stream_claim!($claim_lock);
                let rows: Vec<$crate::sql::LogStreamRow> = ::sqlx::query_as(CLAIM)
                    .bind(worker)
                    .bind(now.millis())
                    .bind(now.millis().saturating_add(lease_ms))
                    .bind(i64::from(limit))
                    .fetch_all(&self.writer)
                    .await
                    .map_err($map_error)?;
                let mut out: Vec<$crate::LogStream> =
                    rows.into_iter().map($crate::sql::log_stream_from_row).collect::<Result<_, _>>()?;
                out.sort_by(|a, b| (a.run_at, &a.id).cmp(&(b.run_at, &b.id)));
                Ok(out)
            }

            async fn finish_log_stream(
                &self,
                id: &str,
                worker: &str,
                outcome: &$crate::LogStreamOutcome,
                next_run: $crate::sql::Timestamp,
                at: $crate::sql::Timestamp,
            ) -> $crate::StoreResult<bool> {
                let done = match outcome {
                    $crate::LogStreamOutcome::Advanced { cursor, sent } => {
                        ::sqlx::query($crate::sql::LOG_STREAM_ADVANCE)
                            .bind(id)
                            .bind(worker)
                            .bind(cursor.tx)
                            .bind(cursor.seq)
                            .bind(*sent)
                            .bind(next_run.millis())
                            .bind(at.millis())
                            .execute(&self.writer)
                            .await
                    }
                    $crate::LogStreamOutcome::Failed { error, retry_at, suspend } => {
                        ::sqlx::query($crate::sql::LOG_STREAM_FAIL)
                            .bind(id)
                            .bind(worker)
                            .bind(error.as_str())
                            .bind(retry_at.millis())
                            .bind(i64::from(*suspend))
                            .bind(at.millis())
                            .execute(&self.writer)
                            .await
                    }
                }
                .map_err($map_error)?;
                Ok(done.rows_affected() > 0)
            }

            async fn list_logs_after(
                &self,
                after: $crate::LogCursor,
                limit: u32,
            ) -> $crate::StoreResult<Vec<$crate::OrderedLogEvent>> {
                const AFTER: &str = $crate::__sql_logs_after!($log_horizon);
                let rows: Vec<$crate::sql::OrderedLogRow> = ::sqlx::query_as(AFTER)
                    .bind(after.tx)
                    .bind(after.seq)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err($map_error)?;
                rows.into_iter().map($crate::sql::ordered_log_from_row).collect()
            }

            async fn log_lag(&self, after: $crate::LogCursor) -> $crate::StoreResult<(u64, Option<$crate::LogCursor>)> {
                let count: (i64,) = ::sqlx::query_as($crate::sql::LOG_COUNT_AFTER)
                    .bind(after.tx)
                    .bind(after.seq)
                    .fetch_one(&self.pool)
                    .await
                    .map_err($map_error)?;
                let last: Option<(i64, i64)> =
                    ::sqlx::query_as($crate::sql::LOG_LAST).fetch_optional(&self.pool).await.map_err($map_error)?;
                Ok(($crate::sql::total(count.0), last.map(|(tx, seq)| $crate::LogCursor { tx, seq })))
            }
        }

        #[::async_trait::async_trait]
        impl $crate::MfaStore for $store {
            // --- enrollments ---

            async fn create_enrollment(&self, enrollment: &$crate::Enrollment) -> $crate::StoreResult<()> {
                let mut conn = self.writer.acquire().await.map_err($map_error)?;
                Self::__callsign_insert_enrollment(&mut *conn, enrollment).await
            }

            async fn get_enrollment(&self, id: &str) -> $crate::StoreResult<Option<$crate::Enrollment>> {
                let row: Option<$crate::sql::EnrollmentRow> = ::sqlx::query_as($crate::sql::ENROLLMENT_GET)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($map_error)?;
                row.map($crate::sql::enrollment_from_row).transpose()
            }

            async fn list_enrollments(&self, user_id: &str) -> $crate::StoreResult<Vec<$crate::Enrollment>> {
                let rows: Vec<$crate::sql::EnrollmentRow> = ::sqlx::query_as($crate::sql::ENROLLMENT_LIST)
                    .bind(user_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err($map_error)?;
                rows.into_iter().map($crate::sql::enrollment_from_row).collect()
            }

            async fn update_enrollment(&self, enrollment: &$crate::Enrollment) -> $crate::StoreResult<()> {
                let done = ::sqlx::query($crate::sql::ENROLLMENT_UPDATE)
                    .bind(enrollment.id.as_str())
                    .bind(enrollment.user_id.as_str())
                    .bind(enrollment.kind.as_str())
                    .bind(enrollment.status.as_str())
                    .bind(enrollment.phone_number.as_deref())
                    .bind(enrollment.preferred_channel.map($crate::Channel::as_str))
                    .bind(enrollment.name.as_deref())
                    .bind(enrollment.secret_hash.as_deref())
                    .bind(enrollment.created_at.millis())
                    .bind(enrollment.enrolled_at.map(|t| t.millis()))
                    .bind(enrollment.last_auth.map(|t| t.millis()))
                    .execute(&self.writer)
                    .await
                    .map_err($map_error)?;
                if done.rows_affected() == 0 { Err($crate::StoreError::NotFound) } else { Ok(()) }
            }

            async fn delete_enrollment(&self, id: &str) -> $crate::StoreResult<()> {
                // The foreign key cascades too; deleting explicitly does not depend on it being enforced.
                let mut tx = self.writer.begin().await.map_err($map_error)?;
                ::sqlx::query($crate::sql::ENROLLMENT_DELETE_CHALLENGES)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err($map_error)?;
                let done = ::sqlx::query($crate::sql::ENROLLMENT_DELETE)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err($map_error)?;
                if done.rows_affected() == 0 {
                    return Err($crate::StoreError::NotFound);
                }
                tx.commit().await.map_err($map_error)
            }

            async fn delete_user_enrollments(&self, user_id: &str) -> $crate::StoreResult<u64> {
                let mut tx = self.writer.begin().await.map_err($map_error)?;
                ::sqlx::query($crate::sql::ENROLLMENT_DELETE_USER_CHALLENGES)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await
                    .map_err($map_error)?;
                let done = ::sqlx::query($crate::sql::ENROLLMENT_DELETE_BY_USER)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await
                    .map_err($map_error)?;
                tx.commit().await.map_err($map_error)?;
                Ok(done.rows_affected())
            }

            async fn replace_user_enrollments(
                &self,
                user_id: &str,
                kind: $crate::EnrollmentKind,
                new: &[$crate::Enrollment],
            ) -> $crate::StoreResult<Vec<String>> {
                let mut tx = self.writer.begin().await.map_err($map_error)?;
                let ids: Vec<(String,)> = ::sqlx::query_as($crate::sql::ENROLLMENT_IDS_OF_KIND)
                    .bind(user_id)
                    .bind(kind.as_str())
                    .fetch_all(&mut *tx)
                    .await
                    .map_err($map_error)?;
                let removed: Vec<String> = ids.into_iter().map(|(id,)| id).collect();
                for id in &removed {
                    for q in [$crate::sql::ENROLLMENT_DELETE_CHALLENGES, $crate::sql::ENROLLMENT_DELETE] {
                        ::sqlx::query(q).bind(id.as_str()).execute(&mut *tx).await.map_err($map_error)?;
                    }
                }
                for e in new {
                    Self::__callsign_insert_enrollment(&mut *tx, e).await?;
                }
                tx.commit().await.map_err($map_error)?;
                Ok(removed)
            }

            async fn begin_phone_enrollment(
                &self,
                phone: &$crate::Enrollment,
                recovery: Option<&$crate::Enrollment>,
                challenge: &$crate::Challenge,
                job: &$crate::DeliveryJob,
            ) -> $crate::StoreResult<bool> {
                let user_id = phone.user_id.as_str();
                let mut tx = self.writer.begin_with($begin_write).await.map_err($map_error)?;
                if !Self::__callsign_lock_user(&mut *tx, user_id).await? {
                    return Err($crate::StoreError::Other("enrollment of an unknown user".into()));
                }
                if Self::__callsign_other_confirmed_phones(&mut *tx, user_id, phone.id.as_str()).await? > 0 {
                    tx.rollback().await.map_err($map_error)?;
                    return Ok(false);
                }
                for q in [$crate::sql::ENROLLMENT_DELETE_PENDING_CHALLENGES, $crate::sql::ENROLLMENT_DELETE_PENDING] {
                    ::sqlx::query(q).bind(user_id).execute(&mut *tx).await.map_err($map_error)?;
                }
                Self::__callsign_insert_enrollment(&mut *tx, phone).await?;
                if let Some(r) = recovery {
                    Self::__callsign_insert_enrollment(&mut *tx, r).await?;
                }
                Self::__callsign_insert_challenge(&mut *tx, challenge).await?;
                self.__callsign_insert_job(&mut *tx, job).await?;
                tx.commit().await.map_err($map_error)?;
                ($wake_workers)(self);
                Ok(true)
            }

            async fn confirm_phone_enrollment(
                &self,
                user_id: &str,
                id: &str,
                at: $crate::sql::Timestamp,
            ) -> $crate::StoreResult<bool> {
                let mut tx = self.writer.begin_with($begin_write).await.map_err($map_error)?;
                if !Self::__callsign_lock_user(&mut *tx, user_id).await?
                    || Self::__callsign_other_confirmed_phones(&mut *tx, user_id, id).await? > 0
                {
                    tx.rollback().await.map_err($map_error)?;
                    return Ok(false);
                }
                let done = ::sqlx::query($crate::sql::ENROLLMENT_CONFIRM_PHONE)
                    .bind(id)
                    .bind(at.millis())
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await
                    .map_err($map_error)?;
                if done.rows_affected() != 1 {
                    tx.rollback().await.map_err($map_error)?;
                    return Ok(false);
                }
                ::sqlx::query($crate::sql::ENROLLMENT_CONFIRM_RECOVERY)
                    .bind(user_id)
                    .bind(at.millis())
                    .execute(&mut *tx)
                    .await
                    .map_err($map_error)?;
                tx.commit().await.map_err($map_error)?;
                Ok(true)
            }

            async fn spend_recovery_code(
                &self,
                id: &str,
                presented_hash: &str,
                new_hash: &str,
                mfa_token: Option<&str>,
                at: $crate::sql::Timestamp,
            ) -> $crate::StoreResult<bool> {
                let mut tx = self.writer.begin_with($begin_write).await.map_err($map_error)?;
                let done = ::sqlx::query($crate::sql::ENROLLMENT_SPEND_SECRET)
                    .bind(id)
                    .bind(presented_hash)
                    .bind(new_hash)
                    .bind(at.millis())
                    .execute(&mut *tx)
                    .await
                    .map_err($map_error)?;
                let spent = done.rows_affected() == 1
                    && match mfa_token {
                        Some(hash) => Self::__callsign_spend_mfa_token(&mut *tx, hash, at).await?,
                        None => true,
                    };
                if spent {
                    tx.commit().await.map_err($map_error)?;
                } else {
                    tx.rollback().await.map_err($map_error)?;
                }
                Ok(spent)
            }

            // --- mfa_tokens ---

            async fn insert_mfa_token(&self, token: &$crate::MfaToken) -> $crate::StoreResult<()> {
                ::sqlx::query($crate::sql::MFA_TOKEN_INSERT)
                    .bind(token.token_hash.as_str())
                    .bind(token.user_id.as_str())
                    .bind(token.client_id.as_str())
                    .bind(token.audience.as_deref())
                    .bind(token.scope.as_str())
                    .bind(token.created_at.millis())
                    .bind(token.expires_at.millis())
                    .execute(&self.writer)
                    .await
                    .map_err($map_error)?;
                Ok(())
            }

            async fn get_mfa_token(&self, token_hash: &str) -> $crate::StoreResult<Option<$crate::MfaToken>> {
                let row: Option<$crate::sql::MfaTokenRow> = ::sqlx::query_as($crate::sql::MFA_TOKEN_GET)
                    .bind(token_hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($map_error)?;
                Ok(row.map($crate::sql::mfa_token_from_row))
            }

            async fn delete_mfa_token(&self, token_hash: &str) -> $crate::StoreResult<()> {
                ::sqlx::query($crate::sql::MFA_TOKEN_DELETE)
                    .bind(token_hash)
                    .execute(&self.writer)
                    .await
                    .map_err($map_error)?;
                Ok(())
            }

            // --- challenges ---

            async fn create_challenge(
                &self,
                challenge: &$crate::Challenge,
                job: Option<&$crate::DeliveryJob>,
            ) -> $crate::StoreResult<()> {
                let mut tx = self.writer.begin().await.map_err($map_error)?;
                Self::__callsign_insert_challenge(&mut *tx, challenge).await?;
                if let Some(job) = job {
                    self.__callsign_insert_job(&mut *tx, job).await?;
                }
                tx.commit().await.map_err($map_error)?;
                if job.is_some() {
                    ($wake_workers)(self);
                }
                Ok(())
            }

            async fn get_challenge(&self, id: &str) -> $crate::StoreResult<Option<$crate::Challenge>> {
                let row: Option<$crate::sql::ChallengeRow> = ::sqlx::query_as($crate::sql::CHALLENGE_GET)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($map_error)?;
                row.map($crate::sql::challenge_from_row).transpose()
            }

            async fn consume_challenge(
                &self,
                id: &str,
                mfa_token: Option<&str>,
                at: $crate::sql::Timestamp,
            ) -> $crate::StoreResult<bool> {
                let mut tx = self.writer.begin_with($begin_write).await.map_err($map_error)?;
                let done = ::sqlx::query($crate::sql::CHALLENGE_CONSUME)
                    .bind(id)
                    .bind(at.millis())
                    .execute(&mut *tx)
                    .await
                    .map_err($map_error)?;
                let spent = done.rows_affected() == 1
                    && match mfa_token {
                        Some(hash) => Self::__callsign_spend_mfa_token(&mut *tx, hash, at).await?,
                        None => true,
                    };
                if spent {
                    tx.commit().await.map_err($map_error)?;
                } else {
                    tx.rollback().await.map_err($map_error)?;
                }
                Ok(spent)
            }

            // --- enrollment tickets ---

            async fn create_ticket(&self, ticket: &$crate::EnrollmentTicket) -> $crate::StoreResult<()> {
                ::sqlx::query($crate::sql::TICKET_INSERT)
                    .bind(ticket.ticket_hash.as_str())
                    .bind(ticket.user_id.as_str())
                    .bind(ticket.created_at.millis())
                    .bind(ticket.expires_at.millis())
                    .bind(ticket.used_at.map(|t| t.millis()))
                    .execute(&self.writer)
                    .await
                    .map_err($map_error)?;
                Ok(())
            }

            async fn consume_ticket(
                &self,
                ticket_hash: &str,
                at: $crate::sql::Timestamp,
            ) -> $crate::StoreResult<Option<$crate::EnrollmentTicket>> {
                let row: Option<$crate::sql::TicketRow> = ::sqlx::query_as($crate::sql::TICKET_CONSUME)
                    .bind(ticket_hash)
                    .bind(at.millis())
                    .fetch_optional(&self.writer)
                    .await
                    .map_err($map_error)?;
                Ok(row.map($crate::sql::ticket_from_row))
            }
        }

        #[::async_trait::async_trait]
        impl $crate::JobStore for $store {
            async fn enqueue_job(&self, job: &$crate::DeliveryJob) -> $crate::StoreResult<()> {
                let mut tx = self.writer.begin().await.map_err($map_error)?;
                self.__callsign_insert_job(&mut *tx, job).await?;
                tx.commit().await.map_err($map_error)?;
                ($wake_workers)(self);
                Ok(())
            }

            async fn claim_jobs(
                &self,
                worker: &str,
                now: $crate::sql::Timestamp,
                lease_ms: i64,
                limit: u32,
            ) -> $crate::StoreResult<Vec<$crate::DeliveryJob>> {
                const CLAIM: &str = $crate::__sql_job_claim!($claim_lock);
                let rows = ::sqlx::query(CLAIM)
                    .bind(worker)
                    .bind(now.millis())
                    .bind(now.millis().saturating_add(lease_ms.max(0)))
                    .bind(i64::from(limit))
                    .fetch_all(&self.writer)
                    .await
                    .map_err($map_error)?;
                let mut jobs = rows
                    .iter()
                    .map(|row| __callsign_job_row(row).map_err($map_error).and_then($crate::sql::job_from_row))
                    .collect::<$crate::StoreResult<Vec<_>>>()?;
                $crate::sql::sort_claimed(&mut jobs);
                Ok(jobs)
            }

            async fn renew_claims(
                &self,
                worker: &str,
                now: $crate::sql::Timestamp,
                lease_ms: i64,
            ) -> $crate::StoreResult<u64> {
                let done = ::sqlx::query($crate::sql::JOB_RENEW_CLAIMS)
                    .bind(worker)
                    .bind(now.millis().saturating_add(lease_ms.max(0)))
                    .execute(&self.writer)
                    .await
                    .map_err($map_error)?;
                Ok(done.rows_affected())
            }

            async fn finish_job(
                &self,
                id: &str,
                worker: &str,
                outcome: &$crate::JobOutcome,
                at: $crate::sql::Timestamp,
            ) -> $crate::StoreResult<bool> {
                let query = match outcome {
                    $crate::JobOutcome::Sent { details } => ::sqlx::query($crate::sql::JOB_FINISH_SENT)
                        .bind(id)
                        .bind(worker)
                        .bind($crate::sql::to_json("job details", details)?)
                        .bind(at.millis()),
                    $crate::JobOutcome::Failed { error, details } => ::sqlx::query($crate::sql::JOB_FINISH_FAILED)
                        .bind(id)
                        .bind(worker)
                        .bind(error.as_str())
                        .bind($crate::sql::to_json("job details", details)?)
                        .bind(at.millis()),
                    $crate::JobOutcome::Retry { error, run_at } => ::sqlx::query($crate::sql::JOB_RETRY)
                        .bind(id)
                        .bind(worker)
                        .bind(error.as_str())
                        .bind(run_at.millis()),
                    $crate::JobOutcome::Cancelled { details } => ::sqlx::query($crate::sql::JOB_FINISH_CANCELLED)
                        .bind(id)
                        .bind(worker)
                        .bind($crate::sql::to_json("job details", details)?)
                        .bind(at.millis()),
                };
                let done = query.execute(&self.writer).await.map_err($map_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn cancel_pending_job(
                &self,
                id: &str,
                details: &$crate::sql::JsonValue,
                at: $crate::sql::Timestamp,
            ) -> $crate::StoreResult<bool> {
                let done = ::sqlx::query($crate::sql::JOB_CANCEL_PENDING)
                    .bind(id)
                    .bind($crate::sql::to_json("job details", details)?)
                    .bind(at.millis())
                    .execute(&self.writer)
                    .await
                    .map_err($map_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn reschedule_pending_job(
                &self,
                id: &str,
                run_at: $crate::sql::Timestamp,
                details: &$crate::sql::JsonValue,
            ) -> $crate::StoreResult<bool> {
                let done = ::sqlx::query($crate::sql::JOB_RESCHEDULE_PENDING)
                    .bind(id)
                    .bind(run_at.millis())
                    .bind($crate::sql::to_json("job details", details)?)
                    .execute(&self.writer)
                    .await
                    .map_err($map_error)?;
                let moved = done.rows_affected() == 1;
                if moved {
                    ($wake_workers)(self);
                }
                Ok(moved)
            }

            async fn get_job(&self, id: &str) -> $crate::StoreResult<Option<$crate::DeliveryJob>> {
                let row = ::sqlx::query($crate::sql::JOB_GET)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($map_error)?;
                row.map(|row| __callsign_job_row(&row).map_err($map_error).and_then($crate::sql::job_from_row))
                    .transpose()
            }

            async fn list_jobs(
                &self,
                status: Option<$crate::JobStatus>,
                limit: u32,
            ) -> $crate::StoreResult<Vec<$crate::DeliveryJob>> {
                let rows = ::sqlx::query($crate::sql::JOB_LIST)
                    .bind(status.map($crate::JobStatus::as_str))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err($map_error)?;
                rows.iter()
                    .map(|row| __callsign_job_row(row).map_err($map_error).and_then($crate::sql::job_from_row))
                    .collect()
            }

            async fn queue_stats(&self, now: $crate::sql::Timestamp) -> $crate::StoreResult<$crate::QueueStats> {
                let rows: Vec<(String, i64, Option<i64>)> = ::sqlx::query_as($crate::sql::JOB_QUEUE_STATS)
                    .bind(now.millis())
                    .fetch_all(&self.pool)
                    .await
                    .map_err($map_error)?;
                let mut stats = $crate::QueueStats::default();
                for (status, n, oldest) in rows {
                    let n = u64::try_from(n).unwrap_or(0);
                    if status == "running" {
                        stats.running = n;
                    } else {
                        stats.due = n;
                        stats.oldest_due_at = oldest.map($crate::sql::Timestamp::from_millis);
                    }
                }
                Ok(stats)
            }

            async fn record_job_receipt(
                &self,
                id: &str,
                receipt: &$crate::sql::JsonValue,
                at: $crate::sql::Timestamp,
            ) -> $crate::StoreResult<bool> {
                const SELECT: &str = $crate::__sql_job_details_select!($bucket_lock);
                let mut tx = self.writer.begin_with($begin_write).await.map_err($map_error)?;
                let row: Option<(String,)> =
                    ::sqlx::query_as(SELECT).bind(id).fetch_optional(&mut *tx).await.map_err($map_error)?;
                let Some((details,)) = row else {
                    tx.rollback().await.map_err($map_error)?;
                    return Ok(false);
                };
                let details: $crate::sql::JsonValue = $crate::sql::from_json("job details", &details)?;
                let details = $crate::sql::append_receipt(details, receipt, at);
                ::sqlx::query($crate::sql::JOB_DETAILS_UPDATE)
                    .bind(id)
                    .bind($crate::sql::to_json("job details", &details)?)
                    .execute(&mut *tx)
                    .await
                    .map_err($map_error)?;
                tx.commit().await.map_err($map_error)?;
                Ok(true)
            }

            async fn wait_for_jobs(&self, max_ms: u64) {
                ($wait_for_jobs)(self, max_ms).await
            }
        }

        #[::async_trait::async_trait]
        impl $crate::RateLimiter for $store {
            async fn bucket_take(
                &self,
                key: &str,
                spec: $crate::BucketSpec,
                now: $crate::sql::Timestamp,
            ) -> $crate::StoreResult<$crate::BucketState> {
                self.__callsign_bucket_change(key, spec, now, $crate::bucket::take).await
            }

            async fn bucket_peek(
                &self,
                key: &str,
                spec: $crate::BucketSpec,
                now: $crate::sql::Timestamp,
            ) -> $crate::StoreResult<$crate::BucketState> {
                // Read only: the refill is computed, not written (the next take writes it).
                let row: Option<$crate::sql::BucketRow> = ::sqlx::query_as($crate::sql::BUCKET_GET)
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($map_error)?;
                Ok($crate::bucket::peek(spec, row.map($crate::sql::bucket_level_from_row), now))
            }

            async fn bucket_give_back(
                &self,
                key: &str,
                spec: $crate::BucketSpec,
                now: $crate::sql::Timestamp,
            ) -> $crate::StoreResult<$crate::BucketState> {
                self.__callsign_bucket_change(key, spec, now, $crate::bucket::give_back).await
            }

            async fn bucket_reset(&self, key: &str) -> $crate::StoreResult<()> {
                ::sqlx::query($crate::sql::BUCKET_DELETE).bind(key).execute(&self.writer).await.map_err($map_error)?;
                Ok(())
            }

            async fn backoff_take(
                &self,
                key: &str,
                spec: $crate::BackoffSpec,
                now: $crate::sql::Timestamp,
            ) -> $crate::StoreResult<$crate::BackoffState> {
                // A new row stands for "no event yet": a count of 0 dated long enough ago to have reset.
                let initial = $crate::bucket::Level { tokens: 0, updated_at: i64::MIN / 2 };
                self.__callsign_level_change(key, initial, |stored| {
                    let stored = (stored.tokens > 0).then_some(stored);
                    $crate::bucket::backoff(spec, stored, now)
                })
                .await
            }
            async fn counters_add(
                &self,
                ns: &str,
                slot: i64,
                adds: &[(&str, i64)],
                now: $crate::sql::Timestamp,
                ttl_ms: i64,
            ) -> $crate::StoreResult<()> {
                let expires_at = now.millis().saturating_add(ttl_ms.max(0));
                let adds = $crate::sql::merged_adds(adds);
                if adds.is_empty() {
                    return Ok(());
                }
                // One statement for all of them: atomic on its own, one round trip.
                let sql = $crate::sql::counter_add_sql(adds.len());
                let mut q = ::sqlx::query(&sql).bind(ns).bind(slot).bind(expires_at);
                for (key, amount) in adds {
                    q = q.bind(key).bind(amount);
                }
                q.execute(&self.writer).await.map_err($map_error)?;
                Ok(())
            }

            async fn counters_sum(
                &self,
                ns: &str,
                window: $crate::CounterWindow,
                keys: &[&str],
            ) -> $crate::StoreResult<Vec<i64>> {
                if keys.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = $crate::sql::counter_sum_sql(keys.len());
                let mut q = ::sqlx::query_as::<_, (String, i64)>(&sql).bind(ns).bind(window.from).bind(window.to);
                for key in keys {
                    q = q.bind(*key);
                }
                let rows = q.fetch_all(&self.pool).await.map_err($map_error)?;
                Ok(keys.iter().map(|k| rows.iter().find(|(key, _)| key == k).map_or(0, |(_, v)| *v)).collect())
            }

            async fn counters_list(
                &self,
                ns: &str,
                window: $crate::CounterWindow,
            ) -> $crate::StoreResult<Vec<$crate::CounterRow>> {
                let rows: Vec<(String, i64, i64)> = ::sqlx::query_as($crate::sql::COUNTER_LIST)
                    .bind(ns)
                    .bind(window.from)
                    .bind(window.to)
                    .fetch_all(&self.pool)
                    .await
                    .map_err($map_error)?;
                Ok(rows.into_iter().map(|(key, slot, value)| $crate::CounterRow { key, slot, value }).collect())
            }

            #[allow(clippy::too_many_arguments)]
            async fn counter_take(
                &self,
                ns: &str,
                slot: i64,
                key: &str,
                amount: i64,
                cap: i64,
                now: $crate::sql::Timestamp,
                ttl_ms: i64,
            ) -> $crate::StoreResult<Option<i64>> {
                if amount > cap {
                    return Ok(None);
                }
                let expires_at = now.millis().saturating_add(ttl_ms.max(0));
                let row: Option<(i64,)> = ::sqlx::query_as($crate::sql::COUNTER_TAKE)
                    .bind(ns)
                    .bind(slot)
                    .bind(key)
                    .bind(amount)
                    .bind(expires_at)
                    .bind(cap)
                    .fetch_optional(&self.writer)
                    .await
                    .map_err($map_error)?;
                Ok(row.map(|(v,)| v))
            }

            async fn counters_purge(&self, now: $crate::sql::Timestamp) -> $crate::StoreResult<u64> {
                let r = ::sqlx::query($crate::sql::COUNTER_PURGE)
                    .bind(now.millis())
                    .execute(&self.writer)
                    .await
                    .map_err($map_error)?;
                Ok(r.rows_affected())
            }
        }

        #[::async_trait::async_trait]
        impl $crate::DevInboxStore for $store {
            async fn insert_dev_message(&self, message: &$crate::DevMessage) -> $crate::StoreResult<()> {
                ::sqlx::query($crate::sql::DEV_MESSAGE_INSERT)
                    .bind(message.id.as_str())
                    .bind(message.to.as_str())
                    .bind(message.channel.as_str())
                    .bind(message.text.as_str())
                    .bind(message.created_at.millis())
                    .execute(&self.writer)
                    .await
                    .map_err($map_error)?;
                Ok(())
            }

            async fn list_dev_messages(
                &self,
                to: Option<&str>,
                page: $crate::Page,
            ) -> $crate::StoreResult<$crate::Listed<$crate::DevMessage>> {
                let rows: Vec<$crate::sql::DevMessageRow> = ::sqlx::query_as($crate::sql::DEV_MESSAGE_LIST)
                    .bind(to)
                    .bind(page.limit())
                    .bind(page.offset())
                    .fetch_all(&self.pool)
                    .await
                    .map_err($map_error)?;
                let (count,): (i64,) = ::sqlx::query_as($crate::sql::DEV_MESSAGE_COUNT_TO)
                    .bind(to)
                    .fetch_one(&self.pool)
                    .await
                    .map_err($map_error)?;
                Ok($crate::Listed {
                    items: rows.into_iter().map($crate::sql::dev_message_from_row).collect(),
                    total: $crate::sql::total(count),
                })
            }

            async fn count_dev_messages(&self) -> $crate::StoreResult<u64> {
                let (count,): (i64,) =
                    ::sqlx::query_as($crate::sql::DEV_MESSAGE_COUNT).fetch_one(&self.pool).await.map_err($map_error)?;
                Ok($crate::sql::total(count))
            }
        }

        #[::async_trait::async_trait]
        impl $crate::TransientStore for $store {
            async fn put_transient(
                &self,
                kind: &str,
                key: &str,
                value: &::serde_json::Value,
                expires_at: $crate::sql::Timestamp,
            ) -> $crate::StoreResult<()> {
                ::sqlx::query($crate::sql::TRANSIENT_PUT)
                    .bind(kind)
                    .bind(key)
                    .bind(value.to_string())
                    .bind(expires_at.millis())
                    .execute(&self.writer)
                    .await
                    .map_err($map_error)?;
                Ok(())
            }

            async fn get_transient(
                &self,
                kind: &str,
                key: &str,
                at: $crate::sql::Timestamp,
            ) -> $crate::StoreResult<Option<::serde_json::Value>> {
                let row: Option<(String,)> = ::sqlx::query_as($crate::sql::TRANSIENT_GET)
                    .bind(kind)
                    .bind(key)
                    .bind(at.millis())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($map_error)?;
                row.map(|(v,)| $crate::sql::transient_value(v)).transpose()
            }

            async fn take_transient(
                &self,
                kind: &str,
                key: &str,
                at: $crate::sql::Timestamp,
            ) -> $crate::StoreResult<Option<::serde_json::Value>> {
                let row: Option<(String,)> = ::sqlx::query_as($crate::sql::TRANSIENT_TAKE)
                    .bind(kind)
                    .bind(key)
                    .bind(at.millis())
                    .fetch_optional(&self.writer)
                    .await
                    .map_err($map_error)?;
                row.map(|(v,)| $crate::sql::transient_value(v)).transpose()
            }

            async fn delete_transient(&self, kind: &str, key: &str) -> $crate::StoreResult<()> {
                ::sqlx::query($crate::sql::TRANSIENT_DELETE)
                    .bind(kind)
                    .bind(key)
                    .execute(&self.writer)
                    .await
                    .map_err($map_error)?;
                Ok(())
            }

            async fn purge_transients(&self, at: $crate::sql::Timestamp) -> $crate::StoreResult<u64> {
                let r = ::sqlx::query($crate::sql::TRANSIENT_PURGE)
                    .bind(at.millis())
                    .execute(&self.writer)
                    .await
                    .map_err($map_error)?;
                Ok(r.rows_affected())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Channel, EnrollmentKind, EnrollmentStatus, JobStatus};

    #[test]
    fn migrations_all_applied() {
        let applied = [(1, true, vec![1u8]), (2, true, vec![2u8])];
        assert!(check_migrations([(1, &[1u8][..]), (2, &[2u8][..])], &applied).is_ok());
    }

    #[test]
    fn migrations_pending_are_counted() {
        let applied = [(1, true, vec![1u8]), (2, false, vec![2u8])];
        let known = [(1, &[1u8][..]), (2, &[2u8][..]), (3, &[3u8][..])];
        match check_migrations(known, &applied) {
            Err(StoreError::Other(m)) => assert_eq!(m, "2 migrations pending"),
            other => panic!("expected pending, got {other:?}"),
        }
        match check_migrations([(1, &[1u8][..])], &[]) {
            Err(StoreError::Other(m)) => assert_eq!(m, "1 migration pending"),
            other => panic!("expected pending, got {other:?}"),
        }
    }

    #[test]
    fn changed_migration_is_reported() {
        let applied = [(1, true, vec![9u8])];
        match check_migrations([(1, &[1u8][..])], &applied) {
            Err(StoreError::Other(m)) => assert!(m.contains("changed"), "{m}"),
            other => panic!("expected a checksum error, got {other:?}"),
        }
    }

    #[test]
    fn corrupt_document_is_other() {
        let row: ClientRow = ("c".into(), "h".into(), 1, 2, "not json".into());
        assert!(matches!(client_from_row(row), Err(StoreError::Other(_))));
    }

    fn enrollment_row(kind: &str, status: &str, channel: Option<&str>) -> EnrollmentRow {
        let channel = channel.map(str::to_owned);
        ("dev_1".into(), "u1".into(), kind.into(), status.into(), None, channel, None, None, 1, None, None)
    }

    #[test]
    fn stored_names_map_to_enums_and_unknown_ones_are_corrupt() {
        let e = enrollment_from_row(enrollment_row("recovery-code", "confirmed", Some("voice"))).expect("known names");
        assert_eq!(
            (e.kind, e.status, e.preferred_channel),
            (EnrollmentKind::RecoveryCode, EnrollmentStatus::Confirmed, Some(Channel::Voice))
        );
        for (row, what) in [
            (enrollment_row("totp", "pending", None), "corrupt enrollment kind in the database: `totp`"),
            (enrollment_row("phone", "Pending", None), "corrupt enrollment status in the database: `Pending`"),
            (enrollment_row("phone", "pending", Some("fax")), "corrupt enrollment channel in the database: `fax`"),
        ] {
            match enrollment_from_row(row) {
                Err(StoreError::Other(m)) => assert!(m.starts_with(what), "{m}"),
                other => panic!("expected a corrupt row, got {other:?}"),
            }
        }
        let challenge = |channel: &str| -> ChallengeRow {
            ("c".into(), "u1".into(), "dev_1".into(), channel.into(), "h".into(), None, 1, 2, None)
        };
        assert_eq!(challenge_from_row(challenge("sms")).map(|c| c.channel).ok(), Some(Channel::Sms));
        assert!(
            matches!(challenge_from_row(challenge("")), Err(StoreError::Other(m)) if m.contains("challenge channel"))
        );
        let job = |channel: &str, status: &str| JobRow {
            id: "j".into(),
            channel: channel.into(),
            user_id: None,
            enrollment_id: None,
            challenge_id: None,
            provider: "auth0".into(),
            key_id: None,
            nonce: None,
            ciphertext: None,
            status: status.into(),
            attempts: 0,
            max_attempts: 5,
            run_at: 1,
            claimed_by: None,
            claim_expires_at: None,
            last_error: None,
            details: "{}".into(),
            created_at: 1,
            finished_at: None,
        };
        let j = job_from_row(job("voice", "running")).expect("known names");
        assert_eq!((j.channel, j.status), (Channel::Voice, JobStatus::Running));
        assert!(matches!(job_from_row(job("voice", "done")), Err(StoreError::Other(m)) if m.contains("`done`")));
        assert!(matches!(job_from_row(job("email", "sent")), Err(StoreError::Other(m)) if m.contains("job channel")));
    }

    /// The statements spell out some names in SQL; they must be the enums' (the stored TEXT values).
    #[test]
    fn statements_spell_the_enum_names() {
        let quoted = |name: &str| format!("'{name}'");
        let phone = quoted(EnrollmentKind::Phone.as_str());
        let recovery = quoted(EnrollmentKind::RecoveryCode.as_str());
        let (pending, confirmed) =
            (quoted(EnrollmentStatus::Pending.as_str()), quoted(EnrollmentStatus::Confirmed.as_str()));
        for (statement, names) in [
            (ENROLLMENT_COUNT_OTHER_CONFIRMED_PHONES, vec![&phone, &confirmed]),
            (ENROLLMENT_DELETE_PENDING_CHALLENGES, vec![&pending]),
            (ENROLLMENT_DELETE_PENDING, vec![&pending]),
            (ENROLLMENT_CONFIRM_PHONE, vec![&confirmed, &phone, &pending]),
            (ENROLLMENT_CONFIRM_RECOVERY, vec![&confirmed, &recovery, &pending]),
            (ENROLLMENT_SPEND_SECRET, vec![&recovery, &confirmed]),
        ] {
            for name in names {
                assert!(statement.contains(name.as_str()), "{name} in {statement}");
            }
        }
        let job = |s: JobStatus| quoted(s.as_str());
        let claim = crate::__sql_job_claim!("");
        for (statement, names) in [
            (claim, vec![job(JobStatus::Running), job(JobStatus::Pending)]),
            (JOB_FINISH_SENT, vec![job(JobStatus::Sent), job(JobStatus::Running)]),
            (JOB_FINISH_FAILED, vec![job(JobStatus::Failed), job(JobStatus::Running)]),
            (JOB_RENEW_CLAIMS, vec![job(JobStatus::Running)]),
            (JOB_RETRY, vec![job(JobStatus::Pending), job(JobStatus::Running)]),
            (JOB_FINISH_CANCELLED, vec![job(JobStatus::Cancelled), job(JobStatus::Running)]),
            (JOB_CANCEL_PENDING, vec![job(JobStatus::Cancelled), job(JobStatus::Pending)]),
            (JOB_RESCHEDULE_PENDING, vec![job(JobStatus::Pending)]),
        ] {
            for name in names {
                assert!(statement.contains(name.as_str()), "{name} in {statement}");
            }
        }
    }

    #[test]
    fn rows_map_to_models() {
        let user = user_from_row((
            "u1".into(),
            Some("a@example.com".into()),
            None,
            1,
            2,
            Some(3),
            4,
            r#"{"name":"A","blocked":true}"#.into(),
        ));
        match user {
            Ok(u) => {
                assert_eq!(u.user_id, "u1");
                assert_eq!(u.last_login, Some(Timestamp::from_millis(3)));
                assert_eq!(u.logins_count, 4);
                assert_eq!(u.profile.name.as_deref(), Some("A"));
                assert!(u.profile.blocked);
            }
            Err(e) => panic!("{e}"),
        }
    }
}
