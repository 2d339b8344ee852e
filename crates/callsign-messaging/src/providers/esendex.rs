//! Esendex (`esendex`): SMS and voice through Esendex's REST API v1.0, `POST {base}/v1.0/messagedispatcher`, an XML
//! body (`Content-Type: application/xml`, `Accept: application/xml`) with HTTP Basic auth
//! (`username:api_password`). The endpoint is `https://api.esendex.com` unless the server configuration overrides it
//! (`[providers.esendex] base_url`, e.g. a test fake); an API caller cannot change it.
//!
//! Settings: `account_reference` (the account the messages are sent from, `EX0000000`), `username` (the Esendex
//! login), secret `api_password`, optional `from` (a phone number or an alphanumeric originator of up to 11
//! characters; a template's own `from` wins; without one Esendex uses the account's default originator).
//!
//! What is sent, in the order of Esendex's schema (an `xs:sequence`):
//! `<messages><accountreference>…</accountreference><message>[<from>…</from>]<to>447700900123</to><body>…</body>
//! <characterset>Auto</characterset></message></messages>` (text XML-escaped; `to` the E.164 number without `+`;
//! `Auto` lets Esendex pick GSM or Unicode, so a text in any script arrives intact). A voice message adds
//! `<type>Voice</type>` after `<to>` and `<lang>…</lang><retries>1</retries>` after `<body>` (no character set);
//! the body is the voice
//! script said twice ([`crate::voice::spoken_twice`]) and the language is picked from the message's locale among
//! the ones Esendex documents (en-GB, en-AU, fr-FR, es-ES, de-DE; en-GB otherwise).
//!
//! Answers: HTTP 200 `<messageheaders batchid="…"><messageheader uri="…" id="{GUID}"/></messageheaders>` is a
//! success (the receipt's details are `{id, batch_id}`); a 2xx without a `messageheader` id is a retryable
//! failure (not the documented answer). Esendex's errors are an HTTP status with a short text or XML message:
//! 400 (a bad request: an invalid recipient or originator), 401 and 403 (wrong credentials, or a user that may not
//! use the account, or an account that is not live), 402 (no credits left) and every other 4xx are final; 408,
//! 429 and 5xx, timeouts and connection failures are retried. The failure's details are `{code, message,
//! status}`: `code` is always `null` (the REST API has no error codes), `message` Esendex's text (tags stripped,
//! at most 300 characters), `status` the HTTP status.
//!
//! Not supported: delivery receipts. Esendex's push notifications (`MessageDelivered`, `MessageFailed`) are
//! configured once per account, carry Esendex's own message id rather than ours, and are not signed or otherwise
//! authenticated, so they cannot be verified and are not taken. Scheduling (`sendat`) and `validity` are not
//! sent (Esendex's defaults apply).
use std::sync::Arc;

use async_trait::async_trait;
use callsign_domain::Channel;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::declared::{Declared, declared_kind};
use crate::kind::{BuildError, Deps, FieldKind, FieldProblem, FieldSpec, ProviderKind, ProviderSettings, Required};
use crate::message::Message;
use crate::provider::{Capabilities, Provider, Receipt, SendError};
use crate::transport::{body_excerpt, failed_request, status_is_retryable};
use crate::voice::{pick_language, spoken_twice};

/// The Guardian name.
pub const NAME: &str = "esendex";
/// Esendex's API, unless [`Deps::base_urls`] has an override under [`NAME`].
pub const DEFAULT_BASE_URL: &str = "https://api.esendex.com";
/// The voice languages Esendex's message dispatcher schema allows (`langType`).
pub const VOICE_LANGUAGES: &[&str] = &["en-GB", "en-AU", "fr-FR", "es-ES", "de-DE"];
/// The voice language when the locale matches none of [`VOICE_LANGUAGES`] (Esendex's SDK default too).
pub const DEFAULT_VOICE_LANGUAGE: &str = "en-GB";
/// How many times Esendex tries to call (its SDK's default).
const VOICE_RETRIES: u32 = 1;
const ERROR_BODY_BYTES: usize = 4096;
/// How much of Esendex's error text is kept.
const ERROR_MESSAGE_CHARS: usize = 300;

const CAPABILITIES: Capabilities =
    Capabilities { channels: &[Channel::Sms, Channel::Voice], receipts: false, provider_codes: false };

/// The declared settings.
pub const FIELDS: &[FieldSpec] = &[
    FieldSpec {
        name: "account_reference",
        label: "Account reference",
        kind: FieldKind::Text,
        min_len: 1,
        max_len: 64,
        required: Required::Always,
        help: "The Esendex account the messages are sent from, e.g. EX0000000",
    },
    FieldSpec {
        name: "username",
        label: "Username",
        kind: FieldKind::Text,
        min_len: 1,
        max_len: 254,
        required: Required::Always,
        help: "The Esendex login (usually an email address), for HTTP Basic auth",
    },
    FieldSpec {
        name: "api_password",
        label: "API password",
        kind: FieldKind::Secret,
        min_len: 1,
        max_len: 1000,
        required: Required::Always,
        help: "The user's API password (Esendex console). Stored sealed; shown masked",
    },
    FieldSpec {
        name: "from",
        label: "Sender",
        kind: FieldKind::Phone,
        min_len: 0,
        max_len: 64,
        required: Required::Never,
        help: "A phone number or an alphanumeric originator of up to 11 characters; unset: the account's default",
    },
];

const DECLARED: Declared = Declared { name: NAME, label: "Esendex", fields: FIELDS, secret_fields: &["api_password"] };

/// Esendex's kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct EsendexKind;

impl ProviderKind for EsendexKind {
    declared_kind!(DECLARED);

    fn description(&self) -> &'static str {
        "SMS and voice through Esendex's REST API (no delivery receipts)."
    }
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }
    fn check(&self, settings: &ProviderSettings, channels: &[Channel]) -> Result<(), Vec<FieldProblem>> {
        DECLARED.check(settings, channels)
    }
    fn build(&self, settings: ProviderSettings, deps: &Deps) -> Result<Arc<dyn Provider>, BuildError> {
        Ok(Arc::new(EsendexProvider {
            account_reference: settings.text("account_reference"),
            username: settings.text("username"),
            api_password: settings.secret("api_password").cloned(),
            from: settings.text("from"),
            problems: DECLARED.problems(&settings, &[Channel::Sms, Channel::Voice]),
            http: deps.http.clone(),
            base_url: deps.base_url(NAME, DEFAULT_BASE_URL),
        }))
    }
}

/// The built Esendex provider.
pub struct EsendexProvider {
    account_reference: Option<String>,
    username: Option<String>,
    api_password: Option<Zeroizing<String>>,
    from: Option<String>,
    problems: Vec<FieldProblem>,
    http: reqwest::Client,
    base_url: String,
}

/// Escape text for XML content (and attribute values). Characters XML 1.0 does not allow become a space.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            '\u{fffe}' | '\u{ffff}' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Undo the XML escapes of a text or attribute value: the five named entities and numeric references (an unknown
/// or broken one is kept as it is).
fn xml_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let decoded = rest.find(';').filter(|&end| end <= 12).and_then(|end| {
            let c = match &rest[1..end] {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                e => e
                    .strip_prefix("#x")
                    .map(|h| u32::from_str_radix(h, 16))
                    .or_else(|| e.strip_prefix('#').map(str::parse::<u32>))
                    .and_then(Result::ok)
                    .and_then(char::from_u32),
            }?;
            Some((c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The value of attribute `attr` of the first element named `element` (any namespace prefix) in `xml`.
pub fn element_attr(xml: &str, element: &str, attr: &str) -> Option<String> {
    let mut rest = xml;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let name_end = rest.find(|c: char| c.is_whitespace() || c == '/' || c == '>').unwrap_or(rest.len());
        let name = &rest[..name_end];
        let local = name.rsplit(':').next().unwrap_or(name);
        if local != element {
            continue;
        }
        let tag_end = rest.find('>').unwrap_or(rest.len());
        return attributes(&rest[name_end..tag_end]).into_iter().find(|(k, _)| k == attr).map(|(_, v)| v);
    }
    None
}

/// The `name="value"` (or `'value'`) pairs of a start tag's inside, values unescaped.
fn attributes(mut s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start();
        let Some(eq) = s.find('=') else { return out };
        let name = s[..eq].trim().to_owned();
        let after = s[eq + 1..].trim_start();
        let Some(quote) = after.chars().next().filter(|c| *c == '"' || *c == '\'') else { return out };
        let Some(close) = after[1..].find(quote) else { return out };
        out.push((name, xml_unescape(&after[1..1 + close])));
        s = &after[close + 2..];
    }
}

/// Esendex's error text, for people: tags and the XML declaration stripped, entities decoded, whitespace
/// collapsed, at most [`ERROR_MESSAGE_CHARS`] characters; `None` when nothing is left.
pub fn error_text(body: &str) -> Option<String> {
    let mut text = String::new();
    let mut rest = body;
    while let Some(i) = rest.find('<') {
        text.push_str(&rest[..i]);
        text.push(' ');
        rest = rest[i..].find('>').map_or("", |j| &rest[i + j + 1..]);
    }
    text.push_str(rest);
    let text = xml_unescape(&text);
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let bounded: String = collapsed.chars().take(ERROR_MESSAGE_CHARS).collect();
    Some(bounded).filter(|s| !s.is_empty())
}

/// Whether an HTTP status is worth trying again: 5xx, 429, and 408 (Esendex's request timeout).
fn is_retryable(status: u16) -> bool {
    status_is_retryable(status) || status == 408
}

/// What the operator should check after a final refusal.
fn hint(status: u16) -> &'static str {
    match status {
        400 => " (Esendex found the request invalid, e.g. the recipient or the sender)",
        401 => " (check the username and API password)",
        402 => " (the Esendex account has no credits left)",
        403 => " (check that this user may send from the account reference, and that the account is live)",
        404 => " (check the Esendex base URL)",
        _ => "",
    }
}

impl EsendexProvider {
    /// The request body for `msg`.
    fn body(&self, account_reference: &str, msg: &Message) -> String {
        let mut m = String::from("<message>");
        if let Some(from) = msg.from.as_deref().or(self.from.as_deref()).map(str::trim).filter(|f| !f.is_empty()) {
            m.push_str(&format!("<from>{}</from>", xml_escape(from)));
        }
        m.push_str(&format!("<to>{}</to>", xml_escape(msg.to.e164().trim_start_matches('+'))));
        match msg.channel {
            Channel::Voice => {
                let lang = pick_language(&msg.locale, VOICE_LANGUAGES, DEFAULT_VOICE_LANGUAGE);
                m.push_str(&format!(
                    "<type>Voice</type><body>{}</body><lang>{lang}</lang><retries>{VOICE_RETRIES}</retries>",
                    xml_escape(&spoken_twice(&msg.text))
                ));
            }
            Channel::Sms => {
                m.push_str(&format!("<body>{}</body><characterset>Auto</characterset>", xml_escape(&msg.text)))
            }
        }
        m.push_str("</message>");
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><messages><accountreference>{}</accountreference>{m}</messages>"#,
            xml_escape(account_reference)
        )
    }
}

#[async_trait]
impl Provider for EsendexProvider {
    fn name(&self) -> &'static str {
        NAME
    }
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn send(&self, msg: &Message) -> Result<Receipt, SendError> {
        let (true, Some(account), Some(user), Some(password)) =
            (self.problems.is_empty(), &self.account_reference, &self.username, &self.api_password)
        else {
            return Err(DECLARED.not_ready(&self.problems));
        };
        let resp = self
            .http
            .post(format!("{}/v1.0/messagedispatcher", self.base_url))
            .basic_auth(user, Some(password.as_str()))
            .header("content-type", "application/xml")
            .header("accept", "application/xml")
            .body(self.body(account, msg))
            .send()
            .await
            .map_err(|e| failed_request("Esendex", e))?;
        let status = resp.status().as_u16();
        let text = body_excerpt(resp, ERROR_BODY_BYTES).await;
        if (200..300).contains(&status) {
            let id = element_attr(&text, "messageheader", "id").filter(|id| !id.trim().is_empty());
            return match id {
                Some(id) => Ok(Receipt {
                    provider: NAME,
                    details: json!({"id": id, "batch_id": element_attr(&text, "messageheaders", "batchid")}),
                }),
                None => Err(SendError::retryable(format!(
                    "Esendex answered HTTP {status} with a body that is not a message dispatch result"
                ))
                .with_details(json!({"code": null, "message": error_text(&text), "status": status}))),
            };
        }
        let message = error_text(&text);
        let mut sentence = format!("Esendex refused the message (HTTP {status})");
        if let Some(m) = &message {
            sentence.push_str(&format!(": {m}"));
        }
        sentence.push_str(hint(status));
        Err(SendError {
            retryable: is_retryable(status),
            message: sentence,
            details: json!({"code": Value::Null, "message": message, "status": status}),
        })
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
    fn the_message_id_is_read_from_the_documented_answer() {
        let ok = r#"<?xml version="1.0" encoding="utf-8"?>
<messageheaders batchid="F8BF9867-FF81-49E4-ACC5-774DE793B776" xmlns="http://api.esendex.com/ns/">
  <messageheader uri="https://api.esendex.com/v1.0/MessageHeaders/1183C73D-2E62-4F60-B610-30F160BDFBD5" id='1183C73D-2E62-4F60-B610-30F160BDFBD5' />
</messageheaders>"#;
        assert_eq!(element_attr(ok, "messageheader", "id").as_deref(), Some("1183C73D-2E62-4F60-B610-30F160BDFBD5"));
        assert_eq!(
            element_attr(ok, "messageheaders", "batchid").as_deref(),
            Some("F8BF9867-FF81-49E4-ACC5-774DE793B776")
        );
        assert_eq!(element_attr(r#"<ns:messageheader id="a&amp;b"/>"#, "messageheader", "id").as_deref(), Some("a&b"));
        assert_eq!(element_attr(r#"<messageheaders batchid="x"/>"#, "messageheader", "id"), None);
        assert_eq!(element_attr("<html>proxy</html>", "messageheader", "id"), None);
        assert_eq!(element_attr(r#"<messageheader id="x"#, "messageheader", "id"), None);
    }

    #[test]
    fn text_is_escaped_and_unescaped() {
        assert_eq!(xml_escape(r#"<a & 'b' "c">"#), "&lt;a &amp; &apos;b&apos; &quot;c&quot;&gt;");
        assert_eq!(xml_escape("a\u{1}b"), "a b");
        assert_eq!(xml_unescape("&lt;&#65;&#x42;&amp;&bogus;&"), "<AB&&bogus;&");
    }

    #[test]
    fn error_texts_are_stripped_and_bounded() {
        assert_eq!(
            error_text("<?xml version=\"1.0\"?><errors><error>Invalid   recipient &amp; more</error></errors>")
                .as_deref(),
            Some("Invalid recipient & more")
        );
        assert_eq!(error_text("  Unauthorised\n").as_deref(), Some("Unauthorised"));
        assert_eq!(error_text(" <x/> "), None);
        assert_eq!(error_text(&"é".repeat(1000)).map(|s| s.chars().count()), Some(ERROR_MESSAGE_CHARS));
    }

    #[test]
    fn statuses_are_classified() {
        for s in [408, 429, 500, 503] {
            assert!(is_retryable(s), "{s}");
        }
        for s in [400, 401, 402, 403, 404, 405] {
            assert!(!is_retryable(s), "{s}");
        }
    }
}
