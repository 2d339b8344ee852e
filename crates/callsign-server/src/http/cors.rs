//! CORS for the Authentication API endpoints a browser calls (`/oauth/token`, `/oauth/revoke`, `/userinfo`,
//! `/.well-known/*`, `/mfa/*`): a request whose `Origin` some application lists in `web_origins` or
//! `allowed_origins` ([`callsign_core::origins`]) gets `Access-Control-Allow-Origin` with that origin, and its
//! preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered 204 here, before routing. Any other origin
//! gets no CORS headers at all (its preflight goes on to the route, which refuses `OPTIONS` with 405), so the
//! browser keeps the page from reading the answer.
use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::AppState;

/// The request headers a page may send: what the Auth0 SDKs send (`Auth0-Client`, `Content-Type`), the bearer
/// token of `/userinfo` and the MFA API, and the MFA API's message language.
pub const ALLOW_HEADERS: &str = "Authorization, Content-Type, Auth0-Client, X-Request-Language";
pub const ALLOW_METHODS: &str = "GET, POST, DELETE, OPTIONS";
/// How long a browser may cache a preflight (Chromium caps it at two hours).
pub const MAX_AGE_SECS: &str = "7200";

/// Whether `path` is one of the endpoints with CORS (the MFA API, not the enrollment-ticket page under `/mfa/`; sign-up,
/// which auth0.js calls from the page).
pub fn applies(path: &str) -> bool {
    matches!(path, "/oauth/token" | "/oauth/revoke" | "/userinfo" | "/dbconnections/signup")
        || path.starts_with("/.well-known/")
        || (path.starts_with("/mfa/") && path != "/mfa/enrollment")
}

pub async fn cors(State(app): State<AppState>, req: Request, next: Next) -> Response {
    if !applies(req.uri().path()) {
        return next.run(req).await;
    }
    let origin = req.headers().get(ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let allowed = match origin.as_deref() {
        None => None,
        Some(o) => match callsign_core::origins::cors_allowed(&app.core, o).await {
            Ok(true) => HeaderValue::from_str(o).ok(),
            Ok(false) => None,
            Err(e) => {
                // Not allowing is the safe answer; the request itself goes on.
                tracing::warn!(error = %e, "could not check a CORS origin");
                None
            }
        },
    };
    let preflight = req.method() == Method::OPTIONS && req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD);
    let mut res = match (&allowed, preflight) {
        (Some(_), true) => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            let h = r.headers_mut();
            h.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOW_METHODS));
            h.insert(ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
            h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE_SECS));
            r
        }
        _ => next.run(req).await,
    };
    if origin.is_some() {
        res.headers_mut().append(VARY, HeaderValue::from_static("Origin"));
    }
    if let Some(o) = allowed {
        res.headers_mut().insert(ACCESS_CONTROL_ALLOW_ORIGIN, o);
    }
    res
}
