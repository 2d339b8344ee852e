//! The operator's figures over time (the dashboard's Overview): messages per hour by channel and outcome, by
//! provider and by country, and limit refusals by kind, as hourly windowed counters in the store (namespace
//! `stats`, the same database as the logs, whichever limiter holds the rate limits). Each terminal delivery adds to
//! three counters in one statement batch; a chart reads at most 720 slots, so it costs the same with a million
//! log events as with ten.
use callsign_domain::{Channel, Timestamp};
use callsign_store::{CounterRow, CounterWindow};

use crate::Core;

pub const NS: &str = "stats";
pub const HOUR_MS: i64 = 3_600_000;
/// How long an hour's counters are kept: 31 days and a day more.
pub const KEEP_MS: i64 = 32 * 24 * HOUR_MS;

/// A message ended: count it for its hour, channel, provider and country.
pub async fn record_message(app: &Core, channel: Channel, provider: &str, country: Option<&str>, outcome: &str) {
    let now = app.clock.now();
    let keys = [
        format!("msg|{channel}|{outcome}"),
        format!("provider|{provider}|{outcome}"),
        format!("country|{}|{outcome}", country.unwrap_or("ZZ")),
    ];
    let adds: Vec<(&str, i64)> = keys.iter().map(|k| (k.as_str(), 1)).collect();
    if let Err(e) = app.store.counters_add(NS, hour_of(now), &adds, now, KEEP_MS).await {
        tracing::warn!(error = %e, "a message statistic could not be written");
    }
}

/// The events counted per hour besides messages (`event|<code>`).
pub const COUNTED_EVENTS: &[&str] = &["gd_auth_succeed", "gd_auth_failed", "cs_pumping_detected"];

/// A log event: counted when it is a refusal by a limit (`refusal|<kind>`, the kinds of
/// [`crate::telemetry::refusal_kind`]) or one of [`COUNTED_EVENTS`]; every other event costs nothing here.
pub async fn record_event(app: &Core, code: &str, details: &serde_json::Value) {
    let mut keys = Vec::new();
    if let Some(kind) = crate::telemetry::refusal_kind(code, details) {
        keys.push(format!("refusal|{kind}"));
    }
    if COUNTED_EVENTS.contains(&code) {
        keys.push(format!("event|{code}"));
    }
    if keys.is_empty() {
        return;
    }
    let now = app.clock.now();
    let adds: Vec<(&str, i64)> = keys.iter().map(|k| (k.as_str(), 1)).collect();
    if let Err(e) = app.store.counters_add(NS, hour_of(now), &adds, now, KEEP_MS).await {
        tracing::warn!(error = %e, code, "an event statistic could not be written");
    }
}

fn hour_of(at: Timestamp) -> i64 {
    at.millis().div_euclid(HOUR_MS) * HOUR_MS
}

/// The counters of the last `hours` hours (the current one included), oldest first.
pub async fn last_hours(app: &Core, hours: i64) -> crate::BoxResult<Series> {
    let window = CounterWindow::ending_at(app.clock.now(), HOUR_MS, hours);
    Ok(Series { window, rows: app.store.counters_list(NS, window).await? })
}

/// Hourly counters over a window.
#[derive(Debug, Clone)]
pub struct Series {
    pub window: CounterWindow,
    pub rows: Vec<CounterRow>,
}

impl Series {
    /// The sum of `key` per bucket of `per` slots (24 for days), oldest first, with each bucket's start.
    pub fn per(&self, key: &str, per: i64) -> Vec<(i64, i64)> {
        let slots: Vec<i64> = self.window.slots().collect();
        let per = per.max(1) as usize;
        slots
            .chunks(per)
            .map(|chunk| {
                let (first, last) = (chunk[0], chunk[chunk.len() - 1]);
                let sum = self
                    .rows
                    .iter()
                    .filter(|r| r.key == key && r.slot >= first && r.slot <= last)
                    .map(|r| r.value)
                    .sum();
                (first, sum)
            })
            .collect()
    }

    /// The total of `key` over the window.
    pub fn total(&self, key: &str) -> i64 {
        self.rows.iter().filter(|r| r.key == key).map(|r| r.value).sum()
    }

    /// The names under `prefix|` (`provider`, `country`, `refusal`) with their totals of each outcome (`sent`,
    /// `failed`; a refusal's total is under ""), largest first.
    pub fn by(&self, prefix: &str) -> Vec<Breakdown> {
        let mut out: Vec<Breakdown> = Vec::new();
        for r in &self.rows {
            let Some(rest) = r.key.strip_prefix(prefix).and_then(|k| k.strip_prefix('|')) else { continue };
            let (name, outcome) = rest.split_once('|').unwrap_or((rest, ""));
            let at = match out.iter().position(|b| b.name == name) {
                Some(i) => i,
                None => {
                    out.push(Breakdown { name: name.to_owned(), sent: 0, failed: 0, total: 0 });
                    out.len() - 1
                }
            };
            let b = &mut out[at];
            match outcome {
                "sent" => b.sent += r.value,
                "failed" => b.failed += r.value,
                _ => {}
            }
            b.total += r.value;
        }
        out.sort_by(|a, b| b.total.cmp(&a.total).then(a.name.cmp(&b.name)));
        out
    }
}

/// One provider's, country's or limit's figures over a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breakdown {
    pub name: String,
    pub sent: i64,
    pub failed: i64,
    pub total: i64,
}

impl Breakdown {
    /// Failed ÷ (sent + failed), when anything was counted.
    pub fn failure_rate(&self) -> Option<f64> {
        let all = self.sent + self.failed;
        (all > 0).then(|| self.failed as f64 / all as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, slot: i64, value: i64) -> CounterRow {
        CounterRow { key: key.into(), slot, value }
    }

    #[test]
    fn series_sum_per_bucket_and_break_down() {
        let window = CounterWindow { slot_ms: HOUR_MS, from: 0, to: 47 * HOUR_MS };
        let s = Series {
            window,
            rows: vec![
                row("msg|sms|sent", 0, 2),
                row("msg|sms|sent", 23 * HOUR_MS, 3),
                row("msg|sms|sent", 24 * HOUR_MS, 4),
                row("provider|twilio|sent", 0, 5),
                row("provider|twilio|failed", HOUR_MS, 5),
                row("provider|auth0|sent", 0, 1),
                row("refusal|sends", 0, 7),
            ],
        };
        assert_eq!(s.per("msg|sms|sent", 24), vec![(0, 5), (24 * HOUR_MS, 4)]);
        assert_eq!(s.per("msg|sms|sent", 1).len(), 48);
        assert_eq!(s.total("msg|sms|sent"), 9);
        let p = s.by("provider");
        assert_eq!(p[0], Breakdown { name: "twilio".into(), sent: 5, failed: 5, total: 10 });
        assert_eq!(p[0].failure_rate(), Some(0.5));
        assert_eq!(p[1].name, "auth0");
        assert_eq!(s.by("refusal")[0], Breakdown { name: "sends".into(), sent: 0, failed: 0, total: 7 });
    }
}
