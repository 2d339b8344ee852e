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

static PARSER: LazyLock<Option<liquid::Parser>> = LazyLock::new(|| liquid::ParserBuilder::with_stdlib().build().ok());

/// Check a template: it compiles, and renders on both channels with sample values. A template can compile yet
/// fail at every rendering (an unknown variable, a filter given the wrong kind of argument, an `include`); it is
/// refused here rather than failing each message later. The error names no secret and is safe to show to an
/// operator.
pub fn validate(template: &str) -> Result<(), String> {
    let parser = PARSER.as_ref().ok_or("template engine unavailable")?;
    if template.chars().count() > 20_000 {
        return Err("template is longer than 20000 characters".into());
    }
    let one_line = |e: String| e.trim().replace('\n', " ");
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
        assert_eq!(render("a{{ user.source_ip }}b", &vars("sms")).unwrap(), "ab");
        for kind in UPE_TYPES {
            let (text, voice) = upe_default(kind).unwrap();
            assert!(validate(text).is_ok() && voice.is_none_or(|v| validate(v).is_ok()), "{kind}");
        }
    }
}
