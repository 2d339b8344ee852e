//! `GET|PATCH /api/v2/branding` (`read:branding` / `update:branding`): the login pages' logo, favicon and colours,
//! in Auth0's shape (`callsign_core::branding`). GET answers only what is set (`{}` on a new install); PATCH merges,
//! `null` clears, and a refusal is a 400 naming the property.
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use callsign_core::branding::{self, Branding};
use serde_json::Value;

use super::{Mgmt, ReadBranding, UpdateBranding};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::Body;

pub fn routes() -> Router<AppState> {
    Router::new().route("/branding", get(read).patch(update))
}

fn view(b: &Branding) -> Value {
    serde_json::to_value(b).unwrap_or(Value::Null)
}

async fn read(_: Mgmt<ReadBranding>, State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(view(&branding::load(&app).await.map_err(ApiError::internal)?)))
}

async fn update(
    _: Mgmt<UpdateBranding>,
    State(app): State<AppState>,
    Body(body): Body<Value>,
) -> Result<Json<Value>, ApiError> {
    let Value::Object(patch) = body else {
        return Err(ApiError::invalid_payload("Expected type object but found type other"));
    };
    let b = branding::patch(&app, &patch)
        .await
        .map_err(ApiError::internal)?
        .map_err(|(prop, msg)| ApiError::invalid_property(&prop, msg))?;
    Ok(Json(view(&b)))
}
