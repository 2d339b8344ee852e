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

/// A message's end: channel, provider (registry name), country (ISO code, `ZZ` when unknown), `sent` or
/// `failed`, and the failure's reason from a short list.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MessageLabels {
    pub channel: String,
    pub provider: String,
    pub country: String,
    pub outcome: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelProviderLabels {
    pub channel: String,
    pub provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReceiptLabels {
    pub channel: String,
    pub provider: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

/// A log stream, by id (streams are few: one series each).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabels {
    pub stream: String,
}

/// A log event's type (the event codes are a fixed catalogue; anything else counts as `other`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub code: String,
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
    messages: Family<MessageLabels, Counter>,
    acceptance: Family<ChannelProviderLabels, Histogram>,
    receipts: Family<ReceiptLabels, Histogram>,
    refusals: Family<KindLabels, Counter>,
    events: Family<EventLabels, Counter>,
    queue_due: Gauge,
    queue_running: Gauge,
    queue_oldest: Gauge<f64, std::sync::atomic::AtomicU64>,
    stream_lag: Family<StreamLabels, Gauge>,
    stream_failures: Family<StreamLabels, Gauge>,
    stream_delivered: Family<StreamLabels, Gauge>,
    stream_active: Family<StreamLabels, Gauge>,
    queue: std::sync::OnceLock<(Arc<dyn callsign_store::Store>, Arc<dyn callsign_domain::Clock>)>,
}

/// Seconds buckets for delivery: from a tenth of a second to ten minutes.
const DELIVERY_BUCKETS: [f64; 12] = [0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0];

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
        let messages = Family::<MessageLabels, Counter>::default();
        registry.register(
            "phone_messages",
            "Phone messages that reached their end, by channel, provider, destination country, outcome and reason",
            messages.clone(),
        );
        let acceptance =
            Family::<ChannelProviderLabels, Histogram>::new_with_constructor(|| Histogram::new(DELIVERY_BUCKETS));
        registry.register(
            "phone_message_acceptance_seconds",
            "From the code being asked for (the job queued) to the provider taking the message",
            acceptance.clone(),
        );
        let receipts = Family::<ReceiptLabels, Histogram>::new_with_constructor(|| Histogram::new(DELIVERY_BUCKETS));
        registry.register(
            "phone_message_receipt_seconds",
            "From the job queued to each delivery receipt, by the receipt's state",
            receipts.clone(),
        );
        let refusals = Family::<KindLabels, Counter>::default();
        registry.register(
            "limit_refusals",
            "Requests and messages refused by a limit or a defence, by kind (sends, wrong_codes, wrong_recovery_codes, ip_block, brute_force, destination, number_type, pumping, usage_cap)",
            refusals.clone(),
        );
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "log_events",
            "Log events written, by type (gd_send_sms, gd_send_sms_failure, …)",
            events.clone(),
        );
        let queue_due = Gauge::default();
        registry.register("delivery_queue_due", "Delivery jobs due and not yet claimed (all nodes)", queue_due.clone());
        let queue_running = Gauge::default();
        registry.register("delivery_queue_running", "Delivery jobs being sent (all nodes)", queue_running.clone());
        let queue_oldest = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "delivery_queue_oldest_due_seconds",
            "How long the oldest due delivery job has waited (0 when none waits)",
            queue_oldest.clone(),
        );
        let stream_lag = Family::<StreamLabels, Gauge>::default();
        registry.register("log_stream_lag_events", "Log events a stream has not delivered yet", stream_lag.clone());
        let stream_failures = Family::<StreamLabels, Gauge>::default();
        registry.register(
            "log_stream_consecutive_failures",
            "A stream's failed sends in a row (0 after a success; past the failure budget it is suspended)",
            stream_failures.clone(),
        );
        let stream_delivered = Family::<StreamLabels, Gauge>::default();
        registry.register(
            "log_stream_delivered_events",
            "Events a stream has delivered since it was created",
            stream_delivered.clone(),
        );
        let stream_active = Family::<StreamLabels, Gauge>::default();
        registry.register(
            "log_stream_active",
            "1 while a stream is active, 0 while it is paused or suspended",
            stream_active.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            connections,
            provider_state,
            provider_failures,
            health: std::sync::OnceLock::new(),
            messages,
            acceptance,
            receipts,
            refusals,
            events,
            queue_due,
            queue_running,
            queue_oldest,
            stream_lag,
            stream_failures,
            stream_delivered,
            stream_active,
            queue: std::sync::OnceLock::new(),
        }
    }

    /// Report these providers' health (read at every scrape).
    pub fn watch_health(&self, health: callsign_messaging::Health, providers: Vec<String>) {
        let _ = self.health.set((health, providers));
    }

    /// Read the delivery queue from `store` at every scrape.
    pub fn watch_queue(&self, store: Arc<dyn callsign_store::Store>, clock: Arc<dyn callsign_domain::Clock>) {
        let _ = self.queue.set((store, clock));
    }

    pub async fn encode(&self) -> String {
        if let Some((store, clock)) = self.queue.get() {
            let now = clock.now();
            match store.queue_stats(now).await {
                Ok(q) => {
                    self.queue_due.set(i64::try_from(q.due).unwrap_or(i64::MAX));
                    self.queue_running.set(i64::try_from(q.running).unwrap_or(i64::MAX));
                    let age = q.oldest_due_at.map_or(0.0, |t| (now.millis() - t.millis()).max(0) as f64 / 1000.0);
                    self.queue_oldest.set(age);
                }
                Err(e) => tracing::warn!(error = %e, "the delivery queue could not be read for the metrics"),
            }
            match store.list_log_streams().await {
                Ok(streams) => {
                    // Deleted streams' series go with them.
                    self.stream_lag.clear();
                    self.stream_failures.clear();
                    self.stream_delivered.clear();
                    self.stream_active.clear();
                    for s in streams {
                        let labels = StreamLabels { stream: s.id.clone() };
                        if let Ok((lag, _)) = store.log_lag(s.cursor).await {
                            self.stream_lag.get_or_create(&labels).set(i64::try_from(lag).unwrap_or(i64::MAX));
                        }
                        self.stream_failures.get_or_create(&labels).set(s.failures);
                        self.stream_delivered.get_or_create(&labels).set(s.delivered);
                        self.stream_active.get_or_create(&labels).set(i64::from(s.status == "active"));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "the log streams could not be read for the metrics"),
            }
        }
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

impl callsign_core::telemetry::Telemetry for Metrics {
    fn event(&self, code: &str, details: &serde_json::Value) {
        let known = callsign_core::identity::events::CODES.iter().any(|(c, _)| *c == code);
        let label = if known { code.to_owned() } else { "other".to_owned() };
        self.events.get_or_create(&EventLabels { code: label }).inc();
        if let Some(kind) = callsign_core::telemetry::refusal_kind(code, details) {
            self.refusals.get_or_create(&KindLabels { kind: kind.to_owned() }).inc();
        }
    }

    fn message(&self, m: &callsign_core::telemetry::MessageOutcome<'_>) {
        let labels = MessageLabels {
            channel: m.channel.as_str().to_owned(),
            provider: m.provider.to_owned(),
            country: m.country.unwrap_or("ZZ").to_owned(),
            outcome: m.outcome.to_owned(),
            reason: m.reason.to_owned(),
        };
        self.messages.get_or_create(&labels).inc();
        if let Some(ms) = m.accepted_after_ms {
            let labels =
                ChannelProviderLabels { channel: m.channel.as_str().to_owned(), provider: m.provider.to_owned() };
            self.acceptance.get_or_create(&labels).observe(ms.max(0) as f64 / 1000.0);
        }
    }

    fn receipt(&self, channel: callsign_domain::Channel, provider: &str, state: &str, after_ms: i64) {
        let labels = ReceiptLabels {
            channel: channel.as_str().to_owned(),
            provider: provider.to_owned(),
            state: state.to_owned(),
        };
        self.receipts.get_or_create(&labels).observe(after_ms.max(0) as f64 / 1000.0);
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
                    m.encode().await,
                )
                    .into_response()
            }),
        )
        .with_state(metrics)
}
