//! What the Management resources that are one checked settings document share (the phone destination policy,
//! SMS-pumping detection): the document as JSON, a body read and checked as a whole document (type errors and
//! unknown properties named by their path), and a JSON merge patch (RFC 7396) applied over the stored one.
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::http::error::ApiError;

/// A settings document with its own check (which also normalises: upper-cased countries, `+` on prefixes…).
pub(super) trait Checked: Serialize + DeserializeOwned {
    /// The problem as `(property, message)`.
    fn check(&mut self) -> Result<(), (String, String)>;
}

impl Checked for callsign_core::destination::DestinationPolicy {
    fn check(&mut self) -> Result<(), (String, String)> {
        self.validate()
    }
}

impl Checked for callsign_core::pumping::PumpingSettings {
    fn check(&mut self) -> Result<(), (String, String)> {
        self.validate()
    }
}

/// The document as answered.
pub(super) fn view<T: Serialize>(doc: &T) -> Value {
    serde_json::to_value(doc).unwrap_or(Value::Null)
}

/// 400 unless the body is a JSON object.
pub(super) fn object(body: &Value) -> Result<(), ApiError> {
    if body.is_object() { Ok(()) } else { Err(ApiError::invalid_payload("Expected type object")) }
}

/// A whole document from a body: what it leaves out takes its default; 400 naming the property otherwise.
pub(super) fn parse<T: Checked>(body: Value) -> Result<T, ApiError> {
    object(&body)?;
    let mut doc: T = ApiError::from_body(body)?;
    doc.check().map_err(|(prop, msg)| ApiError::invalid_property(&prop, msg))?;
    Ok(doc)
}

/// `current` with `patch` merged in (RFC 7396), checked as a whole.
pub(super) fn merged<T: Checked>(current: &T, patch: &Value) -> Result<T, ApiError> {
    let mut doc = view(current);
    merge_patch(&mut doc, patch);
    parse(doc)
}

/// RFC 7396: `patch`'s objects merge into `doc`, `null` removes (the default comes back), anything else replaces.
pub(crate) fn merge_patch(doc: &mut Value, patch: &Value) {
    match (doc, patch) {
        (Value::Object(d), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    d.remove(k);
                } else {
                    merge_patch(d.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (d, p) => *d = p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_patch_merges_objects_and_replaces_the_rest() {
        let mut d = json!({"sms": {"mode": "deny", "countries": ["GB", "US"]}, "voice": {"mode": "all"}});
        merge_patch(&mut d, &json!({"sms": {"countries": ["FR"]}, "voice": null}));
        assert_eq!(d, json!({"sms": {"mode": "deny", "countries": ["FR"]}}));
    }
}
