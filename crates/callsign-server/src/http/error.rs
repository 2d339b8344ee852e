//! The two error shapes Callsign answers with, following Auth0:
//! - Management API: `{"statusCode":404,"error":"Not Found","message":"…","errorCode":"…"}`
//! - Authentication API (OAuth / MFA): `{"error":"…","error_description":"…"}`
//!
//! Unexpected failures become an opaque 500 in the right shape; the detail goes to the log only.
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use callsign_store::StoreError;
use serde_json::{Map, Value, json};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub error_code: Option<&'static str>,
    /// `Retry-After` (seconds), for 503s and 429s that know when to come back.
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), error_code: None, retry_after: None }
    }
    pub fn retry_after(mut self, secs: u32) -> Self {
        self.retry_after = Some(secs);
        self
    }
    /// Too many password checks in progress.
    pub fn busy() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "Too many requests in progress; try again shortly.")
            .code("temporarily_unavailable")
            .retry_after(callsign_core::identity::passwords::RETRY_AFTER_SECS)
    }
    pub fn code(mut self, code: &'static str) -> Self {
        self.error_code = Some(code);
        self
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message).code("invalid_body")
    }
    /// 400 `invalid_body`: `Payload validation error: '<msg>' on property <prop>.` (Auth0's wording).
    pub fn invalid_property(prop: &str, msg: impl std::fmt::Display) -> Self {
        Self::bad_request(format!("Payload validation error: '{msg}' on property {prop}."))
    }
    /// 400 `invalid_body`: `Payload validation error: 'Missing required property: <prop>'.`
    pub fn missing_property(prop: &str) -> Self {
        Self::bad_request(format!("Payload validation error: 'Missing required property: {prop}'."))
    }
    /// 400 `invalid_body`: `Payload validation error: '<msg>'.` (no single property).
    pub fn invalid_payload(msg: impl std::fmt::Display) -> Self {
        Self::bad_request(format!("Payload validation error: '{msg}'."))
    }
    /// A JSON body read as `T`; a value of the wrong type or an unknown property is a 400 that names the
    /// property's path (`min_sends.prefix`, `prices[2].sms`).
    pub fn from_body<T: serde::de::DeserializeOwned>(body: serde_json::Value) -> Result<T, Self> {
        serde_path_to_error::deserialize(body).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path.is_empty() || path == "." {
                Self::invalid_payload(inner)
            } else {
                Self::invalid_property(&path, inner)
            }
        })
    }
    pub fn invalid_query(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message).code("invalid_query_string")
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }
    pub fn insufficient_scope(any_of: &[&str]) -> Self {
        Self::new(StatusCode::FORBIDDEN, format!("Insufficient scope, expected any of: {}", any_of.join(",")))
            .code("insufficient_scope")
    }
    /// Log the cause, answer an opaque 500.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error")
    }
    /// A service error: 503 when it is the rate limiter that could not be asked
    /// ([`callsign_core::attack::LimiterUnavailable`], e.g. Redis away), an opaque 500 otherwise. Logged either way.
    pub fn service(cause: callsign_core::BoxError) -> Self {
        match cause.downcast_ref::<callsign_core::attack::LimiterUnavailable>() {
            Some(e) => {
                tracing::error!(error = %e, "rate limits cannot be read or changed; the request is refused with 503");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Rate limits cannot be reached right now; try again shortly.",
                )
                .retry_after(1)
            }
            None => Self::internal(cause),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found("Not Found"),
            StoreError::Conflict(what) => ApiError::conflict(format!("A resource with this {what} already exists")),
            StoreError::Other(_) => ApiError::internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("statusCode".into(), json!(self.status.as_u16()));
        body.insert("error".into(), json!(self.status.canonical_reason().unwrap_or("Error")));
        body.insert("message".into(), json!(self.message));
        if let Some(c) = self.error_code {
            body.insert("errorCode".into(), json!(c));
        }
        let mut resp = (self.status, axum::Json(Value::Object(body))).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        resp
    }
}

impl From<callsign_core::identity::passwords::Busy> for ApiError {
    fn from(_: callsign_core::identity::passwords::Busy) -> Self {
        ApiError::busy()
    }
}

/// Authentication API error.
#[derive(Debug)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    /// Extra members (e.g. `mfa_token`).
    pub extra: Map<String, Value>,
    /// `Retry-After` (seconds).
    pub retry_after: Option<u32>,
}

impl OAuthError {
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self { status, error, description: description.into(), extra: Map::new(), retry_after: None }
    }
    /// Too many password checks in progress: 503 `temporarily_unavailable` with `Retry-After`.
    pub fn busy() -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "Too many requests in progress; try again shortly.",
        );
        e.retry_after = Some(callsign_core::identity::passwords::RETRY_AFTER_SECS);
        e
    }
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "Internal error")
    }
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }
}

/// The one place a service's error becomes Auth0's Authentication API error: its class picks the status code.
impl From<callsign_core::AuthError> for OAuthError {
    fn from(e: callsign_core::AuthError) -> Self {
        use callsign_core::Status;
        let status = match e.status {
            Status::BadRequest => StatusCode::BAD_REQUEST,
            Status::Unauthorized => StatusCode::UNAUTHORIZED,
            Status::Forbidden => StatusCode::FORBIDDEN,
            Status::NotFound => StatusCode::NOT_FOUND,
            Status::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Status::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Status::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Status::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        };
        OAuthError { status, error: e.error, description: e.description, extra: e.extra, retry_after: e.retry_after }
    }
}

impl From<callsign_core::mfa::MfaError> for OAuthError {
    fn from(e: callsign_core::mfa::MfaError) -> Self {
        OAuthError::from(callsign_core::AuthError::from(e))
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        OAuthError::internal(e)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("error".into(), json!(self.error));
        body.insert("error_description".into(), json!(self.description));
        body.extend(self.extra);
        let mut resp = (self.status, axum::Json(Value::Object(body))).into_response();
        resp.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        resp
    }
}
