//! `docs/openapi.json` describes routes that exist: every documented path and method reaches a handler on a real
//! server (neither 405 nor the router's fallback 404), every Management operation states its scopes, every `$ref`
//! resolves, every documented string length limit and `pattern` is the one the server enforces, and an undecodable
//! path parameter answers a documented Management error.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::TestApp;
use reqwest::Method;
use serde_json::{Value, json};

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

fn load() -> Value {
    let text = std::fs::read_to_string(SPEC).expect("docs/openapi.json is readable");
    serde_json::from_str(&text).expect("docs/openapi.json is valid JSON")
}

/// Every (path, method, operation) in the document.
fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let paths = spec["paths"].as_object().expect("`paths` is an object");
    let mut out = Vec::new();
    for (path, item) in paths {
        let item = item.as_object().expect("a path item is an object");
        for (method, op) in item {
            if METHODS.contains(&method.as_str()) {
                out.push((path.clone(), method.clone(), op.clone()));
            }
        }
    }
    out
}

/// `/users/{id}/logs` → `/users/x/logs`.
fn fill_params(path: &str) -> String {
    fill_params_with(path, "x")
}

/// `/users/{id}/logs` → `/users/<value>/logs`.
fn fill_params_with(path: &str, value: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("balanced braces in a path") + start;
        out.push_str(value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Send one request as the test describes it: a Management token under `/api/v2`, `{}` for writes.
async fn probe(t: &TestApp, token: &str, method: &str, path: &str) -> (u16, Value) {
    let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut req = t.http.request(m, t.url(&fill_params(path)));
    if path.starts_with("/api/v2") {
        req = req.bearer_auth(token);
    }
    if matches!(method, "post" | "put" | "patch") {
        req = req.header("content-type", "application/json").body("{}");
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The router's own answers for "no such route".
fn is_missing_route(status: u16, body: &Value) -> bool {
    status == 405 || (status == 404 && body.get("message").and_then(Value::as_str) == Some("Not Found"))
}

#[test]
fn the_document_is_openapi_3_1_and_its_refs_resolve() {
    let spec = load();
    assert!(spec["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "openapi: {}", spec["openapi"]);
    assert!(spec["servers"].as_array().is_some_and(|s| s.iter().any(|s| s["url"] == "http://127.0.0.1:8080")));
    assert!(!operations(&spec).is_empty());

    fn walk(spec: &Value, v: &Value, bad: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                    let ok = r.strip_prefix('#').is_some_and(|p| spec.pointer(p).is_some());
                    if !ok {
                        bad.push(r.to_owned());
                    }
                }
                m.values().for_each(|x| walk(spec, x, bad));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(spec, x, bad)),
            _ => {}
        }
    }
    let mut bad = Vec::new();
    walk(&spec, &spec, &mut bad);
    assert!(bad.is_empty(), "unresolved $refs: {bad:?}");

    let mut ids: Vec<String> =
        operations(&spec).iter().filter_map(|(_, _, op)| op["operationId"].as_str().map(str::to_owned)).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "operationIds are unique");
}

#[test]
fn every_management_operation_requires_a_scope() {
    let spec = load();
    let schemes = spec["components"]["securitySchemes"].as_object().expect("security schemes are declared");
    let mut checked = 0;
    for (path, method, op) in operations(&spec) {
        if !path.starts_with("/api/v2") {
            continue;
        }
        let reqs = op["security"].as_array().unwrap_or_else(|| panic!("{method} {path}: no security requirement"));
        assert!(!reqs.is_empty(), "{method} {path}: empty security");
        for r in reqs {
            let r = r.as_object().unwrap();
            assert!(!r.is_empty(), "{method} {path}: an anonymous alternative");
            for (scheme, scopes) in r {
                assert!(schemes.contains_key(scheme), "{method} {path}: unknown scheme {scheme}");
                let scopes = scopes.as_array().unwrap();
                assert!(
                    !scopes.is_empty() && scopes.iter().all(|s| s.as_str().is_some_and(|s| s.contains(':'))),
                    "{method} {path}: needs at least one scope, got {scopes:?}"
                );
            }
        }
        checked += 1;
    }
    assert!(checked > 0, "the document has Management operations");
}

#[tokio::test]
async fn every_documented_route_exists() {
    let spec = load();
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;

    // The check can tell a missing route from a present one.
    let (s, b) = probe(&t, &token, "get", "/api/v2/no-such-thing").await;
    assert!(is_missing_route(s, &b), "{s} {b}");
    let (s, b) = probe(&t, &token, "put", "/api/v2/clients").await;
    assert!(is_missing_route(s, &b), "{s} {b}");
    let (s, b) = probe(&t, &token, "get", "/no-such-thing").await;
    assert!(is_missing_route(s, &b), "{s} {b}");

    let mut missing = Vec::new();
    let mut undocumented = Vec::new();
    for (path, method, op) in operations(&spec) {
        let (s, b) = probe(&t, &token, &method, &path).await;
        let line = format!("{} {path} → {s} {b}", method.to_uppercase());
        if is_missing_route(s, &b) {
            missing.push(line);
        } else if path.starts_with("/api/v2") && op["responses"].get(s.to_string()).is_none() {
            // A Management route answers these probes with a status its operation documents.
            undocumented.push(line);
        }
    }
    assert!(missing.is_empty(), "documented routes that do not exist:\n{}", missing.join("\n"));
    assert!(undocumented.is_empty(), "answers with an undocumented status:\n{}", undocumented.join("\n"));
    t.stop().await;
}

/// A Management path parameter that does not decode (not UTF-8 once percent-decoded) answers a documented 400 in the
/// Management error shape, `invalid_uri`, not the router's plain-text rejection.
#[tokio::test]
async fn undecodable_path_parameters_answer_documented_management_errors() {
    let spec = load();
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (path, method, op) in operations(&spec) {
        if !path.starts_with("/api/v2/") || !path.contains('{') {
            continue;
        }
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut req = t.http.request(m, t.url(&fill_params_with(&path, "%FF"))).bearer_auth(&token);
        if matches!(method.as_str(), "post" | "put" | "patch") {
            req = req.header("content-type", "application/json").body("{}");
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let json = resp.headers().get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap_or(Value::Null);
        let documented = op["responses"].get(status.to_string()).is_some();
        if status != 400 || !json || body["errorCode"] != "invalid_uri" || body["statusCode"] != 400 || !documented {
            wrong.push(format!("{} {path} → {status} (documented: {documented}) {body}", method.to_uppercase()));
        }
        checked += 1;
    }
    assert!(checked > 20, "only {checked} operations with path parameters");
    assert!(wrong.is_empty(), "undecodable path parameters:\n{}", wrong.join("\n"));
    t.stop().await;
}

/// How a test string of a given length is made for a field.
#[derive(Clone, Copy)]
enum Fill {
    /// Free text: `é` repeated (two bytes each in UTF-8, so a limit counted in bytes instead of characters shows).
    Text,
    /// A valid international number, different each time, padded with trailing spaces (which the parser trims).
    Phone,
    /// An alphanumeric sender ID: `A` repeated.
    Sender,
    /// An https URL padded with `a` to the length.
    Url,
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn seq() -> usize {
    SEQ.fetch_add(1, Ordering::SeqCst)
}

fn fill(kind: Fill, n: usize) -> String {
    match kind {
        Fill::Text => "é".repeat(n),
        Fill::Phone => {
            let mut s = format!("+1 415 555 {:04}", 2600 + seq() % 1000);
            s.truncate(n);
            while s.chars().count() < n {
                s.push(' ');
            }
            s
        }
        Fill::Sender => "A".repeat(n),
        Fill::Url => {
            let base = "https://cdn.example/";
            format!("{base}{}", "a".repeat(n.saturating_sub(base.len())))
        }
    }
}

/// One documented string limit: the schema properties that state it (JSON pointers; they must agree), and a
/// Management request that puts a string of a chosen length there.
struct Limit {
    pointers: Vec<String>,
    method: Method,
    path: String,
    fill: Fill,
    body: Box<dyn Fn(String) -> Value>,
}

fn limit(pointers: &[&str], method: Method, path: &str, fill: Fill, body: impl Fn(String) -> Value + 'static) -> Limit {
    let pointers = pointers.iter().map(|p| format!("/components/schemas/{p}")).collect();
    Limit { pointers, method, path: path.to_owned(), fill, body: Box::new(body) }
}

/// Every schema in the document with a `maxLength`, outside responses, as JSON pointers.
fn documented_max_lengths(spec: &Value) -> Vec<String> {
    fn walk(v: &Value, at: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if m.contains_key("maxLength") {
                    out.push(at.to_owned());
                }
                for (k, x) in m {
                    if k != "responses" {
                        walk(x, &format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out);
                    }
                }
            }
            Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| walk(x, &format!("{at}/{i}"), out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(spec, "", &mut out);
    out
}

fn length(spec: &Value, pointer: &str, key: &str) -> Option<usize> {
    let schema = spec.pointer(pointer).unwrap_or_else(|| panic!("{pointer} is not in docs/openapi.json"));
    schema.get(key).map(|v| usize::try_from(v.as_u64().unwrap()).unwrap())
}

/// The string limits docs/openapi.json documents are the ones the server enforces, counted in characters: a value
/// of exactly `maxLength` characters is accepted, one more is refused with 400, and where a `minLength` is given,
/// one fewer than it is refused with 400. Every `maxLength` of a request schema in the document is checked here.
#[tokio::test]
async fn documented_string_limits_are_the_enforced_ones() {
    let spec = load();
    // Nothing here should reach Twilio; if something did, it would find a closed port on this machine.
    let t = TestApp::spawn_with(|raw| raw.set_provider_base_url("twilio", "http://127.0.0.1:9")).await;
    let token = t.mgmt_token().await;

    // Fixtures: a user with a phone method, a customised Unified Phone Experience template, and a Twilio provider
    // left disabled (so Guardian keeps the development provider, which the template's test message goes through).
    let (s, u) = t
        .post(
            &token,
            "/api/v2/users",
            json!({"connection": "Username-Password-Authentication", "email": "limits@example.com",
                   "password": "Str0ng-Passw0rd"}),
        )
        .await;
    assert_eq!(s, 201, "{u}");
    let raw_uid = u["user_id"].as_str().unwrap().to_owned();
    let uid = common::enc(&raw_uid);
    let (s, m) = t
        .post(
            &token,
            &format!("/api/v2/users/{uid}/authentication-methods"),
            json!({"type": "phone", "phone_number": "+14155550100"}),
        )
        .await;
    assert_eq!(s, 201, "{m}");
    let mid = common::enc(m["id"].as_str().unwrap());
    let (s, tpl) = t.post(&token, "/api/v2/branding/phone/templates", json!({"type": "blocked_account"})).await;
    assert_eq!(s, 201, "{tpl}");
    let tid = tpl["id"].as_str().unwrap().to_owned();
    let twilio_cfg = json!({"sid": "AC0123456789abcdef0123456789abcdef", "default_from": "+15005550006",
                            "delivery_methods": ["text"]});
    let (s, p) = t
        .post(
            &token,
            "/api/v2/branding/phone/providers",
            json!({"name": "twilio", "disabled": true, "configuration": twilio_cfg,
                   "credentials": {"auth_token": "0123456789abcdef0123456789abcdef"}}),
        )
        .await;
    assert_eq!(s, 201, "{p}");
    let pid = p["id"].as_str().unwrap().to_owned();

    let (post, put, patch) = (Method::POST, Method::PUT, Method::PATCH);
    let user = format!("/api/v2/users/{uid}");
    let methods = format!("/api/v2/users/{uid}/authentication-methods");
    let template = format!("/api/v2/branding/phone/templates/{tid}");
    let provider = format!("/api/v2/branding/phone/providers/{pid}");
    let mut limits = vec![
        limit(&["ClientFields/properties/name"], post.clone(), "/api/v2/clients", Fill::Text, |v| json!({"name": v})),
        limit(
            &["ResourceServerFields/properties/name"],
            post.clone(),
            "/api/v2/resource-servers",
            Fill::Text,
            |v| json!({"name": v, "identifier": format!("https://api-{}.example/", seq())}),
        ),
        limit(
            &["ResourceServerFields/properties/identifier"],
            post.clone(),
            "/api/v2/resource-servers",
            Fill::Text,
            |v| json!({"name": "limits", "identifier": format!("{v}")}),
        ),
        limit(
            &["ResourceServerFields/properties/scopes/items/properties/value"],
            post.clone(),
            "/api/v2/resource-servers",
            Fill::Text,
            |v| json!({"name": "limits", "identifier": format!("https://api-{}.example/", seq()), "scopes": [{"value": v}]}),
        ),
        limit(
            &["ResourceServerFields/properties/scopes/items/properties/description"],
            post.clone(),
            "/api/v2/resource-servers",
            Fill::Text,
            |v| {
                json!({"name": "limits", "identifier": format!("https://api-{}.example/", seq()),
                       "scopes": [{"value": "read:x", "description": v}]})
            },
        ),
        limit(
            &["ClientFields/properties/description"],
            post.clone(),
            "/api/v2/clients",
            Fill::Text,
            |v| json!({"name": "limits", "description": v}),
        ),
        limit(&["UserFields/properties/user_id"], post.clone(), "/api/v2/users", Fill::Text, |v| {
            json!({"connection": "Username-Password-Authentication", "email": format!("limits-{}@example.com", seq()),
                   "password": "Str0ng-Passw0rd", "user_id": v})
        }),
        limit(
            &["TenantSettingsUpdate/properties/friendly_name"],
            patch.clone(),
            "/api/v2/tenants/settings",
            Fill::Text,
            |v| json!({"friendly_name": v}),
        ),
        limit(
            &["AuthenticationMethodCreate/properties/phone_number"],
            post.clone(),
            &methods,
            Fill::Phone,
            |v| json!({"type": "phone", "phone_number": v}),
        ),
        limit(
            &["AuthenticationMethodCreate/properties/name"],
            post.clone(),
            &methods,
            Fill::Text,
            |v| json!({"type": "phone", "phone_number": fill(Fill::Phone, 15), "name": v}),
        ),
        limit(
            &["AuthenticationMethodUpdate/properties/name"],
            patch.clone(),
            &format!("{methods}/{mid}"),
            Fill::Text,
            |v| json!({"name": v}),
        ),
        limit(
            &["PhoneTemplateContent/properties/from"],
            patch.clone(),
            &template,
            Fill::Text,
            |v| json!({"content": {"from": v}}),
        ),
        limit(
            &["PhoneTemplateContent/properties/body/properties/text"],
            patch.clone(),
            &template,
            Fill::Text,
            |v| json!({"content": {"body": {"text": v}}}),
        ),
        limit(
            &["PhoneTemplateContent/properties/body/properties/voice"],
            patch.clone(),
            &template,
            Fill::Text,
            |v| json!({"content": {"body": {"voice": v}}}),
        ),
        limit(&["PhoneTry/properties/to"], post.clone(), &format!("{template}/try"), Fill::Phone, |v| json!({"to": v})),
        limit(
            &[
                "PhoneProviderCreate/properties/credentials/properties/auth_token",
                "PhoneProviderUpdate/properties/credentials/properties/auth_token",
            ],
            patch.clone(),
            &provider,
            Fill::Text,
            |v| json!({"credentials": {"auth_token": v}}),
        ),
    ];
    for field in ["name", "nickname", "given_name", "family_name", "picture"] {
        limits.push(limit(
            &[&format!("UserFields/properties/{field}")],
            patch.clone(),
            &user,
            Fill::Text,
            move |v| json!({ field: v }),
        ));
    }
    for field in ["logo_url", "favicon_url"] {
        limits.push(limit(
            &[&format!("BrandingUpdate/properties/{field}")],
            Method::PATCH,
            "/api/v2/branding",
            Fill::Url,
            move |v| json!({ field: v }),
        ));
    }
    for factor in ["phone", "sms"] {
        let path = format!("/api/v2/guardian/factors/{factor}/providers/twilio");
        limits.push(limit(
            &["TwilioSettingsUpdate/properties/auth_token"],
            put.clone(),
            &path,
            Fill::Text,
            |v| json!({ "auth_token": v }),
        ));
        // The alphanumeric sender ID's 11 characters (the E.164 form and the SIDs are `pattern`s, checked below).
        limits.push(limit(
            &["TwilioSettingsUpdate/properties/from/anyOf/3"],
            put.clone(),
            &path,
            Fill::Sender,
            |v| json!({ "from": v }),
        ));
    }
    for (field, other) in
        [("enrollment_message", "verification_message"), ("verification_message", "enrollment_message")]
    {
        for factor in ["phone", "sms"] {
            let path = format!("/api/v2/guardian/factors/{factor}/templates");
            limits.push(limit(
                &[&format!("PhoneTemplates/properties/{field}")],
                put.clone(),
                &path,
                Fill::Text,
                // A code message carries the code: `{{code}}` then filler, `v`'s length in all.
                move |v| json!({ field: format!("{{{{code}}}}{}", v.chars().skip(8).collect::<String>()), other: "{{code}}" }),
            ));
        }
    }
    for field in ["email", "email_locale"] {
        let uid = raw_uid.clone();
        limits.push(limit(
            &[&format!("EnrollmentTicketRequest/properties/{field}")],
            post.clone(),
            "/api/v2/guardian/enrollments/ticket",
            Fill::Text,
            move |v| json!({"user_id": uid, field: v}),
        ));
    }
    let base = twilio_cfg.clone();
    limits.push(limit(
        &[
            "PhoneProviderCreate/properties/configuration/properties/default_from/anyOf/2",
            "PhoneProviderUpdate/properties/configuration/properties/default_from/anyOf/2",
        ],
        patch.clone(),
        &provider,
        Fill::Sender,
        move |v| {
            let mut c = base.clone();
            c["default_from"] = json!(v);
            json!({"name": "twilio", "configuration": c})
        },
    ));

    // Sign-up (open for this test) and the connection's display name.
    let (s, v) = t.get(&token, "/api/v2/connections").await;
    assert_eq!(s, 200, "{v}");
    let connection = format!("/api/v2/connections/{}", v[0]["id"].as_str().unwrap());
    let (s, v) = t.patch(&token, &connection, json!({"options": {"disable_signup": false}})).await;
    assert_eq!(s, 200, "{v}");
    limits.push(limit(
        &["ConnectionUpdate/properties/display_name"],
        patch.clone(),
        &connection,
        Fill::Text,
        |v| json!({"display_name": v}),
    ));
    for field in ["given_name", "family_name", "name", "nickname", "picture", "user_metadata/additionalProperties"] {
        let cid = t.client_id.clone();
        limits.push(limit(
            &[&format!("SignupRequest/properties/{field}")],
            post.clone(),
            "/dbconnections/signup",
            Fill::Text,
            move |v| {
                let mut b = json!({"client_id": cid, "connection": "Username-Password-Authentication",
                                   "email": format!("signup-{}@example.com", seq()), "password": "Str0ng-Passw0rd"});
                if field.starts_with("user_metadata") {
                    b["user_metadata"] = json!({ "note": v });
                } else {
                    b[field] = json!(v);
                }
                b
            },
        ));
    }

    // Every documented maxLength is checked.
    let covered: Vec<&String> = limits.iter().flat_map(|l| &l.pointers).collect();
    let unchecked: Vec<String> = documented_max_lengths(&spec).into_iter().filter(|p| !covered.contains(&p)).collect();
    assert!(unchecked.is_empty(), "maxLength without a check in this test: {unchecked:?}");

    let mut wrong = Vec::new();
    for l in &limits {
        let max = length(&spec, &l.pointers[0], "maxLength").unwrap();
        let min = length(&spec, &l.pointers[0], "minLength");
        for p in &l.pointers[1..] {
            assert_eq!(length(&spec, p, "maxLength"), Some(max), "{p} and {} disagree", l.pointers[0]);
            assert_eq!(length(&spec, p, "minLength"), min, "{p} and {} disagree", l.pointers[0]);
        }
        let mut cases = vec![(max, true), (max + 1, false)];
        if let Some(min) = min.filter(|m| *m > 0) {
            cases.push((min - 1, false));
        }
        for (n, ok) in cases {
            let body = (l.body)(fill(l.fill, n));
            let r =
                t.http.request(l.method.clone(), t.url(&l.path)).bearer_auth(&token).json(&body).send().await.unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            let good = if ok { (200..300).contains(&status) } else { status == 400 };
            if !good {
                let want = if ok { "2xx" } else { "400" };
                let text: String = text.chars().take(300).collect();
                wrong.push(format!(
                    "{} {} {} with {n} characters: {status} (want {want}) {text}",
                    l.method, l.path, l.pointers[0]
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "documented limits the server does not enforce as documented:\n{}", wrong.join("\n"));
    t.stop().await;
}

/// Whether `v` is valid under `schema` as far as this test reads schemas: `anyOf`, `type`, `const`, `pattern`,
/// `minLength` and `maxLength` (counted in characters).
fn doc_accepts(schema: &Value, v: &Value) -> bool {
    if let Some(alts) = schema.get("anyOf").and_then(Value::as_array)
        && !alts.iter().any(|a| doc_accepts(a, v))
    {
        return false;
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ty = match v {
            Value::Null => "null",
            Value::String(_) => "string",
            _ => "other",
        };
        if !types.contains(&ty) {
            return false;
        }
    }
    if schema.get("const").is_some_and(|c| c != v) {
        return false;
    }
    if let Some(s) = v.as_str() {
        let n = s.chars().count();
        if let Some(p) = schema.get("pattern").and_then(Value::as_str)
            && !regex::Regex::new(p).unwrap_or_else(|e| panic!("pattern {p}: {e}")).is_match(s)
        {
            return false;
        }
        if schema.get("maxLength").and_then(Value::as_u64).is_some_and(|m| n as u64 > m)
            || schema.get("minLength").and_then(Value::as_u64).is_some_and(|m| (n as u64) < m)
        {
            return false;
        }
    }
    true
}

/// Every schema in the document with a `pattern`, outside responses, as JSON pointers.
fn documented_patterns(spec: &Value) -> Vec<String> {
    fn walk(v: &Value, at: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if m.get("pattern").is_some_and(Value::is_string) {
                    out.push(at.to_owned());
                }
                for (k, x) in m {
                    if k != "responses" {
                        walk(x, &format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out);
                    }
                }
            }
            Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| walk(x, &format!("{at}/{i}"), out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(spec, "", &mut out);
    out
}

/// One documented property with `pattern`s: the schemas that state it (they must be the same), a Management request
/// that puts a value there, and values with whether they are meant to be accepted.
struct Shape {
    pointers: Vec<String>,
    method: Method,
    path: String,
    samples: Vec<(Value, bool)>,
    body: Box<dyn Fn(Value) -> Value>,
}

fn shape(
    pointers: &[&str],
    method: Method,
    path: &str,
    samples: &[(&str, bool)],
    body: impl Fn(Value) -> Value + 'static,
) -> Shape {
    Shape {
        pointers: pointers.iter().map(|p| format!("/components/schemas/{p}")).collect(),
        method,
        path: path.to_owned(),
        samples: samples.iter().map(|(v, ok)| (json!(v), *ok)).collect(),
        body: Box::new(body),
    }
}

const ACCOUNT_SIDS: &[(&str, bool)] = &[
    ("AC0123456789abcdef0123456789abcdef", true),
    ("AC0123456789ABCDEF0123456789ABCDEF", true),
    ("AC0123456789aBcDeF0123456789AbCdEf", true),
    ("AC0123456789abcdef0123456789abcde", false),
    ("AC0123456789abcdef0123456789abcdef0", false),
    ("ac0123456789abcdef0123456789abcdef", false),
    ("MG0123456789abcdef0123456789abcdef", false),
    ("AC0123456789abcdeg0123456789abcdef", false),
    ("AC0123456789abcdef0123456789abcde\u{e9}", false),
    ("AC1", false),
    ("", false),
];

const SENDERS: &[(&str, bool)] = &[
    ("+15005550006", true),
    ("+12345678", true),
    ("+123456789012345", true),
    ("+1234567", false),
    ("+1234567890123456", false),
    ("+0123456789", false),
    ("+1 415 555 0100", false),
    ("+", false),
    ("Callsign", true),
    ("A", true),
    ("Acme Bank 1", true),
    ("1234567890a", true),
    ("ABCDEFGHIJKL", false),
    ("15005550006", false),
    ("Acme-Bank", false),
    ("Caf\u{e9}", false),
    ("   ", false),
];

/// The `pattern`s docs/openapi.json documents are the ones the server enforces: for each property with one, values
/// the document accepts (read with a real regular-expression engine) get a 2xx and values it refuses a 400, and
/// each sample's verdict is the one this test means (so a loosened pattern shows as well as a loosened check).
/// Every `pattern` of a request schema in the document is covered here.
#[tokio::test]
async fn documented_patterns_are_the_enforced_ones() {
    let spec = load();
    let t = TestApp::spawn_with(|raw| raw.set_provider_base_url("twilio", "http://127.0.0.1:9")).await;
    let token = t.mgmt_token().await;
    // A Twilio provider left disabled (Guardian keeps the development provider), for the PATCHes.
    let twilio_cfg = json!({"sid": "AC0123456789abcdef0123456789abcdef", "default_from": "+15005550006",
                            "delivery_methods": ["text"]});
    let (s, p) = t
        .post(
            &token,
            "/api/v2/branding/phone/providers",
            json!({"name": "twilio", "disabled": true, "configuration": twilio_cfg,
                   "credentials": {"auth_token": "0123456789abcdef0123456789abcdef"}}),
        )
        .await;
    assert_eq!(s, 201, "{p}");
    let provider = format!("/api/v2/branding/phone/providers/{}", p["id"].as_str().unwrap());
    let messaging_service_sids: Vec<(String, bool)> = ACCOUNT_SIDS
        .iter()
        .map(|(v, ok)| {
            let v = if let Some(rest) = v.strip_prefix("AC") {
                format!("MG{rest}")
            } else if let Some(rest) = v.strip_prefix("MG") {
                format!("AC{rest}")
            } else {
                (*v).to_owned()
            };
            (v, *ok)
        })
        .collect();
    let mssids: Vec<(&str, bool)> = messaging_service_sids.iter().map(|(v, ok)| (v.as_str(), *ok)).collect();
    let upe_senders: Vec<(&str, bool)> = SENDERS.iter().copied().chain([("", false)]).collect();
    let guardian_senders: Vec<(&str, bool)> = SENDERS.iter().copied().chain([("", true)]).collect();

    let (post, put, patch) = (Method::POST, Method::PUT, Method::PATCH);
    let mut shapes = vec![shape(
        &["UserFields/properties/user_id"],
        post.clone(),
        "/api/v2/users",
        &[("abc-1", true), ("a|b", false)],
        |v| {
            json!({"connection": "Username-Password-Authentication", "email": format!("pattern-{}@example.com", seq()),
                   "password": "Str0ng-Passw0rd", "user_id": v})
        },
    )];
    for factor in ["phone", "sms"] {
        let path = format!("/api/v2/guardian/factors/{factor}/providers/twilio");
        for (field, samples) in
            [("sid", ACCOUNT_SIDS), ("messaging_service_sid", mssids.as_slice()), ("from", guardian_senders.as_slice())]
        {
            shapes.push(shape(
                &[&format!("TwilioSettingsUpdate/properties/{field}")],
                put.clone(),
                &path,
                samples,
                move |v| json!({ field: v }),
            ));
        }
    }
    for (field, samples) in
        [("sid", ACCOUNT_SIDS), ("mssid", mssids.as_slice()), ("default_from", upe_senders.as_slice())]
    {
        let base = twilio_cfg.clone();
        shapes.push(shape(
            &[
                &format!("PhoneProviderCreate/properties/configuration/properties/{field}"),
                &format!("PhoneProviderUpdate/properties/configuration/properties/{field}"),
            ],
            patch.clone(),
            &provider,
            samples,
            move |v| {
                let mut c = base.clone();
                c[field] = v;
                json!({"name": "twilio", "configuration": c})
            },
        ));
    }

    const COLOURS: &[(&str, bool)] = &[
        ("#fff", true),
        ("#0B1A33", true),
        ("#0b1a33", true),
        ("#12345", false),
        ("#1234567", false),
        ("#ggg", false),
        ("0b1a33", false),
        ("blue", false),
        ("", false),
        ("#fff ", false),
    ];
    for field in ["primary", "page_background"] {
        shapes.push(shape(
            &[&format!("BrandingUpdate/properties/colors/properties/{field}")],
            patch.clone(),
            "/api/v2/branding",
            COLOURS,
            move |v| json!({"colors": { field: v }}),
        ));
    }
    // The destination policy's country codes and calling-code prefixes (the server also refuses well-formed codes
    // no country has, such as `XX`, which a pattern cannot say).
    let policy = "/api/v2/guardian/factors/phone/destination-policy";
    shapes.push(shape(
        &["PhoneDestinationCountries/properties/countries/items"],
        put.clone(),
        policy,
        &[("GB", true), ("gb", true), ("G", false), ("GBR", false), ("1A", false), ("", false)],
        |v| json!({"sms": {"mode": "deny", "countries": [v]}}),
    ));
    shapes.push(shape(
        &["PhoneDestinationCountries/properties/calling_codes/items"],
        put.clone(),
        policy,
        &[
            ("+44", true),
            ("44", true),
            ("+1416", true),
            ("+123456", true),
            ("+1234567", false),
            ("+0", false),
            ("++44", false),
            ("+44a", false),
            ("+", false),
            ("", false),
        ],
        |v| json!({"voice": {"mode": "deny", "calling_codes": [v]}}),
    ));

    // SMS-pumping detection's trusted segments (the server also refuses well-formed names that are not a country or
    // an address, such as `country:XX` or `ip:300.1.1.1`, which the pattern does not say).
    shapes.push(shape(
        &["PumpingDetectionSettings/properties/trusted/items"],
        put.clone(),
        "/api/v2/guardian/factors/phone/pumping-detection",
        &[
            ("country:GB", true),
            ("country:gb", true),
            ("prefix:+447400123", true),
            ("prefix:447400123", true),
            ("ip:203.0.113.7", true),
            ("ip:2001:db8::1", true),
            ("GB", false),
            ("country:GBR", false),
            ("prefix:+0123", false),
            ("prefix:+4", false),
            ("asn:64500", false),
            ("", false),
        ],
        |v| json!({"trusted": [v]}),
    ));

    // Every documented pattern is covered.
    let covered: Vec<&String> = shapes.iter().flat_map(|s| &s.pointers).collect();
    let unchecked: Vec<String> = documented_patterns(&spec)
        .into_iter()
        .filter(|p| !covered.iter().any(|c| p == *c || p.starts_with(&format!("{c}/"))))
        .collect();
    assert!(unchecked.is_empty(), "pattern without a check in this test: {unchecked:?}");

    let mut wrong = Vec::new();
    for sh in &shapes {
        let schema =
            spec.pointer(&sh.pointers[0]).unwrap_or_else(|| panic!("{} is not in the document", sh.pointers[0]));
        for p in &sh.pointers[1..] {
            assert_eq!(spec.pointer(p), Some(schema), "{p} and {} disagree", sh.pointers[0]);
        }
        for (v, ok) in &sh.samples {
            assert_eq!(doc_accepts(schema, v), *ok, "{}: the document's verdict on {v}", sh.pointers[0]);
            let body = (sh.body)(v.clone());
            let r = t
                .http
                .request(sh.method.clone(), t.url(&sh.path))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            let good = if *ok { (200..300).contains(&status) } else { status == 400 };
            if !good {
                let want = if *ok { "2xx" } else { "400" };
                let text: String = text.chars().take(300).collect();
                wrong.push(format!(
                    "{} {} {} with {v}: {status} (want {want}) {text}",
                    sh.method, sh.path, sh.pointers[0]
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "documented patterns the server does not enforce as documented:\n{}", wrong.join("\n"));
    t.stop().await;
}
