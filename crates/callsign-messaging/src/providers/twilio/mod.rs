//! The Twilio provider (`twilio`; Unified Phone Experience `twilio`): SMS through `Messages.json`, voice through
//! `Calls.json` with inline TwiML, both form-encoded with HTTP Basic auth (`AccountSid:AuthToken`), and delivery
//! receipts through a `StatusCallback` (`<public_url>callbacks/twilio/status/<message id>`) that Twilio signs with
//! `X-Twilio-Signature` ([`Provider::parse_callback`]).
//!
//! Settings ([`ProviderSettings`]): `values` `sid`, `from`, `messaging_service_sid` (strings or null); secret
//! `auth_token`. SMS goes through the Messaging Service when one is set, else from `from`; a message's own `from`
//! (a template's sender) wins over both. Voice always needs `from`.
//!
//! Errors: 5xx, HTTP 429 / code 20429 and network failures are retried; every other refusal (21211 invalid
//! number, 21408 / 21215 / 13227 / 32205 geo permissions, 21606 bad `From`, 21219 unverified trial number, 20003
//! authentication, other 4xx) is final. The failure carries `details: {code, message, status}`. The auth token
//! never appears in a log line, an error or an answer.
//!
//! The Management API's views of these settings (the Guardian Twilio endpoints, the UPE provider record) are in
//! [`api`].
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use callsign_domain::{Channel, RandomSource};
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::callback::{Callback, CallbackError, CallbackOutcome, ReceiptState, callback_url};
use crate::kind::{
    BuildError, Deps, FieldKind, FieldProblem, FieldSpec, GuardianUpdate, ProblemKind, ProviderKind, ProviderSettings,
    Required, SecretState,
};
use crate::message::Message;
use crate::provider::{Capabilities, Provider, Receipt, SendError};

pub mod api;
pub mod wire;

pub use wire::{MAX_TWIML, code_hint, is_retryable, parse_error, say_language, signature, twiml, verify, xml_escape};

/// The Guardian name (and the callback path segment).
pub const NAME: &str = "twilio";
/// The Unified Phone Experience name.
pub const UPE_NAME: &str = "twilio";
/// Twilio's API, unless [`Deps::base_urls`] has an override under [`NAME`].
pub const DEFAULT_BASE_URL: &str = "https://api.twilio.com";
/// How much of an error body is read.
const ERROR_BODY_BYTES: usize = 4096;
/// Where the settings are set, for the "not fully configured" message.
const SETTINGS_ENDPOINT: &str = "PUT /api/v2/guardian/factors/phone/providers/twilio";

const CAPABILITIES: Capabilities =
    Capabilities { channels: &[Channel::Sms, Channel::Voice], receipts: true, provider_codes: false };

/// The declared settings.
pub const FIELDS: &[FieldSpec] = &[
    FieldSpec {
        name: "sid",
        label: "Account SID",
        kind: FieldKind::Text,
        min_len: 34,
        max_len: 34,
        required: Required::Always,
        help: "AC followed by 32 hexadecimal digits (Twilio Console, Account info)",
    },
    FieldSpec {
        name: "auth_token",
        label: "Auth token",
        kind: FieldKind::Secret,
        min_len: 1,
        max_len: 1000,
        required: Required::Always,
        help: "Stored sealed; shown masked. Also checks the delivery receipts' X-Twilio-Signature",
    },
    FieldSpec {
        name: "from",
        label: "From number",
        kind: FieldKind::Phone,
        min_len: 0,
        max_len: 16,
        required: Required::ForChannel(Channel::Voice),
        help: "A Twilio number in E.164 form (+15005550006) or an alphanumeric sender ID (1 to 11 letters, digits or \
               spaces, at least one letter); voice calls need a number; SMS needs a sender or a Messaging Service",
    },
    FieldSpec {
        name: "messaging_service_sid",
        label: "Messaging Service SID",
        kind: FieldKind::Text,
        min_len: 34,
        max_len: 34,
        required: Required::Never,
        help: "MG followed by 32 hexadecimal digits; when set, SMS goes through the Messaging Service instead of the From number (voice does not)",
    },
];

/// The `from` problem of a voice send without a From number.
const VOICE_FROM_MISSING: &str = "from (voice calls need a From number even when SMS uses a Messaging Service)";

/// The Twilio provider's kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct TwilioKind;

/// The typed settings.
#[derive(Clone)]
struct Config {
    sid: Option<String>,
    token: Option<Zeroizing<String>>,
    from: Option<String>,
    messaging_service_sid: Option<String>,
}

fn text_value(values: &Map<String, Value>, key: &str) -> Result<Option<String>, BuildError> {
    match values.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned()).filter(|s| !s.is_empty())),
        Some(_) => Err(BuildError::new(format!("the Twilio setting `{key}` is not a string"))),
    }
}

impl Config {
    fn parse(settings: &ProviderSettings) -> Result<Config, BuildError> {
        Ok(Config {
            sid: text_value(&settings.values, "sid")?,
            token: settings.secret("auth_token").cloned(),
            from: text_value(&settings.values, "from")?,
            messaging_service_sid: text_value(&settings.values, "messaging_service_sid")?,
        })
    }

    /// What a send on `channels` lacks, in the order today's message names them; then an invalid SID.
    fn problems(&self, channels: &[Channel]) -> Vec<FieldProblem> {
        let mut out = Vec::new();
        if self.sid.is_none() {
            out.push(FieldProblem::missing("sid", "sid"));
        }
        if self.token.is_none() {
            out.push(FieldProblem::missing("auth_token", "auth_token"));
        }
        for c in channels {
            match c {
                Channel::Voice if self.from.is_none() => out.push(FieldProblem::missing("from", VOICE_FROM_MISSING)),
                Channel::Sms if self.from.is_none() && self.messaging_service_sid.is_none() => {
                    out.push(FieldProblem::missing("from", "from or messaging_service_sid"))
                }
                _ => {}
            }
        }
        if let Some(sid) = &self.sid
            && !sid.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            out.push(FieldProblem::invalid(
                "sid",
                "the Twilio account SID is not valid (expected AC followed by 32 hex digits)",
            ));
        }
        out
    }
}

/// The send-time failure for problems found by [`TwilioKind::check`] (the first that applies: what is missing,
/// else an invalid SID).
fn not_ready(problems: &[FieldProblem]) -> SendError {
    let missing: Vec<&str> =
        problems.iter().filter(|p| p.kind == ProblemKind::Missing).map(|p| p.message.as_str()).collect();
    if !missing.is_empty() {
        return SendError::fatal(format!(
            "the Twilio provider is not fully configured: missing {}; set it with {SETTINGS_ENDPOINT}",
            missing.join(", ")
        ));
    }
    SendError::fatal(problems.first().map_or("the Twilio provider is not fully configured", |p| p.message.as_str()))
}

impl ProviderKind for TwilioKind {
    fn name(&self) -> &'static str {
        NAME
    }
    fn label(&self) -> &'static str {
        "Twilio"
    }
    fn description(&self) -> &'static str {
        "SMS and voice calls through your Twilio account (Programmable Messaging and Voice)."
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

    /// `sid` and `auth_token` always; `from` for voice; `from` or `messaging_service_sid` for SMS; an
    /// alphanumeric `sid`.
    fn check(&self, settings: &ProviderSettings, channels: &[Channel]) -> Result<(), Vec<FieldProblem>> {
        let problems = match Config::parse(settings) {
            Ok(c) => c.problems(channels),
            Err(e) => vec![FieldProblem::invalid("configuration", e.message)],
        };
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }

    /// Voice calls need a From number (a Messaging Service sends SMS only): with voice on, `from` must be set.
    fn check_selection(&self, settings: &ProviderSettings, channels: &[Channel]) -> Result<(), FieldProblem> {
        if channels.contains(&Channel::Voice) && settings.text("from").is_none() {
            return Err(FieldProblem::rule(
                "from",
                "Voice requires a From number (the Twilio provider's `from`), even when SMS uses a Messaging Service; \
                 set `from` with PUT /api/v2/guardian/factors/phone/providers/twilio or turn voice off in the message types.",
            ));
        }
        if channels.contains(&Channel::Voice) && settings.text("from").is_some_and(|f| !f.starts_with('+')) {
            return Err(FieldProblem::rule(
                "from",
                "Voice calls come from a phone number (E.164, like +14155550100), not an alphanumeric sender ID; \
                 set a number as `from` or turn voice off in the message types.",
            ));
        }
        Ok(())
    }

    fn build(&self, settings: ProviderSettings, deps: &Deps) -> Result<Arc<dyn Provider>, BuildError> {
        Ok(Arc::new(TwilioProvider {
            config: Config::parse(&settings)?,
            http: deps.http.clone(),
            base_url: deps.base_url(NAME, DEFAULT_BASE_URL),
            public_url: deps.public_url.clone(),
        }))
    }

    fn upe_configuration(&self, values: &Map<String, Value>) -> Map<String, Value> {
        api::upe_configuration(values)
    }

    fn apply_upe_configuration(
        &self,
        conf: &Map<String, Value>,
        values: &mut Map<String, Value>,
    ) -> Result<(), FieldProblem> {
        api::apply_upe_configuration(conf, values)
    }

    fn forget_upe(&self, values: &mut Map<String, Value>) -> &'static [&'static str] {
        for k in ["sid", "from", "messaging_service_sid"] {
            values.remove(k);
        }
        &["auth_token"]
    }

    fn upe_credentials(&self, credentials: &Value) -> Result<BTreeMap<String, Zeroizing<String>>, FieldProblem> {
        api::upe_credentials(credentials)
    }

    fn legacy_settings_key(&self) -> Option<&'static str> {
        Some(NAME)
    }

    fn legacy_base_url_key(&self) -> Option<&'static str> {
        Some("twilio_base_url")
    }

    /// The auth token, when one is set: under `auth_token_secret`, or (installations from before versioned names)
    /// [`api::LEGACY_TOKEN_SECRET`].
    fn sealed_secrets(&self, values: &Map<String, Value>) -> Vec<(String, String)> {
        if !values.get("auth_token_set").and_then(Value::as_bool).unwrap_or(false) {
            return Vec::new();
        }
        let name = values
            .get("auth_token_secret")
            .and_then(Value::as_str)
            .map_or_else(|| api::LEGACY_TOKEN_SECRET.to_owned(), str::to_owned);
        vec![("auth_token".to_owned(), name)]
    }

    fn seal_secret_as(&self, field: &str, values: &mut Map<String, Value>, rng: &dyn RandomSource) -> Option<String> {
        (field == "auth_token").then(|| {
            let name = api::new_token_secret_name(rng);
            values.insert("auth_token_set".into(), Value::Bool(true));
            values.insert("auth_token_secret".into(), Value::String(name.clone()));
            name
        })
    }

    fn forget_secret(&self, field: &str, values: &mut Map<String, Value>) {
        if field == "auth_token" {
            values.insert("auth_token_set".into(), Value::Bool(false));
            values.remove("auth_token_secret");
        }
    }

    fn guardian_view(&self, values: &Map<String, Value>, secrets: &BTreeMap<String, SecretState<'_>>) -> Option<Value> {
        Some(api::guardian_view(values, secrets.get("auth_token").copied().unwrap_or(SecretState::Absent)))
    }

    fn apply_guardian_update(
        &self,
        body: &Value,
        values: &mut Map<String, Value>,
    ) -> Result<GuardianUpdate, FieldProblem> {
        let change = api::apply_guardian_update(body, values)?;
        let (echo, audit) = (change.echo(), change.audit_details());
        let mut secrets = BTreeMap::new();
        if let Some(t) = change.token {
            secrets.insert("auth_token".to_owned(), t);
        }
        Ok(GuardianUpdate { secrets, echo, audit })
    }
}

/// The built Twilio provider.
pub struct TwilioProvider {
    config: Config,
    http: reqwest::Client,
    base_url: String,
    public_url: String,
}

/// Twilio's message and call statuses as receipt states.
fn receipt_state(status: Option<&str>) -> ReceiptState {
    match status {
        Some("delivered" | "read" | "completed") => ReceiptState::Delivered,
        Some("undelivered" | "failed" | "busy" | "no-answer" | "canceled") => ReceiptState::Failed,
        _ => ReceiptState::InProgress,
    }
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

#[async_trait]
impl Provider for TwilioProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn send(&self, msg: &Message) -> Result<Receipt, SendError> {
        let problems = self.config.problems(&[msg.channel]);
        let (true, Some(sid), Some(token)) = (problems.is_empty(), &self.config.sid, &self.config.token) else {
            return Err(not_ready(&problems));
        };
        let c = &self.config;
        let voice = msg.channel == Channel::Voice;
        let mut form: Vec<(&str, String)> = vec![("To", msg.to.e164().to_owned())];
        let resource = if voice {
            let twiml = twiml(&msg.text, &msg.locale);
            let n = twiml.chars().count();
            if n > MAX_TWIML {
                return Err(SendError::fatal(format!(
                    "the voice message is too long for Twilio ({n} characters of TwiML, at most {MAX_TWIML}); shorten the template"
                )));
            }
            form.push(("From", msg.from.clone().or_else(|| c.from.clone()).unwrap_or_default()));
            form.push(("Twiml", twiml));
            "Calls.json"
        } else {
            // A template's own sender wins over the account's Messaging Service or From.
            match (&msg.from, &c.messaging_service_sid) {
                (Some(f), _) => form.push(("From", f.clone())),
                (None, Some(mg)) => form.push(("MessagingServiceSid", mg.clone())),
                (None, None) => form.push(("From", c.from.clone().unwrap_or_default())),
            }
            form.push(("Body", msg.text.clone()));
            "Messages.json"
        };
        form.push(("StatusCallback", callback_url(&self.public_url, NAME, &msg.id)));
        let url = format!("{}/2010-04-01/Accounts/{sid}/{resource}", self.base_url);
        let resp = self
            .http
            .post(&url)
            .basic_auth(sid, Some(token.as_str()))
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                return Err(crate::transport::failed_request("Twilio", e));
            }
        };
        let status = resp.status().as_u16();
        if resp.status().is_success() {
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            return Ok(Receipt { provider: NAME, details: json!({"sid": body["sid"], "status": body["status"]}) });
        }
        let details = parse_error(status, &crate::transport::body_excerpt(resp, ERROR_BODY_BYTES).await);
        let code = details["code"].as_i64();
        let what = if voice { "call" } else { "message" };
        let mut message = format!("Twilio refused the {what} (HTTP {status})");
        if let Some(code) = code {
            message.push_str(&format!(", code {code}"));
        }
        if let Some(m) = details["message"].as_str() {
            message.push_str(&format!(": {m}"));
        }
        if let Some(h) = code.and_then(code_hint) {
            message.push_str(&format!(" ({h})"));
        }
        Err(SendError { retryable: is_retryable(status, code), message, details })
    }

    /// A status callback: `X-Twilio-Signature` checked first (over [`Callback::url`] and every posted parameter,
    /// with the auth token), nothing read before. The receipt is `{provider, status, error_code, sid}` plus
    /// `call_duration` and `error_message` when Twilio sends them; the hint explains a known error code.
    fn parse_callback(&self, cb: &Callback<'_>) -> Result<CallbackOutcome, CallbackError> {
        let job = cb.message_id;
        let Some(given) = cb.header("x-twilio-signature") else {
            tracing::warn!(%job, "a Twilio callback without X-Twilio-Signature was refused");
            return Err(CallbackError::Unauthenticated);
        };
        let params: Vec<(String, String)> =
            serde_urlencoded::from_bytes(cb.body).map_err(|_| CallbackError::Unauthenticated)?;
        let Some(token) = &self.config.token else {
            tracing::warn!(%job, "a Twilio callback arrived but no auth token is configured to verify it");
            return Err(CallbackError::Unauthenticated);
        };
        if !verify(token, cb.url, &params, given) {
            tracing::warn!(%job, "a Twilio callback with a wrong X-Twilio-Signature was refused");
            return Err(CallbackError::Unauthenticated);
        }
        let status = param(&params, "MessageStatus")
            .or_else(|| param(&params, "CallStatus"))
            .or_else(|| param(&params, "SmsStatus"));
        let error_code = param(&params, "ErrorCode").map(|c| c.parse::<i64>().map_or_else(|_| json!(c), |n| json!(n)));
        let sid =
            param(&params, "MessageSid").or_else(|| param(&params, "CallSid")).or_else(|| param(&params, "SmsSid"));
        let mut receipt = json!({
            "provider": NAME,
            "status": status,
            "error_code": error_code.unwrap_or(Value::Null),
            "sid": sid,
        });
        if let Some(d) = param(&params, "CallDuration") {
            receipt["call_duration"] = json!(d);
        }
        if let Some(m) = param(&params, "ErrorMessage") {
            receipt["error_message"] = json!(m);
        }
        let hint = receipt["error_code"].as_i64().and_then(code_hint);
        Ok(CallbackOutcome::new(receipt, receipt_state(status), hint))
    }
}
