//! Phone message templates: Liquid, with Auth0's variables and default texts (reference §10.1).
use std::sync::LazyLock;

use liquid::model::{Object, Value as LValue};

pub const DEFAULT_ENROLLMENT: &str = "{{code}} is your verification code for {{tenant.friendly_name}}. Please enter this code to verify your enrollment.";
pub const DEFAULT_VERIFICATION: &str = "{{code}} is your verification code for {{tenant.friendly_name}}";

/// The Unified Phone Experience's template types (reference §5.2), in Auth0's order.
pub const UPE_TYPES: &[&str] = &["otp_verify", "otp_enroll", "change_password", "blocked_account", "password_breach"];

const UPE_BLOCKED: &str = "We detected suspicious activity on your account from the ip {{user.source_ip}}{% if user.city %} from {{user.city}}, {{user.country}}{% elsif user.country %} from {{user.country}}{% endif %}. Logins from this IP have been blocked on your account. If this is your IP, please reset your password to unblock your account. Otherwise, disregard this message.";
/// Auth0 does not publish its `password_breach` default; this one says what happened and what to do.
const UPE_BREACH: &str = "We detected that the password of your {{ friendly_name | escape }} account was published in a data breach. Please change it now.";

/// The built-in `(text, voice)` bodies of a Unified Phone Experience template type. `otp_verify` and `otp_enroll`
/// are the Guardian templates (one text for both channels: `voice: None` means "speak the text"); the others are
/// Auth0's Unified Phone Experience defaults (reference §10.2).
pub fn upe_default(kind: &str) -> Option<(&'static str, Option<&'static str>)> {
    Some(match kind {
        "otp_verify" => (DEFAULT_VERIFICATION, None),
        "otp_enroll" => (DEFAULT_ENROLLMENT, None),
        "change_password" => (
            "{{ code | escape }} is your password change code for {{ friendly_name | escape }}",
            Some(
                "Hello. Your password change code for {{ friendly_name | escape }} is {{ pause }} {{ code | escape }}. I repeat, your password change code is {{ pause }} {{ code | escape }}",
            ),
        ),
        "blocked_account" => (UPE_BLOCKED, Some(UPE_BLOCKED)),
        "password_breach" => (UPE_BREACH, Some(UPE_BREACH)),
        _ => return None,
    })
}

/// What `{{pause}}` renders to. Auth0 does not document it; a sentence break makes text-to-speech engines pause,
/// and reads naturally in the development inbox.
pub const PAUSE: &str = "... ";

/// The Liquid that message templates may use: the branching blocks, comments and raw text, and the filters whose
/// output is at most their input plus their arguments. Loops (`for`, `tablerow`), variables (`assign`, `capture`,
/// `increment`, `cycle`), partials (`include`, `render`) and the filters that multiply a text (`replace`, `split` /
/// `join` and the other array filters) are left out: with them a short template could make a rendering take
/// unbounded time or memory (`{% for i in (1..1000000000) %}`, a chain of `replace`), at every message.
static PARSER: LazyLock<Option<liquid::Parser>> = LazyLock::new(|| {
    use liquid_lib::stdlib as l;
    liquid::ParserBuilder::new()
        .block(l::IfBlock)
        .block(l::UnlessBlock)
        .block(l::CaseBlock)
        .block(l::CommentBlock)
        .block(l::RawBlock)
        .filter(l::Append)
        .filter(l::Prepend)
        .filter(l::Capitalize)
        .filter(l::Downcase)
        .filter(l::Upcase)
        .filter(l::Escape)
        .filter(l::EscapeOnce)
        .filter(l::Default)
        .filter(l::Strip)
        .filter(l::Lstrip)
        .filter(l::Rstrip)
        .filter(l::StripNewlines)
        .filter(l::StripHtml)
        .filter(l::Remove)
        .filter(l::RemoveFirst)
        .filter(l::Truncate)
        .filter(l::TruncateWords)
        .filter(l::Slice)
        .filter(l::Size)
        .filter(l::Plus)
        .filter(l::Minus)
        .filter(l::Times)
        .filter(l::DividedBy)
        .filter(l::Modulo)
        .filter(l::Abs)
        .filter(l::Ceil)
        .filter(l::Floor)
        .filter(l::Round)
        .filter(l::AtLeast)
        .filter(l::AtMost)
        .build()
        .ok()
});

/// How deeply `if` / `unless` / `case` blocks may nest (the parser recurses once per level).
pub const MAX_NESTING: usize = 16;

/// The deepest nesting of blocks in `template`, counted on its `{% … %}` tags (before parsing, so that a template
/// nested thousands deep is refused without recursing into it).
fn nesting(template: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut rest = template;
    while let Some(start) = rest.find("{%") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("%}") else { break };
        let tag = after[..end].trim_start_matches('-').trim();
        let name = tag.split_whitespace().next().unwrap_or("");
        match name {
            "if" | "unless" | "case" | "comment" | "raw" | "for" | "tablerow" | "capture" | "ifchanged" => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            n if n.starts_with("end") => depth = depth.saturating_sub(1),
            _ => {}
        }
        rest = &after[end + 2..];
    }
    deepest
}

/// Check a template: it compiles, and renders on both channels with sample values. A template can compile yet
/// fail at every rendering (an unknown variable, a filter given the wrong kind of argument, an `include`); it is
/// refused here rather than failing each message later. The error names no secret and is safe to show to an
/// operator.
pub fn validate(template: &str) -> Result<(), String> {
    let parser = PARSER.as_ref().ok_or("template engine unavailable")?;
    if template.chars().count() > 20_000 {
        return Err("template is longer than 20000 characters".into());
    }
    if nesting(template) > MAX_NESTING {
        return Err(format!("blocks are nested more than {MAX_NESTING} deep"));
    }
    let one_line = |e: String| plain_liquid(&e);
    parser.parse(template).map_err(|e| one_line(e.to_string()))?;
    // The members of `user` a test message provides (see `branding_phone::try_template`).
    let mut user = Object::new();
    user.insert("phone_number".into(), LValue::scalar("+14155550100"));
    user.insert("source_ip".into(), LValue::scalar("203.0.113.7"));
    let mut extra = Object::new();
    extra.insert("user".into(), LValue::Object(user));
    for message_type in ["sms", "voice"] {
        let sample = Vars {
            code: "123456",
            message_type,
            locale: "en",
            friendly_name: "Callsign",
            support_email: "support@example.com",
            support_url: "https://example.com/support",
        };
        render_with(template, &sample, extra.clone()).map_err(one_line)?;
    }
    Ok(())
}

/// A Liquid error as one readable sentence: `line L, column C: what was expected (in `the line`)` for a syntax
/// error, `unknown filter `x` (known: …)` / `unknown tag `x`` for the others, instead of the engine's multi-line
/// report with its caret drawing.
pub fn plain_liquid(raw: &str) -> String {
    let lines: Vec<&str> = raw.lines().map(|l| l.trim().trim_start_matches("liquid:").trim()).collect();
    let value = |key: &str| lines.iter().find_map(|l| l.strip_prefix(key)).map(str::trim);
    let message =
        lines.iter().find_map(|l| l.trim_start_matches(['|', ' ']).strip_prefix("= ")).map(|m| m.trim_end_matches('.'));
    let mut out = match (lines.iter().find_map(|l| l.strip_prefix("--> ")), message) {
        (Some(at), Some(m)) => {
            let (line, column) = at.split_once(':').unwrap_or((at, "?"));
            let source = lines
                .iter()
                .find_map(|l| l.strip_prefix(&format!("{line} | ")))
                .map(|src| format!(" (in `{}`)", src.chars().take(80).collect::<String>()))
                .unwrap_or_default();
            format!("line {line}, column {column}: {}{source}", lowercase_first(m))
        }
        _ => {
            let first = lines.iter().copied().find(|l| !l.is_empty()).unwrap_or("");
            first.trim_end_matches("with:").trim().to_owned()
        }
    };
    if let Some(f) = value("requested filter=") {
        out = format!("unknown filter `{f}`");
        if let Some(known) = value("available filters=") {
            out.push_str(&format!(" (known: {known})"));
        }
    } else if let Some(t) = value("requested=") {
        out.push_str(&format!(": `{t}`"));
        if let Some(known) = value("available blocks=").filter(|k| !k.is_empty()) {
            out.push_str(&format!(" (blocks: {known})"));
        }
    }
    out.trim().to_owned()
}

fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The template types whose message carries the code (a body without it would send a message nobody can use).
pub const CODE_TYPES: &[&str] = &["otp_verify", "otp_enroll", "change_password"];

/// Check that a (valid) template puts the code in its message on every channel: rendered with a sample code for SMS
/// and for voice (where the digits are spoken one by one), the code must be in both. A template that leaves it out
/// on one branch (`{% if message_type == "voice" %}Hello{% else %}{{code}}{% endif %}`) is refused too.
pub fn require_code(template: &str) -> Result<(), String> {
    const SAMPLE: &str = "918273";
    for message_type in ["sms", "voice"] {
        let sample = Vars {
            code: SAMPLE,
            message_type,
            locale: "en",
            friendly_name: "Callsign",
            support_email: "support@example.com",
            support_url: "https://example.com/support",
        };
        let out = render(template, &sample)?;
        let want = if message_type == "voice" { spoken_code(SAMPLE) } else { SAMPLE.to_owned() };
        if !out.contains(&want) {
            return Err(format!("the {message_type} message has no code: use {{{{code}}}} where it goes"));
        }
    }
    Ok(())
}

/// Inputs of a rendering.
#[derive(Debug, Clone)]
pub struct Vars<'a> {
    pub code: &'a str,
    /// `sms` or `voice`.
    pub message_type: &'a str,
    pub locale: &'a str,
    pub friendly_name: &'a str,
    /// The tenant's support email and URL (empty when unset).
    pub support_email: &'a str,
    pub support_url: &'a str,
}

/// For voice, digits are read one by one: `123456` → `1.2.3.4.5.6`.
pub fn spoken_code(code: &str) -> String {
    code.chars().map(String::from).collect::<Vec<_>>().join(".")
}

pub fn render(template: &str, v: &Vars<'_>) -> Result<String, String> {
    render_with(template, v, Object::new())
}

/// [`render`] with extra globals (the Unified Phone Experience's `user` object for a test message).
pub fn render_with(template: &str, v: &Vars<'_>, extra: Object) -> Result<String, String> {
    let parser = PARSER.as_ref().ok_or("template engine unavailable")?;
    // Stored templates were validated; this guards the parser against one that was not (an older installation).
    if nesting(template) > MAX_NESTING {
        return Err(format!("blocks are nested more than {MAX_NESTING} deep"));
    }
    let tpl = parser.parse(template).map_err(|e| e.to_string())?;
    let code = if v.message_type == "voice" { spoken_code(v.code) } else { v.code.to_owned() };
    let mut tenant = Object::new();
    tenant.insert("friendly_name".into(), LValue::scalar(v.friendly_name.to_owned()));
    tenant.insert("friendlyName".into(), LValue::scalar(v.friendly_name.to_owned()));
    let mut globals = Object::new();
    globals.insert("code".into(), LValue::scalar(code));
    globals.insert("message_type".into(), LValue::scalar(v.message_type.to_owned()));
    globals.insert("locale".into(), LValue::scalar(v.locale.to_owned()));
    globals.insert("pause".into(), LValue::scalar(if v.message_type == "voice" { PAUSE } else { "" }));
    globals.insert("tenant".into(), LValue::Object(tenant));
    // The Unified Phone Experience's names (reference §10.2) next to Guardian's.
    globals.insert("friendly_name".into(), LValue::scalar(v.friendly_name.to_owned()));
    globals.insert("support_email".into(), LValue::scalar(v.support_email.to_owned()));
    globals.insert("support_url".into(), LValue::scalar(v.support_url.to_owned()));
    // What `validate` tries a template with, so that what it accepts renders: `user` is empty unless given.
    let mut user = Object::new();
    user.insert("phone_number".into(), LValue::scalar(""));
    user.insert("source_ip".into(), LValue::scalar(""));
    globals.insert("user".into(), LValue::Object(user));
    for (k, val) in extra {
        globals.insert(k, val);
    }
    tpl.render(&globals).map(|s| s.trim().to_owned()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(t: &'a str) -> Vars<'a> {
        Vars {
            code: "123456",
            message_type: t,
            locale: "en",
            friendly_name: "Acme",
            support_email: "",
            support_url: "",
        }
    }

    #[test]
    fn defaults_render_like_auth0() {
        assert_eq!(render(DEFAULT_VERIFICATION, &vars("sms")).unwrap(), "123456 is your verification code for Acme");
        assert_eq!(
            render(DEFAULT_ENROLLMENT, &vars("sms")).unwrap(),
            "123456 is your verification code for Acme. Please enter this code to verify your enrollment."
        );
        assert_eq!(
            render(DEFAULT_VERIFICATION, &vars("voice")).unwrap(),
            "1.2.3.4.5.6 is your verification code for Acme"
        );
    }

    #[test]
    fn branches_on_message_type_and_supports_both_tenant_spellings() {
        let t = r#"{% if message_type == "voice" %}Code: {{pause}}{{code}}{% else %}{{code}} for {{tenant.friendlyName}} ({{locale}}){% endif %}"#;
        assert_eq!(render(t, &vars("voice")).unwrap(), "Code: ... 1.2.3.4.5.6");
        assert_eq!(render(t, &vars("sms")).unwrap(), "123456 for Acme (en)");
    }

    #[test]
    fn compile_errors_are_reported() {
        assert!(validate("{{code}} ok").is_ok());
        assert!(require_code("{{code}} ok").is_ok());
        assert_eq!(validate("{% if %}").unwrap_err(), "line 1, column 6: value expected (in `{% if %}`)");
        assert_eq!(validate("Hello {{ code ").unwrap_err(), "line 1, column 10: expected Literal (in `Hello {{ code`)");
        assert!(validate("{{ code | nope }}").unwrap_err().starts_with("unknown filter `nope` (known: abs, "));
        let e = validate("line1\nline2 {% endif %}").unwrap_err();
        assert!(e.starts_with("line 2, column 10: unknown tag (in `line2 {% endif %}`): `endif`"), "{e}");
        assert!(require_code("{{ code | escape }} for {{tenant.friendly_name}}").is_ok());
        assert!(require_code("Your code is ready").is_err());
        assert!(require_code(r#"{% if message_type == "voice" %}Hello{% else %}{{code}}{% endif %}"#).is_err());
        assert!(
            require_code(r#"{% if message_type == "voice" %}Code {{pause}}{{code}}{% else %}{{code}}{% endif %}"#)
                .is_ok()
        );
        let e = validate("{% if %}").unwrap_err();
        assert!(!e.is_empty());
        assert!(validate("{{ code ").is_err());
        // Compiles, but can never render (found by the property tests): refused, naming the cause.
        for t in [
            "{{ nope }}",
            "{{ tenant.nope }}",
            "{% include 'x' %}",
            "{{ code | truncate: 'a' }}",
            "{{ 1 | divided_by: 0 }}",
        ] {
            assert!(render(t, &vars("sms")).is_err(), "{t}");
            let e = validate(t).unwrap_err();
            assert!(!e.is_empty() && !e.contains('\n'), "{t}: {e}");
        }
        assert!(validate("{{ user.source_ip }}").is_ok());
        // What could take unbounded time or memory at every message is not part of the language.
        for t in [
            "{% for i in (1..1000000000) %}x{% endfor %}",
            "{% tablerow i in (1..1000000) %}x{% endtablerow %}",
            "{% assign x = code %}{{ x }}",
            "{% capture x %}a{% endcapture %}{{ x }}",
            "{{ code | replace: '1', '1111111111' | replace: '1', '1111111111' }}",
            "{{ code | split: '' | join: 'xxxxxxxx' }}",
            "{% cycle 'a', 'b' %}",
            "{% increment n %}",
            "{% render 'x' %}",
        ] {
            assert!(validate(t).is_err(), "{t}");
        }
        let deep = format!("{}x{}", "{% if code %}".repeat(MAX_NESTING + 1), "{% endif %}".repeat(MAX_NESTING + 1));
        assert!(validate(&deep).unwrap_err().contains("nested"));
        assert!(render(&deep, &vars("sms")).is_err());
        let ok = format!("{}x{}", "{% if code %}".repeat(MAX_NESTING), "{% endif %}".repeat(MAX_NESTING));
        assert_eq!(render(&ok, &vars("sms")).unwrap(), "x");
        // The usual shapes still work.
        for t in [
            "{% unless locale == 'fr' %}Code{% endunless %} {{ code | prepend: '#' | append: '.' }}",
            "{% case locale %}{% when 'fr' %}Votre code{% else %}Your code{% endcase %}: {{ code }}",
            "{{ friendly_name | upcase | truncate: 10 }} {% comment %}x{% endcomment %}{% raw %}{{x}}{% endraw %}",
        ] {
            assert!(validate(t).is_ok(), "{t}: {:?}", validate(t));
        }
        assert_eq!(render("a{{ user.source_ip }}b", &vars("sms")).unwrap(), "ab");
        for kind in UPE_TYPES {
            let (text, voice) = upe_default(kind).unwrap();
            assert!(validate(text).is_ok() && voice.is_none_or(|v| validate(v).is_ok()), "{kind}");
        }
    }
}
