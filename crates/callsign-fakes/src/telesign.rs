//! A strict fake of Telesign's SMS and voice APIs (`POST /v1/messaging`, `POST /v1/voice`, form-encoded), after
//! developer.telesign.com and Telesign's Python SDK:
//!
//! - auth: HTTP Basic `CUSTOMER_ID:API_KEY`, or the TSA digest: `Date` (RFC 1123), `x-ts-auth-method:
//!   HMAC-SHA256`, `x-ts-nonce`, and `Authorization: TSA {customer_id}:{base64(HMAC-SHA256(base64decode(API_KEY),
//!   string_to_sign))}` recomputed from the request as seen. A wrong one is 401 `{"status": {"code": 501,
//!   "description": "Not authorized"}, "errors": [{"code": -300xx, …}]}` with Telesign's code (-30000 customer id,
//!   -30004 / -30005 header missing / malformed, -30006 signature, -30007 / -30009 `Date` missing / not RFC 1123,
//!   -30008 auth method, -30011 nonce, -30015 API key). The `Date` is not checked against a clock (the tests' clock
//!   is not the fake's), nor is nonce reuse.
//! - a parameter refused is 400 with Telesign's status code: 12000 / 12009 / 12017 (`phone_number` / `message` /
//!   `message_type` missing), 11000 (`phone_number` not 7–15 digits without `+`), 11009 (`message` empty, or a
//!   voice `message` over 1600 characters), 11017 (`message_type` not OTP, ARN or MKT), 11013 (`sender_id` not 1–15
//!   letters and digits), 11004 (`callback_url` not http(s)), 11016 (`external_id` over 100 characters or not
//!   ASCII). The fake is stricter than documented on what it cannot know Telesign accepts: an unknown or repeated
//!   parameter, a `voice` that is not a documented voice, a body that is not a form: 400 with error -40006 (Bad
//!   request).
//! - accepted: 200 `{"reference_id", "external_id", "status": {"code": 290 | 103, "description", "updated_on"}}`.
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::{Delivered, Fake, Reply, Seen};

/// The customer id the fake accepts.
pub const CUSTOMER_ID: &str = "0A1B2C3D-4E5F-6A7B-8C9D-0E1F2A3B4C5D";
/// The API key the fake accepts (base64, as Telesign issues keys): `base64("telesign-fake-api-key-0123456789abcdef")`.
pub const API_KEY: &str = "dGVsZXNpZ24tZmFrZS1hcGkta2V5LTAxMjM0NTY3ODlhYmNkZWY=";
/// A sender id.
pub const FROM: &str = "Callsign";

/// The voices Telesign documents.
pub const VOICES: &[&str] = &[
    "f-zh-HK", "f-zh-CN", "f-zh-TW", "f-da-DK", "f-nl-NL", "f-en-AU", "f-en-GB", "f-en-US", "f-en-CA", "f-en-IN",
    "f-fi-FI", "f-fr-FR", "f-fr-CA", "f-it-IT", "f-ja-JP", "f-ko-KR", "f-nb-NO", "f-pl-PL", "f-pt-BR", "f-pt-PT",
    "f-es-MX", "f-es-ES",
];

/// The Guardian `PUT /guardian/factors/phone/providers/telesign` body that works with the fake (Basic auth).
pub fn settings() -> Value {
    json!({"customer_id": CUSTOMER_ID, "api_key": API_KEY, "sender_id": FROM})
}

/// [`settings`] with the signed digest (`auth_method: hmac`).
pub fn settings_hmac() -> Value {
    json!({"customer_id": CUSTOMER_ID, "api_key": API_KEY, "sender_id": FROM, "auth_method": "hmac"})
}

fn not_authorized(code: i64, description: &str) -> Reply {
    Reply::json(
        401,
        json!({"status": {"code": 501, "description": "Not authorized"}, "errors": [{"code": code, "description": description}]}),
    )
}

fn invalid(code: i64, description: &str) -> Reply {
    Reply::json(400, json!({"status": {"code": code, "description": description}, "errors": []}))
}

fn bad_request(description: &str) -> Reply {
    Reply::json(
        400,
        json!({"status": {"code": 500, "description": "Transaction not attempted"}, "errors": [{"code": -40006, "description": format!("Bad request: {description}")}]}),
    )
}

/// `base64(HMAC-SHA256(base64decode(API_KEY), data))`.
pub fn sign(data: &[u8]) -> String {
    let key = B64.decode(API_KEY).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(data);
    B64.encode(mac.finalize().into_bytes())
}

/// Whether `date` reads as an RFC 1123 date (`Wed, 14 Dec 2016 18:20:12 GMT`).
fn is_rfc1123(date: &str) -> bool {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let p: Vec<&str> = date.split(' ').collect();
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let time: Vec<&str> = p.get(4).map(|t| t.split(':').collect()).unwrap_or_default();
    p.len() == 6
        && p[0].strip_suffix(',').is_some_and(|d| DAYS.contains(&d))
        && digits(p[1], 2)
        && MONTHS.contains(&p[2])
        && digits(p[3], 4)
        && time.len() == 3
        && time.iter().all(|t| digits(t, 2))
        && p[5] == "GMT"
}

fn check_auth(s: &Seen) -> Result<(), Reply> {
    let Some(auth) = s.header("authorization") else {
        return Err(not_authorized(-30004, "Missing required 'Authorization' header"));
    };
    if auth.starts_with("Basic ") {
        return match s.basic_auth() {
            Some((c, _)) if c != CUSTOMER_ID => Err(not_authorized(-30000, "Invalid Customer ID.")),
            Some((_, k)) if k != API_KEY => Err(not_authorized(-30015, "Invalid API Key.")),
            Some(_) => Ok(()),
            None => Err(not_authorized(-30005, "Required 'Authorization' header is not in the correct format")),
        };
    }
    let Some((customer, signature)) = auth.strip_prefix("TSA ").and_then(|r| r.split_once(':')) else {
        return Err(not_authorized(-30005, "Required 'Authorization' header is not in the correct format"));
    };
    let Some(date) = s.header("date") else {
        return Err(not_authorized(-30007, "Missing required 'Date' or 'x-ts-date' header"));
    };
    if !is_rfc1123(date) {
        return Err(not_authorized(-30009, "'Date' or 'x-ts-date' header is not RFC822 compliant"));
    }
    if !s.header("x-ts-auth-method").is_some_and(|m| m.eq_ignore_ascii_case("HMAC-SHA256")) {
        return Err(not_authorized(-30008, "Invalid 'x-ts-auth-method' header."));
    }
    let nonce = s.header("x-ts-nonce").unwrap_or("");
    if nonce.is_empty() || nonce.len() > 64 {
        return Err(not_authorized(-30011, "'x-ts-nonce' header value is either too long or too short"));
    }
    if customer != CUSTOMER_ID {
        return Err(not_authorized(-30000, "Invalid Customer ID."));
    }
    let content_type = s.header("content-type").unwrap_or("");
    let mut to_sign = format!("{}\n{content_type}\n{date}\nx-ts-auth-method:HMAC-SHA256\nx-ts-nonce:{nonce}", s.method);
    if !content_type.is_empty() && !s.body.is_empty() {
        to_sign.push('\n');
        to_sign.push_str(&s.text());
    }
    to_sign.push('\n');
    to_sign.push_str(s.path_only());
    if signature != sign(to_sign.as_bytes()) {
        return Err(not_authorized(-30006, "Invalid Signature"));
    }
    Ok(())
}

/// The documented checks, in Telesign's words.
pub fn check(s: &Seen) -> Result<(), Reply> {
    check_auth(s)?;
    let voice = match (s.method.as_str(), s.path_only()) {
        ("POST", "/v1/messaging") => false,
        ("POST", "/v1/voice") => true,
        _ => return Err(Reply::json(404, json!({"status": {"code": 404, "description": "Not Found"}, "errors": []}))),
    };
    if !s.content_type_is("application/x-www-form-urlencoded") {
        return Err(bad_request("Content-Type must be application/x-www-form-urlencoded"));
    }
    let form = s.form();
    let allowed: &[&str] = if voice {
        &[
            "phone_number",
            "message",
            "message_type",
            "voice",
            "callback_url",
            "external_id",
            "account_lifecycle_event",
            "originating_ip",
        ]
    } else {
        &[
            "phone_number",
            "message",
            "message_type",
            "sender_id",
            "callback_url",
            "external_id",
            "account_lifecycle_event",
            "originating_ip",
        ]
    };
    for (i, (k, _)) in form.iter().enumerate() {
        if !allowed.contains(&k.as_str()) {
            return Err(bad_request(&format!("unknown parameter {k}")));
        }
        if form[..i].iter().any(|(p, _)| p == k) {
            return Err(bad_request(&format!("repeated parameter {k}")));
        }
    }
    let field = |k: &str| form.iter().find(|(p, _)| p == k).map(|(_, v)| v.as_str());
    match field("phone_number") {
        None => return Err(invalid(12000, "Missing Required Parameter phone_number")),
        Some(n) if n.len() < 7 || n.len() > 15 || !n.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(invalid(11000, "Invalid value for parameter phone_number."));
        }
        Some(_) => {}
    }
    match field("message") {
        None => return Err(invalid(12009, "Missing Required Parameter message")),
        Some(m) if m.trim().is_empty() || (voice && m.chars().count() > 1600) => {
            return Err(invalid(11009, "Invalid value for parameter message."));
        }
        Some(_) => {}
    }
    match field("message_type") {
        None => return Err(invalid(12017, "Missing Required Parameter message_type")),
        Some(t) if !["OTP", "ARN", "MKT"].contains(&t) => {
            return Err(invalid(11017, "Invalid value for parameter message_type."));
        }
        Some(_) => {}
    }
    if let Some(v) = field("sender_id")
        && (v.is_empty() || v.len() > 15 || !v.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return Err(invalid(11013, "Invalid value for parameter sender_id."));
    }
    if let Some(u) = field("callback_url")
        && !(u.starts_with("https://") || u.starts_with("http://"))
    {
        return Err(invalid(11004, "Invalid value for parameter callback_url"));
    }
    if let Some(e) = field("external_id")
        && (e.len() > 100 || !e.is_ascii())
    {
        return Err(invalid(11016, "Invalid value for parameter external_id"));
    }
    if let Some(v) = field("voice")
        && !VOICES.contains(&v)
    {
        return Err(bad_request("Invalid value for parameter voice."));
    }
    Ok(())
}

/// The answer to the `n`th accepted request.
pub fn accepted(s: &Seen, n: usize) -> Reply {
    let voice = s.path_only() == "/v1/voice";
    let (code, description) = if voice { (103, "Call in progress") } else { (290, "Message in progress") };
    Reply::json(
        200,
        json!({
            "reference_id": format!("{n:032X}"),
            "external_id": s.field("external_id"),
            "status": {"code": code, "description": description, "updated_on": "2026-01-01T00:00:00.000000Z"},
        }),
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
    let channel = if s.path_only() == "/v1/voice" { "voice" } else { "sms" };
    Some(Delivered { channel, to: format!("+{}", s.field("phone_number")?), text: s.field("message")? })
}

/// A 503 (retryable).
pub fn unavailable() -> Reply {
    Reply::json(503, json!({"status": {"code": 500, "description": "Transaction not attempted"}, "errors": []}))
}

/// A refusal of the number (final).
pub fn bad_number() -> Reply {
    invalid(11000, "Invalid value for parameter phone_number.")
}

/// A delivery receipt as Telesign would POST it to the `callback_url`: the JSON body and its headers
/// (`Content-Type`, and `Authorization` / `X-TS-Authorization` `TSA {CUSTOMER_ID}:{signature of the body}`).
pub fn receipt(
    reference_id: &str,
    code: i64,
    description: &str,
    external_id: Option<&str>,
) -> (Vec<u8>, Vec<(String, String)>) {
    let body = json!({
        "reference_id": reference_id,
        "external_id": external_id,
        "status": {"code": code, "description": description, "updated_on": "2026-01-01T00:00:05.000000Z"},
        "submit_timestamp": "2026-01-01T00:00:00.000000Z",
    })
    .to_string()
    .into_bytes();
    let auth = format!("TSA {CUSTOMER_ID}:{}", sign(&body));
    let headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("authorization".to_owned(), auth.clone()),
        ("x-ts-authorization".to_owned(), auth),
    ];
    (body, headers)
}
