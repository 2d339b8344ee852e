//! What the voice providers share: the script said twice, and the provider's language picked from the message's.

/// The voice script of a message: its text, a pause, and the text again (Twilio's TwiML does the same with
/// `<Say>` twice), so a user who missed the code hears it once more.
pub fn spoken_twice(text: &str) -> String {
    let t = text.trim();
    format!("{t} ... {t}")
}

/// The provider's language for `locale` (`fr-CA`, `en`, `pt_BR`): the supported tag equal to it (case and `_` /
/// `-` ignored), else the first supported tag with the same language, else `default`.
pub fn pick_language<'a>(locale: &str, supported: &[&'a str], default: &'a str) -> &'a str {
    let norm = |s: &str| s.replace('_', "-").to_ascii_lowercase();
    let want = norm(locale);
    if let Some(s) = supported.iter().find(|s| norm(s) == want) {
        return s;
    }
    let lang = want.split('-').next().unwrap_or("");
    supported.iter().find(|s| norm(s).split('-').next() == Some(lang)).copied().unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_match_exactly_then_by_language() {
        let s = ["en-GB", "en-AU", "fr-FR", "de-DE"];
        assert_eq!(pick_language("en-AU", &s, "en-GB"), "en-AU");
        assert_eq!(pick_language("en_au", &s, "en-GB"), "en-AU");
        assert_eq!(pick_language("fr-CA", &s, "en-GB"), "fr-FR");
        assert_eq!(pick_language("fr", &s, "en-GB"), "fr-FR");
        assert_eq!(pick_language("ja", &s, "en-GB"), "en-GB");
        assert_eq!(pick_language("", &s, "en-GB"), "en-GB");
    }

    #[test]
    fn the_script_is_said_twice() {
        assert_eq!(spoken_twice("Your code is 1.2.3. "), "Your code is 1.2.3. ... Your code is 1.2.3.");
    }
}
