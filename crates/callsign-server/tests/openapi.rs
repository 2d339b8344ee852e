//! `docs/openapi.json` describes routes that exist: every documented path and method reaches a handler on a real
//! server (neither 405 nor the router's fallback 404), every Management operation states its scopes, and every
//! `$ref` resolves.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::TestApp;
use reqwest::Method;
use serde_json::Value;

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
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("balanced braces in a path") + start;
        out.push('x');
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
