//! Telesign (`telesign`): SMS through `POST {base}/v1/messaging` and voice (text to speech) through `POST
//! {base}/v1/voice`, both form-encoded, with signed delivery receipts pushed to the `callback_url` each send names.
//!
//! Settings: `customer_id`; secret `api_key` (base64, as Telesign issues it); `sender_id` (optional; a template's
//! own `from` wins; SMS only); `auth_method`: `basic` (the default: HTTP Basic `customer_id:api_key`) or `hmac`
//! (Telesign's digest: `Date` (RFC 1123, from the clock), `x-ts-auth-method: HMAC-SHA256`, `x-ts-nonce` (random,
//! UUID-shaped) and `Authorization: TSA {customer_id}:{base64(HMAC-SHA256(base64decode(api_key),
//! string_to_sign))}`, see [`wire::string_to_sign`]). Another `auth_method` is refused by the Guardian `PUT` (and
//! the UPE configuration) and reported by `check`. The endpoint is `https://rest-api.telesign.com` unless the
//! server configuration overrides it (`[providers.telesign] base_url`, e.g. `https://rest-ww.telesign.com` for
//! enterprise accounts, or a test fake); an API caller cannot change it.
//!
//! What is sent: SMS `phone_number` (digits, no `+`), `message`, `message_type=OTP`, `sender_id` when there is one,
//! `callback_url` (`<public_url>callbacks/telesign/status/<message id>`) and `external_id` (the message id). Voice
//! `phone_number`, `message` (the script said twice, at most 1600 characters, else a final failure before any
//! request), `message_type=OTP`, `voice` (`f-` + the documented language tag picked from the message's locale,
//! default `f-en-US`) and `callback_url`.
//!
//! Answers: HTTP 200 with a `reference_id` and status 290 (SMS in progress) or 103 (call in progress) is a
//! success; the receipt is `{reference_id, status: {code, description}}`. Errors
//! (`{"status": {code, description}, "errors": [{code, description}]}`) are classified by Telesign's codes first:
//! 11000 / 11001 (invalid number / country), 11013 (invalid sender), other 11xxx and 12xxx (invalid or missing
//! parameter), -30000 / -30001 / -30004 / -30005 / -30006 / -30015 (customer id, suspended account, signature, API
//! key), -10033 (number not verified for a trial account) and -20002 (product not enabled) are final; -30010 (the
//! `Date` is out of range) and -30012 (nonce reused) are retried. Without such a code, HTTP 429 and 5xx are retried
//! and other refusals are final; a 200 that is not an accepted send is a final failure (retried when it is not a
//! send result at all). Timeouts and connection failures are retried. The failure's details are `{code, message,
//! status}` (Telesign's code and description, the HTTP status).
//!
//! Receipts ([`Provider::parse_callback`]): Telesign POSTs JSON `{reference_id, status: {code, description,
//! updated_on}, …}` with `Authorization` (and `X-TS-Authorization`) `TSA {customer_id}:{base64(HMAC-SHA256(
//! base64decode(api_key), raw body))}`; a missing or wrong signature is refused, as is a signed receipt whose
//! `external_id` names another message. Status codes become `delivered` (200), `delivered_to_gateway` (203),
//! `in_progress` (290), `answered` (100), `call_in_progress` (103), and failures (with `error_code` and a hint):
//! `failed` (106, 207, 210, 211, 220, 221, 222), `blocked` (129, 130, 229, 230), `not_answered` (101), `busy` (107).
//!
//! Not supported: a caller id for voice calls, an account-level Transaction Callback Service URL (each send names
//! its own), the insufficient-balance code (not documented well enough to classify: it falls back to the HTTP
//! status), replay protection of receipts beyond the `external_id` check (Telesign signs only the body).
use std::sync::Arc;

use async_trait::async_trait;
use callsign_domain::{Channel, Clock, RandomSource};
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::callback::{Callback, CallbackError, CallbackOutcome, ReceiptState, callback_url};
use crate::declared::{Declared, declared_kind};
use crate::kind::{
    BuildError, Deps, FieldKind, FieldProblem, FieldSpec, GuardianUpdate, ProviderKind, ProviderSettings, Required,
};
use crate::message::Message;
use crate::provider::{Capabilities, Provider, Receipt, SendError};
use crate::transport::{body_excerpt, failed_request, status_is_retryable};

pub mod wire;

/// The Guardian name (and the callback path segment).
pub const NAME: &str = "telesign";
/// Telesign's API (self-service accounts), unless [`Deps::base_urls`] has an override under [`NAME`].
pub const DEFAULT_BASE_URL: &str = "https://rest-api.telesign.com";
/// The SMS resource.
pub const SMS_RESOURCE: &str = "/v1/messaging";
/// The voice resource.
pub const VOICE_RESOURCE: &str = "/v1/voice";
const FORM: &str = "application/x-www-form-urlencoded";
const ERROR_BODY_BYTES: usize = 4096;

const CAPABILITIES: Capabilities =
    Capabilities { channels: &[Channel::Sms, Channel::Voice], receipts: true, provider_codes: false };

/// The declared settings.
pub const FIELDS: &[FieldSpec] = &[
    FieldSpec {
        name: "customer_id",
        label: "Customer ID",
        kind: FieldKind::Text,
        min_len: 1,
        max_len: 100,
        required: Required::Always,
        help: "Your Telesign customer ID (portal, account settings)",
    },
    FieldSpec {
        name: "api_key",
        label: "API key",
        kind: FieldKind::Secret,
        min_len: 1,
        max_len: 1000,
        required: Required::Always,
        help: "The base64 API key Telesign issued. Stored sealed; shown masked. Also checks the delivery receipts",
    },
    FieldSpec {
        name: "sender_id",
        label: "Sender ID",
        kind: FieldKind::Phone,
        min_len: 0,
        max_len: 64,
        required: Required::Never,
        help: "Optional SMS sender (a number or an alphanumeric id Telesign allows for your account); a template's from wins",
    },
    FieldSpec {
        name: "auth_method",
        label: "Authentication",
        kind: FieldKind::Text,
        min_len: 0,
        max_len: 16,
        required: Required::Never,
        help: "basic (the default: HTTP Basic) or hmac (Telesign's signed digest)",
    },
];

const DECLARED: Declared = Declared { name: NAME, label: "Telesign", fields: FIELDS, secret_fields: &["api_key"] };

/// [`Declared`] plus the one rule it cannot declare: `auth_method` is `basic` or `hmac`. `declared_kind!` calls
/// `apply_guardian_update` and `apply_upe_configuration` on what it is given; these inherent methods are found
/// before the [`Declared`] ones behind `Deref`, so they check `auth_method` and then hand over, and every other
/// method of the macro reaches [`Declared`] unchanged (no copy of the macro's dozen methods).
struct Settings(Declared);

impl std::ops::Deref for Settings {
    type Target = Declared;
    fn deref(&self) -> &Declared {
        &self.0
    }
}

impl Settings {
    fn apply_guardian_update(
        &self,
        body: &Value,
        values: &mut Map<String, Value>,
    ) -> Result<GuardianUpdate, FieldProblem> {
        if let Some(Value::String(s)) = body.get("auth_method") {
            Auth::parse(Some(s), "auth_method")?;
        }
        self.0.apply_guardian_update(body, values)
    }

    fn apply_upe_configuration(
        &self,
        conf: &Map<String, Value>,
        values: &mut Map<String, Value>,
    ) -> Result<(), FieldProblem> {
        if let Some(Value::String(s)) = conf.get("auth_method") {
            Auth::parse(Some(s), "configuration.auth_method")?;
        }
        self.0.apply_upe_configuration(conf, values)
    }
}

const SETTINGS: Settings = Settings(DECLARED);

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    Basic,
    Hmac,
}

impl Auth {
    /// `basic` (or unset / blank) or `hmac`; anything else is a problem on `prop`.
    fn parse(value: Option<&str>, prop: &str) -> Result<Auth, FieldProblem> {
        match value.map(str::trim).unwrap_or("") {
            "" | "basic" => Ok(Auth::Basic),
            "hmac" => Ok(Auth::Hmac),
            _ => Err(FieldProblem::invalid(prop, "Expected basic or hmac")),
        }
    }
}

/// What a send lacks: the declared problems, then an unknown `auth_method`, then (for `hmac`, which signs with
/// it) an API key that is not base64.
fn problems(settings: &ProviderSettings, channels: &[Channel]) -> Vec<FieldProblem> {
    let mut out = DECLARED.problems(settings, channels);
    match Auth::parse(settings.values.get("auth_method").and_then(Value::as_str), "auth_method") {
        Err(p) => out.push(p),
        Ok(Auth::Hmac) => {
            if let Some(k) = settings.secret("api_key")
                && wire::decode_api_key(k).is_none()
            {
                out.push(FieldProblem::invalid("api_key", "Expected the base64 API key Telesign issued"));
            }
        }
        Ok(Auth::Basic) => {}
    }
    out
}

/// Telesign's kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct TelesignKind;

impl ProviderKind for TelesignKind {
    declared_kind!(SETTINGS);

    fn description(&self) -> &'static str {
        "SMS and voice calls through Telesign's REST API, with signed delivery receipts."
    }
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }
    /// The declared settings, a known `auth_method`, and a base64 `api_key` when it signs (`hmac`).
    fn check(&self, settings: &ProviderSettings, channels: &[Channel]) -> Result<(), Vec<FieldProblem>> {
        let p = problems(settings, channels);
        if p.is_empty() { Ok(()) } else { Err(p) }
    }
    fn build(&self, settings: ProviderSettings, deps: &Deps) -> Result<Arc<dyn Provider>, BuildError> {
        let api_key = settings.secret("api_key").cloned();
        Ok(Arc::new(TelesignProvider {
            customer_id: settings.text("customer_id"),
            hmac_key: api_key.as_deref().and_then(|k| wire::decode_api_key(k)),
            api_key,
            sender_id: settings.text("sender_id"),
            auth: Auth::parse(settings.text("auth_method").as_deref(), "auth_method").unwrap_or(Auth::Basic),
            problems: problems(&settings, &[Channel::Sms, Channel::Voice]),
            http: deps.http.clone(),
            base_url: deps.base_url(NAME, DEFAULT_BASE_URL),
            public_url: deps.public_url.clone(),
            clock: deps.clock.clone(),
            rng: deps.rng.clone(),
        }))
    }
}

/// The built Telesign provider.
pub struct TelesignProvider {
    customer_id: Option<String>,
    api_key: Option<Zeroizing<String>>,
    /// The API key decoded: the HMAC key of digest requests and of receipts.
    hmac_key: Option<Zeroizing<Vec<u8>>>,
    sender_id: Option<String>,
    auth: Auth,
    problems: Vec<FieldProblem>,
    http: reqwest::Client,
    base_url: String,
    public_url: String,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn RandomSource>,
}

/// The codes of an answer with their descriptions: each of `errors[]`, then `status`.
fn answer_codes(answer: &Value) -> Vec<(i64, Option<String>)> {
    let entry = |v: &Value| v["code"].as_i64().map(|c| (c, v["description"].as_str().map(str::to_owned)));
    let mut out: Vec<(i64, Option<String>)> =
        answer["errors"].as_array().map(|e| e.iter().filter_map(entry).collect()).unwrap_or_default();
    out.extend(entry(&answer["status"]));
    out
}

/// The failure for a refused send: retried when a code says so (or, without a code that classifies it, when the
/// HTTP status does); `details` name the deciding code (else the first) and its description.
fn refusal(http: u16, answer: &Value, what: &str) -> SendError {
    let codes = answer_codes(answer);
    let known = codes.iter().find(|(c, _)| wire::code_is_final(*c) || wire::code_is_retryable(*c));
    let retryable = match known {
        Some((c, _)) => wire::code_is_retryable(*c),
        None => status_is_retryable(http),
    };
    let (code, description) = known.or(codes.first()).cloned().map_or((None, None), |(c, d)| (Some(c), d));
    let mut message = format!("Telesign refused the {what} (HTTP {http})");
    if let Some(c) = code {
        message.push_str(&format!(", code {c}"));
    }
    if let Some(d) = &description {
        message.push_str(&format!(": {d}"));
    }
    match code.and_then(wire::error_hint) {
        Some(h) => message.push_str(&format!(" ({h})")),
        None if matches!(http, 401 | 403) => message.push_str(" (check customer_id and api_key)"),
        None => {}
    }
    SendError { retryable, message, details: json!({"code": code, "message": description, "status": http}) }
}

#[async_trait]
impl Provider for TelesignProvider {
    fn name(&self) -> &'static str {
        NAME
    }
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn send(&self, msg: &Message) -> Result<Receipt, SendError> {
        let (true, Some(customer_id), Some(api_key)) = (self.problems.is_empty(), &self.customer_id, &self.api_key)
        else {
            return Err(DECLARED.not_ready(&self.problems));
        };
        let voice = msg.channel == Channel::Voice;
        let what = if voice { "call" } else { "message" };
        let mut form: Vec<(&str, String)> = vec![("phone_number", msg.to.e164().trim_start_matches('+').to_owned())];
        let resource = if voice {
            let script = crate::voice::spoken_twice(&msg.text);
            let n = script.chars().count();
            if n > wire::MAX_VOICE_CHARS {
                return Err(SendError::fatal(format!(
                    "the voice message is too long for Telesign ({n} characters said twice, at most {}); shorten the template",
                    wire::MAX_VOICE_CHARS
                )));
            }
            form.push(("message", script));
            form.push(("message_type", "OTP".into()));
            form.push(("voice", wire::voice(&msg.locale)));
            form.push(("callback_url", callback_url(&self.public_url, NAME, &msg.id)));
            VOICE_RESOURCE
        } else {
            form.push(("message", msg.text.clone()));
            form.push(("message_type", "OTP".into()));
            // A template's own sender wins over the configured one.
            if let Some(s) = msg.from.clone().or_else(|| self.sender_id.clone()) {
                form.push(("sender_id", s));
            }
            form.push(("callback_url", callback_url(&self.public_url, NAME, &msg.id)));
            form.push(("external_id", msg.id.clone()));
            SMS_RESOURCE
        };
        // Encoded here, so the digest signs exactly the bytes sent.
        let body = serde_urlencoded::to_string(&form)
            .map_err(|e| SendError::fatal(format!("the Telesign request could not be encoded: {e}")))?;
        let mut req = self
            .http
            .post(format!("{}{resource}", self.base_url))
            .header(reqwest::header::CONTENT_TYPE, FORM)
            .header(reqwest::header::ACCEPT, "application/json");
        req = match (self.auth, &self.hmac_key) {
            (Auth::Hmac, Some(key)) => {
                let date = wire::rfc1123(self.clock.now());
                let nonce = wire::nonce(self.rng.as_ref());
                let to_sign = wire::string_to_sign("POST", FORM, &date, &nonce, &body, resource);
                req.header(reqwest::header::DATE, date)
                    .header("x-ts-auth-method", wire::AUTH_METHOD)
                    .header("x-ts-nonce", nonce)
                    .header(reqwest::header::AUTHORIZATION, wire::tsa_authorization(customer_id, key, &to_sign))
            }
            _ => req.basic_auth(customer_id, Some(api_key.as_str())),
        };
        let resp = req.body(body).send().await.map_err(|e| failed_request("Telesign", e))?;
        let status = resp.status().as_u16();
        let text = body_excerpt(resp, ERROR_BODY_BYTES).await;
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            return Err(refusal(status, &answer, what));
        }
        let errors = answer["errors"].as_array().is_some_and(|e| !e.is_empty());
        let code = answer["status"]["code"].as_i64();
        if let (Some(r), Some(c)) = (answer["reference_id"].as_str(), code)
            && wire::status_is_accepted(c)
            && !errors
        {
            return Ok(Receipt {
                provider: NAME,
                details: json!({
                    "reference_id": r,
                    "status": {"code": c, "description": answer["status"]["description"]},
                }),
            });
        }
        if errors || code.is_some_and(|c| !wire::status_is_accepted(c)) {
            return Err(refusal(status, &answer, what));
        }
        Err(SendError::retryable(format!("Telesign answered HTTP {status} with a body that is not a send result"))
            .with_details(json!({"code": code, "message": null, "status": status})))
    }

    /// A delivery receipt: the signature (`Authorization` or `X-TS-Authorization`, over the raw body, with the API
    /// key) is checked first, nothing read before; then the JSON is read into `{provider, status, error_code, sid,
    /// status_code, description, updated_on}`.
    fn parse_callback(&self, cb: &Callback<'_>) -> Result<CallbackOutcome, CallbackError> {
        let job = cb.message_id;
        let headers: Vec<&str> = ["authorization", "x-ts-authorization"].iter().filter_map(|h| cb.header(h)).collect();
        if headers.is_empty() {
            tracing::warn!(%job, "a Telesign callback without Authorization was refused");
            return Err(CallbackError::Unauthenticated);
        }
        let (Some(customer_id), Some(key)) = (&self.customer_id, &self.hmac_key) else {
            tracing::warn!(%job, "a Telesign callback arrived but no customer_id and base64 api_key are configured to verify it");
            return Err(CallbackError::Unauthenticated);
        };
        if !headers.iter().any(|h| wire::callback_signed(h, customer_id, key, cb.body)) {
            tracing::warn!(%job, "a Telesign callback with a wrong signature was refused");
            return Err(CallbackError::Unauthenticated);
        }
        let v: Value = serde_json::from_slice(cb.body).map_err(|_| CallbackError::Unauthenticated)?;
        if let Some(ext) = v["external_id"].as_str()
            && ext != job
        {
            tracing::warn!(%job, "a signed Telesign callback for another message was refused");
            return Err(CallbackError::Unauthenticated);
        }
        let code = v["status"]["code"].as_i64();
        let (status, failed) = code.map_or(("unknown", false), wire::receipt_status);
        let receipt = json!({
            "provider": NAME,
            "status": status,
            "error_code": if failed { json!(code) } else { Value::Null },
            "sid": v["reference_id"],
            "status_code": code,
            "description": v["status"]["description"],
            "updated_on": v["status"]["updated_on"],
        });
        let hint = code.filter(|_| failed).and_then(wire::receipt_hint);
        let state = match (status, failed) {
            (_, true) => ReceiptState::Failed,
            ("delivered" | "answered", _) => ReceiptState::Delivered,
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
    fn auth_methods_are_basic_or_hmac() {
        assert_eq!(Auth::parse(None, "auth_method"), Ok(Auth::Basic));
        assert_eq!(Auth::parse(Some(" "), "auth_method"), Ok(Auth::Basic));
        assert_eq!(Auth::parse(Some("basic"), "auth_method"), Ok(Auth::Basic));
        assert_eq!(Auth::parse(Some("hmac"), "auth_method"), Ok(Auth::Hmac));
        let p = Auth::parse(Some("digest"), "configuration.auth_method").unwrap_err();
        assert_eq!(
            p.api_message(),
            "Payload validation error: 'Expected basic or hmac' on property configuration.auth_method."
        );
    }

    #[test]
    fn refusals_are_classified_by_code_before_status() {
        let body = |code: i64| json!({"status": {"code": 500, "description": "Transaction not attempted"}, "errors": [{"code": code, "description": "x"}]});
        // -10033 comes with HTTP 500, and is still final.
        let e = refusal(500, &body(-10033), "message");
        assert!(!e.retryable && e.details["code"] == -10033, "{e:?}");
        assert!(e.message.contains("trial account"), "{}", e.message);
        assert!(refusal(401, &body(-30010), "message").retryable);
        assert!(refusal(503, &json!({}), "message").retryable);
        assert!(!refusal(400, &json!({}), "message").retryable);
        let e = refusal(401, &json!({}), "message");
        assert!(e.message.ends_with("(check customer_id and api_key)"), "{}", e.message);
        // A status code alone (the 400 answers) is read too.
        let e = refusal(
            400,
            &json!({"status": {"code": 11000, "description": "Invalid value for parameter phone_number."}}),
            "message",
        );
        assert_eq!(
            (e.retryable, &e.details["code"], e.details["message"].as_str()),
            (false, &json!(11000), Some("Invalid value for parameter phone_number."))
        );
    }
}
