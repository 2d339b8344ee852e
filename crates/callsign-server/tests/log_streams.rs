//! Log streams (`/api/v2/log-streams`): the Management API in Auth0's shape, and delivery to local sinks that
//! check each sink type's format (and refuse a wrong one), fail, are slow or refuse the credentials; paused and
//! suspended streams; a full MFA flow reaching an `http` sink. Delivery is driven in the test's task
//! ([`deliver`]: one turn of every due stream, by the manual clock) except in the MFA flow test, which runs the
//! node's background delivery as `callsign serve` does. On SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use callsign_server::config::{RawConfig, RawLogStreams};
use callsign_store::{LogBody, LogEvent};
use common::{TestApp, eventually};
use serde_json::{Value, json};

// --- a local sink ---

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    JsonArray,
    JsonLines,
    JsonObject,
    Datadog,
    Splunk,
    Sumo,
}

/// A sink that accepts only its own format (400 otherwise), answers `answer` (or hangs `delay_ms` first), and
/// keeps every event it accepted, in order.
#[derive(Clone)]
struct Sink {
    format: Format,
    events: Arc<Mutex<Vec<Value>>>,
    requests: Arc<AtomicUsize>,
    refused: Arc<Mutex<Vec<String>>>,
    answer: Arc<AtomicU64>,
    delay_ms: Arc<AtomicU64>,
    base: String,
}

impl Sink {
    async fn start(format: Format) -> Sink {
        let mut s = Sink {
            format,
            events: Arc::default(),
            requests: Arc::default(),
            refused: Arc::default(),
            answer: Arc::new(AtomicU64::new(200)),
            delay_ms: Arc::default(),
            base: String::new(),
        };
        let router = axum::Router::new().fallback(hit).with_state(s.clone());
        s.base = common::serve(router).await;
        s
    }

    fn answer(&self, status: u16) {
        self.answer.store(u64::from(status), Ordering::SeqCst);
    }

    /// The events the test wrote (leaving out those of the Management API calls the test made: `sapi`,
    /// `seccft`), in the order received; every event received once at most.
    fn log_ids(&self) -> Vec<String> {
        self.mine().iter().map(|e| e["log_id"].as_str().unwrap().to_owned()).collect()
    }

    fn types(&self) -> Vec<String> {
        self.mine().iter().map(|e| e["data"]["type"].as_str().unwrap().to_owned()).collect()
    }

    fn mine(&self) -> Vec<Value> {
        let all = self.events.lock().unwrap().clone();
        let mut ids: Vec<&str> = all.iter().map(|e| e["log_id"].as_str().unwrap()).collect();
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "an event was received twice");
        all.into_iter().filter(|e| !matches!(e["data"]["type"].as_str(), Some("sapi" | "seccft"))).collect()
    }

    fn refused(&self) -> Vec<String> {
        self.refused.lock().unwrap().clone()
    }
}

/// Check one envelope: `{"log_id", "data": {…, "log_id"}}`.
fn envelope(v: &Value) -> Result<Value, String> {
    let o = v.as_object().ok_or("an event is not an object")?;
    let id = o.get("log_id").and_then(Value::as_str).ok_or("no log_id")?;
    if o.len() != 2 || o["data"]["log_id"] != id || o["data"]["type"].as_str().is_none() {
        return Err(format!("not an envelope: {v}"));
    }
    Ok(v.clone())
}

fn lines(body: &[u8]) -> Result<Vec<Value>, String> {
    let text = std::str::from_utf8(body).map_err(|e| e.to_string())?;
    if !text.ends_with('\n') {
        return Err("lines do not end with a newline".into());
    }
    text.lines().map(|l| serde_json::from_str::<Value>(l).map_err(|e| format!("line: {e}"))).collect()
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// The events of a request in `format`, or why it is not in that format.
fn parse(format: Format, uri: &Uri, h: &HeaderMap, body: &[u8]) -> Result<Vec<Value>, String> {
    if !header(h, "content-type").starts_with("application/json") {
        return Err(format!("content-type {}", header(h, "content-type")));
    }
    match format {
        Format::JsonArray | Format::JsonLines | Format::JsonObject => {
            if header(h, "authorization") != "Bearer sink-secret" || header(h, "x-team") != "payments" {
                return Err("missing the authorization or the custom header".into());
            }
            match format {
                Format::JsonArray => {
                    let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
                    v.as_array().ok_or("not an array")?.iter().map(envelope).collect()
                }
                Format::JsonLines => lines(body)?.iter().map(envelope).collect(),
                _ => {
                    let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
                    Ok(vec![envelope(&v)?])
                }
            }
        }
        Format::Datadog => {
            if uri.path() != "/api/v2/logs" || header(h, "dd-api-key") != "dd-key" {
                return Err(format!("datadog: {} key {}", uri.path(), header(h, "dd-api-key")));
            }
            let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
            let items = v.as_array().ok_or("not an array")?;
            items
                .iter()
                .map(|i| {
                    if i["ddsource"] != "callsign" || i["service"].as_str().is_none() {
                        return Err(format!("not a Datadog log: {i}"));
                    }
                    let message: Value =
                        serde_json::from_str(i["message"].as_str().ok_or("no message")?).map_err(|e| e.to_string())?;
                    envelope(&message)
                })
                .collect()
        }
        Format::Splunk => {
            if uri.path() != "/services/collector/event" || header(h, "authorization") != "Splunk hec-token" {
                return Err(format!("splunk: {} {}", uri.path(), header(h, "authorization")));
            }
            serde_json::Deserializer::from_slice(body)
                .into_iter::<Value>()
                .map(|v| {
                    let v = v.map_err(|e| e.to_string())?;
                    if !v["time"].is_number() || v.as_object().is_none_or(|o| !o.contains_key("event")) {
                        return Err(format!("not an HEC event: {v}"));
                    }
                    envelope(&v["event"])
                })
                .collect()
        }
        Format::Sumo => {
            if uri.path() != "/receiver/v1/http/sumo-token" {
                return Err(format!("sumo: {}", uri.path()));
            }
            lines(body)?.iter().map(envelope).collect()
        }
    }
}

async fn hit(State(s): State<Sink>, uri: Uri, h: HeaderMap, body: Bytes) -> StatusCode {
    s.requests.fetch_add(1, Ordering::SeqCst);
    let delay = s.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let answer = StatusCode::from_u16(s.answer.load(Ordering::SeqCst) as u16).unwrap();
    if !answer.is_success() {
        return answer;
    }
    match parse(s.format, &uri, &h, &body) {
        Ok(events) => {
            s.events.lock().unwrap().extend(events);
            StatusCode::ACCEPTED
        }
        Err(e) => {
            s.refused.lock().unwrap().push(e);
            StatusCode::BAD_REQUEST
        }
    }
}

// --- the server ---

fn tuning(f: impl FnOnce(&mut RawLogStreams)) -> impl FnOnce(&mut RawConfig) {
    move |c: &mut RawConfig| {
        let mut ls = RawLogStreams {
            batch_age_ms: Some(callsign_server::config::Num(0)),
            failure_budget: Some(callsign_server::config::Num(3)),
            backoff_base_ms: Some(callsign_server::config::Num(1_000)),
            poll_ms: Some(callsign_server::config::Num(20)),
            ..Default::default()
        };
        f(&mut ls);
        c.log_streams = Some(ls);
    }
}

/// One turn of every due stream (by the manual clock), in this task.
async fn deliver(t: &TestApp) -> usize {
    callsign_core::log_streams::run_due(&t.app.core, "test-node").await.unwrap()
}

/// Write `n` events of type `ty` now (by the manual clock), as any feature would.
async fn write(t: &TestApp, ty: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        t.clock.advance(Duration::from_millis(1));
        let id = callsign_domain::ids::log_id(&callsign_domain::OsRandom, t.clock.now_ts());
        let e = LogEvent {
            log_id: id.clone(),
            date: t.clock.now_ts(),
            event_type: ty.to_owned(),
            user_id: Some("auth0|u1".into()),
            client_id: None,
            body: LogBody { description: Some("test".into()), details: json!({"n": ids.len()}), ..Default::default() },
        };
        t.app.store.insert_log(&e).await.unwrap();
        ids.push(id);
    }
    ids
}

trait Now {
    fn now_ts(&self) -> callsign_domain::Timestamp;
}

impl Now for callsign_domain::ManualClock {
    fn now_ts(&self) -> callsign_domain::Timestamp {
        callsign_domain::Clock::now(self)
    }
}

fn http_stream(sink: &Sink, format: &str) -> Value {
    json!({
        "name": format!("http {format}"),
        "type": "http",
        "sink": {
            "httpEndpoint": format!("{}/logs", sink.base),
            "httpAuthorization": "Bearer sink-secret",
            "httpContentType": "application/json",
            "httpContentFormat": format,
            "httpCustomHeaders": [{"header": "X-Team", "value": "payments"}],
        },
    })
}

async fn create(t: &TestApp, token: &str, body: Value) -> Value {
    let (s, v) = t.post(token, "/api/v2/log-streams", body).await;
    assert_eq!(s, 200, "{v}");
    v
}

/// Both backends: `$name` runs `$body(TestApp)` on SQLite, and `$name_postgres` on PostgreSQL when configured.
macro_rules! on_both {
    ($name:ident, $pg:ident, $config:expr, $body:ident) => {
        #[tokio::test]
        async fn $name() {
            $body(TestApp::spawn_with($config).await).await;
        }
        #[tokio::test]
        async fn $pg() {
            if let Some(t) = TestApp::spawn_postgres_with($config).await {
                $body(t).await;
            }
        }
    };
}

/// Until every event written is handed out (PostgreSQL hands out an event once every older transaction on the
/// cluster has ended: another test's, for a moment), deliver.
async fn deliver_until(t: &TestApp, what: &str, mut done: impl FnMut() -> bool) {
    eventually(what, async || {
        deliver(t).await;
        if done() { Ok(()) } else { Err("not yet".into()) }
    })
    .await;
}

// --- the Management API ---

async fn api(t: TestApp) {
    let token = t.mgmt_token().await;
    let sink = Sink::start(Format::JsonArray).await;
    let v = create(&t, &token, http_stream(&sink, "JSONARRAY")).await;
    let id = v["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("lst_"), "{v}");
    assert_eq!(v["name"], "http JSONARRAY");
    assert_eq!(
        (v["type"].as_str(), v["status"].as_str(), v["isPriority"].as_bool()),
        (Some("http"), Some("active"), Some(false))
    );
    assert_eq!(v["sink"]["httpAuthorization"], callsign_core::log_streams::MASK, "the secret is masked: {v}");
    assert_eq!(v["sink"]["httpEndpoint"], format!("{}/logs", sink.base));
    let (s, list) = t.get(&token, "/api/v2/log-streams").await;
    assert_eq!(s, 200);
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    let (s, one) = t.get(&token, &format!("/api/v2/log-streams/{id}")).await;
    assert_eq!(s, 200);
    assert!(!one.to_string().contains("sink-secret") && !list.to_string().contains("sink-secret"), "{one}");
    assert!(one["delivery"]["lag"].is_u64(), "{one}");

    // PATCH: fields change, the masked secret sent back keeps the stored one, the type cannot change.
    let patch = json!({"name": "renamed", "status": "paused", "filters": [{"type": "category", "name": "user.fail"}],
        "sink": {"httpAuthorization": callsign_core::log_streams::MASK, "httpContentFormat": "JSONLINES"}});
    let (s, v) = t.patch(&token, &format!("/api/v2/log-streams/{id}"), patch).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((v["name"].as_str(), v["status"].as_str()), (Some("renamed"), Some("paused")));
    assert_eq!(v["filters"], json!([{"type": "category", "name": "user.fail"}]));
    assert_eq!(v["sink"]["httpContentFormat"], "JSONLINES");
    assert_eq!(v["sink"]["httpEndpoint"], format!("{}/logs", sink.base), "the sink is merged");
    let sealed = t.app.store.get_secret(&format!("log-stream/{id}")).await.unwrap().unwrap();
    let plain = t.app.keyring.open(&sealed.name, &sealed.sealed).unwrap();
    assert!(String::from_utf8_lossy(&plain).contains("Bearer sink-secret"), "the secret was kept");
    assert!(!String::from_utf8_lossy(&sealed.sealed.ciphertext).contains("sink-secret"), "sealed");

    // Bad input: 400 in the Management error shape, naming the property.
    let bad = |body: Value, prop: &'static str| (body, prop);
    let base = http_stream(&sink, "JSONARRAY");
    let with = |path: &[&str], value: Value| {
        let mut b = base.clone();
        let mut at = &mut b;
        for p in &path[..path.len() - 1] {
            at = &mut at[*p];
        }
        at[path[path.len() - 1]] = value;
        b
    };
    let cases = [
        bad(with(&["sink", "httpEndpoint"], json!("http://example.com/logs")), "sink.httpEndpoint"),
        bad(with(&["sink", "httpEndpoint"], json!("ftp://example.com/")), "sink.httpEndpoint"),
        bad(with(&["type"], json!("eventgrid")), "type"),
        bad(with(&["filters"], json!([{"type": "category", "name": "auth.nothing"}])), "filters[0].name"),
        bad(with(&["sink", "httpContentFormat"], json!("XML")), "sink.httpContentFormat"),
        bad(with(&["sink", "nope"], json!(1)), "sink.nope"),
        bad(with(&["startFrom"], json!("yesterday")), "startFrom"),
        bad(json!({"name": "dd", "type": "datadog", "sink": {"datadogRegion": "us"}}), "sink.datadogApiKey"),
        bad(
            json!({"name": "dd", "type": "datadog", "sink": {"datadogRegion": "mars", "datadogApiKey": "k"}}),
            "sink.datadogRegion",
        ),
        bad(json!({"name": "sp", "type": "splunk", "sink": {"splunkToken": "t"}}), "sink.splunkDomain"),
        bad(json!({"name": "su", "type": "sumo", "sink": {}}), "sink.sumoSourceAddress"),
        bad(json!({"type": "http", "sink": {}}), "name"),
    ];
    for (body, prop) in cases {
        let (s, v) = t.post(&token, "/api/v2/log-streams", body.clone()).await;
        assert_eq!(s, 400, "{body} -> {v}");
        assert_eq!((v["statusCode"].as_u64(), v["error"].as_str()), (Some(400), Some("Bad Request")), "{v}");
        let message = v["message"].as_str().unwrap();
        assert!(message.ends_with(&format!("on property {prop}.")), "{body}: {message}");
    }
    let (s, v) = t.patch(&token, &format!("/api/v2/log-streams/{id}"), json!({"type": "datadog"})).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["message"].as_str().unwrap().ends_with("on property type."), "{v}");
    let (s, v) = t.patch(&token, &format!("/api/v2/log-streams/{id}"), json!({"status": "gone"})).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(t.get(&token, "/api/v2/log-streams/lst_0000").await.0, 404);

    // Scopes.
    let reader = t.token_with_scopes(&["read:log_streams"]).await;
    assert_eq!(t.get(&reader, "/api/v2/log-streams").await.0, 200);
    assert_eq!(t.post(&reader, "/api/v2/log-streams", http_stream(&sink, "JSONARRAY")).await.0, 403);
    assert_eq!(t.patch(&reader, &format!("/api/v2/log-streams/{id}"), json!({"name": "x"})).await.0, 403);
    assert_eq!(t.delete(&reader, &format!("/api/v2/log-streams/{id}")).await.0, 403);
    let none = t.token_with_scopes(&["read:users"]).await;
    assert_eq!(t.get(&none, "/api/v2/log-streams").await.0, 403);

    let (s, _) = t.delete(&token, &format!("/api/v2/log-streams/{id}")).await;
    assert_eq!(s, 204);
    assert_eq!(t.get(&token, &format!("/api/v2/log-streams/{id}")).await.0, 404);
    assert!(t.app.store.get_secret(&format!("log-stream/{id}")).await.unwrap().is_none(), "its secrets went too");
    assert_eq!(t.delete(&token, &format!("/api/v2/log-streams/{id}")).await.0, 404);
    t.stop().await;
}
on_both!(management_api_shapes_scopes_and_bad_input, management_api_shapes_scopes_and_bad_input_postgres, |_| {}, api);

// --- formats ---

async fn formats(t: TestApp) {
    let token = t.mgmt_token().await;
    let array = Sink::start(Format::JsonArray).await;
    let lines = Sink::start(Format::JsonLines).await;
    let object = Sink::start(Format::JsonObject).await;
    let sumo = Sink::start(Format::Sumo).await;
    create(&t, &token, http_stream(&array, "JSONARRAY")).await;
    create(&t, &token, http_stream(&lines, "JSONLINES")).await;
    create(&t, &token, http_stream(&object, "JSONOBJECT")).await;
    create(
        &t,
        &token,
        json!({"name": "sumo", "type": "sumo",
        "sink": {"sumoSourceAddress": format!("{}/receiver/v1/http/sumo-token", sumo.base)}}),
    )
    .await;
    let ids = write(&t, "gd_send_sms", 3).await;
    deliver_until(&t, "every sink has the 3 events", || {
        [&array, &lines, &object, &sumo].iter().all(|s| s.log_ids().len() >= 3)
    })
    .await;
    for s in [&array, &lines, &object, &sumo] {
        assert_eq!(s.log_ids(), ids, "{:?}: in order, once", s.format);
        assert!(s.refused().is_empty(), "{:?}: {:?}", s.format, s.refused());
    }
    // Batches (the streams' own `sapi` events included), but one request per event for JSONOBJECT.
    for s in [&array, &lines] {
        assert!(s.requests.load(Ordering::SeqCst) < s.events.lock().unwrap().len(), "{:?}: batched", s.format);
    }
    assert_eq!(object.requests.load(Ordering::SeqCst), object.events.lock().unwrap().len(), "one request per event");
    let first = &array.mine()[0];
    assert_eq!(first["data"]["type"], "gd_send_sms");
    assert_eq!(first["data"]["_id"], first["log_id"]);
    assert_eq!(first["data"]["user_id"], "auth0|u1");
    t.stop().await;
}
on_both!(
    http_and_sumo_sinks_get_their_formats,
    http_and_sumo_sinks_get_their_formats_postgres,
    tuning(|_| {}),
    formats
);

#[tokio::test]
async fn datadog_and_splunk_sinks_get_their_formats() {
    let datadog = Sink::start(Format::Datadog).await;
    let splunk = Sink::start(Format::Splunk).await;
    let (dd, sp) = (datadog.base.clone(), splunk.base.clone());
    let t = TestApp::spawn_with(tuning(move |ls| {
        ls.datadog_url = Some(dd);
        ls.splunk_url = Some(sp);
    }))
    .await;
    let token = t.mgmt_token().await;
    create(
        &t,
        &token,
        json!({"name": "dd", "type": "datadog", "sink": {"datadogRegion": "eu", "datadogApiKey": "dd-key"}}),
    )
    .await;
    let v = create(&t, &token, json!({"name": "splunk", "type": "splunk",
        "sink": {"splunkDomain": "splunk.example.com", "splunkToken": "hec-token", "splunkPort": "8088", "splunkSecure": true}}))
    .await;
    assert_eq!(v["sink"]["splunkToken"], callsign_core::log_streams::MASK);
    assert_eq!(v["sink"]["splunkDomain"], "splunk.example.com");
    let ids = write(&t, "gd_send_voice", 2).await;
    deliver_until(&t, "both sinks have the events", || datadog.log_ids().len() >= 2 && splunk.log_ids().len() >= 2)
        .await;
    assert_eq!(datadog.log_ids(), ids);
    assert_eq!(splunk.log_ids(), ids);
    assert!(
        datadog.refused().is_empty() && splunk.refused().is_empty(),
        "{:?} {:?}",
        datadog.refused(),
        splunk.refused()
    );
    t.stop().await;
}

/// A sink that expects another format refuses the batch (400): the cursor stays, nothing is lost.
#[tokio::test]
async fn a_sink_refusing_the_format_keeps_the_events() {
    let t = TestApp::spawn_with(tuning(|_| {})).await;
    let token = t.mgmt_token().await;
    let lines_only = Sink::start(Format::JsonLines).await;
    let v = create(&t, &token, http_stream(&lines_only, "JSONARRAY")).await;
    let id = v["id"].as_str().unwrap().to_owned();
    write(&t, "s", 2).await;
    deliver(&t).await;
    assert!(lines_only.log_ids().is_empty());
    assert_eq!(lines_only.refused().len(), 1, "the wrong format was refused");
    let (_, v) = t.get(&token, &format!("/api/v2/log-streams/{id}")).await;
    assert_eq!(v["delivery"]["failures"].as_u64(), Some(1), "{v}");
    assert!(v["delivery"]["lag"].as_u64() >= Some(2), "{v}");
    assert_eq!(v["delivery"]["last_error"], "the sink answered HTTP 400");
    // Fixed by the operator: the same events go, in the right format.
    let (s, _) = t
        .patch(&token, &format!("/api/v2/log-streams/{id}"), json!({"sink": {"httpContentFormat": "JSONLINES"}}))
        .await;
    assert_eq!(s, 200);
    t.clock.advance(Duration::from_secs(2));
    deliver(&t).await;
    assert_eq!(lines_only.log_ids().len(), 2);
    t.stop().await;
}

// --- failures ---

async fn recovers(t: TestApp) {
    let token = t.mgmt_token().await;
    let sink = Sink::start(Format::JsonArray).await;
    let v = create(&t, &token, http_stream(&sink, "JSONARRAY")).await;
    let id = v["id"].as_str().unwrap().to_owned();
    let mut ids = write(&t, "gd_send_sms", 2).await;
    sink.answer(503);
    deliver_until(&t, "a first failure", || sink.requests.load(Ordering::SeqCst) >= 1).await;
    let (_, v) = t.get(&token, &format!("/api/v2/log-streams/{id}")).await;
    assert_eq!((v["status"].as_str(), v["delivery"]["failures"].as_u64()), (Some("active"), Some(1)), "{v}");
    assert_eq!(v["delivery"]["last_error"], "the sink answered HTTP 503");
    // Not before its backoff (1 s, then 2 s).
    assert_eq!(deliver(&t).await, 0, "waits for its backoff");
    ids.extend(write(&t, "gd_send_sms", 1).await);
    t.clock.advance(Duration::from_millis(1_000));
    assert_eq!(deliver(&t).await, 1);
    assert_eq!(sink.requests.load(Ordering::SeqCst), 2);
    sink.answer(200);
    t.clock.advance(Duration::from_millis(2_000));
    deliver_until(&t, "the sink has every event", || sink.log_ids().len() >= 3).await;
    assert_eq!(sink.log_ids(), ids, "nothing lost, nothing twice, in order");
    let (_, v) = t.get(&token, &format!("/api/v2/log-streams/{id}")).await;
    assert_eq!(
        (
            v["status"].as_str(),
            v["delivery"]["failures"].as_u64(),
            v["delivery"]["delivered"].as_u64(),
            v["delivery"]["lag"].as_u64()
        ),
        (Some("active"), Some(0), Some(sink.events.lock().unwrap().len() as u64), Some(0)),
        "{v}"
    );
    t.stop().await;
}
on_both!(a_failing_sink_recovers_without_loss, a_failing_sink_recovers_without_loss_postgres, tuning(|_| {}), recovers);

async fn suspends(t: TestApp) {
    let token = t.mgmt_token().await;
    let sink = Sink::start(Format::JsonArray).await;
    let v = create(&t, &token, http_stream(&sink, "JSONARRAY")).await;
    let id = v["id"].as_str().unwrap().to_owned();
    let mut ids = write(&t, "gd_auth_failed", 2).await;
    sink.answer(401);
    deliver_until(&t, "a first refusal", || sink.requests.load(Ordering::SeqCst) >= 1).await;
    for wait in [1_000, 2_000] {
        t.clock.advance(Duration::from_millis(wait));
        assert_eq!(deliver(&t).await, 1);
    }
    assert_eq!(sink.requests.load(Ordering::SeqCst), 3, "the failure budget is 3");
    let (_, v) = t.get(&token, &format!("/api/v2/log-streams/{id}")).await;
    assert_eq!((v["status"].as_str(), v["delivery"]["failures"].as_u64()), (Some("suspended"), Some(3)), "{v}");
    assert_eq!(v["delivery"]["last_error"], "the sink answered HTTP 401");
    assert!(v["delivery"]["last_error_at"].is_string());
    // Suspended: nothing more is tried, however long.
    t.clock.advance(Duration::from_secs(3_600));
    assert_eq!(deliver(&t).await, 0);
    ids.extend(write(&t, "gd_auth_failed", 1).await);
    // The operator fixes the credentials and resumes: everything since the cursor arrives.
    sink.answer(200);
    let (s, v) = t.patch(&token, &format!("/api/v2/log-streams/{id}"), json!({"status": "active"})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["delivery"]["failures"], 0);
    deliver_until(&t, "the sink has every event", || sink.log_ids().len() >= 3).await;
    assert_eq!(sink.log_ids(), ids);
    t.stop().await;
}
on_both!(
    an_unauthorized_sink_suspends_the_stream_and_resuming_delivers_the_rest,
    an_unauthorized_sink_suspends_the_stream_and_resuming_delivers_the_rest_postgres,
    tuning(|_| {}),
    suspends
);

#[tokio::test]
async fn a_slow_sink_gets_everything_and_one_slower_than_the_timeout_is_retried() {
    let t = TestApp::spawn_with(tuning(|ls| ls.send_timeout_ms = Some(callsign_server::config::Num(400)))).await;
    let token = t.mgmt_token().await;
    let sink = Sink::start(Format::JsonArray).await;
    let v = create(&t, &token, http_stream(&sink, "JSONARRAY")).await;
    let id = v["id"].as_str().unwrap().to_owned();
    sink.delay_ms.store(150, Ordering::SeqCst);
    let first = write(&t, "gd_send_sms", 2).await;
    deliver(&t).await;
    assert_eq!(sink.log_ids(), first, "slow but within the timeout");
    sink.delay_ms.store(1_500, Ordering::SeqCst);
    let second = write(&t, "gd_send_sms", 1).await;
    deliver(&t).await;
    let (_, v) = t.get(&token, &format!("/api/v2/log-streams/{id}")).await;
    assert_eq!(v["delivery"]["last_error"], "the sink did not answer in time", "{v}");
    assert!(v["delivery"]["lag"].as_u64() >= Some(1), "{v}");
    sink.delay_ms.store(0, Ordering::SeqCst);
    // The sink may have kept the timed-out batch (at least once): what counts is that the event arrives.
    t.clock.advance(Duration::from_secs(2));
    deliver(&t).await;
    let got = sink.log_ids();
    assert!(got.ends_with(&second) && got.starts_with(&first), "{got:?}");
    t.stop().await;
}

// --- paused ---

async fn paused(t: TestApp) {
    let token = t.mgmt_token().await;
    let sink = Sink::start(Format::JsonLines).await;
    let v = create(&t, &token, http_stream(&sink, "JSONLINES")).await;
    let id = v["id"].as_str().unwrap().to_owned();
    let mut ids = write(&t, "gd_start_auth", 1).await;
    deliver_until(&t, "the first event", || sink.log_ids().len() == 1).await;
    let (s, _) = t.patch(&token, &format!("/api/v2/log-streams/{id}"), json!({"status": "paused"})).await;
    assert_eq!(s, 200);
    let while_paused = write(&t, "gd_start_auth", 2).await;
    for _ in 0..3 {
        t.clock.advance(Duration::from_secs(1));
        assert_eq!(deliver(&t).await, 0, "a paused stream is not claimed");
    }
    assert_eq!(sink.requests.load(Ordering::SeqCst), 1, "sent nothing while paused");
    let (_, v) = t.get(&token, &format!("/api/v2/log-streams/{id}")).await;
    assert_eq!(v["status"], "paused");
    assert!(v["delivery"]["lag"].as_u64() >= Some(2), "{v}");
    let (s, _) = t.patch(&token, &format!("/api/v2/log-streams/{id}"), json!({"status": "active"})).await;
    assert_eq!(s, 200);
    ids.extend(while_paused);
    deliver_until(&t, "the events written while paused", || sink.log_ids().len() >= 3).await;
    assert_eq!(sink.log_ids(), ids, "resumed from its cursor");
    t.stop().await;
}
on_both!(
    a_paused_stream_sends_nothing_then_resumes_from_its_cursor,
    a_paused_stream_sends_nothing_then_resumes_from_its_cursor_postgres,
    tuning(|_| {}),
    paused
);

// --- filters and startFrom ---

#[tokio::test]
async fn filters_and_start_from_choose_the_events() {
    let t = TestApp::spawn_with(tuning(|_| {})).await;
    let token = t.mgmt_token().await;
    let early = write(&t, "gd_send_sms_failure", 1).await;
    t.clock.advance(Duration::from_millis(5));
    let sink = Sink::start(Format::JsonArray).await;
    let mut body = http_stream(&sink, "JSONARRAY");
    body["filters"] = json!([{"type": "category", "name": "user.fail"}]);
    body["startFrom"] = json!("2025-12-31T00:00:00Z");
    let v = create(&t, &token, body).await;
    assert_eq!(v["startFrom"], "2025-12-31T00:00:00.000Z");
    let plain = Sink::start(Format::JsonArray).await;
    create(&t, &token, http_stream(&plain, "JSONARRAY")).await;
    t.clock.advance(Duration::from_millis(5));
    write(&t, "gd_send_sms", 1).await;
    let failed = write(&t, "gd_send_sms_failure", 1).await;
    deliver_until(&t, "the streams are through", || plain.log_ids().len() >= 2 && sink.log_ids().len() >= 2).await;
    assert_eq!(sink.types(), ["gd_send_sms_failure", "gd_send_sms_failure"], "user.fail only, from startFrom");
    assert_eq!(sink.log_ids(), [early[0].clone(), failed[0].clone()]);
    assert_eq!(plain.types(), ["gd_send_sms", "gd_send_sms_failure"], "without startFrom: from its creation");
    t.stop().await;
}

// --- two nodes ---

#[tokio::test]
async fn two_nodes_never_send_the_same_batch() {
    let t = TestApp::spawn_with(tuning(|_| {})).await;
    let other = t.spawn_node().await;
    let token = t.mgmt_token().await;
    let sink = Sink::start(Format::JsonObject).await;
    // A turn lasts a while (four posts of 30 ms), so the two nodes' claims meet while one holds the stream; with an
    // instant sink one node's whole turn could end before the other's claim, and both would claim in turn.
    sink.delay_ms.store(30, Ordering::SeqCst);
    create(&t, &token, http_stream(&sink, "JSONOBJECT")).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.extend(write(&t, "gd_send_sms", 4).await);
        let (a, b) = tokio::join!(
            callsign_core::log_streams::run_due(&t.app.core, "node-a"),
            callsign_core::log_streams::run_due(&other.app.core, "node-b")
        );
        assert!(a.unwrap() + b.unwrap() <= 1, "one node at a time holds the stream");
    }
    deliver_until(&t, "every event", || sink.log_ids().len() >= ids.len()).await;
    assert_eq!(sink.log_ids(), ids, "each event once, in order");
    other.stop().await;
    t.stop().await;
}

// --- a full MFA flow ---

async fn mfa_flow(t: TestApp) {
    let ctx = common::mfa::setup_app(t, &["sms"]).await;
    let sink = Sink::start(Format::JsonArray).await;
    create(&ctx.t, &ctx.admin, http_stream(&sink, "JSONARRAY")).await;
    // The node's own background delivery, as `callsign serve` runs it.
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = callsign_core::log_streams::spawn_delivery(&ctx.t.app.core, rx);
    ctx.enroll().await;
    let want = ["gd_start_enroll", "gd_send_sms", "gd_enrollment_complete"];
    let got = eventually("the MFA events reach the sink", async || {
        let types = sink.types();
        if want.iter().all(|w| types.iter().any(|t| t == w)) { Ok(types) } else { Err(format!("{types:?}")) }
    })
    .await;
    let position = |w: &str| got.iter().position(|t| t == w).unwrap();
    assert!(position("gd_start_enroll") < position("gd_enrollment_complete"), "{got:?}");
    let events = sink.events.lock().unwrap().clone();
    let sms = events.iter().find(|e| e["data"]["type"] == "gd_send_sms").unwrap();
    assert_eq!(sms["data"]["user_id"], ctx.user_id.as_str(), "{sms}");
    assert!(!sms.to_string().contains(common::PHONE), "no full phone number in the event: {sms}");
    let _ = stop.send(true);
    task.await.unwrap();
    ctx.t.stop().await;
}
on_both!(a_full_mfa_flow_reaches_an_http_sink, a_full_mfa_flow_reaches_an_http_sink_postgres, tuning(|_| {}), mfa_flow);

// --- throughput (a figure, not a check: `cargo test --test log_streams -- --ignored --nocapture`) ---

async fn throughput(t: TestApp, backend: &str) {
    const EVENTS: usize = 5_000;
    let token = t.mgmt_token().await;
    let sink = Sink::start(Format::JsonArray).await;
    create(&t, &token, http_stream(&sink, "JSONARRAY")).await;
    #[allow(clippy::disallowed_methods)] // a benchmark figure, printed, never asserted
    let started = std::time::Instant::now();
    write(&t, "gd_send_sms", EVENTS).await;
    #[allow(clippy::disallowed_methods)]
    let written = started.elapsed();
    #[allow(clippy::disallowed_methods)]
    let sending = std::time::Instant::now();
    // Turn after turn, as the node's task does when streams are always due (no poll wait between batches).
    for _ in 0..10 * EVENTS {
        deliver(&t).await;
        if sink.log_ids().len() >= EVENTS {
            break;
        }
    }
    assert_eq!(sink.log_ids().len(), EVENTS);
    #[allow(clippy::disallowed_methods)]
    let sent = sending.elapsed();
    println!(
        "{backend}: {EVENTS} events written in {:.2} s ({:.0}/s, one insert each); delivered to a local sink in {:.2} s \
         ({:.0} events/s, batches of 100, {} requests)",
        written.as_secs_f64(),
        EVENTS as f64 / written.as_secs_f64(),
        sent.as_secs_f64(),
        EVENTS as f64 / sent.as_secs_f64(),
        sink.requests.load(Ordering::SeqCst)
    );
    t.stop().await;
}

#[tokio::test]
#[ignore = "a benchmark figure"]
async fn throughput_to_a_local_sink() {
    throughput(TestApp::spawn_with(tuning(|_| {})).await, "sqlite").await;
    if let Some(t) = TestApp::spawn_postgres_with(tuning(|_| {})).await {
        throughput(t, "postgres").await;
    }
}

/// Requests that write events go on while a stream's sink hangs: delivery runs in its own task.
#[tokio::test]
async fn a_hanging_sink_does_not_hold_up_the_requests_that_write_events() {
    let t = TestApp::spawn_with(tuning(|_| {})).await;
    let token = t.mgmt_token().await;
    let sink = Sink::start(Format::JsonArray).await;
    sink.delay_ms.store(8_000, Ordering::SeqCst);
    create(&t, &token, http_stream(&sink, "JSONARRAY")).await;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = callsign_core::log_streams::spawn_delivery(&t.app.core, rx);
    eventually("a batch is in flight to the hanging sink", async || {
        if sink.requests.load(Ordering::SeqCst) >= 1 { Ok(()) } else { Err("no request yet".into()) }
    })
    .await;
    for i in 0..5 {
        t.create_user(&token, &format!("u{i}@example.com")).await;
    }
    assert!(sink.events.lock().unwrap().is_empty(), "the sink has not answered yet, and the writes were all made");
    let (_, v) = t.get(&token, "/api/v2/logs?q=type:sapi&per_page=100").await;
    assert!(v.as_array().unwrap().len() >= 5, "their events are in the log: {v}");
    let _ = stop.send(true);
    task.abort();
    t.stop().await;
}

/// A stream that is behind sends batch after batch without the delivery loop's pause between them: with batches of
/// 10 and a pause of a minute, 45 events reach the sink within the time `eventually` waits (without catching up
/// at once, the fifth batch would come four minutes later).
#[tokio::test]
async fn a_stream_behind_sends_its_batches_back_to_back() {
    let t = TestApp::spawn_with(tuning(|ls| {
        ls.batch_size = Some(callsign_server::config::Num(10));
        ls.poll_ms = Some(callsign_server::config::Num(60_000));
    }))
    .await;
    let token = t.mgmt_token().await;
    let sink = Sink::start(Format::JsonLines).await;
    create(&t, &token, http_stream(&sink, "JSONLINES")).await;
    let written = write(&t, "sapi", 45).await;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = callsign_core::log_streams::spawn_delivery(&t.app.core, rx);
    eventually("every event reached the sink", async || {
        let seen = sink.events.lock().unwrap().len();
        if seen >= written.len() { Ok(()) } else { Err(format!("{seen} of {}", written.len())) }
    })
    .await;
    assert!(sink.requests.load(Ordering::SeqCst) >= 5, "in batches of at most 10");
    let _ = stop.send(true);
    task.abort();
    t.stop().await;
}
