//! How the Twilio settings appear in the Management API, as pure functions over [`crate::ProviderSettings`] values:
//!
//! - the Guardian endpoints `GET|PUT /guardian/factors/phone/providers/twilio` (and the deprecated `sms` twin):
//!   `{from, messaging_service_sid, auth_token, sid}`, the token masked ([`guardian_view`]); a `PUT` changes and
//!   echoes only the keys it was sent, `null` clearing one ([`apply_guardian_update`]);
//! - the Unified Phone Experience provider record: `configuration: {sid, default_from, mssid}` (beside the
//!   caller's `delivery_methods`) and `credentials: {auth_token}` ([`upe_configuration`],
//!   [`apply_upe_configuration`], [`upe_credentials`]);
//! - the names of the sealed secret that holds the token ([`LEGACY_TOKEN_SECRET`], [`new_token_secret_name`]);
//! - the shapes both check when settings are written ([`check_account_sid`], [`check_messaging_service_sid`],
//!   [`check_sender`]): an Account SID is `AC` and 32 hexadecimal digits, a Messaging Service SID `MG` and 32, a
//!   sender an E.164 number or an alphanumeric sender ID. Settings stored before these checks are not re-checked:
//!   they are read and used as they are.
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

/// `1 digit`, `2 digits`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// A Twilio SID: `prefix` and 32 hexadecimal digits (either case); `what` names it in the message ("An Account
/// SID"). The message says what is wrong without repeating the value.
fn check_sid(prop: &str, s: &str, prefix: &str, what: &str) -> Result<(), FieldProblem> {
    let rule = format!("{what} is {prefix} followed by 32 hexadecimal digits");
    let n = s.chars().count();
    let problem = if n != 34 {
        format!("found {}", count(n, "character"))
    } else if !s.starts_with(prefix) {
        let head: String = s.chars().take(2).collect();
        match head.as_str() {
            "AC" => "found AC: that is an Account SID".to_owned(),
            "MG" => "found MG: that is a Messaging Service SID".to_owned(),
            _ if head.chars().all(|c| c.is_ascii_graphic()) => format!("found {head} at the start"),
            _ => format!("found another start than {prefix}"),
        }
    } else if let Some((i, c)) = s.chars().enumerate().skip(2).find(|(_, c)| !c.is_ascii_hexdigit()) {
        let shown = if c.is_ascii_graphic() { format!("'{c}'") } else { "a character".to_owned() };
        format!("{shown} at position {} is not a hexadecimal digit", i + 1)
    } else {
        return Ok(());
    };
    Err(FieldProblem::invalid(prop, format!("{rule} ({problem})")))
}

/// An Account SID: `AC` and 32 hexadecimal digits, either case (docs/openapi.json: `^AC[0-9a-fA-F]{32}$`).
pub fn check_account_sid(prop: &str, s: &str) -> Result<(), FieldProblem> {
    check_sid(prop, s, "AC", "An Account SID")
}

/// A Messaging Service SID: `MG` and 32 hexadecimal digits, either case (docs/openapi.json:
/// `^MG[0-9a-fA-F]{32}$`).
pub fn check_messaging_service_sid(prop: &str, s: &str) -> Result<(), FieldProblem> {
    check_sid(prop, s, "MG", "A Messaging Service SID")
}

/// The most characters of an alphanumeric sender ID (Twilio's limit).
pub const MAX_ALPHANUMERIC_SENDER: usize = 11;

/// A sender Twilio accepts as `From`: a number in E.164 form (`+`, a first digit 1–9, 8–15 digits in all:
/// `^\+[1-9][0-9]{7,14}$`), or an alphanumeric sender ID (1–11 letters A–Z / a–z, digits and spaces, at least one
/// letter: `^[A-Za-z0-9 ]*[A-Za-z][A-Za-z0-9 ]*$`). Only the form is checked: whether the number is one of the
/// account's is Twilio's to say when it sends.
pub fn check_sender(prop: &str, s: &str) -> Result<(), FieldProblem> {
    let refuse = |why: String| {
        Err(FieldProblem::invalid(
            prop,
            format!(
                "A sender is a phone number in E.164 form (+ and 8 to 15 digits, e.g. +15005550006) or an \
                 alphanumeric sender ID (1 to {MAX_ALPHANUMERIC_SENDER} letters, digits or spaces, at least one \
                 letter) ({why})"
            ),
        ))
    };
    if let Some(digits) = s.strip_prefix('+') {
        let n = digits.chars().count();
        if let Some(c) = digits.chars().find(|c| !c.is_ascii_digit()) {
            return refuse(match c {
                ' ' | '-' | '.' | '(' | ')' => {
                    "found spaces or punctuation after the +: write the digits only".to_owned()
                }
                _ => "found a character after the + that is not a digit".to_owned(),
            });
        }
        if digits.starts_with('0') {
            return refuse("found 0 after the +: a country code never starts with 0".to_owned());
        }
        if !(8..=15).contains(&n) {
            return refuse(format!("found {} after the +", count(n, "digit")));
        }
        return Ok(());
    }
    let n = s.chars().count();
    if n == 0 {
        return refuse("found an empty value".to_owned());
    }
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ') {
        return refuse("found a character that is not a letter, a digit or a space".to_owned());
    }
    if !s.chars().any(|c| c.is_ascii_alphabetic()) {
        return refuse(if s.chars().any(|c| c.is_ascii_digit()) {
            "found only digits: a phone number starts with + and its country code".to_owned()
        } else {
            "found no letter".to_owned()
        });
    }
    if n > MAX_ALPHANUMERIC_SENDER {
        return refuse(format!("found {}", count(n, "character")));
    }
    Ok(())
}

/// `check(prop, s)` on a value that is set.
fn check_set(
    prop: &str,
    v: &Option<Option<String>>,
    check: fn(&str, &str) -> Result<(), FieldProblem>,
) -> Result<(), FieldProblem> {
    match v {
        Some(Some(s)) => check(prop, s),
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

/// Check a Guardian `PUT …/providers/twilio` body and apply it to `values`: `sid` an Account SID
/// ([`check_account_sid`]), `messaging_service_sid` a Messaging Service SID, `from` a sender ([`check_sender`]) or
/// empty (unset, as Auth0 allows), `auth_token` 1–1000 characters without control characters; unknown keys
/// refused. On an error `values` is unchanged. (The caller then runs [`super::TwilioKind`]'s `check_selection` when
/// Twilio is selected, seals the token, and saves.)
pub fn apply_guardian_update(body: &Value, values: &mut Map<String, Value>) -> Result<GuardianChange, FieldProblem> {
    let b: GuardianBody = serde_json::from_value(body.clone()).map_err(|e| FieldProblem {
        field: String::new(),
        kind: ProblemKind::Body,
        message: e.to_string(),
    })?;
    check_set("sid", &b.sid, check_account_sid)?;
    check_set("messaging_service_sid", &b.messaging_service_sid, check_messaging_service_sid)?;
    if b.from.as_ref().is_some_and(|f| f.as_deref() != Some("")) {
        check_set("from", &b.from, check_sender)?;
    }
    check_len("auth_token", &b.auth_token, 1, 1000)?;
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

/// A string that `check` accepts, as the UPE endpoints check them.
fn string_as(prop: &str, v: &Value, check: fn(&str, &str) -> Result<(), FieldProblem>) -> Result<String, FieldProblem> {
    let s = v.as_str().ok_or_else(|| FieldProblem::invalid(prop, "Expected type string"))?;
    check(prop, s)?;
    Ok(s.to_owned())
}

/// Apply a UPE `configuration` (the caller has checked `delivery_methods`): only `sid`, `default_from`, `mssid`
/// and `delivery_methods`; `sid` required (an Account SID, [`check_account_sid`]); a sender required:
/// `default_from` ([`check_sender`]) or `mssid` (a Messaging Service SID). It replaces `sid`, `from` and
/// `messaging_service_sid` as a whole. On an error `values` is unchanged.
pub fn apply_upe_configuration(conf: &Map<String, Value>, values: &mut Map<String, Value>) -> Result<(), FieldProblem> {
    only_keys("configuration", conf, &["sid", "default_from", "mssid", "delivery_methods"])?;
    let sid = conf.get("sid").ok_or_else(|| FieldProblem::missing("configuration.sid", "sid"))?;
    let sid = string_as("configuration.sid", sid, check_account_sid)?;
    let opt = |k: &str, check: fn(&str, &str) -> Result<(), FieldProblem>| -> Result<Option<String>, FieldProblem> {
        match conf.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => string_as(&format!("configuration.{k}"), v, check).map(Some),
        }
    };
    let from = opt("default_from", check_sender)?;
    let mssid = opt("mssid", check_messaging_service_sid)?;
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

    const SID: &str = "AC0123456789abcdef0123456789abcdef";
    const SID2: &str = "ACFEDCBA9876543210FEDCBA9876543210";
    const MG: &str = "MG0123456789abcdef0123456789abcdef";

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
        let v = obj(json!({"sid": SID, "from": "+15005550006", "messaging_service_sid": null, "other": 1}));
        assert_eq!(
            guardian_view(&v, SecretState::Plain("f00dfeedf00dfeedf00dfeedf00dfeed")),
            json!({"from": "+15005550006", "messaging_service_sid": null, "auth_token": "****feed", "sid": SID})
        );
        // A SID stored before the write-time checks is shown as it is.
        assert_eq!(guardian_view(&obj(json!({"sid": "AC1"})), SecretState::Absent)["sid"], "AC1");
        assert_eq!(guardian_view(&v, SecretState::Unreadable)["auth_token"], "****");
    }

    #[test]
    fn a_guardian_put_changes_and_echoes_only_what_it_was_sent() {
        let mut v = obj(json!({"sid": SID, "from": "+15005550006", "messaging_service_sid": MG}));
        let c = apply_guardian_update(&json!({"from": null, "auth_token": "f00dfeedf00dfeedf00dfeedf00dfeed"}), &mut v)
            .unwrap();
        assert_eq!(v, obj(json!({"sid": SID, "from": null, "messaging_service_sid": MG})));
        assert_eq!(c.echo(), json!({"from": null, "auth_token": "****feed"}));
        assert_eq!(c.audit_details(), json!({"twilio": {"from": null, "auth_token": "set"}}));
        assert_eq!(
            c.token.as_ref().map(|t| t.as_ref().map(|t| t.as_str())),
            Some(Some("f00dfeedf00dfeedf00dfeedf00dfeed"))
        );

        let c = apply_guardian_update(&json!({"auth_token": null, "sid": SID2}), &mut v).unwrap();
        assert_eq!(c.echo(), json!({"auth_token": null, "sid": SID2}));
        assert_eq!(c.audit_details(), json!({"twilio": {"sid": SID2, "auth_token": "cleared"}}));
        assert!(matches!(c.token, Some(None)));
        let c = apply_guardian_update(&json!({}), &mut v).unwrap();
        assert_eq!((c.echo(), c.token.is_none()), (json!({}), true));

        let before = v.clone();
        for (body, msg) in [
            (
                json!({"from": "x".repeat(65)}),
                "Payload validation error: 'A sender is a phone number in E.164 form (+ and 8 to 15 digits, e.g. \
                 +15005550006) or an alphanumeric sender ID (1 to 11 letters, digits or spaces, at least one letter) \
                 (found 65 characters)' on property from.",
            ),
            (
                json!({"sid": ""}),
                "Payload validation error: 'An Account SID is AC followed by 32 hexadecimal digits (found 0 \
                 characters)' on property sid.",
            ),
            (
                json!({"sid": "AC123"}),
                "Payload validation error: 'An Account SID is AC followed by 32 hexadecimal digits (found 5 \
                 characters)' on property sid.",
            ),
            (
                json!({"auth_token": "a\u{7}b"}),
                "Payload validation error: 'String contains control characters' on property auth_token.",
            ),
            (
                json!({"messaging_service_sid": "x".repeat(1001)}),
                "Payload validation error: 'A Messaging Service SID is MG followed by 32 hexadecimal digits (found \
                 1001 characters)' on property messaging_service_sid.",
            ),
            (
                json!({"messaging_service_sid": SID}),
                "Payload validation error: 'A Messaging Service SID is MG followed by 32 hexadecimal digits (found \
                 AC: that is an Account SID)' on property messaging_service_sid.",
            ),
        ] {
            assert_eq!(apply_guardian_update(&body, &mut v).unwrap_err().api_message(), msg);
        }
        let e = apply_guardian_update(&json!({"extra": 1}), &mut v).unwrap_err();
        assert!(e.api_message().starts_with("Payload validation error: 'unknown field `extra`"), "{}", e.api_message());
        assert!(apply_guardian_update(&json!({"sid": 5}), &mut v).is_err());
        assert!(apply_guardian_update(&json!(SID), &mut v).is_err());
        // A valid SID beside a refused sender: nothing is applied.
        assert!(apply_guardian_update(&json!({"sid": SID2, "from": "+123"}), &mut v).is_err());
        assert_eq!(v, before, "a refused update changes nothing");
        // An empty `from` is allowed (Auth0 allows it: unset), and so is null.
        let c = apply_guardian_update(&json!({"from": ""}), &mut v).unwrap();
        assert_eq!(c.echo(), json!({"from": ""}));
        assert!(
            apply_guardian_update(&json!({"from": null, "sid": null, "messaging_service_sid": null}), &mut v).is_ok()
        );
    }

    #[test]
    fn upe_configuration_maps_to_the_settings() {
        let mut v = Map::new();
        let conf = obj(json!({"sid": SID, "default_from": "+15550001111", "delivery_methods": ["voice", "text"]}));
        apply_upe_configuration(&conf, &mut v).unwrap();
        assert_eq!(v, obj(json!({"sid": SID, "from": "+15550001111", "messaging_service_sid": null})));
        assert_eq!(upe_configuration(&v), obj(json!({"sid": SID, "default_from": "+15550001111"})));
        let conf = obj(json!({"sid": SID2, "mssid": MG, "default_from": null, "delivery_methods": ["text"]}));
        apply_upe_configuration(&conf, &mut v).unwrap();
        assert_eq!(v, obj(json!({"sid": SID2, "from": null, "messaging_service_sid": MG})));
        let conf = obj(json!({"sid": SID, "default_from": "Callsign", "delivery_methods": ["text"]}));
        apply_upe_configuration(&conf, &mut v).unwrap();
        assert_eq!(v["from"], "Callsign");
        let before = v.clone();
        for (bad, msg) in [
            (
                json!({"sid": SID, "delivery_methods": ["text"]}),
                "Payload validation error: 'Twilio needs a sender: set default_from (a phone number) or mssid (a Messaging Service SID)' on property configuration.",
            ),
            (
                json!({"default_from": "+15005550006", "delivery_methods": ["text"]}),
                "Payload validation error: 'Missing required property: configuration.sid'.",
            ),
            (
                json!({"sid": SID, "default_from": "+15005550006", "extra": 1}),
                "Payload validation error: 'Additional properties not allowed: extra; allowed are sid, default_from, mssid, delivery_methods' on property configuration.",
            ),
            (
                json!({"sid": 1, "default_from": "+15005550006"}),
                "Payload validation error: 'Expected type string' on property configuration.sid.",
            ),
            (
                json!({"sid": "AC1", "default_from": "+15005550006"}),
                "Payload validation error: 'An Account SID is AC followed by 32 hexadecimal digits (found 3 characters)' on property configuration.sid.",
            ),
            (
                json!({"sid": SID, "default_from": "+1"}),
                "Payload validation error: 'A sender is a phone number in E.164 form (+ and 8 to 15 digits, e.g. +15005550006) or an alphanumeric sender ID (1 to 11 letters, digits or spaces, at least one letter) (found 1 digit after the +)' on property configuration.default_from.",
            ),
            (
                json!({"sid": SID, "default_from": ""}),
                "Payload validation error: 'A sender is a phone number in E.164 form (+ and 8 to 15 digits, e.g. +15005550006) or an alphanumeric sender ID (1 to 11 letters, digits or spaces, at least one letter) (found an empty value)' on property configuration.default_from.",
            ),
            (
                json!({"sid": SID, "mssid": "MG1"}),
                "Payload validation error: 'A Messaging Service SID is MG followed by 32 hexadecimal digits (found 3 characters)' on property configuration.mssid.",
            ),
        ] {
            assert_eq!(apply_upe_configuration(&obj(bad.clone()), &mut v).unwrap_err().api_message(), msg, "{bad}");
        }
        assert_eq!(v, before, "a refused configuration changes nothing");
    }

    /// The rule's sentence out of a refusal, and what was found.
    fn why(r: Result<(), FieldProblem>) -> String {
        let m = r.unwrap_err().message;
        m.rsplit_once(" (").map(|(_, found)| found.trim_end_matches(')').to_owned()).unwrap_or(m)
    }

    #[test]
    fn account_and_messaging_service_sids_are_the_prefix_and_32_hex_digits() {
        let hex32 = "0123456789abcdef0123456789abcdef";
        for ok in [
            SID.to_owned(),
            SID2.to_owned(),
            format!("AC{}", hex32.to_uppercase()),
            "AC0123456789aBcDeF0123456789AbCdEf".to_owned(),
            format!("AC{}", "0".repeat(32)),
        ] {
            assert!(check_account_sid("sid", &ok).is_ok(), "{ok}");
            assert!(check_messaging_service_sid("mssid", &ok.replacen("AC", "MG", 1)).is_ok(), "{ok}");
        }
        // Boundary lengths: 31 and 33 digits.
        assert_eq!(why(check_account_sid("sid", &format!("AC{}", &hex32[1..]))), "found 33 characters");
        assert_eq!(why(check_account_sid("sid", &format!("AC{hex32}0"))), "found 35 characters");
        assert_eq!(why(check_account_sid("sid", "")), "found 0 characters");
        assert_eq!(why(check_account_sid("sid", "AC")), "found 2 characters");
        // The prefix is upper case; a Messaging Service SID in the Account SID field is named.
        assert_eq!(why(check_account_sid("sid", &format!("ac{hex32}"))), "found ac at the start");
        assert_eq!(why(check_account_sid("sid", MG)), "found MG: that is a Messaging Service SID");
        assert_eq!(why(check_messaging_service_sid("mssid", SID)), "found AC: that is an Account SID");
        assert_eq!(why(check_account_sid("sid", &format!("XX{hex32}"))), "found XX at the start");
        assert_eq!(why(check_account_sid("sid", &format!("\u{7}C{hex32}"))), "found another start than AC");
        // Each character after the prefix is a hexadecimal digit.
        assert_eq!(
            why(check_account_sid("sid", "AC0123456789abcdeg0123456789abcdef")),
            "'g' at position 18 is not a hexadecimal digit"
        );
        assert_eq!(
            why(check_account_sid("sid", "AC0123456789abcde 0123456789abcdef")),
            "a character at position 18 is not a hexadecimal digit"
        );
        assert_eq!(
            why(check_account_sid("sid", &format!("AC{}é", &hex32[1..]))),
            "a character at position 34 is not a hexadecimal digit"
        );
        let e = check_account_sid("configuration.sid", "AC123").unwrap_err();
        assert_eq!(
            e.api_message(),
            "Payload validation error: 'An Account SID is AC followed by 32 hexadecimal digits (found 5 characters)' on property configuration.sid."
        );
    }

    #[test]
    fn a_sender_is_an_e164_number_or_an_alphanumeric_sender_id() {
        for ok in [
            "+15005550006",
            "+12345678",        // 8 digits, the fewest
            "+123456789012345", // 15, the most
            "+447911123456",
            "Callsign",
            "A",
            "Acme Bank 1", // 11 characters, spaces count
            "ABCDEFGHIJK", // 11
            "1234567890a", // digits and one letter
            "acme",
        ] {
            assert!(check_sender("from", ok).is_ok(), "{ok}");
        }
        for (bad, found) in [
            ("+1234567", "found 7 digits after the +"),
            ("+1234567890123456", "found 16 digits after the +"),
            ("+1", "found 1 digit after the +"),
            ("+", "found 0 digits after the +"),
            ("+0123456789", "found 0 after the +: a country code never starts with 0"),
            ("+1 415 555 0100", "found spaces or punctuation after the +: write the digits only"),
            ("+1-415-555-0100", "found spaces or punctuation after the +: write the digits only"),
            ("+1415555010x", "found a character after the + that is not a digit"),
            ("ABCDEFGHIJKL", "found 12 characters"),
            ("Acme Bank 12", "found 12 characters"),
            ("15005550006", "found only digits: a phone number starts with + and its country code"),
            ("1", "found only digits: a phone number starts with + and its country code"),
            ("   ", "found no letter"),
            ("", "found an empty value"),
            ("Acme-Bank", "found a character that is not a letter, a digit or a space"),
            ("Café", "found a character that is not a letter, a digit or a space"),
            ("Acme\u{7}", "found a character that is not a letter, a digit or a space"),
        ] {
            assert_eq!(why(check_sender("from", bad)), found, "{bad:?}");
        }
    }

    #[test]
    fn no_refusal_repeats_the_auth_token() {
        let token = "f00dfeedf00dfeedf00dfeedf00dfeed";
        let mut v = Map::new();
        for body in [
            json!({"auth_token": token, "sid": "AC1"}),
            json!({"auth_token": token, "from": "+1"}),
            json!({"auth_token": token, "messaging_service_sid": token}),
            json!({"auth_token": token, "sid": token}),
        ] {
            let m = apply_guardian_update(&body, &mut v).unwrap_err().api_message();
            assert!(!m.contains(token) && !m.contains("feed"), "{m}");
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
