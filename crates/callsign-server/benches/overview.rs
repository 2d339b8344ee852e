//! What the dashboard's Overview costs on a database with a million log events: its figures read from the hourly
//! statistics (`callsign_core::stats`: the last 24 hours, the last 30 days, the queue), beside the way the page read
//! them before (seven log counts over the last 24 hours, `type:T AND date:[since TO *]`), on the same SQLite
//! database in the same run. Figures are printed, never asserted.
//!
//! Run with `cargo bench -p callsign-server --bench overview` (`CALLSIGN_BENCH_EVENTS`, default 1 000 000). Needs the
//! `sqlite3` command-line shell, which fills the database (one `INSERT … SELECT` over a recursive sequence: 30 days
//! of events of the Overview's types and others, and 30 days × 24 hours of statistics for 40 keys) while the server
//! holds it open, as another writer would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use callsign_domain::{ManualClock, OsRandom, Timestamp};
use callsign_server::app::AppState;
use callsign_server::config::{Config, RawConfig};
use callsign_store::{LogPaging, LogQuery, Page};

const DAY: i64 = 24 * 3_600_000;
/// 2026-12-07 00:00 UTC.
const NOW: i64 = 1_796_601_600_000;

#[allow(clippy::disallowed_methods)]
fn stopwatch() -> Instant {
    Instant::now()
}

fn sqlite3(db: &std::path::Path, sql: &str) {
    let out = std::process::Command::new("sqlite3").arg(db).arg(sql).output().expect("the sqlite3 shell runs");
    assert!(out.status.success(), "sqlite3: {}", String::from_utf8_lossy(&out.stderr));
}

/// The median of `runs` timings of `f`, in milliseconds.
async fn median_ms<F, Fut>(runs: usize, mut f: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut t: Vec<Duration> = Vec::with_capacity(runs);
    for _ in 0..runs {
        let s = stopwatch();
        f().await;
        t.push(s.elapsed());
    }
    t.sort();
    t[runs / 2].as_secs_f64() * 1000.0
}

fn main() {
    let events: i64 = std::env::var("CALLSIGN_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(run(events));
}

async fn run(events: i64) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("callsign.db");
    let raw = RawConfig {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(dir.path().join("data")),
        database_url: Some(format!("sqlite://{}", db.display())),
        ..Default::default()
    };
    let config = Config::resolve(raw).unwrap();
    let clock = ManualClock::new(Timestamp::from_millis(NOW));
    let (app, _) = AppState::start(config, Arc::new(clock.clone()), Arc::new(OsRandom)).await.unwrap();

    let filled = stopwatch();
    // Events spread evenly over the last 30 days; one in ten of each Overview type, the rest `sapi`.
    let span = 30 * DAY;
    sqlite3(
        &db,
        &format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {events}) \
             INSERT INTO logs (log_id, date, event_type, user_id, client_id, data, tx, seq) \
             SELECT printf('90%020d', i), {start} + i * {step}, \
               CASE i % 10 WHEN 0 THEN 'gd_send_sms' WHEN 1 THEN 'gd_send_sms_failure' WHEN 2 THEN 'gd_send_voice' \
               WHEN 3 THEN 'gd_send_voice_failure' WHEN 4 THEN 'gd_auth_succeed' WHEN 5 THEN 'gd_auth_failed' \
               WHEN 6 THEN 'limit_mu' ELSE 'sapi' END, \
               'auth0|u' || (i % 5000), NULL, '{{\"description\":\"x\",\"details\":{{}}}}', 0, 1000000000 + i FROM n",
            start = NOW - span,
            step = (span / events.max(1)).max(1),
        ),
    );
    // The statistics of the same 30 days: 40 keys per hour.
    let keys: Vec<String> = ["msg|sms|sent", "msg|sms|failed", "msg|voice|sent", "msg|voice|failed"]
        .iter()
        .map(|k| (*k).to_owned())
        .chain(
            ["twilio", "sns", "auth0"]
                .iter()
                .flat_map(|p| [format!("provider|{p}|sent"), format!("provider|{p}|failed")]),
        )
        .chain((0..26).map(|i| format!("country|{}{}|sent", char::from(b'A' + i as u8), 'X')))
        .chain(
            ["refusal|sends", "refusal|wrong_codes", "event|gd_auth_succeed", "event|gd_auth_failed"]
                .iter()
                .map(|k| (*k).to_owned()),
        )
        .collect();
    let values: Vec<String> = keys.iter().map(|k| format!("('{k}')")).collect();
    sqlite3(
        &db,
        &format!(
            "WITH RECURSIVE h(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM h WHERE i < 719), k(key) AS (VALUES {}) \
             INSERT INTO counters (ns, slot, key, value, expires_at) \
             SELECT 'stats', {first} + i * 3600000, key, 1 + (i % 7), {keep} FROM h, k",
            values.join(", "),
            first = NOW - 719 * 3_600_000,
            keep = NOW + 40 * DAY,
        ),
    );
    sqlite3(&db, "ANALYZE");
    let fill_s = filled.elapsed().as_secs_f64();
    let core = &app.core;
    let all = LogQuery {
        event_type: None,
        user_id: None,
        since: None,
        before: None,
        paging: LogPaging::Page(Page::new(0, 1)),
    };
    let total = core.store.list_logs(&all).await.unwrap().total;
    println!(
        "Overview on SQLite: {total} log events over 30 days, {} statistics rows (filled in {fill_s:.0} s)",
        keys.len() * 720
    );

    let runs = 21;
    let stats = median_ms(runs, || async {
        let day = callsign_core::stats::last_hours(core, 24).await.unwrap();
        let month = callsign_core::stats::last_hours(core, 720).await.unwrap();
        let queue = core.store.queue_stats(core.clock.now()).await.unwrap();
        std::hint::black_box((day.rows.len(), month.rows.len(), queue));
    })
    .await;
    let since = Timestamp::from_millis(NOW - DAY);
    let types = [
        "gd_send_sms",
        "gd_send_sms_failure",
        "gd_send_voice",
        "gd_send_voice_failure",
        "gd_auth_succeed",
        "gd_auth_failed",
        "limit_mu",
    ];
    let counts = median_ms(runs, || async {
        let mut n = 0;
        for t in types {
            let q = LogQuery {
                event_type: Some(t.into()),
                user_id: None,
                since: Some(since),
                before: None,
                paging: LogPaging::Page(Page::new(0, 1)),
            };
            n += core.store.list_logs(&q).await.unwrap().total;
        }
        std::hint::black_box(n);
    })
    .await;
    println!();
    println!("| the Overview's figures | median of {runs} (ms) |");
    println!("|---|---:|");
    println!(
        "| from the statistics: 24 hours + 30 days + the queue (what the page reads now; all its charts) | {stats:.2} |"
    );
    println!(
        "| from the logs: 7 counts over the last 24 hours (what the page read before; tiles only) | {counts:.2} |"
    );
    drop(app);
}
