//! The provider kinds this build knows. Adding a provider is adding its module under [`crate::providers`] and one
//! line in [`Registry::builtin`].
use crate::kind::ProviderKind;
use crate::providers::{clicksend, dev, esendex, infobip, mitto, sns, telesign, twilio, webhook};

/// A provider name nobody knows. Never a silent fallback: the caller fails the send or refuses the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown phone provider `{name}`; the providers are {known}")]
pub struct UnknownProvider {
    /// The name asked for.
    pub name: String,
    /// The known names, comma-separated.
    pub known: String,
}

/// The provider kinds, in the order the APIs list them.
pub struct Registry {
    kinds: Vec<&'static dyn ProviderKind>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Registry {
    /// The built-in kinds: the development provider (first: the default), Twilio, the custom webhook, then the
    /// integrated providers in alphabetical order.
    pub fn builtin() -> Self {
        Self {
            kinds: vec![
                &dev::DevKind,
                &twilio::TwilioKind,
                &webhook::WebhookKind,
                &clicksend::ClicksendKind,
                &esendex::EsendexKind,
                &infobip::InfobipKind,
                &mitto::MittoKind,
                &sns::SnsKind,
                &telesign::TelesignKind,
            ],
        }
    }

    /// A registry of exactly these kinds (tests, builds with other providers); the first is the default.
    /// `None` when `kinds` is empty, two share a name or a form id, or a form id is not letters, digits and `_`.
    pub fn new(kinds: Vec<&'static dyn ProviderKind>) -> Option<Self> {
        let unique = |mut v: Vec<&str>| {
            v.sort_unstable();
            v.windows(2).all(|w| w[0] != w[1])
        };
        let names_ok = unique(kinds.iter().map(|k| k.name()).collect());
        let forms_ok = unique(kinds.iter().map(|k| k.form_id()).collect())
            && kinds
                .iter()
                .all(|k| !k.form_id().is_empty() && k.form_id().chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        (!kinds.is_empty() && names_ok && forms_ok).then_some(Self { kinds })
    }

    fn unknown(&self, name: &str) -> UnknownProvider {
        UnknownProvider { name: name.to_owned(), known: self.names().join(", ") }
    }

    /// The kind with this Guardian name.
    pub fn get(&self, name: &str) -> Result<&'static dyn ProviderKind, UnknownProvider> {
        self.kinds.iter().copied().find(|k| k.name() == name).ok_or_else(|| self.unknown(name))
    }

    /// The kind with this Unified Phone Experience name (`twilio`, `custom`).
    pub fn by_upe_name(&self, upe_name: &str) -> Result<&'static dyn ProviderKind, UnknownProvider> {
        self.kinds
            .iter()
            .copied()
            .find(|k| k.upe_name() == Some(upe_name))
            .ok_or_else(|| UnknownProvider { name: upe_name.to_owned(), known: self.upe_names().join(", ") })
    }

    /// Every Guardian name, in order (`auth0`, `twilio`, `phone-message-hook`).
    pub fn names(&self) -> Vec<&'static str> {
        self.kinds.iter().map(|k| k.name()).collect()
    }

    /// Every Unified Phone Experience name, in order (`twilio`, `custom`).
    pub fn upe_names(&self) -> Vec<&'static str> {
        self.kinds.iter().filter_map(|k| k.upe_name()).collect()
    }

    /// Every kind, in order.
    pub fn kinds(&self) -> impl Iterator<Item = &'static dyn ProviderKind> + '_ {
        self.kinds.iter().copied()
    }

    /// The provider a new installation uses (the development provider, `auth0`), and the one a disabled or
    /// deleted UPE provider falls back to.
    pub fn default_provider(&self) -> &'static dyn ProviderKind {
        self.kinds[0]
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_kinds_pass_the_registry_checks() {
        let builtin = Registry::builtin();
        assert!(Registry::new(builtin.kinds().collect()).is_some());
        assert!(Registry::new(vec![&dev::DevKind, &dev::DevKind]).is_none(), "two kinds share a name");
        assert!(Registry::new(vec![]).is_none());
    }

    struct BadForm;
    impl ProviderKind for BadForm {
        fn name(&self) -> &'static str {
            "bad-form"
        }
        fn label(&self) -> &'static str {
            "Bad"
        }
        fn form_id(&self) -> &'static str {
            "bad-form"
        }
        fn upe_name(&self) -> Option<&'static str> {
            None
        }
        fn capabilities(&self) -> crate::Capabilities {
            dev::DevKind.capabilities()
        }
        fn fields(&self) -> &'static [crate::FieldSpec] {
            &[]
        }
        fn check(
            &self,
            _: &crate::ProviderSettings,
            _: &[callsign_domain::Channel],
        ) -> Result<(), Vec<crate::FieldProblem>> {
            Ok(())
        }
        fn build(
            &self,
            s: crate::ProviderSettings,
            d: &crate::Deps,
        ) -> Result<std::sync::Arc<dyn crate::Provider>, crate::BuildError> {
            dev::DevKind.build(s, d)
        }
    }

    #[test]
    fn a_form_id_that_is_not_an_identifier_is_refused() {
        assert!(Registry::new(vec![&dev::DevKind, &BadForm]).is_none());
    }
}
