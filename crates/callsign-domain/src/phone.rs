//! Phone numbers, parsed once at the edge into E.164 with their country and type.
use std::fmt;

use phonenumber::{Mode, PhoneNumber as Parsed, metadata::DATABASE};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PhoneError {
    #[error("phone_number is required")]
    Missing,
    #[error("`{0}` is not a phone number; use the international format, e.g. +14155550100")]
    Unparseable(String),
    #[error("`{0}` is not a valid phone number for its country")]
    Invalid(String),
}

/// What kind of line a number is, as far as the numbering plan tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberKind {
    Mobile,
    FixedLine,
    FixedLineOrMobile,
    TollFree,
    PremiumRate,
    SharedCost,
    Voip,
    PersonalNumber,
    Pager,
    Uan,
    Voicemail,
    Unknown,
}

impl NumberKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NumberKind::Mobile => "mobile",
            NumberKind::FixedLine => "fixed_line",
            NumberKind::FixedLineOrMobile => "fixed_line_or_mobile",
            NumberKind::TollFree => "toll_free",
            NumberKind::PremiumRate => "premium_rate",
            NumberKind::SharedCost => "shared_cost",
            NumberKind::Voip => "voip",
            NumberKind::PersonalNumber => "personal_number",
            NumberKind::Pager => "pager",
            NumberKind::Uan => "uan",
            NumberKind::Voicemail => "voicemail",
            NumberKind::Unknown => "unknown",
        }
    }
}

/// A valid phone number in E.164 form (`+14155550100`).
#[derive(Clone, PartialEq, Eq)]
pub struct PhoneNumber {
    e164: String,
    country: Option<String>,
    kind: NumberKind,
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Numbers are personal data: debug output shows only the masked form.
        f.debug_struct("PhoneNumber").field("masked", &self.masked()).field("country", &self.country).finish()
    }
}

impl PhoneNumber {
    /// Parse an international number (leading `+` or `00`). Spaces, dots, dashes and brackets are allowed.
    pub fn parse(raw: &str) -> Result<Self, PhoneError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(PhoneError::Missing);
        }
        let normalized = match s.strip_prefix("00") {
            Some(rest) => format!("+{rest}"),
            None => s.to_owned(),
        };
        if !normalized.starts_with('+')
            || normalized.len() > 32
            || !normalized[1..].chars().all(|c| c.is_ascii_digit() || " .-()".contains(c))
        {
            return Err(PhoneError::Unparseable(raw.to_owned()));
        }
        // Only the digits go to the numbering-plan parser: it refuses some separators in places people type
        // them (`+1415-555-2671`, a trailing `-`), and in international format they carry no meaning.
        let digits: String = normalized.chars().filter(char::is_ascii_digit).collect();
        let parsed: Parsed =
            phonenumber::parse(None, format!("+{digits}")).map_err(|_| PhoneError::Unparseable(raw.to_owned()))?;
        if !phonenumber::is_valid(&parsed) {
            return Err(PhoneError::Invalid(raw.to_owned()));
        }
        let kind = match parsed.number_type(&DATABASE) {
            phonenumber::Type::Mobile => NumberKind::Mobile,
            phonenumber::Type::FixedLine => NumberKind::FixedLine,
            phonenumber::Type::FixedLineOrMobile => NumberKind::FixedLineOrMobile,
            phonenumber::Type::TollFree => NumberKind::TollFree,
            phonenumber::Type::PremiumRate => NumberKind::PremiumRate,
            phonenumber::Type::SharedCost => NumberKind::SharedCost,
            phonenumber::Type::Voip => NumberKind::Voip,
            phonenumber::Type::PersonalNumber => NumberKind::PersonalNumber,
            phonenumber::Type::Pager => NumberKind::Pager,
            phonenumber::Type::Uan => NumberKind::Uan,
            phonenumber::Type::Voicemail => NumberKind::Voicemail,
            _ => NumberKind::Unknown,
        };
        let country = parsed.country().id().map(|c| c.as_ref().to_owned());
        Ok(Self { e164: parsed.format().mode(Mode::E164).to_string(), country, kind })
    }

    /// Parse a number as typed by a person who picked `region` (ISO 3166 alpha-2) in a country list: national
    /// format (`06 12 34 56 78` with `FR`) or, when it starts with `+` or `00`, international format as [`parse`].
    ///
    /// [`parse`]: PhoneNumber::parse
    pub fn parse_in(raw: &str, region: &str) -> Result<Self, PhoneError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(PhoneError::Missing);
        }
        if s.starts_with('+') || s.starts_with("00") {
            return Self::parse(s);
        }
        let Some(cc) = calling_code(region) else { return Err(PhoneError::Unparseable(raw.to_owned())) };
        if s.len() > 32 || !s.chars().all(|c| c.is_ascii_digit() || " .-()".contains(c)) {
            return Err(PhoneError::Unparseable(raw.to_owned()));
        }
        let id: phonenumber::country::Id =
            region.to_ascii_uppercase().parse().map_err(|_| PhoneError::Unparseable(raw.to_owned()))?;
        let digits: String = s.chars().filter(char::is_ascii_digit).collect();
        let national = phonenumber::parse(Some(id), &digits)
            .ok()
            .filter(|p| p.code().value() == cc)
            .and_then(|p| Self::parse(&p.format().mode(Mode::E164).to_string()).ok());
        match national {
            Some(n) => Ok(n),
            // The numbering-plan parser takes a leading calling code for one even when it is an area code
            // (Brazil's 55: `(55) 3333-4444`); read the digits as the national number then.
            None => match Self::parse(&format!("+{cc}{digits}")) {
                Ok(n) => Ok(n),
                Err(PhoneError::Invalid(_)) => Err(PhoneError::Invalid(raw.to_owned())),
                Err(_) => Err(PhoneError::Unparseable(raw.to_owned())),
            },
        }
    }

    pub fn e164(&self) -> &str {
        &self.e164
    }
    /// ISO 3166 alpha-2 region, when the numbering plan names one.
    pub fn country(&self) -> Option<&str> {
        self.country.as_deref()
    }
    pub fn kind(&self) -> NumberKind {
        self.kind
    }
    /// Auth0's masking: `X` for every character but the last four (`XXXXXXXX0100`).
    pub fn masked(&self) -> String {
        mask(&self.e164)
    }
}

/// The international calling code of a region (ISO 3166 alpha-2: `FR` → 33), if the numbering plan knows it.
pub fn calling_code(region: &str) -> Option<u16> {
    let r = region.to_ascii_uppercase();
    if r.len() != 2 {
        return None;
    }
    DATABASE.by_id(r.as_str()).map(|m| m.country_code())
}

/// `X` for every character of `s` but the last four.
pub fn mask(s: &str) -> String {
    let n = s.chars().count();
    s.chars().enumerate().map(|(i, c)| if i + 4 < n { 'X' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_to_e164_with_country_and_kind() {
        let p = PhoneNumber::parse("+44 20 7183 8750").unwrap();
        assert_eq!(p.e164(), "+442071838750");
        assert_eq!(p.country(), Some("GB"));
        assert_eq!(p.kind(), NumberKind::FixedLine);
        let m = PhoneNumber::parse("0044 7911 123456").unwrap();
        assert_eq!(m.e164(), "+447911123456");
        assert_eq!(m.kind(), NumberKind::Mobile);
        assert_eq!(PhoneNumber::parse("+1 (415) 555-2671").unwrap().e164(), "+14155552671");
        // Separators right after the calling code's digits, or at the end (found by the property tests).
        assert_eq!(PhoneNumber::parse("+1415-555-2671").unwrap().e164(), "+14155552671");
        assert_eq!(PhoneNumber::parse("+447911-123456").unwrap().e164(), "+447911123456");
        assert_eq!(PhoneNumber::parse("+14155552671-").unwrap().e164(), "+14155552671");
        assert_eq!(PhoneNumber::parse("+44 (0) 20 7183 8750").unwrap().e164(), "+442071838750");
    }

    #[test]
    fn rejects_bad_numbers_with_reasons() {
        assert_eq!(PhoneNumber::parse(" "), Err(PhoneError::Missing));
        assert!(matches!(PhoneNumber::parse("4155552671"), Err(PhoneError::Unparseable(_))));
        assert!(matches!(PhoneNumber::parse("+1 415 abc"), Err(PhoneError::Unparseable(_))));
        assert!(matches!(PhoneNumber::parse("+44 20 7183"), Err(PhoneError::Invalid(_))));
        assert!(PhoneNumber::parse("+999 123456").is_err());
    }

    #[test]
    fn national_numbers_parse_with_the_picked_region() {
        assert_eq!(calling_code("FR"), Some(33));
        assert_eq!(calling_code("us"), Some(1));
        assert_eq!(calling_code("ZZ"), None);
        assert_eq!(calling_code("001"), None);
        assert_eq!(PhoneNumber::parse_in("06 12 34 56 78", "FR").unwrap().e164(), "+33612345678");
        assert_eq!(PhoneNumber::parse_in("(415) 555-2671", "US").unwrap().e164(), "+14155552671");
        // An international number wins over the picked region.
        assert_eq!(PhoneNumber::parse_in("+44 7911 123456", "FR").unwrap().e164(), "+447911123456");
        // An area code equal to the calling code (Brazil's 55), as the numbering plan formats it.
        assert_eq!(PhoneNumber::parse_in("(55) 3333-4444", "BR").unwrap().e164(), "+555533334444");
        assert_eq!(PhoneNumber::parse_in("(55) 90000-0000", "BR").unwrap().e164(), "+5555900000000");
        assert_eq!(PhoneNumber::parse_in("(11) 91234-5678", "BR").unwrap().e164(), "+5511912345678");
        assert_eq!(PhoneNumber::parse_in(" ", "FR"), Err(PhoneError::Missing));
        assert!(PhoneNumber::parse_in("0612", "FR").is_err());
        assert!(PhoneNumber::parse_in("06 12 34 56 78", "XX").is_err());
        assert!(PhoneNumber::parse_in("abc", "FR").is_err());
    }

    #[test]
    fn masks_all_but_last_four() {
        assert_eq!(mask("+14155552671"), "XXXXXXXX2671");
        assert_eq!(mask("123"), "123");
        let p = PhoneNumber::parse("+14155552671").unwrap();
        assert!(!format!("{p:?}").contains("415555"));
    }
}
