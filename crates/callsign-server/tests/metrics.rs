//! What an operator alerts on (docs/METRICS.md): the Prometheus series of messages, delivery latency, the queue,
//! limit refusals, log events and log streams; and the hourly statistics the Overview draws, on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::TestApp;
use common::mfa::{Ctx, PHONE, setup, setup_app};
use serde_json::json;

/// The value of the series whose line starts with `series` (name and labels, exactly as encoded).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().split(' ').next()?.parse().ok()))
}

#[tokio::test]
async fn messages_refusals_events_and_the_queue_are_counted() {
    counted(setup().await).await;
}

#[tokio::test]
async fn messages_refusals_events_and_the_queue_are_counted_on_postgresql() {
    let Some(t) = TestApp::spawn_postgres().await else { return };
    counted(setup_app(t, &["sms", "voice"]).await).await;
}

async fn counted(c: Ctx) {
    // A code asked for and not yet delivered: one job due.
    let mfa = c.mfa_token().await;
    let (s, v) = c
        .associate(&mfa, json!({"authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": PHONE}))
        .await;
    assert_eq!(s, 200, "{v}");
    let text = c.t.app.metrics.encode().await;
    assert_eq!(value(&text, "callsign_delivery_queue_due"), Some(1.0), "{text}");
    assert_eq!(value(&text, "callsign_delivery_queue_running"), Some(0.0));

    // Delivered: the message by channel, provider, country and outcome, its latency, the event by type.
    let code = c.t.code_for(PHONE, 1).await;
    let (s, v) = c.verify(&mfa, v["oob_code"].as_str().unwrap(), &code).await;
    assert_eq!(s, 200, "{v}");
    let text = c.t.app.metrics.encode().await;
    let sent = r#"callsign_phone_messages_total{channel="sms",provider="auth0",country="US",outcome="sent",reason=""}"#;
    assert_eq!(value(&text, sent), Some(1.0), "{text}");
    assert_eq!(
        value(&text, r#"callsign_phone_message_acceptance_seconds_count{channel="sms",provider="auth0"}"#),
        Some(1.0)
    );
    assert_eq!(value(&text, r#"callsign_log_events_total{code="gd_send_sms"}"#), Some(1.0));
    assert_eq!(value(&text, r#"callsign_log_events_total{code="gd_enrollment_complete"}"#), Some(1.0));
    assert_eq!(value(&text, "callsign_delivery_queue_due"), Some(0.0));
    assert!(!text.contains("4155552671"), "no number in any label");

    // A refusal by the destination policy: a failed message with its reason, and a refusal of that kind.
    let (s, _) =
        c.t.put(
            &c.admin,
            "/api/v2/guardian/factors/phone/destination-policy",
            json!({"sms": {"mode": "deny", "countries": ["FR"]}}),
        )
        .await;
    assert_eq!(s, 200);
    c.t.create_user(&c.admin, "zoe@example.com").await;
    let (s, v) = c
        .t
        .token_request(json!({"grant_type": "password", "client_id": c.cid, "client_secret": c.secret, "username": "zoe@example.com", "password": common::PW}))
        .await;
    assert_eq!(s, 403, "{v}");
    let zoe = v["mfa_token"].as_str().unwrap();
    let (s, v) = c
        .associate(
            zoe,
            json!({"authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": "+33612345678"}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let text = c.t.app.metrics.encode().await;
    assert_eq!(value(&text, r#"callsign_limit_refusals_total{kind="destination"}"#), Some(1.0), "{text}");

    // A log stream: its lag, failures and state.
    let (s, st) = c
        .t
        .post(
            &c.admin,
            "/api/v2/log-streams",
            json!({"name": "m", "type": "http", "sink": {"httpEndpoint": "http://127.0.0.1:9/logs", "httpContentType": "application/json", "httpContentFormat": "JSONLINES"}}),
        )
        .await;
    assert_eq!(s, 200, "{st}");
    let id = st["id"].as_str().unwrap();
    let text = c.t.app.metrics.encode().await;
    let lag = value(&text, &format!(r#"callsign_log_stream_lag_events{{stream="{id}"}}"#)).expect("the stream's lag");
    assert!(lag >= 1.0, "events written since the stream's start are waiting: {lag}");
    assert_eq!(value(&text, &format!(r#"callsign_log_stream_active{{stream="{id}"}}"#)), Some(1.0));
    assert_eq!(value(&text, &format!(r#"callsign_log_stream_consecutive_failures{{stream="{id}"}}"#)), Some(0.0));
    let (s, _) = c.t.delete(&c.admin, &format!("/api/v2/log-streams/{id}")).await;
    assert_eq!(s, 204);
    let text = c.t.app.metrics.encode().await;
    assert!(!text.contains(id), "a deleted stream's series go");

    // The same figures in the hourly statistics the Overview draws.
    let day = callsign_core::stats::last_hours(&c.t.app, 24).await.unwrap();
    assert_eq!(day.total("msg|sms|sent"), 1);
    assert_eq!(day.total("country|US|sent"), 1);
    assert_eq!(day.total("provider|auth0|sent"), 1);
    assert_eq!(day.total("refusal|destination"), 1);
    assert_eq!(day.total("event|gd_auth_succeed"), 1);
    // Another hour, the next day: the last 24 hours no longer hold them, the last 30 days do.
    c.t.clock.advance(std::time::Duration::from_secs(25 * 3600));
    assert_eq!(callsign_core::stats::last_hours(&c.t.app, 24).await.unwrap().total("msg|sms|sent"), 0);
    assert_eq!(callsign_core::stats::last_hours(&c.t.app, 720).await.unwrap().total("msg|sms|sent"), 1);
}

#[tokio::test]
async fn the_overview_draws_its_charts_from_the_statistics() {
    let c = setup().await;
    c.enroll().await;
    let day = callsign_core::stats::last_hours(&c.t.app, 24).await.unwrap();
    assert_eq!(day.per("msg|sms|sent", 1).iter().map(|(_, n)| n).sum::<i64>(), 1);
    assert_eq!(day.per("msg|sms|sent", 1).len(), 24, "one bar per hour");
    let month = callsign_core::stats::last_hours(&c.t.app, 720).await.unwrap();
    assert_eq!(month.per("msg|sms|sent", 24).len(), 30, "one bar per day");
    let countries = month.by("country");
    assert_eq!((countries[0].name.as_str(), countries[0].sent), ("US", 1));
}
