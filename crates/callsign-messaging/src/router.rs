//! Which provider sends a message, and a record of each attempt.
//!
//! Today a [`Route`] is the one selected provider. It holds a list so that fallback chains and country routes
//! (picked from [`crate::Message::to`]: country, number type) can come without changing the callers: they already
//! record the provider of every [`Attempt`].
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

    /// Send `msg` through the provider [`Router::pick`] chooses, and report the attempt.
    pub async fn send(&self, route: &Route, msg: &Message) -> Attempt {
        let provider = self.pick(route, msg);
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
}
