//! Infobip's wire rules, pure: the request bodies (SMS v3, text-to-speech advanced), how an answer is read and
//! classified, the delivery report, the text-to-speech languages and the hints for status and error names.
//!
//! The field names follow the models Infobip generates its SDKs from (PyPI `infobip-api-python-client` 6.0.0:
//! `SmsRequest`, `SmsMessage`, `SmsWebhooks`, `SmsResponse`, `ApiError`; `CallsAdvancedBody`,
//! `CallsAdvancedMessage`, `CallsVoiceResponse`, `ApiException`; `SmsDeliveryResult`, `CallsReportResponse`).
use serde_json::{Value, json};

/// The longest voice text Infobip takes (`CallsAdvancedMessage.text`: up to 1400 characters).
pub const MAX_VOICE_TEXT: usize = 1400;

/// Infobip's text-to-speech languages (`CallsLanguage`), as Infobip writes them.
pub const TTS_LANGUAGES: &[&str] = &[
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

/// Infobip's default text-to-speech language (English, voice Joanna).
pub const DEFAULT_TTS_LANGUAGE: &str = "en";

/// The text-to-speech language for a message locale: [`crate::voice::pick_language`] over [`TTS_LANGUAGES`]
/// (`de-AT` → `de-at`, `fr-BE` → `fr`, `pt` → `pt-pt`), else `en`.
pub fn tts_language(locale: &str) -> &'static str {
    crate::voice::pick_language(locale, TTS_LANGUAGES, DEFAULT_TTS_LANGUAGE)
}

/// A number as Infobip takes it: international format, digits only (the E.164 number without its `+`).
pub fn digits(e164: &str) -> &str {
    e164.trim().trim_start_matches('+')
}

/// A sender as sent: a numeric one loses its leading `+` (Infobip writes numeric senders as `41793026727`); an
/// alphanumeric one is kept as it is.
pub fn sender(from: &str) -> String {
    let f = from.trim();
    match f.strip_prefix('+') {
        Some(rest) if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) => rest.to_owned(),
        _ => f.to_owned(),
    }
}

/// `POST /sms/3/messages`: one message to one destination, its delivery report to `callback` (JSON), with our
/// message id as `callbackData`.
pub fn sms_body(to: &str, text: &str, from: Option<&str>, callback: &str, message_id: &str) -> Value {
    let mut m = json!({
        "destinations": [{"to": digits(to)}],
        "content": {"text": text},
        "webhooks": {
            "delivery": {"url": callback},
            "contentType": "application/json",
            "callbackData": message_id,
        },
    });
    if let Some(f) = from {
        m["sender"] = json!(sender(f));
    }
    json!({"messages": [m]})
}

/// `POST /tts/3/advanced`: one call to one destination reading `text` in `language`, its report to `callback`
/// (JSON), with our message id as `callbackData`.
pub fn voice_body(to: &str, text: &str, from: &str, language: &str, callback: &str, message_id: &str) -> Value {
    json!({"messages": [{
        "destinations": [{"to": digits(to)}],
        "from": sender(from),
        "text": text,
        "language": language,
        "notifyUrl": callback,
        "notifyContentType": "application/json",
        "callbackData": message_id,
    }]})
}

/// The group of a status object: `groupName`, else the name of `groupId` (1 PENDING, 2 UNDELIVERABLE,
/// 3 DELIVERED, 4 EXPIRED, 5 REJECTED).
pub fn group_of(status: &Value) -> Option<String> {
    if let Some(g) = status["groupName"].as_str().filter(|g| !g.is_empty()) {
        return Some(g.to_ascii_uppercase());
    }
    let name = match status["groupId"].as_i64()? {
        1 => "PENDING",
        2 => "UNDELIVERABLE",
        3 => "DELIVERED",
        4 => "EXPIRED",
        5 => "REJECTED",
        _ => return None,
    };
    Some(name.to_owned())
}

/// Whether a status group means the message was taken (`PENDING`, `ACCEPTED`, `DELIVERED`); `None` for a group
/// Infobip does not document.
pub fn group_is_ok(group: &str) -> Option<bool> {
    match group {
        "PENDING" | "ACCEPTED" | "DELIVERED" => Some(true),
        "REJECTED" | "UNDELIVERABLE" | "EXPIRED" => Some(false),
        _ => None,
    }
}

/// Whether a rejection (by status name) is worth trying again: only `REJECTED_SYSTEM_ERROR` (Infobip's own
/// failure; its table says to retry). Every other rejection is final, `REJECTED_FLOODING_FILTER` included: the
/// anti-flooding filter counts the messages a number received over the last hour, far longer than a code lives,
/// and each retry would count again.
pub fn status_is_retryable(name: &str) -> bool {
    name == "REJECTED_SYSTEM_ERROR"
}

/// What a status or error name means, for people (status names from Infobip's status table; error names are
/// the GSM and voice errors its reports carry).
pub fn hint(name: &str) -> Option<&'static str> {
    Some(match name {
        "REJECTED_NOT_ENOUGH_CREDITS" => "the Infobip account is out of credit",
        "REJECTED_PREPAID_PACKAGE_EXPIRED" => "the Infobip account's prepaid credit has expired",
        "REJECTED_SOURCE" => "the sender is not registered on the Infobip account",
        "REJECTED_SENDER" => "the sender is blocklisted on the Infobip account",
        "REJECTED_DESTINATION" => "the number is blocklisted, by its operator or on the Infobip account",
        "REJECTED_PREFIX_MISSING" | "REJECTED_INVALID_DESTINATION" => {
            "the number is not valid (unknown prefix or wrong length)"
        }
        "MISSING_TO" => "no destination number was given",
        "REJECTED_NETWORK" | "REJECTED_ROUTE_NOT_AVAILABLE" => "the Infobip account has no route to this network",
        "REJECTED_DESTINATION_NOT_REGISTERED" => "the Infobip account may only send to its registered test number",
        "REJECTED_DND" => "the number is on a do-not-disturb list",
        "REJECTED_FLOODING_FILTER" => "Infobip's anti-flooding filter: this number received too many messages lately",
        "REJECTED_SYSTEM_ERROR" => "an Infobip system error",
        "REJECTED_MESSAGE_TOO_LONG" => "the message is too long",
        "UNDELIVERABLE_REJECTED_OPERATOR" => "the operator rejected the message",
        "UNDELIVERABLE_NOT_DELIVERED" => "the operator could not deliver the message",
        "EXPIRED_EXPIRED" | "EXPIRED_DLR_UNKNOWN" => "the message was not delivered within its validity period",
        "EC_UNKNOWN_SUBSCRIBER" => "the number does not exist on its network",
        "EC_ABSENT_SUBSCRIBER" | "EC_ABSENT_SUBSCRIBER_SM" => "the handset is switched off or out of coverage",
        "EC_CALL_BARRED" => "the line bars these messages",
        "EC_TELESERVICE_NOT_PROVISIONED" => "the subscription does not include SMS",
        "EC_VOICE_NO_ANSWER" => "the call was not answered",
        "EC_VOICE_USER_BUSY" => "the line was busy",
        _ => return None,
    })
}

/// An answer's provider error: `{code, message}` from an `ApiError` (`errorCode`, `description`, and the first
/// violation as `property: violation`) or an `ApiException` (`requestError.serviceException`: `messageId`, `text`,
/// and the first validation error). Both `null` for a body that is neither.
pub fn parse_error(body: &str) -> (Value, Value, Option<String>) {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    if v["errorCode"].is_string() || v["description"].is_string() {
        let violation = v["violations"].as_array().and_then(|a| a.first()).map(|x| {
            let p = x["property"].as_str().unwrap_or("");
            let m = x["violation"].as_str().unwrap_or("");
            if p.is_empty() { m.to_owned() } else { format!("{p}: {m}") }
        });
        return (v["errorCode"].clone(), v["description"].clone(), violation.filter(|s| !s.is_empty()));
    }
    let se = &v["requestError"]["serviceException"];
    if se.is_object() {
        let violation = se["validationErrors"].as_object().and_then(|o| o.iter().next()).map(|(k, errs)| {
            let first = errs.as_array().and_then(|a| a.first()).and_then(Value::as_str).unwrap_or("");
            format!("{k}: {first}")
        });
        return (se["messageId"].clone(), se["text"].clone(), violation);
    }
    (Value::Null, Value::Null, None)
}

/// What a 2xx answer says about the one message sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Taken: `{message_id, status, group}` for the log.
    Taken(Value),
    /// Rejected on HTTP 200 (`REJECTED`, `UNDELIVERABLE` or `EXPIRED`): the status name (or id), its
    /// description, and whether it is worth trying again.
    Rejected { code: Value, description: Option<String>, name: Option<String>, retryable: bool },
    /// Not the documented shape.
    Malformed,
}

/// Read a 2xx answer (`SmsResponse` or `CallsVoiceResponse`): `messages[0].status` decides.
pub fn read_answer(body: &str) -> Answer {
    let v: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(_) => return Answer::Malformed,
    };
    let m = &v["messages"][0];
    let status = &m["status"];
    let Some(group) = group_of(status) else { return Answer::Malformed };
    let name = status["name"].as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    match group_is_ok(&group) {
        Some(true) => Answer::Taken(json!({
            "message_id": m["messageId"].as_str(),
            "status": name,
            "group": group,
        })),
        Some(false) => Answer::Rejected {
            code: name.clone().map_or_else(|| status["id"].clone(), Value::String),
            description: status["description"].as_str().map(str::to_owned),
            retryable: name.as_deref().is_some_and(status_is_retryable),
            name,
        },
        None => Answer::Malformed,
    }
}

/// A delivery report (`SmsDeliveryResult` / `CallsReportResponse`): `results`, each with our `callbackData`.
/// `Err(())` unless it is JSON with at least one result and every result's `callbackData` is `message_id`.
#[allow(clippy::result_unit_err)]
pub fn report_results<'a>(report: &'a Value, message_id: &str) -> Result<&'a [Value], ()> {
    let results = report["results"].as_array().filter(|r| !r.is_empty()).ok_or(())?;
    if results.iter().all(|r| r["callbackData"].as_str() == Some(message_id)) { Ok(results) } else { Err(()) }
}

/// `GROUP/NAME` of a status object (`DELIVERED/DELIVERED_TO_HANDSET`), or whichever of the two it has.
pub fn status_text(status: &Value) -> Option<String> {
    let group = group_of(status);
    let name = status["name"].as_str().filter(|s| !s.is_empty());
    match (group, name) {
        (Some(g), Some(n)) => Some(format!("{g}/{n}")),
        (Some(g), None) => Some(g),
        (None, Some(n)) => Some(n.to_owned()),
        (None, None) => None,
    }
}

/// A report's `error`, when it is one: `None` for no error object and for Infobip's `NO_ERROR` (id 0).
pub fn real_error(error: &Value) -> Option<&Value> {
    let no_error = error["id"].as_i64() == Some(0) || error["name"].as_str() == Some("NO_ERROR");
    (error.is_object() && !no_error).then_some(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_come_from_the_locale() {
        assert_eq!(tts_language("en"), "en");
        assert_eq!(tts_language("en-US"), "en");
        assert_eq!(tts_language("en_GB"), "en-gb");
        assert_eq!(tts_language("de-AT"), "de-at");
        assert_eq!(tts_language("fr-BE"), "fr");
        assert_eq!(tts_language("pt"), "pt-pt");
        assert_eq!(tts_language("pt-BR"), "pt-br");
        assert_eq!(tts_language("zh"), "zh-cn");
        assert_eq!(tts_language("xx"), "en");
        assert_eq!(tts_language(""), "en");
    }

    #[test]
    fn senders_and_numbers_are_written_as_infobip_does() {
        assert_eq!(digits("+41793026727"), "41793026727");
        assert_eq!(sender("+41793026700"), "41793026700");
        assert_eq!(sender("Callsign"), "Callsign");
        assert_eq!(sender("+Acme"), "+Acme");
    }

    #[test]
    fn answers_are_classified() {
        let ok = r#"{"bulkId":"b","messages":[{"messageId":"m1","status":{"groupId":1,"groupName":"PENDING","id":26,"name":"PENDING_ACCEPTED"}}]}"#;
        assert_eq!(
            read_answer(ok),
            Answer::Taken(json!({"message_id": "m1", "status": "PENDING_ACCEPTED", "group": "PENDING"}))
        );
        let by_id = r#"{"messages":[{"status":{"groupId":5,"id":12,"name":"REJECTED_NOT_ENOUGH_CREDITS"}}]}"#;
        assert!(matches!(read_answer(by_id), Answer::Rejected { retryable: false, .. }));
        let sys = r#"{"messages":[{"status":{"groupName":"REJECTED","name":"REJECTED_SYSTEM_ERROR"}}]}"#;
        assert!(matches!(read_answer(sys), Answer::Rejected { retryable: true, .. }));
        for bad in ["", "[]", r#"{"messages":[]}"#, r#"{"messages":[{"status":{"groupName":"WHAT"}}]}"#] {
            assert_eq!(read_answer(bad), Answer::Malformed, "{bad}");
        }
    }

    #[test]
    fn both_error_shapes_are_read() {
        let api = r#"{"errorCode":"E400","description":"Bad","action":"x","violations":[{"property":"messages[0].content","violation":"must not be null"}],"resources":[]}"#;
        assert_eq!(
            parse_error(api),
            (json!("E400"), json!("Bad"), Some("messages[0].content: must not be null".to_owned()))
        );
        let old =
            r#"{"requestError":{"serviceException":{"messageId":"UNAUTHORIZED","text":"Invalid login details"}}}"#;
        assert_eq!(parse_error(old), (json!("UNAUTHORIZED"), json!("Invalid login details"), None));
        assert_eq!(parse_error("<html>"), (Value::Null, Value::Null, None));
    }

    #[test]
    fn only_the_system_error_is_retried() {
        assert!(status_is_retryable("REJECTED_SYSTEM_ERROR"));
        for n in
            ["REJECTED_FLOODING_FILTER", "REJECTED_NOT_ENOUGH_CREDITS", "REJECTED_SOURCE", "REJECTED_PREFIX_MISSING"]
        {
            assert!(!status_is_retryable(n), "{n}");
        }
    }
}
