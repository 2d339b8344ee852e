//! Which provider sends a message, and a record of each attempt.
//!
//! A [`Route`] is the ordered chain of providers a message may go through (the caller picks it: the selected
//! provider and its fallbacks, or a country route). [`Router::send_chain`] tries them in order, skipping unhealthy
//! ones ([`crate::health`]), and reports every [`Attempt`].
use std::sync::Arc;

use callsign_domain::Clock;

use crate::message::Message;
use crate::provider::{Provider, Receipt, SendError};

/// The providers a message may go through, in order.
#[derive(Clone)]
pub struct Route {
    providers: Vec<Arc<dyn Provider>>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.providers.iter().map(|p| p.name())).finish()
    }
}

impl Route {
    /// Through this provider only.
    pub fn single(provider: Arc<dyn Provider>) -> Self {
        Self { providers: vec![provider] }
    }

    /// Through these providers, in order; `None` when the list is empty.
    pub fn chain(providers: Vec<Arc<dyn Provider>>) -> Option<Self> {
        (!providers.is_empty()).then_some(Self { providers })
    }

    /// The providers, in order (never empty).
    pub fn providers(&self) -> &[Arc<dyn Provider>] {
        &self.providers
    }
}

/// One send through one provider, to record: which provider, what came of it, how long it took (by the clock).
#[derive(Debug)]
pub struct Attempt {
    /// The Guardian name of the provider that handled it.
    pub provider: &'static str,
    /// Its answer.
    pub result: Result<Receipt, SendError>,
    /// How long the send took, in milliseconds of the injected clock.
    pub duration_ms: u64,
}

/// One provider of a chain that was not tried, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// Its circuit breaker is open ([`crate::health`]).
    Unhealthy,
    /// It does not deliver the message's channel.
    Channel,
}

/// What happened to a message on its chain: each provider tried or skipped, in order, and the outcome.
#[derive(Debug)]
pub struct ChainOutcome {
    /// The attempts, in order (skipped providers included, with their reason).
    pub steps: Vec<(Attempt, Option<Skip>)>,
}

impl ChainOutcome {
    /// The attempt that delivered, if one did.
    pub fn delivered(&self) -> Option<&Attempt> {
        self.steps.iter().map(|(a, _)| a).find(|a| a.result.is_ok())
    }

    /// The last real attempt (not skipped).
    pub fn last_tried(&self) -> Option<&Attempt> {
        self.steps.iter().filter(|(_, s)| s.is_none()).map(|(a, _)| a).next_back()
    }

    /// The steps for the job and the log event: `[{provider, outcome, duration_ms, error?, retryable?}]`, where
    /// `outcome` is `sent`, `failed`, or `skipped` (with `reason`: `unhealthy` or `channel`).
    pub fn describe(&self) -> serde_json::Value {
        let steps = self.steps.iter().map(|(a, skip)| {
            let mut o = serde_json::json!({"provider": a.provider, "duration_ms": a.duration_ms});
            match (skip, &a.result) {
                (Some(s), _) => {
                    o["outcome"] = "skipped".into();
                    o["reason"] = match s {
                        Skip::Unhealthy => "unhealthy",
                        Skip::Channel => "channel",
                    }
                    .into();
                }
                (None, Ok(_)) => o["outcome"] = "sent".into(),
                (None, Err(e)) => {
                    o["outcome"] = "failed".into();
                    o["retryable"] = e.retryable.into();
                    o["error"] = e.message.clone().into();
                }
            }
            o
        });
        serde_json::Value::Array(steps.collect())
    }
}

/// Whether a failure is the provider's rather than the number's, so that the next provider of a chain may do
/// better: every retryable failure; a final one without provider details (incomplete settings, a channel it cannot
/// send); and a final one the provider answered with HTTP 401, 402 or 403 (credentials, account, funds). Every
/// other final failure (an invalid or blocked number, a message the provider refuses) ends the chain: another
/// provider would refuse the same number, and the user must not get two messages.
pub fn is_provider_fault(e: &SendError) -> bool {
    e.retryable || e.details.is_null() || matches!(e.details.get("status").and_then(|s| s.as_u64()), Some(401..=403))
}

/// Picks the provider of each message from its route and sends through it.
#[derive(Clone)]
pub struct Router {
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").finish_non_exhaustive()
    }
}

impl Router {
    /// A router timing attempts with `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { clock }
    }

    /// The provider `msg` goes through on `route`: the first that declares its channel, else the first (whose
    /// send then fails, final, saying it cannot send on that channel).
    pub fn pick<'r>(&self, route: &'r Route, msg: &Message) -> &'r Arc<dyn Provider> {
        let all = route.providers();
        all.iter().find(|p| p.capabilities().supports(msg.channel)).unwrap_or(&all[0])
    }

    async fn attempt(&self, provider: &Arc<dyn Provider>, msg: &Message) -> Attempt {
        let start = self.clock.now();
        let result = if provider.capabilities().supports(msg.channel) {
            provider.send(msg).await
        } else {
            Err(SendError::fatal(format!(
                "the `{}` provider cannot send {} messages",
                provider.name(),
                msg.channel.as_str()
            )))
        };
        let duration_ms = u64::try_from(self.clock.now().millis().saturating_sub(start.millis())).unwrap_or(0);
        Attempt { provider: provider.name(), result, duration_ms }
    }

    /// Send `msg` through the provider [`Router::pick`] chooses, and report the attempt.
    pub async fn send(&self, route: &Route, msg: &Message) -> Attempt {
        self.attempt(self.pick(route, msg), msg).await
    }

    /// Send `msg` along its chain: each provider in order, skipping one that cannot send the channel or whose
    /// breaker in `health` is open, until one delivers or a failure is the number's ([`is_provider_fault`]).
    /// Each attempt's outcome is recorded in `health`. When every provider was skipped as unhealthy, the first
    /// one that can send the channel is tried anyway (a message is never dropped for health alone).
    pub async fn send_chain(&self, route: &Route, msg: &Message, health: &crate::health::Health) -> ChainOutcome {
        let mut steps = Vec::new();
        let skipped = |p: &Arc<dyn Provider>| Attempt {
            provider: p.name(),
            result: Err(SendError::retryable(format!("the `{}` provider was skipped", p.name()))),
            duration_ms: 0,
        };
        let mut tried = false;
        for p in route.providers() {
            if !p.capabilities().supports(msg.channel) {
                steps.push((skipped(p), Some(Skip::Channel)));
                continue;
            }
            if !health.allow(p.name()) {
                steps.push((skipped(p), Some(Skip::Unhealthy)));
                continue;
            }
            tried = true;
            let a = self.attempt(p, msg).await;
            let stop = !matches!(&a.result, Err(e) if is_provider_fault(e));
            health.observe(p.name(), &a.result);
            steps.push((a, None));
            if stop {
                break;
            }
        }
        if !tried && let Some(p) = route.providers().iter().find(|p| p.capabilities().supports(msg.channel)) {
            let a = self.attempt(p, msg).await;
            health.observe(p.name(), &a.result);
            steps.push((a, None));
        }
        if steps.iter().all(|(_, s)| s.is_some()) {
            // No provider of the chain can send this channel: say so once, final.
            let p = &route.providers()[0];
            steps.push((self.attempt(p, msg).await, None));
        }
        ChainOutcome { steps }
    }
}
