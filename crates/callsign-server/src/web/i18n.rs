//! Language negotiation: `ui_locales` (space-separated, in order of preference) first, then `Accept-Language`
//! (q-values honoured), else the first supported language. Matching is by primary subtag (`fr-CA` → `fr`).

/// The best of `supported` (lowercase primary subtags, the first being the default).
pub fn negotiate<'a>(ui_locales: Option<&str>, accept_language: Option<&str>, supported: &[&'a str]) -> &'a str {
    let default = supported.first().copied().unwrap_or("en");
    let pick = |tag: &str| -> Option<&'a str> {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or("").to_ascii_lowercase();
        supported.iter().copied().find(|s| *s == primary)
    };
    if let Some(found) = ui_locales.into_iter().flat_map(|u| u.split_whitespace()).find_map(pick) {
        return found;
    }
    let mut ranked: Vec<(f32, usize, &str)> = accept_language
        .unwrap_or("")
        .split(',')
        .enumerate()
        .filter_map(|(i, part)| {
            let mut bits = part.split(';');
            let tag = bits.next()?.trim();
            if tag.is_empty() || tag == "*" {
                return None;
            }
            let q = bits
                .find_map(|b| b.trim().strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()))
                .unwrap_or(1.0);
            (q > 0.0).then_some((q, i, tag))
        })
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked.into_iter().find_map(|(_, _, tag)| pick(tag)).unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &[&str] = &["en", "fr", "es"];

    #[test]
    fn ui_locales_win_then_accept_language_by_quality() {
        assert_eq!(negotiate(Some("de fr-CA"), Some("es"), S), "fr");
        assert_eq!(negotiate(None, Some("de;q=0.9, es;q=0.8, fr;q=0.85"), S), "fr");
        assert_eq!(negotiate(Some("xx"), Some("es-MX,en;q=0.5"), S), "es");
        assert_eq!(negotiate(None, Some("fr;q=0"), S), "en");
        assert_eq!(negotiate(None, None, S), "en");
    }
}
