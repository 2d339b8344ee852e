//! A real server on port 0 with a fresh database, a manual clock and the bootstrap credentials at hand.
//!
//! Delivery jobs (SMS, voice) are not run in the background unless a test asks for workers
//! ([`TestApp::spawn_with_workers`]): a test drives them with [`TestApp::deliver_now`] (or a helper built on
//! [`TestApp::delivered`], such as [`TestApp::inbox`]), which runs every due job to completion in the test's own
//! task, so what a send leaves behind (the dev inbox, the job's state, the `gd_send_*` event) is there when it
//! returns. Tests about the workers themselves (leases, retries picked up when due, crashed workers) start workers
//! and wait for them in real time, always through [`eventually`].
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod mfa;

use std::fmt::Display;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use callsign_domain::{ManualClock, OsRandom, Timestamp};
use callsign_server::app::AppState;
use callsign_server::config::{Config, RawConfig};
use callsign_store::RateLimiter;
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

/// The password of the users the tests create.
pub const PW: &str = "Str0ng-Passw0rd";
/// The phone number the tests enroll.
pub const PHONE: &str = "+14155552671";

/// How long [`eventually`] waits for background work before it fails the test.
pub const WAIT: Duration = Duration::from_secs(10);

/// Poll `check` (every 25 ms of real time) until it gives `Ok`; after [`WAIT`], fail the test naming `what` and the
/// last `Err` (what was seen instead). The one bounded wait of these tests: only for what happens in the background
/// in real time (delivery workers, a server's own timers); a test without workers drives its delivery jobs instead
/// ([`TestApp::deliver_now`], [`TestApp::delivered`]).
pub async fn eventually<T>(what: impl Display, mut check: impl AsyncFnMut() -> Result<T, String>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let last = match check().await {
            Ok(v) => return v,
            Err(last) => last,
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {WAIT:?} waiting until {what} (last seen: {last})"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Let every idle delivery worker look at the queue at least once (a worker waits at most one second between looks,
/// `callsign_jobs::Runner::run_worker`). For checks that something did *not* happen in the background, which no
/// polling can observe; only in tests started with workers.
pub async fn let_the_workers_poll() {
    tokio::time::sleep(Duration::from_millis(1_200)).await;
}

/// Serve `app` on a free local port (a fake provider, a webhook receiver); returns `http://127.0.0.1:<port>`.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Spawn with the configuration adjusted by `f` (data_dir and database_url default to a temp dir).
    pub async fn spawn_with(f: impl FnOnce(&mut RawConfig)) -> TestApp {
        Self::spawn_on(false, None, false, f).await
    }

    /// [`spawn_with`](Self::spawn_with), with the server's delivery workers running in the background (as in
    /// `callsign serve`): for tests of the workers themselves. Their waits go through [`eventually`].
    pub async fn spawn_with_workers(f: impl FnOnce(&mut RawConfig)) -> TestApp {
        Self::spawn_on(false, None, true, f).await
    }

    /// Spawn (on SQLite) with rate limits taken from `limiter` instead of the store.
    pub async fn spawn_with_limiter(limiter: Arc<dyn RateLimiter>) -> TestApp {
        Self::spawn_on(false, Some(limiter), false, |_| {}).await
    }

    /// The same server on PostgreSQL (a fresh schema), when `CALLSIGN_TEST_POSTGRES_URL` is set. Without it: None,
    /// after saying the test was skipped; in CI (`CI=true`) a missing URL is a failure.
    pub async fn spawn_postgres() -> Option<TestApp> {
        Self::spawn_postgres_with(|_| {}).await
    }

    /// [`spawn_postgres`](Self::spawn_postgres) with the configuration changed by `f` first.
    pub async fn spawn_postgres_with(f: impl FnOnce(&mut RawConfig)) -> Option<TestApp> {
        if std::env::var("CALLSIGN_TEST_POSTGRES_URL").is_err() {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "CALLSIGN_TEST_POSTGRES_URL must be set in CI");
            eprintln!("skipped: CALLSIGN_TEST_POSTGRES_URL is not set");
            return None;
        }
        Some(Self::spawn_on(true, None, false, f).await)
    }

    async fn spawn_on(
        postgres: bool,
        limiter: Option<Arc<dyn RateLimiter>>,
        workers: bool,
        f: impl FnOnce(&mut RawConfig),
    ) -> TestApp {
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
            static N: AtomicU32 = AtomicU32::new(0);
            let url = std::env::var("CALLSIGN_TEST_POSTGRES_URL").unwrap();
            let nanos = std::time::SystemTime::UNIX_EPOCH.elapsed().unwrap().subsec_nanos();
            let schema = format!("cs_app_{}_{}_{}", std::process::id(), nanos, N.fetch_add(1, Ordering::SeqCst));
            let store = callsign_store_postgres::PostgresStore::connect_with_schema(&url, &schema).await.unwrap();
            callsign_store::Store::migrate(&store).await.unwrap();
            AppState::with_store(config, Arc::new(store), Arc::new(clock.clone()), Arc::new(OsRandom)).await.unwrap()
        } else if let Some(limiter) = limiter {
            let store = callsign_server::db::open_store(&config.database_url).await.unwrap();
            store.migrate().await.unwrap();
            AppState::with_store_and_limiter(config, store, limiter, Arc::new(clock.clone()), Arc::new(OsRandom))
                .await
                .unwrap()
        } else {
            AppState::start(config, Arc::new(clock.clone()), Arc::new(OsRandom)).await.unwrap()
        };
        let creds_path = report.bootstrap_file.expect("first start writes bootstrap credentials");
        let creds: Value = serde_json::from_str(&std::fs::read_to_string(creds_path).unwrap()).unwrap();
        let (stop_workers, workers_rx) = tokio::sync::watch::channel(false);
        let workers = if workers { callsign_core::delivery::spawn_workers(&app.core, workers_rx) } else { Vec::new() };
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

    /// A second node beside this one, as another process of the same deployment would be: its own server, store
    /// connection (the same database: this node's SQLite file, or PostgreSQL schema when `database_url` names it),
    /// services and rate limiter (`redis_url` as configured here), sharing the data directory (encryption keys),
    /// the public URL and the clock. Its `client_id`/`client_secret` are this node's bootstrap client.
    pub async fn spawn_node(&self) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = self.app.config.clone();
        config.listen = addr;
        let (app, report) = AppState::start(config, Arc::new(self.clock.clone()), Arc::new(OsRandom)).await.unwrap();
        assert!(report.bootstrap_file.is_none(), "a second node finds the installation bootstrapped");
        let (stop_workers, _) = tokio::sync::watch::channel(false);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(callsign_server::http::serve(app.clone(), listener, None, async move {
            let _ = rx.await;
        }));
        TestApp {
            base: format!("http://{addr}"),
            app,
            clock: self.clock.clone(),
            http: self.http.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            dir: tempfile::tempdir().unwrap(),
            stop: Some(tx),
            task: Some(task),
            stop_workers,
            workers: Vec::new(),
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

    /// Create the user `email` (password [`PW`]) in the database connection; returns the user.
    pub async fn create_user(&self, token: &str, email: &str) -> Value {
        let (s, u) = self
            .post(
                token,
                "/api/v2/users",
                json!({"connection": "Username-Password-Authentication", "email": email, "password": PW}),
            )
            .await;
        assert_eq!(s, 201, "{u}");
        u
    }

    /// Create the `regular_web` application `app` allowed `grant_types`; returns the client (with its secret).
    pub async fn create_app(&self, token: &str, grant_types: &[&str]) -> Value {
        let (s, c) = self
            .post(
                token,
                "/api/v2/clients",
                json!({"name": "app", "app_type": "regular_web", "grant_types": grant_types}),
            )
            .await;
        assert_eq!(s, 201, "{c}");
        c
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
    pub async fn put(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        Self::finish(self.http.put(self.url(path)).bearer_auth(token).json(&body).send().await.unwrap()).await
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

    /// Whether the server's delivery workers run (see [`spawn_with_workers`](Self::spawn_with_workers)).
    pub fn has_workers(&self) -> bool {
        !self.workers.is_empty()
    }

    /// Run every delivery job that is due now (by the manual clock) to its outcome, in this task: sent, failed, or
    /// rescheduled for a retry, with its event logged. Returns how many jobs were processed. (Claims are atomic in
    /// the store, so with workers running each job is still processed once, by whoever claimed it.)
    pub async fn deliver_now(&self) -> usize {
        static N: AtomicU32 = AtomicU32::new(0);
        let worker = format!("test-{}", N.fetch_add(1, Ordering::SeqCst));
        callsign_core::delivery::run_pending_jobs(&self.app.core, &worker).await.expect("run the due delivery jobs")
    }

    /// What a delivery left behind, read by `check` (`Err` says what is there instead). Without workers: every due
    /// job is run first ([`deliver_now`](Self::deliver_now)) and `check` must hold at once. With workers: waits until
    /// it holds ([`eventually`]); jobs are left to the workers.
    pub async fn delivered<T>(&self, what: impl Display, mut check: impl AsyncFnMut() -> Result<T, String>) -> T {
        if self.has_workers() {
            return eventually(what, check).await;
        }
        self.deliver_now().await;
        match check().await {
            Ok(v) => v,
            Err(last) => panic!("not so after running every due delivery job: {what} (seen: {last})"),
        }
    }

    /// The dev inbox once it holds at least `n` messages to `to` (see [`delivered`](Self::delivered)), newest first.
    pub async fn inbox(&self, to: &str, n: usize) -> Vec<callsign_store::DevMessage> {
        self.delivered(format!("the dev inbox holds {n} messages to {to}"), async || {
            let l = self.app.store.list_dev_messages(Some(to), callsign_store::Page::new(0, 100)).await.unwrap();
            if l.items.len() >= n { Ok(l.items) } else { Err(format!("{} messages", l.items.len())) }
        })
        .await
    }

    /// The delivery job `id` once `done` holds for it (see [`delivered`](Self::delivered)).
    pub async fn job_when(
        &self,
        id: &str,
        what: &str,
        done: impl Fn(&callsign_store::DeliveryJob) -> bool,
    ) -> callsign_store::DeliveryJob {
        self.delivered(format!("job {id} is {what}"), async || {
            let j = self.app.store.get_job(id).await.unwrap().expect("the job exists");
            if done(&j) { Ok(j) } else { Err(format!("{} after {} attempts", j.status.as_str(), j.attempts)) }
        })
        .await
    }

    /// The delivery job `id` once it has ended: no longer pending or running (see [`delivered`](Self::delivered)).
    /// (A worker records the outcome just after the provider answers, and logs the event just after that.)
    pub async fn finished(&self, id: &str) -> callsign_store::DeliveryJob {
        use callsign_store::JobStatus;
        self.job_when(id, "finished", |j| j.status != JobStatus::Running && j.status != JobStatus::Pending).await
    }

    /// The events of type `ty`, newest first (the log API, as an operator sees them).
    pub async fn logs(&self, token: &str, ty: &str) -> Vec<Value> {
        let (s, v) = self.get(token, &format!("/api/v2/logs?q=type:{ty}&per_page=100")).await;
        assert_eq!(s, 200, "{v}");
        v.as_array().unwrap().clone()
    }

    /// At least `n` events of type `ty` once delivery has logged them (see [`delivered`](Self::delivered)).
    pub async fn logged(&self, token: &str, ty: &str, n: usize) -> Vec<Value> {
        self.delivered(format!("{n} `{ty}` events are logged"), async || {
            let l = self.logs(token, ty).await;
            if l.len() >= n { Ok(l) } else { Err(format!("{} events", l.len())) }
        })
        .await
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
