//! How the Twilio settings appear in the Management API, as pure functions over [`crate::ProviderSettings`] values:
//!
//! - the Guardian endpoints `GET|PUT /guardian/factors/phone/providers/twilio` (and the deprecated `sms` twin):
//!   `{from, messaging_service_sid, auth_token, sid}`, the token masked ([`guardian_view`]); a `PUT` changes and
//!   echoes only the keys it was sent, `null` clearing one ([`apply_guardian_update`]);
//! - the Unified Phone Experience provider record: `configuration: {sid, default_from, mssid}` (beside the
//!   caller's `delivery_methods`) and `credentials: {auth_token}` ([`upe_configuration`],
//!   [`apply_upe_configuration`], [`upe_credentials`]);
//! - the names of the sealed secret that holds the token ([`LEGACY_TOKEN_SECRET`], [`new_token_secret_name`]).
use std::collections::BTreeMap;

use callsign_domain::RandomSource;
use callsign_domain::rng::{ALNUM, from_alphabet};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::kind::{FieldProblem, ProblemKind, SecretState, check_string, only_keys};

/// The sealed secret that held the auth token before tokens were versioned (still read for old installations).
pub const LEGACY_TOKEN_SECRET: &str = "guardian/twilio/auth_token";

/// A fresh sealed-secret name for a new auth token: `guardian/twilio/auth_token/<16 letters and digits>`. Each new
/// token gets a new name, so the configuration's compare-and-set switches token and settings together.
pub fn new_token_secret_name(rng: &dyn RandomSource) -> String {
    format!("{LEGACY_TOKEN_SECRET}/{}", from_alphabet(rng, ALNUM, 16))
}

/// How a stored auth token is shown: `****` plus its last four characters, only `****` when it is shorter than 12
/// characters (too short to give away four safely).
pub fn mask_token(token: &str) -> String {
    let n = token.chars().count();
    if n < 12 {
        return "****".to_owned();
    }
    let tail: String = token.chars().skip(n - 4).collect();
    format!("****{tail}")
}

fn masked(token: SecretState<'_>) -> Value {
    match token {
        SecretState::Absent => Value::Null,
        SecretState::Plain(t) => json!(mask_token(t)),
        SecretState::Unreadable => json!("****"),
    }
}

fn get(values: &Map<String, Value>, key: &str) -> Value {
    values.get(key).cloned().unwrap_or(Value::Null)
}

/// The Guardian `GET …/providers/twilio` answer: all four keys, `null` when unset, the token masked.
pub fn guardian_view(values: &Map<String, Value>, token: SecretState<'_>) -> Value {
    json!({
        "from": get(values, "from"),
        "messaging_service_sid": get(values, "messaging_service_sid"),
        "auth_token": masked(token),
        "sid": get(values, "sid"),
    })
}

/// Absent → `None`, JSON null → `Some(None)`, a value → `Some(Some(v))`.
fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// The body of a Guardian `PUT …/providers/twilio`: each key absent (unchanged), null (cleared) or a string.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct GuardianBody {
    #[serde(deserialize_with = "nullable")]
    from: Option<Option<String>>,
    #[serde(deserialize_with = "nullable")]
    messaging_service_sid: Option<Option<String>>,
    #[serde(deserialize_with = "nullable")]
    auth_token: Option<Option<String>>,
    #[serde(deserialize_with = "nullable")]
    sid: Option<Option<String>>,
}

fn check_len(prop: &str, v: &Option<Option<String>>, min: usize, max: usize) -> Result<(), FieldProblem> {
    match v {
        Some(Some(s)) => check_string(prop, s, min, max),
        _ => Ok(()),
    }
}

/// What a Guardian `PUT …/providers/twilio` changes: the new values are already applied; the token change is for
/// the caller to seal (or delete) in the same write.
pub struct GuardianChange {
    /// `None`: keep the token; `Some(None)`: clear it; `Some(Some(t))`: set `t`.
    pub token: Option<Option<Zeroizing<String>>>,
    echo: Map<String, Value>,
    details: Map<String, Value>,
}

impl GuardianChange {
    /// The `PUT` answer: only the keys sent, the token masked (`null` when cleared).
    pub fn echo(&self) -> Value {
        let mut echo = self.echo.clone();
        match &self.token {
            Some(Some(t)) => {
                echo.insert("auth_token".into(), json!(mask_token(t)));
            }
            Some(None) => {
                echo.insert("auth_token".into(), Value::Null);
            }
            None => {}
        }
        Value::Object(echo)
    }

    /// The `gd_tenant_update` details: `{"twilio": {key: value…, "auth_token": "set" | "cleared"}}`, never the
    /// token.
    pub fn audit_details(&self) -> Value {
        let mut details = self.details.clone();
        match &self.token {
            Some(Some(_)) => {
                details.insert("auth_token".into(), json!("set"));
            }
            Some(None) => {
                details.insert("auth_token".into(), json!("cleared"));
            }
            None => {}
        }
        json!({ super::NAME: details })
    }
}

impl std::fmt::Debug for GuardianChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardianChange").field("echo", &self.echo).finish_non_exhaustive()
    }
}

/// Check a Guardian `PUT …/providers/twilio` body and apply it to `values`: `from` 0–64 characters,
/// `messaging_service_sid`, `auth_token` and `sid` 1–1000 each, no control characters; unknown keys refused. On an
/// error `values` is unchanged. (The caller then runs [`super::TwilioKind`]'s `check_selection` when Twilio is
/// selected, seals the token, and saves.)
pub fn apply_guardian_update(body: &Value, values: &mut Map<String, Value>) -> Result<GuardianChange, FieldProblem> {
    let b: GuardianBody = serde_json::from_value(body.clone()).map_err(|e| FieldProblem {
        field: String::new(),
        kind: ProblemKind::Body,
        message: e.to_string(),
    })?;
    check_len("from", &b.from, 0, 64)?;
    check_len("messaging_service_sid", &b.messaging_service_sid, 1, 1000)?;
    check_len("auth_token", &b.auth_token, 1, 1000)?;
    check_len("sid", &b.sid, 1, 1000)?;
    let mut echo = Map::new();
    for (key, given) in [("from", b.from), ("messaging_service_sid", b.messaging_service_sid), ("sid", b.sid)] {
        if let Some(v) = given {
            echo.insert(key.to_owned(), json!(v));
            values.insert(key.to_owned(), json!(v));
        }
    }
    let details = echo.clone();
    Ok(GuardianChange { token: b.auth_token.map(|t| t.map(Zeroizing::new)), echo, details })
}

/// The UPE `configuration` members: `sid`, `default_from`, `mssid`, each only when set.
pub fn upe_configuration(values: &Map<String, Value>) -> Map<String, Value> {
    let mut conf = Map::new();
    for (k, v) in [("sid", "sid"), ("default_from", "from"), ("mssid", "messaging_service_sid")] {
        if let Some(s) = values.get(v).filter(|s| s.is_string()) {
            conf.insert(k.to_owned(), s.clone());
        }
    }
    conf
}

/// A string of `min..=max` characters without control characters, as the UPE endpoints check them.
fn string_in(prop: &str, v: &Value, min: usize, max: usize) -> Result<String, FieldProblem> {
    let s = v.as_str().ok_or_else(|| FieldProblem::invalid(prop, "Expected type string"))?;
    check_string(prop, s, min, max)?;
    Ok(s.to_owned())
}

/// Apply a UPE `configuration` (the caller has checked `delivery_methods`): only `sid`, `default_from`, `mssid`
/// and `delivery_methods`; `sid` required (1–255); a sender required: `default_from` (1–64) or `mssid` (1–255).
/// It replaces `sid`, `from` and `messaging_service_sid` as a whole. On an error `values` is unchanged.
pub fn apply_upe_configuration(conf: &Map<String, Value>, values: &mut Map<String, Value>) -> Result<(), FieldProblem> {
    only_keys("configuration", conf, &["sid", "default_from", "mssid", "delivery_methods"])?;
    let sid = conf.get("sid").ok_or_else(|| FieldProblem::missing("configuration.sid", "sid"))?;
    let sid = string_in("configuration.sid", sid, 1, 255)?;
    let opt = |k: &str, max: usize| -> Result<Option<String>, FieldProblem> {
        match conf.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => string_in(&format!("configuration.{k}"), v, 1, max).map(Some),
        }
    };
    let from = opt("default_from", 64)?;
    let mssid = opt("mssid", 255)?;
    if from.is_none() && mssid.is_none() {
        return Err(FieldProblem::invalid(
            "configuration",
            "Twilio needs a sender: set default_from (a phone number) or mssid (a Messaging Service SID)",
        ));
    }
    values.insert("sid".into(), json!(sid));
    values.insert("from".into(), json!(from));
    values.insert("messaging_service_sid".into(), json!(mssid));
    Ok(())
}

/// Check UPE `credentials`: an object with only `auth_token` (required, 1–255 characters). Returns
/// `{"auth_token": token}`.
pub fn upe_credentials(credentials: &Value) -> Result<BTreeMap<String, Zeroizing<String>>, FieldProblem> {
    let o = credentials.as_object().ok_or_else(|| FieldProblem::invalid("credentials", "Expected type object"))?;
    only_keys("credentials", o, &["auth_token"])?;
    let t = o.get("auth_token").ok_or_else(|| FieldProblem::missing("credentials.auth_token", "auth_token"))?;
    let token = Zeroizing::new(string_in("credentials.auth_token", t, 1, 255)?);
    Ok(BTreeMap::from([("auth_token".to_owned(), token)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn tokens_are_masked() {
        assert_eq!(mask_token("0123456789abcdef0123456789abcdef"), "****cdef");
        assert_eq!(mask_token("short"), "****");
        assert_eq!(mask_token("12345678901"), "****");
        assert_eq!(mask_token("123456789012"), "****9012");
    }

    #[test]
    fn the_guardian_view_has_all_four_keys() {
        assert_eq!(
            guardian_view(&Map::new(), SecretState::Absent),
            json!({"from": null, "messaging_service_sid": null, "auth_token": null, "sid": null})
        );
        let v = obj(json!({"sid": "AC1", "from": "+15005550006", "messaging_service_sid": null, "other": 1}));
        assert_eq!(
            guardian_view(&v, SecretState::Plain("f00dfeedf00dfeedf00dfeedf00dfeed")),
            json!({"from": "+15005550006", "messaging_service_sid": null, "auth_token": "****feed", "sid": "AC1"})
        );
        assert_eq!(guardian_view(&v, SecretState::Unreadable)["auth_token"], "****");
    }

    #[test]
    fn a_guardian_put_changes_and_echoes_only_what_it_was_sent() {
        let mut v = obj(json!({"sid": "AC1", "from": "+15005550006", "messaging_service_sid": "MG1"}));
        let c = apply_guardian_update(&json!({"from": null, "auth_token": "f00dfeedf00dfeedf00dfeedf00dfeed"}), &mut v)
            .unwrap();
        assert_eq!(v, obj(json!({"sid": "AC1", "from": null, "messaging_service_sid": "MG1"})));
        assert_eq!(c.echo(), json!({"from": null, "auth_token": "****feed"}));
        assert_eq!(c.audit_details(), json!({"twilio": {"from": null, "auth_token": "set"}}));
        assert_eq!(
            c.token.as_ref().map(|t| t.as_ref().map(|t| t.as_str())),
            Some(Some("f00dfeedf00dfeedf00dfeedf00dfeed"))
        );

        let c = apply_guardian_update(&json!({"auth_token": null, "sid": "AC2"}), &mut v).unwrap();
        assert_eq!(c.echo(), json!({"auth_token": null, "sid": "AC2"}));
        assert_eq!(c.audit_details(), json!({"twilio": {"sid": "AC2", "auth_token": "cleared"}}));
        assert!(matches!(c.token, Some(None)));
        let c = apply_guardian_update(&json!({}), &mut v).unwrap();
        assert_eq!((c.echo(), c.token.is_none()), (json!({}), true));

        let before = v.clone();
        for (body, msg) in [
            (
                json!({"from": "x".repeat(65)}),
                "Payload validation error: 'String is too long (64 chars max)' on property from.",
            ),
            (json!({"sid": ""}), "Payload validation error: 'String is too short (1 chars min)' on property sid."),
            (
                json!({"auth_token": "a\u{7}b"}),
                "Payload validation error: 'String contains control characters' on property auth_token.",
            ),
            (
                json!({"messaging_service_sid": "x".repeat(1001)}),
                "Payload validation error: 'String is too long (1000 chars max)' on property messaging_service_sid.",
            ),
        ] {
            assert_eq!(apply_guardian_update(&body, &mut v).unwrap_err().api_message(), msg);
        }
        let e = apply_guardian_update(&json!({"extra": 1}), &mut v).unwrap_err();
        assert!(e.api_message().starts_with("Payload validation error: 'unknown field `extra`"), "{}", e.api_message());
        assert!(apply_guardian_update(&json!({"sid": 5}), &mut v).is_err());
        assert!(apply_guardian_update(&json!("AC1"), &mut v).is_err());
        assert_eq!(v, before, "a refused update changes nothing");
        // An empty `from` is allowed (0 characters min).
        assert!(apply_guardian_update(&json!({"from": ""}), &mut v).is_ok());
    }

    #[test]
    fn upe_configuration_maps_to_the_settings() {
        let mut v = Map::new();
        let conf = obj(json!({"sid": "AC1", "default_from": "+15550001111", "delivery_methods": ["voice", "text"]}));
        apply_upe_configuration(&conf, &mut v).unwrap();
        assert_eq!(v, obj(json!({"sid": "AC1", "from": "+15550001111", "messaging_service_sid": null})));
        assert_eq!(upe_configuration(&v), obj(json!({"sid": "AC1", "default_from": "+15550001111"})));
        for (bad, msg) in [
            (
                json!({"sid": "AC1", "delivery_methods": ["text"]}),
                "Payload validation error: 'Twilio needs a sender: set default_from (a phone number) or mssid (a Messaging Service SID)' on property configuration.",
            ),
            (
                json!({"default_from": "+1", "delivery_methods": ["text"]}),
                "Payload validation error: 'Missing required property: configuration.sid'.",
            ),
            (
                json!({"sid": "AC1", "default_from": "+1", "extra": 1}),
                "Payload validation error: 'Additional properties not allowed: extra; allowed are sid, default_from, mssid, delivery_methods' on property configuration.",
            ),
            (
                json!({"sid": 1, "default_from": "+1"}),
                "Payload validation error: 'Expected type string' on property configuration.sid.",
            ),
            (
                json!({"sid": "AC1", "default_from": "x".repeat(65)}),
                "Payload validation error: 'String is too long (64 chars max)' on property configuration.default_from.",
            ),
        ] {
            assert_eq!(apply_upe_configuration(&obj(bad.clone()), &mut v).unwrap_err().api_message(), msg, "{bad}");
        }
    }

    #[test]
    fn upe_credentials_are_the_auth_token() {
        let c = upe_credentials(&json!({"auth_token": "tok"})).unwrap();
        assert_eq!(c.get("auth_token").map(|t| t.as_str()), Some("tok"));
        assert_eq!(
            upe_credentials(&json!({})).unwrap_err().api_message(),
            "Payload validation error: 'Missing required property: credentials.auth_token'."
        );
        assert!(upe_credentials(&json!({"auth_token": ""})).is_err());
        assert!(upe_credentials(&json!({"auth_token": "x", "sid": "y"})).is_err());
        assert_eq!(
            upe_credentials(&json!("tok")).unwrap_err().api_message(),
            "Payload validation error: 'Expected type object' on property credentials."
        );
    }

    #[test]
    fn token_secret_names() {
        let n = new_token_secret_name(&callsign_domain::SeededRandom::new(1));
        assert!(n.starts_with("guardian/twilio/auth_token/") && n.len() == LEGACY_TOKEN_SECRET.len() + 17, "{n}");
    }
}
