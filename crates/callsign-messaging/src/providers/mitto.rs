//! Mitto (`mitto`): SMS through `POST {base}/sms` (JSON `{from, to, text}`, `to` in international format without
//! `+`) with the `X-Mitto-API-Key` header. Mitto has no public text-to-speech API, so this provider sends SMS only.
//!
//! Settings: secret `api_key`; `from` (the sender: a number or an alphanumeric sender id; a template's own `from`
//! wins). The endpoint is `https://rest.mittoapi.net` unless the server configuration overrides it
//! (`[providers.mitto] base_url`, e.g. a regional endpoint or a test fake); an API caller cannot change it.
//!
//! Answers: `{"id", "responseCode": 0, "responseText": "SMS sent"}` is a success. `responseCode` 1 (internal error)
//! is retried; 2–8 (invalid type, empty or invalid text, sender or receiver) are final. HTTP 401/403 (a wrong key,
//! or a caller IP Mitto has not allowed) are final; 429 and 5xx, timeouts and connection failures are retried.
//! The failure's details are `{code, message, status}` (Mitto's `responseCode` and `responseText`, the HTTP
//! status). Delivery reports are not taken: Mitto's callback parameters are not documented well enough to verify
//! them.
use std::sync::Arc;

use async_trait::async_trait;
use callsign_domain::Channel;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::declared::{Declared, declared_kind};
use crate::kind::{BuildError, Deps, FieldKind, FieldProblem, FieldSpec, ProviderKind, ProviderSettings, Required};
use crate::message::Message;
use crate::provider::{Capabilities, Provider, Receipt, SendError};
use crate::transport::{body_excerpt, failed_request, status_is_retryable};

/// The Guardian name.
pub const NAME: &str = "mitto";
/// Mitto's API, unless [`Deps::base_urls`] has an override under [`NAME`].
pub const DEFAULT_BASE_URL: &str = "https://rest.mittoapi.net";
const ERROR_BODY_BYTES: usize = 4096;

const CAPABILITIES: Capabilities = Capabilities { channels: &[Channel::Sms], receipts: false, provider_codes: false };

/// The declared settings.
pub const FIELDS: &[FieldSpec] = &[
    FieldSpec {
        name: "api_key",
        label: "API key",
        kind: FieldKind::Secret,
        min_len: 1,
        max_len: 1000,
        required: Required::Always,
        help: "Sent as X-Mitto-API-Key. Stored sealed; shown masked",
    },
    FieldSpec {
        name: "from",
        label: "Sender",
        kind: FieldKind::Phone,
        min_len: 0,
        max_len: 64,
        required: Required::Never,
        help: "A number or an alphanumeric sender id (Mitto refuses a message without one, unless a template sets it)",
    },
];

const DECLARED: Declared = Declared { name: NAME, label: "Mitto", fields: FIELDS, secret_fields: &["api_key"] };

/// Mitto's kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct MittoKind;

impl ProviderKind for MittoKind {
    declared_kind!(DECLARED);

    fn description(&self) -> &'static str {
        "SMS through Mitto's REST API (no voice)."
    }
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }
    fn check(&self, settings: &ProviderSettings, channels: &[Channel]) -> Result<(), Vec<FieldProblem>> {
        DECLARED.check(settings, channels)
    }
    fn build(&self, settings: ProviderSettings, deps: &Deps) -> Result<Arc<dyn Provider>, BuildError> {
        Ok(Arc::new(MittoProvider {
            api_key: settings.secret("api_key").cloned(),
            from: settings.text("from"),
            problems: DECLARED.problems(&settings, &[Channel::Sms]),
            http: deps.http.clone(),
            base_url: deps.base_url(NAME, DEFAULT_BASE_URL),
        }))
    }
}

/// The built Mitto provider.
pub struct MittoProvider {
    api_key: Option<Zeroizing<String>>,
    from: Option<String>,
    problems: Vec<FieldProblem>,
    http: reqwest::Client,
    base_url: String,
}

/// Whether a `responseCode` is worth trying again: only 1, Mitto's internal error.
fn code_is_retryable(code: i64) -> bool {
    code == 1
}

#[async_trait]
impl Provider for MittoProvider {
    fn name(&self) -> &'static str {
        NAME
    }
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn send(&self, msg: &Message) -> Result<Receipt, SendError> {
        let (true, Some(key)) = (self.problems.is_empty(), &self.api_key) else {
            return Err(DECLARED.not_ready(&self.problems));
        };
        let Some(from) = msg.from.clone().or_else(|| self.from.clone()) else {
            return Err(SendError::fatal(
                "the Mitto provider needs a sender: set `from` with PUT /api/v2/guardian/factors/phone/providers/mitto",
            ));
        };
        let body = json!({
            "from": from,
            "to": msg.to.e164().trim_start_matches('+'),
            "text": msg.text,
        });
        let resp = self
            .http
            .post(format!("{}/sms", self.base_url))
            .header("X-Mitto-API-Key", key.as_str())
            .header("accept", "application/json")
            .json(&body)
            .send()
            .await
            .map_err(|e| failed_request("Mitto", e))?;
        let status = resp.status().as_u16();
        let text = body_excerpt(resp, ERROR_BODY_BYTES).await;
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let code = answer["responseCode"].as_i64();
        let message = answer["responseText"].as_str().map(str::to_owned);
        let details = json!({"code": code, "message": message, "status": status});
        if (200..300).contains(&status) {
            return match (code, answer["id"].as_str()) {
                (Some(0), Some(id)) => Ok(Receipt { provider: NAME, details: json!({"id": id, "status": message}) }),
                (Some(c), _) if c != 0 => Err(SendError {
                    retryable: code_is_retryable(c),
                    message: format!("Mitto refused the message, code {c}: {}", message.as_deref().unwrap_or("")),
                    details,
                }),
                _ => Err(SendError::retryable(format!(
                    "Mitto answered HTTP {status} with a body that is not a send result"
                ))
                .with_details(details)),
            };
        }
        let what = match status {
            401 | 403 => " (check the API key, and that Mitto allows this server's IP address)",
            _ => "",
        };
        let mut text = format!("Mitto refused the message (HTTP {status})");
        if let Some(c) = code {
            text.push_str(&format!(", code {c}"));
        }
        if let Some(m) = &message {
            text.push_str(&format!(": {m}"));
        }
        text.push_str(what);
        Err(SendError { retryable: status_is_retryable(status), message: text, details })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_list_matches_the_fields() {
        let secrets: Vec<&str> = FIELDS.iter().filter(|f| f.kind == FieldKind::Secret).map(|f| f.name).collect();
        assert_eq!(secrets, DECLARED.secret_fields);
    }

    #[test]
    fn only_an_internal_error_is_retried() {
        assert!(code_is_retryable(1));
        for c in 2..=8 {
            assert!(!code_is_retryable(c), "{c}");
        }
    }
}
