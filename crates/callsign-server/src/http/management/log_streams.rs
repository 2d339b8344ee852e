//! `/api/v2/log-streams`: the operator's log streams, over [`callsign_core::log_streams`] (which checks every
//! field, seals the sinks' secrets and delivers). POST answers 200 as Auth0 does; reads mask the secrets.
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use callsign_core::log_streams::{self as ls, StreamError};
use serde_json::Value;

use super::{CreateLogStreams, DeleteLogStreams, Mgmt, ReadLogStreams, UpdateLogStreams};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Body, Path};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/log-streams", get(list).post(create))
        .route("/log-streams/{id}", get(read).patch(update).delete(remove))
}

fn map(e: StreamError) -> ApiError {
    match e {
        StreamError::NotFound => ApiError::not_found("The log stream does not exist").code("inexistent_log_stream"),
        StreamError::Invalid { field, message } => ApiError::invalid_property(&field, message),
        StreamError::Failed(e) => ApiError::internal(e),
    }
}

async fn list(_: Mgmt<ReadLogStreams>, State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut out = Vec::new();
    for s in ls::list(&app).await.map_err(map)? {
        out.push(ls::view(&app, &s).await.map_err(ApiError::internal)?);
    }
    Ok(Json(Value::Array(out)))
}

async fn read(
    _: Mgmt<ReadLogStreams>,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let s = ls::get(&app, &id).await.map_err(map)?;
    Ok(Json(ls::view(&app, &s).await.map_err(ApiError::internal)?))
}

async fn create(
    _: Mgmt<CreateLogStreams>,
    State(app): State<AppState>,
    Body(body): Body<Value>,
) -> Result<Json<Value>, ApiError> {
    let s = ls::create(&app, &body).await.map_err(map)?;
    Ok(Json(ls::view(&app, &s).await.map_err(ApiError::internal)?))
}

async fn update(
    _: Mgmt<UpdateLogStreams>,
    State(app): State<AppState>,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> Result<Json<Value>, ApiError> {
    let s = ls::update(&app, &id, &body).await.map_err(map)?;
    Ok(Json(ls::view(&app, &s).await.map_err(ApiError::internal)?))
}

async fn remove(
    _: Mgmt<DeleteLogStreams>,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    ls::delete(&app, &id).await.map_err(map)?;
    Ok(StatusCode::NO_CONTENT)
}
