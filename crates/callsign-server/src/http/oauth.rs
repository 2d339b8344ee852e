//! `POST /oauth/token`: the body (JSON or form) and the `Authorization: Basic` header go to
//! [`callsign_core::grants::token`], which runs the grant; its answer or error is written here in Auth0's shape.
use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::OAuthError;
use super::extract::RequestMeta;
use crate::app::AppState;

pub use callsign_core::grants::{
    LoginFailure, PASSWORD_REALM, TokenRequest, TokenResponse, check_password, profile_claims, record_login_success,
};

/// The token request body, JSON or form.
pub type TokenBody = super::extract::AuthBody<TokenRequest>;

/// The base64 part of an `Authorization: Basic …` header (client_secret_basic), if one was sent.
pub fn basic_auth(headers: &HeaderMap) -> Option<&str> {
    headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Basic "))
}

pub async fn token(
    State(app): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    super::extract::AuthBody(req): TokenBody,
) -> Response {
    match callsign_core::grants::token(&app, &meta, basic_auth(&headers), &req).await {
        Ok(body) => {
            let mut r = (StatusCode::OK, axum::Json(body)).into_response();
            r.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => OAuthError::from(e).into_response(),
    }
}

/// `POST /oauth/revoke`: revoke a refresh token ([`callsign_core::grants::revoke`]); 200 with an empty body.
pub async fn revoke(
    State(app): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    super::extract::AuthBody(req): super::extract::AuthBody<callsign_core::grants::RevokeRequest>,
) -> Response {
    match callsign_core::grants::revoke(&app, &meta, basic_auth(&headers), &req).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => OAuthError::from(e).into_response(),
    }
}
