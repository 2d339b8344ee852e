//! A simulated day of SMS traffic with two SMS-pumping attacks, replayed through Callsign's delivery path to
//! show what the SMS-pumping detector (`callsign_core::pumping`, docs/FRAUD.md) lets through and what it stops.
//! Figures are printed, never asserted (docs/FRAUD.md keeps the latest).
//!
//! Run with `cargo bench -p callsign-server --bench pumping` (`CALLSIGN_BENCH_SEED` picks another day).
//!
//! What is real: the server's `Core` on SQLite (a temp dir), its delivery jobs (created, sealed, claimed, sent
//! through the development provider or refused, events logged) with the destination policy and the detector as
//! they run before every send, the limiter's counters in the store, and `pumping::record_verified`, the call the
//! code check makes when a code is right. Time is a `ManualClock` set to each event's moment.
//! What is left out: HTTP, passwords, and the per-user and per-IP send limits that would also slow an attacker
//! (here every attempt reaches delivery, so the figures are the detector's alone).
//!
//! The day (UTC, deterministic for a seed):
//! - 3 000 enrolled users in 12 countries log in 6 000 times (a login code; 95 % typed within 10–90 s);
//! - each attempt of an attack is another account (a bot's fresh sign-up); a user's codes to one number count once
//!   per window, as in the server;
//! - 1 200 new users enroll (90 % type the code within 15–150 s), 60 of them in the countries attacked below;
//! - attack 1, 09:00–12:00: 5 000 enrollment codes asked for numbers in four ranges of 1 000 numbers in
//!   Uzbekistan and Kyrgyzstan, each from a new IP address, none ever typed;
//! - attack 2, 14:00–16:00: 2 500 enrollment codes spread over 250 ranges in Sierra Leone (about ten per range,
//!   so that no range alone looks like much), new IP each time, none typed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Instant;

use callsign_core::delivery::{self, Payload};
use callsign_domain::phone::PhoneNumber;
use callsign_domain::{Channel, ManualClock, OsRandom, Timestamp};
use callsign_messaging::{Action, MessageContext};
use callsign_server::app::AppState;
use callsign_server::config::{Config, Num, RawConfig};
use callsign_store::JobStatus;

/// 2026-12-07 00:00 UTC.
const DAY_START: i64 = 1_796_601_600_000;
const HOUR: i64 = 3_600_000;

#[allow(clippy::disallowed_methods)]
fn stopwatch() -> Instant {
    Instant::now()
}

/// A small deterministic generator (xorshift64*), so a seed replays the same day.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn digits(&mut self, n: usize) -> String {
        (0..n).map(|_| char::from(b'0' + self.below(10) as u8)).collect()
    }
}

/// Ranges legitimate users' numbers come from: a prefix and how many digits follow.
const LEGIT: &[(&str, usize)] = &[
    ("+1415", 7),
    ("+447400", 6),
    ("+336", 8),
    ("+49151", 8),
    ("+346", 8),
    ("+39320", 7),
    ("+55119", 8),
    ("+9198", 8),
    ("+1416", 7),
    ("+614", 8),
    ("+3161", 7),
    ("+4670", 7),
];
/// Legitimate users of the attacked countries (other ranges than the pumped ones).
const LEGIT_ATTACKED: &[(&str, usize)] = &[("+99893", 7), ("+996555", 6), ("+23277", 6)];
/// Attack 1's four ranges (the last three digits vary).
const PUMPED: &[&str] = &["+998901234", "+998907771", "+996700123", "+996700456"];
/// Attack 2's country: ranges `+23276` + 4 digits (the last three vary).
const SPREAD: &str = "+23276";

/// A valid number of `prefix` followed by `n` random digits.
fn number(rng: &mut Rng, prefix: &str, n: usize) -> PhoneNumber {
    for _ in 0..1_000 {
        if let Ok(p) = PhoneNumber::parse(&format!("{prefix}{}", rng.digits(n))) {
            return p;
        }
    }
    panic!("no valid number starts with {prefix}");
}

fn ip(rng: &mut Rng) -> String {
    format!("10.{}.{}.{}", rng.below(256), rng.below(256), 1 + rng.below(254))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Login,
    Enroll,
    Attack1,
    Attack2,
}

struct Send {
    at: i64,
    who: Who,
    /// Whose code it is (a user's codes to one number count once per window).
    user: String,
    to: PhoneNumber,
    ip: String,
    /// How long after the send the code is typed, if it is.
    typed_after: Option<i64>,
}

fn day(seed: u64) -> Vec<Send> {
    let mut rng = Rng(seed | 1);
    let mut sends = Vec::new();
    let users: Vec<(PhoneNumber, String)> = (0..3_000)
        .map(|_| {
            let (p, n) = LEGIT[rng.below(LEGIT.len() as u64) as usize];
            (number(&mut rng, p, n), ip(&mut rng))
        })
        .collect();
    for _ in 0..6_000 {
        let u = rng.below(users.len() as u64) as usize;
        let (to, ip) = users[u].clone();
        let typed_after = rng.chance(0.95).then(|| 10_000 + rng.below(80_000) as i64);
        let at = DAY_START + rng.below(24 * HOUR as u64) as i64;
        sends.push(Send { at, who: Who::Login, user: format!("user{u}"), to, ip, typed_after });
    }
    for i in 0..1_200 {
        let (p, n) = if i < 60 {
            LEGIT_ATTACKED[i % LEGIT_ATTACKED.len()]
        } else {
            LEGIT[rng.below(LEGIT.len() as u64) as usize]
        };
        let to = number(&mut rng, p, n);
        let typed_after = rng.chance(0.90).then(|| 15_000 + rng.below(135_000) as i64);
        let at = DAY_START + rng.below(24 * HOUR as u64) as i64;
        sends.push(Send { at, who: Who::Enroll, user: format!("new{i}"), to, ip: ip(&mut rng), typed_after });
    }
    for i in 0..5_000 {
        let range = PUMPED[rng.below(PUMPED.len() as u64) as usize];
        let to = number(&mut rng, range, 3);
        let at = DAY_START + 9 * HOUR + rng.below(3 * HOUR as u64) as i64;
        sends.push(Send { at, who: Who::Attack1, user: format!("bot{i}"), to, ip: ip(&mut rng), typed_after: None });
    }
    let ranges: Vec<String> = (0..250).map(|_| format!("{SPREAD}{}", rng.digits(3))).collect();
    for i in 0..2_500 {
        let range = &ranges[rng.below(ranges.len() as u64) as usize];
        let to = number(&mut rng, range, 3);
        let at = DAY_START + 14 * HOUR + rng.below(2 * HOUR as u64) as i64;
        let user = format!("spread{i}");
        sends.push(Send { at, who: Who::Attack2, user, to, ip: ip(&mut rng), typed_after: None });
    }
    sends.sort_by_key(|s| s.at);
    sends
}

fn hhmm(at: i64) -> String {
    let m = (at - DAY_START) / 60_000;
    format!("{:02}:{:02}:{:02}", m / 60, m % 60, ((at - DAY_START) / 1_000) % 60)
}

fn main() {
    let seed = std::env::var("CALLSIGN_BENCH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20_261_207u64);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(run(seed));
}

async fn run(seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let raw = RawConfig {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(dir.path().join("data")),
        database_url: Some(format!("sqlite://{}/callsign.db", dir.path().display())),
        dev_provider_cap: Some(Num(100_000)),
        ..Default::default()
    };
    let config = Config::resolve(raw).unwrap();
    let clock = ManualClock::new(Timestamp::from_millis(DAY_START));
    let (app, _) = AppState::start(config, Arc::new(clock.clone()), Arc::new(OsRandom)).await.unwrap();
    let core = &app.core;
    let settings = callsign_core::pumping::load(core).await.unwrap();
    let sends = day(seed);
    println!("SMS-pumping simulation, seed {seed}: {} codes asked for over one day", sends.len());
    println!(
        "detector: window {} min, grace {} s, min conversion {}, min sends country/prefix/ip {}/{}/{}, hold {} min",
        settings.window_minutes,
        settings.grace_seconds,
        settings.min_conversion,
        settings.min_sends.country,
        settings.min_sends.prefix,
        settings.min_sends.ip,
        settings.hold_minutes
    );

    let started = stopwatch();
    // Codes typed later, by time: (at, index of the send).
    let mut typed: BinaryHeap<Reverse<(i64, usize)>> = BinaryHeap::new();
    // Per send: sent, or the reason it was refused.
    let mut outcomes: Vec<Result<(), String>> = Vec::with_capacity(sends.len());
    for (i, s) in sends.iter().enumerate() {
        while let Some(Reverse((at, j))) = typed.peek().copied() {
            if at > s.at {
                break;
            }
            typed.pop();
            clock.set(Timestamp::from_millis(at));
            let v = &sends[j];
            let at = Timestamp::from_millis(v.at);
            callsign_core::pumping::record_verified(core, &v.to, Some(&v.ip), at, Some(&v.user)).await;
        }
        clock.set(Timestamp::from_millis(s.at));
        let action = if s.who == Who::Login { Action::SecondFactorAuthentication } else { Action::Enrollment };
        let payload = Payload {
            to: s.to.e164().to_owned(),
            text: "123456 is your verification code".into(),
            locale: "en".into(),
            from: None,
            context: MessageContext { action: Some(action), ip: Some(s.ip.clone()), ..Default::default() },
        };
        let job = delivery::new_job(core, Channel::Sms, "auth0", &payload, Some(&s.user), None, None).unwrap();
        core.store.enqueue_job(&job).await.unwrap();
        delivery::run_pending_jobs(core, "sim").await.unwrap();
        let done = core.store.get_job(&job.id).await.unwrap().unwrap();
        if done.status == JobStatus::Sent {
            outcomes.push(Ok(()));
            if let Some(after) = s.typed_after {
                typed.push(Reverse((s.at + after, i)));
            }
        } else {
            let reason = done.details["reason"].as_str().unwrap_or("other").to_owned();
            outcomes.push(Err(reason));
        }
    }
    let elapsed = started.elapsed();

    // Every detection, oldest first.
    let mut detections: Vec<(i64, String)> = Vec::new();
    let mut from = None;
    loop {
        let query = callsign_store::LogQuery {
            event_type: Some(callsign_core::pumping::DETECTED_EVENT.into()),
            user_id: None,
            since: None,
            before: None,
            paging: callsign_store::LogPaging::From { from: from.clone(), take: 100 },
        };
        let page = core.store.list_logs(&query).await.unwrap();
        let Some(last) = page.items.last() else { break };
        from = Some(last.log_id.clone());
        for e in &page.items {
            detections.push((e.date.millis(), e.body.details["segment"].as_str().unwrap_or("?").to_owned()));
        }
    }
    detections.sort();

    println!();
    println!("| traffic | codes asked | sent | refused |");
    println!("|---|---:|---:|---:|");
    let kinds = [
        (Who::Login, "legitimate logins"),
        (Who::Enroll, "legitimate enrollments"),
        (Who::Attack1, "attack 1 (4 ranges)"),
        (Who::Attack2, "attack 2 (250 ranges)"),
    ];
    for (who, name) in kinds {
        let of: Vec<_> = sends.iter().zip(&outcomes).filter(|(s, _)| s.who == who).collect();
        let sent = of.iter().filter(|(_, o)| o.is_ok()).count();
        println!("| {name} | {} | {sent} | {} |", of.len(), of.len() - sent);
    }
    println!();
    let attacks: [(Who, &str, i64, &[&str]); 2] = [
        (Who::Attack1, "attack 1", 9 * HOUR, &["prefix:+998", "prefix:+996", "country:UZ", "country:KG"]),
        (Who::Attack2, "attack 2", 14 * HOUR, &["prefix:+232", "country:SL"]),
    ];
    for (who, name, start, segs) in attacks {
        let first = detections.iter().find(|(_, seg)| segs.iter().any(|p| seg.starts_with(p))).map(|(at, _)| *at);
        let of: Vec<_> = sends.iter().zip(&outcomes).filter(|(s, _)| s.who == who).collect();
        let sent = of.iter().filter(|(_, o)| o.is_ok()).count();
        let after = of.iter().filter(|(s, o)| o.is_ok() && first.is_some_and(|f| s.at >= f)).count();
        let when = first
            .map_or("never".into(), |d| format!("{} ({} s after it began)", hhmm(d), (d - DAY_START - start) / 1_000));
        println!(
            "{name}: first detection at {when}; {sent} of {} codes sent ({:.1} %), {after} of them after the first detection ({:.2} % of the attack)",
            of.len(),
            100.0 * sent as f64 / of.len().max(1) as f64,
            100.0 * after as f64 / of.len().max(1) as f64,
        );
    }
    let legit: Vec<_> =
        sends.iter().zip(&outcomes).filter(|(s, _)| matches!(s.who, Who::Login | Who::Enroll)).collect();
    let refused: Vec<_> = legit.iter().filter_map(|(s, o)| o.as_ref().err().map(|r| (s, r))).collect();
    println!("legitimate codes refused: {} of {}", refused.len(), legit.len());
    for (s, reason) in refused.iter().take(10) {
        println!("  {} {:?} to {} refused: {reason}", hhmm(s.at), s.who, s.to.country().unwrap_or("?"));
    }
    let in_attacked = |s: &Send| LEGIT_ATTACKED.iter().any(|(p, _)| s.to.e164().starts_with(p));
    let attacked: Vec<_> = legit.iter().filter(|(s, _)| in_attacked(s)).collect();
    println!(
        "of them in the attacked countries (other ranges): {} refused of {} asked",
        attacked.iter().filter(|(_, o)| o.is_err()).count(),
        attacked.len()
    );
    println!("detections ({}):", detections.len());
    let shown = 12;
    for (at, seg) in detections.iter().take(shown) {
        println!("  {} {seg}", hhmm(*at));
    }
    if detections.len() > shown {
        println!("  … and {} more", detections.len() - shown);
    }
    println!(
        "replayed in {:.1} s ({:.0} codes/s through delivery on SQLite)",
        elapsed.as_secs_f64(),
        sends.len() as f64 / elapsed.as_secs_f64()
    );
    drop(app);
}
