//! Extractors shared by the handlers.
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::{CONTENT_TYPE, USER_AGENT};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A request body in JSON or `application/x-www-form-urlencoded`, as Auth0's Management API accepts both.
/// Errors are Management-API shaped 400s.
#[derive(Debug)]
pub struct Body<T>(pub T);

fn is_form(req: &Request) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"))
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if is_form(&req) {
            let axum::Form(v) = axum::Form::<T>::from_request(req, state)
                .await
                .map_err(|e| ApiError::bad_request(format!("Payload validation error: '{}'.", e.body_text())))?;
            return Ok(Body(v));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("Payload validation error: '{}'.", e.body_text())))?;
        let bytes =
            if bytes.iter().all(u8::is_ascii_whitespace) { axum::body::Bytes::from_static(b"{}") } else { bytes };
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| ApiError::bad_request(format!("Payload validation error: '{e}'.")))
    }
}

/// Query strings, with Management-API shaped errors.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::invalid_query(format!("Query validation error: '{}'.", e.body_text())))
    }
}

/// Who sent the request, for log events.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestMeta::from_parts(&parts.headers, &parts.extensions))
    }
}

impl RequestMeta {
    pub fn from_parts(headers: &axum::http::HeaderMap, extensions: &axum::http::Extensions) -> Self {
        let ip = extensions.get::<ConnectInfo<super::PeerAddr>>().map(|c| c.0.0.ip().to_string());
        let user_agent = headers.get(USER_AGENT).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(512).collect());
        RequestMeta { ip, user_agent }
    }
}
