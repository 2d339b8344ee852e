//! Infobip (`infobip`): SMS through SMS API v3 (`POST {base}/sms/3/messages`) and voice calls through
//! text-to-speech (`POST {base}/tts/3/advanced`), JSON with `Authorization: App <api_key>`; delivery reports pushed
//! to a per-message URL (`<public_url>callbacks/infobip/status/<message id>`) and taken by correlation
//! ([`Provider::parse_callback`]).
//!
//! Settings: `base_url` (the account's own API address, `https://<id>.api.infobip.com`), secret `api_key`,
//! `from` (the sender; a template's own `from` wins). SMS goes without `sender` when none is set (Infobip then uses
//! the account's default); voice needs `from` (a number: Infobip's caller id), and [`InfobipKind::check_selection`]
//! refuses voice on without it. When the server configuration sets `[providers.infobip] base_url`
//! (`Deps::base_urls`), it wins over the setting, which is then not needed (tests, a private gateway). The setting
//! itself must be an `https://` address on an `infobip.com` host (or a loopback address, for local tests): the API
//! key goes to that address, so a Management API caller must not be able to aim it anywhere else.
//!
//! What is sent: SMS `{"messages":[{"sender"?, "destinations":[{"to"}], "content":{"text"}, "webhooks":{"delivery":
//! {"url"}, "contentType":"application/json", "callbackData": <message id>}}]}`; voice `{"messages":[{
//! "destinations":[{"to"}], "from", "text", "language", "notifyUrl", "notifyContentType":"application/json",
//! "callbackData"}]}`, the text said twice ([`crate::voice::spoken_twice`], at most 1400 characters) in the
//! language picked from the message's locale among Infobip's TTS languages (default `en`). Numbers are digits in
//! international format without `+`.
//!
//! Answers: HTTP 200 with `messages[0].status.groupName` `PENDING` (or `ACCEPTED`, `DELIVERED`) is a success; HTTP
//! 200 with `REJECTED`, `UNDELIVERABLE` or `EXPIRED` is a failure, final (`REJECTED_NOT_ENOUGH_CREDITS`,
//! `REJECTED_SOURCE` / `REJECTED_SENDER`, `REJECTED_PREFIX_MISSING`, `REJECTED_DESTINATION`,
//! `REJECTED_FLOODING_FILTER`…) except `REJECTED_SYSTEM_ERROR`, which is retried. HTTP 400 (an `ApiError`
//! `{errorCode, description, violations}` or an `ApiException` `{requestError:{serviceException}}`), 401, 403, 404 are
//! final; 429 and 5xx, timeouts and connection failures are retried; a 2xx body that is not the documented shape is
//! retried. The failure's details are `{code, message, status}` (the status name or `errorCode` / `messageId`, the
//! description, the HTTP status).
//!
//! Receipts: Infobip does not sign its delivery reports (no signing is documented), so a report is taken by
//! correlation, not by signature: it is accepted only when every result's `callbackData` equals the message id
//! in the URL path (the id Callsign gave at send, unguessable, known only to Infobip and Callsign). The report's
//! `messageId` is not compared with the one Infobip answered at send (the stored send result is not visible
//! here): the id binding is the check. Receipt: `{provider, status: "GROUP/NAME", error_code: error.id or null,
//! sid: messageId, error_message?}` with a hint for known status and error names.
//!
//! Not supported: Infobip's other authentication schemes (Basic, OAuth), SMS API v2, audio-file calls, voice
//! selection (the language's default voice is used), and intermediate delivery reports.
use std::sync::Arc;

use async_trait::async_trait;
use callsign_domain::Channel;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::callback::{Callback, CallbackError, CallbackOutcome, ReceiptState, callback_url};
use crate::declared::{Declared, declared_kind};
use crate::kind::{BuildError, Deps, FieldKind, FieldProblem, FieldSpec, ProviderKind, ProviderSettings, Required};
use crate::message::Message;
use crate::provider::{Capabilities, Provider, Receipt, SendError};
use crate::transport::{body_excerpt, failed_request, status_is_retryable};

pub mod wire;

pub use wire::{MAX_VOICE_TEXT, TTS_LANGUAGES, tts_language};

/// The Guardian name (and the callback path segment).
pub const NAME: &str = "infobip";
const ERROR_BODY_BYTES: usize = 4096;
const SETTINGS_ENDPOINT: &str = "PUT /api/v2/guardian/factors/phone/providers/infobip";

const CAPABILITIES: Capabilities =
    Capabilities { channels: &[Channel::Sms, Channel::Voice], receipts: true, provider_codes: false };

/// The declared settings.
pub const FIELDS: &[FieldSpec] = &[
    FieldSpec {
        name: "base_url",
        label: "API base URL",
        kind: FieldKind::Url,
        min_len: 1,
        max_len: 200,
        required: Required::Always,
        help: "Your account's API address, https://<id>.api.infobip.com (Infobip portal, Developers > API keys)",
    },
    FieldSpec {
        name: "api_key",
        label: "API key",
        kind: FieldKind::Secret,
        min_len: 1,
        max_len: 1000,
        required: Required::Always,
        help: "Sent as Authorization: App <key>. Stored sealed; shown masked",
    },
    FieldSpec {
        name: "from",
        label: "Sender",
        kind: FieldKind::Phone,
        min_len: 0,
        max_len: 64,
        required: Required::ForChannel(Channel::Voice),
        help: "SMS: a number or an alphanumeric sender id (unset: the account's default); voice calls need a number",
    },
];

const DECLARED: Declared = Declared { name: NAME, label: "Infobip", fields: FIELDS, secret_fields: &["api_key"] };

/// Whether `url` may receive the API key: `https://` on `infobip.com` or one of its subdomains (an optional
/// `:443`, no path but `/`), or `http(s)://` on a loopback host (`localhost`, `127.0.0.1`, `[::1]`, any port).
pub fn is_allowed_base_url(url: &str) -> bool {
    let url = url.trim();
    let (https, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(r), _) => (true, r),
        (None, Some(r)) => (false, r),
        (None, None) => return false,
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', '\\']) {
        return false;
    }
    let (host, port) = if authority.starts_with('[') {
        let Some(end) = authority.find(']') else { return false };
        let (h, tail) = authority.split_at(end + 1);
        match tail.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if tail.is_empty() => (h, None),
            None => return false,
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !port_ok {
        return false;
    }
    let host = host.to_ascii_lowercase();
    if ["localhost", "127.0.0.1", "[::1]"].contains(&host.as_str()) {
        return true;
    }
    let labels_ok = host
        .split('.')
        .all(|l| !l.is_empty() && !l.starts_with('-') && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    https && port.is_none_or(|p| p == "443") && labels_ok && (host == "infobip.com" || host.ends_with(".infobip.com"))
}

const BASE_URL_RULE: &str = "the Infobip base URL must be your account's https://<id>.api.infobip.com address \
     (the API key is sent there); a test server or private gateway is set in the server configuration \
     ([providers.infobip] base_url) instead";

/// What a send on `channels` lacks: the declared problems, then a `base_url` that is not Infobip's; with a
/// configuration override, nothing about `base_url` (the override is used).
fn problems(settings: &ProviderSettings, channels: &[Channel], overridden: bool) -> Vec<FieldProblem> {
    let mut out = DECLARED.problems(settings, channels);
    if overridden {
        out.retain(|p| p.field != "base_url");
    } else if !out.iter().any(|p| p.field == "base_url")
        && let Some(url) = settings.text("base_url")
        && !is_allowed_base_url(&url)
    {
        out.push(FieldProblem::invalid("base_url", BASE_URL_RULE));
    }
    out
}

/// Infobip's kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct InfobipKind;

impl ProviderKind for InfobipKind {
    declared_kind!(DECLARED);

    fn description(&self) -> &'static str {
        "SMS and voice calls (text-to-speech) through your Infobip account."
    }
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    /// The declared fields (`base_url` and `api_key` always, `from` for voice), and a `base_url` on an
    /// `infobip.com` host. (A server configuration override of the base URL is not known here; the built
    /// provider then does not need the setting.)
    fn check(&self, settings: &ProviderSettings, channels: &[Channel]) -> Result<(), Vec<FieldProblem>> {
        let p = problems(settings, channels, false);
        if p.is_empty() { Ok(()) } else { Err(p) }
    }

    /// Voice calls need a caller id: with voice on, `from` must be set. A `base_url` that is set must be
    /// Infobip's, so the Management API cannot aim the stored API key at another host.
    fn check_selection(&self, settings: &ProviderSettings, channels: &[Channel]) -> Result<(), FieldProblem> {
        if channels.contains(&Channel::Voice) && settings.text("from").is_none() {
            return Err(FieldProblem::rule(
                "from",
                "Voice requires a From number (the Infobip provider's `from`): Infobip's text-to-speech calls need \
                 a caller id; set `from` with PUT /api/v2/guardian/factors/phone/providers/infobip or turn voice \
                 off in the message types.",
            ));
        }
        if let Some(url) = settings.text("base_url")
            && !is_allowed_base_url(&url)
        {
            return Err(FieldProblem::rule("base_url", format!("The Infobip `base_url` is refused: {BASE_URL_RULE}.")));
        }
        Ok(())
    }

    fn build(&self, settings: ProviderSettings, deps: &Deps) -> Result<Arc<dyn Provider>, BuildError> {
        let overridden = deps.base_urls.contains_key(NAME);
        let base_url = if overridden {
            deps.base_url(NAME, "")
        } else {
            settings.text("base_url").unwrap_or_default().trim_end_matches('/').to_owned()
        };
        Ok(Arc::new(InfobipProvider {
            api_key: settings.secret("api_key").cloned(),
            from: settings.text("from"),
            sms_problems: problems(&settings, &[Channel::Sms], overridden),
            voice_problems: problems(&settings, &[Channel::Voice], overridden),
            http: deps.http.clone(),
            base_url,
            public_url: deps.public_url.clone(),
        }))
    }
}

/// The built Infobip provider.
pub struct InfobipProvider {
    api_key: Option<Zeroizing<String>>,
    from: Option<String>,
    sms_problems: Vec<FieldProblem>,
    voice_problems: Vec<FieldProblem>,
    http: reqwest::Client,
    base_url: String,
    public_url: String,
}

#[async_trait]
impl Provider for InfobipProvider {
    fn name(&self) -> &'static str {
        NAME
    }
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn send(&self, msg: &Message) -> Result<Receipt, SendError> {
        let voice = msg.channel == Channel::Voice;
        let problems = if voice { &self.voice_problems } else { &self.sms_problems };
        let (true, Some(key)) = (problems.is_empty(), &self.api_key) else {
            return Err(DECLARED.not_ready(problems));
        };
        let from = msg.from.clone().or_else(|| self.from.clone());
        let callback = callback_url(&self.public_url, NAME, &msg.id);
        let to = msg.to.e164();
        let (path, body, what) = if voice {
            let Some(from) = from else {
                return Err(SendError::fatal(format!(
                    "the Infobip provider needs a From number for voice calls: set `from` with {SETTINGS_ENDPOINT}"
                )));
            };
            let text = crate::voice::spoken_twice(&msg.text);
            let n = text.chars().count();
            if n > MAX_VOICE_TEXT {
                return Err(SendError::fatal(format!(
                    "the voice message is too long for Infobip ({n} characters said twice, at most {MAX_VOICE_TEXT}); shorten the template"
                )));
            }
            let body = wire::voice_body(to, &text, &from, tts_language(&msg.locale), &callback, &msg.id);
            ("tts/3/advanced", body, "call")
        } else {
            ("sms/3/messages", wire::sms_body(to, &msg.text, from.as_deref(), &callback, &msg.id), "message")
        };
        let resp = self
            .http
            .post(format!("{}/{path}", self.base_url))
            .header("Authorization", format!("App {}", key.as_str()))
            .header("accept", "application/json")
            .json(&body)
            .send()
            .await
            .map_err(|e| failed_request("Infobip", e))?;
        let status = resp.status().as_u16();
        let text = body_excerpt(resp, ERROR_BODY_BYTES).await;
        if (200..300).contains(&status) {
            return match wire::read_answer(&text) {
                wire::Answer::Taken(details) => Ok(Receipt { provider: NAME, details }),
                wire::Answer::Rejected { code, description, name, retryable } => {
                    let mut m = format!("Infobip rejected the {what} (HTTP {status})");
                    if let Some(n) = code.as_str() {
                        m.push_str(&format!(", status {n}"));
                    }
                    if let Some(d) = &description {
                        m.push_str(&format!(": {d}"));
                    }
                    if let Some(h) = name.as_deref().and_then(wire::hint) {
                        m.push_str(&format!(" ({h})"));
                    }
                    Err(SendError {
                        retryable,
                        message: m,
                        details: json!({"code": code, "message": description, "status": status}),
                    })
                }
                wire::Answer::Malformed => Err(SendError::retryable(format!(
                    "Infobip answered HTTP {status} with a body that is not a send result"
                ))
                .with_details(json!({"code": null, "message": null, "status": status}))),
            };
        }
        let (code, description, violation) = wire::parse_error(&text);
        let mut m = format!("Infobip refused the {what} (HTTP {status})");
        if let Some(c) = code.as_str() {
            m.push_str(&format!(", code {c}"));
        }
        if let Some(d) = description.as_str() {
            m.push_str(&format!(": {d}"));
        }
        if let Some(v) = &violation {
            m.push_str(&format!(" ({v})"));
        }
        m.push_str(match status {
            401 | 403 => " (check the API key, and that the base URL is the key's own account address)",
            404 => " (check the base URL: it is your account's https://<id>.api.infobip.com address)",
            _ => "",
        });
        Err(SendError {
            retryable: status_is_retryable(status),
            message: m,
            details: json!({"code": code, "message": description, "status": status}),
        })
    }

    /// A delivery report, taken by correlation (Infobip does not sign it): every result's `callbackData` must be
    /// the message id of the URL. The receipt is the first result's `{provider, status, error_code, sid}`, plus
    /// `error_message` when it carries an error.
    fn parse_callback(&self, cb: &Callback<'_>) -> Result<CallbackOutcome, CallbackError> {
        let job = cb.message_id;
        let report: Value = serde_json::from_slice(cb.body).unwrap_or(Value::Null);
        let Ok(results) = wire::report_results(&report, job) else {
            tracing::warn!(%job, "an Infobip delivery report whose callbackData is not its message id was refused");
            return Err(CallbackError::Unauthenticated);
        };
        let r = &results[0];
        let error = wire::real_error(&r["error"]);
        let mut receipt = json!({
            "provider": NAME,
            "status": wire::status_text(&r["status"]),
            "error_code": error.map_or(Value::Null, |e| e["id"].clone()),
            "sid": r["messageId"].as_str(),
        });
        if let Some(e) = error {
            let text = match (e["name"].as_str(), e["description"].as_str()) {
                (Some(n), Some(d)) => Some(format!("{n}: {d}")),
                (Some(x), None) | (None, Some(x)) => Some(x.to_owned()),
                (None, None) => None,
            };
            if let Some(t) = text {
                receipt["error_message"] = json!(t);
            }
        }
        let hint = error
            .and_then(|e| e["name"].as_str())
            .and_then(wire::hint)
            .or_else(|| r["status"]["name"].as_str().and_then(wire::hint));
        let state = match wire::group_of(&r["status"]).as_deref() {
            Some("DELIVERED") => ReceiptState::Delivered,
            Some("UNDELIVERABLE" | "EXPIRED" | "REJECTED") => ReceiptState::Failed,
            _ => ReceiptState::InProgress,
        };
        Ok(CallbackOutcome::new(receipt, state, hint))
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
    fn only_infobip_or_loopback_may_receive_the_key() {
        for ok in [
            "https://abcde.api.infobip.com",
            "https://abcde.api.infobip.com/",
            "https://api.infobip.com",
            "https://ABCDE.API.INFOBIP.COM:443",
            "http://127.0.0.1:4010",
            "http://localhost:8080/",
            "https://[::1]:9",
        ] {
            assert!(is_allowed_base_url(ok), "{ok}");
        }
        for bad in [
            "http://abcde.api.infobip.com",
            "https://evil.example",
            "https://infobip.com.evil.example",
            "https://evilinfobip.com",
            "https://abcde.api.infobip.com/sms",
            "https://abcde.api.infobip.com:8443",
            "https://user@abcde.api.infobip.com",
            "https://abcde.api.infobip.com?x=1",
            "https://a..infobip.com",
            "ftp://abcde.api.infobip.com",
            "http://127.0.0.1.evil.example",
            "http://localhost:x",
            "",
        ] {
            assert!(!is_allowed_base_url(bad), "{bad}");
        }
    }
}
