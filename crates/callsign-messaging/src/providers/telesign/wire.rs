//! Telesign's wire rules, pure: the API key's base64, the RFC 1123 `Date`, the TSA digest of requests and of
//! callbacks, the voices, and what the status and error codes mean.
use base64::Engine;
use base64::alphabet::STANDARD as ALPHABET;
use base64::engine::general_purpose::STANDARD as B64;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use callsign_domain::{RandomSource, Timestamp};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

// --- the API key and the digest -------------------------------------------------------------------------------

/// A standard-alphabet decoder that does not insist on the padding.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &ALPHABET,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The HMAC key in an API key as Telesign issues it (base64). Characters outside the base64 alphabet are dropped
/// first, as Python's `b64decode` does (Telesign's own example key has `-` in it); `None` when the rest is not
/// base64 or decodes to nothing.
pub fn decode_api_key(api_key: &str) -> Option<Zeroizing<Vec<u8>>> {
    let kept: Zeroizing<String> =
        Zeroizing::new(api_key.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=')).collect());
    LENIENT.decode(kept.as_bytes()).ok().filter(|k| !k.is_empty()).map(Zeroizing::new)
}

/// `base64(HMAC-SHA256(key, data))`.
pub fn digest(key: &[u8], data: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(data);
    B64.encode(mac.finalize().into_bytes())
}

/// The `x-ts-auth-method` of the digest.
pub const AUTH_METHOD: &str = "HMAC-SHA256";

/// What a request's digest signs (Telesign's REST client): `METHOD\nContent-Type\nDate\nx-ts-auth-method:HMAC-SHA256
/// \nx-ts-nonce:{nonce}[\n{url-encoded body}]\n{resource path}`; the body line only when there is a content type
/// and a body.
pub fn string_to_sign(method: &str, content_type: &str, date: &str, nonce: &str, body: &str, resource: &str) -> String {
    let mut s = format!("{method}\n{content_type}\n{date}\nx-ts-auth-method:{AUTH_METHOD}\nx-ts-nonce:{nonce}");
    if !content_type.is_empty() && !body.is_empty() {
        s.push('\n');
        s.push_str(body);
    }
    s.push('\n');
    s.push_str(resource);
    s
}

/// The `Authorization` of a digest-signed request: `TSA {customer_id}:{base64(HMAC-SHA256(key, string_to_sign))}`.
pub fn tsa_authorization(customer_id: &str, key: &[u8], string_to_sign: &str) -> String {
    format!("TSA {customer_id}:{}", digest(key, string_to_sign.as_bytes()))
}

/// Whether `header` (a callback's `Authorization` or `X-TS-Authorization`) signs `body` with `key`: the value is
/// `TSA {customer_id}:{signature}` (the customer id must be ours) or the bare signature (what Telesign's SDK
/// helpers compare the header with); the signature is `base64(HMAC-SHA256(key, raw body))`, compared in constant
/// time.
pub fn callback_signed(header: &str, customer_id: &str, key: &[u8], body: &[u8]) -> bool {
    let header = header.trim();
    let given = match header.strip_prefix("TSA ") {
        Some(rest) => match rest.rsplit_once(':') {
            Some((cid, sig)) if cid.trim().eq_ignore_ascii_case(customer_id) => sig.trim(),
            _ => return false,
        },
        None => header,
    };
    let expected = digest(key, body);
    !given.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// A random nonce shaped like a version 4 UUID (`8-4-4-4-12` lowercase hex), as Telesign's SDKs send.
pub fn nonce(rng: &dyn RandomSource) -> String {
    let mut b = [0u8; 16];
    rng.fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

// --- the Date header ------------------------------------------------------------------------------------------

/// `t` as an RFC 1123 date in GMT (`Wed, 14 Dec 2016 18:20:12 GMT`), the `Date` the digest signs.
pub fn rfc1123(t: Timestamp) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = t.seconds();
    let days = secs.div_euclid(86_400);
    let in_day = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let weekday = DAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    let month = MONTHS[usize::try_from(m - 1).unwrap_or(0)];
    format!("{weekday}, {d:02} {month} {y:04} {:02}:{:02}:{:02} GMT", in_day / 3600, (in_day % 3600) / 60, in_day % 60)
}

/// The proleptic Gregorian `(year, month 1–12, day 1–31)` of a day count from 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

// --- voice ----------------------------------------------------------------------------------------------------

/// Most characters Telesign speaks in one call (`message`).
pub const MAX_VOICE_CHARS: usize = 1600;

/// The language tags of Telesign's documented voices (`voice` is `f-` + the tag; all its voices are female), in
/// the order a bare language picks from (`en` → `en-US`, `pt` → `pt-BR`, `es` → `es-ES`, `zh` → `zh-CN`).
pub const VOICE_LANGUAGES: &[&str] = &[
    "en-US", "en-GB", "en-AU", "en-CA", "en-IN", "zh-CN", "zh-HK", "zh-TW", "da-DK", "nl-NL", "fi-FI", "fr-FR",
    "fr-CA", "it-IT", "ja-JP", "ko-KR", "nb-NO", "pl-PL", "pt-BR", "pt-PT", "es-ES", "es-MX",
];

/// The Telesign voice for a message locale (`f-fr-CA`, `f-en-GB`…): the documented voice of that language tag,
/// else the first of its language, else `f-en-US` (Telesign's default).
pub fn voice(locale: &str) -> String {
    format!("f-{}", crate::voice::pick_language(locale, VOICE_LANGUAGES, "en-US"))
}

// --- codes ----------------------------------------------------------------------------------------------------

/// Codes that are worth trying again: -30010 (the `Date` is out of Telesign's range: a new request has a new
/// one) and -30012 (the nonce was used recently: a new request has a new one).
pub fn code_is_retryable(code: i64) -> bool {
    matches!(code, -30010 | -30012)
}

/// Documented codes that are final: an invalid number or country code, an invalid sender, any other invalid or
/// missing parameter (11xxx, 12xxx), a wrong customer id, key or signature, a suspended account, a number a trial
/// account has not verified, a product not enabled.
pub fn code_is_final(code: i64) -> bool {
    matches!(code, 11_000..=12_999 | -30000 | -30001 | -30004 | -30005 | -30006 | -30015 | -10033 | -20002)
}

/// What a send error code means, for people.
pub fn error_hint(code: i64) -> Option<&'static str> {
    Some(match code {
        11000 => "the phone number is not valid for Telesign",
        11001 => "Telesign does not know the phone number's country code",
        11013 => "the sender_id is not valid, or not allowed for this account",
        12_000..=12_999 => "a required parameter is missing",
        -30000 => "Telesign does not know this customer_id",
        -30001 => "the Telesign account is suspended",
        -30004 | -30005 => "Telesign did not find a well-formed Authorization header",
        -30006 => "Telesign refused the request's signature (check the api_key)",
        -30010 => "the Date header is outside Telesign's tolerance (check this server's clock)",
        -30012 => "the nonce was used recently",
        -30015 => "Telesign refused the api_key",
        -10033 => "a trial account sends only to numbers verified in the Telesign portal",
        -20002 => "this product (SMS or voice) is not enabled for this customer_id",
        _ => return None,
    })
}

/// Status codes of an accepted send: 290 (SMS in progress), 103 (call in progress), and the later ones a fast
/// answer may already carry (200 / 203 delivered to the handset / gateway, 100 answered).
pub fn status_is_accepted(code: i64) -> bool {
    matches!(code, 290 | 103 | 200 | 203 | 100)
}

/// How a delivery status code reads in a receipt: `(status, failed)`.
pub fn receipt_status(code: i64) -> (&'static str, bool) {
    match code {
        200 => ("delivered", false),
        203 => ("delivered_to_gateway", false),
        290 => ("in_progress", false),
        100 => ("answered", false),
        103 => ("call_in_progress", false),
        101 => ("not_answered", true),
        107 => ("busy", true),
        129 | 130 | 229 | 230 => ("blocked", true),
        106 | 207 | 210 | 211 | 220 | 221 | 222 => ("failed", true),
        _ => ("unknown", false),
    }
}

/// What a failed delivery's status code means, for people (the receipt event's `error_hint`).
pub fn receipt_hint(code: i64) -> Option<&'static str> {
    Some(match code {
        101 => "no one answered the call",
        106 => "the call did not go through (Telesign's upstream providers failed to complete it)",
        107 => "the line was busy",
        129 => "the call was blocked at your request (a blocklist on your Telesign account)",
        130 => "Telesign blocked the call (the number is on its global blocklist)",
        207 => "the SMS could not be delivered to the handset (reason unknown)",
        210 => "a temporary phone error (the phone is off, or has no room for the message)",
        211 => "a permanent phone error (the phone cannot take SMS, or the number is blocklisted or misprovisioned)",
        220 => "the network cannot route the message to the handset",
        221 => "the message expired before it could be delivered",
        222 => "SMS is not supported by this phone, carrier or plan",
        229 => "the message was blocked at your request (a custom block on your Telesign account)",
        230 => "Telesign blocked the message (the number is on its global blocklist)",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CUSTOMER: &str = "FFFFFFFF-EEEE-DDDD-1234-AB1234567890";
    const KEY: &str = "EXAMPLE----TE8sTgg45yusumoN6BYsBVkh+yRJ5czgsnCehZaOYldPJdmFh6NeX8kunZ2zU1YWaUw/0wV6xfw==";

    #[test]
    fn the_digest_matches_telesigns_test_vector() {
        let key = decode_api_key(KEY).unwrap();
        let s = string_to_sign(
            "POST",
            "application/x-www-form-urlencoded",
            "Wed, 14 Dec 2016 18:20:12 GMT",
            "A1592C6F-E384-4CDB-BC42-C3AB970369E9",
            "test=param",
            "/v1/resource",
        );
        assert_eq!(
            s,
            "POST\napplication/x-www-form-urlencoded\nWed, 14 Dec 2016 18:20:12 GMT\nx-ts-auth-method:HMAC-SHA256\n\
             x-ts-nonce:A1592C6F-E384-4CDB-BC42-C3AB970369E9\ntest=param\n/v1/resource"
        );
        assert_eq!(
            tsa_authorization(CUSTOMER, &key, &s),
            "TSA FFFFFFFF-EEEE-DDDD-1234-AB1234567890:2xVlmbrxLjYrrPun3G3WMNG6Jon4yKcTeOoK9DjXJ/Q="
        );
        // Without a body there is no body line.
        assert_eq!(
            string_to_sign("GET", "", "d", "n", "", "/v1/x"),
            "GET\n\nd\nx-ts-auth-method:HMAC-SHA256\nx-ts-nonce:n\n/v1/x"
        );
    }

    #[test]
    fn keys_decode_like_telesigns_sdk() {
        assert_eq!(decode_api_key(KEY).unwrap().len(), 61);
        assert_eq!(decode_api_key("AAAA").unwrap().as_slice(), &[0, 0, 0]);
        assert_eq!(decode_api_key("AAE").unwrap().as_slice(), &[0, 1], "padding is optional");
        assert!(decode_api_key("").is_none());
        assert!(decode_api_key("----").is_none());
        assert!(decode_api_key("A").is_none(), "not base64");
    }

    #[test]
    fn dates_are_rfc_1123() {
        // 2016-12-14T18:20:12Z, the test vector's date.
        assert_eq!(rfc1123(Timestamp(1_481_739_612_000)), "Wed, 14 Dec 2016 18:20:12 GMT");
        assert_eq!(rfc1123(Timestamp(0)), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(rfc1123(Timestamp(1_767_225_600_999)), "Thu, 01 Jan 2026 00:00:00 GMT");
        assert_eq!(rfc1123(Timestamp(951_782_400_000)), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(rfc1123(Timestamp(4_107_542_399_000)), "Sun, 28 Feb 2100 23:59:59 GMT");
        assert_eq!(rfc1123(Timestamp(-1000)), "Wed, 31 Dec 1969 23:59:59 GMT");
    }

    #[test]
    fn nonces_look_like_uuids_and_differ() {
        let rng = callsign_domain::SeededRandom::new(1);
        let (a, b) = (nonce(&rng), nonce(&rng));
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);
        assert!(parts[2].starts_with('4'));
        assert!(a.chars().all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    #[test]
    fn callbacks_are_checked_against_the_raw_body() {
        let key = decode_api_key(KEY).unwrap();
        let body = br#"{"reference_id":"ABC","status":{"code":200}}"#;
        let sig = digest(&key, body);
        assert!(callback_signed(&format!("TSA {CUSTOMER}:{sig}"), CUSTOMER, &key, body));
        assert!(callback_signed(&sig, CUSTOMER, &key, body), "the bare signature");
        assert!(!callback_signed(&format!("TSA OTHER:{sig}"), CUSTOMER, &key, body), "another customer");
        assert!(!callback_signed(&format!("TSA {CUSTOMER}:{sig}"), CUSTOMER, &key, b"{}"), "another body");
        assert!(!callback_signed(&format!("TSA {CUSTOMER}:"), CUSTOMER, &key, body));
        assert!(!callback_signed("", CUSTOMER, &key, body));
    }

    #[test]
    fn voices_come_from_the_documented_list() {
        assert_eq!(voice("en"), "f-en-US");
        assert_eq!(voice("en-GB"), "f-en-GB");
        assert_eq!(voice("fr-CA"), "f-fr-CA");
        assert_eq!(voice("fr-BE"), "f-fr-FR");
        assert_eq!(voice("pt"), "f-pt-BR");
        assert_eq!(voice("es_mx"), "f-es-MX");
        assert_eq!(voice("de-DE"), "f-en-US", "German is not a documented voice");
        assert_eq!(voice(""), "f-en-US");
    }

    #[test]
    fn codes_are_classified() {
        for c in [11000, 11001, 11013, 12000, 12009, 12017, -30000, -30001, -30006, -30015, -10033, -20002] {
            assert!(code_is_final(c) && !code_is_retryable(c), "{c}");
            assert!(error_hint(c).is_some(), "{c}");
        }
        for c in [-30010, -30012] {
            assert!(code_is_retryable(c) && !code_is_final(c), "{c}");
        }
        assert!(!code_is_final(500) && !code_is_retryable(500));
        for c in [101, 106, 107, 130, 207, 210, 211, 220, 221, 222, 229, 230] {
            assert!(receipt_status(c).1 && receipt_hint(c).is_some(), "{c}");
        }
        for c in [100, 103, 200, 203, 290] {
            assert!(!receipt_status(c).1 && receipt_hint(c).is_none(), "{c}");
        }
    }
}
