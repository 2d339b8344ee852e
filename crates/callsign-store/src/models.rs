use callsign_domain::Timestamp;
use callsign_domain::channel::Channel;
use callsign_domain::kinds::{EnrollmentKind, EnrollmentStatus, JobStatus};
use callsign_domain::seal::Sealed;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A reversible secret, sealed by the caller with the keyring (the store never sees plaintext).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// Unique name, also the AEAD associated data, e.g. `signing-key/<kid>`.
    pub name: String,
    pub sealed: Sealed,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SigningKey {
    pub kid: String,
    /// The public JWK (`kty`, `n`, `e`, `kid`, `alg`, `use`).
    pub public_jwk: Value,
    /// Name of the [`SealedSecret`] holding the private key (PKCS#8 DER).
    pub secret_name: String,
    pub created_at: Timestamp,
    /// When it stopped being the key that signs; still published until its tokens expire.
    pub retired_at: Option<Timestamp>,
}

/// Paging, zero-based like Auth0's `page`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page: u32,
    pub per_page: u32,
}

impl Page {
    pub fn new(page: u32, per_page: u32) -> Self {
        Self { page, per_page }
    }
    pub fn offset(self) -> i64 {
        i64::from(self.page) * i64::from(self.per_page)
    }
    pub fn limit(self) -> i64 {
        i64::from(self.per_page)
    }
}

/// One page of results and the total number that matched.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// An application. Everything but the id, the secret hash and the timestamps lives in `spec`.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub client_id: String,
    /// SHA-256 hex of the secret (see `callsign_domain::hash::token_hash`); the secret itself is never stored.
    pub secret_hash: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub spec: ClientSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ClientSpec {
    pub name: String,
    pub description: Option<String>,
    pub app_type: Option<String>,
    pub grant_types: Vec<String>,
    pub callbacks: Vec<String>,
    pub allowed_logout_urls: Vec<String>,
    pub web_origins: Vec<String>,
    /// Origins allowed to call the Authentication API cross-origin (CORS) besides `web_origins`.
    pub allowed_origins: Vec<String>,
    pub is_first_party: bool,
    pub token_endpoint_auth_method: String,
    pub client_metadata: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClientGrant {
    pub id: String,
    pub client_id: String,
    pub audience: String,
    pub scope: Vec<String>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantFilter {
    pub client_id: Option<String>,
    pub audience: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub user_id: String,
    /// Lowercased; unique among users that have one.
    pub email: Option<String>,
    /// PHC string (argon2id); None for users without a password.
    pub password_hash: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_login: Option<Timestamp>,
    pub logins_count: i64,
    pub profile: UserProfile,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct UserProfile {
    pub email_verified: bool,
    pub phone_number: Option<String>,
    pub phone_verified: bool,
    pub name: Option<String>,
    pub nickname: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub picture: Option<String>,
    pub blocked: bool,
    pub connection: String,
    pub user_metadata: serde_json::Map<String, Value>,
    pub app_metadata: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// Exact (lowercased) email.
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogEvent {
    /// 56-digit, time-ordered (see `callsign_domain::ids::log_id`).
    pub log_id: String,
    pub date: Timestamp,
    /// Auth0 event code: `s`, `fp`, `seccft`, `gd_send_sms`…
    pub event_type: String,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub body: LogBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct LogBody {
    pub description: Option<String>,
    pub client_name: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub user_name: Option<String>,
    pub audience: Option<String>,
    pub scope: Option<String>,
    pub connection: Option<String>,
    pub strategy: Option<String>,
    pub details: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogPaging {
    /// Newest first (date descending, then log_id descending), page-based.
    Page(Page),
    /// Checkpoint: events with `log_id > from` (all events when None), oldest first, at most `take`.
    From { from: Option<String>, take: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    pub event_type: Option<String>,
    pub user_id: Option<String>,
    /// Events dated at or after this instant (None: no lower bound).
    pub since: Option<Timestamp>,
    /// Events dated strictly before this instant (None: no upper bound).
    pub before: Option<Timestamp>,
    pub paging: LogPaging,
}

// ---------------------------------------------------------------------------------------------------------------
// The phone factor
// ---------------------------------------------------------------------------------------------------------------

/// An MFA authenticator of a user. Its API ids are `<type>|<id>` (`phone|dev_X`, `sms|dev_X`, `voice|dev_X`,
/// `recovery-code|dev_X`); the store keeps the bare `dev_…` id.
#[derive(Debug, Clone, PartialEq)]
pub struct Enrollment {
    /// `dev_` + 16 alphanumerics.
    pub id: String,
    pub user_id: String,
    /// `phone` or `recovery-code`.
    pub kind: EnrollmentKind,
    /// `pending` until the first successful verification, then `confirmed`.
    pub status: EnrollmentStatus,
    /// E.164, for phones.
    pub phone_number: Option<String>,
    /// `sms` or `voice`, for phones.
    pub preferred_channel: Option<Channel>,
    pub name: Option<String>,
    /// Token hash of the recovery code, for `recovery-code`.
    pub secret_hash: Option<String>,
    pub created_at: Timestamp,
    pub enrolled_at: Option<Timestamp>,
    pub last_auth: Option<Timestamp>,
}

/// An `mfa_token`: issued when a password grant needs a second factor. Stored by hash only.
#[derive(Debug, Clone, PartialEq)]
pub struct MfaToken {
    pub token_hash: String,
    pub user_id: String,
    pub client_id: String,
    /// What the original token request asked for, so the MFA grant can issue the same tokens.
    pub audience: Option<String>,
    pub scope: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// One code sent to one authenticator. `id` is the token hash of the `oob_code` handed to the client.
#[derive(Debug, Clone, PartialEq)]
pub struct Challenge {
    pub id: String,
    pub user_id: String,
    pub enrollment_id: String,
    /// `sms` or `voice`.
    pub channel: Channel,
    /// Keyed hash (HMAC) of the 6-digit code; the code itself is never stored in clear.
    pub code_hash: String,
    /// The mfa_token this challenge belongs to (token hash).
    pub mfa_token_hash: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub consumed_at: Option<Timestamp>,
}

/// A message to deliver, durably queued. `payload` (recipient and text) is sealed and erased once terminal.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryJob {
    pub id: String,
    /// `sms` or `voice`.
    pub channel: Channel,
    pub user_id: Option<String>,
    pub enrollment_id: Option<String>,
    pub challenge_id: Option<String>,
    /// The provider chosen when the job was created (`auth0` = the development provider, `twilio`, …). A name, not
    /// an enum: providers are pluggable, and the name is checked where providers are looked up.
    pub provider: String,
    /// Sealed with the job id as context. None once the job is terminal.
    pub payload: Option<Sealed>,
    /// `pending`, `running`, `sent`, `failed` or `cancelled`.
    pub status: JobStatus,
    pub attempts: i32,
    pub max_attempts: i32,
    /// Not to be claimed before this time.
    pub run_at: Timestamp,
    pub claimed_by: Option<String>,
    pub claim_expires_at: Option<Timestamp>,
    pub last_error: Option<String>,
    /// Free-form outcome (provider message id, error codes…), kept after the payload is erased.
    pub details: Value,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

/// How a worker ends a job.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    /// Terminal success: status `sent`.
    Sent { details: Value },
    /// Terminal failure: status `failed`.
    Failed { error: String, details: Value },
    /// Try again at `run_at` (status back to `pending`).
    Retry { error: String, run_at: Timestamp },
    /// Terminal, nothing sent: status `cancelled`.
    Cancelled { details: Value },
}

/// A token bucket's parameters: `capacity` tokens, one more every `refill_every_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketSpec {
    pub capacity: u32,
    pub refill_every_ms: i64,
}

/// An exponential backoff's parameters (see [`crate::bucket::backoff`]): the first event is free, each further one
/// must wait `base_ms` doubling per event, at most `max_ms`, since the one before; `reset_after_ms` without an event
/// starts again from the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffSpec {
    pub base_ms: i64,
    pub max_ms: i64,
    pub reset_after_ms: i64,
}

/// The result of [`crate::RateLimiter::backoff_take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffState {
    pub allowed: bool,
    /// Events counted before this one, since the last reset.
    pub level: u32,
    /// The wait that level asks for since the previous event (0 for the first).
    pub wait_ms: i64,
    /// For a refusal: when the wait is over.
    pub retry_at: Option<Timestamp>,
}

/// The result of looking at or taking from a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketState {
    /// Whether the request was allowed (for `take`: a token was taken; for `peek`: at least one is there).
    pub allowed: bool,
    /// Whole tokens left after this call.
    pub remaining: u32,
    /// When the next token arrives (unix ms), if the bucket is not full.
    pub next_refill_at: Option<Timestamp>,
}

/// A message the development provider "sent".
#[derive(Debug, Clone, PartialEq)]
pub struct DevMessage {
    pub id: String,
    /// E.164 recipient.
    pub to: String,
    /// `sms` or `voice` (for voice, `text` is what would be spoken).
    pub channel: String,
    pub text: String,
    pub created_at: Timestamp,
}

/// A single-use enrollment ticket (`POST /guardian/enrollments/ticket`), stored by hash.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrollmentTicket {
    pub ticket_hash: String,
    pub user_id: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

/// The slots a windowed figure covers: every slot start `from`, `from + slot_ms`, … up to `to` (both multiples of
/// `slot_ms`, inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterWindow {
    pub slot_ms: i64,
    pub from: i64,
    pub to: i64,
}

impl CounterWindow {
    /// The `slots` slots of `slot_ms` that end with the one holding `now`.
    pub fn ending_at(now: Timestamp, slot_ms: i64, slots: i64) -> Self {
        let slot_ms = slot_ms.max(1);
        let to = now.millis().div_euclid(slot_ms) * slot_ms;
        Self { slot_ms, from: to - (slots.max(1) - 1) * slot_ms, to }
    }

    /// The slot starts, oldest first (at most 10 000).
    pub fn slots(&self) -> impl Iterator<Item = i64> + '_ {
        let n = ((self.to - self.from) / self.slot_ms.max(1)).clamp(-1, 9_999) + 1;
        (0..n.max(0)).map(move |i| self.from + i * self.slot_ms.max(1))
    }
}

/// One windowed counter in one slot ([`crate::RateLimiter::counters_list`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterRow {
    pub key: String,
    pub slot: i64,
    pub value: i64,
}

/// The delivery queue at a moment ([`crate::JobStore::queue_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Pending jobs whose `run_at` has passed (standby voice calls waiting for their time are not counted).
    pub due: u64,
    /// Jobs claimed by a worker.
    pub running: u64,
    /// The `run_at` of the oldest due job.
    pub oldest_due_at: Option<Timestamp>,
}

// ---------------------------------------------------------------------------------------------------------------
// Log streams
// ---------------------------------------------------------------------------------------------------------------

/// A place in the delivery order of log events: `(tx, seq)`, compared as a pair (see [`crate::LogStreamStore`]).
/// `(0, 0)` is before every event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct LogCursor {
    pub tx: i64,
    pub seq: i64,
}

/// A log event with its place in the delivery order.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderedLogEvent {
    pub cursor: LogCursor,
    pub event: LogEvent,
}

/// A log stream as stored: its settings document (`config`, owned by `callsign_core::log_streams`, secrets sealed
/// apart), its status, its cursor (the last event handled) and its delivery state.
#[derive(Debug, Clone, PartialEq)]
pub struct LogStream {
    pub id: String,
    pub config: Value,
    /// `active`, `paused` or `suspended`.
    pub status: String,
    pub cursor: LogCursor,
    /// Not tried again before this instant (backoff after a failure).
    pub run_at: Timestamp,
    pub claimed_by: Option<String>,
    pub claim_expires_at: Option<Timestamp>,
    /// Failed sends in a row (back to 0 after a success or a resume).
    pub failures: i64,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
    /// Events sent since the stream was created.
    pub delivered: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// How a claimed stream's turn ended.
#[derive(Debug, Clone, PartialEq)]
pub enum LogStreamOutcome {
    /// The sink accepted the events up to `cursor` (`sent` of them matched the stream's filters and were sent; the
    /// others were stepped over). Failures go back to 0.
    Advanced { cursor: LogCursor, sent: i64 },
    /// The send failed: `failures += 1`, `last_error`, try again at `retry_at`; with `suspend`, the status becomes
    /// `suspended` (an operator resumes it).
    Failed { error: String, retry_at: Timestamp, suspend: bool },
}
