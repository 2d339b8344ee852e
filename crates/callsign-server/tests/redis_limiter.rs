//! The rate limits kept in Redis (`redis_url`): brute-force protection and IP throttling through the password
//! grant, limits that hold across two nodes (one database, one Redis), and failing closed while Redis is away
//! (503, `/readyz` 503, back by itself). Against the Redis that `CALLSIGN_TEST_REDIS_URL` names, each test under a
//! key prefix of its own; without that variable the tests are skipped, except in CI (`CI=true`), where they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use callsign_core::mfa::SEND_BUCKET;
use callsign_server::config::{RawConfig, StringList};
use callsign_store::BucketSpec;
use common::TestApp;
use common::mfa::{Ctx, PHONE, PW, setup_with};
use serde_json::{Value, json};

const URL_VAR: &str = "CALLSIGN_TEST_REDIS_URL";
const THROTTLING: &str = "/api/v2/attack-protection/suspicious-ip-throttling";
const WRONG: &str = "wrong password 1A!";

/// The Redis URL, or None when the test should be skipped.
fn redis_url() -> Option<String> {
    callsign_testkit::service_url(URL_VAR)
}

/// A key prefix no other test (in this run or an earlier one) uses.
fn prefix() -> String {
    format!("{}:", callsign_testkit::unique_name("cs_test_app"))
}

/// Buckets in the Redis at `url` under `prefix` (None: in the database), and `X-Forwarded-For` believed from
/// loopback, so a test can speak as several clients.
fn limits_in(redis: Option<(&str, &str)>) -> impl FnOnce(&mut RawConfig) {
    let redis = redis.map(|(u, p)| (u.to_owned(), p.to_owned()));
    move |raw| {
        raw.trusted_proxies = Some(StringList(vec!["127.0.0.1".into()]));
        if let Some((url, prefix)) = redis {
            raw.redis_url = Some(url);
            raw.redis_key_prefix = Some(prefix);
        }
    }
}

async fn raw_redis(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap()
}

async fn exists(url: &str, key: &str) -> bool {
    let n: i64 = redis::cmd("EXISTS").arg(key).query_async(&mut raw_redis(url).await).await.unwrap();
    n == 1
}

/// The password grant on `node` for `user`, from `ip` (through the trusted proxy).
async fn login_on(node: &TestApp, c: &Ctx, user: &str, password: &str, ip: &str) -> (u16, Value) {
    let body = json!({"grant_type": "password", "client_id": c.cid, "client_secret": c.secret, "username": user, "password": password});
    let r = node.http.post(node.url("/oauth/token")).header("x-forwarded-for", ip).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// `/mfa/associate` (which sends a code by SMS) on `node`, from `ip`.
async fn associate_on(node: &TestApp, mfa: &str, phone: &str, ip: &str) -> (u16, Value) {
    let body = json!({"authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": phone});
    let r = node
        .http
        .post(node.url("/mfa/associate"))
        .bearer_auth(mfa)
        .header("x-forwarded-for", ip)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// A bucket the store has never seen (a missing row is full, whatever the spec).
async fn untouched_in_the_store(t: &TestApp, key: &str) {
    let spec = BucketSpec { capacity: 1_000, refill_every_ms: 1 };
    let state = t.app.store.bucket_peek(key, spec, callsign_domain::Clock::now(&t.clock)).await.unwrap();
    assert_eq!((state.remaining, state.next_refill_at), (1_000, None), "{key} was counted in the store");
}

#[tokio::test]
async fn brute_force_blocks_the_eleventh_login_in_redis_and_another_ip_still_logs_in() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix();
    let c = setup_with(limits_in(Some((&url, &prefix))), &["sms"]).await;
    let (a, b) = ("203.0.113.10", "198.51.100.10");
    for i in 0..10 {
        let (s, v) = login_on(&c.t, &c, "ann@example.com", WRONG, a).await;
        assert_eq!((s, v["error"].as_str()), (403, Some("invalid_grant")), "failure {i}: {v}");
    }
    for _ in 0..3 {
        let (s, v) = login_on(&c.t, &c, "ann@example.com", PW, a).await;
        assert_eq!((s, v["error"].as_str()), (429, Some("too_many_attempts")), "the right password too: {v}");
    }
    let (s, v) = login_on(&c.t, &c, "ann@example.com", PW, b).await;
    assert_eq!((s, v["error"].as_str()), (403, Some("mfa_required")), "another address still works: {v}");
    // Counted in Redis, under the prefix; not in the database.
    let key = format!("bf:ann@example.com:{a}");
    assert!(exists(&url, &format!("{prefix}{key}")).await, "the bucket is in Redis");
    untouched_in_the_store(&c.t, &key).await;
    // The operator's unblock reaches Redis too.
    let user_blocks = format!("/api/v2/user-blocks/{}", c.user_id.replace('|', "%7C"));
    assert_eq!(c.t.delete(&c.admin, &user_blocks).await.0, 204);
    assert!(!exists(&url, &format!("{prefix}{key}")).await);
    assert_eq!(login_on(&c.t, &c, "ann@example.com", PW, a).await.1["error"], "mfa_required", "let in again");
}

#[tokio::test]
async fn ip_throttling_blocks_failed_logins_in_redis_and_another_ip_still_logs_in() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix();
    let c = setup_with(limits_in(Some((&url, &prefix))), &["sms"]).await;
    let (s, v) =
        c.t.patch(&c.admin, THROTTLING, json!({"stage": {"pre-login": {"max_attempts": 3, "rate": 864000}}})).await;
    assert_eq!(s, 200, "{v}");
    let (bad, good) = ("203.0.113.5", "198.51.100.77");
    // Three users, so that brute-force protection (per account) is not what blocks.
    for (i, user) in ["a@example.com", "b@example.com", "c@example.com"].iter().enumerate() {
        let (s, v) = login_on(&c.t, &c, user, WRONG, bad).await;
        assert_eq!((s, v["error"].as_str()), (403, Some("invalid_grant")), "failure {i}: {v}");
    }
    let (s, v) = login_on(&c.t, &c, "ann@example.com", PW, bad).await;
    assert_eq!((s, v["error"].as_str()), (429, Some("too_many_attempts")), "{v}");
    assert!(v["error_description"].as_str().unwrap().contains("suspicious login behavior"), "{v}");
    let (s, v) = login_on(&c.t, &c, "ann@example.com", PW, good).await;
    assert_eq!((s, v["error"].as_str()), (403, Some("mfa_required")), "{v}");
    let key = format!("ip:pre-login:{bad}");
    assert!(exists(&url, &format!("{prefix}{key}")).await, "the bucket is in Redis");
    untouched_in_the_store(&c.t, &key).await;
    assert_eq!(c.t.get(&c.admin, &format!("/api/v2/anomaly/blocks/ips/{bad}")).await.0, 200);
    assert_eq!(c.t.delete(&c.admin, &format!("/api/v2/anomaly/blocks/ips/{bad}")).await.0, 204);
    assert_eq!(login_on(&c.t, &c, "ann@example.com", PW, bad).await.1["error"], "mfa_required", "unblocked");
}

// --- two nodes: one database (a SQLite file both open), one Redis with one prefix -----------------------------

/// One address asks both nodes, in turn, for more messages than its `pre-phone-message` cap, over several accounts:
/// the cap holds for the pair (the sum over both nodes is the cap), not per node.
async fn two_nodes_share_the_per_ip_message_cap(redis: Option<(&str, &str)>) {
    const CAP: usize = 6;
    const ACCOUNTS: usize = 4;
    const PER_ACCOUNT: usize = 4;
    let c = setup_with(limits_in(redis), &["sms"]).await;
    let b = c.t.spawn_node().await;
    let nodes = [&c.t, &b];
    let (s, v) = c
        .t
        .patch(&c.admin, THROTTLING, json!({"stage": {"pre-phone-message": {"max_attempts": CAP, "rate": 3600000}}}))
        .await;
    assert_eq!(s, 200, "{v}");
    let mut tokens = Vec::new();
    for i in 0..ACCOUNTS {
        let email = format!("user{i}@example.com");
        c.t.create_user(&c.admin, &email).await;
        let (s, v) = login_on(nodes[i % 2], &c, &email, PW, "192.0.2.200").await;
        assert_eq!(s, 403, "{v}");
        tokens.push(v["mfa_token"].as_str().unwrap().to_owned());
    }
    let mut sent = [0; 2];
    let mut n = 0;
    for (i, mfa) in tokens.iter().enumerate() {
        for j in 0..PER_ACCOUNT {
            let node = n % 2;
            n += 1;
            let phone = format!("+1415555{:04}", i * PER_ACCOUNT + j);
            let (s, v) = associate_on(nodes[node], mfa, &phone, "203.0.113.50").await;
            match s {
                200 => sent[node] += 1,
                429 => assert_eq!(v["error"], "too_many_attempts", "{v}"),
                other => panic!("{other}: {v}"),
            }
        }
    }
    assert_eq!(sent[0] + sent[1], CAP, "the cap holds over both nodes together: {sent:?}");
    assert_eq!(sent, [CAP / 2, CAP / 2], "alternating, each node sent half");
    c.t.deliver_now().await;
    assert_eq!(c.t.app.store.count_dev_messages().await.unwrap() as usize, CAP, "no more messages than the cap");
    // Another address still gets its message, on either node.
    let (s, v) = associate_on(&b, &c.mfa_token().await, PHONE, "198.51.100.1").await;
    assert_eq!(s, 200, "{v}");
    b.stop().await;
}

/// One user asks both nodes, in turn, for more codes than the per-user send limit: it holds for the pair.
async fn two_nodes_share_the_per_user_send_limit(redis: Option<(&str, &str)>) {
    let c = setup_with(limits_in(redis), &["sms"]).await;
    let b = c.t.spawn_node().await;
    let nodes = [&c.t, &b];
    // IP throttling off: only the per-user limit counts here.
    assert_eq!(c.t.patch(&c.admin, THROTTLING, json!({"enabled": false})).await.0, 200);
    let mfa = c.mfa_token().await;
    let cap = SEND_BUCKET.capacity as usize;
    let mut sent = [0; 2];
    for i in 0..cap + 6 {
        let (s, v) = associate_on(nodes[i % 2], &mfa, PHONE, &format!("203.0.113.{}", i + 1)).await;
        match s {
            200 => sent[i % 2] += 1,
            429 => assert_eq!(
                v["error_description"],
                "Too many SMS sent by the user. Wait for some minutes before retrying."
            ),
            other => panic!("{other}: {v}"),
        }
        assert_eq!(s == 200, i < cap, "request {i} on node {}: {v}", i % 2);
    }
    assert_eq!(sent[0] + sent[1], cap, "the limit holds over both nodes together: {sent:?}");
    b.stop().await;
}

#[tokio::test]
async fn two_nodes_share_the_per_ip_message_cap_in_redis() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix();
    two_nodes_share_the_per_ip_message_cap(Some((&url, &prefix))).await;
}

#[tokio::test]
async fn two_nodes_share_the_per_user_send_limit_in_redis() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix();
    two_nodes_share_the_per_user_send_limit(Some((&url, &prefix))).await;
}

#[tokio::test]
async fn two_nodes_share_the_per_ip_message_cap_in_the_database() {
    two_nodes_share_the_per_ip_message_cap(None).await;
}

#[tokio::test]
async fn two_nodes_share_the_per_user_send_limit_in_the_database() {
    two_nodes_share_the_per_user_send_limit(None).await;
}

// --- failing closed -----------------------------------------------------------------------------------------

/// A TCP relay on a port of its own to the real Redis, which the test can cut (every connection closed, the port
/// closed: connection refused) and restore on the same port, as a Redis that goes away and comes back.
struct Relay {
    port: u16,
    target: String,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    async fn start(redis_url: &str) -> Relay {
        let info: redis::ConnectionInfo = redis::IntoConnectionInfo::into_connection_info(redis_url).unwrap();
        let target = match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
            other => panic!("the relay needs a TCP Redis, not {other:?}"),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let relay = Relay { port, target, tasks: Arc::default() };
        relay.serve(listener);
        relay
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let (target, tasks) = (self.target.clone(), self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(conn);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Close every connection and the port.
    async fn cut(&self) {
        let tasks: Vec<_> = self.tasks.lock().unwrap().drain(..).collect();
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
    }

    async fn restore(&self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.serve(listener);
    }
}

#[allow(clippy::disallowed_methods)] // measuring how long an answer took, not telling the time
fn stopwatch() -> std::time::Instant {
    std::time::Instant::now()
}

async fn readyz(t: &TestApp) -> (u16, Value) {
    let r = t.http.get(t.url("/readyz")).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// With Redis away, nothing that needs a limit is let through: `/mfa/challenge` and the password grant answer 503
/// in the OAuth error shape, fast; `/readyz` is 503 and names Redis. Once Redis is back, all of it works again by
/// itself (no restart).
#[tokio::test]
async fn an_unreachable_redis_fails_closed_and_recovers_by_itself() {
    let Some(url) = redis_url() else { return };
    let relay = Relay::start(&url).await;
    let prefix = prefix();
    let c = setup_with(limits_in(Some((&relay.url(), &prefix))), &["sms"]).await;
    c.enroll().await;
    let mfa = c.mfa_token().await;
    assert_eq!(readyz(&c.t).await, (200, json!({"status": "ready", "database": "sqlite", "redis": "ready"})));

    relay.cut().await;
    for round in 0..3 {
        let started = stopwatch();
        let (s, v) = c.challenge(&mfa, None).await;
        assert_eq!((s, v["error"].as_str()), (503, Some("temporarily_unavailable")), "challenge, round {round}: {v}");
        assert!(v["error_description"].is_string(), "{v}");
        let (s, v) = c.login().await;
        assert_eq!((s, v["error"].as_str()), (503, Some("temporarily_unavailable")), "login, round {round}: {v}");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "two refusals took {took:?}");
    }
    assert_eq!(readyz(&c.t).await, (503, json!({"status": "not ready", "database": "sqlite", "redis": "unreachable"})));
    // The operator's view of the blocks is in Redis too: 503 in the Management API's shape, not a 500.
    let (s, v) = c.t.get(&c.admin, "/api/v2/anomaly/blocks/ips/203.0.113.9").await;
    assert_eq!((s, v["statusCode"].as_u64()), (503, Some(503)), "{v}");
    assert_eq!(c.t.delete(&c.admin, "/api/v2/anomaly/blocks/ips/203.0.113.9").await.0, 503);
    assert_eq!(c.t.app.store.count_dev_messages().await.unwrap(), 1, "only the enrollment's code was sent");

    relay.restore().await;
    common::eventually("/readyz is ready again", async || match readyz(&c.t).await {
        (200, _) => Ok(()),
        other => Err(format!("{other:?}")),
    })
    .await;
    let (s, v) = c.challenge(&mfa, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(c.login().await.1["error"], "mfa_required");
    assert_eq!(c.t.get(&c.admin, "/api/v2/anomaly/blocks/ips/203.0.113.9").await.0, 404, "not blocked");
    c.t.stop().await;
}

/// A node whose `redis_url` points at nothing still starts (its Redis may come up after it), and refuses with 503
/// until it does.
#[tokio::test]
async fn a_node_starts_without_its_redis_and_refuses_until_it_comes() {
    let Some(_) = redis_url() else { return };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let t = TestApp::spawn_with(|raw| raw.redis_url = Some(format!("redis://:hunter2@127.0.0.1:{port}/"))).await;
    let admin = t.mgmt_token().await;
    t.create_user(&admin, "ann@example.com").await;
    let app = t.create_app(&admin, &["password"]).await;
    let body = json!({"grant_type": "password", "client_id": app["client_id"], "client_secret": app["client_secret"], "username": "ann@example.com", "password": PW});
    let started = stopwatch();
    let (s, v) = t.token_request(body).await;
    assert_eq!((s, v["error"].as_str()), (503, Some("temporarily_unavailable")), "{v}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let (s, v) = readyz(&t).await;
    assert_eq!((s, &v["redis"]), (503, &json!("unreachable")), "{v}");
    assert!(!v.to_string().contains("hunter2"));
    t.stop().await;
}

/// A `redis_url` that is no Redis URL stops the start, naming the setting (and not repeating a password).
#[test]
fn a_bad_redis_url_is_refused_at_start_naming_the_setting() {
    let raw = RawConfig { redis_url: Some("http://:hunter2@127.0.0.1:6379/".into()), ..Default::default() };
    let e = callsign_server::config::Config::resolve(raw).unwrap_err().to_string();
    assert!(e.starts_with("redis_url: "), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
}

// --- sign-up and the exponential backoff, over two nodes sharing Redis --------------------------------------------

/// `POST /dbconnections/signup` on `node` from `ip`.
async fn signup_on(node: &TestApp, c: &Ctx, email: &str, ip: &str) -> (u16, Value) {
    let body =
        json!({"client_id": c.cid, "connection": "Username-Password-Authentication", "email": email, "password": PW});
    let r = node
        .http
        .post(node.url("/dbconnections/signup"))
        .header("x-forwarded-for", ip)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn sixty_signups_over_two_nodes_sharing_redis_let_fifty_through() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix();
    let c = setup_with(limits_in(Some((&url, &prefix))), &["sms"]).await;
    let b = c.t.spawn_node().await;
    let nodes = [&c.t, &b];
    let (_, conns) = c.t.get(&c.admin, "/api/v2/connections").await;
    let id = conns[0]["id"].as_str().unwrap().to_owned();
    let (s, v) =
        c.t.patch(&c.admin, &format!("/api/v2/connections/{id}"), json!({"options": {"disable_signup": false}})).await;
    assert_eq!(s, 200, "{v}");
    let mut ok = [0; 2];
    let mut refused = 0;
    for i in 0..60 {
        let (s, v) = signup_on(nodes[i % 2], &c, &format!("s{i}@example.com"), "203.0.113.60").await;
        match s {
            200 => ok[i % 2] += 1,
            429 => {
                assert_eq!(v["code"], "too_many_attempts", "{v}");
                refused += 1;
            }
            other => panic!("{other}: {v}"),
        }
    }
    assert_eq!((ok, refused), ([25, 25], 10), "50 over both nodes, not 50 each");
    assert_eq!(c.logs("limit_mu").await.len(), 1, "one limit_mu for the block, whichever node refused");
    assert!(exists(&url, &format!("{prefix}ip:pre-user-registration:203.0.113.60")).await, "counted in Redis");
    // Unblocked through node B: node A lets it in.
    assert_eq!(b.delete(&c.admin, "/api/v2/anomaly/blocks/ips/203.0.113.60").await.0, 204);
    assert_eq!(signup_on(&c.t, &c, "after@example.com", "203.0.113.60").await.0, 200);
    b.stop().await;
}

#[tokio::test]
async fn the_exponential_backoff_holds_over_two_nodes_sharing_redis() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix();
    let c = setup_with(limits_in(Some((&url, &prefix))), &["sms"]).await;
    let b = c.t.spawn_node().await;
    c.enroll().await;
    let (s, v) =
        c.t.patch(&c.admin, "/api/v2/attack-protection/phone-provider-protection", json!({"type": "exponential"}))
            .await;
    assert_eq!(s, 200, "{v}");
    // Each round: 12 challenges at once, half on each node: exactly one is sent; then the wait doubles.
    for (round, wait) in [(0, 0), (1, 30), (2, 60)] {
        c.t.clock.advance(Duration::from_secs(wait));
        let mfa = c.mfa_token().await;
        let mut tasks = Vec::new();
        for i in 0..12 {
            let node = if i % 2 == 0 { &c.t } else { &b };
            let (http, url) = (node.http.clone(), node.url("/mfa/challenge"));
            let body =
                json!({"client_id": c.cid, "client_secret": c.secret, "mfa_token": mfa, "challenge_type": "oob"});
            tasks.push(tokio::spawn(async move { http.post(url).json(&body).send().await.unwrap().status().as_u16() }));
        }
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "round {round}: {statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 11, "round {round}: {statuses:?}");
    }
    assert!(exists(&url, &format!("{prefix}send-exp:{}", c.user_id)).await, "the backoff is in Redis");
    b.stop().await;
}
