//! Usage triggers (`callsign_core::usage`) and operator alerts (`callsign_core::alerts`): the Management API
//! (`/api/v2/guardian/factors/phone/usage`), hard caps before every send, alert triggers firing once per period,
//! and the signed, retried alert webhook. On SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use callsign_core::delivery::{self, Payload};
use callsign_domain::Channel;
use callsign_store::JobStatus;
use common::{PHONE, TestApp, serve};
use serde_json::{Value, json};

const API: &str = "/api/v2/guardian/factors/phone/usage";
const CURRENT: &str = "/api/v2/guardian/factors/phone/usage/current";
const GB_MOBILE: &str = "+447400123456";
const DAY: Duration = Duration::from_secs(86_400);

fn bad(s: u16, v: &Value, prop: &str) {
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["errorCode"], "invalid_body", "{v}");
    let m = v["message"].as_str().unwrap();
    assert!(m.contains(prop), "the message names {prop}: {m}");
}

/// Queue one message to `to` through the development provider; its job id.
async fn queue(t: &TestApp, to: &str, channel: Channel) -> String {
    let payload = Payload {
        to: to.to_owned(),
        text: "Your code is 123456".to_owned(),
        locale: "en".to_owned(),
        from: None,
        context: Default::default(),
    };
    let job = delivery::new_job(&t.app, channel, "auth0", &payload, None, None, None).unwrap();
    t.app.store.enqueue_job(&job).await.unwrap();
    job.id
}

/// Queue one message and run it; the finished job.
async fn send(t: &TestApp, to: &str, channel: Channel) -> callsign_store::DeliveryJob {
    let id = queue(t, to, channel).await;
    t.finished(&id).await
}

async fn inbox(t: &TestApp) -> u64 {
    t.app.store.count_dev_messages().await.unwrap()
}

async fn triggers(t: &TestApp, admin: &str, triggers: Value) {
    let (s, v) = t.put(admin, API, json!({"triggers": triggers})).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn the_api_reads_defaults_writes_and_refuses_bad_input() {
    let t = TestApp::spawn().await;
    let admin = t.mgmt_token().await;
    let (s, v) = t.get(&admin, API).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["currency"], "USD");
    assert_eq!(v["triggers"], json!([]));
    assert_eq!(v["prices"]["countries"]["US"], json!({"sms": 0.008, "voice": 0.014}));
    assert_eq!(v["prices"]["default"], json!({"sms": 0.1, "voice": 0.1}));
    assert!(v["prices"]["countries"].as_object().unwrap().len() >= 30);
    assert_eq!(v["alert_webhook"], json!({"url": null, "secret_set": false}));

    let (s, v) = t
        .put(
            &admin,
            API,
            json!({"triggers": [{"id": "daily", "name": "Daily SMS", "metric": "count", "period": "day", "channel": "sms", "threshold": 100, "action": "stop"},
                                {"metric": "spend", "period": "month", "country": "gb", "threshold": 12.5, "action": "alert"}]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["triggers"][0]["id"], "daily");
    assert!(v["triggers"][1]["id"].as_str().unwrap().starts_with("trg_"), "{v}");
    assert_eq!(v["triggers"][1]["country"], "GB");
    assert_eq!(v["triggers"][1]["channel"], "any");
    // PATCH merges the price table: one country changed, one back to the default, the rest kept.
    let (s, v) =
        t.patch(&admin, API, json!({"prices": {"countries": {"GB": {"sms": 0.05, "voice": 0.03}, "US": null}}})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["prices"]["countries"]["GB"], json!({"sms": 0.05, "voice": 0.03}));
    assert!(v["prices"]["countries"].get("US").is_none(), "{v}");
    assert_eq!(v["prices"]["countries"]["FR"], json!({"sms": 0.08, "voice": 0.05}), "kept");
    assert_eq!(v["triggers"].as_array().unwrap().len(), 2, "kept");
    let (_, read) = t.get(&admin, API).await;
    assert_eq!(read, v, "what was answered is what is stored");

    // Bad input: 400 naming the property, nothing saved.
    let trig = |extra: Value| {
        let mut b = json!({"metric": "count", "period": "day", "threshold": 10, "action": "stop"});
        for (k, x) in extra.as_object().unwrap() {
            b[k] = x.clone();
        }
        json!({"triggers": [b]})
    };
    for (body, prop) in [
        (json!({"prices": {"countries": {"XX": {"sms": 0.1, "voice": 0.1}}}}), "prices.countries.XX"),
        (json!({"prices": {"default": {"sms": "cheap", "voice": 0.1}}}), "prices.default.sms"),
        (json!({"prices": {"countries": {"GB": {"sms": 0.1, "voice": "x"}}}}), "prices.countries.GB.voice"),
        (json!({"prices": {"default": {"sms": -0.1, "voice": 0.1}}}), "prices.default.sms"),
        (trig(json!({"threshold": -1})), "triggers[0].threshold"),
        (trig(json!({"threshold": "many"})), "triggers[0].threshold"),
        (trig(json!({"period": "week"})), "triggers[0].period"),
        (trig(json!({"metric": "minutes"})), "triggers[0].metric"),
        (trig(json!({"action": "shout"})), "triggers[0].action"),
        (trig(json!({"channel": "email"})), "triggers[0].channel"),
        (trig(json!({"country": "XX"})), "triggers[0].country"),
        (json!({"currency": "EUR"}), "currency"),
        (json!({"alert_webhook": {"url": "http://hooks.example.com/x"}}), "alert_webhook.url"),
        (json!({"alert_webhook": {"url": "https://hooks.example.com/x", "secret": "nope"}}), "alert_webhook.secret"),
        (json!({"alert_webhook": {"uri": "https://hooks.example.com/x"}}), "alert_webhook.uri"),
        (json!({"limits": {}}), "limits"),
    ] {
        let (s, e) = t.put(&admin, API, body.clone()).await;
        bad(s, &e, prop);
        let (s, e) = t.patch(&admin, API, body).await;
        bad(s, &e, prop);
    }
    let (s, e) = t.put(&admin, API, json!([])).await;
    assert_eq!(s, 400, "{e}");
    let (_, after) = t.get(&admin, API).await;
    assert_eq!(after, read, "nothing saved");

    // The alert webhook: a secret is made once and answered once; reads only say it is set.
    let (s, v) = t.patch(&admin, API, json!({"alert_webhook": {"url": "https://hooks.example.com/alerts"}})).await;
    assert_eq!(s, 200, "{v}");
    let secret = v["alert_webhook"]["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let (_, r) = t.get(&admin, API).await;
    assert_eq!(r["alert_webhook"], json!({"url": "https://hooks.example.com/alerts", "secret_set": true}));
    assert!(!r.to_string().contains(&secret[6..]), "never read back");
    let (_, v) = t.patch(&admin, API, json!({"alert_webhook": {"url": "https://hooks.example.com/other"}})).await;
    assert!(v["alert_webhook"].get("secret").is_none(), "not made again: {v}");
    for l in t.logs(&admin, "gd_tenant_update").await {
        assert!(!l.to_string().contains(&secret[6..]), "no secret in the audit log");
    }

    // Own scopes.
    let reader = t.token_with_scopes(&["read:phone_usage"]).await;
    assert_eq!(t.get(&reader, API).await.0, 200);
    assert_eq!(t.get(&reader, CURRENT).await.0, 200);
    let (s, e) = t.put(&reader, API, json!({})).await;
    assert_eq!((s, e["errorCode"].as_str()), (403, Some("insufficient_scope")), "{e}");
    assert!(e["message"].as_str().unwrap().contains("update:phone_usage"));
    let other = t.token_with_scopes(&["read:phone_destination_policy"]).await;
    assert_eq!(t.get(&other, API).await.0, 403);
    assert_eq!(t.get(&other, CURRENT).await.0, 403);
}

#[tokio::test]
async fn a_hard_cap_refuses_the_next_message_until_the_day_rolls_over() {
    hard_cap(TestApp::spawn().await).await;
}

#[tokio::test]
async fn a_hard_cap_on_postgresql() {
    let Some(t) = TestApp::spawn_postgres().await else { return };
    hard_cap(t).await;
}

async fn hard_cap(t: TestApp) {
    let admin = t.mgmt_token().await;
    triggers(
        &t,
        &admin,
        json!([{"id": "sms-day", "metric": "count", "period": "day", "channel": "sms", "threshold": 3, "action": "stop"}]),
    )
    .await;
    for _ in 0..3 {
        assert_eq!(send(&t, PHONE, Channel::Sms).await.status, JobStatus::Sent);
    }
    assert_eq!(inbox(&t).await, 3);
    // The fourth: nothing sent, the job ended (not retried), the failure event says why.
    let job = send(&t, PHONE, Channel::Sms).await;
    assert_eq!((job.status, job.attempts), (JobStatus::Failed, 1), "{job:?}");
    assert_eq!(inbox(&t).await, 3, "nothing sent");
    let f = t.logs(&admin, "gd_send_sms_failure").await;
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["details"]["reason"], "usage_cap_reached", "{}", f[0]);
    assert_eq!(f[0]["details"]["trigger"], "sms-day");
    assert_eq!(f[0]["details"]["country"], "US");
    assert!(!f[0].to_string().contains("4155552671"), "no number in the event: {}", f[0]);
    // The trigger fired once: one event, one alert waiting.
    assert_eq!(send(&t, GB_MOBILE, Channel::Sms).await.status, JobStatus::Failed, "every country");
    let fired = t.logs(&admin, "cs_usage_trigger").await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0]["details"]["trigger"], "sms-day");
    assert_eq!(fired[0]["details"]["action"], "stop");
    let alerts = callsign_core::alerts::pending(&t.app).await.unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].kind, "usage_trigger");
    // Voice is another channel: untouched.
    assert_eq!(send(&t, PHONE, Channel::Voice).await.status, JobStatus::Sent);

    let (s, cur) = t.get(&admin, CURRENT).await;
    assert_eq!(s, 200, "{cur}");
    let day = cur["periods"].as_array().unwrap().iter().find(|p| p["period"] == "day").unwrap().clone();
    assert_eq!(day["start"], "2026-01-01T00:00:00.000Z");
    assert_eq!(day["count"], 4, "3 SMS and 1 call sent: {day}");
    let rows = day["by_channel_and_country"].as_array().unwrap();
    let sms_us = rows.iter().find(|r| r["channel"] == "sms" && r["country"] == "US").unwrap();
    assert_eq!(sms_us["count"], 3);
    assert!((sms_us["spend"].as_f64().unwrap() - 0.024).abs() < 1e-9, "{sms_us}");
    assert_eq!(cur["triggers"][0]["fired"], true);
    assert_eq!(cur["triggers"][0]["value"], 3.0);

    // The next day: the cap starts again, and so can the trigger.
    t.clock.advance(DAY);
    assert_eq!(send(&t, PHONE, Channel::Sms).await.status, JobStatus::Sent);
    assert_eq!(inbox(&t).await, 5);
    let admin = t.mgmt_token().await;
    let (_, cur) = t.get(&admin, CURRENT).await;
    assert_eq!(cur["triggers"][0]["fired"], false);
    assert_eq!(cur["triggers"][0]["value"], 1.0);
    let month = cur["periods"].as_array().unwrap().iter().find(|p| p["period"] == "month").unwrap().clone();
    assert_eq!(month["count"], 5, "the month holds both days: {month}");
}

#[tokio::test]
async fn triggers_for_another_country_or_channel_leave_a_message_alone() {
    let t = TestApp::spawn().await;
    let admin = t.mgmt_token().await;
    triggers(
        &t,
        &admin,
        json!([
            {"id": "gb-sms", "metric": "count", "period": "hour", "channel": "sms", "country": "GB", "threshold": 1, "action": "stop"},
            // US SMS at 0.008 each: two fit under 0.02, the third would not.
            {"id": "us-spend", "metric": "spend", "period": "month", "channel": "sms", "country": "US", "threshold": 0.02, "action": "stop"}
        ]),
    )
    .await;
    assert_eq!(send(&t, GB_MOBILE, Channel::Sms).await.status, JobStatus::Sent);
    assert_eq!(send(&t, GB_MOBILE, Channel::Sms).await.status, JobStatus::Failed);
    assert_eq!(send(&t, GB_MOBILE, Channel::Voice).await.status, JobStatus::Sent, "another channel");
    assert_eq!(send(&t, PHONE, Channel::Sms).await.status, JobStatus::Sent, "another country");
    assert_eq!(send(&t, PHONE, Channel::Sms).await.status, JobStatus::Sent);
    let refused = send(&t, PHONE, Channel::Sms).await;
    assert_eq!(refused.status, JobStatus::Failed, "spend cap");
    assert_eq!(refused.details["trigger"], "us-spend", "{:?}", refused.details);
    assert_eq!(send(&t, PHONE, Channel::Voice).await.status, JobStatus::Sent, "the spend cap is for SMS");
    assert_eq!(inbox(&t).await, 5);
    // An hour later the GB cap is open again; the monthly spend cap is not.
    t.clock.advance(Duration::from_secs(3_600));
    assert_eq!(send(&t, GB_MOBILE, Channel::Sms).await.status, JobStatus::Sent);
    assert_eq!(send(&t, PHONE, Channel::Sms).await.status, JobStatus::Failed);
    let fired: Vec<String> = t
        .logs(&admin, "cs_usage_trigger")
        .await
        .iter()
        .map(|e| e["details"]["trigger"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fired.iter().filter(|f| *f == "gb-sms").count(), 1, "{fired:?}");
    assert_eq!(fired.iter().filter(|f| *f == "us-spend").count(), 1, "once per month: {fired:?}");
}

#[tokio::test]
async fn parallel_sends_under_a_cap_send_exactly_the_cap() {
    parallel(TestApp::spawn().await, true).await;
}

/// Limits (and so the usage counters) in the Redis that `CALLSIGN_TEST_REDIS_URL` names, under a prefix of this
/// test's own; None (skipped) without it.
fn in_redis() -> Option<impl FnOnce(&mut callsign_server::config::RawConfig)> {
    let url = callsign_testkit::service_url("CALLSIGN_TEST_REDIS_URL")?;
    let prefix = format!("{}:", callsign_testkit::unique_name("cs_test_usage"));
    Some(move |raw: &mut callsign_server::config::RawConfig| {
        raw.redis_url = Some(url);
        raw.redis_key_prefix = Some(prefix);
    })
}

#[tokio::test]
async fn parallel_sends_under_a_cap_with_redis() {
    let Some(f) = in_redis() else { return };
    parallel(TestApp::spawn_with(f).await, true).await;
}

#[tokio::test]
async fn a_hard_cap_with_redis() {
    let Some(f) = in_redis() else { return };
    hard_cap(TestApp::spawn_with(f).await).await;
}

#[tokio::test]
async fn parallel_sends_under_a_cap_on_postgresql() {
    let Some(t) = TestApp::spawn_postgres().await else { return };
    parallel(t, false).await;
}

async fn parallel(t: TestApp, two_nodes: bool) {
    const CAP: u64 = 7;
    const JOBS: usize = 40;
    let admin = t.mgmt_token().await;
    triggers(
        &t,
        &admin,
        json!([
            {"id": "cap", "metric": "count", "period": "day", "threshold": CAP, "action": "stop"},
            {"id": "half", "metric": "count", "period": "day", "threshold": 3, "action": "alert"}
        ]),
    )
    .await;
    for _ in 0..JOBS {
        queue(&t, PHONE, Channel::Sms).await;
    }
    // Four workers claim and send at once (claims are atomic; the caps are taken in the store or Redis), on two
    // nodes when the test's database can be opened by a second one (SQLite; PostgreSQL's is a schema of its own).
    let node = if two_nodes { Some(t.spawn_node().await) } else { None };
    let mut runs = tokio::task::JoinSet::new();
    for i in 0..4 {
        let core = match &node {
            Some(n) if i % 2 == 1 => n.app.core.clone(),
            _ => t.app.core.clone(),
        };
        runs.spawn(async move { delivery::run_pending_jobs(&core, &format!("w{i}")).await.unwrap() });
    }
    let done: usize = runs.join_all().await.into_iter().sum();
    assert_eq!(done, JOBS);
    assert_eq!(inbox(&t).await, CAP, "exactly the cap was sent");
    let failed = t.app.store.list_jobs(Some(JobStatus::Failed), 100).await.unwrap();
    assert_eq!(failed.len(), JOBS - CAP as usize);
    let fired = t.logs(&admin, "cs_usage_trigger").await;
    let of = |id: &str| fired.iter().filter(|e| e["details"]["trigger"] == id).count();
    assert_eq!((of("cap"), of("half")), (1, 1), "each fired exactly once: {fired:?}");

    // The hook itself under contention: of many takes at once, exactly the room left wins.
    t.clock.advance(DAY);
    let to = callsign_domain::phone::PhoneNumber::parse(PHONE).unwrap();
    let mut takes = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let core = t.app.core.clone();
        let to = to.clone();
        takes.spawn(async move { callsign_core::usage::before_send(&core, Channel::Sms, &to, "auth0").await.is_ok() });
    }
    let won = takes.join_all().await.into_iter().filter(|ok| *ok).count();
    assert_eq!(won as u64, CAP);
}

/// One request the receiver got: its headers and body.
type Got = (HeaderMap, Vec<u8>);

/// A local alert receiver: what it was sent, and how many of its first answers are 500.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Got>>>,
    fail_first: Arc<AtomicU32>,
}

async fn receiver(fail_first: u32) -> (String, Receiver) {
    let r = Receiver { fail_first: Arc::new(AtomicU32::new(fail_first)), ..Default::default() };
    let state = r.clone();
    let app = axum::Router::new().route(
        "/alerts",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let state = state.clone();
            async move {
                state.got.lock().unwrap().push((headers, body.to_vec()));
                let left = state.fail_first.load(Ordering::SeqCst);
                if left > 0 {
                    state.fail_first.store(left - 1, Ordering::SeqCst);
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::NO_CONTENT
                }
            }
        }),
    );
    (format!("{}/alerts", serve(app).await), r)
}

#[tokio::test]
async fn an_alert_trigger_fires_once_and_reaches_the_webhook_signed_after_a_retry() {
    alert(TestApp::spawn().await).await;
}

#[tokio::test]
async fn an_alert_trigger_on_postgresql() {
    let Some(t) = TestApp::spawn_postgres().await else { return };
    alert(t).await;
}

async fn alert(t: TestApp) {
    let admin = t.mgmt_token().await;
    let (url, rx) = receiver(1).await;
    let (s, v) = t
        .put(
            &admin,
            API,
            json!({"triggers": [{"id": "two", "name": "Two SMS a day", "metric": "count", "period": "day", "channel": "sms", "threshold": 2, "action": "alert"}],
                   "alert_webhook": {"url": url}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let secret = v["alert_webhook"]["secret"].as_str().unwrap().to_owned();
    assert_eq!(send(&t, PHONE, Channel::Sms).await.status, JobStatus::Sent);
    assert!(t.logs(&admin, "cs_usage_trigger").await.is_empty(), "not yet");
    for _ in 0..3 {
        assert_eq!(send(&t, PHONE, Channel::Sms).await.status, JobStatus::Sent, "an alert does not stop");
    }
    let fired = t.logs(&admin, "cs_usage_trigger").await;
    assert_eq!(fired.len(), 1, "once per period: {fired:?}");
    assert_eq!(fired[0]["details"]["trigger"], "two");
    assert_eq!(fired[0]["details"]["value"], 2);
    assert!(fired[0]["description"].as_str().unwrap().contains("Two SMS a day"), "{}", fired[0]);

    // The receiver fails first: the alert stays and waits its backoff.
    assert_eq!(callsign_core::alerts::send_due(&t.app, "n1").await.unwrap(), 0);
    assert_eq!(rx.got.lock().unwrap().len(), 1);
    let waiting = callsign_core::alerts::pending(&t.app).await.unwrap();
    assert_eq!((waiting.len(), waiting[0].attempts), (1, 1));
    assert!(waiting[0].last_error.as_deref().unwrap().contains("500"), "{waiting:?}");
    assert_eq!(callsign_core::alerts::send_due(&t.app, "n1").await.unwrap(), 0, "not due yet");
    assert_eq!(rx.got.lock().unwrap().len(), 1);
    t.clock.advance(Duration::from_millis(callsign_core::alerts::backoff_ms(1) as u64));
    assert_eq!(callsign_core::alerts::send_due(&t.app, "n2").await.unwrap(), 1);
    assert!(callsign_core::alerts::pending(&t.app).await.unwrap().is_empty(), "delivered: gone");
    assert_eq!(callsign_core::alerts::send_due(&t.app, "n1").await.unwrap(), 0, "sent once");

    let got = rx.got.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    let (h, body) = &got[1];
    let id = h["webhook-id"].to_str().unwrap();
    let ts: i64 = h["webhook-timestamp"].to_str().unwrap().parse().unwrap();
    assert_eq!(got[0].0["webhook-id"], id, "the same id on the retry");
    assert_eq!(ts, callsign_domain::Clock::now(&t.clock).seconds());
    let key = callsign_messaging::transport::secret_key(&secret).unwrap();
    let want = callsign_messaging::transport::sign(&key, id, ts, body).unwrap();
    assert_eq!(h["webhook-signature"].to_str().unwrap(), want, "a valid Standard Webhooks signature");
    let b: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(b["type"], "callsign.alert.usage_trigger");
    assert_eq!(b["data"]["details"]["trigger"], "two");
    assert_eq!(b["data"]["details"]["value"], 2);
}

#[tokio::test]
async fn a_message_that_is_not_sent_gives_its_share_of_a_cap_back() {
    let t = TestApp::spawn().await;
    let admin = t.mgmt_token().await;
    triggers(&t, &admin, json!([{"id": "one", "metric": "count", "period": "day", "threshold": 1, "action": "stop"}]))
        .await;
    let to = callsign_domain::phone::PhoneNumber::parse(PHONE).unwrap();
    let hold = callsign_core::usage::before_send(&t.app, Channel::Sms, &to, "auth0").await.unwrap();
    assert!(callsign_core::usage::before_send(&t.app, Channel::Sms, &to, "auth0").await.is_err(), "held");
    // Every provider of the chain failed: the share comes back, and nothing is counted as sent.
    callsign_core::usage::after_send(&t.app, hold, false).await;
    let (_, cur) = t.get(&admin, CURRENT).await;
    assert_eq!(cur["periods"][1]["count"], 0, "{cur}");
    assert_eq!(send(&t, PHONE, Channel::Sms).await.status, JobStatus::Sent, "the cap's one message is still there");
    assert_eq!(send(&t, PHONE, Channel::Sms).await.status, JobStatus::Failed);
}

#[tokio::test]
async fn alerts_raised_at_once_are_all_kept_and_each_sent_by_one_sender() {
    alerts_at_once(TestApp::spawn().await).await;
}

#[tokio::test]
async fn alerts_at_once_on_postgresql() {
    let Some(t) = TestApp::spawn_postgres().await else { return };
    alerts_at_once(t).await;
}

async fn alerts_at_once(t: TestApp) {
    const N: usize = 12;
    let admin = t.mgmt_token().await;
    // Raised while no webhook is set: they wait.
    let mut raises = tokio::task::JoinSet::new();
    for i in 0..N {
        let core = t.app.core.clone();
        raises.spawn(async move { callsign_core::alerts::raise(&core, "test", json!({"n": i})).await });
    }
    raises.join_all().await;
    assert_eq!(callsign_core::alerts::pending(&t.app).await.unwrap().len(), N, "none lost to a concurrent raise");
    assert_eq!(callsign_core::alerts::send_due(&t.app, "n0").await.unwrap(), 0, "no webhook yet");
    let (url, rx) = receiver(0).await;
    let (s, v) = t.patch(&admin, API, json!({"alert_webhook": {"url": url}})).await;
    assert_eq!(s, 200, "{v}");
    // Setting the webhook makes them due at once (no backoff to wait out). Three senders at once: each alert is claimed by one of them.
    let mut senders = tokio::task::JoinSet::new();
    for i in 0..3 {
        let core = t.app.core.clone();
        senders.spawn(async move { callsign_core::alerts::send_due(&core, &format!("s{i}")).await.unwrap() });
    }
    let sent: usize = senders.join_all().await.into_iter().sum();
    assert_eq!(sent, N);
    let mut ids: Vec<String> =
        rx.got.lock().unwrap().iter().map(|(h, _)| h["webhook-id"].to_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), N, "each posted once");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), N);
    assert!(callsign_core::alerts::pending(&t.app).await.unwrap().is_empty());
}
