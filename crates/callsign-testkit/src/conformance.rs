//! The behaviour every [`Store`] backend must have, one function per rule. Each takes a fresh, migrated store.
//! Run them with [`conformance_suite!`](crate::conformance_suite). The rate-limit rules (`buckets_*`) take only a
//! [`RateLimiter`], so that any limiter, not only a store, can be held to them
//! ([`rate_limiter_suite!`](crate::rate_limiter_suite)).
// Test support: a failed expectation is a test failure, reported with its context.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use callsign_domain::Timestamp;
use callsign_domain::seal::Sealed;
use callsign_store::{
    BucketSpec, BucketState, Challenge, Channel, Client, ClientGrant, ClientSpec, DeliveryJob, DevMessage, Enrollment,
    EnrollmentKind, EnrollmentStatus, EnrollmentTicket, GrantFilter, JobOutcome, JobStatus, Listed, LogBody, LogCursor,
    LogEvent, LogPaging, LogQuery, LogStream, LogStreamOutcome, MfaToken, Page, RateLimiter, SealedSecret, SigningKey,
    Store, StoreError, StoreResult, User, UserFilter, UserProfile,
};
use serde_json::json;

// --- builders ---

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn secret(name: &str, key_id: &str, at: i64) -> SealedSecret {
    SealedSecret {
        name: name.to_owned(),
        sealed: Sealed {
            key_id: key_id.to_owned(),
            nonce: vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255],
            ciphertext: format!("ciphertext of {name}").into_bytes(),
        },
        updated_at: ts(at),
    }
}

fn signing_key(kid: &str, created: i64) -> (SigningKey, SealedSecret) {
    let secret_name = format!("signing-key/{kid}");
    let key = SigningKey {
        kid: kid.to_owned(),
        public_jwk: json!({"kty": "RSA", "n": format!("n-{kid}"), "e": "AQAB", "kid": kid, "alg": "RS256", "use": "sig"}),
        secret_name: secret_name.clone(),
        created_at: ts(created),
        retired_at: None,
    };
    (key, secret(&secret_name, "k1", created))
}

fn client(id: &str, created: i64) -> Client {
    let mut metadata = serde_json::Map::new();
    metadata.insert("team".into(), json!("payments"));
    Client {
        client_id: id.to_owned(),
        secret_hash: format!("hash-of-{id}"),
        created_at: ts(created),
        updated_at: ts(created),
        spec: ClientSpec {
            name: format!("App {id}"),
            description: Some("an application".into()),
            app_type: Some("non_interactive".into()),
            grant_types: vec!["client_credentials".into()],
            callbacks: vec!["https://example.com/cb".into()],
            allowed_logout_urls: vec![],
            web_origins: vec!["https://example.com".into()],
            allowed_origins: vec!["https://other.example.com".into()],
            is_first_party: true,
            token_endpoint_auth_method: "client_secret_post".into(),
            client_metadata: metadata,
        },
    }
}

fn grant(id: &str, client_id: &str, audience: &str, created: i64) -> ClientGrant {
    ClientGrant {
        id: id.to_owned(),
        client_id: client_id.to_owned(),
        audience: audience.to_owned(),
        scope: vec!["read:users".into(), "update:users".into()],
        created_at: ts(created),
    }
}

fn user(id: &str, email: Option<&str>, created: i64) -> User {
    let mut app_metadata = serde_json::Map::new();
    app_metadata.insert("plan".into(), json!({"tier": "gold", "seats": 3}));
    User {
        user_id: id.to_owned(),
        email: email.map(str::to_owned),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        created_at: ts(created),
        updated_at: ts(created),
        last_login: None,
        logins_count: 0,
        profile: UserProfile {
            email_verified: true,
            phone_number: Some("+442071838750".into()),
            phone_verified: false,
            name: Some(format!("User {id}")),
            nickname: Some(id.to_owned()),
            given_name: None,
            family_name: Some("Smith".into()),
            picture: None,
            blocked: false,
            connection: "Username-Password-Authentication".into(),
            user_metadata: serde_json::Map::new(),
            app_metadata,
        },
    }
}

/// A 56-digit log id, ordered like the numbers.
fn log_id(n: u64) -> String {
    format!("{n:056}")
}

fn log(n: u64, date: i64, event_type: &str, user_id: Option<&str>) -> LogEvent {
    LogEvent {
        log_id: log_id(n),
        date: ts(date),
        event_type: event_type.to_owned(),
        user_id: user_id.map(str::to_owned),
        client_id: Some("client-1".into()),
        body: LogBody {
            description: Some(format!("event {n}")),
            client_name: Some("App".into()),
            ip: Some("203.0.113.7".into()),
            user_agent: Some("curl/8".into()),
            user_name: None,
            audience: None,
            scope: None,
            connection: None,
            strategy: None,
            details: json!({"n": n, "nested": {"ok": true}}),
        },
    }
}

// --- assertions ---

#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(result: StoreResult<T>, what: &str) {
    match result {
        Err(StoreError::Conflict(c)) => assert_eq!(c, what, "conflict names the wrong columns"),
        other => panic!("expected Conflict({what:?}), got {other:?}"),
    }
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(result: StoreResult<T>) {
    match result {
        Err(StoreError::NotFound) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

fn ids<T>(listed: &Listed<T>, id: impl Fn(&T) -> &str) -> Vec<String> {
    listed.items.iter().map(|t| id(t).to_owned()).collect()
}

// --- migrations ---

pub async fn migrate_is_idempotent_and_ready(store: &dyn Store) {
    assert!(["sqlite", "postgres"].contains(&store.backend()), "unexpected backend name {}", store.backend());
    store.migrate().await.expect("second migrate");
    store.migrate().await.expect("third migrate");
    store.check_ready().await.expect("ready after migrate");
    // Data survives a re-run of the migrations.
    store.put_secret(&secret("s", "k1", 1)).await.expect("put");
    store.migrate().await.expect("migrate with data");
    assert!(store.get_secret("s").await.expect("get").is_some());
    store.check_ready().await.expect("still ready");
}

// --- secrets ---

pub async fn secrets_roundtrip(store: &dyn Store) {
    assert_eq!(store.get_secret("missing").await.expect("get missing"), None);
    let s = secret("signing-key/abc", "k1", 1_700_000_000_123);
    store.put_secret(&s).await.expect("put");
    let got = store.get_secret("signing-key/abc").await.expect("get").expect("stored");
    assert_eq!(got, s);
    assert_eq!(got.sealed.nonce, s.sealed.nonce);
    assert_eq!(got.sealed.ciphertext, s.sealed.ciphertext);
}

pub async fn secrets_put_replaces(store: &dyn Store) {
    store.put_secret(&secret("a", "k1", 1)).await.expect("put");
    let mut replaced = secret("a", "k2", 2);
    replaced.sealed.ciphertext = b"new".to_vec();
    store.put_secret(&replaced).await.expect("upsert");
    assert_eq!(store.get_secret("a").await.expect("get"), Some(replaced));
    assert_eq!(store.list_secrets().await.expect("list").len(), 1);
}

pub async fn secrets_list_and_delete(store: &dyn Store) {
    assert!(store.list_secrets().await.expect("empty list").is_empty());
    for name in ["b", "a", "c"] {
        store.put_secret(&secret(name, "k1", 1)).await.expect("put");
    }
    let mut names: Vec<String> = store.list_secrets().await.expect("list").into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(names, ["a", "b", "c"]);
    store.delete_secret("b").await.expect("delete");
    assert_eq!(store.get_secret("b").await.expect("get deleted"), None);
    assert!(store.get_secret("a").await.expect("get kept").is_some());
    assert_eq!(store.list_secrets().await.expect("list").len(), 2);
    // Deleting what is not there is not an error.
    store.delete_secret("b").await.expect("delete absent");
}

// --- settings ---

pub async fn settings_get_and_put(store: &dyn Store) {
    assert_eq!(store.get_setting("tenant").await.expect("get missing"), None);
    let v1 = json!({"friendly_name": "Acme", "flags": {"mfa": true}, "list": [1, 2.5, "x", null]});
    store.put_setting("tenant", &v1, ts(1)).await.expect("put");
    assert_eq!(store.get_setting("tenant").await.expect("get"), Some(v1));
    let v2 = json!("just a string");
    store.put_setting("tenant", &v2, ts(2)).await.expect("replace");
    assert_eq!(store.get_setting("tenant").await.expect("get replaced"), Some(v2));
    assert_eq!(store.get_setting("other").await.expect("get other"), None);
}

pub async fn settings_insert_if_absent_latches_once(store: &dyn Store) {
    let first = json!({"at": 1});
    assert!(store.insert_setting_if_absent("bootstrap", &first, ts(1)).await.expect("first insert"));
    assert!(!store.insert_setting_if_absent("bootstrap", &json!({"at": 2}), ts(2)).await.expect("second insert"));
    assert!(!store.insert_setting_if_absent("bootstrap", &json!({"at": 3}), ts(3)).await.expect("third insert"));
    assert_eq!(store.get_setting("bootstrap").await.expect("get"), Some(first));
    // A key written by put_setting is present too.
    store.put_setting("other", &json!(1), ts(1)).await.expect("put");
    assert!(!store.insert_setting_if_absent("other", &json!(2), ts(2)).await.expect("insert over put"));
    assert_eq!(store.get_setting("other").await.expect("get other"), Some(json!(1)));
}

pub async fn settings_replace_is_compare_and_set(store: &dyn Store) {
    let v1 = json!({"provider": "auth0", "message_types": ["sms"], "n": 1.5});
    assert!(store.replace_setting("guardian", None, &v1, ts(1)).await.expect("create when absent"));
    assert!(!store.replace_setting("guardian", None, &json!({}), ts(1)).await.expect("absent no more"));
    // What was read is what is compared: a read-modify-write succeeds once; a second writer holding the same
    // old document loses and the first write stays.
    let read = store.get_setting("guardian").await.expect("get").expect("present");
    let v2 = json!({"provider": "example-sms", "message_types": ["sms"], "n": 1.5});
    let v3 = json!({"provider": "auth0", "message_types": ["voice"], "n": 1.5});
    assert!(store.replace_setting("guardian", Some(&read), &v2, ts(2)).await.expect("first writer"));
    assert!(!store.replace_setting("guardian", Some(&read), &v3, ts(2)).await.expect("second writer"));
    assert_eq!(store.get_setting("guardian").await.expect("get"), Some(v2.clone()));
    assert!(!store.replace_setting("nothing", Some(&v2), &v3, ts(3)).await.expect("absent key"));
    assert_eq!(store.get_setting("nothing").await.expect("get"), None);
}

/// Every write to configuration raises the database's generation (in its transaction) and this store's own count;
/// reads raise neither; a write that changed nothing (a lost compare-and-set, a missing row) raises only the count.
pub async fn config_writes_raise_the_generation(store: &dyn Store) {
    let seen = || async {
        (
            store.config_writes().expect("a SQL store counts its writes"),
            store.config_generation().await.expect("generation"),
        )
    };
    let (w0, g0) = seen().await;
    store.put_setting("tenant", &json!({"n": 1}), ts(1)).await.expect("put");
    let (w1, g1) = seen().await;
    assert_eq!((w1, g1), (w0 + 1, g0 + 1), "put_setting");
    store.get_setting("tenant").await.expect("get");
    assert!(store.insert_setting_if_absent("latch", &json!(1), ts(1)).await.expect("insert"));
    assert!(!store.insert_setting_if_absent("latch", &json!(2), ts(1)).await.expect("insert again"));
    let (w2, g2) = seen().await;
    assert_eq!((w2, g2), (w1 + 2, g1 + 1), "a latch that is already set changes nothing");
    assert!(!store.replace_setting("tenant", Some(&json!({"n": 0})), &json!({"n": 2}), ts(2)).await.expect("cas"));
    assert!(store.replace_setting("tenant", Some(&json!({"n": 1})), &json!({"n": 2}), ts(2)).await.expect("cas"));
    let (w3, g3) = seen().await;
    assert_eq!((w3, g3), (w2 + 2, g2 + 1), "only the compare-and-set that won raises the generation");

    let mut c = client("gen", 1);
    store.create_client(&c).await.expect("create client");
    c.spec.name = "Renamed".into();
    store.update_client(&c).await.expect("update client");
    assert_not_found(store.update_client(&client("ghost", 1)).await);
    let g = grant("g-gen", "gen", "https://api", 1);
    store.create_client_grant(&g).await.expect("create grant");
    store.update_client_grant(&g).await.expect("update grant");
    store.delete_client_grant("g-gen").await.expect("delete grant");
    assert_not_found(store.delete_client_grant("g-gen").await);
    store.delete_client("gen").await.expect("delete client");
    store.get_client("gen").await.expect("get client");
    let (w4, g4) = seen().await;
    assert_eq!((w4, g4), (w3 + 8, g3 + 6), "six applied writes to applications and grants, two that found nothing");
}

// --- signing keys ---

pub async fn signing_keys_add_and_list_newest_first(store: &dyn Store) {
    assert!(store.list_signing_keys().await.expect("empty").is_empty());
    for (kid, created) in [("k-b", 2_000), ("k-a", 1_000), ("k-c", 3_000)] {
        let (key, private) = signing_key(kid, created);
        store.add_signing_key(&key, &private, false).await.expect("add");
    }
    let keys = store.list_signing_keys().await.expect("list");
    let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, ["k-c", "k-b", "k-a"]);
    assert_eq!(keys[0], signing_key("k-c", 3_000).0, "the key comes back as stored");
    // The private part went in with it.
    let (_, private) = signing_key("k-b", 2_000);
    assert_eq!(store.get_secret("signing-key/k-b").await.expect("get secret"), Some(private));
    // A duplicate kid is refused and leaves nothing behind.
    let (dup, dup_private) = signing_key("k-a", 9_000);
    assert_conflict(store.add_signing_key(&dup, &dup_private, true).await, "kid");
    let keys = store.list_signing_keys().await.expect("list after conflict");
    assert_eq!(keys.len(), 3);
    assert!(keys.iter().all(|k| k.retired_at.is_none()), "the failed add retired nothing: {keys:?}");
    let (_, original) = signing_key("k-a", 1_000);
    assert_eq!(store.get_secret("signing-key/k-a").await.expect("get"), Some(original), "nor replaced the secret");
}

pub async fn signing_keys_retire_others(store: &dyn Store) {
    let (k1, p1) = signing_key("k1", 1_000);
    store.add_signing_key(&k1, &p1, false).await.expect("add k1");
    let (k2, p2) = signing_key("k2", 2_000);
    store.add_signing_key(&k2, &p2, false).await.expect("add k2");
    let keys = store.list_signing_keys().await.expect("list");
    assert!(keys.iter().all(|k| k.retired_at.is_none()), "{keys:?}");

    let (k3, p3) = signing_key("k3", 3_000);
    store.add_signing_key(&k3, &p3, true).await.expect("add k3 retiring others");
    let keys = store.list_signing_keys().await.expect("list");
    let state: Vec<(&str, Option<Timestamp>)> = keys.iter().map(|k| (k.kid.as_str(), k.retired_at)).collect();
    assert_eq!(state, [("k3", None), ("k2", Some(ts(3_000))), ("k1", Some(ts(3_000)))]);

    // A key retired earlier keeps its date.
    let (k4, p4) = signing_key("k4", 4_000);
    store.add_signing_key(&k4, &p4, true).await.expect("add k4");
    let keys = store.list_signing_keys().await.expect("list");
    let state: Vec<(&str, Option<Timestamp>)> = keys.iter().map(|k| (k.kid.as_str(), k.retired_at)).collect();
    assert_eq!(state, [("k4", None), ("k3", Some(ts(4_000))), ("k2", Some(ts(3_000))), ("k1", Some(ts(3_000)))]);
}

pub async fn signing_keys_delete_removes_secret(store: &dyn Store) {
    for (kid, created) in [("k1", 1), ("k2", 2)] {
        let (key, private) = signing_key(kid, created);
        store.add_signing_key(&key, &private, false).await.expect("add");
    }
    store.delete_signing_key("k1").await.expect("delete");
    let kids: Vec<String> = store.list_signing_keys().await.expect("list").into_iter().map(|k| k.kid).collect();
    assert_eq!(kids, ["k2"]);
    assert_eq!(store.get_secret("signing-key/k1").await.expect("get deleted secret"), None);
    assert!(store.get_secret("signing-key/k2").await.expect("get kept secret").is_some());
    assert_not_found(store.delete_signing_key("k1").await);
}

// --- applications ---

pub async fn clients_crud(store: &dyn Store) {
    assert_eq!(store.get_client("c1").await.expect("get missing"), None);
    let c = client("c1", 1_000);
    store.create_client(&c).await.expect("create");
    assert_eq!(store.get_client("c1").await.expect("get"), Some(c.clone()));

    let mut changed = c.clone();
    changed.secret_hash = "rotated".into();
    changed.updated_at = ts(2_000);
    changed.spec.name = "Renamed".into();
    changed.spec.callbacks.clear();
    changed.spec.client_metadata.insert("env".into(), json!("prod"));
    store.update_client(&changed).await.expect("update");
    assert_eq!(store.get_client("c1").await.expect("get updated"), Some(changed));

    store.delete_client("c1").await.expect("delete");
    assert_eq!(store.get_client("c1").await.expect("get deleted"), None);
    assert_eq!(store.list_clients(Page::new(0, 10)).await.expect("list").total, 0);
}

pub async fn clients_absent_is_not_found(store: &dyn Store) {
    assert_not_found(store.update_client(&client("ghost", 1)).await);
    assert_not_found(store.delete_client("ghost").await);
    assert_eq!(store.get_client("ghost").await.expect("get"), None, "update must not insert");
}

pub async fn clients_duplicate_id_conflicts(store: &dyn Store) {
    store.create_client(&client("c1", 1)).await.expect("create");
    let mut other = client("c1", 2);
    other.spec.name = "Other".into();
    assert_conflict(store.create_client(&other).await, "client_id");
    let stored = store.get_client("c1").await.expect("get").expect("still there");
    assert_eq!(stored.spec.name, "App c1", "the first one is untouched");
}

pub async fn clients_paging_and_total(store: &dyn Store) {
    // Created out of order, with a tie on created_at broken by client_id.
    for (id, created) in [("e", 5), ("b", 2), ("d", 3), ("a", 1), ("c", 3)] {
        store.create_client(&client(id, created)).await.expect("create");
    }
    let page0 = store.list_clients(Page::new(0, 2)).await.expect("page 0");
    assert_eq!(ids(&page0, |c| &c.client_id), ["a", "b"]);
    assert_eq!(page0.total, 5);
    let page1 = store.list_clients(Page::new(1, 2)).await.expect("page 1");
    assert_eq!(ids(&page1, |c| &c.client_id), ["c", "d"]);
    let page2 = store.list_clients(Page::new(2, 2)).await.expect("page 2");
    assert_eq!(ids(&page2, |c| &c.client_id), ["e"]);
    assert_eq!(page2.total, 5);
    let past = store.list_clients(Page::new(9, 2)).await.expect("past the end");
    assert!(past.items.is_empty());
    assert_eq!(past.total, 5);
    let all = store.list_clients(Page::new(0, 50)).await.expect("all");
    assert_eq!(ids(&all, |c| &c.client_id), ["a", "b", "c", "d", "e"]);
    assert_eq!(all.items[0], client("a", 1));
}

pub async fn clients_delete_cascades_grants(store: &dyn Store) {
    store.create_client(&client("c1", 1)).await.expect("create c1");
    store.create_client(&client("c2", 2)).await.expect("create c2");
    store.create_client_grant(&grant("g1", "c1", "https://api-a", 1)).await.expect("grant g1");
    store.create_client_grant(&grant("g2", "c1", "https://api-b", 2)).await.expect("grant g2");
    store.create_client_grant(&grant("g3", "c2", "https://api-a", 3)).await.expect("grant g3");

    store.delete_client("c1").await.expect("delete c1");
    assert_eq!(store.get_client_grant("g1").await.expect("get g1"), None);
    assert_eq!(store.get_client_grant("g2").await.expect("get g2"), None);
    assert_eq!(store.find_client_grant("c1", "https://api-a").await.expect("find"), None);
    let c1 = GrantFilter { client_id: Some("c1".into()), audience: None };
    assert_eq!(store.list_client_grants(&c1, Page::new(0, 10)).await.expect("list c1").total, 0);
    let all = store.list_client_grants(&GrantFilter::default(), Page::new(0, 10)).await.expect("list all");
    assert_eq!(ids(&all, |g| &g.id), ["g3"]);
    assert!(store.get_client("c2").await.expect("get c2").is_some());
    // The pair is free again once the client is recreated.
    store.create_client(&client("c1", 10)).await.expect("recreate c1");
    store.create_client_grant(&grant("g4", "c1", "https://api-a", 10)).await.expect("grant again");
}

// --- client grants ---

pub async fn grants_crud(store: &dyn Store) {
    store.create_client(&client("c1", 1)).await.expect("create client");
    assert_eq!(store.get_client_grant("g1").await.expect("get missing"), None);
    let g = grant("g1", "c1", "https://api.example.com/", 5);
    store.create_client_grant(&g).await.expect("create");
    assert_eq!(store.get_client_grant("g1").await.expect("get"), Some(g.clone()));
    assert_eq!(store.find_client_grant("c1", "https://api.example.com/").await.expect("find"), Some(g.clone()));
    assert_eq!(store.find_client_grant("c1", "https://api.example.com").await.expect("find other"), None);
    assert_eq!(store.find_client_grant("c2", "https://api.example.com/").await.expect("find other client"), None);

    let mut changed = g.clone();
    changed.scope = vec!["read:logs".into()];
    store.update_client_grant(&changed).await.expect("update");
    assert_eq!(store.get_client_grant("g1").await.expect("get updated"), Some(changed.clone()));
    changed.scope = vec![];
    store.update_client_grant(&changed).await.expect("update to no scope");
    assert_eq!(store.get_client_grant("g1").await.expect("get emptied"), Some(changed));

    store.delete_client_grant("g1").await.expect("delete");
    assert_eq!(store.get_client_grant("g1").await.expect("get deleted"), None);
    assert!(store.get_client("c1").await.expect("client kept").is_some());
}

pub async fn grants_absent_is_not_found(store: &dyn Store) {
    store.create_client(&client("c1", 1)).await.expect("create client");
    assert_not_found(store.update_client_grant(&grant("ghost", "c1", "https://api", 1)).await);
    assert_not_found(store.delete_client_grant("ghost").await);
    assert_eq!(store.get_client_grant("ghost").await.expect("get"), None, "update must not insert");
}

pub async fn grants_unique_pair_conflicts(store: &dyn Store) {
    store.create_client(&client("c1", 1)).await.expect("create c1");
    store.create_client(&client("c2", 1)).await.expect("create c2");
    store.create_client_grant(&grant("g1", "c1", "https://api", 1)).await.expect("create");
    assert_conflict(store.create_client_grant(&grant("g2", "c1", "https://api", 2)).await, "client_id,audience");
    assert_eq!(store.get_client_grant("g2").await.expect("get"), None);
    // The same audience for another client, or another audience for the same client, is fine.
    store.create_client_grant(&grant("g3", "c2", "https://api", 3)).await.expect("other client");
    store.create_client_grant(&grant("g4", "c1", "https://other", 4)).await.expect("other audience");
    // Moving a grant onto a taken pair conflicts too.
    let mut moved = grant("g4", "c1", "https://api", 4);
    assert_conflict(store.update_client_grant(&moved).await, "client_id,audience");
    moved.audience = "https://third".into();
    store.update_client_grant(&moved).await.expect("move to a free pair");
    assert_eq!(store.find_client_grant("c1", "https://third").await.expect("find moved"), Some(moved));
}

pub async fn grants_filters_and_paging(store: &dyn Store) {
    store.create_client(&client("c1", 1)).await.expect("create c1");
    store.create_client(&client("c2", 1)).await.expect("create c2");
    for (id, client_id, audience, created) in [
        ("g5", "c2", "https://b", 5),
        ("g1", "c1", "https://a", 1),
        ("g3", "c1", "https://b", 3),
        ("g2", "c2", "https://a", 3),
        ("g4", "c1", "https://c", 4),
    ] {
        store.create_client_grant(&grant(id, client_id, audience, created)).await.expect("create");
    }
    let all = store.list_client_grants(&GrantFilter::default(), Page::new(0, 10)).await.expect("all");
    assert_eq!(ids(&all, |g| &g.id), ["g1", "g2", "g3", "g4", "g5"]);
    assert_eq!(all.total, 5);

    let by_client = GrantFilter { client_id: Some("c1".into()), audience: None };
    let listed = store.list_client_grants(&by_client, Page::new(0, 2)).await.expect("by client");
    assert_eq!(ids(&listed, |g| &g.id), ["g1", "g3"]);
    assert_eq!(listed.total, 3);
    let listed = store.list_client_grants(&by_client, Page::new(1, 2)).await.expect("by client, page 1");
    assert_eq!(ids(&listed, |g| &g.id), ["g4"]);
    assert_eq!(listed.total, 3);

    let by_audience = GrantFilter { client_id: None, audience: Some("https://b".into()) };
    let listed = store.list_client_grants(&by_audience, Page::new(0, 10)).await.expect("by audience");
    assert_eq!(ids(&listed, |g| &g.id), ["g3", "g5"]);
    assert_eq!(listed.total, 2);

    let both = GrantFilter { client_id: Some("c2".into()), audience: Some("https://a".into()) };
    let listed = store.list_client_grants(&both, Page::new(0, 10)).await.expect("both");
    assert_eq!(listed.items, [grant("g2", "c2", "https://a", 3)]);
    assert_eq!(listed.total, 1);

    let none = GrantFilter { client_id: Some("c3".into()), audience: None };
    let listed = store.list_client_grants(&none, Page::new(0, 10)).await.expect("no match");
    assert!(listed.items.is_empty());
    assert_eq!(listed.total, 0);
}

// --- users ---

pub async fn users_crud(store: &dyn Store) {
    assert_eq!(store.get_user("u1").await.expect("get missing"), None);
    let u = user("u1", Some("ada@example.com"), 1_000);
    store.create_user(&u).await.expect("create");
    assert_eq!(store.get_user("u1").await.expect("get"), Some(u.clone()));

    let mut changed = u.clone();
    changed.email = Some("ada@lovelace.example".into());
    changed.password_hash = None;
    changed.updated_at = ts(2_000);
    changed.profile.blocked = true;
    changed.profile.user_metadata.insert("lang".into(), json!("en"));
    store.update_user(&changed).await.expect("update");
    assert_eq!(store.get_user("u1").await.expect("get updated"), Some(changed.clone()));
    assert_eq!(store.get_user_by_email("ada@example.com").await.expect("old email"), None);
    assert_eq!(store.get_user_by_email("ada@lovelace.example").await.expect("new email"), Some(changed));

    // Users without an email are fine, and do not collide with each other.
    store.create_user(&user("u2", None, 2)).await.expect("no email");
    store.create_user(&user("u3", None, 3)).await.expect("no email either");
    assert_conflict(store.create_user(&user("u2", None, 4)).await, "user_id");

    store.delete_user("u1").await.expect("delete");
    assert_eq!(store.get_user("u1").await.expect("get deleted"), None);
    assert_eq!(store.list_users(&UserFilter::default(), Page::new(0, 10)).await.expect("list").total, 2);
}

pub async fn users_absent_is_not_found(store: &dyn Store) {
    assert_not_found(store.update_user(&user("ghost", Some("ghost@example.com"), 1)).await);
    assert_not_found(store.delete_user("ghost").await);
    assert_not_found(store.record_login("ghost", ts(1)).await);
    assert_eq!(store.get_user("ghost").await.expect("get"), None, "update must not insert");
}

pub async fn users_email_conflict_on_create(store: &dyn Store) {
    store.create_user(&user("u1", Some("same@example.com"), 1)).await.expect("create");
    assert_conflict(store.create_user(&user("u2", Some("same@example.com"), 2)).await, "email");
    assert_eq!(store.get_user("u2").await.expect("get"), None);
    store.create_user(&user("u3", Some("other@example.com"), 3)).await.expect("other email");
}

pub async fn users_email_conflict_on_update(store: &dyn Store) {
    store.create_user(&user("u1", Some("one@example.com"), 1)).await.expect("create u1");
    store.create_user(&user("u2", Some("two@example.com"), 2)).await.expect("create u2");
    let mut u2 = user("u2", Some("one@example.com"), 2);
    assert_conflict(store.update_user(&u2).await, "email");
    assert_eq!(store.get_user("u2").await.expect("get").and_then(|u| u.email), Some("two@example.com".into()));
    // Keeping one's own email, or dropping it, is not a conflict.
    u2.email = Some("two@example.com".into());
    u2.profile.name = Some("Two".into());
    store.update_user(&u2).await.expect("same email");
    u2.email = None;
    store.update_user(&u2).await.expect("no email");
    // And the freed email can be taken.
    let mut u1 = user("u1", Some("two@example.com"), 1);
    u1.updated_at = ts(5);
    store.update_user(&u1).await.expect("take freed email");
}

pub async fn users_get_by_email_and_filter(store: &dyn Store) {
    store.create_user(&user("u1", Some("a@example.com"), 1)).await.expect("create u1");
    store.create_user(&user("u2", Some("b@example.com"), 2)).await.expect("create u2");
    store.create_user(&user("u3", None, 3)).await.expect("create u3");
    assert_eq!(
        store.get_user_by_email("b@example.com").await.expect("by email"),
        Some(user("u2", Some("b@example.com"), 2))
    );
    assert_eq!(store.get_user_by_email("c@example.com").await.expect("unknown email"), None);

    let filter = UserFilter { email: Some("a@example.com".into()) };
    let listed = store.list_users(&filter, Page::new(0, 10)).await.expect("filtered");
    assert_eq!(ids(&listed, |u| &u.user_id), ["u1"]);
    assert_eq!(listed.total, 1);
    let filter = UserFilter { email: Some("nobody@example.com".into()) };
    let listed = store.list_users(&filter, Page::new(0, 10)).await.expect("no match");
    assert!(listed.items.is_empty());
    assert_eq!(listed.total, 0);
}

pub async fn users_paging_and_total(store: &dyn Store) {
    for (id, created) in [("u4", 4), ("u2", 2), ("u5", 2), ("u1", 1), ("u3", 3)] {
        store.create_user(&user(id, Some(&format!("{id}@example.com")), created)).await.expect("create");
    }
    let all = UserFilter::default();
    let page0 = store.list_users(&all, Page::new(0, 2)).await.expect("page 0");
    assert_eq!(ids(&page0, |u| &u.user_id), ["u1", "u2"]);
    assert_eq!(page0.total, 5);
    let page1 = store.list_users(&all, Page::new(1, 2)).await.expect("page 1");
    assert_eq!(ids(&page1, |u| &u.user_id), ["u5", "u3"]);
    let page2 = store.list_users(&all, Page::new(2, 2)).await.expect("page 2");
    assert_eq!(ids(&page2, |u| &u.user_id), ["u4"]);
    assert_eq!(page2.total, 5);
    let past = store.list_users(&all, Page::new(3, 2)).await.expect("past the end");
    assert!(past.items.is_empty());
    assert_eq!(past.total, 5);
}

pub async fn users_record_login_increments(store: &dyn Store) {
    store.create_user(&user("u1", Some("a@example.com"), 1)).await.expect("create");
    store.create_user(&user("u2", Some("b@example.com"), 1)).await.expect("create other");
    store.record_login("u1", ts(10_000)).await.expect("first login");
    let u = store.get_user("u1").await.expect("get").expect("exists");
    assert_eq!((u.logins_count, u.last_login), (1, Some(ts(10_000))));
    store.record_login("u1", ts(20_000)).await.expect("second login");
    store.record_login("u1", ts(30_000)).await.expect("third login");
    let u = store.get_user("u1").await.expect("get").expect("exists");
    assert_eq!((u.logins_count, u.last_login), (3, Some(ts(30_000))));
    assert_eq!(u.profile, user("u1", None, 1).profile, "the profile is untouched");
    let other = store.get_user("u2").await.expect("get other").expect("exists");
    assert_eq!((other.logins_count, other.last_login), (0, None));
}

// --- log events ---

pub async fn logs_insert_and_get(store: &dyn Store) {
    assert_eq!(store.get_log(&log_id(1)).await.expect("get missing"), None);
    let e = log(1, 1_700_000_000_000, "seccft", None);
    store.insert_log(&e).await.expect("insert");
    assert_eq!(store.get_log(&log_id(1)).await.expect("get"), Some(e));
    let mut bare = log(2, 1_700_000_000_001, "s", Some("u1"));
    bare.client_id = None;
    bare.body = LogBody::default();
    store.insert_log(&bare).await.expect("insert bare");
    assert_eq!(store.get_log(&log_id(2)).await.expect("get bare"), Some(bare));
    assert_conflict(store.insert_log(&log(1, 5, "f", None)).await, "log_id");
}

/// A batch (group commit) is stored whole, in one statement, and a batch with one conflicting id stores nothing.
pub async fn logs_insert_many_is_all_or_nothing(store: &dyn Store) {
    store.insert_logs(&[]).await.expect("an empty batch");
    let batch: Vec<LogEvent> = (1..=70).map(|n| log(n, 1_000 + i64::try_from(n).expect("small"), "s", None)).collect();
    store.insert_logs(&batch).await.expect("insert batch");
    for e in &batch {
        assert_eq!(store.get_log(&e.log_id).await.expect("get").as_ref(), Some(e));
    }
    let clash = vec![log(71, 5_000, "f", None), log(70, 5_001, "f", None), log(72, 5_002, "f", None)];
    assert_conflict(store.insert_logs(&clash).await, "log_id");
    assert_eq!(store.get_log(&log_id(71)).await.expect("get 71"), None, "nothing of a failed batch is stored");
    assert_eq!(store.get_log(&log_id(72)).await.expect("get 72"), None);
    assert_eq!(store.list_logs(&page_query(None, None, 0, 100)).await.expect("list").total, 70);
}

fn page_query(event_type: Option<&str>, user_id: Option<&str>, page: u32, per_page: u32) -> LogQuery {
    LogQuery {
        event_type: event_type.map(str::to_owned),
        user_id: user_id.map(str::to_owned),
        since: None,
        before: None,
        paging: LogPaging::Page(Page::new(page, per_page)),
    }
}

fn from_query(event_type: Option<&str>, user_id: Option<&str>, from: Option<u64>, take: u32) -> LogQuery {
    LogQuery {
        event_type: event_type.map(str::to_owned),
        user_id: user_id.map(str::to_owned),
        since: None,
        before: None,
        paging: LogPaging::From { from: from.map(log_id), take },
    }
}

fn log_numbers(listed: &Listed<LogEvent>) -> Vec<u64> {
    listed.items.iter().map(|e| e.log_id.parse().expect("numeric log id")).collect()
}

pub async fn logs_page_newest_first(store: &dyn Store) {
    // Inserted out of order; 3 and 4 share a date, so the id decides.
    for (n, date) in [(3, 300), (1, 100), (5, 500), (4, 300), (2, 200)] {
        store.insert_log(&log(n, date, "s", None)).await.expect("insert");
    }
    let page0 = store.list_logs(&page_query(None, None, 0, 2)).await.expect("page 0");
    assert_eq!(log_numbers(&page0), [5, 4]);
    assert_eq!(page0.total, 5);
    let page1 = store.list_logs(&page_query(None, None, 1, 2)).await.expect("page 1");
    assert_eq!(log_numbers(&page1), [3, 2]);
    let page2 = store.list_logs(&page_query(None, None, 2, 2)).await.expect("page 2");
    assert_eq!(log_numbers(&page2), [1]);
    assert_eq!(page2.total, 5);
    assert_eq!(page2.items[0], log(1, 100, "s", None), "the event comes back as stored");
    let past = store.list_logs(&page_query(None, None, 3, 2)).await.expect("past the end");
    assert!(past.items.is_empty());
    assert_eq!(past.total, 5);
}

pub async fn logs_checkpoint_oldest_first(store: &dyn Store) {
    for n in [4u64, 1, 6, 3, 5, 2] {
        store.insert_log(&log(n, 1_000 + i64::try_from(n).expect("small"), "s", None)).await.expect("insert");
    }
    let first = store.list_logs(&from_query(None, None, None, 4)).await.expect("from the start");
    assert_eq!(log_numbers(&first), [1, 2, 3, 4]);
    // `from` is exclusive, and the next call resumes after the last id seen.
    let next = store.list_logs(&from_query(None, None, Some(4), 4)).await.expect("after 4");
    assert_eq!(log_numbers(&next), [5, 6]);
    let after_last = store.list_logs(&from_query(None, None, Some(6), 4)).await.expect("after the last");
    assert!(after_last.items.is_empty());
    assert_eq!(after_last.total, 0);
    // An id between stored ones (e.g. one that has been deleted upstream) still works as a checkpoint.
    let mid = store.list_logs(&from_query(None, None, Some(0), 2)).await.expect("from 0");
    assert_eq!(log_numbers(&mid), [1, 2]);
    let all = store.list_logs(&from_query(None, None, None, 100)).await.expect("take more than there is");
    assert_eq!(log_numbers(&all), [1, 2, 3, 4, 5, 6]);
    assert_eq!(all.total, 6);
}

pub async fn logs_filters_and_totals(store: &dyn Store) {
    let events = [
        (1, "s", Some("u1")),
        (2, "f", Some("u1")),
        (3, "s", Some("u2")),
        (4, "seccft", None),
        (5, "s", Some("u1")),
        (6, "gd_send_sms", Some("u2")),
    ];
    for (n, event_type, user_id) in events {
        store.insert_log(&log(n, i64::try_from(n).expect("small") * 10, event_type, user_id)).await.expect("insert");
    }
    let by_type = store.list_logs(&page_query(Some("s"), None, 0, 10)).await.expect("by type");
    assert_eq!(log_numbers(&by_type), [5, 3, 1]);
    assert_eq!(by_type.total, 3);
    let by_user = store.list_logs(&page_query(None, Some("u1"), 0, 2)).await.expect("by user");
    assert_eq!(log_numbers(&by_user), [5, 2]);
    assert_eq!(by_user.total, 3);
    let both = store.list_logs(&page_query(Some("s"), Some("u2"), 0, 10)).await.expect("both");
    assert_eq!(log_numbers(&both), [3]);
    assert_eq!(both.total, 1);
    let none = store.list_logs(&page_query(Some("fp"), None, 0, 10)).await.expect("no match");
    assert!(none.items.is_empty());
    assert_eq!(none.total, 0);
    let all = store.list_logs(&page_query(None, None, 0, 10)).await.expect("all");
    assert_eq!(all.total, 6);

    // Filters apply to checkpoint paging too; its total counts what is after the checkpoint.
    let from = store.list_logs(&from_query(Some("s"), None, Some(1), 10)).await.expect("checkpoint by type");
    assert_eq!(log_numbers(&from), [3, 5]);
    assert_eq!(from.total, 2);
    let from = store.list_logs(&from_query(None, Some("u2"), None, 1)).await.expect("checkpoint by user");
    assert_eq!(log_numbers(&from), [3]);
    assert_eq!(from.total, 2);
}

pub async fn logs_date_range_is_half_open(store: &dyn Store) {
    for n in 1..=6u64 {
        let event_type = if n % 2 == 0 { "f" } else { "s" };
        store.insert_log(&log(n, i64::try_from(n).expect("small") * 100, event_type, None)).await.expect("insert");
    }
    let range = |q: LogQuery, since: Option<i64>, before: Option<i64>| LogQuery {
        since: since.map(ts),
        before: before.map(ts),
        ..q
    };
    // At or after 200, strictly before 500.
    let mid = store.list_logs(&range(page_query(None, None, 0, 10), Some(200), Some(500))).await.expect("range");
    assert_eq!(log_numbers(&mid), [4, 3, 2]);
    assert_eq!(mid.total, 3);
    let open_start = store.list_logs(&range(page_query(None, None, 0, 1), None, Some(300))).await.expect("to");
    assert_eq!(log_numbers(&open_start), [2]);
    assert_eq!(open_start.total, 2);
    let open_end = store.list_logs(&range(page_query(Some("f"), None, 0, 10), Some(401), None)).await.expect("from");
    assert_eq!(log_numbers(&open_end), [6]);
    assert_eq!(open_end.total, 1);
    let empty = store.list_logs(&range(page_query(None, None, 0, 10), Some(300), Some(300))).await.expect("empty");
    assert!(empty.items.is_empty());
    assert_eq!(empty.total, 0);
    // Checkpoint paging keeps the range.
    let from = store.list_logs(&range(from_query(None, None, Some(2), 10), Some(100), Some(600))).await.expect("cp");
    assert_eq!(log_numbers(&from), [3, 4, 5]);
    assert_eq!(from.total, 3);
}

// --- the phone factor: builders ---

fn enrollment(id: &str, user_id: &str, created: i64) -> Enrollment {
    Enrollment {
        id: id.to_owned(),
        user_id: user_id.to_owned(),
        kind: EnrollmentKind::Phone,
        status: EnrollmentStatus::Pending,
        phone_number: Some("+15555550100".into()),
        preferred_channel: Some(Channel::Sms),
        name: Some("Work phone".into()),
        secret_hash: None,
        created_at: ts(created),
        enrolled_at: None,
        last_auth: None,
    }
}

fn mfa_token(hash: &str, user_id: &str) -> MfaToken {
    MfaToken {
        token_hash: hash.to_owned(),
        user_id: user_id.to_owned(),
        client_id: "client-1".into(),
        audience: Some("https://api.example.com".into()),
        scope: "openid profile".into(),
        created_at: ts(1_000),
        expires_at: ts(301_000),
    }
}

fn challenge(id: &str, user_id: &str, enrollment_id: &str) -> Challenge {
    Challenge {
        id: id.to_owned(),
        user_id: user_id.to_owned(),
        enrollment_id: enrollment_id.to_owned(),
        channel: Channel::Sms,
        code_hash: format!("hmac-of-code-{id}"),
        mfa_token_hash: Some("mfa-token-hash".into()),
        created_at: ts(1_000),
        expires_at: ts(301_000),
        consumed_at: None,
    }
}

/// A pending job due at `run_at`, with a payload.
fn job(id: &str, run_at: i64) -> DeliveryJob {
    DeliveryJob {
        id: id.to_owned(),
        channel: Channel::Sms,
        user_id: Some("u1".into()),
        enrollment_id: Some("dev_1".into()),
        challenge_id: None,
        provider: "auth0".into(),
        payload: Some(Sealed {
            key_id: "k1".into(),
            nonce: vec![9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 255, 128],
            ciphertext: format!("sealed message for {id}").into_bytes(),
        }),
        status: JobStatus::Pending,
        attempts: 0,
        max_attempts: 5,
        run_at: ts(run_at),
        claimed_by: None,
        claim_expires_at: None,
        last_error: None,
        details: json!({}),
        created_at: ts(run_at),
        finished_at: None,
    }
}

fn dev_message(id: &str, to: &str, created: i64) -> DevMessage {
    DevMessage {
        id: id.to_owned(),
        to: to.to_owned(),
        channel: "sms".into(),
        text: format!("Your verification code is {id}"),
        created_at: ts(created),
    }
}

fn ticket(hash: &str, user_id: &str, expires: i64) -> EnrollmentTicket {
    EnrollmentTicket {
        ticket_hash: hash.to_owned(),
        user_id: user_id.to_owned(),
        created_at: ts(1_000),
        expires_at: ts(expires),
        used_at: None,
    }
}

/// A future borrowing the store.
type Task<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Drive futures concurrently on this task (the store is borrowed, so they cannot be spawned); each still holds
/// its own database connection, so the database sees them as concurrent clients.
async fn join_all<T>(futures: Vec<Task<'_, T>>) -> Vec<T> {
    let mut pending: Vec<Option<Task<'_, T>>> = futures.into_iter().map(Some).collect();
    let mut results: Vec<Option<T>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut busy = false;
        for (slot, result) in pending.iter_mut().zip(results.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => {
                        *result = Some(value);
                        *slot = None;
                    }
                    Poll::Pending => busy = true,
                }
            }
        }
        if busy { Poll::Pending } else { Poll::Ready(()) }
    })
    .await;
    results.into_iter().map(|r| r.expect("every future finished")).collect()
}

#[allow(clippy::disallowed_methods)] // measuring how long a wait took, not telling the time
fn stopwatch() -> std::time::Instant {
    std::time::Instant::now()
}

// --- MFA enrollments ---

pub async fn enrollments_crud(store: &dyn Store) {
    store.create_user(&user("u1", Some("a@example.com"), 1)).await.expect("create user");
    assert_eq!(store.get_enrollment("dev_1").await.expect("get missing"), None);
    let e = enrollment("dev_1", "u1", 1_000);
    store.create_enrollment(&e).await.expect("create");
    assert_eq!(store.get_enrollment("dev_1").await.expect("get"), Some(e.clone()));
    assert_conflict(store.create_enrollment(&enrollment("dev_1", "u1", 2_000)).await, "id");

    let mut confirmed = e.clone();
    confirmed.status = EnrollmentStatus::Confirmed;
    confirmed.preferred_channel = Some(Channel::Voice);
    confirmed.name = None;
    confirmed.enrolled_at = Some(ts(1_500));
    confirmed.last_auth = Some(ts(1_600));
    store.update_enrollment(&confirmed).await.expect("update");
    assert_eq!(store.get_enrollment("dev_1").await.expect("get updated"), Some(confirmed));

    // Recovery codes keep a hash and no phone.
    let recovery = Enrollment {
        kind: EnrollmentKind::RecoveryCode,
        status: EnrollmentStatus::Confirmed,
        phone_number: None,
        preferred_channel: None,
        name: None,
        secret_hash: Some("hash-of-recovery-code".into()),
        ..enrollment("dev_2", "u1", 2_000)
    };
    store.create_enrollment(&recovery).await.expect("create recovery code");
    assert_eq!(store.get_enrollment("dev_2").await.expect("get recovery"), Some(recovery));

    store.delete_enrollment("dev_1").await.expect("delete");
    assert_eq!(store.get_enrollment("dev_1").await.expect("get deleted"), None);
    assert_eq!(store.list_enrollments("u1").await.expect("list").len(), 1);
}

pub async fn enrollments_replace_is_all_or_nothing(store: &dyn Store) {
    store.create_user(&user("u1", Some("a@example.com"), 1)).await.expect("create user");
    for e in [enrollment("dev_a", "u1", 1_000), enrollment("dev_b", "u1", 1_001)] {
        store.create_enrollment(&e).await.expect("create phone");
    }
    let recovery =
        Enrollment { kind: EnrollmentKind::RecoveryCode, phone_number: None, ..enrollment("dev_r", "u1", 1_002) };
    store.create_enrollment(&recovery).await.expect("create recovery");
    let removed = store
        .replace_user_enrollments("u1", EnrollmentKind::Phone, &[enrollment("dev_c", "u1", 2_000)])
        .await
        .expect("replace");
    assert_eq!(removed, vec!["dev_a".to_owned(), "dev_b".to_owned()]);
    let ids = |l: Vec<Enrollment>| l.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(ids(store.list_enrollments("u1").await.expect("list")), vec!["dev_r", "dev_c"], "other kinds stay");
    // A failure halfway (the second new one clashes with an existing id) changes nothing.
    let clash = [enrollment("dev_d", "u1", 3_000), enrollment("dev_r", "u1", 3_001)];
    assert!(store.replace_user_enrollments("u1", EnrollmentKind::Phone, &clash).await.is_err());
    assert_eq!(ids(store.list_enrollments("u1").await.expect("list")), vec!["dev_r", "dev_c"]);
    // Replacing with nothing removes them all.
    assert_eq!(
        store.replace_user_enrollments("u1", EnrollmentKind::Phone, &[]).await.expect("clear"),
        vec!["dev_c".to_owned()]
    );
    assert_eq!(ids(store.list_enrollments("u1").await.expect("list")), vec!["dev_r"]);
}

pub async fn enrollments_absent_or_orphan(store: &dyn Store) {
    assert_not_found(store.update_enrollment(&enrollment("ghost", "u1", 1)).await);
    assert_not_found(store.delete_enrollment("ghost").await);
    assert_eq!(store.get_enrollment("ghost").await.expect("get"), None, "update must not insert");
    // The user must exist.
    match store.create_enrollment(&enrollment("dev_1", "nobody", 1)).await {
        Err(StoreError::Other(_)) => {}
        other => panic!("expected Other for a missing user, got {other:?}"),
    }
    assert_eq!(store.get_enrollment("dev_1").await.expect("get"), None);
    assert_eq!(store.delete_user_enrollments("nobody").await.expect("delete none"), 0);
}

pub async fn enrollments_list_oldest_first(store: &dyn Store) {
    store.create_user(&user("u1", Some("a@example.com"), 1)).await.expect("create u1");
    store.create_user(&user("u2", Some("b@example.com"), 1)).await.expect("create u2");
    // dev_c and dev_b share a millisecond (a phone and its recovery code): they keep the order they were stored in.
    for (id, user_id, created) in
        [("dev_c", "u1", 3_000), ("dev_a", "u1", 1_000), ("dev_x", "u2", 500), ("dev_b", "u1", 3_000)]
    {
        store.create_enrollment(&enrollment(id, user_id, created)).await.expect("create");
    }
    let listed = store.list_enrollments("u1").await.expect("list u1");
    let ids: Vec<&str> = listed.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["dev_a", "dev_c", "dev_b"]);
    assert_eq!(listed[0], enrollment("dev_a", "u1", 1_000), "comes back as stored");
    assert_eq!(store.list_enrollments("u2").await.expect("list u2").len(), 1);
    assert!(store.list_enrollments("u3").await.expect("list nobody").is_empty());
}

pub async fn enrollments_take_their_challenges_along(store: &dyn Store) {
    store.create_user(&user("u1", Some("a@example.com"), 1)).await.expect("create u1");
    store.create_user(&user("u2", Some("b@example.com"), 1)).await.expect("create u2");
    for (id, user_id) in [("dev_1", "u1"), ("dev_2", "u1"), ("dev_3", "u2")] {
        store.create_enrollment(&enrollment(id, user_id, 1)).await.expect("create enrollment");
    }
    for (id, user_id, enrollment_id) in [("c1", "u1", "dev_1"), ("c2", "u1", "dev_2"), ("c3", "u2", "dev_3")] {
        store.create_challenge(&challenge(id, user_id, enrollment_id), None).await.expect("create challenge");
    }
    store.delete_enrollment("dev_1").await.expect("delete one");
    assert_eq!(store.get_challenge("c1").await.expect("get c1"), None, "its challenge went with it");
    assert!(store.get_challenge("c2").await.expect("get c2").is_some(), "others stay");

    assert_eq!(store.delete_user_enrollments("u1").await.expect("delete u1's"), 1);
    assert!(store.list_enrollments("u1").await.expect("list u1").is_empty());
    assert_eq!(store.get_challenge("c2").await.expect("get c2"), None);
    assert!(store.get_enrollment("dev_3").await.expect("get dev_3").is_some(), "other users' stay");
    assert!(store.get_challenge("c3").await.expect("get c3").is_some());
}

pub async fn enrollments_cascade_on_user_delete(store: &dyn Store) {
    store.create_user(&user("u1", Some("a@example.com"), 1)).await.expect("create u1");
    store.create_user(&user("u2", Some("b@example.com"), 1)).await.expect("create u2");
    store.create_enrollment(&enrollment("dev_1", "u1", 1)).await.expect("create dev_1");
    store.create_enrollment(&enrollment("dev_2", "u2", 1)).await.expect("create dev_2");
    store.create_challenge(&challenge("c1", "u1", "dev_1"), None).await.expect("create c1");
    store.delete_user("u1").await.expect("delete user");
    assert_eq!(store.get_enrollment("dev_1").await.expect("get dev_1"), None);
    assert_eq!(store.get_challenge("c1").await.expect("get c1"), None);
    assert!(store.get_enrollment("dev_2").await.expect("get dev_2").is_some());
}

pub async fn phone_enrollments_start_and_confirm_one_at_a_time(store: &dyn Store) {
    store.create_user(&user("u1", Some("a@example.com"), 1)).await.expect("create user");
    let phone = |id: &str| enrollment(id, "u1", 10);
    let recovery = |id: &str| Enrollment {
        kind: EnrollmentKind::RecoveryCode,
        phone_number: None,
        preferred_channel: None,
        name: None,
        secret_hash: Some(format!("hash-{id}")),
        ..enrollment(id, "u1", 10)
    };
    let challenge_for = |id: &str, e: &str| challenge(id, "u1", e);
    let job_for = |id: &str| job(id, 1_000);
    // A start replaces what an earlier start left pending, challenges included.
    assert!(
        store
            .begin_phone_enrollment(&phone("p1"), Some(&recovery("r1")), &challenge_for("c1", "p1"), &job_for("j1"))
            .await
            .expect("begin p1")
    );
    assert!(
        store
            .begin_phone_enrollment(&phone("p2"), Some(&recovery("r2")), &challenge_for("c2", "p2"), &job_for("j2"))
            .await
            .expect("begin p2")
    );
    let ids: Vec<String> = store.list_enrollments("u1").await.expect("list").into_iter().map(|e| e.id).collect();
    assert_eq!(ids, ["p2", "r2"]);
    assert_eq!(store.get_challenge("c1").await.expect("get c1"), None);
    assert!(store.get_challenge("c2").await.expect("get c2").is_some());
    assert_eq!(store.list_jobs(None, 10).await.expect("jobs").len(), 2, "queued messages stay queued");

    // Confirming: only a pending phone, with its recovery code.
    assert!(!store.confirm_phone_enrollment("u1", "p1", ts(20)).await.expect("replaced one"));
    assert!(!store.confirm_phone_enrollment("u2", "p2", ts(20)).await.expect("another user's"));
    assert!(store.confirm_phone_enrollment("u1", "p2", ts(20)).await.expect("confirm"));
    let all = store.list_enrollments("u1").await.expect("list");
    assert!(all.iter().all(|e| e.status == EnrollmentStatus::Confirmed && e.enrolled_at == Some(ts(20))), "{all:?}");
    assert_eq!(all[0].last_auth, Some(ts(20)));
    assert!(!store.confirm_phone_enrollment("u1", "p2", ts(21)).await.expect("again"));

    // With a confirmed phone, a start writes nothing.
    assert!(
        !store
            .begin_phone_enrollment(&phone("p3"), None, &challenge_for("c3", "p3"), &job_for("j3"))
            .await
            .expect("begin p3")
    );
    assert_eq!(store.list_enrollments("u1").await.expect("list").len(), 2);
    assert_eq!(store.get_challenge("c3").await.expect("get c3"), None);
    assert_eq!(store.get_job("j3").await.expect("get j3"), None);

    // Two phones pending at once (made directly): racing confirmations, exactly one wins.
    store.create_user(&user("u2", Some("b@example.com"), 1)).await.expect("create u2");
    for id in ["q1", "q2", "q3", "q4"] {
        store.create_enrollment(&enrollment(id, "u2", 10)).await.expect("create pending");
    }
    let racers: Vec<Task<'_, StoreResult<bool>>> = ["q1", "q2", "q3", "q4"]
        .iter()
        .map(|id| Box::pin(store.confirm_phone_enrollment("u2", id, ts(30))) as Task<'_, _>)
        .collect();
    let wins = join_all(racers).await.into_iter().filter(|r| *r.as_ref().expect("confirm")).count();
    assert_eq!(wins, 1);
    let confirmed = store
        .list_enrollments("u2")
        .await
        .expect("list")
        .iter()
        .filter(|e| e.status == EnrollmentStatus::Confirmed)
        .count();
    assert_eq!(confirmed, 1);

    // Racing starts: each replaces the one before, so one pending phone is left.
    store.create_user(&user("u3", Some("c@example.com"), 1)).await.expect("create u3");
    let phones: Vec<Enrollment> = (0..6).map(|i| enrollment(&format!("s{i}"), "u3", 10)).collect();
    let challenges: Vec<Challenge> = (0..6).map(|i| challenge(&format!("sc{i}"), "u3", &format!("s{i}"))).collect();
    let jobs: Vec<DeliveryJob> = (0..6).map(|i| job(&format!("sj{i}"), 1_000)).collect();
    let racers: Vec<Task<'_, StoreResult<bool>>> = (0..6)
        .map(|i| Box::pin(store.begin_phone_enrollment(&phones[i], None, &challenges[i], &jobs[i])) as Task<'_, _>)
        .collect();
    for r in join_all(racers).await {
        assert!(r.expect("begin"));
    }
    let left = store.list_enrollments("u3").await.expect("list");
    assert_eq!(left.len(), 1, "{left:?}");
}

pub async fn recovery_codes_are_spent_once(store: &dyn Store) {
    store.create_user(&user("u1", Some("a@example.com"), 1)).await.expect("create user");
    let rc = Enrollment {
        kind: EnrollmentKind::RecoveryCode,
        status: EnrollmentStatus::Confirmed,
        phone_number: None,
        preferred_channel: None,
        name: None,
        secret_hash: Some("hash-0".into()),
        ..enrollment("rc_1", "u1", 1)
    };
    store.create_enrollment(&rc).await.expect("create");
    assert!(!store.spend_recovery_code("rc_1", "wrong", "hash-x", None, ts(2_000)).await.expect("wrong hash"));
    assert!(store.spend_recovery_code("rc_1", "hash-0", "hash-1", None, ts(2_000)).await.expect("spend"));
    let got = store.get_enrollment("rc_1").await.expect("get").expect("exists");
    assert_eq!((got.secret_hash.as_deref(), got.last_auth), (Some("hash-1"), Some(ts(2_000))));
    assert!(!store.spend_recovery_code("rc_1", "hash-0", "hash-2", None, ts(3_000)).await.expect("spent code"));
    assert!(!store.spend_recovery_code("ghost", "hash-1", "hash-2", None, ts(3_000)).await.expect("unknown"));
    // Only a confirmed recovery code: not a pending one, not a phone.
    let pending = Enrollment { id: "rc_2".into(), status: EnrollmentStatus::Pending, ..rc.clone() };
    store.create_enrollment(&pending).await.expect("create pending");
    assert!(!store.spend_recovery_code("rc_2", "hash-0", "hash-9", None, ts(3_000)).await.expect("pending"));
    let phone = Enrollment {
        secret_hash: Some("p".into()),
        status: EnrollmentStatus::Confirmed,
        ..enrollment("dev_1", "u1", 1)
    };
    store.create_enrollment(&phone).await.expect("create phone");
    assert!(!store.spend_recovery_code("dev_1", "p", "q", None, ts(3_000)).await.expect("a phone"));

    // With an mfa_token: both are spent, or neither.
    store.insert_mfa_token(&mfa_token("t1", "u1")).await.expect("insert token");
    assert!(!store.spend_recovery_code("rc_1", "wrong", "hash-2", Some("t1"), ts(4_000)).await.expect("wrong"));
    assert!(store.get_mfa_token("t1").await.expect("get token").is_some(), "a wrong code leaves the token");
    assert!(store.spend_recovery_code("rc_1", "hash-1", "hash-2", Some("t1"), ts(4_000)).await.expect("spend"));
    assert_eq!(store.get_mfa_token("t1").await.expect("get token"), None);
    assert!(!store.spend_recovery_code("rc_1", "hash-2", "hash-3", Some("t1"), ts(4_001)).await.expect("no token"));
    let kept = store.get_enrollment("rc_1").await.expect("get").and_then(|e| e.secret_hash);
    assert_eq!(kept.as_deref(), Some("hash-2"), "a spent token leaves the code as it was");

    // Racing spenders of one code (each with its own token): exactly one wins.
    let tokens: Vec<String> = (0..8).map(|i| format!("rt{i}")).collect();
    for t in &tokens {
        store.insert_mfa_token(&mfa_token(t, "u1")).await.expect("insert racer token");
    }
    let news: Vec<String> = (0..8).map(|i| format!("new-{i}")).collect();
    let racers: Vec<Task<'_, StoreResult<bool>>> = tokens
        .iter()
        .zip(&news)
        .map(|(t, n)| Box::pin(store.spend_recovery_code("rc_1", "hash-2", n, Some(t), ts(5_000))) as Task<'_, _>)
        .collect();
    let results: Vec<bool> = join_all(racers).await.into_iter().map(|r| r.expect("spend")).collect();
    assert_eq!(results.iter().filter(|w| **w).count(), 1, "{results:?}");
    let winner = results.iter().position(|w| *w).expect("one winner");
    let now = store.get_enrollment("rc_1").await.expect("get").and_then(|e| e.secret_hash);
    assert_eq!(now.as_deref(), Some(news[winner].as_str()));
    let mut left = 0;
    for t in &tokens {
        left += usize::from(store.get_mfa_token(t).await.expect("get").is_some());
    }
    assert_eq!(left, 7, "only the winner's token is spent");
}

// --- mfa_tokens ---

pub async fn mfa_tokens_roundtrip(store: &dyn Store) {
    assert_eq!(store.get_mfa_token("h1").await.expect("get missing"), None);
    let t = mfa_token("h1", "u1");
    store.insert_mfa_token(&t).await.expect("insert");
    assert_eq!(store.get_mfa_token("h1").await.expect("get"), Some(t));
    assert_conflict(store.insert_mfa_token(&mfa_token("h1", "u2")).await, "token_hash");
    let bare = MfaToken { audience: None, scope: String::new(), ..mfa_token("h2", "u1") };
    store.insert_mfa_token(&bare).await.expect("insert bare");
    assert_eq!(store.get_mfa_token("h2").await.expect("get bare"), Some(bare));
    store.delete_mfa_token("h1").await.expect("delete");
    assert_eq!(store.get_mfa_token("h1").await.expect("get deleted"), None);
    store.delete_mfa_token("h1").await.expect("delete absent");
    assert!(store.get_mfa_token("h2").await.expect("get kept").is_some());
}

// --- challenges ---

pub async fn challenges_with_job_in_one_transaction(store: &dyn Store) {
    store.create_user(&user("u1", Some("a@example.com"), 1)).await.expect("create user");
    store.create_enrollment(&enrollment("dev_1", "u1", 1)).await.expect("create enrollment");
    assert_eq!(store.get_challenge("c1").await.expect("get missing"), None);

    let c = challenge("c1", "u1", "dev_1");
    let j = DeliveryJob { challenge_id: Some("c1".into()), ..job("j1", 1_000) };
    store.create_challenge(&c, Some(&j)).await.expect("create with job");
    assert_eq!(store.get_challenge("c1").await.expect("get"), Some(c));
    assert_eq!(store.get_job("j1").await.expect("get job"), Some(j));

    // A job that cannot be inserted takes its challenge down with it.
    let dup = job("j1", 2_000);
    assert_conflict(store.create_challenge(&challenge("c2", "u1", "dev_1"), Some(&dup)).await, "id");
    assert_eq!(store.get_challenge("c2").await.expect("get c2"), None, "rolled back");
    assert_eq!(store.get_job("j1").await.expect("get job").map(|j| j.run_at), Some(ts(1_000)));

    // And a challenge without a job is fine (e.g. a recovery code needs no message).
    let bare = Challenge { mfa_token_hash: None, ..challenge("c3", "u1", "dev_1") };
    store.create_challenge(&bare, None).await.expect("create without job");
    assert_eq!(store.get_challenge("c3").await.expect("get c3"), Some(bare));
    assert_eq!(store.list_jobs(None, 10).await.expect("list").len(), 1);
}

pub async fn challenges_consume_once(store: &dyn Store) {
    store.create_user(&user("u1", Some("a@example.com"), 1)).await.expect("create user");
    store.create_enrollment(&enrollment("dev_1", "u1", 1)).await.expect("create enrollment");
    store.create_challenge(&challenge("c1", "u1", "dev_1"), None).await.expect("create");
    assert!(store.consume_challenge("c1", None, ts(5_000)).await.expect("first consume"));
    assert!(!store.consume_challenge("c1", None, ts(6_000)).await.expect("second consume"));
    assert_eq!(store.get_challenge("c1").await.expect("get").and_then(|c| c.consumed_at), Some(ts(5_000)));
    assert!(!store.consume_challenge("ghost", None, ts(5_000)).await.expect("unknown"));

    // Racing consumers: exactly one wins.
    store.create_challenge(&challenge("c2", "u1", "dev_1"), None).await.expect("create c2");
    let racers: Vec<Task<'_, StoreResult<bool>>> =
        (0..8).map(|i| Box::pin(store.consume_challenge("c2", None, ts(7_000 + i))) as Task<'_, _>).collect();
    let wins = join_all(racers).await.into_iter().filter(|r| *r.as_ref().expect("consume")).count();
    assert_eq!(wins, 1);
}

pub async fn challenges_expire_and_spend_their_mfa_token_once(store: &dyn Store) {
    store.create_user(&user("u1", Some("a@example.com"), 1)).await.expect("create user");
    store.create_enrollment(&enrollment("dev_1", "u1", 1)).await.expect("create enrollment");
    // Expiry is exclusive, and checked by the spend itself.
    store.create_challenge(&challenge("old", "u1", "dev_1"), None).await.expect("create old");
    assert!(!store.consume_challenge("old", None, ts(301_000)).await.expect("at expiry"));
    assert_eq!(store.get_challenge("old").await.expect("get").and_then(|c| c.consumed_at), None);
    assert!(store.consume_challenge("old", None, ts(300_999)).await.expect("just before"));

    // Several challenges issued on one mfa_token: the token is spent by the first grant; a second grant naming
    // another challenge gets false, and its challenge stays unspent.
    store.insert_mfa_token(&mfa_token("t1", "u1")).await.expect("insert token");
    for id in ["a", "b"] {
        store.create_challenge(&challenge(id, "u1", "dev_1"), None).await.expect("create");
    }
    assert!(store.consume_challenge("a", Some("t1"), ts(5_000)).await.expect("a"));
    assert_eq!(store.get_mfa_token("t1").await.expect("get token"), None, "the token is spent with it");
    assert!(!store.consume_challenge("b", Some("t1"), ts(5_001)).await.expect("b"));
    assert_eq!(store.get_challenge("b").await.expect("get b").and_then(|c| c.consumed_at), None, "rolled back");
    // An expired token is not spent either.
    store.insert_mfa_token(&mfa_token("t2", "u1")).await.expect("insert t2");
    assert!(!store.consume_challenge("b", Some("t2"), ts(301_000)).await.expect("expired token"));
    assert!(store.get_mfa_token("t2").await.expect("get t2").is_some());

    // Racing grants, each with its own challenge of the same token: exactly one wins.
    store.insert_mfa_token(&mfa_token("t3", "u1")).await.expect("insert t3");
    let ids: Vec<String> = (0..8).map(|i| format!("r{i}")).collect();
    for id in &ids {
        store.create_challenge(&challenge(id, "u1", "dev_1"), None).await.expect("create racer");
    }
    let racers: Vec<Task<'_, StoreResult<bool>>> =
        ids.iter().map(|id| Box::pin(store.consume_challenge(id, Some("t3"), ts(9_000))) as Task<'_, _>).collect();
    let wins = join_all(racers).await.into_iter().filter(|r| *r.as_ref().expect("consume")).count();
    assert_eq!(wins, 1);
    let mut consumed = 0;
    for id in &ids {
        consumed += usize::from(store.get_challenge(id).await.expect("get").and_then(|c| c.consumed_at).is_some());
    }
    assert_eq!(consumed, 1, "the losers' challenges are untouched");
}

// --- the delivery outbox ---

pub async fn jobs_enqueue_get_and_list(store: &dyn Store) {
    assert_eq!(store.get_job("j1").await.expect("get missing"), None);
    assert!(store.list_jobs(None, 10).await.expect("empty").is_empty());
    for (id, at) in [("j3", 3_000), ("j1", 1_000), ("j2", 2_000)] {
        store.enqueue_job(&job(id, at)).await.expect("enqueue");
    }
    let bare = DeliveryJob {
        user_id: None,
        enrollment_id: None,
        payload: None,
        status: JobStatus::Failed,
        last_error: Some("boom".into()),
        details: json!({"code": 21211, "more": [1, 2]}),
        finished_at: Some(ts(4_500)),
        ..job("j4", 4_000)
    };
    store.enqueue_job(&bare).await.expect("enqueue bare");
    assert_eq!(store.get_job("j4").await.expect("get bare"), Some(bare));
    assert_eq!(store.get_job("j1").await.expect("get"), Some(job("j1", 1_000)));
    assert_conflict(store.enqueue_job(&job("j1", 9_000)).await, "id");

    let all: Vec<String> = store.list_jobs(None, 10).await.expect("list").into_iter().map(|j| j.id).collect();
    assert_eq!(all, ["j1", "j2", "j3", "j4"], "oldest first");
    let two: Vec<String> = store.list_jobs(None, 2).await.expect("list 2").into_iter().map(|j| j.id).collect();
    assert_eq!(two, ["j1", "j2"]);
    let failed: Vec<String> =
        store.list_jobs(Some(JobStatus::Failed), 10).await.expect("failed").into_iter().map(|j| j.id).collect();
    assert_eq!(failed, ["j4"]);
    assert!(store.list_jobs(Some(JobStatus::Sent), 10).await.expect("sent").is_empty());
}

pub async fn jobs_claim_only_due_ones(store: &dyn Store) {
    for (id, at) in [("late", 10_000), ("b", 200), ("a", 100), ("c", 200)] {
        store.enqueue_job(&job(id, at)).await.expect("enqueue");
    }
    let claimed = store.claim_jobs("w1", ts(500), 30_000, 2).await.expect("claim");
    let ids: Vec<&str> = claimed.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"], "oldest run_at first, at most the limit");
    for j in &claimed {
        assert_eq!(j.status, JobStatus::Running);
        assert_eq!(j.attempts, 1);
        assert_eq!(j.claimed_by.as_deref(), Some("w1"));
        assert_eq!(j.claim_expires_at, Some(ts(30_500)));
        assert!(j.payload.is_some(), "the worker gets the payload");
    }
    assert_eq!(store.get_job("a").await.expect("get a").map(|j| j.status), Some(JobStatus::Running));

    let next = store.claim_jobs("w2", ts(500), 30_000, 10).await.expect("claim the rest");
    assert_eq!(next.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["c"]);
    assert!(store.claim_jobs("w3", ts(500), 30_000, 10).await.expect("nothing due").is_empty());
    // The late one once it is due; the claimed ones are not handed out again while their claims last.
    let late = store.claim_jobs("w3", ts(10_000), 30_000, 10).await.expect("claim late");
    assert_eq!(late.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["late"]);
    assert_eq!(store.list_jobs(Some(JobStatus::Running), 10).await.expect("running").len(), 4);
    assert!(store.list_jobs(Some(JobStatus::Pending), 10).await.expect("pending").is_empty());
}

pub async fn jobs_stale_claims_are_reclaimed(store: &dyn Store) {
    store.enqueue_job(&job("j1", 100)).await.expect("enqueue");
    let first = store.claim_jobs("w1", ts(100), 1_000, 10).await.expect("claim");
    assert_eq!(first.len(), 1);
    assert!(store.claim_jobs("w2", ts(1_100), 1_000, 10).await.expect("claim at expiry").is_empty());
    // w1 crashed: once its claim has expired, another worker takes the job over.
    let second = store.claim_jobs("w2", ts(1_101), 1_000, 10).await.expect("reclaim");
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].claimed_by.as_deref(), Some("w2"));
    assert_eq!(second[0].attempts, 2);
    assert_eq!(second[0].claim_expires_at, Some(ts(2_101)));
    // w1's late answer no longer counts; w2's does.
    let sent = JobOutcome::Sent { details: json!({"sid": "SM1"}) };
    assert!(!store.finish_job("j1", "w1", &sent, ts(1_200)).await.expect("finish by the old worker"));
    assert_eq!(store.get_job("j1").await.expect("get").map(|j| j.status), Some(JobStatus::Running));
    assert!(store.finish_job("j1", "w2", &sent, ts(1_200)).await.expect("finish by the owner"));
}

pub async fn jobs_renew_extends_only_own_running_claims(store: &dyn Store) {
    for (id, at) in [("a", 100), ("b", 100), ("d", 100), ("c", 200), ("idle", 10_000)] {
        store.enqueue_job(&job(id, at)).await.expect("enqueue");
    }
    assert_eq!(store.claim_jobs("w1", ts(100), 1_000, 10).await.expect("w1 claims").len(), 3, "a, b, d");
    let sent = JobOutcome::Sent { details: json!({"sid": "SM1"}) };
    assert!(store.finish_job("d", "w1", &sent, ts(150)).await.expect("finish d"));
    assert_eq!(store.claim_jobs("w2", ts(200), 1_000, 10).await.expect("w2 claims").len(), 1, "c");
    let before_d = store.get_job("d").await.expect("get d");

    // w1's heartbeat: its two running jobs, nothing else.
    assert_eq!(store.renew_claims("w1", ts(900), 1_000).await.expect("renew w1"), 2);
    for id in ["a", "b"] {
        let j = store.get_job(id).await.expect("get").expect("kept");
        assert_eq!((j.status.as_str(), j.claimed_by.as_deref()), ("running", Some("w1")));
        assert_eq!(j.claim_expires_at, Some(ts(1_900)), "{id}: now + lease");
        assert_eq!(j.attempts, 1, "renewing is not claiming again");
    }
    let c = store.get_job("c").await.expect("get c").expect("kept");
    assert_eq!((c.claimed_by.as_deref(), c.claim_expires_at), (Some("w2"), Some(ts(1_200))), "another's claim");
    assert_eq!(store.get_job("d").await.expect("get d"), before_d, "a finished job is untouched");
    assert_eq!(store.get_job("idle").await.expect("get idle"), Some(job("idle", 10_000)), "a pending job too");
    assert_eq!(store.renew_claims("nobody", ts(900), 1_000).await.expect("renew nobody"), 0);

    // Past the old expiry (1 100) only w2's lapsed claim is taken over; w1's renewed ones hold.
    let taken = store.claim_jobs("w3", ts(1_500), 1_000, 10).await.expect("takeover");
    assert_eq!(taken.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["c"]);
    assert_eq!(store.renew_claims("w2", ts(1_500), 1_000).await.expect("renew w2"), 0, "w2 lost c");
    // A renewed lease still ends: once it lapses without another renewal, the jobs come back.
    let back = store.claim_jobs("w3", ts(1_901), 1_000, 10).await.expect("after the renewed lease");
    assert_eq!(back.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert!(back.iter().all(|j| j.attempts == 2 && j.claimed_by.as_deref() == Some("w3")));
    assert!(!store.finish_job("a", "w1", &sent, ts(2_000)).await.expect("w1 too late"));
}

pub async fn jobs_finish_sent_and_failed_erase_the_payload(store: &dyn Store) {
    store.enqueue_job(&job("ok", 100)).await.expect("enqueue ok");
    store.enqueue_job(&job("ko", 100)).await.expect("enqueue ko");
    store.enqueue_job(&job("idle", 100_000)).await.expect("enqueue idle");
    assert_eq!(store.claim_jobs("w1", ts(100), 30_000, 10).await.expect("claim").len(), 2);

    let sent = JobOutcome::Sent { details: json!({"sid": "SM123", "segments": 1}) };
    assert!(!store.finish_job("ok", "w2", &sent, ts(200)).await.expect("wrong worker"));
    assert!(store.finish_job("ok", "w1", &sent, ts(200)).await.expect("sent"));
    let ok = store.get_job("ok").await.expect("get ok").expect("kept");
    assert_eq!(ok.status, JobStatus::Sent);
    assert_eq!(ok.payload, None, "payload erased");
    assert_eq!(ok.details, json!({"sid": "SM123", "segments": 1}));
    assert_eq!(ok.finished_at, Some(ts(200)));
    assert_eq!(ok.attempts, 1);
    assert!(!store.finish_job("ok", "w1", &sent, ts(300)).await.expect("twice"), "already finished");

    let failed = JobOutcome::Failed { error: "invalid number".into(), details: json!({"code": 21211}) };
    assert!(store.finish_job("ko", "w1", &failed, ts(250)).await.expect("failed"));
    let ko = store.get_job("ko").await.expect("get ko").expect("kept");
    assert_eq!(ko.status, JobStatus::Failed);
    assert_eq!(ko.payload, None, "payload erased");
    assert_eq!(ko.last_error.as_deref(), Some("invalid number"));
    assert_eq!(ko.details, json!({"code": 21211}));
    assert_eq!(ko.finished_at, Some(ts(250)));

    // Finished jobs are never claimed again; unclaimed ones cannot be finished.
    assert!(store.claim_jobs("w3", ts(99_999), 30_000, 10).await.expect("claim").is_empty());
    assert!(!store.finish_job("idle", "w1", &sent, ts(300)).await.expect("pending job"));
    assert!(!store.finish_job("ghost", "w1", &sent, ts(300)).await.expect("unknown job"));
    assert_eq!(store.get_job("idle").await.expect("get idle"), Some(job("idle", 100_000)), "untouched");
}

pub async fn jobs_record_receipts_in_their_details(store: &dyn Store) {
    let r = json!({"provider": "example-sms", "status": "sent"});
    assert!(!store.record_job_receipt("ghost", &r, ts(100)).await.expect("unknown job"), "no such job");

    // A receipt may come while the job is still pending (details `null` or an object) or after it finished.
    let bare = DeliveryJob { details: serde_json::Value::Null, ..job("bare", 100) };
    store.enqueue_job(&bare).await.expect("enqueue bare");
    assert!(store.record_job_receipt("bare", &r, ts(150)).await.expect("receipt on null details"));
    let got = store.get_job("bare").await.expect("get bare").expect("kept");
    assert_eq!(
        got.details,
        json!({"receipts": [{"provider": "example-sms", "status": "sent", "received_at": ts(150).to_rfc3339()}]})
    );
    assert_eq!((got.status.as_str(), got.payload), ("pending", bare.payload), "nothing else changes");

    store.enqueue_job(&job("j1", 100)).await.expect("enqueue");
    assert_eq!(store.claim_jobs("w1", ts(100), 30_000, 10).await.expect("claim").len(), 2);
    let sent = JobOutcome::Sent { details: json!({"provider": "example-sms", "provider_response": {"sid": "SM1"}}) };
    assert!(store.finish_job("j1", "w1", &sent, ts(200)).await.expect("sent"));
    let delivered = json!({"status": "delivered", "error_code": null, "received_at": "2026-01-01T00:00:00Z"});
    assert!(store.record_job_receipt("j1", &r, ts(300)).await.expect("first receipt"));
    assert!(store.record_job_receipt("j1", &delivered, ts(400)).await.expect("second receipt"));
    let j = store.get_job("j1").await.expect("get").expect("kept");
    assert_eq!(j.status, JobStatus::Sent);
    assert_eq!(j.finished_at, Some(ts(200)));
    assert_eq!(j.details["provider_response"], json!({"sid": "SM1"}), "earlier details are kept");
    assert_eq!(
        j.details["receipts"],
        json!([
            {"provider": "example-sms", "status": "sent", "received_at": ts(300).to_rfc3339()},
            {"status": "delivered", "error_code": null, "received_at": "2026-01-01T00:00:00Z"},
        ]),
        "appended in order; a receipt's own received_at is kept"
    );
}

pub async fn jobs_retry_waits_for_its_time(store: &dyn Store) {
    store.enqueue_job(&job("j1", 100)).await.expect("enqueue");
    assert_eq!(store.claim_jobs("w1", ts(100), 30_000, 10).await.expect("claim").len(), 1);
    let retry = JobOutcome::Retry { error: "provider timeout".into(), run_at: ts(5_000) };
    assert!(!store.finish_job("j1", "w2", &retry, ts(200)).await.expect("wrong worker"));
    assert!(store.finish_job("j1", "w1", &retry, ts(200)).await.expect("retry"));
    let j = store.get_job("j1").await.expect("get").expect("kept");
    assert_eq!(j.status, JobStatus::Pending);
    assert_eq!(j.run_at, ts(5_000));
    assert_eq!(j.last_error.as_deref(), Some("provider timeout"));
    assert_eq!((j.claimed_by, j.claim_expires_at, j.finished_at), (None, None, None));
    assert_eq!(j.payload, job("j1", 100).payload, "payload kept for the next attempt");
    assert_eq!(j.attempts, 1);

    assert!(store.claim_jobs("w2", ts(4_999), 30_000, 10).await.expect("too early").is_empty());
    let again = store.claim_jobs("w2", ts(5_000), 30_000, 10).await.expect("due again");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    assert_eq!(again[0].last_error.as_deref(), Some("provider timeout"), "the last error stays visible");
    assert!(!store.finish_job("j1", "w1", &retry, ts(5_100)).await.expect("old worker"), "w1 lost it");
}

pub async fn jobs_concurrent_claims_hand_out_each_job_once(store: &dyn Store) {
    const JOBS: usize = 40;
    for n in 0..JOBS {
        store.enqueue_job(&job(&format!("job-{n:02}"), 1_000 + (n % 7) as i64)).await.expect("enqueue");
    }
    let worker = |name: String| async move {
        let mut mine = Vec::new();
        loop {
            let claimed = store.claim_jobs(&name, ts(10_000), 60_000, 3).await.expect("claim");
            if claimed.is_empty() {
                return mine;
            }
            for j in claimed {
                assert_eq!(j.claimed_by.as_deref(), Some(name.as_str()));
                mine.push(j.id);
            }
            tokio::task::yield_now().await;
        }
    };
    let workers: Vec<Task<'_, Vec<String>>> =
        (0..4).map(|w| Box::pin(worker(format!("worker-{w}"))) as Task<'_, _>).collect();
    let mut all: Vec<String> = join_all(workers).await.into_iter().flatten().collect();
    assert_eq!(all.len(), JOBS, "every job claimed exactly once, no more: {all:?}");
    all.sort();
    all.dedup();
    assert_eq!(all.len(), JOBS, "no job handed to two workers");
    for j in store.list_jobs(None, 100).await.expect("list") {
        assert_eq!((j.status.as_str(), j.attempts), ("running", 1), "{}", j.id);
    }
}

pub async fn jobs_wait_wakes_on_enqueue(store: &dyn Store) {
    // Nothing happens: the wait lasts about its maximum.
    let started = stopwatch();
    store.wait_for_jobs(300).await;
    let idle = started.elapsed();
    assert!(idle >= Duration::from_millis(250), "returned early when nothing happened: {idle:?}");
    assert!(idle < Duration::from_secs(5), "overslept: {idle:?}");

    // A job enqueued meanwhile (by another task) ends the wait well before its maximum.
    let started = stopwatch();
    let enqueue = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        store.enqueue_job(&job("j1", 1)).await.expect("enqueue");
    };
    let ((), waited) = tokio::join!(enqueue, async {
        store.wait_for_jobs(10_000).await;
        started.elapsed()
    });
    assert!(waited < Duration::from_secs(2), "not woken by enqueue_job: {waited:?}");

    // So does a challenge with its job.
    store.create_user(&user("u1", Some("a@example.com"), 1)).await.expect("create user");
    store.create_enrollment(&enrollment("dev_1", "u1", 1)).await.expect("create enrollment");
    let started = stopwatch();
    let create = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        store.create_challenge(&challenge("c1", "u1", "dev_1"), Some(&job("j2", 1))).await.expect("create");
    };
    let ((), waited) = tokio::join!(create, async {
        store.wait_for_jobs(10_000).await;
        started.elapsed()
    });
    assert!(waited < Duration::from_secs(2), "not woken by create_challenge: {waited:?}");
}

// --- rate-limit buckets ---

const BUCKET: BucketSpec = BucketSpec { capacity: 10, refill_every_ms: 1_000 };

pub async fn buckets_take_until_empty_then_refill(store: &dyn RateLimiter) {
    let t = 1_700_000_000_000;
    for n in (0..10).rev() {
        let state = store.bucket_take("ip:1", BUCKET, ts(t)).await.expect("take");
        assert!(state.allowed, "take {n}");
        assert_eq!(state.remaining, n);
        assert_eq!(state.next_refill_at, Some(ts(t + 1_000)));
    }
    let refused = store.bucket_take("ip:1", BUCKET, ts(t + 999)).await.expect("take from empty");
    assert_eq!(refused, BucketState { allowed: false, remaining: 0, next_refill_at: Some(ts(t + 1_000)) });
    // Another key is its own bucket.
    assert_eq!(store.bucket_take("ip:2", BUCKET, ts(t)).await.expect("other key").remaining, 9);

    // 2.5 periods later: two tokens back, and the half period is kept for the third.
    let state = store.bucket_take("ip:1", BUCKET, ts(t + 2_500)).await.expect("take after refill");
    assert_eq!(state, BucketState { allowed: true, remaining: 1, next_refill_at: Some(ts(t + 3_000)) });
    let state = store.bucket_peek("ip:1", BUCKET, ts(t + 3_000)).await.expect("peek");
    assert_eq!(state, BucketState { allowed: true, remaining: 2, next_refill_at: Some(ts(t + 4_000)) });

    // Long after: full again, with nothing to wait for.
    let state = store.bucket_peek("ip:1", BUCKET, ts(t + 1_000_000)).await.expect("peek full");
    assert_eq!(state, BucketState { allowed: true, remaining: 10, next_refill_at: None });
    let state = store.bucket_take("ip:1", BUCKET, ts(t + 1_000_000)).await.expect("take from full");
    assert_eq!(state, BucketState { allowed: true, remaining: 9, next_refill_at: Some(ts(t + 1_001_000)) });
}

pub async fn buckets_peek_does_not_consume_and_reset_refills(store: &dyn RateLimiter) {
    let spec = BucketSpec { capacity: 2, refill_every_ms: 60_000 };
    let full = BucketState { allowed: true, remaining: 2, next_refill_at: None };
    assert_eq!(store.bucket_peek("k", spec, ts(1_000)).await.expect("peek unknown"), full);
    assert_eq!(store.bucket_peek("k", spec, ts(1_000)).await.expect("peek again"), full);
    assert!(store.bucket_take("k", spec, ts(1_000)).await.expect("take 1").allowed);
    assert!(store.bucket_take("k", spec, ts(1_000)).await.expect("take 2").allowed);
    let empty = BucketState { allowed: false, remaining: 0, next_refill_at: Some(ts(61_000)) };
    for _ in 0..3 {
        assert_eq!(store.bucket_peek("k", spec, ts(2_000)).await.expect("peek empty"), empty);
    }
    assert!(!store.bucket_take("k", spec, ts(2_000)).await.expect("take 3").allowed);
    store.bucket_reset("k").await.expect("reset");
    assert_eq!(store.bucket_peek("k", spec, ts(2_000)).await.expect("peek after reset"), full);
    assert!(store.bucket_take("k", spec, ts(2_000)).await.expect("take after reset").allowed);
    store.bucket_reset("never-used").await.expect("reset unknown");
}

pub async fn buckets_concurrent_takes_never_over_grant(store: &dyn RateLimiter) {
    let spec = BucketSpec { capacity: 5, refill_every_ms: 3_600_000 };
    let takes: Vec<Task<'_, StoreResult<BucketState>>> =
        (0..20).map(|_| Box::pin(store.bucket_take("otp:+15555550100", spec, ts(1_000))) as Task<'_, _>).collect();
    let states: Vec<BucketState> = join_all(takes).await.into_iter().map(|r| r.expect("take")).collect();
    assert_eq!(states.iter().filter(|s| s.allowed).count(), 5, "{states:?}");
    let mut remaining: Vec<u32> = states.iter().filter(|s| s.allowed).map(|s| s.remaining).collect();
    remaining.sort_unstable();
    assert_eq!(remaining, [0, 1, 2, 3, 4], "each grant saw the one before it");
    assert_eq!(store.bucket_peek("otp:+15555550100", spec, ts(1_000)).await.expect("peek").remaining, 0);
}

pub async fn buckets_give_back_undoes_takes_up_to_capacity(store: &dyn RateLimiter) {
    let spec = BucketSpec { capacity: 5, refill_every_ms: 3_600_000 };
    for _ in 0..5 {
        assert!(store.bucket_take("k", spec, ts(1_000)).await.expect("take").allowed);
    }
    assert!(!store.bucket_take("k", spec, ts(1_000)).await.expect("empty").allowed);
    let back = store.bucket_give_back("k", spec, ts(1_000)).await.expect("give back");
    assert_eq!((back.allowed, back.remaining), (true, 1));
    assert!(store.bucket_take("k", spec, ts(1_000)).await.expect("take again").allowed);
    // Concurrent give-backs all count, and none goes above the capacity.
    let backs: Vec<Task<'_, StoreResult<BucketState>>> =
        (0..3).map(|_| Box::pin(store.bucket_give_back("k", spec, ts(1_000))) as Task<'_, _>).collect();
    for r in join_all(backs).await {
        r.expect("give back");
    }
    assert_eq!(store.bucket_peek("k", spec, ts(1_000)).await.expect("peek").remaining, 3);
    let backs: Vec<Task<'_, StoreResult<BucketState>>> =
        (0..6).map(|_| Box::pin(store.bucket_give_back("k", spec, ts(1_000))) as Task<'_, _>).collect();
    for r in join_all(backs).await {
        r.expect("give back");
    }
    let full = store.bucket_peek("k", spec, ts(1_000)).await.expect("peek");
    assert_eq!((full.remaining, full.next_refill_at), (5, None), "capped at the capacity");
    // Takes and give-backs racing: each take that was granted is either still out or was given back.
    let mixed: Vec<Task<'_, StoreResult<BucketState>>> = (0..20)
        .map(|i| {
            if i % 2 == 0 {
                Box::pin(store.bucket_take("m", spec, ts(2_000))) as Task<'_, _>
            } else {
                Box::pin(store.bucket_give_back("m", spec, ts(2_000))) as Task<'_, _>
            }
        })
        .collect();
    let states: Vec<BucketState> = join_all(mixed).await.into_iter().map(|r| r.expect("mixed")).collect();
    let level = store.bucket_peek("m", spec, ts(2_000)).await.expect("peek m").remaining;
    assert!(level <= 5, "{level}");
    let granted = states.iter().step_by(2).filter(|s| s.allowed).count();
    assert!(granted >= 5, "a give-back never takes: at least the first 5 takes were granted ({granted})");
}

pub async fn settings_compare_and_set_has_one_winner(store: &dyn Store) {
    let v0 = json!({"version": 0});
    store.put_setting("doc", &v0, ts(1)).await.expect("put");
    let values: Vec<serde_json::Value> = (1..=8).map(|i| json!({"version": i})).collect();
    let racers: Vec<Task<'_, StoreResult<bool>>> =
        values.iter().map(|v| Box::pin(store.replace_setting("doc", Some(&v0), v, ts(2))) as Task<'_, _>).collect();
    let results: Vec<bool> = join_all(racers).await.into_iter().map(|r| r.expect("replace")).collect();
    assert_eq!(results.iter().filter(|w| **w).count(), 1, "{results:?}");
    let winner = results.iter().position(|w| *w).expect("one winner");
    assert_eq!(store.get_setting("doc").await.expect("get"), Some(values[winner].clone()));

    let racers: Vec<Task<'_, StoreResult<bool>>> =
        values.iter().map(|v| Box::pin(store.insert_setting_if_absent("latch", v, ts(3))) as Task<'_, _>).collect();
    let results: Vec<bool> = join_all(racers).await.into_iter().map(|r| r.expect("insert")).collect();
    assert_eq!(results.iter().filter(|w| **w).count(), 1, "{results:?}");
}

pub async fn users_concurrent_logins_are_all_counted(store: &dyn Store) {
    store.create_user(&user("u1", Some("a@example.com"), 1)).await.expect("create user");
    let logins: Vec<Task<'_, StoreResult<()>>> =
        (0..12).map(|i| Box::pin(store.record_login("u1", ts(10 + i))) as Task<'_, _>).collect();
    for r in join_all(logins).await {
        r.expect("record login");
    }
    assert_eq!(store.get_user("u1").await.expect("get").expect("exists").logins_count, 12);
}

pub async fn jobs_concurrent_receipts_are_all_kept(store: &dyn Store) {
    store.enqueue_job(&job("j1", 1_000)).await.expect("enqueue");
    let receipts: Vec<serde_json::Value> = (0..10).map(|i| json!({"status": "delivered", "n": i})).collect();
    let writers: Vec<Task<'_, StoreResult<bool>>> =
        receipts.iter().map(|r| Box::pin(store.record_job_receipt("j1", r, ts(2_000))) as Task<'_, _>).collect();
    for r in join_all(writers).await {
        assert!(r.expect("receipt"));
    }
    let job = store.get_job("j1").await.expect("get").expect("exists");
    let mut seen: Vec<i64> =
        job.details["receipts"].as_array().expect("receipts").iter().filter_map(|r| r["n"].as_i64()).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..10).collect::<Vec<i64>>());
}

pub async fn jobs_a_claimed_job_finishes_once(store: &dyn Store) {
    store.enqueue_job(&job("j1", 1_000)).await.expect("enqueue");
    let claimed = store.claim_jobs("w1", ts(1_000), 60_000, 1).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    let outcome = JobOutcome::Sent { details: json!({"provider": "auth0"}) };
    let finishers: Vec<Task<'_, StoreResult<bool>>> =
        (0..6).map(|i| Box::pin(store.finish_job("j1", "w1", &outcome, ts(2_000 + i))) as Task<'_, _>).collect();
    let wins = join_all(finishers).await.into_iter().filter(|r| *r.as_ref().expect("finish")).count();
    assert_eq!(wins, 1, "the terminal event is logged once");
}

pub async fn jobs_cancel_and_reschedule_only_pending_ones(store: &dyn Store) {
    store.enqueue_job(&job("standby", 50_000)).await.expect("enqueue standby");
    store.enqueue_job(&job("busy", 1_000)).await.expect("enqueue busy");
    // Rescheduling moves a pending job (earlier here) and replaces its details; workers can then claim it.
    assert!(store.claim_jobs("w1", ts(2_000), 30_000, 10).await.expect("claim").iter().all(|j| j.id == "busy"));
    let moved = json!({"reason": "failed receipt"});
    assert!(store.reschedule_pending_job("standby", ts(2_000), &moved).await.expect("reschedule"));
    let j = store.get_job("standby").await.expect("get").expect("kept");
    assert_eq!((j.status, j.run_at, j.details), (JobStatus::Pending, ts(2_000), moved));
    assert!(!store.reschedule_pending_job("busy", ts(9_000), &json!({})).await.expect("running"), "claimed");
    assert!(!store.reschedule_pending_job("ghost", ts(9_000), &json!({})).await.expect("ghost"));
    assert_eq!(store.get_job("busy").await.expect("get").expect("kept").run_at, ts(1_000), "untouched");

    // Cancelling ends a pending job without sending: the payload goes, it is never claimed, and only once.
    let why = json!({"cancelled": "the SMS was delivered"});
    assert!(!store.cancel_pending_job("busy", &why, ts(2_500)).await.expect("running"), "a claimed job stays");
    assert!(store.cancel_pending_job("standby", &why, ts(2_500)).await.expect("cancel"));
    let j = store.get_job("standby").await.expect("get").expect("kept");
    assert_eq!((j.status, j.payload, j.finished_at), (JobStatus::Cancelled, None, Some(ts(2_500))));
    assert_eq!(j.details, why);
    assert!(!store.cancel_pending_job("standby", &why, ts(2_600)).await.expect("twice"), "already cancelled");
    assert!(!store.reschedule_pending_job("standby", ts(2_600), &json!({})).await.expect("terminal"));
    assert!(store.claim_jobs("w2", ts(20_000), 30_000, 10).await.expect("claim").is_empty(), "never claimed");
    assert_eq!(store.list_jobs(Some(JobStatus::Cancelled), 10).await.expect("list").len(), 1);

    // A claimed job ends cancelled through its worker, also erasing the payload.
    let outcome = JobOutcome::Cancelled { details: json!({"cancelled": "the code was used"}) };
    assert!(!store.finish_job("busy", "w2", &outcome, ts(3_000)).await.expect("wrong worker"));
    assert!(store.finish_job("busy", "w1", &outcome, ts(3_000)).await.expect("finish"));
    let j = store.get_job("busy").await.expect("get").expect("kept");
    assert_eq!((j.status, j.payload), (JobStatus::Cancelled, None));
    assert_eq!(j.details["cancelled"], "the code was used");
}

/// A standby job (a voice fallback waiting for a receipt) that is due, raced by workers claiming it and by
/// receipts cancelling it: exactly one side wins, so the call is placed or cancelled, never both, never twice.
pub async fn jobs_cancel_racing_claims_has_one_winner(store: &dyn Store) {
    for round in 0..5 {
        let id = format!("standby-{round}");
        store.enqueue_job(&job(&id, 1_000)).await.expect("enqueue");
        let why = json!({"cancelled": "delivered"});
        let mut racers: Vec<Task<'_, (bool, bool)>> = Vec::new();
        for w in 0..4 {
            let worker = format!("w{round}-{w}");
            racers.push(Box::pin(async move {
                let claimed = store.claim_jobs(&worker, ts(5_000), 60_000, 10).await.expect("claim");
                (claimed.iter().any(|j| j.id.starts_with("standby-")), false)
            }));
        }
        for _ in 0..4 {
            let (id, why) = (id.clone(), why.clone());
            racers.push(Box::pin(async move {
                (false, store.cancel_pending_job(&id, &why, ts(5_000)).await.expect("cancel"))
            }));
        }
        let results = join_all(racers).await;
        let claims = results.iter().filter(|r| r.0).count();
        let cancels = results.iter().filter(|r| r.1).count();
        assert_eq!(claims + cancels, 1, "round {round}: {claims} claims and {cancels} cancels won");
        let j = store.get_job(&id).await.expect("get").expect("kept");
        let expected = if claims == 1 { JobStatus::Running } else { JobStatus::Cancelled };
        assert_eq!(j.status, expected, "round {round}");
        if claims == 1 {
            // Finish it so that the next round's claims only see the next job.
            let done = JobOutcome::Sent { details: json!({}) };
            let worker = j.claimed_by.clone().expect("claimed");
            assert!(store.finish_job(&id, &worker, &done, ts(5_001)).await.expect("finish"));
        }
    }
}

// --- development provider inbox ---

pub async fn dev_messages_newest_first_filtered_and_counted(store: &dyn Store) {
    assert_eq!(store.count_dev_messages().await.expect("count empty"), 0);
    // m4 and m3 share a millisecond: the one stored last (m3) counts as the newer.
    for (id, to, created) in [
        ("m1", "+15555550100", 1_000),
        ("m2", "+15555550199", 2_000),
        ("m4", "+15555550100", 3_000),
        ("m3", "+15555550100", 3_000),
        ("m5", "+15555550199", 5_000),
    ] {
        store.insert_dev_message(&dev_message(id, to, created)).await.expect("insert");
    }
    assert_conflict(store.insert_dev_message(&dev_message("m1", "+15555550100", 9_000)).await, "id");
    assert_eq!(store.count_dev_messages().await.expect("count"), 5);

    let all = store.list_dev_messages(None, Page::new(0, 10)).await.expect("all");
    assert_eq!(ids(&all, |m| &m.id), ["m5", "m3", "m4", "m2", "m1"]);
    assert_eq!(all.total, 5);
    assert_eq!(all.items[4], dev_message("m1", "+15555550100", 1_000), "comes back as stored");

    let to = store.list_dev_messages(Some("+15555550100"), Page::new(0, 2)).await.expect("to, page 0");
    assert_eq!(ids(&to, |m| &m.id), ["m3", "m4"]);
    assert_eq!(to.total, 3);
    let to = store.list_dev_messages(Some("+15555550100"), Page::new(1, 2)).await.expect("to, page 1");
    assert_eq!(ids(&to, |m| &m.id), ["m1"]);
    let nobody = store.list_dev_messages(Some("+15555550000"), Page::new(0, 10)).await.expect("nobody");
    assert!(nobody.items.is_empty());
    assert_eq!(nobody.total, 0);
}

// --- enrollment tickets ---

pub async fn tickets_consume_once_and_not_after_expiry(store: &dyn Store) {
    let t = ticket("t1", "u1", 10_000);
    store.create_ticket(&t).await.expect("create");
    assert_conflict(store.create_ticket(&ticket("t1", "u2", 20_000)).await, "ticket_hash");

    let used = store.consume_ticket("t1", ts(5_000)).await.expect("consume");
    assert_eq!(used, Some(EnrollmentTicket { used_at: Some(ts(5_000)), ..t }));
    assert_eq!(store.consume_ticket("t1", ts(5_001)).await.expect("consume again"), None);
    assert_eq!(store.consume_ticket("ghost", ts(5_000)).await.expect("unknown"), None);

    store.create_ticket(&ticket("t2", "u1", 10_000)).await.expect("create t2");
    assert_eq!(store.consume_ticket("t2", ts(10_000)).await.expect("at expiry"), None, "expires_at is exclusive");
    assert_eq!(store.consume_ticket("t2", ts(9_999)).await.expect("just before").map(|t| t.user_id), Some("u1".into()));

    // Racing consumers: exactly one gets it.
    store.create_ticket(&ticket("t3", "u1", 10_000)).await.expect("create t3");
    let racers: Vec<Task<'_, StoreResult<Option<EnrollmentTicket>>>> =
        (0..8).map(|i| Box::pin(store.consume_ticket("t3", ts(1_000 + i))) as Task<'_, _>).collect();
    let wins = join_all(racers).await.into_iter().filter(|r| r.as_ref().expect("consume").is_some()).count();
    assert_eq!(wins, 1);
}

pub async fn transients_put_get_take_and_expire(store: &dyn Store) {
    let v = json!({"user_id": "auth0|u1", "nested": {"n": 1}});
    store.put_transient("session", "k1", &v, ts(10_000)).await.expect("put");
    assert_eq!(store.get_transient("session", "k1", ts(5_000)).await.expect("get"), Some(v.clone()));
    // Kinds are separate namespaces.
    assert_eq!(store.get_transient("code", "k1", ts(5_000)).await.expect("other kind"), None);
    // Expiry is exclusive and applies to reads and takes alike.
    assert_eq!(store.get_transient("session", "k1", ts(10_000)).await.expect("at expiry"), None);
    assert_eq!(store.take_transient("session", "k1", ts(10_000)).await.expect("take at expiry"), None);
    // Replacing updates value and expiry.
    let v2 = json!({"step": 2});
    store.put_transient("session", "k1", &v2, ts(20_000)).await.expect("replace");
    assert_eq!(store.get_transient("session", "k1", ts(15_000)).await.expect("get replaced"), Some(v2.clone()));
    assert_eq!(store.take_transient("session", "k1", ts(15_000)).await.expect("take"), Some(v2));
    assert_eq!(store.take_transient("session", "k1", ts(15_000)).await.expect("take again"), None);
    assert_eq!(store.get_transient("session", "k1", ts(15_000)).await.expect("gone"), None);

    store.put_transient("session", "k2", &v, ts(30_000)).await.expect("put k2");
    store.delete_transient("session", "k2").await.expect("delete");
    store.delete_transient("session", "ghost").await.expect("delete unknown is fine");
    assert_eq!(store.get_transient("session", "k2", ts(1)).await.expect("deleted"), None);

    store.put_transient("a", "old", &v, ts(1_000)).await.expect("put old");
    store.put_transient("a", "new", &v, ts(9_000)).await.expect("put new");
    assert_eq!(store.purge_transients(ts(1_000)).await.expect("purge"), 1);
    assert_eq!(store.get_transient("a", "new", ts(2_000)).await.expect("survivor"), Some(v));
}

pub async fn transients_take_once_under_races(store: &dyn Store) {
    store.put_transient("code", "c1", &json!({"x": 1}), ts(10_000)).await.expect("put");
    let racers: Vec<Task<'_, StoreResult<Option<serde_json::Value>>>> =
        (0..8).map(|i| Box::pin(store.take_transient("code", "c1", ts(1_000 + i))) as Task<'_, _>).collect();
    let wins = join_all(racers).await.into_iter().filter(|r| r.as_ref().expect("take").is_some()).count();
    assert_eq!(wins, 1);
}

// --- exponential backoff ---

const BACKOFF: callsign_store::BackoffSpec =
    callsign_store::BackoffSpec { base_ms: 30_000, max_ms: 120_000, reset_after_ms: 3_600_000 };

pub async fn backoff_waits_double_and_reset(store: &dyn RateLimiter) {
    let t = 1_700_000_000_000;
    let first = store.backoff_take("bo:1", BACKOFF, ts(t)).await.expect("first");
    assert_eq!((first.allowed, first.level, first.wait_ms), (true, 0, 0));
    let early = store.backoff_take("bo:1", BACKOFF, ts(t + 29_999)).await.expect("early");
    assert_eq!((early.allowed, early.level, early.retry_at), (false, 1, Some(ts(t + 30_000))));
    let mut at = t;
    for (level, wait) in [(1, 30_000), (2, 60_000), (3, 120_000), (4, 120_000)] {
        at += wait;
        let s = store.backoff_take("bo:1", BACKOFF, ts(at - 1)).await.expect("one ms early");
        assert!(!s.allowed, "level {level}, 1 ms early");
        let s = store.backoff_take("bo:1", BACKOFF, ts(at)).await.expect("on time");
        assert_eq!((s.allowed, s.level, s.wait_ms), (true, level, wait));
    }
    // Another key is its own; an hour of quiet starts again; a reset too.
    assert!(store.backoff_take("bo:2", BACKOFF, ts(at)).await.expect("other").allowed);
    let again = store.backoff_take("bo:1", BACKOFF, ts(at + 3_600_000)).await.expect("after quiet");
    assert_eq!((again.allowed, again.level), (true, 0));
    assert!(!store.backoff_take("bo:1", BACKOFF, ts(at + 3_600_001)).await.expect("next").allowed);
    store.bucket_reset("bo:1").await.expect("reset");
    assert!(store.backoff_take("bo:1", BACKOFF, ts(at + 3_600_001)).await.expect("after reset").allowed);
}

pub async fn backoff_concurrent_takes_allow_one(store: &dyn RateLimiter) {
    for (round, at) in [(0, 1_000), (1, 31_000), (2, 91_000)] {
        let takes: Vec<Task<'_, StoreResult<callsign_store::BackoffState>>> =
            (0..16).map(|_| Box::pin(store.backoff_take("bo:race", BACKOFF, ts(at))) as Task<'_, _>).collect();
        let states: Vec<_> = join_all(takes).await.into_iter().map(|r| r.expect("backoff take")).collect();
        assert_eq!(states.iter().filter(|s| s.allowed).count(), 1, "round {round}: {states:?}");
    }
}

/// Windowed counters: adds are summed per key over a window's slots (and only those), listed per slot, kept for
/// their time, and a namespace sees only its own.
pub async fn counters_add_sum_list_and_purge(store: &dyn RateLimiter) {
    use callsign_store::CounterWindow;
    let minute = 60_000;
    store.counters_add("pump", 0, &[("cc:GB:sent", 3), ("cc:GB:ok", 2)], ts(1_000), 3_600_000).await.expect("add");
    store.counters_add("pump", minute, &[("cc:GB:sent", 4)], ts(61_000), 3_600_000).await.expect("add");
    store
        .counters_add("pump", 2 * minute, &[("cc:GB:sent", 5), ("cc:FR:sent", 1)], ts(121_000), 60_000)
        .await
        .expect("add");
    store.counters_add("usage", minute, &[("cc:GB:sent", 100)], ts(61_000), 3_600_000).await.expect("add");
    let all = CounterWindow { slot_ms: minute, from: 0, to: 2 * minute };
    let sums = store.counters_sum("pump", all, &["cc:GB:sent", "cc:GB:ok", "cc:XX:sent"]).await.expect("sum");
    assert_eq!(sums, vec![12, 2, 0]);
    let last_two = CounterWindow::ending_at(ts(2 * minute + 5), minute, 2);
    assert_eq!(last_two, CounterWindow { slot_ms: minute, from: minute, to: 2 * minute });
    assert_eq!(store.counters_sum("pump", last_two, &["cc:GB:sent"]).await.expect("sum"), vec![9]);
    assert_eq!(store.counters_sum("usage", all, &["cc:GB:sent"]).await.expect("sum"), vec![100]);
    let rows = store.counters_list("pump", all).await.expect("list");
    let seen: Vec<(&str, i64, i64)> = rows.iter().map(|r| (r.key.as_str(), r.slot, r.value)).collect();
    assert_eq!(
        seen,
        vec![
            ("cc:FR:sent", 2 * minute, 1),
            ("cc:GB:ok", 0, 2),
            ("cc:GB:sent", 0, 3),
            ("cc:GB:sent", minute, 4),
            ("cc:GB:sent", 2 * minute, 5)
        ]
    );
    // A limiter that expires counters itself purges nothing; one that does not forgets only the expired ones.
    let purged = store.counters_purge(ts(200_000)).await.expect("purge");
    let left = store.counters_sum("pump", all, &["cc:GB:sent", "cc:GB:ok"]).await.expect("sum");
    if purged > 0 {
        assert_eq!(purged, 2, "only the slot kept for a minute has expired");
        assert_eq!(left, vec![7, 2]);
    } else {
        assert_eq!(left, vec![12, 2]);
    }
}

/// One add may name a key twice (the amounts are summed), and parallel adds of the same keys in different orders
/// all count: none is lost and none waits for another forever.
pub async fn counters_add_merges_keys_and_counts_parallel_adds(store: &dyn RateLimiter) {
    use callsign_store::CounterWindow;
    store.counters_add("dup", 0, &[("a", 1), ("b", 2), ("a", 3)], ts(1_000), 3_600_000).await.expect("add twice");
    store.counters_add("dup", 0, &[], ts(1_000), 3_600_000).await.expect("add nothing");
    let w = CounterWindow { slot_ms: 60_000, from: 0, to: 0 };
    assert_eq!(store.counters_sum("dup", w, &["a", "b"]).await.expect("sum"), vec![4, 2]);
    let adds: Vec<Task<'_, StoreResult<()>>> = (0..24)
        .map(|i| {
            let keys: &[(&str, i64)] =
                if i % 2 == 0 { &[("x", 1), ("y", 1), ("z", 1)] } else { &[("z", 1), ("y", 1), ("x", 1)] };
            Box::pin(store.counters_add("par", 0, keys, ts(1_000), 3_600_000)) as Task<'_, _>
        })
        .collect();
    for r in join_all(adds).await {
        r.expect("parallel add");
    }
    assert_eq!(store.counters_sum("par", w, &["x", "y", "z"]).await.expect("sum"), vec![24, 24, 24]);
}

/// A hard cap: of parallel takers of one counter, exactly as many win as fit under the cap, and the counter ends
/// at the cap; a take bigger than the room left is refused and changes nothing.
pub async fn counter_take_concurrent_never_over_cap(store: &dyn RateLimiter) {
    let takes: Vec<Task<'_, StoreResult<Option<i64>>>> = (0..24)
        .map(|_| Box::pin(store.counter_take("cap", 0, "sms:day", 1, 10, ts(1_000), 86_400_000)) as Task<'_, _>)
        .collect();
    let results: Vec<Option<i64>> = join_all(takes).await.into_iter().map(|r| r.expect("take")).collect();
    let mut won: Vec<i64> = results.iter().flatten().copied().collect();
    won.sort_unstable();
    assert_eq!(won, (1..=10).collect::<Vec<_>>(), "{results:?}");
    let window = callsign_store::CounterWindow { slot_ms: 1, from: 0, to: 0 };
    assert_eq!(store.counters_sum("cap", window, &["sms:day"]).await.expect("sum"), vec![10]);
    assert_eq!(store.counter_take("cap", 0, "other", 5, 4, ts(1_000), 1_000).await.expect("take"), None);
    assert_eq!(store.counter_take("cap", 0, "other", 4, 4, ts(1_000), 1_000).await.expect("take"), Some(4));
    assert_eq!(store.counter_take("cap", 0, "other", 1, 4, ts(1_000), 1_000).await.expect("take"), None);
}

// --- log streams ---

fn stream(id: &str, status: &str, created: i64) -> LogStream {
    LogStream {
        id: id.to_owned(),
        config: json!({"name": format!("stream {id}"), "type": "http", "sink": {"httpEndpoint": "https://x.test/"}}),
        status: status.to_owned(),
        cursor: LogCursor::default(),
        run_at: ts(created),
        claimed_by: None,
        claim_expires_at: None,
        failures: 0,
        last_error: None,
        last_error_at: None,
        delivered: 0,
        created_at: ts(created),
        updated_at: ts(created),
    }
}

pub async fn log_streams_crud(store: &dyn Store) {
    assert_eq!(store.get_log_stream("ls_1").await.expect("get missing"), None);
    let a = stream("ls_1", "active", 1_000);
    store.create_log_stream(&a).await.expect("create");
    store.create_log_stream(&stream("ls_0", "paused", 2_000)).await.expect("create second");
    assert_conflict(store.create_log_stream(&a).await, "id");
    assert_eq!(store.get_log_stream("ls_1").await.expect("get"), Some(a.clone()));
    let listed: Vec<String> = store.list_log_streams().await.expect("list").into_iter().map(|s| s.id).collect();
    assert_eq!(listed, ["ls_1", "ls_0"], "oldest first");

    let config = json!({"name": "renamed", "type": "http", "sink": {}});
    assert!(store.update_log_stream("ls_1", &config, "paused", ts(3_000)).await.expect("update"));
    let got = store.get_log_stream("ls_1").await.expect("get").expect("present");
    assert_eq!((got.config, got.status.as_str(), got.updated_at), (config, "paused", ts(3_000)));
    assert!(!store.update_log_stream("ls_x", &json!({}), "active", ts(3_000)).await.expect("update missing"));

    assert!(store.delete_log_stream("ls_1").await.expect("delete"));
    assert!(!store.delete_log_stream("ls_1").await.expect("delete again"));
    assert_eq!(store.get_log_stream("ls_1").await.expect("get deleted"), None);
}

pub async fn log_streams_claim_finish_and_resume(store: &dyn Store) {
    store.create_log_stream(&stream("ls_a", "active", 1_000)).await.expect("create");
    store.create_log_stream(&stream("ls_p", "paused", 1_000)).await.expect("create paused");
    let mut later = stream("ls_l", "active", 1_000);
    later.run_at = ts(50_000);
    store.create_log_stream(&later).await.expect("create later");

    let claimed = store.claim_log_streams("w1", ts(10_000), 5_000, 10).await.expect("claim");
    let ids: Vec<&str> = claimed.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["ls_a"], "only active streams that are due");
    assert_eq!(claimed[0].claimed_by.as_deref(), Some("w1"));
    assert!(store.claim_log_streams("w2", ts(12_000), 5_000, 10).await.expect("claim again").is_empty(), "held");

    // Another worker cannot finish it; its owner can.
    let advanced = LogStreamOutcome::Advanced { cursor: LogCursor { tx: 0, seq: 7 }, sent: 3 };
    assert!(!store.finish_log_stream("ls_a", "w2", &advanced, ts(12_000), ts(12_000)).await.expect("foreign"));
    assert!(store.finish_log_stream("ls_a", "w1", &advanced, ts(12_000), ts(12_000)).await.expect("finish"));
    let s = store.get_log_stream("ls_a").await.expect("get").expect("present");
    assert_eq!((s.cursor, s.delivered, s.claimed_by, s.run_at), (LogCursor { tx: 0, seq: 7 }, 3, None, ts(12_000)));

    // A failure counts, releases and waits; a second one suspends.
    let claimed = store.claim_log_streams("w1", ts(13_000), 5_000, 10).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    let fail = LogStreamOutcome::Failed { error: "HTTP 500".into(), retry_at: ts(20_000), suspend: false };
    assert!(store.finish_log_stream("ls_a", "w1", &fail, ts(13_000), ts(13_000)).await.expect("fail"));
    assert!(store.claim_log_streams("w1", ts(19_999), 5_000, 10).await.expect("claim early").is_empty());
    let claimed = store.claim_log_streams("w1", ts(20_000), 5_000, 10).await.expect("claim after backoff");
    assert_eq!(claimed[0].failures, 1);
    let suspend = LogStreamOutcome::Failed { error: "HTTP 401".into(), retry_at: ts(30_000), suspend: true };
    assert!(store.finish_log_stream("ls_a", "w1", &suspend, ts(20_000), ts(20_000)).await.expect("suspend"));
    let s = store.get_log_stream("ls_a").await.expect("get").expect("present");
    assert_eq!(
        (s.status.as_str(), s.failures, s.last_error.as_deref(), s.last_error_at, s.cursor.seq),
        ("suspended", 2, Some("HTTP 401"), Some(ts(20_000)), 7)
    );
    assert!(store.claim_log_streams("w1", ts(40_000), 5_000, 10).await.expect("claim").iter().all(|s| s.id != "ls_a"));

    // Resuming clears the failures, keeps the cursor and makes it due at once.
    assert!(store.update_log_stream("ls_a", &s.config, "active", ts(21_000)).await.expect("resume"));
    let s = store.get_log_stream("ls_a").await.expect("get").expect("present");
    assert_eq!((s.status.as_str(), s.failures, s.cursor.seq, s.run_at), ("active", 0, 7, ts(21_000)));
    let claimed = store.claim_log_streams("w1", ts(21_000), 5_000, 10).await.expect("claim resumed");
    assert_eq!(claimed.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["ls_a"]);
    // A claim that expired (a crashed node's) is taken over.
    let taken = store.claim_log_streams("w2", ts(26_001), 5_000, 10).await.expect("take over");
    assert!(taken.iter().any(|s| s.id == "ls_a" && s.claimed_by.as_deref() == Some("w2")));
    assert!(!store.finish_log_stream("ls_a", "w1", &advanced, ts(27_000), ts(27_000)).await.expect("lost claim"));
}

pub async fn log_streams_follow_the_log_in_insertion_order(store: &dyn Store) {
    assert_eq!(store.log_lag(LogCursor::default()).await.expect("lag"), (0, None));
    // Log ids out of order: delivery follows the order of insertion, not the ids.
    for n in [5, 2, 9, 1] {
        store.insert_log(&log(n, 1_000 + n as i64, "s", None)).await.expect("insert");
    }
    let all = logs_after(store, LogCursor::default(), 10, 4).await;
    let numbers: Vec<u64> = all.iter().map(|e| e.event.log_id.parse().expect("numeric")).collect();
    assert_eq!(numbers, [5, 2, 9, 1]);
    assert_eq!(all[0].event, log(5, 1_005, "s", None), "the whole event");
    assert!(all.windows(2).all(|w| w[0].cursor < w[1].cursor), "cursors increase");
    let (lag, last) = store.log_lag(LogCursor::default()).await.expect("lag");
    assert_eq!((lag, last), (4, Some(all[3].cursor)));

    let rest = logs_after(store, all[1].cursor, 10, 2).await;
    assert_eq!(rest.iter().map(|e| e.cursor).collect::<Vec<_>>(), [all[2].cursor, all[3].cursor]);
    assert_eq!(logs_after(store, all[0].cursor, 2, 2).await.len(), 2);
    assert!(store.list_logs_after(all[3].cursor, 10).await.expect("at the end").is_empty());
    assert_eq!(store.log_lag(all[1].cursor).await.expect("lag").0, 2);
    store.insert_log(&log(3, 2_000, "s", None)).await.expect("insert later");
    let new = logs_after(store, all[3].cursor, 10, 1).await;
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].event.log_id, log_id(3));
}

/// The events after `cursor` once at least `n` are handed out. On PostgreSQL, events are handed out once every
/// older transaction on the cluster has ended (another test's, for a moment): wait for that, a few seconds at most.
async fn logs_after(
    store: &dyn Store,
    cursor: LogCursor,
    limit: u32,
    n: usize,
) -> Vec<callsign_store::OrderedLogEvent> {
    for _ in 0..500 {
        let seen = store.list_logs_after(cursor, limit).await.expect("list after");
        if seen.len() >= n {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("fewer than {n} events after {cursor:?}");
}

pub async fn log_streams_concurrent_claims_hand_out_each_stream_once(store: &dyn Store) {
    const STREAMS: usize = 12;
    for n in 0..STREAMS {
        store.create_log_stream(&stream(&format!("ls_{n:02}"), "active", 1_000)).await.expect("create");
    }
    let worker = |name: String| async move {
        let mut mine = Vec::new();
        for _ in 0..STREAMS {
            for s in store.claim_log_streams(&name, ts(10_000), 60_000, 2).await.expect("claim") {
                assert_eq!(s.claimed_by.as_deref(), Some(name.as_str()));
                mine.push(s.id);
            }
            tokio::task::yield_now().await;
        }
        mine
    };
    let workers: Vec<Task<'_, Vec<String>>> =
        (0..4).map(|w| Box::pin(worker(format!("worker-{w}"))) as Task<'_, _>).collect();
    let mut all: Vec<String> = join_all(workers).await.into_iter().flatten().collect();
    assert_eq!(all.len(), STREAMS, "every stream claimed exactly once: {all:?}");
    all.sort();
    all.dedup();
    assert_eq!(all.len(), STREAMS, "no stream handed to two workers");
}
