//! Writing Auth0-shaped log events. Every feature records what happened here.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use callsign_store::{LogBody, LogEvent, Store, StoreError, StoreResult};
use serde_json::Value;

use crate::Core;
use crate::Origin;

/// Every event code Callsign writes, with Auth0's description (reference §7.3; identity events from Auth0's log code
/// list). The one list: [`description`] reads it, and the dashboard offers it as the Logs filter.
pub const CODES: &[(&str, &str)] = &[
    ("s", "Success Login"),
    ("fp", "Wrong email or password."),
    ("fu", "Wrong email or password."),
    ("seccft", "Client Credentials for Access Token"),
    ("feccft", "Failed Exchange of Client Credentials for Access Token"),
    ("sapi", "API Operation"),
    ("fapi", "Failed API Operation"),
    ("mfar", "A user has been prompted for multi-factor authentication."),
    ("f", "Failed Login"),
    ("gd_start_enroll", "Multi-factor authentication enroll has started."),
    ("gd_enrollment_complete", "A first time MFA user has successfully enrolled using one of the factors."),
    ("gd_start_auth", "Second factor authentication event started for MFA."),
    ("gd_auth_succeed", "Multi-factor authentication success."),
    ("gd_auth_failed", "Multi-factor authentication failed."),
    ("gd_otp_rate_limit_exceed", "A user entered an incorrect code more than the maximum allowed number of times."),
    ("gd_send_sms", "SMS for MFA successfully sent."),
    ("gd_send_sms_failure", "Attempt to send SMS for MFA failed."),
    ("gd_send_voice", "Voice call for MFA successfully made."),
    ("gd_send_voice_failure", "Attempt to make Voice call for MFA failed."),
    ("gd_recovery_succeed", "A user successfully authenticates with a recovery code."),
    ("gd_recovery_rate_limit_exceed", "A user enters a wrong recovery code too many times."),
    ("gd_recovery_failed", "A user enters a wrong recovery code when attempting to authenticate."),
    ("gd_unenroll", "Device used for second factor authentication has been unenrolled."),
    ("gd_update_device_account", "Device used for second factor authentication has been updated."),
    ("gd_tenant_update", "Guardian tenant update"),
    ("gd_delivery_receipt", "Delivery receipt from the phone provider"),
    ("gd_enrollment_ticket_created", "An enrollment ticket was created."),
    ("cs_pumping_detected", "SMS pumping suspected: codes for new enrollments to a destination segment are held."),
    ("cs_pumping_released", "An operator released an SMS-pumping hold."),
    (
        "cs_usage_trigger",
        "A phone usage trigger crossed its threshold (Callsign): an alert, or a hard stop for the rest of the period.",
    ),
    ("seoobft", "Password and OOB challenge for Access Token"),
    ("feoobft", "Failed exchange of Password and OOB challenge for Access Token"),
    ("sercft", "Password and MFA recovery code for Access Token"),
    ("fercft", "Failed exchange of Password and MFA recovery code for Access Token"),
    ("seacft", "Authorization Code for Access Token"),
    ("feacft", "Failed Exchange of Authorization Code for Access Token"),
    ("sertft", "Refresh Token for Access Token"),
    ("fertft", "Failed Exchange of Refresh Token for Access Token"),
    ("slo", "Success Logout"),
    ("limit_mu", "An IP address is blocked because it attempted too many failed logins without a successful login."),
    ("ublkdu", "User block setup by anomaly detection has been released"),
    (
        "limit_wc",
        "An IP address is blocked because it reached the maximum failed login attempts into a single account.",
    ),
    ("srrt", "Successful Refresh Token revocation"),
    ("ss", "Success Signup"),
    ("fs", "Failed Signup"),
];

/// Auth0's description for an event code ("" for a code not in [`CODES`]).
pub fn description(code: &str) -> &'static str {
    CODES.iter().find(|(c, _)| *c == code).map_or("", |(_, d)| d)
}

/// What an event is about; every field optional.
#[derive(Debug, Default, Clone)]
pub struct EventCtx {
    pub client_id: Option<String>,
    pub client_name: Option<String>,
    pub user_id: Option<String>,
    pub user_name: Option<String>,
    pub audience: Option<String>,
    pub scope: Option<String>,
    pub connection: Option<String>,
    pub description: Option<String>,
    pub details: Value,
}

/// Record an event. A failure to log is itself logged, never turned into a failed request.
pub async fn record(app: &Core, code: &str, meta: &Origin, ctx: EventCtx) {
    if let Some(t) = app.telemetry() {
        t.event(code, &ctx.details);
    }
    crate::stats::record_event(app, code, &ctx.details).await;
    let now = app.clock.now();
    let event = LogEvent {
        log_id: callsign_domain::ids::log_id(app.rng.as_ref(), now),
        date: now,
        event_type: code.to_owned(),
        user_id: ctx.user_id,
        client_id: ctx.client_id,
        body: LogBody {
            description: Some(ctx.description.unwrap_or_else(|| description(code).to_owned())),
            client_name: ctx.client_name,
            ip: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            user_name: ctx.user_name,
            audience: ctx.audience,
            scope: ctx.scope,
            connection: ctx.connection.clone(),
            strategy: ctx.connection.map(|_| "auth0".to_owned()),
            details: ctx.details,
        },
    };
    if let Err(e) = app.logs.write(app.store.as_ref(), event).await {
        tracing::error!(error = %e, code, "could not store a log event");
    }
}

/// Events written at most in one statement.
pub const MAX_BATCH: usize = 64;

type Pending = (LogEvent, tokio::sync::oneshot::Sender<StoreResult<()>>);

/// Group commit of log events: [`record`] hands its event to one writer task and waits until it is stored. The
/// task writes whatever has queued up meanwhile in one statement (`LogStore::insert_logs`, up to [`MAX_BATCH`]),
/// so under load many requests share one write, and alone a request waits for its own write only. A request
/// returns after its event is stored, as before: nothing accepted is lost. A batch that fails is written again one
/// event at a time, so that one bad event (a duplicate id) fails alone.
#[derive(Debug)]
pub struct LogWriter {
    queue: tokio::sync::mpsc::UnboundedSender<Pending>,
    /// Batches written and the events in them (a batch that failed and was written one by one counts once).
    batches: Arc<AtomicU64>,
    events: Arc<AtomicU64>,
}

impl LogWriter {
    /// Start the writer task (on the current Tokio runtime). It ends when the writer is dropped and the queue is
    /// empty.
    pub fn start(store: Arc<dyn Store>) -> LogWriter {
        let (queue, mut rx) = tokio::sync::mpsc::unbounded_channel::<Pending>();
        let (batches, events_written) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let counts = (batches.clone(), events_written.clone());
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let (events, acks): (Vec<LogEvent>, Vec<_>) = batch.drain(..).unzip();
                counts.0.fetch_add(1, Ordering::Relaxed);
                counts.1.fetch_add(events.len() as u64, Ordering::Relaxed);
                if store.insert_logs(&events).await.is_ok() {
                    for ack in acks {
                        let _ = ack.send(Ok(()));
                    }
                } else {
                    for (event, ack) in events.iter().zip(acks) {
                        let _ = ack.send(store.insert_log(event).await);
                    }
                }
            }
        });
        LogWriter { queue, batches, events: events_written }
    }

    /// (batches, events) handed to the store so far.
    pub fn written(&self) -> (u64, u64) {
        (self.batches.load(Ordering::Relaxed), self.events.load(Ordering::Relaxed))
    }

    /// Store `event` with the next batch; when the writer task is gone (its runtime stopped), directly.
    pub async fn write(&self, store: &dyn Store, event: LogEvent) -> StoreResult<()> {
        let (ack, done) = tokio::sync::oneshot::channel();
        match self.queue.send((event, ack)) {
            Ok(()) => done.await.unwrap_or_else(|_| Err(StoreError::Other("the log writer stopped".into()))),
            Err(tokio::sync::mpsc::error::SendError((event, _))) => store.insert_log(&event).await,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_catalogue_describes_each_code_once() {
        let mut seen = std::collections::BTreeSet::new();
        for (code, text) in super::CODES {
            assert!(seen.insert(code), "{code} is listed twice");
            assert!(!text.is_empty(), "{code} has no description");
        }
        assert_eq!(super::description("gd_send_sms"), "SMS for MFA successfully sent.");
        assert_eq!(super::description("nope"), "");
    }
}
