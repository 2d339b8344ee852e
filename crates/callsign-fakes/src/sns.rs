//! A strict fake of Amazon SNS's `Publish` (query API `2010-03-31`, `POST /`, form body, AWS Signature Version 4),
//! after the botocore service model and the SNS developer guide. It checks the `Authorization` header's shape
//! (`AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/sns/aws4_request, SignedHeaders=…, Signature=<64 hex>`),
//! `X-Amz-Date` (and its date against the credential scope), the key, region and service, and then VERIFIES the
//! signature with the secret it knows (canonical request, string to sign, signing key: the same computation as
//! AWS's test suite, see the tests below); a wrong one is refused as AWS does, `403 SignatureDoesNotMatch`.
//! Then the form: `Action=Publish`, `Version=2010-03-31`, `PhoneNumber` in E.164, `Message` (1–1600 characters),
//! and `MessageAttributes.entry.N.{Name, Value.DataType, Value.StringValue}` numbered from 1, each documented SMS
//! attribute with a valid value (`AWS.SNS.SMS.SMSType` Transactional|Promotional, `AWS.SNS.SMS.SenderID` 3–11
//! letters, digits or hyphens with a letter, `AWS.MM.SMS.OriginationNumber` 5–14 digits after an optional `+`).
//! Stricter than SNS: any other form key or attribute name is refused (`InvalidParameter`), so a typo cannot pass.
//! Refusals are SNS's XML `ErrorResponse` (`Type`, `Code`, `Message`, `RequestId`); an accepted message answers
//! `PublishResponse` with a `MessageId`.
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{Delivered, Fake, Reply, Seen};

/// The access key ID the fake accepts.
pub const ACCESS_KEY_ID: &str = "AKIAFAKECALLSIGN0001";
/// The secret it verifies signatures with.
pub const SECRET_ACCESS_KEY: &str = "fake/Secret+Key0123456789abcdefGHIJKLMNOP";
/// The region the credential scope must name.
pub const REGION: &str = "us-east-1";
/// A sender ID.
pub const FROM: &str = "Callsign";

const XMLNS: &str = "http://sns.amazonaws.com/doc/2010-03-31/";

/// The Guardian `PUT /guardian/factors/phone/providers/sns` body that works with the fake.
pub fn settings() -> Value {
    json!({
        "region": REGION,
        "access_key_id": ACCESS_KEY_ID,
        "secret_access_key": SECRET_ACCESS_KEY,
        "sender_id": FROM,
    })
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// An SNS `ErrorResponse` (`Type` `Receiver` for 5xx, else `Sender`).
pub fn error(status: u16, code: &str, message: &str) -> Reply {
    let kind = if status >= 500 { "Receiver" } else { "Sender" };
    let body = format!(
        "<ErrorResponse xmlns=\"{XMLNS}\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{code}</Code>\n    \
         <Message>{}</Message>\n  </Error>\n  <RequestId>9a1b2c3d-0000-4000-8000-000000000000</RequestId>\n\
         </ErrorResponse>\n",
        xml_escape(message)
    );
    Reply { status, body, content_type: "text/xml", delay: None }
}

fn invalid(message: &str) -> Reply {
    error(400, "InvalidParameter", message)
}

/// An `Authorization: AWS4-HMAC-SHA256 …` header, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    /// `YYYYMMDD`.
    pub date: String,
    pub region: String,
    pub service: String,
    /// Lowercase, in the order given.
    pub signed_headers: Vec<String>,
    /// Lowercase hex.
    pub signature: String,
}

/// Read an `Authorization` header; `None` when it is not of SigV4's shape.
pub fn parse_authorization(v: &str) -> Option<Authorization> {
    let rest = v.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => return None,
        }
    }
    let scope: Vec<&str> = credential?.split('/').collect();
    let [key, date, region, service, "aws4_request"] = scope.as_slice() else { return None };
    let signature = signature?;
    if signature.len() != 64 || !signature.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)) {
        return None;
    }
    if date.len() != 8 || !date.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let signed_headers: Vec<String> = signed?.split(';').map(str::to_owned).collect();
    if signed_headers.iter().any(|h| h.is_empty() || h.bytes().any(|c| c.is_ascii_uppercase())) {
        return None;
    }
    Some(Authorization {
        access_key_id: (*key).to_owned(),
        date: (*date).to_owned(),
        region: (*region).to_owned(),
        service: (*service).to_owned(),
        signed_headers,
        signature: signature.to_owned(),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// SigV4's canonical request of `s` for these signed headers: method, path, the query's pairs sorted (taken as
/// already encoded), each signed header `name:value` (value trimmed, inner spaces collapsed), the signed header
/// list, and the SHA-256 of the body.
pub fn canonical_request(s: &Seen, signed_headers: &[String]) -> String {
    let mut query: Vec<&str> =
        s.path.split_once('?').map_or("", |(_, q)| q).split('&').filter(|p| !p.is_empty()).collect();
    query.sort_unstable();
    let query: Vec<String> =
        query.into_iter().map(|p| if p.contains('=') { p.to_owned() } else { format!("{p}=") }).collect();
    let mut out = format!("{}\n{}\n{}\n", s.method, s.path_only(), query.join("&"));
    for h in signed_headers {
        let values: Vec<String> = s
            .headers
            .iter()
            .filter(|(k, _)| k == h)
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        out.push_str(&format!("{h}:{}\n", values.join(",")));
    }
    out.push_str(&format!("\n{}\n{}", signed_headers.join(";"), hex(&Sha256::digest(&s.body))));
    out
}

/// The signature of `canonical` at `amz_date` (`YYYYMMDDTHHMMSSZ`) for the scope `date/region/service`.
pub fn signature(secret: &str, amz_date: &str, date: &str, region: &str, service: &str, canonical: &str) -> String {
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let to_sign = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex(&Sha256::digest(canonical.as_bytes())));
    let k = hmac(format!("AWS4{secret}").as_bytes(), date);
    let k = hmac(&k, region);
    let k = hmac(&k, service);
    let k = hmac(&k, "aws4_request");
    hex(&hmac(&k, &to_sign))
}

fn is_amz_date(d: &str) -> bool {
    let b = d.as_bytes();
    b.len() == 16 && b[8] == b'T' && b[15] == b'Z' && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
}

/// The signature checks, in AWS's words.
fn check_signature(s: &Seen) -> Result<(), Reply> {
    let Some(header) = s.header("authorization") else {
        return Err(error(403, "MissingAuthenticationToken", "Request is missing Authentication Token"));
    };
    let Some(a) = parse_authorization(header) else {
        return Err(error(
            400,
            "IncompleteSignature",
            "Authorization header is not a valid AWS4-HMAC-SHA256 signature",
        ));
    };
    if a.access_key_id != ACCESS_KEY_ID {
        return Err(error(403, "InvalidClientTokenId", "The security token included in the request is invalid."));
    }
    if a.service != "sns" {
        return Err(error(403, "SignatureDoesNotMatch", "Credential should be scoped to correct service: 'sns'."));
    }
    if a.region != REGION {
        return Err(error(403, "SignatureDoesNotMatch", "Credential should be scoped to a valid region."));
    }
    let Some(amz_date) = s.header("x-amz-date") else {
        return Err(error(
            400,
            "IncompleteSignature",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        ));
    };
    if !is_amz_date(amz_date) || !amz_date.starts_with(&a.date) {
        return Err(error(
            403,
            "SignatureDoesNotMatch",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.",
        ));
    }
    for needed in ["host", "x-amz-date"] {
        if !a.signed_headers.iter().any(|h| h == needed) {
            return Err(error(
                403,
                "SignatureDoesNotMatch",
                &format!("'{needed}' must be a 'SignedHeader' in the AWS Authorization."),
            ));
        }
    }
    let mut sorted = a.signed_headers.clone();
    sorted.sort();
    sorted.dedup();
    if sorted != a.signed_headers || a.signed_headers.iter().any(|h| s.header(h).is_none()) {
        return Err(error(403, "SignatureDoesNotMatch", "The signed headers are not sorted, repeated or absent."));
    }
    let canonical = canonical_request(s, &a.signed_headers);
    let expected = signature(SECRET_ACCESS_KEY, amz_date, &a.date, &a.region, &a.service, &canonical);
    if expected != a.signature {
        return Err(error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret \
             Access Key and signing method. Consult the service documentation for details.",
        ));
    }
    Ok(())
}

fn is_e164(n: &str) -> bool {
    n.strip_prefix('+')
        .is_some_and(|d| (2..=15).contains(&d.len()) && d.bytes().all(|c| c.is_ascii_digit()) && !d.starts_with('0'))
}

/// The documented checks, in SNS's words.
pub fn check(s: &Seen) -> Result<(), Reply> {
    check_signature(s)?;
    if s.method != "POST" || s.path_only() != "/" {
        return Err(error(400, "InvalidAction", "Only POST / is served by this fake of the query API."));
    }
    if !s.content_type_is("application/x-www-form-urlencoded") {
        return Err(error(400, "InvalidAction", "The body must be a form (application/x-www-form-urlencoded)"));
    }
    let form = s.form();
    let get = |k: &str| form.iter().find(|(f, _)| f == k).map(|(_, v)| v.as_str());
    if get("Action") != Some("Publish") {
        let a = get("Action").unwrap_or("");
        return Err(error(400, "InvalidAction", &format!("Could not find operation {a} for version 2010-03-31")));
    }
    if get("Version") != Some("2010-03-31") {
        let v = get("Version").unwrap_or("");
        return Err(error(400, "InvalidAction", &format!("Could not find operation Publish for version {v}")));
    }
    let mut entries: Vec<(usize, String, String)> = Vec::new();
    let mut seen_keys: Vec<&str> = Vec::new();
    for (k, v) in &form {
        if seen_keys.contains(&k.as_str()) {
            return Err(invalid(&format!("Invalid parameter: {k} is repeated")));
        }
        seen_keys.push(k);
        if ["Action", "Version", "PhoneNumber", "Message"].contains(&k.as_str()) {
            continue;
        }
        let Some((n, part)) = k.strip_prefix("MessageAttributes.entry.").and_then(|r| r.split_once('.')) else {
            return Err(invalid(&format!("Invalid parameter: {k}")));
        };
        let Ok(n) = n.parse::<usize>() else { return Err(invalid(&format!("Invalid parameter: {k}"))) };
        if !["Name", "Value.DataType", "Value.StringValue"].contains(&part) {
            return Err(invalid(&format!("Invalid parameter: {k}")));
        }
        entries.push((n, part.to_owned(), v.clone()));
    }
    let phone = get("PhoneNumber").unwrap_or("");
    if phone.is_empty() {
        return Err(invalid("Invalid parameter: PhoneNumber Reason: no value for required parameter"));
    }
    if !is_e164(phone) {
        return Err(invalid(&format!("Invalid parameter: PhoneNumber Reason: {phone} is not valid to publish to")));
    }
    match get("Message") {
        None | Some("") => return Err(invalid("Invalid parameter: Empty message")),
        Some(m) if m.chars().count() > 1600 => return Err(invalid("Invalid parameter: Message too long")),
        Some(_) => {}
    }
    let count = entries.iter().map(|(n, _, _)| *n).max().unwrap_or(0);
    let mut names: Vec<String> = Vec::new();
    for i in 1..=count {
        let part = |p: &str| entries.iter().find(|(n, q, _)| *n == i && q == p).map(|(_, _, v)| v.as_str());
        let (Some(name), Some(kind), Some(value)) = (part("Name"), part("Value.DataType"), part("Value.StringValue"))
        else {
            return Err(invalid(&format!("Invalid parameter: MessageAttributes.entry.{i} is incomplete")));
        };
        if kind != "String" {
            return Err(error(
                400,
                "ParameterValueInvalid",
                &format!(
                    "The message attribute '{name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String."
                ),
            ));
        }
        let ok = match name {
            "AWS.SNS.SMS.SMSType" => ["Transactional", "Promotional"].contains(&value),
            "AWS.SNS.SMS.SenderID" => {
                (3..=11).contains(&value.len())
                    && value.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                    && value.bytes().any(|c| c.is_ascii_alphabetic())
            }
            "AWS.MM.SMS.OriginationNumber" => {
                let d = value.strip_prefix('+').unwrap_or(value);
                (5..=14).contains(&d.len()) && d.bytes().all(|c| c.is_ascii_digit())
            }
            _ => {
                return Err(invalid(&format!(
                    "Invalid parameter: MessageAttributes name {name} is not an SMS attribute"
                )));
            }
        };
        if !ok {
            return Err(error(
                400,
                "ParameterValueInvalid",
                &format!("Value {value} for message attribute {name} is not valid"),
            ));
        }
        if names.iter().any(|n| n == name) {
            return Err(invalid(&format!("Invalid parameter: message attribute {name} is repeated")));
        }
        names.push(name.to_owned());
    }
    Ok(())
}

/// The answer to the `n`th accepted message.
pub fn accepted(_: &Seen, n: usize) -> Reply {
    let body = format!(
        "<PublishResponse xmlns=\"{XMLNS}\">\n  <PublishResult>\n    \
         <MessageId>5e2b8a41-0000-4000-8000-{n:012}</MessageId>\n  </PublishResult>\n  <ResponseMetadata>\n    \
         <RequestId>0f1e2d3c-0000-4000-8000-{n:012}</RequestId>\n  </ResponseMetadata>\n</PublishResponse>\n"
    );
    Reply { status: 200, body, content_type: "text/xml", delay: None }
}

/// Start the fake.
pub async fn start() -> Fake {
    Fake::start(Box::new(check), Box::new(accepted)).await
}

/// The message attributes a request carried: `(Name, Value.StringValue)` by entry number.
pub fn attributes(s: &Seen) -> Vec<(String, String)> {
    let form = s.form();
    let get = |k: String| form.iter().find(|(f, _)| *f == k).map(|(_, v)| v.clone());
    (1..)
        .map_while(|i| {
            let name = get(format!("MessageAttributes.entry.{i}.Name"))?;
            Some((name, get(format!("MessageAttributes.entry.{i}.Value.StringValue")).unwrap_or_default()))
        })
        .collect()
}

/// What an accepted request delivered.
pub fn delivered(s: &Seen) -> Option<Delivered> {
    if !(200..300).contains(&s.status) {
        return None;
    }
    Some(Delivered { channel: "sms", to: s.field("PhoneNumber")?, text: s.field("Message")? })
}

/// A 500 `InternalError` (retryable).
pub fn unavailable() -> Reply {
    error(500, "InternalError", "Internal Error")
}

/// A refusal of the number (final).
pub fn bad_number() -> Reply {
    invalid("Invalid parameter: PhoneNumber Reason: +14155552671 is not valid to publish to")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn seen(method: &str, headers: &[(&str, &str)], body: &str) -> Seen {
        Seen {
            method: method.into(),
            path: "/".into(),
            headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            body: body.as_bytes().to_vec(),
            status: 0,
        }
    }

    /// AWS's SigV4 test suite, `get-vanilla` (header signing).
    #[test]
    fn get_vanilla() {
        let s = seen("GET", &[("host", "example.amazonaws.com"), ("x-amz-date", "20150830T123600Z")], "");
        let signed = vec!["host".to_owned(), "x-amz-date".to_owned()];
        let c = canonical_request(&s, &signed);
        assert_eq!(
            c,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            signature(SECRET, "20150830T123600Z", "20150830", "us-east-1", "service", &c),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    /// AWS's SigV4 test suite, `post-x-www-form-urlencoded` (header signing, body signed).
    #[test]
    fn post_x_www_form_urlencoded() {
        let s = seen(
            "POST",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("host", "example.amazonaws.com"),
                ("content-length", "13"),
                ("x-amz-date", "20150830T123600Z"),
                ("x-amz-content-sha256", "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"),
            ],
            "Param1=value1",
        );
        let a = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, \
             Signature=d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
        )
        .unwrap();
        assert_eq!(
            (a.access_key_id.as_str(), a.region.as_str(), a.service.as_str()),
            ("AKIDEXAMPLE", "us-east-1", "service")
        );
        let c = canonical_request(&s, &a.signed_headers);
        assert!(c.ends_with("\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"), "{c}");
        assert_eq!(signature(SECRET, "20150830T123600Z", &a.date, &a.region, &a.service, &c), a.signature);
    }

    #[test]
    fn malformed_authorizations_are_not_read() {
        for h in [
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/sns/aws4_request, SignedHeaders=host, Signature=abc",
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/sns, SignedHeaders=host, Signature=",
            "Basic dXNlcjpwYXNz",
        ] {
            assert!(parse_authorization(h).is_none(), "{h}");
        }
    }
}
