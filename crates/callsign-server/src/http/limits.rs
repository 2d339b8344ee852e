//! Request body limits, enforced once for every route before any handler runs: a body larger than its surface's
//! limit gets 413, one that does not arrive within `http.body_timeout_secs` gets 408, each in the error shape of the
//! API it was sent to (Management API, Authentication API, or plain text for the pages).
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use super::error::{ApiError, OAuthError};
use crate::config::HttpLimits;

/// The most an Authentication API request (`/oauth/token`, `/mfa/*`) may carry: its fields are ids, codes and
/// tokens, none longer than a few kilobytes.
pub const AUTH_API_MAX_BODY: usize = 64 * 1024;

/// Which API a path belongs to, for the error shape and the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Management,
    Authentication,
    Pages,
}

impl Surface {
    pub fn of(path: &str) -> Surface {
        if path == "/api/v2" || path.starts_with("/api/v2/") {
            Surface::Management
        } else if path.starts_with("/oauth/") || path.starts_with("/mfa/") || path.starts_with("/dbconnections/") {
            Surface::Authentication
        } else {
            Surface::Pages
        }
    }

    /// The largest body this surface takes under `limits`.
    pub fn max_body(self, limits: &HttpLimits) -> usize {
        match self {
            Surface::Authentication => limits.max_body_bytes.min(AUTH_API_MAX_BODY),
            Surface::Management | Surface::Pages => limits.max_body_bytes,
        }
    }

    fn error(self, status: StatusCode, message: String) -> Response {
        match self {
            Surface::Management => {
                let code =
                    if status == StatusCode::PAYLOAD_TOO_LARGE { "payload_too_large" } else { "request_timeout" };
                ApiError::new(status, message).code(code).into_response()
            }
            Surface::Authentication => OAuthError::new(status, "invalid_request", message).into_response(),
            Surface::Pages => (status, message).into_response(),
        }
    }
}

fn too_large(surface: Surface, limit: usize) -> Response {
    let mut r = surface.error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("The request body is larger than this endpoint's limit of {limit} bytes."),
    );
    // The rest of the body is not read: the connection cannot be reused.
    r.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    r
}

/// Middleware: read the whole body within the limits, then hand it on.
pub async fn guard_body(State(limits): State<HttpLimits>, req: Request, next: Next) -> Response {
    let surface = Surface::of(req.uri().path());
    let limit = surface.max_body(&limits);
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(surface, limit);
    }
    let (parts, body) = req.into_parts();
    if http_body::Body::size_hint(&body).exact() == Some(0) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let read = tokio::time::timeout(
        Duration::from_secs(limits.body_timeout_secs),
        http_body_util::Limited::new(body, limit).collect(),
    )
    .await;
    let bytes = match read {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return too_large(surface, limit);
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "could not read a request body");
            return surface.error(StatusCode::BAD_REQUEST, "The request body could not be read.".into());
        }
        Err(_) => {
            let mut r = surface.error(
                StatusCode::REQUEST_TIMEOUT,
                format!("The request body did not arrive within {} seconds.", limits.body_timeout_secs),
            );
            r.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
            return r;
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// The idle time an HTTP/1.1 answer advertises (`Keep-Alive: timeout=N`): half the header timeout, at least 1 s.
pub fn keep_alive_secs(limits: &HttpLimits) -> u64 {
    (limits.header_read_timeout_secs / 2).max(1)
}

/// Middleware: HTTP/1.1 answers say how long an idle connection is kept (`Keep-Alive: timeout=N`, see
/// [`keep_alive_secs`]). The server closes a kept-alive connection whose next request has not begun within
/// `header_read_timeout_secs`; a client that sends on it just then gets a network error instead of an answer.
/// Clients that read the hint (Node's `fetch`, which a0deploy and the Auth0 SDKs use) stop reusing an idle
/// connection well before that.
pub async fn keep_alive_hint(State(limits): State<HttpLimits>, req: Request, next: Next) -> Response {
    let http11 = req.version() == axum::http::Version::HTTP_11;
    let mut resp = next.run(req).await;
    let closing =
        resp.headers().get(axum::http::header::CONNECTION).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    if http11
        && !closing
        && let Ok(v) = axum::http::HeaderValue::from_str(&format!("timeout={}", keep_alive_secs(&limits)))
    {
        resp.headers_mut().insert(axum::http::HeaderName::from_static("keep-alive"), v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surfaces_and_their_limits() {
        let limits = HttpLimits::default();
        assert_eq!(Surface::of("/api/v2/users"), Surface::Management);
        assert_eq!(Surface::of("/api/v2x"), Surface::Pages);
        assert_eq!(Surface::of("/oauth/token"), Surface::Authentication);
        assert_eq!(Surface::of("/mfa/associate"), Surface::Authentication);
        assert_eq!(Surface::of("/u/login"), Surface::Pages);
        assert_eq!(Surface::Authentication.max_body(&limits), 64 * 1024);
        assert_eq!(Surface::Management.max_body(&limits), 1024 * 1024);
        let small = HttpLimits { max_body_bytes: 2048, ..limits };
        assert_eq!(Surface::Authentication.max_body(&small), 2048);
    }
}
