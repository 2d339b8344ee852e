//! `/mfa/*`: the MFA API's HTTP surface. Parsing and auth here; the flows are in `callsign_core::mfa`.
use axum::Router;
use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};

use super::error::OAuthError;
use super::extract::{AuthBody, AuthPath, RequestMeta};
use crate::app::AppState;
use callsign_core::mfa;

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

fn reply<T: serde::Serialize>(r: Result<T, callsign_core::AuthError>) -> Response {
    match r {
        Ok(v) => (StatusCode::OK, axum::Json(v)).into_response(),
        Err(e) => OAuthError::from(e).into_response(),
    }
}

async fn associate(
    State(app): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    AuthBody(req): AuthBody<mfa::AssociateRequest>,
) -> Result<Response, OAuthError> {
    let token = bearer(&headers)?;
    Ok(reply(mfa::associate(&app, &meta, &token, req).await))
}

async fn challenge(
    State(app): State<AppState>,
    meta: RequestMeta,
    AuthBody(req): AuthBody<mfa::ChallengeRequest>,
) -> Response {
    reply(mfa::challenge(&app, &meta, req).await)
}

async fn list(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, OAuthError> {
    let token = bearer(&headers)?;
    Ok(reply(mfa::list_authenticators(&app, &token).await))
}

async fn remove(
    State(app): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    AuthPath(id): AuthPath<String>,
) -> Result<StatusCode, OAuthError> {
    let token = bearer(&headers)?;
    mfa::delete_authenticator(&app, &meta, &token, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
