//! SMS-pumping detection (docs/FRAUD.md): pumped numbers never type their code, so a destination range whose
//! codes are sent but not used is being pumped. Callsign counts, per **segment**, how many codes were sent and how
//! many were used, over a sliding window of one-minute slots, in the limiter's windowed counters (so the figures
//! hold across nodes like the other limits):
//!
//! - `country:GB`: the destination country;
//! - `prefix:+4477009001`: the E.164 number less its last `prefix_digits` digits (a range of 1 000 numbers by
//!   default);
//! - `ip:203.0.113.7`: the address the code was asked from.
//!
//! A use counts in the slot its code was *sent* in, so a slot's conversion rate is exact once its codes had time
//! to be typed: slots younger than `grace_seconds` count neither way. When a segment's sends over the window reach
//! its kind's minimum and its conversion rate is below `min_conversion`, the segment is **held** for
//! `hold_minutes`: codes for enrollments (numbers never proven) to it are not sent (`gd_send_*_failure`, reason
//! `pumping_suspected`); codes to numbers already enrolled still go (they were proven by a code before). The
//! detection itself is one `cs_pumping_detected` event and an operator alert, once per segment and hold, across
//! nodes (an atomic take of a cap-1 counter). An operator can release a hold (figures before the release no
//! longer count) or trust a segment (never held).
use std::time::Duration;

use callsign_domain::Channel;
use callsign_domain::Timestamp;
use callsign_domain::phone::PhoneNumber;
use callsign_store::{CounterRow, CounterWindow};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Core;

pub const SETTINGS_KEY: &str = "phone_pumping_detection";
/// Counters of sends (`<segment>|sent`) and uses (`<segment>|ok`) per slot.
pub const NS: &str = "pump";
/// Holds (`hold|<segment>`: a detection in that slot) and releases (`release|<segment>`), per slot.
pub const STATE_NS: &str = "pump-state";
/// `reason` of a send refused by a hold.
pub const PUMPING_SUSPECTED: &str = "pumping_suspected";
/// The event of a detection.
pub const DETECTED_EVENT: &str = "cs_pumping_detected";
/// The event of an operator's release.
pub const RELEASED_EVENT: &str = "cs_pumping_released";
/// The slot of every figure.
pub const SLOT_MS: i64 = 60_000;
/// The most trusted segments.
pub const MAX_TRUSTED: usize = 500;

/// The detector's settings (the `phone_pumping_detection` document).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PumpingSettings {
    /// Whether sends are held at all (the figures are counted either way).
    pub enabled: bool,
    /// How far back the figures reach (minutes, 5 to 1 440).
    pub window_minutes: u32,
    /// Sends younger than this count neither way: their codes may still be typed (seconds, 0 to 900).
    pub grace_seconds: u32,
    /// A segment whose conversion rate (uses ÷ sends) is below this is suspected (0 to 1).
    pub min_conversion: f64,
    /// The fewest sends over the window before a segment of each kind is judged.
    pub min_sends: MinSends,
    /// How long a detection holds a segment (minutes, 1 to 10 080).
    pub hold_minutes: u32,
    /// Digits dropped from the E.164 number for its `prefix` segment (2 to 5).
    pub prefix_digits: u8,
    /// Segments never held (`country:GB`, `prefix:+4477009001`, `ip:203.0.113.7`).
    pub trusted: Vec<String>,
}

impl Default for PumpingSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            window_minutes: 60,
            grace_seconds: 180,
            min_conversion: 0.25,
            min_sends: MinSends::default(),
            hold_minutes: 240,
            prefix_digits: 3,
            trusted: Vec::new(),
        }
    }
}

/// The fewest sends over the window before a segment is judged, per kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MinSends {
    pub country: u32,
    pub prefix: u32,
    pub ip: u32,
}

impl Default for MinSends {
    fn default() -> Self {
        Self { country: 40, prefix: 6, ip: 20 }
    }
}

/// What a segment is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Country,
    Prefix,
    Ip,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Country => "country",
            Kind::Prefix => "prefix",
            Kind::Ip => "ip",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "country" => Some(Kind::Country),
            "prefix" => Some(Kind::Prefix),
            "ip" => Some(Kind::Ip),
            _ => None,
        }
    }
}

impl PumpingSettings {
    fn min_sends(&self, kind: Kind) -> u32 {
        match kind {
            Kind::Country => self.min_sends.country,
            Kind::Prefix => self.min_sends.prefix,
            Kind::Ip => self.min_sends.ip,
        }
    }

    fn window_ms(&self) -> i64 {
        i64::from(self.window_minutes) * 60_000
    }

    fn hold_ms(&self) -> i64 {
        i64::from(self.hold_minutes) * 60_000
    }

    /// How long a counter must be kept: the longer of the window and a hold, and a slot more.
    fn ttl_ms(&self) -> i64 {
        self.window_ms().max(self.hold_ms()) + 2 * SLOT_MS
    }

    /// The segments a message to `to`, asked for from `ip`, counts in (trusted ones included).
    pub fn segments(&self, to: &PhoneNumber, ip: Option<&str>) -> Vec<String> {
        let mut out = Vec::with_capacity(3);
        if let Some(c) = to.country() {
            out.push(format!("country:{c}"));
        }
        let e164 = to.e164();
        let keep = e164.len().saturating_sub(usize::from(self.prefix_digits));
        // At least the `+`, the calling code's first digit and one more.
        if keep >= 3 {
            out.push(format!("prefix:{}", &e164[..keep]));
        }
        if let Some(ip) = ip.map(str::trim).filter(|ip| !ip.is_empty()) {
            out.push(format!("ip:{ip}"));
        }
        out
    }

    fn trusts(&self, segment: &str) -> bool {
        self.trusted.iter().any(|t| t == segment)
    }

    /// Check and normalise. The problem comes back as `(property, message)`.
    pub fn validate(&mut self) -> Result<(), (String, String)> {
        let range = |name: &str, v: u32, lo: u32, hi: u32| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err((name.to_owned(), format!("must be between {lo} and {hi}")))
            }
        };
        range("window_minutes", self.window_minutes, 5, 1_440)?;
        range("grace_seconds", self.grace_seconds, 0, 900)?;
        range("hold_minutes", self.hold_minutes, 1, 10_080)?;
        if !(2..=5).contains(&self.prefix_digits) {
            return Err(("prefix_digits".into(), "must be between 2 and 5".into()));
        }
        if !self.min_conversion.is_finite() || !(0.0..=1.0).contains(&self.min_conversion) {
            return Err(("min_conversion".into(), "must be a number between 0 and 1".into()));
        }
        for (name, v) in [
            ("min_sends.country", self.min_sends.country),
            ("min_sends.prefix", self.min_sends.prefix),
            ("min_sends.ip", self.min_sends.ip),
        ] {
            range(name, v, 1, 1_000_000)?;
        }
        if i64::from(self.grace_seconds) * 1_000 >= self.window_ms() {
            return Err(("grace_seconds".into(), "must be shorter than the window".into()));
        }
        if self.trusted.len() > MAX_TRUSTED {
            return Err(("trusted".into(), format!("at most {MAX_TRUSTED} segments")));
        }
        for i in 0..self.trusted.len() {
            let t = normalize_segment(&self.trusted[i])
                .map_err(|m| (format!("trusted[{i}]"), format!("`{}` {m}", self.trusted[i])))?;
            if self.trusted[..i].contains(&t) {
                return Err((format!("trusted[{i}]"), format!("`{t}` is listed twice")));
            }
            self.trusted[i] = t;
        }
        Ok(())
    }
}

/// A segment name as written by an operator, checked and normalised (`country:gb` → `country:GB`).
pub fn normalize_segment(raw: &str) -> Result<String, &'static str> {
    const SHAPE: &str = "is not a segment: write `country:GB`, `prefix:+4477009001` or `ip:203.0.113.7`";
    let (kind, value) = raw.trim().split_once(':').ok_or(SHAPE)?;
    let value = value.trim();
    match Kind::parse(kind.trim()).ok_or(SHAPE)? {
        Kind::Country => {
            let c = value.to_ascii_uppercase();
            if c.len() == 2 && callsign_domain::phone::calling_code(&c).is_some() {
                Ok(format!("country:{c}"))
            } else {
                Err("does not name an ISO 3166 country")
            }
        }
        Kind::Prefix => {
            let digits = value.strip_prefix('+').unwrap_or(value);
            if (2..=14).contains(&digits.len())
                && !digits.starts_with('0')
                && digits.bytes().all(|b| b.is_ascii_digit())
            {
                Ok(format!("prefix:+{digits}"))
            } else {
                Err("is not a number prefix (`+` and 2 to 14 digits)")
            }
        }
        Kind::Ip => value.parse::<std::net::IpAddr>().map(|ip| format!("ip:{ip}")).map_err(|_| "is not an IP address"),
    }
}

/// The kind of a segment name.
pub fn kind_of(segment: &str) -> Option<Kind> {
    segment.split_once(':').and_then(|(k, _)| Kind::parse(k))
}

/// The stored settings (the defaults when none were saved).
pub async fn load(app: &Core) -> crate::BoxResult<PumpingSettings> {
    crate::documents::load(app, SETTINGS_KEY).await
}

/// Change the settings without losing a concurrent write ([`crate::documents::modify`]).
pub async fn modify<E>(
    app: &Core,
    mut change: impl FnMut(&mut PumpingSettings) -> Result<(), E>,
) -> crate::BoxResult<Result<PumpingSettings, E>> {
    crate::documents::modify(app, SETTINGS_KEY, "SMS-pumping detection settings", PumpingSettings::default, |p| {
        change(p)?;
        Ok(p.clone())
    })
    .await
}

fn slot_of(at: Timestamp) -> i64 {
    at.millis().div_euclid(SLOT_MS) * SLOT_MS
}

/// The holds and releases in force: per segment, the slot of its latest detection and of its latest release.
#[derive(Debug, Default)]
struct Holds {
    rows: Vec<CounterRow>,
}

impl Holds {
    async fn load(app: &Core, s: &PumpingSettings, now: Timestamp) -> crate::BoxResult<Self> {
        let span = s.hold_ms().max(s.window_ms());
        let window = CounterWindow::ending_at(now, SLOT_MS, span / SLOT_MS + 1);
        Ok(Self { rows: app.limiter.counters_list(STATE_NS, window).await? })
    }

    fn latest(&self, what: &str, segment: &str) -> Option<i64> {
        let key = format!("{what}|{segment}");
        self.rows.iter().filter(|r| r.key == key && r.value > 0).map(|r| r.slot).max()
    }

    /// The slot of the hold on `segment` in force at `now`, if there is one.
    fn held_since(&self, s: &PumpingSettings, segment: &str, now: Timestamp) -> Option<i64> {
        let hold = self.latest("hold", segment)?;
        let released = self.latest("release", segment).is_some_and(|r| r >= hold);
        (!released && hold + s.hold_ms() > now.millis()).then_some(hold)
    }

    /// The `prefix:` segments held at `now` that lie in the country of `country` (`country:UZ`): those whose
    /// digits start with its calling code (for a calling code shared by several countries, such as +1, every
    /// country of it).
    fn held_ranges_of(&self, s: &PumpingSettings, country: &str, now: Timestamp) -> Vec<String> {
        let Some(code) = country.strip_prefix("country:").and_then(callsign_domain::phone::calling_code) else {
            return Vec::new();
        };
        let code = format!("prefix:+{code}");
        let mut out: Vec<String> = self
            .rows
            .iter()
            .filter_map(|r| r.key.strip_prefix("hold|"))
            .filter(|seg| seg.starts_with(&code) && self.held_since(s, seg, now).is_some())
            .map(str::to_owned)
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The first slot whose figures count for `segment` (the one after its latest release).
    fn counted_from(&self, segment: &str) -> Option<i64> {
        self.latest("release", segment).map(|r| r + SLOT_MS)
    }
}

/// A segment's figures over the window, as judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    pub sent: i64,
    pub verified: i64,
}

impl Figures {
    pub fn conversion(&self) -> Option<f64> {
        (self.sent > 0).then(|| (self.verified as f64 / self.sent as f64).min(1.0))
    }

    fn suspect(&self, s: &PumpingSettings, kind: Kind) -> bool {
        self.sent >= i64::from(s.min_sends(kind)) && self.conversion().is_some_and(|c| c < s.min_conversion)
    }
}

/// `sums` = a segment's sent and used, then the same for each range to leave out: the difference.
fn less_held(sums: &[i64]) -> Figures {
    let at = |i: usize| sums.get(i).copied().unwrap_or(0);
    let (mut sent, mut verified) = (at(0), at(1));
    for pair in sums.get(2..).unwrap_or_default().chunks(2) {
        sent -= pair.first().copied().unwrap_or(0);
        verified -= pair.get(1).copied().unwrap_or(0);
    }
    Figures { sent: sent.max(0), verified: verified.max(0) }
}

/// The slots a judgement reads: the window up to `grace_seconds` ago (the younger ones may still convert).
fn judged_window(s: &PumpingSettings, now: Timestamp) -> CounterWindow {
    let judged_until = now.millis() - i64::from(s.grace_seconds) * 1_000;
    let to = judged_until.div_euclid(SLOT_MS) * SLOT_MS - SLOT_MS;
    CounterWindow { slot_ms: SLOT_MS, from: to - (s.window_ms() / SLOT_MS - 1) * SLOT_MS, to }
}

/// Why a message is not sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub segment: String,
    pub channel: Channel,
    pub country: Option<String>,
    /// When the hold started.
    pub since: Timestamp,
}

impl Held {
    pub fn message(&self) -> String {
        format!(
            "SMS pumping is suspected for {}: {} codes for new enrollments to it are held",
            self.segment, self.channel
        )
    }

    pub fn details(&self) -> Value {
        json!({
            "reason": PUMPING_SUSPECTED,
            "segment": self.segment,
            "country": self.country,
            "channel": self.channel,
            "held_since": self.since.to_rfc3339(),
        })
    }
}

/// What the delivery job asks before it sends a code to `to` on `channel` (asked for from `ip`). `enrolling`:
/// the code is for an enrollment (the number has never been proven); other codes are never held. A held segment,
/// or one found suspect now (which starts its hold, once across nodes), refuses.
pub async fn check(
    app: &Core,
    to: &PhoneNumber,
    ip: Option<&str>,
    channel: Channel,
    enrolling: bool,
) -> crate::BoxResult<Result<(), Held>> {
    let s = load(app).await?;
    if !s.enabled || !enrolling {
        return Ok(Ok(()));
    }
    let now = app.clock.now();
    let segments: Vec<String> = s.segments(to, ip).into_iter().filter(|seg| !s.trusts(seg)).collect();
    if segments.is_empty() {
        return Ok(Ok(()));
    }
    let holds = Holds::load(app, &s, now).await?;
    let held = |segment: &str, since: i64| Held {
        segment: segment.to_owned(),
        channel,
        country: to.country().map(str::to_owned),
        since: Timestamp::from_millis(since),
    };
    for seg in &segments {
        if let Some(since) = holds.held_since(&s, seg, now) {
            return Ok(Err(held(seg, since)));
        }
    }
    let window = judged_window(&s, now);
    // The narrowest segment first: a pumped range is held as a range, not as its whole country.
    let mut ordered: Vec<(&String, Kind)> = segments.iter().filter_map(|seg| Some((seg, kind_of(seg)?))).collect();
    ordered.sort_by_key(|(_, k)| match k {
        Kind::Prefix => 0,
        Kind::Ip => 1,
        Kind::Country => 2,
    });
    for (seg, kind) in ordered {
        let from = holds.counted_from(seg).map_or(window.from, |f| f.max(window.from));
        if from > window.to {
            continue;
        }
        let w = CounterWindow { from, ..window };
        // A country is judged without its ranges already held: their sends are stopped, and the rest of the
        // country is judged on what is left.
        let held_ranges = if kind == Kind::Country { holds.held_ranges_of(&s, seg, now) } else { Vec::new() };
        let mut keys = vec![format!("{seg}|sent"), format!("{seg}|ok")];
        for r in &held_ranges {
            keys.push(format!("{r}|sent"));
            keys.push(format!("{r}|ok"));
        }
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let sums = app.limiter.counters_sum(NS, w, &refs).await?;
        let figures = less_held(&sums);
        if figures.suspect(&s, kind) {
            start_hold(app, &s, seg, kind, &figures, now).await?;
            return Ok(Err(held(seg, slot_of(now))));
        }
    }
    Ok(Ok(()))
}

/// Start a hold on `segment`; the node that wins the slot's cap-1 counter logs the detection and alerts.
async fn start_hold(
    app: &Core,
    s: &PumpingSettings,
    segment: &str,
    kind: Kind,
    figures: &Figures,
    now: Timestamp,
) -> crate::BoxResult<()> {
    let key = format!("hold|{segment}");
    let first = app.limiter.counter_take(STATE_NS, slot_of(now), &key, 1, 1, now, s.ttl_ms()).await?.is_some();
    if first {
        let details = json!({
            "segment": segment,
            "kind": kind,
            "sent": figures.sent,
            "verified": figures.verified,
            "conversion": figures.conversion(),
            "window_minutes": s.window_minutes,
            "hold_minutes": s.hold_minutes,
        });
        tracing::warn!(
            segment,
            sent = figures.sent,
            verified = figures.verified,
            "SMS pumping suspected; segment held"
        );
        crate::alerts::raise(app, "pumping_detected", details.clone()).await;
        crate::identity::events::record(
            app,
            DETECTED_EVENT,
            &crate::Origin::default(),
            crate::identity::events::EventCtx {
                description: Some(format!("SMS pumping suspected: codes for new enrollments to {segment} are held")),
                details,
                ..Default::default()
            },
        )
        .await;
    }
    Ok(())
}

/// A code was handed to a provider: count it in its segments (in the slot of `asked_at`, when it was asked for).
/// `user`: whose code it is; a user's further codes to the same number within the window are not counted again
/// (a user asking for the code again is one send, not pumping).
pub async fn record_sent(app: &Core, to: &PhoneNumber, ip: Option<&str>, asked_at: Timestamp, user: Option<&str>) {
    record(app, to, ip, asked_at, user, "sent").await;
}

/// A code was used: count it in its segments, in the slot its challenge was created in (once per user and number
/// within the window, like the sends).
pub async fn record_verified(app: &Core, to: &PhoneNumber, ip: Option<&str>, asked_at: Timestamp, user: Option<&str>) {
    record(app, to, ip, asked_at, user, "ok").await;
}

/// Namespace of the "already counted" marks (`<what>|<hash of user and number>`, capped at 1 per window).
const SEEN_NS: &str = "pump-seen";

async fn record(app: &Core, to: &PhoneNumber, ip: Option<&str>, asked_at: Timestamp, user: Option<&str>, what: &str) {
    let s = match load(app).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the SMS-pumping settings; the code is not counted");
            return;
        }
    };
    if let Some(user) = user {
        // Once per user and number per window (a window-long slot; the number only as a hash).
        let mark = format!("{what}|{}", callsign_domain::hash::token_hash(&format!("{user}|{}", to.e164())));
        let slot = asked_at.millis().div_euclid(s.window_ms().max(SLOT_MS)) * s.window_ms().max(SLOT_MS);
        match app.limiter.counter_take(SEEN_NS, slot, &mark, 1, 1, app.clock.now(), s.ttl_ms()).await {
            Ok(Some(_)) => {}
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, what, "an SMS-pumping counter could not be written");
                return;
            }
        }
    }
    let keys: Vec<String> = s.segments(to, ip).into_iter().map(|seg| format!("{seg}|{what}")).collect();
    let adds: Vec<(&str, i64)> = keys.iter().map(|k| (k.as_str(), 1)).collect();
    let now = app.clock.now();
    if let Err(e) = app.limiter.counters_add(NS, slot_of(asked_at), &adds, now, s.ttl_ms()).await {
        tracing::warn!(error = %e, what, "an SMS-pumping counter could not be written");
    }
}

/// One segment as the operator sees it.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentView {
    pub segment: String,
    pub kind: Kind,
    /// Sends and uses over the whole window (the grace period included).
    pub sent: i64,
    pub verified: i64,
    /// Over the judged part of the window, as the detector reads it (a country without its held ranges).
    pub judged_sent: i64,
    pub judged_verified: i64,
    pub conversion: Option<f64>,
    /// `held`, `trusted`, `suspect` (would be held by the next enrollment code) or `ok`.
    pub status: &'static str,
    pub held_since: Option<String>,
    pub hold_ends: Option<String>,
}

/// Every segment with a figure in the window or a hold in force, worst first (held, then lowest conversion).
pub async fn segments(app: &Core) -> crate::BoxResult<Vec<SegmentView>> {
    let s = load(app).await?;
    let now = app.clock.now();
    let holds = Holds::load(app, &s, now).await?;
    let whole = CounterWindow::ending_at(now, SLOT_MS, s.window_ms() / SLOT_MS);
    let judged = judged_window(&s, now);
    let rows = app.limiter.counters_list(NS, whole).await?;
    let mut names: Vec<String> =
        rows.iter().filter_map(|r| r.key.rsplit_once('|').map(|(seg, _)| seg.to_owned())).collect();
    for r in &holds.rows {
        if let Some(seg) = r.key.strip_prefix("hold|") {
            names.push(seg.to_owned());
        }
    }
    names.sort();
    names.dedup();
    let mut out = Vec::with_capacity(names.len());
    for seg in names {
        let Some(kind) = kind_of(&seg) else { continue };
        let from = holds.counted_from(&seg);
        let sum = |what: &str, w: CounterWindow| {
            let key = format!("{seg}|{what}");
            let from = from.map_or(w.from, |f| f.max(w.from));
            rows.iter().filter(|r| r.key == key && r.slot >= from && r.slot <= w.to).map(|r| r.value).sum::<i64>()
        };
        let mut figures = Figures { sent: sum("sent", judged), verified: sum("ok", judged) };
        if kind == Kind::Country {
            for r in holds.held_ranges_of(&s, &seg, now) {
                let part = |what: &str| {
                    let key = format!("{r}|{what}");
                    rows.iter()
                        .filter(|x| x.key == key && x.slot >= judged.from && x.slot <= judged.to)
                        .map(|x| x.value)
                        .sum::<i64>()
                };
                figures.sent = (figures.sent - part("sent")).max(0);
                figures.verified = (figures.verified - part("ok")).max(0);
            }
        }
        let held = holds.held_since(&s, &seg, now);
        let status = if s.trusts(&seg) {
            "trusted"
        } else if held.is_some() {
            "held"
        } else if figures.suspect(&s, kind) {
            "suspect"
        } else {
            "ok"
        };
        out.push(SegmentView {
            kind,
            sent: sum("sent", whole),
            verified: sum("ok", whole),
            judged_sent: figures.sent,
            judged_verified: figures.verified,
            conversion: figures.conversion(),
            status,
            held_since: held.map(|h| Timestamp::from_millis(h).to_rfc3339()),
            hold_ends: held.map(|h| Timestamp::from_millis(h + s.hold_ms()).to_rfc3339()),
            segment: seg,
        });
    }
    let rank = |v: &SegmentView| match v.status {
        "held" => 0,
        "suspect" => 1,
        "ok" => 2,
        _ => 3,
    };
    out.sort_by(|a, b| {
        rank(a)
            .cmp(&rank(b))
            .then(a.conversion.unwrap_or(1.0).total_cmp(&b.conversion.unwrap_or(1.0)))
            .then(b.sent.cmp(&a.sent))
    });
    Ok(out)
}

/// Release the hold on `segment` (figures before now stop counting for it). False when none was in force.
pub async fn release(app: &Core, meta: &crate::Origin, segment: &str) -> crate::BoxResult<bool> {
    let s = load(app).await?;
    let now = app.clock.now();
    let holds = Holds::load(app, &s, now).await?;
    let in_force = holds.held_since(&s, segment, now).is_some();
    let key = format!("release|{segment}");
    app.limiter.counters_add(STATE_NS, slot_of(now), &[(&key, 1)], now, s.ttl_ms()).await?;
    if in_force {
        crate::identity::events::record(
            app,
            RELEASED_EVENT,
            meta,
            crate::identity::events::EventCtx {
                description: Some(format!("An operator released the SMS-pumping hold on {segment}")),
                details: json!({"segment": segment}),
                ..Default::default()
            },
        )
        .await;
    }
    Ok(in_force)
}

/// How long the figures reach back (for the dashboard's sentence).
pub fn window_of(s: &PumpingSettings) -> Duration {
    Duration::from_millis(u64::try_from(s.window_ms()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_of_a_number() {
        let s = PumpingSettings::default();
        let to = PhoneNumber::parse("+447400123456").unwrap();
        assert_eq!(s.segments(&to, Some("203.0.113.7")), ["country:GB", "prefix:+447400123", "ip:203.0.113.7"]);
        let four = PumpingSettings { prefix_digits: 4, ..Default::default() };
        assert_eq!(four.segments(&to, None), ["country:GB", "prefix:+44740012"]);
    }

    #[test]
    fn segment_names_are_checked_and_normalised() {
        assert_eq!(normalize_segment(" country:gb ").unwrap(), "country:GB");
        assert_eq!(normalize_segment("prefix:447700900").unwrap(), "prefix:+447700900");
        assert_eq!(normalize_segment("ip:2001:db8::1").unwrap(), "ip:2001:db8::1");
        for bad in ["GB", "country:XX", "prefix:+0123", "prefix:+44a", "ip:300.1.1.1", "asn:1"] {
            assert!(normalize_segment(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_names_the_field() {
        let bad = |f: fn(&mut PumpingSettings)| {
            let mut s = PumpingSettings::default();
            f(&mut s);
            s.validate().unwrap_err().0
        };
        assert_eq!(bad(|s| s.min_conversion = -0.1), "min_conversion");
        assert_eq!(bad(|s| s.min_conversion = f64::NAN), "min_conversion");
        assert_eq!(bad(|s| s.window_minutes = 2), "window_minutes");
        assert_eq!(bad(|s| s.min_sends.prefix = 0), "min_sends.prefix");
        assert_eq!(bad(|s| s.prefix_digits = 9), "prefix_digits");
        assert_eq!(bad(|s| s.trusted = vec!["country:GB".into(), "country:gb".into()]), "trusted[1]");
        assert_eq!(bad(|s| s.trusted = vec!["nope".into()]), "trusted[0]");
        assert_eq!(
            bad(|s| {
                s.window_minutes = 5;
                s.grace_seconds = 300;
            }),
            "grace_seconds"
        );
        PumpingSettings::default().validate().unwrap();
    }

    #[test]
    fn held_ranges_are_left_out_of_their_country() {
        assert_eq!(less_held(&[10, 4]), Figures { sent: 10, verified: 4 });
        assert_eq!(less_held(&[10, 4, 6, 0, 2, 1]), Figures { sent: 2, verified: 3 });
        assert_eq!(less_held(&[3, 0, 5, 1]), Figures { sent: 0, verified: 0 }, "never below zero");
    }

    #[test]
    fn the_judged_window_leaves_out_the_grace_period() {
        let s = PumpingSettings::default();
        let now = Timestamp::from_millis(10 * 3_600_000 + 30_000);
        let w = judged_window(&s, now);
        // 3 minutes of grace: the last slot judged ends at or before now − 180 s.
        assert!(w.to + SLOT_MS <= now.millis() - 180_000);
        assert_eq!((w.to - w.from) / SLOT_MS + 1, 60);
    }

    #[test]
    fn suspect_needs_volume_and_a_low_rate() {
        let s = PumpingSettings::default();
        assert!(!Figures { sent: 5, verified: 0 }.suspect(&s, Kind::Prefix));
        assert!(Figures { sent: 6, verified: 0 }.suspect(&s, Kind::Prefix));
        assert!(Figures { sent: 8, verified: 1 }.suspect(&s, Kind::Prefix));
        assert!(!Figures { sent: 8, verified: 2 }.suspect(&s, Kind::Prefix));
        assert!(!Figures { sent: 30, verified: 0 }.suspect(&s, Kind::Country));
    }
}
