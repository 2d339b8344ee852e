use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::app::AppState;

/// The process is up.
pub async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

/// The database answers and every migration is applied; and, when the rate limits are in Redis (`redis_url`),
/// Redis answers too. Recovers by itself: each call asks again.
pub async fn readyz(State(app): State<AppState>) -> impl IntoResponse {
    let database = app.store.check_ready().await;
    if let Err(e) = &database {
        tracing::warn!(error = %e, "not ready: the database");
    }
    let mut body = json!({"database": app.store.backend()});
    let mut ready = database.is_ok();
    if app.config.redis_url.is_some() {
        let redis = app.limiter.limiter_ready().await;
        if let Err(e) = &redis {
            tracing::warn!(error = %e, "not ready: Redis (redis_url), where the rate limits are");
        }
        body["redis"] = json!(if redis.is_ok() { "ready" } else { "unreachable" });
        ready &= redis.is_ok();
    }
    body["status"] = json!(if ready { "ready" } else { "not ready" });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(body))
}
