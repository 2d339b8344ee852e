//! ClickSend (`clicksend`): SMS through `POST {base}/v3/sms/send` and text-to-speech calls through
//! `POST {base}/v3/voice/send`, both JSON `{"messages": [ … ]}` with one message, HTTP Basic auth
//! (`username:api_key`).
//!
//! Settings: `username` (the API username), secret `api_key`, optional `from` (a dedicated number or a registered
//! alpha tag; a template's own `from` wins; without one ClickSend picks the account's default sender). The
//! endpoint is `https://rest.clicksend.com` unless the server configuration overrides it
//! (`[providers.clicksend] base_url`, e.g. a test fake); an API caller cannot change it.
//!
//! What is sent: SMS `{"to": "+E164", "body", "from"?, "source": "callsign", "custom_string": <message id>}`;
//! voice `{"to", "body": <script said twice>, "voice", "lang", "source": "callsign",
//! "machine_detection": 0}`. `lang` is picked from the message's locale among the languages ClickSend documents
//! for `/v3/voice/send` ([`VOICE_LANGUAGES`], default `en-us`); `voice` is `female`, except for `pt-pt` whose only
//! documented voice is `male`. Voice calls carry no sender (the voice request has no documented `from`).
//!
//! Answers: HTTP 200 does not mean the message was taken: `data.messages[0].status` must be `SUCCESS` (the
//! receipt is `{message_id, status}`). `INVALID_RECIPIENT`, `COUNTRY_NOT_ENABLED`, `INSUFFICIENT_CREDIT`,
//! `INVALID_RETURN_ADDRESS`, `MISSING_REQUIRED_FIELDS` and any other per-message status are final, except
//! `TOO_MANY_REQUESTS` and `INTERNAL_SERVER_ERROR`, retried should they appear per message. An answer with no
//! message and a `blocked_count` is final (ClickSend blocked it: a sender id or global-sending restriction). HTTP
//! 401 `UNAUTHORIZED` / 403 `FORBIDDEN` and other 4xx are final; 429 `TOO_MANY_REQUESTS`, 5xx, timeouts and
//! connection failures are retried; a 2xx that is not a send result is retried. The failure's details are
//! `{code, message, status}` (the per-message status or ClickSend's `response_code`, its `response_msg`, the HTTP
//! status).
//!
//! Not supported: delivery receipts. ClickSend pushes them to a URL set per account (receipt rules), not per
//! message, and documents no signature, so a receipt cannot be told from a forgery; pulling them
//! (`GET /v3/sms/receipts`) is not done either. Scheduling, contact lists and `require_input` are not used.
use std::sync::Arc;

use async_trait::async_trait;
use callsign_domain::Channel;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::declared::{Declared, declared_kind};
use crate::kind::{BuildError, Deps, FieldKind, FieldProblem, FieldSpec, ProviderKind, ProviderSettings, Required};
use crate::message::Message;
use crate::provider::{Capabilities, Provider, Receipt, SendError};
use crate::transport::{body_excerpt, failed_request, status_is_retryable};
use crate::voice::{pick_language, spoken_twice};

/// The Guardian name.
pub const NAME: &str = "clicksend";
/// ClickSend's API, unless [`Deps::base_urls`] has an override under [`NAME`].
pub const DEFAULT_BASE_URL: &str = "https://rest.clicksend.com";
/// The `source` of every message (ClickSend shows it as the sending application).
pub const SOURCE: &str = "callsign";
/// The `lang` values ClickSend documents for `POST /v3/voice/send` ("Allowed Languages"), the first of each
/// language being the one a bare language (`en`, `fr`, `pt`) picks.
pub const VOICE_LANGUAGES: &[&str] = &[
    "en-us",
    "en-au",
    "en-gb",
    "en-in",
    "en-gb-wls",
    "cy-gb-wls",
    "de-de",
    "es-es",
    "es-us",
    "fr-fr",
    "fr-ca",
    "is-is",
    "it-it",
    "da-dk",
    "nl-nl",
    "nb-no",
    "pl-pl",
    "pt-br",
    "pt-pt",
    "ro-ro",
    "ru-ru",
    "sv-se",
    "tr-tr",
];
/// The `lang` of a locale ClickSend has no voice for.
pub const DEFAULT_VOICE_LANGUAGE: &str = "en-us";
/// A success answer is read whole up to this much (it echoes the message).
const BODY_BYTES: usize = 16 * 1024;
/// Where the settings are set.
const SETTINGS_ENDPOINT: &str = "PUT /api/v2/guardian/factors/phone/providers/clicksend";

const CAPABILITIES: Capabilities =
    Capabilities { channels: &[Channel::Sms, Channel::Voice], receipts: false, provider_codes: false };

/// The declared settings.
pub const FIELDS: &[FieldSpec] = &[
    FieldSpec {
        name: "username",
        label: "API username",
        kind: FieldKind::Text,
        min_len: 1,
        max_len: 200,
        required: Required::Always,
        help: "The username shown under API Credentials in the ClickSend dashboard",
    },
    FieldSpec {
        name: "api_key",
        label: "API key",
        kind: FieldKind::Secret,
        min_len: 1,
        max_len: 1000,
        required: Required::Always,
        help: "The API key shown under API Credentials. Stored sealed; shown masked",
    },
    FieldSpec {
        name: "from",
        label: "Sender",
        kind: FieldKind::Phone,
        min_len: 0,
        max_len: 64,
        required: Required::Never,
        help: "A dedicated number (E.164) or a registered alpha tag for SMS; empty: the account's default sender",
    },
];

const DECLARED: Declared = Declared { name: NAME, label: "ClickSend", fields: FIELDS, secret_fields: &["api_key"] };

/// The declared problems, and a username Basic auth cannot carry (`:` ends the user id).
fn problems(settings: &ProviderSettings, channels: &[Channel]) -> Vec<FieldProblem> {
    let mut p = DECLARED.problems(settings, channels);
    if settings.text("username").is_some_and(|u| u.contains(':')) {
        p.push(FieldProblem::invalid("username", "String must not contain ':'"));
    }
    p
}

/// ClickSend's `voice` for a documented `lang`: `female`, except where only a male voice is documented.
pub fn voice_for(lang: &str) -> &'static str {
    if lang == "pt-pt" { "male" } else { "female" }
}

/// ClickSend's kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClicksendKind;

impl ProviderKind for ClicksendKind {
    declared_kind!(DECLARED);

    fn description(&self) -> &'static str {
        "SMS and text-to-speech calls through ClickSend's REST API v3."
    }
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }
    fn check(&self, settings: &ProviderSettings, channels: &[Channel]) -> Result<(), Vec<FieldProblem>> {
        let p = problems(settings, channels);
        if p.is_empty() { Ok(()) } else { Err(p) }
    }
    fn build(&self, settings: ProviderSettings, deps: &Deps) -> Result<Arc<dyn Provider>, BuildError> {
        Ok(Arc::new(ClicksendProvider {
            username: settings.text("username"),
            api_key: settings.secret("api_key").cloned(),
            from: settings.text("from"),
            problems: problems(&settings, &Channel::ALL),
            http: deps.http.clone(),
            base_url: deps.base_url(NAME, DEFAULT_BASE_URL),
        }))
    }
}

/// The built ClickSend provider.
pub struct ClicksendProvider {
    username: Option<String>,
    api_key: Option<Zeroizing<String>>,
    from: Option<String>,
    problems: Vec<FieldProblem>,
    http: reqwest::Client,
    base_url: String,
}

impl std::fmt::Debug for ClicksendProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClicksendProvider")
            .field("username", &self.username)
            .field("from", &self.from)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Whether a per-message status is worth trying again: only ClickSend's throttling and internal error codes.
fn status_code_is_retryable(code: &str) -> bool {
    matches!(code, "TOO_MANY_REQUESTS" | "INTERNAL_SERVER_ERROR")
}

/// What a per-message status means, for the operator.
fn status_hint(code: &str) -> Option<&'static str> {
    Some(match code {
        "INVALID_RECIPIENT" => "the destination number is invalid",
        "COUNTRY_NOT_ENABLED" => "global sending is not enabled for the recipient's country on this ClickSend account",
        "INSUFFICIENT_CREDIT" => "the ClickSend account has no message credit left",
        "INVALID_RETURN_ADDRESS" => "the sender (`from`) is not valid for this account or destination",
        "MISSING_REQUIRED_FIELDS" => "a required field is missing",
        "TOO_MANY_REQUESTS" => "ClickSend is throttling this account",
        _ => return None,
    })
}

impl ClicksendProvider {
    /// The one message of the request body, for `msg`'s channel.
    fn message(&self, msg: &Message) -> Value {
        let mut m = Map::new();
        m.insert("to".into(), json!(msg.to.e164()));
        match msg.channel {
            Channel::Sms => {
                m.insert("body".into(), json!(msg.text));
                let from = msg.from.as_deref().map(str::trim).filter(|f| !f.is_empty()).or(self.from.as_deref());
                if let Some(from) = from {
                    m.insert("from".into(), json!(from));
                }
            }
            Channel::Voice => {
                let lang = pick_language(&msg.locale, VOICE_LANGUAGES, DEFAULT_VOICE_LANGUAGE);
                m.insert("body".into(), json!(spoken_twice(&msg.text)));
                m.insert("voice".into(), json!(voice_for(lang)));
                m.insert("lang".into(), json!(lang));
            }
        }
        m.insert("source".into(), json!(SOURCE));
        // ClickSend's generated request model has `custom_string` on SMS only (checked by sdk-tests/models).
        if msg.channel == Channel::Sms {
            m.insert("custom_string".into(), json!(msg.id));
        } else {
            m.insert("machine_detection".into(), json!(0));
        }
        Value::Object(m)
    }
}

#[async_trait]
impl Provider for ClicksendProvider {
    fn name(&self) -> &'static str {
        NAME
    }
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn send(&self, msg: &Message) -> Result<Receipt, SendError> {
        let (true, Some(user), Some(key)) = (self.problems.is_empty(), &self.username, &self.api_key) else {
            return Err(DECLARED.not_ready(&self.problems));
        };
        let path = match msg.channel {
            Channel::Sms => "/v3/sms/send",
            Channel::Voice => "/v3/voice/send",
        };
        let body = json!({ "messages": [self.message(msg)] });
        let resp = self
            .http
            .post(format!("{}{path}", self.base_url))
            .basic_auth(user, Some(key.as_str()))
            .header("accept", "application/json")
            .json(&body)
            .send()
            .await
            .map_err(|e| failed_request("ClickSend", e))?;
        let status = resp.status().as_u16();
        let text = body_excerpt(resp, BODY_BYTES).await;
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let response_code = answer["response_code"].as_str().map(str::to_owned);
        let response_msg = answer["response_msg"].as_str().map(str::to_owned);
        if (200..300).contains(&status) {
            return read_success(status, &answer, response_code, response_msg);
        }
        let mut text = format!("ClickSend refused the message (HTTP {status}");
        if let Some(c) = &response_code {
            text.push_str(&format!(" {c}"));
        }
        text.push(')');
        if let Some(m) = &response_msg {
            text.push_str(&format!(": {m}"));
        }
        if matches!(status, 401 | 403) {
            text.push_str(&format!(" (check the username and API key set with {SETTINGS_ENDPOINT})"));
        }
        Err(SendError {
            retryable: status_is_retryable(status),
            message: text,
            details: json!({"code": response_code, "message": response_msg, "status": status}),
        })
    }
}

/// A 2xx answer: the first message's `status` decides.
fn read_success(
    status: u16,
    answer: &Value,
    response_code: Option<String>,
    response_msg: Option<String>,
) -> Result<Receipt, SendError> {
    let data = &answer["data"];
    let first = data["messages"].as_array().and_then(|a| a.first());
    let Some(m) = first else {
        let blocked = data["blocked_count"].as_u64().unwrap_or(0);
        if blocked > 0 && data["messages"].is_array() {
            return Err(SendError::fatal(format!(
                "ClickSend blocked the message (blocked_count {blocked}): check that the sender is registered for the \
                 destination country and that global sending is enabled"
            ))
            .with_details(json!({"code": "BLOCKED", "message": response_msg, "status": status})));
        }
        return Err(malformed(status, response_code, response_msg));
    };
    match (m["status"].as_str(), m["message_id"].as_str()) {
        (Some("SUCCESS"), Some(id)) if !id.is_empty() => {
            Ok(Receipt { provider: NAME, details: json!({"message_id": id, "status": "SUCCESS"}) })
        }
        (Some(code), _) if code != "SUCCESS" => {
            let mut text = format!("ClickSend refused the message: {code}");
            if let Some(h) = status_hint(code) {
                text.push_str(&format!(" ({h})"));
            }
            Err(SendError {
                retryable: status_code_is_retryable(code),
                message: text,
                details: json!({"code": code, "message": response_msg, "status": status}),
            })
        }
        _ => Err(malformed(status, response_code, response_msg)),
    }
}

fn malformed(status: u16, code: Option<String>, message: Option<String>) -> SendError {
    SendError::retryable(format!("ClickSend answered HTTP {status} with a body that is not a send result"))
        .with_details(json!({"code": code, "message": message, "status": status}))
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
    fn languages_are_picked_from_the_documented_list() {
        let pick = |l: &str| pick_language(l, VOICE_LANGUAGES, DEFAULT_VOICE_LANGUAGE);
        assert_eq!(pick("en"), "en-us");
        assert_eq!(pick("en-AU"), "en-au");
        assert_eq!(pick("en_GB"), "en-gb");
        assert_eq!(pick("fr"), "fr-fr");
        assert_eq!(pick("fr-CA"), "fr-ca");
        assert_eq!(pick("de-AT"), "de-de");
        assert_eq!(pick("pt"), "pt-br");
        assert_eq!(pick("pt-PT"), "pt-pt");
        assert_eq!(pick("cy"), "cy-gb-wls");
        assert_eq!(pick("ja"), "en-us");
        assert_eq!(pick(""), "en-us");
        assert!(VOICE_LANGUAGES.iter().all(|l| l.chars().all(|c| c.is_ascii_lowercase() || c == '-')));
        assert_eq!((voice_for("pt-pt"), voice_for("en-us"), voice_for("fr-ca")), ("male", "female", "female"));
    }

    #[test]
    fn only_throttling_and_internal_errors_are_retried() {
        for c in ["TOO_MANY_REQUESTS", "INTERNAL_SERVER_ERROR"] {
            assert!(status_code_is_retryable(c), "{c}");
        }
        for c in [
            "INVALID_RECIPIENT",
            "COUNTRY_NOT_ENABLED",
            "INSUFFICIENT_CREDIT",
            "INVALID_RETURN_ADDRESS",
            "MISSING_REQUIRED_FIELDS",
            "SOMETHING_NEW",
        ] {
            assert!(!status_code_is_retryable(c), "{c}");
        }
    }
}
