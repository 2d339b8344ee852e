//! Which providers a message goes through: the selected provider and its fallbacks per channel, per-country routes,
//! and the voice fallback of a failed SMS. Kept in the Guardian configuration (`routing`), written through the
//! Management API (`/api/v2/guardian/factors/phone/routing`, a Callsign extension) and checked on save.
//!
//! - A message's chain is the first route (in order) whose match fits its number (`country`: ISO 3166 alpha-2 of
//!   the number; `calling_code`: a prefix of the number's digits, e.g. `44` or `1416`) and that lists providers for
//!   its channel; else the selected provider followed by `fallbacks.<channel>`.
//! - Delivery walks the chain (`callsign_messaging::Router::send_chain`): a retryable failure, a failure of the
//!   provider itself (credentials, incomplete settings) or an open circuit breaker moves the message to the next
//!   provider; a refusal of the number ends it.
//! - `voice_fallback.enabled`: an SMS that ends failed (every provider tried and the retries spent, or a final
//!   refusal) is followed by one voice call with the same code, when voice is one of the message types. So is an
//!   SMS handed to a provider that sends delivery receipts, when its receipt says failed, or when no receipt says
//!   delivered within `voice_fallback.receipt_timeout_seconds` (when set): such an SMS leaves a standby call
//!   (`crate::delivery::arm_voice_fallback`) that a delivered receipt, or the code being used or expiring first,
//!   cancels. It is never chained (a voice call never falls back), and placed at most once.
use callsign_domain::Channel;
use callsign_domain::phone::PhoneNumber;
use serde::{Deserialize, Serialize};

/// The most country routes.
pub const MAX_ROUTES: usize = 100;
/// The most providers in one chain.
pub const MAX_CHAIN: usize = 5;

/// The routing settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Routing {
    /// Providers tried after the selected one, per channel.
    pub fallbacks: Chains,
    /// Country routes, first match wins.
    pub routes: Vec<CountryRoute>,
    pub voice_fallback: VoiceFallback,
}

/// A provider list per channel.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Chains {
    pub sms: Vec<String>,
    pub voice: Vec<String>,
}

impl Chains {
    pub fn get(&self, channel: Channel) -> &[String] {
        match channel {
            Channel::Sms => &self.sms,
            Channel::Voice => &self.voice,
        }
    }
}

/// A route: which numbers, and their chains.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CountryRoute {
    /// ISO 3166 alpha-2 (`GB`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Digits the number starts with, calling code first (`44`, `1416`); a leading `+` is accepted and dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calling_code: Option<String>,
    pub sms: Vec<String>,
    pub voice: Vec<String>,
}

impl CountryRoute {
    fn matches(&self, to: &PhoneNumber) -> bool {
        if let Some(c) = &self.country {
            return to.country().is_some_and(|n| n.eq_ignore_ascii_case(c));
        }
        if let Some(prefix) = &self.calling_code {
            return to.e164().trim_start_matches('+').starts_with(prefix.trim_start_matches('+'));
        }
        false
    }

    fn chain(&self, channel: Channel) -> &[String] {
        match channel {
            Channel::Sms => &self.sms,
            Channel::Voice => &self.voice,
        }
    }
}

/// The shortest and longest wait for a delivery receipt before the voice fallback calls.
pub const RECEIPT_TIMEOUT_SECONDS: std::ops::RangeInclusive<u32> = 10..=3_600;

/// The voice fallback of a failed SMS.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VoiceFallback {
    pub enabled: bool,
    /// Call when no receipt has said "delivered" this long after a provider with receipts took the SMS. `None`:
    /// only a failed send or a failed receipt calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt_timeout_seconds: Option<u32>,
}

impl Routing {
    /// Whether nothing is set (the document then does not carry `routing`).
    pub fn is_default(&self) -> bool {
        *self == Routing::default()
    }

    /// The chain of provider names for a message to `to` on `channel`, with `selected` the selected provider.
    pub fn chain_for(&self, selected: &str, to: &PhoneNumber, channel: Channel) -> Vec<String> {
        if let Some(r) = self.routes.iter().find(|r| r.matches(to) && !r.chain(channel).is_empty()) {
            return r.chain(channel).to_vec();
        }
        let mut out = vec![selected.to_owned()];
        for p in self.fallbacks.get(channel) {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        out
    }

    /// Every provider this routing names (to check each is configured).
    pub fn named(&self) -> Vec<(&str, Channel)> {
        let mut out = Vec::new();
        for c in Channel::ALL {
            out.extend(self.fallbacks.get(c).iter().map(|p| (p.as_str(), c)));
            for r in &self.routes {
                out.extend(r.chain(c).iter().map(|p| (p.as_str(), c)));
            }
        }
        out
    }

    /// Check the shape and the names: `known(name, channel)` says whether a provider exists and can send the
    /// channel (`Err` with why not). Returns the problem as `(property, message)`.
    pub fn validate(
        &mut self,
        selected: &str,
        known: impl Fn(&str, Channel) -> Result<(), String>,
    ) -> Result<(), (String, String)> {
        let check_chain = |prop: &str, chain: &[String], channel: Channel, allow_empty: bool| {
            if chain.is_empty() && !allow_empty {
                return Err((prop.to_owned(), "the chain is empty".to_owned()));
            }
            if chain.len() > MAX_CHAIN {
                return Err((prop.to_owned(), format!("a chain has at most {MAX_CHAIN} providers")));
            }
            for (i, p) in chain.iter().enumerate() {
                if chain[..i].contains(p) {
                    return Err((prop.to_owned(), format!("`{p}` is named twice: the chain would loop")));
                }
                known(p, channel).map_err(|m| (format!("{prop}[{i}]"), m))?;
            }
            Ok(())
        };
        for c in Channel::ALL {
            let prop = format!("fallbacks.{c}");
            let chain = self.fallbacks.get(c);
            if chain.iter().any(|p| p == selected) {
                return Err((
                    prop,
                    format!("`{selected}` is the selected provider, which is always tried first: the chain would loop"),
                ));
            }
            check_chain(&prop, chain, c, true)?;
        }
        if self.routes.len() > MAX_ROUTES {
            return Err(("routes".into(), format!("at most {MAX_ROUTES} routes")));
        }
        for (i, r) in self.routes.iter_mut().enumerate() {
            let prop = format!("routes[{i}]");
            match (&mut r.country, &mut r.calling_code) {
                (Some(c), None) => {
                    *c = c.trim().to_ascii_uppercase();
                    if c.len() != 2 || callsign_domain::phone::calling_code(c).is_none() {
                        return Err((format!("{prop}.country"), format!("`{c}` is not an ISO 3166 country code")));
                    }
                }
                (None, Some(cc)) => {
                    *cc = cc.trim().trim_start_matches('+').to_owned();
                    if cc.is_empty() || cc.len() > 6 || cc.starts_with('0') || !cc.bytes().all(|b| b.is_ascii_digit()) {
                        return Err((
                            format!("{prop}.calling_code"),
                            format!("`{cc}` is not a calling code (1 to 6 digits, not starting with 0)"),
                        ));
                    }
                }
                _ => return Err((prop, "a route matches either `country` or `calling_code`, exactly one".into())),
            }
            if r.sms.is_empty() && r.voice.is_empty() {
                return Err((prop, "the route names no provider for sms or voice: the chain is empty".into()));
            }
            for c in Channel::ALL {
                check_chain(&format!("{prop}.{c}"), r.chain(c), c, true)?;
            }
        }
        if let Some(t) = self.voice_fallback.receipt_timeout_seconds
            && !RECEIPT_TIMEOUT_SECONDS.contains(&t)
        {
            return Err((
                "voice_fallback.receipt_timeout_seconds".into(),
                format!(
                    "must be from {} to {} seconds",
                    RECEIPT_TIMEOUT_SECONDS.start(),
                    RECEIPT_TIMEOUT_SECONDS.end()
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s).unwrap()
    }

    fn known(p: &str, c: Channel) -> Result<(), String> {
        match (p, c) {
            ("sms-only", Channel::Voice) => Err("cannot send voice".into()),
            ("a" | "b" | "c" | "sms-only", _) => Ok(()),
            _ => Err(format!("`{p}` is not configured")),
        }
    }

    #[test]
    fn routes_win_then_the_selected_provider_and_its_fallbacks() {
        let r = Routing {
            fallbacks: Chains { sms: vec!["b".into(), "a".into()], voice: vec![] },
            routes: vec![
                CountryRoute { country: Some("GB".into()), sms: vec!["c".into(), "a".into()], ..Default::default() },
                CountryRoute { calling_code: Some("1416".into()), sms: vec!["b".into()], ..Default::default() },
            ],
            voice_fallback: VoiceFallback::default(),
        };
        assert_eq!(r.chain_for("a", &n("+447400123456"), Channel::Sms), ["c", "a"]);
        assert_eq!(r.chain_for("a", &n("+447400123456"), Channel::Voice), ["a"], "the route has no voice chain");
        assert_eq!(r.chain_for("a", &n("+14165550100"), Channel::Sms), ["b"]);
        assert_eq!(r.chain_for("a", &n("+14155552671"), Channel::Sms), ["a", "b"], "deduplicated");
    }

    #[test]
    fn validation_names_the_property() {
        let bad = |r: Routing| {
            let mut r = r;
            r.validate("a", known).unwrap_err()
        };
        let route = |country: &str, sms: &[&str]| CountryRoute {
            country: Some(country.into()),
            sms: sms.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        };
        let e = bad(Routing {
            fallbacks: Chains { sms: vec!["b".into(), "b".into()], voice: vec![] },
            ..Default::default()
        });
        assert_eq!(e.0, "fallbacks.sms");
        assert!(e.1.contains("loop"));
        let e = bad(Routing { fallbacks: Chains { sms: vec!["a".into()], voice: vec![] }, ..Default::default() });
        assert!(e.1.contains("selected provider"), "{e:?}");
        let e =
            bad(Routing { fallbacks: Chains { sms: vec![], voice: vec!["sms-only".into()] }, ..Default::default() });
        assert_eq!(e, ("fallbacks.voice[0]".into(), "cannot send voice".into()));
        let e = bad(Routing { routes: vec![route("GB", &["zzz"])], ..Default::default() });
        assert_eq!(e, ("routes[0].sms[0]".into(), "`zzz` is not configured".into()));
        let e = bad(Routing { routes: vec![route("XX", &["a"])], ..Default::default() });
        assert_eq!(e.0, "routes[0].country");
        let e = bad(Routing { routes: vec![route("GB", &[])], ..Default::default() });
        assert!(e.1.contains("empty"), "{e:?}");
        let e = bad(Routing {
            routes: vec![CountryRoute { sms: vec!["a".into()], ..Default::default() }],
            ..Default::default()
        });
        assert!(e.1.contains("exactly one"));
        let e = bad(Routing {
            routes: vec![CountryRoute { calling_code: Some("+0".into()), sms: vec!["a".into()], ..Default::default() }],
            ..Default::default()
        });
        assert_eq!(e.0, "routes[0].calling_code");
        for t in [0, 9, 3_601] {
            let e = bad(Routing {
                voice_fallback: VoiceFallback { enabled: true, receipt_timeout_seconds: Some(t) },
                ..Default::default()
            });
            assert_eq!(e.0, "voice_fallback.receipt_timeout_seconds", "{t}");
        }
        let mut ok = Routing {
            routes: vec![
                route("gb", &["b", "a"]),
                CountryRoute { calling_code: Some("+44".into()), sms: vec!["c".into()], ..Default::default() },
            ],
            ..Default::default()
        };
        ok.voice_fallback = VoiceFallback { enabled: true, receipt_timeout_seconds: Some(60) };
        ok.validate("a", known).unwrap();
        assert_eq!(ok.routes[0].country.as_deref(), Some("GB"), "normalised");
        assert_eq!(ok.routes[1].calling_code.as_deref(), Some("44"));
    }
}
