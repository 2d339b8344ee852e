//! The Guardian Management API: factor configuration, policies, enrollments, authentication methods, tickets and
//! the development inbox.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::time::Duration;

use callsign_core::guardian::GuardianConfig;
use callsign_core::templates::{DEFAULT_ENROLLMENT, DEFAULT_VERIFICATION};
use callsign_domain::Timestamp;
use callsign_domain::hash::token_hash;
use callsign_store::{Channel, DevMessage, Enrollment, EnrollmentKind, EnrollmentStatus};
use common::{TestApp, enc};
use serde_json::{Value, json};

const PW: &str = "Str0ng-Passw0rd";
/// A Twilio-looking auth token; it must never come back from the API in clear.
const TOKEN: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a0";
/// A Twilio Account SID and Messaging Service SID of the right shape (`AC` / `MG` and 32 hexadecimal digits).
const SID: &str = "AC0123456789abcdef0123456789abcdef";
const SID2: &str = "ACFEDCBA9876543210FEDCBA9876543210";
const MG: &str = "MG42424242424242424242424242424242";

async fn finish(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) })
}

async fn put(t: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value) {
    finish(t.http.put(t.url(path)).bearer_auth(token).json(&body).send().await.unwrap()).await
}

/// The raw text of a GET, to search for things that must not be there.
async fn get_text(t: &TestApp, token: &str, path: &str) -> String {
    let r = t.http.get(t.url(path)).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.text().await.unwrap()
}

async fn create_user(t: &TestApp, token: &str, email: &str) -> String {
    let (s, u) = t
        .post(
            token,
            "/api/v2/users",
            json!({"connection": "Username-Password-Authentication", "email": email, "password": PW}),
        )
        .await;
    assert_eq!(s, 201, "{u}");
    u["user_id"].as_str().unwrap().to_owned()
}

async fn logs_of_type(t: &TestApp, token: &str, ty: &str) -> Vec<Value> {
    let (s, v) = t.get(token, &format!("/api/v2/logs?q=type:{ty}")).await;
    assert_eq!(s, 200, "{v}");
    v.as_array().unwrap().clone()
}

/// Events in one millisecond have no defined order, so tests look for a log by its details.
fn has_details(logs: &[Value], details: Value) -> bool {
    logs.iter().any(|l| l["details"] == details)
}

fn assert_400(r: &(u16, Value), needle: &str) {
    assert_eq!(r.0, 400, "{}", r.1);
    assert_eq!(r.1["statusCode"], 400, "{}", r.1);
    assert_eq!(r.1["error"], "Bad Request", "{}", r.1);
    let m = r.1["message"].as_str().unwrap();
    assert!(m.contains(needle), "`{m}` should contain `{needle}`");
}

fn assert_403(r: &(u16, Value)) {
    assert_eq!(r.0, 403, "{}", r.1);
    assert_eq!(r.1["errorCode"], "insufficient_scope", "{}", r.1);
}

/// `phone|dev_` + 16 alphanumerics → the bare `dev_…` id.
fn bare(id: &Value) -> String {
    let id = id.as_str().unwrap();
    let b = id.strip_prefix("phone|").unwrap_or_else(|| panic!("{id} is not a phone method id"));
    let suffix = b.strip_prefix("dev_").unwrap();
    assert_eq!(suffix.len(), 16, "{id}");
    assert!(suffix.bytes().all(|c| c.is_ascii_alphanumeric()), "{id}");
    b.to_owned()
}

#[tokio::test]
async fn factors_are_listed_in_auth0_order_and_toggled() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let all_off = json!([
        {"name":"sms","enabled":false,"trial_expired":false},{"name":"push-notification","enabled":false,"trial_expired":false},
        {"name":"otp","enabled":false,"trial_expired":false},{"name":"email","enabled":false,"trial_expired":false},
        {"name":"duo","enabled":false,"trial_expired":false},{"name":"webauthn-roaming","enabled":false,"trial_expired":false},
        {"name":"webauthn-platform","enabled":false,"trial_expired":false},{"name":"recovery-code","enabled":false,"trial_expired":false}
    ]);
    assert_eq!(t.get(&token, "/api/v2/guardian/factors").await, (200, all_off.clone()));

    assert_eq!(
        put(&t, &token, "/api/v2/guardian/factors/sms", json!({"enabled": true})).await,
        (200, json!({"enabled": true}))
    );
    assert_eq!(
        put(&t, &token, "/api/v2/guardian/factors/recovery-code", json!({"enabled": true})).await,
        (200, json!({"enabled": true}))
    );
    let (s, v) = t.get(&token, "/api/v2/guardian/factors").await;
    assert_eq!(s, 200);
    let mut expected = all_off.clone();
    expected[0]["enabled"] = json!(true);
    expected[7]["enabled"] = json!(true);
    assert_eq!(v, expected);

    // Unsupported factors can be disabled, not enabled.
    let r = put(&t, &token, "/api/v2/guardian/factors/duo", json!({"enabled": true})).await;
    assert_400(&r, "Callsign does not support the `duo` factor yet");
    assert_eq!(
        put(&t, &token, "/api/v2/guardian/factors/push-notification", json!({"enabled": false})).await,
        (200, json!({"enabled": false}))
    );
    // Unknown factor: 404.
    let (s, v) = put(&t, &token, "/api/v2/guardian/factors/phone", json!({"enabled": true})).await;
    assert_eq!(s, 404, "{v}");
    assert!(v["message"].as_str().unwrap().contains("`phone` does not exist"), "{v}");
    // Body validation.
    assert_400(&put(&t, &token, "/api/v2/guardian/factors/sms", json!({})).await, "Missing required property: enabled");
    assert_400(
        &put(&t, &token, "/api/v2/guardian/factors/sms", json!({"enabled": true, "x": 1})).await,
        "unknown field",
    );
    assert_400(&put(&t, &token, "/api/v2/guardian/factors/sms", json!({"enabled": "yes"})).await, "invalid type");
    // Form bodies work as well.
    let r = finish(
        t.http
            .put(t.url("/api/v2/guardian/factors/sms"))
            .bearer_auth(&token)
            .form(&[("enabled", "false")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r, (200, json!({"enabled": false})));
    assert_eq!(t.get(&token, "/api/v2/guardian/factors").await.1[0]["enabled"], false);

    // Each successful PUT wrote a gd_tenant_update (4), the failed ones none.
    let logs = logs_of_type(&t, &token, "gd_tenant_update").await;
    assert_eq!(logs.len(), 4, "{logs:?}");
    for d in [
        json!({"factor": "sms", "enabled": true}),
        json!({"factor": "recovery-code", "enabled": true}),
        json!({"factor": "push-notification", "enabled": false}),
        json!({"factor": "sms", "enabled": false}),
    ] {
        assert!(has_details(&logs, d.clone()), "{d} in {logs:?}");
    }
    assert!(logs.iter().all(|l| l["client_id"] == json!(t.client_id) && l["description"] == "Guardian tenant update"));
    t.stop().await;
}

#[tokio::test]
async fn message_types_accept_sms_voice_or_both() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let path = "/api/v2/guardian/factors/phone/message-types";
    assert_eq!(t.get(&token, path).await, (200, json!({"message_types": ["sms"]})));
    assert_eq!(
        put(&t, &token, path, json!({"message_types": ["voice", "sms"]})).await,
        (200, json!({"message_types": ["sms", "voice"]}))
    );
    assert_eq!(t.get(&token, path).await, (200, json!({"message_types": ["sms", "voice"]})));
    assert_eq!(
        put(&t, &token, path, json!({"message_types": ["voice"]})).await,
        (200, json!({"message_types": ["voice"]}))
    );
    assert_eq!(t.get(&token, path).await, (200, json!({"message_types": ["voice"]})));
    assert_eq!(
        put(&t, &token, path, json!({"message_types": ["sms", "sms"]})).await,
        (200, json!({"message_types": ["sms"]}))
    );

    let allowed = r#"["sms"], ["voice"] or ["sms","voice"]"#;
    assert_400(&put(&t, &token, path, json!({"message_types": []})).await, allowed);
    assert_400(&put(&t, &token, path, json!({"message_types": ["sms", "email"]})).await, allowed);
    assert_400(&put(&t, &token, path, json!({})).await, "Missing required property: message_types");
    assert_400(&put(&t, &token, path, json!({"message_types": "sms"})).await, "invalid type");
    assert_eq!(t.get(&token, path).await, (200, json!({"message_types": ["sms"]})));

    let logs = logs_of_type(&t, &token, "gd_tenant_update").await;
    assert_eq!(logs.len(), 3);
    assert!(has_details(&logs, json!({"message_types": ["sms"]})));
    assert!(has_details(&logs, json!({"message_types": ["sms", "voice"]})));
    assert!(has_details(&logs, json!({"message_types": ["voice"]})));
    t.stop().await;
}

#[tokio::test]
async fn selected_provider_and_its_legacy_twin() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let phone = "/api/v2/guardian/factors/phone/selected-provider";
    let sms = "/api/v2/guardian/factors/sms/selected-provider";
    assert_eq!(t.get(&token, phone).await, (200, json!({"provider": "auth0"})));
    assert_eq!(put(&t, &token, phone, json!({"provider": "twilio"})).await, (200, json!({"provider": "twilio"})));
    assert_eq!(t.get(&token, sms).await, (200, json!({"provider": "twilio"})));
    assert_eq!(
        put(&t, &token, sms, json!({"provider": "phone-message-hook"})).await,
        (200, json!({"provider": "phone-message-hook"}))
    );
    assert_eq!(t.get(&token, phone).await, (200, json!({"provider": "phone-message-hook"})));

    assert_400(&put(&t, &token, phone, json!({"provider": "nexmo"})).await, "auth0, twilio, phone-message-hook");
    assert_400(&put(&t, &token, sms, json!({})).await, "Missing required property: provider");
    assert_400(&put(&t, &token, phone, json!({"provider": "auth0", "extra": true})).await, "unknown field");
    assert_eq!(t.get(&token, phone).await, (200, json!({"provider": "phone-message-hook"})));

    let logs = logs_of_type(&t, &token, "gd_tenant_update").await;
    assert_eq!(logs.len(), 2);
    assert!(has_details(&logs, json!({"provider": "phone-message-hook"})));
    assert!(has_details(&logs, json!({"provider": "twilio"})));
    t.stop().await;
}

#[tokio::test]
async fn twilio_settings_seal_the_auth_token_and_never_show_it() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let phone = "/api/v2/guardian/factors/phone/providers/twilio";
    let sms = "/api/v2/guardian/factors/sms/providers/twilio";
    let empty = json!({"from": null, "messaging_service_sid": null, "auth_token": null, "sid": null});
    assert_eq!(t.get(&token, phone).await, (200, empty.clone()));
    assert_eq!(t.get(&token, sms).await, (200, empty));

    // PUT echoes the keys sent, the token masked.
    let r = put(&t, &token, phone, json!({"sid": SID, "auth_token": TOKEN, "from": "+15005550006"})).await;
    assert_eq!(r, (200, json!({"sid": SID, "auth_token": "****b1a0", "from": "+15005550006"})));
    let full = json!({"from": "+15005550006", "messaging_service_sid": null, "auth_token": "****b1a0", "sid": SID});
    assert_eq!(t.get(&token, phone).await, (200, full.clone()));
    assert_eq!(t.get(&token, sms).await, (200, full));

    // Not in any GET body, not in the settings document, not in the logs; sealed in the secret store.
    for path in [phone, sms, "/api/v2/logs", "/api/v2/logs?q=type:gd_tenant_update"] {
        assert!(!get_text(&t, &token, path).await.contains(TOKEN), "{path} shows the token");
    }
    let doc = t.app.store.get_setting("guardian").await.unwrap().unwrap();
    assert!(!doc.to_string().contains(TOKEN), "{doc}");
    assert_eq!(doc["providers"]["twilio"]["auth_token_set"], true);
    assert_eq!(doc["providers"]["twilio"]["sid"], SID);
    let name = twilio_token_secret(&GuardianConfig::load(&t.app).await.unwrap()).unwrap();
    assert!(name.starts_with("guardian/twilio/auth_token/"), "{name}");
    let secret = t.app.store.get_secret(&name).await.unwrap().unwrap();
    assert!(!String::from_utf8_lossy(&secret.sealed.ciphertext).contains(TOKEN));
    assert_eq!(t.app.keyring.open(&name, &secret.sealed).unwrap().as_slice(), TOKEN.as_bytes());

    // The legacy twin writes the same settings; absent keys stay as they were.
    assert_eq!(
        put(&t, &token, sms, json!({"messaging_service_sid": MG})).await,
        (200, json!({"messaging_service_sid": MG}))
    );
    assert_eq!(t.get(&token, phone).await.1["messaging_service_sid"], MG);
    assert_eq!(t.get(&token, phone).await.1["auth_token"], "****b1a0");

    // Validation, without echoing the token back.
    let long_from = "1".repeat(65);
    let r = put(&t, &token, phone, json!({"from": long_from, "auth_token": "another-secret-token-value"})).await;
    assert_400(&r, "(found only digits: a phone number starts with + and its country code)' on property from");
    assert!(!r.1.to_string().contains("another-secret-token-value"));
    assert_400(
        &put(&t, &token, phone, json!({"sid": ""})).await,
        "An Account SID is AC followed by 32 hexadecimal digits (found 0 characters)' on property sid",
    );
    assert_400(&put(&t, &token, phone, json!({"auth_token": "x".repeat(1001)})).await, "on property auth_token");
    assert_400(&put(&t, &token, phone, json!({"messaging_service_sid": ""})).await, "messaging_service_sid");
    assert_400(&put(&t, &token, phone, json!({"account": "x"})).await, "unknown field");
    assert_400(&put(&t, &token, phone, json!({"sid": 5})).await, "invalid type");
    assert_eq!(twilio_token_secret(&GuardianConfig::load(&t.app).await.unwrap()), Some(name.clone()));
    assert_eq!(t.app.store.get_secret(&name).await.unwrap().unwrap(), secret, "a failed PUT leaves the token alone");

    // A short token is masked entirely. A new token gets a new secret; the old one is deleted.
    assert_eq!(put(&t, &token, phone, json!({"auth_token": "tiny"})).await, (200, json!({"auth_token": "****"})));
    assert_eq!(t.get(&token, phone).await.1["auth_token"], "****");
    let tiny = twilio_token_secret(&GuardianConfig::load(&t.app).await.unwrap()).unwrap();
    assert_ne!(tiny, name);
    assert!(t.app.store.get_secret(&name).await.unwrap().is_none(), "the replaced token is deleted");

    // null clears: the field, and for the token the secret too.
    let r = put(&t, &token, phone, json!({"auth_token": null, "from": null})).await;
    assert_eq!(r, (200, json!({"auth_token": null, "from": null})));
    assert_eq!(
        t.get(&token, phone).await,
        (200, json!({"from": null, "messaging_service_sid": MG, "auth_token": null, "sid": SID}))
    );
    assert!(t.app.store.get_secret(&tiny).await.unwrap().is_none());
    let doc = t.app.store.get_setting("guardian").await.unwrap().unwrap();
    assert_eq!(doc["providers"]["twilio"]["auth_token_set"], false);
    // Clearing again is fine.
    assert_eq!(put(&t, &token, phone, json!({"auth_token": null})).await, (200, json!({"auth_token": null})));

    // Events say what changed, never the secret.
    let logs = logs_of_type(&t, &token, "gd_tenant_update").await;
    assert_eq!(logs.len(), 5, "{logs:?}");
    assert!(has_details(&logs, json!({"twilio": {"sid": SID, "from": "+15005550006", "auth_token": "set"}})));
    assert!(has_details(&logs, json!({"twilio": {"from": null, "auth_token": "cleared"}})));
    assert!(has_details(&logs, json!({"twilio": {"messaging_service_sid": MG}})));
    for l in &logs {
        assert!(!l.to_string().contains(TOKEN) && !l.to_string().contains("tiny"), "{l}");
    }
    t.stop().await;
}

#[tokio::test]
async fn templates_are_validated_and_shared_with_the_legacy_twin() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let phone = "/api/v2/guardian/factors/phone/templates";
    let sms = "/api/v2/guardian/factors/sms/templates";
    let defaults = json!({"enrollment_message": DEFAULT_ENROLLMENT, "verification_message": DEFAULT_VERIFICATION});
    assert_eq!(t.get(&token, phone).await, (200, defaults.clone()));
    assert_eq!(t.get(&token, sms).await, (200, defaults));

    let custom = json!({
        "enrollment_message": "{% if message_type == \"voice\" %}Enroll: {{pause}}{{code}}{% else %}{{code}} enrolls you{% endif %}",
        "verification_message": "{{code}} is your code for {{tenant.friendly_name}}",
    });
    assert_eq!(put(&t, &token, phone, custom.clone()).await, (200, custom.clone()));
    assert_eq!(t.get(&token, sms).await, (200, custom.clone()));
    let other = json!({"enrollment_message": "{{code}} e", "verification_message": "{{code}} v"});
    assert_eq!(put(&t, &token, sms, other.clone()).await, (200, other.clone()));
    assert_eq!(t.get(&token, phone).await, (200, other.clone()));

    let r = put(&t, &token, phone, json!({"enrollment_message": "{% if %}", "verification_message": "{{code}}"})).await;
    assert_400(&r, "Invalid enrollment_message template: ");
    let m = r.1["message"].as_str().unwrap();
    assert!(m.ends_with('.') && !m.ends_with(".."), "{m}");
    let r = put(&t, &token, phone, json!({"enrollment_message": "{{code}}", "verification_message": "{{ code "})).await;
    assert_400(&r, "Invalid verification_message template: ");
    assert_400(
        &put(&t, &token, phone, json!({"enrollment_message": "{{code}}"})).await,
        "Missing required property: verification_message",
    );
    assert_400(
        &put(&t, &token, phone, json!({"verification_message": "{{code}}"})).await,
        "Missing required property: enrollment_message",
    );
    assert_400(
        &put(&t, &token, phone, json!({"enrollment_message": "a", "verification_message": "b", "x": "c"})).await,
        "unknown field",
    );
    assert_eq!(t.get(&token, phone).await, (200, other));

    let logs = logs_of_type(&t, &token, "gd_tenant_update").await;
    assert_eq!(logs.len(), 2);
    assert!(logs.iter().all(|l| l["details"] == json!({"templates": ["enrollment_message", "verification_message"]})));
    t.stop().await;
}

#[tokio::test]
async fn policies_are_never_or_all_applications() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let path = "/api/v2/guardian/policies";
    assert_eq!(t.get(&token, path).await, (200, json!([])));
    assert_eq!(put(&t, &token, path, json!(["all-applications"])).await, (200, json!(["all-applications"])));
    assert_eq!(t.get(&token, path).await, (200, json!(["all-applications"])));
    let doc = t.app.store.get_setting("guardian").await.unwrap().unwrap();
    assert_eq!(doc["policies"], json!(["all-applications"]));
    assert_eq!(put(&t, &token, path, json!([])).await, (200, json!([])));
    assert_eq!(t.get(&token, path).await, (200, json!([])));

    assert_400(&put(&t, &token, path, json!(["confidence-score"])).await, "does not support the `confidence-score`");
    assert_400(&put(&t, &token, path, json!(["sometimes"])).await, r#"[] or ["all-applications"]"#);
    assert_400(&put(&t, &token, path, json!({"policies": []})).await, "Expected an array");
    assert_400(&put(&t, &token, path, json!([1])).await, r#"[] or ["all-applications"]"#);
    assert_eq!(t.get(&token, path).await, (200, json!([])));

    let logs = logs_of_type(&t, &token, "gd_tenant_update").await;
    assert_eq!(logs.len(), 2);
    assert!(has_details(&logs, json!({"policies": []})));
    assert!(has_details(&logs, json!({"policies": ["all-applications"]})));
    t.stop().await;
}

#[tokio::test]
async fn every_endpoint_requires_its_scope() {
    let t = TestApp::spawn().await;
    let admin = t.mgmt_token().await;
    let user = create_user(&t, &admin, "scoped@example.com").await;
    let u = enc(&user);

    let read_factors = t.token_with_scopes(&["read:guardian_factors"]).await;
    let update_factors = t.token_with_scopes(&["update:guardian_factors"]).await;
    let read_policies = t.token_with_scopes(&["read:mfa_policies"]).await;
    let update_policies = t.token_with_scopes(&["update:mfa_policies"]).await;
    let read_users = t.token_with_scopes(&["read:users"]).await;

    for p in [
        "/api/v2/guardian/factors",
        "/api/v2/guardian/factors/phone/message-types",
        "/api/v2/guardian/factors/phone/selected-provider",
        "/api/v2/guardian/factors/phone/providers/twilio",
        "/api/v2/guardian/factors/phone/templates",
        "/api/v2/guardian/factors/sms/providers/twilio",
        "/api/v2/guardian/factors/sms/selected-provider",
        "/api/v2/guardian/factors/sms/templates",
    ] {
        assert_eq!(t.get(&read_factors, p).await.0, 200, "{p}");
        assert_403(&t.get(&update_factors, p).await);
        if p != "/api/v2/guardian/factors" {
            assert_403(&put(&t, &read_factors, p, json!({})).await);
        }
    }
    let r = put(&t, &read_factors, "/api/v2/guardian/factors/sms", json!({"enabled": true})).await;
    assert_403(&r);
    assert_eq!(r.1["message"], "Insufficient scope, expected any of: update:guardian_factors");
    assert_eq!(put(&t, &update_factors, "/api/v2/guardian/factors/sms", json!({"enabled": true})).await.0, 200);

    assert_403(&t.get(&read_factors, "/api/v2/guardian/policies").await);
    assert_eq!(t.get(&read_policies, "/api/v2/guardian/policies").await.0, 200);
    assert_403(&put(&t, &read_policies, "/api/v2/guardian/policies", json!([])).await);
    assert_eq!(put(&t, &update_policies, "/api/v2/guardian/policies", json!([])).await.0, 200);

    // Enrollments and authentication methods.
    let e = "/api/v2/guardian/enrollments/phone%7Cdev_AAAAAAAAAAAAAAAA";
    assert_403(&t.get(&read_users, e).await);
    assert_403(&t.delete(&read_users, e).await);
    let read_enr = t.token_with_scopes(&["read:guardian_enrollments"]).await;
    assert_eq!(t.get(&read_enr, e).await.0, 404);
    assert_403(&t.delete(&read_enr, e).await);
    let del_enr = t.token_with_scopes(&["delete:guardian_enrollments"]).await;
    assert_eq!(t.delete(&del_enr, e).await.0, 404);
    assert_eq!(t.delete(&del_enr, &format!("/api/v2/users/{u}/authenticators")).await.0, 204);
    assert_403(&t.delete(&read_enr, &format!("/api/v2/users/{u}/authenticators")).await);

    assert_403(&t.post(&read_users, "/api/v2/guardian/enrollments/ticket", json!({"user_id": user})).await);
    let tickets = t.token_with_scopes(&["create:guardian_enrollment_tickets"]).await;
    assert_eq!(t.post(&tickets, "/api/v2/guardian/enrollments/ticket", json!({"user_id": user})).await.0, 200);

    assert_403(&t.get(&read_enr, &format!("/api/v2/users/{u}/enrollments")).await);
    assert_eq!(t.get(&read_users, &format!("/api/v2/users/{u}/enrollments")).await, (200, json!([])));

    let methods = format!("/api/v2/users/{u}/authentication-methods");
    let one = format!("{methods}/phone%7Cdev_AAAAAAAAAAAAAAAA");
    let phone = json!({"type": "phone", "phone_number": "+14155552671"});
    assert_403(&t.get(&read_users, &methods).await);
    assert_403(&t.get(&read_users, &one).await);
    assert_403(&t.post(&read_users, &methods, phone.clone()).await);
    assert_403(&put(&t, &read_users, &methods, json!([])).await);
    assert_403(&t.patch(&read_users, &one, json!({"name": "x"})).await);
    assert_403(&t.delete(&read_users, &one).await);
    assert_403(&t.delete(&read_users, &methods).await);
    let read_m = t.token_with_scopes(&["read:authentication_methods"]).await;
    let create_m = t.token_with_scopes(&["create:authentication_methods"]).await;
    let update_m = t.token_with_scopes(&["update:authentication_methods"]).await;
    let delete_m = t.token_with_scopes(&["delete:authentication_methods"]).await;
    assert_eq!(t.get(&read_m, &methods).await, (200, json!([])));
    assert_403(&t.post(&read_m, &methods, phone.clone()).await);
    assert_eq!(t.post(&create_m, &methods, phone.clone()).await.0, 201);
    assert_403(&put(&t, &create_m, &methods, json!([])).await);
    assert_eq!(put(&t, &update_m, &methods, json!([])).await, (200, json!([])));
    assert_403(&t.delete(&update_m, &methods).await);
    assert_eq!(t.delete(&delete_m, &methods).await.0, 204);
    assert_403(&t.delete(&delete_m, &format!("/api/v2/users/{u}/authenticators")).await);

    assert_403(&t.get(&read_users, "/api/v2/dev-inbox").await);
    let inbox = t.token_with_scopes(&["read:dev_inbox"]).await;
    assert_eq!(t.get(&inbox, "/api/v2/dev-inbox").await, (200, json!([])));
    t.stop().await;
}

#[tokio::test]
async fn authentication_methods_crud_and_the_enrollment_views() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let user = create_user(&t, &token, "phone@example.com").await;
    let u = enc(&user);
    let methods = format!("/api/v2/users/{u}/authentication-methods");

    // Create: 201, confirmed, the number as given (normalised to E.164).
    let (s, v) =
        t.post(&token, &methods, json!({"type": "phone", "phone_number": "+44 20 7183 8750", "name": "Desk"})).await;
    assert_eq!(s, 201, "{v}");
    let id = bare(&v["id"]);
    assert_eq!(
        v,
        json!({"id": format!("phone|{id}"), "type": "phone", "name": "Desk", "phone_number": "+442071838750",
               "created_at": "2026-01-01T00:00:00.000Z", "preferred_authentication_method": "sms",
               "authentication_methods": [{"id": format!("sms|{id}"), "type": "sms"}, {"id": format!("voice|{id}"), "type": "voice"}]})
    );
    let stored = t.app.store.get_enrollment(&id).await.unwrap().unwrap();
    assert_eq!(stored.status, EnrollmentStatus::Confirmed);
    assert_eq!(stored.user_id, user);
    assert_eq!(stored.phone_number.as_deref(), Some("+442071838750"));

    // Reads mask the number.
    let read = json!({"id": format!("phone|{id}"), "type": "phone", "confirmed": true, "name": "Desk",
        "phone_number": "XXXXXXXXX8750", "created_at": "2026-01-01T00:00:00.000Z",
        "preferred_authentication_method": "sms", "enrolled_at": "2026-01-01T00:00:00.000Z",
        "authentication_methods": [{"id": format!("sms|{id}"), "type": "sms"}, {"id": format!("voice|{id}"), "type": "voice"}]});
    assert_eq!(t.get(&token, &methods).await, (200, json!([read.clone()])));
    for any in [format!("phone%7C{id}"), format!("sms%7C{id}"), format!("voice%7C{id}"), id.clone()] {
        assert_eq!(t.get(&token, &format!("{methods}/{any}")).await, (200, read.clone()), "{any}");
    }
    assert_eq!(
        t.get(&token, &format!("{methods}?include_totals=true")).await,
        (200, json!({"authenticators": [read.clone()], "total": 1, "start": 0, "limit": 50}))
    );
    assert!(!get_text(&t, &token, &methods).await.contains("2071838750"));

    // Second phone (a second later: the listing is oldest first), paging.
    t.clock.advance(Duration::from_secs(1));
    let (s, v2) = t
        .post(
            &token,
            &methods,
            json!({"type": "phone", "phone_number": "+14155552671", "preferred_authentication_method": "voice"}),
        )
        .await;
    assert_eq!(s, 201, "{v2}");
    let id2 = bare(&v2["id"]);
    assert_eq!(v2["authentication_methods"][0], json!({"id": format!("voice|{id2}"), "type": "voice"}));
    assert!(v2.get("name").is_none());
    let (_, page) = t.get(&token, &format!("{methods}?per_page=1&page=1&include_totals=true")).await;
    assert_eq!(page["total"], 2);
    assert_eq!(page["start"], 1);
    assert_eq!(page["limit"], 1);
    assert_eq!(page["authenticators"].as_array().unwrap().len(), 1);
    assert_eq!(page["authenticators"][0]["id"], json!(format!("phone|{id2}")));
    assert_eq!(page["authenticators"][0]["phone_number"], "XXXXXXXX2671");

    // 400s and 404s on create.
    let r = t.post(&token, &methods, json!({"type": "totp"})).await;
    assert_400(&r, "does not support authentication methods of type `totp`");
    assert_400(&t.post(&token, &methods, json!({"type": "fax"})).await, "No enum match for: \"fax\"");
    assert_400(
        &t.post(&token, &methods, json!({"phone_number": "+14155552671"})).await,
        "Missing required property: type",
    );
    assert_400(&t.post(&token, &methods, json!({"type": "phone"})).await, "Missing required property: phone_number");
    assert_400(
        &t.post(&token, &methods, json!({"type": "phone", "phone_number": "4155552671"})).await,
        "is not a phone number; use the international format",
    );
    assert_400(
        &t.post(&token, &methods, json!({"type": "phone", "phone_number": "+44 20 7183"})).await,
        "is not a valid phone number for its country",
    );
    assert_400(
        &t.post(
            &token,
            &methods,
            json!({"type": "phone", "phone_number": "+14155550100", "preferred_authentication_method": "fax"}),
        )
        .await,
        "preferred_authentication_method",
    );
    assert_400(
        &t.post(&token, &methods, json!({"type": "phone", "phone_number": "+14155550100", "name": "n".repeat(21)}))
            .await,
        "on property name",
    );
    assert_400(
        &t.post(&token, &methods, json!({"type": "phone", "phone_number": "+14155550100", "email": "a@b.c"})).await,
        "on property email",
    );
    let (s, v) = t.post(&token, &methods, json!({"type": "phone", "phone_number": "+1 415 555 2671"})).await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["message"], "Authentication method already exists.");
    let (s, v) = t
        .post(
            &token,
            "/api/v2/users/auth0%7Cnobody/authentication-methods",
            json!({"type": "phone", "phone_number": "+14155550100"}),
        )
        .await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(v["errorCode"], "inexistent_user");
    assert_eq!(t.get(&token, "/api/v2/users/auth0%7Cnobody/authentication-methods").await.0, 404);

    // PATCH: name and preferred channel; the preferred channel is listed first.
    let one = format!("{methods}/phone%7C{id}");
    let (s, v) = t.patch(&token, &one, json!({"name": "Office", "preferred_authentication_method": "voice"})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["name"], "Office");
    assert_eq!(v["preferred_authentication_method"], "voice");
    assert_eq!(v["phone_number"], "XXXXXXXXX8750");
    assert_eq!(
        v["authentication_methods"],
        json!([{"id": format!("voice|{id}"), "type": "voice"}, {"id": format!("sms|{id}"), "type": "sms"}])
    );
    assert_eq!(t.app.store.get_enrollment(&id).await.unwrap().unwrap().preferred_channel, Some(Channel::Voice));
    assert_400(&t.patch(&token, &one, json!({"preferred_authentication_method": "email"})).await, "No enum match");
    assert_400(&t.patch(&token, &one, json!({"phone_number": "+14155550100"})).await, "unknown field");
    assert_400(&t.patch(&token, &one, json!({"name": ""})).await, "on property name");
    assert_eq!(t.patch(&token, &format!("{methods}/phone%7Cdev_nope"), json!({"name": "x"})).await.0, 404);

    // The Guardian views of the same enrollment.
    let (s, v) = t.get(&token, &format!("/api/v2/guardian/enrollments/phone%7C{id}")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"id": format!("voice|{id}"), "status": "confirmed", "name": "Office", "phone_number": "XXXXXXXXX8750",
               "enrolled_at": "2026-01-01T00:00:00.000Z"})
    );
    for any in [format!("sms%7C{id}"), format!("voice%7C{id}"), id.clone()] {
        assert_eq!(t.get(&token, &format!("/api/v2/guardian/enrollments/{any}")).await, (200, v.clone()));
    }
    let (s, list) = t.get(&token, &format!("/api/v2/users/{u}/enrollments")).await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(
        list[0],
        json!({"id": format!("voice|{id}"), "status": "confirmed", "type": "voice", "name": "Office",
               "phone_number": "XXXXXXXXX8750", "auth_method": "sms", "enrolled_at": "2026-01-01T00:00:00.000Z"})
    );
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[1]["id"], json!(format!("voice|{id2}")));
    let (s, v) = t.get(&token, "/api/v2/users/auth0%7Cnobody/enrollments").await;
    assert_eq!((s, &v["message"]), (404, &json!("User not found.")));

    // PUT replaces every phone method.
    let (s, v) = put(
        &t,
        &token,
        &methods,
        json!([
            {"type": "phone", "name": "MyPhone", "phone_number": "+447911123456", "preferred_authentication_method": "sms"},
            {"type": "phone", "phone_number": "+14155550100", "preferred_authentication_method": "voice"}
        ]),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let replaced = v.as_array().unwrap();
    assert_eq!(replaced.len(), 2);
    let id3 = bare(&replaced[0]["id"]);
    let id4 = bare(&replaced[1]["id"]);
    assert_eq!(
        replaced[0],
        json!({"id": format!("phone|{id3}"), "type": "phone", "name": "MyPhone", "phone_number": "+447911123456",
               "created_at": "2026-01-01T00:00:01.000Z", "preferred_authentication_method": "sms",
               "authentication_methods": [{"id": format!("sms|{id3}"), "type": "sms"}, {"id": format!("voice|{id3}"), "type": "voice"}]})
    );
    assert_eq!(replaced[1]["phone_number"], "+14155550100");
    assert_eq!(t.get(&token, &one).await.0, 404);
    assert_eq!(t.get(&token, &format!("/api/v2/guardian/enrollments/phone%7C{id}")).await.0, 404);
    let mut ids: Vec<String> = t
        .get(&token, &methods)
        .await
        .1
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut expected = vec![format!("phone|{id3}"), format!("phone|{id4}")];
    expected.sort();
    assert_eq!(ids, expected);
    assert_400(&put(&t, &token, &methods, json!({"type": "phone"})).await, "Expected an array");
    assert_400(&put(&t, &token, &methods, json!([{"type": "email", "email": "a@b.c"}])).await, "does not support");
    assert_400(
        &put(&t, &token, &methods, json!([{"type": "phone", "phone_number": "12"}])).await,
        "international format",
    );
    let (s, _) = put(
        &t,
        &token,
        &methods,
        json!([{"type": "phone", "phone_number": "+14155550100"}, {"type": "phone", "phone_number": "+1 415 555 0100"}]),
    )
    .await;
    assert_eq!(s, 409);
    assert_eq!(t.get(&token, &methods).await.1.as_array().unwrap().len(), 2, "failed PUTs change nothing");

    // DELETE one, then all.
    assert_eq!(t.delete(&token, &format!("{methods}/phone%7C{id3}")).await, (204, Value::Null));
    let (s, v) = t.delete(&token, &format!("{methods}/phone%7C{id3}")).await;
    assert_eq!((s, &v["message"]), (404, &json!("The authentication method could not be found.")));
    // Another user's method is not reachable through this user.
    let other = create_user(&t, &token, "other@example.com").await;
    assert_eq!(
        t.get(&token, &format!("/api/v2/users/{}/authentication-methods/phone%7C{id4}", enc(&other))).await.0,
        404
    );
    assert_eq!(t.delete(&token, &format!("/api/v2/users/{}/authentication-methods/{id4}", enc(&other))).await.0, 404);
    assert_eq!(t.delete(&token, &methods).await, (204, Value::Null));
    assert_eq!(t.get(&token, &methods).await, (200, json!([])));
    assert_eq!(
        t.get(&token, &format!("{methods}?include_totals=true")).await,
        (200, json!({"authenticators": [], "total": 0, "start": 0, "limit": 50}))
    );
    assert_eq!(t.get(&token, &format!("/api/v2/users/{u}/enrollments")).await, (200, json!([])));

    // Events: every write, with the user.
    let updates = logs_of_type(&t, &token, "gd_update_device_account").await;
    assert_eq!(updates.len(), 4, "2 creates, 1 patch, 1 replace: {updates:?}");
    assert!(updates.iter().all(|l| l["user_id"] == json!(user)));
    let actions = |a: &str| updates.iter().filter(|l| l["details"]["action"] == a).collect::<Vec<_>>();
    assert_eq!(actions("create").len(), 2);
    assert_eq!(actions("update").len(), 1);
    assert_eq!(actions("update")[0]["details"]["changed"], json!(["name", "preferred_authentication_method"]));
    assert_eq!(actions("replace").len(), 1);
    assert_eq!(actions("replace")[0]["details"]["removed"].as_array().unwrap().len(), 2);
    assert_eq!(actions("replace")[0]["details"]["created"], json!([format!("phone|{id3}"), format!("phone|{id4}")]));
    let unenrolls = logs_of_type(&t, &token, "gd_unenroll").await;
    assert_eq!(unenrolls.len(), 2);
    assert!(unenrolls.iter().all(|l| l["user_id"] == json!(user)));
    assert!(unenrolls.iter().any(|l| l["details"]["all"] == true));
    assert!(has_details(&unenrolls, json!({"authentication_method_id": format!("phone|{id3}"), "type": "phone"})));
    for l in updates.iter().chain(&unenrolls) {
        for number in ["2071838750", "4155552671", "7911123456", "4155550100"] {
            assert!(!l.to_string().contains(number), "a log shows a phone number: {l}");
        }
    }
    t.stop().await;
}

fn recovery(id: &str, user: &str) -> Enrollment {
    Enrollment {
        id: id.to_owned(),
        user_id: user.to_owned(),
        kind: EnrollmentKind::RecoveryCode,
        status: EnrollmentStatus::Confirmed,
        phone_number: None,
        preferred_channel: None,
        name: None,
        secret_hash: Some(token_hash("RECOVERYCODE1234567890AB")),
        created_at: common::START,
        enrolled_at: Some(common::START),
        last_auth: None,
    }
}

#[tokio::test]
async fn guardian_enrollments_read_delete_and_cascade() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let user = create_user(&t, &token, "cascade@example.com").await;
    let u = enc(&user);
    let methods = format!("/api/v2/users/{u}/authentication-methods");
    let (s, v) = t.post(&token, &methods, json!({"type": "phone", "phone_number": "+14155552671"})).await;
    assert_eq!(s, 201, "{v}");
    let id = bare(&v["id"]);
    t.app.store.create_enrollment(&recovery("dev_RecoveryCode0001", &user)).await.unwrap();

    // Recovery codes: visible through /guardian/enrollments and authentication-methods, not /users/{id}/enrollments.
    let (s, v) = t.get(&token, "/api/v2/guardian/enrollments/recovery-code%7Cdev_RecoveryCode0001").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"id": "recovery-code|dev_RecoveryCode0001", "status": "confirmed", "enrolled_at": "2026-01-01T00:00:00.000Z"})
    );
    assert!(!v.to_string().contains(&token_hash("RECOVERYCODE1234567890AB")));
    let listed = t.get(&token, &methods).await.1;
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let rc = listed.as_array().unwrap().iter().find(|m| m["type"] == "recovery-code").unwrap();
    assert_eq!(
        rc,
        &json!({"id": "recovery-code|dev_RecoveryCode0001", "type": "recovery-code", "confirmed": true,
               "created_at": "2026-01-01T00:00:00.000Z", "enrolled_at": "2026-01-01T00:00:00.000Z"})
    );
    assert_eq!(t.get(&token, &format!("/api/v2/users/{u}/enrollments")).await.1.as_array().unwrap().len(), 1);
    // A prefix of the wrong kind does not find it.
    assert_eq!(t.get(&token, "/api/v2/guardian/enrollments/sms%7Cdev_RecoveryCode0001").await.0, 404);
    assert_eq!(t.get(&token, &format!("/api/v2/guardian/enrollments/recovery-code%7C{id}")).await.0, 404);
    assert_400(
        &t.patch(&token, &format!("{methods}/recovery-code%7Cdev_RecoveryCode0001"), json!({"name": "x"})).await,
        "only phone",
    );

    // Unknown or malformed ids: Auth0's exact 404.
    let not_found = json!({"statusCode": 404, "error": "Not Found", "message": "Enrollment not found", "errorCode": "enrollment_not_found"});
    for bad in ["dev_doesnotexist", "phone%7Cdev_doesnotexist", "nonsense", "totp%7Cdev_x", "dev_bad%20id"] {
        assert_eq!(
            t.get(&token, &format!("/api/v2/guardian/enrollments/{bad}")).await,
            (404, not_found.clone()),
            "{bad}"
        );
        assert_eq!(
            t.delete(&token, &format!("/api/v2/guardian/enrollments/{bad}")).await,
            (404, not_found.clone()),
            "{bad}"
        );
    }

    // DELETE /guardian/enrollments/{id}: 204, gd_unenroll about the user.
    assert_eq!(t.delete(&token, &format!("/api/v2/guardian/enrollments/sms%7C{id}")).await, (204, Value::Null));
    assert_eq!(t.get(&token, &format!("/api/v2/guardian/enrollments/{id}")).await, (404, not_found.clone()));
    assert!(t.app.store.get_enrollment(&id).await.unwrap().is_none());
    let logs = logs_of_type(&t, &token, "gd_unenroll").await;
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["user_id"], json!(user));
    assert_eq!(logs[0]["client_id"], json!(t.client_id));

    // DELETE /users/{id}/authenticators removes everything, with one event.
    t.post(&token, &methods, json!({"type": "phone", "phone_number": "+14155550100"})).await;
    assert_eq!(t.get(&token, &methods).await.1.as_array().unwrap().len(), 2);
    assert_eq!(t.delete(&token, &format!("/api/v2/users/{u}/authenticators")).await, (204, Value::Null));
    assert!(t.app.store.list_enrollments(&user).await.unwrap().is_empty());
    assert_eq!(t.get(&token, &methods).await, (200, json!([])));
    let logs = logs_of_type(&t, &token, "gd_unenroll").await;
    assert_eq!(logs.len(), 2);
    assert!(has_details(&logs, json!({"all": true, "count": 2})));
    assert_eq!(t.delete(&token, "/api/v2/users/auth0%7Cnobody/authenticators").await.0, 404);

    // Deleting the user takes its enrollments along.
    let (_, v) = t.post(&token, &methods, json!({"type": "phone", "phone_number": "+14155550100"})).await;
    let id = bare(&v["id"]);
    assert_eq!(t.delete(&token, &format!("/api/v2/users/{u}")).await.0, 204);
    assert!(t.app.store.get_enrollment(&id).await.unwrap().is_none());
    assert_eq!(t.get(&token, &format!("/api/v2/guardian/enrollments/{id}")).await, (404, not_found));
    t.stop().await;
}

#[tokio::test]
async fn enrollment_tickets_are_stored_hashed_and_single_use() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let user = create_user(&t, &token, "ticket@example.com").await;
    let path = "/api/v2/guardian/enrollments/ticket";

    let (s, v) = t.post(&token, path, json!({"user_id": user, "factor": "phone", "send_mail": false})).await;
    assert_eq!(s, 200, "{v}");
    let id = v["ticket_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(
        v,
        json!({"ticket_id": id, "ticket_url": format!("{}mfa/enrollment?ticket={id}", t.app.config.public_url)})
    );
    let now = t.app.clock.now();
    let stored = t.app.store.consume_ticket(&token_hash(&id), now).await.unwrap().unwrap();
    assert_eq!(stored.user_id, user);
    assert_eq!(stored.ticket_hash, token_hash(&id));
    assert_eq!(stored.expires_at, Timestamp(now.0 + 7 * 24 * 3600 * 1000));
    assert!(t.app.store.consume_ticket(&token_hash(&id), now).await.unwrap().is_none(), "single use");
    assert!(t.app.store.consume_ticket(&id, now).await.unwrap().is_none(), "stored by hash only");

    // The other accepted fields; expiry after 7 days.
    let (s, v) = t
        .post(
            &token,
            path,
            json!({"user_id": user, "email": "alt@example.com", "email_locale": "fr", "allow_multiple_enrollments": true}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let id2 = v["ticket_id"].as_str().unwrap().to_owned();
    assert_ne!(id, id2);
    t.clock.advance(Duration::from_secs(7 * 24 * 3600 + 1));
    assert!(t.app.store.consume_ticket(&token_hash(&id2), t.app.clock.now()).await.unwrap().is_none(), "expired");
    let token = t.mgmt_token().await; // the first one expired with the clock

    // 400s and 404.
    assert_400(
        &t.post(&token, path, json!({"user_id": user, "send_mail": true})).await,
        "Email delivery is not available",
    );
    assert_400(&t.post(&token, path, json!({})).await, "Missing required property: user_id");
    assert_400(
        &t.post(&token, path, json!({"user_id": user, "factor": "otp"})).await,
        "does not support enrolling the `otp`",
    );
    assert_400(&t.post(&token, path, json!({"user_id": user, "factor": "carrier-pigeon"})).await, "No enum match");
    assert_400(&t.post(&token, path, json!({"user_id": user, "bogus": 1})).await, "unknown field");
    let (s, v) = t.post(&token, path, json!({"user_id": "auth0|nobody"})).await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(v["message"], "User not found.");

    // Logged, without the ticket.
    let logs = logs_of_type(&t, &token, "gd_enrollment_ticket_created").await;
    assert_eq!(logs.len(), 2);
    assert!(logs.iter().all(|l| l["user_id"] == json!(user)));
    for l in &logs {
        assert!(!l.to_string().contains(&id) && !l.to_string().contains(&id2), "{l}");
    }
    t.stop().await;
}

#[tokio::test]
async fn the_dev_inbox_lists_newest_first_and_filters_by_number() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    assert_eq!(t.get(&token, "/api/v2/dev-inbox").await, (200, json!([])));
    for (i, (to, channel, text)) in [
        ("+14155552671", "sms", "111111 is your verification code for Callsign"),
        ("+442071838750", "voice", "2.2.2.2.2.2 is your verification code for Callsign"),
        ("+14155552671", "sms", "333333 is your verification code for Callsign"),
    ]
    .into_iter()
    .enumerate()
    {
        let m = DevMessage {
            id: format!("msg_{i}"),
            to: to.into(),
            channel: channel.into(),
            text: text.into(),
            created_at: Timestamp(common::START.0 + i64::try_from(i).unwrap() * 1000),
        };
        t.app.store.insert_dev_message(&m).await.unwrap();
    }
    let (s, v) = t.get(&token, "/api/v2/dev-inbox").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!([
            {"id": "msg_2", "to": "+14155552671", "channel": "sms", "text": "333333 is your verification code for Callsign", "created_at": "2026-01-01T00:00:02.000Z"},
            {"id": "msg_1", "to": "+442071838750", "channel": "voice", "text": "2.2.2.2.2.2 is your verification code for Callsign", "created_at": "2026-01-01T00:00:01.000Z"},
            {"id": "msg_0", "to": "+14155552671", "channel": "sms", "text": "111111 is your verification code for Callsign", "created_at": "2026-01-01T00:00:00.000Z"},
        ])
    );
    // `to` in any international spelling; an unescaped `+` (a space once decoded) too.
    for q in ["to=%2B14155552671", "to=+14155552671", "to=%2B1%20415%20555%202671"] {
        let (s, v) = t.get(&token, &format!("/api/v2/dev-inbox?{q}")).await;
        assert_eq!(s, 200, "{q}: {v}");
        let ids: Vec<&str> = v.as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["msg_2", "msg_0"], "{q}");
    }
    let (s, v) = t.get(&token, "/api/v2/dev-inbox?to=%2B442071838750&include_totals=true").await;
    assert_eq!(s, 200);
    assert_eq!(v["total"], 1);
    assert_eq!(v["messages"][0]["id"], "msg_1");
    let (_, v) = t.get(&token, "/api/v2/dev-inbox?per_page=1&page=1&include_totals=true").await;
    assert_eq!(
        (v["total"].clone(), v["start"].clone(), v["messages"][0]["id"].clone()),
        (json!(3), json!(1), json!("msg_1"))
    );

    let (s, v) = t.get(&token, "/api/v2/dev-inbox?to=nonsense").await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["errorCode"], "invalid_query_string");
    assert!(v["message"].as_str().unwrap().contains("international format"), "{v}");
    assert_eq!(t.get(&token, "/api/v2/dev-inbox?per_page=0").await.0, 400);
    assert_eq!(t.get(&token, "/api/v2/dev-inbox?page=x").await.0, 400);
    t.stop().await;
}

/// Two writers that read the same configuration: the second write is refused instead of undoing the first
/// (on SQLite here; the store's compare-and-set is in the conformance suite for both backends).
#[tokio::test]
async fn concurrent_configuration_writes_never_lose_a_change() {
    use callsign_core::guardian::{ConfigConflict, GuardianConfig};
    let t = TestApp::spawn().await;
    let mut a = GuardianConfig::load(&t.app).await.unwrap();
    let mut b = GuardianConfig::load(&t.app).await.unwrap();
    a.provider = "twilio".into();
    a.save(&t.app).await.unwrap();
    b.message_types = vec!["voice".into()];
    let e = b.save(&t.app).await.unwrap_err();
    assert!(e.is::<ConfigConflict>(), "{e}");
    // The first writer keeps writing over its own save; a fresh read sees its change, not the refused one.
    a.policies = vec!["all-applications".into()];
    a.save(&t.app).await.unwrap();
    let now = GuardianConfig::load(&t.app).await.unwrap();
    assert_eq!((now.provider.as_str(), now.message_types.clone()), ("twilio", vec!["sms".to_owned()]));
    assert_eq!(now.policies, vec!["all-applications".to_owned()]);
    t.stop().await;
}

/// The Guardian Twilio PUT (and its `sms` twin) checks the shapes: an Account SID is `AC` and 32 hexadecimal
/// digits, a Messaging Service SID `MG` and 32, `from` an E.164 number or an alphanumeric sender ID (or empty:
/// unset). Each refusal is a 400 naming the property, in plain words, and changes nothing. Settings stored before
/// the checks keep working: a PUT of other keys leaves them alone.
#[tokio::test]
async fn twilio_settings_of_the_wrong_shape_are_refused_with_the_reason() {
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    for path in ["/api/v2/guardian/factors/phone/providers/twilio", "/api/v2/guardian/factors/sms/providers/twilio"] {
        let r = put(&t, &token, path, json!({"sid": "AC123", "auth_token": TOKEN})).await;
        assert_eq!(
            r,
            (
                400,
                json!({"statusCode": 400, "error": "Bad Request", "errorCode": "invalid_body",
                       "message": "Payload validation error: 'An Account SID is AC followed by 32 hexadecimal digits (found 5 characters)' on property sid."})
            ),
            "{path}"
        );
        for (body, needle) in [
            (json!({"sid": format!("AC{}", "0".repeat(31))}), "(found 33 characters)' on property sid."),
            (json!({"sid": format!("AC{}", "0".repeat(33))}), "(found 35 characters)' on property sid."),
            (json!({"sid": MG}), "(found MG: that is a Messaging Service SID)' on property sid."),
            (
                json!({"sid": "AC0123456789abcdef0123456789abcdeg"}),
                "('g' at position 34 is not a hexadecimal digit)' on property sid.",
            ),
            (
                json!({"messaging_service_sid": "MG42"}),
                "A Messaging Service SID is MG followed by 32 hexadecimal digits (found 4 characters)' on property messaging_service_sid.",
            ),
            (
                json!({"messaging_service_sid": SID}),
                "(found AC: that is an Account SID)' on property messaging_service_sid.",
            ),
            (json!({"from": "+1234567"}), "(found 7 digits after the +)' on property from."),
            (json!({"from": "+1234567890123456"}), "(found 16 digits after the +)' on property from."),
            (json!({"from": "+1 415 555 0100"}), "write the digits only)' on property from."),
            (json!({"from": "ABCDEFGHIJKL"}), "(found 12 characters)' on property from."),
            (json!({"from": "15005550006"}), "(found only digits"),
            (json!({"from": "Acme-Bank"}), "not a letter, a digit or a space)' on property from."),
        ] {
            let r = put(&t, &token, path, body.clone()).await;
            assert_400(&r, needle);
            assert!(r.1["message"].as_str().unwrap().starts_with("Payload validation error: 'A"), "{body}: {}", r.1);
        }
        // Accepted: either case of hex digits, both kinds of sender, and an empty `from` (unset, as in Auth0).
        for body in [
            json!({"sid": SID, "messaging_service_sid": MG, "from": "+15005550006"}),
            json!({"sid": SID2, "from": "+12345678"}),
            json!({"sid": SID.to_uppercase(), "from": "+123456789012345"}),
            json!({"messaging_service_sid": "MGABCDEFabcdef0123456789ABCDEF0123", "from": "Acme Bank 1"}),
            json!({"from": "ABCDEFGHIJK"}),
            json!({"from": null, "messaging_service_sid": null}),
            json!({"from": ""}),
        ] {
            let r = put(&t, &token, path, body.clone()).await;
            assert_eq!(r.0, 200, "{body}: {}", r.1);
        }
        assert_eq!(t.get(&token, path).await.1["from"], "", "an empty from is kept as Auth0 keeps it");
    }
    // No refusal changed anything; the last accepted PUT stands.
    let g = t.get(&token, "/api/v2/guardian/factors/phone/providers/twilio").await.1;
    assert_eq!((g["sid"].as_str(), g["messaging_service_sid"].as_str()), (Some(SID.to_uppercase().as_str()), None));

    // Settings stored before the checks (a short SID, a sender with spaces) are read as they are, and a PUT of
    // other keys keeps them.
    let mut cfg = GuardianConfig::load_for_update(&t.app).await.unwrap();
    let tw = cfg.providers.entry("twilio".to_owned()).or_default();
    tw.insert("sid".into(), json!("AC1"));
    tw.insert("from".into(), json!("+1 500 555 0006"));
    cfg.save(&t.app).await.unwrap();
    let phone = "/api/v2/guardian/factors/phone/providers/twilio";
    let g = t.get(&token, phone).await;
    assert_eq!((g.0, &g.1["sid"], &g.1["from"]), (200, &json!("AC1"), &json!("+1 500 555 0006")));
    assert_eq!(put(&t, &token, phone, json!({"auth_token": TOKEN})).await, (200, json!({"auth_token": "****b1a0"})));
    let g = t.get(&token, phone).await.1;
    assert_eq!((&g["sid"], &g["from"]), (&json!("AC1"), &json!("+1 500 555 0006")));
    t.stop().await;
}

/// A token change that loses a concurrent-write race changes nothing: the token in use stays, and the new one
/// is not left behind.
#[tokio::test]
async fn a_refused_token_change_keeps_the_token_in_use() {
    use callsign_core::guardian::GuardianConfig;
    let t = TestApp::spawn().await;
    let token = t.mgmt_token().await;
    let phone = "/api/v2/guardian/factors/phone/providers/twilio";
    let (s, v) = put(&t, &token, phone, json!({"sid": SID, "auth_token": "first-token-0001"})).await;
    assert_eq!(s, 200, "{v}");
    let before = GuardianConfig::load(&t.app).await.unwrap();
    let first = twilio_token_secret(&before).unwrap();
    let secrets_before = t.app.store.list_secrets().await.unwrap().len();
    // Another writer changes the configuration after this request's read (simulated: an outdated read).
    let mut stale = GuardianConfig::load(&t.app).await.unwrap();
    let mut other = GuardianConfig::load(&t.app).await.unwrap();
    other.message_types = vec!["voice".into()];
    other.save(&t.app).await.unwrap();
    let kind = t.app.providers.get("twilio").unwrap();
    let stale_before = stale.provider("twilio");
    stale.providers.get_mut("twilio").unwrap().insert("sid".into(), json!(SID2));
    let secrets = [("auth_token".to_owned(), Some(zeroize::Zeroizing::new("second-token-0002".to_owned())))].into();
    let e = callsign_server::http::management::phone_providers::save_with_secrets(
        &t.app,
        &mut stale,
        kind,
        &stale_before,
        secrets,
    )
    .await
    .unwrap_err();
    assert_eq!(e.status, 409);
    let now = GuardianConfig::load(&t.app).await.unwrap();
    assert_eq!(twilio_token_secret(&now), Some(first.clone()));
    assert_eq!(now.provider("twilio")["sid"], SID);
    assert_eq!(t.app.store.list_secrets().await.unwrap().len(), secrets_before, "no new secret left behind");
    let secret = t.app.store.get_secret(&first).await.unwrap().unwrap();
    assert_eq!(t.app.keyring.open(&first, &secret.sealed).unwrap().as_slice(), b"first-token-0001");
    t.stop().await;
}

/// The sealed secret that holds the Twilio auth token the configuration names.
fn twilio_token_secret(cfg: &callsign_core::guardian::GuardianConfig) -> Option<String> {
    let values = cfg.provider("twilio");
    values.get("auth_token_secret").and_then(|v| v.as_str()).map(str::to_owned)
}
