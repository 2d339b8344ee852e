//! The services' error for the Authentication API's flows (token grants, the MFA API): what went wrong in OAuth's
//! vocabulary (`error`, `error_description`) and its class ([`Status`]), with no HTTP types. The HTTP layer turns a
//! [`Status`] into a status code and the whole error into Auth0's `{"error","error_description"}` body.
use serde_json::{Map, Value};

/// The class of a failure; the HTTP layer maps each to one status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 400
    BadRequest,
    /// 401
    Unauthorized,
    /// 403
    Forbidden,
    /// 404
    NotFound,
    /// 415
    UnsupportedMediaType,
    /// 429
    TooManyRequests,
    /// 500: the detail was logged, the description is opaque.
    Internal,
    /// 503: try again shortly (`retry_after` says when).
    Unavailable,
}

#[derive(Debug, thiserror::Error)]
#[error("{error}: {description}")]
pub struct AuthError {
    pub status: Status,
    /// OAuth's error code (`invalid_request`, `invalid_grant`, `mfa_required`, …).
    pub error: &'static str,
    pub description: String,
    /// Extra members of the error body (e.g. `mfa_token`).
    pub extra: Map<String, Value>,
    /// When to try again, in seconds.
    pub retry_after: Option<u32>,
}

impl AuthError {
    pub fn new(status: Status, error: &'static str, description: impl Into<String>) -> Self {
        Self { status, error, description: description.into(), extra: Map::new(), retry_after: None }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(Status::BadRequest, "invalid_request", description)
    }

    /// Log the cause, answer an opaque error.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(Status::Internal, "server_error", "Internal error")
    }

    /// Too many password checks in progress: `temporarily_unavailable`, retry after a second.
    pub fn busy() -> Self {
        let mut e = Self::new(
            Status::Unavailable,
            "temporarily_unavailable",
            "Too many requests in progress; try again shortly.",
        );
        e.retry_after = Some(crate::identity::passwords::RETRY_AFTER_SECS);
        e
    }

    /// The rate limiter (the database's buckets, or Redis with `redis_url`) could not be asked: the request is
    /// refused (fail closed, never let through unlimited) with 503 `temporarily_unavailable`, and the cause, which
    /// names the limiter (`Redis: …`), is logged once here.
    pub fn limiter_unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "rate limits cannot be checked; the request is refused with 503");
        let mut e = Self::new(
            Status::Unavailable,
            "temporarily_unavailable",
            "Rate limits cannot be checked right now; try again shortly.",
        );
        e.retry_after = Some(crate::identity::passwords::RETRY_AFTER_SECS);
        e
    }

    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }
}

impl From<callsign_store::StoreError> for AuthError {
    fn from(e: callsign_store::StoreError) -> Self {
        AuthError::internal(e)
    }
}
