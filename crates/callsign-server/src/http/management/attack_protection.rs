//! Attack protection (reference §6), in Auth0's shapes:
//!
//! - `GET|PATCH /api/v2/attack-protection/suspicious-ip-throttling` (`read:` / `update:attack_protection`): the
//!   settings of `callsign_core::attack` (`enabled`, `shields`, `allowlist`, `stage.pre-login`,
//!   `stage.pre-user-registration`, and Callsign's `stage.pre-phone-message`). A PATCH changes only what it names;
//!   an unknown field, an unknown shield, a bad address or CIDR, a 101st allowlist entry or an out-of-range
//!   `max_attempts` / `rate` is a 400 naming the property.
//! - `GET /api/v2/anomaly/blocks/ips/{ip}` (`read:anomaly_blocks`): 200 with no body when the address is blocked
//!   now at any stage, 404 when not; `DELETE` (`delete:anomaly_blocks`): unblocks it (204) and logs `ublkdu`. An
//!   `{ip}` that is not an IPv4 or IPv6 address is a 400.
//! - `GET|PATCH /api/v2/attack-protection/brute-force-protection` (`read:` / `update:attack_protection`):
//!   `enabled`, `shields` (`block`, `user_notification`), `mode` (`count_per_identifier_and_ip`,
//!   `count_per_identifier`), `allowlist`, `max_attempts` (1–100, default 10).
//! - `GET|PATCH /api/v2/attack-protection/phone-provider-protection` (`read:` / `update:attack_protection`):
//!   `{"type": "default" | "exponential"}` (`callsign_core::attack::backoff_take` for the curve); always 200 (a new
//!   install has `default`); another type or field is a 400.
//! - `GET /api/v2/user-blocks/{user_id}` and `GET /api/v2/user-blocks?identifier=` (`read:users`):
//!   `{"blocked_for": [{"identifier", "ip"}]}`; `DELETE` of either (`update:users`): 204, the blocks lifted, `ublkdu`.
use std::net::IpAddr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use callsign_core::attack::{self, BruteForce, PhoneProviderProtection, Stage, StageLimit, Throttling};
use serde::Deserialize;
use serde_json::Value;

use super::{
    DeleteAnomalyBlocks, Mgmt, ReadAnomalyBlocks, ReadAttackProtection, ReadUsers, UpdateAttackProtection, UpdateUsers,
};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Body, Path, Query, RequestMeta};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/attack-protection/suspicious-ip-throttling", get(read).patch(update))
        .route("/anomaly/blocks/ips/{ip}", get(is_blocked).delete(unblock))
        .route("/attack-protection/brute-force-protection", get(read_bf).patch(update_bf))
        .route("/attack-protection/phone-provider-protection", get(read_ppp).patch(update_ppp))
        .route("/user-blocks", get(blocks_by_identifier).delete(unblock_identifier))
        .route("/user-blocks/{id}", get(blocks_of_user).delete(unblock_user))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitPatch {
    max_attempts: Option<u32>,
    rate: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct StagePatch {
    #[serde(rename = "pre-login")]
    pre_login: Option<LimitPatch>,
    #[serde(rename = "pre-user-registration")]
    pre_user_registration: Option<LimitPatch>,
    #[serde(rename = "pre-phone-message")]
    pre_phone_message: Option<LimitPatch>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Patch {
    enabled: Option<bool>,
    shields: Option<Vec<String>>,
    allowlist: Option<Vec<String>>,
    stage: Option<StagePatch>,
}

fn view(t: &Throttling) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

async fn read(_: Mgmt<ReadAttackProtection>, State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let s = attack::load(&app).await.map_err(ApiError::internal)?;
    Ok(Json(view(&s.suspicious_ip_throttling)))
}

fn apply(limit: &mut StageLimit, p: Option<LimitPatch>) {
    if let Some(p) = p {
        limit.max_attempts = p.max_attempts.unwrap_or(limit.max_attempts);
        limit.rate = p.rate.unwrap_or(limit.rate);
    }
}

async fn update(
    _: Mgmt<UpdateAttackProtection>,
    State(app): State<AppState>,
    Body(body): Body<Value>,
) -> Result<Json<Value>, ApiError> {
    let p: Patch = serde_json::from_value(body).map_err(ApiError::invalid_payload)?;
    let t = attack::modify(&app, |s| -> Result<_, ApiError> {
        let (p, t) = (p.clone(), &mut s.suspicious_ip_throttling);
        if let Some(v) = p.enabled {
            t.enabled = v;
        }
        if let Some(v) = p.shields {
            t.shields = v;
        }
        if let Some(v) = p.allowlist {
            t.allowlist = v.into_iter().map(|a| a.trim().to_owned()).collect();
        }
        if let Some(st) = p.stage {
            apply(t.stage.get_mut(Stage::PreLogin), st.pre_login);
            apply(t.stage.get_mut(Stage::PreUserRegistration), st.pre_user_registration);
            apply(t.stage.get_mut(Stage::PrePhoneMessage), st.pre_phone_message);
        }
        t.validate().map_err(|(prop, msg)| ApiError::invalid_property(&prop, msg))?;
        Ok(t.clone())
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(view(&t)))
}

fn ip_of(s: &str) -> Result<IpAddr, ApiError> {
    s.parse::<IpAddr>().map_err(|_| {
        ApiError::bad_request(format!("Path validation error: '`{s}` is not an IPv4 or IPv6 address' on property id."))
    })
}

async fn is_blocked(
    _: Mgmt<ReadAnomalyBlocks>,
    State(app): State<AppState>,
    Path(ip): Path<String>,
) -> Result<StatusCode, ApiError> {
    let ip = ip_of(&ip)?;
    if attack::is_blocked(&app, ip).await.map_err(ApiError::service)? {
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::not_found("Not Found"))
    }
}

async fn unblock(
    m: Mgmt<DeleteAnomalyBlocks>,
    State(app): State<AppState>,
    meta: RequestMeta,
    Path(ip): Path<String>,
) -> Result<StatusCode, ApiError> {
    let ip = ip_of(&ip)?;
    attack::unblock(&app, &meta, ip, Some(m.caller.client_id.clone())).await.map_err(ApiError::service)?;
    Ok(StatusCode::NO_CONTENT)
}

// --- brute-force protection -------------------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct BfPatch {
    enabled: Option<bool>,
    shields: Option<Vec<String>>,
    mode: Option<String>,
    allowlist: Option<Vec<String>>,
    max_attempts: Option<u32>,
}

fn bf_view(b: &BruteForce) -> Value {
    serde_json::to_value(b).unwrap_or(Value::Null)
}

async fn read_bf(_: Mgmt<ReadAttackProtection>, State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let s = attack::load(&app).await.map_err(ApiError::internal)?;
    Ok(Json(bf_view(&s.brute_force_protection)))
}

async fn update_bf(
    _: Mgmt<UpdateAttackProtection>,
    State(app): State<AppState>,
    Body(body): Body<Value>,
) -> Result<Json<Value>, ApiError> {
    let p: BfPatch = serde_json::from_value(body).map_err(ApiError::invalid_payload)?;
    let b = attack::modify(&app, |s| -> Result<_, ApiError> {
        let (p, b) = (p.clone(), &mut s.brute_force_protection);
        if let Some(v) = p.enabled {
            b.enabled = v;
        }
        if let Some(v) = p.shields {
            b.shields = v;
        }
        if let Some(v) = p.mode {
            b.mode = v;
        }
        if let Some(v) = p.allowlist {
            b.allowlist = v.into_iter().map(|a| a.trim().to_owned()).collect();
        }
        if let Some(v) = p.max_attempts {
            b.max_attempts = v;
        }
        b.validate().map_err(|(prop, msg)| ApiError::invalid_property(&prop, msg))?;
        Ok(b.clone())
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(bf_view(&b)))
}

// --- phone provider protection ------------------------------------------------------------------------------------

async fn read_ppp(_: Mgmt<ReadAttackProtection>, State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let s = attack::load(&app).await.map_err(ApiError::internal)?;
    Ok(Json(serde_json::to_value(&s.phone_provider_protection).unwrap_or(Value::Null)))
}

async fn update_ppp(
    _: Mgmt<UpdateAttackProtection>,
    State(app): State<AppState>,
    Body(body): Body<Value>,
) -> Result<Json<Value>, ApiError> {
    let p: PhoneProviderProtection = serde_json::from_value(body).map_err(ApiError::invalid_payload)?;
    p.validate().map_err(|(prop, msg)| ApiError::invalid_property(&prop, msg))?;
    attack::modify(&app, |s| -> Result<(), ApiError> {
        s.phone_provider_protection = p.clone();
        Ok(())
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(serde_json::to_value(&p).unwrap_or(Value::Null)))
}

fn blocked_for(list: Vec<(String, String)>) -> Value {
    let items: Vec<Value> =
        list.into_iter().map(|(identifier, ip)| serde_json::json!({"identifier": identifier, "ip": ip})).collect();
    serde_json::json!({"blocked_for": items})
}

/// The email a user logs in with (404 when there is no such user, or it has none).
async fn identifier_of_user(app: &AppState, id: &str) -> Result<String, ApiError> {
    let user = app.store.get_user(id).await?.ok_or_else(|| ApiError::not_found("The user does not exist."))?;
    user.email.ok_or_else(|| ApiError::not_found("The user has no email to be blocked by."))
}

#[derive(Debug, Deserialize)]
struct IdentifierQuery {
    identifier: Option<String>,
}

fn required_identifier(q: IdentifierQuery) -> Result<String, ApiError> {
    q.identifier
        .filter(|i| !i.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("Query validation error: 'Missing required property: identifier'."))
}

async fn blocks_of_user(
    _: Mgmt<ReadUsers>,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let identifier = identifier_of_user(&app, &id).await?;
    Ok(Json(blocked_for(attack::account_blocks(&app, &identifier).await.map_err(ApiError::service)?)))
}

async fn blocks_by_identifier(
    _: Mgmt<ReadUsers>,
    State(app): State<AppState>,
    Query(q): Query<IdentifierQuery>,
) -> Result<Json<Value>, ApiError> {
    let identifier = required_identifier(q)?;
    Ok(Json(blocked_for(attack::account_blocks(&app, &identifier).await.map_err(ApiError::service)?)))
}

async fn unblock_user(
    m: Mgmt<UpdateUsers>,
    State(app): State<AppState>,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let identifier = identifier_of_user(&app, &id).await?;
    attack::unblock_account(&app, &meta, &identifier, Some(m.caller.client_id.clone()))
        .await
        .map_err(ApiError::service)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unblock_identifier(
    m: Mgmt<UpdateUsers>,
    State(app): State<AppState>,
    meta: RequestMeta,
    Query(q): Query<IdentifierQuery>,
) -> Result<StatusCode, ApiError> {
    let identifier = required_identifier(q)?;
    attack::unblock_account(&app, &meta, &identifier, Some(m.caller.client_id.clone()))
        .await
        .map_err(ApiError::service)?;
    Ok(StatusCode::NO_CONTENT)
}
