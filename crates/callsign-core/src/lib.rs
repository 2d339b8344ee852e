//! Callsign's services, independent of any transport: identity and tokens (`identity`, `grants`), tenant settings
//! (`tenant`), the Guardian configuration (`guardian`), message templates (`templates`), the phone factor (`mfa`),
//! durable delivery (`delivery`, `providers`) and store-backed single-use tokens (`sessions`).
//!
//! Nothing here knows HTTP: inputs are typed (an [`Origin`] says who asked), results are typed, and errors are
//! [`error::AuthError`] / [`mfa::MfaError`], which the HTTP layer maps to Auth0's wire shapes in one place.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod attack;
pub mod branding;
pub mod config_cache;
pub mod connections;
pub mod delivery;
pub mod destination;
pub mod documents;
pub mod error;
pub mod grants;
pub mod guardian;
pub mod identity;
pub mod log_streams;
pub mod mfa;
pub mod origins;
pub mod providers;
pub mod pumping;
pub mod resource_servers;
pub mod routing;
pub mod sessions;
pub mod stats;
pub mod telemetry;
pub mod templates;
pub mod tenant;
pub mod usage;

use std::sync::Arc;

use callsign_domain::seal::Keyring;
use callsign_domain::{Clock, RandomSource};
use callsign_store::{RateLimiter, Store};

pub use error::{AuthError, Status};

/// Errors whose message is what matters (start-up, background work).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type BoxResult<T> = Result<T, BoxError>;

/// Who a request came from, for log events and message languages: what the HTTP layer (or any other front) knows
/// about the caller.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The language the caller asked messages in (`x-request-language` on the MFA API), before the tenant's
    /// enabled locales are applied.
    pub language: Option<String>,
}

/// The settings the services run with (the binary's configuration, less its transport and file parts).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Always ends with `/`. The token issuer and the Management API audience derive from it.
    pub public_url: String,
    pub access_token_lifetime_secs: u64,
    pub id_token_lifetime_secs: u64,
    /// Messages the development provider records over the installation's lifetime before it refuses.
    pub dev_provider_cap: u64,
    /// Log the full number and text of every development-provider message (codes included).
    pub dev_provider_log_messages: bool,
    /// Delivery worker tasks in this process.
    pub delivery_workers: u32,
    /// How long a delivery worker's claim on a job holds without renewal.
    pub delivery_lease_secs: u64,
    /// Provider API base URLs by provider name, overriding each provider's default (tests aim them at fakes).
    pub provider_base_urls: std::collections::BTreeMap<String, String>,
    /// Password hashes computed at once, and how long a request waits for a turn.
    pub password_hash_concurrency: usize,
    pub password_hash_queue_ms: u64,
    /// How log streams are delivered (`[log_streams]`).
    pub log_streams: log_streams::Tuning,
}

impl Settings {
    pub fn issuer(&self) -> &str {
        &self.public_url
    }

    pub fn management_audience(&self) -> String {
        format!("{}api/v2/", self.public_url)
    }
}

/// Everything the services share: storage, the rate limiter, time, randomness, keys, and the bounded password
/// hasher. Built once at start-up ([`Core::start`]) and shared (`Arc<Core>`) by every front and background task.
#[derive(Debug)]
pub struct Core {
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    /// Where every rate-limit bucket is taken from and given back to. By default the store itself (the same
    /// `Arc`, upcast: buckets in the database, atomic across nodes); [`Core::start_with_limiter`] puts another
    /// implementation (a Redis limiter) here without touching the rest of the store.
    pub limiter: Arc<dyn RateLimiter>,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn RandomSource>,
    pub keyring: Arc<Keyring>,
    pub signer: identity::signing::Signer,
    /// Key of the HMAC that stands in for OTP codes at rest (a sealed secret shared by every node).
    pub otp_key: zeroize::Zeroizing<Vec<u8>>,
    /// The HTTP client every provider shares (connection pooling, timeouts).
    pub http: reqwest::Client,
    /// Bounded argon2id hashing.
    pub passwords: identity::passwords::Passwords,
    /// The phone providers this build knows.
    pub providers: callsign_messaging::Registry,
    /// What every provider is built with (HTTP client, clock, dev inbox…).
    pub provider_deps: callsign_messaging::Deps,
    /// The providers' circuit breakers (per process; see `callsign_messaging::health`).
    pub health: callsign_messaging::Health,
    /// Who watches what the services report ([`telemetry::Telemetry`]; the server's Prometheus metrics), set once
    /// after start.
    pub telemetry: std::sync::OnceLock<Arc<dyn telemetry::Telemetry>>,
    /// Settings documents, applications and client grants in memory, dropped when they change on any node
    /// ([`config_cache`]).
    pub cache: config_cache::ConfigCache,
    /// Where log events are written, in groups ([`identity::events::LogWriter`]).
    pub logs: identity::events::LogWriter,
}

impl Core {
    /// Load (or, on first start, create) the OTP key and the current signing key, and build the shared parts. Rate
    /// limits live in the store.
    pub async fn start(
        settings: Settings,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn RandomSource>,
        keyring: Arc<Keyring>,
    ) -> BoxResult<Arc<Core>> {
        let limiter: Arc<dyn RateLimiter> = store.clone();
        Self::start_with_limiter(settings, store, limiter, clock, rng, keyring).await
    }

    /// [`Core::start`], with rate-limit buckets taken from `limiter` instead of the store.
    pub async fn start_with_limiter(
        settings: Settings,
        store: Arc<dyn Store>,
        limiter: Arc<dyn RateLimiter>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn RandomSource>,
        keyring: Arc<Keyring>,
    ) -> BoxResult<Arc<Core>> {
        let otp_key = load_or_create_otp_key(store.as_ref(), &keyring, rng.as_ref(), clock.as_ref()).await?;
        let http = callsign_messaging::transport::client().map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let provider_deps = callsign_messaging::Deps {
            http: http.clone(),
            clock: clock.clone(),
            rng: rng.clone(),
            public_url: settings.public_url.clone(),
            base_urls: settings.provider_base_urls.clone(),
            inbox: Arc::new(providers::StoreInbox(store.clone())),
            dev_cap: settings.dev_provider_cap,
            log_dev_messages: settings.dev_provider_log_messages,
        };
        let passwords = identity::passwords::Passwords::new(
            settings.password_hash_concurrency,
            std::time::Duration::from_millis(settings.password_hash_queue_ms),
        );
        let health = callsign_messaging::Health::new(clock.clone(), callsign_messaging::BreakerPolicy::default());
        let logs = identity::events::LogWriter::start(store.clone());
        let core = Arc::new(Core {
            settings,
            store,
            limiter,
            clock,
            rng,
            keyring,
            signer: identity::signing::Signer::default(),
            otp_key,
            http,
            passwords,
            providers: callsign_messaging::Registry::builtin(),
            health,
            provider_deps,
            telemetry: std::sync::OnceLock::new(),
            cache: config_cache::ConfigCache::default(),
            logs,
        });
        core.signer.ensure_current(&core).await?;
        Ok(core)
    }
}

impl Core {
    /// The telemetry listener, when one was set.
    pub fn telemetry(&self) -> Option<&dyn telemetry::Telemetry> {
        self.telemetry.get().map(|t| t.as_ref())
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
) -> BoxResult<zeroize::Zeroizing<Vec<u8>>> {
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

/// Run `work` now and then every `every` until `stop` changes: the node's periodic housekeeping (expired sessions,
/// signing keys rotated on another node). `work` reports its own failures; the loop goes on.
pub fn spawn_every<F, Fut>(
    app: &Arc<Core>,
    every: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
    work: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn(Arc<Core>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let app = app.clone();
    tokio::spawn(async move {
        loop {
            work(app.clone()).await;
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
        }
    })
}
