//! A strict fake of Mitto's SMS API (`POST /sms`, JSON, `X-Mitto-API-Key`), after docs.mitto.ch: a wrong key is
//! 401, a body that is not `{from, to, text}` (strings; `to` digits in international format without `+`) is
//! refused with Mitto's `responseCode` 2–8; an accepted message answers `{"id", "responseCode": 0,
//! "responseText": "SMS sent"}`.
use serde_json::{Value, json};

use crate::{Delivered, Fake, Reply, Seen};

/// The key the fake accepts.
pub const API_KEY: &str = "mitto-test-key-0123456789";
/// A sender id.
pub const FROM: &str = "Callsign";

/// The Guardian `PUT /guardian/factors/phone/providers/mitto` body that works with the fake.
pub fn settings() -> Value {
    json!({"api_key": API_KEY, "from": FROM})
}

fn refuse(code: i64, text: &str) -> Reply {
    Reply::json(400, json!({"responseCode": code, "responseText": text}))
}

/// The documented checks, in Mitto's words.
pub fn check(s: &Seen) -> Result<(), Reply> {
    if s.header("x-mitto-api-key") != Some(API_KEY) {
        return Err(Reply::json(401, json!({"responseCode": 401, "responseText": "Unauthorized"})));
    }
    if s.method != "POST" || s.path_only() != "/sms" {
        return Err(Reply::json(404, json!({"responseText": "Not found"})));
    }
    if !s.content_type_is("application/json") {
        return Err(refuse(2, "Invalid type"));
    }
    let b = s.json();
    let Some(o) = b.as_object() else { return Err(refuse(4, "Invalid text")) };
    if let Some(k) = o.keys().find(|k| !["from", "to", "text", "type", "test", "reference"].contains(&k.as_str())) {
        return Err(refuse(2, &format!("Unknown field {k}")));
    }
    match b["text"].as_str() {
        None | Some("") => return Err(refuse(3, "Empty message")),
        Some(_) => {}
    }
    match b["from"].as_str() {
        None | Some("") => return Err(refuse(5, "Empty sender")),
        Some(f) if f.chars().count() > 15 => return Err(refuse(6, "Invalid sender")),
        Some(_) => {}
    }
    match b["to"].as_str() {
        None | Some("") => Err(refuse(7, "Empty receiver")),
        Some(t) if t.len() < 6 || t.len() > 15 || !t.bytes().all(|c| c.is_ascii_digit()) => {
            Err(refuse(8, "Invalid receiver"))
        }
        Some(_) => Ok(()),
    }
}

/// The answer to the `n`th accepted message.
pub fn accepted(_: &Seen, n: usize) -> Reply {
    Reply::json(
        200,
        json!({"id": format!("7d35a1b2-0000-4000-8000-{n:012}"), "timestamp": "2026-01-01T00:00:00Z", "responseCode": 0, "responseText": "SMS sent", "textLength": 30}),
    )
}

/// Start the fake.
pub async fn start() -> Fake {
    Fake::start(Box::new(check), Box::new(accepted)).await
}

/// What an accepted request delivered.
pub fn delivered(s: &Seen) -> Option<Delivered> {
    if !(200..300).contains(&s.status) {
        return None;
    }
    let b = s.json();
    Some(Delivered { channel: "sms", to: format!("+{}", b["to"].as_str()?), text: b["text"].as_str()?.to_owned() })
}

/// A 503 (retryable).
pub fn unavailable() -> Reply {
    Reply::json(503, json!({"responseCode": 1, "responseText": "Internal error"}))
}

/// A refusal of the number (final).
pub fn bad_number() -> Reply {
    refuse(8, "Invalid receiver")
}
