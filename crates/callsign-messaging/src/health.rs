//! Provider health: a circuit breaker per provider, from the outcomes of recent sends.
//!
//! - **Closed** (healthy): sends go through. It opens after [`BreakerPolicy::consecutive_failures`] failures in a
//!   row, or when at least [`BreakerPolicy::min_volume`] sends in the last [`BreakerPolicy::window_ms`] failed at
//!   [`BreakerPolicy::failure_rate`] or more.
//! - **Open** (unhealthy): the router skips it (the message goes to the next provider of its chain) until
//!   [`BreakerPolicy::open_ms`] have passed.
//! - **Half-open**: then one send at a time is let through as a probe; a success closes the breaker, a failure
//!   opens it again for another `open_ms`.
//!
//! A failure here is what says the provider is not working: a retryable failure (5xx, 429, timeout, connection)
//! or a final one that is about the provider rather than the number (authentication, incomplete settings; see
//! [`crate::router::is_provider_fault`]). A refusal of the number (invalid, blocked) is the provider working.
//!
//! The state is per process (per node): each node learns from its own sends, so with several nodes a broken
//! provider is skipped on each node after that node's own failures. That degrades safely (a node never skips a
//! provider because of another node's view) at the cost of a few more failed attempts across the cluster.
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use callsign_domain::{Clock, Timestamp};
use serde::Serialize;

/// When a breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerPolicy {
    /// Failures in a row that open it.
    pub consecutive_failures: u32,
    /// The window the failure rate is measured over.
    pub window_ms: i64,
    /// Fewest sends in the window before the rate counts.
    pub min_volume: usize,
    /// The failure rate (0–1) that opens it.
    pub failure_rate: f64,
    /// How long it stays open before a probe.
    pub open_ms: i64,
}

impl Default for BreakerPolicy {
    /// 5 failures in a row, or half of at least 10 sends in 60 s; open for 30 s.
    fn default() -> Self {
        Self { consecutive_failures: 5, window_ms: 60_000, min_volume: 10, failure_rate: 0.5, open_ms: 30_000 }
    }
}

/// A breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug, Default)]
struct Breaker {
    open_until: Option<Timestamp>,
    probing: bool,
    consecutive: u32,
    /// `(when, failed, timed out)` of the sends in the window.
    recent: VecDeque<(Timestamp, bool, bool)>,
    last_error: Option<String>,
    opened_at: Option<Timestamp>,
}

/// How one provider stands, for the API, the dashboard and the metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderHealth {
    pub provider: String,
    pub state: BreakerState,
    pub consecutive_failures: u32,
    /// Sends in the window.
    pub recent_sends: usize,
    /// Of which failed.
    pub recent_failures: usize,
    /// Of which timed out.
    pub recent_timeouts: usize,
    /// RFC 3339, when open or half-open.
    pub opened_at: Option<String>,
    /// RFC 3339: when a probe is let through (open only).
    pub retry_at: Option<String>,
    /// The last failure's message (never a secret).
    pub last_error: Option<String>,
}

/// The breakers of every provider, by name (shared by the workers of one process).
#[derive(Clone)]
pub struct Health {
    clock: Arc<dyn Clock>,
    policy: BreakerPolicy,
    breakers: Arc<Mutex<BTreeMap<String, Breaker>>>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health").field("policy", &self.policy).finish_non_exhaustive()
    }
}

/// The outcome of a send, as health sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// The provider answered as a working provider does (a send, or a refusal of the number).
    Working,
    /// It failed as a provider (see the module doc); `timed_out` when it did not answer in time.
    Failed { timed_out: bool },
}

impl Health {
    pub fn new(clock: Arc<dyn Clock>, policy: BreakerPolicy) -> Self {
        Self { clock, policy, breakers: Arc::new(Mutex::new(BTreeMap::new())) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Breaker>> {
        // A poisoned lock only means a panic elsewhere mid-update; the counters are still usable.
        self.breakers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn state_of(b: &Breaker, now: Timestamp) -> BreakerState {
        match b.open_until {
            None => BreakerState::Closed,
            Some(t) if now.millis() < t.millis() => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }

    /// Whether a send through `provider` may go now. A half-open breaker lets one probe through at a time (the
    /// caller must then [`Health::record`] its outcome).
    pub fn allow(&self, provider: &str) -> bool {
        let now = self.clock.now();
        let mut all = self.lock();
        let b = all.entry(provider.to_owned()).or_default();
        match Self::state_of(b, now) {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen if b.probing => false,
            BreakerState::HalfOpen => {
                b.probing = true;
                true
            }
        }
    }

    /// Record the outcome of a send through `provider`.
    pub fn record(&self, provider: &str, observed: Observed, error: Option<&str>) {
        let now = self.clock.now();
        let p = self.policy;
        let mut all = self.lock();
        let b = all.entry(provider.to_owned()).or_default();
        let (failed, timed_out) = match observed {
            Observed::Working => (false, false),
            Observed::Failed { timed_out } => (true, timed_out),
        };
        b.recent.push_back((now, failed, timed_out));
        while b.recent.front().is_some_and(|(t, _, _)| now.millis() - t.millis() > p.window_ms) {
            b.recent.pop_front();
        }
        let was = Self::state_of(b, now);
        b.probing = false;
        if !failed {
            b.consecutive = 0;
            if was != BreakerState::Closed {
                b.open_until = None;
                b.opened_at = None;
                tracing::info!(provider, "provider healthy again: its circuit breaker closed");
            }
            return;
        }
        b.consecutive += 1;
        b.last_error = error.map(|e| e.chars().take(300).collect());
        let failures = b.recent.iter().filter(|r| r.1).count();
        let rate_trips = b.recent.len() >= p.min_volume && failures as f64 >= p.failure_rate * b.recent.len() as f64;
        if was == BreakerState::HalfOpen || b.consecutive >= p.consecutive_failures || rate_trips {
            if was == BreakerState::Closed {
                b.opened_at = Some(now);
                tracing::warn!(provider, consecutive = b.consecutive, "provider unhealthy: its circuit breaker opened");
            }
            b.open_until = Some(now.plus(std::time::Duration::from_millis(u64::try_from(p.open_ms).unwrap_or(0))));
        }
    }

    /// Record a send's result (see the module doc for what counts as the provider failing).
    pub fn observe(&self, provider: &str, result: &Result<crate::provider::Receipt, crate::provider::SendError>) {
        match result {
            Err(e) if crate::router::is_provider_fault(e) => {
                self.record(provider, Observed::Failed { timed_out: e.message.contains("timed out") }, Some(&e.message))
            }
            _ => self.record(provider, Observed::Working, None),
        }
    }

    /// How `provider` stands now.
    pub fn status(&self, provider: &str) -> ProviderHealth {
        let now = self.clock.now();
        let all = self.lock();
        let empty = Breaker::default();
        let b = all.get(provider).unwrap_or(&empty);
        let in_window: Vec<_> =
            b.recent.iter().filter(|(t, _, _)| now.millis() - t.millis() <= self.policy.window_ms).collect();
        let state = Self::state_of(b, now);
        ProviderHealth {
            provider: provider.to_owned(),
            state,
            consecutive_failures: b.consecutive,
            recent_sends: in_window.len(),
            recent_failures: in_window.iter().filter(|r| r.1).count(),
            recent_timeouts: in_window.iter().filter(|r| r.2).count(),
            opened_at: b.opened_at.filter(|_| state != BreakerState::Closed).map(|t| t.to_rfc3339()),
            retry_at: b.open_until.filter(|_| state == BreakerState::Open).map(|t| t.to_rfc3339()),
            last_error: b.last_error.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callsign_domain::ManualClock;
    use std::time::Duration;

    fn health() -> (Health, ManualClock) {
        let clock = ManualClock::new(Timestamp(1_767_225_600_000));
        (Health::new(Arc::new(clock.clone()), BreakerPolicy::default()), clock)
    }

    #[test]
    fn consecutive_failures_open_it_then_one_probe_closes_it() {
        let (h, clock) = health();
        for _ in 0..4 {
            assert!(h.allow("p"));
            h.record("p", Observed::Failed { timed_out: true }, Some("timed out"));
        }
        assert_eq!(h.status("p").state, BreakerState::Closed);
        h.record("p", Observed::Failed { timed_out: false }, Some("HTTP 503"));
        let s = h.status("p");
        assert_eq!((s.state, s.consecutive_failures, s.recent_timeouts), (BreakerState::Open, 5, 4));
        assert_eq!(s.last_error.as_deref(), Some("HTTP 503"));
        assert!(s.retry_at.is_some() && s.opened_at.is_some());
        assert!(!h.allow("p"), "open: skipped");
        clock.advance(Duration::from_secs(30));
        assert_eq!(h.status("p").state, BreakerState::HalfOpen);
        assert!(h.allow("p"), "one probe");
        assert!(!h.allow("p"), "only one at a time");
        h.record("p", Observed::Working, None);
        assert_eq!(h.status("p").state, BreakerState::Closed);
        assert!(h.allow("p") && h.allow("p"));
    }

    #[test]
    fn a_failed_probe_opens_it_again() {
        let (h, clock) = health();
        for _ in 0..5 {
            h.record("p", Observed::Failed { timed_out: false }, None);
        }
        clock.advance(Duration::from_secs(31));
        assert!(h.allow("p"));
        h.record("p", Observed::Failed { timed_out: false }, None);
        assert_eq!(h.status("p").state, BreakerState::Open);
        clock.advance(Duration::from_secs(29));
        assert!(!h.allow("p"));
        clock.advance(Duration::from_secs(2));
        assert!(h.allow("p"));
    }

    #[test]
    fn the_failure_rate_opens_it_and_old_sends_leave_the_window() {
        let (h, _) = health();
        for i in 0..10 {
            let o = if i % 2 == 1 { Observed::Failed { timed_out: false } } else { Observed::Working };
            h.record("p", o, None);
        }
        assert_eq!(h.status("p").state, BreakerState::Open, "5 of 10 failed");
        let (h, clock2) = health();
        for _ in 0..9 {
            h.record("q", Observed::Working, None);
        }
        clock2.advance(Duration::from_secs(61));
        for _ in 0..4 {
            h.record("q", Observed::Failed { timed_out: false }, None);
        }
        assert_eq!(h.status("q").recent_sends, 4, "the old sends left the window");
        assert_eq!(h.status("q").state, BreakerState::Closed, "4 sends are under the minimum volume");
    }

    #[test]
    fn providers_are_independent_and_unknown_ones_are_healthy() {
        let (h, _) = health();
        for _ in 0..5 {
            h.record("a", Observed::Failed { timed_out: false }, None);
        }
        assert!(!h.allow("a") && h.allow("b"));
        assert_eq!(h.status("never").state, BreakerState::Closed);
    }
}
