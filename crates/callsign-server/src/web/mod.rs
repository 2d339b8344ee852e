//! Shared machinery of the browser surfaces (Universal Login, the operator dashboard): server-side sessions held
//! by an opaque cookie, CSRF tokens bound to the session, security headers, language negotiation, the page layout
//! and static assets. Pages are server-rendered with `maud` (escaping by default) and work without JavaScript.
pub mod brand;
pub mod cookies;
pub mod csrf;
pub mod i18n;
pub mod layout;
/// Store-backed sessions and single-use tokens (a service in `callsign-core`).
pub use callsign_core::sessions as session;

use axum::Router;
use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::AppState;

/// The Content-Security-Policy of every page: nothing inline, nothing from elsewhere, never framed. `form-action`
/// is left out on purpose: browsers apply it to the redirect that follows a form post, and the login forms end in
/// a redirect to the application's callback.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; frame-ancestors 'none'";

/// [`CSP`] with `frame-ancestors` naming `origin` instead of `'none'`.
pub fn csp_framed_by(origin: &str) -> String {
    CSP.replace("frame-ancestors 'none'", &format!("frame-ancestors {origin}"))
}

/// `csp` with `img-src` also allowing `origins` (the tenant's logo and favicon: [`brand::ImageSources`], checked
/// to be plain `scheme://host[:port]` origins when they were saved).
pub fn csp_with_images(csp: &str, origins: &[String]) -> String {
    if origins.is_empty() {
        return csp.to_owned();
    }
    csp.replace("img-src 'self' data:", &format!("img-src 'self' data: {}", origins.join(" ")))
}

/// Security headers for HTML responses (`Cache-Control: no-store` too: pages carry CSRF tokens and personal data).
/// Nothing may frame a page, except the `web_message` answer of silent authentication, which its application's
/// origin (and only it) may frame ([`crate::login::respond::FrameAncestor`]); that page also leaves out
/// `Cross-Origin-Opener-Policy`, so that a popup can still post to its opener.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let framed_by = res.extensions().get::<crate::login::respond::FrameAncestor>().map(|f| f.0.clone());
    let images = res.extensions().get::<brand::ImageSources>().map(|i| i.0.clone()).unwrap_or_default();
    let h = res.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: &'static str, v: &'static str| {
        h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    };
    let csp = |base: &str| HeaderValue::from_str(&csp_with_images(base, &images)).ok();
    match framed_by.as_deref().and_then(|o| csp(&csp_framed_by(o))) {
        Some(csp) => {
            h.insert(HeaderName::from_static("content-security-policy"), csp);
        }
        None => {
            let v = csp(CSP).unwrap_or(HeaderValue::from_static(CSP));
            h.insert(HeaderName::from_static("content-security-policy"), v);
            set(h, "x-frame-options", "DENY");
            set(h, "cross-origin-opener-policy", "same-origin");
        }
    }
    set(h, "x-content-type-options", "nosniff");
    set(h, "referrer-policy", "no-referrer");
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

const APP_CSS: &str = include_str!("static/app.css");
const APP_JS: &str = include_str!("static/app.js");

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
        ],
        body,
    )
        .into_response()
}

/// `/static/app.css` and `/static/app.js`, compiled into the binary; `/branding.css`, the tenant's colours.
pub fn static_routes() -> Router<AppState> {
    Router::new()
        .route("/branding.css", get(brand::stylesheet))
        .route("/static/app.css", get(|| async { asset(APP_CSS, "text/css; charset=utf-8") }))
        .route("/static/app.js", get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }))
}

/// Whether cookies must carry `Secure` (the public URL is https).
pub fn secure_cookies(app: &AppState) -> bool {
    app.config.public_url.starts_with("https://")
}
