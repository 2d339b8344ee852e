//! Usage triggers: what the messages Callsign sends cost, and what happens when a period's count or spend passes a
//! threshold (docs/FRAUD.md, "Usage triggers").
//!
//! One settings document (`phone_usage`, [`UsageSettings`]): a price table (US dollars per message, per ISO
//! country and channel, with a `default` for the countries not listed; held as whole micro-dollars) and the
//! triggers ([`Trigger`]): a metric (`count` or `spend`), a UTC period (`hour`, `day`, `month`), a channel
//! (`sms`, `voice` or `any`), optionally a country, a threshold and an action (`alert`, or `stop`: a hard cap for
//! the rest of the period).
//!
//! Counting lives in the limiter's windowed counters (namespace [`NS`], one slot per period start), so it holds
//! across nodes:
//!
//! - Every message a provider accepted counts once, in each period: `{p}|count|{channel}|{country}` (1) and
//!   `{p}|spend|{channel}|{country}` (its estimated price), `p` being `h`, `d` or `m` ([`after_send`]).
//! - A `stop` trigger keeps its own counter (`cap|{id}`), taken atomically before the send with
//!   `counter_take` under the threshold ([`before_send`]); a refused take refuses the message, a message that then
//!   fails at every provider is given back (a negative add). A stop trigger counts the messages sent since it was
//!   created (the period's figures before it do not fill it).
//! - A trigger fires at most once per period, on every node together: `counter_take` on `fired|{id}` with cap 1.
//!   An `alert` trigger fires when the period's figure (the sum of the matching counters) reaches its threshold;
//!   a `stop` trigger fires at its first refusal. Firing writes `cs_usage_trigger` and raises an operator alert
//!   ([`crate::alerts::raise`]).
use std::collections::BTreeMap;

use callsign_domain::phone::{PhoneNumber, calling_code};
use callsign_domain::{Channel, Timestamp};
use callsign_jobs::Attempt;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};

use crate::identity::events::{self, EventCtx};
use crate::{Core, Origin};

pub const SETTINGS_KEY: &str = "phone_usage";
/// The limiter namespace of the usage counters.
pub const NS: &str = "usage";
/// `reason` of a send refused by a hard cap.
pub const USAGE_CAP_REACHED: &str = "usage_cap_reached";
/// The event a trigger writes when it fires.
pub const EVENT: &str = "cs_usage_trigger";
/// The alert kind a trigger raises.
pub const ALERT_KIND: &str = "usage_trigger";
/// The most triggers in the document.
pub const MAX_TRIGGERS: usize = 50;
/// The most countries in the price table.
pub const MAX_PRICED_COUNTRIES: usize = 300;
/// The highest price of one message, in US dollars.
pub const MAX_PRICE_USD: f64 = 100.0;
/// The highest threshold (a count, or US dollars).
pub const MAX_THRESHOLD: f64 = 1e12;
/// Micro-dollars in a dollar.
pub const MICROS: f64 = 1_000_000.0;
/// How `country` is written in the counters for a number the numbering plan gives no country.
pub const NO_COUNTRY: &str = "ZZ";

/// The whole document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsageSettings {
    pub prices: Prices,
    pub triggers: Vec<Trigger>,
}

/// Estimated price of one message, per channel, in micro-dollars (written as US dollars in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    #[serde(with = "usd")]
    pub sms: i64,
    #[serde(with = "usd")]
    pub voice: i64,
}

impl Price {
    pub fn get(&self, channel: Channel) -> i64 {
        match channel {
            Channel::Sms => self.sms,
            Channel::Voice => self.voice,
        }
    }
}

/// The price table: `default` for every country not in `countries`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    #[serde(default = "default_price")]
    pub default: Price,
    #[serde(default)]
    pub countries: BTreeMap<String, Price>,
}

/// Rough public list prices (US dollars per SMS, per voice call of about a minute) for the largest markets, rounded;
/// docs/FRAUD.md says where they come from. `(country, sms, voice)`.
pub const DEFAULT_PRICES: &[(&str, f64, f64)] = &[
    ("AE", 0.04, 0.15),
    ("AR", 0.06, 0.05),
    ("AU", 0.05, 0.05),
    ("BD", 0.25, 0.10),
    ("BR", 0.05, 0.05),
    ("CA", 0.008, 0.014),
    ("CN", 0.04, 0.10),
    ("CO", 0.01, 0.05),
    ("DE", 0.09, 0.05),
    ("EG", 0.13, 0.20),
    ("ES", 0.08, 0.05),
    ("FR", 0.08, 0.05),
    ("GB", 0.04, 0.02),
    ("ID", 0.40, 0.15),
    ("IN", 0.08, 0.05),
    ("IT", 0.08, 0.05),
    ("JP", 0.08, 0.10),
    ("KE", 0.10, 0.10),
    ("KR", 0.04, 0.05),
    ("MX", 0.05, 0.05),
    ("NG", 0.20, 0.20),
    ("NL", 0.10, 0.05),
    ("PH", 0.20, 0.20),
    ("PK", 0.30, 0.10),
    ("PL", 0.04, 0.05),
    ("RU", 0.50, 0.20),
    ("SA", 0.05, 0.10),
    ("TH", 0.02, 0.10),
    ("TR", 0.02, 0.10),
    ("UA", 0.08, 0.20),
    ("US", 0.008, 0.014),
    ("VN", 0.09, 0.10),
    ("ZA", 0.02, 0.05),
];

/// The price of a country not in the table: on the high side, so that a spend trigger errs towards firing.
pub const DEFAULT_PRICE: (f64, f64) = (0.10, 0.10);

fn default_price() -> Price {
    Price { sms: micros(DEFAULT_PRICE.0), voice: micros(DEFAULT_PRICE.1) }
}

fn micros(usd: f64) -> i64 {
    // Bounded by validation ([`MAX_PRICE_USD`], [`MAX_THRESHOLD`]); the cast saturates anyway.
    (usd * MICROS).round() as i64
}

impl Default for Prices {
    fn default() -> Self {
        Self {
            default: default_price(),
            countries: DEFAULT_PRICES
                .iter()
                .map(|(c, s, v)| ((*c).to_owned(), Price { sms: micros(*s), voice: micros(*v) }))
                .collect(),
        }
    }
}

impl Prices {
    /// The estimated price of one message to `country` (micro-dollars).
    pub fn price(&self, country: Option<&str>, channel: Channel) -> i64 {
        country.and_then(|c| self.countries.get(c)).unwrap_or(&self.default).get(channel)
    }
}

/// US dollars in JSON, micro-dollars in memory.
mod usd {
    use super::*;

    pub fn serialize<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(*v as f64 / MICROS)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let usd = f64::deserialize(d)?;
        if !usd.is_finite() || !(0.0..=MAX_PRICE_USD).contains(&usd) {
            return Err(serde::de::Error::custom(format!("a price is from 0 to {MAX_PRICE_USD} US dollars")));
        }
        Ok(micros(usd))
    }
}

/// What a trigger measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Messages sent.
    Count,
    /// Their estimated price (US dollars).
    Spend,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Count => "count",
            Metric::Spend => "spend",
        }
    }
}

/// A UTC calendar period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Hour,
    Day,
    Month,
}

impl Period {
    pub const ALL: [Period; 3] = [Period::Hour, Period::Day, Period::Month];

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Month => "month",
        }
    }

    /// The letter of the period in counter keys.
    fn tag(self) -> &'static str {
        match self {
            Period::Hour => "h",
            Period::Day => "d",
            Period::Month => "m",
        }
    }

    /// The start of the period that holds `now`, and the start of the next one (Unix ms, UTC).
    pub fn bounds(self, now: Timestamp) -> (i64, i64) {
        const HOUR: i64 = 3_600_000;
        const DAY: i64 = 24 * HOUR;
        let ms = now.millis();
        match self {
            Period::Hour => {
                let s = ms.div_euclid(HOUR) * HOUR;
                (s, s + HOUR)
            }
            Period::Day => {
                let s = ms.div_euclid(DAY) * DAY;
                (s, s + DAY)
            }
            Period::Month => {
                let (y, m, _) = civil_from_days(ms.div_euclid(DAY));
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                (days_from_civil(y, m, 1) * DAY, days_from_civil(ny, nm, 1) * DAY)
            }
        }
    }

    /// How long a counter of the period is kept after it was last added to: two periods.
    fn ttl_ms(self) -> i64 {
        match self {
            Period::Hour => 2 * 3_600_000,
            Period::Day => 2 * 86_400_000,
            Period::Month => 62 * 86_400_000,
        }
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

/// Which messages a trigger counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ChannelFilter {
    Sms,
    Voice,
    #[default]
    Any,
}

impl ChannelFilter {
    pub fn matches(self, c: Channel) -> bool {
        matches!(
            (self, c),
            (ChannelFilter::Any, _) | (ChannelFilter::Sms, Channel::Sms) | (ChannelFilter::Voice, Channel::Voice)
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelFilter::Sms => "sms",
            ChannelFilter::Voice => "voice",
            ChannelFilter::Any => "any",
        }
    }
}

/// What a crossed trigger does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Write the event and raise an alert, once per period.
    Alert,
    /// The same, and refuse every further message it counts until the period ends (a hard cap).
    Stop,
}

/// One trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// `[A-Za-z0-9_-]`, 1 to 64 characters; generated (`trg_…`) when left out.
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub metric: Metric,
    pub period: Period,
    #[serde(default)]
    pub channel: ChannelFilter,
    /// ISO 3166 alpha-2; `None`: every country.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Messages (`count`, a whole number) or US dollars (`spend`).
    pub threshold: f64,
    pub action: Action,
}

impl Trigger {
    /// The threshold in counter units (messages, or micro-dollars).
    pub fn limit(&self) -> i64 {
        match self.metric {
            Metric::Count => self.threshold as i64,
            Metric::Spend => micros(self.threshold),
        }
    }

    /// Whether a message on `channel` to `country` counts.
    pub fn matches(&self, channel: Channel, country: &str) -> bool {
        self.channel.matches(channel) && self.country.as_deref().is_none_or(|c| c == country)
    }

    /// What one message adds (1, or its price).
    fn amount(&self, price: i64) -> i64 {
        match self.metric {
            Metric::Count => 1,
            Metric::Spend => price,
        }
    }

    fn describe(&self) -> Value {
        json!({
            "trigger": self.id,
            "name": self.name,
            "metric": self.metric,
            "period": self.period,
            "channel": self.channel,
            "country": self.country,
            "threshold": self.threshold,
            "action": self.action,
        })
    }
}

/// A field problem: `(property, message)`.
pub type FieldError = (String, String);

/// Check the raw JSON first where serde would not name the field (a price or threshold that is not a number,
/// an unknown metric, period, channel or action), then parse and [`UsageSettings::validate`].
pub fn parse(body: &Value, rng: &dyn callsign_domain::RandomSource) -> Result<UsageSettings, FieldError> {
    let Some(obj) = body.as_object() else { return Err(("body".into(), "expected an object".into())) };
    for k in obj.keys() {
        if k != "prices" && k != "triggers" {
            return Err((k.clone(), format!("unknown property `{k}`")));
        }
    }
    if let Some(p) = obj.get("prices") {
        let Some(p) = p.as_object() else { return Err(("prices".into(), "expected an object".into())) };
        for k in p.keys() {
            if k != "default" && k != "countries" {
                return Err((format!("prices.{k}"), format!("unknown property `{k}`")));
            }
        }
        let mut rows: Vec<(String, &Value)> = Vec::new();
        if let Some(d) = p.get("default") {
            rows.push(("prices.default".into(), d));
        }
        if let Some(c) = p.get("countries") {
            let Some(c) = c.as_object() else { return Err(("prices.countries".into(), "expected an object".into())) };
            if c.len() > MAX_PRICED_COUNTRIES {
                return Err(("prices.countries".into(), format!("at most {MAX_PRICED_COUNTRIES} countries")));
            }
            for (code, v) in c {
                if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) || calling_code(code).is_none() {
                    return Err((
                        format!("prices.countries.{code}"),
                        format!("`{code}` is not an ISO 3166 country code (upper case)"),
                    ));
                }
                rows.push((format!("prices.countries.{code}"), v));
            }
        }
        for (at, v) in rows {
            let Some(v) = v.as_object() else { return Err((at, "expected an object with `sms` and `voice`".into())) };
            for ch in ["sms", "voice"] {
                match v.get(ch) {
                    None => return Err((format!("{at}.{ch}"), "a price is required".into())),
                    Some(n) => match n.as_f64() {
                        Some(x) if (0.0..=MAX_PRICE_USD).contains(&x) => {}
                        Some(_) => {
                            return Err((
                                format!("{at}.{ch}"),
                                format!("a price is from 0 to {MAX_PRICE_USD} US dollars"),
                            ));
                        }
                        None => return Err((format!("{at}.{ch}"), "a price is a number (US dollars)".into())),
                    },
                }
            }
            if let Some(k) = v.keys().find(|k| *k != "sms" && *k != "voice") {
                return Err((format!("{at}.{k}"), format!("unknown property `{k}`")));
            }
        }
    }
    if let Some(t) = obj.get("triggers") {
        let Some(t) = t.as_array() else { return Err(("triggers".into(), "expected an array".into())) };
        if t.len() > MAX_TRIGGERS {
            return Err(("triggers".into(), format!("at most {MAX_TRIGGERS} triggers")));
        }
        for (i, tr) in t.iter().enumerate() {
            let at = |f: &str| format!("triggers[{i}].{f}");
            let Some(tr) = tr.as_object() else { return Err((format!("triggers[{i}]"), "expected an object".into())) };
            let known = ["id", "name", "metric", "period", "channel", "country", "threshold", "action"];
            if let Some(k) = tr.keys().find(|k| !known.contains(&k.as_str())) {
                return Err((at(k), format!("unknown property `{k}`")));
            }
            for (f, allowed) in [
                ("metric", &["count", "spend"][..]),
                ("period", &["hour", "day", "month"][..]),
                ("channel", &["sms", "voice", "any"][..]),
                ("action", &["alert", "stop"][..]),
            ] {
                match tr.get(f) {
                    None if f == "channel" => {}
                    None => return Err((at(f), format!("required: one of {}", allowed.join(", ")))),
                    Some(v) if v.as_str().is_some_and(|s| allowed.contains(&s)) => {}
                    Some(v) => return Err((at(f), format!("{v} is not one of {}", allowed.join(", ")))),
                }
            }
            match tr.get("threshold").map(|v| v.as_f64()) {
                None => return Err((at("threshold"), "required".into())),
                Some(None) => return Err((at("threshold"), "a threshold is a number".into())),
                Some(Some(_)) => {}
            }
            for f in ["id", "name", "country"] {
                if let Some(v) = tr.get(f)
                    && !v.is_string()
                    && !(f == "country" && v.is_null())
                {
                    return Err((at(f), "expected a string".into()));
                }
            }
        }
    }
    let mut s: UsageSettings = serde_json::from_value(body.clone()).map_err(|e| ("body".to_owned(), e.to_string()))?;
    s.validate(rng)?;
    Ok(s)
}

impl UsageSettings {
    /// Check and normalise: thresholds (positive, whole for `count`), trigger ids (generated when empty, unique),
    /// names, countries (upper case, ISO 3166).
    pub fn validate(&mut self, rng: &dyn callsign_domain::RandomSource) -> Result<(), FieldError> {
        for code in self.prices.countries.keys() {
            if code.len() != 2 || calling_code(code).is_none() {
                return Err((format!("prices.countries.{code}"), format!("`{code}` is not an ISO 3166 country code")));
            }
        }
        if self.triggers.len() > MAX_TRIGGERS {
            return Err(("triggers".into(), format!("at most {MAX_TRIGGERS} triggers")));
        }
        for i in 0..self.triggers.len() {
            let at = |f: &str| format!("triggers[{i}].{f}");
            let t = &mut self.triggers[i];
            if !t.threshold.is_finite() || t.threshold <= 0.0 {
                return Err((at("threshold"), "a threshold is a number above 0".into()));
            }
            if t.threshold > MAX_THRESHOLD {
                return Err((at("threshold"), format!("a threshold is at most {MAX_THRESHOLD}")));
            }
            if t.metric == Metric::Count && t.threshold.fract() != 0.0 {
                return Err((at("threshold"), "a `count` threshold is a whole number of messages".into()));
            }
            t.id = t.id.trim().to_owned();
            if t.id.is_empty() {
                t.id = format!("trg_{}", callsign_domain::rng::from_alphabet(rng, callsign_domain::rng::ALNUM, 16));
            }
            if t.id.len() > 64 || !t.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                return Err((at("id"), "an id is 1 to 64 letters, digits, `_` or `-`".into()));
            }
            t.name = t.name.trim().to_owned();
            if t.name.chars().count() > 100 {
                return Err((at("name"), "a name is at most 100 characters".into()));
            }
            if let Some(c) = &mut t.country {
                *c = c.trim().to_ascii_uppercase();
                if c.len() != 2 || calling_code(c).is_none() {
                    return Err((at("country"), format!("`{c}` is not an ISO 3166 country code")));
                }
            }
            let id = self.triggers[i].id.clone();
            if self.triggers[..i].iter().any(|o| o.id == id) {
                return Err((at("id"), format!("`{id}` is used by another trigger")));
            }
        }
        Ok(())
    }
}

/// The stored document (the defaults when none was saved).
pub async fn load(app: &Core) -> crate::BoxResult<UsageSettings> {
    crate::documents::load(app, SETTINGS_KEY).await
}

/// Change the document without losing a concurrent write ([`crate::documents::modify`]).
pub async fn modify<E>(
    app: &Core,
    mut change: impl FnMut(&mut UsageSettings) -> Result<(), E>,
) -> crate::BoxResult<Result<UsageSettings, E>> {
    crate::documents::modify(app, SETTINGS_KEY, "phone usage settings", UsageSettings::default, |p| {
        change(p)?;
        Ok(p.clone())
    })
    .await
}

// --- the send hooks ---------------------------------------------------------------------------------------------

/// What [`before_send`] reserved for one message, for [`after_send`].
#[derive(Debug)]
pub struct Hold {
    channel: Channel,
    country: String,
    price: i64,
    /// `(slot, key, amount)` taken under stop triggers.
    taken: Vec<(i64, String, i64)>,
    settings: UsageSettings,
}

fn country_of(to: &PhoneNumber) -> String {
    to.country().unwrap_or(NO_COUNTRY).to_owned()
}

/// Before a message is handed to a provider: take its share of every matching `stop` trigger's cap, atomically.
/// A cap that would be passed refuses the message: an `Attempt::Final` with `reason` [`USAGE_CAP_REACHED`]
/// (nothing is sent, the job is not retried) and, the first time in the period, the trigger fires. The store
/// unavailable: retry later (fail closed).
pub async fn before_send(app: &Core, channel: Channel, to: &PhoneNumber, provider: &str) -> Result<Hold, Attempt> {
    let retry = |e: crate::BoxError| Attempt::Retryable {
        error: format!("cannot check the usage triggers: {e}"),
        details: json!({"provider": provider}),
    };
    let settings = load(app).await.map_err(retry)?;
    let country = country_of(to);
    let price = settings.prices.price(Some(&country), channel);
    let now = app.clock.now();
    let mut hold = Hold { channel, country, price, taken: Vec::new(), settings };
    let stops: Vec<Trigger> = hold
        .settings
        .triggers
        .iter()
        .filter(|t| t.action == Action::Stop && t.matches(channel, &hold.country))
        .cloned()
        .collect();
    for t in stops {
        let (slot, _) = t.period.bounds(now);
        let key = format!("cap|{}", t.id);
        let amount = t.amount(price);
        match app.limiter.counter_take(NS, slot, &key, amount, t.limit(), now, t.period.ttl_ms()).await {
            Ok(Some(_)) => hold.taken.push((slot, key, amount)),
            Ok(None) => {
                give_back(app, &hold).await;
                fire(app, &t, slot, None).await;
                let mut details = t.describe();
                details["reason"] = json!(USAGE_CAP_REACHED);
                details["country"] = json!(hold.country);
                details["provider"] = json!(provider);
                let error = format!(
                    "usage cap reached: the `{}` trigger ({} {} per {}) stops {} messages until the period ends",
                    t.id,
                    t.metric.as_str(),
                    t.threshold,
                    t.period.as_str(),
                    channel
                );
                return Err(Attempt::Final { error, details });
            }
            Err(e) => {
                give_back(app, &hold).await;
                return Err(retry(e.into()));
            }
        }
    }
    Ok(hold)
}

/// Undo the takes of a message that was not sent.
async fn give_back(app: &Core, hold: &Hold) {
    let now = app.clock.now();
    for (slot, key, amount) in &hold.taken {
        if let Err(e) = app.limiter.counters_add(NS, *slot, &[(key.as_str(), -amount)], now, 62 * 86_400_000).await {
            tracing::warn!(error = %e, key = %key, "a usage cap could not be given back");
        }
    }
}

/// After the provider chain ran: a message that was `sent` counts in every period (and may fire alert triggers);
/// one that was not gives back what [`before_send`] took.
pub async fn after_send(app: &Core, hold: Hold, sent: bool) {
    if !sent {
        give_back(app, &hold).await;
        return;
    }
    let now = app.clock.now();
    for p in Period::ALL {
        let (slot, _) = p.bounds(now);
        let count = format!("{}|count|{}|{}", p.tag(), hold.channel, hold.country);
        let spend = format!("{}|spend|{}|{}", p.tag(), hold.channel, hold.country);
        let adds = [(count.as_str(), 1), (spend.as_str(), hold.price)];
        if let Err(e) = app.limiter.counters_add(NS, slot, &adds, now, p.ttl_ms()).await {
            tracing::warn!(error = %e, "a sent message could not be counted in the usage figures");
        }
    }
    for t in
        hold.settings.triggers.iter().filter(|t| t.action == Action::Alert && t.matches(hold.channel, &hold.country))
    {
        let (slot, _) = t.period.bounds(now);
        match figure(app, t, slot).await {
            Ok(v) if v >= t.limit() => fire(app, t, slot, Some(v)).await,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, trigger = %t.id, "a usage trigger could not be checked"),
        }
    }
}

/// The period's figure a trigger measures: the sum of the matching counters.
async fn figure(app: &Core, t: &Trigger, slot: i64) -> crate::BoxResult<i64> {
    let rows = app.limiter.counters_list(NS, window(slot)).await?;
    Ok(rows.iter().filter_map(|r| Figure::parse(&r.key).filter(|f| f.counts_for(t)).map(|_| r.value)).sum())
}

fn window(slot: i64) -> callsign_store::CounterWindow {
    callsign_store::CounterWindow { slot_ms: 1, from: slot, to: slot }
}

/// A parsed figure key: `{p}|{metric}|{channel}|{country}`.
struct Figure<'a> {
    period: &'a str,
    metric: &'a str,
    channel: &'a str,
    country: &'a str,
}

impl<'a> Figure<'a> {
    fn parse(key: &'a str) -> Option<Self> {
        let mut it = key.split('|');
        let f = Figure { period: it.next()?, metric: it.next()?, channel: it.next()?, country: it.next()? };
        (it.next().is_none() && matches!(f.period, "h" | "d" | "m")).then_some(f)
    }

    fn counts_for(&self, t: &Trigger) -> bool {
        self.period == t.period.tag()
            && self.metric == t.metric.as_str()
            && (t.channel == ChannelFilter::Any || self.channel == t.channel.as_str())
            && t.country.as_deref().is_none_or(|c| c == self.country)
    }
}

/// Fire `t` for the period that starts at `slot`, once across nodes: the event and the alert.
async fn fire(app: &Core, t: &Trigger, slot: i64, value: Option<i64>) {
    let now = app.clock.now();
    let key = format!("fired|{}", t.id);
    match app.limiter.counter_take(NS, slot, &key, 1, 1, now, t.period.ttl_ms()).await {
        Ok(Some(_)) => {}
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, trigger = %t.id, "a usage trigger could not be marked fired");
            return;
        }
    }
    let mut details = t.describe();
    details["period_start"] = json!(Timestamp::from_millis(slot).to_rfc3339());
    if let Some(v) = value {
        details["value"] = match t.metric {
            Metric::Count => json!(v),
            Metric::Spend => json!(v as f64 / MICROS),
        };
    }
    let what = if t.action == Action::Stop { "reached its cap; sending stopped" } else { "crossed its threshold" };
    let label = if t.name.is_empty() { t.id.clone() } else { format!("{} ({})", t.name, t.id) };
    let description = format!("Usage trigger {label} {what} for this {}", t.period.as_str());
    tracing::warn!(trigger = %t.id, action = ?t.action, "usage trigger fired");
    events::record(
        app,
        EVENT,
        &Origin::default(),
        EventCtx { description: Some(description.clone()), details: details.clone(), ..Default::default() },
    )
    .await;
    details["description"] = json!(description);
    crate::alerts::raise(app, ALERT_KIND, details).await;
}

// --- the operator's view ----------------------------------------------------------------------------------------

/// One row of the current figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub channel: String,
    pub country: String,
    pub count: i64,
    /// US dollars.
    pub spend: f64,
}

/// A period's figures and the state of its triggers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodView {
    pub period: &'static str,
    pub start: String,
    pub end: String,
    pub count: i64,
    pub spend: f64,
    pub by_channel_and_country: Vec<Row>,
}

/// A trigger's state in its current period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TriggerState {
    #[serde(flatten)]
    pub trigger: Value,
    /// The period's figure it measures (messages or US dollars).
    pub value: f64,
    /// It fired this period (for a `stop` trigger: sending is stopped).
    pub fired: bool,
}

/// The current hour, day and month, and every trigger's state.
pub async fn current(app: &Core) -> crate::BoxResult<Value> {
    let settings = load(app).await?;
    let now = app.clock.now();
    let mut periods = Vec::new();
    for p in Period::ALL {
        let (start, end) = p.bounds(now);
        let rows = app.limiter.counters_list(NS, window(start)).await?;
        let mut by: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
        for r in &rows {
            let Some(f) = Figure::parse(&r.key).filter(|f| f.period == p.tag()) else { continue };
            let e = by.entry((f.channel.to_owned(), f.country.to_owned())).or_default();
            if f.metric == "count" {
                e.0 += r.value;
            } else {
                e.1 += r.value;
            }
        }
        let rows: Vec<Row> = by
            .into_iter()
            .map(|((channel, country), (count, spend))| Row { channel, country, count, spend: spend as f64 / MICROS })
            .collect();
        periods.push(PeriodView {
            period: p.as_str(),
            start: Timestamp::from_millis(start).to_rfc3339(),
            end: Timestamp::from_millis(end).to_rfc3339(),
            count: rows.iter().map(|r| r.count).sum(),
            spend: rows.iter().map(|r| r.spend).sum::<f64>(),
            by_channel_and_country: rows,
        });
    }
    let mut triggers = Vec::new();
    for t in &settings.triggers {
        let (slot, _) = t.period.bounds(now);
        let v = figure(app, t, slot).await?;
        let fired = app.limiter.counters_sum(NS, window(slot), &[&format!("fired|{}", t.id)]).await?;
        triggers.push(TriggerState {
            trigger: serde_json::to_value(t)?,
            value: match t.metric {
                Metric::Count => v as f64,
                Metric::Spend => v as f64 / MICROS,
            },
            fired: fired.first().copied().unwrap_or(0) > 0,
        });
    }
    Ok(json!({"currency": "USD", "periods": periods, "triggers": triggers}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        // YYYY-MM-DDTHH
        let y: i64 = s[0..4].parse().unwrap();
        let m: i64 = s[5..7].parse().unwrap();
        let d: i64 = s[8..10].parse().unwrap();
        let h: i64 = s[11..13].parse().unwrap();
        Timestamp::from_millis(days_from_civil(y, m, d) * 86_400_000 + h * 3_600_000 + 1234)
    }

    #[test]
    fn periods_are_utc_calendar_periods() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2026, 1, 1) * 86_400_000, 1_767_225_600_000);
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        let (s, e) = Period::Month.bounds(ts("2024-02-10T05"));
        assert_eq!((s, e), (days_from_civil(2024, 2, 1) * 86_400_000, days_from_civil(2024, 3, 1) * 86_400_000));
        let (s, e) = Period::Month.bounds(ts("2026-12-31T23"));
        assert_eq!(e, days_from_civil(2027, 1, 1) * 86_400_000);
        assert_eq!(s, days_from_civil(2026, 12, 1) * 86_400_000);
        let (s, e) = Period::Day.bounds(ts("2026-03-04T13"));
        assert_eq!((s, e - s), (days_from_civil(2026, 3, 4) * 86_400_000, 86_400_000));
        let (s, e) = Period::Hour.bounds(ts("2026-03-04T13"));
        assert_eq!((s % 3_600_000, e - s), (0, 3_600_000));
    }

    #[test]
    fn the_default_table_prices_the_largest_countries() {
        let p = Prices::default();
        assert!(p.countries.len() >= 30);
        assert_eq!(p.price(Some("US"), Channel::Sms), 8_000);
        assert_eq!(p.price(Some("XK"), Channel::Voice), 100_000, "the default");
        for c in p.countries.keys() {
            assert!(calling_code(c).is_some(), "{c}");
        }
        let v = serde_json::to_value(UsageSettings::default()).unwrap();
        assert_eq!(v["prices"]["countries"]["US"]["sms"], 0.008);
        let back: UsageSettings = serde_json::from_value(v).unwrap();
        assert_eq!(back, UsageSettings::default());
    }

    #[test]
    fn bad_input_names_the_field() {
        let rng = callsign_domain::SeededRandom::new(1);
        let bad = |v: Value| parse(&v, &rng).unwrap_err().0;
        let t = |extra: Value| {
            let mut base = json!({"metric": "count", "period": "day", "threshold": 10, "action": "stop"});
            for (k, v) in extra.as_object().unwrap() {
                base[k] = v.clone();
            }
            json!({"triggers": [base]})
        };
        assert_eq!(bad(json!({"prices": {"default": {"sms": "cheap", "voice": 0.1}}})), "prices.default.sms");
        assert_eq!(bad(json!({"prices": {"default": {"sms": -1, "voice": 0.1}}})), "prices.default.sms");
        assert_eq!(bad(json!({"prices": {"default": {"sms": 0.1}}})), "prices.default.voice");
        assert_eq!(
            bad(
                json!({"prices": {"default": {"sms": 0.1, "voice": 0.1}, "countries": {"XX": {"sms": 1, "voice": 1}}}})
            ),
            "prices.countries.XX"
        );
        assert_eq!(
            bad(
                json!({"prices": {"default": {"sms": 0.1, "voice": 0.1}, "countries": {"GB": {"sms": "x", "voice": 1}}}})
            ),
            "prices.countries.GB.sms"
        );
        assert_eq!(bad(t(json!({"threshold": -5}))), "triggers[0].threshold");
        assert_eq!(bad(t(json!({"threshold": "ten"}))), "triggers[0].threshold");
        assert_eq!(bad(t(json!({"threshold": 1.5}))), "triggers[0].threshold");
        assert_eq!(bad(t(json!({"period": "week"}))), "triggers[0].period");
        assert_eq!(bad(t(json!({"metric": "bytes"}))), "triggers[0].metric");
        assert_eq!(bad(t(json!({"action": "panic"}))), "triggers[0].action");
        assert_eq!(bad(t(json!({"channel": "fax"}))), "triggers[0].channel");
        assert_eq!(bad(t(json!({"country": "XX"}))), "triggers[0].country");
        assert_eq!(bad(t(json!({"id": "a b"}))), "triggers[0].id");
        assert_eq!(bad(t(json!({"colour": "red"}))), "triggers[0].colour");
        assert_eq!(bad(json!({"budget": 1})), "budget");
        let two = json!({"triggers": [
            {"id": "a", "metric": "count", "period": "day", "threshold": 1, "action": "alert"},
            {"id": "a", "metric": "count", "period": "day", "threshold": 1, "action": "alert"}]});
        assert_eq!(bad(two), "triggers[1].id");
        let ok = parse(&t(json!({"country": "gb", "metric": "spend", "threshold": 2.5})), &rng).unwrap();
        assert_eq!(ok.triggers[0].country.as_deref(), Some("GB"));
        assert!(ok.triggers[0].id.starts_with("trg_"));
        assert_eq!(ok.triggers[0].limit(), 2_500_000);
        assert_eq!(ok.prices, Prices::default(), "left out: the default table");
    }

    #[test]
    fn triggers_match_their_channel_and_country() {
        let t = Trigger {
            id: "t".into(),
            name: String::new(),
            metric: Metric::Count,
            period: Period::Day,
            channel: ChannelFilter::Sms,
            country: Some("GB".into()),
            threshold: 3.0,
            action: Action::Stop,
        };
        assert!(t.matches(Channel::Sms, "GB"));
        assert!(!t.matches(Channel::Voice, "GB"));
        assert!(!t.matches(Channel::Sms, "US"));
        let f = Figure::parse("d|count|sms|GB").unwrap();
        assert!(f.counts_for(&t));
        assert!(!Figure::parse("h|count|sms|GB").unwrap().counts_for(&t));
        assert!(!Figure::parse("d|spend|sms|GB").unwrap().counts_for(&t));
        assert!(Figure::parse("cap|x").is_none());
    }
}
