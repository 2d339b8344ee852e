//! SMS-pumping detection (`callsign_core::pumping`), a Callsign extension in the style of the destination policy:
//!
//! - `GET /api/v2/guardian/factors/phone/pumping-detection` (`read:phone_pumping_detection`): the settings,
//!   defaults filled in. `PUT` (`update:phone_pumping_detection`) replaces them (what the body leaves out takes
//!   its default); `PATCH` is a JSON merge patch (RFC 7396). Bad values: 400 naming the property.
//!   `gd_tenant_update` on every write. Trusting a segment is adding it to `trusted`.
//! - `GET …/pumping-detection/segments` (read scope): every segment with figures in the window or a hold in force,
//!   held and suspect ones first.
//! - `DELETE …/pumping-detection/holds/{segment}` (update scope): release a hold (204; 404 when none is in force).
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use callsign_core::pumping::{self, PumpingSettings};
use serde_json::{Value, json};

use super::documents::{merged, object, parse, view};
use super::guardian::changed;
use super::{Mgmt, ReadPumpingDetection, UpdatePumpingDetection};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Body, Path, RequestMeta};

pub const PATH: &str = "/guardian/factors/phone/pumping-detection";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(PATH, get(read).put(replace).patch(merge))
        .route(&format!("{PATH}/segments"), get(segments))
        .route(&format!("{PATH}/holds/{{segment}}"), delete(release))
}

async fn read(_: Mgmt<ReadPumpingDetection>, State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(view(&pumping::load(&app).await.map_err(ApiError::internal)?)))
}

async fn replace(
    m: Mgmt<UpdatePumpingDetection>,
    State(app): State<AppState>,
    meta: RequestMeta,
    Body(body): Body<Value>,
) -> Result<Json<Value>, ApiError> {
    let new: PumpingSettings = parse(body)?;
    write(&app, &meta, &m.caller.client_id, |p| {
        *p = new.clone();
        Ok(())
    })
    .await
}

async fn merge(
    m: Mgmt<UpdatePumpingDetection>,
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

async fn write(
    app: &AppState,
    meta: &RequestMeta,
    client_id: &str,
    change: impl FnMut(&mut PumpingSettings) -> Result<(), ApiError>,
) -> Result<Json<Value>, ApiError> {
    let saved = pumping::modify(app, change).await.map_err(ApiError::internal)??;
    let answer = view(&saved);
    changed(app, meta, client_id, json!({"phone_pumping_detection": answer})).await;
    Ok(Json(answer))
}

async fn segments(_: Mgmt<ReadPumpingDetection>, State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let settings = pumping::load(&app).await.map_err(ApiError::internal)?;
    let segments = pumping::segments(&app).await.map_err(ApiError::internal)?;
    Ok(Json(json!({
        "enabled": settings.enabled,
        "window_minutes": settings.window_minutes,
        "min_conversion": settings.min_conversion,
        "segments": segments,
    })))
}

async fn release(
    _: Mgmt<UpdatePumpingDetection>,
    State(app): State<AppState>,
    meta: RequestMeta,
    Path(segment): Path<String>,
) -> Result<StatusCode, ApiError> {
    let segment = pumping::normalize_segment(&segment).map_err(|m| ApiError::invalid_property("segment", m))?;
    if pumping::release(&app, &meta, &segment).await.map_err(ApiError::internal)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("No SMS-pumping hold is in force on {segment}")))
    }
}
