//! Callsign extensions for delivery beyond one provider (no Auth0 twin), in the style of the Guardian endpoints:
//!
//! - `GET|PUT /api/v2/guardian/factors/phone/routing` (`read:` / `update:guardian_factors`): the fallback chains
//!   per channel, the country routes and the voice fallback (`callsign_core::routing`). A `PUT` replaces the whole
//!   document; every provider it names must exist, send that channel and be configured for it, a chain may not
//!   name a provider twice (or the selected one among its fallbacks), and a route must name providers: otherwise
//!   400 naming the property. `gd_tenant_update` on every write.
//! - `GET /api/v2/guardian/factors/phone/health` (`read:guardian_factors`): every provider's circuit breaker on
//!   the node that answers (`callsign_messaging::health`: state is per node).
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use callsign_core::guardian::GuardianConfig;
use callsign_core::providers as services;
use callsign_core::routing::Routing;
use callsign_domain::Channel;
use serde_json::{Value, json};

use super::guardian::{changed, load, save};
use super::{Mgmt, ReadGuardianFactors, UpdateGuardianFactors};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Body, RequestMeta};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/guardian/factors/phone/routing", get(read).put(update))
        .route("/guardian/factors/phone/health", get(health))
}

fn view(r: &Routing) -> Value {
    serde_json::to_value(r).unwrap_or(Value::Null)
}

async fn read(_: Mgmt<ReadGuardianFactors>, State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(view(&load(&app).await?.routing)))
}

/// Whether provider `name` can be in a chain for `channel`: known, sends the channel, and configured for it.
async fn usable(app: &AppState, cfg: &GuardianConfig, name: &str, channel: Channel) -> Result<(), String> {
    let kind = app
        .providers
        .get(name)
        .map_err(|_| format!("No enum match for: \"{name}\"; expected one of {}", app.providers.names().join(", ")))?;
    if !kind.capabilities().supports(channel) {
        return Err(format!("the `{name}` provider cannot send {channel} messages"));
    }
    let (_, settings) = services::settings(app, cfg, name).await.map_err(|e| e.to_string())?;
    kind.check(&settings, &[channel]).map_err(|problems| {
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        format!(
            "the `{name}` provider is not configured for {channel} (missing or invalid: {}); set it with PUT /api/v2/guardian/factors/phone/providers/{name}",
            fields.join(", ")
        )
    })
}

async fn update(
    m: Mgmt<UpdateGuardianFactors>,
    State(app): State<AppState>,
    meta: RequestMeta,
    Body(body): Body<Value>,
) -> Result<Json<Value>, ApiError> {
    let mut routing: Routing = serde_json::from_value(body).map_err(ApiError::invalid_payload)?;
    let mut cfg = load(&app).await?;
    // Which names are usable is async (secrets are opened); check each once, then validate synchronously.
    let mut verdicts = std::collections::BTreeMap::new();
    for (name, channel) in routing.named() {
        if let std::collections::btree_map::Entry::Vacant(e) = verdicts.entry((name.to_owned(), channel)) {
            e.insert(usable(&app, &cfg, name, channel).await);
        }
    }
    let selected = cfg.provider.clone();
    routing
        .validate(&selected, |name, channel| {
            verdicts.get(&(name.to_owned(), channel)).cloned().unwrap_or_else(|| Err(format!("`{name}` is unknown")))
        })
        .map_err(|(prop, msg)| ApiError::invalid_property(&prop, msg))?;
    cfg.routing = routing;
    save(&app, &mut cfg).await?;
    let answer = view(&cfg.routing);
    changed(&app, &meta, &m.caller.client_id, json!({"routing": answer})).await;
    Ok(Json(answer))
}

async fn health(_: Mgmt<ReadGuardianFactors>, State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let providers: Vec<Value> = app
        .providers
        .kinds()
        .map(|k| serde_json::to_value(app.health.status(k.name())).unwrap_or(Value::Null))
        .collect();
    Ok(Json(json!({"providers": providers, "scope": "node"})))
}
