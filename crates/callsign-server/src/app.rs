//! Application state, built once at start-up and shared by every handler.
use std::ops::Deref;
use std::sync::Arc;

use callsign_domain::seal::Keyring;
use callsign_domain::{Clock, RandomSource};
use callsign_store::Store;

use crate::config::Config;
use crate::identity::signing::Signer;
use crate::metrics::Metrics;

#[derive(Debug)]
pub struct AppInner {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn RandomSource>,
    pub keyring: Arc<Keyring>,
    pub signer: Signer,
    pub metrics: Arc<Metrics>,
}

#[derive(Debug, Clone)]
pub struct AppState(pub Arc<AppInner>);

impl Deref for AppState {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

/// What start-up did, for the caller to report.
#[derive(Debug, Default)]
pub struct StartReport {
    pub reencrypted_secrets: usize,
    pub bootstrap_file: Option<std::path::PathBuf>,
}

impl AppState {
    /// Open the store, migrate, load the keyring (re-encrypting stale secrets), load or create the signing key,
    /// and on first start create the bootstrap Management client.
    pub async fn start(
        config: Config,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn RandomSource>,
    ) -> crate::BoxResult<(AppState, StartReport)> {
        let store = crate::db::open_store(&config.database_url)
            .await
            .map_err(|e| format!("database_url `{}`: {e}", crate::config::redact_url(&config.database_url)))?;
        store.migrate().await.map_err(|e| format!("migrating the database failed: {e}"))?;
        Self::with_store(config, store, clock, rng).await
    }

    pub async fn with_store(
        config: Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn RandomSource>,
    ) -> crate::BoxResult<(AppState, StartReport)> {
        let mut report = StartReport::default();
        let (keyring, source) = crate::keys::load_keyring(&config, rng.as_ref(), clock.now())?;
        tracing::info!(active_key = keyring.active_key_id(), source = ?source, "encryption keyring loaded");
        report.reencrypted_secrets =
            crate::keys::reencrypt_stale(store.as_ref(), &keyring, rng.as_ref(), clock.now()).await?;
        if report.reencrypted_secrets > 0 {
            tracing::info!(count = report.reencrypted_secrets, "re-encrypted secrets under the active key");
        }
        let signer = Signer::default();
        let app = AppState(Arc::new(AppInner {
            config,
            store,
            clock,
            rng,
            keyring: Arc::new(keyring),
            signer,
            metrics: Arc::new(Metrics::new()),
        }));
        app.signer.ensure_current(&app).await?;
        report.bootstrap_file = crate::identity::bootstrap::bootstrap_if_empty(&app).await?;
        Ok((app, report))
    }
}
