//! SMS-pumping detection (`callsign_core::pumping`): the Management API
//! (`/api/v2/guardian/factors/phone/pumping-detection`), holds that stop codes for new enrollments to a segment
//! whose codes are not used, the numbers already enrolled there left alone, releases and trusted segments, on both
//! backends, with the manual clock driving the window.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::time::Duration;

use common::TestApp;
use common::mfa::{Ctx, PW, setup, setup_app};
use serde_json::{Value, json};

const API: &str = "/api/v2/guardian/factors/phone/pumping-detection";
/// One range of 1 000 numbers (`prefix:+447400123`), the one the "attacker" pumps.
const PUMPED: &str = "+447400123";
/// A number of that range enrolled (and proven) before the attack.
const EARLY: &str = "+447400123555";
/// Another range of the same country.
const ELSEWHERE: &str = "+447911123456";

fn bad(s: u16, v: &Value, prop: &str) {
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["errorCode"], "invalid_body", "{v}");
    let m = v["message"].as_str().unwrap();
    assert!(m.contains(prop), "the message names {prop}: {m}");
}

#[tokio::test]
async fn the_api_reads_defaults_changes_and_refuses_bad_input() {
    let t = TestApp::spawn().await;
    let admin = t.mgmt_token().await;
    let (s, v) = t.get(&admin, API).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["enabled"], true);
    assert_eq!(v["window_minutes"], 60);
    assert_eq!(v["min_conversion"], 0.25);
    assert_eq!(v["min_sends"], json!({"country": 40, "prefix": 6, "ip": 20}));
    assert_eq!(v["trusted"], json!([]));

    let (s, v) =
        t.patch(&admin, API, json!({"min_sends": {"prefix": 10}, "trusted": ["country:gb", "ip:10.0.0.1"]})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["min_sends"], json!({"country": 40, "prefix": 10, "ip": 20}), "merged");
    assert_eq!(v["trusted"], json!(["country:GB", "ip:10.0.0.1"]), "normalised");
    let (s, v) = t.put(&admin, API, json!({"window_minutes": 30})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["trusted"], json!([]), "replaced");
    let (_, read) = t.get(&admin, API).await;
    assert_eq!(read, v);

    let (s, e) = t.patch(&admin, API, json!({"min_conversion": -0.5})).await;
    bad(s, &e, "min_conversion");
    let (s, e) = t.patch(&admin, API, json!({"min_conversion": "low"})).await;
    bad(s, &e, "min_conversion");
    let (s, e) = t.patch(&admin, API, json!({"min_sends": {"prefix": -1}})).await;
    bad(s, &e, "prefix");
    let (s, e) = t.patch(&admin, API, json!({"window_minutes": 2})).await;
    bad(s, &e, "window_minutes");
    let (s, e) = t.patch(&admin, API, json!({"trusted": ["country:XX"]})).await;
    bad(s, &e, "trusted[0]");
    let (s, e) = t.patch(&admin, API, json!({"trusted": ["prefix:+44770", "prefix:44770"]})).await;
    bad(s, &e, "trusted[1]");
    let (s, e) = t.patch(&admin, API, json!({"threshold": 3})).await;
    bad(s, &e, "threshold");
    let (_, after) = t.get(&admin, API).await;
    assert_eq!(after, read, "nothing saved");
    let (s, e) = t.delete(&admin, &format!("{API}/holds/nothing")).await;
    bad(s, &e, "segment");
    let (s, e) = t.delete(&admin, &format!("{API}/holds/country:FR")).await;
    assert_eq!(s, 404, "{e}");

    let reader = t.token_with_scopes(&["read:phone_pumping_detection"]).await;
    assert_eq!(t.get(&reader, API).await.0, 200);
    assert_eq!(t.get(&reader, &format!("{API}/segments")).await.0, 200);
    let (s, e) = t.patch(&reader, API, json!({})).await;
    assert_eq!((s, e["errorCode"].as_str()), (403, Some("insufficient_scope")), "{e}");
    let other = t.token_with_scopes(&["read:phone_destination_policy"]).await;
    assert_eq!(t.get(&other, API).await.0, 403);
}

#[tokio::test]
async fn a_pumped_range_is_held_and_its_enrolled_numbers_are_not() {
    pumped(setup().await).await;
}

#[tokio::test]
async fn a_pumped_range_is_held_on_postgresql() {
    let Some(t) = TestApp::spawn_postgres().await else { return };
    pumped(setup_app(t, &["sms", "voice"]).await).await;
}

async fn associate(c: &Ctx, mfa: &str, phone: &str) -> Value {
    let (s, v) =
        c.associate(mfa, json!({"authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": phone})).await;
    assert_eq!(s, 200, "{v}");
    v
}

/// Log in as `email` (a user of the test's application) and get its mfa_token.
async fn mfa_token_of(c: &Ctx, email: &str) -> String {
    let (s, v) = c
        .t
        .token_request(json!({"grant_type": "password", "client_id": c.cid, "client_secret": c.secret, "username": email, "password": PW}))
        .await;
    assert_eq!(s, 403, "{v}");
    v["mfa_token"].as_str().unwrap().to_owned()
}

async fn sent_to(c: &Ctx, phone: &str) -> usize {
    c.t.deliver_now().await;
    let l = c.t.app.store.list_dev_messages(Some(phone), callsign_store::Page::new(0, 100)).await.unwrap();
    l.items.len()
}

async fn segment(c: &Ctx, name: &str) -> Value {
    let (s, v) = c.t.get(&c.admin, &format!("{API}/segments")).await;
    assert_eq!(s, 200, "{v}");
    v["segments"].as_array().unwrap().iter().find(|s| s["segment"] == name).cloned().unwrap_or(Value::Null)
}

async fn pumped(c: Ctx) {
    // Small thresholds, so that a handful of codes shows the rule; the IP (127.0.0.1 for every request here) and
    // the country are judged only on far more.
    let (s, v) = c
        .t
        .patch(&c.admin, API, json!({"min_sends": {"prefix": 4, "country": 1000, "ip": 1000}, "grace_seconds": 120}))
        .await;
    assert_eq!(s, 200, "{v}");

    // Before the attack: Bob enrolls a number of the range and types his code.
    c.t.create_user(&c.admin, "bob@example.com").await;
    let bob = mfa_token_of(&c, "bob@example.com").await;
    let a = associate(&c, &bob, EARLY).await;
    let code = c.t.code_for(EARLY, 1).await;
    let (s, v) = c.verify(&bob, a["oob_code"].as_str().unwrap(), &code).await;
    assert_eq!(s, 200, "{v}");

    // The attack: enrollments to four more numbers of the range, none ever verified. All four are sent: nothing
    // is judged before its codes had time to be typed.
    let ann = c.mfa_token().await;
    for n in 0..4 {
        let phone = format!("{PUMPED}{:03}", 100 + n);
        associate(&c, &ann, &phone).await;
        assert_eq!(sent_to(&c, &phone).await, 1, "{phone}");
    }
    let seg = segment(&c, "prefix:+447400123").await;
    assert_eq!((seg["sent"].as_i64(), seg["verified"].as_i64()), (Some(5), Some(1)), "{seg}");
    assert_eq!(seg["status"], "ok", "still within the grace period: {seg}");

    // Past the grace period the range converts 1 in 5 (below 25 %): the next enrollment code to it is held.
    c.t.clock.advance(Duration::from_secs(200));
    let seg = segment(&c, "prefix:+447400123").await;
    assert_eq!(seg["status"], "suspect", "{seg}");
    let held = format!("{PUMPED}200");
    associate(&c, &ann, &held).await;
    assert_eq!(sent_to(&c, &held).await, 0, "held: nothing sent");
    let f = c.logged("gd_send_sms_failure", 1).await;
    assert_eq!(f[0]["details"]["reason"], "pumping_suspected", "{}", f[0]);
    assert_eq!(f[0]["details"]["segment"], "prefix:+447400123");
    assert!(!f[0].to_string().contains("447400123200"), "no number in the event: {}", f[0]);
    let d = c.logs("cs_pumping_detected").await;
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0]["details"]["sent"], 5);
    assert_eq!(d[0]["details"]["verified"], 1);
    assert_eq!(segment(&c, "prefix:+447400123").await["status"], "held");

    // Held: more enrollments to the range are refused, and the detection is not logged again.
    let again = format!("{PUMPED}201");
    associate(&c, &ann, &again).await;
    assert_eq!(sent_to(&c, &again).await, 0);
    assert_eq!(c.logs("gd_send_sms_failure").await.len(), 2);
    assert_eq!(c.logs("cs_pumping_detected").await.len(), 1, "one detection per hold");

    // Left alone: Bob's proven number in the held range, and enrollments to another range.
    let bob = mfa_token_of(&c, "bob@example.com").await;
    let (s, v) = c.challenge(&bob, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(sent_to(&c, EARLY).await, 2, "a login code to an enrolled number is never held");
    associate(&c, &ann, ELSEWHERE).await;
    assert_eq!(sent_to(&c, ELSEWHERE).await, 1, "another range is untouched");

    // An operator releases the hold: the next enrollment goes (the figures before the release no longer count).
    let (s, v) = c.t.delete(&c.admin, &format!("{API}/holds/prefix:%2B447400123")).await;
    assert_eq!(s, 204, "{v}");
    assert_eq!(c.logs("cs_pumping_released").await.len(), 1);
    let (s, _) = c.t.delete(&c.admin, &format!("{API}/holds/prefix:%2B447400123")).await;
    assert_eq!(s, 404, "no hold left");
    c.t.clock.advance(Duration::from_secs(61));
    // (Another account from here on: one user's send limit is 10 an hour.)
    c.t.create_user(&c.admin, "carol@example.com").await;
    let ann = mfa_token_of(&c, "carol@example.com").await;
    let released = format!("{PUMPED}300");
    associate(&c, &ann, &released).await;
    assert_eq!(sent_to(&c, &released).await, 1, "released");

    // The attack goes on after the release (four more codes never used): held again once judged.
    for n in 0..3 {
        let phone = format!("{PUMPED}{:03}", 400 + n);
        associate(&c, &ann, &phone).await;
        assert_eq!(sent_to(&c, &phone).await, 1);
    }
    c.t.clock.advance(Duration::from_secs(200));
    let late = format!("{PUMPED}500");
    associate(&c, &ann, &late).await;
    assert_eq!(sent_to(&c, &late).await, 0, "held again");
    assert_eq!(c.logs("cs_pumping_detected").await.len(), 2);

    // A trusted range is never held, whatever its figures.
    let (s, v) = c.t.patch(&c.admin, API, json!({"trusted": ["prefix:+447400123"]})).await;
    assert_eq!(s, 200, "{v}");
    let trusted = format!("{PUMPED}600");
    associate(&c, &ann, &trusted).await;
    assert_eq!(sent_to(&c, &trusted).await, 1, "trusted");
    assert_eq!(segment(&c, "prefix:+447400123").await["status"], "trusted");

    // Switched off: nothing is held (the figures are still counted).
    let (s, _) = c.t.patch(&c.admin, API, json!({"trusted": [], "enabled": false})).await;
    assert_eq!(s, 200);
    let off = format!("{PUMPED}700");
    associate(&c, &ann, &off).await;
    assert_eq!(sent_to(&c, &off).await, 1, "detection off");
}
