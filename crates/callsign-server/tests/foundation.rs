//! The server's foundation, end to end: health, readiness, errors, metrics, TLS, key files, shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::TestApp;
use serde_json::{Value, json};

#[tokio::test]
async fn health_and_readiness() {
    let t = TestApp::spawn().await;
    let r: Value = t.http.get(t.url("/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(r, json!({"status": "ok"}));
    let r = t.http.get(t.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ready", "database": "sqlite"}));
    t.stop().await;
}

#[tokio::test]
async fn unknown_routes_get_the_management_error_shape() {
    let t = TestApp::spawn().await;
    let r = t.http.get(t.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"statusCode": 404, "error": "Not Found", "message": "Not Found"})
    );
    let r = t.http.get(t.url("/api/v2/nope")).header("accept", "text/html").send().await.unwrap();
    // The Management API answers its own JSON (401 without a token), never the HTML page.
    assert_eq!((r.status().as_u16(), r.headers()["content-type"].to_str().unwrap()), (401, "application/json"));
    t.stop().await;
}

#[tokio::test]
async fn a_browser_gets_an_html_404_page_in_its_language() {
    let t = TestApp::spawn().await;
    for (path, accept) in [("/u/nope", "*/*"), ("/dashboard/nope", "*/*"), ("/nope", "text/html,application/xhtml+xml")]
    {
        let r =
            t.http.get(t.url(path)).header("accept", accept).header("accept-language", "fr-FR").send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"), "{path}");
        let body = r.text().await.unwrap();
        assert!(body.contains(r#"<html lang="fr">"#) && body.contains("Cette page n’existe pas."), "{path}: {body}");
    }
    t.stop().await;
}

#[tokio::test]
async fn first_start_writes_private_key_and_bootstrap_files() {
    let t = TestApp::spawn().await;
    let data = t.dir.path().join("data");
    for f in ["encryption.keys", "bootstrap-credentials.json"] {
        let mode = std::fs::metadata(data.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    let creds: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("bootstrap-credentials.json")).unwrap()).unwrap();
    assert_eq!(creds["audience"], json!(t.audience()));
    // The signing key's private part is stored sealed, never in clear.
    let secrets = t.app.store.list_secrets().await.unwrap();
    let names: Vec<&str> = secrets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"otp/hmac-key"), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("signing-key/")), "{names:?}");
    assert!(secrets.iter().all(|s| s.sealed.key_id == t.app.keyring.active_key_id()));
    t.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_by_matched_route() {
    let t = TestApp::spawn().await;
    for _ in 0..3 {
        t.http.get(t.url("/healthz")).send().await.unwrap();
    }
    let token = t.mgmt_token().await;
    let (s, _) = t.get(&token, "/api/v2/users/auth0%7Cmissing").await;
    assert_eq!(s, 404);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, callsign_server::metrics::router(t.app.metrics.clone())).await });
    let text = reqwest::get(format!("http://{addr}/metrics")).await.unwrap().text().await.unwrap();
    assert!(text.contains(r#"callsign_http_requests_total{method="GET",route="/healthz",status="200"} 3"#), "{text}");
    // Route templates, never raw paths with ids.
    assert!(text.contains(r#"route="/api/v2/users/{id}",status="404""#), "{text}");
    assert!(!text.contains("missing"), "{text}");
    assert!(text.contains("callsign_http_request_duration_seconds_bucket"), "{text}");
}

#[tokio::test]
async fn graceful_shutdown_finishes_and_closes_the_port() {
    let t = TestApp::spawn().await;
    let url = t.url("/healthz");
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 200);
    let http = t.http.clone();
    t.stop().await;
    assert!(http.get(&url).send().await.is_err());
}

#[tokio::test]
async fn serves_https_with_a_pem_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    // A test CA and a leaf certificate it signs (webpki refuses a CA certificate as a server's own).
    let d = dir.path();
    std::fs::write(d.join("ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").unwrap();
    let script = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=TestCA -keyout ca.key -out ca.pem && \
                  openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout key.pem -out leaf.csr && \
                  openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile ext -out cert.pem";
    let ok = Command::new("sh").arg("-c").arg(script).current_dir(d).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let tls = callsign_server::tls::load_server_config(&cert, &key).unwrap();
    let t = TestApp::spawn().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(callsign_server::http::serve(t.app.clone(), listener, Some(tls), std::future::pending()));
    let ca = reqwest::Certificate::from_pem(&std::fs::read(d.join("ca.pem")).unwrap()).unwrap();
    let client = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
    let r = client.get(format!("https://localhost:{}/healthz", addr.port())).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Plain HTTP to the TLS port does not get an answer.
    assert!(reqwest::get(format!("http://{addr}/healthz")).await.is_err());
    // A bad key file is a clear error naming the setting.
    std::fs::write(&key, "not a key").unwrap();
    let e = callsign_server::tls::load_server_config(&cert, &key).unwrap_err().to_string();
    assert!(e.contains("tls.key_file"), "{e}");
}

#[tokio::test]
async fn secrets_are_reencrypted_when_a_new_key_is_put_first() {
    use callsign_domain::seal::Keyring;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/c.db", dir.path().display());
    let rng = callsign_domain::OsRandom;
    let old = Keyring::generate_line(&rng, "old");
    let new = Keyring::generate_line(&rng, "new");
    let cfg = |keys: Vec<String>| {
        callsign_server::config::Config::resolve(callsign_server::config::RawConfig {
            database_url: Some(db.clone()),
            data_dir: Some(dir.path().to_path_buf()),
            encryption_keys: Some(callsign_server::config::StringList(keys)),
            ..Default::default()
        })
        .unwrap()
    };
    let clock = std::sync::Arc::new(callsign_domain::SystemClock);
    let (a, _) = callsign_server::app::AppState::start(cfg(vec![old.clone()]), clock.clone(), std::sync::Arc::new(rng))
        .await
        .unwrap();
    let jwks_before = a.signer.jwks().await;
    assert!(a.store.list_secrets().await.unwrap().iter().all(|s| s.sealed.key_id == "old"));
    drop(a);
    let (b, report) =
        callsign_server::app::AppState::start(cfg(vec![new, old]), clock.clone(), std::sync::Arc::new(rng))
            .await
            .unwrap();
    assert_eq!(report.reencrypted_secrets, 2);
    assert!(b.store.list_secrets().await.unwrap().iter().all(|s| s.sealed.key_id == "new"));
    // The signing key still opens and is the same key.
    assert_eq!(b.signer.jwks().await, jwks_before);
    // Without the key that sealed them, start-up fails loudly instead of minting new keys.
    let other = Keyring::generate_line(&rng, "other");
    let e = callsign_server::app::AppState::start(cfg(vec![other]), clock, std::sync::Arc::new(rng))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("new"), "{e}");
}

/// After an upgrade that adds Management scopes, the bootstrap client gets them on the next start; a scope the
/// operator took away stays away.
#[tokio::test]
async fn the_bootstrap_client_gets_scopes_added_by_an_upgrade() {
    let t = TestApp::spawn().await;
    let aud = t.app.config.management_audience();
    let mut grant = t.app.store.find_client_grant(&t.client_id, &aud).await.unwrap().unwrap();
    // The operator narrowed the grant; and the installation predates the phone_templates scopes.
    grant.scope.retain(|s| s != "read:logs" && !s.ends_with(":phone_templates"));
    t.app.store.update_client_grant(&grant).await.unwrap();
    let mut state = t.app.store.get_setting("bootstrap").await.unwrap().unwrap();
    assert_eq!(state["client_id"], t.client_id.as_str());
    let known: Vec<Value> = state["scopes_known"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s.as_str().unwrap().ends_with(":phone_templates"))
        .cloned()
        .collect();
    state["scopes_known"] = Value::Array(known);
    t.app.store.put_setting("bootstrap", &state, t.app.clock.now()).await.unwrap();

    let added = callsign_server::identity::bootstrap::grant_new_scopes(&t.app).await.unwrap();
    assert_eq!(added.len(), 4, "{added:?}");
    let grant = t.app.store.find_client_grant(&t.client_id, &aud).await.unwrap().unwrap();
    assert!(grant.scope.iter().any(|s| s == "create:phone_templates"), "{:?}", grant.scope);
    assert!(!grant.scope.iter().any(|s| s == "read:logs"), "a removed scope is not given back");
    // Once known, nothing more is added.
    assert!(callsign_server::identity::bootstrap::grant_new_scopes(&t.app).await.unwrap().is_empty());

    // An installation from before the record: the bootstrap client is found by name and gets only the scopes
    // added since (read:logs, removed by the operator, stays away).
    let mut grant = t.app.store.find_client_grant(&t.client_id, &aud).await.unwrap().unwrap();
    grant.scope.retain(|s| !s.ends_with(":phone_providers"));
    t.app.store.update_client_grant(&grant).await.unwrap();
    t.app.store.put_setting("bootstrap", &json!({"at": 1}), t.app.clock.now()).await.unwrap();
    let added = callsign_server::identity::bootstrap::grant_new_scopes(&t.app).await.unwrap();
    assert_eq!(added.len(), 8, "the eight phone scopes: {added:?}");
    let grant = t.app.store.find_client_grant(&t.client_id, &aud).await.unwrap().unwrap();
    assert!(grant.scope.iter().any(|s| s == "read:phone_providers"));
    assert!(!grant.scope.iter().any(|s| s == "read:logs"));
    let state = t.app.store.get_setting("bootstrap").await.unwrap().unwrap();
    assert_eq!(state["client_id"], t.client_id.as_str());
    t.stop().await;
}
