//! A strict fake of Infobip's SMS API v3 (`POST /sms/3/messages`) and text-to-speech (`POST /tts/3/advanced`),
//! after the models Infobip generates its SDKs from (PyPI `infobip-api-python-client` 6.0.0: `SmsRequest`,
//! `SmsMessage`, `SmsDestination`, `SmsTextContent`, `SmsWebhooks`; `CallsAdvancedBody`, `CallsAdvancedMessage`,
//! `CallsLanguage`).
//!
//! - `Authorization` must be `App <API_KEY>`: otherwise 401 (SMS: an `ApiError`; voice: an `ApiException`).
//! - The body must be JSON of the model: what the model requires (SMS `destinations` and `content.text`, so a v2
//!   body with `text` is refused; voice `destinations`, and `from`, which Infobip's calls need) and the field
//!   types and limits it declares (`to` ≤ 64, `callbackData` ≤ 4000 / 700, voice `text` ≤ 1400, `language` one
//!   of `CallsLanguage`, content types `application/json` or `application/xml`). Stricter than confirmed, on
//!   purpose: properties the models do not declare are refused, numbers must be digits in international format
//!   without `+` (6–15 digits), and exactly one message with one destination is taken (what Callsign sends).
//! - SMS refusals are 400 `ApiError` `{errorCode, description, action, violations, resources}`; voice refusals are
//!   400 `{"requestError":{"serviceException":{messageId, text, validationErrors}}}`.
//! - An accepted message answers 200 with `messages[0].status` `PENDING` / `PENDING_ACCEPTED`.
use serde_json::{Map, Value, json};

use crate::{Delivered, Fake, Reply, Seen};

/// The key the fake accepts.
pub const API_KEY: &str = "0123456789abcdef0123456789abcdef-01234567-89ab-cdef-0123-456789abcdef";
/// A numeric sender (voice calls need one).
pub const FROM: &str = "41793026700";
/// The SMS path.
pub const SMS_PATH: &str = "/sms/3/messages";
/// The text-to-speech path.
pub const VOICE_PATH: &str = "/tts/3/advanced";

/// The Guardian `PUT /guardian/factors/phone/providers/infobip` body that works with the fake when the server
/// configuration aims `[providers.infobip] base_url` at it (no `base_url`).
pub fn settings() -> Value {
    json!({"api_key": API_KEY, "from": FROM})
}

/// The same, with `base_url` aimed at `base` (the fake's loopback URL).
pub fn settings_at(base: &str) -> Value {
    json!({"base_url": base, "api_key": API_KEY, "from": FROM})
}

/// Infobip's `CallsLanguage` values.
const LANGUAGES: &[&str] = &[
    "ar",
    "bn",
    "bg",
    "ca",
    "zh-cn",
    "zh-tw",
    "hr",
    "cs",
    "da",
    "nl",
    "en",
    "en-au",
    "en-gb",
    "en-ca",
    "en-in",
    "en-ie",
    "en-gb-wls",
    "epo",
    "fil-ph",
    "fi",
    "fr",
    "fr-ca",
    "fr-ch",
    "de",
    "de-at",
    "de-ch",
    "el",
    "gu",
    "he",
    "hi",
    "hu",
    "is",
    "id",
    "it",
    "ja",
    "kn",
    "kk-kz",
    "ko",
    "ms",
    "ml",
    "no",
    "pl",
    "pt-pt",
    "pt-br",
    "ro",
    "ru",
    "sk",
    "sl",
    "es",
    "es-ar",
    "es-gl",
    "es-mx",
    "sv",
    "ta",
    "te",
    "th",
    "tr",
    "uk",
    "uz-uz",
    "vi",
    "wls",
    "ar-ma",
    "ur-pk",
    "mr-in",
    "sw-ke",
    "sw-tz",
];

const SMS_MESSAGE_KEYS: &[&str] = &["sender", "destinations", "content", "options", "webhooks"];
const VOICE_MESSAGE_KEYS: &[&str] = &[
    "audioFileUrl",
    "callTimeout",
    "callTransfers",
    "callbackData",
    "deliveryTimeWindow",
    "destinations",
    "dtmfTimeout",
    "from",
    "language",
    "machineDetection",
    "maxDtmf",
    "notifyContentType",
    "notifyContentVersion",
    "notifyUrl",
    "pause",
    "repeatDtmf",
    "retry",
    "ringTimeout",
    "sendAt",
    "sendingSpeed",
    "speechRate",
    "text",
    "validityPeriod",
    "voice",
];

/// An SMS API refusal: `ApiError`.
fn api_error(status: u16, code: &str, description: &str, violation: Option<(&str, &str)>) -> Reply {
    let violations: Vec<Value> = violation.map(|(p, v)| json!({"property": p, "violation": v})).into_iter().collect();
    Reply::json(
        status,
        json!({"errorCode": code, "description": description, "action": "Check the request and try again.",
               "violations": violations, "resources": []}),
    )
}

/// A voice API refusal: `ApiException`.
fn api_exception(status: u16, id: &str, text: &str, violation: Option<(&str, &str)>) -> Reply {
    let mut se = json!({"messageId": id, "text": text});
    if let Some((p, v)) = violation {
        se["validationErrors"] = json!({ p: [v] });
    }
    Reply::json(status, json!({"requestError": {"serviceException": se}}))
}

fn bad_sms(property: &str, violation: &str) -> Reply {
    api_error(400, "E400", "Request cannot be processed.", Some((property, violation)))
}

fn bad_voice(property: &str, violation: &str) -> Reply {
    api_exception(400, "BAD_REQUEST", "Bad request", Some((property, violation)))
}

fn unknown_key<'a>(o: &'a Map<String, Value>, allowed: &[&str]) -> Option<&'a str> {
    o.keys().map(String::as_str).find(|k| !allowed.contains(k))
}

fn is_number(to: &str) -> bool {
    (6..=15).contains(&to.len()) && to.bytes().all(|b| b.is_ascii_digit())
}

/// The one message of `{"messages": [...]}`, or the violation.
fn one_message<'a>(b: &'a Value, top: &[&str]) -> Result<&'a Map<String, Value>, (String, &'static str)> {
    let o = b.as_object().ok_or_else(|| (String::new(), "must be a JSON object"))?;
    if let Some(k) = unknown_key(o, top) {
        return Err((k.to_owned(), "unknown property"));
    }
    let ms = o.get("messages").and_then(Value::as_array).ok_or_else(|| ("messages".to_owned(), "must not be null"))?;
    if ms.len() != 1 {
        return Err(("messages".to_owned(), "the fake takes exactly one message"));
    }
    ms[0].as_object().ok_or_else(|| ("messages[0]".to_owned(), "must be an object"))
}

/// The one destination's `to`, or the violation.
fn one_destination(m: &Map<String, Value>) -> Result<&str, (String, &'static str)> {
    let p = "messages[0].destinations";
    let ds = m.get("destinations").and_then(Value::as_array).ok_or_else(|| (p.to_owned(), "must not be null"))?;
    if ds.len() != 1 {
        return Err((p.to_owned(), "the fake takes exactly one destination"));
    }
    let d = ds[0].as_object().ok_or_else(|| (format!("{p}[0]"), "must be an object"))?;
    if let Some(k) = unknown_key(d, &["to", "messageId", "networkId"]) {
        return Err((format!("{p}[0].{k}"), "unknown property"));
    }
    let to = d.get("to").and_then(Value::as_str).ok_or_else(|| (format!("{p}[0].to"), "must not be null"))?;
    if to.chars().count() > 64 || !is_number(to) {
        return Err((format!("{p}[0].to"), "must be a number in international format, digits only"));
    }
    Ok(to)
}

fn check_sms(b: &Value) -> Result<(), (String, &'static str)> {
    let m = one_message(b, &["messages", "options"])?;
    if let Some(k) = unknown_key(m, SMS_MESSAGE_KEYS) {
        return Err((format!("messages[0].{k}"), "unknown property"));
    }
    if m.get("sender").is_some_and(|s| s.as_str().is_none_or(str::is_empty)) {
        return Err(("messages[0].sender".to_owned(), "must be a non-empty string"));
    }
    one_destination(m)?;
    let c = m
        .get("content")
        .and_then(Value::as_object)
        .ok_or_else(|| ("messages[0].content".to_owned(), "must not be null"))?;
    if let Some(k) = unknown_key(c, &["text", "transliteration", "language"]) {
        return Err((format!("messages[0].content.{k}"), "unknown property"));
    }
    match c.get("text").and_then(Value::as_str) {
        None => return Err(("messages[0].content.text".to_owned(), "must not be null")),
        Some("") => return Err(("messages[0].content.text".to_owned(), "must not be blank")),
        Some(_) => {}
    }
    if let Some(w) = m.get("webhooks") {
        let w = w.as_object().ok_or_else(|| ("messages[0].webhooks".to_owned(), "must be an object"))?;
        if let Some(k) = unknown_key(w, &["delivery", "contentType", "callbackData"]) {
            return Err((format!("messages[0].webhooks.{k}"), "unknown property"));
        }
        if let Some(d) = w.get("delivery") {
            let d = d.as_object().ok_or_else(|| ("messages[0].webhooks.delivery".to_owned(), "must be an object"))?;
            if let Some(k) = unknown_key(d, &["url", "intermediateReport", "notify"]) {
                return Err((format!("messages[0].webhooks.delivery.{k}"), "unknown property"));
            }
            if d.get("url").is_some_and(|u| !u.as_str().is_some_and(|u| u.starts_with("http"))) {
                return Err(("messages[0].webhooks.delivery.url".to_owned(), "must be a URL"));
            }
        }
        if w.get("contentType").is_some_and(|t| !matches!(t.as_str(), Some("application/json" | "application/xml"))) {
            return Err(("messages[0].webhooks.contentType".to_owned(), "must be application/json or application/xml"));
        }
        match w.get("callbackData") {
            None => {}
            Some(Value::String(s)) if s.chars().count() <= 4000 => {}
            Some(_) => {
                return Err((
                    "messages[0].webhooks.callbackData".to_owned(),
                    "must be a string of at most 4000 characters",
                ));
            }
        }
    }
    Ok(())
}

fn check_voice(b: &Value) -> Result<(), (String, &'static str)> {
    let m = one_message(b, &["bulkId", "messages"])?;
    if let Some(k) = unknown_key(m, VOICE_MESSAGE_KEYS) {
        return Err((format!("messages[0].{k}"), "unknown property"));
    }
    one_destination(m)?;
    match m.get("from").and_then(Value::as_str) {
        None => return Err(("messages[0].from".to_owned(), "must not be null")),
        Some(f) if !is_number(f) => return Err(("messages[0].from".to_owned(), "must be a number in E.164 format")),
        Some(_) => {}
    }
    match m.get("text").and_then(Value::as_str) {
        None => return Err(("messages[0].text".to_owned(), "must not be null")),
        Some(t) if t.chars().count() > 1400 => {
            return Err(("messages[0].text".to_owned(), "must be at most 1400 characters"));
        }
        Some(t) if !t.chars().any(char::is_alphanumeric) => {
            return Err(("messages[0].text".to_owned(), "cannot contain only punctuation"));
        }
        Some(_) => {}
    }
    if m.get("language").is_some_and(|l| !l.as_str().is_some_and(|l| LANGUAGES.contains(&l))) {
        return Err(("messages[0].language".to_owned(), "must be one of the supported languages"));
    }
    if m.get("notifyContentType").is_some_and(|t| !matches!(t.as_str(), Some("application/json" | "application/xml"))) {
        return Err(("messages[0].notifyContentType".to_owned(), "must be application/json or application/xml"));
    }
    if m.get("notifyUrl").is_some_and(|u| !u.as_str().is_some_and(|u| u.starts_with("http"))) {
        return Err(("messages[0].notifyUrl".to_owned(), "must be a URL"));
    }
    match m.get("callbackData") {
        None => {}
        Some(Value::String(s)) if s.chars().count() <= 700 => {}
        Some(_) => return Err(("messages[0].callbackData".to_owned(), "must be a string of at most 700 characters")),
    }
    Ok(())
}

/// The documented checks, answered in Infobip's shapes.
pub fn check(s: &Seen) -> Result<(), Reply> {
    let path = s.path_only();
    let voice = path == VOICE_PATH;
    let auth_ok = s.header("authorization") == Some(&format!("App {API_KEY}"));
    if !auth_ok {
        return Err(if voice {
            api_exception(401, "UNAUTHORIZED", "Invalid login details", None)
        } else {
            api_error(401, "E401", "Unauthorized", None)
        });
    }
    if s.method != "POST" || (path != SMS_PATH && !voice) {
        return Err(api_error(404, "E404", "Not found", None));
    }
    if !s.content_type_is("application/json") {
        return Err(if voice {
            api_exception(415, "UNSUPPORTED_MEDIA_TYPE", "Unsupported media type", None)
        } else {
            api_error(415, "E415", "Unsupported media type", None)
        });
    }
    let b = s.json();
    if voice {
        check_voice(&b).map_err(|(p, v)| bad_voice(&p, v))
    } else {
        check_sms(&b).map_err(|(p, v)| bad_sms(&p, v))
    }
}

/// Infobip's id of the `n`th accepted message.
pub fn message_id(n: usize) -> String {
    format!("4{n:018}")
}

/// The answer to the `n`th accepted message: `PENDING` / `PENDING_ACCEPTED`.
pub fn accepted(s: &Seen, n: usize) -> Reply {
    let b = s.json();
    let to = b["messages"][0]["destinations"][0]["to"].clone();
    let status = json!({"groupId": 1, "groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED",
                        "description": "Message sent to next instance"});
    let message = if s.path_only() == VOICE_PATH {
        json!({"to": to, "status": status, "messageId": message_id(n)})
    } else {
        json!({"messageId": message_id(n), "status": status, "destination": to, "details": {"messageCount": 1}})
    };
    Reply::json(200, json!({"bulkId": format!("bulk-{n}"), "messages": [message]}))
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
    let m = &b["messages"][0];
    let to = format!("+{}", m["destinations"][0]["to"].as_str()?);
    if s.path_only() == VOICE_PATH {
        Some(Delivered { channel: "voice", to, text: m["text"].as_str()?.to_owned() })
    } else {
        Some(Delivered { channel: "sms", to, text: m["content"]["text"].as_str()?.to_owned() })
    }
}

/// A 500 `ApiError` (retryable).
pub fn unavailable() -> Reply {
    api_error(500, "E500", "Internal server error.", None)
}

/// A rejection of the number on HTTP 200 (final): `REJECTED` / `REJECTED_PREFIX_MISSING`.
pub fn bad_number() -> Reply {
    rejected(8, "REJECTED_PREFIX_MISSING", "Number prefix missing")
}

/// HTTP 200 with the one message `REJECTED` (group 5) as `name`.
pub fn rejected(id: i64, name: &str, description: &str) -> Reply {
    Reply::json(
        200,
        json!({"bulkId": "bulk-rejected", "messages": [{"messageId": message_id(0), "destination": "41793026727",
               "status": {"groupId": 5, "groupName": "REJECTED", "id": id, "name": name, "description": description}}]}),
    )
}

/// The delivery report Infobip posts to the message's webhook (`SmsDeliveryResult`), for Callsign message
/// `job_id` and Infobip message `message_id`: `DELIVERED` / `DELIVERED_TO_HANDSET` with `NO_ERROR`, or
/// `UNDELIVERABLE` / `UNDELIVERABLE_NOT_DELIVERED` with `EC_ABSENT_SUBSCRIBER` (id 27). Posted as
/// `application/json`; Infobip does not sign it.
pub fn receipt(job_id: &str, message_id: &str, delivered: bool) -> Vec<u8> {
    let (status, error) = if delivered {
        (
            json!({"groupId": 3, "groupName": "DELIVERED", "id": 5, "name": "DELIVERED_TO_HANDSET",
                   "description": "Message delivered to handset"}),
            json!({"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR", "description": "No Error",
                   "permanent": false}),
        )
    } else {
        (
            json!({"groupId": 2, "groupName": "UNDELIVERABLE", "id": 9, "name": "UNDELIVERABLE_NOT_DELIVERED",
                   "description": "Message sent not delivered"}),
            json!({"groupId": 1, "groupName": "HANDSET_ERRORS", "id": 27, "name": "EC_ABSENT_SUBSCRIBER",
                   "description": "Absent Subscriber", "permanent": false}),
        )
    };
    json!({"results": [{
        "bulkId": "bulk-1",
        "messageId": message_id,
        "to": "41793026727",
        "sender": FROM,
        "sentAt": "2026-01-01T00:00:01.000+0000",
        "doneAt": "2026-01-01T00:00:05.000+0000",
        "messageCount": 1,
        "mccMnc": "22801",
        "callbackData": job_id,
        "price": {"pricePerMessage": 0.01, "currency": "EUR"},
        "status": status,
        "error": error,
    }]})
    .to_string()
    .into_bytes()
}
