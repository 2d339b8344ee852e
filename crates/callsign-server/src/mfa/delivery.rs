//! Durable delivery of SMS and voice messages: jobs in the store, claimed by workers, sent through a provider,
//! retried with backoff on retryable failures, and always ended in a logged terminal state.
use std::time::Duration;

use async_trait::async_trait;
use callsign_store::{DeliveryJob, DevMessage, JobOutcome};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::http::extract::RequestMeta;
use crate::identity::events::{self, EventCtx};

/// How long a claim holds by default before another worker may take the job over (a crashed worker's jobs come
/// back); the running value is `delivery_lease_secs` ([`lease_ms`]). Workers renew it while they send.
pub const DEFAULT_LEASE_MS: i64 = crate::config::DEFAULT_DELIVERY_LEASE_SECS as i64 * 1_000;
pub const MAX_ATTEMPTS: i32 = 5;

/// What a job carries, sealed at rest: the recipient and the rendered text (which contains the code).
#[derive(Serialize, Deserialize)]
pub struct Payload {
    pub to: String,
    pub text: String,
    pub locale: String,
    /// The sender set on the message's template (Unified Phone Experience `content.from`); `None` = the
    /// provider's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// A message ready for a provider.
pub struct Outbound<'a> {
    pub job_id: &'a str,
    /// `sms` or `voice`.
    pub channel: &'a str,
    pub to: &'a str,
    pub text: &'a str,
    pub locale: &'a str,
    /// A sender that overrides the provider's configured one (a template's `from`).
    pub from: Option<&'a str>,
}

#[derive(Debug)]
pub struct SendError {
    pub retryable: bool,
    pub message: String,
    pub details: Value,
}

impl SendError {
    pub fn fatal(message: impl Into<String>) -> Self {
        Self { retryable: false, message: message.into(), details: Value::Null }
    }
}

#[async_trait]
pub trait Provider: Send + Sync {
    fn name(&self) -> &'static str;
    /// Deliver; Ok carries provider details (message id…) for the log event.
    async fn send(&self, app: &AppState, msg: &Outbound<'_>) -> Result<Value, SendError>;
}

/// The development provider (`auth0` in the Guardian API): delivers nothing, records every message in the dev
/// inbox, and stops after `dev_provider_cap` messages over the installation's life, like Auth0's test sender.
pub struct DevProvider;

#[async_trait]
impl Provider for DevProvider {
    fn name(&self) -> &'static str {
        "auth0"
    }
    async fn send(&self, app: &AppState, msg: &Outbound<'_>) -> Result<Value, SendError> {
        let used = app.store.count_dev_messages().await.map_err(|e| SendError {
            retryable: true,
            message: format!("dev inbox unavailable: {e}"),
            details: Value::Null,
        })?;
        if used >= app.config.dev_provider_cap {
            return Err(SendError::fatal(format!(
                "the development provider's limit of {} messages is reached; configure a real provider",
                app.config.dev_provider_cap
            )));
        }
        let id =
            format!("msg_{}", callsign_domain::rng::from_alphabet(app.rng.as_ref(), callsign_domain::rng::ALNUM, 20));
        let m = DevMessage {
            id: id.clone(),
            to: msg.to.to_owned(),
            channel: msg.channel.to_owned(),
            text: msg.text.to_owned(),
            created_at: app.clock.now(),
        };
        // A message for the same job recorded twice (a retry after a lost claim) is harmless: same text, new id.
        app.store.insert_dev_message(&m).await.map_err(|e| SendError {
            retryable: true,
            message: format!("dev inbox unavailable: {e}"),
            details: Value::Null,
        })?;
        // The code is read in the dev inbox; the log names the message with the number masked, and carries the
        // number and the text (the code) only when `dev_provider_log_messages` asks for it.
        if app.config.dev_provider_log_messages {
            tracing::info!(to = %msg.to, channel = msg.channel, text = %msg.text, "development provider message");
        } else {
            let to = callsign_domain::phone::mask(msg.to);
            tracing::info!(%to, channel = msg.channel, message_id = %id, "development provider message recorded in the dev inbox");
        }
        Ok(json!({"message_id": id, "remaining": app.config.dev_provider_cap.saturating_sub(used + 1)}))
    }
}

/// A provider that is selected but not available in this build: every send fails visibly, without retries.
pub struct Unavailable(pub &'static str);

#[async_trait]
impl Provider for Unavailable {
    fn name(&self) -> &'static str {
        self.0
    }
    async fn send(&self, _: &AppState, _: &Outbound<'_>) -> Result<Value, SendError> {
        Err(SendError::fatal(format!("the `{}` provider is not available in this version of Callsign", self.0)))
    }
}

pub fn provider_for(name: &str) -> Box<dyn Provider> {
    match name {
        "auth0" => Box::new(DevProvider),
        "twilio" => Box::new(super::twilio::TwilioProvider),
        "phone-message-hook" => Box::new(super::webhook::WebhookProvider),
        _ => Box::new(super::webhook::WebhookProvider),
    }
}

/// Build a job (payload sealed under the job id).
pub fn new_job(
    app: &AppState,
    channel: &str,
    provider: &str,
    payload: &impl Serialize,
    user_id: Option<&str>,
    enrollment_id: Option<&str>,
    challenge_id: Option<&str>,
) -> crate::BoxResult<DeliveryJob> {
    let now = app.clock.now();
    let id = format!("job_{}", callsign_domain::rng::from_alphabet(app.rng.as_ref(), callsign_domain::rng::ALNUM, 24));
    let plain = zeroize::Zeroizing::new(serde_json::to_vec(payload)?);
    let sealed = app.keyring.seal(app.rng.as_ref(), &job_context(&id), &plain)?;
    Ok(DeliveryJob {
        id,
        channel: channel.to_owned(),
        user_id: user_id.map(str::to_owned),
        enrollment_id: enrollment_id.map(str::to_owned),
        challenge_id: challenge_id.map(str::to_owned),
        provider: provider.to_owned(),
        payload: Some(sealed),
        status: "pending".into(),
        attempts: 0,
        max_attempts: MAX_ATTEMPTS,
        run_at: now,
        claimed_by: None,
        claim_expires_at: None,
        last_error: None,
        details: Value::Null,
        created_at: now,
        finished_at: None,
    })
}

/// The AEAD context a job's payload is sealed under.
pub fn job_context(id: &str) -> String {
    format!("job/{id}")
}

/// Exponential backoff: 2 s, 4 s, 8 s… capped at 5 minutes.
pub fn backoff(attempts: i32) -> Duration {
    let exp = attempts.clamp(1, 16) as u32;
    Duration::from_secs(2u64.saturating_pow(exp).min(300))
}

/// Deliver one claimed job and record its outcome. Returns the outcome applied.
pub async fn process(app: &AppState, worker: &str, job: &DeliveryJob) -> JobOutcome {
    let provider = provider_for(&job.provider);
    let outcome = match open_payload(app, job) {
        // Claimed more often than allowed: earlier workers died holding it. Give up rather than loop forever.
        _ if job.attempts > job.max_attempts => JobOutcome::Failed {
            error: format!("gave up after {} attempts (workers stopped while sending)", job.max_attempts),
            details: json!({"provider": job.provider, "attempts": job.attempts}),
        },
        Err(e) => JobOutcome::Failed { error: e, details: json!({"provider": job.provider}) },
        Ok(p) => {
            let msg = Outbound {
                job_id: &job.id,
                channel: &job.channel,
                to: &p.to,
                text: &p.text,
                locale: &p.locale,
                from: p.from.as_deref(),
            };
            match provider.send(app, &msg).await {
                Ok(details) => JobOutcome::Sent {
                    details: json!({"provider": provider.name(), "attempts": job.attempts, "provider_response": details}),
                },
                Err(e) if e.retryable && job.attempts < job.max_attempts => {
                    JobOutcome::Retry { error: e.message, run_at: app.clock.now().plus(backoff(job.attempts)) }
                }
                Err(e) => JobOutcome::Failed {
                    error: e.message.clone(),
                    details: json!({"provider": provider.name(), "attempts": job.attempts, "error": e.message, "provider_error": e.details}),
                },
            }
        }
    };
    match app.store.finish_job(&job.id, worker, &outcome, app.clock.now()).await {
        Ok(true) => log_outcome(app, job, &outcome).await,
        Ok(false) => {
            tracing::warn!(job = %job.id, "lost the claim on a job before finishing it; another worker has it")
        }
        Err(e) => {
            tracing::error!(job = %job.id, error = %e, "could not record a job's outcome; it will be retried after its lease")
        }
    }
    outcome
}

fn open_payload(app: &AppState, job: &DeliveryJob) -> Result<Payload, String> {
    let sealed = job.payload.as_ref().ok_or("the job has no payload")?;
    let plain =
        app.keyring.open(&job_context(&job.id), sealed).map_err(|e| format!("cannot open the job's payload: {e}"))?;
    serde_json::from_slice(&plain).map_err(|e| format!("corrupt job payload: {e}"))
}

async fn log_outcome(app: &AppState, job: &DeliveryJob, outcome: &JobOutcome) {
    let (code, description, details) = match outcome {
        JobOutcome::Retry { error, .. } => {
            tracing::warn!(job = %job.id, provider = %job.provider, attempts = job.attempts, %error, "send failed; will retry");
            return;
        }
        JobOutcome::Sent { details } => (format!("gd_send_{}", job.channel), None, details.clone()),
        JobOutcome::Failed { error, details } => {
            (format!("gd_send_{}_failure", job.channel), Some(error.clone()), details.clone())
        }
    };
    tracing::info!(job = %job.id, provider = %job.provider, channel = %job.channel, event = %code, "delivery finished");
    let mut details = details;
    if let Some(o) = details.as_object_mut() {
        o.insert("job_id".into(), json!(job.id));
        o.insert("channel".into(), json!(job.channel));
        if let Some(e) = &job.enrollment_id {
            o.insert("authenticator_id".into(), json!(format!("{}|{e}", job.channel)));
        }
    }
    events::record(
        app,
        &code,
        &RequestMeta::default(),
        EventCtx { user_id: job.user_id.clone(), description, details, ..Default::default() },
    )
    .await;
}

/// The text of a provider test message.
pub fn test_text(friendly_name: &str) -> String {
    format!("This is a test message from {friendly_name}. Your phone provider works.")
}

/// A test message to send now (see [`send_test`]).
pub struct TestMessage<'a> {
    /// The Guardian provider name (`auth0`, `twilio`, `phone-message-hook`).
    pub provider: &'a str,
    /// Who asked: `dashboard`, `branding/phone/providers/try`, `branding/phone/templates/try`.
    pub source: &'a str,
    /// The Management API client (or the dashboard's) that asked.
    pub client_id: Option<&'a str>,
    pub to: &'a str,
    /// `sms` or `voice`.
    pub channel: &'a str,
    pub text: &'a str,
    pub from: Option<&'a str>,
}

/// A test message: sent now through its provider, outside the MFA flow (no challenge, no job, no retry), and
/// logged as `gd_send_sms` / `gd_send_voice` (or `…_failure`) with `"test": true` and `source` in the details.
/// Returns the provider's details, or its error message.
pub async fn send_test(app: &AppState, meta: &RequestMeta, t: &TestMessage<'_>) -> Result<Value, String> {
    let (channel, source) = (t.channel, t.source);
    let provider = provider_for(t.provider);
    let id = format!("test_{}", callsign_domain::rng::from_alphabet(app.rng.as_ref(), callsign_domain::rng::ALNUM, 20));
    let msg = Outbound { job_id: &id, channel, to: t.to, text: t.text, locale: "en", from: t.from };
    let result = provider.send(app, &msg).await;
    let (code, description, details) = match &result {
        Ok(d) => (
            format!("gd_send_{channel}"),
            Some(format!("Test message sent through the {} provider", provider.name())),
            json!({"test": true, "source": source, "provider": provider.name(), "channel": channel, "provider_response": d}),
        ),
        Err(e) => (
            format!("gd_send_{channel}_failure"),
            Some(e.message.clone()),
            json!({"test": true, "source": source, "provider": provider.name(), "channel": channel, "error": e.message, "provider_error": e.details}),
        ),
    };
    tracing::info!(provider = provider.name(), channel, event = %code, "test message finished");
    let client_id = t.client_id.map(str::to_owned);
    events::record(app, &code, meta, EventCtx { client_id, description, details, ..Default::default() }).await;
    result.map_err(|e| e.message)
}

/// The configured claim lease (`delivery_lease_secs`) in milliseconds.
pub fn lease_ms(app: &AppState) -> i64 {
    i64::try_from(app.config.delivery_lease_secs).unwrap_or(300).saturating_mul(1_000)
}

/// How often a worker renews its claims while it sends: a third of the lease, so that two renewals can be late
/// (a slow database, a busy node) before another worker may take a job over.
pub fn heartbeat_every(lease_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(lease_ms / 3).unwrap_or(0).max(1))
}

/// Renew `worker`'s claims every [`heartbeat_every`] in real time, with the lease counted from `app.clock`, the
/// clock claims are made with. Never returns; dropped when the batch it guards is done.
async fn heartbeat(app: &AppState, worker: &str, lease_ms: i64) -> std::convert::Infallible {
    let every = heartbeat_every(lease_ms);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match app.store.renew_claims(worker, app.clock.now(), lease_ms).await {
            Ok(n) => tracing::trace!(%worker, jobs = n, "delivery claims renewed"),
            Err(e) => {
                tracing::warn!(%worker, error = %e, "could not renew delivery claims; they may be taken over")
            }
        }
    }
}

/// Claim and deliver every job that is due now, until none is left. Returns how many were processed. While a
/// batch is being sent its claims are renewed (see [`heartbeat`]), so only a dead worker's jobs are taken over.
pub async fn run_pending_jobs(app: &AppState, worker: &str) -> crate::BoxResult<usize> {
    let lease = lease_ms(app);
    let mut n = 0;
    loop {
        let jobs = app.store.claim_jobs(worker, app.clock.now(), lease, 10).await?;
        if jobs.is_empty() {
            return Ok(n);
        }
        let batch = async {
            for job in &jobs {
                process(app, worker, job).await;
            }
        };
        tokio::select! {
            () = batch => {}
            never = heartbeat(app, worker, lease) => match never {},
        }
        n += jobs.len();
    }
}

/// A worker: deliver due jobs; between batches wait for a wake-up (a new job) or at most one second (retries
/// and other nodes' stale claims become due by time alone). Stops when `stop` flips to true.
pub async fn run_worker(app: AppState, worker: String, mut stop: tokio::sync::watch::Receiver<bool>) {
    tracing::debug!(%worker, "delivery worker started");
    loop {
        if *stop.borrow() {
            break;
        }
        if let Err(e) = run_pending_jobs(&app, &worker).await {
            tracing::error!(%worker, error = %e, "delivery worker could not claim jobs");
        }
        tokio::select! {
            _ = app.store.wait_for_jobs(1_000) => {}
            _ = stop.changed() => {}
        }
    }
    tracing::debug!(%worker, "delivery worker stopped");
}

/// Start `config.delivery_workers` workers; they stop when `stop` flips.
pub fn spawn_workers(app: &AppState, stop: tokio::sync::watch::Receiver<bool>) -> Vec<tokio::task::JoinHandle<()>> {
    let node = callsign_domain::rng::from_alphabet(app.rng.as_ref(), callsign_domain::rng::ALNUM, 8);
    (0..app.config.delivery_workers)
        .map(|i| tokio::spawn(run_worker(app.clone(), format!("{node}-{i}"), stop.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn heartbeat_is_a_third_of_the_lease() {
        assert_eq!(super::DEFAULT_LEASE_MS, 15_000);
        assert_eq!(super::heartbeat_every(15_000).as_millis(), 5_000);
        assert_eq!(super::heartbeat_every(2_000).as_millis(), 666);
        assert_eq!(super::heartbeat_every(0).as_millis(), 1, "never a zero period (tokio would panic)");
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(super::backoff(1).as_secs(), 2);
        assert_eq!(super::backoff(3).as_secs(), 8);
        assert_eq!(super::backoff(20).as_secs(), 300);
    }
}
