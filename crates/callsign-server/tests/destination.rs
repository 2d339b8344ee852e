//! The phone destination policy: the Management API (`/api/v2/guardian/factors/phone/destination-policy`), and
//! its enforcement when a phone is enrolled (MFA API, Management API) and before every send.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use callsign_store::JobStatus;
use common::mfa::{Ctx, PHONE, setup, setup_app};
use common::{TestApp, enc};
use serde_json::{Value, json};

const API: &str = "/api/v2/guardian/factors/phone/destination-policy";
/// UK premium rate (09…), as the numbering plan classifies it.
const PREMIUM: &str = "+449098765432";
const GB_MOBILE: &str = "+447400123456";

fn bad(s: u16, v: &Value, prop: &str) {
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["errorCode"], "invalid_body", "{v}");
    assert_eq!(v["error"], "Bad Request", "{v}");
    let m = v["message"].as_str().unwrap();
    assert!(m.contains(prop), "the message names {prop}: {m}");
}

#[tokio::test]
async fn the_api_reads_defaults_replaces_merges_and_refuses_bad_input() {
    let t = TestApp::spawn().await;
    let admin = t.mgmt_token().await;
    let (s, v) = t.get(&admin, API).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["sms"], json!({"mode": "all", "countries": [], "calling_codes": []}));
    assert_eq!(v["voice"]["mode"], "all");
    assert_eq!(
        v["number_types"]["sms"],
        json!({"fixed_line": true, "voip": true, "premium_rate": false, "shared_cost": false, "uan": false, "pager": false, "personal_number": false})
    );

    // PUT replaces the whole policy: what it leaves out is back to its default.
    let (s, v) = t
        .put(
            &admin,
            API,
            json!({"sms": {"mode": "allow", "countries": ["gb", "US"], "calling_codes": ["1416"]}, "number_types": {"sms": {"voip": false}}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["sms"], json!({"mode": "allow", "countries": ["GB", "US"], "calling_codes": ["+1416"]}));
    assert_eq!(v["number_types"]["sms"]["voip"], false);
    assert_eq!(v["number_types"]["sms"]["fixed_line"], true);
    let (s, v) = t.put(&admin, API, json!({"voice": {"mode": "deny", "countries": ["FR"]}})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["sms"]["mode"], "all", "replaced");
    assert_eq!(v["number_types"]["sms"]["voip"], true, "replaced");

    // PATCH merges: objects merge, lists replace.
    let (s, v) = t.patch(&admin, API, json!({"sms": {"mode": "deny", "countries": ["RU"]}})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["voice"], json!({"mode": "deny", "countries": ["FR"], "calling_codes": []}), "kept");
    assert_eq!(v["sms"]["countries"], json!(["RU"]));
    let (s, v) = t.patch(&admin, API, json!({"number_types": {"voice": {"premium_rate": true}}})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["number_types"]["voice"]["premium_rate"], true);
    assert_eq!(v["sms"]["countries"], json!(["RU"]), "kept");
    let (_, read) = t.get(&admin, API).await;
    assert_eq!(read, v, "what was answered is what is stored");
    assert!(t.logs(&admin, "gd_tenant_update").await.len() >= 4);

    // Bad input: 400 naming the property, and nothing saved.
    let (s, e) = t.put(&admin, API, json!({"sms": {"mode": "allow", "countries": ["GB", "XX"]}})).await;
    bad(s, &e, "sms.countries[1]");
    let (s, e) = t.patch(&admin, API, json!({"sms": {"countries": ["RU", "ru"]}})).await;
    bad(s, &e, "sms.countries[1]");
    let (s, e) = t.put(&admin, API, json!({"voice": {"mode": "deny", "calling_codes": ["+0"]}})).await;
    bad(s, &e, "voice.calling_codes[0]");
    let (s, e) = t.put(&admin, API, json!({"voice": {"mode": "all", "countries": ["GB"]}})).await;
    bad(s, &e, "voice.mode");
    let (s, e) = t.put(&admin, API, json!({"sms": {"mode": "allow"}})).await;
    bad(s, &e, "sms.countries");
    let (s, e) = t.put(&admin, API, json!({"sms": {"mode": "sometimes"}})).await;
    bad(s, &e, "sometimes");
    let (s, e) = t.put(&admin, API, json!({"sms": {"allow": ["GB"]}})).await;
    bad(s, &e, "allow");
    let (s, e) = t.put(&admin, API, json!({"number_types": {"sms": {"mobile": false}}})).await;
    bad(s, &e, "mobile");
    let (s, e) = t.put(&admin, API, json!([])).await;
    assert_eq!(s, 400, "{e}");
    let (_, after) = t.get(&admin, API).await;
    assert_eq!(after, read, "nothing saved");

    // Own scopes.
    let reader = t.token_with_scopes(&["read:phone_destination_policy"]).await;
    assert_eq!(t.get(&reader, API).await.0, 200);
    let (s, e) = t.put(&reader, API, json!({})).await;
    assert_eq!((s, e["errorCode"].as_str()), (403, Some("insufficient_scope")), "{e}");
    assert!(e["message"].as_str().unwrap().contains("update:phone_destination_policy"));
    let other = t.token_with_scopes(&["read:guardian_factors"]).await;
    assert_eq!(t.get(&other, API).await.0, 403);
}

#[tokio::test]
async fn refused_enrollments_send_nothing_and_log_why() {
    refusals(setup().await).await;
}

#[tokio::test]
async fn refused_enrollments_on_postgresql() {
    let Some(t) = TestApp::spawn_postgres().await else { return };
    refusals(setup_app(t, &["sms", "voice"]).await).await;
}

async fn associate(c: &Ctx, mfa: &str, channel: &str, phone: &str) -> (u16, Value) {
    c.associate(mfa, json!({"authenticator_types": ["oob"], "oob_channels": [channel], "phone_number": phone})).await
}

async fn inbox_count(c: &Ctx) -> u64 {
    c.t.deliver_now().await;
    c.t.app.store.count_dev_messages().await.unwrap()
}

async fn refusals(c: Ctx) {
    let (s, v) = c.t.put(&c.admin, API, json!({"sms": {"mode": "deny", "countries": ["US"]}})).await;
    assert_eq!(s, 200, "{v}");
    let mfa = c.mfa_token().await;

    // A denied country: 400, nothing sent, the event says why without the number.
    let (s, v) = associate(&c, &mfa, "sms", PHONE).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_phone_number")), "{v}");
    let d = v["error_description"].as_str().unwrap();
    assert!(d.contains("not allowed") && d.contains("US"), "{d}");
    assert_eq!(inbox_count(&c).await, 0);
    let f = c.logs("gd_send_sms_failure").await;
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["details"]["reason"], "destination_not_allowed");
    assert_eq!(f[0]["details"]["country"], "US");
    assert!(!f[0].to_string().contains("4155552671"), "no number in the event: {}", f[0]);
    assert!(c.t.app.store.list_enrollments(&c.user_id).await.unwrap().is_empty(), "no enrollment");

    // A premium-rate number, in an allowed country: refused by its type.
    let (s, v) = associate(&c, &mfa, "sms", PREMIUM).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_phone_number")), "{v}");
    assert!(v["error_description"].as_str().unwrap().contains("premium_rate"), "{v}");
    assert_eq!(inbox_count(&c).await, 0);
    let f = c.logs("gd_send_sms_failure").await;
    assert_eq!(f[0]["details"]["reason"], "number_type_not_allowed");
    assert_eq!(f[0]["details"]["number_type"], "premium_rate");
    let (s, v) = associate(&c, &mfa, "voice", PREMIUM).await;
    assert_eq!(s, 400, "premium rate is refused for voice too: {v}");
    assert_eq!(c.logs("gd_send_voice_failure").await[0]["details"]["reason"], "number_type_not_allowed");

    // Allowed countries and channels are untouched.
    let (s, v) = associate(&c, &mfa, "sms", GB_MOBILE).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(c.t.inbox(GB_MOBILE, 1).await[0].channel, "sms");
    let (s, v) = associate(&c, &mfa, "voice", PHONE).await;
    assert_eq!(s, 200, "US is denied for SMS only: {v}");
    assert_eq!(c.t.inbox(PHONE, 1).await[0].channel, "voice");

    // The Management API refuses such a number too (for its preferred channel), naming the property.
    let path = format!("/api/v2/users/{}/authentication-methods", enc(&c.user_id));
    let (s, v) = c.t.post(&c.admin, &path, json!({"type": "phone", "phone_number": PREMIUM})).await;
    assert_eq!((s, v["errorCode"].as_str()), (400, Some("invalid_phone_number")), "{v}");
    assert!(v["message"].as_str().unwrap().contains("phone_number"), "{v}");
    let (s, v) = c.t.put(&c.admin, &path, json!([{"type": "phone", "phone_number": PHONE}])).await;
    assert_eq!(s, 400, "US is denied for SMS, the default preferred channel: {v}");
}

#[tokio::test]
async fn a_policy_changed_after_enrollment_stops_the_next_send() {
    after_enrollment(setup().await).await;
}

#[tokio::test]
async fn a_policy_changed_after_enrollment_on_postgresql() {
    let Some(t) = TestApp::spawn_postgres().await else { return };
    after_enrollment(setup_app(t, &["sms", "voice"]).await).await;
}

async fn after_enrollment(c: Ctx) {
    c.enroll().await;
    let before = inbox_count(&c).await;
    let (s, v) = c.t.put(&c.admin, API, json!({"sms": {"mode": "allow", "countries": ["GB"]}})).await;
    assert_eq!(s, 200, "{v}");
    let mfa = c.mfa_token().await;
    let (s, v) = c.challenge(&mfa, None).await;
    assert_eq!(s, 200, "the challenge is accepted; the send is refused: {v}");
    let f = c.logged("gd_send_sms_failure", 1).await;
    assert_eq!(f[0]["details"]["reason"], "destination_not_allowed", "{}", f[0]);
    assert_eq!(f[0]["details"]["country"], "US");
    assert!(!f[0].to_string().contains("4155552671"), "{}", f[0]);
    assert_eq!(inbox_count(&c).await, before, "nothing sent");
    let failed = c.t.app.store.list_jobs(Some(JobStatus::Failed), 10).await.unwrap();
    assert_eq!((failed.len(), failed[0].attempts), (1, 1), "ended, not retried");

    // Allowed again: the next challenge is sent.
    let (s, _) = c.t.patch(&c.admin, API, json!({"sms": {"countries": ["GB", "US"]}})).await;
    assert_eq!(s, 200);
    let (s, _) = c.challenge(&mfa, None).await;
    assert_eq!(s, 200);
    assert_eq!(c.t.inbox(PHONE, (before + 1) as usize).await.len() as u64, before + 1);
}
