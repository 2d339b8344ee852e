//! Universal Login end to end, as a browser does it (cookies and CSRF tokens handled by hand, no redirects
//! followed): /authorize → login → phone enrollment → code from the dev inbox → recovery code → callback → token
//! exchange with PKCE → /userinfo; and the refusals: bad CSRF, foreign callbacks, PKCE and code reuse, logout
//! addresses, limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use callsign_core::guardian::GuardianConfig;
use common::{TestApp, claims};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const PW: &str = "Str0ng-Passw0rd";
const PHONE: &str = "+14155552671";
const CALLBACK: &str = "https://app.example/callback";
const LOGOUT_URL: &str = "https://app.example/bye";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-some-more-entropy";

fn challenge_of(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A browser: a cookie jar and no redirect following.
#[derive(Clone)]
struct Browser {
    http: reqwest::Client,
    base: String,
    jar: BTreeMap<String, String>,
    accept_language: Option<String>,
}

struct Page {
    status: u16,
    location: Option<String>,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn csrf(&self) -> String {
        let at = self.body.find(r#"name="csrf" value=""#).unwrap_or_else(|| panic!("no csrf field in {}", self.body));
        let rest = &self.body[at + r#"name="csrf" value=""#.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
    fn query(&self, name: &str) -> Option<String> {
        let loc = self.location.as_deref()?;
        let q = loc.split_once('?')?.1;
        serde_urlencoded::from_str::<Vec<(String, String)>>(q)
            .ok()?
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
    fn has(&self, text: &str) -> bool {
        self.body.contains(text)
    }
}

impl Browser {
    fn new(t: &TestApp) -> Browser {
        Browser {
            http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
            base: t.base.clone(),
            jar: BTreeMap::new(),
            accept_language: None,
        }
    }

    fn cookie_header(&self) -> String {
        self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn finish(&mut self, r: reqwest::Response) -> Page {
        for c in r.headers().get_all(reqwest::header::SET_COOKIE) {
            let c = c.to_str().unwrap();
            assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax"), "{c}");
            let (name, value) = c.split(';').next().unwrap().split_once('=').unwrap();
            if c.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = r.status().as_u16();
        let location = r.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
        let headers = r.headers().clone();
        Page { status, location, headers, body: r.text().await.unwrap() }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", self.base) }
    }

    async fn get(&mut self, path: &str) -> Page {
        let mut rb = self.http.get(self.url(path)).header("cookie", self.cookie_header());
        if let Some(l) = &self.accept_language {
            rb = rb.header("accept-language", l);
        }
        let r = rb.send().await.unwrap();
        self.finish(r).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let r =
            self.http.post(self.url(path)).header("cookie", self.cookie_header()).form(fields).send().await.unwrap();
        self.finish(r).await
    }

    /// Post `fields` plus the CSRF token of `page`.
    async fn submit(&mut self, page: &Page, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = page.csrf();
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("csrf", &csrf));
        self.post(path, &all).await
    }
}

struct Ctx {
    t: TestApp,
    admin: String,
    cid: String,
    secret: String,
    user_id: String,
}

async fn setup(message_types: &[&str]) -> Ctx {
    setup_app(TestApp::spawn().await, message_types, true).await
}

async fn setup_app(t: TestApp, message_types: &[&str], mfa: bool) -> Ctx {
    let admin = t.mgmt_token().await;
    let (s, u) = t
        .post(
            &admin,
            "/api/v2/users",
            json!({"connection": "Username-Password-Authentication", "email": "ann@example.com", "password": PW, "name": "Ann"}),
        )
        .await;
    assert_eq!(s, 201, "{u}");
    let (s, c) = t
        .post(
            &admin,
            "/api/v2/clients",
            json!({"name": "Shop", "app_type": "regular_web", "callbacks": [CALLBACK], "allowed_logout_urls": [LOGOUT_URL],
                   "grant_types": ["authorization_code", "refresh_token", "password", "http://auth0.com/oauth/grant-type/mfa-recovery-code"]}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let mut g = GuardianConfig::load_for_update(&t.app).await.unwrap();
    g.factors.insert("sms".into(), true);
    g.factors.insert("recovery-code".into(), true);
    g.policies = if mfa { vec!["all-applications".into()] } else { vec![] };
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

impl Ctx {
    fn authorize_url(&self, extra: &[(&str, &str)]) -> String {
        let challenge = challenge_of(VERIFIER);
        let mut p: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", &self.cid),
            ("redirect_uri", CALLBACK),
            ("state", "st-42"),
            ("nonce", "n-0S6_WzA2Mj"),
            ("scope", "openid profile email"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ];
        for (k, v) in extra {
            p.retain(|(pk, _)| pk != k);
            p.push((k, v));
        }
        format!("/authorize?{}", serde_urlencoded::to_string(&p).unwrap())
    }

    /// /authorize, then the login page.
    async fn start(&self, b: &mut Browser, extra: &[(&str, &str)]) -> Page {
        let r = b.get(&self.authorize_url(extra)).await;
        assert_eq!(r.status, 302, "{}", r.body);
        assert_eq!(r.location.as_deref(), Some("/u/login"));
        let p = b.get("/u/login").await;
        assert_eq!(p.status, 200, "{}", p.body);
        p
    }

    async fn login(&self, b: &mut Browser, extra: &[(&str, &str)]) -> Page {
        let p = self.start(b, extra).await;
        b.submit(&p, "/u/login", &[("email", "ann@example.com"), ("password", PW)]).await
    }

    async fn exchange(&self, code: &str, verifier: &str) -> (u16, Value) {
        self.t
            .token_request(
                json!({"grant_type": "authorization_code", "client_id": self.cid, "client_secret": self.secret,
                                  "code": code, "redirect_uri": CALLBACK, "code_verifier": verifier}),
            )
            .await
    }

    async fn log_types(&self) -> Vec<String> {
        let (_, v) = self.t.get(&self.admin, "/api/v2/logs?per_page=100").await;
        v.as_array().unwrap().iter().map(|l| l["type"].as_str().unwrap().to_owned()).collect()
    }

    /// Log in and enroll `PHONE` on `channel` with the pages; returns the page after the code (the recovery code).
    async fn enroll(&self, b: &mut Browser, channel: &str) -> Page {
        let r = self.login(b, &[]).await;
        assert_eq!((r.status, r.location.as_deref()), (303, Some("/u/mfa/enroll")), "{}", r.body);
        let p = b.get("/u/mfa/enroll").await;
        self.t.clock.advance(Duration::from_millis(1));
        let r = b
            .submit(&p, "/u/mfa/enroll", &[("country", "US"), ("phone", "(415) 555-2671"), ("channel", channel)])
            .await;
        assert_eq!((r.status, r.location.as_deref()), (303, Some("/u/mfa/code")), "{}", r.body);
        let p = b.get("/u/mfa/code").await;
        assert_eq!(p.status, 200);
        let code = self.t.code_for(PHONE, 1).await;
        let r = b.submit(&p, "/u/mfa/code", &[("code", &code)]).await;
        assert_eq!((r.status, r.location.as_deref()), (303, Some("/u/mfa/recovery-code")), "{}", r.body);
        b.get("/u/mfa/recovery-code").await
    }
}

fn recovery_code_in(p: &Page) -> String {
    let at = p.body.find(r#"id="recovery-code""#).unwrap();
    let rest = &p.body[at..];
    let start = rest.find('>').unwrap() + 1;
    let shown = &rest[start..start + rest[start..].find('<').unwrap()];
    let code: String = shown.chars().filter(|c| !c.is_whitespace()).collect();
    assert_eq!(code.len(), 24, "{shown}");
    code
}

#[tokio::test]
async fn sms_enrollment_ends_at_the_callback_with_a_code_that_exchanges_for_tokens() {
    let c = setup(&["sms", "voice"]).await;
    let mut b = Browser::new(&c.t);
    let r = b.get(&c.authorize_url(&[])).await;
    assert_eq!((r.status, r.location.as_deref()), (302, Some("/u/login")));
    assert!(b.jar.contains_key("cs_login"));
    let p = b.get("/u/login").await;
    assert_eq!(p.status, 200);
    assert!(p.has(r#"<html lang="en">"#) && p.has("<h1>Log in</h1>") && p.has("Log in to continue to Shop."));
    assert!(p.has(r#"<label for="email">"#) && p.has(r#"autocomplete="current-password""#));
    let csp = p.headers.get("content-security-policy").unwrap().to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert_eq!(p.headers.get("x-frame-options").unwrap(), "DENY");
    assert_eq!(p.headers.get("cache-control").unwrap(), "no-store");

    // A wrong password, then an unknown user: the same answer.
    let r = b.submit(&p, "/u/login", &[("email", "ann@example.com"), ("password", "nope")]).await;
    assert_eq!(r.status, 400);
    assert!(r.has(r#"role="alert""#) && r.has("Wrong email or password."), "{}", r.body);
    let r2 = b.submit(&r, "/u/login", &[("email", "bob@example.com"), ("password", "nope")]).await;
    assert_eq!(r2.status, 400);
    assert!(r2.has("Wrong email or password."));

    let before = b.jar["cs_login"].clone();
    let r = b.submit(&r2, "/u/login", &[("email", "ann@example.com"), ("password", PW)]).await;
    assert_eq!((r.status, r.location.as_deref()), (303, Some("/u/mfa/enroll")), "{}", r.body);
    // The transaction moved to a new cookie once it had a user: the old one is worth nothing.
    assert_ne!(b.jar["cs_login"], before);
    let mut planted = Browser::new(&c.t);
    planted.jar.insert("cs_login".into(), before);
    assert_eq!(planted.get("/u/mfa/enroll").await.status, 400);
    // The login page now sends the browser on to the step it is at.
    assert_eq!(b.get("/u/login").await.location.as_deref(), Some("/u/mfa/enroll"));

    let p = b.get("/u/mfa/enroll").await;
    assert_eq!(p.status, 200);
    assert!(p.has("<h1>Secure your account</h1>"));
    assert!(
        p.has(r#"<select id="country" name="country""#)
            && p.has(r#"<option value="US" selected>United States (+1)</option>"#)
    );
    assert!(p.has(r#"type="tel""#) && p.has(r#"autocomplete="tel""#));
    assert!(p.has(r#"type="radio" name="channel" value="sms" checked"#) && p.has("Voice call"));
    // A number that is not one is refused on the same page, the input kept.
    let r = b.submit(&p, "/u/mfa/enroll", &[("country", "US"), ("phone", "12"), ("channel", "sms")]).await;
    assert_eq!(r.status, 400);
    assert!(r.has("This phone number is not valid.") && r.has(r#"value="12""#));
    // A number the destination policy refuses (premium rate, by default): said in words on the page, nothing sent.
    let r =
        b.submit(&r, "/u/mfa/enroll", &[("country", "GB"), ("phone", "+44 909 876 5432"), ("channel", "sms")]).await;
    assert_eq!(r.status, 400);
    assert!(r.has("Codes cannot be sent to this phone number") && r.has(r#"value="+44 909 876 5432""#), "{}", r.body);
    c.t.deliver_now().await;
    assert_eq!(c.t.app.store.count_dev_messages().await.unwrap(), 0);
    assert_eq!(c.t.logs(&c.admin, "gd_send_sms_failure").await[0]["details"]["reason"], "number_type_not_allowed");

    c.t.clock.advance(Duration::from_millis(1));
    let r = b.submit(&r, "/u/mfa/enroll", &[("country", "US"), ("phone", "(415) 555-2671"), ("channel", "sms")]).await;
    assert_eq!((r.status, r.location.as_deref()), (303, Some("/u/mfa/code")), "{}", r.body);
    let p = b.get("/u/mfa/code").await;
    assert!(p.has("<h1>Verify your identity</h1>"));
    assert!(
        p.has("We&#39;ve sent a text message with a 6-digit code to XXXXXXXX2671.")
            || p.has("We've sent a text message with a 6-digit code to XXXXXXXX2671."),
        "{}",
        p.body
    );
    assert!(
        p.has(r#"autocomplete="one-time-code""#) && p.has(r#"inputmode="numeric""#) && p.has(r#"pattern="[0-9 ]*""#)
    );
    assert!(p.has(r#"data-cooldown="30""#) && p.has("You can ask for a new code in 30 seconds."));
    assert!(p.has("Call me instead") && p.has("Use a different number"));
    assert!(!p.has("Use a recovery code"), "no recovery code before the phone is enrolled");

    let msgs = c.t.inbox(PHONE, 1).await;
    assert_eq!(msgs[0].channel, "sms");
    assert!(msgs[0].text.contains("Please enter this code to verify your enrollment."));
    let code = c.t.code_for(PHONE, 1).await;
    let r = b.submit(&p, "/u/mfa/code", &[("code", &code)]).await;
    assert_eq!((r.status, r.location.as_deref()), (303, Some("/u/mfa/recovery-code")), "{}", r.body);

    // The recovery code, once.
    let p = b.get("/u/mfa/recovery-code").await;
    assert!(p.has("<h1>Save your recovery code</h1>"));
    let recovery = recovery_code_in(&p);
    assert!(recovery.bytes().all(|x| x.is_ascii_uppercase() || x.is_ascii_digit()), "{recovery}");
    let r = b.submit(&p, "/u/mfa/recovery-code", &[]).await;
    assert_eq!(r.status, 303);
    let loc = r.location.clone().unwrap();
    assert!(loc.starts_with(&format!("{CALLBACK}?code=")), "{loc}");
    assert_eq!(r.query("state").as_deref(), Some("st-42"));
    assert!(!b.jar.contains_key("cs_login"), "the transaction cookie is cleared");
    assert!(b.jar.contains_key("cs_sso"));
    assert_eq!(b.get("/u/mfa/recovery-code").await.status, 400, "the transaction is over");

    // The code exchanges for tokens, with PKCE.
    let code = r.query("code").unwrap();
    let (s, tokens) = c.exchange(&code, VERIFIER).await;
    assert_eq!(s, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid profile email");
    assert!(tokens.get("refresh_token").is_none(), "no offline_access asked");
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(id["aud"], json!(c.cid));
    assert_eq!(id["sub"], json!(c.user_id));
    assert_eq!(id["email"], "ann@example.com");
    assert_eq!(id["name"], "Ann");
    assert!(id.get("picture").is_none(), "a claim without a value is left out, not null: {id}");
    assert_eq!(id["amr"], json!(["pwd", "mfa"]));
    assert_eq!(id["auth_time"].as_i64(), Some(common::START.seconds()));
    let at = claims(tokens["access_token"].as_str().unwrap());
    assert!(at.get("gty").is_none());
    assert_eq!(at["azp"], json!(c.cid));

    // The code is single use.
    let (s, v) = c.exchange(&code, VERIFIER).await;
    assert_eq!((s, v["error"].as_str()), (403, Some("invalid_grant")), "{v}");

    // /userinfo.
    let access = tokens["access_token"].as_str().unwrap();
    let r = c.t.http.get(c.t.url("/userinfo")).bearer_auth(access).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["sub"], json!(c.user_id));
    assert_eq!(info["email"], "ann@example.com");
    assert_eq!(info["email_verified"], false);
    assert_eq!(info["name"], "Ann");
    assert!(info.as_object().unwrap().values().all(|v| !v.is_null()), "no null claims: {info}");
    let r = c.t.http.post(c.t.url("/userinfo")).bearer_auth(access).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c.t.http.get(c.t.url("/userinfo")).bearer_auth("not-a-token").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("www-authenticate").is_some());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_token");
    let r = c.t.http.get(c.t.url("/userinfo")).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // The recovery code really is the user's: the MFA API accepts it.
    let (s, v) = c
        .t
        .token_request(json!({"grant_type": "password", "client_id": c.cid, "client_secret": c.secret, "username": "ann@example.com", "password": PW}))
        .await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = c
        .t
        .token_request(json!({"grant_type": "http://auth0.com/oauth/grant-type/mfa-recovery-code", "client_id": c.cid,
                              "client_secret": c.secret, "mfa_token": v["mfa_token"], "recovery_code": recovery}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["recovery_code"].as_str().map(str::len), Some(24));

    let types = c.log_types().await;
    for t in [
        "fp",
        "fu",
        "gd_start_enroll",
        "gd_send_sms",
        "gd_enrollment_complete",
        "gd_auth_succeed",
        "s",
        "seacft",
        "feacft",
    ] {
        assert!(types.contains(&t.to_owned()), "{t} missing from {types:?}");
    }
    let (_, user) = c.t.get(&c.admin, &format!("/api/v2/users/{}", common::enc(&c.user_id))).await;
    assert_eq!(user["logins_count"], 2, "the pages' login and the recovery-code grant's");

    // A second /authorize in the same browser: the SSO session skips the password and the second factor.
    let r = b.get(&c.authorize_url(&[("state", "again")])).await;
    assert_eq!(r.status, 302);
    assert!(r.location.as_deref().unwrap().starts_with(CALLBACK), "{:?}", r.location);
    assert_eq!(r.query("state").as_deref(), Some("again"));
    let (s, tokens) = c.exchange(&r.query("code").unwrap(), VERIFIER).await;
    assert_eq!(s, 200, "{tokens}");
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["amr"], json!(["pwd", "mfa"]));
    assert_eq!(id["auth_time"].as_i64(), Some(common::START.seconds()));
    // prompt=login asks again.
    let r = b.get(&c.authorize_url(&[("prompt", "login")])).await;
    assert_eq!(r.location.as_deref(), Some("/u/login"));

    // Using the SSO session does not extend it: three days after the password it is over.
    c.t.clock.advance(std::time::Duration::from_secs(2 * 24 * 3600));
    let r = b.get(&c.authorize_url(&[("state", "later")])).await;
    assert!(r.location.as_deref().unwrap().starts_with(CALLBACK), "{:?}", r.location);
    c.t.clock.advance(std::time::Duration::from_secs(36 * 3600));
    let r = b.get(&c.authorize_url(&[])).await;
    assert_eq!(r.location.as_deref(), Some("/u/login"), "the session ended 3 days after the password");
}

#[tokio::test]
async fn voice_only_enrollment_calls_and_needs_no_channel_choice() {
    let c = setup(&["voice"]).await;
    let mut b = Browser::new(&c.t);
    let r = c.login(&mut b, &[]).await;
    assert_eq!(r.location.as_deref(), Some("/u/mfa/enroll"));
    let p = b.get("/u/mfa/enroll").await;
    assert!(!p.has(r#"type="radio""#));
    assert!(p.has(r#"<input type="hidden" name="channel" value="voice">"#));
    let r = b.submit(&p, "/u/mfa/enroll", &[("country", "US"), ("phone", "+1 415 555 2671"), ("channel", "sms")]).await;
    assert_eq!(r.location.as_deref(), Some("/u/mfa/code"), "{}", r.body);
    let p = b.get("/u/mfa/code").await;
    assert!(p.has("calling XXXXXXXX2671"), "{}", p.body);
    assert!(!p.has("Call me instead") && !p.has("text message instead"));
    let msgs = c.t.inbox(PHONE, 1).await;
    assert_eq!(msgs[0].channel, "voice");
    let code = c.t.code_for(PHONE, 1).await;
    let r = b.submit(&p, "/u/mfa/code", &[("code", &code)]).await;
    assert_eq!(r.location.as_deref(), Some("/u/mfa/recovery-code"));
    let p = b.get("/u/mfa/recovery-code").await;
    let r = b.submit(&p, "/u/mfa/recovery-code", &[]).await;
    let (s, tokens) = c.exchange(&r.query("code").unwrap(), VERIFIER).await;
    assert_eq!(s, 200, "{tokens}");
    assert!(c.log_types().await.contains(&"gd_send_voice".to_owned()));
}

#[tokio::test]
async fn a_returning_user_is_challenged_and_can_switch_to_voice_or_use_the_recovery_code() {
    let c = setup(&["sms", "voice"]).await;
    let mut first = Browser::new(&c.t);
    let p = c.enroll(&mut first, "sms").await;
    let recovery = recovery_code_in(&p);

    // Another browser: password, then straight to the code (sent to the enrolled phone).
    let mut b = Browser::new(&c.t);
    c.t.clock.advance(Duration::from_millis(1));
    let r = c.login(&mut b, &[]).await;
    assert_eq!((r.status, r.location.as_deref()), (303, Some("/u/mfa/code")), "{}", r.body);
    let p = b.get("/u/mfa/code").await;
    assert!(p.has("XXXXXXXX2671") && p.has("Use a recovery code") && p.has("Call me instead"));
    assert!(!p.has("Use a different number"));
    let msgs = c.t.inbox(PHONE, 2).await;
    assert!(msgs[0].text.ends_with("is your verification code for Callsign"), "{}", msgs[0].text);

    // Call me instead: a voice message, no cooldown for a channel switch.
    c.t.clock.advance(Duration::from_millis(1));
    let r = b.submit(&p, "/u/mfa/resend", &[("channel", "voice")]).await;
    assert_eq!(r.location.as_deref(), Some("/u/mfa/code"));
    let p = b.get("/u/mfa/code").await;
    assert!(p.has("A new code has been sent.") && p.has("calling XXXXXXXX2671"), "{}", p.body);
    assert!(p.has("Send me a text message instead"));
    let msgs = c.t.inbox(PHONE, 3).await;
    assert_eq!(msgs[0].channel, "voice");

    // A recovery code instead: wrong, then right; a new one is shown.
    let p = b.get("/u/mfa/recovery").await;
    assert_eq!(p.status, 200);
    assert!(p.has(r#"<label for="recovery_code">Recovery code</label>"#));
    let r = b.submit(&p, "/u/mfa/recovery", &[("recovery_code", "AAAAAAAAAAAAAAAAAAAAAAAA")]).await;
    assert_eq!(r.status, 400);
    assert!(r.has("This recovery code is not valid."));
    let r = b.submit(&r, "/u/mfa/recovery", &[("recovery_code", &recovery.to_lowercase())]).await;
    assert_eq!(r.location.as_deref(), Some("/u/mfa/recovery-code"), "{}", r.body);
    let p = b.get("/u/mfa/recovery-code").await;
    let fresh = recovery_code_in(&p);
    assert_ne!(fresh, recovery);
    let r = b.submit(&p, "/u/mfa/recovery-code", &[]).await;
    let (s, tokens) = c.exchange(&r.query("code").unwrap(), VERIFIER).await;
    assert_eq!(s, 200);
    assert_eq!(claims(tokens["id_token"].as_str().unwrap())["amr"], json!(["pwd", "mfa"]));
    let types = c.log_types().await;
    assert!(types.contains(&"gd_recovery_failed".to_owned()) && types.contains(&"gd_recovery_succeed".to_owned()));
}

#[tokio::test]
async fn wrong_codes_resends_and_limits_show_the_reference_texts() {
    let c = setup(&["sms"]).await;
    let mut b = Browser::new(&c.t);
    let r = c.login(&mut b, &[]).await;
    assert_eq!(r.location.as_deref(), Some("/u/mfa/enroll"));
    let p = b.get("/u/mfa/enroll").await;
    let r = b.submit(&p, "/u/mfa/enroll", &[("country", "US"), ("phone", "4155552671")]).await;
    assert_eq!(r.location.as_deref(), Some("/u/mfa/code"));
    let mut p = b.get("/u/mfa/code").await;
    assert!(!p.has("Call me instead"), "voice is not enabled");
    let code = c.t.code_for(PHONE, 1).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };

    let r = b.submit(&p, "/u/mfa/code", &[("code", "12ab")]).await;
    assert_eq!(r.status, 400);
    assert!(r.has("Enter the 6 digits of the code."));
    let r = b.submit(&p, "/u/mfa/code", &[("code", wrong)]).await;
    assert_eq!(r.status, 400);
    assert!(r.has("The code you entered is invalid.") && r.has(r#"aria-invalid="true""#));

    // The resend cooldown is enforced by the server.
    let r = b.submit(&p, "/u/mfa/resend", &[]).await;
    assert_eq!(r.location.as_deref(), Some("/u/mfa/code"));
    p = b.get("/u/mfa/code").await;
    assert!(p.has("Wait 30 seconds before asking for a new code."), "{}", p.body);
    c.t.clock.advance(Duration::from_secs(31));
    let r = b.submit(&p, "/u/mfa/resend", &[]).await;
    assert_eq!(r.location.as_deref(), Some("/u/mfa/code"));
    p = b.get("/u/mfa/code").await;
    assert!(p.has("A new code has been sent."));
    // The old code was superseded in the page's flow: the new one works... after the failures below.
    let new_code = c.t.code_for(PHONE, 2).await;

    // Nine more wrong codes empty the bucket (ten in all); then even the right code is refused.
    for _ in 0..9 {
        let r = b.submit(&p, "/u/mfa/code", &[("code", wrong)]).await;
        assert_eq!(r.status, 400, "{}", r.body);
    }
    let r = b.submit(&p, "/u/mfa/code", &[("code", &new_code)]).await;
    assert_eq!(r.status, 429);
    assert!(r.has("Too many failed codes. Wait for some minutes before retrying."), "{}", r.body);
    assert!(c.log_types().await.contains(&"gd_otp_rate_limit_exceed".to_owned()));

    // Sends: two so far; eight more, then the hourly limit.
    for _ in 0..8 {
        c.t.clock.advance(Duration::from_secs(31));
        b.submit(&p, "/u/mfa/resend", &[]).await;
    }
    c.t.clock.advance(Duration::from_secs(31));
    let r = b.submit(&p, "/u/mfa/resend", &[]).await;
    assert_eq!(r.location.as_deref(), Some("/u/mfa/code"));
    let p = b.get("/u/mfa/code").await;
    assert!(p.has("You have exceeded the amount of SMSs per hour. Wait a few minutes and try again."), "{}", p.body);
    // Six minutes later one wrong-code attempt is back, and the last code has expired (5 minutes).
    c.t.clock.advance(Duration::from_secs(6 * 60));
    let code = c.t.code_for(PHONE, 10).await;
    let r = b.submit(&p, "/u/mfa/code", &[("code", &code)]).await;
    assert_eq!(r.status, 400);
    assert!(r.has("This code has expired or was already used. Ask for a new code."), "{}", r.body);
    // The transaction outlives neither its 30 minutes of inactivity.
    c.t.clock.advance(Duration::from_secs(31 * 60));
    let r = b.submit(&p, "/u/mfa/code", &[("code", &code)]).await;
    assert_eq!(r.status, 400);
    assert!(r.has("Your login session has expired."));
}

#[tokio::test]
async fn forms_without_the_sessions_csrf_token_are_refused() {
    let c = setup(&["sms"]).await;
    let mut b = Browser::new(&c.t);
    let p = c.start(&mut b, &[]).await;
    let r = b.post("/u/login", &[("email", "ann@example.com"), ("password", PW), ("csrf", "forged")]).await;
    assert_eq!(r.status, 403);
    assert!(r.has("This form has expired or did not come from this page."));
    let r = b.post("/u/login", &[("email", "ann@example.com"), ("password", PW)]).await;
    assert_eq!(r.status, 403);
    // Another browser's token does not work either.
    let mut other = Browser::new(&c.t);
    let q = c.start(&mut other, &[]).await;
    let r = b.post("/u/login", &[("email", "ann@example.com"), ("password", PW), ("csrf", &q.csrf())]).await;
    assert_eq!(r.status, 403);
    // Without the transaction cookie: the session has expired.
    let mut stranger = Browser::new(&c.t);
    let r = stranger.post("/u/login", &[("email", "ann@example.com"), ("password", PW), ("csrf", &p.csrf())]).await;
    assert_eq!(r.status, 400);
    assert!(r.has("Your login session has expired."));
    // Nothing was logged in.
    assert!(!c.log_types().await.iter().any(|t| t == "fp" || t == "s"));
    // The genuine token works.
    let r = b.submit(&p, "/u/login", &[("email", "ann@example.com"), ("password", PW)]).await;
    assert_eq!(r.status, 303);
}

#[tokio::test]
async fn authorize_never_redirects_to_an_unknown_callback() {
    let c = setup(&["sms"]).await;
    let mut b = Browser::new(&c.t);
    for url in [
        c.authorize_url(&[("redirect_uri", "https://evil.example/callback")]),
        c.authorize_url(&[("redirect_uri", "https://app.example/callback/../x")]),
        c.authorize_url(&[("redirect_uri", "https://app.example/callback?x=1")]),
        c.authorize_url(&[("client_id", "no-such-client")]),
        format!("/authorize?response_type=code&client_id={}", c.cid),
        "/authorize".to_owned(),
    ] {
        let r = b.get(&url).await;
        assert_eq!(r.status, 400, "{url}");
        assert!(r.location.is_none(), "{url}");
        assert!(r.has(r#"role="alert""#), "{url}");
        assert!(r.headers.get("content-security-policy").is_some());
    }
    assert!(
        b.get(&c.authorize_url(&[("redirect_uri", "https://evil.example/cb")]))
            .await
            .has("(redirect_uri) is not allowed")
    );

    // Once the callback is trusted, protocol errors go back to it with the state.
    let r = b.get(&c.authorize_url(&[("response_type", "token")])).await;
    assert_eq!(r.status, 302);
    assert!(r.location.as_deref().unwrap().starts_with(CALLBACK));
    assert_eq!(r.query("error").as_deref(), Some("unsupported_response_type"));
    assert_eq!(r.query("state").as_deref(), Some("st-42"));
    let r = b.get(&c.authorize_url(&[("code_challenge_method", "plain")])).await;
    assert_eq!(r.query("error").as_deref(), Some("invalid_request"));
    assert!(r.query("error_description").unwrap().contains("S256"));
    let r = b.get(&c.authorize_url(&[("prompt", "none")])).await;
    assert_eq!(r.query("error").as_deref(), Some("login_required"));

    // A public client (SPA) must use PKCE; a confidential one may skip it.
    let (_, spa) =
        c.t.post(&c.admin, "/api/v2/clients", json!({"name": "Spa", "app_type": "spa", "callbacks": [CALLBACK]})).await;
    let url = format!(
        "/authorize?{}",
        serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", spa["client_id"].as_str().unwrap()),
            ("redirect_uri", CALLBACK)
        ])
        .unwrap()
    );
    let r = b.get(&url).await;
    assert_eq!(r.query("error").as_deref(), Some("invalid_request"));
    assert!(r.query("error_description").unwrap().contains("PKCE"));
    let url = format!(
        "/authorize?{}",
        serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", c.cid.as_str()),
            ("redirect_uri", CALLBACK)
        ])
        .unwrap()
    );
    assert_eq!(b.get(&url).await.location.as_deref(), Some("/u/login"));
}

#[tokio::test]
async fn pkce_mismatch_code_reuse_and_expiry_are_invalid_grant() {
    let c = setup_app(TestApp::spawn().await, &["sms"], false).await;
    let mut b = Browser::new(&c.t);
    // Without MFA the password ends the login: straight to the callback.
    let r = c.login(&mut b, &[]).await;
    assert_eq!(r.status, 303);
    assert!(r.location.as_deref().unwrap().starts_with(CALLBACK));
    let code = r.query("code").unwrap();
    let (s, v) = c.exchange(&code, "x".repeat(43).as_str()).await;
    assert_eq!(
        (s, v["error"].as_str(), v["error_description"].as_str()),
        (403, Some("invalid_grant"), Some("Failed to verify code verifier"))
    );
    // The code was spent by the failed attempt.
    let (s, v) = c.exchange(&code, VERIFIER).await;
    assert_eq!((s, v["error"].as_str()), (403, Some("invalid_grant")));

    // A good exchange: amr without mfa.
    let r = c.login(&mut b, &[("prompt", "login")]).await;
    let code = r.query("code").unwrap();
    let (s, v) = c.exchange(&code, VERIFIER).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(claims(v["id_token"].as_str().unwrap())["amr"], json!(["pwd"]));
    let (s, _) = c.exchange(&code, VERIFIER).await;
    assert_eq!(s, 403, "reuse");

    // Another redirect_uri than the one authorized.
    let r = c.login(&mut b, &[("prompt", "login")]).await;
    let (s, v) = c
        .t
        .token_request(json!({"grant_type": "authorization_code", "client_id": c.cid, "client_secret": c.secret,
                              "code": r.query("code").unwrap(), "redirect_uri": "https://app.example/other", "code_verifier": VERIFIER}))
        .await;
    assert_eq!((s, v["error"].as_str()), (403, Some("invalid_grant")), "{v}");

    // Codes live five minutes.
    let r = c.login(&mut b, &[("prompt", "login")]).await;
    c.t.clock.advance(Duration::from_secs(301));
    let (s, v) = c.exchange(&r.query("code").unwrap(), VERIFIER).await;
    assert_eq!((s, v["error"].as_str()), (403, Some("invalid_grant")));

    // A confidential client must authenticate.
    let r = c.login(&mut b, &[("prompt", "login")]).await;
    let (s, v) = c
        .t
        .token_request(json!({"grant_type": "authorization_code", "client_id": c.cid, "code": r.query("code").unwrap(),
                              "redirect_uri": CALLBACK, "code_verifier": VERIFIER}))
        .await;
    assert_eq!(s, 401, "{v}");
    assert!(c.log_types().await.contains(&"feacft".to_owned()));
}

#[tokio::test]
async fn offline_access_gives_a_refresh_token_that_rotates() {
    let c = setup_app(TestApp::spawn().await, &["sms"], false).await;
    let mut b = Browser::new(&c.t);
    let r = c.login(&mut b, &[("scope", "openid email offline_access")]).await;
    let (s, v) = c.exchange(&r.query("code").unwrap(), VERIFIER).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["scope"], "openid email offline_access");
    let rt = v["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |rt: String| {
        let c = &c;
        async move {
            c.t.token_request(json!({"grant_type": "refresh_token", "client_id": c.cid, "client_secret": c.secret, "refresh_token": rt}))
                .await
        }
    };
    let (s, v2) = refresh(rt.clone()).await;
    assert_eq!(s, 200, "{v2}");
    let rt2 = v2["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt, rt2);
    assert_eq!(claims(v2["id_token"].as_str().unwrap())["sub"], json!(c.user_id));
    let (s, v) = refresh(rt).await;
    assert_eq!((s, v["error"].as_str()), (403, Some("invalid_grant")), "a refresh token is single use");
    // Another client's attempt and a wider scope are refused without spending the token.
    let (s, other) =
        c.t.post(
            &c.admin,
            "/api/v2/clients",
            json!({"name": "other", "app_type": "regular_web", "grant_types": ["refresh_token"]}),
        )
        .await;
    assert_eq!(s, 201, "{other}");
    let (s, v) = c
        .t
        .token_request(json!({"grant_type": "refresh_token", "client_id": other["client_id"], "client_secret": other["client_secret"], "refresh_token": rt2}))
        .await;
    assert_eq!((s, v["error"].as_str()), (403, Some("invalid_grant")), "{v}");
    let (s, v) = c
        .t
        .token_request(json!({"grant_type": "refresh_token", "client_id": c.cid, "client_secret": c.secret, "refresh_token": rt2, "scope": "openid profile"}))
        .await;
    assert_eq!((s, v["error"].as_str()), (403, Some("invalid_scope")), "{v}");
    let (s, _) = refresh(rt2).await;
    assert_eq!(s, 200);
    let types = c.log_types().await;
    assert!(types.contains(&"sertft".to_owned()) && types.contains(&"fertft".to_owned()));

    // A client without the refresh_token grant: no refresh token, and the scope does not claim offline access.
    let (s, v) =
        c.t.patch(&c.admin, &format!("/api/v2/clients/{}", c.cid), json!({"grant_types": ["authorization_code"]}))
            .await;
    assert_eq!(s, 200, "{v}");
    let r = c.login(&mut b, &[("scope", "openid email offline_access"), ("prompt", "login")]).await;
    let (s, v) = c.exchange(&r.query("code").unwrap(), VERIFIER).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["scope"], "openid email");
    assert!(v.get("refresh_token").is_none(), "{v}");
    assert_eq!(claims(v["access_token"].as_str().unwrap())["scope"], "openid email");
}

#[tokio::test]
async fn logout_goes_back_only_to_allowed_addresses() {
    let c = setup_app(TestApp::spawn().await, &["sms"], false).await;
    let mut b = Browser::new(&c.t);
    let r = c.login(&mut b, &[]).await;
    assert_eq!(r.status, 303);
    assert!(b.jar.contains_key("cs_sso"));

    let q = |to: &str| {
        format!(
            "/v2/logout?{}",
            serde_urlencoded::to_string([("client_id", c.cid.as_str()), ("returnTo", to)]).unwrap()
        )
    };
    let r = b.get(&q("https://evil.example/")).await;
    assert_eq!(r.status, 400);
    assert!(r.location.is_none());
    assert!(r.has("(returnTo) is not allowed"));
    assert!(b.jar.contains_key("cs_sso"), "a refused logout changes nothing");
    let r = b.get(&format!("/v2/logout?returnTo={LOGOUT_URL}")).await;
    assert_eq!((r.status, r.location.as_deref()), (400, None), "returnTo needs a client_id");

    let r = b.get(&q(LOGOUT_URL)).await;
    assert_eq!((r.status, r.location.as_deref()), (302, Some(LOGOUT_URL)));
    assert!(!b.jar.contains_key("cs_sso"));
    let types = c.log_types().await;
    assert!(types.contains(&"slo".to_owned()));
    // The SSO session is gone: /authorize asks for the password again.
    let r = b.get(&c.authorize_url(&[])).await;
    assert_eq!(r.location.as_deref(), Some("/u/login"));

    // Without returnTo: a page.
    let r = b.get("/v2/logout").await;
    assert_eq!(r.status, 200);
    assert!(r.has("You have been logged out."));
    // OIDC RP-initiated logout.
    let url = format!(
        "/oidc/logout?{}",
        serde_urlencoded::to_string([
            ("client_id", c.cid.as_str()),
            ("post_logout_redirect_uri", LOGOUT_URL),
            ("state", "s1")
        ])
        .unwrap()
    );
    let r = b.get(&url).await;
    assert_eq!(r.location.as_deref(), Some(format!("{LOGOUT_URL}?state=s1").as_str()));
}

#[tokio::test]
async fn an_enrollment_ticket_enrolls_a_phone_once() {
    let c = setup(&["sms", "voice"]).await;
    let (s, tk) = c.t.post(&c.admin, "/api/v2/guardian/enrollments/ticket", json!({"user_id": c.user_id})).await;
    assert_eq!(s, 200, "{tk}");
    let url = tk["ticket_url"].as_str().unwrap();
    let path = &url[url.find("/mfa/enrollment").unwrap()..];
    let mut b = Browser::new(&c.t);
    b.accept_language = Some("es-MX,es;q=0.9".into());
    let r = b.get(path).await;
    assert_eq!((r.status, r.location.as_deref()), (303, Some("/u/ticket")));
    let p = b.get("/u/ticket").await;
    assert!(p.has(r#"<html lang="es">"#) && p.has("Configurar la verificación por teléfono"), "{}", p.body);
    let r = b.submit(&p, "/u/ticket", &[]).await;
    assert_eq!(r.location.as_deref(), Some("/u/mfa/enroll"), "{}", r.body);
    let p = b.get("/u/mfa/enroll").await;
    assert!(p.has(r#"<option value="MX" selected>México (+52)</option>"#), "the country comes from Accept-Language");
    let r = b.submit(&p, "/u/mfa/enroll", &[("country", "MX"), ("phone", "+1 415 555 2671"), ("channel", "sms")]).await;
    assert_eq!(r.location.as_deref(), Some("/u/mfa/code"), "{}", r.body);
    let p = b.get("/u/mfa/code").await;
    assert!(p.has("Verifique su identidad"));
    let code = c.t.code_for(PHONE, 1).await;
    let r = b.submit(&p, "/u/mfa/code", &[("code", &code)]).await;
    assert_eq!(r.location.as_deref(), Some("/u/mfa/recovery-code"));
    let p = b.get("/u/mfa/recovery-code").await;
    assert!(p.has("Guarde su código de recuperación"));
    let r = b.submit(&p, "/u/mfa/recovery-code", &[]).await;
    assert_eq!(r.location.as_deref(), Some("/u/done"));
    let p = b.get("/u/done").await;
    assert_eq!(p.status, 200);
    assert!(p.has("Todo listo"));
    let (_, methods) =
        c.t.get(&c.admin, &format!("/api/v2/users/{}/authentication-methods", common::enc(&c.user_id))).await;
    assert_eq!(
        methods.as_array().unwrap().iter().filter(|m| m["type"] == "phone" && m["confirmed"] == true).count(),
        1,
        "{methods}"
    );
    assert!(c.log_types().await.contains(&"gd_enrollment_complete".to_owned()));

    // The ticket is spent.
    let mut again = Browser::new(&c.t);
    again.get(path).await;
    let p = again.get("/u/ticket").await;
    let r = again.submit(&p, "/u/ticket", &[]).await;
    assert_eq!(r.status, 400);
    assert!(r.has("This link is invalid, has expired or was already used."));
    let r = again.get("/mfa/enrollment").await;
    assert_eq!(r.status, 400);
}

/// With the phone factor off, "Continue" says so and leaves the ticket unspent: the same link works later.
#[tokio::test]
async fn a_ticket_is_not_spent_while_the_phone_factor_is_off() {
    let c = setup(&["sms"]).await;
    let (s, tk) = c.t.post(&c.admin, "/api/v2/guardian/enrollments/ticket", json!({"user_id": c.user_id})).await;
    assert_eq!(s, 200, "{tk}");
    let url = tk["ticket_url"].as_str().unwrap();
    let path = url[url.find("/mfa/enrollment").unwrap()..].to_owned();
    let toggle = |on: bool| {
        let r =
            c.t.http.put(c.t.url("/api/v2/guardian/factors/sms")).bearer_auth(&c.admin).json(&json!({"enabled": on}));
        async move { assert_eq!(r.send().await.unwrap().status(), 200) }
    };
    toggle(false).await;
    let mut b = Browser::new(&c.t);
    b.get(&path).await;
    let p = b.get("/u/ticket").await;
    let r = b.submit(&p, "/u/ticket", &[]).await;
    assert_eq!(r.status, 409, "{}", r.body);

    toggle(true).await;
    let mut b = Browser::new(&c.t);
    b.get(&path).await;
    let p = b.get("/u/ticket").await;
    let r = b.submit(&p, "/u/ticket", &[]).await;
    assert_eq!(r.location.as_deref(), Some("/u/mfa/enroll"), "the ticket still works: {}", r.body);
}

#[tokio::test]
async fn pages_speak_the_negotiated_language() {
    let c = setup(&["sms"]).await;
    let mut b = Browser::new(&c.t);
    b.accept_language = Some("fr-CA,fr;q=0.9,en;q=0.5".into());
    let p = c.start(&mut b, &[]).await;
    assert!(p.has(r#"<html lang="fr">"#) && p.has("<h1>Connexion</h1>") && p.has("Mot de passe"), "{}", p.body);
    let r = b.submit(&p, "/u/login", &[("email", "ann@example.com"), ("password", "faux")]).await;
    assert!(r.has("Adresse e-mail ou mot de passe incorrect."));
    let r = b.submit(&r, "/u/login", &[("email", "ann@example.com"), ("password", PW)]).await;
    assert_eq!(r.location.as_deref(), Some("/u/mfa/enroll"));
    let p = b.get("/u/mfa/enroll").await;
    assert!(p.has("Sécurisez votre compte") && p.has(r#"<option value="CA" selected>Canada (+1)</option>"#));
    // ui_locales wins over Accept-Language.
    let mut b = Browser::new(&c.t);
    b.accept_language = Some("fr".into());
    let p = c.start(&mut b, &[("ui_locales", "es")]).await;
    assert!(p.has(r#"<html lang="es">"#) && p.has("Iniciar sesión"));
}

#[tokio::test]
async fn the_sms_language_follows_the_page_when_the_tenant_enables_it() {
    let c = setup(&["sms"]).await;
    let (s, v) = c.t.patch(&c.admin, "/api/v2/tenants/settings", json!({"enabled_locales": ["en", "fr"]})).await;
    assert_eq!(s, 200, "{v}");
    let mut g = GuardianConfig::load_for_update(&c.t.app).await.unwrap();
    g.enrollment_message =
        "{% if locale == 'fr' %}Votre code : {{code}}{% else %}Your code: {{code}}{% endif %}".into();
    g.save(&c.t.app).await.unwrap();
    let mut b = Browser::new(&c.t);
    let r = c.login(&mut b, &[("ui_locales", "fr")]).await;
    assert_eq!(r.location.as_deref(), Some("/u/mfa/enroll"));
    let p = b.get("/u/mfa/enroll").await;
    b.submit(&p, "/u/mfa/enroll", &[("country", "US"), ("phone", "4155552671")]).await;
    let msgs = c.t.inbox(PHONE, 1).await;
    assert!(msgs[0].text.starts_with("Votre code : "), "{}", msgs[0].text);
}

#[tokio::test]
async fn discovery_advertises_the_code_flow() {
    let t = TestApp::spawn().await;
    let v: Value = t.http.get(t.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["authorization_endpoint"], json!(format!("{}authorize", t.app.config.public_url)));
    assert_eq!(v["userinfo_endpoint"], json!(format!("{}userinfo", t.app.config.public_url)));
    assert_eq!(v["end_session_endpoint"], json!(format!("{}oidc/logout", t.app.config.public_url)));
    assert_eq!(v["response_types_supported"], json!(["code", "id_token", "code id_token"]));
    assert_eq!(v["response_modes_supported"], json!(["query", "fragment", "form_post", "web_message"]));
    assert_eq!(v["code_challenge_methods_supported"], json!(["S256"]));
    assert!(v["grant_types_supported"].as_array().unwrap().contains(&json!("authorization_code")));
}

#[tokio::test]
async fn the_login_flow_on_postgresql() {
    let Some(t) = TestApp::spawn_postgres().await else { return };
    let c = setup_app(t, &["sms", "voice"], true).await;
    let mut b = Browser::new(&c.t);
    let p = c.enroll(&mut b, "sms").await;
    let r = b.submit(&p, "/u/mfa/recovery-code", &[]).await;
    let (s, v) = c.exchange(&r.query("code").unwrap(), VERIFIER).await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = c.exchange(&r.query("code").unwrap(), VERIFIER).await;
    assert_eq!(s, 403);
}

#[tokio::test]
async fn a_blocked_user_is_told_so_only_after_the_right_password() {
    let c = setup(&["sms"]).await;
    let (s, v) =
        c.t.patch(&c.admin, &format!("/api/v2/users/{}", common::enc(&c.user_id)), json!({"blocked": true})).await;
    assert_eq!(s, 200, "{v}");
    let mut b = Browser::new(&c.t);
    let p = c.start(&mut b, &[]).await;
    let r = b.submit(&p, "/u/login", &[("email", "ann@example.com"), ("password", "wrong")]).await;
    assert_eq!(r.status, 400);
    assert!(r.has("Wrong email or password."));
    let r = b.submit(&r, "/u/login", &[("email", "ann@example.com"), ("password", PW)]).await;
    assert_eq!(r.status, 401);
    assert!(r.has("Your account has been blocked."));
    assert!(c.log_types().await.contains(&"f".to_owned()));
}

// --- single-use values under parallel requests -------------------------------------------------------------------

/// Post the same form from `n` copies of `b` (same cookies) at once; the pages in order.
async fn post_all_at_once(b: &Browser, n: usize, path: &str, fields: &[(&str, &str)]) -> Vec<Page> {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let fields: Vec<(String, String)> = fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let mut tasks = Vec::new();
    for _ in 0..n {
        let mut b = b.clone();
        // Each copy its own connection pool, so the requests really are concurrent.
        b.http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let (barrier, fields, path) = (barrier.clone(), fields.clone(), path.to_owned());
        tasks.push(tokio::spawn(async move {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            barrier.wait().await;
            b.post(&path, &fields).await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// `n` token requests at once; the answers in order.
async fn tokens_at_once(c: &Ctx, bodies: Vec<Value>) -> Vec<(u16, Value)> {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(bodies.len()));
    let mut tasks = Vec::new();
    for body in bodies {
        let http = reqwest::Client::new();
        let (barrier, url) = (barrier.clone(), c.t.url("/oauth/token"));
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let r = http.post(url).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// A double (here: twentyfold) submit of the last page of a login finishes it once: one authorization code, one
/// login counted; and that code is exchanged by exactly one of 20 parallel token requests.
async fn a_login_finishes_once_and_its_code_is_exchanged_once(c: Ctx) {
    let mut b = Browser::new(&c.t);
    let p = c.enroll(&mut b, "sms").await;
    let csrf = p.csrf();
    let pages = post_all_at_once(&b, 20, "/u/mfa/recovery-code", &[("csrf", &csrf)]).await;
    let finished: Vec<&Page> = pages.iter().filter(|p| p.status == 303 && p.query("code").is_some()).collect();
    assert_eq!(finished.len(), 1, "{:?}", pages.iter().map(|p| (p.status, &p.location)).collect::<Vec<_>>());
    assert!(pages.iter().all(|p| p.status == 400 || p.query("code").is_some()));
    let (_, user) = c.t.get(&c.admin, &format!("/api/v2/users/{}", common::enc(&c.user_id))).await;
    assert_eq!(user["logins_count"], 1, "one login counted: {user}");

    let code = finished[0].query("code").unwrap();
    let body = json!({"grant_type": "authorization_code", "client_id": c.cid, "client_secret": c.secret,
                      "code": code, "redirect_uri": CALLBACK, "code_verifier": VERIFIER});
    let answers = tokens_at_once(&c, vec![body; 20]).await;
    assert_eq!(answers.iter().filter(|(s, _)| *s == 200).count(), 1, "{answers:?}");
    assert!(answers.iter().all(|(s, v)| *s == 200 || (*s == 403 && v["error"] == "invalid_grant")), "{answers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_finishes_once_and_its_code_is_exchanged_once_on_sqlite() {
    a_login_finishes_once_and_its_code_is_exchanged_once(setup(&["sms"]).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_finishes_once_and_its_code_is_exchanged_once_on_postgres() {
    let Some(t) = TestApp::spawn_postgres().await else { return };
    a_login_finishes_once_and_its_code_is_exchanged_once(setup_app(t, &["sms"], true).await).await;
}

/// A refresh token is rotated by exactly one of 20 parallel refreshes, three times in a row.
async fn a_refresh_token_is_rotated_once(c: Ctx) {
    let mut b = Browser::new(&c.t);
    let r = c.login(&mut b, &[("scope", "openid email offline_access")]).await;
    let (s, v) = c.exchange(&r.query("code").unwrap(), VERIFIER).await;
    assert_eq!(s, 200, "{v}");
    let mut rt = v["refresh_token"].as_str().unwrap().to_owned();
    for round in 0..3 {
        let body =
            json!({"grant_type": "refresh_token", "client_id": c.cid, "client_secret": c.secret, "refresh_token": rt});
        let answers = tokens_at_once(&c, vec![body; 20]).await;
        let winners: Vec<&Value> = answers.iter().filter(|(s, _)| *s == 200).map(|(_, v)| v).collect();
        assert_eq!(winners.len(), 1, "round {round}: {answers:?}");
        rt = winners[0]["refresh_token"].as_str().unwrap().to_owned();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_token_is_rotated_once_on_sqlite() {
    a_refresh_token_is_rotated_once(setup_app(TestApp::spawn().await, &["sms"], false).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_token_is_rotated_once_on_postgres() {
    let Some(t) = TestApp::spawn_postgres().await else { return };
    a_refresh_token_is_rotated_once(setup_app(t, &["sms"], false).await).await;
}

/// One enrollment ticket opened in 20 browsers whose "Continue" is pressed at the same moment: one goes on to the
/// enrollment, the other 19 are told the link was used.
async fn an_enrollment_ticket_is_spent_once(c: Ctx) {
    let (s, tk) = c.t.post(&c.admin, "/api/v2/guardian/enrollments/ticket", json!({"user_id": c.user_id})).await;
    assert_eq!(s, 200, "{tk}");
    let url = tk["ticket_url"].as_str().unwrap();
    let path = url[url.find("/mfa/enrollment").unwrap()..].to_owned();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let mut b = Browser::new(&c.t);
        let (barrier, path) = (barrier.clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            b.get(&path).await;
            let p = b.get("/u/ticket").await;
            let csrf = p.csrf();
            barrier.wait().await;
            b.post("/u/ticket", &[("csrf", &csrf)]).await
        }));
    }
    let mut pages = Vec::new();
    for t in tasks {
        pages.push(t.await.unwrap());
    }
    let on = pages.iter().filter(|p| p.location.as_deref() == Some("/u/mfa/enroll")).count();
    let spent = pages.iter().filter(|p| p.status == 400 && p.has("was already used")).count();
    assert_eq!((on, spent), (1, 19), "{:?}", pages.iter().map(|p| (p.status, &p.location)).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_enrollment_ticket_is_spent_once_on_sqlite() {
    an_enrollment_ticket_is_spent_once(setup(&["sms"]).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_enrollment_ticket_is_spent_once_on_postgres() {
    let Some(t) = TestApp::spawn_postgres().await else { return };
    an_enrollment_ticket_is_spent_once(setup_app(t, &["sms"], true).await).await;
}

#[tokio::test]
async fn signup_pages_create_the_account_and_continue_into_phone_enrollment() {
    let c = setup(&["sms"]).await;
    // Sign-up is off on a new install: no link, the hint and the page fall back to the login page.
    let mut b = Browser::new(&c.t);
    let p = c.start(&mut b, &[("screen_hint", "signup")]).await;
    assert!(!p.has("signup-link"), "{}", p.body);
    let r = b.get("/u/signup").await;
    assert_eq!((r.status, r.location.as_deref()), (303, Some("/u/login")));

    let (_, v) = c.t.get(&c.admin, "/api/v2/connections").await;
    let id = v[0]["id"].as_str().unwrap().to_owned();
    let (s, _) =
        c.t.patch(&c.admin, &format!("/api/v2/connections/{id}"), json!({"options": {"disable_signup": false}})).await;
    assert_eq!(s, 200);

    // The login page links to sign-up, and sign-up back to login.
    let mut b = Browser::new(&c.t);
    let p = c.start(&mut b, &[]).await;
    assert!(p.has(r#"href="/u/signup""#), "{}", p.body);
    let p = b.get("/u/signup").await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(
        p.has("<h1>Sign up</h1>") && p.has("Create your account to continue to Shop.") && p.has(r#"href="/u/login""#)
    );
    assert!(p.has(r#"autocomplete="new-password""#) && p.has(r#"aria-describedby="password-rules""#));
    // A weak password and a taken address are said on the page, with what was typed kept.
    let r = b.submit(&p, "/u/signup", &[("email", "new@example.com"), ("password", "weak")]).await;
    assert_eq!(r.status, 400);
    assert!(r.has("This password is too weak.") && r.has(r#"value="new@example.com""#), "{}", r.body);
    let r = b.submit(&r, "/u/signup", &[("email", "ann@example.com"), ("password", PW)]).await;
    assert_eq!(r.status, 400);
    assert!(r.has("An account with this email already exists."), "{}", r.body);
    // A CSRF-less post is refused.
    assert_eq!(b.post("/u/signup", &[("email", "new@example.com"), ("password", PW)]).await.status, 403);

    // screen_hint=signup opens the page directly; the account is created and the tenant's MFA policy asks for a
    // phone, then the code, then the application gets its code.
    let mut b = Browser::new(&c.t);
    let r = b.get(&c.authorize_url(&[("screen_hint", "signup")])).await;
    assert_eq!((r.status, r.location.as_deref()), (302, Some("/u/signup")));
    let p = b.get("/u/signup").await;
    let r = b.submit(&p, "/u/signup", &[("email", "new@example.com"), ("password", PW)]).await;
    assert_eq!((r.status, r.location.as_deref()), (303, Some("/u/mfa/enroll")), "{}", r.body);
    let p = b.get("/u/mfa/enroll").await;
    c.t.clock.advance(Duration::from_millis(1));
    let r = b.submit(&p, "/u/mfa/enroll", &[("country", "US"), ("phone", "(415) 555-2671"), ("channel", "sms")]).await;
    assert_eq!((r.status, r.location.as_deref()), (303, Some("/u/mfa/code")), "{}", r.body);
    let p = b.get("/u/mfa/code").await;
    let code = c.t.code_for(PHONE, 1).await;
    // Pasted with a space in the middle: the digits are what count.
    let spaced = format!("{} {}", &code[..3], &code[3..]);
    let r = b.submit(&p, "/u/mfa/code", &[("code", &spaced)]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let types = c.log_types().await;
    assert!(types.contains(&"ss".to_owned()) && types.contains(&"gd_enrollment_complete".to_owned()), "{types:?}");
    let (_, users) = c.t.get(&c.admin, "/api/v2/users-by-email?email=new@example.com").await;
    assert_eq!(users.as_array().unwrap().len(), 1, "{users}");
}
