//! The storage seam: one narrow async trait, implemented once per backend
//! (`callsign-store-sqlite`, `callsign-store-postgres`). Nothing above this crate knows which one it talks to.
#![forbid(unsafe_code)]

mod models;
pub mod sql;

use async_trait::async_trait;
use callsign_domain::Timestamp;
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

#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// `"sqlite"` or `"postgres"`, for logs and metrics.
    fn backend(&self) -> &'static str;

    /// Apply pending migrations (idempotent; safe to run from several nodes at once).
    async fn migrate(&self) -> StoreResult<()>;
    /// Ok when the database answers and every migration this build knows is applied.
    async fn check_ready(&self) -> StoreResult<()>;

    // --- sealed secrets (reversible secrets, AEAD-encrypted by the caller) ---
    async fn get_secret(&self, name: &str) -> StoreResult<Option<SealedSecret>>;
    /// Insert or replace.
    async fn put_secret(&self, secret: &SealedSecret) -> StoreResult<()>;
    async fn list_secrets(&self) -> StoreResult<Vec<SealedSecret>>;
    async fn delete_secret(&self, name: &str) -> StoreResult<()>;

    // --- settings: small JSON documents by key (tenant settings, and later factor configuration) ---
    async fn get_setting(&self, key: &str) -> StoreResult<Option<serde_json::Value>>;
    async fn put_setting(&self, key: &str, value: &serde_json::Value, at: Timestamp) -> StoreResult<()>;
    /// Insert only if the key is absent; true when this call inserted it (a cross-node "first start" latch).
    async fn insert_setting_if_absent(&self, key: &str, value: &serde_json::Value, at: Timestamp) -> StoreResult<bool>;

    // --- signing keys ---
    /// Store a new signing key and its sealed private part in one transaction. When `retire_others` is true,
    /// every key without `retired_at` gets `retired_at = key.created_at` in the same transaction.
    async fn add_signing_key(&self, key: &SigningKey, private: &SealedSecret, retire_others: bool) -> StoreResult<()>;
    /// All keys, newest first.
    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKey>>;
    /// Delete a key row and its secret (after it is no longer published).
    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()>;

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

    // --- log events ---
    async fn insert_log(&self, event: &LogEvent) -> StoreResult<()>;
    async fn get_log(&self, log_id: &str) -> StoreResult<Option<LogEvent>>;
    /// See [`LogQuery`] for ordering.
    async fn list_logs(&self, query: &LogQuery) -> StoreResult<Listed<LogEvent>>;
}
