//! `/api/v2/guardian/factors/phone/providers/{provider}`: each phone provider's settings, for any provider the
//! registry knows (`callsign_messaging::Registry`). What a provider shows and accepts is its own
//! (`ProviderKind::guardian_view` / `apply_guardian_update`): Auth0's Twilio endpoint
//! (`…/providers/twilio`, with its deprecated `sms` twin), Callsign's custom-provider endpoint
//! (`…/providers/phone-message-hook`, no Auth0 twin). Nothing here names a provider. Scopes
//! `read:guardian_factors` / `update:guardian_factors`, Management errors, `gd_tenant_update` on every write.
//!
//! - `GET` → the provider's view, never a secret in clear (secrets masked, or listed by id);
//! - `PUT` → the provider applies the body; secrets it sets are sealed under fresh names that the configuration's
//!   compare-and-set write switches to (a refused write deletes them and leaves the old ones in use); secrets no
//!   longer named are deleted after the save;
//! - `POST …/secrets` → 201 `{"id", "created_at", "secret"}` for a provider with server-generated secrets (the only
//!   time the secret is shown); `DELETE …/secrets/{id}` → 204, the secret stops being used at once.
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use callsign_core::providers as services;
use callsign_messaging::{FieldKind, FieldProblem, ProviderKind, ProviderSettings};
use serde_json::{Value, json};

use super::Path;
use super::guardian::{changed, load, save};
use super::{Mgmt, ReadGuardianFactors, UpdateGuardianFactors};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Body, RequestMeta};
use callsign_core::guardian::GuardianConfig;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/guardian/factors/phone/providers/{provider}", get(read).put(update))
        // The deprecated `sms` twin (reference §3.8) behaves exactly like the `phone` endpoint.
        .route("/guardian/factors/sms/providers/{provider}", get(read).put(update))
        .route("/guardian/factors/phone/providers/{provider}/secrets", post(create_secret))
        .route("/guardian/factors/phone/providers/{provider}/secrets/{id}", delete(delete_secret))
}

/// A provider's problem in the Management API's words (400 `invalid_body`).
pub fn problem(p: FieldProblem) -> ApiError {
    ApiError::bad_request(p.api_message())
}

/// The provider a path names; 404 for a name no provider has (as an unknown path would be).
fn kind_of(app: &AppState, name: &str) -> Result<&'static dyn ProviderKind, ApiError> {
    app.providers.get(name).map_err(|_| ApiError::not_found("Not Found"))
}

/// Refuse a configuration its selected provider cannot work with (`ProviderKind::check_selection`: Twilio with
/// voice on and no From number), whichever setting is being changed.
pub fn check_selection(app: &AppState, cfg: &GuardianConfig) -> Result<(), ApiError> {
    let Ok(kind) = app.providers.get(&cfg.provider) else { return Ok(()) };
    let settings = ProviderSettings::from_values(cfg.provider(&cfg.provider));
    kind.check_selection(&settings, &cfg.channels()).map_err(problem)
}

/// The selected provider's name, checked against the registry.
pub fn check_provider(app: &AppState, p: Option<String>) -> Result<String, ApiError> {
    let p = p.ok_or_else(|| ApiError::missing_property("provider"))?;
    if app.providers.get(&p).is_err() {
        return Err(ApiError::invalid_property(
            "provider",
            format!("No enum match for: \"{p}\"; expected one of {}", app.providers.names().join(", ")),
        ));
    }
    Ok(p)
}

/// The view of provider `name` (404 when it has none).
pub async fn view(app: &AppState, cfg: &GuardianConfig, name: &str) -> Result<Value, ApiError> {
    let kind = kind_of(app, name)?;
    let values = cfg.provider(name);
    let states = services::secret_states(app, kind, &values).await?;
    kind.guardian_view(&values, &states.states()).ok_or_else(|| ApiError::not_found("Not Found"))
}

async fn read(
    _: Mgmt<ReadGuardianFactors>,
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let cfg = load(&app).await?;
    Ok(Json(view(&app, &cfg, &name).await?))
}

/// Apply `body` to provider `name`'s settings and save, with its secrets (see the module docs). Returns the answer
/// and the audit details.
pub async fn apply_update(
    app: &AppState,
    cfg: &mut GuardianConfig,
    name: &str,
    body: &Value,
) -> Result<(Value, Value), ApiError> {
    let kind = kind_of(app, name)?;
    kind.guardian_view(&cfg.provider(name), &Default::default()).ok_or_else(|| ApiError::not_found("Not Found"))?;
    let before = cfg.provider(name);
    let mut values = before.clone();
    let update = kind.apply_guardian_update(body, &mut values).map_err(problem)?;
    cfg.providers.insert(name.to_owned(), values);
    check_selection(app, cfg)?;
    save_with_secrets(app, cfg, kind, &before, update.secrets).await?;
    Ok((update.echo, update.audit))
}

/// Save `cfg` (whose `providers.<kind>` holds the new settings, and was `before`) with the secret changes of
/// `secrets` (`Some`: seal this value; `None`: clear it). Settings and secrets change together or not at all: new
/// values are sealed under fresh names first, the configuration (compare-and-set) then names them, and only after
/// that are the secrets it no longer names deleted. When the save is refused (409 `concurrent_update`) the fresh
/// secrets are deleted and the old ones stay in use.
pub async fn save_with_secrets(
    app: &AppState,
    cfg: &mut GuardianConfig,
    kind: &'static dyn ProviderKind,
    before: &serde_json::Map<String, Value>,
    secrets: std::collections::BTreeMap<String, Option<zeroize::Zeroizing<String>>>,
) -> Result<(), ApiError> {
    let mut values = cfg.provider(kind.name());
    let fresh = services::seal_secrets(app, kind, &mut values, secrets).await.map_err(ApiError::internal)?;
    cfg.providers.insert(kind.name().to_owned(), values.clone());
    if let Err(e) = save(app, cfg).await {
        services::delete_secrets(app, &fresh).await;
        return Err(e);
    }
    services::delete_secrets(app, &services::obsolete_secrets(kind, before, &values)).await;
    Ok(())
}

async fn update(
    m: Mgmt<UpdateGuardianFactors>,
    State(app): State<AppState>,
    Path(name): Path<String>,
    meta: RequestMeta,
    Body(body): Body<Value>,
) -> Result<Json<Value>, ApiError> {
    let mut cfg = load(&app).await?;
    let (echo, audit) = apply_update(&app, &mut cfg, &name, &body).await?;
    changed(&app, &meta, &m.caller.client_id, audit).await;
    Ok(Json(echo))
}

/// A provider with server-generated secrets (a `GeneratedSecrets` field), else 404.
fn generating(app: &AppState, name: &str) -> Result<&'static dyn ProviderKind, ApiError> {
    let kind = kind_of(app, name)?;
    if kind.fields().iter().any(|f| matches!(f.kind, FieldKind::GeneratedSecrets { .. })) {
        Ok(kind)
    } else {
        Err(ApiError::not_found("Not Found"))
    }
}

/// Generate a secret for provider `name`, seal it, and save the configuration that lists it (the provider unlists
/// its oldest ones past its limit; their sealed copies are deleted after the save). Returns `(id, created_at,
/// secret, audit details)`.
pub async fn add_secret(
    app: &AppState,
    cfg: &mut GuardianConfig,
    name: &str,
) -> Result<(String, String, zeroize::Zeroizing<String>, Value), ApiError> {
    let kind = generating(app, name)?;
    let mut values = cfg.provider(name);
    let g = kind.add_generated_secret(&mut values, app.rng.as_ref(), app.clock.now()).map_err(ApiError::internal)?;
    services::seal(app, &g.sealed_name, g.plain.as_bytes()).await.map_err(ApiError::internal)?;
    cfg.providers.insert(name.to_owned(), values);
    if let Err(e) = save(app, cfg).await {
        // The stored configuration did not change: the new secret is not listed (it would never be used) and the
        // retired ones still are; delete only the new one.
        services::delete_secrets(app, std::slice::from_ref(&g.sealed_name)).await;
        return Err(e);
    }
    services::delete_secrets(app, &g.retired).await;
    Ok((g.id, g.created_at, g.plain, g.audit))
}

async fn create_secret(
    m: Mgmt<UpdateGuardianFactors>,
    State(app): State<AppState>,
    Path(name): Path<String>,
    meta: RequestMeta,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut cfg = load(&app).await?;
    let (id, created_at, secret, audit) = add_secret(&app, &mut cfg, &name).await?;
    changed(&app, &meta, &m.caller.client_id, audit).await;
    Ok((StatusCode::CREATED, Json(json!({"id": id, "created_at": created_at, "secret": secret.as_str()}))))
}

/// Unlist secret `id` of provider `name`, save, then delete its sealed copy (unlisted first: an unlisted secret is
/// never used, even if deleting the copy fails).
pub async fn remove_secret(app: &AppState, cfg: &mut GuardianConfig, name: &str, id: &str) -> Result<Value, ApiError> {
    let kind = generating(app, name)?;
    let mut values = cfg.provider(name);
    let Some(sealed) = kind.remove_generated_secret(&mut values, id).map_err(ApiError::internal)? else {
        return Err(ApiError::not_found("The signing secret does not exist.").code("inexistent_secret"));
    };
    cfg.providers.insert(name.to_owned(), values);
    save(app, cfg).await?;
    match app.store.delete_secret(&sealed).await {
        Ok(()) | Err(callsign_store::StoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(json!({ kind.name(): {"secret_deleted": id} }))
}

async fn delete_secret(
    m: Mgmt<UpdateGuardianFactors>,
    State(app): State<AppState>,
    Path((name, id)): Path<(String, String)>,
    meta: RequestMeta,
) -> Result<StatusCode, ApiError> {
    let mut cfg = load(&app).await?;
    let audit = remove_secret(&app, &mut cfg, &name, &id).await?;
    changed(&app, &meta, &m.caller.client_id, audit).await;
    Ok(StatusCode::NO_CONTENT)
}
