//! Settings driven by their declaration: for a provider whose settings are plain strings declared in its
//! [`FieldSpec`]s (the integrated HTTP providers), everything the Management API, the Unified Phone Experience and
//! the sealed-secret bookkeeping need, written once. A provider module declares a [`Declared`] constant and expands
//! `declared_kind!` inside its `impl ProviderKind`; it still writes its own `check` extras, `build` and `send`.
//!
//! - Guardian `GET …/providers/<name>`: every declared field in order, `null` when unset, secrets masked
//!   (`****` + the last four characters, or `****` when shorter than 12).
//! - Guardian `PUT …/providers/<name>`: each key absent (unchanged), `null` (cleared) or a string of the field's
//!   length (no control characters; a [`FieldKind::Url`] must be an `http(s)://` URL); an unknown key or a value of
//!   another type is a 400 naming it. The answer echoes only the keys sent, secrets masked; the `gd_tenant_update`
//!   details say `"set"` / `"cleared"` for a secret, never its value.
//! - Secrets are sealed under `guardian/<name>/<field>/<16 letters and digits>`, recorded in the settings as
//!   `<field>_secret` (the name) and `<field>_set` (`true`); a new value gets a new name, so the configuration's
//!   compare-and-set switches secret and settings together.
//! - Unified Phone Experience (`/branding/phone/providers`, a Callsign extension for these providers, `name` =
//!   the Guardian name): `configuration` holds the non-secret fields (beside `delivery_methods`), `credentials`
//!   the secret ones.
use std::collections::BTreeMap;

use callsign_domain::rng::{ALNUM, from_alphabet};
use callsign_domain::{Channel, RandomSource};
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::kind::{FieldKind, FieldProblem, FieldSpec, GuardianUpdate, ProblemKind, ProviderSettings, SecretState};
use crate::provider::SendError;

/// A provider's declared settings, and the names the messages use.
#[derive(Debug, Clone, Copy)]
pub struct Declared {
    /// The Guardian name.
    pub name: &'static str,
    /// The name for people (`Amazon SNS`).
    pub label: &'static str,
    /// The settings, in form and API order.
    pub fields: &'static [FieldSpec],
    /// The names of the [`FieldKind::Secret`] fields (a test checks they match `fields`).
    pub secret_fields: &'static [&'static str],
}

/// How a stored secret is shown: `****` plus its last four characters, only `****` when it is shorter than 12.
pub fn mask(secret: &str) -> String {
    let n = secret.chars().count();
    if n < 12 {
        return "****".to_owned();
    }
    let tail: String = secret.chars().skip(n - 4).collect();
    format!("****{tail}")
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl Declared {
    fn field(&self, name: &str) -> Option<&'static FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }

    fn is_secret(f: &FieldSpec) -> bool {
        matches!(f.kind, FieldKind::Secret)
    }

    fn secret_flag(field: &str) -> String {
        format!("{field}_set")
    }

    fn secret_key(field: &str) -> String {
        format!("{field}_secret")
    }

    /// Check one value against its declaration (`prop` names it in the problem).
    pub fn check_value(f: &FieldSpec, prop: &str, s: &str) -> Result<(), FieldProblem> {
        crate::kind::check_string(prop, s, f.min_len, f.max_len)?;
        if f.kind == FieldKind::Url && !s.is_empty() {
            let ok = (s.starts_with("https://") || s.starts_with("http://"))
                && s.split("://").nth(1).is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
                && !s.chars().any(char::is_whitespace);
            if !ok {
                return Err(FieldProblem::invalid(prop, "Expected an http(s) URL"));
            }
        }
        Ok(())
    }

    /// What a send on `channels` lacks: each required field that is unset, in declaration order, then each set
    /// value that breaks its declaration.
    pub fn problems(&self, settings: &ProviderSettings, channels: &[Channel]) -> Vec<FieldProblem> {
        let mut out = Vec::new();
        for f in self.fields {
            let value = if Self::is_secret(f) {
                settings.secret(f.name).map(|s| s.as_str().to_owned())
            } else {
                match settings.values.get(f.name) {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
                    Some(other) => {
                        out.push(FieldProblem::invalid(
                            f.name,
                            format!("Expected type string but found type {}", type_name(other)),
                        ));
                        continue;
                    }
                }
            };
            match value {
                None if f.required_for(channels) => out.push(FieldProblem::missing(f.name, f.name)),
                None => {}
                Some(v) => {
                    if let Err(p) = Self::check_value(f, f.name, &v) {
                        out.push(p);
                    }
                }
            }
        }
        out
    }

    /// [`Declared::problems`] as a `check` result.
    pub fn check(&self, settings: &ProviderSettings, channels: &[Channel]) -> Result<(), Vec<FieldProblem>> {
        let p = self.problems(settings, channels);
        if p.is_empty() { Ok(()) } else { Err(p) }
    }

    /// The send-time failure for `problems` (final): what is missing and where it is set, else the first problem.
    pub fn not_ready(&self, problems: &[FieldProblem]) -> SendError {
        let missing: Vec<&str> =
            problems.iter().filter(|p| p.kind == ProblemKind::Missing).map(|p| p.message.as_str()).collect();
        if !missing.is_empty() {
            return SendError::fatal(format!(
                "the {} provider is not fully configured: missing {}; set it with PUT /api/v2/guardian/factors/phone/providers/{}",
                self.label,
                missing.join(", "),
                self.name
            ));
        }
        SendError::fatal(match problems.first() {
            Some(p) => format!("the {} provider's settings are not valid: {}", self.label, p.api_message()),
            None => format!("the {} provider is not fully configured", self.label),
        })
    }

    /// The Guardian view: every field, in order; secrets masked; `null` when unset.
    pub fn guardian_view(&self, values: &Map<String, Value>, secrets: &BTreeMap<String, SecretState<'_>>) -> Value {
        let mut out = Map::new();
        for f in self.fields {
            let v = if Self::is_secret(f) {
                match secrets.get(f.name).copied().unwrap_or(SecretState::Absent) {
                    SecretState::Absent => Value::Null,
                    SecretState::Plain(s) => json!(mask(s)),
                    SecretState::Unreadable => json!("****"),
                }
            } else {
                values.get(f.name).filter(|v| v.is_string()).cloned().unwrap_or(Value::Null)
            };
            out.insert(f.name.to_owned(), v);
        }
        Value::Object(out)
    }

    fn unknown_key(&self, prop: &str, key: &str, allowed: &[&str]) -> FieldProblem {
        FieldProblem::invalid(
            prop,
            format!("Additional properties not allowed: {key}; allowed are {}", allowed.join(", ")),
        )
    }

    /// Apply a Guardian `PUT` body; on an error `values` is unchanged.
    pub fn apply_guardian_update(
        &self,
        body: &Value,
        values: &mut Map<String, Value>,
    ) -> Result<GuardianUpdate, FieldProblem> {
        let o = body.as_object().ok_or_else(|| FieldProblem {
            field: String::new(),
            kind: ProblemKind::Body,
            message: format!("Expected type object but found type {}", type_name(body)),
        })?;
        let allowed: Vec<&str> = self.fields.iter().map(|f| f.name).collect();
        let mut plain: Vec<(&FieldSpec, Option<String>)> = Vec::new();
        for (k, v) in o {
            let f = self.field(k).ok_or_else(|| {
                let mut p = self.unknown_key("", k, &allowed);
                p.kind = ProblemKind::Body;
                p
            })?;
            match v {
                Value::Null => plain.push((f, None)),
                Value::String(s) => {
                    Self::check_value(f, f.name, s)?;
                    plain.push((f, Some(s.clone())));
                }
                other => {
                    return Err(FieldProblem::invalid(
                        f.name,
                        format!("Expected type string but found type {}", type_name(other)),
                    ));
                }
            }
        }
        let (mut echo, mut audit, mut secrets) = (Map::new(), Map::new(), BTreeMap::new());
        for (f, v) in plain {
            if Self::is_secret(f) {
                let masked = v.as_deref().map_or(Value::Null, |s| json!(mask(s)));
                echo.insert(f.name.to_owned(), masked);
                audit.insert(f.name.to_owned(), json!(if v.is_some() { "set" } else { "cleared" }));
                secrets.insert(f.name.to_owned(), v.map(Zeroizing::new));
            } else {
                let v = v.map_or(Value::Null, Value::String);
                echo.insert(f.name.to_owned(), v.clone());
                audit.insert(f.name.to_owned(), v.clone());
                values.insert(f.name.to_owned(), v);
            }
        }
        Ok(GuardianUpdate { secrets, echo: Value::Object(echo), audit: json!({ self.name: audit }) })
    }

    /// The sealed secrets the settings name: `(field, sealed name)` for each secret field that is set.
    pub fn sealed_secrets(&self, values: &Map<String, Value>) -> Vec<(String, String)> {
        self.secret_fields
            .iter()
            .filter(|f| values.get(&Self::secret_flag(f)).and_then(Value::as_bool).unwrap_or(false))
            .filter_map(|f| {
                let name = values.get(&Self::secret_key(f)).and_then(Value::as_str)?;
                Some(((*f).to_owned(), name.to_owned()))
            })
            .collect()
    }

    /// A fresh sealed name for a new value of secret `field`, recorded in `values`.
    pub fn seal_secret_as(
        &self,
        field: &str,
        values: &mut Map<String, Value>,
        rng: &dyn RandomSource,
    ) -> Option<String> {
        if !self.secret_fields.contains(&field) {
            return None;
        }
        let name = format!("guardian/{}/{field}/{}", self.name, from_alphabet(rng, ALNUM, 16));
        values.insert(Self::secret_flag(field), Value::Bool(true));
        values.insert(Self::secret_key(field), Value::String(name.clone()));
        Some(name)
    }

    /// Secret `field` is cleared.
    pub fn forget_secret(&self, field: &str, values: &mut Map<String, Value>) {
        if self.secret_fields.contains(&field) {
            values.insert(Self::secret_flag(field), Value::Bool(false));
            values.remove(&Self::secret_key(field));
        }
    }

    /// The UPE `configuration` members: the non-secret fields that are set.
    pub fn upe_configuration(&self, values: &Map<String, Value>) -> Map<String, Value> {
        self.fields
            .iter()
            .filter(|f| !Self::is_secret(f))
            .filter_map(|f| values.get(f.name).filter(|v| v.is_string()).map(|v| (f.name.to_owned(), v.clone())))
            .collect()
    }

    /// Apply a UPE `configuration`: only the non-secret fields and `delivery_methods`; it replaces them as a whole.
    pub fn apply_upe_configuration(
        &self,
        conf: &Map<String, Value>,
        values: &mut Map<String, Value>,
    ) -> Result<(), FieldProblem> {
        let mut allowed: Vec<&str> = self.fields.iter().filter(|f| !Self::is_secret(f)).map(|f| f.name).collect();
        allowed.push("delivery_methods");
        let mut next = Vec::new();
        for (k, v) in conf {
            if k == "delivery_methods" {
                continue;
            }
            let f = self
                .field(k)
                .filter(|f| !Self::is_secret(f))
                .ok_or_else(|| self.unknown_key("configuration", k, &allowed))?;
            let prop = format!("configuration.{k}");
            match v {
                Value::Null => {}
                Value::String(s) => {
                    Self::check_value(f, &prop, s)?;
                    next.push((f.name, s.clone()));
                }
                _ => return Err(FieldProblem::invalid(prop, "Expected type string")),
            }
        }
        for f in self.fields.iter().filter(|f| !Self::is_secret(f)) {
            values.insert(f.name.to_owned(), Value::Null);
        }
        for (k, v) in next {
            values.insert(k.to_owned(), Value::String(v));
        }
        Ok(())
    }

    /// Check UPE `credentials`: an object of the secret fields (strings of their lengths); returns them.
    pub fn upe_credentials(&self, credentials: &Value) -> Result<BTreeMap<String, Zeroizing<String>>, FieldProblem> {
        let o = credentials.as_object().ok_or_else(|| FieldProblem::invalid("credentials", "Expected type object"))?;
        let mut out = BTreeMap::new();
        for (k, v) in o {
            let f = self
                .field(k)
                .filter(|f| Self::is_secret(f))
                .ok_or_else(|| self.unknown_key("credentials", k, self.secret_fields))?;
            let prop = format!("credentials.{k}");
            let s = v.as_str().ok_or_else(|| FieldProblem::invalid(&prop, "Expected type string"))?;
            Self::check_value(f, &prop, s)?;
            out.insert(k.clone(), Zeroizing::new(s.to_owned()));
        }
        Ok(out)
    }

    /// What deleting the UPE record forgets: the non-secret fields; returns the secret fields.
    pub fn forget_upe(&self, values: &mut Map<String, Value>) -> &'static [&'static str] {
        for f in self.fields.iter().filter(|f| !Self::is_secret(f)) {
            values.remove(f.name);
        }
        self.secret_fields
    }
}

/// Expands, inside an `impl ProviderKind for …`, the methods [`Declared`] provides: `name`, `label`, `fields`,
/// `upe_name` (the Guardian name), the Guardian view and update, the UPE configuration and credentials, and the
/// sealed-secret bookkeeping. The provider still writes `capabilities`, `check` (usually
/// `$declared.check(settings, channels)` plus its own rules) and `build`.
macro_rules! declared_kind {
    ($d:expr) => {
        fn name(&self) -> &'static str {
            $d.name
        }
        fn label(&self) -> &'static str {
            $d.label
        }
        fn fields(&self) -> &'static [$crate::FieldSpec] {
            $d.fields
        }
        fn upe_name(&self) -> Option<&'static str> {
            Some($d.name)
        }
        fn guardian_view(
            &self,
            values: &serde_json::Map<String, serde_json::Value>,
            secrets: &std::collections::BTreeMap<String, $crate::SecretState<'_>>,
        ) -> Option<serde_json::Value> {
            Some($d.guardian_view(values, secrets))
        }
        fn apply_guardian_update(
            &self,
            body: &serde_json::Value,
            values: &mut serde_json::Map<String, serde_json::Value>,
        ) -> Result<$crate::GuardianUpdate, $crate::FieldProblem> {
            $d.apply_guardian_update(body, values)
        }
        fn sealed_secrets(&self, values: &serde_json::Map<String, serde_json::Value>) -> Vec<(String, String)> {
            $d.sealed_secrets(values)
        }
        fn seal_secret_as(
            &self,
            field: &str,
            values: &mut serde_json::Map<String, serde_json::Value>,
            rng: &dyn callsign_domain::RandomSource,
        ) -> Option<String> {
            $d.seal_secret_as(field, values, rng)
        }
        fn forget_secret(&self, field: &str, values: &mut serde_json::Map<String, serde_json::Value>) {
            $d.forget_secret(field, values)
        }
        fn upe_configuration(
            &self,
            values: &serde_json::Map<String, serde_json::Value>,
        ) -> serde_json::Map<String, serde_json::Value> {
            $d.upe_configuration(values)
        }
        fn apply_upe_configuration(
            &self,
            conf: &serde_json::Map<String, serde_json::Value>,
            values: &mut serde_json::Map<String, serde_json::Value>,
        ) -> Result<(), $crate::FieldProblem> {
            $d.apply_upe_configuration(conf, values)
        }
        fn upe_credentials(
            &self,
            credentials: &serde_json::Value,
        ) -> Result<std::collections::BTreeMap<String, zeroize::Zeroizing<String>>, $crate::FieldProblem> {
            $d.upe_credentials(credentials)
        }
        fn forget_upe(&self, values: &mut serde_json::Map<String, serde_json::Value>) -> &'static [&'static str] {
            $d.forget_upe(values)
        }
    };
}
pub(crate) use declared_kind;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::Required;

    const FIELDS: &[FieldSpec] = &[
        FieldSpec {
            name: "base_url",
            label: "Base URL",
            kind: FieldKind::Url,
            min_len: 1,
            max_len: 200,
            required: Required::Always,
            help: "",
        },
        FieldSpec {
            name: "api_key",
            label: "API key",
            kind: FieldKind::Secret,
            min_len: 1,
            max_len: 200,
            required: Required::Always,
            help: "",
        },
        FieldSpec {
            name: "from",
            label: "Sender",
            kind: FieldKind::Phone,
            min_len: 0,
            max_len: 20,
            required: Required::ForChannel(Channel::Voice),
            help: "",
        },
    ];
    const D: Declared = Declared { name: "example", label: "Example", fields: FIELDS, secret_fields: &["api_key"] };

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn puts_apply_echo_and_audit_without_secrets() {
        let mut v = Map::new();
        let u = D
            .apply_guardian_update(&json!({"base_url": "https://x.example", "api_key": "0123456789abcdefXYZW"}), &mut v)
            .unwrap();
        assert_eq!(u.echo, json!({"base_url": "https://x.example", "api_key": "****XYZW"}));
        assert_eq!(u.audit, json!({"example": {"base_url": "https://x.example", "api_key": "set"}}));
        assert_eq!(u.secrets["api_key"].as_deref().map(|s| s.as_str()), Some("0123456789abcdefXYZW"));
        assert_eq!(v, obj(json!({"base_url": "https://x.example"})));
        let before = v.clone();
        for (body, msg) in [
            (
                json!({"nope": 1}),
                "Payload validation error: 'Additional properties not allowed: nope; allowed are base_url, api_key, from'.",
            ),
            (
                json!({"from": 5}),
                "Payload validation error: 'Expected type string but found type number' on property from.",
            ),
            (
                json!({"base_url": "ftp://x"}),
                "Payload validation error: 'Expected an http(s) URL' on property base_url.",
            ),
            (
                json!({"from": "x".repeat(21)}),
                "Payload validation error: 'String is too long (20 chars max)' on property from.",
            ),
            (json!([]), "Payload validation error: 'Expected type object but found type array'."),
        ] {
            assert_eq!(D.apply_guardian_update(&body, &mut v).unwrap_err().api_message(), msg, "{body}");
        }
        assert_eq!(v, before);
        let u = D.apply_guardian_update(&json!({"api_key": null, "from": null}), &mut v).unwrap();
        assert_eq!(u.echo, json!({"api_key": null, "from": null}));
        assert_eq!(u.audit, json!({"example": {"api_key": "cleared", "from": null}}));
        assert!(u.secrets["api_key"].is_none());
    }

    #[test]
    fn the_view_masks_and_checks_name_what_is_missing() {
        let v = obj(json!({"base_url": "https://x.example", "api_key_set": true, "api_key_secret": "n"}));
        let states = BTreeMap::from([("api_key".to_owned(), SecretState::Plain("0123456789abcdef"))]);
        assert_eq!(
            D.guardian_view(&v, &states),
            json!({"base_url": "https://x.example", "api_key": "****cdef", "from": null})
        );
        assert_eq!(D.guardian_view(&v, &BTreeMap::new())["api_key"], Value::Null);
        let s = ProviderSettings::from_values(v.clone());
        let p = D.problems(&s, &[Channel::Sms, Channel::Voice]);
        assert_eq!(p.iter().map(|p| p.field.as_str()).collect::<Vec<_>>(), ["api_key", "from"]);
        assert_eq!(
            D.not_ready(&p).message,
            "the Example provider is not fully configured: missing api_key, from; set it with PUT /api/v2/guardian/factors/phone/providers/example"
        );
        assert!(D.check(&s.clone().with_secret("api_key", "k"), &[Channel::Sms]).is_ok());
    }

    #[test]
    fn secrets_get_fresh_sealed_names() {
        let mut v = Map::new();
        let rng = callsign_domain::SeededRandom::new(3);
        let n = D.seal_secret_as("api_key", &mut v, &rng).unwrap();
        assert!(n.starts_with("guardian/example/api_key/") && n.len() == "guardian/example/api_key/".len() + 16);
        assert_eq!(D.sealed_secrets(&v), vec![("api_key".to_owned(), n.clone())]);
        assert_ne!(D.seal_secret_as("api_key", &mut v.clone(), &rng).unwrap(), n);
        assert!(D.seal_secret_as("from", &mut v, &rng).is_none());
        D.forget_secret("api_key", &mut v);
        assert!(D.sealed_secrets(&v).is_empty());
    }

    #[test]
    fn upe_configuration_and_credentials() {
        let mut v = obj(json!({"from": "OLD"}));
        D.apply_upe_configuration(&obj(json!({"base_url": "https://x.example", "delivery_methods": ["text"]})), &mut v)
            .unwrap();
        assert_eq!(D.upe_configuration(&v), obj(json!({"base_url": "https://x.example"})), "replaced as a whole");
        assert!(D.apply_upe_configuration(&obj(json!({"api_key": "k"})), &mut v).is_err(), "a secret is a credential");
        assert_eq!(D.upe_credentials(&json!({"api_key": "k"})).unwrap()["api_key"].as_str(), "k");
        assert!(D.upe_credentials(&json!({"from": "x"})).is_err());
        assert_eq!(D.forget_upe(&mut v), &["api_key"]);
        assert!(D.upe_configuration(&v).is_empty());
    }

    #[test]
    fn masks() {
        assert_eq!(mask("short"), "****");
        assert_eq!(mask("123456789012"), "****9012");
    }
}
