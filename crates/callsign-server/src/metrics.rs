//! Prometheus metrics, served on their own listener (`metrics_addr`).
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabels {
    pub provider: String,
}

pub struct Metrics {
    registry: Registry,
    /// Each phone provider's circuit breaker: 0 closed (healthy), 1 half-open (probing), 2 open (skipped).
    provider_state: Family<ProviderLabels, Gauge>,
    /// Each provider's failed sends in the breaker's window.
    provider_failures: Family<ProviderLabels, Gauge>,
    health: std::sync::OnceLock<(callsign_messaging::Health, Vec<String>)>,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabels, Histogram>,
    /// Open HTTP connections.
    pub connections: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("callsign");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0])
        });
        registry.register("http_requests", "HTTP requests by method, matched route and status", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method and matched route",
            latency.clone(),
        );
        let connections = Gauge::default();
        registry.register("http_connections_open", "Open HTTP connections", connections.clone());
        let provider_state = Family::<ProviderLabels, Gauge>::default();
        registry.register(
            "phone_provider_circuit_state",
            "Phone provider circuit breaker on this node: 0 closed (healthy), 1 half-open (probing), 2 open (skipped)",
            provider_state.clone(),
        );
        let provider_failures = Family::<ProviderLabels, Gauge>::default();
        registry.register(
            "phone_provider_recent_failures",
            "Phone provider sends that failed in the circuit breaker's window (60 s) on this node",
            provider_failures.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            connections,
            provider_state,
            provider_failures,
            health: std::sync::OnceLock::new(),
        }
    }

    /// Report these providers' health (read at every scrape).
    pub fn watch_health(&self, health: callsign_messaging::Health, providers: Vec<String>) {
        let _ = self.health.set((health, providers));
    }

    pub fn encode(&self) -> String {
        if let Some((health, names)) = self.health.get() {
            for name in names {
                let h = health.status(name);
                let labels = ProviderLabels { provider: name.clone() };
                let state = match h.state {
                    callsign_messaging::BreakerState::Closed => 0,
                    callsign_messaging::BreakerState::HalfOpen => 1,
                    callsign_messaging::BreakerState::Open => 2,
                };
                self.provider_state.get_or_create(&labels).set(state);
                self.provider_failures.get_or_create(&labels).set(i64::try_from(h.recent_failures).unwrap_or(i64::MAX));
            }
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("failed to encode metrics");
        }
        out
    }
}

/// Counts and times every request by its matched route template (never the raw path, which has ids in it).
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().to_string();
    // Latency measurement is the one use of the monotonic clock outside `Clock`: it is never a decision input.
    #[allow(clippy::disallowed_methods)]
    let start = std::time::Instant::now();
    let resp = next.run(req).await;
    let secs = start.elapsed().as_secs_f64();
    let status = resp.status().as_u16();
    metrics.requests.get_or_create(&RequestLabels { method: method.clone(), route: route.clone(), status }).inc();
    metrics.latency.get_or_create(&RouteLabels { method: method.clone(), route: route.clone() }).observe(secs);
    tracing::debug!(%method, %route, status, duration_ms = secs * 1000.0, "request");
    resp
}

pub fn router(metrics: Arc<Metrics>) -> axum::Router {
    axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(|State(m): State<Arc<Metrics>>| async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
                    m.encode(),
                )
                    .into_response()
            }),
        )
        .with_state(metrics)
}
