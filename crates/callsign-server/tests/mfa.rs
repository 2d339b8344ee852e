//! The phone factor end to end: ROPG → mfa_required → associate / challenge → code in the dev inbox → MFA grants.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::time::Duration;

use callsign_core::guardian::GuardianConfig;
use callsign_domain::Clock;
use callsign_store::{Channel, EnrollmentStatus, JobStatus};
use common::mfa::{Ctx, PHONE, PW, setup, setup_app, setup_with};
use common::{TestApp, claims};
use serde_json::{Value, json};

#[tokio::test]
async fn enroll_by_sms_then_log_in_by_voice_and_by_recovery_code() {
    full_flow(setup().await).await;
}

#[tokio::test]
async fn the_same_flow_on_postgresql() {
    let Some(t) = TestApp::spawn_postgres().await else { return };
    assert_eq!(t.app.store.backend(), "postgres");
    full_flow(setup_app(t, &["sms", "voice"]).await).await;
}

async fn full_flow(c: Ctx) {
    let mfa = c.mfa_token().await;
    assert!(c.log_types().await.contains(&"mfar".to_owned()));

    // Bad input is a clear 400.
    let (s, v) = c
        .associate(&mfa, json!({"authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": "555-1234"}))
        .await;
    assert_eq!((s, v["error"].as_str().unwrap()), (400, "invalid_request"));
    assert!(v["error_description"].as_str().unwrap().contains("phone_number"), "{v}");
    let (s, _) = c
        .associate(&mfa, json!({"authenticator_types": ["oob"], "oob_channels": ["email"], "phone_number": PHONE}))
        .await;
    assert_eq!(s, 400);

    let (s, a) = c
        .associate(
            &mfa,
            json!({"authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": "+1 415 555 2671"}),
        )
        .await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(
        (a["authenticator_type"].as_str(), a["binding_method"].as_str(), a["oob_channel"].as_str()),
        (Some("oob"), Some("prompt"), Some("sms"))
    );
    let recovery = a["recovery_codes"][0].as_str().unwrap().to_owned();
    assert_eq!(recovery.len(), 24);
    assert!(recovery.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));

    let msgs = c.t.inbox(PHONE, 1).await;
    assert_eq!(msgs[0].channel, "sms");
    assert!(
        msgs[0]
            .text
            .ends_with("is your verification code for Callsign. Please enter this code to verify your enrollment."),
        "{}",
        msgs[0].text
    );
    let code = c.t.code_for(PHONE, 1).await;

    // Pending until confirmed; a phone is listed for both channels, masked.
    let auths = c.authenticators(&mfa).await;
    let ids: Vec<&str> = auths.as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3, "{auths}");
    assert!(
        ids[0].starts_with("sms|dev_") && ids[1].starts_with("voice|dev_") && ids[2].starts_with("recovery-code|dev_"),
        "{ids:?}"
    );
    assert_eq!(auths[0]["name"], "XXXXXXXX2671");
    assert_eq!(auths[0]["active"], false);

    let oob = a["oob_code"].as_str().unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (s, v) = c.verify(&mfa, oob, wrong).await;
    assert_eq!((s, v), (403, json!({"error": "invalid_grant", "error_description": "Invalid binding_code."})));
    let (s, v) = c.verify(&mfa, oob, &code).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(claims(v["access_token"].as_str().unwrap())["sub"], json!(c.user_id));
    assert_eq!(claims(v["id_token"].as_str().unwrap())["email"], "ann@example.com");
    // Single use: the mfa_token and the code are spent.
    let (s, v) = c.verify(&mfa, oob, &code).await;
    assert_eq!((s, v["error_description"].as_str().unwrap()), (403, "Malformed mfa_token"));

    let types = c.log_types().await;
    for t in [
        "gd_start_enroll",
        "gd_send_sms",
        "gd_auth_failed",
        "feoobft",
        "gd_enrollment_complete",
        "gd_auth_succeed",
        "seoobft",
    ] {
        assert!(types.contains(&t.to_owned()), "{t} missing from {types:?}");
    }
    let sent = c.logs("gd_send_sms").await;
    assert_eq!(sent[0]["details"]["provider"], "auth0");
    assert_eq!(sent[0]["user_id"], json!(c.user_id));
    assert!(!sent[0].to_string().contains(&code), "the code must not be in the log event");

    // Now enrolled: a new login challenges by voice.
    let mfa = c.mfa_token().await;
    let auths = c.authenticators(&mfa).await;
    assert_eq!(auths[0]["active"], true);
    let voice_id = auths[1]["id"].as_str().unwrap().to_owned();
    let (s, ch) = c.challenge(&mfa, Some(&voice_id)).await;
    assert_eq!(s, 200, "{ch}");
    assert_eq!((ch["challenge_type"].as_str(), ch["binding_method"].as_str()), (Some("oob"), Some("prompt")));
    let msgs = c.t.inbox(PHONE, 2).await;
    assert_eq!(msgs[0].channel, "voice");
    assert!(
        msgs[0].text.contains('.') && msgs[0].text.chars().nth(1) == Some('.'),
        "voice reads digits one by one: {}",
        msgs[0].text
    );
    let code = c.t.code_for(PHONE, 2).await;
    let (s, v) = c.verify(&mfa, ch["oob_code"].as_str().unwrap(), &code).await;
    assert_eq!(s, 200, "{v}");
    assert!(c.log_types().await.contains(&"gd_send_voice".to_owned()));

    // A recovery code stands in for the phone and is replaced by a new one.
    let mfa = c.mfa_token().await;
    let rc = |code: &str| json!({"grant_type": "http://auth0.com/oauth/grant-type/mfa-recovery-code", "client_id": c.cid, "client_secret": c.secret, "mfa_token": mfa, "recovery_code": code});
    let (s, v) = c.t.token_request(rc("WRONGWRONGWRONGWRONGWRON")).await;
    assert_eq!((s, v["error"].as_str().unwrap()), (403, "invalid_grant"));
    let (s, v) = c.t.token_request(rc(&recovery.to_lowercase())).await;
    assert_eq!(s, 200, "{v}");
    let fresh = v["recovery_code"].as_str().unwrap().to_owned();
    assert_ne!(fresh, recovery);
    let mfa = c.mfa_token().await;
    let (s, _) = c.t.token_request(json!({"grant_type": "http://auth0.com/oauth/grant-type/mfa-recovery-code", "client_id": c.cid, "client_secret": c.secret, "mfa_token": mfa, "recovery_code": recovery})).await;
    assert_eq!(s, 403, "a used recovery code does not work twice");
    let types = c.log_types().await;
    for t in ["gd_recovery_failed", "fercft", "gd_recovery_succeed", "sercft", "gd_start_auth"] {
        assert!(types.contains(&t.to_owned()), "{t} missing");
    }
    let (_, user) = c.t.get(&c.admin, &format!("/api/v2/users/{}", common::enc(&c.user_id))).await;
    assert_eq!(user["logins_count"], 3);
}

#[tokio::test]
async fn wrong_codes_empty_the_bucket_and_then_even_a_right_code_is_refused() {
    let c = setup().await;
    c.enroll().await;
    let mfa = c.mfa_token().await;
    let (_, ch) = c.challenge(&mfa, None).await;
    let oob = ch["oob_code"].as_str().unwrap();
    let code = c.t.code_for(PHONE, 2).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..10 {
        assert_eq!(c.verify(&mfa, oob, wrong).await.0, 403);
    }
    let (s, v) = c.verify(&mfa, oob, &code).await;
    assert_eq!(
        (s, v),
        (
            429,
            json!({"error": "too_many_attempts", "error_description": "Too many failed codes. Wait for some minutes before retrying."})
        )
    );
    assert!(c.log_types().await.contains(&"gd_otp_rate_limit_exceed".to_owned()));
    // One attempt comes back every 6 minutes (but the code itself lives only 5: challenge again).
    c.t.clock.advance(Duration::from_secs(6 * 60));
    let mfa = c.mfa_token().await;
    let (_, ch) = c.challenge(&mfa, None).await;
    let code = c.t.code_for(PHONE, 3).await;
    let (s, v) = c.verify(&mfa, ch["oob_code"].as_str().unwrap(), &code).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn send_limits_codes_expire_and_mfa_tokens_expire() {
    let c = setup().await;
    c.enroll().await; // 1 SMS
    let mfa = c.mfa_token().await;
    for i in 0..9 {
        assert_eq!(c.challenge(&mfa, None).await.0, 200, "send {}", i + 2);
    }
    let (s, v) = c.challenge(&mfa, None).await;
    assert_eq!(
        (s, v["error_description"].as_str().unwrap()),
        (429, "Too many SMS sent by the user. Wait for some minutes before retrying.")
    );
    assert!(c.logs("gd_send_sms_failure").await.iter().any(|l| l["details"]["reason"] == "rate_limited"));

    // An hour later one more message is allowed; voice at most once an hour.
    c.t.clock.advance(Duration::from_secs(3600));
    let mfa = c.mfa_token().await;
    let auths = c.authenticators(&mfa).await;
    let voice = auths[1]["id"].as_str().unwrap().to_owned();
    let (s, ch) = c.challenge(&mfa, Some(&voice)).await;
    assert_eq!(s, 200, "{ch}");
    c.t.clock.advance(Duration::from_secs(3600));
    assert_eq!(c.challenge(&mfa, Some(&voice)).await.0, 401, "the mfa_token has expired by now");
    let mfa = c.mfa_token().await;
    assert_eq!(c.challenge(&mfa, Some(&voice)).await.0, 200);
    let (s, v) = c.challenge(&mfa, Some(&voice)).await;
    assert_eq!((s, v["error"].as_str().unwrap()), (429, "too_many_attempts"));

    // Codes live 5 minutes.
    c.t.clock.advance(Duration::from_secs(3600));
    let mfa = c.mfa_token().await;
    let (_, ch) = c.challenge(&mfa, None).await;
    let n =
        c.t.app.store.list_dev_messages(Some(PHONE), callsign_store::Page::new(0, 100)).await.unwrap().total as usize;
    let code = c.t.code_for(PHONE, n).await;
    c.t.clock.advance(Duration::from_secs(5 * 60 + 1));
    let (s, v) = c.verify(&mfa, ch["oob_code"].as_str().unwrap(), &code).await;
    assert_eq!(s, 403, "{v}");
    // mfa_tokens live 10 minutes.
    c.t.clock.advance(Duration::from_secs(5 * 60));
    let (s, v) = c.verify(&mfa, ch["oob_code"].as_str().unwrap(), &code).await;
    assert_eq!((s, v), (401, json!({"error": "expired_token", "error_description": "mfa_token is expired"})));
}

#[tokio::test]
async fn only_enabled_channels_and_no_mfa_without_policy() {
    let c = setup_with(|_| {}, &["sms"]).await;
    let mfa = c.mfa_token().await;
    let (s, v) = c
        .associate(&mfa, json!({"authenticator_types": ["oob"], "oob_channels": ["voice"], "phone_number": PHONE}))
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error_description"].as_str().unwrap().contains("voice"));
    let mut g = GuardianConfig::load_for_update(&c.t.app).await.unwrap();
    g.policies.clear();
    g.save(&c.t.app).await.unwrap();
    let (s, v) = c.login().await;
    assert_eq!(s, 200, "{v}");
    // A challenge for a user with no confirmed phone says so.
    g.policies = vec!["all-applications".into()];
    g.save(&c.t.app).await.unwrap();
    let mfa = c.mfa_token().await;
    let (s, v) = c.challenge(&mfa, None).await;
    assert_eq!(s, 401);
    assert_eq!(v["error"], "unsupported_challenge_type");
    // A second enrollment through the mfa_token alone is refused once enrolled.
    c.enroll().await;
    let mfa = c.mfa_token().await;
    let (s, v) = c
        .associate(&mfa, json!({"authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": PHONE}))
        .await;
    assert_eq!((s, v["error_description"].as_str().unwrap()), (403, "User is already enrolled."));
    // An mfa_token proves only the password: it cannot remove a confirmed phone (or an attacker with the
    // password could swap in their own number).
    let auths = c.authenticators(&mfa).await;
    let id = auths[0]["id"].as_str().unwrap().replace('|', "%7C");
    let r = c.t.http.delete(c.t.url(&format!("/mfa/authenticators/{id}"))).bearer_auth(&mfa).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(c.authenticators(&mfa).await[0]["active"], true);
    // A pending one (an abandoned enrollment) can go.
    let (other, _, _) = {
        let (s, u) =
            c.t.post(
                &c.admin,
                "/api/v2/users",
                json!({"connection": "Username-Password-Authentication", "email": "bob@example.com", "password": PW}),
            )
            .await;
        assert_eq!(s, 201);
        (u, 0, 0)
    };
    let _ = other;
    let (s, v) = c
        .t
        .token_request(json!({"grant_type": "password", "client_id": c.cid, "client_secret": c.secret, "username": "bob@example.com", "password": PW}))
        .await;
    assert_eq!(s, 403);
    let bob_mfa = v["mfa_token"].as_str().unwrap().to_owned();
    let (s, _) = c
        .associate(
            &bob_mfa,
            json!({"authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": "+14155550123"}),
        )
        .await;
    assert_eq!(s, 200);
    let pending = c.authenticators(&bob_mfa).await[0]["id"].as_str().unwrap().replace('|', "%7C");
    let r =
        c.t.http.delete(c.t.url(&format!("/mfa/authenticators/{pending}"))).bearer_auth(&bob_mfa).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert!(c.log_types().await.contains(&"gd_unenroll".to_owned()));
}

#[tokio::test]
async fn an_unavailable_provider_fails_visibly_without_retrying_and_payloads_are_erased() {
    let c = setup().await;
    c.enroll().await;
    let jobs = c.t.app.store.list_jobs(Some(JobStatus::Sent), 10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].payload.is_none(), "the sealed message (with the code) is erased once the job is terminal");
    let mut g = GuardianConfig::load_for_update(&c.t.app).await.unwrap();
    g.provider = "twilio".into();
    g.save(&c.t.app).await.unwrap();
    let mfa = c.mfa_token().await;
    let (s, _) = c.challenge(&mfa, None).await;
    assert_eq!(s, 200, "the challenge is accepted; delivery fails afterwards");
    let failures = c.logged("gd_send_sms_failure", 1).await;
    assert_eq!(failures.len(), 1);
    assert!(failures[0]["description"].as_str().unwrap().contains("twilio"), "{}", failures[0]);
    assert_eq!(failures[0]["details"]["attempts"], 1);
    let failed = c.t.app.store.list_jobs(Some(JobStatus::Failed), 10).await.unwrap();
    assert_eq!((failed.len(), failed[0].attempts, failed[0].payload.is_none()), (1, 1, true));
}

#[tokio::test]
async fn the_development_provider_stops_at_its_cap() {
    let c = setup_with(|r| r.dev_provider_cap = Some(callsign_server::config::Num(1)), &["sms"]).await;
    c.enroll().await;
    let mfa = c.mfa_token().await;
    assert_eq!(c.challenge(&mfa, None).await.0, 200);
    let failures = c.logged("gd_send_sms_failure", 1).await;
    assert!(failures[0]["description"].as_str().unwrap().contains("limit of 1 messages"), "{failures:?}");
    assert_eq!(c.t.app.store.count_dev_messages().await.unwrap(), 1);
}

#[tokio::test]
async fn a_crashed_workers_claim_is_picked_up_again() {
    let c = setup_app(TestApp::spawn_with_workers(|_| {}).await, &["sms", "voice"]).await;
    let mfa = c.mfa_token().await;
    // Stop the real workers from racing us: claim the job as a "crashed" worker right after it is queued.
    let (s, _) = c
        .associate(&mfa, json!({"authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": PHONE}))
        .await;
    assert_eq!(s, 200);
    // Either our workers already delivered it, or we can simulate a crash on a fresh job.
    c.t.inbox(PHONE, 1).await;
    // The message is in the inbox a moment before the worker records the outcome; until then the enrollment's job
    // is still claimed, and the "crashed" claim below (made 30 s on, past that lease) would take it too.
    let enrollment = c.t.app.store.list_jobs(None, 10).await.unwrap();
    assert_eq!(enrollment.len(), 1, "{enrollment:?}");
    assert_eq!(c.t.finished(&enrollment[0].id).await.status, JobStatus::Sent);
    let job = callsign_core::delivery::new_job(
        &c.t.app,
        Channel::Sms,
        "auth0",
        &callsign_core::delivery::Payload {
            to: PHONE.into(),
            text: "hello".into(),
            locale: "en".into(),
            from: None,
            context: Default::default(),
        },
        None,
        None,
        None,
    )
    .unwrap();
    // Enqueue with a run_at in the future, so that only our claim (with a later clock) can take it first.
    let mut job = job;
    job.run_at = c.t.clock.now().plus(Duration::from_secs(30));
    c.t.app.store.enqueue_job(&job).await.unwrap();
    let claimed = c.t.app.store.claim_jobs("crashed", job.run_at, 60_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    // The crashed worker never finishes. Past the lease, a live worker takes it over.
    c.t.clock.advance(Duration::from_secs(30 + 61));
    let msgs = c.t.inbox(PHONE, 2).await;
    assert_eq!(msgs[0].text, "hello");
    // The message is in the inbox a moment before the worker records the outcome.
    let done = c.t.finished(&job.id).await;
    assert_eq!((done.status.as_str(), done.attempts), ("sent", 2));
    assert!(
        !c.t.app
            .store
            .finish_job(&job.id, "crashed", &callsign_store::JobOutcome::Sent { details: Value::Null }, c.t.clock.now())
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_job_whose_workers_keep_dying_ends_failed() {
    let c = setup_app(TestApp::spawn_with_workers(|_| {}).await, &["sms", "voice"]).await;
    let mut job = callsign_core::delivery::new_job(
        &c.t.app,
        Channel::Sms,
        "auth0",
        &callsign_core::delivery::Payload {
            to: PHONE.into(),
            text: "doomed".into(),
            locale: "en".into(),
            from: None,
            context: Default::default(),
        },
        None,
        None,
        None,
    )
    .unwrap();
    job.run_at = c.t.clock.now().plus(Duration::from_secs(3600));
    c.t.app.store.enqueue_job(&job).await.unwrap();
    // Five workers claim it in turn and die (the lease runs out each time).
    let mut at = job.run_at;
    for _ in 0..job.max_attempts {
        assert_eq!(c.t.app.store.claim_jobs("dies", at, 60_000, 1).await.unwrap().len(), 1);
        at = at.plus(Duration::from_secs(61));
    }
    // A live worker takes it over once more, and gives up instead of sending.
    c.t.clock.set(at);
    let done = c.t.finished(&job.id).await;
    assert_eq!(done.status, JobStatus::Failed, "the job ends failed");
    assert!(done.last_error.unwrap().contains("gave up"));
    // The event is written just after the status.
    common::eventually("the terminal state is logged", async || {
        let failures = c.logs("gd_send_sms_failure").await;
        if failures.iter().any(|l| l["details"]["job_id"] == json!(job.id)) {
            Ok(())
        } else {
            Err(format!("{} failure events, none for {}", failures.len(), job.id))
        }
    })
    .await;
    assert!(
        c.t.app.store.list_dev_messages(Some(PHONE), callsign_store::Page::new(0, 10)).await.unwrap().items.is_empty()
    );
}

#[tokio::test]
async fn recovery_codes_follow_the_recovery_code_factor() {
    let c = setup().await;
    let mut g = GuardianConfig::load_for_update(&c.t.app).await.unwrap();
    g.factors.insert("recovery-code".into(), false);
    g.save(&c.t.app).await.unwrap();
    let mfa = c.mfa_token().await;
    let (s, a) = c
        .associate(&mfa, json!({"authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": PHONE}))
        .await;
    assert_eq!(s, 200, "{a}");
    assert!(a.get("recovery_codes").is_none(), "{a}");
    let (s, v) = c
        .t
        .token_request(json!({"grant_type": "http://auth0.com/oauth/grant-type/mfa-recovery-code", "client_id": c.cid, "client_secret": c.secret, "mfa_token": mfa, "recovery_code": "ABCDEFGHIJKLMNOPQRSTUVWX"}))
        .await;
    assert_eq!((s, v["error"].as_str().unwrap()), (403, "unauthorized_client"));
}

/// A refused enrollment (send limit reached) leaves the user's pending enrollment as it was.
#[tokio::test]
async fn an_associate_refused_by_the_send_limit_changes_nothing() {
    let c = setup().await;
    let mfa = c.mfa_token().await;
    let first = json!({"authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": "+14155552671"});
    for i in 0..10 {
        assert_eq!(c.associate(&mfa, first.clone()).await.0, 200, "send {}", i + 1);
    }
    let pending = |list: Vec<callsign_store::Enrollment>| -> Vec<(String, Option<String>, EnrollmentStatus)> {
        list.into_iter().map(|e| (e.id, e.phone_number, e.status)).collect()
    };
    let before = pending(c.t.app.store.list_enrollments(&c.user_id).await.unwrap());
    assert!(
        before.iter().any(|e| e.1.as_deref() == Some("+14155552671") && e.2 == EnrollmentStatus::Pending),
        "{before:?}"
    );
    let other = json!({"authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": "+14155550000"});
    let (s, v) = c.associate(&mfa, other).await;
    assert_eq!((s, v["error"].as_str()), (429, Some("too_many_attempts")), "{v}");
    assert_eq!(before, pending(c.t.app.store.list_enrollments(&c.user_id).await.unwrap()));
    c.t.stop().await;
}
