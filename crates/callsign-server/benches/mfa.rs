//! Throughput and latency of the MFA challenge (`POST /mfa/challenge`) and verify (the `mfa-oob` grant on
//! `POST /oauth/token`) requests, beside `GET /healthz` of the same server as a baseline; on SQLite, and on
//! PostgreSQL when `CALLSIGN_TEST_POSTGRES_URL` is set. Figures are printed, never asserted.
//!
//! Run with `cargo bench -p callsign-server --bench mfa`. Sizes (environment):
//! - `CALLSIGN_BENCH_REQUESTS` (default 2000): challenges, and as many verifications;
//! - `CALLSIGN_BENCH_HEALTHZ_REQUESTS` (default 20000): baseline requests;
//! - `CALLSIGN_BENCH_CONCURRENCY` (default 16): concurrent clients in every phase;
//! - `CALLSIGN_BENCH_PER_USER` (default 5, at most 10): challenges per user (the send limit is 10 per user per hour).
//!
//! Codes live 5 minutes and mfa_tokens 10: sizes so large that the challenge phase, the delivery and the verify phase
//! take longer than that show up as verify errors.
//!
//! What is real: the HTTP server (axum on 127.0.0.1, port 0), the reqwest client, the wall clock (`SystemClock`),
//! the store, and the delivery workers with the development provider (the dev inbox).
//! What is prepared outside the API, before any timing: users, their confirmed phone enrollments (and recovery
//! codes) and their mfa_tokens are inserted directly through the `Store` (an mfa_token is the `token_hash` of a
//! random `mfa_…` token, 10-minute expiry, exactly as the password grant stores it). The password grant (argon2)
//! and enrollment are therefore not measured here. One mfa_token per challenge, because a successful
//! verification spends its mfa_token.
//!
//! The codes are read after the delivery workers drained every job: each user's messages from the dev inbox,
//! matched to that user's challenges with the stored keyed hash (`otp::verify_code` with the app's OTP key).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use callsign_core::guardian::GuardianConfig;
use callsign_core::mfa::{GRANT_MFA_OOB, MFA_TOKEN_LIFETIME};
use callsign_domain::hash::token_hash;
use callsign_domain::rng::{ALNUM, DIGITS, from_alphabet};
use callsign_domain::{Clock, OsRandom, SystemClock};
use callsign_server::app::AppState;
use callsign_server::config::{Config, Num, RawConfig};
use callsign_store::{
    Channel, Enrollment, EnrollmentKind, EnrollmentStatus, JobStatus, MfaToken, Page, Store, User, UserProfile,
};
use serde_json::{Value, json};

const POSTGRES_URL_VAR: &str = "CALLSIGN_TEST_POSTGRES_URL";

/// The benchmark's own stopwatch (the server keeps reading its injected clock).
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| panic!("{name} must be a positive integer, got `{v}`")),
        Err(_) => default,
    }
}

#[derive(Debug, Clone, Copy)]
struct Sizes {
    requests: usize,
    healthz: usize,
    concurrency: usize,
    per_user: usize,
}

impl Sizes {
    fn from_env() -> Sizes {
        Sizes {
            requests: env_usize("CALLSIGN_BENCH_REQUESTS", 2000).max(1),
            healthz: env_usize("CALLSIGN_BENCH_HEALTHZ_REQUESTS", 20000).max(1),
            concurrency: env_usize("CALLSIGN_BENCH_CONCURRENCY", 16).max(1),
            per_user: env_usize("CALLSIGN_BENCH_PER_USER", 5).clamp(1, 10),
        }
    }
    fn users(&self) -> usize {
        self.requests.div_ceil(self.per_user)
    }
}

// --- driving requests ------------------------------------------------------------------------------------------

/// What one phase measured.
#[derive(Default)]
struct Outcome {
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
    wall: Duration,
}

impl Outcome {
    fn print(&mut self, backend: &str, phase: &str, concurrency: usize) {
        self.latencies.sort_unstable();
        let n = self.latencies.len();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let pct = |q: f64| {
            if n == 0 { Duration::ZERO } else { self.latencies[((q * n as f64).ceil() as usize).clamp(1, n) - 1] }
        };
        let rps = if self.wall.is_zero() { 0.0 } else { n as f64 / self.wall.as_secs_f64() };
        println!(
            "{backend:<9} {phase:<10} {n:>6} req  c={concurrency:<3} {rps:>9.1} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  errors {}",
            ms(pct(0.50)),
            ms(pct(0.99)),
            ms(self.latencies.last().copied().unwrap_or_default()),
            self.errors,
        );
        if let Some(e) = &self.first_error {
            println!("{:<9} {:<10} first error: {e}", "", "");
        }
    }
}

/// Send `total` requests from `concurrency` client tasks, each taking the next index in turn; `f(i)` sends
/// request `i` and reads the whole response. The wall time runs from the first request to the last response.
async fn drive<F, Fut>(total: usize, concurrency: usize, f: F) -> Outcome
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let f = Arc::new(f);
    let next = Arc::new(AtomicUsize::new(0));
    let start = now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (f, next) = (f.clone(), next.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let (mut errors, mut first_error) = (0, None);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let t = now();
                    let r = f(i).await;
                    latencies.push(t.elapsed());
                    if let Err(e) = r {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
                (latencies, errors, first_error)
            })
        })
        .collect();
    let mut out = Outcome::default();
    for t in tasks {
        let (l, e, first) = t.await.unwrap();
        out.latencies.extend(l);
        out.errors += e;
        if out.first_error.is_none() {
            out.first_error = first;
        }
    }
    out.wall = start.elapsed();
    out
}

/// Status and body of a response, read to the end.
async fn finish(r: Result<reqwest::Response, reqwest::Error>) -> Result<(u16, String), String> {
    let r = r.map_err(|e| format!("transport: {e}"))?;
    let status = r.status().as_u16();
    let body = r.text().await.map_err(|e| format!("reading the body: {e}"))?;
    Ok((status, body))
}

fn short(s: &str) -> &str {
    s.get(..200).unwrap_or(s)
}

// --- the server --------------------------------------------------------------------------------------------------

enum Backend {
    Sqlite,
    /// SQLite with one active `http` log stream to a local sink (the cost of streaming, beside `Sqlite`).
    SqliteWithStream,
    Postgres {
        url: String,
    },
}

/// A local log-stream sink: counts the events it is sent (JSON lines).
async fn counting_sink() -> (String, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let app = axum::Router::new().route(
        "/logs",
        axum::routing::post(move |body: String| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(body.lines().filter(|l| !l.trim().is_empty()).count(), Ordering::Relaxed);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/logs"), seen)
}

struct Server {
    label: &'static str,
    base: String,
    app: AppState,
    http: reqwest::Client,
    bootstrap: (String, String),
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    stop_workers: tokio::sync::watch::Sender<bool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    /// The PostgreSQL store and its schema, to close and drop at the end.
    postgres: Option<(callsign_store_postgres::PostgresStore, String, String)>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(backend: Backend, sizes: Sizes) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let raw = RawConfig {
            listen: Some(addr.to_string()),
            data_dir: Some(dir.path().join("data")),
            database_url: Some(format!("sqlite://{}/callsign.db", dir.path().display())),
            // The development provider stops after `dev_provider_cap` messages (100 by default).
            dev_provider_cap: Some(Num(u64::try_from(sizes.requests).unwrap() * 2 + 1000)),
            ..Default::default()
        };
        let config = Config::resolve(raw).unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let (label, postgres, (app, report)) = match backend {
            Backend::Sqlite => ("sqlite", None, AppState::start(config, clock, Arc::new(OsRandom)).await.unwrap()),
            Backend::SqliteWithStream => {
                ("sqlite+ls", None, AppState::start(config, clock, Arc::new(OsRandom)).await.unwrap())
            }
            Backend::Postgres { url } => {
                let schema = format!("cs_bench_{}_{}", std::process::id(), from_alphabet(&OsRandom, DIGITS, 12));
                let store = callsign_store_postgres::PostgresStore::connect_with_schema(&url, &schema)
                    .await
                    .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_URL_VAR} (schema {schema}): {e}"));
                store.migrate().await.unwrap();
                let started =
                    AppState::with_store(config, Arc::new(store.clone()), clock, Arc::new(OsRandom)).await.unwrap();
                ("postgres", Some((store, url, schema)), started)
            }
        };
        let creds_path = report.bootstrap_file.expect("first start writes bootstrap credentials");
        let creds: Value = serde_json::from_str(&std::fs::read_to_string(creds_path).unwrap()).unwrap();
        let (stop_workers, workers_rx) = tokio::sync::watch::channel(false);
        let mut workers = callsign_core::delivery::spawn_workers(&app.core, workers_rx.clone());
        // As `callsign serve` does: log-stream delivery beside the delivery workers.
        workers.push(callsign_core::log_streams::spawn_delivery(&app.core, workers_rx));
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(callsign_server::http::serve(app.clone(), listener, None, async move {
            let _ = rx.await;
        }));
        Server {
            label,
            base: format!("http://{addr}"),
            app,
            http: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap(),
            bootstrap: (
                creds["client_id"].as_str().unwrap().to_owned(),
                creds["client_secret"].as_str().unwrap().to_owned(),
            ),
            stop,
            task,
            stop_workers,
            workers,
            postgres,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stop the server and the workers; on PostgreSQL close the pool and drop the schema.
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
        let _ = self.stop_workers.send(true);
        for w in self.workers {
            w.await.unwrap();
        }
        drop(self.app);
        if let Some((store, url, schema)) = self.postgres {
            store.close().await;
            drop_schema(url, schema).await;
        }
    }
}

/// callsign-server does not depend on sqlx itself, so the schema is dropped with `psql` when it is installed;
/// otherwise the command to run is printed.
async fn drop_schema(url: String, schema: String) {
    let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
    let ran = {
        let (url, sql) = (url.clone(), sql.clone());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("psql")
                .args([url.as_str(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql.as_str()])
                .output()
        })
        .await
        .unwrap()
    };
    match ran {
        Ok(o) if o.status.success() => println!("postgres  dropped schema {schema}"),
        Ok(o) => println!(
            "postgres  could not drop schema {schema} ({}); run: psql \"$CALLSIGN_TEST_POSTGRES_URL\" -c '{sql}'",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => println!(
            "postgres  could not run psql to drop schema {schema} ({e}); run: psql \"$CALLSIGN_TEST_POSTGRES_URL\" -c '{sql}'"
        ),
    }
}

// --- preparation -------------------------------------------------------------------------------------------------

struct Prepared {
    client_id: String,
    client_secret: String,
    /// Per user: (user_id, phone).
    users: Vec<(String, String)>,
    /// Per challenge: the raw mfa_token; challenge `i` belongs to user `i % users`.
    mfa_tokens: Vec<String>,
}

/// An application allowed the MFA grants, the phone factor on for every application, and the users, phones and
/// mfa_tokens inserted through the store.
async fn prepare(s: &Server, sizes: Sizes) -> Prepared {
    let (id, secret) = &s.bootstrap;
    let r = finish(
        s.http
            .post(s.url("/oauth/token"))
            .json(&json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret, "audience": s.app.config.management_audience()}))
            .send()
            .await,
    )
    .await
    .unwrap();
    assert_eq!(r.0, 200, "{}", r.1);
    let admin: Value = serde_json::from_str(&r.1).unwrap();
    let r = finish(
        s.http
            .post(s.url("/api/v2/clients"))
            .bearer_auth(admin["access_token"].as_str().unwrap())
            .json(&json!({"name": "bench", "app_type": "regular_web", "grant_types": ["password", GRANT_MFA_OOB]}))
            .send()
            .await,
    )
    .await
    .unwrap();
    assert_eq!(r.0, 201, "{}", r.1);
    let client: Value = serde_json::from_str(&r.1).unwrap();
    let client_id = client["client_id"].as_str().unwrap().to_owned();
    let client_secret = client["client_secret"].as_str().unwrap().to_owned();

    let mut g = GuardianConfig::load_for_update(&s.app).await.unwrap();
    g.factors.insert("sms".into(), true);
    g.factors.insert("recovery-code".into(), true);
    g.policies = vec!["all-applications".into()];
    g.message_types = vec!["sms".into()];
    g.save(&s.app).await.unwrap();
    // Every request comes from one address: suspicious IP throttling (50 messages per IP by default) is off.
    let mut protection = callsign_core::attack::load(&s.app).await.unwrap();
    protection.suspicious_ip_throttling.enabled = false;
    callsign_core::attack::save(&s.app, &protection).await.unwrap();

    let store = s.app.store.clone();
    let now = s.app.clock.now();
    let enrollment = |user_id: &str, kind: EnrollmentKind| Enrollment {
        id: format!("dev_{}", from_alphabet(&OsRandom, ALNUM, 16)),
        user_id: user_id.to_owned(),
        kind,
        status: EnrollmentStatus::Confirmed,
        phone_number: None,
        preferred_channel: None,
        name: None,
        secret_hash: None,
        created_at: now,
        enrolled_at: Some(now),
        last_auth: None,
    };
    let mut users = Vec::with_capacity(sizes.users());
    for u in 0..sizes.users() {
        let user_id = callsign_domain::ids::user_id(&OsRandom);
        // Valid numbers (a +1 555 area code is not one, and delivery parses the recipient).
        let phone = format!("+1415{:07}", 5_550_000 + u);
        store
            .create_user(&User {
                user_id: user_id.clone(),
                email: Some(format!("bench{u}@example.com")),
                password_hash: None,
                created_at: now,
                updated_at: now,
                last_login: None,
                logins_count: 0,
                profile: UserProfile {
                    connection: "Username-Password-Authentication".into(),
                    email_verified: true,
                    ..Default::default()
                },
            })
            .await
            .unwrap();
        store
            .create_enrollment(&Enrollment {
                phone_number: Some(phone.clone()),
                preferred_channel: Some(Channel::Sms),
                name: Some(callsign_domain::phone::mask(&phone)),
                ..enrollment(&user_id, EnrollmentKind::Phone)
            })
            .await
            .unwrap();
        let recovery = from_alphabet(&OsRandom, ALNUM, 24).to_ascii_uppercase();
        store
            .create_enrollment(&Enrollment {
                secret_hash: Some(token_hash(&recovery)),
                ..enrollment(&user_id, EnrollmentKind::RecoveryCode)
            })
            .await
            .unwrap();
        users.push((user_id, phone));
    }
    let mut mfa_tokens = Vec::with_capacity(sizes.requests);
    for i in 0..sizes.requests {
        let raw = format!("mfa_{}", from_alphabet(&OsRandom, ALNUM, 43));
        store
            .insert_mfa_token(&MfaToken {
                token_hash: token_hash(&raw),
                user_id: users[i % users.len()].0.clone(),
                client_id: client_id.clone(),
                audience: None,
                scope: "openid email".into(),
                created_at: now,
                expires_at: now.plus(MFA_TOKEN_LIFETIME),
            })
            .await
            .unwrap();
        mfa_tokens.push(raw);
    }
    Prepared { client_id, client_secret, users, mfa_tokens }
}

// --- one backend ---------------------------------------------------------------------------------------------------

async fn run(backend: Backend, sizes: Sizes) {
    let streamed = matches!(backend, Backend::SqliteWithStream);
    let s = Server::start(backend, sizes).await;
    let label = s.label;
    let sink = if streamed {
        let (url, seen) = counting_sink().await;
        let body = json!({"name": "bench", "type": "http", "sink": {"httpEndpoint": url, "httpContentType": "application/json", "httpContentFormat": "JSONLINES"}});
        callsign_core::log_streams::create(&s.app, &body).await.unwrap();
        println!("{label:<9} one active http log stream (JSONLINES) to a local sink, from the start");
        Some(seen)
    } else {
        None
    };
    let t = now();
    let p = Arc::new(prepare(&s, sizes).await);
    println!(
        "{label:<9} setup: {} users (confirmed phone + recovery code), {} mfa_tokens inserted through the store in {:.1} s",
        p.users.len(),
        p.mfa_tokens.len(),
        t.elapsed().as_secs_f64()
    );
    let c = sizes.concurrency;

    // Context for the verify figures: each successful verification signs an access token and an ID token (RS256).
    let claims = json!({"iss": s.app.config.issuer(), "sub": p.users[0].0, "aud": "bench", "iat": 0, "exp": 1, "scope": "openid email"});
    let claims = claims.as_object().unwrap().clone();
    let t = now();
    for _ in 0..200 {
        s.app.signer.sign(&claims).await.unwrap();
    }
    println!(
        "{label:<9} context: one RS256 signature takes {:.2} ms here, one at a time (not timed as a phase)",
        t.elapsed().as_secs_f64() * 1000.0 / 200.0
    );

    // Phase 1: the baseline. A warm-up opens the client's connections first.
    let healthz = s.url("/healthz");
    let get = |http: reqwest::Client, url: String| async move {
        let (status, body) = finish(http.get(&url).send().await).await?;
        if status == 200 { Ok(()) } else { Err(format!("{status} {}", short(&body))) }
    };
    let (http, url) = (s.http.clone(), healthz.clone());
    drive(c * 4, c, move |_| get(http.clone(), url.clone())).await;
    let (http, url) = (s.http.clone(), healthz.clone());
    drive(sizes.healthz, c, move |_| get(http.clone(), url.clone())).await.print(label, "healthz", c);

    // Phase 2: challenges, user `i % users` for request `i`, so concurrent requests are mostly for different users.
    let oob: Arc<Vec<OnceLock<String>>> = Arc::new((0..sizes.requests).map(|_| OnceLock::new()).collect());
    let (http, url, pp, oo) = (s.http.clone(), s.url("/mfa/challenge"), p.clone(), oob.clone());
    let mut challenged = drive(sizes.requests, c, move |i| {
        let (http, url, p, oob) = (http.clone(), url.clone(), pp.clone(), oo.clone());
        async move {
            let body = json!({"client_id": p.client_id, "client_secret": p.client_secret, "mfa_token": p.mfa_tokens[i], "challenge_type": "oob"});
            let (status, text) = finish(http.post(&url).json(&body).send().await).await?;
            if status != 200 {
                return Err(format!("{status} {}", short(&text)));
            }
            let v: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {}", short(&text)))?;
            let code = v["oob_code"].as_str().ok_or_else(|| format!("no oob_code: {}", short(&text)))?;
            let _ = oob[i].set(code.to_owned());
            Ok(())
        }
    })
    .await;
    let drained_from = now();
    challenged.print(label, "challenge", c);

    // Every accepted challenge queued one SMS: wait until the workers delivered them all to the dev inbox.
    let sent = oob.iter().filter(|o| o.get().is_some()).count() as u64;
    let mut delivered = 0;
    while drained_from.elapsed() < Duration::from_secs(300) {
        delivered = s.app.store.count_dev_messages().await.unwrap();
        let queued = s.app.store.list_jobs(Some(JobStatus::Pending), 1).await.unwrap().len();
        if delivered >= sent && queued == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let failed_jobs = s.app.store.list_jobs(Some(JobStatus::Failed), 1000).await.unwrap();
    let failed = failed_jobs.len();
    if let Some(j) = failed_jobs.first() {
        println!("{label:<9} a failed job: {}", j.last_error.as_deref().unwrap_or("(no error recorded)"));
    }
    println!(
        "{label:<9} delivery   {delivered} of {sent} messages in the dev inbox {:.2} s after the last challenge answered; {failed} failed jobs (not timed, not a throughput figure)",
        drained_from.elapsed().as_secs_f64()
    );

    // The codes: each user's messages, matched to that user's challenges by the stored keyed hash.
    let mut inputs: Vec<(String, String, String)> = Vec::new();
    let mut unmatched = 0;
    for (u, (_, phone)) in p.users.iter().enumerate() {
        let msgs = s.app.store.list_dev_messages(Some(phone), Page::new(0, 100)).await.unwrap().items;
        let codes: Vec<String> =
            msgs.iter().map(|m| m.text.chars().filter(char::is_ascii_digit).take(6).collect()).collect();
        for i in (u..sizes.requests).step_by(p.users.len()) {
            let Some(oob_code) = oob[i].get() else { continue };
            let challenge = s.app.store.get_challenge(&token_hash(oob_code)).await.unwrap().unwrap();
            let found = codes.iter().find(|code| {
                callsign_domain::otp::verify_code(&s.app.otp_key, &challenge.id, code, &challenge.code_hash)
            });
            match found {
                Some(code) => inputs.push((p.mfa_tokens[i].clone(), oob_code.clone(), code.clone())),
                None => unmatched += 1,
            }
        }
    }
    if unmatched > 0 {
        println!("{label:<9} {unmatched} challenges had no code in the dev inbox; they are not verified");
    }

    // Phase 3: the mfa-oob grant with the right codes (each spends its mfa_token and its challenge).
    let inputs = Arc::new(inputs);
    let (http, url, pp, ii) = (s.http.clone(), s.url("/oauth/token"), p.clone(), inputs.clone());
    drive(inputs.len(), c, move |i| {
        let (http, url, p, inputs) = (http.clone(), url.clone(), pp.clone(), ii.clone());
        async move {
            let (mfa, oob_code, code) = &inputs[i];
            let form = [
                ("grant_type", GRANT_MFA_OOB),
                ("client_id", &p.client_id),
                ("client_secret", &p.client_secret),
                ("mfa_token", mfa),
                ("oob_code", oob_code),
                ("binding_code", code),
            ];
            let (status, text) = finish(http.post(&url).form(&form).send().await).await?;
            let ok = status == 200
                && serde_json::from_str::<Value>(&text)
                    .is_ok_and(|v| v["access_token"].is_string() && v["id_token"].is_string());
            if ok { Ok(()) } else { Err(format!("{status} {}", short(&text))) }
        }
    })
    .await
    .print(label, "verify", c);

    if let Some(seen) = sink {
        // Every event written (the setup's included) reaches the sink: how long after the last verify.
        let after = now();
        let mut lag = u64::MAX;
        while after.elapsed() < Duration::from_secs(120) {
            let streams = s.app.store.list_log_streams().await.unwrap();
            lag = s.app.store.log_lag(streams[0].cursor).await.unwrap().0;
            if lag == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!(
            "{label:<9} stream     {} events at the sink, {lag} behind, {:.2} s after the last verify answered (not timed as a phase)",
            seen.load(Ordering::Relaxed),
            after.elapsed().as_secs_f64()
        );
    }

    s.stop().await;
}

#[tokio::main]
async fn main() {
    let sizes = Sizes::from_env();
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    println!("Callsign MFA benchmark: challenge and verify beside GET /healthz, real HTTP on 127.0.0.1");
    println!(
        "machine: {cores} cores ({model}). The client tasks, the server and its delivery workers share this process, \
         one tokio runtime and these cores: the figures are what one box does with both ends, not server capacity."
    );
    println!(
        "sizes: {} healthz, {} challenges and as many verifications, c={} clients, {} users ({} challenges each, one mfa_token per challenge){}",
        sizes.healthz,
        sizes.requests,
        sizes.concurrency,
        sizes.users(),
        sizes.per_user,
        if cfg!(debug_assertions) { "; DEBUG BUILD, figures meaningless" } else { "" }
    );
    println!();
    run(Backend::Sqlite, sizes).await;
    println!();
    run(Backend::SqliteWithStream, sizes).await;
    println!();
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => run(Backend::Postgres { url }, sizes).await,
        _ => println!("postgres  skipped: {POSTGRES_URL_VAR} is not set"),
    }
}
