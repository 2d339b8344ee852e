//! Application state, built once at start-up and shared by every handler: the services' [`Core`] plus what only
//! the server has (its configuration and metrics). `AppState` dereferences to [`Core`], so a handler passes `&app`
//! wherever a service wants `&Core`.
use std::ops::Deref;
use std::sync::Arc;

use callsign_core::Core;
use callsign_domain::{Clock, RandomSource};
use callsign_store::{RateLimiter, Store};

use crate::config::Config;
use crate::metrics::Metrics;

#[derive(Debug)]
pub struct AppInner {
    pub core: Arc<Core>,
    pub config: Config,
    pub metrics: Arc<Metrics>,
}

impl Deref for AppInner {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
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

impl Config {
    /// The services' settings out of the binary's configuration.
    pub fn core_settings(&self) -> callsign_core::Settings {
        callsign_core::Settings {
            public_url: self.public_url.clone(),
            access_token_lifetime_secs: self.access_token_lifetime_secs,
            id_token_lifetime_secs: self.id_token_lifetime_secs,
            dev_provider_cap: self.dev_provider_cap,
            dev_provider_log_messages: self.dev_provider_log_messages,
            delivery_workers: self.delivery_workers,
            delivery_lease_secs: self.delivery_lease_secs,
            provider_base_urls: self.provider_base_urls.clone(),
            password_hash_concurrency: self.password_hash_concurrency,
            password_hash_queue_ms: self.password_hash_queue_ms,
            log_streams: self.log_streams.clone(),
        }
    }
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

    /// With `redis_url` set, the rate-limit buckets are in that Redis (under `redis_key_prefix`); otherwise in the
    /// store.
    pub async fn with_store(
        config: Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn RandomSource>,
    ) -> crate::BoxResult<(AppState, StartReport)> {
        let limiter: Arc<dyn RateLimiter> = match &config.redis_url {
            Some(url) => {
                let redis = callsign_limiter_redis::RedisLimiter::connect(url, &config.redis_key_prefix)
                    .map_err(|e| format!("redis_url `{}`: {e}", crate::config::redact_url(url)))?;
                // Not a start-up condition: a node may start before its Redis; until Redis answers, requests that
                // need a limit get 503 and /readyz says so.
                if let Err(e) = redis.check_ready().await {
                    tracing::warn!(error = %e, "Redis (redis_url) does not answer yet; rate-limited requests get 503 until it does");
                }
                tracing::info!(prefix = redis.prefix(), "rate limits are kept in Redis");
                Arc::new(redis)
            }
            None => store.clone(),
        };
        Self::with_store_and_limiter(config, store, limiter, clock, rng).await
    }

    /// [`AppState::with_store`], with rate-limit buckets in `limiter` instead of the store (see
    /// [`Core::start_with_limiter`]).
    pub async fn with_store_and_limiter(
        config: Config,
        store: Arc<dyn Store>,
        limiter: Arc<dyn RateLimiter>,
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
        let core =
            Core::start_with_limiter(config.core_settings(), store, limiter, clock, rng, Arc::new(keyring)).await?;
        for name in config.provider_base_urls.keys() {
            core.providers.get(name).map_err(|e| format!("providers.{name}: {e}"))?;
        }
        let metrics = Arc::new(Metrics::new());
        metrics.watch_health(core.health.clone(), core.providers.names().into_iter().map(str::to_owned).collect());
        metrics.watch_queue(core.store.clone(), core.clock.clone());
        let _ = core.telemetry.set(metrics.clone());
        let app = AppState(Arc::new(AppInner { core, config, metrics }));
        report.bootstrap_file = crate::identity::bootstrap::bootstrap_if_empty(&app).await?;
        Ok((app, report))
    }
}
