//! A strict fake of ClickSend's REST API v3 send endpoints (`POST /v3/sms/send`, `POST /v3/voice/send`), after the
//! request models of PyPI `clicksend-client` 6.0.2 (`SendSmsRequest`, `SendSmsRequestMessagesInner`,
//! `SendVoiceMessageRequest`) and the send endpoint's documented properties and "Allowed Languages" table.
//!
//! - HTTP Basic auth must be [`USERNAME`]:[`API_KEY`], else 401 `UNAUTHORIZED` (ClickSend's shape:
//!   `{http_code, response_code, response_msg, data}`); another path is 404 `NOT_FOUND`, another method on a send
//!   path 405 `METHOD_NOT_FOUND`.
//! - The body must be JSON (`Content-Type: application/json`) `{"messages": [1..=1000 objects]}` (SMS may add
//!   `senders`, `shorten_urls`), each message only with the documented fields, each of its documented type (strings
//!   are strings, `schedule` / `machine_detection` / `require_input` integers, the flags 0 or 1), else 400
//!   `BAD_REQUEST`. Unknown fields are refused, which is stricter than ClickSend (not documented to refuse them).
//! - Voice: `voice` is `female` or `male`, `lang` one of the documented codes, and the voice one that language
//!   has; else 400 `BAD_REQUEST` (ClickSend's exact answer to these is not documented).
//! - Per message, as ClickSend does, HTTP 200 with the message's `status`: a missing or empty `body`, `to`, or
//!   voice `voice` is `MISSING_REQUIRED_FIELDS`; a `to` that is not E.164 (`+` and 7 to 15 digits) is
//!   `INVALID_RECIPIENT`; an empty `from` is `INVALID_RETURN_ADDRESS`. Otherwise each message is `SUCCESS`, echoed
//!   with a `message_id` (answers in the shape of the `SendSms` / `SendVoiceMessage` response models).
use serde_json::{Map, Value, json};

use crate::{Delivered, Fake, Reply, Seen};

/// The API username the fake accepts.
pub const USERNAME: &str = "callsign-test";
/// The API key the fake accepts.
pub const API_KEY: &str = "CS-TEST-0123456789ABCDEF01234567";
/// A sender (an alpha tag).
pub const FROM: &str = "Callsign";
/// The send paths.
pub const SMS_PATH: &str = "/v3/sms/send";
pub const VOICE_PATH: &str = "/v3/voice/send";

/// The documented voice languages and their voices.
pub const VOICE_LANGUAGES: &[(&str, &[&str])] = &[
    ("en-us", &["female", "male"]),
    ("en-au", &["female", "male"]),
    ("en-gb", &["female", "male"]),
    ("en-in", &["female"]),
    ("en-gb-wls", &["female", "male"]),
    ("cy-gb-wls", &["female", "male"]),
    ("de-de", &["female", "male"]),
    ("es-es", &["female", "male"]),
    ("es-us", &["female", "male"]),
    ("fr-ca", &["female"]),
    ("fr-fr", &["female", "male"]),
    ("is-is", &["female", "male"]),
    ("it-it", &["female", "male"]),
    ("da-dk", &["female", "male"]),
    ("nl-nl", &["female", "male"]),
    ("nb-no", &["female"]),
    ("pl-pl", &["female", "male"]),
    ("pt-pt", &["male"]),
    ("pt-br", &["female", "male"]),
    ("ro-ro", &["female"]),
    ("ru-ru", &["female", "male"]),
    ("sv-se", &["female"]),
    ("tr-tr", &["female"]),
];

const SMS_TOP: &[&str] = &["senders", "shorten_urls", "messages"];
const VOICE_TOP: &[&str] = &["messages"];
/// `SendSmsRequestMessagesInner`'s properties.
const SMS_FIELDS: &[&str] = &[
    "body",
    "to",
    "from",
    "source",
    "schedule",
    "custom_string",
    "list_id",
    "contact_id",
    "country",
    "from_email",
    "exclude_no_sender_id_recipients",
];
/// `SendVoiceMessageRequestMessagesInner`'s properties (the generated request model of `clicksend-client` 6.0.2;
/// older prose docs also list `custom_string`, `country`, `schedule`, `require_input`, which that model does not).
const VOICE_FIELDS: &[&str] = &["source", "body", "to", "voice", "lang", "machine_detection"];
const INT_FIELDS: &[&str] = &["schedule", "contact_id", "require_input", "machine_detection"];
const FLAG_FIELDS: &[&str] = &["require_input", "machine_detection"];
const BOOL_FIELDS: &[&str] = &["exclude_no_sender_id_recipients"];

/// The Guardian `PUT /guardian/factors/phone/providers/clicksend` body that works with the fake.
pub fn settings() -> Value {
    json!({"username": USERNAME, "api_key": API_KEY, "from": FROM})
}

/// ClickSend's error shape.
pub fn error(http: u16, code: &str, message: &str) -> Reply {
    Reply::json(http, json!({"http_code": http, "response_code": code, "response_msg": message, "data": null}))
}

fn bad_request(message: impl Into<String>) -> Reply {
    error(400, "BAD_REQUEST", &message.into())
}

fn is_e164(s: &str) -> bool {
    s.strip_prefix('+')
        .is_some_and(|d| (7..=15).contains(&d.len()) && d.bytes().all(|c| c.is_ascii_digit()) && !d.starts_with('0'))
}

/// A non-empty string member.
fn text<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str).filter(|s| !s.trim().is_empty())
}

/// The per-message status ClickSend would give `m` (already checked for types).
fn message_status(m: &Map<String, Value>, voice: bool) -> &'static str {
    if text(m, "body").is_none() || (text(m, "to").is_none() && text(m, "list_id").is_none()) {
        return "MISSING_REQUIRED_FIELDS";
    }
    if voice && text(m, "voice").is_none() {
        return "MISSING_REQUIRED_FIELDS";
    }
    if text(m, "to").is_some_and(|t| !is_e164(t)) {
        return "INVALID_RECIPIENT";
    }
    if m.get("from").and_then(Value::as_str).is_some_and(|f| f.trim().is_empty()) {
        return "INVALID_RETURN_ADDRESS";
    }
    "SUCCESS"
}

/// The request-level checks (400 and the like); `Ok` with the messages and whether it is a voice send.
fn request(s: &Seen) -> Result<(Vec<Map<String, Value>>, bool), Reply> {
    if s.basic_auth() != Some((USERNAME.to_owned(), API_KEY.to_owned())) {
        return Err(error(401, "UNAUTHORIZED", "Authorization failed."));
    }
    let voice = match s.path_only() {
        SMS_PATH => false,
        VOICE_PATH => true,
        _ => return Err(error(404, "NOT_FOUND", "Resource not found.")),
    };
    if s.method != "POST" {
        return Err(error(405, "METHOD_NOT_FOUND", "Method not found."));
    }
    if !s.content_type_is("application/json") {
        return Err(bad_request("Content-Type must be application/json."));
    }
    let b = s.json();
    let Some(o) = b.as_object() else { return Err(bad_request("The body is not a JSON object.")) };
    let (top, fields) = if voice { (VOICE_TOP, VOICE_FIELDS) } else { (SMS_TOP, SMS_FIELDS) };
    if let Some(k) = o.keys().find(|k| !top.contains(&k.as_str())) {
        return Err(bad_request(format!("Unknown field {k}.")));
    }
    let Some(list) = o.get("messages").and_then(Value::as_array) else {
        return Err(bad_request("messages is required and must be an array."));
    };
    if list.is_empty() || list.len() > 1000 {
        return Err(bad_request("messages must hold 1 to 1000 messages."));
    }
    let mut out = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let Some(m) = m.as_object() else { return Err(bad_request(format!("messages[{i}] is not an object."))) };
        for (k, v) in m {
            if !fields.contains(&k.as_str()) {
                return Err(bad_request(format!("Unknown field messages[{i}].{k}.")));
            }
            let ok = if INT_FIELDS.contains(&k.as_str()) {
                v.as_i64().is_some_and(|n| !FLAG_FIELDS.contains(&k.as_str()) || n == 0 || n == 1)
            } else if BOOL_FIELDS.contains(&k.as_str()) {
                v.is_boolean()
            } else {
                v.is_string()
            };
            if !ok {
                return Err(bad_request(format!("messages[{i}].{k} has the wrong type.")));
            }
        }
        if voice {
            if let Some(v) = m.get("voice").and_then(Value::as_str).filter(|v| !v.is_empty())
                && v != "female"
                && v != "male"
            {
                return Err(bad_request(format!("messages[{i}].voice must be female or male.")));
            }
            if let Some(l) = m.get("lang").and_then(Value::as_str) {
                let Some((_, voices)) = VOICE_LANGUAGES.iter().find(|(code, _)| *code == l) else {
                    return Err(bad_request(format!("messages[{i}].lang {l} is not an allowed language.")));
                };
                let v = m.get("voice").and_then(Value::as_str).unwrap_or("female");
                if !voices.contains(&v) {
                    return Err(bad_request(format!("messages[{i}]: {l} has no {v} voice.")));
                }
            }
        }
        out.push(m.clone());
    }
    Ok((out, voice))
}

/// ClickSend's answer to `messages` with these statuses (the `n`th accepted request).
fn answer(messages: &[Map<String, Value>], statuses: &[&str], voice: bool, n: usize) -> Reply {
    let mut queued = 0;
    let echoed: Vec<Value> = messages
        .iter()
        .zip(statuses)
        .enumerate()
        .map(|(i, (m, st))| {
            let ok = *st == "SUCCESS";
            if ok {
                queued += 1;
            }
            let mut e = json!({
                "to": m.get("to").cloned().unwrap_or(Value::Null),
                "body": m.get("body").cloned().unwrap_or(Value::Null),
                "message_id": format!("BF7AD270-0DE2-418B-B606-{:08X}{i:04X}", n),
                "message_price": if ok { "0.0792" } else { "0.0000" },
                "custom_string": m.get("custom_string").cloned().unwrap_or(json!("")),
                "user_id": 1,
                "subaccount_id": 1,
                "country": "US",
                "carrier": "T-Mobile",
                "status": st,
            });
            if voice {
                // `VoiceMessage`: `date` is a string, `schedule` an empty string when none was set.
                e["date"] = json!("1767225600");
                e["date_added"] = json!(1_767_225_600);
                e["to_type"] = json!("mobile");
                e["lang"] = m.get("lang").cloned().unwrap_or(json!("en-us"));
                e["voice"] = m.get("voice").cloned().unwrap_or(Value::Null);
                e["schedule"] = json!("");
                e["message_parts"] = json!(if ok { 1 } else { 0 });
                e["machine_detection"] = m.get("machine_detection").cloned().unwrap_or(json!(0));
            } else {
                // `SmsSendSms`.
                e["direction"] = json!("out");
                e["date"] = json!(1_767_225_600);
                e["from"] = m.get("from").cloned().unwrap_or(json!("+61447238703"));
                e["schedule"] = json!(1_767_225_600);
                e["message_parts"] = json!(if ok { 1 } else { 0 });
                e["is_shared_system_number"] = json!(!m.contains_key("from"));
            }
            e
        })
        .collect();
    let mut data = json!({
        "total_price": 0.0792 * f64::from(queued),
        "total_count": messages.len(),
        "queued_count": queued,
        "messages": echoed,
        "_currency": {"currency_name_short": "USD", "currency_prefix_d": "$", "currency_prefix_c": "¢", "currency_name_long": "US Dollars"},
    });
    if !voice {
        data["blocked_count"] = json!(0);
    }
    Reply::json(
        200,
        json!({
            "http_code": 200,
            "response_code": "SUCCESS",
            "response_msg": "Messages queued for delivery.",
            "data": data,
        }),
    )
}

/// The documented checks, answered in ClickSend's words.
pub fn check(s: &Seen) -> Result<(), Reply> {
    let (messages, voice) = request(s)?;
    let statuses: Vec<&str> = messages.iter().map(|m| message_status(m, voice)).collect();
    if statuses.iter().all(|st| *st == "SUCCESS") { Ok(()) } else { Err(answer(&messages, &statuses, voice, 0)) }
}

/// The answer to the `n`th accepted request: every message `SUCCESS`.
pub fn accepted(s: &Seen, n: usize) -> Reply {
    match request(s) {
        Ok((messages, voice)) => answer(&messages, &vec!["SUCCESS"; messages.len()], voice, n),
        Err(r) => r,
    }
}

/// Start the fake.
pub async fn start() -> Fake {
    Fake::start(Box::new(check), Box::new(accepted)).await
}

/// What an accepted request delivered (its first message). A request the fake refused is `None`, including its
/// own per-message refusals (HTTP 200); a scripted 200 refusal ([`bad_number`]) cannot be told from `Seen`.
pub fn delivered(s: &Seen) -> Option<Delivered> {
    if !(200..300).contains(&s.status) || check(s).is_err() {
        return None;
    }
    let b = s.json();
    let m = &b["messages"][0];
    let channel = if s.path_only() == VOICE_PATH { "voice" } else { "sms" };
    Some(Delivered { channel, to: m["to"].as_str()?.to_owned(), text: m["body"].as_str()?.to_owned() })
}

/// A 500 (retryable).
pub fn unavailable() -> Reply {
    error(500, "INTERNAL_SERVER_ERROR", "Internal server error.")
}

/// A 429 (retryable).
pub fn throttled() -> Reply {
    error(429, "TOO_MANY_REQUESTS", "Too many requests.")
}

/// A per-message refusal in a 200 answer with this `status` (`INSUFFICIENT_CREDIT`, `COUNTRY_NOT_ENABLED`…).
pub fn refused(status: &str) -> Reply {
    let m = json!({"to": "+14155552671", "body": "x", "custom_string": ""});
    let m = m.as_object().cloned().unwrap_or_default();
    answer(&[m], &[status], false, 0)
}

/// A refusal of the number (final): HTTP 200 with the message's status `INVALID_RECIPIENT`.
pub fn bad_number() -> Reply {
    refused("INVALID_RECIPIENT")
}
