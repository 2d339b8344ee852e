use callsign_domain::Timestamp;
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
    pub paging: LogPaging,
}
