//! Durable delivery of SMS and voice messages: jobs in the store, claimed by workers, sent through a provider,
//! retried with backoff on retryable failures, and always ended in a logged terminal state.
use async_trait::async_trait;
use callsign_domain::Channel;
use callsign_domain::Timestamp;
use callsign_domain::phone::PhoneNumber;
use callsign_jobs::{Attempt, Claimed, Handler, Outcome, Queue, Runner};
use callsign_messaging::{Message, MessageContext, Route, Router, SendError};
use callsign_store::{DeliveryJob, JobOutcome, JobStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::guardian::GuardianConfig;
use crate::identity::events::{self, EventCtx};
use crate::providers::{self, ProviderError};
use crate::{Core, Origin};

/// How long a claim holds by default before another worker may take the job over (a crashed worker's jobs come
/// back); the running value is `delivery_lease_secs` ([`lease_ms`]). Workers renew it while they send.
pub const DEFAULT_LEASE_MS: i64 = DEFAULT_LEASE_SECS as i64 * 1_000;
/// The default of `delivery_lease_secs`.
pub const DEFAULT_LEASE_SECS: u64 = 15;
pub const MAX_ATTEMPTS: i32 = 5;

/// What a job carries, sealed at rest: the recipient, the rendered text (which contains the code), and what only
/// the request knew (for providers that forward it, the custom webhook). Jobs queued by an older version (without
/// `context`) still open.
#[derive(Serialize, Deserialize)]
pub struct Payload {
    pub to: String,
    pub text: String,
    pub locale: String,
    /// The sender set on the message's template (Unified Phone Experience `content.from`); `None` = the
    /// provider's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default)]
    pub context: MessageContext,
}

/// Build a job (payload sealed under the job id).
pub fn new_job(
    app: &Core,
    channel: Channel,
    provider: &str,
    payload: &impl Serialize,
    user_id: Option<&str>,
    enrollment_id: Option<&str>,
    challenge_id: Option<&str>,
) -> crate::BoxResult<DeliveryJob> {
    let id = format!("job_{}", callsign_domain::rng::from_alphabet(app.rng.as_ref(), callsign_domain::rng::ALNUM, 24));
    new_job_with_id(app, id, channel, provider, payload, user_id, enrollment_id, challenge_id)
}

/// [`new_job`] with a given id.
#[allow(clippy::too_many_arguments)]
pub fn new_job_with_id(
    app: &Core,
    id: String,
    channel: Channel,
    provider: &str,
    payload: &impl Serialize,
    user_id: Option<&str>,
    enrollment_id: Option<&str>,
    challenge_id: Option<&str>,
) -> crate::BoxResult<DeliveryJob> {
    let now = app.clock.now();
    let plain = zeroize::Zeroizing::new(serde_json::to_vec(payload)?);
    let sealed = app.keyring.seal(app.rng.as_ref(), &job_context(&id), &plain)?;
    Ok(DeliveryJob {
        id,
        channel,
        user_id: user_id.map(str::to_owned),
        enrollment_id: enrollment_id.map(str::to_owned),
        challenge_id: challenge_id.map(str::to_owned),
        provider: provider.to_owned(),
        payload: Some(sealed),
        status: JobStatus::Pending,
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

/// The message a job stands for.
fn message(job: &DeliveryJob, p: Payload) -> Result<Message, String> {
    let to = PhoneNumber::parse(&p.to).map_err(|e| format!("the job's recipient is not a phone number: {e}"))?;
    Ok(Message {
        id: job.id.clone(),
        channel: job.channel,
        to,
        text: p.text,
        locale: p.locale,
        from: p.from,
        context: p.context,
    })
}

/// Send one claimed job along its chain (the [`callsign_jobs::Handler`] half of delivery): the chain is the
/// job's provider (the one selected when the code was sent) and its fallbacks, or a country route
/// ([`crate::routing`]); each provider is built from the configuration as it is now, through the registry (an
/// unknown name fails, it is never another provider), and the router reports every attempt.
async fn deliver(app: &Core, job: &DeliveryJob) -> Attempt {
    let failed = |error: String| Attempt::Final { error, details: json!({"provider": job.provider}) };
    if let Some(why) = fallback_unwanted(app, job).await {
        let mut details = job.details.clone();
        details["cancelled"] = json!(why);
        return Attempt::Cancelled(details);
    }
    let msg = match open_payload(app, job).and_then(|p| message(job, p)) {
        Ok(m) => m,
        Err(e) => return failed(e),
    };
    // The destination policy as it is now: a number allowed when it was enrolled may be refused since. Refused:
    // nothing is sent and the job ends (a retry would be refused again).
    match crate::destination::load(app).await {
        Ok(policy) => {
            if let Err(refused) = policy.check(&msg.to, job.channel) {
                let mut details = refused.details();
                details["provider"] = json!(job.provider);
                return Attempt::Final { error: refused.message(), details };
            }
        }
        Err(e) => {
            let error = format!("cannot read the phone destination policy: {e}");
            return Attempt::Retryable { error, details: json!({"provider": job.provider}) };
        }
    }
    // SMS-pumping detection: a code for an enrollment to a held (or newly suspect) segment is not sent.
    let enrolling = msg.context.action == Some(callsign_messaging::Action::Enrollment);
    match crate::pumping::check(app, &msg.to, msg.context.ip.as_deref(), job.channel, enrolling).await {
        Ok(Ok(())) => {}
        Ok(Err(held)) => {
            let mut details = held.details();
            details["provider"] = json!(job.provider);
            return Attempt::Final { error: held.message(), details };
        }
        Err(e) => {
            let error = format!("cannot read the SMS-pumping figures: {e}");
            return Attempt::Retryable { error, details: json!({"provider": job.provider}) };
        }
    }
    let guardian = match GuardianConfig::load(app).await {
        Ok(g) => g,
        Err(e) => {
            let error = format!("cannot read the Guardian configuration: {e}");
            return Attempt::Retryable { error, details: json!({"provider": job.provider}) };
        }
    };
    let names = guardian.routing.chain_for(&job.provider, &msg.to, job.channel);
    let mut chain = Vec::new();
    for name in &names {
        match providers::build(app, &guardian, name).await {
            Ok(p) => chain.push(p),
            Err(ProviderError::Store(e)) => {
                let error = format!("the store is unavailable: {e}");
                return Attempt::Retryable { error, details: json!({"provider": name}) };
            }
            // A provider of a longer chain that cannot be built is left out (and said in the log); alone, it
            // fails the send.
            Err(e) if names.len() > 1 => {
                tracing::warn!(job = %job.id, provider = %name, error = %e, "a provider of the chain cannot be built; skipped");
            }
            Err(ProviderError::Unknown(_)) => {
                return failed(format!("the `{name}` provider is not available in this version of Callsign"));
            }
            Err(e) => return failed(e.to_string()),
        }
    }
    let Some(route) = Route::chain(chain) else {
        return failed(format!("no provider of the chain {} can be built", names.join(", ")));
    };
    // Usage triggers: a hard cap reached refuses the message; otherwise its share is held until the chain ends
    // (counted when sent, given back when not).
    let usage = match crate::usage::before_send(app, job.channel, &msg.to, &job.provider).await {
        Ok(hold) => hold,
        Err(refused) => return refused,
    };
    let outcome = Router::new(app.clock.clone()).send_chain(&route, &msg, &app.health).await;
    crate::usage::after_send(app, usage, outcome.delivered().is_some_and(|a| a.result.is_ok())).await;
    let with_chain = |mut d: Value| {
        // Every attempt, with its provider, outcome and latency (one step for a chain of one).
        d["chain"] = outcome.describe();
        // A voice fallback says which SMS it follows and why, on the job and in its event.
        for k in ["fallback_for", "reason"] {
            if let Some(v) = job.details.get("fallback_for").and(job.details.get(k)) {
                d[k] = v.clone();
            }
        }
        d
    };
    if let Some(a) = outcome.delivered()
        && let Ok(receipt) = &a.result
    {
        if msg.context.action.is_some() {
            let user = job.user_id.as_deref();
            crate::pumping::record_sent(app, &msg.to, msg.context.ip.as_deref(), job.created_at, user).await;
        }
        return Attempt::Done(with_chain(
            json!({"provider": a.provider, "attempts": job.attempts, "provider_response": receipt.details}),
        ));
    }
    let Some(last) = outcome.last_tried() else {
        return failed("no provider of the chain was tried".into());
    };
    let Err(e) = &last.result else { return failed("the chain ended without a result".into()) };
    let details = with_chain(
        json!({"provider": last.provider, "attempts": job.attempts, "error": e.message, "provider_error": e.details}),
    );
    // Another try later is worth it when any provider of the chain failed in a way that may pass.
    let retry = outcome.steps.iter().any(|(a, skip)| skip.is_none() && a.result.as_ref().is_err_and(|e| e.retryable))
        && (e.retryable || callsign_messaging::is_provider_fault(e));
    if retry {
        Attempt::Retryable { error: e.message.clone(), details }
    } else {
        Attempt::Final { error: e.message.clone(), details }
    }
}

/// The voice call that follows a failed SMS ([`crate::routing::VoiceFallback`]): the same code, read out, once
/// (its job id is the SMS job's plus `_voice`, so a second trigger finds it and only moves it to now). Only when
/// the fallback is on, voice is one of the message types, the SMS carried a code for an enrollment, and that
/// code is still waiting to be used.
pub async fn voice_fallback(app: &Core, sms: &DeliveryJob, why: &str) {
    let now = app.clock.now();
    match fallback_job(app, sms, why, |_| Some(now)).await {
        Ok(Some(job)) => match app.store.enqueue_job(&job).await {
            Ok(()) => {
                tracing::info!(job = %job.id, sms_job = %sms.id, reason = why, "voice fallback queued for a failed SMS")
            }
            // A standby call already waits: it is due now.
            Err(callsign_store::StoreError::Conflict(_)) => expedite_fallback(app, &sms.id, why).await,
            Err(e) => {
                tracing::warn!(job = %sms.id, error = %e, "the voice fallback of a failed SMS could not be queued")
            }
        },
        Ok(None) => {}
        Err(e) => tracing::warn!(job = %sms.id, error = %e, "the voice fallback of a failed SMS could not be queued"),
    }
}

/// After an SMS was handed to a provider that sends delivery receipts: the standby voice call of
/// [`crate::routing::VoiceFallback`], queued for the receipt deadline (`receipt_timeout_seconds` after now, or
/// the code's expiry when that comes first or no deadline is set). A delivered receipt cancels it
/// ([`receipt_recorded`]); a failed one makes it due now; the code being used or expiring first cancels it when it
/// comes up ([`fallback_unwanted`]). `sent` is the SMS job's details (`provider` is who sent it).
pub async fn arm_voice_fallback(app: &Core, sms: &DeliveryJob, sent: &Value) {
    let Some(by) = sent["provider"].as_str() else { return };
    if !app.providers.get(by).is_ok_and(|k| k.capabilities().receipts) {
        return;
    }
    let now = app.clock.now();
    let result = fallback_job(app, sms, "", |g| {
        let secs = g.routing.voice_fallback.receipt_timeout_seconds;
        Some(secs.map_or(Timestamp::from_millis(i64::MAX), |s| now.plus(std::time::Duration::from_secs(s.into()))))
    })
    .await;
    let job = match result {
        Ok(Some(job)) => job,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(job = %sms.id, error = %e, "the standby voice fallback could not be queued");
            return;
        }
    };
    match app.store.enqueue_job(&job).await {
        Ok(()) | Err(callsign_store::StoreError::Conflict(_)) => {
            tracing::debug!(job = %job.id, sms_job = %sms.id, "standby voice fallback queued until the receipt deadline");
        }
        Err(e) => tracing::warn!(job = %sms.id, error = %e, "the standby voice fallback could not be queued"),
    }
}

/// A delivery receipt was recorded for `job`: for an SMS with a standby voice call, a delivered receipt cancels
/// the call and a failed one makes it due now. Of a cancel racing a worker's claim exactly one wins (the store's
/// `cancel_pending_job`), so the call is placed or not, once.
pub async fn receipt_recorded(app: &Core, job: &DeliveryJob, state: callsign_messaging::ReceiptState) {
    use callsign_messaging::ReceiptState;
    if let Some(t) = app.telemetry() {
        let by = job.details.get("provider").and_then(Value::as_str).unwrap_or(&job.provider);
        t.receipt(job.channel, by, state.as_str(), app.clock.now().millis() - job.created_at.millis());
    }
    if job.channel != Channel::Sms {
        return;
    }
    match state {
        ReceiptState::InProgress => {}
        ReceiptState::Failed => expedite_fallback(app, &job.id, "the delivery receipt said the SMS failed").await,
        ReceiptState::Delivered => {
            let id = fallback_id(&job.id);
            let Ok(Some(standby)) = app.store.get_job(&id).await else { return };
            let mut details = standby.details.clone();
            details["cancelled"] = json!("the SMS was delivered");
            match app.store.cancel_pending_job(&id, &details, app.clock.now()).await {
                Ok(true) => {
                    tracing::info!(job = %id, sms_job = %job.id, "standby voice fallback cancelled: the SMS was delivered")
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(job = %id, error = %e, "the standby voice fallback could not be cancelled"),
            }
        }
    }
}

/// Make the standby call of SMS job `sms_id` due now (when it still waits), saying why.
async fn expedite_fallback(app: &Core, sms_id: &str, why: &str) {
    let id = fallback_id(sms_id);
    let Ok(Some(standby)) = app.store.get_job(&id).await else { return };
    let mut details = standby.details.clone();
    details["reason"] = json!(why);
    match app.store.reschedule_pending_job(&id, app.clock.now(), &details).await {
        Ok(true) => tracing::info!(job = %id, sms_job = %sms_id, reason = why, "voice fallback due now"),
        Ok(false) => {}
        Err(e) => tracing::warn!(job = %id, error = %e, "the standby voice fallback could not be moved"),
    }
}

/// The id of the voice fallback of SMS job `sms_id`.
pub fn fallback_id(sms_id: &str) -> String {
    format!("{sms_id}_voice")
}

/// Why a voice fallback should not be placed any more, when that is so: its code was used or expired, or its SMS
/// was delivered after all. `None` for every other job.
async fn fallback_unwanted(app: &Core, job: &DeliveryJob) -> Option<&'static str> {
    let sms_id = job.details.get("fallback_for")?.as_str()?;
    if let Some(cid) = &job.challenge_id {
        match app.store.get_challenge(cid).await {
            Ok(Some(c)) if c.consumed_at.is_some() => return Some("the code was used"),
            Ok(Some(c)) if c.expires_at.millis() <= app.clock.now().millis() => return Some("the code expired"),
            Ok(None) => return Some("the code expired"),
            _ => {}
        }
    }
    let delivered = |d: &Value| d["receipts"].as_array().is_some_and(|r| r.iter().any(|r| r["state"] == "delivered"));
    match app.store.get_job(sms_id).await {
        Ok(Some(sms)) if delivered(&sms.details) => Some("the SMS was delivered"),
        _ => None,
    }
}

/// The voice fallback job of `sms` (not queued), due at `run_at(guardian)` or the code's expiry if that is
/// earlier; `None` when there is none to place (see [`voice_fallback`]).
async fn fallback_job(
    app: &Core,
    sms: &DeliveryJob,
    why: &str,
    run_at: impl FnOnce(&GuardianConfig) -> Option<Timestamp>,
) -> crate::BoxResult<Option<DeliveryJob>> {
    if sms.channel != Channel::Sms || sms.enrollment_id.is_none() || sms.id.ends_with("_voice") {
        return Ok(None);
    }
    let guardian = GuardianConfig::load(app).await?;
    if !guardian.routing.voice_fallback.enabled || !guardian.channels().contains(&Channel::Voice) {
        return Ok(None);
    }
    let Some(mut due) = run_at(&guardian) else { return Ok(None) };
    if let Some(cid) = &sms.challenge_id {
        match app.store.get_challenge(cid).await? {
            Some(c) if c.consumed_at.is_none() && c.expires_at.millis() > app.clock.now().millis() => {
                if c.expires_at.millis() < due.millis() {
                    due = c.expires_at;
                }
            }
            _ => return Ok(None),
        }
    } else if due.millis() == i64::MAX {
        return Ok(None);
    }
    let p = open_payload(app, sms)?;
    let Some(code) = p.context.code.clone() else { return Ok(None) };
    let enrolling = p.context.action == Some(callsign_messaging::Action::Enrollment);
    let tenant = crate::tenant::load(app).await?;
    let (template, from) = guardian.code_message(enrolling, Channel::Voice.as_str());
    let text = crate::templates::render(
        &template,
        &crate::templates::Vars {
            code: code.as_str(),
            message_type: Channel::Voice.as_str(),
            locale: &p.locale,
            friendly_name: &p.context.tenant_friendly_name,
            support_email: tenant.support_email.as_deref().unwrap_or_default(),
            support_url: tenant.support_url.as_deref().unwrap_or_default(),
        },
    )?;
    let payload = Payload { to: p.to, text, locale: p.locale, from, context: p.context };
    let mut job = new_job_with_id(
        app,
        fallback_id(&sms.id),
        Channel::Voice,
        &guardian.provider,
        &payload,
        sms.user_id.as_deref(),
        sms.enrollment_id.as_deref(),
        sms.challenge_id.as_deref(),
    )?;
    job.run_at = due;
    let why = if why.is_empty() {
        match guardian.routing.voice_fallback.receipt_timeout_seconds {
            Some(s) => format!("no delivery receipt within {s} s"),
            None => "no delivery receipt before the code expired".to_owned(),
        }
    } else {
        why.to_owned()
    };
    job.details = json!({"fallback_for": sms.id, "reason": why});
    Ok(Some(job))
}

/// The store's outcome for the runner's.
fn job_outcome(outcome: &Outcome, job: &DeliveryJob) -> JobOutcome {
    match outcome {
        Outcome::Done(details) => JobOutcome::Sent { details: details.clone() },
        Outcome::Retry { error, run_at } => JobOutcome::Retry { error: error.clone(), run_at: *run_at },
        Outcome::Failed { error, details } => {
            // Every failure names its provider (the runner's own "gave up" does not know it).
            let mut details = details.clone();
            if let Some(o) = details.as_object_mut() {
                o.entry("provider").or_insert_with(|| json!(job.provider));
            }
            JobOutcome::Failed { error: error.clone(), details }
        }
        Outcome::Cancelled(details) => JobOutcome::Cancelled { details: details.clone() },
    }
}

/// Delivery as a [`callsign_jobs`] queue (the store's `delivery_jobs`) and handler (send, then log the terminal
/// state), over any handle on the services (`&Core` for tests, `Arc<Core>` for workers).
pub struct Delivery<C>(pub C);

#[async_trait]
impl<C: std::ops::Deref<Target = Core> + Send + Sync> Queue for Delivery<C> {
    type Job = DeliveryJob;

    async fn claim(
        &self,
        worker: &str,
        now: Timestamp,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<Claimed<DeliveryJob>>, callsign_jobs::BoxError> {
        let jobs = self.0.store.claim_jobs(worker, now, lease_ms, limit).await?;
        Ok(jobs
            .into_iter()
            .map(|job| Claimed { id: job.id.clone(), attempts: job.attempts, max_attempts: job.max_attempts, job })
            .collect())
    }

    async fn renew(&self, worker: &str, now: Timestamp, lease_ms: i64) -> Result<u64, callsign_jobs::BoxError> {
        Ok(self.0.store.renew_claims(worker, now, lease_ms).await?)
    }

    async fn finish(
        &self,
        job: &Claimed<DeliveryJob>,
        worker: &str,
        outcome: &Outcome,
        at: Timestamp,
    ) -> Result<bool, callsign_jobs::BoxError> {
        Ok(self.0.store.finish_job(&job.id, worker, &job_outcome(outcome, &job.job), at).await?)
    }

    async fn wait(&self, max_ms: u64) {
        self.0.store.wait_for_jobs(max_ms).await
    }

    /// One lane per user (or enrollment): a batch's messages to different people go out at the same time, and one
    /// person's (a challenge and its voice fallback, two challenges in a row) in the order they were queued.
    fn lane(&self, job: &Claimed<DeliveryJob>) -> Option<String> {
        job.job.user_id.clone().or_else(|| job.job.enrollment_id.clone())
    }
}

#[async_trait]
impl<C: std::ops::Deref<Target = Core> + Send + Sync> Handler<DeliveryJob> for Delivery<C> {
    async fn run(&self, job: &Claimed<DeliveryJob>) -> Attempt {
        deliver(&self.0, &job.job).await
    }

    async fn finished(&self, job: &Claimed<DeliveryJob>, outcome: &Outcome) {
        let outcome = job_outcome(outcome, &job.job);
        log_outcome(&self.0, &job.job, &outcome).await;
        match &outcome {
            JobOutcome::Failed { .. } => voice_fallback(&self.0, &job.job, "the SMS failed").await,
            JobOutcome::Sent { details } => arm_voice_fallback(&self.0, &job.job, details).await,
            _ => {}
        }
    }
}

/// The delivery runner over `app` (one claim batch of 10, the configured lease).
pub fn runner<C: std::ops::Deref<Target = Core> + Clone + Send + Sync>(app: C) -> Runner<Delivery<C>, Delivery<C>> {
    let lease_ms = lease_ms(&app);
    let clock = app.clock.clone();
    Runner { queue: Delivery(app.clone()), handler: Delivery(app), clock, lease_ms, batch: 10, name: "delivery" }
}

fn open_payload(app: &Core, job: &DeliveryJob) -> Result<Payload, String> {
    let sealed = job.payload.as_ref().ok_or("the job has no payload")?;
    let plain =
        app.keyring.open(&job_context(&job.id), sealed).map_err(|e| format!("cannot open the job's payload: {e}"))?;
    serde_json::from_slice(&plain).map_err(|e| format!("corrupt job payload: {e}"))
}

async fn log_outcome(app: &Core, job: &DeliveryJob, outcome: &JobOutcome) {
    let (code, description, details) = match outcome {
        JobOutcome::Retry { error, .. } => {
            tracing::warn!(job = %job.id, provider = %job.provider, attempts = job.attempts, %error, "send failed; will retry");
            return;
        }
        // Nothing was sent: no send event (the job keeps why).
        JobOutcome::Cancelled { details } => {
            tracing::info!(job = %job.id, channel = %job.channel, reason = ?details.get("cancelled"), "delivery cancelled");
            return;
        }
        JobOutcome::Sent { details } => (format!("gd_send_{}", job.channel), None, details.clone()),
        JobOutcome::Failed { error, details } => {
            (format!("gd_send_{}_failure", job.channel), Some(error.clone()), details.clone())
        }
    };
    tracing::info!(job = %job.id, provider = %job.provider, channel = %job.channel, event = %code, "delivery finished");
    let mut details = details;
    // The destination's country (never the number), for the event, the statistics and the metrics.
    let country = details.get("country").and_then(Value::as_str).map(str::to_owned).or_else(|| {
        let p = open_payload(app, job).ok()?;
        PhoneNumber::parse(&p.to).ok()?.country().map(str::to_owned)
    });
    let sent = matches!(outcome, JobOutcome::Sent { .. });
    let provider = details.get("provider").and_then(Value::as_str).unwrap_or(&job.provider).to_owned();
    let outcome_name = if sent { "sent" } else { "failed" };
    crate::stats::record_message(app, job.channel, &provider, country.as_deref(), outcome_name).await;
    if let Some(t) = app.telemetry() {
        let now = app.clock.now().millis();
        t.message(&crate::telemetry::MessageOutcome {
            channel: job.channel,
            provider: &provider,
            country: country.as_deref(),
            outcome: outcome_name,
            reason: if sent { "" } else { crate::telemetry::failure_reason(&details) },
            accepted_after_ms: sent.then(|| now - job.created_at.millis()),
        });
    }
    if let (Some(o), Some(c)) = (details.as_object_mut(), &country) {
        o.entry("country").or_insert_with(|| json!(c));
    }
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
        &Origin::default(),
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
    /// The provider, by registry name.
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
pub async fn send_test(app: &Core, meta: &Origin, t: &TestMessage<'_>) -> Result<Value, String> {
    let (channel, source) = (t.channel, t.source);
    let id = format!("test_{}", callsign_domain::rng::from_alphabet(app.rng.as_ref(), callsign_domain::rng::ALNUM, 20));
    let result = try_send(app, &id, t).await;
    let name = result.as_ref().map_or_else(|(n, _)| n.clone(), |(n, _)| n.clone());
    let (code, description, details) = match &result {
        Ok((_, d)) => (
            format!("gd_send_{channel}"),
            Some(format!("Test message sent through the {name} provider")),
            json!({"test": true, "source": source, "provider": name, "channel": channel, "provider_response": d}),
        ),
        Err((_, e)) => (
            format!("gd_send_{channel}_failure"),
            Some(e.message.clone()),
            json!({"test": true, "source": source, "provider": name, "channel": channel, "error": e.message, "provider_error": e.details}),
        ),
    };
    tracing::info!(provider = %name, channel, event = %code, "test message finished");
    let client_id = t.client_id.map(str::to_owned);
    events::record(app, &code, meta, EventCtx { client_id, description, details, ..Default::default() }).await;
    result.map(|(_, d)| d).map_err(|(_, e)| e.message)
}

/// Build the test message's provider and send; the provider's name comes back with the outcome.
async fn try_send(app: &Core, id: &str, t: &TestMessage<'_>) -> Result<(String, Value), (String, SendError)> {
    let name = t.provider.to_owned();
    let fail = |e: SendError| (name.clone(), e);
    let channel: Channel = t
        .channel
        .parse()
        .map_err(|e: callsign_domain::channel::UnknownChannel| fail(SendError::fatal(e.to_string())))?;
    let to = PhoneNumber::parse(t.to).map_err(|e| fail(SendError::fatal(format!("not a phone number: {e}"))))?;
    // A test message obeys the destination policy too: it is a real message to a real number.
    let policy = crate::destination::load(app)
        .await
        .map_err(|e| fail(SendError::retryable(format!("cannot read the phone destination policy: {e}"))))?;
    if let Err(refused) = policy.check(&to, channel) {
        return Err(fail(SendError::fatal(refused.message())));
    }
    let guardian = GuardianConfig::load(app)
        .await
        .map_err(|e| fail(SendError::retryable(format!("cannot read the Guardian configuration: {e}"))))?;
    let provider = providers::build(app, &guardian, t.provider).await.map_err(|e| match e {
        ProviderError::Unknown(_) => fail(SendError::fatal(format!(
            "the `{}` provider is not available in this version of Callsign",
            t.provider
        ))),
        other => fail(SendError::fatal(other.to_string())),
    })?;
    let msg = Message {
        id: id.to_owned(),
        channel,
        to,
        text: t.text.to_owned(),
        locale: "en".to_owned(),
        from: t.from.map(str::to_owned),
        context: MessageContext { tenant_friendly_name: friendly_name(app).await, ..Default::default() },
    };
    let attempt = Router::new(app.clock.clone()).send(&Route::single(provider), &msg).await;
    app.health.observe(attempt.provider, &attempt.result);
    let name = attempt.provider.to_owned();
    attempt.result.map(|r| (name.clone(), r.details)).map_err(|e| (name, e))
}

/// The tenant's friendly name, for events that carry it.
async fn friendly_name(app: &Core) -> String {
    crate::tenant::load(app).await.map(|t| t.friendly_name().to_owned()).unwrap_or_else(|_| "Callsign".to_owned())
}

/// The configured claim lease (`delivery_lease_secs`) in milliseconds.
pub fn lease_ms(app: &Core) -> i64 {
    i64::try_from(app.settings.delivery_lease_secs).unwrap_or(300).saturating_mul(1_000)
}

/// Claim and deliver every job that is due now, until none is left (tests drain the queue with it). Returns how
/// many were processed.
pub async fn run_pending_jobs(app: &Core, worker: &str) -> crate::BoxResult<usize> {
    runner(app).run_pending(worker).await
}

/// Start `settings.delivery_workers` workers; they stop when `stop` flips.
pub fn spawn_workers(
    app: &std::sync::Arc<Core>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let node = callsign_domain::rng::from_alphabet(app.rng.as_ref(), callsign_domain::rng::ALNUM, 8);
    std::sync::Arc::new(runner(app.clone())).spawn(app.settings.delivery_workers, &node, stop)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_lease_is_fifteen_seconds() {
        assert_eq!(super::DEFAULT_LEASE_MS, 15_000);
        assert_eq!(callsign_jobs::heartbeat_every(super::DEFAULT_LEASE_MS).as_millis(), 5_000);
    }
}
