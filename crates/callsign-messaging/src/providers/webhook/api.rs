//! How the custom provider's settings appear in the Management API (`GET|PUT
//! /guardian/factors/phone/providers/phone-message-hook`, `POST …/secrets`, `DELETE …/secrets/{id}`), as pure
//! functions over [`crate::ProviderSettings`] values, and the names its sealed secrets are kept under.
use callsign_domain::RandomSource;
use callsign_domain::rng::{ALNUM, from_alphabet};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{MAX_ACTIVE_SECRETS, NAME, SECRETS_FIELD, check_url};
use crate::kind::{BuildError, FieldProblem, ProblemKind};

/// An active signing secret as listed in the settings (the secret itself is sealed elsewhere).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRef {
    /// `whs_` + 20 letters and digits.
    pub id: String,
    /// RFC 3339.
    pub created_at: String,
}

/// The name of the sealed secret holding signing secret `id`: `guardian/phone-message-hook/secret/<id>`.
pub fn sealed_secret_name(id: &str) -> String {
    format!("guardian/{NAME}/secret/{id}")
}

/// A fresh signing secret id: `whs_` + 20 letters and digits.
pub fn new_secret_id(rng: &dyn RandomSource) -> String {
    format!("whs_{}", from_alphabet(rng, ALNUM, 20))
}

/// The listed secrets, oldest first (none when the list is absent or null).
pub fn listed(values: &Map<String, Value>) -> Result<Vec<SecretRef>, BuildError> {
    match values.get(SECRETS_FIELD) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
            BuildError::new(format!("the phone-message-hook setting `{SECRETS_FIELD}` is malformed: {e}"))
        }),
    }
}

fn set_listed(values: &mut Map<String, Value>, refs: &[SecretRef]) {
    values.insert(SECRETS_FIELD.to_owned(), json!(refs));
}

/// The `GET` (and `PUT`) answer: `{"url": …|null, "secrets": [{"id", "created_at"}]}`, never a secret.
pub fn guardian_view(values: &Map<String, Value>) -> Value {
    let secrets = listed(values).unwrap_or_default();
    json!({"url": values.get("url").cloned().unwrap_or(Value::Null), "secrets": secrets})
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UrlBody {
    url: Option<String>,
}

/// Check a `PUT` body (`{"url": "https://…"}`, required, see [`check_url`]) and set the URL in `values` (as the
/// parser normalised it). Returns it. On an error `values` is unchanged.
pub fn apply_url(body: &Value, values: &mut Map<String, Value>) -> Result<String, FieldProblem> {
    let b: UrlBody = serde_json::from_value(body.clone()).map_err(|e| FieldProblem {
        field: String::new(),
        kind: ProblemKind::Body,
        message: e.to_string(),
    })?;
    let raw = b.url.ok_or_else(|| FieldProblem::missing("url", "url"))?;
    let url = check_url(&raw).map_err(|e| FieldProblem::invalid("url", e))?.to_string();
    values.insert("url".into(), json!(url));
    Ok(url)
}

/// List a new secret; when more than [`MAX_ACTIVE_SECRETS`] are listed, the oldest are unlisted. Returns the
/// unlisted ones, whose sealed copies the caller deletes once the settings are saved.
pub fn add_secret(values: &mut Map<String, Value>, new: SecretRef) -> Result<Vec<SecretRef>, BuildError> {
    let mut refs = listed(values)?;
    refs.push(new);
    let mut retired = Vec::new();
    while refs.len() > MAX_ACTIVE_SECRETS {
        retired.push(refs.remove(0));
    }
    set_listed(values, &refs);
    Ok(retired)
}

/// Unlist secret `id`; `false` when it is not listed (404 `inexistent_secret`). Unlist first, then delete the
/// sealed copy: an unlisted secret never signs.
pub fn remove_secret(values: &mut Map<String, Value>, id: &str) -> Result<bool, BuildError> {
    let mut refs = listed(values)?;
    let Some(pos) = refs.iter().position(|r| r.id == id) else { return Ok(false) };
    refs.remove(pos);
    set_listed(values, &refs);
    Ok(true)
}

/// `gd_tenant_update` details for a change of this provider: `{"phone-message-hook": details}`.
pub fn audit_details(details: Value) -> Value {
    json!({ NAME: details })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(id: &str) -> SecretRef {
        SecretRef { id: id.into(), created_at: "2026-01-01T00:00:00.000Z".into() }
    }

    #[test]
    fn the_view_never_shows_a_secret() {
        assert_eq!(guardian_view(&Map::new()), json!({"url": null, "secrets": []}));
        let mut v = Map::new();
        add_secret(&mut v, r("whs_a")).unwrap();
        v.insert("url".into(), json!("https://h.example/x"));
        assert_eq!(
            guardian_view(&v),
            json!({"url": "https://h.example/x", "secrets": [{"id": "whs_a", "created_at": "2026-01-01T00:00:00.000Z"}]})
        );
    }

    #[test]
    fn urls_are_checked_and_normalised() {
        let mut v = Map::new();
        assert_eq!(
            apply_url(&json!({"url": "https://Hooks.Example.com"}), &mut v).unwrap(),
            "https://hooks.example.com/"
        );
        assert_eq!(v["url"], "https://hooks.example.com/");
        for (body, msg) in [
            (json!({}), "Payload validation error: 'Missing required property: url'."),
            (
                json!({"url": "http://hooks.example.com/sms"}),
                "Payload validation error: 'the url must use https (plain http is allowed only for 127.0.0.1 and localhost)' on property url.",
            ),
        ] {
            assert_eq!(apply_url(&body, &mut v).unwrap_err().api_message(), msg);
        }
        let e = apply_url(&json!({"url": "https://x.example.com", "extra": 1}), &mut v).unwrap_err();
        assert!(e.api_message().contains("extra"), "{}", e.api_message());
        assert_eq!(v["url"], "https://hooks.example.com/", "unchanged by refused writes");
    }

    #[test]
    fn at_most_two_secrets_are_listed() {
        let mut v = Map::new();
        assert!(add_secret(&mut v, r("whs_1")).unwrap().is_empty());
        assert!(add_secret(&mut v, r("whs_2")).unwrap().is_empty());
        assert_eq!(add_secret(&mut v, r("whs_3")).unwrap(), vec![r("whs_1")]);
        assert_eq!(listed(&v).unwrap(), vec![r("whs_2"), r("whs_3")]);
        assert!(remove_secret(&mut v, "whs_2").unwrap());
        assert!(!remove_secret(&mut v, "whs_2").unwrap());
        assert_eq!(listed(&v).unwrap(), vec![r("whs_3")]);
        assert!(listed(&serde_json::from_value(json!({"secrets": 5})).unwrap()).is_err());
    }

    #[test]
    fn names() {
        assert_eq!(sealed_secret_name("whs_x"), "guardian/phone-message-hook/secret/whs_x");
        let id = new_secret_id(&callsign_domain::SeededRandom::new(1));
        assert!(id.starts_with("whs_") && id.len() == 24, "{id}");
        assert_eq!(audit_details(json!({"url": "u"})), json!({"phone-message-hook": {"url": "u"}}));
    }
}
