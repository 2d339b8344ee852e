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
    for path in ["/oauth/token", "/userinfo", "/mfa/challenge", "/.well-known/openid-configuration"] {
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
