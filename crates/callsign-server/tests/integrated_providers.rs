//! The integrated providers end to end, each against its strict local fake (`callsign-fakes`): selected and
//! configured through the Management API, a code sent through `/mfa/associate` and `/mfa/challenge`, the fake
//! receiving it in the provider's documented format, and the `mfa-oob` grant succeeding with the code the fake
//! received. Then routing: a failover chain, a country route, the voice fallback, provider health, and the checks
//! on a routing document. (Amazon SNS is tested against moto: `sdk-tests/moto/run.sh`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use callsign_fakes::{Delivered, Fake, Reply, Seen};
use common::PHONE;
use common::mfa::{Ctx, setup_postgres_with, setup_with};
use serde_json::{Value, json};

/// The integrated providers with a Rust fake, and whether each has voice.
const PROVIDERS: &[(&str, bool)] =
    &[("clicksend", true), ("esendex", true), ("infobip", true), ("mitto", false), ("sns", false), ("telesign", true)];

async fn start(name: &str) -> Fake {
    match name {
        "clicksend" => callsign_fakes::clicksend::start().await,
        "esendex" => callsign_fakes::esendex::start().await,
        "infobip" => callsign_fakes::infobip::start().await,
        "mitto" => callsign_fakes::mitto::start().await,
        "sns" => callsign_fakes::sns::start().await,
        "telesign" => callsign_fakes::telesign::start().await,
        _ => unreachable!("{name}"),
    }
}

fn settings(name: &str, base: &str) -> Value {
    match name {
        "clicksend" => callsign_fakes::clicksend::settings(),
        "esendex" => callsign_fakes::esendex::settings(),
        "infobip" => callsign_fakes::infobip::settings_at(base),
        "mitto" => callsign_fakes::mitto::settings(),
        "sns" => callsign_fakes::sns::settings(),
        "telesign" => callsign_fakes::telesign::settings(),
        _ => unreachable!("{name}"),
    }
}

fn delivered(name: &str, s: &Seen) -> Option<Delivered> {
    match name {
        "clicksend" => callsign_fakes::clicksend::delivered(s),
        "esendex" => callsign_fakes::esendex::delivered(s),
        "infobip" => callsign_fakes::infobip::delivered(s),
        "mitto" => callsign_fakes::mitto::delivered(s),
        "sns" => callsign_fakes::sns::delivered(s),
        "telesign" => callsign_fakes::telesign::delivered(s),
        _ => unreachable!("{name}"),
    }
}

fn unavailable(name: &str) -> Reply {
    match name {
        "clicksend" => callsign_fakes::clicksend::unavailable(),
        "esendex" => callsign_fakes::esendex::unavailable(),
        "infobip" => callsign_fakes::infobip::unavailable(),
        "mitto" => callsign_fakes::mitto::unavailable(),
        "sns" => callsign_fakes::sns::unavailable(),
        "telesign" => callsign_fakes::telesign::unavailable(),
        _ => unreachable!("{name}"),
    }
}

fn bad_number(name: &str) -> Reply {
    match name {
        "clicksend" => callsign_fakes::clicksend::bad_number(),
        "esendex" => callsign_fakes::esendex::bad_number(),
        "infobip" => callsign_fakes::infobip::bad_number(),
        "mitto" => callsign_fakes::mitto::bad_number(),
        "sns" => callsign_fakes::sns::bad_number(),
        "telesign" => callsign_fakes::telesign::bad_number(),
        _ => unreachable!("{name}"),
    }
}

/// The first six digits of a text (SMS carries the code; voice reads it digit by digit).
fn code_in(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).take(6).collect()
}

/// An app with these providers configured (each aimed at its fake), `selected` selected, SMS and voice on.
async fn app_with(names: &[&str], selected: &str) -> (Ctx, Vec<(String, Fake)>) {
    app_on(false, names, selected).await.expect("SQLite")
}

/// [`app_with`] on SQLite or PostgreSQL (None when PostgreSQL is not configured: skipped).
async fn app_on(postgres: bool, names: &[&str], selected: &str) -> Option<(Ctx, Vec<(String, Fake)>)> {
    let mut fakes = Vec::new();
    for n in names {
        fakes.push(((*n).to_owned(), start(n).await));
    }
    let urls: Vec<(String, String)> = fakes.iter().map(|(n, f)| (n.clone(), f.url.clone())).collect();
    let aim = move |raw: &mut callsign_server::config::RawConfig| {
        for (n, u) in &urls {
            raw.set_provider_base_url(n, u.clone());
        }
    };
    let c = if postgres {
        setup_postgres_with(aim, &["sms", "voice"]).await?
    } else {
        setup_with(aim, &["sms", "voice"]).await
    };
    for (n, f) in &fakes {
        let (s, v) =
            c.t.put(&c.admin, &format!("/api/v2/guardian/factors/phone/providers/{n}"), settings(n, &f.url)).await;
        assert_eq!(s, 200, "{n}: {v}");
        let view = c.t.get(&c.admin, &format!("/api/v2/guardian/factors/phone/providers/{n}")).await.1;
        for (k, secret) in settings(n, &f.url).as_object().unwrap() {
            if ["api_key", "api_password", "secret_access_key"].contains(&k.as_str()) {
                assert!(!view.to_string().contains(secret.as_str().unwrap()), "{n}: {k} is masked: {view}");
            }
        }
    }
    let (s, v) =
        c.t.put(&c.admin, "/api/v2/guardian/factors/phone/selected-provider", json!({"provider": selected})).await;
    assert_eq!(s, 200, "{v}");
    Some((c, fakes))
}

fn fake<'a>(fakes: &'a [(String, Fake)], name: &str) -> &'a Fake {
    &fakes.iter().find(|(n, _)| n == name).unwrap().1
}

/// The messages `name`'s fake accepted.
fn received(fakes: &[(String, Fake)], name: &str) -> Vec<Delivered> {
    fake(fakes, name).seen().iter().filter_map(|s| delivered(name, s)).collect()
}

/// Enroll `phone` on `channel`; returns (mfa_token, oob_code).
async fn associate(c: &Ctx, phone: &str, channel: &str) -> (String, String) {
    let mfa = c.mfa_token().await;
    let (s, a) = c
        .associate(&mfa, json!({"authenticator_types": ["oob"], "oob_channels": [channel], "phone_number": phone}))
        .await;
    assert_eq!(s, 200, "{a}");
    (mfa, a["oob_code"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn every_integrated_provider_enrolls_and_logs_in_end_to_end() {
    for &(name, voice) in PROVIDERS {
        let (c, fakes) = app_with(&[name], name).await;
        let (mfa, oob) = associate(&c, PHONE, "sms").await;
        c.t.deliver_now().await;
        let got = received(&fakes, name);
        assert_eq!(got.len(), 1, "{name}: {:?}", fake(&fakes, name).seen());
        assert_eq!((got[0].channel, got[0].to.as_str()), ("sms", PHONE), "{name}");
        let (s, v) = c.verify(&mfa, &oob, &code_in(&got[0].text)).await;
        assert_eq!(s, 200, "{name}: {v}");
        assert!(v["access_token"].is_string());
        let sent = c.logged("gd_send_sms", 1).await;
        assert_eq!(sent[0]["details"]["provider"], name);
        // A chain of one still records its attempt, with its latency.
        let chain = sent[0]["details"]["chain"].as_array().unwrap();
        assert_eq!(
            (chain.len(), chain[0]["provider"].as_str(), chain[0]["outcome"].as_str()),
            (1, Some(name), Some("sent"))
        );
        assert!(chain[0]["duration_ms"].is_u64(), "{chain:?}");

        // Log in again with a challenge (the enrolled phone), by voice where the provider has it.
        let mfa = c.mfa_token().await;
        let auths = c.authenticators(&mfa).await;
        let want = if voice { "voice" } else { "sms" };
        let id = auths
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["oob_channel"] == want || (!voice && a["oob_channel"] == "sms"))
            .map(|a| a["id"].as_str().unwrap().to_owned());
        let (s, ch) = c.challenge(&mfa, id.as_deref()).await;
        assert_eq!(s, 200, "{name}: {ch}");
        c.t.deliver_now().await;
        let got = received(&fakes, name);
        assert_eq!(got.len(), 2, "{name}");
        let (s, v) = c.verify(&mfa, ch["oob_code"].as_str().unwrap(), &code_in(&got[1].text)).await;
        assert_eq!(s, 200, "{name}: {v}");
    }
}

#[tokio::test]
async fn a_failing_first_provider_hands_the_message_to_the_next_once() {
    let (c, fakes) = app_with(&["mitto", "telesign"], "mitto").await;
    let (s, v) =
        c.t.put(&c.admin, "/api/v2/guardian/factors/phone/routing", json!({"fallbacks": {"sms": ["telesign"]}})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["fallbacks"], json!({"sms": ["telesign"], "voice": []}));
    fake(&fakes, "mitto").then(unavailable("mitto"));
    let (mfa, oob) = associate(&c, PHONE, "sms").await;
    c.t.deliver_now().await;
    assert_eq!(fake(&fakes, "mitto").seen().len(), 1, "mitto was tried once");
    let got = received(&fakes, "telesign");
    assert_eq!(got.len(), 1, "the user gets one message, from telesign");
    let (s, v) = c.verify(&mfa, &oob, &code_in(&got[0].text)).await;
    assert_eq!(s, 200, "{v}");
    let ev = &c.logged("gd_send_sms", 1).await[0];
    assert_eq!(ev["details"]["provider"], "telesign");
    let chain = ev["details"]["chain"].as_array().unwrap();
    assert_eq!(chain.len(), 2, "{chain:?}");
    assert_eq!((chain[0]["provider"].as_str(), chain[0]["outcome"].as_str()), (Some("mitto"), Some("failed")));
    assert_eq!(chain[0]["retryable"], true);
    assert_eq!((chain[1]["provider"].as_str(), chain[1]["outcome"].as_str()), (Some("telesign"), Some("sent")));
    let job_id = ev["details"]["job_id"].as_str().unwrap();
    let job = c.t.app.store.get_job(job_id).await.unwrap().unwrap();
    assert_eq!(job.details["chain"], ev["details"]["chain"], "the job shows both attempts");
    // Health saw mitto fail once (one failure does not open its breaker).
    let (s, h) = c.t.get(&c.admin, "/api/v2/guardian/factors/phone/health").await;
    assert_eq!(s, 200, "{h}");
    let m = h["providers"].as_array().unwrap().iter().find(|p| p["provider"] == "mitto").unwrap().clone();
    assert_eq!((m["state"].as_str(), m["recent_failures"].as_u64()), (Some("closed"), Some(1)), "{m}");
    let metrics = c.t.app.metrics.encode().await;
    assert!(metrics.contains("callsign_phone_provider_recent_failures{provider=\"mitto\"} 1"), "{metrics}");
    assert!(metrics.contains("callsign_phone_provider_circuit_state{provider=\"mitto\"} 0"), "{metrics}");
}

#[tokio::test]
async fn a_refused_number_does_not_move_on_and_the_voice_fallback_calls_once() {
    let (c, fakes) = app_with(&["mitto", "telesign"], "mitto").await;
    let body = json!({"fallbacks": {"sms": ["telesign"], "voice": ["telesign"]}, "voice_fallback": {"enabled": true}});
    let (s, v) = c.t.put(&c.admin, "/api/v2/guardian/factors/phone/routing", body).await;
    assert_eq!(s, 200, "{v}");
    fake(&fakes, "mitto").then(bad_number("mitto"));
    let (mfa, oob) = associate(&c, PHONE, "sms").await;
    c.t.deliver_now().await; // the SMS fails for good, and queues the voice call
    c.t.deliver_now().await; // the voice call
    let sms: Vec<Delivered> = received(&fakes, "telesign").into_iter().filter(|d| d.channel == "sms").collect();
    assert!(sms.is_empty(), "a refused number is not sent to the next provider: {sms:?}");
    let failure = &c.logged("gd_send_sms_failure", 1).await[0];
    assert_eq!(failure["details"]["provider"], "mitto");
    let calls: Vec<Delivered> = received(&fakes, "telesign").into_iter().filter(|d| d.channel == "voice").collect();
    assert_eq!(calls.len(), 1, "one voice call");
    let ev = &c.logged("gd_send_voice", 1).await[0];
    assert_eq!(ev["details"]["fallback_for"], failure["details"]["job_id"], "logged as the fallback of the SMS");
    // The selected provider (Mitto) has no voice: the call's chain skips it for that reason, then Telesign calls.
    let chain = ev["details"]["chain"].as_array().unwrap();
    assert_eq!(
        chain.iter().map(|a| (a["provider"].as_str(), a["outcome"].as_str(), a["reason"].as_str())).collect::<Vec<_>>(),
        [(Some("mitto"), Some("skipped"), Some("channel")), (Some("telesign"), Some("sent"), None)],
        "{chain:?}"
    );
    // The same code, read out: it verifies the original challenge.
    let (s, v) = c.verify(&mfa, &oob, &code_in(&calls[0].text)).await;
    assert_eq!(s, 200, "{v}");
    // Once only: running delivery again places no second call.
    c.t.deliver_now().await;
    assert_eq!(received(&fakes, "telesign").len(), 1);
}

#[tokio::test]
async fn a_country_route_picks_its_own_chain() {
    let (c, fakes) = app_with(&["mitto", "telesign"], "mitto").await;
    let body = json!({"routes": [{"country": "gb", "sms": ["telesign"]}]});
    let (s, v) = c.t.put(&c.admin, "/api/v2/guardian/factors/phone/routing", body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["routes"][0]["country"], "GB", "normalised");
    let uk = "+447400123456";
    associate(&c, uk, "sms").await;
    c.t.deliver_now().await;
    let seen = (fake(&fakes, "telesign").seen(), fake(&fakes, "mitto").seen(), c.logs("gd_send_sms_failure").await);
    assert_eq!(received(&fakes, "telesign").iter().map(|d| d.to.as_str()).collect::<Vec<_>>(), [uk], "{seen:?}");
    assert!(received(&fakes, "mitto").is_empty());
}

#[tokio::test]
async fn routing_documents_are_checked() {
    let (c, _fakes) = app_with(&["mitto"], "auth0").await;
    let put = async |body: Value| c.t.put(&c.admin, "/api/v2/guardian/factors/phone/routing", body).await;
    for (body, needle) in [
        (json!({"fallbacks": {"sms": ["nope"]}}), "No enum match for: \\\"nope\\\""),
        (json!({"fallbacks": {"sms": ["telesign"]}}), "not configured for sms"),
        (json!({"fallbacks": {"voice": ["mitto"]}}), "cannot send voice"),
        (json!({"fallbacks": {"sms": ["auth0"]}}), "the chain would loop"),
        (json!({"routes": [{"country": "GB", "sms": ["auth0", "auth0"]}]}), "named twice"),
        (json!({"routes": [{"country": "GB"}]}), "the chain is empty"),
        (json!({"routes": [{"country": "XX", "sms": ["auth0"]}]}), "routes[0].country"),
        (json!({"routes": [{"sms": ["auth0"]}]}), "exactly one"),
        (json!({"fallback": {}}), "unknown field `fallback`"),
        (json!({"fallbacks": {"sms": "mitto"}}), "invalid type"),
        (
            json!({"voice_fallback": {"enabled": true, "receipt_timeout_seconds": 5}}),
            "voice_fallback.receipt_timeout_seconds",
        ),
        (json!({"voice_fallback": {"enabled": true, "receipt_timeout_seconds": -1}}), "invalid value"),
    ] {
        let (s, v) = put(body.clone()).await;
        assert_eq!(s, 400, "{body}: {v}");
        assert!(v.to_string().contains(needle), "{body}: {v}");
    }
    let (s, v) = c.t.get(&c.admin, "/api/v2/guardian/factors/phone/routing").await;
    assert_eq!(
        (s, v),
        (200, json!({"fallbacks": {"sms": [], "voice": []}, "routes": [], "voice_fallback": {"enabled": false}}))
    );
    let ok = json!({"fallbacks": {"sms": ["mitto"]}, "routes": [{"calling_code": "+44", "sms": ["mitto", "auth0"]}]});
    let (s, v) = put(ok).await;
    assert_eq!((s, &v["routes"][0]["calling_code"]), (200, &json!("44")), "{v}");
    assert!(c.logs("gd_tenant_update").await.iter().any(|e| e["details"]["routing"] == v), "audited");
    // The scopes are the Guardian ones.
    let reader = c.t.token_with_scopes(&["read:guardian_factors"]).await;
    assert_eq!(c.t.get(&reader, "/api/v2/guardian/factors/phone/health").await.0, 200);
    assert_eq!(c.t.put(&reader, "/api/v2/guardian/factors/phone/routing", json!({})).await.0, 403);
}

/// Post a Telesign receipt for `job_id` with status `code`; returns the HTTP status.
async fn telesign_receipt(c: &Ctx, job_id: &str, reference: &str, code: i64, forge: bool) -> u16 {
    let (body, headers) = callsign_fakes::telesign::receipt(reference, code, "Receipt from the fake", Some(job_id));
    let body = if forge { String::from_utf8(body).unwrap().replace("Receipt", "Xeceipt").into_bytes() } else { body };
    let mut r = c.t.http.post(c.t.url(&format!("/callbacks/telesign/status/{job_id}"))).body(body);
    for (k, v) in &headers {
        r = r.header(k, v);
    }
    r.send().await.unwrap().status().as_u16()
}

/// Telesign selected, SMS and voice on, the voice fallback on with `routing`'s `voice_fallback` extras; one SMS
/// sent. Returns the context, the fakes, (mfa_token, oob_code), the SMS job id and its Telesign reference.
async fn telesign_sms_with_fallback(extra: Value) -> (Ctx, Vec<(String, Fake)>, (String, String), String, String) {
    telesign_sms_on(false, extra).await.expect("SQLite")
}

/// [`telesign_sms_with_fallback`] on SQLite or PostgreSQL.
async fn telesign_sms_on(
    postgres: bool,
    extra: Value,
) -> Option<(Ctx, Vec<(String, Fake)>, (String, String), String, String)> {
    let (c, fakes) = app_on(postgres, &["telesign"], "telesign").await?;
    let mut fallback = json!({"enabled": true});
    fallback.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let (s, v) = c.t.put(&c.admin, "/api/v2/guardian/factors/phone/routing", json!({"voice_fallback": fallback})).await;
    assert_eq!(s, 200, "{v}");
    let pair = associate(&c, PHONE, "sms").await;
    c.t.deliver_now().await;
    let sent = &c.logged("gd_send_sms", 1).await[0];
    let job_id = sent["details"]["job_id"].as_str().unwrap().to_owned();
    let reference = sent["details"]["provider_response"]["reference_id"].as_str().unwrap().to_owned();
    Some((c, fakes, pair, job_id, reference))
}

fn calls(fakes: &[(String, Fake)]) -> Vec<Delivered> {
    received(fakes, "telesign").into_iter().filter(|d| d.channel == "voice").collect()
}

#[tokio::test]
async fn a_signed_receipt_is_recorded_and_a_failed_one_places_the_voice_call_once() {
    let (c, fakes, (mfa, oob), job_id, reference) = telesign_sms_with_fallback(json!({})).await;
    // The SMS left a standby call, due when the code expires (no receipt deadline is set).
    let standby = c.t.app.store.get_job(&format!("{job_id}_voice")).await.unwrap().expect("standby call");
    assert_eq!(standby.status, callsign_store::JobStatus::Pending);
    assert!(standby.run_at.millis() > c.t.app.clock.now().millis(), "not due yet");
    assert_eq!(standby.details["reason"], "no delivery receipt before the code expired");
    assert_eq!(c.t.deliver_now().await, 0, "nothing due");
    // A forged receipt (the body changed after signing) is refused and changes nothing.
    assert_eq!(telesign_receipt(&c, &job_id, &reference, 200, true).await, 403);
    assert_eq!(c.t.app.store.get_job(&job_id).await.unwrap().unwrap().details.get("receipts"), None);
    // A failed receipt is recorded, and places the call now: the same code, read out, logged as the fallback.
    assert_eq!(telesign_receipt(&c, &job_id, &reference, 207, false).await, 204);
    let job = c.t.app.store.get_job(&job_id).await.unwrap().unwrap();
    let receipts = job.details["receipts"].as_array().unwrap();
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!((receipts[0]["status"].as_str(), receipts[0]["state"].as_str()), (Some("failed"), Some("failed")));
    assert_eq!(c.logs("gd_delivery_receipt").await[0]["details"]["status"], "failed");
    c.t.deliver_now().await;
    let placed = calls(&fakes);
    assert_eq!(placed.len(), 1, "one call");
    let sms = received(&fakes, "telesign");
    assert_eq!(code_in(&placed[0].text), code_in(&sms[0].text), "the same code");
    let ev = &c.logged("gd_send_voice", 1).await[0];
    assert_eq!(ev["details"]["fallback_for"], json!(job_id));
    assert_eq!(ev["details"]["reason"], "the delivery receipt said the SMS failed");
    // A second failed receipt places no second call.
    assert_eq!(telesign_receipt(&c, &job_id, &reference, 210, false).await, 204);
    c.t.deliver_now().await;
    assert_eq!(calls(&fakes).len(), 1);
    let (s, v) = c.verify(&mfa, &oob, &code_in(&placed[0].text)).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn no_receipt_within_the_deadline_places_the_call() {
    let (c, fakes, (mfa, oob), job_id, _) = telesign_sms_with_fallback(json!({"receipt_timeout_seconds": 30})).await;
    let (s, v) = c.t.get(&c.admin, "/api/v2/guardian/factors/phone/routing").await;
    assert_eq!((s, &v["voice_fallback"]), (200, &json!({"enabled": true, "receipt_timeout_seconds": 30})));
    c.t.clock.advance(std::time::Duration::from_secs(29));
    c.t.deliver_now().await;
    assert!(calls(&fakes).is_empty(), "not before the deadline");
    c.t.clock.advance(std::time::Duration::from_secs(2));
    c.t.deliver_now().await;
    let placed = calls(&fakes);
    assert_eq!(placed.len(), 1);
    let ev = &c.logged("gd_send_voice", 1).await[0];
    assert_eq!(
        (ev["details"]["fallback_for"].as_str(), ev["details"]["reason"].as_str()),
        (Some(job_id.as_str()), Some("no delivery receipt within 30 s"))
    );
    let (s, v) = c.verify(&mfa, &oob, &code_in(&placed[0].text)).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn a_delivered_receipt_or_a_used_code_cancels_the_standby_call() {
    // Delivered: the standby call is cancelled at once, logs nothing, and never runs.
    let (c, fakes, _, job_id, reference) = telesign_sms_with_fallback(json!({"receipt_timeout_seconds": 30})).await;
    assert_eq!(telesign_receipt(&c, &job_id, &reference, 200, false).await, 204);
    let standby = c.t.app.store.get_job(&format!("{job_id}_voice")).await.unwrap().unwrap();
    assert_eq!(standby.status, callsign_store::JobStatus::Cancelled);
    assert_eq!((standby.details["cancelled"].as_str(), standby.payload), (Some("the SMS was delivered"), None));
    c.t.clock.advance(std::time::Duration::from_secs(60));
    c.t.deliver_now().await;
    assert!(calls(&fakes).is_empty());
    assert!(c.logs("gd_send_voice").await.is_empty() && c.logs("gd_send_voice_failure").await.is_empty());
    // A late failed receipt does not bring it back.
    assert_eq!(telesign_receipt(&c, &job_id, &reference, 207, false).await, 204);
    c.t.deliver_now().await;
    assert!(calls(&fakes).is_empty());

    // Used: the user typed the SMS code before the deadline; at the deadline the call is cancelled, not placed.
    let (c, fakes, (mfa, oob), job_id, _) = telesign_sms_with_fallback(json!({"receipt_timeout_seconds": 30})).await;
    let sms = received(&fakes, "telesign");
    assert_eq!(c.verify(&mfa, &oob, &code_in(&sms[0].text)).await.0, 200);
    c.t.clock.advance(std::time::Duration::from_secs(31));
    assert_eq!(c.t.deliver_now().await, 1, "the standby call came up");
    assert!(calls(&fakes).is_empty());
    let standby = c.t.app.store.get_job(&format!("{job_id}_voice")).await.unwrap().unwrap();
    assert_eq!(
        (standby.status, standby.details["cancelled"].as_str()),
        (callsign_store::JobStatus::Cancelled, Some("the code was used"))
    );
    assert!(c.logs("gd_send_voice").await.is_empty());

    // A provider without receipts (Mitto) leaves no standby call: only a failed send calls.
    let (c, _fakes) = app_with(&["mitto", "telesign"], "mitto").await;
    let body = json!({"fallbacks": {"voice": ["telesign"]}, "voice_fallback": {"enabled": true, "receipt_timeout_seconds": 30}});
    assert_eq!(c.t.put(&c.admin, "/api/v2/guardian/factors/phone/routing", body).await.0, 200);
    associate(&c, PHONE, "sms").await;
    c.t.deliver_now().await;
    let sent = &c.logged("gd_send_sms", 1).await[0];
    let job_id = sent["details"]["job_id"].as_str().unwrap();
    assert_eq!(c.t.app.store.get_job(&format!("{job_id}_voice")).await.unwrap(), None);
}

/// Many failed receipts at once, with delivery running beside them: one call, one event.
async fn racing_failed_receipts_place_one_call(c: Ctx, fakes: Vec<(String, Fake)>, job_id: String, reference: String) {
    let c = std::sync::Arc::new(c);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (c, job_id, reference) = (c.clone(), job_id.clone(), reference.clone());
        tasks.push(tokio::spawn(async move {
            let status = telesign_receipt(&c, &job_id, &reference, if i % 2 == 0 { 207 } else { 210 }, false).await;
            c.t.deliver_now().await;
            status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 204);
    }
    c.t.deliver_now().await;
    assert_eq!(calls(&fakes).len(), 1, "exactly one call");
    assert_eq!(c.logs("gd_send_voice").await.len(), 1, "exactly one event");
    let job = c.t.app.store.get_job(&job_id).await.unwrap().unwrap();
    assert_eq!(job.details["receipts"].as_array().unwrap().len(), 8, "every receipt kept");
}

#[tokio::test]
async fn racing_failed_receipts_place_one_call_on_sqlite() {
    let (c, fakes, _, job_id, reference) = telesign_sms_with_fallback(json!({})).await;
    racing_failed_receipts_place_one_call(c, fakes, job_id, reference).await;
}

#[tokio::test]
async fn racing_failed_receipts_place_one_call_on_postgres() {
    let Some((c, fakes, _, job_id, reference)) = telesign_sms_on(true, json!({})).await else { return };
    racing_failed_receipts_place_one_call(c, fakes, job_id, reference).await;
}
