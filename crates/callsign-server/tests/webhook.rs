//! The custom phone provider (`phone-message-hook`) end to end: a local receiver that checks the Standard Webhooks
//! signature itself (HMAC-SHA256 recomputed here, not with Callsign's code), enrollment and challenge through the
//! MFA API, retries with a stable `webhook-id`, final 4xx failures, and secret rotation.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use callsign_core::guardian::GuardianConfig;
use callsign_domain::Clock;
use callsign_store::JobStatus;
use common::{PHONE, PW, TestApp};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const HOOK: &str = "/api/v2/guardian/factors/phone/providers/phone-message-hook";

// --- the receiver -------------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signatures: Vec<String>,
    content_type: String,
    body: Vec<u8>,
    /// Which of the receiver's known secrets verified the request.
    verified_by: Vec<String>,
}

impl Received {
    fn event(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
struct RxState {
    /// The `whsec_…` secrets the receiver trusts.
    secrets: Vec<String>,
    /// Statuses (and bodies) to answer, in order; 200 once exhausted.
    script: VecDeque<(u16, &'static str)>,
    received: Vec<Received>,
}

#[derive(Clone)]
struct Receiver {
    url: String,
    state: Arc<Mutex<RxState>>,
}

/// Standard Webhooks verification, written out: HMAC-SHA256 over `{id}.{timestamp}.{body}` with the base64 key
/// after `whsec_`, compared with each `v1,<base64>` entry.
fn verifies(secret: &str, id: &str, ts: &str, body: &[u8], signatures: &[String]) -> bool {
    let key = B64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut signed = format!("{id}.{ts}.").into_bytes();
    signed.extend_from_slice(body);
    signatures.iter().filter_map(|s| s.strip_prefix("v1,")).any(|sig| {
        let Ok(sig) = B64.decode(sig) else { return false };
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(&signed);
        mac.verify_slice(&sig).is_ok()
    })
}

async fn receive(State(st): State<Arc<Mutex<RxState>>>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (id, ts) = (h("webhook-id"), h("webhook-timestamp"));
    let signatures: Vec<String> =
        h("webhook-signature").split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect();
    let mut st = st.lock().unwrap();
    let verified_by: Vec<String> =
        st.secrets.iter().filter(|s| verifies(s, &id, &ts, &body, &signatures)).cloned().collect();
    let ok = !verified_by.is_empty();
    st.received.push(Received {
        id,
        timestamp: ts,
        signatures,
        content_type: h("content-type"),
        body: body.to_vec(),
        verified_by,
    });
    if !ok {
        return (StatusCode::UNAUTHORIZED, "bad signature".into());
    }
    let (status, text) = st.script.pop_front().unwrap_or((200, "ok"));
    (StatusCode::from_u16(status).unwrap(), text.to_owned())
}

impl Receiver {
    async fn start() -> Receiver {
        let state = Arc::new(Mutex::new(RxState::default()));
        let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(state.clone());
        Receiver { url: format!("{}/hook", common::serve(app).await), state }
    }
    fn trust(&self, secret: &str) {
        self.state.lock().unwrap().secrets.push(secret.to_owned());
    }
    fn script(&self, steps: &[(u16, &'static str)]) {
        self.state.lock().unwrap().script.extend(steps.iter().copied());
    }
    fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }
    /// The requests once `t` has delivered at least `n` (see `TestApp::delivered`).
    async fn wait_for(&self, t: &TestApp, n: usize) -> Vec<Received> {
        t.delivered(format!("the receiver got {n} requests"), async || {
            let r = self.received();
            if r.len() >= n { Ok(r) } else { Err(format!("{r:?}")) }
        })
        .await
    }
}

// --- the flow -----------------------------------------------------------------------------------------------------

struct Ctx {
    t: TestApp,
    admin: String,
    cid: String,
    secret: String,
    user_id: String,
    rx: Receiver,
}

/// A user, an application, the phone factor on (SMS and voice) with the custom provider aimed at a fresh
/// receiver. The test drives delivery.
async fn setup() -> Ctx {
    setup_on(TestApp::spawn().await).await
}

/// [`setup`] on `t` (e.g. with the delivery workers running).
async fn setup_on(t: TestApp) -> Ctx {
    let admin = t.mgmt_token().await;
    let u = t.create_user(&admin, "ann@example.com").await;
    let c = t.create_app(&admin, &["password", "http://auth0.com/oauth/grant-type/mfa-oob"]).await;
    let mut g = GuardianConfig::load_for_update(&t.app).await.unwrap();
    g.factors.insert("sms".into(), true);
    g.policies = vec!["all-applications".into()];
    g.message_types = vec!["sms".into(), "voice".into()];
    g.save(&t.app).await.unwrap();
    let rx = Receiver::start().await;
    let (s, v) = t.put(&admin, HOOK, json!({"url": rx.url})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = t
        .put(&admin, "/api/v2/guardian/factors/phone/selected-provider", json!({"provider": "phone-message-hook"}))
        .await;
    assert_eq!(s, 200, "{v}");
    Ctx {
        admin,
        cid: c["client_id"].as_str().unwrap().to_owned(),
        secret: c["client_secret"].as_str().unwrap().to_owned(),
        user_id: u["user_id"].as_str().unwrap().to_owned(),
        rx,
        t,
    }
}

impl Ctx {
    /// Create a signing secret; the receiver trusts it.
    async fn new_secret(&self) -> (String, String) {
        let (s, v) = self.t.post(&self.admin, &format!("{HOOK}/secrets"), json!({})).await;
        assert_eq!(s, 201, "{v}");
        let secret = v["secret"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("whsec_"), "{v}");
        assert_eq!(B64.decode(&secret[6..]).unwrap().len(), 32);
        self.rx.trust(&secret);
        (v["id"].as_str().unwrap().to_owned(), secret)
    }
    async fn mfa_token(&self) -> String {
        let (s, v) = self
            .t
            .token_request(json!({"grant_type": "password", "client_id": self.cid, "client_secret": self.secret, "username": "ann@example.com", "password": PW, "scope": "openid"}))
            .await;
        assert_eq!((s, v["error"].as_str()), (403, Some("mfa_required")), "{v}");
        v["mfa_token"].as_str().unwrap().to_owned()
    }
    async fn associate(&self, mfa: &str, channel: &str) -> Value {
        self.t.clock.advance(Duration::from_millis(1));
        let r = self
            .t
            .http
            .post(self.t.url("/mfa/associate"))
            .bearer_auth(mfa)
            .header("user-agent", "webhook-test/1.0")
            .json(&json!({"authenticator_types": ["oob"], "oob_channels": [channel], "phone_number": PHONE}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
    async fn challenge(&self, mfa: &str, authenticator_id: &str) -> Value {
        self.t.clock.advance(Duration::from_millis(1));
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
        let r = self
            .t
            .http
            .post(self.t.url("/oauth/token"))
            .form(&[
                ("grant_type", "http://auth0.com/oauth/grant-type/mfa-oob"),
                ("client_id", &self.cid),
                ("client_secret", &self.secret),
                ("mfa_token", mfa),
                ("oob_code", oob),
                ("binding_code", code),
            ])
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }
    async fn logs(&self, ty: &str) -> Vec<Value> {
        self.t.logs(&self.admin, ty).await
    }
    /// At least `n` events of type `ty`, once delivery has logged them.
    async fn wait_logs(&self, ty: &str, n: usize) -> Vec<Value> {
        self.t.logged(&self.admin, ty, n).await
    }
    /// The receiver's requests once at least `n` were delivered.
    async fn received(&self, n: usize) -> Vec<Received> {
        self.rx.wait_for(&self.t, n).await
    }
}

fn code_of(event: &Value) -> String {
    event["message_options"]["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn enrollment_and_challenge_post_signed_send_phone_message_events() {
    let c = setup().await;
    c.new_secret().await;

    // Enrollment by SMS.
    let mfa = c.mfa_token().await;
    let a = c.associate(&mfa, "sms").await;
    let got = c.received(1).await;
    let r = &got[0];
    assert_eq!(r.verified_by.len(), 1, "{r:?}");
    assert_eq!(r.signatures.len(), 1);
    assert_eq!(r.content_type, "application/json");
    assert!(r.id.starts_with("job_"), "{}", r.id);
    let now = c.t.clock.now().seconds();
    assert!((r.timestamp.parse::<i64>().unwrap() - now).abs() <= 1, "webhook-timestamp follows the server clock");
    let e = r.event();
    let mo = &e["message_options"];
    assert_eq!(mo["action"], "enrollment");
    assert_eq!(mo["message_type"], "sms");
    assert_eq!(mo["recipient"], PHONE);
    let code = code_of(&e);
    assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()), "{e}");
    assert!(mo["text"].as_str().unwrap().starts_with(&code), "{e}");
    assert_eq!(e["user"]["user_id"], json!(c.user_id));
    assert_eq!(e["user"]["email"], "ann@example.com");
    assert_eq!(e["client"], json!({"client_id": c.cid, "name": "app"}));
    assert_eq!(e["request"]["ip"], "127.0.0.1");
    assert_eq!(e["request"]["user_agent"], "webhook-test/1.0");
    assert_eq!(e["request"]["language"], "en");
    assert_eq!(e["tenant"], json!({"id": "callsign", "friendly_name": "Callsign"}));
    // The code in the event is the code: it confirms the enrollment.
    let (s, v) = c.verify(&mfa, a["oob_code"].as_str().unwrap(), &code).await;
    assert_eq!(s, 200, "{v}");
    let sent = c.wait_logs("gd_send_sms", 1).await;
    assert_eq!(sent[0]["details"]["provider"], "phone-message-hook");
    assert_eq!(sent[0]["details"]["provider_response"]["status"], 200);

    // A challenge by voice: a second-factor-authentication event.
    let mfa = c.mfa_token().await;
    let (_, auths) = {
        let r = c.t.http.get(c.t.url("/mfa/authenticators")).bearer_auth(&mfa).send().await.unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    };
    let voice = auths.as_array().unwrap().iter().find(|a| a["id"].as_str().unwrap().starts_with("voice|")).unwrap();
    let ch = c.challenge(&mfa, voice["id"].as_str().unwrap()).await;
    let got = c.received(2).await;
    let r = &got[1];
    assert_eq!(r.verified_by.len(), 1);
    assert_ne!(r.id, got[0].id, "each message has its own webhook-id");
    let e = r.event();
    assert_eq!(e["message_options"]["action"], "second-factor-authentication");
    assert_eq!(e["message_options"]["message_type"], "voice");
    assert_eq!(e["message_options"]["recipient"], PHONE);
    let (s, v) = c.verify(&mfa, ch["oob_code"].as_str().unwrap(), &code_of(&e)).await;
    assert_eq!(s, 200, "{v}");
    c.wait_logs("gd_send_voice", 1).await;

    // Nothing secret in the log: no code, no signing secret.
    let (_, all) = c.t.get(&c.admin, "/api/v2/logs?per_page=100").await;
    let all = all.to_string();
    assert!(!all.contains("whsec_"), "{all}");
    assert!(!all.contains(&format!("\"{code}\"")) && !all.contains(&format!("{code} is your")), "{all}");
}

#[tokio::test]
async fn a_503_is_retried_with_the_same_webhook_id() {
    // A worker picks the retry up once it is due.
    let c = setup_on(TestApp::spawn_with_workers(|_| {}).await).await;
    c.new_secret().await;
    c.rx.script(&[(503, "busy")]);
    let mfa = c.mfa_token().await;
    c.associate(&mfa, "sms").await;
    let first = c.received(1).await;
    // Backoff after the first attempt is 2 s of server time, counted from when the worker records the retry.
    let job = c.t.job_when(&first[0].id, "rescheduled", |j| j.status == JobStatus::Pending && j.attempts == 1).await;
    assert_eq!(job.run_at, c.t.clock.now().plus(Duration::from_secs(2)));
    c.t.clock.advance(Duration::from_secs(3));
    let got = c.received(2).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].id, got[1].id, "a retry keeps its webhook-id");
    assert_ne!(got[0].timestamp, got[1].timestamp, "each attempt is signed at its own time");
    assert!(got.iter().all(|r| r.verified_by.len() == 1));
    assert_eq!(got[0].body, got[1].body, "the same event is sent again");
    let sent = c.wait_logs("gd_send_sms", 1).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["details"]["attempts"], 2);
    assert!(c.logs("gd_send_sms_failure").await.is_empty());
}

#[tokio::test]
async fn a_400_is_final() {
    let c = setup().await;
    c.new_secret().await;
    c.rx.script(&[(400, "invalid recipient for this tenant")]);
    let mfa = c.mfa_token().await;
    c.associate(&mfa, "sms").await;
    let failures = c.wait_logs("gd_send_sms_failure", 1).await;
    assert_eq!(failures.len(), 1);
    let d = &failures[0]["details"];
    assert_eq!(d["attempts"], 1, "{d}");
    assert_eq!(d["provider"], "phone-message-hook");
    assert_eq!(d["provider_error"]["status"], 400, "{d}");
    assert_eq!(d["provider_error"]["body"], "invalid recipient for this tenant", "{d}");
    assert!(failures[0]["description"].as_str().unwrap().contains("400"), "{}", failures[0]);
    // No retry, however long we wait: ten minutes on, no job is due.
    c.t.clock.advance(Duration::from_secs(600));
    assert_eq!(c.t.deliver_now().await, 0, "nothing is left to send");
    assert_eq!(c.rx.received().len(), 1);
    assert_eq!(c.logs("gd_send_sms_failure").await.len(), 1);
    let failed = c.t.app.store.list_jobs(Some(JobStatus::Failed), 10).await.unwrap();
    assert_eq!((failed.len(), failed[0].attempts), (1, 1));
}

#[tokio::test]
async fn two_secrets_both_sign_and_a_deleted_one_stops() {
    let c = setup().await;
    let (old_id, old) = c.new_secret().await;
    let (new_id, new) = c.new_secret().await;
    let mfa = c.mfa_token().await;
    c.associate(&mfa, "sms").await;
    let got = c.received(1).await;
    let r = &got[0];
    assert_eq!(r.signatures.len(), 2, "{r:?}");
    // Each signature verifies with exactly one of the secrets.
    for s in [&old, &new] {
        let matching: Vec<&String> =
            r.signatures.iter().filter(|sig| verifies(s, &r.id, &r.timestamp, &r.body, &[(*sig).clone()])).collect();
        assert_eq!(matching.len(), 1, "{s} signs once");
    }
    assert_eq!(r.verified_by, vec![old.clone(), new.clone()]);

    // GET shows ids, never a secret.
    let (s, v) = c.t.get(&c.admin, HOOK).await;
    assert_eq!(s, 200);
    assert_eq!(v["url"], json!(c.rx.url));
    let ids: Vec<&str> = v["secrets"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![old_id.as_str(), new_id.as_str()]);
    assert!(v["secrets"][0]["created_at"].is_string());
    assert!(!v.to_string().contains("whsec_"), "{v}");

    // Rotation done: delete the old one; only the new one signs.
    let (s, _) = c.t.delete(&c.admin, &format!("{HOOK}/secrets/{old_id}")).await;
    assert_eq!(s, 204);
    assert_eq!(c.t.delete(&c.admin, &format!("{HOOK}/secrets/{old_id}")).await.0, 404);
    assert!(c.t.app.store.get_secret(&format!("guardian/phone-message-hook/secret/{old_id}")).await.unwrap().is_none());
    let mfa = c.mfa_token().await;
    c.associate(&mfa, "sms").await;
    let got = c.received(2).await;
    let r = &got[1];
    assert_eq!(r.signatures.len(), 1);
    assert_eq!(r.verified_by, vec![new.clone()]);
    assert!(!verifies(&old, &r.id, &r.timestamp, &r.body, &r.signatures));

    // A third secret retires the oldest: never more than two sign.
    let (third_id, _) = c.new_secret().await;
    let (fourth_id, _) = c.new_secret().await;
    let (_, v) = c.t.get(&c.admin, HOOK).await;
    let ids: Vec<&str> = v["secrets"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![third_id.as_str(), fourth_id.as_str()]);
    assert!(c.t.app.store.get_secret(&format!("guardian/phone-message-hook/secret/{new_id}")).await.unwrap().is_none());

    // Writes are logged, without secrets.
    let updates = c.logs("gd_tenant_update").await;
    assert!(updates.len() >= 7, "{updates:?}");
    let text = serde_json::to_string(&updates).unwrap();
    assert!(!text.contains("whsec_") && !text.contains(&new[6..]), "{text}");
}

#[tokio::test]
async fn configuration_is_validated_and_scoped() {
    let c = setup().await;
    for (body, needle) in [
        (json!({"url": "http://hooks.example.com/sms"}), "https"),
        (json!({"url": "ftp://hooks.example.com/sms"}), "https"),
        (json!({"url": "not a url"}), "not valid"),
        (json!({}), "Missing required property: url"),
        (json!({"url": "https://x.example.com", "extra": 1}), "extra"),
    ] {
        let (s, v) = c.t.put(&c.admin, HOOK, body.clone()).await;
        assert_eq!(s, 400, "{body} → {v}");
        assert_eq!(v["statusCode"], 400);
        assert_eq!(v["error"], "Bad Request");
        assert!(v["message"].as_str().unwrap().contains(needle), "{body} → {v}");
    }
    let (s, v) = c.t.put(&c.admin, HOOK, json!({"url": "https://hooks.example.com/sms"})).await;
    assert_eq!((s, &v["url"]), (200, &json!("https://hooks.example.com/sms")));
    assert_eq!(c.t.delete(&c.admin, &format!("{HOOK}/secrets/whs_nope")).await.0, 404);

    let read_only = c.t.token_with_scopes(&["read:guardian_factors"]).await;
    assert_eq!(c.t.get(&read_only, HOOK).await.0, 200);
    assert_eq!(c.t.put(&read_only, HOOK, json!({"url": "https://a.example.com"})).await.0, 403);
    assert_eq!(c.t.post(&read_only, &format!("{HOOK}/secrets"), json!({})).await.0, 403);
    let none = c.t.token_with_scopes(&["read:users"]).await;
    assert_eq!(c.t.get(&none, HOOK).await.0, 403);
}

#[tokio::test]
async fn without_a_secret_delivery_fails_visibly() {
    let c = setup().await;
    let mfa = c.mfa_token().await;
    c.associate(&mfa, "sms").await;
    let failures = c.wait_logs("gd_send_sms_failure", 1).await;
    assert!(failures[0]["description"].as_str().unwrap().contains("signing secret"), "{}", failures[0]);
    assert_eq!(failures[0]["details"]["attempts"], 1);
    assert!(c.rx.received().is_empty());
}
