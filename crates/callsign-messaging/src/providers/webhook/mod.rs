//! The custom phone provider (`phone-message-hook`; Unified Phone Experience `custom`). Where Auth0 runs a "Send
//! Phone Message" Action, Callsign POSTs the same event as JSON to a configured URL, signed per the Standard
//! Webhooks specification: `webhook-id` (the message id, the same on every retry), `webhook-timestamp` (unix
//! seconds), `webhook-signature` (`v1,<base64 HMAC-SHA256>` for each active secret, space-separated). The
//! contract for receivers is docs/CUSTOM_PROVIDER.md.
//!
//! Settings ([`ProviderSettings`]): `values` `url` (a string) and `secrets` (`[{"id", "created_at"}]`, oldest
//! first, at most [`MAX_ACTIVE_SECRETS`]); each listed secret's `whsec_…` value in `secrets` under
//! [`ProviderSettings::listed_secret_key`]`("secrets", id)` ([`secret_settings_key`]). A listed secret that is
//! missing or malformed is skipped with a warning; an unlisted one never signs.
//!
//! Answers: 2xx delivers (receipt `{status}`); 5xx, 429, timeouts and connection errors are retried; any other
//! status is final, with `details: {status, body}` (the first 500 bytes); network errors carry `{host, error}`.
//!
//! The Management API's view of these settings is in [`api`].
use std::sync::Arc;

use async_trait::async_trait;
use callsign_domain::{Channel, Clock};
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use std::collections::BTreeMap;

use crate::kind::{
    BuildError, Deps, FieldKind, FieldProblem, FieldSpec, GeneratedSecret, GuardianUpdate, ProviderKind,
    ProviderSettings, Required, SecretState,
};
use crate::message::Message;
use crate::provider::{Capabilities, Provider, Receipt, SendError};

pub mod api;

pub use api::SecretRef;

/// The Guardian name.
pub const NAME: &str = "phone-message-hook";
/// The Unified Phone Experience name.
pub const UPE_NAME: &str = "custom";
/// The prefix of a signing secret as shown to the operator (Standard Webhooks: `whsec_<base64>`), and its random
/// bytes.
pub use crate::transport::{SECRET_BYTES, SECRET_PREFIX};
/// At most this many secrets sign at once (the newest ones): one in use and one being rotated in.
pub const MAX_ACTIVE_SECRETS: usize = 2;
/// How much of a refusing receiver's body is kept in the failure details.
pub const ERROR_BODY_BYTES: usize = 500;
/// The event's `tenant.id`.
pub const TENANT_ID: &str = "callsign";
/// The field that lists the signing secrets.
pub const SECRETS_FIELD: &str = "secrets";

const CAPABILITIES: Capabilities =
    Capabilities { channels: &[Channel::Sms, Channel::Voice], receipts: false, provider_codes: false };

/// The declared settings.
pub const FIELDS: &[FieldSpec] = &[
    FieldSpec {
        name: "url",
        label: "Webhook URL",
        kind: FieldKind::Url,
        min_len: 1,
        max_len: 2048,
        required: Required::Always,
        help: "https:// (plain http only for 127.0.0.1, localhost and [::1]); no credentials in the URL",
    },
    FieldSpec {
        name: SECRETS_FIELD,
        label: "Signing secrets",
        kind: FieldKind::GeneratedSecrets { max_active: MAX_ACTIVE_SECRETS },
        min_len: 0,
        max_len: 0,
        required: Required::Always,
        help: "Standard Webhooks secrets (whsec_…), shown once; every active secret signs; a third retires the oldest",
    },
];

const NO_URL: &str = "the phone-message-hook provider has no url; set it with PUT /api/v2/guardian/factors/phone/providers/phone-message-hook";
const NO_SECRET: &str = "the phone-message-hook provider has no signing secret; create one with POST /api/v2/guardian/factors/phone/providers/phone-message-hook/secrets";

/// The key of signing secret `id` in [`ProviderSettings::secrets`]: `secrets/<id>`.
pub fn secret_settings_key(id: &str) -> String {
    ProviderSettings::listed_secret_key(SECRETS_FIELD, id)
}

// --- URL and secrets --------------------------------------------------------------------------------------------

// The Standard Webhooks helpers live in `crate::transport` (operator alerts sign the same way); re-exported here.
pub use crate::transport::{check_url, new_secret, secret_key, sign};

// --- the event --------------------------------------------------------------------------------------------------

fn opt(v: &Option<String>) -> Value {
    v.as_ref().map_or(Value::Null, |s| json!(s))
}

/// The Send Phone Message event. Every member is always present; what Callsign does not know is `null`.
pub fn event(msg: &Message) -> Value {
    let ctx = &msg.context;
    let user = ctx.user.clone().unwrap_or_else(|| json!({"user_id": ctx.user_id}));
    json!({
        "message_options": {
            "action": ctx.action.map(|a| a.as_str()),
            "code": ctx.code.as_ref().map(|c| c.as_str()),
            "message_type": msg.channel.as_str(),
            "recipient": msg.to.e164(),
            "text": msg.text,
        },
        "user": user,
        "client": {"client_id": opt(&ctx.client_id), "name": opt(&ctx.client_name)},
        "request": {
            "ip": opt(&ctx.ip),
            "language": ctx.language.as_deref().unwrap_or(&msg.locale),
            "user_agent": opt(&ctx.user_agent),
        },
        "tenant": {"id": TENANT_ID, "friendly_name": ctx.tenant_friendly_name},
    })
}

// --- the kind ---------------------------------------------------------------------------------------------------

/// The custom provider's kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookKind;

/// The typed settings.
struct Config {
    /// The URL, or the final error of every send.
    target: Result<reqwest::Url, String>,
    /// The HMAC keys of the listed secrets that could be read, oldest first.
    keys: Vec<Zeroizing<Vec<u8>>>,
}

impl Config {
    fn parse(settings: &ProviderSettings) -> Result<Config, BuildError> {
        let target = match settings.values.get("url") {
            None | Some(Value::Null) => Err(NO_URL.to_owned()),
            Some(Value::String(u)) => check_url(u).map_err(|e| format!("the phone-message-hook url: {e}")),
            Some(_) => return Err(BuildError::new("the phone-message-hook setting `url` is not a string")),
        };
        let mut keys = Vec::new();
        for r in api::listed(&settings.values)? {
            let Some(secret) = settings.secrets.get(&secret_settings_key(&r.id)) else {
                tracing::warn!(secret_id = %r.id, "a listed webhook signing secret is missing from the store");
                continue;
            };
            match secret_key(secret) {
                Ok(k) => keys.push(k),
                Err(e) => tracing::warn!(secret_id = %r.id, error = %e, "a webhook signing secret is malformed"),
            }
        }
        Ok(Config { target, keys })
    }
}

impl ProviderKind for WebhookKind {
    fn name(&self) -> &'static str {
        NAME
    }
    fn label(&self) -> &'static str {
        "Custom (signed webhook)"
    }
    fn short_label(&self) -> &'static str {
        "custom webhook"
    }
    fn description(&self) -> &'static str {
        "Callsign POSTs each message to your URL, signed with the signing secrets (Standard Webhooks); you deliver it."
    }
    fn form_id(&self) -> &'static str {
        "hook"
    }
    fn upe_name(&self) -> Option<&'static str> {
        Some(UPE_NAME)
    }
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }
    fn fields(&self) -> &'static [FieldSpec] {
        FIELDS
    }

    /// A valid `url` and at least one readable signing secret.
    fn check(&self, settings: &ProviderSettings, _: &[Channel]) -> Result<(), Vec<FieldProblem>> {
        let mut problems = Vec::new();
        match settings.values.get("url") {
            None | Some(Value::Null) => problems.push(FieldProblem::missing("url", "url")),
            Some(Value::String(u)) => {
                if let Err(e) = check_url(u) {
                    problems.push(FieldProblem::invalid("url", e));
                }
            }
            Some(_) => problems.push(FieldProblem::invalid("url", "Expected type string")),
        }
        match api::listed(&settings.values) {
            Ok(refs) => {
                let readable = refs
                    .iter()
                    .any(|r| settings.secrets.get(&secret_settings_key(&r.id)).is_some_and(|s| secret_key(s).is_ok()));
                if !readable {
                    problems.push(FieldProblem::missing(SECRETS_FIELD, "a signing secret"));
                }
            }
            Err(e) => problems.push(FieldProblem::invalid(SECRETS_FIELD, e.message)),
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }

    fn build(&self, settings: ProviderSettings, deps: &Deps) -> Result<Arc<dyn Provider>, BuildError> {
        Ok(Arc::new(WebhookProvider {
            config: Config::parse(&settings)?,
            http: deps.http.clone(),
            clock: deps.clock.clone(),
        }))
    }

    fn apply_upe_configuration(
        &self,
        conf: &Map<String, Value>,
        _values: &mut Map<String, Value>,
    ) -> Result<(), FieldProblem> {
        crate::kind::only_keys("configuration", conf, &["delivery_methods"])
    }

    /// Older documents kept the custom provider's settings under `webhook`.
    fn legacy_settings_key(&self) -> Option<&'static str> {
        Some("webhook")
    }

    /// Every listed signing secret.
    fn sealed_secrets(&self, values: &Map<String, Value>) -> Vec<(String, String)> {
        api::listed(values)
            .unwrap_or_default()
            .into_iter()
            .map(|r| (secret_settings_key(&r.id), api::sealed_secret_name(&r.id)))
            .collect()
    }

    fn guardian_view(&self, values: &Map<String, Value>, _: &BTreeMap<String, SecretState<'_>>) -> Option<Value> {
        Some(api::guardian_view(values))
    }

    fn apply_guardian_update(
        &self,
        body: &Value,
        values: &mut Map<String, Value>,
    ) -> Result<GuardianUpdate, FieldProblem> {
        let url = api::apply_url(body, values)?;
        Ok(GuardianUpdate {
            secrets: BTreeMap::new(),
            echo: api::guardian_view(values),
            audit: api::audit_details(serde_json::json!({"url": url})),
        })
    }

    fn add_generated_secret(
        &self,
        values: &mut Map<String, Value>,
        rng: &dyn callsign_domain::RandomSource,
        now: callsign_domain::Timestamp,
    ) -> Result<GeneratedSecret, BuildError> {
        let id = api::new_secret_id(rng);
        let created_at = now.to_rfc3339();
        let retired = api::add_secret(values, api::SecretRef { id: id.clone(), created_at: created_at.clone() })?;
        let retired_ids: Vec<String> = retired.iter().map(|r| r.id.clone()).collect();
        Ok(GeneratedSecret {
            sealed_name: api::sealed_secret_name(&id),
            plain: new_secret(rng),
            audit: api::audit_details(serde_json::json!({"secret_created": id, "secrets_retired": retired_ids})),
            id,
            created_at,
            retired: retired.iter().map(|r| api::sealed_secret_name(&r.id)).collect(),
        })
    }

    fn remove_generated_secret(&self, values: &mut Map<String, Value>, id: &str) -> Result<Option<String>, BuildError> {
        Ok(api::remove_secret(values, id)?.then(|| api::sealed_secret_name(id)))
    }
}

// --- the provider -----------------------------------------------------------------------------------------------

/// The built custom provider: POSTs the signed event to the configured URL.
pub struct WebhookProvider {
    config: Config,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
}

fn fatal(message: String, details: Value) -> SendError {
    SendError { retryable: false, message, details }
}

#[async_trait]
impl Provider for WebhookProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn send(&self, msg: &Message) -> Result<Receipt, SendError> {
        let url = self.config.target.as_ref().map_err(|e| SendError::fatal(e.clone()))?;
        if self.config.keys.is_empty() {
            return Err(SendError::fatal(NO_SECRET));
        }
        let body =
            serde_json::to_vec(&event(msg)).map_err(|e| fatal(format!("cannot encode the event: {e}"), Value::Null))?;
        let timestamp = self.clock.now().seconds();
        let mut signatures = Vec::with_capacity(self.config.keys.len());
        for k in &self.config.keys {
            signatures.push(sign(k, &msg.id, timestamp, &body).map_err(|e| fatal(e, Value::Null))?);
        }
        let resp = self
            .http
            .post(url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", &msg.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signatures.join(" "))
            .body(body)
            .send()
            .await;
        let host = url.host_str().unwrap_or_default().to_owned();
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                // The client's error names the URL; keep only the host in what is logged.
                let f = crate::transport::transport_failure(e);
                return Err(SendError {
                    retryable: true,
                    message: format!("the phone-message-hook at {host} {}: {}", f.kind, f.detail),
                    details: json!({"host": host, "error": f.kind}),
                });
            }
        };
        let status = resp.status();
        if status.is_success() {
            return Ok(Receipt { provider: NAME, details: json!({"status": status.as_u16()}) });
        }
        let head = crate::transport::body_excerpt(resp, ERROR_BODY_BYTES).await;
        Err(SendError {
            retryable: crate::transport::status_is_retryable(status.as_u16()),
            message: format!("the phone-message-hook at {host} answered {status}"),
            details: json!({"status": status.as_u16(), "body": head}),
        })
    }
}

#[cfg(test)]
mod tests {
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
        assert!(check_url("http://hooks.example.com/sms").unwrap_err().contains("https"));
        assert!(check_url("http://127.0.0.1.example.com/").is_err());
        assert!(check_url("ftp://example.com/").unwrap_err().contains("https"));
        assert!(check_url("https://user:pw@example.com/").unwrap_err().contains("credentials"));
        assert!(check_url("not a url").unwrap_err().contains("not valid"));
        assert_eq!(check_url(""), Err("the url is empty".to_owned()));
        assert!(check_url(&format!("https://a.example/{}", "x".repeat(2048))).unwrap_err().contains("2048"));
    }

    #[test]
    fn secrets_round_trip() {
        let k = secret_key("whsec_AAAA").unwrap();
        assert_eq!(k.as_slice(), &[0, 0, 0]);
        assert!(secret_key("whsec_***").is_err());
        let s = new_secret(&callsign_domain::SeededRandom::new(3));
        assert!(s.starts_with(SECRET_PREFIX));
        assert_eq!(secret_key(&s).unwrap().len(), SECRET_BYTES);
    }
}
