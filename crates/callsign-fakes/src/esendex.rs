//! A strict fake of Esendex's message dispatcher (REST API v1.0, `POST /v1.0/messagedispatcher`, XML, HTTP Basic
//! auth), after Esendex's SDKs and the dispatcher's XSD (`messages` / `message` are `xs:sequence`s): a request
//! without the fake's credentials is 401; another account reference is 403 (the user may not use it); a wrong
//! method, path, content type or `Accept` is 405 / 404 / 415 / 406; a body that is not well-formed XML, breaks the
//! schema's element order, has an unknown element, an empty body text, an invalid recipient (digits only, 7–15,
//! comma-separated) or originator (a phone number, or up to 11 letters, digits and `* $ ? ! " # % & _ - , . @ ' +`
//! and spaces), a `type` other than `SMS` / `Voice`, a voice message without a `lang` of the schema's list, a
//! `characterset` other than `GSM` / `Unicode` / `Auto`, or a non-integer `retries` is 400. Refusals are short `text/plain` messages (Esendex's wording is not documented; the
//! statuses are its SDKs'). An accepted request answers 200 `<messageheaders batchid="…"><messageheader uri="…"
//! id="…"/></messageheaders>`, one header per recipient.
use crate::{Delivered, Fake, Reply, Seen};

/// The username the fake accepts.
pub const USERNAME: &str = "callsign@example.com";
/// The API password the fake accepts.
pub const API_PASSWORD: &str = "esendex-test-password-0123456789";
/// The only account reference the fake's user may send from.
pub const ACCOUNT_REFERENCE: &str = "EX0123456";
/// An alphanumeric originator.
pub const FROM: &str = "Callsign";
/// The voice languages of the dispatcher's XSD (`langType`).
pub const LANGUAGES: &[&str] = &["en-GB", "en-AU", "fr-FR", "es-ES", "de-DE"];

/// `<messages>`' children, in schema order (`message` repeats, at least once, last).
const MESSAGES_SEQUENCE: &[&str] =
    &["accountreference", "from", "type", "lang", "retries", "validity", "sendat", "characterset", "message"];
/// `<message>`'s children, in schema order.
const MESSAGE_SEQUENCE: &[&str] = &["from", "to", "type", "body", "lang", "retries", "validity", "characterset"];

/// The Guardian `PUT /guardian/factors/phone/providers/esendex` body that works with the fake.
pub fn settings() -> serde_json::Value {
    serde_json::json!({
        "account_reference": ACCOUNT_REFERENCE,
        "username": USERNAME,
        "api_password": API_PASSWORD,
        "from": FROM,
    })
}

/// An XML element: its (local) name, attributes, child elements and text (entities decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
    /// The text of the first child named `name`.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }
    /// The children's names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.children.iter().map(|c| c.name.as_str()).collect()
    }
}

/// Parse a small XML document (declaration, comments, elements, attributes, text, the five entities and numeric
/// references, CDATA): enough to hold the provider's request to the schema.
pub fn parse(xml: &str) -> Result<Element, String> {
    let mut p = Parser { s: xml.trim_start_matches('\u{feff}'), i: 0 };
    p.skip_misc()?;
    if p.rest().starts_with("<?xml") {
        let end = p.rest().find("?>").ok_or("unterminated XML declaration")?;
        p.i += end + 2;
    }
    p.skip_misc()?;
    let root = p.element()?;
    p.skip_misc()?;
    if !p.rest().is_empty() {
        return Err("content after the root element".into());
    }
    Ok(root)
}

struct Parser<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.i..]
    }

    /// Whitespace and comments.
    fn skip_misc(&mut self) -> Result<(), String> {
        loop {
            let trimmed = self.rest().trim_start();
            self.i = self.s.len() - trimmed.len();
            if self.rest().starts_with("<!--") {
                let end = self.rest().find("-->").ok_or("unterminated comment")?;
                self.i += end + 3;
            } else {
                return Ok(());
            }
        }
    }

    fn name(&mut self) -> Result<String, String> {
        let r = self.rest();
        let n = r.find(|c: char| c.is_whitespace() || c == '/' || c == '>' || c == '=').unwrap_or(r.len());
        if n == 0 {
            return Err("expected a name".into());
        }
        let name = r[..n].to_owned();
        self.i += n;
        Ok(name)
    }

    fn element(&mut self) -> Result<Element, String> {
        if !self.rest().starts_with('<') {
            return Err("expected an element".into());
        }
        self.i += 1;
        let name = self.name()?;
        let mut attrs = Vec::new();
        loop {
            let trimmed = self.rest().trim_start();
            self.i = self.s.len() - trimmed.len();
            if self.rest().starts_with("/>") {
                self.i += 2;
                return Ok(Element { name: local(&name), attrs, children: Vec::new(), text: String::new() });
            }
            if self.rest().starts_with('>') {
                self.i += 1;
                break;
            }
            let key = self.name()?;
            let r = self.rest().trim_start();
            let r = r.strip_prefix('=').ok_or_else(|| format!("attribute {key} has no value"))?.trim_start();
            let q = r.chars().next().filter(|c| *c == '"' || *c == '\'').ok_or("attribute value not quoted")?;
            let close = r[1..].find(q).ok_or("unterminated attribute value")?;
            let value = unescape(&r[1..1 + close])?;
            self.i = self.s.len() - r.len() + close + 2;
            attrs.push((key, value));
        }
        let (mut children, mut text) = (Vec::new(), String::new());
        loop {
            let r = self.rest();
            if r.is_empty() {
                return Err(format!("element {name} is not closed"));
            }
            if let Some(after) = r.strip_prefix("</") {
                let n = after.find('>').ok_or("unterminated end tag")?;
                if after[..n].trim() != name {
                    return Err(format!("end tag {} does not match {name}", after[..n].trim()));
                }
                self.i += 2 + n + 1;
                return Ok(Element { name: local(&name), attrs, children, text });
            }
            if r.starts_with("<!--") {
                self.skip_misc()?;
            } else if let Some(after) = r.strip_prefix("<![CDATA[") {
                let n = after.find("]]>").ok_or("unterminated CDATA")?;
                text.push_str(&after[..n]);
                self.i += 9 + n + 3;
            } else if r.starts_with('<') {
                children.push(self.element()?);
            } else {
                let n = r.find('<').unwrap_or(r.len());
                text.push_str(&unescape(&r[..n])?);
                self.i += n;
            }
        }
    }
}

fn local(name: &str) -> String {
    name.rsplit(':').next().unwrap_or(name).to_owned()
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let end = rest[i..].find(';').ok_or("a bare & in text")?;
        let entity = &rest[i + 1..i + end];
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            e => e
                .strip_prefix("#x")
                .map(|h| u32::from_str_radix(h, 16))
                .or_else(|| e.strip_prefix('#').map(str::parse::<u32>))
                .and_then(Result::ok)
                .and_then(char::from_u32)
                .ok_or_else(|| format!("unknown entity &{e};"))?,
        };
        out.push(c);
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn bad_request(text: &str) -> Reply {
    Reply::text(400, text)
}

/// Whether `children` follow `sequence` (each at most once, except a repeating `repeat`), naming the first
/// element out of place or unknown.
fn in_sequence(children: &[Element], sequence: &[&str], repeat: Option<&str>) -> Result<(), String> {
    let mut last: Option<usize> = None;
    for c in children {
        let Some(pos) = sequence.iter().position(|s| *s == c.name) else {
            return Err(format!("The element '{}' is not allowed here", c.name));
        };
        if let Some(l) = last
            && (pos < l || (pos == l && Some(c.name.as_str()) != repeat))
        {
            return Err(format!("The element '{}' is out of order or repeated", c.name));
        }
        last = Some(pos);
    }
    Ok(())
}

fn valid_recipient(to: &str) -> bool {
    (7..=15).contains(&to.len()) && to.bytes().all(|b| b.is_ascii_digit())
}

fn valid_originator(from: &str) -> bool {
    let digits = from.strip_prefix('+').unwrap_or(from);
    let is_number = (5..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    let is_alpha = (1..=11).contains(&from.chars().count())
        && from.chars().all(|c| c.is_ascii_alphanumeric() || " *$?!\"#%&_-,.@'+".contains(c));
    is_number || is_alpha
}

fn check_message(m: &Element) -> Result<(), Reply> {
    in_sequence(&m.children, MESSAGE_SEQUENCE, None).map_err(|e| bad_request(&e))?;
    if !m.attrs.is_empty() || m.children.iter().any(|c| !c.children.is_empty() || !c.attrs.is_empty()) {
        return Err(bad_request("Message elements hold text only"));
    }
    let Some(to) = m.child_text("to") else { return Err(bad_request("The 'to' element is required")) };
    if to.split(',').any(|t| !valid_recipient(t.trim())) {
        return Err(bad_request("Invalid recipient: expected an international number, digits only"));
    }
    match m.child_text("body") {
        None => return Err(bad_request("The 'body' element is required")),
        Some(b) if b.trim().is_empty() => return Err(bad_request("The message body is empty")),
        Some(_) => {}
    }
    if let Some(from) = m.child_text("from")
        && !valid_originator(from)
    {
        return Err(bad_request("Invalid originator"));
    }
    let voice = match m.child_text("type") {
        None | Some("SMS") => false,
        Some("Voice") => true,
        Some(t) => return Err(bad_request(&format!("Invalid message type '{t}'"))),
    };
    match m.child_text("lang") {
        Some(l) if !LANGUAGES.contains(&l) => return Err(bad_request(&format!("Invalid language '{l}'"))),
        None if voice => return Err(bad_request("A voice message needs a language")),
        _ => {}
    }
    if let Some(c) = m.child_text("characterset")
        && !["GSM", "Unicode", "Auto"].contains(&c)
    {
        return Err(bad_request(&format!("Invalid character set '{c}'")));
    }
    if let Some(r) = m.child_text("retries")
        && r.trim().parse::<u32>().is_err()
    {
        return Err(bad_request("Invalid retries"));
    }
    Ok(())
}

/// The documented checks.
pub fn check(s: &Seen) -> Result<(), Reply> {
    if s.basic_auth() != Some((USERNAME.to_owned(), API_PASSWORD.to_owned())) {
        return Err(Reply::text(401, "Unauthorised"));
    }
    if s.path_only() != "/v1.0/messagedispatcher" {
        return Err(Reply::text(404, "Not Found"));
    }
    if s.method != "POST" {
        return Err(Reply::text(405, "Method Not Allowed"));
    }
    if !s.content_type_is("application/xml") {
        return Err(Reply::text(415, "Unsupported Media Type"));
    }
    if !s.header("accept").is_some_and(|a| a.contains("application/xml")) {
        return Err(Reply::text(406, "Not Acceptable"));
    }
    let root = parse(&s.text()).map_err(|e| bad_request(&format!("Invalid XML: {e}")))?;
    if root.name != "messages" {
        return Err(bad_request("The root element must be 'messages'"));
    }
    in_sequence(&root.children, MESSAGES_SEQUENCE, Some("message")).map_err(|e| bad_request(&e))?;
    match root.child_text("accountreference") {
        None => return Err(bad_request("The 'accountreference' element is required")),
        Some(a) if a != ACCOUNT_REFERENCE => {
            return Err(Reply::text(403, &format!("You do not have access to account {a}")));
        }
        Some(_) => {}
    }
    let messages: Vec<&Element> = root.children.iter().filter(|c| c.name == "message").collect();
    if messages.is_empty() {
        return Err(bad_request("At least one 'message' element is required"));
    }
    messages.into_iter().try_for_each(check_message)
}

/// The answer to the `n`th accepted request: one message header per recipient.
pub fn accepted(s: &Seen, n: usize) -> Reply {
    let recipients = parse(&s.text())
        .ok()
        .map(|r| {
            r.children
                .iter()
                .filter(|c| c.name == "message")
                .map(|m| m.child_text("to").unwrap_or("").split(',').count())
                .sum::<usize>()
        })
        .unwrap_or(1);
    let headers: String = (0..recipients)
        .map(|k| {
            let id = format!("1183C73D-2E62-4F60-B610-{:08X}{k:04X}", n);
            format!(r#"<messageheader uri="https://api.esendex.com/v1.0/MessageHeaders/{id}" id="{id}" />"#)
        })
        .collect();
    Reply::xml(
        200,
        &format!(
            r#"<?xml version="1.0" encoding="utf-8"?><messageheaders batchid="F8BF9867-FF81-49E4-ACC5-{n:012X}" xmlns="http://api.esendex.com/ns/">{headers}</messageheaders>"#
        ),
    )
}

/// Start the fake.
pub async fn start() -> Fake {
    Fake::start(Box::new(check), Box::new(accepted)).await
}

/// What an accepted request delivered (its first message, to its first recipient).
pub fn delivered(s: &Seen) -> Option<Delivered> {
    if !(200..300).contains(&s.status) {
        return None;
    }
    let root = parse(&s.text()).ok()?;
    let m = root.child("message")?;
    let channel = if m.child_text("type") == Some("Voice") { "voice" } else { "sms" };
    let to = m.child_text("to")?.split(',').next()?.trim();
    Some(Delivered { channel, to: format!("+{to}"), text: m.child_text("body")?.to_owned() })
}

/// A 503 (retryable).
pub fn unavailable() -> Reply {
    Reply::text(503, "Service Unavailable")
}

/// A refusal of the number (final).
pub fn bad_number() -> Reply {
    bad_request("Invalid recipient: expected an international number, digits only")
}

/// The `MessageDelivered` push notification Esendex would post for its message `esendex_message_id` (unsigned;
/// Callsign does not take it).
pub fn receipt(esendex_message_id: &str) -> String {
    format!(
        "<MessageDelivered><Id>6B1C1A0E-7E2A-4C34-9C1B-000000000001</Id><MessageId>{esendex_message_id}</MessageId><AccountId>254C2115-88E0-4FD4-97DA-F9778E659932</AccountId><OccurredAt>2026-01-01T00:00:05</OccurredAt></MessageDelivered>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parser_reads_what_the_schema_needs() {
        let e = parse(
            "\u{feff}<?xml version=\"1.0\"?><!-- c --><messages a='1'><x>a &amp; &#66;<![CDATA[<c>]]></x><y/></messages>",
        )
        .unwrap();
        assert_eq!(e.name, "messages");
        assert_eq!(e.attrs, vec![("a".to_owned(), "1".to_owned())]);
        assert_eq!(e.child_text("x"), Some("a & B<c>"));
        assert_eq!(e.names(), ["x", "y"]);
        for bad in ["<a>", "<a></b>", "<a>x & y</a>", "<a/><b/>", "text", "<a b=c/>"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sequences_are_held() {
        let m = |names: &[&str]| {
            names
                .iter()
                .map(|n| Element { name: (*n).into(), attrs: vec![], children: vec![], text: String::new() })
                .collect::<Vec<_>>()
        };
        assert!(in_sequence(&m(&["from", "to", "type", "body", "lang"]), MESSAGE_SEQUENCE, None).is_ok());
        assert!(in_sequence(&m(&["to", "body", "from"]), MESSAGE_SEQUENCE, None).is_err());
        assert!(in_sequence(&m(&["to", "to", "body"]), MESSAGE_SEQUENCE, None).is_err());
        assert!(in_sequence(&m(&["to", "bogus"]), MESSAGE_SEQUENCE, None).is_err());
        assert!(
            in_sequence(&m(&["accountreference", "message", "message"]), MESSAGES_SEQUENCE, Some("message")).is_ok()
        );
        assert!(in_sequence(&m(&["message", "accountreference"]), MESSAGES_SEQUENCE, Some("message")).is_err());
    }

    #[test]
    fn originators_and_recipients() {
        for ok in ["Callsign", "+447700900123", "447700900123", "My-MFA 2!"] {
            assert!(valid_originator(ok), "{ok}");
        }
        for bad in ["TwelveChars1", "", "Call<sign>"] {
            assert!(!valid_originator(bad), "{bad}");
        }
        assert!(valid_recipient("447700900123"));
        assert!(!valid_recipient("+447700900123") && !valid_recipient("12345"));
    }
}
