//! The country picker: every region the phone-number metadata knows, with its calling code and its name in the
//! page language, sorted by that name.
use std::sync::LazyLock;

use callsign_domain::phone::calling_code;

mod data {
    include!("countries_data.rs");
}

#[derive(Debug, Clone)]
pub struct Country {
    /// ISO 3166-1 alpha-2.
    pub code: &'static str,
    pub name: &'static str,
    pub calling_code: u16,
}

/// A sort key that puts accented names where a reader expects them (`Égypte` with the E's).
fn sort_key(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        let folded = match c {
            'à' | 'á' | 'â' | 'ä' | 'ã' | 'å' => "a",
            'æ' => "ae",
            'ç' => "c",
            'è' | 'é' | 'ê' | 'ë' => "e",
            'ì' | 'í' | 'î' | 'ï' => "i",
            'ñ' => "n",
            'ò' | 'ó' | 'ô' | 'ö' | 'õ' | 'ø' => "o",
            'œ' => "oe",
            'ù' | 'ú' | 'û' | 'ü' => "u",
            'ý' | 'ÿ' => "y",
            c if c.is_alphanumeric() || c == ' ' => {
                out.push(c);
                continue;
            }
            _ => continue,
        };
        out.push_str(folded);
    }
    out
}

fn build(column: usize) -> Vec<Country> {
    let mut v: Vec<Country> = data::COUNTRIES
        .iter()
        .filter_map(|&(code, en, fr, es)| {
            let name = match column {
                1 => fr,
                2 => es,
                _ => en,
            };
            calling_code(code).map(|cc| Country { code, name, calling_code: cc })
        })
        .collect();
    v.sort_by_cached_key(|c| sort_key(c.name));
    v
}

static EN: LazyLock<Vec<Country>> = LazyLock::new(|| build(0));
static FR: LazyLock<Vec<Country>> = LazyLock::new(|| build(1));
static ES: LazyLock<Vec<Country>> = LazyLock::new(|| build(2));

/// The countries, named and sorted for `lang`.
pub fn list(lang: &str) -> &'static [Country] {
    match lang {
        "fr" => &FR,
        "es" => &ES,
        _ => &EN,
    }
}

/// The region to preselect: the first `Accept-Language` tag with a known region (`fr-CA` → `CA`), else the
/// page language's usual country.
pub fn default_region(accept_language: Option<&str>, lang: &str) -> &'static str {
    let from_header = accept_language.unwrap_or("").split(',').find_map(|part| {
        let tag = part.split(';').next()?.trim();
        let region = tag.split(['-', '_']).nth(1)?;
        let region = region.to_ascii_uppercase();
        data::COUNTRIES.iter().find(|c| c.0 == region && calling_code(c.0).is_some()).map(|c| c.0)
    });
    from_header.unwrap_or(match lang {
        "fr" => "FR",
        "es" => "ES",
        _ => "US",
    })
}

/// Whether `code` is a region of the picker.
pub fn known(code: &str) -> bool {
    EN.iter().any(|c| c.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_language_and_sort_like_a_reader_expects() {
        let fr = list("fr");
        let de = fr.iter().find(|c| c.code == "DE").map(|c| (c.name, c.calling_code));
        assert_eq!(de, Some(("Allemagne", 49)));
        let names: Vec<&str> = fr.iter().map(|c| c.name).collect();
        let egypte = names.iter().position(|n| *n == "Égypte");
        let equateur = names.iter().position(|n| *n == "Équateur");
        let espagne = names.iter().position(|n| *n == "Espagne");
        assert!(egypte < espagne && equateur < espagne, "{egypte:?} {equateur:?} {espagne:?}");
        assert!(list("es").iter().any(|c| c.name == "Estados Unidos" && c.calling_code == 1));
        assert!(list("en").len() > 200);
        assert!(known("GB") && !known("ZZ"));
    }

    #[test]
    fn default_region_comes_from_accept_language() {
        assert_eq!(default_region(Some("fr-CA,fr;q=0.9"), "fr"), "CA");
        assert_eq!(default_region(Some("es"), "es"), "ES");
        assert_eq!(default_region(None, "en"), "US");
        assert_eq!(default_region(Some("en-XX"), "en"), "US");
    }
}
