//! Store-backed opaque tokens: the holder keeps a random token (a browser in a cookie, an application as its
//! authorization code or refresh token); the store holds a JSON state under a hash of that token (kind = its
//! purpose, e.g. `login`, `dashboard`, `authz_code`), with an expiry. Single-use ones are [`take`]n in one statement.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::Core;

/// The store key of a token: its SHA-256, hex. Tokens have 256 bits of entropy, so a plain hash is enough.
/// Authorization codes of the code flow (single use, [`CODE_TTL_SECS`]).
pub const CODE_KIND: &str = "authz_code";
pub const CODE_TTL_SECS: u64 = 5 * 60;
/// Refresh tokens (rotated on every use, [`REFRESH_TTL_SECS`]).
pub const REFRESH_KIND: &str = "refresh_token";
pub const REFRESH_TTL_SECS: u64 = 30 * 24 * 3600;

pub fn key_of(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh 256-bit token, base64url.
pub fn new_token(app: &Core) -> String {
    URL_SAFE_NO_PAD.encode(callsign_domain::rng::bytes::<32>(app.rng.as_ref()))
}

/// Store `value` under a new token for `ttl_secs`; returns the token for the cookie (or link).
pub async fn create<T: Serialize>(app: &Core, kind: &str, value: &T, ttl_secs: u64) -> crate::BoxResult<String> {
    let token = new_token(app);
    save(app, kind, &token, value, ttl_secs).await?;
    Ok(token)
}

/// Replace the state behind `token`, extending its life to `ttl_secs` from now.
pub async fn save<T: Serialize>(app: &Core, kind: &str, token: &str, value: &T, ttl_secs: u64) -> crate::BoxResult<()> {
    let v = serde_json::to_value(value)?;
    let expires = app.clock.now().plus(std::time::Duration::from_secs(ttl_secs));
    app.store.put_transient(kind, &key_of(token), &v, expires).await?;
    Ok(())
}

/// The state behind `token`, if it exists, has not expired and still has the expected shape.
pub async fn load<T: DeserializeOwned>(app: &Core, kind: &str, token: &str) -> crate::BoxResult<Option<T>> {
    let v = app.store.get_transient(kind, &key_of(token), app.clock.now()).await?;
    Ok(v.and_then(|v| serde_json::from_value(v).ok()))
}

/// Remove and return the state: for single-use things (authorization codes, one-time links).
pub async fn take<T: DeserializeOwned>(app: &Core, kind: &str, token: &str) -> crate::BoxResult<Option<T>> {
    let v = app.store.take_transient(kind, &key_of(token), app.clock.now()).await?;
    Ok(v.and_then(|v| serde_json::from_value(v).ok()))
}

pub async fn destroy(app: &Core, kind: &str, token: &str) -> crate::BoxResult<()> {
    app.store.delete_transient(kind, &key_of(token)).await?;
    Ok(())
}

/// Delete expired transients and windowed counters every few minutes until `stop` turns true.
pub fn spawn_purger(
    app: &std::sync::Arc<Core>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    crate::spawn_every(app, std::time::Duration::from_secs(300), stop, |app| async move {
        match app.store.purge_transients(app.clock.now()).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(purged = n, "expired sessions and codes removed"),
            Err(e) => tracing::warn!(error = %e, "purging expired sessions failed"),
        }
        // The windowed counters (SMS-pumping segments, usage periods) past their time.
        match app.limiter.counters_purge(app.clock.now()).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(purged = n, "expired counters removed"),
            Err(e) => tracing::warn!(error = %e, "purging expired counters failed"),
        }
    })
}
