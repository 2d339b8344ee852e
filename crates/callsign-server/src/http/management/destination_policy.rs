//! The phone destination policy (`callsign_core::destination`), a Callsign extension in the style of the Guardian
//! endpoints: one resource for both defences (country permissions and number types), because both answer the same
//! question ("may this number get this channel?"), are checked together, and are saved together by the dashboard.
//!
//! - `GET /api/v2/guardian/factors/phone/destination-policy` (`read:phone_destination_policy`): the whole policy,
//!   defaults filled in (a new install: every country, premium-rate and the other special types refused).
//! - `PUT` (`update:phone_destination_policy`): replaces the whole policy; what the body leaves out takes its
//!   default. `PATCH` (same scope): a JSON merge patch (RFC 7396) over the stored policy: objects merge, lists and
//!   values replace. An unknown property, an unknown mode, a country code that is not ISO 3166, a bad calling-code
//!   prefix, an entry listed twice, mode `all` with a list, or mode `allow` with empty lists: 400 naming the
//!   property. `gd_tenant_update` on every write.
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use callsign_core::destination::{self, DestinationPolicy};
use serde_json::{Value, json};

use super::documents::{merged, object, parse, view};
use super::guardian::changed;
use super::{Mgmt, ReadDestinationPolicy, UpdateDestinationPolicy};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Body, RequestMeta};

pub const PATH: &str = "/guardian/factors/phone/destination-policy";

pub fn routes() -> Router<AppState> {
    Router::new().route(PATH, get(read).put(replace).patch(merge))
}

async fn read(_: Mgmt<ReadDestinationPolicy>, State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(view(&destination::load(&app).await.map_err(ApiError::internal)?)))
}

async fn replace(
    m: Mgmt<UpdateDestinationPolicy>,
    State(app): State<AppState>,
    meta: RequestMeta,
    Body(body): Body<Value>,
) -> Result<Json<Value>, ApiError> {
    let new: DestinationPolicy = parse(body)?;
    write(&app, &meta, &m.caller.client_id, |p| {
        *p = new.clone();
        Ok(())
    })
    .await
}

async fn merge(
    m: Mgmt<UpdateDestinationPolicy>,
    State(app): State<AppState>,
    meta: RequestMeta,
    Body(body): Body<Value>,
) -> Result<Json<Value>, ApiError> {
    object(&body)?;
    write(&app, &meta, &m.caller.client_id, |p| {
        *p = merged(p, &body)?;
        Ok(())
    })
    .await
}

/// Apply `change` (compare-and-set, re-applied over a concurrent write), log the change, answer the saved policy.
async fn write(
    app: &AppState,
    meta: &RequestMeta,
    client_id: &str,
    change: impl FnMut(&mut DestinationPolicy) -> Result<(), ApiError>,
) -> Result<Json<Value>, ApiError> {
    let saved = destination::modify(app, change).await.map_err(ApiError::internal)??;
    let answer = view(&saved);
    changed(app, meta, client_id, json!({"phone_destination_policy": answer})).await;
    Ok(Json(answer))
}
