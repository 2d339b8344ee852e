//! `/api/v2/guardian/factors/**` and `/api/v2/guardian/policies`: the Guardian (MFA) configuration, all kept in
//! the one settings document [`GuardianConfig`] (reference §3.1–§3.8, §3.12).
//!
//! Deviations from Auth0, on purpose:
//! - the Twilio auth token is sealed at rest and never answered in clear: reads and the PUT echo show it masked
//!   (`****` and its last four characters, or only `****` when it is shorter than 12 characters);
//! - factors Callsign does not implement are listed, and can be disabled, but not enabled;
//! - the legacy `GET /guardian/factors/sms/templates` always answers 200 with the templates (never 204);
//! - the `confidence-score` policy (adaptive MFA) is refused with a 400.
use axum::extract::State;
use axum::routing::{get, put};
use axum::{Json, Router};
use callsign_store::{SealedSecret, StoreError};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};

use super::Path;
use super::{Mgmt, ReadGuardianFactors, ReadMfaPolicies, UpdateGuardianFactors, UpdateMfaPolicies};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Body, RequestMeta};
use crate::identity::events::{self, EventCtx};
use crate::mfa::config::{self, GuardianConfig};
use crate::mfa::templates;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/guardian/factors", get(list_factors))
        .route("/guardian/factors/{name}", put(set_factor))
        .route("/guardian/factors/phone/message-types", get(get_message_types).put(set_message_types))
        .route("/guardian/factors/phone/selected-provider", get(get_provider).put(set_provider))
        .route("/guardian/factors/phone/providers/twilio", get(get_twilio).put(set_twilio))
        .route("/guardian/factors/phone/templates", get(get_templates).put(set_templates))
        // The deprecated `sms` twins (reference §3.8) behave exactly like the `phone` endpoints.
        .route("/guardian/factors/sms/providers/twilio", get(get_twilio).put(set_twilio))
        .route("/guardian/factors/sms/selected-provider", get(get_provider).put(set_provider))
        .route("/guardian/factors/sms/templates", get(get_templates).put(set_templates))
        .route("/guardian/policies", get(get_policies).put(set_policies))
}

/// The channels of the phone factor, in the order they are stored.
pub const MESSAGE_TYPES: &[&str] = &["sms", "voice"];

fn invalid(prop: &str, msg: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("Payload validation error: '{msg}' on property {prop}."))
}

fn missing(prop: &str) -> ApiError {
    ApiError::bad_request(format!("Payload validation error: 'Missing required property: {prop}'."))
}

/// Voice calls through Twilio need a From number (a Messaging Service sends SMS only): a configuration with
/// Twilio selected, voice on and no `from` is refused, whichever of the three settings is being changed.
pub fn check_voice_from(cfg: &GuardianConfig) -> Result<(), ApiError> {
    let no_from = cfg.twilio.from.as_deref().is_none_or(|f| f.trim().is_empty());
    if cfg.provider == "twilio" && cfg.channel_enabled("voice") && no_from {
        return Err(ApiError::bad_request(
            "Voice requires a From number (the Twilio provider's `from`), even when SMS uses a Messaging Service; \
             set `from` with PUT /api/v2/guardian/factors/phone/providers/twilio or turn voice off in the message types.",
        ));
    }
    Ok(())
}

/// A failed configuration write: a 409 when another request changed the configuration meanwhile (nothing was
/// saved; retrying applies the change to the new configuration), otherwise an opaque 500.
pub(super) fn save_error(e: crate::BoxError) -> ApiError {
    if e.is::<config::ConfigConflict>() {
        ApiError::conflict(
            "The Guardian configuration changed while this request was being processed; nothing was saved. Retry the request.",
        )
        .code("concurrent_update")
    } else {
        ApiError::internal(e)
    }
}

pub(super) async fn load(app: &AppState) -> Result<GuardianConfig, ApiError> {
    GuardianConfig::load(app).await.map_err(ApiError::internal)
}

pub(super) async fn save(app: &AppState, cfg: &mut GuardianConfig) -> Result<(), ApiError> {
    cfg.save(app).await.map_err(save_error)
}

/// Record `gd_tenant_update` for a successful change. `details` names what changed, never a secret.
pub(super) async fn changed(app: &AppState, meta: &RequestMeta, client_id: &str, details: Value) {
    events::record(
        app,
        "gd_tenant_update",
        meta,
        EventCtx { client_id: Some(client_id.to_owned()), details, ..Default::default() },
    )
    .await;
}

// ------------------------------------------------------------------------------------------------------------
// Factors
// ------------------------------------------------------------------------------------------------------------

pub fn render_factors(cfg: &GuardianConfig) -> Value {
    Value::Array(
        config::FACTORS
            .iter()
            .map(|n| json!({"name": n, "enabled": cfg.factor_enabled(n), "trial_expired": false}))
            .collect(),
    )
}

async fn list_factors(_: Mgmt<ReadGuardianFactors>, State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(render_factors(&load(&app).await?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FactorBody {
    enabled: Option<bool>,
}

/// Check a factor toggle; returns the new state.
pub fn check_factor(name: &str, enabled: Option<bool>) -> Result<bool, ApiError> {
    if !config::FACTORS.contains(&name) {
        return Err(ApiError::not_found(format!(
            "The factor `{name}` does not exist; the factors are {}.",
            config::FACTORS.join(", ")
        ))
        .code("inexistent_factor"));
    }
    let enabled = enabled.ok_or_else(|| missing("enabled"))?;
    if enabled && !config::SUPPORTED_FACTORS.contains(&name) {
        return Err(ApiError::bad_request(format!(
            "Callsign does not support the `{name}` factor yet, so it cannot be enabled; the supported factors are {}.",
            config::SUPPORTED_FACTORS.join(", ")
        ))
        .code("unsupported_factor"));
    }
    Ok(enabled)
}

async fn set_factor(
    m: Mgmt<UpdateGuardianFactors>,
    State(app): State<AppState>,
    Path(name): Path<String>,
    meta: RequestMeta,
    Body(b): Body<FactorBody>,
) -> Result<Json<Value>, ApiError> {
    let enabled = check_factor(&name, b.enabled)?;
    let mut cfg = load(&app).await?;
    cfg.factors.insert(name.clone(), enabled);
    save(&app, &mut cfg).await?;
    changed(&app, &meta, &m.caller.client_id, json!({"factor": name, "enabled": enabled})).await;
    Ok(Json(json!({"enabled": enabled})))
}

// ------------------------------------------------------------------------------------------------------------
// Message types
// ------------------------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageTypesBody {
    message_types: Option<Vec<String>>,
}

/// `["sms"]`, `["voice"]` or both (either order, repeats ignored), normalised to `sms`, `voice` order.
pub fn normalize_message_types(given: &[String]) -> Result<Vec<String>, ApiError> {
    let allowed = || r#"message_types must be ["sms"], ["voice"] or ["sms","voice"]"#;
    if given.is_empty() {
        return Err(invalid("message_types", allowed()));
    }
    if let Some(bad) = given.iter().find(|t| !MESSAGE_TYPES.contains(&t.as_str())) {
        return Err(invalid("message_types", format!("No enum match for: \"{bad}\"; {}", allowed())));
    }
    Ok(MESSAGE_TYPES.iter().filter(|t| given.iter().any(|g| g == *t)).map(|t| (*t).to_owned()).collect())
}

async fn get_message_types(_: Mgmt<ReadGuardianFactors>, State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"message_types": load(&app).await?.message_types})))
}

async fn set_message_types(
    m: Mgmt<UpdateGuardianFactors>,
    State(app): State<AppState>,
    meta: RequestMeta,
    Body(b): Body<MessageTypesBody>,
) -> Result<Json<Value>, ApiError> {
    let types = normalize_message_types(&b.message_types.ok_or_else(|| missing("message_types"))?)?;
    let mut cfg = load(&app).await?;
    cfg.message_types = types.clone();
    check_voice_from(&cfg)?;
    save(&app, &mut cfg).await?;
    changed(&app, &meta, &m.caller.client_id, json!({"message_types": types})).await;
    Ok(Json(json!({"message_types": types})))
}

// ------------------------------------------------------------------------------------------------------------
// Selected provider
// ------------------------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderBody {
    provider: Option<String>,
}

pub fn check_provider(p: Option<String>) -> Result<String, ApiError> {
    let p = p.ok_or_else(|| missing("provider"))?;
    if !config::PROVIDERS.contains(&p.as_str()) {
        return Err(invalid(
            "provider",
            format!("No enum match for: \"{p}\"; expected one of {}", config::PROVIDERS.join(", ")),
        ));
    }
    Ok(p)
}

async fn get_provider(_: Mgmt<ReadGuardianFactors>, State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"provider": load(&app).await?.provider})))
}

async fn set_provider(
    m: Mgmt<UpdateGuardianFactors>,
    State(app): State<AppState>,
    meta: RequestMeta,
    Body(b): Body<ProviderBody>,
) -> Result<Json<Value>, ApiError> {
    let provider = check_provider(b.provider)?;
    let mut cfg = load(&app).await?;
    cfg.provider = provider.clone();
    check_voice_from(&cfg)?;
    save(&app, &mut cfg).await?;
    changed(&app, &meta, &m.caller.client_id, json!({"provider": provider})).await;
    Ok(Json(json!({"provider": provider})))
}

// ------------------------------------------------------------------------------------------------------------
// Twilio
// ------------------------------------------------------------------------------------------------------------

/// Absent → `None`, JSON null → `Some(None)`, a value → `Some(Some(v))`.
fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct TwilioBody {
    #[serde(deserialize_with = "nullable")]
    from: Option<Option<String>>,
    #[serde(deserialize_with = "nullable")]
    messaging_service_sid: Option<Option<String>>,
    #[serde(deserialize_with = "nullable")]
    auth_token: Option<Option<String>>,
    #[serde(deserialize_with = "nullable")]
    sid: Option<Option<String>>,
}

/// Length limits of reference §3.5.
fn check_len(prop: &str, v: &Option<Option<String>>, min: usize, max: usize) -> Result<(), ApiError> {
    if let Some(Some(s)) = v {
        let n = s.chars().count();
        if n < min {
            return Err(invalid(prop, format!("String is too short ({min} chars min)")));
        }
        if n > max {
            return Err(invalid(prop, format!("String is too long ({max} chars max)")));
        }
        if s.chars().any(char::is_control) {
            return Err(invalid(prop, "String contains control characters"));
        }
    }
    Ok(())
}

/// How a stored auth token is shown: `****` plus its last four characters, only `****` when it is too short to
/// give away four characters safely.
pub fn mask_token(token: &str) -> String {
    let n = token.chars().count();
    if n < 12 {
        return "****".to_owned();
    }
    let tail: String = token.chars().skip(n - 4).collect();
    format!("****{tail}")
}

/// The masked stored token: null when none is stored, `****` when it cannot be opened.
async fn masked_stored_token(app: &AppState, cfg: &GuardianConfig) -> Result<Value, ApiError> {
    let Some(name) = cfg.twilio.token_secret() else { return Ok(Value::Null) };
    let Some(secret) = app.store.get_secret(&name).await? else {
        return Ok(Value::Null);
    };
    match app.keyring.open(&name, &secret.sealed) {
        Ok(plain) => Ok(json!(mask_token(&String::from_utf8_lossy(&plain)))),
        Err(e) => {
            tracing::warn!(error = %e, "the stored Twilio auth token cannot be opened");
            Ok(json!("****"))
        }
    }
}

/// Save `cfg`, changing the Twilio auth token with it: `Some(Some(t))` sets `t`, `Some(None)` clears it, `None`
/// keeps it. Token and settings change together or not at all: a new token is sealed under a fresh secret name
/// first, the configuration (compare-and-set) then points to it, and only after that is the previous secret
/// deleted. When the save fails (409 `concurrent_update`), the new secret is deleted and the old token stays.
pub async fn save_with_token(
    app: &AppState,
    cfg: &mut GuardianConfig,
    token: Option<Option<&str>>,
) -> Result<(), ApiError> {
    let Some(token) = token else { return save(app, cfg).await };
    let old = cfg
        .loaded
        .as_ref()
        .and_then(|v| serde_json::from_value::<config::TwilioSettings>(v.get("twilio")?.clone()).ok())
        .and_then(|t| t.token_secret());
    let mut fresh = None;
    match token {
        Some(t) => {
            let name = format!(
                "{}/{}",
                config::TWILIO_TOKEN_SECRET,
                callsign_domain::rng::from_alphabet(app.rng.as_ref(), callsign_domain::rng::ALNUM, 16)
            );
            let sealed = app.keyring.seal(app.rng.as_ref(), &name, t.as_bytes()).map_err(ApiError::internal)?;
            app.store.put_secret(&SealedSecret { name: name.clone(), sealed, updated_at: app.clock.now() }).await?;
            cfg.twilio.auth_token_set = true;
            cfg.twilio.auth_token_secret = Some(name.clone());
            fresh = Some(name);
        }
        None => {
            cfg.twilio.auth_token_set = false;
            cfg.twilio.auth_token_secret = None;
        }
    }
    if let Err(e) = save(app, cfg).await {
        if let Some(name) = &fresh {
            forget_secret(app, name).await;
        }
        return Err(e);
    }
    if let Some(old) = old.filter(|o| Some(o) != fresh.as_ref()) {
        forget_secret(app, &old).await;
    }
    Ok(())
}

/// Delete a sealed secret nothing points to any more (a failure only leaves an unused row behind).
async fn forget_secret(app: &AppState, name: &str) {
    match app.store.delete_secret(name).await {
        Ok(()) | Err(StoreError::NotFound) => {}
        Err(e) => tracing::warn!(secret = name, error = %e, "could not delete an unused secret"),
    }
}

async fn get_twilio(_: Mgmt<ReadGuardianFactors>, State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let cfg = load(&app).await?;
    let token = masked_stored_token(&app, &cfg).await?;
    let t = &cfg.twilio;
    Ok(Json(json!({
        "from": t.from,
        "messaging_service_sid": t.messaging_service_sid,
        "auth_token": token,
        "sid": t.sid,
    })))
}

async fn set_twilio(
    m: Mgmt<UpdateGuardianFactors>,
    State(app): State<AppState>,
    meta: RequestMeta,
    Body(b): Body<TwilioBody>,
) -> Result<Json<Value>, ApiError> {
    check_len("from", &b.from, 0, 64)?;
    check_len("messaging_service_sid", &b.messaging_service_sid, 1, 1000)?;
    check_len("auth_token", &b.auth_token, 1, 1000)?;
    check_len("sid", &b.sid, 1, 1000)?;

    let mut cfg = load(&app).await?;
    let mut echo = Map::new();
    let mut details = Map::new();
    for (key, given, slot) in [
        ("from", b.from, &mut cfg.twilio.from),
        ("messaging_service_sid", b.messaging_service_sid, &mut cfg.twilio.messaging_service_sid),
        ("sid", b.sid, &mut cfg.twilio.sid),
    ] {
        if let Some(v) = given {
            echo.insert(key.to_owned(), json!(v));
            details.insert(key.to_owned(), json!(v));
            *slot = v;
        }
    }
    check_voice_from(&cfg)?;
    save_with_token(&app, &mut cfg, b.auth_token.as_ref().map(Option::as_deref)).await?;
    match &b.auth_token {
        Some(Some(token)) => {
            echo.insert("auth_token".into(), json!(mask_token(token)));
            details.insert("auth_token".into(), json!("set"));
        }
        Some(None) => {
            echo.insert("auth_token".into(), Value::Null);
            details.insert("auth_token".into(), json!("cleared"));
        }
        None => {}
    }
    changed(&app, &meta, &m.caller.client_id, json!({"twilio": details})).await;
    Ok(Json(Value::Object(echo)))
}

// ------------------------------------------------------------------------------------------------------------
// Templates
// ------------------------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplatesBody {
    enrollment_message: Option<String>,
    verification_message: Option<String>,
}

pub fn check_template(field: &str, template: Option<String>) -> Result<String, ApiError> {
    let t = template.ok_or_else(|| missing(field))?;
    templates::validate(&t).map_err(|e| {
        let e = e.trim().trim_end_matches('.');
        ApiError::bad_request(format!("Invalid {field} template: {e}."))
    })?;
    Ok(t)
}

async fn get_templates(_: Mgmt<ReadGuardianFactors>, State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let cfg = load(&app).await?;
    Ok(Json(json!({
        "enrollment_message": cfg.enrollment_message,
        "verification_message": cfg.verification_message,
    })))
}

async fn set_templates(
    m: Mgmt<UpdateGuardianFactors>,
    State(app): State<AppState>,
    meta: RequestMeta,
    Body(b): Body<TemplatesBody>,
) -> Result<Json<Value>, ApiError> {
    let enrollment = check_template("enrollment_message", b.enrollment_message)?;
    let verification = check_template("verification_message", b.verification_message)?;
    let mut cfg = load(&app).await?;
    let mut which = Vec::new();
    if cfg.enrollment_message != enrollment {
        which.push("enrollment_message");
    }
    if cfg.verification_message != verification {
        which.push("verification_message");
    }
    cfg.enrollment_message = enrollment;
    cfg.verification_message = verification;
    save(&app, &mut cfg).await?;
    changed(&app, &meta, &m.caller.client_id, json!({"templates": which})).await;
    Ok(Json(json!({
        "enrollment_message": cfg.enrollment_message,
        "verification_message": cfg.verification_message,
    })))
}

// ------------------------------------------------------------------------------------------------------------
// Policies
// ------------------------------------------------------------------------------------------------------------

/// `[]` (never) or `["all-applications"]` (repeats ignored).
pub fn check_policies(body: &Value) -> Result<Vec<String>, ApiError> {
    let allowed = r#"the policies must be [] or ["all-applications"]"#;
    let Some(items) = body.as_array() else {
        return Err(ApiError::bad_request(format!("Payload validation error: 'Expected an array: {allowed}'.")));
    };
    let mut out: Vec<String> = Vec::new();
    for item in items {
        match item.as_str() {
            Some(p) if config::POLICIES.contains(&p) => {
                if !out.iter().any(|o| o == p) {
                    out.push(p.to_owned());
                }
            }
            Some("confidence-score") => {
                return Err(ApiError::bad_request(format!(
                    "Callsign does not support the `confidence-score` policy (adaptive MFA); {allowed}."
                )));
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "Payload validation error: 'No enum match for: {item}; {allowed}'."
                )));
            }
        }
    }
    Ok(out)
}

async fn get_policies(_: Mgmt<ReadMfaPolicies>, State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(load(&app).await?.policies)))
}

async fn set_policies(
    m: Mgmt<UpdateMfaPolicies>,
    State(app): State<AppState>,
    meta: RequestMeta,
    Body(body): Body<Value>,
) -> Result<Json<Value>, ApiError> {
    let policies = check_policies(&body)?;
    let mut cfg = load(&app).await?;
    cfg.policies = policies.clone();
    save(&app, &mut cfg).await?;
    changed(&app, &meta, &m.caller.client_id, json!({"policies": policies})).await;
    Ok(Json(json!(policies)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn message_types_normalise() {
        assert_eq!(normalize_message_types(&s(&["voice", "sms"])).unwrap(), s(&["sms", "voice"]));
        assert_eq!(normalize_message_types(&s(&["voice"])).unwrap(), s(&["voice"]));
        assert_eq!(normalize_message_types(&s(&["sms", "sms"])).unwrap(), s(&["sms"]));
        assert!(normalize_message_types(&[]).is_err());
        let e = normalize_message_types(&s(&["sms", "email"])).unwrap_err();
        assert!(e.message.contains(r#"["sms"], ["voice"] or ["sms","voice"]"#), "{}", e.message);
    }

    #[test]
    fn tokens_are_masked() {
        assert_eq!(mask_token("0123456789abcdef0123456789abcdef"), "****cdef");
        assert_eq!(mask_token("short"), "****");
        assert_eq!(mask_token("12345678901"), "****");
        assert_eq!(mask_token("123456789012"), "****9012");
    }

    #[test]
    fn factors_and_policies_are_checked() {
        assert!(check_factor("sms", Some(true)).unwrap());
        assert!(!check_factor("duo", Some(false)).unwrap());
        assert_eq!(check_factor("duo", Some(true)).unwrap_err().status, 400);
        assert_eq!(check_factor("phone", Some(true)).unwrap_err().status, 404);
        assert_eq!(check_factor("sms", None).unwrap_err().status, 400);
        assert_eq!(check_policies(&json!([])).unwrap(), Vec::<String>::new());
        assert_eq!(check_policies(&json!(["all-applications"])).unwrap(), s(&["all-applications"]));
        assert!(check_policies(&json!(["confidence-score"])).is_err());
        assert!(check_policies(&json!({})).is_err());
        assert!(check_policies(&json!([1])).is_err());
    }

    #[test]
    fn templates_report_the_field() {
        let e = check_template("enrollment_message", Some("{% if %}".into())).unwrap_err();
        assert!(e.message.starts_with("Invalid enrollment_message template: "), "{}", e.message);
        assert!(e.message.ends_with('.') && !e.message.ends_with(".."), "{}", e.message);
        assert!(check_template("verification_message", None).is_err());
        assert_eq!(check_template("x", Some("{{code}}".into())).unwrap(), "{{code}}");
    }
}
