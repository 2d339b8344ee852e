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
