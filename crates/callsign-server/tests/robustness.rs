//! The server under hostile or careless clients, over real sockets: slow headers (slowloris), idle connections,
//! the connection cap, oversized and slow bodies, wrong content types, a login flood against the bounded password
//! hasher, and what the development provider writes to the log.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use callsign_server::config::{Num, RawConfig, RawHttp};
use common::TestApp;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn http_limits(f: impl FnOnce(&mut RawHttp)) -> impl FnOnce(&mut RawConfig) {
    move |raw: &mut RawConfig| {
        let mut h = RawHttp::default();
        f(&mut h);
        raw.http = Some(h);
    }
}

fn addr(t: &TestApp) -> String {
    t.base.trim_start_matches("http://").to_owned()
}

/// Read until the server closes the connection (or `limit` passes); what was read, and whether it closed.
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into_owned(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), false),
        }
    }
}

/// Read one HTTP/1.1 response's head and body (by Content-Length).
async fn read_response(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "closed before a full response: {}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if out.len() >= end + 4 + len {
                return text;
            }
        }
    }
}

#[tokio::test]
async fn a_slowloris_connection_is_closed_after_the_header_timeout() {
    let t = TestApp::spawn_with(http_limits(|h| h.header_read_timeout_secs = Some(Num(1)))).await;
    let mut s = TcpStream::connect(addr(&t)).await.unwrap();
    s.write_all(b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: applica").await.unwrap();
    #[allow(clippy::disallowed_methods)] // how long the server took to hang up: real time, not the app's clock
    let started = Instant::now();
    // Keep trickling header bytes: activity does not extend the header deadline.
    let mut closed = false;
    for _ in 0..40 {
        if s.write_all(b"t").await.is_err() {
            closed = true;
            break;
        }
        let (_, c) = read_until_closed(&mut s, Duration::from_millis(250)).await;
        if c {
            closed = true;
            break;
        }
    }
    assert!(closed, "still open after 10 s of trickled headers");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "closed only after {took:?} with a 1 s header timeout");
    // The server still serves others.
    let r = t.http.get(t.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn http11_answers_advertise_half_the_header_timeout_as_the_keep_alive() {
    // A kept-alive connection whose next request has not begun within the header timeout is closed; the answers
    // tell clients to stop reusing it well before (a client reusing it at that moment gets a network error).
    let t = TestApp::spawn().await;
    let mut s = TcpStream::connect(addr(&t)).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let r = read_response(&mut s).await;
    assert!(r.starts_with("HTTP/1.1 200") && r.to_ascii_lowercase().contains("keep-alive: timeout=15\r\n"), "{r}");
    let t = TestApp::spawn_with(http_limits(|h| h.header_read_timeout_secs = Some(Num(1)))).await;
    let r = t.http.get(t.url("/oauth/token")).send().await.unwrap();
    assert_eq!(r.headers().get("keep-alive").unwrap(), "timeout=1", "at least one second");
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    // Header timeout far away, so only the idle timeout can close it.
    let t = TestApp::spawn_with(http_limits(|h| {
        h.header_read_timeout_secs = Some(Num(600));
        h.idle_timeout_secs = Some(Num(1));
    }))
    .await;
    let mut s = TcpStream::connect(addr(&t)).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let r = read_response(&mut s).await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let (_, closed) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(closed, "an idle connection stayed open for 10 s with a 1 s idle timeout");
}

#[tokio::test]
async fn connections_over_the_cap_wait_until_one_closes() {
    let t = TestApp::spawn_with(http_limits(|h| h.max_connections = Some(Num(2)))).await;
    let a = TcpStream::connect(addr(&t)).await.unwrap();
    let mut b = TcpStream::connect(addr(&t)).await.unwrap();
    // Both slots are taken (b proves the server accepted it by answering).
    b.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert!(read_response(&mut b).await.starts_with("HTTP/1.1 200"));
    let mut c = TcpStream::connect(addr(&t)).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 64];
    assert!(
        tokio::time::timeout(Duration::from_millis(800), c.read(&mut buf)).await.is_err(),
        "a third connection was served while two were open with max_connections = 2"
    );
    drop(a);
    let r = read_response(&mut c).await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
}

#[tokio::test]
async fn oversized_bodies_get_413_in_each_apis_shape() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    // 20 MB declared: refused before it is read.
    for (path, auth) in [("/api/v2/users", true), ("/oauth/token", false), ("/mfa/associate", false)] {
        let mut s = TcpStream::connect(addr(&t)).await.unwrap();
        let bearer = if auth { format!("Authorization: Bearer {token}\r\n") } else { String::new() };
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\n{bearer}Content-Type: application/json\r\nContent-Length: 20000000\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&vec![b' '; 64 * 1024]).await.unwrap();
        let r = read_response(&mut s).await;
        assert!(r.starts_with("HTTP/1.1 413"), "{path}: {r}");
        let body: Value = serde_json::from_str(&r[r.find("\r\n\r\n").unwrap() + 4..]).unwrap();
        if auth {
            assert_eq!(
                (body["statusCode"].as_u64(), body["errorCode"].as_str()),
                (Some(413), Some("payload_too_large"))
            );
        } else {
            assert_eq!(body["error"], "invalid_request", "{body}");
            assert!(body["error_description"].as_str().unwrap().contains("65536 bytes"), "{body}");
        }
    }
    // Without a length (chunked), the limit is found while reading; 70 KiB is too much for /oauth/token only.
    let chunk = format!("{{\"grant_type\":\"client_credentials\",\"x\":\"{}\"}}", "a".repeat(70 * 1024));
    for (path, bearer, status) in [
        ("/oauth/token", String::new(), "413"),
        ("/api/v2/clients", format!("Authorization: Bearer {token}\r\n"), "400"),
    ] {
        let mut s = TcpStream::connect(addr(&t)).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\n{bearer}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(format!("{:x}\r\n{chunk}\r\n0\r\n\r\n", chunk.len()).as_bytes()).await.unwrap();
        let r = read_response(&mut s).await;
        // Under the Management API's 1 MiB the body is parsed, and refused for its content.
        assert!(r.starts_with(&format!("HTTP/1.1 {status}")), "{path}: {r}");
    }
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_gets_408() {
    let t = TestApp::spawn_with(http_limits(|h| h.body_timeout_secs = Some(Num(1)))).await;
    let mut s = TcpStream::connect(addr(&t)).await.unwrap();
    s.write_all(
        b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"gr",
    )
    .await
    .unwrap();
    let r = read_response(&mut s).await;
    assert!(r.starts_with("HTTP/1.1 408"), "{r}");
    assert!(r.contains("\"error\":\"invalid_request\""), "{r}");
}

#[tokio::test]
async fn bodies_are_json_or_form_everywhere_and_anything_else_is_415() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let send = |path: &'static str, ct: Option<&'static str>, body: &'static str| {
        let mut r = t.http.post(t.url(path)).bearer_auth(&token).body(body);
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        async move {
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    for path in ["/oauth/token", "/mfa/associate", "/mfa/challenge", "/api/v2/clients"] {
        for ct in [Some("text/plain"), None, Some("application/xml")] {
            let (s, v) = send(path, ct, r#"{"name":"x"}"#).await;
            assert_eq!(s, 415, "{path} {ct:?}: {v}");
            if path.starts_with("/api/v2") {
                assert_eq!(v["errorCode"], "unsupported_media_type", "{v}");
            } else {
                assert_eq!(v["error"], "invalid_request", "{v}");
            }
        }
    }
    // JSON with parameters or a +json type, and form, are parsed; an empty body without a type reads as {}.
    let (s, v) = send("/api/v2/clients", Some("application/json; charset=utf-8"), r#"{"name":"a"}"#).await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = send("/api/v2/clients", Some("application/vnd.api+json"), r#"{"name":"b"}"#).await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = send("/api/v2/clients", Some("application/x-www-form-urlencoded"), "name=c").await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = send("/oauth/token", None, "").await;
    assert_eq!((s, v["error_description"].as_str()), (400, Some("Missing required parameter: grant_type")), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_flood_never_runs_more_hashes_than_the_bound_and_the_rest_get_503() {
    let t = TestApp::spawn_with(|raw| {
        raw.password_hash_concurrency = Some(Num(2));
        raw.password_hash_queue_ms = Some(Num(0));
    })
    .await;
    let admin = t.mgmt_token().await;
    let (s, c) = t
        .post(&admin, "/api/v2/clients", json!({"name": "app", "app_type": "regular_web", "grant_types": ["password"]}))
        .await;
    assert_eq!(s, 201, "{c}");
    let (s, u) = t
        .post(
            &admin,
            "/api/v2/users",
            json!({"connection": "Username-Password-Authentication", "email": "ann@example.com", "password": "Str0ng-Passw0rd"}),
        )
        .await;
    assert_eq!(s, 201, "{u}");
    // 40 logins into one account from one address at once: brute-force protection takes a token per attempt in
    // flight (10 by default), so its cap is raised here; this test is about the bound on password hashes.
    let (s, v) =
        t.patch(&admin, "/api/v2/attack-protection/brute-force-protection", json!({"max_attempts": 100})).await;
    assert_eq!(s, 200, "{v}");
    let barrier = Arc::new(tokio::sync::Barrier::new(40));
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let (http, url, barrier) = (reqwest::Client::new(), t.url("/oauth/token"), barrier.clone());
        let body = json!({"grant_type": "password", "client_id": c["client_id"], "client_secret": c["client_secret"],
                          "username": "ann@example.com", "password": "Str0ng-Passw0rd"});
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let r = http.post(url).json(&body).send().await.unwrap();
            let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            (r.status().as_u16(), retry, r.json::<Value>().await.unwrap())
        }));
    }
    let mut busy = 0;
    for task in tasks {
        let (status, retry, body) = task.await.unwrap();
        match status {
            200 => assert!(body["access_token"].is_string(), "{body}"),
            503 => {
                busy += 1;
                assert_eq!(body["error"], "temporarily_unavailable", "{body}");
                assert_eq!(retry.as_deref(), Some("1"));
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let p = &t.app.passwords;
    assert!(p.peak() <= 2, "{} hashes ran at once with a bound of 2", p.peak());
    assert!(busy > 0, "40 logins at once against 2 slots and no queue refuse some");
    assert_eq!(p.refused(), busy);
    assert_eq!(p.in_flight(), 0);
    // The flood is over: a login works again.
    let (s, v) = t
        .token_request(
            json!({"grant_type": "password", "client_id": c["client_id"], "client_secret": c["client_secret"],
                               "username": "ann@example.com", "password": "Str0ng-Passw0rd"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
}

/// Captures what the server logs (on this thread: the default test runtime runs the server's tasks here too).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

async fn dev_message_log(log_messages: bool) -> (String, String) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt().with_writer(captured.clone()).with_ansi(false).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let c = common::mfa::setup_with(
        |raw| raw.dev_provider_log_messages = Some(callsign_server::config::Flag(log_messages)),
        &["sms"],
    )
    .await;
    let mfa = c.mfa_token().await;
    let (s, a) = c
        .associate(
            &mfa,
            json!({"authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": common::mfa::PHONE}),
        )
        .await;
    assert_eq!(s, 200, "{a}");
    let code = c.t.code_for(common::mfa::PHONE, 1).await;
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    (log, code)
}

#[tokio::test]
async fn the_development_provider_logs_neither_the_number_nor_the_code() {
    let (log, code) = dev_message_log(false).await;
    assert!(log.contains("development provider message recorded"), "{log}");
    assert!(log.contains("XXXXXXXX2671"), "the masked number is there: {log}");
    assert!(!log.contains("+14155552671"), "{log}");
    assert!(!log.contains(&code), "the code {code} is in the log: {log}");
}

#[tokio::test]
async fn the_development_provider_logs_the_message_when_asked_to() {
    let (log, code) = dev_message_log(true).await;
    assert!(log.contains("+14155552671") && log.contains(&code), "{log}");
}

#[tokio::test]
async fn undecodable_paths_and_form_bodies_are_refused_in_each_apis_shape() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let r = t.http.delete(t.url("/mfa/authenticators/%FF")).bearer_auth("mfa_x").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_request", "{v}");
    let r = t.http.post(t.url("/callbacks/twilio/status/%FF")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errorCode"], "invalid_uri", "{v}");
    // A form value that is not UTF-8 once decoded is refused, not stored as U+FFFD.
    let r = t
        .http
        .post(t.url("/api/v2/clients"))
        .bearer_auth(&token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=%FF")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errorCode"], "invalid_body", "{v}");
    let r = t
        .http
        .post(t.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&client_id=%C3%28")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_request", "{v}");
}

/// The one callback route serves every provider with receipts; an unknown provider and one without receipts are 404
/// with a message that says which (not the router's "Not Found").
#[tokio::test]
async fn callbacks_for_an_unknown_provider_or_one_without_receipts_are_404() {
    let t = TestApp::spawn().await;
    for (provider, message) in [
        ("nexmo", "No such provider."),
        ("phone-message-hook", "This provider does not send delivery receipts."),
        ("auth0", "This provider does not send delivery receipts."),
    ] {
        let r = t.http.post(t.url(&format!("/callbacks/{provider}/status/job_1"))).send().await.unwrap();
        assert_eq!(r.status(), 404, "{provider}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["message"], message, "{provider}: {v}");
    }
    t.stop().await;
}
