//! Suspicious IP throttling (reference §6): the settings endpoint and its checks, failed logins per IP blocking
//! that IP (right password or not) until an operator unblocks it, the per-IP cap on phone messages across
//! accounts, the allowlist, and the client address behind trusted proxies (spoofed headers from anyone else are
//! ignored).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::mfa::{Ctx, PHONE, PW, setup_postgres_with, setup_with};
use serde_json::{Value, json};

const THROTTLING: &str = "/api/v2/attack-protection/suspicious-ip-throttling";

/// A context whose server believes `X-Forwarded-For` from loopback (the tests' own address), so each test can
/// speak as several clients.
async fn behind_proxy() -> Ctx {
    setup_with(trust_loopback, &["sms", "voice"]).await
}

fn trust_loopback(raw: &mut callsign_server::config::RawConfig) {
    raw.trusted_proxies = Some(callsign_server::config::StringList(vec!["127.0.0.1".into()]));
}

/// The password grant for `user` with `password`, from `ip` (through the trusted proxy) or the direct address.
async fn login_as(c: &Ctx, user: &str, password: &str, ip: Option<&str>) -> (u16, Value) {
    let body = json!({"grant_type": "password", "client_id": c.cid, "client_secret": c.secret, "username": user, "password": password});
    let mut r = c.t.http.post(c.t.url("/oauth/token")).json(&body);
    if let Some(ip) = ip {
        r = r.header("x-forwarded-for", ip);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_settings_are_auth0s_and_bad_input_is_refused_by_name() {
    let c = setup_with(|_| {}, &["sms"]).await;
    let (s, v) = c.t.get(&c.admin, THROTTLING).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"enabled": true, "shields": ["block", "admin_notification"], "allowlist": [],
               "stage": {"pre-login": {"max_attempts": 100, "rate": 864000},
                         "pre-user-registration": {"max_attempts": 50, "rate": 1200},
                         "pre-phone-message": {"max_attempts": 50, "rate": 72000}}})
    );
    // A PATCH changes what it names and answers the whole document.
    let (s, v) =
        c.t.patch(
            &c.admin,
            THROTTLING,
            json!({"allowlist": ["10.0.0.0/8", "2001:db8::1"], "stage": {"pre-login": {"max_attempts": 5}}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["stage"]["pre-login"], json!({"max_attempts": 5, "rate": 864000}));
    assert_eq!(v["allowlist"], json!(["10.0.0.0/8", "2001:db8::1"]));
    assert_eq!(v["enabled"], true);
    for (body, needle) in [
        (json!({"allowlist": ["10.0.0.0/33"]}), "allowlist[0]"),
        (json!({"allowlist": ["not-an-ip"]}), "allowlist[0]"),
        (json!({"allowlist": vec!["192.0.2.1"; 101]}), "at most 100"),
        (json!({"shields": ["block", "email"]}), "shields[1]"),
        (json!({"stage": {"pre-login": {"max_attempts": 0}}}), "stage.pre-login.max_attempts"),
        (json!({"stage": {"pre-login": {"max_attempts": 2501}}}), "stage.pre-login.max_attempts"),
        (json!({"stage": {"pre-login": {"rate": 100}}}), "stage.pre-login.rate"),
        (
            json!({"stage": {"pre-user-registration": {"max_attempts": 72001}}}),
            "stage.pre-user-registration.max_attempts",
        ),
        (json!({"stage": {"pre-phone-message": {"rate": 999}}}), "stage.pre-phone-message.rate"),
        (json!({"stage": {"pre-logon": {"rate": 100000}}}), "unknown field `pre-logon`"),
        (json!({"enabled": "yes"}), "invalid type"),
        (json!({"mode": "x"}), "unknown field `mode`"),
    ] {
        let (s, v) = c.t.patch(&c.admin, THROTTLING, body.clone()).await;
        assert_eq!((s, v["statusCode"].as_u64()), (400, Some(400)), "{body}: {v}");
        assert!(v["message"].as_str().unwrap().contains(needle), "{body}: {v}");
    }
    assert_eq!(c.t.get(&c.admin, THROTTLING).await.1["stage"]["pre-login"]["max_attempts"], 5, "unchanged by refusals");
    // Scopes: Auth0's.
    let reader = c.t.token_with_scopes(&["read:attack_protection"]).await;
    assert_eq!(c.t.get(&reader, THROTTLING).await.0, 200);
    assert_eq!(c.t.patch(&reader, THROTTLING, json!({"enabled": false})).await.0, 403);
    assert_eq!(c.t.get(&reader, "/api/v2/anomaly/blocks/ips/192.0.2.1").await.0, 403);
    let (s, v) = c.t.get(&c.admin, "/api/v2/anomaly/blocks/ips/not-an-ip").await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(c.t.get(&c.admin, "/api/v2/anomaly/blocks/ips/192.0.2.1").await.0, 404, "not blocked");
}

#[tokio::test]
async fn failed_logins_block_the_ip_until_unblocked_and_other_ips_still_log_in() {
    let c = behind_proxy().await;
    let (s, v) =
        c.t.patch(
            &c.admin,
            THROTTLING,
            json!({"stage": {"pre-login": {"max_attempts": 3, "rate": 864000}}, "allowlist": ["198.51.100.9"]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (bad, good) = (Some("203.0.113.5"), Some("198.51.100.77"));
    for i in 0..3 {
        let (s, v) = login_as(&c, "ann@example.com", "wrong password 1A!", bad).await;
        assert_eq!((s, v["error"].as_str()), (403, Some("invalid_grant")), "failure {i}: {v}");
    }
    // Blocked now: refused before the password is looked at, the right one included, several times.
    for _ in 0..3 {
        let (s, v) = login_as(&c, "ann@example.com", PW, bad).await;
        assert_eq!((s, v["error"].as_str()), (429, Some("too_many_attempts")), "{v}");
        assert!(v["error_description"].as_str().unwrap().contains("suspicious login behavior"), "{v}");
    }
    let blocks = c.logs("limit_mu").await;
    assert_eq!(blocks.len(), 1, "one limit_mu per block, not per refused request: {blocks:?}");
    assert_eq!(
        (blocks[0]["ip"].as_str(), blocks[0]["details"]["stage"].as_str()),
        (Some("203.0.113.5"), Some("pre-login"))
    );
    assert_eq!(blocks[0]["details"]["notify_admin"], true);
    // Another address is not affected (the policy requires MFA: the right password gets mfa_required).
    let (s, v) = login_as(&c, "ann@example.com", PW, good).await;
    assert_eq!((s, v["error"].as_str()), (403, Some("mfa_required")), "{v}");
    // An allowlisted address is never counted.
    for _ in 0..5 {
        let (s, v) = login_as(&c, "ann@example.com", "wrong password 1A!", Some("198.51.100.9")).await;
        assert_eq!(s, 403, "{v}");
    }
    assert_eq!(c.t.get(&c.admin, "/api/v2/anomaly/blocks/ips/198.51.100.9").await.0, 404);
    // The operator sees the block and lifts it.
    assert_eq!(c.t.get(&c.admin, "/api/v2/anomaly/blocks/ips/203.0.113.5").await.0, 200);
    assert_eq!(c.t.delete(&c.admin, "/api/v2/anomaly/blocks/ips/203.0.113.5").await.0, 204);
    assert_eq!(c.t.get(&c.admin, "/api/v2/anomaly/blocks/ips/203.0.113.5").await.0, 404);
    assert_eq!(c.logs("ublkdu").await.len(), 1);
    let (s, v) = login_as(&c, "ann@example.com", PW, bad).await;
    assert_eq!((s, v["error"].as_str()), (403, Some("mfa_required")), "let in again: {v}");
    // Switched off, nothing is counted or refused.
    assert_eq!(c.t.patch(&c.admin, THROTTLING, json!({"enabled": false})).await.0, 200);
    for _ in 0..5 {
        assert_eq!(login_as(&c, "ann@example.com", "wrong password 1A!", bad).await.0, 403);
    }
}

#[tokio::test]
async fn a_spoofed_forwarded_header_from_an_untrusted_peer_does_not_escape_a_block() {
    // No trusted proxies: the connection's own address is the client, whatever X-Forwarded-For says.
    let c = setup_with(|_| {}, &["sms"]).await;
    assert_eq!(c.t.patch(&c.admin, THROTTLING, json!({"stage": {"pre-login": {"max_attempts": 2}}})).await.0, 200);
    for (i, spoof) in ["1.1.1.1", "2.2.2.2"].iter().enumerate() {
        let (s, v) = login_as(&c, "ann@example.com", "wrong password 1A!", Some(spoof)).await;
        assert_eq!(s, 403, "failure {i}: {v}");
    }
    let (s, v) = login_as(&c, "ann@example.com", PW, Some("3.3.3.3")).await;
    assert_eq!((s, v["error"].as_str()), (429, Some("too_many_attempts")), "{v}");
    let blocks = c.logs("limit_mu").await;
    assert_eq!(blocks[0]["ip"], "127.0.0.1", "the block is on the real address");
    assert_eq!(c.t.get(&c.admin, "/api/v2/anomaly/blocks/ips/127.0.0.1").await.0, 200);
}

#[tokio::test]
async fn one_ip_cannot_send_more_than_its_cap_across_many_accounts() {
    one_ip_cap(behind_proxy().await).await;
}

#[tokio::test]
async fn one_ip_cannot_send_more_than_its_cap_across_many_accounts_on_postgres() {
    let Some(c) = setup_postgres_with(trust_loopback, &["sms", "voice"]).await else { return };
    one_ip_cap(c).await;
}

/// 100 enrollments at once from one address over 20 accounts, with a cap of 10: exactly 10 are sent.
async fn one_ip_cap(c: Ctx) {
    const ACCOUNTS: usize = 20;
    const PER_ACCOUNT: usize = 5;
    const CAP: usize = 10;
    let (s, v) = c
        .t
        .patch(&c.admin, THROTTLING, json!({"stage": {"pre-phone-message": {"max_attempts": CAP, "rate": 3600000}}}))
        .await;
    assert_eq!(s, 200, "{v}");
    let mut tokens = Vec::new();
    for i in 0..ACCOUNTS {
        let email = format!("user{i}@example.com");
        c.t.create_user(&c.admin, &email).await;
        let (s, v) = login_as(&c, &email, PW, Some("192.0.2.200")).await;
        assert_eq!(s, 403, "{v}");
        tokens.push(v["mfa_token"].as_str().unwrap().to_owned());
    }
    // 100 enrollments (each sends a code), from one address, all at once, over 20 accounts and 100 numbers.
    let mut tasks = Vec::new();
    for (i, mfa) in tokens.iter().enumerate() {
        for j in 0..PER_ACCOUNT {
            let (http, url, mfa) = (c.t.http.clone(), c.t.url("/mfa/associate"), mfa.clone());
            let phone = format!("+1415555{:04}", i * PER_ACCOUNT + j);
            tasks.push(tokio::spawn(async move {
                let body = json!({"authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": phone});
                let r = http
                    .post(url)
                    .bearer_auth(mfa)
                    .header("x-forwarded-for", "203.0.113.50")
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let s = r.status().as_u16();
                (s, r.json::<Value>().await.unwrap())
            }));
        }
    }
    let mut ok = 0;
    for t in tasks {
        let (s, v) = t.await.unwrap();
        match s {
            200 => ok += 1,
            429 => assert_eq!(v["error"], "too_many_attempts", "{v}"),
            other => panic!("{other}: {v}"),
        }
    }
    assert_eq!(ok, CAP, "exactly the cap was sent");
    c.t.deliver_now().await;
    let sent = c.t.app.store.count_dev_messages().await.unwrap();
    assert_eq!(sent as usize, CAP, "no more messages than the cap left");
    assert_eq!(c.logs("limit_mu").await.len(), 1, "one block, one event");
    // Another address still gets its message.
    let mfa = c.mfa_token().await;
    let body = json!({"authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": PHONE});
    let r =
        c.t.http
            .post(c.t.url("/mfa/associate"))
            .bearer_auth(&mfa)
            .header("x-forwarded-for", "198.51.100.1")
            .json(&body)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

const BRUTE_FORCE: &str = "/api/v2/attack-protection/brute-force-protection";
const WRONG: &str = "wrong password 1A!";

#[tokio::test]
async fn ten_failed_logins_block_the_account_from_that_ip_until_unblocked() {
    let c = behind_proxy().await;
    let (s, v) = c.t.get(&c.admin, BRUTE_FORCE).await;
    assert_eq!(
        (s, v),
        (
            200,
            json!({"enabled": true, "shields": ["block", "user_notification"], "mode": "count_per_identifier_and_ip", "allowlist": [], "max_attempts": 10})
        )
    );
    let (a, b) = (Some("203.0.113.10"), Some("198.51.100.10"));
    // A success starts the count again: 9 wrong, 1 right, 9 wrong is not a block.
    for _ in 0..9 {
        assert_eq!(login_as(&c, "ann@example.com", WRONG, a).await.0, 403);
    }
    assert_eq!(login_as(&c, "ann@example.com", PW, a).await.1["error"], "mfa_required");
    for _ in 0..9 {
        assert_eq!(login_as(&c, "ann@example.com", WRONG, a).await.0, 403);
    }
    assert_eq!(login_as(&c, "ann@example.com", PW, a).await.1["error"], "mfa_required", "not blocked yet");
    // Ten in a row: the 11th attempt is refused, the right password included, from that address only.
    for i in 0..10 {
        let (s, v) = login_as(&c, "ann@example.com", WRONG, a).await;
        assert_eq!((s, v["error"].as_str()), (403, Some("invalid_grant")), "failure {i}: {v}");
    }
    for _ in 0..3 {
        let (s, v) = login_as(&c, "ann@example.com", PW, a).await;
        assert_eq!((s, v["error"].as_str()), (429, Some("too_many_attempts")), "{v}");
        assert_eq!(v["error_description"], "Your account has been blocked after multiple consecutive login attempts.");
    }
    assert_eq!(login_as(&c, "ann@example.com", PW, b).await.1["error"], "mfa_required", "another address still works");
    let events = c.logs("limit_wc").await;
    assert_eq!(events.len(), 1, "one limit_wc per block: {events:?}");
    assert_eq!(
        (events[0]["user_id"].as_str(), events[0]["ip"].as_str()),
        (Some(c.user_id.as_str()), Some("203.0.113.10"))
    );
    // The operator sees the block, by user and by identifier, and lifts it.
    let expected = json!({"blocked_for": [{"identifier": "ann@example.com", "ip": "203.0.113.10"}]});
    let user_blocks = format!("/api/v2/user-blocks/{}", c.user_id.replace('|', "%7C"));
    assert_eq!(c.t.get(&c.admin, &user_blocks).await, (200, expected.clone()));
    assert_eq!(c.t.get(&c.admin, "/api/v2/user-blocks?identifier=Ann@Example.com").await, (200, expected));
    assert_eq!(c.t.delete(&c.admin, &user_blocks).await.0, 204);
    assert_eq!(c.t.get(&c.admin, &user_blocks).await, (200, json!({"blocked_for": []})));
    assert_eq!(c.logs("ublkdu").await.len(), 1);
    assert_eq!(login_as(&c, "ann@example.com", PW, a).await.1["error"], "mfa_required", "let in again");
    // Bad input.
    assert_eq!(c.t.get(&c.admin, "/api/v2/user-blocks/auth0%7Cnobody").await.0, 404);
    assert_eq!(c.t.get(&c.admin, "/api/v2/user-blocks").await.0, 400, "identifier is required");
    for (body, needle) in [
        (json!({"mode": "per_ip"}), "mode"),
        (json!({"max_attempts": 0}), "max_attempts"),
        (json!({"max_attempts": 101}), "max_attempts"),
        (json!({"shields": ["admin_notification"]}), "shields[0]"),
        (json!({"allowlist": ["10.0.0.0/8", "nope"]}), "allowlist[1]"),
        (json!({"stage": {}}), "unknown field `stage`"),
    ] {
        let (s, v) = c.t.patch(&c.admin, BRUTE_FORCE, body.clone()).await;
        assert_eq!(s, 400, "{body}: {v}");
        assert!(v["message"].as_str().unwrap().contains(needle), "{body}: {v}");
    }
    let reader = c.t.token_with_scopes(&["read:attack_protection"]).await;
    assert_eq!(c.t.patch(&reader, BRUTE_FORCE, json!({"max_attempts": 5})).await.0, 403);
    assert_eq!(c.t.get(&reader, &user_blocks).await.0, 403, "user blocks need read:users");
}

#[tokio::test]
async fn per_identifier_mode_blocks_the_account_from_everywhere() {
    let c = behind_proxy().await;
    let (s, v) = c.t.patch(&c.admin, BRUTE_FORCE, json!({"mode": "count_per_identifier", "max_attempts": 3})).await;
    assert_eq!((s, v["max_attempts"].as_u64()), (200, Some(3)), "{v}");
    for ip in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        assert_eq!(login_as(&c, "ann@example.com", WRONG, Some(ip)).await.0, 403);
    }
    let (s, v) = login_as(&c, "ann@example.com", PW, Some("198.51.100.200")).await;
    assert_eq!((s, v["error"].as_str()), (429, Some("too_many_attempts")), "{v}");
    let (s, v) = c.t.get(&c.admin, "/api/v2/user-blocks?identifier=ann@example.com").await;
    assert_eq!((s, v), (200, json!({"blocked_for": [{"identifier": "ann@example.com", "ip": ""}]})));
    assert_eq!(c.t.delete(&c.admin, "/api/v2/user-blocks?identifier=ann@example.com").await.0, 204);
    assert_eq!(login_as(&c, "ann@example.com", PW, Some("198.51.100.200")).await.1["error"], "mfa_required");
    // Off: nothing counted.
    assert_eq!(c.t.patch(&c.admin, BRUTE_FORCE, json!({"enabled": false})).await.0, 200);
    for _ in 0..5 {
        assert_eq!(login_as(&c, "ann@example.com", WRONG, Some("203.0.113.1")).await.0, 403);
    }
    assert_eq!(login_as(&c, "ann@example.com", PW, Some("203.0.113.1")).await.1["error"], "mfa_required");
}

/// 20 wrong passwords at once from one address: the throttling cap (5) and then the brute-force cap (4) each let
/// exactly that many passwords be checked; the rest are refused unchecked (no `fp` event).
async fn parallel_guesses_pass_no_limit(c: Ctx) {
    let c = std::sync::Arc::new(c);
    let burst = async |c: &std::sync::Arc<Ctx>, ip: &'static str| {
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move { login_as(&c, "ann@example.com", WRONG, Some(ip)).await }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        let checked = out.iter().filter(|(s, v)| *s == 403 && v["error"] == "invalid_grant").count();
        let refused = out.iter().filter(|(s, v)| *s == 429 && v["error"] == "too_many_attempts").count();
        (checked, refused)
    };
    assert_eq!(c.t.patch(&c.admin, THROTTLING, json!({"stage": {"pre-login": {"max_attempts": 5}}})).await.0, 200);
    assert_eq!(burst(&c, "203.0.113.30").await, (5, 15), "IP throttling");
    assert_eq!(c.logs("fp").await.len(), 5, "only the allowed guesses were checked");
    // Brute force, from a fresh address (throttling still allows 5 there): the account's cap of 4 holds.
    assert_eq!(c.t.patch(&c.admin, BRUTE_FORCE, json!({"max_attempts": 4})).await.0, 200);
    assert_eq!(c.t.patch(&c.admin, THROTTLING, json!({"enabled": false})).await.0, 200);
    assert_eq!(burst(&c, "203.0.113.31").await, (4, 16), "brute force");
    assert_eq!(c.logs("fp").await.len(), 9);
    assert_eq!(c.logs("limit_wc").await.len(), 1);
}

#[tokio::test]
async fn parallel_guesses_pass_no_limit_on_sqlite() {
    parallel_guesses_pass_no_limit(behind_proxy().await).await;
}

#[tokio::test]
async fn parallel_guesses_pass_no_limit_on_postgres() {
    let Some(c) = setup_postgres_with(trust_loopback, &["sms", "voice"]).await else { return };
    parallel_guesses_pass_no_limit(c).await;
}

const PPP: &str = "/api/v2/attack-protection/phone-provider-protection";

#[tokio::test]
async fn phone_provider_protection_is_auth0s_shape_and_refuses_other_types() {
    let c = setup_with(|_| {}, &["sms"]).await;
    assert_eq!(c.t.get(&c.admin, PPP).await, (200, json!({"type": "default"})));
    assert_eq!(c.t.patch(&c.admin, PPP, json!({"type": "exponential"})).await, (200, json!({"type": "exponential"})));
    assert_eq!(c.t.get(&c.admin, PPP).await.1, json!({"type": "exponential"}));
    for (b, needle) in [
        (json!({"type": "linear"}), "type"),
        (json!({}), "missing field `type`"),
        (json!({"type": "default", "window": 3}), "unknown field `window`"),
    ] {
        let (s, v) = c.t.patch(&c.admin, PPP, b.clone()).await;
        assert_eq!(s, 400, "{b}: {v}");
        assert!(v["message"].as_str().unwrap().contains(needle), "{b}: {v}");
    }
    let reader = c.t.token_with_scopes(&["read:attack_protection"]).await;
    assert_eq!(c.t.get(&reader, PPP).await.0, 200);
    assert_eq!(c.t.patch(&reader, PPP, json!({"type": "default"})).await.0, 403);
    // The other settings are untouched by this one's writes.
    assert_eq!(c.t.get(&c.admin, THROTTLING).await.1["enabled"], true);
}

/// A challenge now: its status.
async fn send_one(c: &Ctx) -> (u16, Value) {
    let mfa = c.mfa_token().await;
    c.challenge(&mfa, None).await
}

#[tokio::test]
async fn exponential_backoff_doubles_each_wait_and_falls_back_when_quiet() {
    let c = setup_with(|_| {}, &["sms"]).await;
    c.enroll().await; // the enrollment's message is the first: the next one waits 30 s
    assert_eq!(c.t.patch(&c.admin, PPP, json!({"type": "exponential"})).await.0, 200);
    let sec = std::time::Duration::from_secs;
    // In default mode the enrollment was counted in the flat bucket; the backoff starts from level 0 now.
    assert_eq!(send_one(&c).await.0, 200, "the first message under the backoff is free");
    for wait in [30, 60, 120, 240, 480, 960, 1920, 3600, 3600] {
        let (s, v) = send_one(&c).await;
        assert_eq!((s, v["error"].as_str()), (429, Some("too_many_attempts")), "before {wait} s: {v}");
        assert_eq!(v["error_description"], "Too many SMS sent by the user. Wait for some minutes before retrying.");
        c.t.clock.advance(sec(wait - 1));
        assert_eq!(send_one(&c).await.0, 429, "one second before {wait} s");
        c.t.clock.advance(sec(1));
        let (s, v) = send_one(&c).await;
        assert_eq!(s, 200, "after {wait} s: {v}");
    }
    let refused = c.logs("gd_send_sms_failure").await;
    let last = &refused[0]["details"];
    assert_eq!((last["reason"].as_str(), last["backoff"]["wait_ms"].as_i64()), (Some("rate_limited"), Some(3_600_000)));
    // Two quiet hours start again: the next message is free and the one after waits 30 s.
    c.t.clock.advance(sec(2 * 3600));
    assert_eq!(send_one(&c).await.0, 200);
    assert_eq!(send_one(&c).await.0, 429);
    c.t.clock.advance(sec(30));
    assert_eq!(send_one(&c).await.0, 200);
    // Back to default: the flat bucket (10 an hour, not refilled yet by the clock's jumps) applies again.
    assert_eq!(c.t.patch(&c.admin, PPP, json!({"type": "default"})).await.0, 200);
    c.t.clock.advance(sec(10 * 3600));
    for i in 0..10 {
        assert_eq!(send_one(&c).await.0, 200, "default send {i}");
    }
    assert_eq!(send_one(&c).await.0, 429, "the 11th in default mode");
}

async fn parallel_challenges_under_the_backoff_send_one(c: Ctx) {
    c.enroll().await;
    assert_eq!(c.t.patch(&c.admin, PPP, json!({"type": "exponential"})).await.0, 200);
    // Past the enrollment's own step (the backoff starts when it is turned on, from the flat bucket's count of 0).
    c.t.clock.advance(std::time::Duration::from_secs(3 * 3600));
    // Three rounds: at level 0, then (after the wait) at levels 1 and 2; each time 12 challenges at once send one.
    for (round, wait) in [(0, 0), (1, 30), (2, 60)] {
        c.t.clock.advance(std::time::Duration::from_secs(wait));
        let mfa = c.mfa_token().await;
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let (http, url) = (c.t.http.clone(), c.t.url("/mfa/challenge"));
            let b = json!({"client_id": c.cid, "client_secret": c.secret, "mfa_token": mfa, "challenge_type": "oob"});
            tasks.push(tokio::spawn(async move { http.post(url).json(&b).send().await.unwrap().status().as_u16() }));
        }
        let mut ok = 0;
        for t in tasks {
            if t.await.unwrap() == 200 {
                ok += 1;
            }
        }
        assert_eq!(ok, 1, "round {round}: exactly one of 12 parallel challenges is sent");
    }
}

#[tokio::test]
async fn parallel_challenges_under_the_backoff_send_one_on_sqlite() {
    parallel_challenges_under_the_backoff_send_one(setup_with(|_| {}, &["sms"]).await).await;
}

#[tokio::test]
async fn parallel_challenges_under_the_backoff_send_one_on_postgres() {
    let Some(c) = setup_postgres_with(|_| {}, &["sms"]).await else { return };
    parallel_challenges_under_the_backoff_send_one(c).await;
}

/// The figure, at the default cap: 1 000 `/mfa/challenge` requests from one address, spread over 200
/// enrolled accounts (5 each, 50 at a time), send exactly the `pre-phone-message` cap (50) and not one message
/// more; another address still gets its code.
#[tokio::test]
async fn a_thousand_challenges_over_two_hundred_accounts_from_one_ip_send_only_the_cap() {
    const ACCOUNTS: usize = 200;
    const PER_ACCOUNT: usize = 5;
    let c = behind_proxy().await;
    let (_, settings) = c.t.get(&c.admin, THROTTLING).await;
    let cap = settings["stage"]["pre-phone-message"]["max_attempts"].as_u64().unwrap() as usize;
    assert_eq!(cap, 50, "the documented default");
    // 200 accounts with a confirmed phone (written by the operator: no message sent), each logged in once.
    let mut tokens = Vec::new();
    // Four at a time: each is two password hashes, and the server queues at most a second's worth of those.
    for chunk in (0..ACCOUNTS).collect::<Vec<_>>().chunks(4) {
        let mut logins = Vec::new();
        for &i in chunk {
            let (http, admin, base) = (c.t.http.clone(), c.admin.clone(), c.t.url("/"));
            let (cid, secret) = (c.cid.clone(), c.secret.clone());
            logins.push(tokio::spawn(async move {
            let email = format!("acct{i}@example.com");
            let u: Value = http
                .post(format!("{base}api/v2/users"))
                .bearer_auth(&admin)
                .json(&json!({"connection": "Username-Password-Authentication", "email": email, "password": PW}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let id = u["user_id"].as_str().unwrap().replace('|', "%7C");
            let r = http
                .post(format!("{base}api/v2/users/{id}/authentication-methods"))
                .bearer_auth(&admin)
                .json(&json!({"type": "phone", "phone_number": format!("+1415556{i:04}"), "preferred_authentication_method": "sms"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 201);
            let body = json!({"grant_type": "password", "client_id": cid, "client_secret": secret, "username": email, "password": PW});
            let v: Value = http
                .post(format!("{base}oauth/token"))
                .header("x-forwarded-for", "192.0.2.200")
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["mfa_token"].as_str().unwrap().to_owned()
        }));
        }
        for l in logins {
            tokens.push(l.await.unwrap());
        }
    }
    let before = c.t.app.store.count_dev_messages().await.unwrap();
    assert_eq!(before, 0);
    let mut requests: Vec<String> = Vec::new();
    for _ in 0..PER_ACCOUNT {
        requests.extend(tokens.iter().cloned());
    }
    let (mut ok, mut refused) = (0, 0);
    for batch in requests.chunks(50) {
        let mut tasks = Vec::new();
        for mfa in batch {
            let (http, url) = (c.t.http.clone(), c.t.url("/mfa/challenge"));
            let body =
                json!({"client_id": c.cid, "client_secret": c.secret, "mfa_token": mfa, "challenge_type": "oob"});
            tasks.push(tokio::spawn(async move {
                let r = http.post(url).header("x-forwarded-for", "203.0.113.77").json(&body).send().await.unwrap();
                let s = r.status().as_u16();
                (s, r.json::<Value>().await.unwrap())
            }));
        }
        for t in tasks {
            match t.await.unwrap() {
                (200, _) => ok += 1,
                (429, v) => {
                    assert_eq!(v["error"], "too_many_attempts", "{v}");
                    refused += 1;
                }
                (s, v) => panic!("{s}: {v}"),
            }
        }
    }
    assert_eq!((ok, refused), (cap, ACCOUNTS * PER_ACCOUNT - cap));
    c.t.deliver_now().await;
    assert_eq!(c.t.app.store.count_dev_messages().await.unwrap() as usize, cap, "not one message more than the cap");
    assert_eq!(c.logs("limit_mu").await.len(), 1, "one block, one event");
    // Another address is not affected.
    let body = json!({"client_id": c.cid, "client_secret": c.secret, "mfa_token": tokens[0], "challenge_type": "oob"});
    let r = c.t.http.post(c.t.url("/mfa/challenge")).header("x-forwarded-for", "198.51.100.9").json(&body).send().await;
    assert_eq!(r.unwrap().status().as_u16(), 200);
}

/// The three settings share one document. Written at the same moment (as a0deploy's import does, in parallel), each
/// PATCH must stand: none may write back the document it read before another writer's change.
async fn parallel_writes_of_the_three_settings_all_stand(c: Ctx) {
    for round in 0..8u64 {
        let pre_login = 10 + round;
        let bf = 3 + round;
        let ppp = if round % 2 == 0 { "exponential" } else { "default" };
        let writes = [
            (THROTTLING, json!({"stage": {"pre-login": {"max_attempts": pre_login}}})),
            (BRUTE_FORCE, json!({"max_attempts": bf})),
            (PPP, json!({"type": ppp})),
        ];
        let mut tasks = Vec::new();
        for (path, body) in writes {
            let (http, url, admin) = (c.t.http.clone(), c.t.url(path), c.admin.clone());
            tasks.push(tokio::spawn(async move {
                let r = http.patch(url).bearer_auth(admin).json(&body).send().await.unwrap();
                r.status().as_u16()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), 200);
        }
        let (_, t) = c.t.get(&c.admin, THROTTLING).await;
        let (_, b) = c.t.get(&c.admin, BRUTE_FORCE).await;
        let (_, p) = c.t.get(&c.admin, PPP).await;
        assert_eq!(
            (t["stage"]["pre-login"]["max_attempts"].as_u64(), b["max_attempts"].as_u64(), p["type"].as_str()),
            (Some(pre_login), Some(bf), Some(ppp)),
            "round {round}: every write stands"
        );
    }
}

#[tokio::test]
async fn parallel_writes_of_the_three_settings_all_stand_on_sqlite() {
    parallel_writes_of_the_three_settings_all_stand(behind_proxy().await).await;
}

#[tokio::test]
async fn parallel_writes_of_the_three_settings_all_stand_on_postgres() {
    let Some(c) = setup_postgres_with(trust_loopback, &["sms", "voice"]).await else { return };
    parallel_writes_of_the_three_settings_all_stand(c).await;
}
