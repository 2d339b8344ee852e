//! What several nodes on one database must agree on without a restart: here, the signing keys. A key rotated on
//! one node (`callsign admin rotate-signing-key`) is picked up by the others' key watcher
//! (`Signer::refresh`, twice a second in a serving node): they sign with it and publish it in their JWKS.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::TestApp;
use serde_json::Value;

/// The `kid` in a JWT's header.
fn kid_of(jwt: &str) -> String {
    let header = jwt.split('.').next().unwrap();
    let v: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    v["kid"].as_str().unwrap().to_owned()
}

async fn jwks_kids(node: &TestApp) -> Vec<String> {
    let v: Value = node.http.get(node.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    v["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
}

/// Two nodes on one SQLite file here; on PostgreSQL with three processes in `sdk-tests/cluster/` (the watcher's
/// one-second bound is measured there).
#[tokio::test]
async fn a_key_rotated_on_one_node_is_used_and_published_by_the_other_after_its_refresh() {
    let a = TestApp::spawn().await;
    let b = a.spawn_node().await;
    let before = kid_of(&b.mgmt_token().await);
    assert_eq!(jwks_kids(&b).await, vec![before.clone()]);
    assert!(!b.app.signer.refresh(&b.app).await.unwrap(), "nothing changed: no reload");

    let new = a.app.signer.rotate(&a.app).await.unwrap();
    assert_ne!(new, before);
    // Without the refresh, node b still signs with the retired key and does not publish the new one.
    assert_eq!(kid_of(&b.mgmt_token().await), before);
    assert!(!jwks_kids(&b).await.contains(&new));

    assert!(b.app.signer.refresh(&b.app).await.unwrap(), "the rotation is seen");
    assert_eq!(kid_of(&b.mgmt_token().await), new, "node b signs with the new key");
    let kids = jwks_kids(&b).await;
    assert!(kids.contains(&new) && kids.contains(&before), "both published while old tokens live: {kids:?}");
    assert!(!b.app.signer.refresh(&b.app).await.unwrap(), "and then nothing more to do");
    // A token from either node is accepted by the other.
    let from_a = a.mgmt_token().await;
    assert_eq!(b.get(&from_a, "/api/v2/clients").await.0, 200);
    let from_b = b.mgmt_token().await;
    assert_eq!(a.get(&from_b, "/api/v2/clients").await.0, 200);
    b.stop().await;
}

/// The hot configuration (settings documents, applications, client grants) is read from memory
/// (`callsign_core::config_cache`): a node sees its own writes at once, another node's within the generation check
/// (a quarter of a second), and reads between are served without the store.
#[tokio::test]
#[allow(clippy::disallowed_methods)] // measuring how long the change took to be seen, not telling the time
async fn configuration_is_cached_and_changes_on_either_node_are_seen() {
    use callsign_core::config_cache::CHECK_INTERVAL;
    use callsign_core::guardian::GuardianConfig;
    let a = TestApp::spawn().await;
    let b = a.spawn_node().await;
    let sms = |g: &GuardianConfig| g.phone_enabled();
    let admin = a.mgmt_token().await;
    assert!(!sms(&GuardianConfig::load(&b.app).await.unwrap()));
    let generation = b.app.store.config_generation().await.unwrap();

    // Node a turns the phone factor on: a sees it at once (its own write); b still has the old document in memory,
    // which shows the read does not reach the store (it would see the new one), until its next generation check.
    assert_eq!(a.put(&admin, "/api/v2/guardian/factors/sms", serde_json::json!({"enabled": true})).await.0, 200);
    assert!(sms(&GuardianConfig::load(&a.app).await.unwrap()), "the writing node reads its own write");
    assert!(b.app.store.config_generation().await.unwrap() > generation, "the write raised the generation");
    // The Management API reads through the cache: a PATCH on a is what b's GET shows at once, while b's hot reads
    // may still be from memory.
    let before = callsign_core::attack::load(&b.app).await.unwrap();
    let path = "/api/v2/attack-protection/suspicious-ip-throttling";
    let (s, _) = a.patch(&admin, path, serde_json::json!({"enabled": !before.suspicious_ip_throttling.enabled})).await;
    assert_eq!(s, 200);
    let (s, got) = b.get(&admin, path).await;
    assert_eq!((s, got["enabled"].as_bool()), (200, Some(!before.suspicious_ip_throttling.enabled)), "{got}");
    let mut stale = 0;
    let t = std::time::Instant::now();
    while !sms(&GuardianConfig::load(&b.app).await.unwrap()) {
        stale += 1;
        assert!(t.elapsed() < CHECK_INTERVAL * 4, "node b did not see the change");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    println!("node b saw node a's change after {:?} ({stale} reads from memory before)", t.elapsed());

    // An application: created on b, used on a at once (what does not exist is not cached); its secret rotated on b
    // is refused on a once a's check has run, and the new one is taken.
    let app = b.create_app(&admin, &["client_credentials"]).await;
    let id = app["client_id"].as_str().unwrap().to_owned();
    let grant = |secret: &str| {
        serde_json::json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret,
                           "audience": a.audience()})
    };
    let (status, _) = a.token_request(grant(app["client_secret"].as_str().unwrap())).await;
    assert_ne!(status, 401, "an application created on another node is found at once");
    let (s, rotated) = b.post(&admin, &format!("/api/v2/clients/{id}/rotate-secret"), serde_json::json!({})).await;
    assert_eq!(s, 200, "{rotated}");
    tokio::time::sleep(CHECK_INTERVAL * 2).await;
    assert_eq!(a.token_request(grant(app["client_secret"].as_str().unwrap())).await.0, 401, "old secret refused");
    assert_ne!(a.token_request(grant(rotated["client_secret"].as_str().unwrap())).await.0, 401, "new secret taken");
    b.stop().await;
}
