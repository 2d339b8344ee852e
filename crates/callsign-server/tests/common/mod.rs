//! A real server on port 0 with a fresh database, a manual clock and the bootstrap credentials at hand.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod mfa;

use std::sync::Arc;
use std::time::Duration;

use callsign_domain::{ManualClock, OsRandom, Timestamp};
use callsign_server::app::AppState;
use callsign_server::config::{Config, RawConfig};
use serde_json::{Value, json};

pub struct TestApp {
    pub base: String,
    pub app: AppState,
    pub clock: ManualClock,
    pub http: reqwest::Client,
    pub client_id: String,
    pub client_secret: String,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    stop_workers: tokio::sync::watch::Sender<bool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

/// 2026-01-01T00:00:00Z
pub const START: Timestamp = Timestamp(1_767_225_600_000);

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Spawn with the configuration adjusted by `f` (data_dir and database_url default to a temp dir).
    pub async fn spawn_with(f: impl FnOnce(&mut RawConfig)) -> TestApp {
        Self::spawn_on(false, f).await
    }

    /// The same server on PostgreSQL (a fresh schema), when `CALLSIGN_TEST_POSTGRES_URL` is set. Without it: None,
    /// after saying the test was skipped; in CI (`CI=true`) a missing URL is a failure.
    pub async fn spawn_postgres() -> Option<TestApp> {
        if std::env::var("CALLSIGN_TEST_POSTGRES_URL").is_err() {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "CALLSIGN_TEST_POSTGRES_URL must be set in CI");
            eprintln!("skipped: CALLSIGN_TEST_POSTGRES_URL is not set");
            return None;
        }
        Some(Self::spawn_on(true, |_| {}).await)
    }

    async fn spawn_on(postgres: bool, f: impl FnOnce(&mut RawConfig)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut raw = RawConfig {
            listen: Some(addr.to_string()),
            data_dir: Some(dir.path().join("data")),
            database_url: Some(format!("sqlite://{}/callsign.db", dir.path().display())),
            ..Default::default()
        };
        f(&mut raw);
        let config = Config::resolve(raw).unwrap();
        let clock = ManualClock::new(START);
        let (app, report) = if postgres {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let url = std::env::var("CALLSIGN_TEST_POSTGRES_URL").unwrap();
            let nanos = std::time::SystemTime::UNIX_EPOCH.elapsed().unwrap().subsec_nanos();
            let schema = format!("cs_app_{}_{}_{}", std::process::id(), nanos, N.fetch_add(1, Ordering::SeqCst));
            let store = callsign_store_postgres::PostgresStore::connect_with_schema(&url, &schema).await.unwrap();
            callsign_store::Store::migrate(&store).await.unwrap();
            AppState::with_store(config, Arc::new(store), Arc::new(clock.clone()), Arc::new(OsRandom)).await.unwrap()
        } else {
            AppState::start(config, Arc::new(clock.clone()), Arc::new(OsRandom)).await.unwrap()
        };
        let creds_path = report.bootstrap_file.expect("first start writes bootstrap credentials");
        let creds: Value = serde_json::from_str(&std::fs::read_to_string(creds_path).unwrap()).unwrap();
        let (stop_workers, workers_rx) = tokio::sync::watch::channel(false);
        let workers = callsign_server::mfa::delivery::spawn_workers(&app, workers_rx);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(callsign_server::http::serve(app.clone(), listener, None, async move {
            let _ = rx.await;
        }));
        TestApp {
            base: format!("http://{addr}"),
            app,
            clock,
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap(),
            client_id: creds["client_id"].as_str().unwrap().to_owned(),
            client_secret: creds["client_secret"].as_str().unwrap().to_owned(),
            dir,
            stop: Some(tx),
            task: Some(task),
            stop_workers,
            workers,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn audience(&self) -> String {
        self.app.config.management_audience()
    }

    /// A Management token for the bootstrap client (all scopes).
    pub async fn mgmt_token(&self) -> String {
        let r = self
            .http
            .post(self.url("/oauth/token"))
            .json(&json!({
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "audience": self.audience(),
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
    }

    /// A Management token holding exactly `scopes` (via a fresh client and grant).
    pub async fn token_with_scopes(&self, scopes: &[&str]) -> String {
        let admin = self.mgmt_token().await;
        let c = self
            .post(
                &admin,
                "/api/v2/clients",
                json!({"name": "limited", "app_type": "non_interactive", "grant_types": ["client_credentials"]}),
            )
            .await;
        assert_eq!(c.0, 201, "{}", c.1);
        let id = c.1["client_id"].as_str().unwrap();
        let g = self
            .post(
                &admin,
                "/api/v2/client-grants",
                json!({"client_id": id, "audience": self.audience(), "scope": scopes}),
            )
            .await;
        assert_eq!(g.0, 201, "{}", g.1);
        let r: Value = self
            .http
            .post(self.url("/oauth/token"))
            .json(&json!({"grant_type": "client_credentials", "client_id": id, "client_secret": c.1["client_secret"], "audience": self.audience()}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["access_token"].as_str().unwrap().to_owned()
    }

    async fn finish(r: reqwest::Response) -> (u16, Value) {
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) })
    }

    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        Self::finish(self.http.get(self.url(path)).bearer_auth(token).send().await.unwrap()).await
    }
    pub async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        Self::finish(self.http.post(self.url(path)).bearer_auth(token).json(&body).send().await.unwrap()).await
    }
    pub async fn patch(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        Self::finish(self.http.patch(self.url(path)).bearer_auth(token).json(&body).send().await.unwrap()).await
    }
    pub async fn delete(&self, token: &str, path: &str) -> (u16, Value) {
        Self::finish(self.http.delete(self.url(path)).bearer_auth(token).send().await.unwrap()).await
    }
    pub async fn token_request(&self, body: Value) -> (u16, Value) {
        Self::finish(self.http.post(self.url("/oauth/token")).json(&body).send().await.unwrap()).await
    }

    /// Stop the server gracefully and wait for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
        let _ = self.stop_workers.send(true);
        for w in self.workers.drain(..) {
            w.await.unwrap();
        }
    }

    /// Wait (bounded) until the dev inbox holds `n` messages to `to`; returns them newest first.
    pub async fn inbox(&self, to: &str, n: usize) -> Vec<callsign_store::DevMessage> {
        for _ in 0..200 {
            let l = self.app.store.list_dev_messages(Some(to), callsign_store::Page::new(0, 100)).await.unwrap();
            if l.items.len() >= n {
                return l.items;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the dev inbox did not receive {n} messages to {to} in 5 s");
    }

    /// The 6-digit code in the newest dev-inbox message to `to` (after `n` messages arrived).
    pub async fn code_for(&self, to: &str, n: usize) -> String {
        let msgs = self.inbox(to, n).await;
        let text = &msgs[0].text;
        let digits: String = text.chars().filter(|c| c.is_ascii_digit()).collect();
        // SMS texts start with the code; voice texts read it digit by digit.
        digits.chars().take(6).collect()
    }
}

/// Decode a JWT's payload without verifying (tests inspect what the server signed).
pub fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

pub fn header(jwt: &str) -> Value {
    use base64::Engine;
    let h = jwt.split('.').next().unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap()
}

pub fn enc(id: &str) -> String {
    id.replace('|', "%7C")
}
