//! The phone destination policy: which numbers Callsign sends to, per channel. Two defences against toll fraud
//! (docs/FRAUD.md):
//!
//! - **Country permissions**: per channel, `mode` `all` (the default: every country), `allow` (only the listed
//!   countries and calling-code prefixes) or `deny` (all but those). A number matches a list when its country
//!   (ISO 3166 alpha-2, from the numbering plan) is in `countries`, or its E.164 digits start with one of
//!   `calling_codes` (`+1416`: Toronto; `+882`: a non-geographic range with no country).
//! - **Number types**: per channel, which kinds of line (from the `phonenumber` metadata) may receive a message.
//!   Premium-rate, shared-cost, UAN, pager and personal numbers are refused unless switched on explicitly; VoIP and
//!   landline (`fixed_line`) are allowed by default and can be switched off. Mobile, fixed-line-or-mobile,
//!   toll-free and numbers the plan cannot type are always allowed.
//!
//! One settings document (`phone_destination_policy`), changed with [`crate::documents::modify`]. The check is
//! [`DestinationPolicy::check`], a pure function: it runs when a phone is enrolled and again before every send.
use callsign_domain::Channel;
use callsign_domain::phone::{NumberKind, PhoneNumber, calling_code};
use serde::{Deserialize, Serialize};

use crate::Core;

pub const SETTINGS_KEY: &str = "phone_destination_policy";
/// The most entries in one `countries` list (there are about 250 regions).
pub const MAX_COUNTRIES: usize = 300;
/// The most entries in one `calling_codes` list.
pub const MAX_CALLING_CODES: usize = 100;
/// `reason` of a refusal by country (or calling code).
pub const DESTINATION_NOT_ALLOWED: &str = "destination_not_allowed";
/// `reason` of a refusal by number type.
pub const NUMBER_TYPE_NOT_ALLOWED: &str = "number_type_not_allowed";

/// The whole policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DestinationPolicy {
    pub sms: Countries,
    pub voice: Countries,
    pub number_types: NumberTypes,
}

/// How a channel's country list is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every country (the lists must be empty).
    #[default]
    All,
    /// Only numbers that match the lists.
    Allow,
    /// Every number but those that match the lists.
    Deny,
}

/// A channel's country permissions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Countries {
    pub mode: Mode,
    /// ISO 3166 alpha-2 codes, upper case.
    pub countries: Vec<String>,
    /// Prefixes of the E.164 number, calling code first, with `+` (`+44`, `+1416`).
    pub calling_codes: Vec<String>,
}

impl Countries {
    fn matches(&self, to: &PhoneNumber) -> bool {
        to.country().is_some_and(|c| self.countries.iter().any(|l| l.eq_ignore_ascii_case(c)))
            || self.calling_codes.iter().any(|p| to.e164().starts_with(p.as_str()))
    }

    fn allows(&self, to: &PhoneNumber) -> bool {
        match self.mode {
            Mode::All => true,
            Mode::Allow => self.matches(to),
            Mode::Deny => !self.matches(to),
        }
    }
}

/// Which kinds of line each channel may reach.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NumberTypes {
    pub sms: TypeSwitches,
    pub voice: TypeSwitches,
}

/// One channel's switches. `true` allows the type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TypeSwitches {
    pub fixed_line: bool,
    pub voip: bool,
    pub premium_rate: bool,
    pub shared_cost: bool,
    pub uan: bool,
    pub pager: bool,
    pub personal_number: bool,
}

impl Default for TypeSwitches {
    fn default() -> Self {
        Self {
            fixed_line: true,
            voip: true,
            premium_rate: false,
            shared_cost: false,
            uan: false,
            pager: false,
            personal_number: false,
        }
    }
}

impl TypeSwitches {
    /// Whether a number of `kind` may get a message.
    pub fn allows(&self, kind: NumberKind) -> bool {
        match kind {
            NumberKind::FixedLine => self.fixed_line,
            NumberKind::Voip => self.voip,
            NumberKind::PremiumRate => self.premium_rate,
            NumberKind::SharedCost => self.shared_cost,
            NumberKind::Uan => self.uan,
            NumberKind::Pager => self.pager,
            NumberKind::PersonalNumber => self.personal_number,
            NumberKind::Mobile
            | NumberKind::FixedLineOrMobile
            | NumberKind::TollFree
            | NumberKind::Voicemail
            | NumberKind::Unknown => true,
        }
    }
}

impl NumberTypes {
    pub fn get(&self, channel: Channel) -> &TypeSwitches {
        match channel {
            Channel::Sms => &self.sms,
            Channel::Voice => &self.voice,
        }
    }
}

/// Why a number may not get a message on a channel. Carries no part of the number but its country and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// [`DESTINATION_NOT_ALLOWED`] or [`NUMBER_TYPE_NOT_ALLOWED`].
    pub reason: &'static str,
    pub channel: Channel,
    pub country: Option<String>,
    pub number_type: &'static str,
}

impl Refused {
    /// A sentence for the error and the event.
    pub fn message(&self) -> String {
        let country = self.country.as_deref().unwrap_or("a number with no country");
        if self.reason == NUMBER_TYPE_NOT_ALLOWED {
            format!(
                "the destination is not allowed: {} numbers may not receive {} messages",
                self.number_type, self.channel
            )
        } else {
            format!(
                "the destination is not allowed: {} messages to {country} are refused by the destination policy",
                self.channel
            )
        }
    }

    /// The event details (`reason`, `country`, `number_type`, `channel`).
    pub fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "reason": self.reason,
            "country": self.country,
            "number_type": self.number_type,
            "channel": self.channel,
        })
    }
}

impl DestinationPolicy {
    pub fn countries(&self, channel: Channel) -> &Countries {
        match channel {
            Channel::Sms => &self.sms,
            Channel::Voice => &self.voice,
        }
    }

    fn countries_mut(&mut self, channel: Channel) -> &mut Countries {
        match channel {
            Channel::Sms => &mut self.sms,
            Channel::Voice => &mut self.voice,
        }
    }

    /// May `to` get a message on `channel`? The country first, then the number type.
    pub fn check(&self, to: &PhoneNumber, channel: Channel) -> Result<(), Refused> {
        let refused = |reason| Refused {
            reason,
            channel,
            country: to.country().map(str::to_owned),
            number_type: to.kind().as_str(),
        };
        if !self.countries(channel).allows(to) {
            return Err(refused(DESTINATION_NOT_ALLOWED));
        }
        if !self.number_types.get(channel).allows(to.kind()) {
            return Err(refused(NUMBER_TYPE_NOT_ALLOWED));
        }
        Ok(())
    }

    /// Whether a channel lets every country through (the dashboard recommends a list then).
    pub fn all_countries(&self, channel: Channel) -> bool {
        self.countries(channel).mode == Mode::All
    }

    /// Check and normalise (upper-case countries, `+` on calling codes). The problem comes back as
    /// `(property, message)`.
    pub fn validate(&mut self) -> Result<(), (String, String)> {
        for c in Channel::ALL {
            let list = self.countries_mut(c);
            let prop = |f: &str| format!("{c}.{f}");
            if list.countries.len() > MAX_COUNTRIES {
                return Err((prop("countries"), format!("at most {MAX_COUNTRIES} countries")));
            }
            if list.calling_codes.len() > MAX_CALLING_CODES {
                return Err((prop("calling_codes"), format!("at most {MAX_CALLING_CODES} calling codes")));
            }
            for (i, code) in list.countries.iter_mut().enumerate() {
                *code = code.trim().to_ascii_uppercase();
                if code.len() != 2 || calling_code(code).is_none() {
                    return Err((format!("{c}.countries[{i}]"), format!("`{code}` is not an ISO 3166 country code")));
                }
            }
            for (i, cc) in list.calling_codes.iter_mut().enumerate() {
                let digits = cc.trim().strip_prefix('+').unwrap_or(cc.trim());
                if digits.is_empty()
                    || digits.len() > 6
                    || digits.starts_with('0')
                    || !digits.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err((
                        format!("{c}.calling_codes[{i}]"),
                        format!("`{cc}` is not a calling-code prefix (`+` and 1 to 6 digits, not starting with 0)"),
                    ));
                }
                *cc = format!("+{digits}");
            }
            for (name, items) in [("countries", &list.countries), ("calling_codes", &list.calling_codes)] {
                for (i, v) in items.iter().enumerate() {
                    if items[..i].contains(v) {
                        return Err((format!("{c}.{name}[{i}]"), format!("`{v}` is listed twice")));
                    }
                }
            }
            if list.mode == Mode::All && !(list.countries.is_empty() && list.calling_codes.is_empty()) {
                return Err((
                    prop("mode"),
                    "mode `all` allows every country and takes no list; use `allow` or `deny` with a list".into(),
                ));
            }
            if list.mode == Mode::Allow && list.countries.is_empty() && list.calling_codes.is_empty() {
                return Err((prop("countries"), "mode `allow` with empty lists would refuse every number".into()));
            }
        }
        Ok(())
    }
}

/// The stored policy (the defaults when none was saved).
pub async fn load(app: &Core) -> crate::BoxResult<DestinationPolicy> {
    crate::documents::load(app, SETTINGS_KEY).await
}

/// Change the policy without losing a concurrent write ([`crate::documents::modify`]).
pub async fn modify<E>(
    app: &Core,
    mut change: impl FnMut(&mut DestinationPolicy) -> Result<(), E>,
) -> crate::BoxResult<Result<DestinationPolicy, E>> {
    crate::documents::modify(app, SETTINGS_KEY, "phone destination policy", DestinationPolicy::default, |p| {
        change(p)?;
        Ok(p.clone())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s).unwrap()
    }

    const GB_MOBILE: &str = "+447400123456";
    const US: &str = "+14155552671";
    const TORONTO: &str = "+14165550100";
    /// UK premium rate (09): the numbering plan's example.
    const GB_PREMIUM: &str = "+449098765432";

    #[test]
    fn the_default_allows_every_country_and_refuses_premium_rate() {
        let p = DestinationPolicy::default();
        for c in Channel::ALL {
            assert!(p.all_countries(c));
            p.check(&n(GB_MOBILE), c).unwrap();
            p.check(&n(US), c).unwrap();
            p.check(&n("+442071838750"), c).unwrap();
            let e = p.check(&n(GB_PREMIUM), c).unwrap_err();
            assert_eq!(e.reason, NUMBER_TYPE_NOT_ALLOWED);
            assert_eq!(e.number_type, "premium_rate");
            assert_eq!(e.country.as_deref(), Some("GB"));
            assert!(e.message().contains("premium_rate"), "{}", e.message());
            assert!(!e.message().contains("9098765432"));
        }
    }

    #[test]
    fn allow_and_deny_lists_by_country_and_prefix() {
        let mut p = DestinationPolicy {
            sms: Countries { mode: Mode::Allow, countries: vec!["gb".into()], calling_codes: vec!["1416".into()] },
            voice: Countries { mode: Mode::Deny, countries: vec!["GB".into()], calling_codes: vec![] },
            ..Default::default()
        };
        p.validate().unwrap();
        assert_eq!(p.sms.countries, ["GB"]);
        assert_eq!(p.sms.calling_codes, ["+1416"]);
        p.check(&n(GB_MOBILE), Channel::Sms).unwrap();
        p.check(&n(TORONTO), Channel::Sms).unwrap();
        let e = p.check(&n(US), Channel::Sms).unwrap_err();
        assert_eq!((e.reason, e.country.as_deref()), (DESTINATION_NOT_ALLOWED, Some("US")));
        assert!(e.message().contains("US"));
        let e = p.check(&n(GB_MOBILE), Channel::Voice).unwrap_err();
        assert_eq!(e.reason, DESTINATION_NOT_ALLOWED);
        p.check(&n(US), Channel::Voice).unwrap();
        assert_eq!(e.details()["reason"], "destination_not_allowed");
        assert_eq!(e.details()["country"], "GB");
    }

    #[test]
    fn number_type_switches() {
        let mut p = DestinationPolicy::default();
        p.number_types.sms.fixed_line = false;
        p.number_types.voice.premium_rate = true;
        let e = p.check(&n("+442071838750"), Channel::Sms).unwrap_err();
        assert_eq!((e.reason, e.number_type), (NUMBER_TYPE_NOT_ALLOWED, "fixed_line"));
        p.check(&n("+442071838750"), Channel::Voice).unwrap();
        p.check(&n(GB_PREMIUM), Channel::Voice).unwrap();
        p.check(&n(US), Channel::Sms).unwrap();
        assert!(!TypeSwitches::default().allows(NumberKind::SharedCost));
        assert!(!TypeSwitches::default().allows(NumberKind::Uan));
        assert!(!TypeSwitches::default().allows(NumberKind::Pager));
        assert!(!TypeSwitches::default().allows(NumberKind::PersonalNumber));
        assert!(TypeSwitches::default().allows(NumberKind::Voip));
        assert!(TypeSwitches::default().allows(NumberKind::Mobile));
    }

    #[test]
    fn validation_names_the_field() {
        let bad = |p: DestinationPolicy| {
            let mut p = p;
            p.validate().unwrap_err()
        };
        let list = |mode, countries: &[&str], codes: &[&str]| Countries {
            mode,
            countries: countries.iter().map(|s| (*s).to_owned()).collect(),
            calling_codes: codes.iter().map(|s| (*s).to_owned()).collect(),
        };
        let e = bad(DestinationPolicy { sms: list(Mode::Allow, &["GB", "XX"], &[]), ..Default::default() });
        assert_eq!(e.0, "sms.countries[1]");
        let e = bad(DestinationPolicy { voice: list(Mode::Deny, &["GB", "gb"], &[]), ..Default::default() });
        assert_eq!(e.0, "voice.countries[1]");
        assert!(e.1.contains("twice"));
        let e = bad(DestinationPolicy { sms: list(Mode::Deny, &[], &["+0"]), ..Default::default() });
        assert_eq!(e.0, "sms.calling_codes[0]");
        let e = bad(DestinationPolicy { sms: list(Mode::Deny, &[], &["+44a"]), ..Default::default() });
        assert_eq!(e.0, "sms.calling_codes[0]");
        let e = bad(DestinationPolicy { sms: list(Mode::Deny, &[], &["1234567"]), ..Default::default() });
        assert_eq!(e.0, "sms.calling_codes[0]");
        let e = bad(DestinationPolicy { sms: list(Mode::All, &["GB"], &[]), ..Default::default() });
        assert_eq!(e.0, "sms.mode");
        let e = bad(DestinationPolicy { voice: list(Mode::Allow, &[], &[]), ..Default::default() });
        assert_eq!(e.0, "voice.countries");
        let many: Vec<String> = (0..=MAX_CALLING_CODES).map(|i| format!("+{}", i + 1)).collect();
        let e = bad(DestinationPolicy {
            sms: Countries { mode: Mode::Deny, countries: vec![], calling_codes: many },
            ..Default::default()
        });
        assert_eq!(e.0, "sms.calling_codes");
        DestinationPolicy::default().validate().unwrap();
    }

    #[test]
    fn unknown_properties_are_refused() {
        assert!(serde_json::from_value::<DestinationPolicy>(serde_json::json!({"sms": {"modes": "all"}})).is_err());
        assert!(serde_json::from_value::<DestinationPolicy>(serde_json::json!({"sms": {"mode": "some"}})).is_err());
        assert!(
            serde_json::from_value::<DestinationPolicy>(serde_json::json!({"number_types": {"sms": {"mobile": true}}}))
                .is_err()
        );
        let p: DestinationPolicy =
            serde_json::from_value(serde_json::json!({"number_types": {"sms": {"voip": false}}})).unwrap();
        assert!(!p.number_types.sms.voip);
        assert!(p.number_types.sms.fixed_line, "unset switches keep their defaults");
    }
}
