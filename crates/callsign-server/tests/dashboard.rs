//! The operator dashboard as a browser uses it (cookies and CSRF tokens by hand, no redirects followed): the
//! one-time setup link, sign-in for operators only, CSRF refusals, and every Phone Message change checked through
//! the Management API and its `gd_tenant_update` / `sapi` events; users, reset MFA, logs, the development inbox.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{TestApp, enc};
use serde_json::{Value, json};

const PW: &str = "Str0ng-Passw0rd";
const TWILIO_TOKEN: &str = "tw-secret-token-0123456789abcdef";

#[derive(Clone)]
struct Browser {
    http: reqwest::Client,
    base: String,
    jar: BTreeMap<String, String>,
}

struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Page {
    fn csrf(&self) -> String {
        let at = self.body.find(r#"name="csrf" value=""#).unwrap_or_else(|| panic!("no csrf field in {}", self.body));
        let rest = &self.body[at + r#"name="csrf" value=""#.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
    fn has(&self, text: &str) -> bool {
        self.body.contains(text)
    }
    #[track_caller]
    fn assert_has(&self, text: &str) {
        assert!(self.has(text), "expected {text:?} in page (status {}):\n{}", self.status, self.body);
    }
    #[track_caller]
    fn assert_redirect(&self, to: &str) {
        assert_eq!(self.status, 303, "{}", self.body);
        assert_eq!(self.location.as_deref(), Some(to));
    }
}

impl Browser {
    fn new(t: &TestApp) -> Browser {
        Browser {
            http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
            base: t.base.clone(),
            jar: BTreeMap::new(),
        }
    }

    async fn finish(&mut self, r: reqwest::Response) -> Page {
        for c in r.headers().get_all(reqwest::header::SET_COOKIE) {
            let c = c.to_str().unwrap();
            assert!(c.contains("HttpOnly") && c.contains("SameSite=") && c.contains("Path=/dashboard"), "{c}");
            let (name, value) = c.split(';').next().unwrap().split_once('=').unwrap();
            if c.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = r.status().as_u16();
        let location = r.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
        if status == 200 {
            let csp = r.headers().get("content-security-policy").unwrap().to_str().unwrap();
            assert!(csp.contains("script-src 'self'"), "{csp}");
        }
        Page { status, location, body: r.text().await.unwrap() }
    }

    fn cookies(&self) -> String {
        self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn get(&mut self, path: &str) -> Page {
        let url = if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", self.base) };
        let r = self.http.get(url).header("cookie", self.cookies()).send().await.unwrap();
        self.finish(r).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let url = if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", self.base) };
        let r = self.http.post(url).header("cookie", self.cookies()).form(form).send().await.unwrap();
        self.finish(r).await
    }

    /// Post a form of the page at `page_path`, with that page's CSRF token.
    async fn submit(&mut self, page_path: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.get(page_path).await.csrf();
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        self.post(action, &form).await
    }
}

fn bootstrap_file(t: &TestApp) -> Value {
    let p = t.dir.path().join("data").join("bootstrap-credentials.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Use the bootstrap file's setup link to create `email` as an operator; the browser ends up signed in.
async fn setup_operator(t: &TestApp, email: &str) -> Browser {
    let url = bootstrap_file(t)["dashboard_setup_url"].as_str().unwrap().to_owned();
    let mut b = Browser::new(t);
    let page = b.get(&url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let r = b.post(&url, &[("csrf", &page.csrf()), ("email", email), ("password", PW)]).await;
    r.assert_redirect("/dashboard");
    b
}

/// A user through the Management API; returns its id.
async fn create_user(t: &TestApp, token: &str, email: &str, app_metadata: Value) -> String {
    let (s, u) = t
        .post(
            token,
            "/api/v2/users",
            json!({"connection": "Username-Password-Authentication", "email": email, "password": PW, "app_metadata": app_metadata}),
        )
        .await;
    assert_eq!(s, 201, "{u}");
    u["user_id"].as_str().unwrap().to_owned()
}

async fn sign_in(t: &TestApp, email: &str, password: &str) -> (Browser, Page) {
    let mut b = Browser::new(t);
    let page = b.get("/dashboard/login").await;
    assert_eq!(page.status, 200);
    let r = b.post("/dashboard/login", &[("csrf", &page.csrf()), ("email", email), ("password", password)]).await;
    (b, r)
}

async fn logs(t: &TestApp, token: &str, q: &str) -> Vec<Value> {
    let (s, v) = t.get(token, &format!("/api/v2/logs?q={}", q.replace(' ', "%20").replace('|', "%7C"))).await;
    assert_eq!(s, 200, "{v}");
    v.as_array().unwrap().clone()
}

/// A `gd_tenant_update` from the dashboard says `what`. (The test clock stands still, so events of one test share
/// a date and their order is not defined: look for the event rather than take the first.)
async fn assert_tenant_update(t: &TestApp, token: &str, what: Value) {
    let events = logs(t, token, "type:gd_tenant_update").await;
    assert!(
        events.iter().any(|e| e["client_id"] == "callsign-dashboard" && e["details"] == what),
        "no gd_tenant_update from the dashboard with {what} in {events:#?}"
    );
}

#[tokio::test]
async fn the_setup_link_is_in_the_bootstrap_file_is_single_use_and_signs_in() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let path = t.dir.path().join("data").join("bootstrap-credentials.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let url = bootstrap_file(&t)["dashboard_setup_url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&format!("{}/dashboard/setup/", t.base)), "{url}");

    let mut b = Browser::new(&t);
    let page = b.get(&url).await;
    page.assert_has("Set up an operator");
    let csrf = page.csrf();
    // Refused without the page's token; the link survives.
    assert_eq!(b.post(&url, &[("email", "ops@example.com"), ("password", PW)]).await.status, 403);
    // A weak password is refused with the user service's policy message; the link survives.
    let weak = b.post(&url, &[("csrf", &csrf), ("email", "ops@example.com"), ("password", "weak")]).await;
    assert_eq!(weak.status, 400);
    weak.assert_has("Password is too weak. Use at least 8 characters with 3 of these 4 kinds");
    assert!(!weak.has("PasswordStrengthError"), "plain words, not the API's prefix");
    weak.assert_has(r#"role="alert""#);

    let ok = b.post(&url, &[("csrf", &csrf), ("email", "ops@example.com"), ("password", PW)]).await;
    ok.assert_redirect("/dashboard");
    assert!(b.jar.contains_key("cs_dash"));
    assert_eq!(b.get("/dashboard/mfa/phone").await.status, 200);

    // The operator was created through the Management API, with the role.
    let (_, users) = t.get(&token, "/api/v2/users?q=email:%22ops@example.com%22").await;
    assert_eq!(users[0]["app_metadata"]["roles"], json!(["callsign:admin"]));
    let creates = logs(&t, &token, "type:sapi").await;
    assert!(
        creates
            .iter()
            .any(|e| e["client_id"] == "callsign-dashboard" && e["details"]["request"]["path"] == "/api/v2/users")
    );
    let logins = logs(&t, &token, "type:s").await;
    assert_eq!(logins[0]["client_id"], "callsign-dashboard");

    // Single use.
    let mut other = Browser::new(&t);
    other.get(&url).await.assert_has("expired or has already been used");
    assert_eq!(other.get(&url).await.status, 404);
    assert_eq!(other.post(&url, &[("csrf", &csrf), ("email", "x@example.com"), ("password", PW)]).await.status, 404);

    // A fresh link expires after 24 hours.
    let fresh = callsign_server::dashboard::auth::create_setup_link(&t.app).await.unwrap();
    assert_eq!(other.get(&fresh).await.status, 200);
    t.clock.advance(Duration::from_secs(24 * 3600 + 1));
    assert_eq!(other.get(&fresh).await.status, 404);
    t.stop().await;
}

#[tokio::test]
async fn the_setup_link_makes_an_existing_user_an_operator_after_its_password() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let id = create_user(&t, &token, "ann@example.com", json!({"roles": ["billing"], "plan": "gold"})).await;
    let url = bootstrap_file(&t)["dashboard_setup_url"].as_str().unwrap().to_owned();
    let mut b = Browser::new(&t);
    let csrf = b.get(&url).await.csrf();
    let wrong = b.post(&url, &[("csrf", &csrf), ("email", "Ann@Example.com"), ("password", "Wrong-Passw0rd")]).await;
    assert_eq!(wrong.status, 400);
    wrong.assert_has("this is not its password");
    let (_, u) = t.get(&token, &format!("/api/v2/users/{}", enc(&id))).await;
    assert_eq!(u["app_metadata"]["roles"], json!(["billing"]));

    b.post(&url, &[("csrf", &csrf), ("email", "ann@example.com"), ("password", PW)])
        .await
        .assert_redirect("/dashboard");
    let (_, u) = t.get(&token, &format!("/api/v2/users/{}", enc(&id))).await;
    assert_eq!(u["app_metadata"], json!({"roles": ["billing", "callsign:admin"], "plan": "gold"}));
    t.stop().await;
}

#[tokio::test]
async fn only_operators_sign_in_and_everyone_else_sees_the_same_message() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    create_user(&t, &token, "user@example.com", json!({})).await;
    create_user(&t, &token, "admin@example.com", json!({"roles": ["callsign:admin"]})).await;

    let (mut b, r) = sign_in(&t, "user@example.com", PW).await;
    assert_eq!(r.status, 400);
    r.assert_has("Wrong email or password.");
    assert_eq!(b.get("/dashboard/mfa/phone").await.location.as_deref(), Some("/dashboard/login"));
    let f = logs(&t, &token, "type:f").await;
    assert!(f[0]["description"].as_str().unwrap().contains("callsign:admin"), "{}", f[0]);
    assert_eq!(f[0]["client_id"], "callsign-dashboard");

    let (_, r) = sign_in(&t, "nobody@example.com", PW).await;
    assert_eq!(r.status, 400);
    r.assert_has("Wrong email or password.");
    assert_eq!(logs(&t, &token, "type:fu").await.len(), 1);
    let (_, r) = sign_in(&t, "admin@example.com", "Wrong-Passw0rd").await;
    r.assert_has("Wrong email or password.");
    assert_eq!(logs(&t, &token, "type:fp").await.len(), 1);

    let (mut b, r) = sign_in(&t, "admin@example.com", PW).await;
    r.assert_redirect("/dashboard");
    let home = b.get("/dashboard").await;
    home.assert_has("<h1>Overview</h1>");
    let page = b.get("/dashboard/mfa/phone").await;
    page.assert_has(r#"aria-current="page""#);
    page.assert_has("admin@example.com");
    assert_eq!(logs(&t, &token, "type:s").await[0]["user_name"], "admin@example.com");

    // Removing the role ends the session at the next request.
    let id = logs(&t, &token, "type:s").await[0]["user_id"].as_str().unwrap().to_owned();
    let (s, _) = t.patch(&token, &format!("/api/v2/users/{}", enc(&id)), json!({"app_metadata": {"roles": []}})).await;
    assert_eq!(s, 200);
    b.get("/dashboard/mfa/phone").await.assert_redirect("/dashboard/login");
    t.stop().await;
}

/// The part of a page between `start` and the next `end` after it.
fn between<'a>(body: &'a str, start: &str, end: &str) -> &'a str {
    let at = body.find(start).unwrap_or_else(|| panic!("no {start:?} in {body}"));
    let rest = &body[at..];
    &rest[..rest.find(end).unwrap_or_else(|| panic!("no {end:?} after {start:?} in {body}"))]
}

#[tokio::test]
async fn the_menu_has_sections_marks_the_current_page_and_each_page_has_a_breadcrumb() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let mut b = setup_operator(&t, "ops@example.com").await;
    let id = create_user(&t, &token, "pat@example.com", json!({})).await;
    // (path, the menu entry marked current, the breadcrumb's items)
    let user_page = format!("/dashboard/users/{}", enc(&id));
    let pages: &[(&str, &str, &[&str])] = &[
        ("/dashboard", "/dashboard", &["Overview"]),
        ("/dashboard/applications", "/dashboard/applications", &["Applications"]),
        ("/dashboard/users", "/dashboard/users", &["Users"]),
        (&user_page, "/dashboard/users", &[r#"<a href="/dashboard/users">Users</a>"#, "User pat@example.com"]),
        ("/dashboard/branding", "/dashboard/branding", &["Branding", "Universal Login"]),
        ("/dashboard/mfa/phone", "/dashboard/mfa/phone", &["Security", "Multi-factor Auth", "Phone Message"]),
        (
            "/dashboard/security/phone-destinations",
            "/dashboard/security/phone-destinations",
            &["Security", "Multi-factor Auth", "Phone destinations"],
        ),
        (
            "/dashboard/security/phone-usage",
            "/dashboard/security/phone-usage",
            &["Security", "Multi-factor Auth", "Usage and spend"],
        ),
        (
            "/dashboard/security/attack-protection",
            "/dashboard/security/attack-protection",
            &["Security", "Attack Protection"],
        ),
        ("/dashboard/logs", "/dashboard/logs", &["Monitoring", "Logs"]),
        ("/dashboard/log-streams", "/dashboard/log-streams", &["Monitoring", "Log Streams"]),
        ("/dashboard/inbox", "/dashboard/inbox", &["Monitoring", "Development inbox"]),
        ("/dashboard/settings", "/dashboard/settings", &["Settings"]),
    ];
    for (path, current, crumbs) in pages {
        let page = b.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        // The menu: sections as in the Auth0 Dashboard, collapsible (a <details>) on a phone.
        let menu = between(&page.body, r#"<nav class="side" aria-label="Dashboard">"#, "</nav>");
        assert!(menu.contains(r#"<details class="menu"><summary>Menu</summary>"#), "{menu}");
        let order = [
            r#"<a href="/dashboard""#,
            r#"<a href="/dashboard/applications""#,
            r#"<a href="/dashboard/users""#,
            r#"<span class="group-title">Branding</span>"#,
            r#"<a href="/dashboard/branding""#,
            r#"<span class="group-title">Security</span>"#,
            r#"<span class="group-title">Multi-factor Auth</span>"#,
            r#"<a href="/dashboard/mfa/phone""#,
            r#"<a href="/dashboard/security/phone-destinations""#,
            r#"<a href="/dashboard/security/phone-usage""#,
            r#"<a href="/dashboard/settings#recovery">Recovery Code</a>"#,
            r#"<a href="/dashboard/security/attack-protection""#,
            r#"<span class="group-title">Monitoring</span>"#,
            r#"<a href="/dashboard/logs""#,
            r#"<a href="/dashboard/log-streams""#,
            r#"<a href="/dashboard/inbox""#,
            r#"<a href="/dashboard/settings""#,
        ];
        let at: Vec<usize> =
            order.iter().map(|o| menu.find(o).unwrap_or_else(|| panic!("{path}: no {o} in {menu}"))).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{path}: menu out of order: {menu}");
        // Exactly one entry is current: this page's.
        assert_eq!(menu.matches(r#"aria-current="page""#).count(), 1, "{path}: {menu}");
        assert!(menu.contains(&format!(r#"<a href="{current}" aria-current="page">"#)), "{path}: {menu}");
        // The breadcrumb, before the heading; its last item is the page.
        let trail = between(&page.body, r#"<nav class="breadcrumb" aria-label="Breadcrumb"><ol>"#, "</ol>");
        let items: Vec<&str> = trail
            .split("<li>")
            .skip(1)
            .map(|i| {
                i.trim_end_matches("</li>")
                    .trim_start_matches(r#"<span aria-current="page">"#)
                    .trim_end_matches("</span>")
            })
            .collect();
        assert_eq!(&items, crumbs, "{path}: {trail}");
        assert!(page.body.find(r#"aria-label="Breadcrumb""#) < page.body.find("<h1>"), "{path}");
        // The operator and Sign out on every page.
        page.assert_has("ops@example.com");
        page.assert_has(r#"<form class="signout" method="post" action="/dashboard/logout">"#);
    }
    t.stop().await;
}

#[tokio::test]
async fn sessions_end_when_idle_and_on_sign_out_and_pages_need_a_sign_in() {
    let t = TestApp::spawn().await;
    let mut anon = Browser::new(&t);
    for p in [
        "/dashboard",
        "/dashboard/mfa/phone",
        "/dashboard/users",
        "/dashboard/logs",
        "/dashboard/inbox",
        "/dashboard/logs/x",
    ] {
        let r = anon.get(p).await;
        assert_eq!(r.status, 303, "{p}");
        assert!(r.location.as_deref().unwrap().starts_with("/dashboard"), "{p}");
    }
    anon.get("/dashboard/mfa/phone").await.assert_redirect("/dashboard/login");
    anon.post("/dashboard/mfa/phone/factor", &[("enabled", "true")]).await.assert_redirect("/dashboard/login");

    let mut b = setup_operator(&t, "ops@example.com").await;
    t.clock.advance(Duration::from_secs(29 * 60));
    assert_eq!(b.get("/dashboard/users").await.status, 200);
    t.clock.advance(Duration::from_secs(29 * 60));
    assert_eq!(b.get("/dashboard/users").await.status, 200, "each request restarts the idle timer");
    t.clock.advance(Duration::from_secs(31 * 60));
    b.get("/dashboard/users").await.assert_redirect("/dashboard/login");

    let (mut b, r) = sign_in(&t, "ops@example.com", PW).await;
    r.assert_redirect("/dashboard");
    let page = b.get("/dashboard/users").await;
    let old_cookie = b.jar.get("cs_dash").cloned().unwrap();
    assert_eq!(b.post("/dashboard/logout", &[("csrf", "nope")]).await.status, 403);
    b.post("/dashboard/logout", &[("csrf", &page.csrf())]).await.assert_redirect("/dashboard/login?signed_out=1");
    assert!(!b.jar.contains_key("cs_dash"));
    b.jar.insert("cs_dash".into(), old_cookie);
    b.get("/dashboard/users").await.assert_redirect("/dashboard/login");
    t.stop().await;
}

#[tokio::test]
async fn forms_without_the_sessions_csrf_token_are_refused() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let mut b = setup_operator(&t, "ops@example.com").await;
    let mut other = setup_operator_second(&t, &token).await;
    let foreign = other.get("/dashboard/mfa/phone").await.csrf();
    for form in [
        vec![("enabled", "true")],
        vec![("csrf", "bad"), ("enabled", "true")],
        vec![("csrf", foreign.as_str()), ("enabled", "true")],
    ] {
        let r = b.post("/dashboard/mfa/phone/factor", &form).await;
        assert_eq!(r.status, 403, "{form:?}");
        r.assert_has("did not come from this dashboard");
    }
    for action in ["/dashboard/mfa/phone/templates", "/dashboard/mfa/phone/policy", "/dashboard/mfa/phone/provider"] {
        assert_eq!(b.post(action, &[("csrf", "x")]).await.status, 403, "{action}");
    }
    // Nothing changed.
    let (_, f) = t.get(&token, "/api/v2/guardian/factors").await;
    assert_eq!(f[0], json!({"name": "sms", "enabled": false, "trial_expired": false}));
    assert!(logs(&t, &token, "type:gd_tenant_update").await.is_empty());
    // The sign-in form is protected too.
    let mut anon = Browser::new(&t);
    anon.get("/dashboard/login").await;
    assert_eq!(anon.post("/dashboard/login", &[("email", "ops@example.com"), ("password", PW)]).await.status, 403);
    t.stop().await;
}

/// A second operator (its own browser and session).
async fn setup_operator_second(t: &TestApp, token: &str) -> Browser {
    create_user(t, token, "second@example.com", json!({"roles": ["callsign:admin"]})).await;
    let (b, r) = sign_in(t, "second@example.com", PW).await;
    r.assert_redirect("/dashboard");
    b
}

const PAGE: &str = "/dashboard/mfa/phone";

#[tokio::test]
async fn the_factor_message_types_and_policy_change_through_the_management_api() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let mut b = setup_operator(&t, "ops@example.com").await;
    let page = b.get(PAGE).await;
    page.assert_has("The phone factor is ");
    // Provider cards, then each provider's settings in its own group (app.js shows only the chosen one's); every
    // settings form says when it has unsaved changes.
    page.assert_has(r#"<label class="provider-card" for="p-twilio">"#);
    page.assert_has(r#"<fieldset class="provider-fields" data-provider="twilio" id="fields-twilio"><legend>Twilio settings</legend>"#);
    for action in ["factor", "message-types", "provider", "routing", "templates", "policy"] {
        page.assert_has(&format!(r#"action="/dashboard/mfa/phone/{action}" data-track-changes"#));
    }
    assert_eq!(page.body.matches("data-unsaved").count(), 6, "one unsaved-changes note per settings form");
    // A real switch (a checkbox with role="switch"), off, posted as `enabled=on` when on.
    page.assert_has(r#"type="checkbox" role="switch" class="switch" id="factor-enabled" name="enabled" value="on" aria-describedby"#);

    b.submit(PAGE, "/dashboard/mfa/phone/factor", &[("enabled", "on")])
        .await
        .assert_redirect("/dashboard/mfa/phone#factor");
    let (_, f) = t.get(&token, "/api/v2/guardian/factors").await;
    assert_eq!(f[0], json!({"name": "sms", "enabled": true, "trial_expired": false}));
    assert_tenant_update(&t, &token, json!({"factor": "sms", "enabled": true})).await;
    let sapi = logs(&t, &token, "type:sapi").await;
    assert!(sapi.iter().any(|e| e["details"]["request"]["path"] == "/api/v2/guardian/factors/sms"
        && e["details"]["request"]["method"] == "put"
        && e["client_id"] == "callsign-dashboard"
        && e["user_id"].as_str().is_some_and(|u| u.starts_with("auth0|"))));
    let after = b.get(PAGE).await;
    after.assert_has("The phone factor is on.");
    after.assert_has(r#"id="factor-enabled" name="enabled" value="on" checked"#);
    assert!(!b.get(PAGE).await.has("The phone factor is on."), "the flash shows once");

    // Two switches, SMS and voice: both on lets the user choose.
    b.submit(PAGE, "/dashboard/mfa/phone/message-types", &[("sms", "on"), ("voice", "on")])
        .await
        .assert_redirect("/dashboard/mfa/phone#message-types");
    let (_, m) = t.get(&token, "/api/v2/guardian/factors/phone/message-types").await;
    assert_eq!(m, json!({"message_types": ["sms", "voice"]}));
    assert_tenant_update(&t, &token, json!({"message_types": ["sms", "voice"]})).await;
    b.get(PAGE).await.assert_has(r#"id="mt-voice" name="voice" value="on" checked"#);
    b.submit(PAGE, "/dashboard/mfa/phone/message-types", &[("voice", "on")]).await;
    let (_, m) = t.get(&token, "/api/v2/guardian/factors/phone/message-types").await;
    assert_eq!(m, json!({"message_types": ["voice"]}));
    let page = b.get(PAGE).await;
    page.assert_has(r#"id="mt-sms" name="sms" value="on" aria-describedby"#);
    page.assert_has(r#"id="mt-voice" name="voice" value="on" checked"#);
    // Both off is refused in plain words, and nothing changes.
    let bad = b.submit(PAGE, "/dashboard/mfa/phone/message-types", &[]).await;
    assert_eq!(bad.status, 400);
    bad.assert_has("Turn on at least one delivery method");
    let (_, m) = t.get(&token, "/api/v2/guardian/factors/phone/message-types").await;
    assert_eq!(m, json!({"message_types": ["voice"]}));
    // A refusal from the Management API is logged as fapi: a provider setting that is not valid.
    let bad =
        b.submit(PAGE, "/dashboard/mfa/phone/provider", &[("provider", "twilio"), ("twilio_sid", "not-a-sid")]).await;
    assert_eq!(bad.status, 400);
    let fapi = logs(&t, &token, "type:fapi").await;
    assert_eq!(fapi.len(), 1);
    assert_eq!(fapi[0]["details"]["response"]["statusCode"], 400);

    b.submit(PAGE, "/dashboard/mfa/phone/policy", &[("policy", "all-applications")])
        .await
        .assert_redirect("/dashboard/mfa/phone#policy");
    let (_, p) = t.get(&token, "/api/v2/guardian/policies").await;
    assert_eq!(p, json!(["all-applications"]));
    assert_tenant_update(&t, &token, json!({"policies": ["all-applications"]})).await;
    b.submit(PAGE, "/dashboard/mfa/phone/policy", &[("policy", "never")]).await;
    let (_, p) = t.get(&token, "/api/v2/guardian/policies").await;
    assert_eq!(p, json!([]));
    t.stop().await;
}

#[tokio::test]
async fn phone_destinations_are_set_on_their_page() {
    const PD: &str = "/dashboard/security/phone-destinations";
    const API: &str = "/api/v2/guardian/factors/phone/destination-policy";
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let mut b = setup_operator(&t, "ops@example.com").await;
    let page = b.get(PD).await;
    assert_eq!(page.status, 200, "{}", page.body);
    // A new install: every country, with the notice; the searchable list names countries from the login list.
    page.assert_has(r#"id="all-countries-notice""#);
    page.assert_has("for SMS and Voice calls");
    page.assert_has(r#"data-filter-list="sms-countries""#);
    page.assert_has("United Kingdom (GB, +44)");
    page.assert_has(r#"id="sms-mode-all" name="mode" value="all" checked"#);
    page.assert_has(
        r#"role="switch" class="switch" id="sms-t-premium_rate" name="premium_rate" value="on" aria-describedby"#,
    );
    page.assert_has(r#"id="sms-t-voip" name="voip" value="on" checked"#);

    // SMS to GB and Toronto only, no landlines.
    let form = [("mode", "allow"), ("c_GB", "on"), ("calling_codes", "+1416"), ("voip", "on")];
    b.submit(PD, &format!("{PD}/sms"), &form).await.assert_redirect(&format!("{PD}#sms"));
    let (_, v) = t.get(&token, API).await;
    assert_eq!(v["sms"], json!({"mode": "allow", "countries": ["GB"], "calling_codes": ["+1416"]}));
    assert_eq!(v["number_types"]["sms"]["fixed_line"], false);
    assert_eq!(v["number_types"]["sms"]["voip"], true);
    assert_eq!(v["voice"]["mode"], "all", "the other channel is untouched");
    assert_eq!(v["number_types"]["voice"]["fixed_line"], true);
    let page = b.get(PD).await;
    page.assert_has("SMS destinations saved.");
    page.assert_has(r#"id="sms-c-GB" name="c_GB" value="on" checked"#);
    page.assert_has("for Voice calls.");
    assert!(!page.body.contains("for SMS and Voice calls"), "SMS has a list now");

    // The API's refusal in the section, in plain words, what was chosen kept.
    let bad = b.submit(PD, &format!("{PD}/voice"), &[("mode", "deny"), ("c_FR", "on"), ("calling_codes", "+0")]).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    bad.assert_has("voice.calling_codes[0]");
    bad.assert_has(r#"id="voice-mode-deny" name="mode" value="deny" checked"#);
    bad.assert_has(r#"id="voice-c-FR" name="c_FR" value="on" checked"#);
    assert!(!bad.body.contains("Payload validation error"), "plain words");
    assert_eq!(t.get(&token, API).await.1["voice"]["mode"], "all", "nothing saved");
    let bad = b.submit(PD, &format!("{PD}/voice"), &[("mode", "allow")]).await;
    assert_eq!(bad.status, 400);
    bad.assert_has("would refuse every number");
    t.stop().await;
}

#[tokio::test]
async fn usage_triggers_prices_and_the_alert_webhook_are_set_on_their_page() {
    const PU: &str = "/dashboard/security/phone-usage";
    const API: &str = "/api/v2/guardian/factors/phone/usage";
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let mut b = setup_operator(&t, "ops@example.com").await;
    let page = b.get(PU).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_has("No triggers yet.");
    page.assert_has("Nothing sent this day.");
    page.assert_has("US 0.008 0.014");

    // A message sent: the day's chart has a bar for it.
    let payload = callsign_core::delivery::Payload {
        to: "+14155552671".into(),
        text: "x".into(),
        locale: "en".into(),
        from: None,
        context: Default::default(),
    };
    let job =
        callsign_core::delivery::new_job(&t.app, callsign_domain::Channel::Sms, "auth0", &payload, None, None, None)
            .unwrap();
    t.app.store.enqueue_job(&job).await.unwrap();
    t.deliver_now().await;
    let page = b.get(PU).await;
    page.assert_has(r#"class="bar-sms""#);
    page.assert_has("This day: 1 messages, $0.0080");
    page.assert_has("<svg");

    // A trigger added, then changed by its id, then removed.
    let trig = [
        ("id", "daily"),
        ("name", "Daily"),
        ("metric", "count"),
        ("period", "day"),
        ("channel", "sms"),
        ("country", ""),
        ("threshold", "100"),
        ("action", "stop"),
    ];
    b.submit(PU, &format!("{PU}/triggers"), &trig).await.assert_redirect(&format!("{PU}#triggers"));
    let (_, v) = t.get(&token, API).await;
    assert_eq!(v["triggers"][0]["threshold"], 100.0);
    assert_eq!(v["triggers"][0]["action"], "stop");
    let mut changed = trig;
    changed[6] = ("threshold", "50");
    b.submit(PU, &format!("{PU}/triggers"), &changed).await;
    let (_, v) = t.get(&token, API).await;
    assert_eq!(v["triggers"].as_array().unwrap().len(), 1, "changed in place");
    assert_eq!(v["triggers"][0]["threshold"], 50.0);
    let page = b.get(PU).await;
    page.assert_has("Trigger saved.");
    page.assert_has("1 of 50");
    page.assert_has("Armed (stop)");
    // The API's refusal in the section, in plain words.
    let mut wrong = trig;
    wrong[6] = ("threshold", "-3");
    let bad = b.submit(PU, &format!("{PU}/triggers"), &wrong).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    bad.assert_has("triggers[0].threshold");
    b.submit(PU, &format!("{PU}/triggers/delete"), &[("id", "daily")]).await.assert_redirect(&format!("{PU}#triggers"));
    assert_eq!(t.get(&token, API).await.1["triggers"], json!([]));

    // Prices: the table replaced by what the form lists.
    let form = [("default_sms", "0.2"), ("default_voice", "0.3"), ("countries", "GB 0.05 0.03\nus 0.01 0.02")];
    b.submit(PU, &format!("{PU}/prices"), &form).await.assert_redirect(&format!("{PU}#prices"));
    let (_, v) = t.get(&token, API).await;
    assert_eq!(
        v["prices"]["countries"],
        json!({"GB": {"sms": 0.05, "voice": 0.03}, "US": {"sms": 0.01, "voice": 0.02}})
    );
    assert_eq!(v["prices"]["default"], json!({"sms": 0.2, "voice": 0.3}));
    let bad = b
        .submit(
            PU,
            &format!("{PU}/prices"),
            &[("default_sms", "0.2"), ("default_voice", "0.3"), ("countries", "GB cheap 0.03")],
        )
        .await;
    assert_eq!(bad.status, 400);
    bad.assert_has("prices.countries.GB.sms");

    // The webhook: the made secret is shown once.
    let page = b.submit(PU, &format!("{PU}/webhook"), &[("url", "https://hooks.example.com/alerts")]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_has(r#"id="new-secret""#);
    page.assert_has("whsec_");
    let again = b.get(PU).await;
    assert!(!again.body.contains("whsec_"), "shown once");
    again.assert_has("A signing secret is set.");
    let bad = b.submit(PU, &format!("{PU}/webhook"), &[("url", "http://hooks.example.com/")]).await;
    assert_eq!(bad.status, 400);
    bad.assert_has("alert_webhook.url");
    t.stop().await;
}

#[tokio::test]
async fn attack_protection_is_set_and_blocks_lifted_on_its_page() {
    const AP: &str = "/dashboard/security/attack-protection";
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let mut b = setup_operator(&t, "ops@example.com").await;
    let page = b.get(AP).await;
    page.assert_has("Suspicious IP throttling");
    page.assert_has("Brute-force protection");
    page.assert_has("No address or account has been blocked.");
    let mut form = vec![
        ("enabled", "on"),
        ("block", "on"),
        ("pre-login_max_attempts", "2"),
        ("pre-login_rate", "864000"),
        ("pre-user-registration_max_attempts", "50"),
        ("pre-user-registration_rate", "1200"),
        ("pre-phone-message_max_attempts", "40"),
        ("pre-phone-message_rate", "90000"),
        ("allowlist", "10.0.0.0/8\r\n\r\n192.0.2.1"),
    ];
    b.submit(AP, "/dashboard/security/attack-protection/throttling", &form)
        .await
        .assert_redirect(&format!("{AP}#throttling"));
    let (_, v) = t.get(&token, "/api/v2/attack-protection/suspicious-ip-throttling").await;
    assert_eq!(
        v,
        json!({"enabled": true, "shields": ["block"], "allowlist": ["10.0.0.0/8", "192.0.2.1"],
               "stage": {"pre-login": {"max_attempts": 2, "rate": 864000}, "pre-user-registration": {"max_attempts": 50, "rate": 1200},
                         "pre-phone-message": {"max_attempts": 40, "rate": 90000}}})
    );
    b.get(AP).await.assert_has("Suspicious IP throttling saved.");
    // The API's refusal is shown in its section.
    form[3] = ("pre-login_rate", "5");
    let bad = b.submit(AP, "/dashboard/security/attack-protection/throttling", &form).await;
    assert_eq!(bad.status, 400);
    bad.assert_has("stage.pre-login.rate");
    // What was typed is shown again, not the stored settings; a field that is not a number is refused unsent.
    bad.assert_has(r#"name="pre-login_rate" min="1" value="5""#);
    bad.assert_has(r#"name="pre-phone-message_max_attempts" min="1" value="40""#);
    form[3] = ("pre-login_rate", "soon");
    form[5] = ("pre-user-registration_rate", "1300");
    let bad = b.submit(AP, "/dashboard/security/attack-protection/throttling", &form).await;
    assert_eq!(bad.status, 400);
    bad.assert_has("`soon` is not a whole number");
    bad.assert_has(r#"value="soon""#);
    bad.assert_has(r#"name="pre-user-registration_rate" min="1" value="1300""#);
    let (_, v) = t.get(&token, "/api/v2/attack-protection/suspicious-ip-throttling").await;
    assert_eq!(v["stage"]["pre-user-registration"]["rate"], 1200, "nothing was saved");
    // Phone provider protection: flat by default, exponential from its form.
    b.get(AP).await.assert_has(r#"id="p-default" name="type" value="default" checked"#);
    b.submit(AP, "/dashboard/security/attack-protection/phone", &[("type", "exponential")])
        .await
        .assert_redirect(&format!("{AP}#phone"));
    assert_eq!(
        t.get(&token, "/api/v2/attack-protection/phone-provider-protection").await.1,
        json!({"type": "exponential"})
    );
    b.get(AP).await.assert_has(r#"id="p-exponential" name="type" value="exponential" checked"#);
    let bad = b.submit(AP, "/dashboard/security/attack-protection/phone", &[("type", "linear")]).await;
    assert_eq!(bad.status, 400);
    bad.assert_has("is not one of default, exponential");
    // Brute force.
    let bf = [
        ("enabled", "on"),
        ("block", "on"),
        ("max_attempts", "3"),
        ("mode", "count_per_identifier"),
        ("allowlist", ""),
    ];
    b.submit(AP, "/dashboard/security/attack-protection/brute-force", &bf)
        .await
        .assert_redirect(&format!("{AP}#brute-force"));
    let (_, v) = t.get(&token, "/api/v2/attack-protection/brute-force-protection").await;
    assert_eq!(
        (v["max_attempts"].as_u64(), v["mode"].as_str(), &v["shields"]),
        (Some(3), Some("count_per_identifier"), &json!(["block"]))
    );
    // Two failed logins block this address; the page finds it and lifts the block.
    t.create_user(&token, "eve@example.com").await;
    let app = t.create_app(&token, &["password"]).await;
    let login = async |pw: &str| {
        t.token_request(json!({"grant_type": "password", "client_id": app["client_id"], "client_secret": app["client_secret"], "username": "eve@example.com", "password": pw})).await
    };
    assert_eq!(login("wrong password 1A!").await.0, 403);
    assert_eq!(login("wrong password 1A!").await.0, 403);
    assert_eq!(login(common::PW).await.0, 429);
    let page = b.get(&format!("{AP}?ip=127.0.0.1")).await;
    page.assert_has("127.0.0.1 is blocked.");
    page.assert_has("limit_mu");
    b.submit(AP, "/dashboard/security/attack-protection/unblock", &[("ip", "127.0.0.1")])
        .await
        .assert_redirect(&format!("{AP}#blocks"));
    b.get(AP).await.assert_has("127.0.0.1 is unblocked.");
    assert_eq!(t.get(&token, "/api/v2/anomaly/blocks/ips/127.0.0.1").await.0, 404);
    b.get(&format!("{AP}?ip=127.0.0.1")).await.assert_has("127.0.0.1 is not blocked.");
    b.submit(AP, "/dashboard/security/attack-protection/unblock-account", &[("identifier", "eve@example.com")])
        .await
        .assert_redirect(&format!("{AP}#blocks"));
    let bad = b.submit(AP, "/dashboard/security/attack-protection/unblock", &[("ip", "nope")]).await;
    assert_eq!(bad.status, 400);
    bad.assert_has("not an IPv4 or IPv6 address");
    t.stop().await;
}

#[tokio::test]
async fn applications_are_listed_created_edited_and_their_secret_rotated() {
    const APPS: &str = "/dashboard/applications";
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let mut b = setup_operator(&t, "ops@example.com").await;
    let page = b.get(APPS).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_has("New application");
    // Created: the secret is on the POST's answer, once, and works.
    let created = b.submit(APPS, "/dashboard/applications/new", &[("name", "Shop"), ("app_type", "regular_web")]).await;
    assert_eq!(created.status, 200, "{}", created.body);
    created.assert_has("shown only this once");
    let field = |p: &Page, id: &str| {
        let at = p.body.find(&format!(r#"id="{id}""#)).unwrap();
        let rest = &p.body[at..];
        let v = &rest[rest.find("value=\"").unwrap() + 7..];
        v[..v.find('"').unwrap()].to_owned()
    };
    let (cid, secret) = (field(&created, "client-id"), field(&created, "client-secret"));
    assert_eq!(cid.len(), 32, "{cid}");
    let (s, v) = t.token_request(json!({"grant_type": "client_credentials", "client_id": cid, "client_secret": secret, "audience": t.audience()})).await;
    assert_eq!(s, 403, "the secret authenticates: {v}");
    assert_eq!(v["error"], "access_denied", "authenticated, but no client grant for the API: {v}");
    let listed = b.get(APPS).await;
    listed.assert_has(">Shop</a>");
    assert!(!listed.has(&secret), "a GET never shows the secret");
    // Edited: callbacks, logout URLs, origins and grant types.
    let app_page = format!("{APPS}/{cid}");
    let shown = b.get(&app_page).await;
    assert!(!shown.has(&secret));
    let form = [
        ("name", "Shop"),
        ("callbacks", "https://shop.example/callback\r\n\r\nhttps://shop.example/cb2"),
        ("allowed_logout_urls", "https://shop.example/"),
        ("web_origins", ""),
        ("grant_types", "authorization_code"),
        ("grant_types", "refresh_token"),
    ];
    b.submit(&app_page, &app_page, &form).await.assert_redirect(&app_page);
    let (_, c) = t.get(&token, &format!("/api/v2/clients/{cid}")).await;
    assert_eq!(c["callbacks"], json!(["https://shop.example/callback", "https://shop.example/cb2"]));
    assert_eq!(c["grant_types"], json!(["authorization_code", "refresh_token"]));
    b.get(&app_page).await.assert_has("Application saved.");
    // A refusal keeps what was typed.
    let bad = b
        .submit(&app_page, &app_page, &[("name", "Shop"), ("callbacks", "not a url"), ("grant_types", "password")])
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    bad.assert_has("not a url");
    // Rotated: a new secret, shown once; the old one stops working.
    let rotated = b.submit(&app_page, &format!("{app_page}/rotate-secret"), &[]).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new_secret = field(&rotated, "client-secret");
    assert_ne!(new_secret, secret);
    let (s, _) = t.token_request(json!({"grant_type": "client_credentials", "client_id": cid, "client_secret": secret, "audience": t.audience()})).await;
    assert_eq!(s, 401, "the old secret no longer works");
    assert_eq!(b.get(&format!("{APPS}/nope")).await.status, 404);
    assert_eq!(
        b.post("/dashboard/applications/new", &[("name", "x"), ("app_type", "spa")]).await.status,
        403,
        "no CSRF token"
    );
    t.stop().await;
}

#[tokio::test]
async fn settings_edit_the_tenant_and_switch_recovery_codes() {
    const SETTINGS: &str = "/dashboard/settings";
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let mut b = setup_operator(&t, "ops@example.com").await;
    let page = b.get(SETTINGS).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_has("Friendly name");
    page.assert_has("Off: a user who loses their phone needs an operator");
    let form = [
        ("friendly_name", "Acme Shop"),
        ("support_email", "help@acme.example"),
        ("support_url", "https://acme.example/help"),
        ("default_locale", "fr"),
    ];
    b.submit(SETTINGS, "/dashboard/settings/tenant", &form).await.assert_redirect(&format!("{SETTINGS}#tenant"));
    let (_, v) = t.get(&token, "/api/v2/tenants/settings").await;
    assert_eq!(
        (v["friendly_name"].as_str(), v["support_email"].as_str(), v["default_locale"].as_str()),
        (Some("Acme Shop"), Some("help@acme.example"), Some("fr"))
    );
    b.get(SETTINGS).await.assert_has("Tenant settings saved.");
    // A refusal is shown with what was typed.
    let bad = b
        .submit(
            SETTINGS,
            "/dashboard/settings/tenant",
            &[("friendly_name", "Acme"), ("support_email", "not-an-email"), ("default_locale", "en")],
        )
        .await;
    assert_eq!(bad.status, 400);
    bad.assert_has("support_email");
    bad.assert_has(r#"value="not-an-email""#);
    assert_eq!(t.get(&token, "/api/v2/tenants/settings").await.1["friendly_name"], "Acme Shop", "nothing saved");
    // Recovery codes on, then off.
    b.submit(SETTINGS, "/dashboard/settings/recovery-code", &[("enabled", "on")])
        .await
        .assert_redirect(&format!("{SETTINGS}#recovery"));
    let (_, f) = t.get(&token, "/api/v2/guardian/factors").await;
    assert!(f.as_array().unwrap().iter().any(|x| x["name"] == "recovery-code" && x["enabled"] == true), "{f}");
    b.get(SETTINGS).await.assert_has("Turn recovery codes off");
    b.submit(SETTINGS, "/dashboard/settings/recovery-code", &[("enabled", "off")]).await;
    let (_, f) = t.get(&token, "/api/v2/guardian/factors").await;
    assert!(f.as_array().unwrap().iter().any(|x| x["name"] == "recovery-code" && x["enabled"] == false), "{f}");
    assert_eq!(b.post("/dashboard/settings/recovery-code", &[("enabled", "on")]).await.status, 403, "no CSRF token");
    t.stop().await;
}

#[tokio::test]
async fn log_streams_are_created_edited_paused_resumed_and_deleted_on_their_page() {
    const PAGE: &str = "/dashboard/log-streams";
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let mut b = setup_operator(&t, "ops@example.com").await;
    let page = b.get(PAGE).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_has("No log stream yet.");
    // Not https: refused, explained, nothing made.
    let bad = b
        .submit(PAGE, PAGE, &[("name", "SIEM"), ("endpoint", "http://siem.example/in"), ("format", "JSONARRAY")])
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    bad.assert_has("https");
    assert_eq!(t.get(&token, "/api/v2/log-streams").await.1, json!([]));
    let form = [
        ("name", "SIEM"),
        ("endpoint", "https://siem.example/in"),
        ("authorization", "Bearer very-secret"),
        ("format", "JSONLINES"),
    ];
    b.submit(PAGE, PAGE, &form).await.assert_redirect(PAGE);
    let (_, list) = t.get(&token, "/api/v2/log-streams").await;
    let id = list[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (list[0]["sink"]["httpContentFormat"].as_str(), list[0]["status"].as_str()),
        (Some("JSONLINES"), Some("active"))
    );
    let page = b.get(PAGE).await;
    page.assert_has("Log stream created.");
    page.assert_has(r#"<td class="status-active">active</td>"#);
    assert!(!page.body.contains("very-secret"), "the secret never shows");
    let at = format!("{PAGE}/{id}");
    // Edit: blank authorization keeps the stored one.
    let edit =
        [("name", "SIEM 2"), ("endpoint", "https://siem.example/v2"), ("authorization", ""), ("format", "JSONARRAY")];
    b.submit(PAGE, &at, &edit).await.assert_redirect(PAGE);
    let (_, v) = t.get(&token, &format!("/api/v2/log-streams/{id}")).await;
    assert_eq!(
        (v["name"].as_str(), v["sink"]["httpEndpoint"].as_str()),
        (Some("SIEM 2"), Some("https://siem.example/v2"))
    );
    assert_eq!(v["sink"]["httpAuthorization"], callsign_core::log_streams::MASK, "kept");
    // Pause, resume.
    b.submit(PAGE, &format!("{at}/status"), &[("status", "paused")]).await.assert_redirect(PAGE);
    assert_eq!(t.get(&token, &format!("/api/v2/log-streams/{id}")).await.1["status"], "paused");
    b.get(PAGE).await.assert_has("Resume SIEM 2");
    b.submit(PAGE, &format!("{at}/status"), &[("status", "active")]).await.assert_redirect(PAGE);
    assert_eq!(t.get(&token, &format!("/api/v2/log-streams/{id}")).await.1["status"], "active");
    assert_eq!(b.post(&format!("{at}/delete"), &[]).await.status, 403, "no CSRF token");
    b.submit(PAGE, &format!("{at}/delete"), &[]).await.assert_redirect(PAGE);
    assert_eq!(t.get(&token, "/api/v2/log-streams").await.1, json!([]));
    t.stop().await;
}

#[tokio::test]
async fn branding_is_saved_through_the_management_api_with_a_preview_of_the_login_card() {
    const PAGE: &str = "/dashboard/branding";
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let mut b = setup_operator(&t, "ops@example.com").await;
    let page = b.get(PAGE).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_has(r#"<input type="color" id="b-primary-picker""#);
    page.assert_has(r#"data-brand-preview="brand-preview""#);
    page.assert_has(r#"<div class="brand-preview branded" id="brand-preview""#);
    assert!(!page.has("/branding.css"), "nothing saved yet: the preview shows Callsign's colours");
    let form = [
        ("logo_url", "https://cdn.example/logo.png"),
        ("primary", "#0B1A33"),
        ("primary_picker", "#0b57d0"),
        ("primary_was", ""),
        ("page_background", "#f7f3e8"),
        ("page_background_picker", "#f4f5f7"),
        ("page_background_was", ""),
    ];
    b.submit(PAGE, PAGE, &form).await.assert_redirect(&format!("{PAGE}#universal-login"));
    let (_, v) = t.get(&token, "/api/v2/branding").await;
    assert_eq!(
        v,
        json!({"colors": {"primary": "#0B1A33", "page_background": "#f7f3e8"}, "logo_url": "https://cdn.example/logo.png"})
    );
    // Without the script, the preview shows what was saved: its stylesheet, its logo (which the CSP lets in).
    let r = b.http.get(format!("{}{PAGE}", b.base)).header("cookie", b.cookies()).send().await.unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("img-src 'self' data: https://cdn.example;"), "{csp}");
    let page = b.finish(r).await;
    page.assert_has("Branding saved.");
    page.assert_has(r#"<link rel="stylesheet" href="/branding.css?v="#);
    page.assert_has(r#"src="https://cdn.example/logo.png""#);
    page.assert_has(r##"value="#0B1A33""##);
    page.assert_has(r##"value="#0b1a33" data-color-text="b-primary""##);
    // Only the picker changed (no script to copy it into the text field): the picker's colour is saved.
    let form = [
        ("logo_url", "https://cdn.example/logo.png"),
        ("primary", "#0B1A33"),
        ("primary_picker", "#225588"),
        ("primary_was", "#0B1A33"),
        ("page_background", ""),
        ("page_background_picker", "#f4f5f7"),
        ("page_background_was", "#f7f3e8"),
    ];
    b.submit(PAGE, PAGE, &form).await.assert_redirect(&format!("{PAGE}#universal-login"));
    let (_, v) = t.get(&token, "/api/v2/branding").await;
    assert_eq!(v, json!({"colors": {"primary": "#225588"}, "logo_url": "https://cdn.example/logo.png"}), "cleared too");
    // A refusal is explained in plain words in the section, with what was typed kept.
    let bad = b
        .submit(PAGE, PAGE, &[("logo_url", "http://cdn.example/logo.png"), ("primary", "navy"), ("primary_was", "")])
        .await;
    assert_eq!(bad.status, 400);
    bad.assert_has("colors.primary: `navy` is not a colour in #rrggbb or #rgb form.");
    bad.assert_has(r#"value="http://cdn.example/logo.png""#);
    bad.assert_has(r#"value="navy""#);
    assert_eq!(t.get(&token, "/api/v2/branding").await.1["colors"]["primary"], "#225588", "nothing saved");
    let bad = b.submit(PAGE, PAGE, &[("logo_url", "http://cdn.example/logo.png")]).await;
    bad.assert_has("logo_url: Must be an https URL (http only for localhost).");
    t.stop().await;
}

#[tokio::test]
async fn routing_is_edited_on_the_phone_page() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let mut b = setup_operator(&t, "ops@example.com").await;
    let (s, v) =
        t.put(&token, "/api/v2/guardian/factors/phone/providers/telesign", callsign_fakes::telesign::settings()).await;
    assert_eq!(s, 200, "{v}");
    let page = b.get(PAGE).await;
    page.assert_has("Routing and failover");
    let form = [
        ("sms_fallbacks", "telesign"),
        ("voice_fallbacks", ""),
        ("routes", "gb sms=telesign\r\n\r\n+1416 sms=telesign,auth0"),
        ("voice_fallback", "on"),
        ("receipt_timeout_seconds", "45"),
    ];
    b.submit(PAGE, "/dashboard/mfa/phone/routing", &form).await.assert_redirect("/dashboard/mfa/phone#routing");
    let (_, r) = t.get(&token, "/api/v2/guardian/factors/phone/routing").await;
    assert_eq!(
        r,
        json!({"fallbacks": {"sms": ["telesign"], "voice": []},
               "routes": [{"country": "GB", "sms": ["telesign"], "voice": []},
                          {"calling_code": "1416", "sms": ["telesign", "auth0"], "voice": []}],
               "voice_fallback": {"enabled": true, "receipt_timeout_seconds": 45}})
    );
    assert_tenant_update(&t, &token, json!({"routing": r})).await;
    let page = b.get(PAGE).await;
    page.assert_has("Routing saved.");
    page.assert_has("GB sms=telesign\n+1416 sms=telesign,auth0");
    page.assert_has(r#"name="receipt_timeout_seconds" min="10" max="3600" value="45""#);

    // The API's refusal is shown in the section, and what was typed is kept.
    let bad = b.submit(PAGE, "/dashboard/mfa/phone/routing", &[("routes", "XX sms=telesign")]).await;
    assert_eq!(bad.status, 400);
    bad.assert_has("routes[0].country");
    bad.assert_has("XX sms=telesign");
    let bad = b.submit(PAGE, "/dashboard/mfa/phone/routing", &[("sms_fallbacks", "mitto")]).await;
    assert_eq!(bad.status, 400);
    bad.assert_has("not configured for sms");
    // A line the form cannot read is refused before the API.
    let bad = b.submit(PAGE, "/dashboard/mfa/phone/routing", &[("routes", "GB telesign")]).await;
    assert_eq!(bad.status, 400);
    bad.assert_has("Route line 1");
    assert_eq!(t.get(&token, "/api/v2/guardian/factors/phone/routing").await.1, r, "unchanged by refused saves");

    // Five provider failures in a row open Telesign's breaker: the page says it is skipped.
    for _ in 0..5 {
        t.app.health.observe("telesign", &Err(callsign_messaging::SendError::retryable("Telesign answered 503")));
    }
    let page = b.get(PAGE).await;
    page.assert_has("Unhealthy: skipped by failover chains until it is probed again");
    page.assert_has("5 of 5 sends failed in the last minute. Last error: Telesign answered 503.");
    t.stop().await;
}

/// A Twilio setting of the wrong shape on the provider form: the API's reason in plain words in the provider section,
/// what was typed kept (never the token), and nothing saved or selected.
#[tokio::test]
async fn a_twilio_sid_of_the_wrong_shape_is_explained_and_what_was_typed_is_kept() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let mut b = setup_operator(&t, "ops@example.com").await;
    let form = |sid: &'static str, from: &'static str| {
        [
            ("provider", "twilio"),
            ("twilio_sid", sid),
            ("twilio_auth_token", TWILIO_TOKEN),
            ("twilio_from", from),
            ("twilio_messaging_service_sid", ""),
            ("hook_url", ""),
        ]
    };
    let refused = b.submit(PAGE, "/dashboard/mfa/phone/provider", &form("AC123", "+14155550100")).await;
    assert_eq!(refused.status, 400);
    refused.assert_has("sid: An Account SID is AC followed by 32 hexadecimal digits (found 5 characters).");
    refused.assert_has(r#"value="AC123""#);
    refused.assert_has(r#"value="+14155550100""#);
    assert!(!refused.has(TWILIO_TOKEN));
    assert!(!refused.has("Payload validation error"), "plain words, not the wire prefix");

    let refused = b
        .submit(PAGE, "/dashboard/mfa/phone/provider", &form("AC0123456789abcdef0123456789abcdef", "+1 415 555 0100"))
        .await;
    assert_eq!(refused.status, 400);
    refused.assert_has("from: A sender is a phone number in E.164 form (+ and 8 to 15 digits, e.g. +15005550006)");
    refused.assert_has("(found spaces or punctuation after the +: write the digits only).");
    refused.assert_has(r#"value="AC0123456789abcdef0123456789abcdef""#);
    refused.assert_has(r#"value="+1 415 555 0100""#);
    assert!(!refused.has(TWILIO_TOKEN));

    let (_, p) = t.get(&token, "/api/v2/guardian/factors/phone/selected-provider").await;
    assert_eq!(p, json!({"provider": "auth0"}), "nothing selected");
    let (_, tw) = t.get(&token, "/api/v2/guardian/factors/phone/providers/twilio").await;
    assert_eq!((&tw["sid"], &tw["auth_token"]), (&Value::Null, &Value::Null), "nothing saved: {tw}");
    t.stop().await;
}

#[tokio::test]
async fn the_provider_switches_to_twilio_and_back_and_the_token_never_shows() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let mut b = setup_operator(&t, "ops@example.com").await;
    let page = b.get(PAGE).await;
    page.assert_has("100 of 100 messages left");

    // Voice on and no From: the API's refusal is shown, and nothing is selected.
    b.submit(PAGE, "/dashboard/mfa/phone/message-types", &[("sms", "on"), ("voice", "on")]).await;
    let twilio = [
        ("provider", "twilio"),
        ("twilio_sid", "AC0123456789abcdef0123456789abcdef"),
        ("twilio_auth_token", TWILIO_TOKEN),
        ("twilio_from", ""),
        ("twilio_messaging_service_sid", "MG0123456789abcdef0123456789abcdef"),
        ("hook_url", ""),
    ];
    let refused = b.submit(PAGE, "/dashboard/mfa/phone/provider", &twilio).await;
    assert_eq!(refused.status, 400);
    refused.assert_has("Voice requires a From number");
    assert!(!refused.has(TWILIO_TOKEN));
    refused.assert_has("MG0123456789abcdef0123456789abcdef");
    let (_, p) = t.get(&token, "/api/v2/guardian/factors/phone/selected-provider").await;
    assert_eq!(p, json!({"provider": "auth0"}));

    let mut with_from = twilio;
    with_from[3] = ("twilio_from", "+14155550100");
    b.submit(PAGE, "/dashboard/mfa/phone/provider", &with_from).await.assert_redirect("/dashboard/mfa/phone#provider");
    let (_, p) = t.get(&token, "/api/v2/guardian/factors/phone/selected-provider").await;
    assert_eq!(p, json!({"provider": "twilio"}));
    let (_, tw) = t.get(&token, "/api/v2/guardian/factors/phone/providers/twilio").await;
    assert_eq!(tw["sid"], "AC0123456789abcdef0123456789abcdef");
    assert_eq!(tw["from"], "+14155550100");
    assert_eq!(tw["messaging_service_sid"], "MG0123456789abcdef0123456789abcdef");
    assert_eq!(tw["auth_token"], "****cdef");
    assert_tenant_update(&t, &token, json!({"provider": "twilio"})).await;
    let updates = logs(&t, &token, "type:gd_tenant_update").await;
    assert!(updates.iter().any(|e| e["details"]["twilio"]["auth_token"] == "set"));

    let page = b.get(PAGE).await;
    page.assert_has("A token is stored (****cdef). Leave blank to keep it.");
    page.assert_has(r#"id="p-twilio" name="provider" value="twilio" checked aria-labelledby="p-twilio-name""#);

    // Saving again with the token left blank keeps it; a cleared Messaging Service SID makes From the SMS source.
    let keep = [
        ("provider", "twilio"),
        ("twilio_sid", "AC0123456789abcdef0123456789abcdef"),
        ("twilio_auth_token", ""),
        ("twilio_from", "+14155550100"),
        ("twilio_messaging_service_sid", ""),
    ];
    b.submit(PAGE, "/dashboard/mfa/phone/provider", &keep).await.assert_redirect("/dashboard/mfa/phone#provider");
    let (_, tw) = t.get(&token, "/api/v2/guardian/factors/phone/providers/twilio").await;
    assert_eq!(tw["auth_token"], "****cdef");
    assert_eq!(tw["messaging_service_sid"], Value::Null);
    let cfg = callsign_core::guardian::GuardianConfig::load(&t.app).await.unwrap();
    let name = cfg.provider("twilio")["auth_token_secret"].as_str().unwrap().to_owned();
    let secret = t.app.store.get_secret(&name).await.unwrap().unwrap();
    let plain = t.app.keyring.open(&secret.name, &secret.sealed).unwrap();
    assert_eq!(String::from_utf8_lossy(&plain), TWILIO_TOKEN);

    // Back to built-in.
    b.submit(PAGE, "/dashboard/mfa/phone/provider", &[("provider", "auth0")])
        .await
        .assert_redirect("/dashboard/mfa/phone#provider");
    let (_, p) = t.get(&token, "/api/v2/guardian/factors/phone/selected-provider").await;
    assert_eq!(p, json!({"provider": "auth0"}));
    assert_tenant_update(&t, &token, json!({"provider": "auth0"})).await;

    // The token appears in no page.
    for path in [PAGE, "/dashboard/users", "/dashboard/logs", "/dashboard/inbox"] {
        let p = b.get(path).await;
        assert_eq!(p.status, 200, "{path}");
        assert!(!p.has(TWILIO_TOKEN), "{path} shows the Twilio token");
    }
    let all = logs(&t, &token, "").await;
    for e in &all {
        let p = b.get(&format!("/dashboard/logs/{}", e["log_id"].as_str().unwrap())).await;
        assert_eq!(p.status, 200);
        assert!(!p.has(TWILIO_TOKEN), "a log event page shows the Twilio token");
    }
    t.stop().await;
}

#[tokio::test]
async fn the_custom_webhook_provider_and_its_secrets() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let mut b = setup_operator(&t, "ops@example.com").await;
    let bad = b
        .submit(
            PAGE,
            "/dashboard/mfa/phone/provider",
            &[("provider", "phone-message-hook"), ("hook_url", "http://example.com/hook")],
        )
        .await;
    assert_eq!(bad.status, 400);
    bad.assert_has("the url must use https");
    b.submit(
        PAGE,
        "/dashboard/mfa/phone/provider",
        &[("provider", "phone-message-hook"), ("hook_url", "https://sms.example.com/hook")],
    )
    .await
    .assert_redirect("/dashboard/mfa/phone#provider");
    let (_, h) = t.get(&token, "/api/v2/guardian/factors/phone/providers/phone-message-hook").await;
    assert_eq!(h["url"], "https://sms.example.com/hook");
    let (_, p) = t.get(&token, "/api/v2/guardian/factors/phone/selected-provider").await;
    assert_eq!(p, json!({"provider": "phone-message-hook"}));

    let created = b.submit(PAGE, "/dashboard/mfa/phone/secrets", &[("provider", "phone-message-hook")]).await;
    assert_eq!(created.status, 200);
    created.assert_has("it is not shown again");
    let at = created.body.find("whsec_").expect("the new secret is shown once");
    let secret: String = created.body[at..].chars().take_while(|c| *c != '<').collect();
    let (_, h) = t.get(&token, "/api/v2/guardian/factors/phone/providers/phone-message-hook").await;
    let id = h["secrets"][0]["id"].as_str().unwrap().to_owned();
    let again = b.get(PAGE).await;
    assert!(!again.has(&secret), "the secret shows only once");
    again.assert_has(&id);
    // Without `provider`, the form is about the first provider with generated secrets (the webhook).
    b.submit(PAGE, "/dashboard/mfa/phone/secrets/delete", &[("id", &id)])
        .await
        .assert_redirect("/dashboard/mfa/phone#hook-secrets");
    let (_, h) = t.get(&token, "/api/v2/guardian/factors/phone/providers/phone-message-hook").await;
    assert_eq!(h["secrets"], json!([]));
    assert_tenant_update(&t, &token, json!({"phone-message-hook": {"secret_deleted": id}})).await;
    t.stop().await;
}

#[tokio::test]
async fn templates_preview_and_save_and_invalid_liquid_names_the_field() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let mut b = setup_operator(&t, "ops@example.com").await;
    let page = b.get(PAGE).await;
    page.assert_has("123456 is your verification code for Callsign");
    page.assert_has("1.2.3.4.5.6 is your verification code for Callsign");

    let enrollment = r#"{% if message_type == "voice" %}Enroll code {{pause}}{{code}}{% else %}Enroll: {{code}} for {{tenant.friendly_name}}{% endif %}"#;
    let verification = "Login code {{code}}";
    let preview = b
        .submit(
            PAGE,
            "/dashboard/mfa/phone/templates",
            &[("action", "preview"), ("enrollment_message", enrollment), ("verification_message", verification)],
        )
        .await;
    assert_eq!(preview.status, 200);
    preview.assert_has("Enroll: 123456 for Callsign");
    preview.assert_has("Enroll code ... 1.2.3.4.5.6");
    preview.assert_has("Login code 1.2.3.4.5.6");
    preview.assert_has("(not saved yet)");
    let (_, tpl) = t.get(&token, "/api/v2/guardian/factors/phone/templates").await;
    assert_eq!(tpl["verification_message"], callsign_core::templates::DEFAULT_VERIFICATION, "preview saves nothing");

    let invalid = b
        .submit(
            PAGE,
            "/dashboard/mfa/phone/templates",
            &[("action", "save"), ("enrollment_message", "{% if %}oops"), ("verification_message", verification)],
        )
        .await;
    assert_eq!(invalid.status, 400);
    invalid.assert_has("Invalid enrollment_message template:");
    invalid.assert_has("{% if %}oops");
    let (_, tpl) = t.get(&token, "/api/v2/guardian/factors/phone/templates").await;
    assert_eq!(tpl["verification_message"], callsign_core::templates::DEFAULT_VERIFICATION);

    b.submit(
        PAGE,
        "/dashboard/mfa/phone/templates",
        &[
            ("action", "save"),
            ("enrollment_message", &enrollment.replace('\n', "\r\n")),
            ("verification_message", verification),
        ],
    )
    .await
    .assert_redirect("/dashboard/mfa/phone#templates");
    let (_, tpl) = t.get(&token, "/api/v2/guardian/factors/phone/templates").await;
    assert_eq!(tpl, json!({"enrollment_message": enrollment, "verification_message": verification}));
    assert_tenant_update(&t, &token, json!({"templates": ["enrollment_message", "verification_message"]})).await;

    // A voice body set through the Unified Phone Experience is what the preview's voice column says.
    let (s, v) = t
        .post(
            &token,
            "/api/v2/branding/phone/templates",
            json!({"type": "otp_verify", "content": {"body": {"voice": "Spoken {{code}}"}}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let page = b.get(PAGE).await;
    page.assert_has("Spoken 1.2.3.4.5.6");
    page.assert_has(r#"id="voice-bodies""#);
    t.stop().await;
}

#[tokio::test]
async fn a_test_message_lands_in_the_development_inbox() {
    let t = TestApp::spawn().await;
    let mut b = setup_operator(&t, "ops@example.com").await;
    let bad = b.submit(PAGE, "/dashboard/mfa/phone/test", &[("to", "not a number"), ("channel", "sms")]).await;
    assert_eq!(bad.status, 400);
    bad.assert_has(r#"role="alert""#);
    bad.assert_has("not a number");

    b.submit(PAGE, "/dashboard/mfa/phone/test", &[("to", "+1 415 555 2671"), ("channel", "sms")])
        .await
        .assert_redirect("/dashboard/mfa/phone#test");
    b.get(PAGE).await.assert_has("Test message sent by SMS to +14155552671.");
    let msgs = t.inbox("+14155552671", 1).await;
    assert_eq!(msgs[0].channel, "sms");
    assert!(msgs[0].text.contains("test message"), "{}", msgs[0].text);
    b.submit(PAGE, "/dashboard/mfa/phone/test", &[("to", "+14155552671"), ("channel", "voice")]).await;
    assert_eq!(t.inbox("+14155552671", 2).await[0].channel, "voice");

    let inbox = b.get("/dashboard/inbox").await;
    assert_eq!(inbox.status, 200);
    inbox.assert_has("+14155552671");
    inbox.assert_has("This is a test message from Callsign");
    inbox.assert_has("98 of 100 messages left");
    inbox.assert_has(r#"href="/dashboard/inbox" aria-current="page""#);
    b.get(PAGE).await.assert_has("98 of 100 messages left");
    // Each test message is logged as a send marked as a test, by the dashboard.
    let token = t.mgmt_token().await;
    let sent = logs(&t, &token, "type:gd_send_voice").await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (sent[0]["details"]["test"].as_bool(), sent[0]["client_id"].as_str()),
        (Some(true), Some("callsign-dashboard"))
    );
    t.stop().await;
}

#[tokio::test]
async fn users_search_view_and_reset_mfa() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let mut b = setup_operator(&t, "ops@example.com").await;
    let id = create_user(&t, &token, "pat@example.com", json!({})).await;
    let (s, m) = t
        .post(
            &token,
            &format!("/api/v2/users/{}/authentication-methods", enc(&id)),
            json!({"type": "phone", "phone_number": "+14155552671"}),
        )
        .await;
    assert_eq!(s, 201, "{m}");

    let all = b.get("/dashboard/users").await;
    all.assert_has(">pat@example.com</a>");
    all.assert_has(">ops@example.com</a>");
    let found = b.get("/dashboard/users?email=PAT%40example.com").await;
    found.assert_has(">pat@example.com</a>");
    assert!(!found.has(">ops@example.com</a>"));
    b.get("/dashboard/users?email=none%40example.com").await.assert_has("No user has the email");

    let user_path = format!("/dashboard/users/{}", enc(&id));
    let page = b.get(&user_path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_has("XXXXXXXX2671");
    assert!(!page.has("+14155552671"), "numbers are masked");
    assert_eq!(b.get("/dashboard/users/auth0%7Cnobody").await.status, 404);

    let reset = b.submit(&user_path, &format!("{user_path}/reset-mfa"), &[]).await;
    reset.assert_redirect(&user_path);
    let (_, methods) = t.get(&token, &format!("/api/v2/users/{}/authentication-methods", enc(&id))).await;
    assert_eq!(methods, json!([]));
    let unenroll = logs(&t, &token, "type:gd_unenroll").await;
    assert_eq!(unenroll[0]["client_id"], "callsign-dashboard");
    assert_eq!(unenroll[0]["user_id"], id.as_str());
    let after = b.get(&user_path).await;
    after.assert_has("No enrolled factor.");
    after.assert_has("MFA reset");

    // Public sign-up: off on a new install, turned on and off again from the Users page.
    b.get("/dashboard/users").await.assert_has("Off: only operators create accounts");
    let on = b.submit("/dashboard/users", "/dashboard/users/signup", &[("open", "on")]).await;
    on.assert_redirect("/dashboard/users");
    let page = b.get("/dashboard/users").await;
    page.assert_has("Public sign-up is on.");
    page.assert_has("Turn sign-up off");
    let (_, c) = t.get(&token, "/api/v2/connections").await;
    assert_eq!(c[0]["options"]["disable_signup"], false, "{c}");
    b.submit("/dashboard/users", "/dashboard/users/signup", &[("open", "off")])
        .await
        .assert_redirect("/dashboard/users");
    let (_, c) = t.get(&token, "/api/v2/connections").await;
    assert_eq!(c[0]["options"]["disable_signup"], true, "{c}");
    assert_eq!(b.post("/dashboard/users/signup", &[("open", "on")]).await.status, 403, "no CSRF token");
    t.stop().await;
}

#[tokio::test]
async fn logs_filter_by_type_and_user_and_open_one_event() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let mut b = setup_operator(&t, "ops@example.com").await;
    let id = create_user(&t, &token, "pat@example.com", json!({})).await;
    sign_in(&t, "pat@example.com", "Wrong-Passw0rd").await;
    sign_in(&t, "pat@example.com", PW).await;

    let all = b.get("/dashboard/logs").await;
    all.assert_has("<code>seccft</code>");
    all.assert_has("<code>fp</code>");
    let fp = b.get("/dashboard/logs?type=fp").await;
    fp.assert_has("<code>fp</code>");
    assert!(!fp.has("<code>seccft</code>") && !fp.has("<code>f</code>"));
    let mine = b.get(&format!("/dashboard/logs?user_id={}", enc(&id))).await;
    mine.assert_has("<code>fp</code>");
    mine.assert_has("<code>f</code>");
    assert!(!mine.has("<code>s</code>"), "the operator's own sign-in is another user's");
    let both = b.get(&format!("/dashboard/logs?type=f&user_id={}", enc(&id))).await;
    assert!(both.has("<code>f</code>") && !both.has("<code>fp</code>"));
    let bad = b.get("/dashboard/logs?type=a%20AND%20ip%3Ax").await;
    bad.assert_has(r#"role="alert""#);

    let e = &logs(&t, &token, "type:fp").await[0];
    let page = b.get(&format!("/dashboard/logs/{}", e["log_id"].as_str().unwrap())).await;
    assert_eq!(page.status, 200);
    page.assert_has("Wrong email or password.");
    page.assert_has(&format!("&quot;log_id&quot;: &quot;{}&quot;", e["log_id"].as_str().unwrap()));
    assert_eq!(b.get("/dashboard/logs/90020260101000000000000000000000000000000000000").await.status, 404);
    t.stop().await;
}

/// The href of the pager's `rel` link on a page, `&amp;` decoded.
fn pager_link(p: &Page, rel: &str) -> Option<String> {
    let at = p.body.find(&format!(r#"rel="{rel}""#))?;
    let tag = &p.body[p.body[..at].rfind("<a ")?..at];
    let href = tag.split_once(r#"href=""#)?.1.split_once('"')?.0;
    Some(href.replace("&amp;", "&"))
}

#[tokio::test]
async fn logs_show_dates_and_names_offer_every_code_and_page_through_a_date_range() {
    let t = TestApp::spawn().await;
    // 2026-01-01: the Management token (`seccft`), the operator, a user.
    let token = t.mgmt_token().await;
    setup_operator(&t, "ops@example.com").await;
    let id = create_user(&t, &token, "pat@example.com", json!({})).await;
    // 2026-01-03: 29 Management API writes (`sapi`, by the bootstrap client) and a wrong password.
    t.clock.advance(Duration::from_secs(2 * 86_400));
    let token = t.mgmt_token().await;
    for n in 0..29 {
        t.clock.advance(Duration::from_secs(1));
        let (s, _) =
            t.patch(&token, &format!("/api/v2/users/{}", enc(&id)), json!({"nickname": format!("pat{n}")})).await;
        assert_eq!(s, 200);
    }
    t.clock.advance(Duration::from_secs(1));
    sign_in(&t, "pat@example.com", "Wrong-Passw0rd").await;
    // 2026-01-05 10:00: now (a new sign-in: the first session has been idle too long).
    t.clock.advance(Duration::from_secs(2 * 86_400 + 10 * 3_600));
    let token = t.mgmt_token().await;
    let (mut b, _) = sign_in(&t, "ops@example.com", PW).await;

    let all = b.get("/dashboard/logs").await;
    assert_eq!(all.status, 200);
    // Dates: the instant, the UTC text, how long ago, and the zone the page's times are in.
    all.assert_has(r#"<time datetime="2026-01-03T00:00:30.000Z" data-local-time>2026-01-03 00:00:30 UTC</time>"#);
    all.assert_has(r#"<span class="ago">2 days ago</span>"#);
    all.assert_has("Times are in <span data-time-zone>UTC</span>.");
    // Application names from the clients list, the id beside them.
    let bootstrap = bootstrap_file(&t)["client_id"].as_str().unwrap().to_owned();
    all.assert_has(&format!(r#"<span title="Client id {bootstrap}">Callsign Management (bootstrap)</span>"#));
    // The type filter offers every code Callsign writes, each with its description.
    for (code, description) in callsign_core::identity::events::CODES {
        all.assert_has(&format!(r#"<option value="{code}">{code} — {description}</option>"#));
    }

    // The range 2026-01-03..2026-01-03 holds that day's events only (its first page: the wrong password, newest).
    let (_, v) =
        t.get(&token, "/api/v2/logs?include_totals=true&per_page=1&q=date:[2026-01-03%20TO%202026-01-03]").await;
    let day3_total = v["total"].as_u64().unwrap();
    assert!(day3_total > 30, "{v}");
    let day3 = b.get("/dashboard/logs?from=2026-01-03&to=2026-01-03").await;
    day3.assert_has("<code>fp</code>");
    day3.assert_has(r#"<time datetime="2026-01-03"#);
    assert!(!day3.has(r#"<time datetime="2026-01-01"#) && !day3.has(r#"<time datetime="2026-01-05"#), "{}", day3.body);
    day3.assert_has(&format!("Page 1 of 2 ({day3_total} in all)"));
    let after = b.get("/dashboard/logs?from=2026-01-04").await;
    after.assert_has(r#"<time datetime="2026-01-05"#);
    assert!(!after.has(r#"<time datetime="2026-01-03"#) && !after.has(r#"<time datetime="2026-01-01"#));
    let before = b.get("/dashboard/logs?to=2026-01-02").await;
    before.assert_has(r#"<time datetime="2026-01-01"#);
    assert!(!before.has(r#"<time datetime="2026-01-03"#) && !before.has("<code>fp</code>"));
    b.get("/dashboard/logs?from=2026-02-01").await.assert_has("No log events match.");

    // Paging keeps the type and the range.
    let sapi = b.get("/dashboard/logs?type=sapi&from=2026-01-03&to=2026-01-03").await;
    sapi.assert_has("Page 1 of 2 (29 in all)");
    assert!(pager_link(&sapi, "prev").is_none());
    let next = pager_link(&sapi, "next").unwrap();
    assert_eq!(next, "/dashboard/logs?type=sapi&from=2026-01-03&to=2026-01-03&page=1");
    let page2 = b.get(&next).await;
    page2.assert_has("Page 2 of 2 (29 in all)");
    assert_eq!(page2.body.matches("<code>sapi</code>").count(), 4);
    assert!(!page2.has("<code>fp</code>"));
    assert_eq!(pager_link(&page2, "prev").unwrap(), "/dashboard/logs?type=sapi&from=2026-01-03&to=2026-01-03&page=0");

    // A code Callsign does not write, a date that is not one, a backwards range: said plainly, nothing listed.
    let unknown = b.get("/dashboard/logs?type=nope&from=2026-01-03").await;
    assert_eq!(unknown.status, 400);
    unknown.assert_has(r#"<div class="alert error" role="alert">“nope” is not an event type Callsign records. Pick one from the list.</div>"#);
    unknown.assert_has(r#"value="nope""#);
    assert!(!unknown.has("<tbody>"));
    let bad_day = b.get("/dashboard/logs?from=2026-02-30").await;
    bad_day.assert_has("From: “2026-02-30” is not a date; use YYYY-MM-DD.");
    b.get("/dashboard/logs?from=2026-01-04&to=2026-01-03").await.assert_has("The From date is after the To date.");

    // One event: titled with its type's description, named application, dates as on the list.
    let e = &logs(&t, &token, "type:fp").await[0];
    let page = b.get(&format!("/dashboard/logs/{}", e["log_id"].as_str().unwrap())).await;
    assert_eq!(page.status, 200);
    page.assert_has("<title>Wrong email or password. · Callsign Dashboard</title>");
    page.assert_has("<h1>Wrong email or password.</h1>");
    page.assert_has(r#"<li><a href="/dashboard/logs">Logs</a></li><li><span aria-current="page">Wrong email or password.</span></li>"#);
    page.assert_has(r#"<span class="ago">2 days ago</span>"#);
    let sapi_event = &logs(&t, &token, "type:sapi").await[0];
    let page = b.get(&format!("/dashboard/logs/{}", sapi_event["log_id"].as_str().unwrap())).await;
    page.assert_has("<h1>API Operation</h1>");
    page.assert_has(&format!(r#"<span title="Client id {bootstrap}">Callsign Management (bootstrap)</span>"#));
    t.stop().await;
}

#[tokio::test]
async fn the_dashboard_works_on_postgres() {
    let Some(t) = TestApp::spawn_postgres().await else { return };
    let token = t.mgmt_token().await;
    let mut b = setup_operator(&t, "ops@example.com").await;
    b.submit(PAGE, "/dashboard/mfa/phone/factor", &[("enabled", "on")])
        .await
        .assert_redirect("/dashboard/mfa/phone#factor");
    let (_, f) = t.get(&token, "/api/v2/guardian/factors").await;
    assert_eq!(f[0]["enabled"], true);
    b.submit(PAGE, "/dashboard/mfa/phone/test", &[("to", "+14155552671"), ("channel", "sms")]).await;
    b.get("/dashboard/inbox").await.assert_has("+14155552671");
    let url = bootstrap_file(&t)["dashboard_setup_url"].as_str().unwrap().to_owned();
    assert_eq!(b.get(&url).await.status, 404);
    t.stop().await;
}

#[test]
fn the_cli_prints_a_fresh_setup_link() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/c.db", dir.path().display());
    let data = dir.path().join("data");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_callsign"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CALLSIGN_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .args(["--database-url", &db, "--data-dir", data.to_str().unwrap(), "admin", "dashboard-link"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let url = String::from_utf8(out.stdout).unwrap();
    assert!(url.trim().starts_with("http://127.0.0.1:8080/dashboard/setup/"), "{url}");
    assert_eq!(url.lines().count(), 1);
    // The first start also wrote one to the bootstrap file, a different one; the log does not contain either.
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("bootstrap-credentials.json")).unwrap()).unwrap();
    let in_file = file["dashboard_setup_url"].as_str().unwrap();
    assert_ne!(in_file, url.trim());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(in_file) && !stderr.contains(url.trim()), "{stderr}");
}

/// The setup link submitted from 20 browsers at the same moment, each with another email: one operator is made.
async fn the_setup_link_makes_one_operator_under_parallel_submissions(t: TestApp) {
    let token = t.mgmt_token().await;
    let url = bootstrap_file(&t)["dashboard_setup_url"].as_str().unwrap().to_owned();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let mut b = Browser::new(&t);
        let (barrier, url) = (barrier.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let page = b.get(&url).await;
            let csrf = page.csrf();
            let email = format!("ops{i}@example.com");
            barrier.wait().await;
            b.post(&url, &[("csrf", &csrf), ("email", &email), ("password", PW)]).await
        }));
    }
    let mut pages = Vec::new();
    for task in tasks {
        pages.push(task.await.unwrap());
    }
    let made = pages.iter().filter(|p| p.status == 303 && p.location.as_deref() == Some("/dashboard")).count();
    assert_eq!(made, 1, "{:?}", pages.iter().map(|p| (p.status, &p.location)).collect::<Vec<_>>());
    let (_, users) = t.get(&token, "/api/v2/users?per_page=50").await;
    let operators = users
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["app_metadata"]["roles"].as_array().is_some_and(|r| r.contains(&json!("callsign:admin"))))
        .count();
    assert_eq!(operators, 1, "{users}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_setup_link_makes_one_operator_under_parallel_submissions_on_sqlite() {
    the_setup_link_makes_one_operator_under_parallel_submissions(TestApp::spawn().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_setup_link_makes_one_operator_under_parallel_submissions_on_postgres() {
    let Some(t) = TestApp::spawn_postgres().await else { return };
    the_setup_link_makes_one_operator_under_parallel_submissions(t).await;
}

#[tokio::test]
async fn the_overview_shows_the_steps_done_and_the_last_days_figures() {
    // A new install: nothing done but the tenant's name.
    let t = TestApp::spawn().await;
    let mut b = setup_operator(&t, "ops@example.com").await;
    let page = b.get("/dashboard").await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_has("<h1>Overview</h1>");
    page.assert_has(r#"<a href="/dashboard" aria-current="page">Overview</a>"#);
    page.assert_has(r#"<li class="todo"><span class="check" aria-hidden="true">○</span><span><a href="/dashboard/mfa/phone#factor">Turn the phone factor on</a>"#);
    page.assert_has("0 of 6 steps done.");
    page.assert_has(r#"<span class="tile-figure">0</span><span class="tile-label">SMS sent</span>"#);
    page.assert_has("Healthy. Nothing sent from this node in the last minute.");
    t.stop().await;

    // The phone factor and recovery codes on (and an application), then one enrollment by SMS: its steps are done
    // and the SMS is counted.
    let m = common::mfa::setup_with(|_| {}, &["sms"]).await;
    let mut b = setup_operator(&m.t, "ops@example.com").await;
    m.enroll().await;
    m.logged("gd_send_sms", 1).await;
    let page = b.get("/dashboard").await;
    for step in [
        "/dashboard/mfa/phone#factor\">Turn the phone factor on",
        "/dashboard/settings#recovery\">Turn recovery codes on",
        "/dashboard/applications\">Create an application",
    ] {
        page.assert_has(&format!(r#"<li class="done"><span class="check" aria-hidden="true">✓</span><span><a href="{step}</a><span class="visually-hidden"> (done)</span>"#));
    }
    page.assert_has(r#"<a href="/dashboard/mfa/phone#provider">Choose a provider that reaches real phones</a><span class="visually-hidden"> (to do)</span>"#);
    page.assert_has(r#"<a href="/dashboard/logs?type=gd_send_sms"><span class="tile-figure">1</span><span class="tile-label">SMS sent</span>"#);
    page.assert_has(r#"<span class="tile-figure">0</span><span class="tile-label">SMS failed</span>"#);
    page.assert_has("Healthy. 0 of 1 sends from this node failed in the last minute.");
    // A day later the SMS is no longer in the last 24 hours.
    m.t.clock.advance(Duration::from_secs(24 * 3600 + 60));
    let (mut b, _) = sign_in(&m.t, "ops@example.com", PW).await;
    let page = b.get("/dashboard").await;
    page.assert_has(r#"<span class="tile-figure">0</span><span class="tile-label">SMS sent</span>"#);
    m.t.stop().await;
}
