//! Log streams (`/api/v2/log-streams`): the operator's streams of log events to an HTTP endpoint, Datadog, Splunk
//! or Sumo Logic, and their delivery.
//!
//! A stream is a row of the store ([`callsign_store::LogStreamStore`]): its settings document (name, type,
//! filters, `startFrom`, the sink without its secrets), its status and its cursor. The sink's secrets
//! (`httpAuthorization`, `datadogApiKey`, `splunkToken`, `sumoSourceAddress`, whose URL carries the source's token)
//! are sealed with the keyring apart, under `log-stream/<id>`, and read back masked.
//!
//! Delivery ([`spawn_delivery`]): one task per node claims due streams under a lease (so that two nodes never send
//! the same batch), reads the events after each stream's cursor in delivery order, keeps those its filters match,
//! sends them as one batch (by size, or once the oldest has waited long enough), and moves the cursor only after the
//! sink accepted them (2xx). A failure is retried with exponential backoff; after `failure_budget` failures in a row
//! the stream is `suspended`, its last error shown; an operator resumes it (PATCH `status: active`) and it goes on
//! from its cursor. Across a crash delivery is at least once: a batch sent but not yet recorded is sent again by the
//! next claimer. Writing an event never waits for any of this.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use callsign_store::{LogCursor, LogEvent, LogStream, LogStreamOutcome, OrderedLogEvent, SealedSecret};
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::{BoxResult, Core};

/// The sink types Callsign delivers to.
pub const TYPES: &[&str] = &["http", "datadog", "splunk", "sumo"];
/// Auth0's filter categories (reference §7.4).
pub const CATEGORIES: &[&str] = &[
    "auth.ancillary.fail",
    "auth.ancillary.success",
    "auth.login.fail",
    "auth.login.notification",
    "auth.login.success",
    "auth.logout.fail",
    "auth.logout.success",
    "auth.signup.fail",
    "auth.signup.success",
    "auth.silent_auth.fail",
    "auth.silent_auth.success",
    "auth.token_exchange.fail",
    "auth.token_exchange.success",
    "management.fail",
    "management.success",
    "scim.event",
    "system.notification",
    "user.fail",
    "user.notification",
    "user.success",
    "actions",
    "other",
];
/// `httpContentFormat` values.
pub const FORMATS: &[&str] = &["JSONARRAY", "JSONLINES", "JSONOBJECT"];
/// `datadogRegion` values and their logs intake.
pub const DATADOG_REGIONS: &[(&str, &str)] = &[
    ("us", "https://http-intake.logs.datadoghq.com"),
    ("eu", "https://http-intake.logs.datadoghq.eu"),
    ("us3", "https://http-intake.logs.us3.datadoghq.com"),
    ("us5", "https://http-intake.logs.us5.datadoghq.com"),
    ("ap1", "https://http-intake.logs.ap1.datadoghq.com"),
    ("gov", "https://http-intake.logs.ddog-gov.com"),
];
/// What a secret reads back as.
pub const MASK: &str = "********";
const MAX_NAME: usize = 100;
const MAX_HEADERS: usize = 20;

/// The category of an event code Callsign writes (docs/API.md, "Log streams", has the table). Auth0 does not publish
/// where its `gd_*` codes fall; these are Callsign's choices.
pub fn category(code: &str) -> &'static str {
    match code {
        "s" => "auth.login.success",
        "f" | "fp" | "fu" => "auth.login.fail",
        "mfar" => "auth.login.notification",
        "slo" => "auth.logout.success",
        "ss" => "auth.signup.success",
        "fs" => "auth.signup.fail",
        "seccft" | "seoobft" | "sercft" | "seacft" | "sertft" | "srrt" => "auth.token_exchange.success",
        "feccft" | "feoobft" | "fercft" | "feacft" | "fertft" => "auth.token_exchange.fail",
        "sapi" | "gd_tenant_update" => "management.success",
        "fapi" => "management.fail",
        "limit_mu" | "limit_wc" | "ublkdu" | "cs_pumping_detected" | "cs_pumping_released" | "cs_usage_trigger" => {
            "system.notification"
        }
        "gd_start_enroll"
        | "gd_start_auth"
        | "gd_send_sms"
        | "gd_send_voice"
        | "gd_delivery_receipt"
        | "gd_enrollment_ticket_created" => "user.notification",
        "gd_enrollment_complete"
        | "gd_auth_succeed"
        | "gd_recovery_succeed"
        | "gd_unenroll"
        | "gd_update_device_account" => "user.success",
        "gd_auth_failed"
        | "gd_otp_rate_limit_exceed"
        | "gd_send_sms_failure"
        | "gd_send_voice_failure"
        | "gd_recovery_failed"
        | "gd_recovery_rate_limit_exceed" => "user.fail",
        _ => "other",
    }
}

/// How delivery runs (`[log_streams]` in the server's configuration).
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Datadog's logs intake base URL instead of the region's (tests aim it at a local server).
    pub datadog_url: Option<String>,
    /// Splunk's HEC base URL instead of `https://<splunkDomain>:<splunkPort>` (tests).
    pub splunk_url: Option<String>,
    /// Most events in one batch.
    pub batch_size: u32,
    /// A batch smaller than `batch_size` is sent once its oldest event is this old.
    pub batch_age_ms: u64,
    /// How often a node looks for due streams.
    pub poll_ms: u64,
    /// Failures in a row after which a stream is suspended.
    pub failure_budget: u32,
    /// The first retry waits this long, each next one twice as long, up to `backoff_max_ms`.
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// One request to a sink, at most.
    pub send_timeout_ms: u64,
    /// A node's claim on a stream, at most (a crashed node's streams are taken over after it); at least twice
    /// `send_timeout_ms` (the configuration checks), so that a send ends well within it.
    pub lease_ms: u64,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            datadog_url: None,
            splunk_url: None,
            batch_size: 100,
            batch_age_ms: 1_000,
            poll_ms: 500,
            failure_budget: 10,
            backoff_base_ms: 1_000,
            backoff_max_ms: 60_000,
            send_timeout_ms: 10_000,
            lease_ms: 30_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("the log stream does not exist")]
    NotFound,
    /// Bad input: the property (`sink.httpEndpoint`) and why.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Failed(#[from] crate::BoxError),
}

impl From<callsign_store::StoreError> for StreamError {
    fn from(e: callsign_store::StoreError) -> Self {
        StreamError::Failed(Box::new(e))
    }
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> StreamError {
    StreamError::Invalid { field: field.into(), message: message.into() }
}

/// A stream as the Management API shows it: Auth0's fields, secrets masked, and Callsign's `delivery` state.
pub async fn view(app: &Core, s: &LogStream) -> BoxResult<Value> {
    let c = &s.config;
    let mut sink = c.get("sink").and_then(Value::as_object).cloned().unwrap_or_default();
    for name in c.get("secret_fields").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        sink.insert(name.to_owned(), json!(MASK));
    }
    let (lag, _) = app.store.log_lag(s.cursor).await?;
    let mut out = json!({
        "id": s.id,
        "name": c.get("name").cloned().unwrap_or(json!("")),
        "type": c.get("type").cloned().unwrap_or(json!("http")),
        "status": s.status,
        "isPriority": c.get("isPriority").cloned().unwrap_or(json!(false)),
        "sink": sink,
        "delivery": {
            "lag": lag,
            "delivered": s.delivered,
            "failures": s.failures,
            "last_error": s.last_error,
            "last_error_at": s.last_error_at.map(|t| t.to_rfc3339()),
        },
    });
    if let Some(o) = out.as_object_mut() {
        if let Some(f) = c.get("filters").filter(|f| f.as_array().is_some_and(|a| !a.is_empty())) {
            o.insert("filters".into(), f.clone());
        }
        if let Some(from) = c.get("startFrom").filter(|v| v.is_string()) {
            o.insert("startFrom".into(), from.clone());
        }
    }
    Ok(out)
}

pub async fn list(app: &Core) -> Result<Vec<LogStream>, StreamError> {
    Ok(app.store.list_log_streams().await?)
}

pub async fn get(app: &Core, id: &str) -> Result<LogStream, StreamError> {
    app.store.get_log_stream(id).await?.ok_or(StreamError::NotFound)
}

/// The fields a body may carry. Read-only ones a read answers (`id`, `delivery`) are ignored, so that what a read
/// gave can be written back.
const BODY_FIELDS: &[&str] = &["name", "type", "status", "sink", "filters", "isPriority", "startFrom", "pii_config"];
const READ_ONLY: &[&str] = &["id", "delivery"];

fn check_fields(body: &Map<String, Value>) -> Result<(), StreamError> {
    match body.keys().find(|k| !BODY_FIELDS.contains(&k.as_str()) && !READ_ONLY.contains(&k.as_str())) {
        Some(k) => Err(invalid(k.as_str(), "Additional properties not allowed")),
        None => Ok(()),
    }
}

/// `POST /log-streams`.
pub async fn create(app: &Core, body: &Value) -> Result<LogStream, StreamError> {
    let body = body.as_object().ok_or_else(|| invalid("body", "must be an object"))?;
    check_fields(body)?;
    let name = name(body.get("name").ok_or_else(|| invalid("name", "Missing required property"))?)?;
    let kind = match body.get("type") {
        None => return Err(invalid("type", "Missing required property")),
        Some(t) => kind(t)?,
    };
    let status = match body.get("status") {
        None | Some(Value::Null) => "active".to_owned(),
        Some(s) => status(s)?,
    };
    let now = app.clock.now();
    let start = match body.get("startFrom") {
        None | Some(Value::Null) => None,
        Some(v) => Some(start_from(v)?),
    };
    let sink_in = body.get("sink").ok_or_else(|| invalid("sink", "Missing required property"))?;
    let (public, secrets) = sink(kind, sink_in, &Map::new(), &Map::new())?;
    let mut config = json!({
        "name": name,
        "type": kind,
        "isPriority": is_priority(body.get("isPriority"))?,
        "filters": filters(body.get("filters"))?,
        "sink": public,
        "secret_fields": secrets.keys().collect::<Vec<_>>(),
        "start_ms": start.as_ref().map_or(now.millis(), |(ms, _)| *ms),
    });
    if let (Some((_, text)), Some(o)) = (start, config.as_object_mut()) {
        o.insert("startFrom".into(), json!(text));
    }
    no_pii_config(body.get("pii_config"))?;
    let id = format!("lst_{}", callsign_domain::rng::from_alphabet(app.rng.as_ref(), b"0123456789", 16));
    seal_secrets(app, &id, &secrets).await?;
    let stream = LogStream {
        id,
        config,
        status,
        cursor: LogCursor::default(),
        run_at: now,
        claimed_by: None,
        claim_expires_at: None,
        failures: 0,
        last_error: None,
        last_error_at: None,
        delivered: 0,
        created_at: now,
        updated_at: now,
    };
    app.store.create_log_stream(&stream).await?;
    Ok(stream)
}

/// `PATCH /log-streams/{id}`: the given fields replace the stored ones; `sink` is merged field by field (a secret
/// sent back as the mask keeps the stored one). `type` cannot change.
pub async fn update(app: &Core, id: &str, body: &Value) -> Result<LogStream, StreamError> {
    let body = body.as_object().ok_or_else(|| invalid("body", "must be an object"))?;
    check_fields(body)?;
    let current = get(app, id).await?;
    let mut config = current.config.as_object().cloned().unwrap_or_default();
    let kind_now = config.get("type").and_then(Value::as_str).unwrap_or("http").to_owned();
    let kind_now = TYPES.iter().copied().find(|t| *t == kind_now).unwrap_or("http");
    if let Some(t) = body.get("type")
        && t.as_str() != Some(kind_now)
    {
        return Err(invalid("type", "the type of a log stream cannot be changed; create another stream"));
    }
    if let Some(n) = body.get("name") {
        config.insert("name".into(), json!(name(n)?));
    }
    let status = match body.get("status") {
        None | Some(Value::Null) => current.status.clone(),
        Some(s) => status(s)?,
    };
    if body.contains_key("isPriority") {
        config.insert("isPriority".into(), json!(is_priority(body.get("isPriority"))?));
    }
    if body.contains_key("filters") {
        config.insert("filters".into(), filters(body.get("filters"))?);
    }
    if let Some(v) = body.get("startFrom").filter(|v| !v.is_null()) {
        let (ms, text) = start_from(v)?;
        config.insert("start_ms".into(), json!(ms));
        config.insert("startFrom".into(), json!(text));
    }
    no_pii_config(body.get("pii_config"))?;
    let mut new_secrets = None;
    if let Some(s) = body.get("sink") {
        let before = config.get("sink").and_then(Value::as_object).cloned().unwrap_or_default();
        let stored = open_secrets(app, &current).await?;
        let stored: Map<String, Value> = stored.iter().map(|(k, v)| (k.clone(), json!(v.as_str()))).collect();
        let (public, secrets) = sink(kind_now, s, &before, &stored)?;
        config.insert("sink".into(), public);
        config.insert("secret_fields".into(), json!(secrets.keys().collect::<Vec<_>>()));
        new_secrets = Some(secrets);
    }
    if let Some(secrets) = &new_secrets {
        seal_secrets(app, id, secrets).await?;
    }
    let config = Value::Object(config);
    if !app.store.update_log_stream(id, &config, &status, app.clock.now()).await? {
        return Err(StreamError::NotFound);
    }
    get(app, id).await
}

pub async fn delete(app: &Core, id: &str) -> Result<(), StreamError> {
    if !app.store.delete_log_stream(id).await? {
        return Err(StreamError::NotFound);
    }
    match app.store.delete_secret(&secret_name(id)).await {
        Ok(()) | Err(callsign_store::StoreError::NotFound) => {}
        Err(e) => tracing::warn!(stream = %id, error = %e, "could not delete a deleted log stream's secrets"),
    }
    Ok(())
}

// --- validation ---

fn name(v: &Value) -> Result<String, StreamError> {
    match v.as_str().map(str::trim) {
        Some(n) if !n.is_empty() && n.chars().count() <= MAX_NAME => Ok(n.to_owned()),
        Some(_) => Err(invalid("name", format!("must be 1 to {MAX_NAME} characters"))),
        None => Err(invalid("name", "must be a string")),
    }
}

fn kind(v: &Value) -> Result<&'static str, StreamError> {
    let t = v.as_str().unwrap_or_default();
    TYPES
        .iter()
        .copied()
        .find(|k| *k == t)
        .ok_or_else(|| invalid("type", format!("unknown or unsupported log stream type; one of {}", TYPES.join(", "))))
}

fn status(v: &Value) -> Result<String, StreamError> {
    match v.as_str() {
        Some(s @ ("active" | "paused" | "suspended")) => Ok(s.to_owned()),
        _ => Err(invalid("status", "must be one of active, paused, suspended")),
    }
}

fn is_priority(v: Option<&Value>) -> Result<bool, StreamError> {
    match v {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid("isPriority", "must be a boolean")),
    }
}

fn no_pii_config(v: Option<&Value>) -> Result<(), StreamError> {
    match v {
        None | Some(Value::Null) => Ok(()),
        Some(_) => Err(invalid("pii_config", "PII masking is not supported by Callsign")),
    }
}

/// An RFC 3339 instant: its milliseconds and the text Auth0-style.
fn start_from(v: &Value) -> Result<(i64, String), StreamError> {
    use time::format_description::well_known::Rfc3339;
    let t = v
        .as_str()
        .and_then(|s| time::OffsetDateTime::parse(s, &Rfc3339).ok())
        .ok_or_else(|| invalid("startFrom", "must be an RFC 3339 date-time, e.g. 2021-03-01T19:57:29.532Z"))?;
    let ms = i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    Ok((ms, callsign_domain::Timestamp::from_millis(ms).to_rfc3339()))
}

fn filters(v: Option<&Value>) -> Result<Value, StreamError> {
    let list = match v {
        None | Some(Value::Null) => return Ok(json!([])),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(invalid("filters", "must be an array")),
    };
    let mut out = Vec::new();
    for (i, f) in list.iter().enumerate() {
        let o = f.as_object().ok_or_else(|| invalid(format!("filters[{i}]"), "must be an object"))?;
        if let Some(k) = o.keys().find(|k| !matches!(k.as_str(), "type" | "name")) {
            return Err(invalid(format!("filters[{i}].{k}"), "Additional properties not allowed"));
        }
        if o.get("type").and_then(Value::as_str) != Some("category") {
            return Err(invalid(format!("filters[{i}].type"), "must be `category`"));
        }
        let n = o.get("name").and_then(Value::as_str).unwrap_or_default();
        if !CATEGORIES.contains(&n) {
            return Err(invalid(
                format!("filters[{i}].name"),
                format!("unknown category; one of {}", CATEGORIES.join(", ")),
            ));
        }
        out.push(json!({"type": "category", "name": n}));
    }
    Ok(Value::Array(out))
}

/// Which sink fields each type has, which of them are required and which are secret.
struct Field {
    name: &'static str,
    required: bool,
    secret: bool,
}

const fn f(name: &'static str, required: bool, secret: bool) -> Field {
    Field { name, required, secret }
}

fn fields_of(kind: &str) -> &'static [Field] {
    const HTTP: &[Field] = &[
        f("httpEndpoint", true, false),
        f("httpAuthorization", false, true),
        f("httpContentType", false, false),
        f("httpContentFormat", false, false),
        f("httpCustomHeaders", false, false),
    ];
    const DATADOG: &[Field] = &[f("datadogRegion", true, false), f("datadogApiKey", true, true)];
    const SPLUNK: &[Field] = &[
        f("splunkDomain", true, false),
        f("splunkToken", true, true),
        f("splunkPort", false, false),
        f("splunkSecure", false, false),
    ];
    const SUMO: &[Field] = &[f("sumoSourceAddress", true, true)];
    match kind {
        "datadog" => DATADOG,
        "splunk" => SPLUNK,
        "sumo" => SUMO,
        _ => HTTP,
    }
}

/// Check a sink (merged over `before` / `stored_secrets` for a PATCH) and split it into what is stored in clear and
/// the secrets to seal.
fn sink(
    kind: &str,
    v: &Value,
    before: &Map<String, Value>,
    stored_secrets: &Map<String, Value>,
) -> Result<(Value, BTreeMap<String, Zeroizing<String>>), StreamError> {
    let given = v.as_object().ok_or_else(|| invalid("sink", "must be an object"))?;
    let fields = fields_of(kind);
    if let Some(k) = given.keys().find(|k| !fields.iter().any(|f| f.name == k.as_str())) {
        return Err(invalid(format!("sink.{k}"), format!("not a field of a `{kind}` sink")));
    }
    let mut public = Map::new();
    let mut secrets = BTreeMap::new();
    for field in fields {
        let prop = format!("sink.{}", field.name);
        let value = match given.get(field.name) {
            // The mask sent back keeps the stored secret.
            Some(Value::String(s)) if field.secret && s == MASK => stored_secrets.get(field.name).cloned(),
            Some(Value::Null) => None,
            Some(v) => Some(v.clone()),
            None if field.secret => stored_secrets.get(field.name).cloned(),
            None => before.get(field.name).cloned(),
        };
        let Some(value) = value else {
            if field.required {
                return Err(invalid(prop, "Missing required property"));
            }
            continue;
        };
        let value = check_sink_field(field.name, &prop, value)?;
        if field.secret {
            let text = value.as_str().unwrap_or_default().to_owned();
            secrets.insert(field.name.to_owned(), Zeroizing::new(text));
        } else {
            public.insert(field.name.to_owned(), value);
        }
    }
    Ok((Value::Object(public), secrets))
}

fn check_sink_field(name: &str, prop: &str, value: Value) -> Result<Value, StreamError> {
    let text = |v: &Value| -> Result<String, StreamError> {
        match v.as_str() {
            Some(s) if !s.trim().is_empty() && s.len() <= 2048 => Ok(s.trim().to_owned()),
            _ => Err(invalid(prop, "must be a non-empty string")),
        }
    };
    match name {
        "httpEndpoint" | "sumoSourceAddress" => {
            let url = text(&value)?;
            callsign_messaging::providers::webhook::check_url(&url).map_err(|e| invalid(prop, e))?;
            Ok(json!(url))
        }
        "httpContentFormat" => match value.as_str() {
            Some(s) if FORMATS.contains(&s) => Ok(value),
            _ => Err(invalid(prop, format!("must be one of {}", FORMATS.join(", ")))),
        },
        "httpContentType" => {
            let t = text(&value)?;
            reqwest::header::HeaderValue::from_str(&t).map_err(|_| invalid(prop, "not a valid header value"))?;
            Ok(json!(t))
        }
        "httpAuthorization" | "datadogApiKey" | "splunkToken" => {
            let t = text(&value)?;
            reqwest::header::HeaderValue::from_str(&t).map_err(|_| invalid(prop, "not a valid header value"))?;
            Ok(json!(t))
        }
        "httpCustomHeaders" => {
            let list = value.as_array().ok_or_else(|| invalid(prop, "must be an array of {header, value}"))?;
            if list.len() > MAX_HEADERS {
                return Err(invalid(prop, format!("at most {MAX_HEADERS} headers")));
            }
            for (i, h) in list.iter().enumerate() {
                let o = h.as_object();
                let header = o.and_then(|o| o.get("header")).and_then(Value::as_str).unwrap_or_default();
                let val = o.and_then(|o| o.get("value")).and_then(Value::as_str);
                let ok = o.is_some_and(|o| o.len() == 2)
                    && reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_ok()
                    && val.is_some_and(|v| reqwest::header::HeaderValue::from_str(v).is_ok());
                if !ok {
                    return Err(invalid(format!("{prop}[{i}]"), "must be {\"header\": name, \"value\": value}"));
                }
            }
            Ok(value)
        }
        "datadogRegion" => match value.as_str() {
            Some(r) if DATADOG_REGIONS.iter().any(|(n, _)| *n == r) => Ok(value),
            _ => Err(invalid(
                prop,
                format!("must be one of {}", DATADOG_REGIONS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")),
            )),
        },
        "splunkDomain" => {
            let d = text(&value)?;
            let ok = d.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
            if !ok {
                return Err(invalid(prop, "must be a host name (no scheme, port or path)"));
            }
            Ok(json!(d))
        }
        "splunkPort" => {
            let port = match &value {
                Value::String(s) => s.trim().parse::<u16>().ok(),
                Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
                _ => None,
            };
            match port {
                Some(p) if p > 0 => Ok(json!(p.to_string())),
                _ => Err(invalid(prop, "must be a port number")),
            }
        }
        "splunkSecure" => match value {
            Value::Bool(_) => Ok(value),
            _ => Err(invalid(prop, "must be a boolean")),
        },
        _ => Ok(value),
    }
}

fn secret_name(id: &str) -> String {
    format!("log-stream/{id}")
}

async fn seal_secrets(app: &Core, id: &str, secrets: &BTreeMap<String, Zeroizing<String>>) -> BoxResult<()> {
    let name = secret_name(id);
    let plain: Map<String, Value> = secrets.iter().map(|(k, v)| (k.clone(), json!(v.as_str()))).collect();
    let plain = Zeroizing::new(serde_json::to_vec(&plain)?);
    let sealed = app.keyring.seal(app.rng.as_ref(), &name, &plain)?;
    app.store.put_secret(&SealedSecret { name, sealed, updated_at: app.clock.now() }).await?;
    Ok(())
}

async fn open_secrets(app: &Core, s: &LogStream) -> BoxResult<BTreeMap<String, Zeroizing<String>>> {
    let mut out = BTreeMap::new();
    if let Some(sealed) = app.store.get_secret(&secret_name(&s.id)).await? {
        let plain = app.keyring.open(&sealed.name, &sealed.sealed)?;
        let map: Map<String, Value> = serde_json::from_slice(&plain)?;
        for (k, v) in map {
            if let Value::String(text) = v {
                out.insert(k, Zeroizing::new(text));
            }
        }
    }
    Ok(out)
}

// --- delivery ---

/// A log event as the Management API reads it (`GET /api/v2/logs/{id}`), the `data` of a streamed event.
pub fn wire(e: &LogEvent) -> Value {
    let b = &e.body;
    let mut v = json!({
        "log_id": e.log_id,
        "_id": e.log_id,
        "date": e.date.to_rfc3339(),
        "type": e.event_type,
        "description": b.description,
        "client_id": e.client_id,
        "client_name": b.client_name,
        "ip": b.ip,
        "user_agent": b.user_agent,
        "user_id": e.user_id,
        "user_name": b.user_name,
        "details": b.details,
    });
    if let Some(obj) = v.as_object_mut() {
        for (k, val) in
            [("audience", &b.audience), ("scope", &b.scope), ("connection", &b.connection), ("strategy", &b.strategy)]
        {
            if let Some(s) = val {
                obj.insert(k.to_owned(), json!(s));
            }
        }
    }
    v
}

/// Each streamed event: `{"log_id", "data"}` (Auth0's envelope).
fn envelope(e: &LogEvent) -> Value {
    json!({"log_id": e.log_id, "data": wire(e)})
}

/// Whether a stream takes an event: dated at or after its start, and in one of its categories (all without
/// filters).
fn wants(config: &Value, e: &LogEvent) -> bool {
    let start = config.get("start_ms").and_then(Value::as_i64).unwrap_or(0);
    if e.date.millis() < start {
        return false;
    }
    let filters = config.get("filters").and_then(Value::as_array);
    match filters {
        Some(list) if !list.is_empty() => {
            let c = category(&e.event_type);
            list.iter().any(|f| f.get("name").and_then(Value::as_str) == Some(c))
        }
        _ => true,
    }
}

/// One request to a sink.
struct Request {
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// The requests that deliver `events` (in order; `JSONOBJECT` sends one per event).
fn requests(
    app: &Core,
    config: &Value,
    secrets: &BTreeMap<String, Zeroizing<String>>,
    events: &[&LogEvent],
) -> Result<Vec<Request>, String> {
    let sink = config.get("sink").and_then(Value::as_object).cloned().unwrap_or_default();
    let s = |k: &str| sink.get(k).and_then(Value::as_str).map(str::to_owned);
    let secret = |k: &str| secrets.get(k).map(|v| v.as_str().to_owned());
    let json_type = ("content-type".to_owned(), "application/json".to_owned());
    let lines = |items: Vec<Value>| -> Vec<u8> {
        let mut out = Vec::new();
        for i in items {
            out.extend_from_slice(i.to_string().as_bytes());
            out.push(b'\n');
        }
        out
    };
    let kind = config.get("type").and_then(Value::as_str).unwrap_or("http");
    let tuning = &app.settings.log_streams;
    Ok(match kind {
        "datadog" => {
            let region = s("datadogRegion").unwrap_or_default();
            let base = match &tuning.datadog_url {
                Some(u) => u.clone(),
                None => DATADOG_REGIONS
                    .iter()
                    .find(|(n, _)| *n == region)
                    .map(|(_, u)| (*u).to_owned())
                    .ok_or("no region")?,
            };
            let items: Vec<Value> = events
                .iter()
                .map(|e| {
                    json!({
                        "ddsource": "callsign",
                        "service": "callsign",
                        "ddtags": format!("event_type:{}", e.event_type),
                        "message": envelope(e).to_string(),
                    })
                })
                .collect();
            let key = secret("datadogApiKey").ok_or("the Datadog API key cannot be read")?;
            vec![Request {
                url: format!("{}/api/v2/logs", base.trim_end_matches('/')),
                headers: vec![json_type, ("dd-api-key".into(), key)],
                body: Value::Array(items).to_string().into_bytes(),
            }]
        }
        "splunk" => {
            let base = match &tuning.splunk_url {
                Some(u) => u.trim_end_matches('/').to_owned(),
                None => format!(
                    "https://{}:{}",
                    s("splunkDomain").unwrap_or_default(),
                    s("splunkPort").unwrap_or_else(|| "8088".into())
                ),
            };
            let token = secret("splunkToken").ok_or("the Splunk token cannot be read")?;
            let items: Vec<Value> = events
                .iter()
                .map(|e| {
                    json!({
                        "time": e.date.millis() as f64 / 1000.0,
                        "source": "callsign",
                        "sourcetype": "auth0",
                        "event": envelope(e),
                    })
                })
                .collect();
            vec![Request {
                url: format!("{base}/services/collector/event"),
                headers: vec![json_type, ("authorization".into(), format!("Splunk {}", token))],
                body: lines(items),
            }]
        }
        "sumo" => {
            let url = secret("sumoSourceAddress").ok_or("the Sumo Logic source address cannot be read")?;
            vec![Request { url, headers: vec![json_type], body: lines(events.iter().map(|e| envelope(e)).collect()) }]
        }
        _ => {
            let url = s("httpEndpoint").ok_or("no endpoint")?;
            let mut headers =
                vec![("content-type".to_owned(), s("httpContentType").unwrap_or_else(|| "application/json".into()))];
            if let Some(a) = secret("httpAuthorization") {
                headers.push(("authorization".into(), a));
            }
            for h in sink.get("httpCustomHeaders").and_then(Value::as_array).into_iter().flatten() {
                if let (Some(k), Some(v)) =
                    (h.get("header").and_then(Value::as_str), h.get("value").and_then(Value::as_str))
                {
                    headers.push((k.to_owned(), v.to_owned()));
                }
            }
            let items: Vec<Value> = events.iter().map(|e| envelope(e)).collect();
            match s("httpContentFormat").as_deref().unwrap_or("JSONARRAY") {
                "JSONOBJECT" => items
                    .into_iter()
                    .map(|i| Request { url: url.clone(), headers: headers.clone(), body: i.to_string().into_bytes() })
                    .collect(),
                "JSONLINES" => vec![Request { url, headers, body: lines(items) }],
                _ => vec![Request { url, headers, body: Value::Array(items).to_string().into_bytes() }],
            }
        }
    })
}

/// Send one request; Ok on a 2xx. The error names the status or the transport failure, never the URL (a Sumo Logic
/// address carries its token) nor what the sink answered.
async fn send(app: &Core, r: Request) -> Result<(), String> {
    let timeout = Duration::from_millis(app.settings.log_streams.send_timeout_ms);
    let mut req = app.http.post(&r.url).timeout(timeout).body(r.body);
    for (k, v) in r.headers {
        req = req.header(k, v);
    }
    match req.send().await {
        Ok(res) if res.status().is_success() => Ok(()),
        Ok(res) => Err(format!("the sink answered HTTP {}", res.status().as_u16())),
        Err(e) if e.is_timeout() => Err("the sink did not answer in time".into()),
        Err(e) => Err(format!("the sink cannot be reached: {}", e.without_url())),
    }
}

/// How long to wait after the `failures`-th failure in a row.
fn backoff(t: &crate::log_streams::Tuning, failures: i64) -> u64 {
    let shift = u32::try_from(failures.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    t.backoff_base_ms.saturating_mul(1u64 << shift).min(t.backoff_max_ms)
}

/// One claimed stream's turn: read after its cursor, send what it wants, record the outcome. True when it sent a
/// full batch (more may be waiting: the delivery loop goes again without its pause).
async fn turn(app: &Core, worker: &str, s: LogStream) -> BoxResult<bool> {
    let t = &app.settings.log_streams;
    let events: Vec<OrderedLogEvent> = app.store.list_logs_after(s.cursor, t.batch_size).await?;
    let now = app.clock.now();
    let Some(last) = events.last().map(|e| e.cursor) else {
        app.store
            .finish_log_stream(&s.id, worker, &LogStreamOutcome::Advanced { cursor: s.cursor, sent: 0 }, now, now)
            .await?;
        return Ok(false);
    };
    let wanted: Vec<&OrderedLogEvent> = events.iter().filter(|e| wants(&s.config, &e.event)).collect();
    // A short batch waits for more until its oldest event is old enough.
    if let Some(first) = wanted.first()
        && events.len() < t.batch_size as usize
        && now.millis().saturating_sub(first.event.date.millis()) < i64::try_from(t.batch_age_ms).unwrap_or(0)
    {
        let due = first.event.date.plus(Duration::from_millis(t.batch_age_ms));
        app.store
            .finish_log_stream(&s.id, worker, &LogStreamOutcome::Advanced { cursor: s.cursor, sent: 0 }, due, now)
            .await?;
        return Ok(false);
    }
    if wanted.is_empty() {
        let outcome = LogStreamOutcome::Advanced { cursor: last, sent: 0 };
        app.store.finish_log_stream(&s.id, worker, &outcome, now, now).await?;
        return Ok(false);
    }
    let failed = |error: String, sent_to: Option<(LogCursor, i64)>| {
        let failures = s.failures.saturating_add(1);
        let suspend = failures >= i64::from(t.failure_budget);
        (error, sent_to, suspend, now.plus(Duration::from_millis(backoff(t, failures))))
    };
    let result = match open_secrets(app, &s).await {
        Err(e) => Err(failed(format!("the stream's secrets cannot be opened: {e}"), None)),
        Ok(secrets) => {
            let events: Vec<&LogEvent> = wanted.iter().map(|e| &e.event).collect();
            match requests(app, &s.config, &secrets, &events) {
                Err(e) => Err(failed(e, None)),
                Ok(reqs) => {
                    let per_event = reqs.len() == wanted.len() && reqs.len() > 1;
                    let mut outcome = Ok(());
                    let half_lease = i64::try_from(t.lease_ms / 2).unwrap_or(i64::MAX);
                    for (i, r) in reqs.into_iter().enumerate() {
                        // JSONOBJECT: stop well within the claim; the rest goes in the next turn.
                        if per_event && i > 0 && app.clock.now().millis().saturating_sub(now.millis()) > half_lease {
                            outcome = Err((String::new(), Some((wanted[i - 1].cursor, i as i64)), false, now));
                            break;
                        }
                        if let Err(e) = send(app, r).await {
                            // JSONOBJECT: the events the sink took stay taken.
                            let done = (per_event && i > 0).then(|| (wanted[i - 1].cursor, i as i64));
                            outcome = Err(failed(e, done));
                            break;
                        }
                    }
                    outcome
                }
            }
        }
    };
    let now = app.clock.now();
    let full = events.len() >= t.batch_size as usize;
    match result {
        Ok(()) => {
            // Due again at once: a stream that is behind sends its next batch on the next turn.
            let outcome = LogStreamOutcome::Advanced { cursor: last, sent: wanted.len() as i64 };
            if !app.store.finish_log_stream(&s.id, worker, &outcome, now, now).await? {
                tracing::warn!(stream = %s.id, "a log stream's claim was lost while it sent; the batch may be sent again");
                return Ok(false);
            }
            return Ok(full);
        }
        Err((_, Some((cursor, sent)), _, _)) => {
            app.store.finish_log_stream(&s.id, worker, &LogStreamOutcome::Advanced { cursor, sent }, now, now).await?;
        }
        Err((error, None, suspend, retry_at)) => {
            tracing::warn!(stream = %s.id, error = %error, suspend, "a log stream's sink refused a batch");
            let outcome = LogStreamOutcome::Failed { error, retry_at, suspend };
            app.store.finish_log_stream(&s.id, worker, &outcome, retry_at, now).await?;
        }
    }
    Ok(false)
}

/// Claim the streams that are due and give each its turn (concurrently). Returns how many were claimed, and how
/// many of them sent a full batch (and may have more waiting).
pub async fn run_due_counted(app: &Arc<Core>, worker: &str) -> BoxResult<(usize, usize)> {
    let t = &app.settings.log_streams;
    let lease = i64::try_from(t.lease_ms).unwrap_or(30_000);
    let claimed = app.store.claim_log_streams(worker, app.clock.now(), lease, 16).await?;
    let n = claimed.len();
    let mut tasks = Vec::new();
    for s in claimed {
        let app = app.clone();
        let worker = worker.to_owned();
        tasks.push(tokio::spawn(async move {
            let id = s.id.clone();
            match turn(&app, &worker, s).await {
                Ok(full) => full,
                Err(e) => {
                    tracing::warn!(stream = %id, error = %e, "log stream delivery failed");
                    false
                }
            }
        }));
    }
    let mut behind = 0;
    for t in tasks {
        if matches!(t.await, Ok(true)) {
            behind += 1;
        }
    }
    Ok((n, behind))
}

/// [`run_due_counted`], the number claimed.
pub async fn run_due(app: &Arc<Core>, worker: &str) -> BoxResult<usize> {
    Ok(run_due_counted(app, worker).await?.0)
}

/// The node's log stream delivery: every `poll_ms`, [`run_due`], until `stop` flips; without the pause while a
/// stream sends full batches (it is behind).
pub fn spawn_delivery(app: &Arc<Core>, mut stop: tokio::sync::watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    let app = app.clone();
    let worker =
        format!("streams-{}", callsign_domain::rng::from_alphabet(app.rng.as_ref(), callsign_domain::rng::ALNUM, 8));
    tokio::spawn(async move {
        let poll = Duration::from_millis(app.settings.log_streams.poll_ms.max(10));
        loop {
            match run_due_counted(&app, &worker).await {
                // A stream sent a full batch: it may be behind, so its next batch goes at once (at most
                // `batch_size` per turn, never a pause between turns while it catches up).
                Ok((_, behind)) if behind > 0 => {
                    if *stop.borrow() {
                        return;
                    }
                    tokio::task::yield_now().await;
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "log stream delivery could not claim streams"),
            }
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = stop.changed() => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_written_has_a_known_category_and_is_documented() {
        let doc = include_str!("../../../docs/API.md");
        for (code, _) in crate::identity::events::CODES {
            let c = category(code);
            assert!(CATEGORIES.contains(&c), "{code} -> {c}");
            assert!(c != "other", "{code} falls in `other`");
            assert!(doc.contains(&format!("| `{code}` | `{c}` |")), "docs/API.md lacks the row for {code}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let t = Tuning { backoff_base_ms: 100, backoff_max_ms: 1_000, ..Tuning::default() };
        let waits: Vec<u64> = (1..=6).map(|n| backoff(&t, n)).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1_000, 1_000]);
    }

    #[test]
    fn filters_take_known_categories_only() {
        assert!(filters(Some(&json!([{"type": "category", "name": "user.fail"}]))).is_ok());
        match filters(Some(&json!([{"type": "category", "name": "user.nope"}]))) {
            Err(StreamError::Invalid { field, .. }) => assert_eq!(field, "filters[0].name"),
            other => panic!("{other:?}"),
        }
    }
}
