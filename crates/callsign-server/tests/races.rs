//! Single-use secrets and limits under parallel requests, through the real HTTP API, on SQLite and on PostgreSQL.
//! Each test fires its requests at once from many tasks (a multi-threaded runtime, one connection per request), so the
//! server sees them as concurrent clients; the store must let exactly one win (or exactly the limit).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::time::Duration;

use callsign_store::EnrollmentStatus;
use common::TestApp;
use common::mfa::{Ctx, PHONE, setup_app};
use serde_json::Value;

const RECOVERY: &str = "http://auth0.com/oauth/grant-type/mfa-recovery-code";
const OOB: &str = "http://auth0.com/oauth/grant-type/mfa-oob";

async fn sqlite() -> Ctx {
    setup_app(TestApp::spawn().await, &["sms", "voice"]).await
}

async fn postgres() -> Option<Ctx> {
    Some(setup_app(TestApp::spawn_postgres().await?, &["sms", "voice"]).await)
}

/// Send every request at once; the answers come back in the order of `requests`.
async fn all_at_once(c: &Ctx, path: &str, requests: Vec<Vec<(String, String)>>) -> Vec<(u16, Value)> {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(requests.len()));
    let mut tasks = Vec::new();
    for form in requests {
        // A client per request: no connection is shared, so nothing is serialised on the client side.
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let url = c.t.url(path);
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let r = http.post(url).form(&form).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// How many events of `ty` the user has (the log API, so what an operator sees).
async fn count_events(c: &Ctx, ty: &str) -> usize {
    let q = format!("/api/v2/logs?q=type:{ty}&per_page=100&include_totals=true");
    let (s, v) = c.t.get(&c.admin, &q).await;
    assert_eq!(s, 200, "{v}");
    let n = v["total"].as_u64().unwrap_or_else(|| panic!("no total in {v}"));
    usize::try_from(n).unwrap()
}

// --- a recovery code is spent once --------------------------------------------------------------------------------

/// 20 rounds of 50 parallel `mfa-recovery-code` grants with one recovery code and one mfa_token: exactly one 200
/// each round, and its new recovery code is the one the next round presents.
async fn recovery_code_is_spent_by_exactly_one_of_50(c: Ctx) {
    let (_, mut code) = c.enroll().await;
    for round in 0..20 {
        // Each round starts with a full wrong-code bucket (the previous round's losers spent some of it).
        c.t.app.store.bucket_reset(&format!("recovery-fail:{}", c.user_id)).await.unwrap();
        let mfa = c.mfa_token().await;
        let requests = (0..50)
            .map(|_| {
                form(&[
                    ("grant_type", RECOVERY),
                    ("client_id", &c.cid),
                    ("client_secret", &c.secret),
                    ("mfa_token", &mfa),
                    ("recovery_code", &code),
                ])
            })
            .collect();
        let answers = all_at_once(&c, "/oauth/token", requests).await;
        let winners: Vec<&Value> = answers.iter().filter(|(s, _)| *s == 200).map(|(_, v)| v).collect();
        assert_eq!(winners.len(), 1, "round {round}: {answers:?}");
        for (s, v) in &answers {
            match s {
                200 => {}
                403 => assert_eq!(v["error"], "invalid_grant", "round {round}: {v}"),
                429 => assert_eq!(v["error"], "too_many_attempts", "round {round}: {v}"),
                other => panic!("round {round}: unexpected {other} {v}"),
            }
        }
        let fresh = winners[0]["recovery_code"].as_str().unwrap().to_owned();
        assert_ne!(fresh, code);
        code = fresh;
    }
    assert_eq!(count_events(&c, "sercft").await, 20);
    assert_eq!(count_events(&c, "gd_recovery_succeed").await, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recovery_code_is_spent_by_exactly_one_of_50_on_sqlite() {
    recovery_code_is_spent_by_exactly_one_of_50(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recovery_code_is_spent_by_exactly_one_of_50_on_postgres() {
    let Some(c) = postgres().await else { return };
    recovery_code_is_spent_by_exactly_one_of_50(c).await;
}

// --- the wrong-code limit holds ------------------------------------------------------------------------------------

/// 50 parallel `mfa-oob` grants with a wrong code against a bucket of 10, three times: exactly 10 guesses are
/// checked (answered `Invalid binding_code.`), the other 40 are refused unchecked, and every one is in the log.
async fn at_most_10_of_50_wrong_codes_are_checked_and_all_are_logged(c: Ctx) {
    c.enroll().await;
    for round in 0..3u64 {
        c.t.app.store.bucket_reset(&format!("otp-fail:{}", c.user_id)).await.unwrap();
        let mfa = c.mfa_token().await;
        let before = c.t.inbox(PHONE, 1).await.len();
        let (s, ch) = c.challenge(&mfa, None).await;
        assert_eq!(s, 200, "{ch}");
        let right = c.t.code_for(PHONE, before + 1).await;
        let wrong = if right == "000000" { "111111" } else { "000000" };
        let oob = ch["oob_code"].as_str().unwrap();
        let requests = (0..50)
            .map(|_| {
                form(&[
                    ("grant_type", OOB),
                    ("client_id", &c.cid),
                    ("client_secret", &c.secret),
                    ("mfa_token", &mfa),
                    ("oob_code", oob),
                    ("binding_code", wrong),
                ])
            })
            .collect();
        let answers = all_at_once(&c, "/oauth/token", requests).await;
        let checked = answers.iter().filter(|(_, v)| v["error_description"] == "Invalid binding_code.").count();
        let limited = answers.iter().filter(|(s, v)| *s == 429 && v["error"] == "too_many_attempts").count();
        assert_eq!((checked, limited), (10, 40), "round {round}: {answers:?}");
        // Earlier rounds each added one more refusal below (the right code while the bucket is empty).
        let n = usize::try_from(round).unwrap();
        assert_eq!(count_events(&c, "gd_auth_failed").await, 10 * (n + 1), "every checked guess is logged");
        // The 40 refused unchecked, plus the one that emptied the bucket.
        assert_eq!(count_events(&c, "gd_otp_rate_limit_exceed").await, 42 * n + 41, "every refused guess is logged");
        assert_eq!(count_events(&c, "feoobft").await, 51 * n + 50, "every failed grant is logged");
        // The bucket is empty: even the right code is refused now, and the challenge is still unspent.
        let (s, v) = c.verify(&mfa, oob, &right).await;
        assert_eq!((s, v["error"].as_str()), (429, Some("too_many_attempts")), "{v}");
        c.t.app.store.bucket_reset(&format!("otp-fail:{}", c.user_id)).await.unwrap();
        let (s, v) = c.verify(&mfa, oob, &right).await;
        assert_eq!(s, 200, "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn at_most_10_of_50_wrong_codes_are_checked_and_all_are_logged_on_sqlite() {
    at_most_10_of_50_wrong_codes_are_checked_and_all_are_logged(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn at_most_10_of_50_wrong_codes_are_checked_and_all_are_logged_on_postgres() {
    let Some(c) = postgres().await else { return };
    at_most_10_of_50_wrong_codes_are_checked_and_all_are_logged(c).await;
}

// --- an mfa_token is spent once ------------------------------------------------------------------------------------

/// Five challenges on one mfa_token, each answered with its right code at the same moment: one grant gets tokens,
/// the other four are refused (the mfa_token is spent with the first challenge), and their challenges stay unspent.
async fn an_mfa_token_is_spent_by_exactly_one_grant(c: Ctx) {
    c.enroll().await;
    let grants_before = count_events(&c, "seoobft").await;
    let mfa = c.mfa_token().await;
    let mut pairs = Vec::new();
    for _ in 0..5 {
        let n = c.t.inbox(PHONE, 1).await.len();
        let (s, ch) = c.challenge(&mfa, None).await;
        assert_eq!(s, 200, "{ch}");
        let code = c.t.code_for(PHONE, n + 1).await;
        pairs.push((ch["oob_code"].as_str().unwrap().to_owned(), code));
    }
    let requests = pairs
        .iter()
        .map(|(oob, code)| {
            form(&[
                ("grant_type", OOB),
                ("client_id", &c.cid),
                ("client_secret", &c.secret),
                ("mfa_token", &mfa),
                ("oob_code", oob),
                ("binding_code", code),
            ])
        })
        .collect();
    let answers = all_at_once(&c, "/oauth/token", requests).await;
    assert_eq!(answers.iter().filter(|(s, _)| *s == 200).count(), 1, "{answers:?}");
    assert!(answers.iter().all(|(s, v)| *s == 200 || (*s == 403 && v["error"] == "invalid_grant")), "{answers:?}");
    assert_eq!(count_events(&c, "seoobft").await, grants_before + 1);
    // The losers did not consume their challenges: a new mfa_token cannot use them (they are bound to the old one),
    // and the old token is gone.
    let (s, v) = c.verify(&mfa, &pairs[0].0, &pairs[0].1).await;
    assert_eq!(s, 403, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_mfa_token_is_spent_by_exactly_one_grant_on_sqlite() {
    an_mfa_token_is_spent_by_exactly_one_grant(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_mfa_token_is_spent_by_exactly_one_grant_on_postgres() {
    let Some(c) = postgres().await else { return };
    an_mfa_token_is_spent_by_exactly_one_grant(c).await;
}

// --- a right code is spent once ------------------------------------------------------------------------------------

/// 30 parallel grants with the same right code and the same challenge: exactly one 200.
async fn a_right_code_is_spent_by_exactly_one_grant(c: Ctx) {
    c.enroll().await;
    let mfa = c.mfa_token().await;
    let n = c.t.inbox(PHONE, 1).await.len();
    let (s, ch) = c.challenge(&mfa, None).await;
    assert_eq!(s, 200, "{ch}");
    let code = c.t.code_for(PHONE, n + 1).await;
    let oob = ch["oob_code"].as_str().unwrap();
    let requests = (0..30)
        .map(|_| {
            form(&[
                ("grant_type", OOB),
                ("client_id", &c.cid),
                ("client_secret", &c.secret),
                ("mfa_token", &mfa),
                ("oob_code", oob),
                ("binding_code", &code),
            ])
        })
        .collect();
    let answers = all_at_once(&c, "/oauth/token", requests).await;
    assert_eq!(answers.iter().filter(|(s, _)| *s == 200).count(), 1, "{answers:?}");
    // The losers held a token of the wrong-code bucket while they were checked, and gave it back: a right code is no
    // guess, so the bucket is full again.
    let left =
        c.t.app
            .store
            .bucket_peek(
                &format!("otp-fail:{}", c.user_id),
                callsign_core::mfa::FAILED_CODE_BUCKET,
                callsign_domain::Clock::now(&c.t.clock),
            )
            .await
            .unwrap();
    assert_eq!(left.remaining, 10, "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_right_code_is_spent_by_exactly_one_grant_on_sqlite() {
    a_right_code_is_spent_by_exactly_one_grant(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_right_code_is_spent_by_exactly_one_grant_on_postgres() {
    let Some(c) = postgres().await else { return };
    a_right_code_is_spent_by_exactly_one_grant(c).await;
}

// --- send limits ---------------------------------------------------------------------------------------------------

/// 50 parallel SMS challenges against the send limit of 10: exactly 10 are sent. Then 50 parallel voice challenges
/// against the voice limit of 1 an hour: exactly one call, and the refused ones took nothing from the send limit.
async fn send_limits_hold_under_parallel_challenges(c: Ctx) {
    let (id, _) = c.enroll().await;
    let mfa = c.mfa_token().await;
    let send_key = format!("send:{}", c.user_id);
    c.t.app.store.bucket_reset(&send_key).await.unwrap();
    let challenge = |authenticator: String| {
        form(&[
            ("client_id", &c.cid),
            ("client_secret", &c.secret),
            ("mfa_token", &mfa),
            ("challenge_type", "oob"),
            ("authenticator_id", &authenticator),
        ])
    };
    let answers = all_at_once(&c, "/mfa/challenge", (0..50).map(|_| challenge(format!("sms|{id}"))).collect()).await;
    let sent = answers.iter().filter(|(s, _)| *s == 200).count();
    let refused = answers.iter().filter(|(s, v)| *s == 429 && v["error"] == "too_many_attempts").count();
    assert_eq!((sent, refused), (10, 40), "{answers:?}");
    assert_eq!(count_events(&c, "gd_send_sms_failure").await, 40, "every refusal is logged");

    c.t.app.store.bucket_reset(&send_key).await.unwrap();
    let answers = all_at_once(&c, "/mfa/challenge", (0..50).map(|_| challenge(format!("voice|{id}"))).collect()).await;
    let called = answers.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(called, 1, "{answers:?}");
    assert_eq!(count_events(&c, "gd_send_voice_failure").await, 49);
    let left =
        c.t.app
            .store
            .bucket_peek(&send_key, callsign_core::mfa::SEND_BUCKET, callsign_domain::Clock::now(&c.t.clock))
            .await
            .unwrap();
    assert_eq!(left.remaining, 9, "only the one call counts against the send limit");
    // Every accepted challenge is delivered: 1 enrollment + 10 SMS + 1 call.
    assert_eq!(c.t.inbox(PHONE, 12).await.len(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn send_limits_hold_under_parallel_challenges_on_sqlite() {
    send_limits_hold_under_parallel_challenges(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn send_limits_hold_under_parallel_challenges_on_postgres() {
    let Some(c) = postgres().await else { return };
    send_limits_hold_under_parallel_challenges(c).await;
}

// --- enrollment ----------------------------------------------------------------------------------------------------

/// 10 parallel `/mfa/associate` for one user: each start replaces the one before in one transaction, so exactly one
/// pending phone (and one pending recovery code) is left, only its code confirms it, and the user ends with one
/// phone.
async fn parallel_enrollments_leave_one_phone(c: Ctx) {
    let mfa = c.mfa_token().await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(10));
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let http = reqwest::Client::new();
        let (url, mfa, barrier) = (c.t.url("/mfa/associate"), mfa.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let body =
                serde_json::json!({"authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": PHONE});
            let r = http.post(url).bearer_auth(mfa).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }));
    }
    let mut oobs = Vec::new();
    for t in tasks {
        let (s, v) = t.await.unwrap();
        assert_eq!(s, 200, "{v}");
        oobs.push(v["oob_code"].as_str().unwrap().to_owned());
    }
    let enrollments = c.t.app.store.list_enrollments(&c.user_id).await.unwrap();
    let kinds: Vec<(&str, &str)> = enrollments.iter().map(|e| (e.kind.as_str(), e.status.as_str())).collect();
    assert_eq!(kinds, [("phone", "pending"), ("recovery-code", "pending")], "{enrollments:?}");
    // Only the last start's challenge is left.
    let mut live = Vec::new();
    for oob in &oobs {
        if c.t.app.store.get_challenge(&callsign_domain::hash::token_hash(oob)).await.unwrap().is_some() {
            live.push(oob.clone());
        }
    }
    assert_eq!(live.len(), 1, "one challenge survives");
    // Its code is one of the ten messages (every accepted start was delivered).
    let codes: Vec<String> =
        c.t.inbox(PHONE, 10)
            .await
            .iter()
            .map(|m| m.text.chars().filter(char::is_ascii_digit).take(6).collect())
            .collect();
    let mut confirmed = 0;
    for code in &codes {
        let (s, _) = c.verify(&mfa, &live[0], code).await;
        confirmed += usize::from(s == 200);
        if s == 200 {
            break;
        }
    }
    assert_eq!(confirmed, 1);
    let after = c.t.app.store.list_enrollments(&c.user_id).await.unwrap();
    assert!(after.iter().all(|e| e.status == EnrollmentStatus::Confirmed) && after.len() == 2, "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_enrollments_leave_one_phone_on_sqlite() {
    parallel_enrollments_leave_one_phone(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_enrollments_leave_one_phone_on_postgres() {
    let Some(c) = postgres().await else { return };
    parallel_enrollments_leave_one_phone(c).await;
}
