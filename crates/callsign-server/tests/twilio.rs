//! The Twilio provider end to end, against a local fake Twilio that checks what it is sent (path, Basic auth,
//! form fields) and answers what the test tells it; and, `#[ignore]`d, against Prism mocking Twilio's own OpenAPI
//! description (`sdk-tests/prism/run.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use base64::Engine;
use common::{PHONE, PW, TestApp};
use serde_json::{Value, json};

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "f00dfeedf00dfeedf00dfeedf00dfeed";
const FROM: &str = "+15005550006";
const MG: &str = "MG0123456789abcdef0123456789abcdef";

// --- the fake Twilio --------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Seen {
    resource: String,
    form: Vec<(String, String)>,
    /// What the fake answered.
    status: u16,
}

impl Seen {
    fn get(&self, key: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct FakeState {
    script: VecDeque<(u16, Value)>,
    seen: Vec<Seen>,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<FakeState>>);

impl Fake {
    async fn start() -> (Fake, String) {
        let fake = Fake::default();
        let app =
            Router::new().route("/2010-04-01/Accounts/{sid}/{resource}", post(fake_twilio)).with_state(fake.clone());
        (fake, common::serve(app).await)
    }
    /// Answer the next requests with these (status, body), then 201 again.
    fn then(&self, status: u16, body: Value) {
        self.0.lock().unwrap().script.push_back((status, body));
    }
    fn seen(&self) -> Vec<Seen> {
        self.0.lock().unwrap().seen.clone()
    }
    /// The requests once `t` has delivered at least `n` (see `TestApp::delivered`).
    async fn wait_for(&self, t: &TestApp, n: usize) -> Vec<Seen> {
        t.delivered(format!("the fake Twilio received {n} requests"), async || {
            let s = self.seen();
            if s.len() >= n { Ok(s) } else { Err(format!("{s:?}")) }
        })
        .await
    }
}

fn twilio_error(status: u16, code: u32, message: &str) -> (StatusCode, axum::Json<Value>) {
    (
        StatusCode::from_u16(status).unwrap(),
        axum::Json(
            json!({"code": code, "message": message, "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status}),
        ),
    )
}

/// What Twilio checks, and what the spec says: Basic auth for the path's account, a form body, `To`, and per
/// resource `Body` + (`From` xor `MessagingServiceSid`) or `From` + `Twiml`.
async fn fake_twilio(
    State(fake): State<Fake>,
    Path((sid, resource)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let want = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}")));
    let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let has = |k: &str| form.iter().any(|(key, v)| key == k && !v.is_empty());
    let problem = if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(want.as_str()) || sid != SID {
        Some(twilio_error(401, 20003, "Authenticate"))
    } else if !ct.starts_with("application/x-www-form-urlencoded") {
        Some(twilio_error(415, 20415, "Unsupported Media Type"))
    } else if !has("To") || !has("StatusCallback") {
        Some(twilio_error(400, 21604, "A 'To' phone number and a StatusCallback are required."))
    } else {
        match resource.as_str() {
            "Messages.json" if !has("Body") => Some(twilio_error(400, 21602, "Message body is required.")),
            "Messages.json" if has("From") == has("MessagingServiceSid") => {
                Some(twilio_error(400, 21603, "Exactly one of From and MessagingServiceSid is required."))
            }
            "Calls.json" if !has("From") => Some(twilio_error(400, 21213, "No 'From' number is specified")),
            "Calls.json" if !has("Twiml") || has("Url") => Some(twilio_error(400, 21205, "Twiml is required")),
            "Messages.json" | "Calls.json" => None,
            _ => Some(twilio_error(404, 20404, "The requested resource was not found")),
        }
    };
    let mut st = fake.0.lock().unwrap();
    let (status, body) = match problem {
        Some((s, b)) => (s.as_u16(), b.0),
        None => st.script.pop_front().unwrap_or_else(|| {
            let (prefix, status) = if resource == "Calls.json" { ("CA", "queued") } else { ("SM", "queued") };
            (201, json!({"sid": format!("{prefix}{:032x}", st.seen.len() + 1), "status": status, "account_sid": SID}))
        }),
    };
    st.seen.push(Seen { resource, form, status });
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

// --- the Callsign side ------------------------------------------------------------------------------------------

struct Ctx {
    t: TestApp,
    fake: Fake,
    admin: String,
    cid: String,
    secret: String,
}

/// A server aimed at a fake Twilio, the phone factor on (SMS and voice), Twilio configured and selected through
/// the Management API; `messaging_service` adds a Messaging Service SID (used for SMS only). The test drives
/// delivery.
async fn setup(messaging_service: bool) -> Ctx {
    let (fake, base) = Fake::start().await;
    setup_at(fake, base, messaging_service, false).await
}

/// [`setup`] with the delivery workers running in the background (the retry tests: a retry is picked up by a
/// worker once it is due).
async fn setup_with_workers() -> Ctx {
    let (fake, base) = Fake::start().await;
    setup_at(fake, base, false, true).await
}

/// [`setup`] against any Twilio-shaped server (`fake` is then only a placeholder when `base` is not its URL).
async fn setup_at(fake: Fake, base: String, messaging_service: bool, workers: bool) -> Ctx {
    let config = |raw: &mut callsign_server::config::RawConfig| {
        raw.set_provider_base_url("twilio", base);
    };
    let t = if workers { TestApp::spawn_with_workers(config).await } else { TestApp::spawn_with(config).await };
    let admin = t.mgmt_token().await;
    t.create_user(&admin, "ann@example.com").await;
    let c = t.create_app(&admin, &["password", "http://auth0.com/oauth/grant-type/mfa-oob"]).await;
    let mut twilio = json!({"sid": SID, "auth_token": TOKEN, "from": FROM});
    if messaging_service {
        twilio["messaging_service_sid"] = json!(MG);
    }
    for (path, body) in [
        ("/api/v2/guardian/factors/sms", json!({"enabled": true})),
        ("/api/v2/guardian/policies", json!(["all-applications"])),
        ("/api/v2/guardian/factors/phone/message-types", json!({"message_types": ["sms", "voice"]})),
        ("/api/v2/guardian/factors/phone/providers/twilio", twilio),
        ("/api/v2/guardian/factors/phone/selected-provider", json!({"provider": "twilio"})),
    ] {
        let (s, v) = t.put(&admin, path, body).await;
        assert_eq!(s, 200, "{path}: {v}");
    }
    Ctx {
        cid: c["client_id"].as_str().unwrap().to_owned(),
        secret: c["client_secret"].as_str().unwrap().to_owned(),
        t,
        fake,
        admin,
    }
}

impl Ctx {
    async fn mfa_token(&self) -> String {
        let (s, v) = self
            .t
            .token_request(json!({"grant_type": "password", "client_id": self.cid, "client_secret": self.secret, "username": "ann@example.com", "password": PW}))
            .await;
        assert_eq!((s, v["error"].as_str()), (403, Some("mfa_required")), "{v}");
        v["mfa_token"].as_str().unwrap().to_owned()
    }
    async fn associate(&self, mfa: &str, channel: &str) -> Value {
        let r = self
            .t
            .http
            .post(self.t.url("/mfa/associate"))
            .bearer_auth(mfa)
            .json(&json!({"authenticator_types": ["oob"], "oob_channels": [channel], "phone_number": PHONE}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
    async fn challenge(&self, mfa: &str, authenticator_id: &str) -> Value {
        let r = self
            .t
            .http
            .post(self.t.url("/mfa/challenge"))
            .json(&json!({"client_id": self.cid, "client_secret": self.secret, "mfa_token": mfa, "challenge_type": "oob", "authenticator_id": authenticator_id}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
    async fn verify(&self, mfa: &str, oob: &str, code: &str) -> (u16, Value) {
        self.t
            .token_request(json!({"grant_type": "http://auth0.com/oauth/grant-type/mfa-oob", "client_id": self.cid, "client_secret": self.secret, "mfa_token": mfa, "oob_code": oob, "binding_code": code}))
            .await
    }
    async fn logs(&self, ty: &str) -> Vec<Value> {
        self.t.logs(&self.admin, ty).await
    }
    /// At least `n` events of type `ty`, once delivery has logged them.
    async fn wait_logs(&self, ty: &str, n: usize) -> Vec<Value> {
        self.t.logged(&self.admin, ty, n).await
    }
    /// The job once it is `status` (after delivery).
    async fn wait_job(&self, id: &str, status: &str) -> callsign_store::DeliveryJob {
        self.t.job_when(id, status, |j| j.status.as_str() == status).await
    }
    /// The fake's requests once at least `n` were delivered.
    async fn sent(&self, n: usize) -> Vec<Seen> {
        self.fake.wait_for(&self.t, n).await
    }
}

/// The first six digits of a text (SMS starts with the code; voice reads it as `1.2.3.4.5.6`).
fn code_in(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).take(6).collect()
}

/// The job id in a StatusCallback URL.
fn job_of(callback: &str) -> String {
    callback.rsplit('/').next().unwrap().to_owned()
}

// --- end to end -------------------------------------------------------------------------------------------------

#[tokio::test]
async fn enroll_by_sms_and_log_in_by_voice_through_twilio() {
    let c = setup(true).await;

    // Enrollment by SMS: through the Messaging Service, with a status callback for the job.
    let mfa = c.mfa_token().await;
    let a = c.associate(&mfa, "sms").await;
    let seen = c.sent(1).await;
    let sms = &seen[0];
    assert_eq!((sms.resource.as_str(), sms.status), ("Messages.json", 201));
    assert_eq!(sms.get("To"), Some(PHONE));
    assert_eq!(sms.get("MessagingServiceSid"), Some(MG));
    assert_eq!(sms.get("From"), None, "a Messaging Service replaces From for SMS");
    let body = sms.get("Body").unwrap();
    assert!(body.ends_with("Please enter this code to verify your enrollment."), "{body}");
    let callback = sms.get("StatusCallback").unwrap();
    assert!(
        callback.starts_with(&format!("{}/callbacks/twilio/status/job_", c.t.base)),
        "{callback} is below the public URL"
    );
    let (s, v) = c.verify(&mfa, a["oob_code"].as_str().unwrap(), &code_in(body)).await;
    assert_eq!(s, 200, "{v}");

    let sent = c.wait_logs("gd_send_sms", 1).await;
    assert_eq!(sent[0]["details"]["provider"], "twilio");
    assert_eq!(sent[0]["details"]["provider_response"]["sid"], format!("SM{:032x}", 1));
    assert_eq!(sent[0]["details"]["provider_response"]["status"], "queued");
    assert_eq!(sent[0]["details"]["job_id"], job_of(callback));

    // A login by voice: Calls.json with From (a Messaging Service cannot call) and TwiML reading the code twice.
    let mfa = c.mfa_token().await;
    let auths: Value =
        c.t.http.get(c.t.url("/mfa/authenticators")).bearer_auth(&mfa).send().await.unwrap().json().await.unwrap();
    let voice_id = auths.as_array().unwrap().iter().find(|a| a["oob_channel"] == "voice").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ch = c.challenge(&mfa, &voice_id).await;
    let seen = c.sent(2).await;
    let call = &seen[1];
    assert_eq!((call.resource.as_str(), call.status), ("Calls.json", 201));
    assert_eq!(call.get("To"), Some(PHONE));
    assert_eq!(call.get("From"), Some(FROM), "voice always uses From");
    assert_eq!(call.get("MessagingServiceSid"), None);
    assert!(call.get("StatusCallback").unwrap().contains("/callbacks/twilio/status/job_"));
    let twiml = call.get("Twiml").unwrap();
    assert!(twiml.starts_with(r#"<Response><Say language="en-US">"#), "{twiml}");
    assert!(twiml.contains(r#"</Say><Pause length="1"/><Say language="en-US">"#), "{twiml}");
    assert!(twiml.ends_with("</Say></Response>"), "{twiml}");
    let code = code_in(twiml);
    let dotted: String = code.chars().map(String::from).collect::<Vec<_>>().join(".");
    assert_eq!(twiml.matches(&dotted).count(), 2, "the dot-separated code is said twice: {twiml}");
    let (s, v) = c.verify(&mfa, ch["oob_code"].as_str().unwrap(), &code).await;
    assert_eq!(s, 200, "{v}");
    c.wait_logs("gd_send_voice", 1).await;

    // The token never shows: not in the settings answer, not in any log event.
    let (_, settings) = c.t.get(&c.admin, "/api/v2/guardian/factors/phone/providers/twilio").await;
    assert!(!settings.to_string().contains(TOKEN));
    let (_, logs) = c.t.get(&c.admin, "/api/v2/logs?per_page=100").await;
    assert!(!logs.to_string().contains(TOKEN));
    c.t.stop().await;
}

#[tokio::test]
async fn sms_uses_from_without_a_messaging_service_and_voice_speaks_the_language() {
    let c = setup(false).await;
    let (s, v) =
        c.t.put(
            &c.admin,
            "/api/v2/guardian/factors/phone/templates",
            json!({"enrollment_message": "{{code}} <& enroll", "verification_message": "{{code}} verify"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let mfa = c.mfa_token().await;
    c.associate(&mfa, "sms").await;
    let mfa = c.mfa_token().await;
    c.associate(&mfa, "voice").await;
    let seen = c.sent(2).await;
    let sms = seen.iter().find(|s| s.resource == "Messages.json").unwrap();
    assert_eq!((sms.get("From"), sms.get("MessagingServiceSid")), (Some(FROM), None));
    let call = seen.iter().find(|s| s.resource == "Calls.json").unwrap();
    let twiml = call.get("Twiml").unwrap();
    assert!(twiml.contains(" &lt;&amp; enroll</Say>"), "the text is XML-escaped: {twiml}");
    c.t.stop().await;
}

#[tokio::test]
async fn a_failing_twilio_is_retried_and_the_message_sent_once() {
    let c = setup_with_workers().await;
    c.fake.then(500, json!({"code": 20500, "message": "Internal Server Error", "status": 500}));
    let mfa = c.mfa_token().await;
    c.associate(&mfa, "sms").await;
    let first = c.sent(1).await;
    assert_eq!(first[0].status, 500);
    let job = job_of(first[0].get("StatusCallback").unwrap());
    let j = c.wait_job(&job, "pending").await;
    assert_eq!(j.attempts, 1);
    assert!(j.last_error.as_deref().unwrap().contains("HTTP 500"), "{:?}", j.last_error);
    assert!(c.logs("gd_send_sms_failure").await.is_empty(), "a retryable error is not a failure yet");

    // The retry is due 2 s later (by the manual clock); a worker looks at least once a second.
    c.t.clock.advance(Duration::from_secs(3));
    let seen = c.sent(2).await;
    assert_eq!(seen[1].status, 201);
    let j = c.wait_job(&job, "sent").await;
    assert_eq!(j.attempts, 2);
    let sent = c.wait_logs("gd_send_sms", 1).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["details"]["attempts"], 2);
    common::let_the_workers_poll().await;
    let accepted = c.fake.seen().iter().filter(|s| s.status == 201).count();
    assert_eq!((c.fake.seen().len(), accepted), (2, 1), "one failed attempt, one message accepted");
    assert!(c.logs("gd_send_sms_failure").await.is_empty());
    c.t.stop().await;
}

#[tokio::test]
async fn a_rate_limited_send_is_retried() {
    let c = setup_with_workers().await;
    c.fake.then(429, json!({"code": 20429, "message": "Too Many Requests", "status": 429}));
    let mfa = c.mfa_token().await;
    c.associate(&mfa, "sms").await;
    let first = c.sent(1).await;
    let job = job_of(first[0].get("StatusCallback").unwrap());
    assert_eq!(c.wait_job(&job, "pending").await.attempts, 1);
    c.t.clock.advance(Duration::from_secs(3));
    assert_eq!(c.wait_job(&job, "sent").await.attempts, 2);
    c.t.stop().await;
}

#[tokio::test]
async fn an_invalid_number_fails_once_without_retry() {
    let c = setup(false).await;
    c.fake.then(
        400,
        json!({"code": 21211, "message": "The 'To' number +14155552671 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}),
    );
    let mfa = c.mfa_token().await;
    c.associate(&mfa, "sms").await;
    let failures = c.wait_logs("gd_send_sms_failure", 1).await;
    let d = &failures[0]["details"];
    assert_eq!(d["provider"], "twilio");
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["provider_error"]["code"], 21211);
    assert_eq!(d["provider_error"]["status"], 400);
    assert!(d["provider_error"]["message"].as_str().unwrap().contains("not a valid phone number"), "{d}");
    assert!(failures[0]["description"].as_str().unwrap().contains("21211"), "{}", failures[0]);

    // Final: no second attempt, however long one waits: ten minutes on, no job is due.
    let job = job_of(c.fake.seen()[0].get("StatusCallback").unwrap());
    let j = c.wait_job(&job, "failed").await;
    assert_eq!((j.attempts, j.payload.is_none()), (1, true));
    c.t.clock.advance(Duration::from_secs(600));
    assert_eq!(c.t.deliver_now().await, 0, "nothing is left to send");
    assert_eq!(c.fake.seen().len(), 1);
    assert_eq!(c.logs("gd_send_sms_failure").await.len(), 1);
    assert!(c.logs("gd_send_sms").await.is_empty());
    c.t.stop().await;
}

#[tokio::test]
async fn an_unconfigured_twilio_fails_naming_what_is_missing() {
    let c = setup(false).await;
    let (s, v) =
        c.t.put(&c.admin, "/api/v2/guardian/factors/phone/providers/twilio", json!({"auth_token": null})).await;
    assert_eq!(s, 200, "{v}");
    let mfa = c.mfa_token().await;
    c.associate(&mfa, "sms").await;
    let failures = c.wait_logs("gd_send_sms_failure", 1).await;
    assert!(failures[0]["description"].as_str().unwrap().contains("auth_token"), "{}", failures[0]);
    assert_eq!(failures[0]["details"]["attempts"], 1);
    assert!(c.fake.seen().is_empty());
    c.t.stop().await;
}

// --- voice needs From -------------------------------------------------------------------------------------------

#[tokio::test]
async fn voice_with_twilio_needs_a_from_number() {
    let c = setup(true).await;
    let twilio = "/api/v2/guardian/factors/phone/providers/twilio";
    let types = "/api/v2/guardian/factors/phone/message-types";
    let provider = "/api/v2/guardian/factors/phone/selected-provider";
    let says = |r: &(u16, Value)| {
        assert_eq!(r.0, 400, "{}", r.1);
        assert!(r.1["message"].as_str().unwrap().starts_with("Voice requires a From number ("), "{}", r.1);
    };
    // Removing From while voice is on and Twilio selected.
    says(&c.t.put(&c.admin, twilio, json!({"from": null})).await);
    assert_eq!(c.t.get(&c.admin, twilio).await.1["from"], FROM, "unchanged");
    // Without voice it is fine (SMS goes through the Messaging Service)…
    assert_eq!(c.t.put(&c.admin, types, json!({"message_types": ["sms"]})).await.0, 200);
    assert_eq!(c.t.put(&c.admin, twilio, json!({"from": null})).await.0, 200);
    // …but voice cannot be turned on again without From.
    says(&c.t.put(&c.admin, types, json!({"message_types": ["sms", "voice"]})).await);
    // Selecting Twilio while voice is on, with no From, is refused too.
    assert_eq!(c.t.put(&c.admin, provider, json!({"provider": "auth0"})).await.0, 200);
    assert_eq!(c.t.put(&c.admin, types, json!({"message_types": ["voice"]})).await.0, 200);
    says(&c.t.put(&c.admin, provider, json!({"provider": "twilio"})).await);
    assert_eq!(c.t.get(&c.admin, provider).await.1["provider"], "auth0");
    // With From everything goes.
    assert_eq!(c.t.put(&c.admin, twilio, json!({"from": FROM})).await.0, 200);
    assert_eq!(c.t.put(&c.admin, provider, json!({"provider": "twilio"})).await.0, 200);
    c.t.stop().await;
}

// --- delivery receipts ------------------------------------------------------------------------------------------

/// X-Twilio-Signature, written out independently of the server's code: base64(HMAC-SHA1(token, url + sorted
/// key/value pairs)).
fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    use hmac::Mac;
    let mut sorted: Vec<(&str, &str)> = params.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[test]
fn the_test_signature_matches_twilios_vector() {
    let params = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ];
    assert_eq!(
        twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &params),
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    );
}

#[tokio::test]
async fn status_callbacks_must_be_signed_and_are_recorded() {
    let c = setup(false).await;
    let mfa = c.mfa_token().await;
    c.associate(&mfa, "sms").await;
    let seen = c.sent(1).await;
    let callback = seen[0].get("StatusCallback").unwrap().to_owned();
    let job = job_of(&callback);
    c.wait_job(&job, "sent").await;

    let params = [
        ("AccountSid", SID),
        ("MessageSid", "SM00000000000000000000000000000001"),
        ("MessageStatus", "delivered"),
        ("From", FROM),
        ("To", PHONE),
        ("ApiVersion", "2010-04-01"),
    ];
    let post = |sig: Option<String>, params: Vec<(&'static str, &'static str)>| {
        let mut r = c.t.http.post(&callback).form(&params);
        if let Some(s) = sig {
            r = r.header("X-Twilio-Signature", s);
        }
        r.send()
    };

    // Unsigned, wrongly signed (other token, other params, other URL): refused, nothing recorded.
    let good = twilio_signature(TOKEN, &callback, &params);
    let bad = [
        None,
        Some(String::new()),
        Some(twilio_signature("another-token", &callback, &params)),
        Some(twilio_signature(TOKEN, &format!("{callback}x"), &params)),
        Some(good.clone()), // over other params below
    ];
    for (i, sig) in bad.into_iter().enumerate() {
        let mut p = params.to_vec();
        if i == 4 {
            p[2] = ("MessageStatus", "failed");
        }
        let r = post(sig, p).await.unwrap();
        assert_eq!(r.status(), 403, "case {i}");
    }
    let j = c.t.app.store.get_job(&job).await.unwrap().unwrap();
    assert!(j.details.get("receipts").is_none(), "{}", j.details);
    assert!(c.logs("gd_delivery_receipt").await.is_empty());

    // Correctly signed: recorded on the job and logged.
    let r = post(Some(good), params.to_vec()).await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    // Events are listed newest first by date; keep the two receipts apart in time.
    c.t.clock.advance(Duration::from_millis(5));
    let undelivered = [
        ("AccountSid", SID),
        ("MessageSid", "SM00000000000000000000000000000001"),
        ("MessageStatus", "undelivered"),
        ("ErrorCode", "30003"),
    ];
    let r = post(Some(twilio_signature(TOKEN, &callback, &undelivered)), undelivered.to_vec()).await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());

    let j = c.t.app.store.get_job(&job).await.unwrap().unwrap();
    let receipts = j.details["receipts"].as_array().unwrap();
    assert_eq!(receipts.len(), 2, "{}", j.details);
    assert_eq!(receipts[0]["status"], "delivered");
    assert_eq!(receipts[0]["error_code"], Value::Null);
    assert_eq!(
        (receipts[1]["status"].as_str(), receipts[1]["error_code"].as_i64()),
        (Some("undelivered"), Some(30003))
    );
    assert_eq!(j.details["provider_response"]["sid"], format!("SM{:032x}", 1), "the send's details stay");

    let events = c.logs("gd_delivery_receipt").await;
    assert_eq!(events.len(), 2);
    let newest = &events[0]["details"];
    assert_eq!(newest["job_id"], job);
    assert_eq!(newest["provider"], "twilio");
    assert_eq!(newest["status"], "undelivered");
    assert_eq!(newest["error_code"], 30003);
    assert!(newest["authenticator_id"].as_str().unwrap().starts_with("sms|"), "{newest}");
    assert_eq!(events[0]["description"], "Delivery receipt from the phone provider");

    // A signed callback for a job that does not exist is a 404.
    let ghost = format!("{}/callbacks/twilio/status/job_nope", c.t.base);
    let r =
        c.t.http
            .post(&ghost)
            .header("X-Twilio-Signature", twilio_signature(TOKEN, &ghost, &params))
            .form(&params)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 404);
    c.t.stop().await;
}

// --- the Unified Phone Experience over the same configuration --------------------------------------------------

/// A Twilio provider created with `/branding/phone/providers` is the Guardian Twilio configuration: the MFA flow
/// sends through it, a template's `from` and voice body are used, and `try` sends a real message through Twilio.
#[tokio::test]
async fn a_branding_phone_provider_is_the_guardian_twilio_configuration() {
    let (fake, base) = Fake::start().await;
    let t = TestApp::spawn_with(|raw| raw.set_provider_base_url("twilio", base)).await;
    let admin = t.mgmt_token().await;
    let (s, p) = t
        .post(
            &admin,
            "/api/v2/branding/phone/providers",
            json!({"name": "twilio", "credentials": {"auth_token": TOKEN},
                   "configuration": {"sid": SID, "default_from": FROM, "mssid": MG, "delivery_methods": ["text", "voice"]}}),
        )
        .await;
    assert_eq!(s, 201, "{p}");
    assert!(!p.to_string().contains(TOKEN), "credentials are never echoed: {p}");
    assert_eq!(p["disabled"], false);
    let id = p["id"].as_str().unwrap();
    // Guardian sees the same settings.
    let (_, g) = t.get(&admin, "/api/v2/guardian/factors/phone/selected-provider").await;
    assert_eq!(g["provider"], "twilio");
    let (_, g) = t.get(&admin, "/api/v2/guardian/factors/phone/providers/twilio").await;
    assert_eq!(
        (g["sid"].as_str(), g["from"].as_str(), g["messaging_service_sid"].as_str()),
        (Some(SID), Some(FROM), Some(MG))
    );
    assert_eq!(g["auth_token"], "****feed");
    let (_, g) = t.get(&admin, "/api/v2/guardian/factors/phone/message-types").await;
    assert_eq!(g["message_types"], json!(["sms", "voice"]));

    // try: a real test message through Twilio, logged as a test send.
    let (s, v) = t.post(&admin, &format!("/api/v2/branding/phone/providers/{id}/try"), json!({"to": PHONE})).await;
    assert_eq!((s, v["message"].as_str()), (202, Some("Test notification successfully sent for processing")), "{v}");
    let seen = fake.wait_for(&t, 1).await;
    assert_eq!((seen[0].resource.as_str(), seen[0].get("To")), ("Messages.json", Some(PHONE)));
    assert_eq!(seen[0].get("MessagingServiceSid"), Some(MG));
    assert!(seen[0].get("Body").unwrap().starts_with("This is a test message from"), "{:?}", seen[0]);
    let (s, v) = t
        .post(
            &admin,
            &format!("/api/v2/branding/phone/providers/{id}/try"),
            json!({"to": PHONE, "delivery_method": "voice"}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let seen = fake.wait_for(&t, 2).await;
    assert_eq!((seen[1].resource.as_str(), seen[1].get("From")), ("Calls.json", Some(FROM)));
    let (_, logs) = t.get(&admin, "/api/v2/logs?q=type:gd_send_sms&per_page=10").await;
    assert_eq!(logs[0]["details"]["test"], true, "{logs}");
    assert_eq!(logs[0]["details"]["source"], "branding/phone/providers/try");

    // A failing Twilio makes try a 400 that says why, logged as a failure.
    fake.then(400, json!({"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400}));
    let (s, v) = t.post(&admin, &format!("/api/v2/branding/phone/providers/{id}/try"), json!({"to": PHONE})).await;
    assert_eq!((s, v["errorCode"].as_str()), (400, Some("phone_provider_error")), "{v}");
    assert!(v["message"].as_str().unwrap().contains("The phone provider did not send the test message"), "{v}");
    let (_, logs) = t.get(&admin, "/api/v2/logs?q=type:gd_send_sms_failure&per_page=10").await;
    assert_eq!(logs.as_array().unwrap().len(), 1, "{logs}");

    // A customised otp_verify template: its own sender for SMS and its own voice body.
    let (s, tpl) = t
        .post(
            &admin,
            "/api/v2/branding/phone/templates",
            json!({"type": "otp_enroll", "content": {"from": "+15005550009", "body": {"voice": "Your {{ friendly_name }} code is {{ pause }} {{ code }}"}}}),
        )
        .await;
    assert_eq!(s, 201, "{tpl}");
    t.create_user(&admin, "bo@example.com").await;
    let c = t.create_app(&admin, &["password", "http://auth0.com/oauth/grant-type/mfa-oob"]).await;
    for (path, body) in [
        ("/api/v2/guardian/factors/sms", json!({"enabled": true})),
        ("/api/v2/guardian/policies", json!(["all-applications"])),
    ] {
        let (s, v) = t.put(&admin, path, body).await;
        assert_eq!(s, 200, "{path}: {v}");
    }
    let (s, v) = t
        .token_request(json!({"grant_type": "password", "client_id": c["client_id"], "client_secret": c["client_secret"], "username": "bo@example.com", "password": PW}))
        .await;
    assert_eq!(s, 403, "{v}");
    let mfa = v["mfa_token"].as_str().unwrap();
    for (channel, n) in [("sms", 4), ("voice", 5)] {
        let r = t
            .http
            .post(t.url("/mfa/associate"))
            .bearer_auth(mfa)
            .json(&json!({"authenticator_types": ["oob"], "oob_channels": [channel], "phone_number": PHONE}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{channel}");
        let seen = fake.wait_for(&t, n).await;
        let last = &seen[n - 1];
        assert_eq!(last.get("From"), Some("+15005550009"), "the template's sender: {last:?}");
        if channel == "sms" {
            assert_eq!(last.get("MessagingServiceSid"), None);
            assert!(last.get("Body").unwrap().ends_with("Please enter this code to verify your enrollment."));
        } else {
            let twiml = last.get("Twiml").unwrap();
            assert!(twiml.contains("code is ... "), "the voice body is spoken: {twiml}");
        }
    }

    // Disabling the provider selects the built-in one; deleting it forgets the Twilio settings.
    let (s, v) = t.patch(&admin, &format!("/api/v2/branding/phone/providers/{id}"), json!({"disabled": true})).await;
    assert_eq!((s, &v["disabled"]), (200, &json!(true)), "{v}");
    let (_, g) = t.get(&admin, "/api/v2/guardian/factors/phone/selected-provider").await;
    assert_eq!(g["provider"], "auth0");
    let (s, v) = t.put(&admin, "/api/v2/guardian/factors/phone/selected-provider", json!({"provider": "twilio"})).await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = t.get(&admin, &format!("/api/v2/branding/phone/providers/{id}")).await;
    assert_eq!(v["disabled"], false, "selecting Twilio in Guardian enables the provider: {v}");
    let (s, _) = t.delete(&admin, &format!("/api/v2/branding/phone/providers/{id}")).await;
    assert_eq!(s, 204);
    let (_, g) = t.get(&admin, "/api/v2/guardian/factors/phone/providers/twilio").await;
    assert_eq!(g, json!({"sid": null, "from": null, "messaging_service_sid": null, "auth_token": null}));
    let (_, g) = t.get(&admin, "/api/v2/guardian/factors/phone/selected-provider").await;
    assert_eq!(g["provider"], "auth0");
    let (_, logs) = t.get(&admin, "/api/v2/logs?per_page=100").await;
    assert!(!logs.to_string().contains(TOKEN));
    t.stop().await;
}

// --- contract test against Prism ----------------------------------------------------------------------------------

/// Runs the real client against Prism serving Twilio's OpenAPI description (`sdk-tests/prism/run.sh` starts it and
/// sets `CALLSIGN_TEST_PRISM_URL`). Prism validates path, auth, content type and fields against the spec and answers
/// 201 with the spec's example; a 4xx (422 for a field, 415 for a content type) would fail the send.
#[tokio::test]
#[ignore = "needs Prism: run sdk-tests/prism/run.sh"]
async fn prism_contract() {
    let prism = std::env::var("CALLSIGN_TEST_PRISM_URL").expect("CALLSIGN_TEST_PRISM_URL (see sdk-tests/prism/run.sh)");
    let t = TestApp::spawn_with(|raw| raw.set_provider_base_url("twilio", prism)).await;
    let admin = t.mgmt_token().await;
    let twilio = "/api/v2/guardian/factors/phone/providers/twilio";
    let (s, v) = t.put(&admin, twilio, json!({"sid": SID, "auth_token": TOKEN, "from": FROM})).await;
    assert_eq!(s, 200, "{v}");
    // The provider as delivery builds it: through the registry, from the stored settings.
    let send = |channel: &'static str, text: &'static str| {
        let app = t.app.clone();
        async move {
            let cfg = callsign_core::guardian::GuardianConfig::load(&app).await.unwrap();
            let provider = callsign_core::providers::build(&app, &cfg, "twilio").await.unwrap();
            let msg = callsign_messaging::Message {
                id: "job_prism".into(),
                channel: channel.parse().unwrap(),
                to: callsign_domain::phone::PhoneNumber::parse(PHONE).unwrap(),
                text: text.into(),
                locale: "fr".into(),
                from: None,
                context: Default::default(),
            };
            provider.send(&msg).await.map(|r| r.details)
        }
    };
    let sms = send("sms", "123456 is your verification code for Callsign").await;
    let sms = sms.unwrap_or_else(|e| panic!("SMS through Prism: {} {}", e.message, e.details));
    assert!(sms["sid"].is_string(), "{sms}");
    let call = send("voice", "Your code is 1.2.3.4.5.6.").await;
    let call = call.unwrap_or_else(|e| panic!("voice through Prism: {} {}", e.message, e.details));
    assert!(call["sid"].is_string(), "{call}");

    // The Messaging Service form of an SMS is valid too.
    let (s, _) = t.put(&admin, twilio, json!({"messaging_service_sid": MG})).await;
    assert_eq!(s, 200);
    let sms = send("sms", "654321 is your verification code for Callsign").await;
    let sms = sms.unwrap_or_else(|e| panic!("SMS (Messaging Service) through Prism: {} {}", e.message, e.details));
    assert!(sms["sid"].is_string(), "{sms}");
    t.stop().await;
}

/// The whole flow against Prism (Twilio's OpenAPI description): enrollment by SMS and by voice through
/// `/mfa/associate`, then challenges by SMS and voice for a confirmed phone, each ending in a successful
/// `gd_send_*` event, i.e. every request the delivery workers made was valid for Twilio's spec. (Prism answers
/// the spec's example and keeps nothing, so codes cannot be read back; the phone is confirmed through the
/// Management API instead.)
#[tokio::test]
#[ignore = "needs Prism: run sdk-tests/prism/run.sh"]
async fn prism_enroll_and_challenge_flow() {
    let prism = std::env::var("CALLSIGN_TEST_PRISM_URL").expect("CALLSIGN_TEST_PRISM_URL (see sdk-tests/prism/run.sh)");
    let c = setup_at(Fake::default(), prism, true, false).await;
    let mfa = c.mfa_token().await;
    c.associate(&mfa, "sms").await;
    let sent = c.wait_logs("gd_send_sms", 1).await;
    assert_eq!(sent[0]["details"]["provider"], "twilio", "{}", sent[0]);
    c.associate(&mfa, "voice").await;
    c.wait_logs("gd_send_voice", 1).await;

    // A confirmed phone (through the Management API), then a challenge on each channel.
    let (_, users) = c.t.get(&c.admin, "/api/v2/users-by-email?email=ann%40example.com").await;
    let user_id = users[0]["user_id"].as_str().unwrap().to_owned();
    let (s, _) = c.t.delete(&c.admin, &format!("/api/v2/users/{}/authenticators", common::enc(&user_id))).await;
    assert_eq!(s, 204, "the pending enrollment goes");
    let path = format!("/api/v2/users/{}/authentication-methods", common::enc(&user_id));
    let (s, v) =
        c.t.post(
            &c.admin,
            &path,
            json!({"type": "phone", "phone_number": PHONE, "preferred_authentication_method": "sms"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let mfa = c.mfa_token().await;
    let auths: Value =
        c.t.http.get(c.t.url("/mfa/authenticators")).bearer_auth(&mfa).send().await.unwrap().json().await.unwrap();
    for (channel, n) in [("sms", 2), ("voice", 2)] {
        // One voice call an hour: the enrollment's call was the last one.
        let mfa = if channel == "voice" {
            c.t.clock.advance(Duration::from_secs(3601));
            c.mfa_token().await
        } else {
            mfa.clone()
        };
        let id = auths.as_array().unwrap().iter().find(|a| a["oob_channel"] == channel).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        c.challenge(&mfa, &id).await;
        c.wait_logs(&format!("gd_send_{channel}"), n).await;
    }
    assert!(c.logs("gd_send_sms_failure").await.is_empty() && c.logs("gd_send_voice_failure").await.is_empty());
    c.t.stop().await;
}
