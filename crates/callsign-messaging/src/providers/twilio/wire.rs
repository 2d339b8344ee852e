//! Twilio's wire rules, pure: the `X-Twilio-Signature`, the `<Say>` languages and TwiML, and its error bodies.
use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha1::Sha1;

// --- X-Twilio-Signature -----------------------------------------------------------------------------------------

/// `base64(HMAC-SHA1(auth_token, url + concat(sorted keys → key + value)))`; repeated keys contribute each
/// distinct value once, values sorted (as twilio-python's `RequestValidator`).
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (k, v) in params {
        sorted.entry(k.as_str()).or_default().insert(v.as_str());
    }
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()) else {
        return String::new();
    };
    mac.update(url.as_bytes());
    for (k, values) in sorted {
        for v in values {
            mac.update(k.as_bytes());
            mac.update(v.as_bytes());
        }
    }
    B64.encode(mac.finalize().into_bytes())
}

/// The URL as given and with its scheme's default port added (or removed, when written out): Twilio may sign
/// either form.
fn port_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    let default = if url.starts_with("https://") {
        ":443"
    } else if url.starts_with("http://") {
        ":80"
    } else {
        return out;
    };
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return out;
    };
    let rest = &url[start..];
    let end = start + rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &url[start..end];
    let other = match authority.strip_suffix(default) {
        Some(bare) => bare.to_owned(),
        // Another explicit port (or an IPv6 literal's colon after `]`): only the text as given.
        None if authority.rsplit_once(':').is_some_and(|(_, p)| p.bytes().all(|b| b.is_ascii_digit())) => {
            return out;
        }
        None => format!("{authority}{default}"),
    };
    out.push(format!("{}{other}{}", &url[..start], &url[end..]));
    out
}

/// Whether `given` is a valid signature of the request for `auth_token` (constant-time comparison, URL tried
/// with and without its default port).
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], given: &str) -> bool {
    use subtle::ConstantTimeEq;
    let mut ok = false;
    for u in port_variants(url) {
        let expected = signature(auth_token, &u, params);
        ok |= bool::from(expected.as_bytes().ct_eq(given.trim().as_bytes()));
    }
    ok
}

// --- voice ------------------------------------------------------------------------------------------------------

/// Twilio's limit on inline TwiML.
pub const MAX_TWIML: usize = 4000;

/// `<Say>` languages Twilio supports that Callsign passes through as given (case-normalised).
const SAY_LANGUAGES: &[&str] = &[
    "ar-AE", "ca-ES", "cy-GB", "da-DK", "de-AT", "de-DE", "en-AU", "en-CA", "en-GB", "en-IE", "en-IN", "en-NZ",
    "en-US", "en-ZA", "es-ES", "es-MX", "es-US", "fi-FI", "fr-CA", "fr-FR", "hi-IN", "is-IS", "it-IT", "ja-JP",
    "ko-KR", "nb-NO", "nl-BE", "nl-NL", "pl-PL", "pt-BR", "pt-PT", "ro-RO", "ru-RU", "sv-SE", "tr-TR", "zh-CN",
    "zh-HK", "zh-TW",
];

/// The Twilio `<Say>` language for a message locale (`fr`, `fr-CA`, `pt_BR`…); `en-US` when there is no match.
pub fn say_language(locale: &str) -> &'static str {
    let locale = locale.trim().replace('_', "-");
    let mut parts = locale.split('-');
    let lang = parts.next().unwrap_or_default().to_ascii_lowercase();
    if let Some(region) = parts.next() {
        let tag = format!("{lang}-{}", region.to_ascii_uppercase());
        if let Some(l) = SAY_LANGUAGES.iter().find(|l| **l == tag) {
            return l;
        }
    }
    match lang.as_str() {
        "ar" => "ar-AE",
        "ca" => "ca-ES",
        "cy" => "cy-GB",
        "da" => "da-DK",
        "de" => "de-DE",
        "es" => "es-ES",
        "fi" => "fi-FI",
        "fr" => "fr-FR",
        "hi" => "hi-IN",
        "is" => "is-IS",
        "it" => "it-IT",
        "ja" => "ja-JP",
        "ko" => "ko-KR",
        "nb" | "no" | "nn" => "nb-NO",
        "nl" => "nl-NL",
        "pl" => "pl-PL",
        "pt" => "pt-BR",
        "ro" => "ro-RO",
        "ru" => "ru-RU",
        "sv" => "sv-SE",
        "tr" => "tr-TR",
        "zh" => "zh-CN",
        _ => "en-US",
    }
}

/// Escape text for XML content and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 does not allow; a rendered template should not have them.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The inline TwiML of a voice message: the text said twice, with a pause between.
pub fn twiml(text: &str, locale: &str) -> String {
    let lang = say_language(locale);
    let say = format!(r#"<Say language="{lang}">{}</Say>"#, xml_escape(text));
    format!(r#"<Response>{say}<Pause length="1"/>{say}</Response>"#)
}

// --- errors -----------------------------------------------------------------------------------------------------

/// What a Twilio error code means, for the operator reading the failure event or a delivery receipt.
pub fn code_hint(code: i64) -> Option<&'static str> {
    Some(match code {
        21211 => "the To number is not a valid phone number",
        21408 => "SMS to this region is not enabled in the Twilio geo permissions",
        21215 | 13227 | 32205 => "calls to this region are not enabled in the Twilio voice geo permissions",
        21606 => "the From number is not a message-capable number of this Twilio account",
        21219 => "a trial account can only send to verified numbers",
        20003 => "Twilio refused the account SID / auth token (or the account is suspended)",
        10001 => "the Twilio account is not active",
        20429 => "Twilio's rate limit was hit",
        30001 => "the message queue overflowed at Twilio",
        30002 => "the Twilio account is suspended",
        30003 => "the handset is unreachable",
        30005 => "the number is unknown or no longer exists",
        30006 => "the number is a landline or unreachable carrier",
        30007 => "the carrier filtered the message",
        30008 => "unknown delivery error",
        _ => return None,
    })
}

/// Retried: server errors, rate limits (HTTP 429 or code 20429). Everything else Twilio refuses is final.
pub fn is_retryable(http_status: u16, code: Option<i64>) -> bool {
    crate::transport::status_is_retryable(http_status) || code == Some(20429)
}

/// `{code, message, status}` from a Twilio error body, legacy (`{code,message,more_info,status}`) or RFC 9457
/// (`{type,title,status,code,detail}`). Missing members are null; `status` falls back to the HTTP status.
pub fn parse_error(http_status: u16, body: &str) -> Value {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let code = match &v["code"] {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    let message = ["message", "detail", "title"]
        .iter()
        .find_map(|k| v[*k].as_str().filter(|s| !s.is_empty()))
        .map(str::to_owned)
        .or_else(|| {
            let t = body.trim();
            (!t.is_empty() && v.is_null()).then(|| t.chars().take(200).collect())
        });
    let status = v["status"].as_u64().unwrap_or(u64::from(http_status));
    json!({"code": code, "message": message, "status": status})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn twilio_signature_test_vector() {
        // twilio-python's request validator tests.
        let params = p(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(signature("12345", url, &params), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        // Order of the posted params does not matter; the token, the URL and the values do.
        let mut shuffled = params.clone();
        shuffled.reverse();
        assert!(verify("12345", url, &shuffled, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
        assert!(!verify("12346", url, &params, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
        assert!(!verify(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &params,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert!(!verify("12345", url, &params, ""));
        // With the default port written out, the same signature is accepted (and the reverse).
        assert!(verify(
            "12345",
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            &params,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        let with_port = signature("12345", "https://mycompany.com:443/myapp.php?foo=1&bar=2", &params);
        assert!(verify("12345", url, &params, &with_port));
    }

    #[test]
    fn other_ports_are_taken_as_given() {
        assert_eq!(port_variants("http://127.0.0.1:8080/x"), vec!["http://127.0.0.1:8080/x".to_owned()]);
        assert_eq!(
            port_variants("http://a.test/x?q=1"),
            vec!["http://a.test/x?q=1".to_owned(), "http://a.test:80/x?q=1".to_owned()]
        );
        assert_eq!(port_variants("ftp://a.test/"), vec!["ftp://a.test/".to_owned()]);
    }

    #[test]
    fn repeated_keys_are_sorted_and_deduplicated() {
        let a = signature("t", "https://x.test/", &p(&[("E", "b"), ("E", "a"), ("E", "b")]));
        let b = signature("t", "https://x.test/", &p(&[("E", "a"), ("E", "b")]));
        assert_eq!(a, b);
    }

    #[test]
    fn say_languages() {
        assert_eq!(say_language("en"), "en-US");
        assert_eq!(say_language("fr"), "fr-FR");
        assert_eq!(say_language("fr-CA"), "fr-CA");
        assert_eq!(say_language("de"), "de-DE");
        assert_eq!(say_language("es"), "es-ES");
        assert_eq!(say_language("pt"), "pt-BR");
        assert_eq!(say_language("pt_pt"), "pt-PT");
        assert_eq!(say_language("it"), "it-IT");
        assert_eq!(say_language("ja"), "ja-JP");
        assert_eq!(say_language("en-GB"), "en-GB");
        assert_eq!(say_language("xx"), "en-US");
        assert_eq!(say_language(""), "en-US");
    }

    #[test]
    fn twiml_says_the_text_twice_escaped() {
        let t = twiml("Code <1.2> & \"you\"", "fr");
        assert_eq!(
            t,
            r#"<Response><Say language="fr-FR">Code &lt;1.2&gt; &amp; &quot;you&quot;</Say><Pause length="1"/><Say language="fr-FR">Code &lt;1.2&gt; &amp; &quot;you&quot;</Say></Response>"#
        );
    }

    #[test]
    fn errors_are_parsed_and_classified() {
        let legacy = r#"{"code":21211,"message":"The 'To' number is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}"#;
        assert_eq!(
            parse_error(400, legacy),
            json!({"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400})
        );
        let rfc = r#"{"type":"https://www.twilio.com/docs/errors/20429","title":"Too Many Requests","status":429,"code":20429,"detail":"Too many requests"}"#;
        assert_eq!(parse_error(429, rfc), json!({"code": 20429, "message": "Too many requests", "status": 429}));
        assert_eq!(parse_error(502, "Bad Gateway"), json!({"code": null, "message": "Bad Gateway", "status": 502}));
        assert_eq!(parse_error(500, ""), json!({"code": null, "message": null, "status": 500}));

        assert!(is_retryable(500, None));
        assert!(is_retryable(503, Some(20500)));
        assert!(is_retryable(429, None));
        assert!(is_retryable(400, Some(20429)));
        for code in [21211, 21408, 21215, 13227, 32205, 21606, 21219] {
            assert!(!is_retryable(400, Some(code)), "{code}");
        }
        assert!(!is_retryable(401, Some(20003)));
        assert!(!is_retryable(404, None));
        assert!(code_hint(21211).is_some());
    }
}
