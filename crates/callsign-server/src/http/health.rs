use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::app::AppState;

/// The process is up.
pub async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

/// The database answers and every migration is applied.
pub async fn readyz(State(app): State<AppState>) -> impl IntoResponse {
    match app.store.check_ready().await {
        Ok(()) => (StatusCode::OK, axum::Json(json!({"status": "ready", "database": app.store.backend()}))),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"status": "not ready", "database": app.store.backend()})),
            )
        }
    }
}
