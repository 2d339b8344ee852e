//! The Unified Phone Experience API (`/api/v2/branding/phone/providers`, `/templates`) as a view of the Guardian
//! configuration, with the development provider (Twilio through it is in `tests/twilio.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::TestApp;
use serde_json::{Value, json};

const PW: &str = "Str0ng-Passw0rd";
const PHONE: &str = "+14155552671";
/// A Twilio Account SID and Messaging Service SID of the right shape (`AC` / `MG` and 32 hexadecimal digits).
const SID: &str = "AC0123456789abcdef0123456789abcdef";
const MG: &str = "MG0123456789abcdef0123456789abcdef";

async fn put(t: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value) {
    let r = t.http.put(t.url(path)).bearer_auth(token).json(&body).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn template<'a>(list: &'a Value, kind: &str) -> &'a Value {
    list["templates"].as_array().unwrap().iter().find(|t| t["type"] == kind).unwrap()
}

#[tokio::test]
async fn templates_list_defaults_and_follow_guardian() {
    let t = TestApp::spawn().await;
    let admin = t.mgmt_token().await;
    let (s, list) = t.get(&admin, "/api/v2/branding/phone/templates").await;
    assert_eq!(s, 200, "{list}");
    let types: Vec<&str> = list["templates"].as_array().unwrap().iter().map(|t| t["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["otp_verify", "otp_enroll", "change_password", "blocked_account", "password_breach"]);
    for t in list["templates"].as_array().unwrap() {
        assert!(t.get("id").is_none(), "defaults carry no id: {t}");
        assert_eq!((t["channel"].as_str(), t["disabled"].as_bool()), (Some("phone"), Some(false)));
        assert_eq!(t["content"]["syntax"], "liquid");
    }
    let verify = template(&list, "otp_verify");
    assert_eq!(verify["content"]["body"]["text"], "{{code}} is your verification code for {{tenant.friendly_name}}");
    assert_eq!(verify["content"]["body"]["voice"], verify["content"]["body"]["text"], "voice speaks the text");
    assert!(
        template(&list, "change_password")["content"]["body"]["voice"]
            .as_str()
            .unwrap()
            .starts_with("Hello. Your password change code")
    );

    // A Guardian template change shows here: one configuration.
    let (s, v) = put(
        &t,
        &admin,
        "/api/v2/guardian/factors/phone/templates",
        json!({"enrollment_message": "{{code}} enrolls you", "verification_message": "{{code}} verifies you"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, list) = t.get(&admin, "/api/v2/branding/phone/templates").await;
    assert_eq!(template(&list, "otp_enroll")["content"]["body"]["text"], "{{code}} enrolls you");
    assert_eq!(template(&list, "otp_verify")["content"]["body"]["text"], "{{code}} verifies you");
    t.stop().await;
}

#[tokio::test]
async fn templates_create_patch_reset_delete_and_try() {
    let t = TestApp::spawn().await;
    let admin = t.mgmt_token().await;
    let (s, v) = t
        .post(
            &admin,
            "/api/v2/branding/phone/templates",
            json!({"type": "otp_verify", "content": {"body": {"text": "{{ code }} for {{ friendly_name }}", "voice": "Code {{ pause }}{{ code }}"}}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("tem_") && id.len() == 26, "{id}");
    assert_eq!(v["content"]["body"]["voice"], "Code {{ pause }}{{ code }}");
    let (_, g) = t.get(&admin, "/api/v2/guardian/factors/phone/templates").await;
    assert_eq!(g["verification_message"], "{{ code }} for {{ friendly_name }}", "the text body is Guardian's");

    // One per type.
    let (s, v) = t.post(&admin, "/api/v2/branding/phone/templates", json!({"type": "otp_verify"})).await;
    assert_eq!((s, v["message"].as_str()), (409, Some("Phone template already configured for tenant")), "{v}");
    // Bad input: unknown type, bad Liquid (named), an over-long sender, nothing to change.
    let (s, v) = t.post(&admin, "/api/v2/branding/phone/templates", json!({"type": "otp_email"})).await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = t
        .patch(
            &admin,
            &format!("/api/v2/branding/phone/templates/{id}"),
            json!({"content": {"body": {"text": "{% if %}"}}}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["message"].as_str().unwrap().starts_with("Invalid content.body.text template: "), "{v}");
    let (s, _) = t
        .patch(
            &admin,
            &format!("/api/v2/branding/phone/templates/{id}"),
            json!({"content": {"from": "+1234567890123456789"}}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = t.patch(&admin, &format!("/api/v2/branding/phone/templates/{id}"), json!({})).await;
    assert_eq!(s, 400);
    let (s, v) = t.get(&admin, "/api/v2/branding/phone/templates/tem_nope").await;
    assert_eq!((s, v["message"].as_str()), (404, Some("Phone template does not exist")));

    // try renders the template (code 123456) and sends it through the selected provider: the dev inbox.
    let (s, v) = t.post(&admin, &format!("/api/v2/branding/phone/templates/{id}/try"), json!({"to": PHONE})).await;
    assert_eq!((s, v["code"].as_i64()), (202, Some(202)), "{v}");
    let (s, v) = t
        .post(
            &admin,
            &format!("/api/v2/branding/phone/templates/{id}/try"),
            json!({"to": PHONE, "delivery_method": "voice"}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let msgs = t.inbox(PHONE, 2).await;
    assert_eq!((msgs[1].channel.as_str(), msgs[1].text.as_str()), ("sms", "123456 for Callsign"));
    assert_eq!((msgs[0].channel.as_str(), msgs[0].text.as_str()), ("voice", "Code ... 1.2.3.4.5.6"));
    let (s, v) = t.post(&admin, &format!("/api/v2/branding/phone/templates/{id}/try"), json!({"to": "12"})).await;
    assert_eq!(s, 400, "{v}");
    // A test message obeys the phone destination policy: a premium-rate number gets nothing.
    let (s, v) =
        t.post(&admin, &format!("/api/v2/branding/phone/templates/{id}/try"), json!({"to": "+449098765432"})).await;
    assert_eq!((s, v["errorCode"].as_str()), (400, Some("phone_provider_error")), "{v}");
    assert!(v["message"].as_str().unwrap().contains("premium_rate"), "{v}");
    assert_eq!(t.app.store.count_dev_messages().await.unwrap(), 2, "nothing more was sent");
    let (s, v) = t
        .post(
            &admin,
            &format!("/api/v2/branding/phone/templates/{id}/try"),
            json!({"to": PHONE, "delivery_method": "fax"}),
        )
        .await;
    assert_eq!(s, 400, "{v}");

    // Disabled: listed as such, and filtered.
    let (s, v) = t.patch(&admin, &format!("/api/v2/branding/phone/templates/{id}"), json!({"disabled": true})).await;
    assert_eq!((s, &v["disabled"]), (200, &json!(true)), "{v}");
    let (_, list) = t.get(&admin, "/api/v2/branding/phone/templates?disabled=true").await;
    assert_eq!(list["templates"].as_array().unwrap().len(), 1);
    let (_, list) = t.get(&admin, "/api/v2/branding/phone/templates?disabled=false").await;
    assert_eq!(list["templates"].as_array().unwrap().len(), 4);

    // reset: the built-in bodies again, same id.
    let r = t
        .http
        .patch(t.url(&format!("/api/v2/branding/phone/templates/{id}/reset")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], id);
    assert_eq!(v["content"]["body"]["text"], "{{code}} is your verification code for {{tenant.friendly_name}}");
    assert_eq!(v["content"]["body"]["voice"], v["content"]["body"]["text"]);

    // delete: back to an uncustomised default, and a second delete is a 404.
    let (s, _) = t.delete(&admin, &format!("/api/v2/branding/phone/templates/{id}")).await;
    assert_eq!(s, 204);
    let (s, _) = t.delete(&admin, &format!("/api/v2/branding/phone/templates/{id}")).await;
    assert_eq!(s, 404);
    let (_, list) = t.get(&admin, "/api/v2/branding/phone/templates").await;
    assert!(template(&list, "otp_verify").get("id").is_none());

    // Each change is a gd_tenant_update naming the template.
    let (_, logs) = t.get(&admin, "/api/v2/logs?q=type:gd_tenant_update&per_page=50").await;
    assert!(
        logs.as_array().unwrap().iter().any(|e| e["details"]["branding_phone"]["template"]["reset"] == true),
        "{logs}"
    );
    t.stop().await;
}

/// The MFA flow sends what the templates say: the voice body for calls, the built-in text when disabled.
#[tokio::test]
async fn the_mfa_flow_uses_the_templates() {
    let t = TestApp::spawn().await;
    let admin = t.mgmt_token().await;
    for (path, body) in [
        ("/api/v2/guardian/factors/sms", json!({"enabled": true})),
        ("/api/v2/guardian/policies", json!(["all-applications"])),
        ("/api/v2/guardian/factors/phone/message-types", json!({"message_types": ["sms", "voice"]})),
    ] {
        let (s, v) = put(&t, &admin, path, body).await;
        assert_eq!(s, 200, "{path}: {v}");
    }
    let (s, tpl) = t
        .post(
            &admin,
            "/api/v2/branding/phone/templates",
            json!({"type": "otp_enroll", "content": {"body": {"text": "Enroll {{code}} at {{ support_email }}", "voice": "Spoken {{code}}"}}}),
        )
        .await;
    assert_eq!(s, 201, "{tpl}");
    let (s, v) = t.patch(&admin, "/api/v2/tenants/settings", json!({"support_email": "help@example.com"})).await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = t
        .post(
            &admin,
            "/api/v2/users",
            json!({"connection": "Username-Password-Authentication", "email": "cy@example.com", "password": PW}),
        )
        .await;
    assert_eq!(s, 201);
    let (_, c) = t
        .post(&admin, "/api/v2/clients", json!({"name": "app", "app_type": "regular_web", "grant_types": ["password", "http://auth0.com/oauth/grant-type/mfa-oob"]}))
        .await;
    let login = || {
        t.token_request(json!({"grant_type": "password", "client_id": c["client_id"], "client_secret": c["client_secret"], "username": "cy@example.com", "password": PW}))
    };
    let associate = |mfa: String, channel: &'static str| {
        let r = t
            .http
            .post(t.url("/mfa/associate"))
            .bearer_auth(mfa)
            .json(&json!({"authenticator_types": ["oob"], "oob_channels": [channel], "phone_number": PHONE}));
        async move { r.send().await.unwrap().status() }
    };
    let (_, v) = login().await;
    let mfa = v["mfa_token"].as_str().unwrap().to_owned();
    assert_eq!(associate(mfa.clone(), "sms").await, 200);
    assert_eq!(t.inbox(PHONE, 1).await[0].text, format!("Enroll {} at help@example.com", t.code_for(PHONE, 1).await));
    assert_eq!(associate(mfa.clone(), "voice").await, 200);
    let voice = &t.inbox(PHONE, 2).await[0];
    assert_eq!(voice.channel, "voice");
    assert!(voice.text.starts_with("Spoken "), "{}", voice.text);

    let (s, _) = t
        .patch(
            &admin,
            &format!("/api/v2/branding/phone/templates/{}", tpl["id"].as_str().unwrap()),
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(associate(mfa, "sms").await, 200);
    let text = &t.inbox(PHONE, 3).await[0].text;
    assert!(
        text.ends_with("is your verification code for Callsign. Please enter this code to verify your enrollment."),
        "{text}"
    );
    t.stop().await;
}

/// The Unified Phone Experience provider checks Twilio's shapes on create and on update, as the Guardian endpoint
/// does: `sid` an Account SID, `mssid` a Messaging Service SID, `default_from` an E.164 number or an alphanumeric
/// sender ID. A refusal names the property in plain words and changes nothing.
#[tokio::test]
async fn twilio_configuration_of_the_wrong_shape_is_refused_with_the_reason() {
    let t = TestApp::spawn().await;
    let admin = t.mgmt_token().await;
    let providers = "/api/v2/branding/phone/providers";
    let create = |conf: Value| json!({"name": "twilio", "credentials": {"auth_token": "0123456789abcdefXYZW"}, "configuration": conf});
    let rule = "A sender is a phone number in E.164 form (+ and 8 to 15 digits, e.g. +15005550006) or an alphanumeric \
                sender ID (1 to 11 letters, digits or spaces, at least one letter)";
    for (conf, message) in [
        (
            json!({"sid": "AC123", "default_from": "+15005550006", "delivery_methods": ["text"]}),
            "Payload validation error: 'An Account SID is AC followed by 32 hexadecimal digits (found 5 characters)' on property configuration.sid.".to_owned(),
        ),
        (
            json!({"sid": MG, "default_from": "+15005550006", "delivery_methods": ["text"]}),
            "Payload validation error: 'An Account SID is AC followed by 32 hexadecimal digits (found MG: that is a Messaging Service SID)' on property configuration.sid.".to_owned(),
        ),
        (
            json!({"sid": SID, "mssid": "MG0123", "delivery_methods": ["text"]}),
            "Payload validation error: 'A Messaging Service SID is MG followed by 32 hexadecimal digits (found 6 characters)' on property configuration.mssid.".to_owned(),
        ),
        (
            json!({"sid": SID, "default_from": "+1555", "delivery_methods": ["text"]}),
            format!("Payload validation error: '{rule} (found 4 digits after the +)' on property configuration.default_from."),
        ),
        (
            json!({"sid": SID, "default_from": "Callsign Ltd", "delivery_methods": ["text"]}),
            format!("Payload validation error: '{rule} (found 12 characters)' on property configuration.default_from."),
        ),
        (
            json!({"sid": SID, "default_from": "4155552671", "delivery_methods": ["text"]}),
            format!("Payload validation error: '{rule} (found only digits: a phone number starts with + and its country code)' on property configuration.default_from."),
        ),
    ] {
        let (s, v) = t.post(&admin, providers, create(conf.clone())).await;
        assert_eq!(
            (s, v),
            (400, json!({"statusCode": 400, "error": "Bad Request", "errorCode": "invalid_body", "message": message})),
            "{conf}"
        );
    }
    assert_eq!(t.get(&admin, providers).await.1, json!({"providers": []}), "nothing was created");

    // Accepted: upper-case hex digits, an alphanumeric sender of 11 characters.
    let conf = json!({"sid": SID.to_uppercase(), "default_from": "Callsign 11", "delivery_methods": ["text"]});
    let (s, p) = t.post(&admin, providers, create(conf.clone())).await;
    assert_eq!(s, 201, "{p}");
    assert_eq!(p["configuration"]["default_from"], "Callsign 11");
    let one = format!("{providers}/{}", p["id"].as_str().unwrap());

    // PATCH checks the same; a refusal keeps the stored configuration.
    let (s, v) = t
        .patch(&admin, &one, json!({"configuration": {"sid": "ACxyz", "mssid": MG, "delivery_methods": ["text"]}}))
        .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(
        v["message"],
        "Payload validation error: 'An Account SID is AC followed by 32 hexadecimal digits (found 5 characters)' on property configuration.sid."
    );
    let (s, v) = t
        .patch(
            &admin,
            &one,
            json!({"configuration": {"sid": SID, "mssid": format!("{MG}0"), "delivery_methods": ["text"]}}),
        )
        .await;
    assert_eq!(
        (s, v["message"].as_str().map(|m| m.contains("(found 35 characters)' on property configuration.mssid."))),
        (400, Some(true)),
        "{v}"
    );
    assert_eq!(t.get(&admin, &one).await.1["configuration"], conf);
    let (s, v) = t
        .patch(&admin, &one, json!({"configuration": {"sid": SID, "mssid": MG.to_uppercase(), "default_from": "+123456789012345", "delivery_methods": ["text"]}}))
        .await;
    assert_eq!(s, 200, "{v}");
    let g = t.get(&admin, "/api/v2/guardian/factors/phone/providers/twilio").await.1;
    assert_eq!((g["sid"].as_str(), g["from"].as_str()), (Some(SID), Some("+123456789012345")));
    t.stop().await;
}

#[tokio::test]
async fn providers_are_one_view_of_guardian() {
    let t = TestApp::spawn().await;
    let admin = t.mgmt_token().await;
    let (s, v) = t.get(&admin, "/api/v2/branding/phone/providers").await;
    assert_eq!((s, v), (200, json!({"providers": []})));
    let (s, v) = t.get(&admin, "/api/v2/branding/phone/providers/pro_nope").await;
    assert_eq!((s, v["message"].as_str()), (404, Some("Notification Resource not found")));

    // Bad input, each a 400 in the Management shape.
    for body in [
        json!({"name": "vonage", "credentials": {}, "configuration": {"delivery_methods": ["text"]}}),
        json!({"name": "twilio", "configuration": {"sid": SID, "default_from": "+15005550006", "delivery_methods": ["text"]}}),
        json!({"name": "twilio", "credentials": {"auth_token": "tok"}, "configuration": {"default_from": "+15005550006", "delivery_methods": ["text"]}}),
        json!({"name": "twilio", "credentials": {"auth_token": "tok"}, "configuration": {"sid": SID, "delivery_methods": ["text"]}}),
        json!({"name": "custom", "credentials": {}, "configuration": {"delivery_methods": []}}),
        json!({"name": "custom", "credentials": {}, "configuration": {"delivery_methods": ["text"]}, "extra": true}),
        // Voice through Twilio needs a From number even with a Messaging Service.
        json!({"name": "twilio", "credentials": {"auth_token": "tok"}, "configuration": {"sid": SID, "mssid": MG, "delivery_methods": ["voice"]}}),
        // An alphanumeric sender ID sends SMS only: a call needs a number.
        json!({"name": "twilio", "credentials": {"auth_token": "tok"}, "configuration": {"sid": SID, "default_from": "Acme", "delivery_methods": ["text", "voice"]}}),
    ] {
        let (s, v) = t.post(&admin, "/api/v2/branding/phone/providers", body.clone()).await;
        assert_eq!((s, v["statusCode"].as_u64()), (400, Some(400)), "{body} → {v}");
    }
    let (_, g) = t.get(&admin, "/api/v2/guardian/factors/phone/selected-provider").await;
    assert_eq!(g["provider"], "auth0", "a refused create changes nothing");
    let alnum_voice = json!({"name": "twilio", "credentials": {"auth_token": "tok"}, "configuration": {"sid": SID, "default_from": "Acme", "delivery_methods": ["voice"]}});
    let (_, v) = t.post(&admin, "/api/v2/branding/phone/providers", alnum_voice).await;
    assert!(v["message"].as_str().unwrap().contains("Voice calls come from a phone number"), "{v}");

    // custom = the phone-message-hook provider; its delivery methods are the message types.
    let (s, p) = t
        .post(
            &admin,
            "/api/v2/branding/phone/providers",
            json!({"name": "custom", "credentials": {}, "configuration": {"delivery_methods": ["voice"]}}),
        )
        .await;
    assert_eq!(s, 201, "{p}");
    assert_eq!(p["configuration"], json!({"delivery_methods": ["voice"]}));
    assert_eq!(p["channel"], "phone");
    assert!(p["tenant"].as_str().unwrap().starts_with("127.0.0.1:"), "the public host: {p}");
    let id = p["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("pro_") && id.len() == 26);
    let (_, g) = t.get(&admin, "/api/v2/guardian/factors/phone/selected-provider").await;
    assert_eq!(g["provider"], "phone-message-hook");
    let (_, g) = t.get(&admin, "/api/v2/guardian/factors/phone/message-types").await;
    assert_eq!(g["message_types"], json!(["voice"]));
    let (s, v) = t
        .post(
            &admin,
            "/api/v2/branding/phone/providers",
            json!({"name": "custom", "credentials": {}, "configuration": {"delivery_methods": ["text"]}}),
        )
        .await;
    assert_eq!((s, v["message"].as_str()), (409, Some("Custom phone provider conflict.")), "{v}");

    // Guardian's message types show up as delivery methods; Guardian's provider choice as `disabled`.
    let (s, _) =
        put(&t, &admin, "/api/v2/guardian/factors/phone/message-types", json!({"message_types": ["sms", "voice"]}))
            .await;
    assert_eq!(s, 200);
    let (s, _) =
        put(&t, &admin, "/api/v2/guardian/factors/phone/selected-provider", json!({"provider": "auth0"})).await;
    assert_eq!(s, 200);
    let (_, v) = t.get(&admin, "/api/v2/branding/phone/providers").await;
    assert_eq!(v["providers"][0]["configuration"]["delivery_methods"], json!(["text", "voice"]));
    assert_eq!(v["providers"][0]["disabled"], true);
    assert_eq!(v["providers"][0]["credentials"], Value::Null);
    let (_, v) = t.get(&admin, "/api/v2/branding/phone/providers?disabled=false").await;
    assert_eq!(v["providers"], json!([]));

    // try through the custom provider without a configured hook: a 400 that says why, logged as a failure.
    let (s, v) = t.post(&admin, &format!("/api/v2/branding/phone/providers/{id}/try"), json!({"to": PHONE})).await;
    assert_eq!((s, v["errorCode"].as_str()), (400, Some("phone_provider_error")), "{v}");

    // PATCH: nothing → 400; switch to Twilio needs its configuration and token.
    let (s, _) = t.patch(&admin, &format!("/api/v2/branding/phone/providers/{id}"), json!({})).await;
    assert_eq!(s, 400);
    let (s, _) = t.patch(&admin, &format!("/api/v2/branding/phone/providers/{id}"), json!({"name": "twilio"})).await;
    assert_eq!(s, 400);
    let (s, v) = t
        .patch(
            &admin,
            &format!("/api/v2/branding/phone/providers/{id}"),
            json!({"name": "twilio", "disabled": false, "credentials": {"auth_token": "0123456789abcdefXYZW"},
                   "configuration": {"sid": SID, "default_from": "+15005550006", "delivery_methods": ["text"]}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["configuration"], json!({"sid": SID, "default_from": "+15005550006", "delivery_methods": ["text"]}));
    let (_, g) = t.get(&admin, "/api/v2/guardian/factors/phone/providers/twilio").await;
    assert_eq!(g["auth_token"], "****XYZW");
    let (_, g) = t.get(&admin, "/api/v2/guardian/factors/phone/selected-provider").await;
    assert_eq!(g["provider"], "twilio");

    let (s, _) = t.delete(&admin, &format!("/api/v2/branding/phone/providers/{id}")).await;
    assert_eq!(s, 204);
    let (s, _) = t.delete(&admin, &format!("/api/v2/branding/phone/providers/{id}")).await;
    assert_eq!(s, 404);
    let (_, g) = t.get(&admin, "/api/v2/guardian/factors/phone/selected-provider").await;
    assert_eq!(g["provider"], "auth0");
    t.stop().await;
}

#[tokio::test]
async fn each_endpoint_checks_its_scope() {
    let t = TestApp::spawn().await;
    let reader = t.token_with_scopes(&["read:phone_providers", "read:phone_templates"]).await;
    let (s, _) = t.get(&reader, "/api/v2/branding/phone/providers").await;
    assert_eq!(s, 200);
    let (s, _) = t.get(&reader, "/api/v2/branding/phone/templates").await;
    assert_eq!(s, 200);
    let (s, v) = t.post(&reader, "/api/v2/branding/phone/providers", json!({"name": "custom"})).await;
    assert_eq!((s, v["message"].as_str()), (403, Some("Insufficient scope, expected any of: create:phone_providers")));
    let (s, v) = t.post(&reader, "/api/v2/branding/phone/templates", json!({"type": "otp_verify"})).await;
    assert_eq!((s, v["message"].as_str()), (403, Some("Insufficient scope, expected any of: create:phone_templates")));
    let (s, _) = t.patch(&reader, "/api/v2/branding/phone/templates/tem_x", json!({"disabled": true})).await;
    assert_eq!(s, 403);
    let (s, _) = t.delete(&reader, "/api/v2/branding/phone/providers/pro_x").await;
    assert_eq!(s, 403);
    let guardian = t.token_with_scopes(&["read:guardian_factors"]).await;
    let (s, _) = t.get(&guardian, "/api/v2/branding/phone/providers").await;
    assert_eq!(s, 403);
    t.stop().await;
}

/// a0deploy creates and patches every template at once: writes of different templates must all succeed (each is
/// re-applied over the others'), and only writes of the same template conflict.
#[tokio::test]
async fn parallel_writes_of_different_templates_all_succeed() {
    let t = std::sync::Arc::new(TestApp::spawn().await);
    let admin = t.mgmt_token().await;
    let kinds = ["otp_verify", "otp_enroll", "change_password", "blocked_account", "password_breach"];
    for round in 0..3 {
        let mut tasks = Vec::new();
        for kind in kinds {
            let (t, admin) = (t.clone(), admin.clone());
            tasks.push(tokio::spawn(async move {
                let body = json!({"content": {"body": {"text": format!("{{{{ code }}}} {kind} {round}")}}});
                if round == 0 {
                    let mut b = body;
                    b["type"] = json!(kind);
                    t.post(&admin, "/api/v2/branding/phone/templates", b).await
                } else {
                    let (_, list) = t.get(&admin, "/api/v2/branding/phone/templates").await;
                    let id = template(&list, kind)["id"].as_str().unwrap().to_owned();
                    t.patch(&admin, &format!("/api/v2/branding/phone/templates/{id}"), body).await
                }
            }));
        }
        for task in tasks {
            let (s, v) = task.await.unwrap();
            assert!(s == 200 || s == 201, "round {round}: {s} {v}");
        }
        let (_, list) = t.get(&admin, "/api/v2/branding/phone/templates").await;
        for kind in kinds {
            assert_eq!(
                template(&list, kind)["content"]["body"]["text"],
                format!("{{{{ code }}}} {kind} {round}"),
                "round {round}"
            );
        }
    }
}
