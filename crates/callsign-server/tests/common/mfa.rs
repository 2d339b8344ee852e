//! The phone factor's test context, shared by the MFA API tests (`mfa.rs`) and the race tests (`races.rs`): a
//! server with a user, an application allowed the password and MFA grants, and the SMS and recovery-code factors on.
use std::time::Duration;

use callsign_core::guardian::GuardianConfig;
use serde_json::{Value, json};

use super::TestApp;
pub use super::{PHONE, PW};

pub struct Ctx {
    pub t: TestApp,
    pub admin: String,
    pub cid: String,
    pub secret: String,
    pub user_id: String,
}

pub async fn setup_with(f: impl FnOnce(&mut callsign_server::config::RawConfig), message_types: &[&str]) -> Ctx {
    setup_app(TestApp::spawn_with(f).await, message_types).await
}

/// [`setup_with`] on PostgreSQL (None, said skipped, without `CALLSIGN_TEST_POSTGRES_URL`).
#[allow(dead_code)] // not every test binary runs on PostgreSQL
pub async fn setup_postgres_with(
    f: impl FnOnce(&mut callsign_server::config::RawConfig),
    message_types: &[&str],
) -> Option<Ctx> {
    Some(setup_app(TestApp::spawn_postgres_with(f).await?, message_types).await)
}

pub async fn setup_app(t: TestApp, message_types: &[&str]) -> Ctx {
    let admin = t.mgmt_token().await;
    let u = t.create_user(&admin, "ann@example.com").await;
    let c = t
        .create_app(
            &admin,
            &[
                "password",
                "http://auth0.com/oauth/grant-type/mfa-oob",
                "http://auth0.com/oauth/grant-type/mfa-recovery-code",
            ],
        )
        .await;
    let mut g = GuardianConfig::load_for_update(&t.app).await.unwrap();
    g.factors.insert("sms".into(), true);
    g.factors.insert("recovery-code".into(), true);
    g.policies = vec!["all-applications".into()];
    g.message_types = message_types.iter().map(|s| (*s).to_owned()).collect();
    g.save(&t.app).await.unwrap();
    Ctx {
        admin,
        cid: c["client_id"].as_str().unwrap().to_owned(),
        secret: c["client_secret"].as_str().unwrap().to_owned(),
        user_id: u["user_id"].as_str().unwrap().to_owned(),
        t,
    }
}

pub async fn setup() -> Ctx {
    setup_with(|_| {}, &["sms", "voice"]).await
}

impl Ctx {
    pub async fn login(&self) -> (u16, Value) {
        self.t
            .token_request(json!({"grant_type": "password", "client_id": self.cid, "client_secret": self.secret, "username": "ann@example.com", "password": PW, "scope": "openid email"}))
            .await
    }
    pub async fn mfa_token(&self) -> String {
        let (s, v) = self.login().await;
        assert_eq!(s, 403, "{v}");
        assert_eq!(v["error"], "mfa_required");
        assert_eq!(v["error_description"], "Multifactor authentication required");
        v["mfa_token"].as_str().unwrap().to_owned()
    }
    pub async fn associate(&self, mfa: &str, body: Value) -> (u16, Value) {
        // Each message gets its own millisecond, so "newest first" in the dev inbox is well defined.
        self.t.clock.advance(Duration::from_millis(1));
        let r = self.t.http.post(self.t.url("/mfa/associate")).bearer_auth(mfa).json(&body).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }
    pub async fn challenge(&self, mfa: &str, authenticator_id: Option<&str>) -> (u16, Value) {
        self.t.clock.advance(Duration::from_millis(1));
        let mut b =
            json!({"client_id": self.cid, "client_secret": self.secret, "mfa_token": mfa, "challenge_type": "oob"});
        if let Some(a) = authenticator_id {
            b["authenticator_id"] = json!(a);
        }
        let r = self.t.http.post(self.t.url("/mfa/challenge")).json(&b).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }
    pub async fn verify(&self, mfa: &str, oob: &str, code: &str) -> (u16, Value) {
        // The MFA grants are usually sent form-encoded.
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
    pub async fn authenticators(&self, mfa: &str) -> Value {
        self.t.http.get(self.t.url("/mfa/authenticators")).bearer_auth(mfa).send().await.unwrap().json().await.unwrap()
    }
    pub async fn log_types(&self) -> Vec<String> {
        let (_, v) = self.t.get(&self.admin, "/api/v2/logs?per_page=100").await;
        v.as_array().unwrap().iter().map(|l| l["type"].as_str().unwrap().to_owned()).collect()
    }
    pub async fn logs(&self, ty: &str) -> Vec<Value> {
        self.t.logs(&self.admin, ty).await
    }
    /// At least `n` events of type `ty`, once delivery has logged them.
    pub async fn logged(&self, ty: &str, n: usize) -> Vec<Value> {
        self.t.logged(&self.admin, ty, n).await
    }
    /// Enroll by SMS and confirm; returns (enrollment bare id, recovery code).
    pub async fn enroll(&self) -> (String, String) {
        let mfa = self.mfa_token().await;
        let (s, a) = self
            .associate(&mfa, json!({"authenticator_types": ["oob"], "oob_channels": ["sms"], "phone_number": PHONE}))
            .await;
        assert_eq!(s, 200, "{a}");
        let n = self.t.inbox(PHONE, 1).await.len();
        let code = self.t.code_for(PHONE, n).await;
        let (s, v) = self.verify(&mfa, a["oob_code"].as_str().unwrap(), &code).await;
        assert_eq!(s, 200, "{v}");
        let auths = self.authenticators(&self.mfa_token().await).await;
        let id = auths[0]["id"].as_str().unwrap().split_once('|').unwrap().1.to_owned();
        (id, a["recovery_codes"][0].as_str().unwrap().to_owned())
    }
}
