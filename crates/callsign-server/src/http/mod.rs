//! The HTTP surfaces. Handlers are thin: parse, call a service, map the result.
pub mod callbacks;
pub mod client_ip;
pub mod conn;
pub mod cors;
pub mod dbconnections;
pub mod error;
pub mod extract;
pub mod health;
pub mod limits;
pub mod management;
pub mod mfa;
pub mod oauth;
pub mod wellknown;

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;

use crate::app::AppState;
use error::ApiError;

pub fn router(app: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(browser_api())
        .merge(callbacks::routes())
        .merge(crate::login::routes(app.clone()))
        .merge(crate::dashboard::routes())
        .merge(crate::web::static_routes())
        .nest("/api/v2", management::router(app.clone()))
        .route_layer(axum::middleware::from_fn_with_state(app.metrics.clone(), crate::metrics::track))
        .fallback(not_found)
        .method_not_allowed_fallback(|| async {
            ApiError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
        })
        // Bodies are read (and limited in size and time) once, before routing; axum's own limit would only repeat it.
        .layer(axum::middleware::from_fn_with_state(app.config.http, limits::guard_body))
        .layer(axum::middleware::from_fn_with_state(app.config.http, limits::keep_alive_hint))
        .layer(axum::middleware::from_fn_with_state(
            std::sync::Arc::new(app.config.trusted_proxies.clone()),
            client_ip::resolve_layer,
        ))
        .layer(axum::extract::DefaultBodyLimit::disable())
        // Outermost, so that preflights are answered before routing (a route refuses OPTIONS with 405).
        .layer(axum::middleware::from_fn_with_state(app.clone(), cors::cors))
        .with_state(app)
}

/// No route: an HTML page for the browser surfaces (`/u/…`, `/dashboard…`, or a request that prefers HTML), in the
/// browser's language; the APIs' JSON error otherwise.
async fn not_found(
    axum::extract::State(app): axum::extract::State<AppState>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = uri.path();
    let wants_html = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.split(',').next().is_some_and(|first| first.trim().starts_with("text/html")));
    let browser = path.starts_with("/u/") || path == "/dashboard" || path.starts_with("/dashboard/");
    if (browser || wants_html) && !path.starts_with("/api/") {
        let lang = crate::login::negotiate(None, &headers);
        // In the tenant's branding, as the login pages are.
        let brand = crate::web::brand::Brand::load(&app).await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "the branding could not be read; the 404 page shows the defaults");
            crate::web::brand::Brand::plain()
        });
        let page = crate::login::texts::of(lang).not_found;
        let mut r = crate::web::brand::scope(brand, async {
            crate::login::error_page(axum::http::StatusCode::NOT_FOUND, lang, page)
        })
        .await;
        r.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
        return r;
    }
    ApiError::not_found("Not Found").into_response()
}

/// The Authentication API endpoints a page may call from its own origin (CORS: [`cors`]).
fn browser_api() -> Router<AppState> {
    Router::new()
        .route("/.well-known/jwks.json", get(wellknown::jwks))
        .route("/.well-known/openid-configuration", get(wellknown::openid_configuration))
        .route("/oauth/token", post(oauth::token))
        .route("/oauth/revoke", post(oauth::revoke))
        .route("/dbconnections/signup", post(dbconnections::signup))
        .route("/userinfo", get(crate::login::token::userinfo).post(crate::login::token::userinfo))
        .merge(mfa::routes())
}

/// The client's address, for logs (a `ConnectInfo<PeerAddr>` in every request's extensions); plain and TLS alike.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// Serve until `shutdown` resolves, then finish in-flight requests. Tests bind port 0 and pass their own signal.
/// Connection limits come from `app.config.http` (see [`conn`]).
pub async fn serve(
    app: AppState,
    listener: TcpListener,
    tls: Option<tokio_rustls::rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = app.config.http;
    let metrics = app.metrics.clone();
    conn::serve(router(app), listener, tls, limits, metrics, shutdown).await
}
