//! Identity core: tokens, the Management API's front door, users, clients, grants, logs, tenant settings.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::time::Duration;

use common::{TestApp, claims, enc, header};
use serde_json::{Value, json};

const PW: &str = "Str0ng-Passw0rd";

async fn create_user(t: &TestApp, token: &str, email: &str) -> Value {
    let (s, u) = t
        .post(
            token,
            "/api/v2/users",
            json!({"connection": "Username-Password-Authentication", "email": email, "password": PW}),
        )
        .await;
    assert_eq!(s, 201, "{u}");
    u
}

async fn logs_of_type(t: &TestApp, token: &str, ty: &str) -> Vec<Value> {
    let (s, v) = t.get(token, &format!("/api/v2/logs?q=type:{ty}")).await;
    assert_eq!(s, 200, "{v}");
    v.as_array().unwrap().clone()
}

#[tokio::test]
async fn client_credentials_issues_a_scoped_rs256_token() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let h = header(&token);
    assert_eq!(h["alg"], "RS256");
    assert_eq!(h["typ"], "JWT");
    let c = claims(&token);
    assert_eq!(c["iss"], json!(t.app.config.public_url));
    assert_eq!(c["sub"], json!(format!("{}@clients", t.client_id)));
    assert_eq!(c["aud"], json!(t.audience()));
    assert_eq!(c["azp"], json!(t.client_id));
    assert_eq!(c["gty"], "client-credentials");
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 86_400);
    assert!(c["scope"].as_str().unwrap().split(' ').any(|s| s == "create:users"));
    // The kid is published.
    let jwks: Value = t.http.get(t.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == h["kid"] && k["kty"] == "RSA" && k.get("d").is_none())
    );
    let oidc: Value =
        t.http.get(t.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(oidc["issuer"], json!(t.app.config.public_url));
    assert_eq!(oidc["jwks_uri"], json!(format!("{}.well-known/jwks.json", t.app.config.public_url)));

    // Narrowed scope, form body, Basic authentication.
    let r = t
        .http
        .post(t.url("/oauth/token"))
        .basic_auth(&t.client_id, Some(&t.client_secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("audience", &t.audience()),
            ("scope", "read:users read:nonsense"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["scope"], "read:users");
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(claims(v["access_token"].as_str().unwrap())["scope"], "read:users");
    assert_eq!(logs_of_type(&t, &token, "seccft").await.len(), 2);
}

#[tokio::test]
async fn client_credentials_failures() {
    let t = TestApp::spawn().await;
    let (s, v) = t
        .token_request(json!({"grant_type": "client_credentials", "client_id": t.client_id, "client_secret": "wrong", "audience": t.audience()}))
        .await;
    assert_eq!((s, v), (401, json!({"error": "access_denied", "error_description": "Unauthorized"})));
    let (s, v) = t
        .token_request(json!({"grant_type": "client_credentials", "client_id": t.client_id, "client_secret": t.client_secret, "audience": "https://other.example/"}))
        .await;
    assert_eq!(s, 403);
    assert_eq!(v["error"], "access_denied");
    assert!(v["error_description"].as_str().unwrap().contains("https://other.example/"));
    let (s, v) = t.token_request(json!({"grant_type": "magic", "client_id": t.client_id})).await;
    assert_eq!((s, v["error"].as_str().unwrap()), (400, "unsupported_grant_type"));
    let (s, v) = t.token_request(json!({"client_id": t.client_id})).await;
    assert_eq!((s, v["error"].as_str().unwrap()), (400, "invalid_request"));
    let token = t.mgmt_token().await;
    let failures = logs_of_type(&t, &token, "feccft").await;
    assert_eq!(failures.len(), 2);
    assert!(failures.iter().all(|l| l["client_id"] == json!(t.client_id)));
}

#[tokio::test]
async fn management_api_checks_token_and_scope() {
    let t = TestApp::spawn().await;
    let r = t.http.get(t.url("/api/v2/users")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["statusCode"], 401);

    let (s, v) = t.get("not-a-jwt", "/api/v2/users").await;
    assert_eq!((s, v["message"].as_str().unwrap()), (401, "Invalid token."));

    let limited = t.token_with_scopes(&["read:logs"]).await;
    let (s, v) = t.get(&limited, "/api/v2/users").await;
    assert_eq!(s, 403);
    assert_eq!(
        v,
        json!({"statusCode": 403, "error": "Forbidden", "message": "Insufficient scope, expected any of: read:users", "errorCode": "insufficient_scope"})
    );
    let (s, _) = t.get(&limited, "/api/v2/logs").await;
    assert_eq!(s, 200);

    // Expired: move the server's clock past the token's lifetime.
    let token = t.mgmt_token().await;
    t.clock.advance(Duration::from_secs(86_401));
    let (s, v) = t.get(&token, "/api/v2/users").await;
    assert_eq!((s, v["message"].as_str().unwrap()), (401, "Expired token received for JSON Web Token validation."));

    // Signed by a key that is not ours (same kid, same claims).
    let fresh = t.mgmt_token().await;
    let h = header(&fresh);
    let key = rsa::RsaPrivateKey::new(&mut rand_core_rng(), 2048).unwrap();
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let der = key.to_pkcs1_der().unwrap();
    let mut jh = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    jh.kid = h["kid"].as_str().map(str::to_owned);
    let forged =
        jsonwebtoken::encode(&jh, &claims(&fresh), &jsonwebtoken::EncodingKey::from_rsa_der(der.as_bytes())).unwrap();
    let (s, v) = t.get(&forged, "/api/v2/users").await;
    assert_eq!((s, v["message"].as_str().unwrap()), (401, "Invalid signature received for JSON Web Token validation."));

    // A valid token for another audience is refused.
    let (s, g) = t
        .post(
            &fresh,
            "/api/v2/client-grants",
            json!({"client_id": t.client_id, "audience": "https://api.example/", "scope": ["read:things"]}),
        )
        .await;
    assert_eq!(s, 201, "{g}");
    let (_, other) = t
        .token_request(json!({"grant_type": "client_credentials", "client_id": t.client_id, "client_secret": t.client_secret, "audience": "https://api.example/"}))
        .await;
    let (s, v) = t.get(other["access_token"].as_str().unwrap(), "/api/v2/users").await;
    assert_eq!(s, 401, "{v}");
}

fn rand_core_rng() -> impl rsa::rand_core::CryptoRngCore {
    rsa::rand_core::OsRng
}

#[tokio::test]
async fn users_lifecycle() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let u = create_user(&t, &token, "Ann@Example.com").await;
    let id = u["user_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("auth0|"));
    assert_eq!(u["email"], "ann@example.com");
    assert_eq!(u["identities"][0]["connection"], "Username-Password-Authentication");
    assert_eq!(u["logins_count"], 0);
    assert!(u.get("password").is_none() && !u.to_string().contains("argon2"));

    let (s, v) = t
        .post(
            &token,
            "/api/v2/users",
            json!({"connection": "Username-Password-Authentication", "email": "ann@example.com", "password": PW}),
        )
        .await;
    assert_eq!((s, v["message"].as_str().unwrap()), (409, "The user already exists."));
    let (s, v) = t
        .post(
            &token,
            "/api/v2/users",
            json!({"connection": "Username-Password-Authentication", "email": "b@example.com", "password": "weak"}),
        )
        .await;
    assert_eq!(s, 400);
    assert!(v["message"].as_str().unwrap().contains("PasswordStrengthError"), "{v}");
    let (s, v) = t
        .post(
            &token,
            "/api/v2/users",
            json!({"connection": "Username-Password-Authentication", "email": "not-an-email", "password": PW}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = t.post(&token, "/api/v2/users", json!({"connection": "Username-Password-Authentication", "email": "c@example.com", "password": PW, "favourite": 1})).await;
    assert_eq!(s, 400);
    assert!(v["message"].as_str().unwrap().contains("favourite"), "{v}");
    let (s, _) = t
        .post(&token, "/api/v2/users", json!({"connection": "google", "email": "c@example.com", "password": PW}))
        .await;
    assert_eq!(s, 400);

    let (s, v) = t.get(&token, &format!("/api/v2/users/{}", enc(&id))).await;
    assert_eq!((s, &v["email"]), (200, &json!("ann@example.com")));
    let (s, v) = t.get(&token, "/api/v2/users?q=email:%22ANN@example.com%22&include_totals=true").await;
    assert_eq!(s, 200);
    assert_eq!(v["total"], 1);
    assert_eq!(v["users"][0]["user_id"], json!(id));
    create_user(&t, &token, "bob@example.com").await;
    let (_, v) = t.get(&token, "/api/v2/users?per_page=1&page=1&include_totals=true").await;
    assert_eq!((v["total"].as_u64(), v["users"].as_array().map(Vec::len)), (Some(2), Some(1)));
    let (s, _) = t.get(&token, "/api/v2/users?per_page=1000").await;
    assert_eq!(s, 400);

    let (s, v) = t
        .patch(
            &token,
            &format!("/api/v2/users/{}", enc(&id)),
            json!({"user_metadata": {"lang": "fr", "x": 1}, "phone_number": "+14155550100", "blocked": true}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = t.patch(&token, &format!("/api/v2/users/{}", enc(&id)), json!({"user_metadata": {"x": null}})).await;
    assert_eq!(v["user_metadata"], json!({"lang": "fr"}));
    assert_eq!((v["phone_number"].as_str(), v["blocked"].as_bool()), (Some("+14155550100"), Some(true)));
    let (s, _) = t.patch(&token, &format!("/api/v2/users/{}", enc(&id)), json!({"phone_number": "12345"})).await;
    assert_eq!(s, 400);
    let (s, _) = t.patch(&token, &format!("/api/v2/users/{}", enc(&id)), json!({"email": "bob@example.com"})).await;
    assert_eq!(s, 409);

    let (s, _) = t.delete(&token, &format!("/api/v2/users/{}", enc(&id))).await;
    assert_eq!(s, 204);
    let (s, v) = t.get(&token, &format!("/api/v2/users/{}", enc(&id))).await;
    assert_eq!(s, 404);
    assert_eq!(
        v,
        json!({"statusCode": 404, "error": "Not Found", "message": "The user does not exist.", "errorCode": "inexistent_user"})
    );

    // Writes are audited as sapi / fapi, with the calling client.
    let sapi = logs_of_type(&t, &token, "sapi").await;
    assert!(sapi.iter().any(|l| l["details"]["request"]["method"] == "post" && l["client_id"] == json!(t.client_id)));
    assert!(!logs_of_type(&t, &token, "fapi").await.is_empty());
}

#[tokio::test]
async fn password_grant_logs_in_without_telling_who_exists() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let u = create_user(&t, &token, "ann@example.com").await;
    let (s, app) = t
        .post(&token, "/api/v2/clients", json!({"name": "web", "app_type": "regular_web", "grant_types": ["password", "http://auth0.com/oauth/grant-type/password-realm"]}))
        .await;
    assert_eq!(s, 201);
    let (cid, secret) = (app["client_id"].as_str().unwrap(), app["client_secret"].as_str().unwrap());

    let req = |user: &str, pw: &str| json!({"grant_type": "password", "client_id": cid, "client_secret": secret, "username": user, "password": pw, "scope": "openid profile email"});
    let (s, v) = t.token_request(req("ann@example.com", PW)).await;
    assert_eq!(s, 200, "{v}");
    let id = claims(v["id_token"].as_str().unwrap());
    assert_eq!(
        (id["sub"].clone(), id["aud"].clone(), id["email"].clone()),
        (u["user_id"].clone(), json!(cid), json!("ann@example.com"))
    );
    let at = claims(v["access_token"].as_str().unwrap());
    assert_eq!(at["sub"], u["user_id"]);
    assert_eq!(at["scope"], "openid profile email");

    let (s1, wrong) = t.token_request(req("ann@example.com", "Wrong-passw0rd")).await;
    let (s2, unknown) = t.token_request(req("nobody@example.com", PW)).await;
    assert_eq!((s1, s2), (403, 403));
    assert_eq!(wrong, unknown);
    assert_eq!(wrong, json!({"error": "invalid_grant", "error_description": "Wrong email or password."}));

    let (s, v) = t
        .token_request(json!({"grant_type": "http://auth0.com/oauth/grant-type/password-realm", "realm": "Username-Password-Authentication", "client_id": cid, "client_secret": secret, "username": "ann@example.com", "password": PW}))
        .await;
    assert_eq!(s, 200, "{v}");

    // A client without the password grant is refused.
    let (s, v) = t.token_request(json!({"grant_type": "password", "client_id": t.client_id, "client_secret": t.client_secret, "username": "ann@example.com", "password": PW})).await;
    assert_eq!((s, v["error"].as_str().unwrap()), (403, "unauthorized_client"));

    let (_, user) = t.get(&token, &format!("/api/v2/users/{}", enc(u["user_id"].as_str().unwrap()))).await;
    assert_eq!(user["logins_count"], 2);
    assert!(user["last_login"].is_string());
    assert_eq!(logs_of_type(&t, &token, "s").await.len(), 2);
    let fp = logs_of_type(&t, &token, "fp").await;
    assert_eq!(fp.len(), 1);
    assert_eq!(fp[0]["user_id"], u["user_id"]);
    assert_eq!(logs_of_type(&t, &token, "fu").await.len(), 1);

    // Blocked users cannot log in.
    t.patch(&token, &format!("/api/v2/users/{}", enc(u["user_id"].as_str().unwrap())), json!({"blocked": true})).await;
    let (s, v) = t.token_request(req("ann@example.com", PW)).await;
    assert_eq!((s, v["error_description"].as_str().unwrap()), (401, "user is blocked"));
}

#[tokio::test]
async fn clients_and_grants() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let (s, c) = t
        .post(
            &token,
            "/api/v2/clients",
            json!({"name": "m2m", "app_type": "non_interactive", "callbacks": ["https://app.example/cb"]}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let id = c["client_id"].as_str().unwrap().to_owned();
    let secret = c["client_secret"].as_str().unwrap().to_owned();
    let (_, read) = t.get(&token, &format!("/api/v2/clients/{id}")).await;
    assert!(read.get("client_secret").is_none(), "secrets are shown once only");
    assert_eq!(read["callbacks"], json!(["https://app.example/cb"]));
    let (s, _) = t.post(&token, "/api/v2/clients", json!({"name": "x", "app_type": "toaster"})).await;
    assert_eq!(s, 400);
    let (s, _) = t.post(&token, "/api/v2/clients", json!({"app_type": "spa"})).await;
    assert_eq!(s, 400);
    let (s, v) =
        t.patch(&token, &format!("/api/v2/clients/{id}"), json!({"name": "renamed", "callbacks": ["not a url"]})).await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = t.patch(&token, &format!("/api/v2/clients/{id}"), json!({"name": "renamed"})).await;
    assert_eq!((s, v["name"].as_str().unwrap()), (200, "renamed"));

    let (s, g) = t
        .post(
            &token,
            "/api/v2/client-grants",
            json!({"client_id": id, "audience": t.audience(), "scope": ["read:users"]}),
        )
        .await;
    assert_eq!(s, 201, "{g}");
    let (s, v) = t
        .post(
            &token,
            "/api/v2/client-grants",
            json!({"client_id": id, "audience": t.audience(), "scope": ["read:users"]}),
        )
        .await;
    assert_eq!(s, 409, "{v}");
    let (s, _) = t
        .post(
            &token,
            "/api/v2/client-grants",
            json!({"client_id": id, "audience": "https://x.example/", "scope": ["a b"]}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = t
        .post(
            &token,
            "/api/v2/client-grants",
            json!({"client_id": id, "audience": t.audience(), "scope": ["read:everything"]}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = t
        .post(
            &token,
            "/api/v2/client-grants",
            json!({"client_id": "nope", "audience": "https://x.example/", "scope": []}),
        )
        .await;
    assert_eq!(s, 404);
    let gid = g["id"].as_str().unwrap();
    let (_, list) = t.get(&token, &format!("/api/v2/client-grants?client_id={id}")).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (s, v) =
        t.patch(&token, &format!("/api/v2/client-grants/{gid}"), json!({"scope": ["read:users", "read:logs"]})).await;
    assert_eq!((s, v["scope"].clone()), (200, json!(["read:users", "read:logs"])));

    let cc = |secret: String| json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret, "audience": t.audience()});
    let (s, v) = t.token_request(cc(secret.clone())).await;
    assert_eq!((s, v["scope"].as_str().unwrap()), (200, "read:users read:logs"));

    let (s, rotated) = t.post(&token, &format!("/api/v2/clients/{id}/rotate-secret"), json!({})).await;
    assert_eq!(s, 200);
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert_eq!(t.token_request(cc(secret)).await.0, 401);
    assert_eq!(t.token_request(cc(new_secret.clone())).await.0, 200);

    let (s, _) = t.delete(&token, &format!("/api/v2/clients/{id}")).await;
    assert_eq!(s, 204);
    assert_eq!(t.get(&token, &format!("/api/v2/client-grants/{gid}")).await.0, 404);
    assert_eq!(t.token_request(cc(new_secret)).await.0, 401);
    let (s, v) = t.get(&token, &format!("/api/v2/clients/{id}")).await;
    assert_eq!((s, v["errorCode"].as_str().unwrap()), (404, "inexistent_client"));
}

#[tokio::test]
async fn logs_filter_page_and_read_one() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let u = create_user(&t, &token, "ann@example.com").await;
    let uid = u["user_id"].as_str().unwrap();
    let (s, web) = t.post(&token, "/api/v2/clients", json!({"name": "web", "grant_types": ["password"]})).await;
    assert_eq!(s, 201);
    for pw in [PW, "Wrong-1aaaa", PW] {
        t.clock.advance(Duration::from_secs(1));
        t.token_request(json!({"grant_type": "password", "client_id": web["client_id"], "client_secret": web["client_secret"], "username": "ann@example.com", "password": pw}))
            .await;
    }
    let (s, v) = t.get(&token, &format!("/api/v2/logs?q=user_id:%22{}%22", enc(uid))).await;
    assert_eq!(s, 200);
    let types: Vec<&str> = v.as_array().unwrap().iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(types, vec!["s", "fp", "s"], "newest first");
    let (_, v) = t.get(&token, &format!("/api/v2/users/{}/logs?include_totals=true", enc(uid))).await;
    assert_eq!(v["total"], 3);
    let one = &v["logs"][1];
    assert_eq!(one["type"], "fp");
    assert_eq!(one["description"], "Wrong email or password.");
    assert_eq!(one["ip"], "127.0.0.1");
    assert_eq!(one["log_id"].as_str().unwrap().len(), 56);
    let (s, got) = t.get(&token, &format!("/api/v2/logs/{}", one["log_id"].as_str().unwrap())).await;
    assert_eq!((s, &got), (200, one));
    let (s, v) = t.get(&token, "/api/v2/logs/900123").await;
    assert_eq!((s, v["message"].as_str().unwrap()), (404, "Log not found."));
    let (s, _) = t.get(&token, "/api/v2/logs?q=ip:1.2.3.4").await;
    assert_eq!(s, 400);

    // Checkpoint paging: oldest first, strictly after `from`.
    let (_, all) = t.get(&token, "/api/v2/logs?take=100&from=").await;
    let all = all.as_array().unwrap().clone();
    assert!(all.len() >= 5);
    let (_, after) = t.get(&token, &format!("/api/v2/logs?take=2&from={}", all[1]["log_id"].as_str().unwrap())).await;
    assert_eq!(after.as_array().unwrap().as_slice(), &all[2..4]);
}

/// `q` percent-encoded for a query string.
fn q_param(q: &str) -> String {
    q.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.:".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn logs_search_by_a_date_range() {
    let t = TestApp::spawn().await;
    // 2026-01-01T00:00:00.000Z: `seccft`. 2026-01-02T12:00: `seccft` and a write (`sapi`); 2026-01-03T00:00: the
    // same again (a token lives a day).
    t.mgmt_token().await;
    t.clock.advance(Duration::from_secs(36 * 3_600));
    let token = t.mgmt_token().await;
    let u = create_user(&t, &token, "ann@example.com").await;
    t.clock.advance(Duration::from_secs(12 * 3_600));
    let token = t.mgmt_token().await;
    let (s, _) = t
        .patch(&token, &format!("/api/v2/users/{}", enc(u["user_id"].as_str().unwrap())), json!({"nickname": "a"}))
        .await;
    assert_eq!(s, 200);
    let dates = async |q: &str| -> Vec<String> {
        let (s, v) = t.get(&token, &format!("/api/v2/logs?q={}", q_param(q))).await;
        assert_eq!(s, 200, "{q}: {v}");
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| format!("{} {}", e["type"].as_str().unwrap(), e["date"].as_str().unwrap()))
            .collect()
    };
    let jan1 = "seccft 2026-01-01T00:00:00.000Z";
    let jan2 = "sapi 2026-01-02T12:00:00.000Z";
    let jan3 = "sapi 2026-01-03T00:00:00.000Z";
    // Days include their whole day; `[` `]` include the ends, `{` `}` exclude them, `*` is open.
    assert_eq!(dates("type:sapi AND date:[2026-01-02 TO 2026-01-02]").await, [jan2]);
    assert_eq!(dates("type:sapi AND date:[2026-01-02 TO 2026-01-03]").await, [jan3, jan2]);
    assert_eq!(dates("type:sapi AND date:[2026-01-02 TO 2026-01-03}").await, [jan2]);
    assert_eq!(dates("date:{2026-01-01 TO *] AND type:sapi").await, [jan3, jan2]);
    assert_eq!(dates("type:seccft AND date:[2026-01-01 TO 2026-01-02}").await, [jan1]);
    assert_eq!(dates("date:[* TO 2025-12-31]").await, Vec::<String>::new());
    // Instants (RFC 3339) are exact to the millisecond.
    assert_eq!(dates("date:[* TO 2026-01-01T00:00:00.000Z]").await, [jan1]);
    assert_eq!(dates("date:[* TO 2026-01-01T00:00:00Z}").await, Vec::<String>::new());
    assert_eq!(dates("type:sapi AND date:[\"2026-01-02T13:00:00+01:00\" TO *]").await, [jan3, jan2]);
    assert_eq!(dates("type:sapi AND date:{\"2026-01-02T13:00:00+01:00\" TO *]").await, [jan3]);
    // With the other terms, totals and checkpoint paging.
    assert_eq!(dates("type:sapi AND date:[2026-01-03 TO *]").await, [jan3]);
    let (_, v) = t
        .get(&token, &format!("/api/v2/logs?include_totals=true&q={}", q_param("date:[2026-01-01 TO 2026-01-02]")))
        .await;
    assert_eq!(v["total"], 3, "{v}");
    let (_, v) = t
        .get(&token, &format!("/api/v2/logs?take=10&from=&q={}", q_param("type:sapi AND date:[2026-01-02 TO *]")))
        .await;
    let types: Vec<&str> = v.as_array().unwrap().iter().map(|e| e["date"].as_str().unwrap()).collect();
    assert_eq!(types, ["2026-01-02T12:00:00.000Z", "2026-01-03T00:00:00.000Z"], "oldest first");

    // A range Callsign cannot read is a 400 in Auth0's shape.
    let (s, v) = t.get(&token, &format!("/api/v2/logs?q={}", q_param("date:[2026-01-02 TO tomorrow]"))).await;
    assert_eq!(
        (s, v),
        (
            400,
            json!({"statusCode": 400, "error": "Bad Request", "message": "Query validation error: '`tomorrow` is not a date (YYYY-MM-DD), a date and time (RFC 3339, e.g. 2026-12-01T10:00:00Z) or *'.", "errorCode": "invalid_query_string"})
        )
    );
    for bad in ["date:2026-01-02", "date:[2026-01-02 TO 2026-01-03", "date:[2026-01-02,2026-01-03]"] {
        let (s, v) = t.get(&token, &format!("/api/v2/logs?q={}", q_param(bad))).await;
        assert_eq!((s, v["errorCode"].as_str()), (400, Some("invalid_query_string")), "{bad}: {v}");
        assert!(v["message"].as_str().unwrap().contains("date:[2026-12-01 TO 2026-12-02]"), "{bad}: {v}");
    }
}

#[tokio::test]
async fn tenant_settings() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let (s, v) = t.get(&token, "/api/v2/tenants/settings").await;
    assert_eq!((s, v["friendly_name"].as_str().unwrap()), (200, "Callsign"));
    let (s, v) = t
        .patch(&token, "/api/v2/tenants/settings", json!({"friendly_name": "Acme", "support_email": "help@acme.example", "support_url": "https://acme.example/help", "enabled_locales": ["en", "fr", "pt-BR"]}))
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = t.get(&token, "/api/v2/tenants/settings").await;
    assert_eq!(v["friendly_name"], "Acme");
    assert_eq!(v["enabled_locales"], json!(["en", "fr", "pt-BR"]));
    for bad in [
        json!({"support_email": "nope"}),
        json!({"support_url": "ftp://x"}),
        json!({"enabled_locales": ["english!"]}),
        json!({"sneaky": 1}),
    ] {
        let (s, v) = t.patch(&token, "/api/v2/tenants/settings", bad.clone()).await;
        assert_eq!(s, 400, "{bad} → {v}");
    }
    let limited = t.token_with_scopes(&["read:tenant_settings"]).await;
    assert_eq!(t.get(&limited, "/api/v2/tenants/settings").await.0, 200);
    assert_eq!(t.patch(&limited, "/api/v2/tenants/settings", json!({"friendly_name": "x"})).await.0, 403);
}

#[tokio::test]
async fn signing_key_rotation_keeps_old_tokens_valid() {
    let t = TestApp::spawn().await;
    let old = t.mgmt_token().await;
    let old_kid = header(&old)["kid"].clone();
    let new_kid = t.app.signer.rotate(&t.app).await.unwrap();
    let fresh = t.mgmt_token().await;
    assert_eq!(header(&fresh)["kid"], json!(new_kid));
    let jwks: Value = t.http.get(t.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let kids: Vec<Value> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].clone()).collect();
    assert!(kids.contains(&old_kid) && kids.contains(&json!(new_kid)));
    assert_eq!(t.get(&old, "/api/v2/users").await.0, 200);
    // Once every token the old key signed has expired, it is no longer published.
    t.clock.advance(Duration::from_secs(86_400 + 60));
    t.app.signer.reload(&t.app).await.unwrap();
    let jwks: Value = t.http.get(t.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let kids: Vec<Value> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].clone()).collect();
    assert_eq!(kids, vec![json!(new_kid)]);
}

#[tokio::test]
async fn management_writes_accept_form_bodies() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let r = t
        .http
        .post(t.url("/api/v2/client-grants"))
        .bearer_auth(&token)
        .form(&[("client_id", t.client_id.as_str()), ("audience", "https://form.example/"), ("scope", "x")])
        .send()
        .await
        .unwrap();
    // `scope` is a list; a form can't express one, so this is a clear 400 rather than a 500 or a silent drop.
    assert_eq!(r.status(), 400);
    let r = t
        .http
        .patch(t.url("/api/v2/tenants/settings"))
        .bearer_auth(&token)
        .form(&[("friendly_name", "Form Co")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["friendly_name"], "Form Co");
}

/// Two PATCHes of different tenant fields at the same moment both stand (neither writes back a stale copy).
#[tokio::test]
async fn parallel_tenant_writes_of_different_fields_both_stand_on_sqlite() {
    parallel_tenant_writes(TestApp::spawn().await).await;
}

#[tokio::test]
async fn parallel_tenant_writes_of_different_fields_both_stand_on_postgres() {
    let Some(t) = TestApp::spawn_postgres().await else { return };
    parallel_tenant_writes(t).await;
}

async fn parallel_tenant_writes(t: TestApp) {
    let token = t.mgmt_token().await;
    for round in 0..8 {
        let name = format!("Acme {round}");
        let email = format!("help{round}@acme.example");
        let mut tasks = Vec::new();
        for body in [json!({"friendly_name": name}), json!({"support_email": email})] {
            let (http, url, token) = (t.http.clone(), t.url("/api/v2/tenants/settings"), token.clone());
            tasks.push(tokio::spawn(async move {
                http.patch(url).bearer_auth(token).json(&body).send().await.unwrap().status().as_u16()
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), 200);
        }
        let (_, v) = t.get(&token, "/api/v2/tenants/settings").await;
        assert_eq!(
            (v["friendly_name"].as_str(), v["support_email"].as_str()),
            (Some(name.as_str()), Some(email.as_str())),
            "round {round}: both writes stand"
        );
    }
}

/// Log events are written in groups (`LogWriter`): many requests recording at once share a statement, and every
/// one of their events is stored by the time its `record` returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_events_recorded_at_once_share_writes_and_none_is_lost() {
    use callsign_core::identity::events::{self, EventCtx};
    let t = TestApp::spawn().await;
    let (batches0, events0) = t.app.logs.written();
    let n = 300;
    let records: Vec<_> = (0..n)
        .map(|i| {
            let app = t.app.clone();
            tokio::spawn(async move {
                let ctx = EventCtx { user_id: Some(format!("auth0|group-{i}")), ..EventCtx::default() };
                events::record(&app, "slo", &callsign_core::Origin::default(), ctx).await;
                // Stored when record returns.
                let q = callsign_store::LogQuery {
                    event_type: Some("slo".into()),
                    user_id: Some(format!("auth0|group-{i}")),
                    since: None,
                    before: None,
                    paging: callsign_store::LogPaging::Page(callsign_store::Page::new(0, 5)),
                };
                app.store.list_logs(&q).await.unwrap().total
            })
        })
        .collect();
    let mut found = Vec::new();
    for r in records {
        found.push(r.await.unwrap());
    }
    assert!(found.iter().all(|&f| f == 1), "every event is stored once when record returns");
    let (batches, events) = t.app.logs.written();
    let (batches, events) = (batches - batches0, events - events0);
    assert_eq!(events, n);
    println!("{n} events recorded at once: {batches} writes");
    assert!(batches < n / 2, "{batches} writes for {n} events: they were not grouped");
}

/// A batch with one bad event (an id already stored) is written again one event at a time: the bad one fails alone
/// and the others of its batch are stored.
#[tokio::test]
async fn a_bad_event_in_a_batch_fails_alone() {
    let t = TestApp::spawn().await;
    let event = |id: &str| callsign_store::LogEvent {
        log_id: id.to_owned(),
        date: callsign_domain::Timestamp::from_millis(1_000),
        event_type: "slo".into(),
        user_id: None,
        client_id: None,
        body: callsign_store::LogBody::default(),
    };
    let taken = "90020000000000000000000000000000000000000000000000000001";
    t.app.store.insert_log(&event(taken)).await.unwrap();
    let (batches0, _) = t.app.logs.written();
    // Both are queued before the writer task runs (one thread): they go out in one batch.
    let good = "90020000000000000000000000000000000000000000000000000002";
    let (dup, ok) = tokio::join!(
        t.app.logs.write(t.app.store.as_ref(), event(taken)),
        t.app.logs.write(t.app.store.as_ref(), event(good))
    );
    assert!(matches!(dup, Err(callsign_store::StoreError::Conflict(_))), "{dup:?}");
    ok.unwrap();
    assert!(t.app.store.get_log(good).await.unwrap().is_some(), "the good event of the batch is stored");
    assert_eq!(t.app.logs.written().0 - batches0, 1, "one batch");
}
