//! `/api/v2/guardian/factors/phone/providers/phone-message-hook`: Callsign's own configuration of the custom phone
//! provider (Auth0 configures an Action instead; there is no Auth0 twin of these endpoints). Shaped like the
//! Twilio provider endpoints: scopes `read:guardian_factors` / `update:guardian_factors`, Management errors,
//! `gd_tenant_update` on every write.
//!
//! - `GET` → `{"url": …|null, "secrets": [{"id", "created_at"}]}` — never a secret;
//! - `PUT {"url": "https://…"}` → the same shape (https only; `http://` only for 127.0.0.1 / localhost);
//! - `POST …/secrets` → 201 `{"id", "created_at", "secret": "whsec_…"}`, the only time the secret is shown; the
//!   newest two secrets sign, so a third retires the oldest;
//! - `DELETE …/secrets/{id}` → 204; the secret stops signing at once.
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use callsign_store::StoreError;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Path;
use super::guardian::{changed, load, save};
use super::{Mgmt, ReadGuardianFactors, UpdateGuardianFactors};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Body, RequestMeta};
use crate::mfa::config::GuardianConfig;
use crate::mfa::webhook;

const BASE: &str = "/guardian/factors/phone/providers/phone-message-hook";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(BASE, get(get_hook).put(set_hook))
        .route(&format!("{BASE}/secrets"), post(create_secret))
        .route(&format!("{BASE}/secrets/{{id}}"), delete(delete_secret))
}

fn render(cfg: &GuardianConfig) -> Value {
    json!({
        "url": cfg.webhook.url,
        "secrets": cfg.webhook.secrets.iter().map(|s| json!({"id": s.id, "created_at": s.created_at})).collect::<Vec<_>>(),
    })
}

async fn get_hook(_: Mgmt<ReadGuardianFactors>, State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(render(&load(&app).await?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HookBody {
    url: Option<String>,
}

async fn set_hook(
    m: Mgmt<UpdateGuardianFactors>,
    State(app): State<AppState>,
    meta: RequestMeta,
    Body(b): Body<HookBody>,
) -> Result<Json<Value>, ApiError> {
    let raw =
        b.url.ok_or_else(|| ApiError::bad_request("Payload validation error: 'Missing required property: url'."))?;
    let url = webhook::check_url(&raw)
        .map_err(|e| ApiError::bad_request(format!("Payload validation error: '{e}' on property url.")))?;
    let mut cfg = load(&app).await?;
    cfg.webhook.url = Some(url.to_string());
    save(&app, &mut cfg).await?;
    changed(&app, &meta, &m.caller.client_id, json!({"phone-message-hook": {"url": url.to_string()}})).await;
    Ok(Json(render(&cfg)))
}

async fn create_secret(
    m: Mgmt<UpdateGuardianFactors>,
    State(app): State<AppState>,
    meta: RequestMeta,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut cfg = load(&app).await?;
    let before: Vec<String> = cfg.webhook.secrets.iter().map(|s| s.id.clone()).collect();
    let (r, secret, retired) = webhook::add_secret(&app, &mut cfg).await.map_err(ApiError::internal)?;
    if let Err(e) = save(&app, &mut cfg).await {
        // The stored configuration did not change: the new secret is not listed (it would never sign) and the
        // retired one still is; delete only the new one.
        webhook::delete_secrets(&app, std::slice::from_ref(&r)).await;
        return Err(e);
    }
    webhook::delete_secrets(&app, &retired).await;
    let retired: Vec<&String> = before.iter().filter(|id| !cfg.webhook.secrets.iter().any(|s| &s.id == *id)).collect();
    changed(
        &app,
        &meta,
        &m.caller.client_id,
        json!({"phone-message-hook": {"secret_created": r.id, "secrets_retired": retired}}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(json!({"id": r.id, "created_at": r.created_at, "secret": secret.as_str()}))))
}

async fn delete_secret(
    m: Mgmt<UpdateGuardianFactors>,
    State(app): State<AppState>,
    Path(id): Path<String>,
    meta: RequestMeta,
) -> Result<StatusCode, ApiError> {
    let mut cfg = load(&app).await?;
    let Some(pos) = cfg.webhook.secrets.iter().position(|s| s.id == id) else {
        return Err(ApiError::not_found("The signing secret does not exist.").code("inexistent_secret"));
    };
    cfg.webhook.secrets.remove(pos);
    // Unlist first: an unlisted secret never signs, even if deleting the sealed copy fails.
    save(&app, &mut cfg).await?;
    match app.store.delete_secret(&webhook::secret_name(&id)).await {
        Ok(()) | Err(StoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    changed(&app, &meta, &m.caller.client_id, json!({"phone-message-hook": {"secret_deleted": id}})).await;
    Ok(StatusCode::NO_CONTENT)
}
