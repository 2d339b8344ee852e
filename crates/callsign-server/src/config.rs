//! Configuration: built-in defaults → TOML file (`--config`) → `CALLSIGN_*` environment variables → command-line
//! flags. Secrets may also come from files (`*_file` keys or `CALLSIGN_*_FILE` variables). Unknown keys are an
//! error that names the key and where it came from.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Environment variables with this prefix belong to the test suites, not to the server.
const TEST_ENV_PREFIX: &str = "CALLSIGN_TEST_";

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

/// The raw, layered settings. Every field is optional in each layer; [`Config::resolve`] checks them.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub database_url: Option<String>,
    pub database_url_file: Option<PathBuf>,
    /// Rate-limit buckets in Redis instead of the database (`redis://…`; empty = off).
    pub redis_url: Option<String>,
    pub redis_url_file: Option<PathBuf>,
    pub redis_key_prefix: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub metrics_addr: Option<String>,
    pub log_format: Option<String>,
    pub log_level: Option<String>,
    pub encryption_keys: Option<StringList>,
    pub encryption_keys_file: Option<PathBuf>,
    pub access_token_lifetime_secs: Option<Num>,
    pub id_token_lifetime_secs: Option<Num>,
    pub dev_provider_cap: Option<Num>,
    pub delivery_workers: Option<Num>,
    pub delivery_lease_secs: Option<Num>,
    /// `[providers.<name>]`: per-provider server settings (today its API `base_url`).
    pub providers: Option<std::collections::BTreeMap<String, RawProvider>>,
    /// Deprecated: `providers.twilio.base_url` (which wins when both are set).
    pub twilio_base_url: Option<String>,
    pub password_hash_concurrency: Option<Num>,
    pub password_hash_queue_ms: Option<Num>,
    pub dev_provider_log_messages: Option<Flag>,
    /// CIDR blocks of the reverse proxies whose `X-Forwarded-For` / `Forwarded` headers are believed.
    pub trusted_proxies: Option<StringList>,
    pub tls: Option<RawTls>,
    pub http: Option<RawHttp>,
    /// `[log_streams]`: how log streams are delivered.
    pub log_streams: Option<RawLogStreams>,
}

/// `[log_streams]`: delivery of log streams (batches, retries, the failure budget) and, for tests, the sinks' URLs.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct RawLogStreams {
    pub datadog_url: Option<String>,
    pub splunk_url: Option<String>,
    pub batch_size: Option<Num>,
    pub batch_age_ms: Option<Num>,
    pub poll_ms: Option<Num>,
    pub failure_budget: Option<Num>,
    pub backoff_base_ms: Option<Num>,
    pub backoff_max_ms: Option<Num>,
    pub send_timeout_ms: Option<Num>,
    pub lease_ms: Option<Num>,
}

impl RawLogStreams {
    fn merge(self, over: RawLogStreams) -> RawLogStreams {
        RawLogStreams {
            datadog_url: over.datadog_url.or(self.datadog_url),
            splunk_url: over.splunk_url.or(self.splunk_url),
            batch_size: over.batch_size.or(self.batch_size),
            batch_age_ms: over.batch_age_ms.or(self.batch_age_ms),
            poll_ms: over.poll_ms.or(self.poll_ms),
            failure_budget: over.failure_budget.or(self.failure_budget),
            backoff_base_ms: over.backoff_base_ms.or(self.backoff_base_ms),
            backoff_max_ms: over.backoff_max_ms.or(self.backoff_max_ms),
            send_timeout_ms: over.send_timeout_ms.or(self.send_timeout_ms),
            lease_ms: over.lease_ms.or(self.lease_ms),
        }
    }
}

fn resolve_log_streams(raw: RawLogStreams) -> Result<callsign_core::log_streams::Tuning, ConfigError> {
    let d = callsign_core::log_streams::Tuning::default();
    let url = |key: &str, u: Option<String>| -> Result<Option<String>, ConfigError> {
        match u.map(|u| u.trim().to_owned()).filter(|u| !u.is_empty()) {
            None => Ok(None),
            Some(u) if (u.starts_with("https://") || u.starts_with("http://")) && !u.contains(char::is_whitespace) => {
                Ok(Some(u.trim_end_matches('/').to_owned()))
            }
            Some(u) => Err(err(format!("log_streams.{key}: `{u}` must be an http(s) URL"))),
        }
    };
    let num = |key: &str, v: Option<Num>, default: u64, min: u64, max: u64| -> Result<u64, ConfigError> {
        match v.map_or(default, |n| n.0) {
            n if (min..=max).contains(&n) => Ok(n),
            n => Err(err(format!("log_streams.{key}: must be between {min} and {max}, got {n}"))),
        }
    };
    let send_timeout_ms = num("send_timeout_ms", raw.send_timeout_ms, d.send_timeout_ms, 100, 120_000)?;
    let lease_ms = num("lease_ms", raw.lease_ms, d.lease_ms, 1_000, 600_000)?;
    if lease_ms < send_timeout_ms.saturating_mul(2) {
        // A send must end well within the claim, or another node could send the same batch meanwhile.
        return Err(err(format!(
            "log_streams.lease_ms: must be at least twice send_timeout_ms ({send_timeout_ms}), got {lease_ms}"
        )));
    }
    Ok(callsign_core::log_streams::Tuning {
        datadog_url: url("datadog_url", raw.datadog_url)?,
        splunk_url: url("splunk_url", raw.splunk_url)?,
        batch_size: u32::try_from(num("batch_size", raw.batch_size, u64::from(d.batch_size), 1, 1_000)?)
            .unwrap_or(d.batch_size),
        batch_age_ms: num("batch_age_ms", raw.batch_age_ms, d.batch_age_ms, 0, 60_000)?,
        poll_ms: num("poll_ms", raw.poll_ms, d.poll_ms, 10, 60_000)?,
        failure_budget: u32::try_from(num(
            "failure_budget",
            raw.failure_budget,
            u64::from(d.failure_budget),
            1,
            1_000,
        )?)
        .unwrap_or(d.failure_budget),
        backoff_base_ms: num("backoff_base_ms", raw.backoff_base_ms, d.backoff_base_ms, 1, 600_000)?,
        backoff_max_ms: num("backoff_max_ms", raw.backoff_max_ms, d.backoff_max_ms, 1, 3_600_000)?,
        send_timeout_ms,
        lease_ms,
    })
}

/// `[providers.<name>]`: what the server (not the Management API) decides about a provider.
#[derive(Debug, Default, Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RawProvider {
    /// Where the provider's client sends instead of the provider's own API (a regional endpoint, a private
    /// gateway, a test fake). An API caller cannot change it.
    pub base_url: Option<String>,
}

impl RawConfig {
    /// Aim provider `name` at `url` (`[providers.<name>] base_url`).
    pub fn set_provider_base_url(&mut self, name: &str, url: impl Into<String>) {
        self.providers.get_or_insert_with(Default::default).entry(name.to_owned()).or_default().base_url =
            Some(url.into());
    }
}

/// `[http]`: connection limits of the listener.
#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct RawHttp {
    pub header_read_timeout_secs: Option<Num>,
    pub idle_timeout_secs: Option<Num>,
    pub body_timeout_secs: Option<Num>,
    pub max_connections: Option<Num>,
    pub max_body_bytes: Option<Num>,
}

impl RawHttp {
    fn merge(self, over: RawHttp) -> RawHttp {
        RawHttp {
            header_read_timeout_secs: over.header_read_timeout_secs.or(self.header_read_timeout_secs),
            idle_timeout_secs: over.idle_timeout_secs.or(self.idle_timeout_secs),
            body_timeout_secs: over.body_timeout_secs.or(self.body_timeout_secs),
            max_connections: over.max_connections.or(self.max_connections),
            max_body_bytes: over.max_body_bytes.or(self.max_body_bytes),
        }
    }
}

/// A boolean written either as a TOML boolean or (from the environment) as `true`/`false`/`1`/`0`.
#[derive(Debug, Clone, Copy)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum B {
            B(bool),
            S(String),
        }
        match B::deserialize(d)? {
            B::B(b) => Ok(Flag(b)),
            B::S(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(Flag(true)),
                "false" | "0" | "no" | "off" | "" => Ok(Flag(false)),
                _ => Err(serde::de::Error::custom(format!("`{s}` is not true or false"))),
            },
        }
    }
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct RawTls {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

/// A number written either as a TOML integer or (from the environment) as a string.
#[derive(Debug, Clone, Copy)]
pub struct Num(pub u64);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum N {
            I(u64),
            S(String),
        }
        match N::deserialize(d)? {
            N::I(n) => Ok(Num(n)),
            N::S(s) => {
                s.trim().parse().map(Num).map_err(|_| serde::de::Error::custom(format!("`{s}` is not a whole number")))
            }
        }
    }
}

/// A list written as a TOML array or (from the environment) as one string, split on commas and newlines.
#[derive(Debug, Clone, Default)]
pub struct StringList(pub Vec<String>);

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum L {
            V(Vec<String>),
            S(String),
        }
        Ok(StringList(match L::deserialize(d)? {
            L::V(v) => v,
            L::S(s) => split_list(&s),
        }))
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split([',', '\n']).map(str::trim).filter(|x| !x.is_empty() && !x.starts_with('#')).map(str::to_owned).collect()
}

impl RawConfig {
    /// Later layers win, field by field.
    fn merge(self, over: RawConfig) -> RawConfig {
        let tls = match (self.tls, over.tls) {
            (Some(a), Some(b)) => {
                Some(RawTls { cert_file: b.cert_file.or(a.cert_file), key_file: b.key_file.or(a.key_file) })
            }
            (a, b) => b.or(a),
        };
        let http = match (self.http, over.http) {
            (Some(a), Some(b)) => Some(a.merge(b)),
            (a, b) => b.or(a),
        };
        let log_streams = match (self.log_streams, over.log_streams) {
            (Some(a), Some(b)) => Some(a.merge(b)),
            (a, b) => b.or(a),
        };
        RawConfig {
            listen: over.listen.or(self.listen),
            public_url: over.public_url.or(self.public_url),
            database_url: over.database_url.or(self.database_url),
            database_url_file: over.database_url_file.or(self.database_url_file),
            redis_url: over.redis_url.or(self.redis_url),
            redis_url_file: over.redis_url_file.or(self.redis_url_file),
            redis_key_prefix: over.redis_key_prefix.or(self.redis_key_prefix),
            data_dir: over.data_dir.or(self.data_dir),
            metrics_addr: over.metrics_addr.or(self.metrics_addr),
            log_format: over.log_format.or(self.log_format),
            log_level: over.log_level.or(self.log_level),
            encryption_keys: over.encryption_keys.or(self.encryption_keys),
            encryption_keys_file: over.encryption_keys_file.or(self.encryption_keys_file),
            access_token_lifetime_secs: over.access_token_lifetime_secs.or(self.access_token_lifetime_secs),
            id_token_lifetime_secs: over.id_token_lifetime_secs.or(self.id_token_lifetime_secs),
            dev_provider_cap: over.dev_provider_cap.or(self.dev_provider_cap),
            delivery_workers: over.delivery_workers.or(self.delivery_workers),
            delivery_lease_secs: over.delivery_lease_secs.or(self.delivery_lease_secs),
            providers: match (self.providers, over.providers) {
                (Some(mut a), Some(b)) => {
                    for (name, p) in b {
                        let e = a.entry(name).or_default();
                        e.base_url = p.base_url.or(e.base_url.take());
                    }
                    Some(a)
                }
                (a, b) => b.or(a),
            },
            twilio_base_url: over.twilio_base_url.or(self.twilio_base_url),
            password_hash_concurrency: over.password_hash_concurrency.or(self.password_hash_concurrency),
            password_hash_queue_ms: over.password_hash_queue_ms.or(self.password_hash_queue_ms),
            dev_provider_log_messages: over.dev_provider_log_messages.or(self.dev_provider_log_messages),
            trusted_proxies: over.trusted_proxies.or(self.trusted_proxies),
            tls,
            http,
            log_streams,
        }
    }

    pub fn from_toml(text: &str, origin: &str) -> Result<RawConfig, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let message = e.message().trim();
            match e.span().and_then(|span| key_at(text, span.start)) {
                Some(key) if !message.contains(&format!("`{}`", key.rsplit('.').next().unwrap_or(&key))) => {
                    err(format!("{origin}: {key}: {message}"))
                }
                _ => err(format!("{origin}: {message}")),
            }
        })
    }

    /// `CALLSIGN_FOO` → `foo`; `CALLSIGN_TLS__CERT_FILE` → `tls.cert_file`. `CALLSIGN_TEST_*` is ignored.
    pub fn from_env(vars: impl IntoIterator<Item = (String, String)>) -> Result<RawConfig, ConfigError> {
        let mut table = toml::Table::new();
        let mut pairs = Vec::new();
        for (k, v) in vars {
            let Some(rest) = k.strip_prefix("CALLSIGN_") else { continue };
            if k.starts_with(TEST_ENV_PREFIX) || rest.is_empty() {
                continue;
            }
            pairs.push((k.clone(), v.clone()));
            let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            let mut cur = &mut table;
            for (i, part) in path.iter().enumerate() {
                if i + 1 == path.len() {
                    cur.insert(part.clone(), toml::Value::String(v.clone()));
                } else {
                    let entry = cur.entry(part.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
                    match entry {
                        toml::Value::Table(t) => cur = t,
                        _ => return Err(err(format!("environment variable {k}: `{part}` is not a section"))),
                    }
                }
            }
        }
        RawConfig::deserialize(toml::Value::Table(table)).map_err(|e| {
            // Name the variable that is wrong: the first one that is refused on its own (an error's message lists
            // every known field, so matching names in it would blame the wrong one).
            for (name, value) in &pairs {
                if let Err(alone) = RawConfig::from_env_one(name, value) {
                    return err(format!("environment variable {name}: {}", alone.trim()));
                }
            }
            err(format!("environment: {}", e.to_string().trim()))
        })
    }

    /// One `CALLSIGN_*` variable read on its own (for naming the one a combined read refused).
    fn from_env_one(name: &str, value: &str) -> Result<RawConfig, String> {
        let rest = name.strip_prefix("CALLSIGN_").unwrap_or(name);
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        let mut v = toml::Value::String(value.to_owned());
        for part in path.iter().rev() {
            let mut t = toml::Table::new();
            t.insert(part.clone(), v);
            v = toml::Value::Table(t);
        }
        RawConfig::deserialize(v).map_err(|e| e.to_string())
    }
}

/// The levels `log_level` takes, alone or after `target=`.
const LOG_LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];

/// `log_level`: a level, or comma-separated directives `target=level` (tracing's filter syntax). A word that is no
/// level (`verbose`) would be read by the filter as a target name and hide every line, so it is refused.
fn check_log_level(s: String) -> Result<String, ConfigError> {
    for d in s.split(',').map(str::trim) {
        let level = d.rsplit_once('=').map_or(d, |(_, l)| l);
        if !LOG_LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level.trim())) {
            return Err(err(format!(
                "log_level: `{d}` is not a level ({}) or a directive like callsign=debug",
                LOG_LEVELS.join(", ")
            )));
        }
    }
    Ok(s)
}

/// The setting a TOML error at byte `at` is about: the key on that line, under the nearest `[section]` above it.
fn key_at(text: &str, at: usize) -> Option<String> {
    let before = text.get(..at)?;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text.get(line_start..)?.lines().next()?;
    let key = line.split_once('=')?.0.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('[') {
        return None;
    }
    let section = before[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && l.ends_with(']'))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    Some(match section {
        Some(sec) if !sec.is_empty() => format!("{sec}.{key}"),
        _ => key.to_owned(),
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// Checked, ready-to-use settings.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Always ends with `/`.
    pub public_url: String,
    /// Whether `public_url` (or `listen`, which it derives from) was configured, rather than the defaults'.
    pub public_url_given: bool,
    pub database_url: String,
    /// Where the rate-limit buckets live when not in the database: a Redis URL (it may hold a password; never
    /// logged unredacted). None: in the database.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key (nodes that share limits use the same one).
    pub redis_key_prefix: String,
    pub data_dir: PathBuf,
    pub metrics_addr: Option<SocketAddr>,
    pub log_format: LogFormat,
    pub log_level: String,
    /// Keyring text (one `<id>:<base64>` per line, first is active) from config or a secrets file; None means
    /// "use (or create) the key file in the data directory".
    pub encryption_keys: Option<String>,
    pub access_token_lifetime_secs: u64,
    pub id_token_lifetime_secs: u64,
    /// Messages the development provider records over the installation's lifetime before it refuses.
    pub dev_provider_cap: u64,
    /// Delivery worker tasks in this process.
    pub delivery_workers: u32,
    /// How long a delivery worker's claim on a job holds without renewal (renewed every third of it while the
    /// worker sends); a crashed node's jobs are taken over after at most this long.
    pub delivery_lease_secs: u64,
    /// Provider API base URLs by provider name, overriding each provider's own (tests aim them at local servers).
    /// No trailing slash. The names are checked against the providers at start.
    pub provider_base_urls: std::collections::BTreeMap<String, String>,
    /// Password hashes (argon2id, 19 MiB each) computed at once; more wait up to `password_hash_queue_ms`.
    pub password_hash_concurrency: usize,
    pub password_hash_queue_ms: u64,
    /// Log the full number and text of every development-provider message (codes included). Off by default.
    pub dev_provider_log_messages: bool,
    /// The reverse proxies in front of Callsign: only when the connection comes from one of them are the
    /// forwarding headers read for the client's address (`http::client_ip`). Empty: the socket peer is the client.
    pub trusted_proxies: Vec<callsign_domain::net::Cidr>,
    pub tls: Option<TlsFiles>,
    pub http: HttpLimits,
    /// Log stream delivery (`[log_streams]`).
    pub log_streams: callsign_core::log_streams::Tuning,
}

/// Connection limits of the listener (`[http]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// A request's headers must arrive within this (slowloris); on a kept-alive connection it also bounds the wait
    /// for the next request.
    pub header_read_timeout_secs: u64,
    /// A connection with no request in progress and no bytes moving for this long is closed.
    pub idle_timeout_secs: u64,
    /// A request's whole body must arrive within this.
    pub body_timeout_secs: u64,
    /// Connections served at once; more wait in the listen backlog until one closes.
    pub max_connections: usize,
    /// The largest request body (the Authentication API's endpoints take at most 64 KiB of it).
    pub max_body_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout_secs: 30,
            idle_timeout_secs: 60,
            body_timeout_secs: 30,
            max_connections: 1024,
            max_body_bytes: 1024 * 1024,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("database_url", &redact_url(&self.database_url))
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("redis_key_prefix", &self.redis_key_prefix)
            .field("data_dir", &self.data_dir)
            .field("metrics_addr", &self.metrics_addr)
            .field("encryption_keys", &self.encryption_keys.as_ref().map(|_| "[redacted]"))
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`. The userinfo ends at the last `@` before the
/// path (as URL parsers read it, so a password may contain `@`), and a `password=` query parameter (which sqlx's
/// PostgreSQL URLs accept) is hidden too.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    // The authority runs to the first `/`; its user information to the last `@` in it. (A `?` is not looked for
    // here: a password may contain one, and hiding too much is the safe mistake.)
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((auth, host)) => match auth.split_once(':') {
            Some((user, _)) => (format!("{user}:***@"), host),
            None => (format!("{auth}@"), host),
        },
        None => (String::new(), authority),
    };
    let tail = format!("{host}{path}");
    let tail = match tail.split_once('?') {
        Some((before, query)) => {
            let redacted: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{before}?{}", redacted.join("&"))
        }
        None => tail,
    };
    format!("{scheme}://{userinfo}{tail}")
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./data/callsign.db";
pub const DEFAULT_DATA_DIR: &str = "./data";
/// The embedded database's file in the data directory.
pub const DEFAULT_DATABASE_FILE: &str = "callsign.db";

/// `sqlite://<data_dir>/callsign.db`: the database when none is configured (`./data` when no data directory is).
pub fn default_database_url(data_dir: Option<&std::path::Path>) -> String {
    match data_dir {
        None => DEFAULT_DATABASE_URL.to_owned(),
        Some(d) => format!("sqlite://{}", d.join(DEFAULT_DATABASE_FILE).display()),
    }
}
pub const DEFAULT_DELIVERY_LEASE_SECS: u64 = callsign_core::delivery::DEFAULT_LEASE_SECS;

fn read_secret_file(path: &Path, setting: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
        .map_err(|e| err(format!("{setting}: cannot read `{}`: {e}", path.display())))
}

impl Config {
    /// Build the layers and check them. `file` is the `--config` path; `flags` are the command-line overrides.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: RawConfig,
    ) -> Result<Config, ConfigError> {
        let mut raw = RawConfig::default();
        if let Some(path) = file {
            let text =
                std::fs::read_to_string(path).map_err(|e| err(format!("config file `{}`: {e}", path.display())))?;
            raw = raw.merge(RawConfig::from_toml(&text, &format!("config file `{}`", path.display()))?);
        }
        raw = raw.merge(RawConfig::from_env(env)?);
        raw = raw.merge(flags);
        Config::resolve(raw)
    }

    pub fn resolve(raw: RawConfig) -> Result<Config, ConfigError> {
        let listen_given = raw.listen.is_some();
        let listen_s = raw.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_s.parse().map_err(|_| {
            err(format!("listen: `{listen_s}` is not a socket address; write it like 127.0.0.1:8080 or [::]:8080"))
        })?;

        let database_url = match (raw.database_url, raw.database_url_file) {
            (Some(_), Some(_)) => {
                return Err(err("database_url and database_url_file are both set; keep only one"));
            }
            (Some(u), None) => u,
            (None, Some(p)) => read_secret_file(&p, "database_url_file")?,
            // The embedded database lives in the data directory (`--data-dir` moves both).
            (None, None) => default_database_url(raw.data_dir.as_deref()),
        };
        crate::db::check_scheme(&database_url).map_err(|e| err(format!("database_url: {e}")))?;

        let redis_url = match (raw.redis_url, raw.redis_url_file) {
            (Some(u), Some(_)) if !u.trim().is_empty() => {
                return Err(err("redis_url and redis_url_file are both set; keep only one"));
            }
            (_, Some(p)) => Some(read_secret_file(&p, "redis_url_file")?),
            (Some(u), None) => Some(u),
            (None, None) => None,
        }
        .filter(|u| !u.trim().is_empty());
        if let Some(url) = &redis_url {
            callsign_limiter_redis::RedisLimiter::check_url(url)
                .map_err(|e| err(format!("redis_url: {}", e.to_string().trim_start_matches("storage error: "))))?;
        }
        let redis_key_prefix =
            raw.redis_key_prefix.unwrap_or_else(|| callsign_limiter_redis::RedisLimiter::DEFAULT_PREFIX.to_owned());

        let tls = match raw.tls {
            None => None,
            Some(RawTls { cert_file: None, key_file: None }) => None,
            Some(RawTls { cert_file: Some(c), key_file: Some(k) }) => Some(TlsFiles { cert_file: c, key_file: k }),
            Some(_) => return Err(err("tls: set both tls.cert_file and tls.key_file (PEM files), or neither")),
        };

        let public_url_given = raw.public_url.is_some() || listen_given;
        let public_url = match raw.public_url {
            Some(u) => normalize_public_url(&u)?,
            None => {
                let scheme = if tls.is_some() { "https" } else { "http" };
                format!("{scheme}://{listen}/")
            }
        };

        let metrics_addr = match raw.metrics_addr.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => Some(s.parse().map_err(|_| {
                err(format!("metrics_addr: `{s}` is not a socket address; write it like 127.0.0.1:9090, or leave it empty to turn metrics off"))
            })?),
        };

        let log_format = match raw.log_format.as_deref().unwrap_or("human") {
            "human" => LogFormat::Human,
            "json" => LogFormat::Json,
            other => return Err(err(format!("log_format: `{other}` is not one of human, json"))),
        };

        let encryption_keys = match (raw.encryption_keys, raw.encryption_keys_file) {
            (Some(_), Some(_)) => {
                return Err(err("encryption_keys and encryption_keys_file are both set; keep only one"));
            }
            (Some(list), None) => Some(list.0.join("\n")),
            (None, Some(p)) => Some(read_secret_file(&p, "encryption_keys_file")?),
            (None, None) => None,
        };
        if let Some(text) = &encryption_keys {
            callsign_domain::seal::Keyring::parse(text).map_err(|e| err(format!("encryption_keys: {e}")))?;
        }

        let lifetime = |v: Option<Num>, default: u64, name: &str| -> Result<u64, ConfigError> {
            let n = v.map_or(default, |n| n.0);
            if n == 0 || n > 30 * 86_400 {
                return Err(err(format!("{name}: must be between 1 and 2592000 seconds (30 days), got {n}")));
            }
            Ok(n)
        };

        Ok(Config {
            listen,
            public_url,
            public_url_given,
            database_url,
            redis_url,
            redis_key_prefix,
            data_dir: raw.data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            metrics_addr,
            log_format,
            log_level: check_log_level(raw.log_level.unwrap_or_else(|| "info".to_owned()))?,
            encryption_keys,
            access_token_lifetime_secs: lifetime(raw.access_token_lifetime_secs, 86_400, "access_token_lifetime_secs")?,
            id_token_lifetime_secs: lifetime(raw.id_token_lifetime_secs, 36_000, "id_token_lifetime_secs")?,
            dev_provider_cap: raw.dev_provider_cap.map_or(100, |n| n.0),
            delivery_workers: match raw.delivery_workers.map_or(2, |n| n.0) {
                n @ 1..=64 => n as u32,
                n => return Err(err(format!("delivery_workers: must be between 1 and 64, got {n}"))),
            },
            password_hash_concurrency: match raw.password_hash_concurrency.map_or(0, |n| n.0) {
                0 => std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
                n @ 1..=256 => n as usize,
                n => {
                    return Err(err(format!(
                        "password_hash_concurrency: must be between 0 (one per CPU core) and 256, got {n}"
                    )));
                }
            },
            password_hash_queue_ms: match raw.password_hash_queue_ms.map_or(1_000, |n| n.0) {
                n @ 0..=60_000 => n,
                n => return Err(err(format!("password_hash_queue_ms: must be between 0 and 60000, got {n}"))),
            },
            dev_provider_log_messages: raw.dev_provider_log_messages.is_some_and(|f| f.0),
            trusted_proxies: {
                let list = raw.trusted_proxies.map(|l| l.0).unwrap_or_default();
                let mut out = Vec::new();
                for entry in list.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
                    out.push(
                        entry
                            .parse()
                            .map_err(|e: callsign_domain::net::NotACidr| err(format!("trusted_proxies: {e}")))?,
                    );
                }
                out
            },
            http: resolve_http(raw.http.unwrap_or_default())?,
            log_streams: resolve_log_streams(raw.log_streams.unwrap_or_default())?,
            delivery_lease_secs: match raw.delivery_lease_secs.map_or(DEFAULT_DELIVERY_LEASE_SECS, |n| n.0) {
                n @ 2..=300 => n,
                n => return Err(err(format!("delivery_lease_secs: must be between 2 and 300 seconds, got {n}"))),
            },
            provider_base_urls: {
                let mut out = std::collections::BTreeMap::new();
                // The deprecated key belongs to the provider that declares it.
                let legacy_owner = callsign_messaging::Registry::builtin()
                    .kinds()
                    .find(|k| k.legacy_base_url_key() == Some("twilio_base_url"))
                    .map(|k| k.name().to_owned());
                let legacy =
                    raw.twilio_base_url.zip(legacy_owner).map(|(u, name)| ("twilio_base_url".to_owned(), name, u));
                let table = raw
                    .providers
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|(name, p)| p.base_url.map(|u| (format!("providers.{name}.base_url"), name, u)));
                // The deprecated key first, so `[providers.twilio] base_url` wins over it.
                for (key, name, u) in legacy.into_iter().chain(table) {
                    let u = u.trim();
                    if !(u.starts_with("https://") || u.starts_with("http://")) || u.contains(char::is_whitespace) {
                        return Err(err(format!("{key}: `{u}` must be an http(s) URL")));
                    }
                    out.insert(name, u.trim_end_matches('/').to_owned());
                }
                out
            },
            tls,
        })
    }

    /// The Management API audience and token issuer derive from the public URL.
    pub fn issuer(&self) -> &str {
        &self.public_url
    }
    pub fn management_audience(&self) -> String {
        format!("{}api/v2/", self.public_url)
    }
}

fn resolve_http(raw: RawHttp) -> Result<HttpLimits, ConfigError> {
    let d = HttpLimits::default();
    let within = |v: Option<Num>, default: u64, min: u64, max: u64, name: &str| -> Result<u64, ConfigError> {
        match v.map_or(default, |n| n.0) {
            n if (min..=max).contains(&n) => Ok(n),
            n => Err(err(format!("http.{name}: must be between {min} and {max}, got {n}"))),
        }
    };
    Ok(HttpLimits {
        header_read_timeout_secs: within(
            raw.header_read_timeout_secs,
            d.header_read_timeout_secs,
            1,
            3_600,
            "header_read_timeout_secs",
        )?,
        idle_timeout_secs: within(raw.idle_timeout_secs, d.idle_timeout_secs, 1, 86_400, "idle_timeout_secs")?,
        body_timeout_secs: within(raw.body_timeout_secs, d.body_timeout_secs, 1, 3_600, "body_timeout_secs")?,
        max_connections: within(raw.max_connections, d.max_connections as u64, 1, 1_000_000, "max_connections")?
            as usize,
        max_body_bytes: within(raw.max_body_bytes, d.max_body_bytes as u64, 1_024, 64 * 1024 * 1024, "max_body_bytes")?
            as usize,
    })
}

fn normalize_public_url(u: &str) -> Result<String, ConfigError> {
    let u = u.trim();
    let rest = u.strip_prefix("https://").or_else(|| u.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !u.contains(['?', '#', ' ']) => {
            Ok(if u.ends_with('/') { u.to_owned() } else { format!("{u}/") })
        }
        _ => Err(err(format!("public_url: `{u}` must be an absolute http(s) URL such as https://auth.example.com/"))),
    }
}

/// Printed by `callsign default-config`.
pub const DEFAULT_CONFIG: &str = r#"# Callsign configuration. Every setting is optional; shown here with its default.
# Order of precedence: these defaults < this file (--config) < CALLSIGN_* environment variables < flags.
# Environment names: CALLSIGN_<KEY> in upper case, sections joined by a double underscore
# (CALLSIGN_TLS__CERT_FILE). Lists may be given as one comma-separated value.

# Address of the HTTP(S) listener (flag --listen).
listen = "127.0.0.1:8080"

# The public base URL clients use. The token issuer, the Management API audience (<public_url>api/v2/) and every
# absolute URL derive from it. Default: http(s)://<listen>/
# public_url = "https://auth.example.com/"

# sqlite://PATH (created if missing) or postgres://USER:PASSWORD@HOST:PORT/DB (flag --database-url).
# Put a URL with a password in a file and point database_url_file (CALLSIGN_DATABASE_URL_FILE) at it instead.
# Default: sqlite://<data_dir>/callsign.db (so --data-dir moves the database too).
# database_url = "sqlite://./data/callsign.db"
# database_url_file = "/run/secrets/callsign-database-url"

# Rate limits (login throttling, brute-force protection, message and wrong-code limits) are token buckets in the
# database by default, shared by every node on the same PostgreSQL. Set a Redis URL to keep them in Redis instead:
# redis://[:PASSWORD@]HOST[:PORT][/DB] (CALLSIGN_REDIS_URL). Nodes that share limits use the same Redis and prefix.
# While Redis cannot be reached every request that needs a limit is refused with 503 (never let through
# unlimited) and /readyz answers 503. A URL with a password belongs in redis_url_file (CALLSIGN_REDIS_URL_FILE).
# redis_url = "redis://127.0.0.1:6379/"
# redis_url_file = "/run/secrets/callsign-redis-url"
redis_key_prefix = "callsign:"

# Where Callsign keeps its generated files: the encryption key file (if encryption_keys is not set) and the
# bootstrap credentials written on first start (flag --data-dir).
data_dir = "./data"

# Prometheus metrics on their own listener (GET /metrics). Empty = off.
metrics_addr = ""

# Logs: "human" or "json"; level as a tracing filter ("info", "callsign_server=debug,info").
log_format = "human"
log_level = "info"

# Keys that encrypt stored secrets (provider credentials, signing keys): "<key-id>:<base64 of 32 bytes>".
# The first key encrypts; the others only decrypt, and whatever they encrypted is re-encrypted under the first
# key at the next start. Unset: a key file is generated in data_dir (mode 0600) on first start.
# Prefer encryption_keys_file (CALLSIGN_ENCRYPTION_KEYS_FILE): one key per line, same format.
# encryption_keys = ["2026-01:BASE64KEY"]
# encryption_keys_file = "/run/secrets/callsign-keys"

# Lifetime of access tokens issued by /oauth/token, and of ID tokens, in seconds.
access_token_lifetime_secs = 86400
id_token_lifetime_secs = 36000

# The development provider ("auth0" in the Guardian API) delivers nothing: it records messages in the dev inbox
# (GET /api/v2/dev-inbox). Like Auth0's test sender it stops after this many messages in the installation's life.
dev_provider_cap = 100

# Tasks per process that deliver queued SMS and voice messages.
delivery_workers = 2

# Seconds a worker's claim on a message holds (2 to 300). The worker renews it every third of that while it
# sends, so a slow provider is never raced; a crashed node's messages are sent by another worker after at most
# this long. Delivery is at-least-once: a message the provider accepted just before a crash, before the outcome
# was recorded, is sent again.
delivery_lease_secs = 15


# Password hashes (argon2id, 19 MiB of memory each) computed at once; 0 = one per CPU core. A login that finds
# them all busy waits up to password_hash_queue_ms, then gets 503 with Retry-After, so a login flood cannot take
# the process's memory.
password_hash_concurrency = 0
password_hash_queue_ms = 1000

# Log the full phone number and text (the code) of every development-provider message at INFO. Off: the log says
# only that a message was recorded, with the number masked; read codes in the dev inbox.
dev_provider_log_messages = false

# The reverse proxies (load balancers) in front of Callsign, as addresses or CIDR blocks. Only a connection from one
# of them has its X-Forwarded-For / Forwarded header read for the client's address (right to left, skipping these
# proxies); without them the connection's own address is the client, so a client cannot choose its address by
# sending the header. Environment: CALLSIGN_TRUSTED_PROXIES="10.0.0.0/8,192.0.2.7".
trusted_proxies = []

# HTTPS with a PEM certificate chain and private key. Unset: plain HTTP.
[tls]
# cert_file = "/etc/callsign/cert.pem"
# key_file = "/etc/callsign/key.pem"

# Connection limits of the listener.
[http]
# A request's headers must arrive within this many seconds (slow clients are cut off); on a kept-alive connection
# it also bounds the wait for the next request.
header_read_timeout_secs = 30
# A connection with no request in progress and nothing sent or received for this long is closed.
idle_timeout_secs = 60
# A request's whole body must arrive within this many seconds (408 otherwise).
body_timeout_secs = 30
# Connections served at once; further ones wait in the listen backlog until one closes.
max_connections = 1024
# The largest request body in bytes (413 above it). /oauth/token and /mfa/* take at most 65536 of it.
max_body_bytes = 1048576

# Delivery of log streams (/api/v2/log-streams). Each node looks for due streams every poll_ms; a stream sends up
# to batch_size events at once, or fewer once the oldest has waited batch_age_ms. A failed send is retried after
# backoff_base_ms, doubling up to backoff_max_ms; after failure_budget failures in a row the stream is suspended
# (its last error shown) until an operator resumes it. A node's claim on a stream lasts lease_ms (a crashed
# node's streams are taken over after it); one request to a sink lasts at most send_timeout_ms.
# datadog_url / splunk_url replace the Datadog region's intake and https://<splunkDomain>:<splunkPort> (tests).
[log_streams]
batch_size = 100
batch_age_ms = 1000
poll_ms = 500
failure_budget = 10
backoff_base_ms = 1000
backoff_max_ms = 60000
send_timeout_ms = 10000
lease_ms = 30000

# Per phone provider, by provider name: where its API is, instead of its own (a regional endpoint, a private
# gateway, a test server). The Management API cannot change it. Environment: CALLSIGN_PROVIDERS__<NAME>__BASE_URL.
# (twilio_base_url, from earlier versions, is still read; [providers.<name>] base_url wins over it.)
# [providers.<provider name>]
# base_url = "http://127.0.0.1:4010"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    }

    #[test]
    fn a_log_level_that_is_no_level_is_refused() {
        for ok in ["info", "DEBUG", "warn,callsign=trace", "callsign_server=debug,sqlx=off"] {
            let raw = RawConfig { log_level: Some(ok.into()), ..Default::default() };
            assert!(Config::load(None, env(&[]), raw).is_ok(), "{ok}");
        }
        for bad in ["verbose", "info,loud", "callsign=chatty", ""] {
            let raw = RawConfig { log_level: Some(bad.into()), ..Default::default() };
            let e = Config::load(None, env(&[]), raw).unwrap_err().to_string();
            assert!(e.starts_with("log_level:") && e.contains("is not a level"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_wrong_environment_variable_is_the_one_named() {
        let e = Config::load(
            None,
            env(&[("CALLSIGN_PUBLIC_URL", "https://auth.example/"), ("CALLSIGN_NO_SUCH_SETTING", "1")]),
            RawConfig::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("environment variable CALLSIGN_NO_SUCH_SETTING:"), "{e}");
        let e = Config::load(
            None,
            env(&[("CALLSIGN_PUBLIC_URL", "https://auth.example/"), ("CALLSIGN_PROVIDERS__SNS__BASE_URLS", "x")]),
            RawConfig::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("environment variable CALLSIGN_PROVIDERS__SNS__BASE_URLS:"), "{e}");
        // The provider table itself is read from the environment.
        let ok = Config::load(
            None,
            env(&[
                ("CALLSIGN_PUBLIC_URL", "https://auth.example/"),
                ("CALLSIGN_PROVIDERS__SNS__BASE_URL", "http://127.0.0.1:5000"),
            ]),
            RawConfig::default(),
        );
        assert!(ok.is_ok(), "{:?}", ok.err());
    }

    #[test]
    fn the_data_dir_moves_the_default_database_and_an_explicit_url_wins() {
        let raw = RawConfig { data_dir: Some(PathBuf::from("/srv/callsign")), ..Default::default() };
        let c = Config::load(None, env(&[]), raw).unwrap();
        assert_eq!(c.database_url, "sqlite:///srv/callsign/callsign.db");
        let raw = RawConfig { data_dir: Some(PathBuf::from("rel/dir")), ..Default::default() };
        assert_eq!(Config::load(None, env(&[]), raw).unwrap().database_url, "sqlite://rel/dir/callsign.db");
        let raw = RawConfig {
            data_dir: Some(PathBuf::from("/srv/callsign")),
            database_url: Some("sqlite:///elsewhere.db".into()),
            ..Default::default()
        };
        assert_eq!(Config::load(None, env(&[]), raw).unwrap().database_url, "sqlite:///elsewhere.db");
        let c = Config::load(None, env(&[("CALLSIGN_DATA_DIR", "/var/lib/cs")]), RawConfig::default()).unwrap();
        assert_eq!(c.database_url, "sqlite:///var/lib/cs/callsign.db");
    }

    #[test]
    fn defaults() {
        let c = Config::load(None, env(&[]), RawConfig::default()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(c.public_url, "http://127.0.0.1:8080/");
        assert_eq!(c.management_audience(), "http://127.0.0.1:8080/api/v2/");
        assert!(c.metrics_addr.is_none() && c.tls.is_none() && c.encryption_keys.is_none());
    }

    #[test]
    fn default_config_text_parses_to_defaults() {
        let raw = RawConfig::from_toml(DEFAULT_CONFIG, "default").unwrap();
        let c = Config::resolve(raw).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.access_token_lifetime_secs, 86_400);
        assert_eq!(c.http, HttpLimits::default());
        assert!(!c.dev_provider_log_messages);
        assert_eq!(c.password_hash_queue_ms, 1_000);
        let defaults = Config::resolve(RawConfig::default()).unwrap();
        assert_eq!(c.password_hash_concurrency, defaults.password_hash_concurrency);
    }

    #[test]
    fn layers_override_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "listen = \"127.0.0.1:1000\"\npublic_url = \"https://file.example\"\nlog_level = \"debug\"\n",
        )
        .unwrap();
        let flags = RawConfig { listen: Some("127.0.0.1:3000".into()), ..Default::default() };
        let c = Config::load(
            Some(&f),
            env(&[
                ("CALLSIGN_LISTEN", "127.0.0.1:2000"),
                ("CALLSIGN_PUBLIC_URL", "https://env.example/"),
                ("HOME", "/x"),
            ]),
            flags,
        )
        .unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(c.public_url, "https://env.example/");
        assert_eq!(c.log_level, "debug");
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = RawConfig::from_toml("lisen = \"x\"", "config file `c.toml`").unwrap_err().0;
        assert!(e.contains("lisen") && e.contains("c.toml"), "{e}");
        let e = RawConfig::from_toml("[tls]\ncert = \"x\"", "f").unwrap_err().0;
        assert!(e.contains("cert"), "{e}");
        let e = RawConfig::from_env(env(&[("CALLSIGN_LISEN", "x")])).unwrap_err().0;
        assert!(e.contains("CALLSIGN_LISEN") && e.contains("lisen"), "{e}");
        // Test-suite variables are not settings.
        assert!(RawConfig::from_env(env(&[("CALLSIGN_TEST_POSTGRES_URL", "x")])).is_ok());
    }

    #[test]
    fn nested_env_and_numbers_and_lists() {
        let raw = RawConfig::from_env(env(&[
            ("CALLSIGN_TLS__CERT_FILE", "/c.pem"),
            ("CALLSIGN_TLS__KEY_FILE", "/k.pem"),
            ("CALLSIGN_ACCESS_TOKEN_LIFETIME_SECS", "600"),
            ("CALLSIGN_HTTP__HEADER_READ_TIMEOUT_SECS", "3"),
            ("CALLSIGN_DEV_PROVIDER_LOG_MESSAGES", "true"),
        ]))
        .unwrap();
        let c = Config::resolve(raw).unwrap();
        assert_eq!(c.access_token_lifetime_secs, 600);
        assert_eq!(c.http.header_read_timeout_secs, 3);
        assert_eq!(c.http.idle_timeout_secs, 60, "the rest of the section keeps its defaults");
        assert!(c.dev_provider_log_messages);
        let e = RawConfig::from_env(env(&[("CALLSIGN_DEV_PROVIDER_LOG_MESSAGES", "maybe")])).unwrap_err().0;
        assert!(e.contains("maybe"), "{e}");
        assert!(c.public_url.starts_with("https://"));
        let e = RawConfig::from_env(env(&[("CALLSIGN_ACCESS_TOKEN_LIFETIME_SECS", "ten")])).unwrap_err().0;
        assert!(e.contains("ten"), "{e}");
    }

    #[test]
    fn validation_names_setting_and_fix() {
        let bad = |raw: RawConfig| Config::resolve(raw).unwrap_err().0;
        let e = bad(RawConfig { database_url: Some("mysql://x".into()), ..Default::default() });
        assert!(e.starts_with("database_url:") && e.contains("mysql") && e.contains("sqlite://"), "{e}");
        let e = bad(RawConfig { listen: Some("nope".into()), ..Default::default() });
        assert!(e.starts_with("listen:"), "{e}");
        let e =
            bad(RawConfig { tls: Some(RawTls { cert_file: Some("a".into()), key_file: None }), ..Default::default() });
        assert!(e.starts_with("tls:"), "{e}");
        let e = bad(RawConfig { public_url: Some("auth.example.com".into()), ..Default::default() });
        assert!(e.starts_with("public_url:"), "{e}");
        let e = bad(RawConfig { encryption_keys: Some(StringList(vec!["k:short".into()])), ..Default::default() });
        assert!(e.starts_with("encryption_keys:"), "{e}");
        let e = bad(RawConfig { log_format: Some("xml".into()), ..Default::default() });
        assert!(e.starts_with("log_format:"), "{e}");
        let mut r = RawConfig::default();
        r.set_provider_base_url("twilio", "api.twilio.com");
        let e = bad(r);
        assert!(e.starts_with("providers.twilio.base_url:"), "{e}");
        let e = bad(RawConfig { twilio_base_url: Some("api.twilio.com".into()), ..Default::default() });
        assert!(e.starts_with("twilio_base_url:"), "{e}");
        let e = bad(RawConfig { delivery_workers: Some(Num(0)), ..Default::default() });
        assert!(e.starts_with("delivery_workers:"), "{e}");
        let e = bad(RawConfig { password_hash_concurrency: Some(Num(1_000)), ..Default::default() });
        assert!(e.starts_with("password_hash_concurrency:"), "{e}");
        let e = bad(RawConfig { password_hash_queue_ms: Some(Num(60_001)), ..Default::default() });
        assert!(e.starts_with("password_hash_queue_ms:"), "{e}");
        let e = bad(RawConfig { trusted_proxies: Some(StringList(vec!["10.0.0.0/33".into()])), ..Default::default() });
        assert!(e.starts_with("trusted_proxies:") && e.contains("10.0.0.0/33"), "{e}");
        let raw = RawConfig::from_env(env(&[("CALLSIGN_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7")])).unwrap();
        let c = Config::resolve(raw).unwrap();
        assert_eq!(c.trusted_proxies.iter().map(|n| n.to_string()).collect::<Vec<_>>(), ["10.0.0.0/8", "192.0.2.7/32"]);
        let e = bad(RawConfig {
            http: Some(RawHttp { header_read_timeout_secs: Some(Num(0)), ..Default::default() }),
            ..Default::default()
        });
        assert!(e.starts_with("http.header_read_timeout_secs:"), "{e}");
        let e = bad(RawConfig {
            http: Some(RawHttp { max_body_bytes: Some(Num(10)), ..Default::default() }),
            ..Default::default()
        });
        assert!(e.starts_with("http.max_body_bytes:"), "{e}");
    }

    #[test]
    fn delivery_lease_defaults_layers_and_bounds() {
        let c = Config::resolve(RawConfig::default()).unwrap();
        assert_eq!(c.delivery_lease_secs, 15);
        let c = Config::resolve(RawConfig::from_toml(DEFAULT_CONFIG, "default").unwrap()).unwrap();
        assert_eq!(c.delivery_lease_secs, 15, "the printed default");
        let c = Config::load(None, env(&[("CALLSIGN_DELIVERY_LEASE_SECS", "3")]), RawConfig::default()).unwrap();
        assert_eq!(c.delivery_lease_secs, 3);
        let c = Config::resolve(RawConfig::from_toml("delivery_lease_secs = 300", "f").unwrap()).unwrap();
        assert_eq!(c.delivery_lease_secs, 300);
        for n in [0, 1, 301] {
            let e =
                Config::resolve(RawConfig { delivery_lease_secs: Some(Num(n)), ..Default::default() }).unwrap_err().0;
            assert!(e.starts_with("delivery_lease_secs:") && e.contains("between 2 and 300"), "{e}");
        }
    }

    #[test]
    fn secret_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("db");
        std::fs::write(&f, "postgres://u:pw@h/db\n").unwrap();
        let c = Config::resolve(RawConfig { database_url_file: Some(f), ..Default::default() }).unwrap();
        assert_eq!(c.database_url, "postgres://u:pw@h/db");
        assert!(!format!("{c:?}").contains("pw"));
    }

    #[test]
    fn redis_url_from_env_or_file_checked_and_redacted() {
        let c = Config::load(None, env(&[]), RawConfig::default()).unwrap();
        assert_eq!((c.redis_url.as_deref(), c.redis_key_prefix.as_str()), (None, "callsign:"), "off by default");
        let c = Config::load(
            None,
            env(&[("CALLSIGN_REDIS_URL", "redis://:hunter2@10.0.0.5:6379/2"), ("CALLSIGN_REDIS_KEY_PREFIX", "eu:")]),
            RawConfig::default(),
        )
        .unwrap();
        assert_eq!(c.redis_url.as_deref(), Some("redis://:hunter2@10.0.0.5:6379/2"));
        assert_eq!(c.redis_key_prefix, "eu:");
        assert!(!format!("{c:?}").contains("hunter2"));
        let c = Config::load(None, env(&[("CALLSIGN_REDIS_URL", "")]), RawConfig::default()).unwrap();
        assert!(c.redis_url.is_none(), "empty is off");

        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("redis");
        std::fs::write(&f, "redis://:pw@h:6379/\n").unwrap();
        let c = Config::resolve(RawConfig { redis_url_file: Some(f.clone()), ..Default::default() }).unwrap();
        assert_eq!(c.redis_url.as_deref(), Some("redis://:pw@h:6379/"));
        let e = Config::resolve(RawConfig {
            redis_url: Some("redis://h/".into()),
            redis_url_file: Some(f),
            ..Default::default()
        })
        .unwrap_err()
        .0;
        assert!(e.contains("redis_url and redis_url_file"), "{e}");

        for bad in ["http://:hunter2@h/", "redis://h:notaport/", "localhost:6379", "rediss://:hunter2@h/"] {
            let e = Config::resolve(RawConfig { redis_url: Some(bad.into()), ..Default::default() }).unwrap_err().0;
            assert!(e.starts_with("redis_url: "), "{bad}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn redacts_passwords_in_urls() {
        assert_eq!(redact_url("postgres://u:pw@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact_url("sqlite://./x.db"), "sqlite://./x.db");
        assert_eq!(redact_url("postgres://u:p@ss@h/db"), "postgres://u:***@h/db", "the last @ ends the userinfo");
        assert_eq!(
            redact_url("postgres://u@h/db?sslmode=disable&password=secret"),
            "postgres://u@h/db?sslmode=disable&password=***"
        );
        assert_eq!(redact_url("postgres://h/db@x"), "postgres://h/db@x", "an @ in the path is no userinfo");
    }

    #[test]
    fn type_errors_in_the_file_name_the_setting() {
        let e = RawConfig::from_toml("listen = 5", "config file `c.toml`").unwrap_err().0;
        assert!(e.starts_with("config file `c.toml`: listen:"), "{e}");
        let e = RawConfig::from_toml("[http]\nmax_connections = \"many\"", "f").unwrap_err().0;
        assert!(e.contains("http.max_connections"), "{e}");
    }

    #[test]
    fn log_streams_default_layer_and_are_bounded() {
        let c = Config::resolve(RawConfig::default()).unwrap();
        assert_eq!((c.log_streams.batch_size, c.log_streams.failure_budget, c.log_streams.lease_ms), (100, 10, 30_000));
        let c = Config::load(
            None,
            env(&[
                ("CALLSIGN_LOG_STREAMS__BATCH_SIZE", "7"),
                ("CALLSIGN_LOG_STREAMS__DATADOG_URL", "http://127.0.0.1:9/"),
            ]),
            RawConfig::default(),
        )
        .unwrap();
        assert_eq!(c.log_streams.batch_size, 7);
        assert_eq!(c.log_streams.datadog_url.as_deref(), Some("http://127.0.0.1:9"));
        let raw = RawConfig::from_toml("[log_streams]\nfailure_budget = 0\n", "f").unwrap();
        let e = Config::resolve(raw).unwrap_err().0;
        assert!(e.starts_with("log_streams.failure_budget:"), "{e}");
        let raw = RawConfig::from_toml("[log_streams]\nlease_ms = 5000\nsend_timeout_ms = 3000\n", "f").unwrap();
        assert!(Config::resolve(raw).unwrap_err().0.contains("at least twice send_timeout_ms"));
        let raw = RawConfig::from_toml("[log_streams]\nsplunk_url = \"splunk:8088\"\n", "f").unwrap();
        assert!(Config::resolve(raw).unwrap_err().0.starts_with("log_streams.splunk_url:"));
    }

    #[test]
    fn provider_base_urls_come_from_providers_tables_env_and_the_old_twilio_key() {
        let c = Config::load(
            None,
            env(&[
                ("CALLSIGN_PROVIDERS__SNS__BASE_URL", "http://127.0.0.1:5055/"),
                ("CALLSIGN_TWILIO_BASE_URL", "http://old"),
            ]),
            RawConfig::default(),
        )
        .unwrap();
        assert_eq!(c.provider_base_urls.get("sns").map(String::as_str), Some("http://127.0.0.1:5055"));
        assert_eq!(c.provider_base_urls.get("twilio").map(String::as_str), Some("http://old"));
        let raw = RawConfig::from_toml(
            "twilio_base_url = \"http://old\"\n[providers.twilio]\nbase_url = \"http://new\"\n",
            "f",
        )
        .unwrap();
        let c = Config::resolve(raw).unwrap();
        assert_eq!(c.provider_base_urls.get("twilio").map(String::as_str), Some("http://new"), "the table wins");
        let e = RawConfig::from_toml("[providers.twilio]\nbase = \"x\"\n", "f").unwrap_err().0;
        assert!(e.contains("base"), "{e}");
    }
}
