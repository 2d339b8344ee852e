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
    /// Key of the HMAC that stands in for OTP codes at rest (a sealed secret shared by every node).
    pub otp_key: zeroize::Zeroizing<Vec<u8>>,
    /// The HTTP client every provider shares (connection pooling, timeouts).
    pub http: reqwest::Client,
    /// Bounded argon2id hashing (see `identity::passwords`).
    pub passwords: crate::identity::passwords::Passwords,
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
        let otp_key = load_or_create_otp_key(store.as_ref(), &keyring, rng.as_ref(), clock.as_ref()).await?;
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(15))
            .user_agent(concat!("Callsign/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let signer = Signer::default();
        let passwords = crate::identity::passwords::Passwords::new(
            config.password_hash_concurrency,
            std::time::Duration::from_millis(config.password_hash_queue_ms),
        );
        let app = AppState(Arc::new(AppInner {
            config,
            store,
            clock,
            rng,
            keyring: Arc::new(keyring),
            signer,
            metrics: Arc::new(Metrics::new()),
            otp_key,
            http,
            passwords,
        }));
        app.signer.ensure_current(&app).await?;
        report.bootstrap_file = crate::identity::bootstrap::bootstrap_if_empty(&app).await?;
        Ok((app, report))
    }
}

const OTP_KEY_SECRET: &str = "otp/hmac-key";

/// The OTP hashing key: created once per installation (a settings latch decides which node creates it when
/// several start together), then read by everyone.
async fn load_or_create_otp_key(
    store: &dyn Store,
    keyring: &Keyring,
    rng: &dyn RandomSource,
    clock: &dyn Clock,
) -> crate::BoxResult<zeroize::Zeroizing<Vec<u8>>> {
    for _ in 0..100 {
        if let Some(s) = store.get_secret(OTP_KEY_SECRET).await? {
            return Ok(keyring.open(&s.name, &s.sealed)?);
        }
        let now = clock.now();
        if store.insert_setting_if_absent("otp-key-latch", &serde_json::json!({"at": now.millis()}), now).await? {
            let key = zeroize::Zeroizing::new(callsign_domain::rng::bytes::<32>(rng).to_vec());
            let sealed = keyring.seal(rng, OTP_KEY_SECRET, &key)?;
            store
                .put_secret(&callsign_store::SealedSecret { name: OTP_KEY_SECRET.to_owned(), sealed, updated_at: now })
                .await?;
            return Ok(key);
        }
        // Another node holds the latch and is writing the key.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Err("the OTP key was not created by the node that claimed it; check the database".into())
}
