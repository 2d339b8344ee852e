//! Amazon SNS (`sns`): SMS through the SNS query API's `Publish` action, `POST {base}/` with a form body
//! (`Action=Publish&Version=2010-03-31&PhoneNumber=+E164&Message=…` and `MessageAttributes.entry.N.*`), signed
//! with AWS Signature Version 4 (service `sns`, the `region` setting) by the `aws-sigv4` crate. SNS has no
//! text-to-speech, so this provider sends SMS only.
//!
//! Settings: `region` (e.g. `us-east-1`), `access_key_id`, secret `secret_access_key` (an IAM user's long-term key
//! with `sns:Publish`; temporary credentials with a session token are not supported); optional `sender_id`
//! (3–11 letters, digits or hyphens, at least one letter; sent as `AWS.SNS.SMS.SenderID`) and
//! `origination_number` (5–14 digits, optional `+`; sent as `AWS.MM.SMS.OriginationNumber`). Every message also
//! carries `AWS.SNS.SMS.SMSType=Transactional`. A template's `from` replaces the setting of its kind: a number
//! replaces `origination_number`, anything else `sender_id` (it must then be a valid sender id).
//!
//! The endpoint is `https://sns.{region}.amazonaws.com` (`…amazonaws.com.cn` for a `cn-` region) unless the server
//! configuration overrides it (`[providers.sns] base_url`, e.g. a VPC endpoint or moto); an API caller cannot
//! change it. The region is checked (lowercase letters, digits, single hyphens) before it goes into a host name.
//!
//! Answers: HTTP 200 `<PublishResponse>` with a `<MessageId>` is a success (SNS accepted the message; it says
//! nothing about delivery). An `<ErrorResponse>` is read for its `Code` and `Message`: `InvalidParameter`,
//! `ParameterValueInvalid`, `OptedOut`, `AuthorizationError`, `InvalidSecurity`, `SignatureDoesNotMatch`,
//! `InvalidClientTokenId` (and the other authentication codes) are final; `Throttled`, `InternalError` (and the
//! other throttling / unavailable codes) are retried; any other code follows the HTTP status (5xx and 429 retried).
//! Timeouts and connection failures are retried. A 200 that is not a `PublishResponse` with a `MessageId` is a
//! retryable failure. The failure's details are `{code, message, status}` (SNS's `Code` and `Message`, the HTTP
//! status). No receipts: SNS reports SMS delivery status only to CloudWatch Logs (account-level
//! `SetSMSAttributes`), never to a URL.
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use callsign_domain::{Channel, Clock};
use serde_json::json;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::declared::{Declared, declared_kind};
use crate::kind::{BuildError, Deps, FieldKind, FieldProblem, FieldSpec, ProviderKind, ProviderSettings, Required};
use crate::message::Message;
use crate::provider::{Capabilities, Provider, Receipt, SendError};
use crate::transport::{body_excerpt, failed_request, status_is_retryable};

/// The Guardian name.
pub const NAME: &str = "sns";
/// The signing name of the service.
pub const SERVICE: &str = "sns";
/// The query API version.
pub const API_VERSION: &str = "2010-03-31";
/// The form's content type.
pub const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
/// `AWS.SNS.SMS.SMSType` of every message (a one-time code is transactional).
pub const SMS_TYPE: &str = "Transactional";
const ERROR_BODY_BYTES: usize = 8192;
/// How much of SNS's error message is kept.
const MESSAGE_CHARS: usize = 300;

const CAPABILITIES: Capabilities = Capabilities { channels: &[Channel::Sms], receipts: false, provider_codes: false };

/// The declared settings.
pub const FIELDS: &[FieldSpec] = &[
    FieldSpec {
        name: "region",
        label: "Region",
        kind: FieldKind::Text,
        min_len: 1,
        max_len: 32,
        required: Required::Always,
        help: "The AWS region SNS is called in and the signature is scoped to (us-east-1, eu-west-1…)",
    },
    FieldSpec {
        name: "access_key_id",
        label: "Access key ID",
        kind: FieldKind::Text,
        min_len: 16,
        max_len: 128,
        required: Required::Always,
        help: "The IAM access key ID (AKIA…) of a user allowed sns:Publish",
    },
    FieldSpec {
        name: "secret_access_key",
        label: "Secret access key",
        kind: FieldKind::Secret,
        min_len: 1,
        max_len: 256,
        required: Required::Always,
        help: "The access key's secret; it signs each request (SigV4) and is never sent. Stored sealed; shown masked",
    },
    FieldSpec {
        name: "sender_id",
        label: "Sender ID",
        kind: FieldKind::Text,
        min_len: 3,
        max_len: 11,
        required: Required::Never,
        help: "Optional AWS.SNS.SMS.SenderID: 3–11 letters, digits or hyphens, at least one letter (where countries allow it)",
    },
    FieldSpec {
        name: "origination_number",
        label: "Origination number",
        kind: FieldKind::Phone,
        min_len: 5,
        max_len: 15,
        required: Required::Never,
        help: "Optional AWS.MM.SMS.OriginationNumber: a number of your account, 5–14 digits with an optional +",
    },
];

const DECLARED: Declared =
    Declared { name: NAME, label: "Amazon SNS", fields: FIELDS, secret_fields: &["secret_access_key"] };

/// Whether `r` can be an AWS region: lowercase letters and digits in hyphen-separated groups, starting with a
/// letter (`us-east-1`, `us-gov-west-1`). It goes into the endpoint's host name, so nothing else is allowed.
pub fn is_region(r: &str) -> bool {
    r.starts_with(|c: char| c.is_ascii_lowercase())
        && r.split('-').all(|g| !g.is_empty() && g.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
}

/// Whether `s` is a valid `AWS.SNS.SMS.SenderID`: 3–11 letters, digits or hyphens, at least one letter.
pub fn is_sender_id(s: &str) -> bool {
    (3..=11).contains(&s.len())
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        && s.bytes().any(|c| c.is_ascii_alphabetic())
}

/// Whether `s` is a valid `AWS.MM.SMS.OriginationNumber`: 5–14 digits, optionally after a `+`.
pub fn is_origination_number(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    (5..=14).contains(&digits.len()) && digits.bytes().all(|c| c.is_ascii_digit())
}

/// Whether an access key ID has AWS's shape (16–128 letters, digits or `_`).
fn is_access_key_id(s: &str) -> bool {
    s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// The SNS endpoint of `region` (the endpoint rule set's `aws` and `aws-cn` partitions).
pub fn default_base_url(region: &str) -> String {
    if region.starts_with("cn-") {
        format!("https://sns.{region}.amazonaws.com.cn")
    } else {
        format!("https://sns.{region}.amazonaws.com")
    }
}

/// A format rule: the field, the check, what the value should be.
type Rule = (&'static str, fn(&str) -> bool, &'static str);

/// The declared checks, then the formats the declaration cannot say.
fn problems(settings: &ProviderSettings) -> Vec<FieldProblem> {
    let mut out = DECLARED.problems(settings, &[Channel::Sms]);
    let flagged = |out: &Vec<FieldProblem>, f: &str| out.iter().any(|p| p.field == f);
    let rules: [Rule; 4] = [
        ("region", is_region, "Expected an AWS region such as us-east-1"),
        ("access_key_id", is_access_key_id, "Expected an access key ID (letters and digits)"),
        ("sender_id", is_sender_id, "Expected 3 to 11 letters, digits or hyphens, with at least one letter"),
        ("origination_number", is_origination_number, "Expected 5 to 14 digits, optionally after a +"),
    ];
    for (field, ok, message) in rules {
        if let Some(v) = settings.text(field)
            && !flagged(&out, field)
            && !ok(&v)
        {
            out.push(FieldProblem::invalid(field, message));
        }
    }
    out
}

/// Amazon SNS's kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct SnsKind;

impl ProviderKind for SnsKind {
    declared_kind!(DECLARED);

    fn description(&self) -> &'static str {
        "SMS through Amazon SNS Publish, signed with AWS Signature Version 4 (no voice)."
    }
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }
    fn check(&self, settings: &ProviderSettings, _channels: &[Channel]) -> Result<(), Vec<FieldProblem>> {
        let p = problems(settings);
        if p.is_empty() { Ok(()) } else { Err(p) }
    }
    fn build(&self, settings: ProviderSettings, deps: &Deps) -> Result<Arc<dyn Provider>, BuildError> {
        let region = settings.text("region").unwrap_or_default();
        Ok(Arc::new(SnsProvider {
            base_url: deps.base_url(NAME, &default_base_url(&region)),
            region,
            access_key_id: settings.text("access_key_id").unwrap_or_default(),
            secret_access_key: settings.secret("secret_access_key").cloned(),
            sender_id: settings.text("sender_id"),
            origination_number: settings.text("origination_number"),
            problems: problems(&settings),
            http: deps.http.clone(),
            clock: deps.clock.clone(),
        }))
    }
}

/// The built Amazon SNS provider.
pub struct SnsProvider {
    region: String,
    access_key_id: String,
    secret_access_key: Option<Zeroizing<String>>,
    sender_id: Option<String>,
    origination_number: Option<String>,
    problems: Vec<FieldProblem>,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    base_url: String,
}

/// What SNS codes say, beyond the HTTP status: `Some(true)` retry, `Some(false)` final, `None` the status decides.
pub fn code_is_retryable(code: &str) -> Option<bool> {
    match code {
        "Throttled"
        | "Throttling"
        | "ThrottlingException"
        | "KMSThrottling"
        | "InternalError"
        | "InternalFailure"
        | "ServiceUnavailable" => Some(true),
        "InvalidParameter"
        | "ParameterValueInvalid"
        | "OptedOut"
        | "AuthorizationError"
        | "InvalidSecurity"
        | "SignatureDoesNotMatch"
        | "InvalidClientTokenId"
        | "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "AccessDenied"
        | "OptInRequired" => Some(false),
        _ => None,
    }
}

/// What the operator should look at, for the codes that have a usual cause.
fn code_hint(code: &str) -> &'static str {
    match code {
        "SignatureDoesNotMatch"
        | "InvalidClientTokenId"
        | "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "InvalidSecurity" => " (check the access key ID, the secret access key and the region)",
        "AuthorizationError" | "AccessDenied" => " (the access key's IAM policy must allow sns:Publish)",
        "OptedOut" => " (the recipient has opted out of SMS from this AWS account)",
        "InvalidParameter" | "ParameterValueInvalid" => {
            " (the number, the sender ID or the origination number was refused)"
        }
        "RequestExpired" => " (check this server's clock)",
        _ => "",
    }
}

/// The text of the first `<name>…</name>` element of `xml` (entities decoded, trimmed); `None` when absent.
/// SNS's answers are small and flat: this is all the XML they need.
pub fn xml_text(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}");
    let mut from = 0;
    let start = loop {
        let i = from + xml[from..].find(&open)?;
        let rest = &xml[i + open.len()..];
        match rest.chars().next() {
            Some('>') => break i + open.len() + 1,
            Some(c) if c.is_whitespace() => break i + open.len() + rest.find('>')? + 1,
            _ => from = i + open.len(),
        }
    };
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    let raw = xml[start..end].trim();
    Some(
        raw.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&#39;", "'")
            .replace("&amp;", "&"),
    )
}

/// Sign a request with SigV4: the headers to add (`x-amz-date`, `authorization`). `headers` are the request's
/// own signed headers (the host is taken from `url`); the body is signed by its SHA-256 (it never reaches the
/// signer, which could log it).
#[allow(clippy::too_many_arguments)]
pub fn sigv4_headers(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    access_key_id: &str,
    secret_access_key: &str,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    let identity: Identity = Credentials::new(access_key_id, secret_access_key, None, None, "callsign-settings").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let digest = hex(&Sha256::digest(body));
    let request = SignableRequest::new(method, url, headers.iter().copied(), SignableBody::Precomputed(digest))
        .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(request, &params).map_err(|e| e.to_string())?.into_parts();
    Ok(instructions.headers().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn time_of(clock: &dyn Clock) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(clock.now().millis()).unwrap_or(0))
}

impl SnsProvider {
    /// The `AWS.SNS.SMS.SenderID` and `AWS.MM.SMS.OriginationNumber` for `msg`: a template's `from` replaces the
    /// setting of its kind.
    fn senders(&self, msg: &Message) -> Result<(Option<String>, Option<String>), SendError> {
        let (mut sender_id, mut number) = (self.sender_id.clone(), self.origination_number.clone());
        if let Some(from) = msg.from.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
            if is_origination_number(from) {
                number = Some(from.to_owned());
            } else if is_sender_id(from) {
                sender_id = Some(from.to_owned());
            } else {
                return Err(SendError::fatal(format!(
                    "Amazon SNS cannot send from the template's sender {from:?}: it is neither a sender ID (3 to 11 \
                     letters, digits or hyphens, with a letter) nor an origination number (5 to 14 digits)"
                )));
            }
        }
        Ok((sender_id, number))
    }

    fn form(&self, msg: &Message, sender_id: Option<&str>, number: Option<&str>) -> Result<String, SendError> {
        let mut attributes = vec![("AWS.SNS.SMS.SMSType", SMS_TYPE)];
        if let Some(s) = sender_id {
            attributes.push(("AWS.SNS.SMS.SenderID", s));
        }
        if let Some(n) = number {
            attributes.push(("AWS.MM.SMS.OriginationNumber", n));
        }
        let mut form: Vec<(String, &str)> = vec![
            ("Action".into(), "Publish"),
            ("Version".into(), API_VERSION),
            ("PhoneNumber".into(), msg.to.e164()),
            ("Message".into(), msg.text.as_str()),
        ];
        for (i, (name, value)) in attributes.into_iter().enumerate() {
            let entry = format!("MessageAttributes.entry.{}", i + 1);
            form.push((format!("{entry}.Name"), name));
            form.push((format!("{entry}.Value.DataType"), "String"));
            form.push((format!("{entry}.Value.StringValue"), value));
        }
        serde_urlencoded::to_string(&form)
            .map_err(|e| SendError::fatal(format!("cannot encode the Amazon SNS request: {e}")))
    }
}

#[async_trait]
impl Provider for SnsProvider {
    fn name(&self) -> &'static str {
        NAME
    }
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn send(&self, msg: &Message) -> Result<Receipt, SendError> {
        let (true, Some(secret)) = (self.problems.is_empty(), &self.secret_access_key) else {
            return Err(DECLARED.not_ready(&self.problems));
        };
        if msg.channel != Channel::Sms {
            return Err(SendError::fatal("Amazon SNS sends SMS only: it cannot make voice calls"));
        }
        let (sender_id, number) = self.senders(msg)?;
        let body = self.form(msg, sender_id.as_deref(), number.as_deref())?;
        let url = format!("{}/", self.base_url);
        let signed = sigv4_headers(
            "POST",
            &url,
            &[("content-type", CONTENT_TYPE)],
            body.as_bytes(),
            &self.access_key_id,
            secret.as_str(),
            &self.region,
            SERVICE,
            time_of(self.clock.as_ref()),
        )
        .map_err(|e| SendError::fatal(format!("cannot sign the Amazon SNS request: {e}")))?;
        let mut req = self.http.post(&url).header("content-type", CONTENT_TYPE).header("accept", "text/xml");
        for (k, v) in &signed {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req.body(body).send().await.map_err(|e| failed_request("Amazon SNS", e))?;
        let status = resp.status().as_u16();
        let text = body_excerpt(resp, ERROR_BODY_BYTES).await;
        let is_error = text.contains("<ErrorResponse") || text.contains("<Error>");
        let code = if is_error { xml_text(&text, "Code") } else { None };
        let message = if is_error {
            xml_text(&text, "Message").map(|m| m.chars().take(MESSAGE_CHARS).collect::<String>())
        } else {
            None
        };
        let details = json!({"code": code, "message": message, "status": status});
        if (200..300).contains(&status) && !is_error {
            return match (text.contains("<PublishResponse"), xml_text(&text, "MessageId")) {
                (true, Some(id)) if !id.is_empty() => Ok(Receipt {
                    provider: NAME,
                    details: json!({"message_id": id, "request_id": xml_text(&text, "RequestId")}),
                }),
                _ => Err(SendError::retryable(format!(
                    "Amazon SNS answered HTTP {status} with a body that is not a Publish result"
                ))
                .with_details(details)),
            };
        }
        let retryable = code.as_deref().and_then(code_is_retryable).unwrap_or_else(|| status_is_retryable(status));
        let mut sentence = format!("Amazon SNS refused the message (HTTP {status}");
        if let Some(c) = &code {
            sentence.push_str(&format!(", {c}"));
        }
        sentence.push(')');
        if let Some(m) = &message {
            sentence.push_str(&format!(": {m}"));
        }
        sentence.push_str(code.as_deref().map_or("", code_hint));
        Err(SendError { retryable, message: sentence, details })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_list_matches_the_fields() {
        let secrets: Vec<&str> = FIELDS.iter().filter(|f| f.kind == FieldKind::Secret).map(|f| f.name).collect();
        assert_eq!(secrets, DECLARED.secret_fields);
    }

    #[test]
    fn formats() {
        for r in ["us-east-1", "eu-west-3", "us-gov-west-1", "cn-north-1", "ap-southeast-5"] {
            assert!(is_region(r), "{r}");
        }
        for r in ["", "US-EAST-1", "us-east-1.evil.com", "us--east-1", "us-east-1-", "-us", "us/east", "1-us"] {
            assert!(!is_region(r), "{r}");
        }
        for s in ["ABC", "Callsign", "My-Shop-123", "a12"] {
            assert!(is_sender_id(s), "{s}");
        }
        for s in ["AB", "123456", "Callsign-Too-Long", "Call sign", "Caf\u{e9}"] {
            assert!(!is_sender_id(s), "{s}");
        }
        for n in ["+14155550100", "12345", "+12345678901234"] {
            assert!(is_origination_number(n), "{n}");
        }
        for n in ["1234", "+123456789012345", "+1 415", "Acme"] {
            assert!(!is_origination_number(n), "{n}");
        }
        assert_eq!(default_base_url("eu-west-1"), "https://sns.eu-west-1.amazonaws.com");
        assert_eq!(default_base_url("cn-north-1"), "https://sns.cn-north-1.amazonaws.com.cn");
    }

    #[test]
    fn codes_are_classified() {
        for c in ["Throttled", "InternalError", "KMSThrottling"] {
            assert_eq!(code_is_retryable(c), Some(true), "{c}");
        }
        for c in [
            "InvalidParameter",
            "ParameterValueInvalid",
            "OptedOut",
            "AuthorizationError",
            "InvalidSecurity",
            "SignatureDoesNotMatch",
            "InvalidClientTokenId",
        ] {
            assert_eq!(code_is_retryable(c), Some(false), "{c}");
        }
        assert_eq!(code_is_retryable("NotFound"), None);
    }

    #[test]
    fn the_xml_reader_takes_the_first_element() {
        let x = r#"<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type>
            <Code>InvalidParameter</Code><Message>Invalid parameter: a &amp; b &lt;c&gt;</Message></Error>
            <RequestId>r-1</RequestId></ErrorResponse>"#;
        assert_eq!(xml_text(x, "Code").as_deref(), Some("InvalidParameter"));
        assert_eq!(xml_text(x, "Message").as_deref(), Some("Invalid parameter: a & b <c>"));
        assert_eq!(xml_text(x, "Error").map(|e| e.starts_with("<Type>")), Some(true));
        assert!(xml_text(x, "ErrorResponse").is_some());
        assert_eq!(xml_text(x, "Missing"), None);
        assert_eq!(
            xml_text("<MessageIdX>1</MessageIdX><MessageId a=\"1\">2</MessageId>", "MessageId").as_deref(),
            Some("2")
        );
        assert_eq!(xml_text("<Code>unterminated", "Code"), None);
    }

    /// AWS's SigV4 test suite (`aws-signing-test-suite/v4`, credentials `AKIDEXAMPLE`, 2015-08-30T12:36:00Z,
    /// region `us-east-1`, service `service`): `get-vanilla` and `post-vanilla`.
    #[test]
    fn the_signer_matches_the_aws_test_suite() {
        let t = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let auth = |method: &str| {
            let h = sigv4_headers(
                method,
                "https://example.amazonaws.com/",
                &[],
                b"",
                "AKIDEXAMPLE",
                secret,
                "us-east-1",
                "service",
                t,
            )
            .unwrap();
            let get = |n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap();
            assert_eq!(get("x-amz-date"), "20150830T123600Z");
            get("authorization")
        };
        assert_eq!(
            auth("GET"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
        assert_eq!(
            auth("POST"),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
    }
}
