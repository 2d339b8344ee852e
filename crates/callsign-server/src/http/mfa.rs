//! `/mfa/*`: the MFA API's HTTP surface. Parsing and auth here; the flows are in `crate::mfa::service`.
use axum::Router;
use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};

use super::error::OAuthError;
use super::extract::{AuthBody, AuthPath, RequestMeta};
use crate::app::AppState;
use crate::mfa::service;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/mfa/associate", post(associate))
        .route("/mfa/challenge", post(challenge))
        .route("/mfa/authenticators", get(list))
        .route("/mfa/authenticators/{id}", delete(remove))
}

fn bearer(headers: &HeaderMap) -> Result<String, OAuthError> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            OAuthError::new(StatusCode::UNAUTHORIZED, "unauthorized", "Missing Authorization: Bearer <mfa_token>")
        })
}

fn reply(r: Result<serde_json::Value, OAuthError>) -> Response {
    match r {
        Ok(v) => (StatusCode::OK, axum::Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn associate(
    State(app): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    AuthBody(req): AuthBody<service::AssociateRequest>,
) -> Response {
    let token = match bearer(&headers) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    reply(service::associate(&app, &meta, &headers, &token, req).await)
}

async fn challenge(
    State(app): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    AuthBody(req): AuthBody<service::ChallengeRequest>,
) -> Response {
    reply(service::challenge(&app, &meta, &headers, req).await)
}

async fn list(State(app): State<AppState>, headers: HeaderMap) -> Response {
    match bearer(&headers) {
        Ok(t) => reply(service::list_authenticators(&app, &t).await),
        Err(e) => e.into_response(),
    }
}

async fn remove(
    State(app): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    AuthPath(id): AuthPath<String>,
) -> Response {
    match bearer(&headers) {
        Ok(t) => match service::delete_authenticator(&app, &meta, &t, &id).await {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => e.into_response(),
        },
        Err(e) => e.into_response(),
    }
}
