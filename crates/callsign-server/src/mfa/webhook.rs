//! The custom phone provider (`phone-message-hook`). Where Auth0 runs a "Send Phone Message" Action, Callsign
//! POSTs the same event (reference §9) as JSON to a configured URL, signed per the Standard Webhooks
//! specification: `webhook-id` (the delivery job's id, the same on every retry), `webhook-timestamp` (unix
//! seconds), `webhook-signature` (`v1,<base64 HMAC-SHA256>` for each active secret, space-separated).
//!
//! The contract for receivers is in docs/CUSTOM_PROVIDER.md.
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use callsign_store::SealedSecret;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::config::{GuardianConfig, WebhookSecretRef};
use super::delivery::{self, Outbound, Payload, Provider, SendError};
use crate::app::AppState;

pub const PROVIDER: &str = "phone-message-hook";
/// The prefix of a signing secret as shown to the operator (Standard Webhooks: `whsec_<base64>`).
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a signing secret.
pub const SECRET_BYTES: usize = 32;
/// At most this many secrets sign at once (the newest ones): one in use and one being rotated in.
pub const MAX_ACTIVE_SECRETS: usize = 2;
/// How much of a refusing receiver's body is kept in the failure event.
pub const ERROR_BODY_BYTES: usize = 500;
pub const TENANT_ID: &str = "callsign";

/// The name of the sealed secret holding signing secret `id`.
pub fn secret_name(id: &str) -> String {
    format!("guardian/{PROVIDER}/secret/{id}")
}

/// What the event needs beyond the job's recipient and text, captured when the code is sent (the request is gone
/// by the time a worker delivers). Sealed with the rest of the job's payload, so the code is never at rest in
/// clear.
/// No `Debug`: it holds the code, which must not reach a log line by accident.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HookContext {
    /// `enrollment` or `second-factor-authentication`.
    pub action: String,
    pub code: String,
    pub client_id: Option<String>,
    pub client_name: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The language the message was rendered in (the `x-request-language` asked for, when the tenant enables it,
    /// else the tenant's default locale).
    pub language: Option<String>,
}

/// A job's sealed payload with the hook's context next to the usual fields; the other providers read the same
/// document as a plain [`Payload`] (unknown fields are ignored), and jobs without `hook` still open here.
#[derive(Serialize)]
pub struct SealedPayload<'a> {
    #[serde(flatten)]
    pub payload: &'a Payload,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook: Option<&'a HookContext>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct HookOnly {
    hook: Option<HookContext>,
}

// --- URL and secrets --------------------------------------------------------------------------------------------

/// The hook must be HTTPS; plain `http://` is allowed only for the loopback host (local receivers, tests).
pub fn check_url(raw: &str) -> Result<reqwest::Url, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("the url is empty".into());
    }
    if raw.len() > 2048 {
        return Err("the url is longer than 2048 characters".into());
    }
    let url = reqwest::Url::parse(raw).map_err(|e| format!("the url is not valid: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the url must not carry credentials; the request is signed instead".into());
    }
    let host = url.host_str().unwrap_or_default();
    match url.scheme() {
        "https" if !host.is_empty() => Ok(url),
        "http" if matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1") => Ok(url),
        "http" => Err("the url must use https (plain http is allowed only for 127.0.0.1 and localhost)".into()),
        other => Err(format!("the url must use https, not `{other}`")),
    }
}

/// A fresh signing secret as shown to the operator once: `whsec_` and the base64 of 32 random bytes.
pub fn new_secret(app: &AppState) -> Zeroizing<String> {
    let bytes = Zeroizing::new(callsign_domain::rng::bytes::<SECRET_BYTES>(app.rng.as_ref()));
    Zeroizing::new(format!("{SECRET_PREFIX}{}", B64.encode(bytes.as_slice())))
}

/// The HMAC key of a `whsec_…` secret (a secret without the prefix is taken as base64 all the same).
pub fn secret_key(secret: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let b64 = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    B64.decode(b64).map(Zeroizing::new).map_err(|_| "the signing secret is not valid base64".to_owned())
}

/// `v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| "the signing key is not usable".to_owned())?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!("v1,{}", B64.encode(mac.finalize().into_bytes())))
}

/// Store a new signing secret (sealed) and list it; when more than [`MAX_ACTIVE_SECRETS`] are listed, the oldest
/// are unlisted. Returns the new secret's reference, the secret itself (for the one answer that shows it), and the
/// unlisted ones, whose sealed copies the caller deletes with [`delete_secrets`] once `cfg` is saved.
pub async fn add_secret(
    app: &AppState,
    cfg: &mut GuardianConfig,
) -> crate::BoxResult<(WebhookSecretRef, Zeroizing<String>, Vec<WebhookSecretRef>)> {
    let id = format!("whs_{}", callsign_domain::rng::from_alphabet(app.rng.as_ref(), callsign_domain::rng::ALNUM, 20));
    let secret = new_secret(app);
    let name = secret_name(&id);
    let now = app.clock.now();
    let sealed = app.keyring.seal(app.rng.as_ref(), &name, secret.as_bytes())?;
    app.store.put_secret(&SealedSecret { name, sealed, updated_at: now }).await?;
    let r = WebhookSecretRef { id, created_at: now.to_rfc3339() };
    cfg.webhook.secrets.push(r.clone());
    let mut retired = Vec::new();
    while cfg.webhook.secrets.len() > MAX_ACTIVE_SECRETS {
        retired.push(cfg.webhook.secrets.remove(0));
    }
    Ok((r, secret, retired))
}

/// Delete the sealed copies of secrets no longer listed (after the configuration that unlists them is saved).
/// Unlisted secrets never sign; a failure here leaves an unused row, never an active secret.
pub async fn delete_secrets(app: &AppState, refs: &[WebhookSecretRef]) {
    for r in refs {
        match app.store.delete_secret(&secret_name(&r.id)).await {
            Ok(()) | Err(callsign_store::StoreError::NotFound) => {}
            Err(e) => {
                tracing::warn!(secret_id = %r.id, error = %e, "could not delete an unlisted webhook signing secret")
            }
        }
    }
}

/// The HMAC keys of the listed secrets (an unlisted sealed secret never signs). A secret that cannot be read is
/// skipped with a warning.
async fn active_keys(app: &AppState, cfg: &GuardianConfig) -> Result<Vec<Zeroizing<Vec<u8>>>, SendError> {
    let mut keys = Vec::new();
    for r in &cfg.webhook.secrets {
        let name = secret_name(&r.id);
        let stored = app.store.get_secret(&name).await.map_err(|e| SendError {
            retryable: true,
            message: format!("cannot read the webhook signing secrets: {e}"),
            details: Value::Null,
        })?;
        let Some(stored) = stored else {
            tracing::warn!(secret_id = %r.id, "a listed webhook signing secret is missing from the store");
            continue;
        };
        let opened = match app.keyring.open(&name, &stored.sealed) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(secret_id = %r.id, error = %e, "a webhook signing secret cannot be opened");
                continue;
            }
        };
        match std::str::from_utf8(&opened).map_err(|_| "not UTF-8".to_owned()).and_then(secret_key) {
            Ok(k) => keys.push(k),
            Err(e) => tracing::warn!(secret_id = %r.id, error = %e, "a webhook signing secret is malformed"),
        }
    }
    Ok(keys)
}

// --- the event --------------------------------------------------------------------------------------------------

fn opt(v: &Option<String>) -> Value {
    v.as_ref().map_or(Value::Null, |s| json!(s))
}

/// The Send Phone Message event. Every member is always present; what Callsign does not know is `null`.
pub fn event(
    msg: &Outbound<'_>,
    ctx: &HookContext,
    user: Option<&callsign_store::User>,
    user_id: Option<&str>,
    friendly_name: &str,
) -> Value {
    let action = if ctx.action.is_empty() { Value::Null } else { json!(ctx.action) };
    let code = if ctx.code.is_empty() { Value::Null } else { json!(ctx.code) };
    let user = match user {
        Some(u) => json!({
            "user_id": u.user_id,
            "email": u.email,
            "email_verified": u.profile.email_verified,
            "phone_number": u.profile.phone_number,
            "phone_verified": u.profile.phone_verified,
            "name": u.profile.name,
            "nickname": u.profile.nickname,
            "given_name": u.profile.given_name,
            "family_name": u.profile.family_name,
            "picture": u.profile.picture,
            "created_at": u.created_at.to_rfc3339(),
            "updated_at": u.updated_at.to_rfc3339(),
            "last_login": u.last_login.map(|t| t.to_rfc3339()),
            "logins_count": u.logins_count,
            "identities": [{"connection": u.profile.connection, "provider": "auth0", "user_id": u.user_id.split_once('|').map_or(u.user_id.as_str(), |(_, id)| id), "isSocial": false}],
            "user_metadata": u.profile.user_metadata,
            "app_metadata": u.profile.app_metadata,
        }),
        None => json!({"user_id": user_id}),
    };
    json!({
        "message_options": {
            "action": action,
            "code": code,
            "message_type": msg.channel,
            "recipient": msg.to,
            "text": msg.text,
        },
        "user": user,
        "client": {"client_id": opt(&ctx.client_id), "name": opt(&ctx.client_name)},
        "request": {
            "ip": opt(&ctx.ip),
            "language": ctx.language.clone().map_or_else(|| json!(msg.locale), |l| json!(l)),
            "user_agent": opt(&ctx.user_agent),
        },
        "tenant": {"id": TENANT_ID, "friendly_name": friendly_name},
    })
}

// --- the provider -----------------------------------------------------------------------------------------------

/// `phone-message-hook`: POST the signed event to the configured URL.
pub struct WebhookProvider;

fn retryable(message: String, details: Value) -> SendError {
    SendError { retryable: true, message, details }
}

fn fatal(message: String, details: Value) -> SendError {
    SendError { retryable: false, message, details }
}

/// The first [`ERROR_BODY_BYTES`] bytes of a response body (read no further), as text.
async fn body_head(mut resp: reqwest::Response) -> String {
    let mut buf: Vec<u8> = Vec::new();
    while buf.len() < ERROR_BODY_BYTES {
        match resp.chunk().await {
            Ok(Some(c)) => buf.extend_from_slice(&c),
            _ => break,
        }
    }
    buf.truncate(ERROR_BODY_BYTES);
    String::from_utf8_lossy(&buf).into_owned()
}

impl WebhookProvider {
    /// The job's hook context and user, when the job (still in flight) can be read.
    async fn job_context(
        app: &AppState,
        job_id: &str,
    ) -> Result<(HookContext, Option<String>, Option<callsign_store::User>), SendError> {
        let store_err =
            |e: callsign_store::StoreError| retryable(format!("the store is unavailable: {e}"), Value::Null);
        let Some(job) = app.store.get_job(job_id).await.map_err(store_err)? else {
            return Ok((HookContext::default(), None, None));
        };
        let ctx = match &job.payload {
            Some(sealed) => {
                let plain = app
                    .keyring
                    .open(&delivery::job_context(&job.id), sealed)
                    .map_err(|e| fatal(format!("cannot open the job's payload: {e}"), Value::Null))?;
                serde_json::from_slice::<HookOnly>(&plain).map(|h| h.hook.unwrap_or_default()).unwrap_or_default()
            }
            None => HookContext::default(),
        };
        let user = match &job.user_id {
            Some(id) => app.store.get_user(id).await.map_err(store_err)?,
            None => None,
        };
        Ok((ctx, job.user_id.clone(), user))
    }
}

#[async_trait]
impl Provider for WebhookProvider {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    async fn send(&self, app: &AppState, msg: &Outbound<'_>) -> Result<Value, SendError> {
        let cfg = GuardianConfig::load(app)
            .await
            .map_err(|e| retryable(format!("cannot read the Guardian configuration: {e}"), Value::Null))?;
        let Some(raw_url) = cfg.webhook.url.as_deref() else {
            return Err(SendError::fatal(
                "the phone-message-hook provider has no url; set it with PUT /api/v2/guardian/factors/phone/providers/phone-message-hook",
            ));
        };
        let url = check_url(raw_url).map_err(|e| SendError::fatal(format!("the phone-message-hook url: {e}")))?;
        let keys = active_keys(app, &cfg).await?;
        if keys.is_empty() {
            return Err(SendError::fatal(
                "the phone-message-hook provider has no signing secret; create one with POST /api/v2/guardian/factors/phone/providers/phone-message-hook/secrets",
            ));
        }
        let (ctx, user_id, user) = Self::job_context(app, msg.job_id).await?;
        let friendly = crate::http::management::tenant::load(app)
            .await
            .ok()
            .and_then(|t| t.friendly_name)
            .unwrap_or_else(|| "Callsign".into());
        let body = serde_json::to_vec(&event(msg, &ctx, user.as_ref(), user_id.as_deref(), &friendly))
            .map_err(|e| fatal(format!("cannot encode the event: {e}"), Value::Null))?;
        let timestamp = app.clock.now().seconds();
        let mut signatures = Vec::with_capacity(keys.len());
        for k in &keys {
            signatures.push(sign(k, msg.job_id, timestamp, &body).map_err(|e| fatal(e, Value::Null))?);
        }
        let resp = app
            .http
            .post(url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", msg.job_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signatures.join(" "))
            .body(body)
            .send()
            .await;
        let host = url.host_str().unwrap_or_default().to_owned();
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "could not connect"
                } else {
                    "request failed"
                };
                // reqwest's error names the URL; keep only the host in what is logged.
                let e = e.without_url();
                return Err(retryable(
                    format!("the phone-message-hook at {host} {kind}: {e}"),
                    json!({"host": host, "error": kind}),
                ));
            }
        };
        let status = resp.status();
        if status.is_success() {
            return Ok(json!({"status": status.as_u16()}));
        }
        let head = body_head(resp).await;
        let details = json!({"status": status.as_u16(), "body": head});
        let message = format!("the phone-message-hook at {host} answered {status}");
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(retryable(message, details))
        } else {
            Err(fatal(message, details))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn standard_webhooks_test_vector() {
        // The Standard Webhooks reference libraries' test vector.
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn urls_must_be_https_except_loopback() {
        assert!(check_url("https://hooks.example.com/sms").is_ok());
        assert!(check_url("http://127.0.0.1:8080/x").is_ok());
        assert!(check_url("http://localhost/x").is_ok());
        assert!(check_url("http://[::1]:9/x").is_ok());
        assert!(check_url("http://hooks.example.com/sms").is_err());
        assert!(check_url("http://127.0.0.1.example.com/").is_err());
        assert!(check_url("ftp://example.com/").is_err());
        assert!(check_url("https://user:pw@example.com/").is_err());
        assert!(check_url("not a url").is_err());
        assert!(check_url("").is_err());
    }

    #[test]
    fn secrets_round_trip() {
        let k = secret_key("whsec_AAAA").unwrap();
        assert_eq!(k.as_slice(), &[0, 0, 0]);
        assert!(secret_key("whsec_***").is_err());
    }
}
