//! What the Auth0 browser and middleware SDKs need beyond the code flow (issue 16): CORS on the Authentication API
//! for the applications' origins only, `/userinfo` tokens in the header, query or form body, `POST /oauth/revoke`,
//! `response_mode=form_post` with the implicit and hybrid response types, and `response_mode=web_message` for
//! silent authentication in an iframe.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::{PW, TestApp};
use reqwest::Method;
use serde_json::{Value, json};

const SPA_ORIGIN: &str = "https://spa.example";
const OTHER_ORIGIN: &str = "https://api-client.example";
const EVIL_ORIGIN: &str = "https://evil.example";

struct Ctx {
    t: TestApp,
    admin: String,
    spa: Value,
    web: Value,
}

/// A single-page app allowing [`SPA_ORIGIN`] (web origin) and [`OTHER_ORIGIN`] (CORS only), a regular web app with
/// the password grant, and the user ann@example.com.
async fn setup() -> Ctx {
    let t = TestApp::spawn().await;
    let admin = t.mgmt_token().await;
    let (s, spa) = t
        .post(
            &admin,
            "/api/v2/clients",
            json!({"name": "SPA", "app_type": "spa", "callbacks": [format!("{SPA_ORIGIN}/cb")],
                   "web_origins": [SPA_ORIGIN], "allowed_origins": [OTHER_ORIGIN]}),
        )
        .await;
    assert_eq!(s, 201, "{spa}");
    assert_eq!(spa["allowed_origins"], json!([OTHER_ORIGIN]));
    let (s, web) = t
        .post(
            &admin,
            "/api/v2/clients",
            json!({"name": "Web", "app_type": "regular_web", "callbacks": ["https://web.example/callback"],
                   "grant_types": ["authorization_code", "implicit", "refresh_token", "password"]}),
        )
        .await;
    assert_eq!(s, 201, "{web}");
    t.create_user(&admin, "ann@example.com").await;
    Ctx { t, admin, spa, web }
}

impl Ctx {
    /// An access token for ann (password grant, `openid profile email`).
    async fn user_token(&self) -> String {
        let (s, b) = self
            .t
            .token_request(json!({"grant_type": "password", "client_id": self.web["client_id"],
                                   "client_secret": self.web["client_secret"], "username": "ann@example.com",
                                   "password": PW, "scope": "openid profile email"}))
            .await;
        assert_eq!(s, 200, "{b}");
        b["access_token"].as_str().unwrap().to_owned()
    }

    async fn preflight(&self, path: &str, origin: &str) -> reqwest::Response {
        self.t
            .http
            .request(Method::OPTIONS, self.t.url(path))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "auth0-client,content-type")
            .send()
            .await
            .unwrap()
    }
}

fn acao(r: &reqwest::Response) -> Option<String> {
    r.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_owned())
}

fn has_cors_headers(r: &reqwest::Response) -> bool {
    r.headers().keys().any(|k| k.as_str().starts_with("access-control-"))
}

// --- CORS ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn preflights_from_an_applications_origins_are_answered_with_cors_headers() {
    let c = setup().await;
    for path in [
        "/oauth/token",
        "/oauth/revoke",
        "/userinfo",
        "/dbconnections/signup",
        "/mfa/challenge",
        "/mfa/authenticators/x",
        "/.well-known/openid-configuration",
        "/.well-known/jwks.json",
    ] {
        for origin in [SPA_ORIGIN, OTHER_ORIGIN] {
            let r = c.preflight(path, origin).await;
            assert_eq!(r.status(), 204, "{path} from {origin}");
            assert_eq!(acao(&r).as_deref(), Some(origin), "{path}");
            let h = |n: &str| r.headers().get(n).unwrap().to_str().unwrap().to_ascii_lowercase();
            assert!(h("access-control-allow-headers").contains("auth0-client"), "{path}");
            assert!(h("access-control-allow-headers").contains("content-type"), "{path}");
            assert!(h("access-control-allow-methods").contains("post"), "{path}");
            assert!(h("vary").contains("origin"), "{path}");
        }
    }
}

#[tokio::test]
async fn other_origins_get_no_cors_headers() {
    let c = setup().await;
    // A preflight from an origin no application lists is not answered: the route refuses OPTIONS.
    for path in
        ["/oauth/token", "/userinfo", "/dbconnections/signup", "/mfa/challenge", "/.well-known/openid-configuration"]
    {
        for origin in [EVIL_ORIGIN, "null", "https://spa.example.evil.example", "http://spa.example"] {
            let r = c.preflight(path, origin).await;
            assert_eq!(r.status(), 405, "{path} from {origin}");
            assert!(!has_cors_headers(&r), "{path} from {origin}: {:?}", r.headers());
        }
    }
    // The request itself is served (a browser would hide the answer), without CORS headers.
    let r =
        c.t.http
            .post(c.t.url("/oauth/token"))
            .header("origin", EVIL_ORIGIN)
            .json(&json!({"grant_type": "refresh_token", "client_id": c.spa["client_id"], "refresh_token": "x"}))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 403);
    assert!(!has_cors_headers(&r), "{:?}", r.headers());
    // Pages and the Management API never answer CORS, whatever the origin.
    for path in ["/api/v2/clients", "/authorize", "/u/login"] {
        let r = c.t.http.get(c.t.url(path)).header("origin", SPA_ORIGIN).send().await.unwrap();
        assert!(!has_cors_headers(&r), "{path}: {:?}", r.headers());
        let r = c.preflight(path, SPA_ORIGIN).await;
        assert!(!has_cors_headers(&r), "{path}: {:?}", r.headers());
    }
}

#[tokio::test]
async fn answers_to_an_allowed_origin_carry_its_origin_also_on_errors() {
    let c = setup().await;
    let r =
        c.t.http
            .post(c.t.url("/oauth/token"))
            .header("origin", SPA_ORIGIN)
            .header("auth0-client", "eyJuYW1lIjoiYXV0aDAtc3BhLWpzIn0=")
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", c.spa["client_id"].as_str().unwrap()),
                ("refresh_token", "x"),
            ])
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(acao(&r).as_deref(), Some(SPA_ORIGIN));
    let token = c.user_token().await;
    let r = c.t.http.get(c.t.url("/userinfo")).header("origin", OTHER_ORIGIN).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(acao(&r).as_deref(), Some(OTHER_ORIGIN));
    let r =
        c.t.http.get(c.t.url("/.well-known/openid-configuration")).header("origin", SPA_ORIGIN).send().await.unwrap();
    assert_eq!(acao(&r).as_deref(), Some(SPA_ORIGIN));
    // Removing the origin from the application stops CORS for it at once.
    let id = c.spa["client_id"].as_str().unwrap();
    let (s, _) = c.t.patch(&c.admin, &format!("/api/v2/clients/{id}"), json!({"allowed_origins": []})).await;
    assert_eq!(s, 200);
    let r = c.preflight("/oauth/token", OTHER_ORIGIN).await;
    assert!(!has_cors_headers(&r));
    assert_eq!(acao(&c.preflight("/oauth/token", SPA_ORIGIN).await).as_deref(), Some(SPA_ORIGIN));
}

// --- /userinfo ----------------------------------------------------------------------------------------------------

#[tokio::test]
async fn userinfo_takes_the_token_from_the_header_the_query_or_a_form_body() {
    let c = setup().await;
    let token = c.user_token().await;
    let ok = |b: &Value| assert_eq!(b["email"], "ann@example.com", "{b}");
    let get = |r: reqwest::RequestBuilder| async move {
        let r = r.send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    let (s, b) = get(c.t.http.get(c.t.url("/userinfo")).bearer_auth(&token)).await;
    assert_eq!(s, 200);
    ok(&b);
    let (s, b) = get(c.t.http.get(c.t.url(&format!("/userinfo?access_token={token}")))).await;
    assert_eq!(s, 200, "{b}");
    ok(&b);
    let (s, b) = get(c.t.http.post(c.t.url("/userinfo")).form(&[("access_token", token.as_str())])).await;
    assert_eq!(s, 200, "{b}");
    ok(&b);
    // The header takes precedence over the query and the body.
    let (s, b) =
        get(c.t.http.get(c.t.url(&format!("/userinfo?access_token={token}"))).bearer_auth("not-a-token")).await;
    assert_eq!((s, b["error"].as_str()), (401, Some("invalid_token")));
    let (s, b) = get(c.t.http.post(c.t.url("/userinfo")).bearer_auth(&token).form(&[("access_token", "x")])).await;
    assert_eq!(s, 200, "{b}");
    // A bad token in the query is refused like one in the header; none anywhere is invalid_request.
    let (s, b) = get(c.t.http.get(c.t.url("/userinfo?access_token=nope"))).await;
    assert_eq!((s, b["error"].as_str()), (401, Some("invalid_token")));
    let (s, b) = get(c.t.http.post(c.t.url("/userinfo")).form(&[("other", "x")])).await;
    assert_eq!((s, b["error"].as_str()), (401, Some("invalid_request")));
    // A GET's body is not read.
    let (s, _) = get(c
        .t
        .http
        .get(c.t.url("/userinfo"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("access_token={token}")))
    .await;
    assert_eq!(s, 401);
}

// --- /oauth/revoke ------------------------------------------------------------------------------------------------

impl Ctx {
    /// A refresh token of ann for `client` (as the code flow stores one).
    async fn refresh_token_for(&self, client: &Value) -> String {
        let user = self.t.app.store.get_user_by_email("ann@example.com").await.unwrap().unwrap();
        let grant = callsign_core::grants::RefreshGrant {
            client_id: client["client_id"].as_str().unwrap().to_owned(),
            user_id: user.user_id,
            scope: "openid offline_access".into(),
            audience: None,
            auth_time: common::START.seconds(),
            amr: vec!["pwd".into()],
        };
        callsign_core::sessions::create(
            &self.t.app.core,
            callsign_core::sessions::REFRESH_KIND,
            &grant,
            callsign_core::sessions::REFRESH_TTL_SECS,
        )
        .await
        .unwrap()
    }

    async fn refresh(&self, client: &Value, rt: &str) -> (u16, Value) {
        let mut body = json!({"grant_type": "refresh_token", "client_id": client["client_id"], "refresh_token": rt});
        if let Some(s) = client.get("client_secret") {
            body["client_secret"] = s.clone();
        }
        self.t.token_request(body).await
    }

    async fn revoke(&self, body: Value) -> (u16, String) {
        let r = self.t.http.post(self.t.url("/oauth/revoke")).json(&body).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

#[tokio::test]
async fn a_revoked_refresh_token_no_longer_refreshes() {
    let c = setup().await;
    // A public client (the SPA) revokes with its client_id alone; a confidential one needs its secret.
    let spa_rt = c.refresh_token_for(&c.spa).await;
    let web_rt = c.refresh_token_for(&c.web).await;
    let (s, body) = c.revoke(json!({"client_id": c.spa["client_id"], "token": spa_rt})).await;
    assert_eq!((s, body.as_str()), (200, ""));
    let (s, b) = c.refresh(&c.spa, &spa_rt).await;
    assert_eq!((s, b["error"].as_str()), (403, Some("invalid_grant")), "{b}");

    let (s, b) = c.revoke(json!({"client_id": c.web["client_id"], "token": web_rt})).await;
    assert_eq!(s, 401, "{b}");
    assert_eq!(serde_json::from_str::<Value>(&b).unwrap()["error"], "invalid_client");
    let (s, b) = c.revoke(json!({"client_id": c.web["client_id"], "client_secret": "wrong", "token": web_rt})).await;
    assert_eq!(s, 401, "{b}");
    // Nothing was revoked by the refused requests: the token still works (and rotates).
    let (s, b) = c.refresh(&c.web, &web_rt).await;
    assert_eq!(s, 200, "{b}");
    let rotated = b["refresh_token"].as_str().unwrap().to_owned();
    // client_secret_basic works too; the form body is accepted as at the token endpoint.
    let r =
        c.t.http
            .post(c.t.url("/oauth/revoke"))
            .basic_auth(c.web["client_id"].as_str().unwrap(), c.web["client_secret"].as_str())
            .form(&[("token", rotated.as_str()), ("token_type_hint", "refresh_token")])
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    let (s, _) = c.refresh(&c.web, &rotated).await;
    assert_eq!(s, 403);
    let logs = c.t.logs(&c.admin, "srrt").await;
    assert_eq!(logs.len(), 2, "{logs:?}");
}

#[tokio::test]
async fn revoking_answers_200_for_unknown_and_foreign_tokens_and_keeps_them() {
    let c = setup().await;
    let web_rt = c.refresh_token_for(&c.web).await;
    // Another client's token: 200, and the token is not revoked.
    let (s, body) = c.revoke(json!({"client_id": c.spa["client_id"], "token": web_rt})).await;
    assert_eq!((s, body.as_str()), (200, ""));
    let (s, b) = c.refresh(&c.web, &web_rt).await;
    assert_eq!(s, 200, "{b}");
    // Unknown tokens and access tokens: 200, nothing happens.
    let at = c.user_token().await;
    for token in ["no-such-token", at.as_str()] {
        let (s, body) = c.revoke(json!({"client_id": c.spa["client_id"], "token": token})).await;
        assert_eq!((s, body.as_str()), (200, ""));
    }
    let (s, b) = c.revoke(json!({"client_id": c.spa["client_id"]})).await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(serde_json::from_str::<Value>(&b).unwrap()["error"], "invalid_request");
    assert!(c.t.logs(&c.admin, "srrt").await.is_empty());
    // Discovery names the endpoint (the Next.js SDK revokes at logout when it is listed).
    let d: Value =
        c.t.http.get(c.t.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(d["revocation_endpoint"], format!("{}/oauth/revoke", c.t.base));
}

// --- the login flows: response types and modes ----------------------------------------------------------------------

const WEB_CALLBACK: &str = "https://web.example/callback";
const NONCE: &str = "n-0S6_WzA2Mj";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-some-more-entropy";

/// A browser: a cookie jar, no redirects followed.
struct Browser {
    http: reqwest::Client,
    base: String,
    jar: std::collections::BTreeMap<String, String>,
}

struct Answer {
    status: u16,
    location: Option<String>,
    headers: reqwest::header::HeaderMap,
    body: String,
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&#39;", "'").replace("&amp;", "&")
}

impl Answer {
    /// The value of the first `attr="…"` after `after` in the body.
    fn attr_after(&self, after: &str, attr: &str) -> Option<String> {
        let at = self.body.find(after)?;
        let rest = &self.body[at..];
        let start = rest.find(&format!("{attr}=\"",))? + attr.len() + 2;
        let end = rest[start..].find('"')? + start;
        Some(unescape(&rest[start..end]))
    }
    /// A form_post page's hidden field.
    fn field(&self, name: &str) -> Option<String> {
        self.attr_after(&format!("name=\"{name}\""), "value")
    }
    fn form_action(&self) -> Option<String> {
        self.attr_after("<form method=\"post\"", "action")
    }
    /// A web_message page's message and target origin.
    fn web_message(&self) -> Option<(Value, String)> {
        let msg = self.attr_after("id=\"cs-web-message\"", "data-message")?;
        let origin = self.attr_after("id=\"cs-web-message\"", "data-origin")?;
        Some((serde_json::from_str(&msg).unwrap(), origin))
    }
    fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_owned())
    }
    /// A redirect's query (or fragment) parameter.
    fn param(&self, name: &str) -> Option<String> {
        let loc = self.location.as_deref()?;
        let q = loc.split_once(['?', '#'])?.1;
        serde_urlencoded::from_str::<Vec<(String, String)>>(q)
            .ok()?
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
    fn csrf(&self) -> String {
        self.field("csrf").unwrap_or_else(|| panic!("no csrf field in {}", self.body))
    }
}

impl Browser {
    fn new(t: &TestApp) -> Browser {
        Browser {
            http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
            base: t.base.clone(),
            jar: Default::default(),
        }
    }

    async fn finish(&mut self, r: reqwest::Response) -> Answer {
        for c in r.headers().get_all(reqwest::header::SET_COOKIE) {
            let c = c.to_str().unwrap();
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
        Answer { status, location, headers, body: r.text().await.unwrap() }
    }

    fn cookies(&self) -> String {
        self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn get(&mut self, path: &str) -> Answer {
        let r = self.http.get(format!("{}{path}", self.base)).header("cookie", self.cookies()).send().await.unwrap();
        self.finish(r).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookies())
            .form(fields)
            .send()
            .await
            .unwrap();
        self.finish(r).await
    }

    /// `/authorize` with `params`, then the login page and the password (no second factor in these tests): the
    /// answer that ends the login.
    async fn log_in(&mut self, params: &[(&str, &str)]) -> Answer {
        let r = self.get(&authorize(params)).await;
        assert_eq!((r.status, r.location.as_deref()), (302, Some("/u/login")), "{}", r.body);
        let p = self.get("/u/login").await;
        assert_eq!(p.status, 200, "{}", p.body);
        let csrf = p.csrf();
        self.post("/u/login", &[("email", "ann@example.com"), ("password", PW), ("csrf", &csrf)]).await
    }
}

fn authorize(params: &[(&str, &str)]) -> String {
    format!("/authorize?{}", serde_urlencoded::to_string(params).unwrap())
}

fn challenge() -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(VERIFIER.as_bytes()))
}

impl Ctx {
    fn web_params<'a>(&'a self, response_type: &'a str, mode: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
        let mut p = vec![
            ("client_id", self.web["client_id"].as_str().unwrap()),
            ("redirect_uri", WEB_CALLBACK),
            ("response_type", response_type),
            ("scope", "openid profile email"),
            ("nonce", NONCE),
            ("state", "st-1"),
        ];
        if let Some(m) = mode {
            p.push(("response_mode", m));
        }
        p
    }
}

fn c_hash(code: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let d = sha2::Sha256::digest(code.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&d[..16])
}

#[tokio::test]
async fn express_openid_connects_default_id_token_by_form_post_works() {
    let c = setup().await;
    let mut b = Browser::new(&c.t);
    let r = b.log_in(&c.web_params("id_token", Some("form_post"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.form_action().as_deref(), Some(WEB_CALLBACK), "{}", r.body);
    assert!(r.body.contains("data-auto-submit"));
    assert_eq!(r.field("state").as_deref(), Some("st-1"));
    assert_eq!(r.field("code"), None);
    let id_token = r.field("id_token").expect("an id_token field");
    let claims = common::claims(&id_token);
    assert_eq!(claims["aud"], c.web["client_id"]);
    assert_eq!(claims["nonce"], NONCE);
    assert_eq!(claims["email"], "ann@example.com");
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert!(claims["auth_time"].is_i64() && claims.get("c_hash").is_none(), "{claims}");
    assert_eq!(claims["iss"], c.t.app.config.public_url);
    // The page is not frameable, and the SSO session started.
    assert_eq!(r.header("x-frame-options").as_deref(), Some("DENY"));
    assert!(r.header("content-security-policy").unwrap().contains("frame-ancestors 'none'"));
    assert!(b.jar.contains_key("cs_sso"));
    // The ID token verifies against the JWKS.
    let jwks: Value = c.t.http.get(c.t.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let kid = common::header(&id_token)["kid"].as_str().unwrap().to_owned();
    let jwk = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid.as_str()).unwrap();
    let key =
        jsonwebtoken::DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap()).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&[c.web["client_id"].as_str().unwrap()]);
    v.validate_exp = false; // the tests' clock is in the past
    jsonwebtoken::decode::<Value>(&id_token, &key, &v).unwrap();

    // Without a mode, an ID token comes in the fragment (never the query).
    let r = b.get(&authorize(&c.web_params("id_token", None))).await;
    assert_eq!(r.status, 302, "{}", r.body);
    let loc = r.location.clone().unwrap();
    assert!(loc.starts_with(&format!("{WEB_CALLBACK}#")), "{loc}");
    assert_eq!(common::claims(&r.param("id_token").unwrap())["nonce"], NONCE);
}

#[tokio::test]
async fn id_token_response_types_need_a_nonce_the_implicit_grant_and_no_query_mode() {
    let c = setup().await;
    let mut b = Browser::new(&c.t);
    // No nonce: the error is posted back like the answer would have been.
    let mut p = c.web_params("id_token", Some("form_post"));
    p.retain(|(k, _)| *k != "nonce");
    let r = b.get(&authorize(&p)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.form_action().as_deref(), Some(WEB_CALLBACK));
    assert_eq!(r.field("error").as_deref(), Some("invalid_request"));
    assert!(r.field("error_description").unwrap().contains("nonce"));
    assert_eq!(r.field("state").as_deref(), Some("st-1"));
    // id_token by query is refused, by query.
    let r = b.get(&authorize(&c.web_params("id_token", Some("query")))).await;
    assert_eq!((r.status, r.param("error").as_deref()), (302, Some("invalid_request")));
    assert!(r.location.unwrap().starts_with(&format!("{WEB_CALLBACK}?")));
    // Response types Callsign does not issue.
    for rt in ["token", "id_token token", "code token"] {
        let r = b.get(&authorize(&c.web_params(rt, Some("form_post")))).await;
        assert_eq!(r.field("error").as_deref(), Some("unsupported_response_type"), "{rt}");
    }
    let r = b.get(&authorize(&c.web_params("code", Some("form_pots")))).await;
    assert_eq!((r.status, r.param("error").as_deref()), (302, Some("invalid_request")));
    // A client without the implicit grant may not get ID tokens from /authorize.
    let id = c.web["client_id"].as_str().unwrap();
    let (s, _) = c
        .t
        .patch(&c.admin, &format!("/api/v2/clients/{id}"), json!({"grant_types": ["authorization_code", "password"]}))
        .await;
    assert_eq!(s, 200);
    for rt in ["id_token", "code id_token"] {
        let r = b.get(&authorize(&c.web_params(rt, None))).await;
        assert_eq!(r.param("error").as_deref(), Some("unauthorized_client"), "{rt}");
    }
}

#[tokio::test]
async fn the_hybrid_flow_answers_a_code_and_an_id_token_with_its_c_hash() {
    let c = setup().await;
    let mut b = Browser::new(&c.t);
    let r = b.log_in(&c.web_params("code id_token", Some("form_post"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let code = r.field("code").expect("a code");
    let claims = common::claims(&r.field("id_token").expect("an id_token"));
    assert_eq!(claims["c_hash"], c_hash(&code));
    assert_eq!(claims["nonce"], NONCE);
    // The code exchanges like any other (a confidential client: no PKCE needed).
    let (s, t) =
        c.t.token_request(json!({"grant_type": "authorization_code", "client_id": c.web["client_id"],
                               "client_secret": c.web["client_secret"], "code": code, "redirect_uri": WEB_CALLBACK}))
            .await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(common::claims(t["id_token"].as_str().unwrap())["nonce"], NONCE);
    assert_eq!(claims["sub"], common::claims(t["id_token"].as_str().unwrap())["sub"]);
    // By fragment, the default for this type.
    let r = b.get(&authorize(&c.web_params("code id_token", None))).await;
    assert_eq!(r.status, 302);
    let code = r.param("code").unwrap();
    assert_eq!(common::claims(&r.param("id_token").unwrap())["c_hash"], c_hash(&code));
}

// --- silent authentication: prompt=none&response_mode=web_message ---------------------------------------------------

impl Ctx {
    fn spa_params<'a>(&'a self, challenge: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut p = vec![
            ("client_id", self.spa["client_id"].as_str().unwrap()),
            ("redirect_uri", "https://spa.example/cb"),
            ("response_type", "code"),
            ("scope", "openid profile email"),
            ("state", "st-spa"),
            ("nonce", NONCE),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ];
        for (k, v) in extra {
            p.retain(|(pk, _)| pk != k);
            p.push((k, v));
        }
        p
    }
}

#[tokio::test]
async fn silent_authentication_posts_the_answer_to_the_applications_origin_only() {
    let c = setup().await;
    let ch = challenge();
    let silent = [("prompt", "none"), ("response_mode", "web_message")];
    let mut b = Browser::new(&c.t);
    // No session yet: login_required, posted to the SPA's origin, in a page only that origin may frame.
    let r = b.get(&authorize(&c.spa_params(&ch, &silent))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (msg, origin) = r.web_message().expect("a web_message page");
    assert_eq!(origin, SPA_ORIGIN);
    assert_eq!(msg["type"], "authorization_response");
    assert_eq!(msg["response"]["error"], "login_required");
    assert_eq!(msg["response"]["state"], "st-spa");
    assert_eq!(r.header("x-frame-options"), None);
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.contains(&format!("frame-ancestors {SPA_ORIGIN}")) && !csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");

    // Log in (redirect mode), then ask silently: a code, posted the same way, that exchanges with PKCE.
    let r = b.log_in(&c.spa_params(&ch, &[])).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.param("code").is_some());
    let r = b.get(&authorize(&c.spa_params(&ch, &silent))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (msg, origin) = r.web_message().expect("a web_message page");
    assert_eq!(origin, SPA_ORIGIN);
    assert_eq!(msg["response"]["state"], "st-spa");
    let code = msg["response"]["code"].as_str().expect("a code").to_owned();
    let (s, t) =
        c.t.token_request(json!({"grant_type": "authorization_code", "client_id": c.spa["client_id"], "code": code,
                               "redirect_uri": "https://spa.example/cb", "code_verifier": VERIFIER}))
            .await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(common::claims(t["id_token"].as_str().unwrap())["nonce"], NONCE);

    // Every other page still refuses to be framed.
    for path in ["/u/login", "/v2/logout"] {
        let r = b.get(path).await;
        assert_eq!(r.header("x-frame-options").as_deref(), Some("DENY"), "{path}");
        assert!(r.header("content-security-policy").unwrap().contains("frame-ancestors 'none'"), "{path}");
    }
}

#[tokio::test]
async fn a_callback_outside_the_web_origins_gets_no_web_message() {
    let c = setup().await;
    let id = c.spa["client_id"].as_str().unwrap();
    // A registered callback whose origin is allowed for CORS but is not a web origin.
    let cb = format!("{OTHER_ORIGIN}/cb");
    let (s, b) =
        c.t.patch(&c.admin, &format!("/api/v2/clients/{id}"), json!({"callbacks": ["https://spa.example/cb", cb]}))
            .await;
    assert_eq!(s, 200, "{b}");
    let ch = challenge();
    let mut b = Browser::new(&c.t);
    let r = b
        .get(&authorize(
            &c.spa_params(&ch, &[("prompt", "none"), ("response_mode", "web_message"), ("redirect_uri", &cb)]),
        ))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.web_message().is_none(), "{}", r.body);
    assert!(r.location.is_none());
    assert_eq!(r.header("x-frame-options").as_deref(), Some("DENY"));
    assert!(r.header("content-security-policy").unwrap().contains("frame-ancestors 'none'"));
    // The same callback by redirect is fine.
    let r = b.get(&authorize(&c.spa_params(&ch, &[("prompt", "none"), ("redirect_uri", &cb)]))).await;
    assert_eq!((r.status, r.param("error").as_deref()), (302, Some("login_required")));
}

// --- configuration as code (a0deploy) -----------------------------------------------------------------------------

#[tokio::test]
async fn a_client_read_back_as_a_write_is_accepted_and_changes_nothing() {
    let c = setup().await;
    let id = c.web["client_id"].as_str().unwrap();
    let (s, read) = c.t.get(&c.admin, &format!("/api/v2/clients/{id}")).await;
    assert_eq!(s, 200);
    // What a0deploy sends back: the read, read-only fields included (and Auth0's own read-only fields).
    let mut body = read.clone();
    body["tenant"] = json!("callsign");
    body["signing_keys"] = json!([{"cert": "x"}]);
    body["callback_url_template"] = json!(false);
    let (s, after) = c.t.patch(&c.admin, &format!("/api/v2/clients/{id}"), body.clone()).await;
    assert_eq!(s, 200, "{after}");
    for k in ["client_id", "name", "callbacks", "grant_types", "created_at", "global", "allowed_origins"] {
        assert_eq!(after[k], read[k], "{k}");
    }
    // A client_id in the body names nothing: the path's client is the one updated.
    body["client_id"] = json!("someone-else");
    body["name"] = json!("Renamed");
    let (s, after) = c.t.patch(&c.admin, &format!("/api/v2/clients/{id}"), body.clone()).await;
    assert_eq!((s, after["client_id"].as_str(), after["name"].as_str()), (200, Some(id), Some("Renamed")));
    // Creating from an exported file works too; the new client gets its own id and timestamps.
    body["name"] = json!("Copy");
    let (s, created) = c.t.post(&c.admin, "/api/v2/clients", body).await;
    assert_eq!(s, 201, "{created}");
    assert_ne!(created["client_id"], json!(id));
    assert_ne!(created["client_id"], json!("someone-else"));
    // Fields Callsign does not know are still refused.
    let (s, b) = c.t.patch(&c.admin, &format!("/api/v2/clients/{id}"), json!({"jwt_configuration": {}})).await;
    assert_eq!(s, 400, "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_of_different_guardian_settings_all_succeed() {
    let c = setup().await;
    let t = std::sync::Arc::new(c.t);
    for round in 0..6 {
        let on = round % 2 == 0;
        let mut writes: Vec<(&str, Value)> = callsign_core::guardian::FACTORS
            .iter()
            .map(|f| {
                let enable = on && callsign_core::guardian::SUPPORTED_FACTORS.contains(f);
                (*f, json!({"enabled": enable}))
            })
            .collect();
        writes.push((
            "message-types",
            json!({"message_types": if on { json!(["sms", "voice"]) } else { json!(["sms"]) }}),
        ));
        writes.push((
            "templates",
            json!({"enrollment_message": format!("enroll {round} {{{{code}}}}"),
                                         "verification_message": format!("verify {round} {{{{code}}}}")}),
        ));
        writes.push(("policies", if on { json!(["all-applications"]) } else { json!([]) }));
        let mut set = tokio::task::JoinSet::new();
        for (what, body) in writes.clone() {
            let (t, token) = (t.clone(), c.admin.clone());
            set.spawn(async move {
                let path = match what {
                    "message-types" => "/api/v2/guardian/factors/phone/message-types".to_owned(),
                    "templates" => "/api/v2/guardian/factors/phone/templates".to_owned(),
                    "policies" => "/api/v2/guardian/policies".to_owned(),
                    f => format!("/api/v2/guardian/factors/{f}"),
                };
                (what, t.put(&token, &path, body).await)
            });
        }
        while let Some(r) = set.join_next().await {
            let (what, (s, b)) = r.unwrap();
            assert_eq!(s, 200, "round {round}, {what}: {b}");
        }
        // Every write is in the configuration.
        let g = callsign_core::guardian::GuardianConfig::load(&t.app).await.unwrap();
        assert_eq!(g.factor_enabled("sms"), on, "round {round}");
        assert_eq!(g.factor_enabled("recovery-code"), on, "round {round}");
        assert_eq!(g.channel_enabled("voice"), on, "round {round}");
        assert_eq!(g.policies.is_empty(), !on, "round {round}");
        assert_eq!(g.enrollment_message, format!("enroll {round} {{{{code}}}}"));
        for f in callsign_core::guardian::FACTORS {
            assert!(g.factors.contains_key(*f), "round {round}: {f}");
        }
    }
}

#[tokio::test]
async fn the_types_callsign_does_not_have_answer_as_an_empty_auth0_tenant() {
    let c = setup().await;
    let t = &c.t;
    for (path, want) in [
        ("/api/v2/rules", json!([])),
        ("/api/v2/rules-configs", json!([])),
        ("/api/v2/hooks", json!([])),
        ("/api/v2/organizations", json!([])),
        ("/api/v2/roles", json!([])),
        ("/api/v2/custom-domains", json!([])),
        ("/api/v2/forms", json!([])),
        ("/api/v2/flows", json!([])),
        ("/api/v2/flows/vault/connections", json!([])),
        ("/api/v2/self-service-profiles", json!([])),
        ("/api/v2/network-acls", json!([])),
        ("/api/v2/actions/actions", json!({"actions": [], "total": 0, "page": 0, "per_page": 50})),
        ("/api/v2/actions/triggers", json!({"triggers": []})),
        (
            "/api/v2/prompts",
            json!({"universal_login_experience": "new", "identifier_first": false, "webauthn_platform_first_factor": false}),
        ),
        ("/api/v2/prompts/login/custom-text/en", json!({})),
        ("/api/v2/prompts/login/partials", json!({})),
        ("/api/v2/branding", json!({})),
        ("/api/v2/migrations", json!({"flags": {}})),
        ("/api/v2/token-exchange-profiles?take=50", json!({"token_exchange_profiles": []})),
        ("/api/v2/user-attribute-profiles?take=10", json!({"user_attribute_profiles": []})),
        ("/api/v2/connection-profiles?take=10", json!({"connection_profiles": []})),
        ("/api/v2/event-streams?take=50", json!({"eventStreams": []})),
        ("/api/v2/log-streams", json!([])),
        (
            "/api/v2/attack-protection/breached-password-detection",
            json!({"enabled": false, "shields": [], "admin_notification_frequency": [], "method": "standard",
                   "stage": {"pre-user-registration": {"shields": []}, "pre-change-password": {"shields": []}}}),
        ),
        ("/api/v2/risk-assessments/settings", json!({"enabled": false})),
        ("/api/v2/risk-assessments/settings/new-device", json!({"remember_for": 0})),
    ] {
        let (s, v) = t.get(&c.admin, path).await;
        assert_eq!((s, &v), (200, &want), "{path}");
    }
    let (s, v) = t.get(&c.admin, "/api/v2/roles?include_totals=true&per_page=10").await;
    assert_eq!((s, v), (200, json!({"start": 0, "limit": 10, "length": 0, "total": 0, "roles": []})));
    let (s, v) = t.get(&c.admin, "/api/v2/rules?per_page=1000").await;
    assert_eq!(s, 400, "{v}");
    // Writing the defaults back (an import of an export) is accepted; changing them is refused, not dropped.
    let prompts = json!({"universal_login_experience": "new", "identifier_first": false});
    assert_eq!(t.patch(&c.admin, "/api/v2/prompts", prompts).await.0, 200);
    let (s, v) = t.patch(&c.admin, "/api/v2/prompts", json!({"identifier_first": true})).await;
    assert_eq!((s, v["errorCode"].as_str()), (400, Some("operation_not_supported")), "{v}");
    assert_eq!(t.put(&c.admin, "/api/v2/prompts/login/custom-text/en", json!({})).await.0, 200);
    let (s, _) = t.put(&c.admin, "/api/v2/prompts/login/custom-text/en", json!({"login": {"title": "Hi"}})).await;
    assert_eq!(s, 400);
    // (Branding is a real setting now: tests/branding.rs. An import of an empty export still writes nothing.)
    assert_eq!(t.patch(&c.admin, "/api/v2/branding", json!({})).await.0, 200);
    assert_eq!(t.patch(&c.admin, "/api/v2/migrations", json!({"flags": {}})).await.0, 200);
    // Features a tenant's plan lacks answer 403, as Auth0 does (a0deploy skips them on a 403).
    for path in ["attack-protection/bot-detection", "attack-protection/captcha", "supplemental-signals"] {
        let (s, v) = t.get(&c.admin, &format!("/api/v2/{path}")).await;
        assert_eq!((s, v["errorCode"].as_str()), (403, Some("operation_not_supported")), "{path}: {v}");
    }
    // The settings without a feature behind them take their defaults back, and nothing else.
    let bpd = "/api/v2/attack-protection/breached-password-detection";
    assert_eq!(t.patch(&c.admin, bpd, json!({"enabled": false, "method": "standard"})).await.0, 200);
    let (s, v) = t.patch(&c.admin, bpd, json!({"enabled": true})).await;
    assert_eq!((s, v["errorCode"].as_str()), (400, Some("operation_not_supported")), "{v}");
    assert_eq!(t.patch(&c.admin, "/api/v2/risk-assessments/settings", json!({"enabled": false})).await.0, 200);
    assert_eq!(t.patch(&c.admin, "/api/v2/risk-assessments/settings", json!({"enabled": true})).await.0, 400);
    let nd = "/api/v2/risk-assessments/settings/new-device";
    assert_eq!(t.patch(&c.admin, nd, json!({"remember_for": 0})).await.0, 200);
    assert_eq!(t.patch(&c.admin, nd, json!({"remember_for": 30})).await.0, 400);
    // Each type needs its own read scope, like Auth0's.
    let limited = t.token_with_scopes(&["read:clients"]).await;
    let (s, v) = t.get(&limited, "/api/v2/rules").await;
    assert_eq!(s, 403, "{v}");
    for path in ["log-streams", "attack-protection/breached-password-detection", "risk-assessments/settings"] {
        assert_eq!(t.get(&limited, &format!("/api/v2/{path}")).await.0, 403, "{path}");
    }
    let reader = t.token_with_scopes(&["read:attack_protection"]).await;
    assert_eq!(t.patch(&reader, bpd, json!({"enabled": false})).await.0, 403);
}

// --- resource servers and audience= -------------------------------------------------------------------------------

#[tokio::test]
async fn resource_servers_are_created_read_updated_and_deleted() {
    let c = setup().await;
    let t = &c.t;
    let (s, list) = t.get(&c.admin, "/api/v2/resource-servers").await;
    assert_eq!(s, 200, "{list}");
    let mgmt = list.as_array().unwrap().iter().find(|r| r["is_system"] == true).expect("the Management API").clone();
    assert_eq!(mgmt["identifier"], t.audience());
    // Auth0's name: a0deploy recognises the Management API by it and leaves it out of exports.
    assert_eq!(mgmt["name"], "Auth0 Management API");
    assert!(mgmt["scopes"].as_array().unwrap().iter().any(|s| s["value"] == "read:users"));
    let (s, r) = t
        .post(
            &c.admin,
            "/api/v2/resource-servers",
            json!({"name": "Orders", "identifier": "https://api.example/",
              "scopes": [{"value": "read:orders", "description": "Read orders"}]}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(
        (r["signing_alg"].as_str(), r["token_lifetime"].as_u64(), r["token_lifetime_for_web"].as_u64()),
        (Some("RS256"), Some(86400), Some(7200))
    );
    assert_eq!((r["allow_offline_access"].as_bool(), r["is_system"].as_bool()), (Some(false), Some(false)));
    let id = r["id"].as_str().unwrap().to_owned();
    // By id, and by identifier (URL-encoded), as Auth0 allows.
    assert_eq!(t.get(&c.admin, &format!("/api/v2/resource-servers/{id}")).await.1, r);
    assert_eq!(t.get(&c.admin, "/api/v2/resource-servers/https%3A%2F%2Fapi.example%2F").await.1, r);
    let (s, v) = t
        .post(&c.admin, "/api/v2/resource-servers", json!({"name": "Again", "identifier": "https://api.example/"}))
        .await;
    assert_eq!(s, 409, "{v}");
    let (s, v) = t.post(&c.admin, "/api/v2/resource-servers", json!({"name": "M", "identifier": t.audience()})).await;
    assert_eq!(s, 409, "{v}");
    for bad in [
        json!({"identifier": "https://x.example/"}),
        json!({"name": "X"}),
        json!({"name": "X", "identifier": "https://x.example/", "signing_alg": "HS256"}),
        json!({"name": "X", "identifier": "https://x.example/", "token_lifetime": 60, "token_lifetime_for_web": 120}),
        json!({"name": "X", "identifier": "https://x.example/", "scopes": [{"value": "a b"}]}),
        json!({"name": "X", "identifier": "https://x.example/", "unknown": 1}),
    ] {
        let (s, v) = t.post(&c.admin, "/api/v2/resource-servers", bad.clone()).await;
        assert_eq!(s, 400, "{bad}: {v}");
    }
    let (s, u) = t
        .patch(
            &c.admin,
            &format!("/api/v2/resource-servers/{id}"),
            json!({"token_lifetime": 600, "token_lifetime_for_web": 300, "allow_offline_access": true}),
        )
        .await;
    assert_eq!(
        (s, u["token_lifetime"].as_u64(), u["allow_offline_access"].as_bool()),
        (200, Some(600), Some(true)),
        "{u}"
    );
    assert_eq!(u["scopes"], r["scopes"]);
    // What a read answers can be written back (a0deploy); the identifier cannot change.
    assert_eq!(t.patch(&c.admin, &format!("/api/v2/resource-servers/{id}"), u.clone()).await.0, 200);
    let (s, _) =
        t.patch(&c.admin, &format!("/api/v2/resource-servers/{id}"), json!({"identifier": "https://other/"})).await;
    assert_eq!(s, 400);
    // The Management API cannot be changed or deleted.
    let mid = mgmt["id"].as_str().unwrap();
    assert_eq!(t.patch(&c.admin, &format!("/api/v2/resource-servers/{mid}"), json!({"name": "x"})).await.0, 403);
    assert_eq!(t.delete(&c.admin, &format!("/api/v2/resource-servers/{mid}")).await.0, 403);
    let (s, v) = t.get(&c.admin, "/api/v2/resource-servers?include_totals=true").await;
    assert_eq!((s, v["total"].as_u64()), (200, Some(2)));
    assert_eq!(t.delete(&c.admin, &format!("/api/v2/resource-servers/{id}")).await.0, 204);
    assert_eq!(t.get(&c.admin, &format!("/api/v2/resource-servers/{id}")).await.0, 404);
    assert_eq!(t.delete(&c.admin, &format!("/api/v2/resource-servers/{id}")).await.0, 404);
    let limited = t.token_with_scopes(&["read:clients"]).await;
    assert_eq!(t.get(&limited, "/api/v2/resource-servers").await.0, 403);
}

#[tokio::test]
async fn an_spa_gets_an_access_token_for_the_operators_own_api() {
    let c = setup().await;
    let (s, api) =
        c.t.post(
            &c.admin,
            "/api/v2/resource-servers",
            json!({"name": "Orders", "identifier": "https://api.example/",
              "scopes": [{"value": "read:orders"}], "token_lifetime": 600}),
        )
        .await;
    assert_eq!(s, 201, "{api}");
    let ch = challenge();
    let scope = "openid profile read:orders write:orders offline_access";
    let mut b = Browser::new(&c.t);
    let r = b.log_in(&c.spa_params(&ch, &[("audience", "https://api.example/"), ("scope", scope)])).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let code = r.param("code").expect("a code");
    let exchange = |code: String| {
        let c = &c;
        async move {
            c.t.token_request(json!({"grant_type": "authorization_code", "client_id": c.spa["client_id"], "code": code,
                                      "redirect_uri": "https://spa.example/cb", "code_verifier": VERIFIER}))
                .await
        }
    };
    let (s, tok) = exchange(code).await;
    assert_eq!(s, 200, "{tok}");
    let at = common::claims(tok["access_token"].as_str().unwrap());
    assert_eq!(at["aud"], json!(["https://api.example/", format!("{}userinfo", c.t.app.config.public_url)]));
    // The API's scopes may be asked for, unknown ones are dropped; its lifetime holds; no offline access by default.
    assert_eq!(at["scope"], "openid profile read:orders");
    assert_eq!(at["exp"].as_i64().unwrap() - at["iat"].as_i64().unwrap(), 600);
    assert_eq!(tok["expires_in"], 600);
    assert!(tok.get("refresh_token").is_none(), "{tok}");
    // The token still reads /userinfo (its audience includes it).
    let r = c.t.http.get(c.t.url("/userinfo")).bearer_auth(tok["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // With offline access allowed, a refresh token comes too.
    let id = api["id"].as_str().unwrap();
    assert_eq!(
        c.t.patch(&c.admin, &format!("/api/v2/resource-servers/{id}"), json!({"allow_offline_access": true})).await.0,
        200
    );
    let r = b.get(&authorize(&c.spa_params(&ch, &[("audience", "https://api.example/"), ("scope", scope)]))).await;
    assert_eq!(r.status, 302, "{}", r.body);
    let (s, tok) = exchange(r.param("code").unwrap()).await;
    assert_eq!(s, 200, "{tok}");
    assert!(tok["refresh_token"].is_string(), "{tok}");
    assert!(
        common::claims(tok["access_token"].as_str().unwrap())["scope"].as_str().unwrap().contains("offline_access")
    );

    // An audience that is no resource server is refused, at /authorize and by the password grant.
    let r = b.get(&authorize(&c.spa_params(&ch, &[("audience", "https://unknown.example/")]))).await;
    assert_eq!(r.param("error").as_deref(), Some("access_denied"));
    assert_eq!(r.param("error_description").as_deref(), Some("Service not found: https://unknown.example/"));
    let (s, v) =
        c.t.token_request(
            json!({"grant_type": "password", "client_id": c.web["client_id"], "client_secret": c.web["client_secret"],
                               "username": "ann@example.com", "password": PW, "audience": "https://unknown.example/"}),
        )
        .await;
    assert_eq!((s, v["error"].as_str()), (403, Some("access_denied")), "{v}");
    let (s, v) =
        c.t.token_request(
            json!({"grant_type": "password", "client_id": c.web["client_id"], "client_secret": c.web["client_secret"],
                               "username": "ann@example.com", "password": PW, "audience": "https://api.example/",
                               "scope": "openid read:orders"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(common::claims(v["access_token"].as_str().unwrap())["scope"], "openid read:orders");
}
