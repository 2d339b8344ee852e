//! The HTTP surfaces. Handlers are thin: parse, call a service, map the result.
pub mod callbacks;
pub mod error;
pub mod extract;
pub mod health;
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
        .route("/.well-known/jwks.json", get(wellknown::jwks))
        .route("/.well-known/openid-configuration", get(wellknown::openid_configuration))
        .route("/oauth/token", post(oauth::token))
        .merge(mfa::routes())
        .merge(callbacks::routes())
        .merge(crate::login::routes())
        .merge(crate::dashboard::routes())
        .merge(crate::web::static_routes())
        .nest("/api/v2", management::router(app.clone()))
        .route_layer(axum::middleware::from_fn_with_state(app.metrics.clone(), crate::metrics::track))
        .fallback(|| async { ApiError::not_found("Not Found") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
        })
        .with_state(app)
}

/// The client's address, for logs; works for plain and TLS listeners alike.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TcpListener>> for PeerAddr {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TcpListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, crate::tls::TlsListener>> for PeerAddr {
    fn connect_info(stream: axum::serve::IncomingStream<'_, crate::tls::TlsListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

/// Serve until `shutdown` resolves, then finish in-flight requests. Tests bind port 0 and pass their own signal.
pub async fn serve(
    app: AppState,
    listener: TcpListener,
    tls: Option<tokio_rustls::rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let svc = router(app).into_make_service_with_connect_info::<PeerAddr>();
    match tls {
        None => axum::serve(listener, svc).with_graceful_shutdown(shutdown).await,
        Some(cfg) => {
            let l = crate::tls::TlsListener::new(listener, cfg)?;
            axum::serve(l, svc).with_graceful_shutdown(shutdown).await
        }
    }
}
