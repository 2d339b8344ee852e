//! `/api/v2/guardian/factors/**` and `/api/v2/guardian/policies`: the Guardian (MFA) configuration, all kept in
//! the one settings document [`GuardianConfig`] (reference §3.1–§3.8, §3.12).
//!
//! Deviations from Auth0, on purpose:
//! - each phone provider's settings (`…/providers/{provider}`) are in [`super::phone_providers`]: secrets are
//!   sealed at rest and never answered in clear;
//! - factors Callsign does not implement are listed, and can be disabled, but not enabled;
//! - the legacy `GET /guardian/factors/sms/templates` always answers 200 with the templates (never 204);
//! - the `confidence-score` policy (adaptive MFA) is refused with a 400.
use axum::extract::State;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Path;
use super::{Mgmt, ReadGuardianFactors, ReadMfaPolicies, UpdateGuardianFactors, UpdateMfaPolicies};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Body, RequestMeta};
use callsign_core::guardian::{self, GuardianConfig};
use callsign_core::identity::events::{self, EventCtx};
use callsign_core::templates;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/guardian/factors", get(list_factors))
        .route("/guardian/factors/{name}", put(set_factor))
        .route("/guardian/factors/phone/message-types", get(get_message_types).put(set_message_types))
        .route("/guardian/factors/phone/selected-provider", get(get_provider).put(set_provider))
        .route("/guardian/factors/phone/templates", get(get_templates).put(set_templates))
        // The deprecated `sms` twins (reference §3.8) behave exactly like the `phone` endpoints.
        .route("/guardian/factors/sms/selected-provider", get(get_provider).put(set_provider))
        .route("/guardian/factors/sms/templates", get(get_templates).put(set_templates))
        .route("/guardian/policies", get(get_policies).put(set_policies))
}

/// The channels of the phone factor, in the order they are stored.
pub const MESSAGE_TYPES: &[&str] = &["sms", "voice"];

pub use super::phone_providers::{check_provider, check_selection};

/// A failed configuration write: a 409 when another request changed the configuration meanwhile (nothing was
/// saved; retrying applies the change to the new configuration), otherwise an opaque 500.
pub(super) fn save_error(e: crate::BoxError) -> ApiError {
    if e.is::<guardian::ConfigConflict>() {
        ApiError::conflict(
            "The Guardian configuration changed while this request was being processed; nothing was saved. Retry the request.",
        )
        .code("concurrent_update")
    } else {
        ApiError::internal(e)
    }
}

/// The configuration as stored now (what [`save`] compares with; management reads are not cached).
pub(super) async fn load(app: &AppState) -> Result<GuardianConfig, ApiError> {
    GuardianConfig::load_for_update(app).await.map_err(ApiError::internal)
}

pub(super) async fn save(app: &AppState, cfg: &mut GuardianConfig) -> Result<(), ApiError> {
    cfg.save(app).await.map_err(save_error)
}

/// Load, change and save the configuration, re-applying the change when an unrelated write got in between
/// ([`GuardianConfig::update`]): concurrent writes of different settings (a0deploy's parallel factor updates) all
/// succeed; a concurrent write of the same setting is 409 `concurrent_update`.
pub(super) async fn update(
    app: &AppState,
    change: impl FnMut(&mut GuardianConfig) -> Result<(), ApiError>,
) -> Result<GuardianConfig, ApiError> {
    GuardianConfig::update(app, change).await.map_err(|e| match e {
        guardian::UpdateError::Rejected(e) => e,
        guardian::UpdateError::Conflict => save_error(Box::new(guardian::ConfigConflict)),
        guardian::UpdateError::Failed(e) => ApiError::internal(e),
    })
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
        guardian::FACTORS
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
    if !guardian::FACTORS.contains(&name) {
        return Err(ApiError::not_found(format!(
            "The factor `{name}` does not exist; the factors are {}.",
            guardian::FACTORS.join(", ")
        ))
        .code("inexistent_factor"));
    }
    let enabled = enabled.ok_or_else(|| ApiError::missing_property("enabled"))?;
    if enabled && !guardian::SUPPORTED_FACTORS.contains(&name) {
        return Err(ApiError::bad_request(format!(
            "Callsign does not support the `{name}` factor yet, so it cannot be enabled; the supported factors are {}.",
            guardian::SUPPORTED_FACTORS.join(", ")
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
    update(&app, |cfg| {
        cfg.factors.insert(name.clone(), enabled);
        Ok(())
    })
    .await?;
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
        return Err(ApiError::invalid_property("message_types", allowed()));
    }
    if let Some(bad) = given.iter().find(|t| !MESSAGE_TYPES.contains(&t.as_str())) {
        return Err(ApiError::invalid_property(
            "message_types",
            format!("No enum match for: \"{bad}\"; {}", allowed()),
        ));
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
    let types = normalize_message_types(&b.message_types.ok_or_else(|| ApiError::missing_property("message_types"))?)?;
    update(&app, |cfg| {
        cfg.message_types = types.clone();
        check_selection(&app, cfg)
    })
    .await?;
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

async fn get_provider(_: Mgmt<ReadGuardianFactors>, State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"provider": load(&app).await?.provider})))
}

async fn set_provider(
    m: Mgmt<UpdateGuardianFactors>,
    State(app): State<AppState>,
    meta: RequestMeta,
    Body(b): Body<ProviderBody>,
) -> Result<Json<Value>, ApiError> {
    let provider = check_provider(&app, b.provider)?;
    update(&app, |cfg| {
        cfg.provider = provider.clone();
        check_selection(&app, cfg)
    })
    .await?;
    changed(&app, &meta, &m.caller.client_id, json!({"provider": provider})).await;
    Ok(Json(json!({"provider": provider})))
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
    let t = template.ok_or_else(|| ApiError::missing_property(field))?;
    templates::validate(&t).and_then(|()| templates::require_code(&t)).map_err(|e| {
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
    let mut which = Vec::new();
    let cfg = update(&app, |cfg| {
        which.clear();
        if cfg.enrollment_message != enrollment {
            which.push("enrollment_message");
        }
        if cfg.verification_message != verification {
            which.push("verification_message");
        }
        cfg.enrollment_message = enrollment.clone();
        cfg.verification_message = verification.clone();
        Ok(())
    })
    .await?;
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
            Some(p) if guardian::POLICIES.contains(&p) => {
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
    update(&app, |cfg| {
        cfg.policies = policies.clone();
        Ok(())
    })
    .await?;
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
        let e = check_template("verification_message", Some("Welcome to {{tenant.friendly_name}}".into())).unwrap_err();
        assert!(format!("{e:?}").contains("has no code"), "{e:?}");
    }
}
