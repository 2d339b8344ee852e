//! Guardian (MFA) configuration: one settings document, read by the MFA flows and written by the Management API.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Core;
use crate::templates;

pub const SETTINGS_KEY: &str = "guardian";

/// Auth0's factor names, in Auth0's order.
pub const FACTORS: &[&str] =
    &["sms", "push-notification", "otp", "email", "duo", "webauthn-roaming", "webauthn-platform", "recovery-code"];
/// The factors Callsign implements; the rest are listed and cannot be enabled.
pub const SUPPORTED_FACTORS: &[&str] = &["sms", "recovery-code"];
pub const POLICIES: &[&str] = &["all-applications"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct GuardianConfig {
    pub factors: BTreeMap<String, bool>,
    /// `["sms"]`, `["voice"]` or `["sms","voice"]`.
    pub message_types: Vec<String>,
    /// The selected provider, by its registry name (`callsign_messaging::Registry`).
    pub provider: String,
    pub enrollment_message: String,
    pub verification_message: String,
    /// `[]` (never) or `["all-applications"]`.
    pub policies: Vec<String>,
    /// Each provider's settings, by registry name, as the provider declares them (`ProviderKind::fields`): only
    /// references to its secrets, which are sealed apart. Read and written through [`GuardianConfig::provider`].
    pub providers: BTreeMap<String, Map<String, Value>>,
    /// What an older document kept at the top level (a provider's settings before `providers` existed); moved into
    /// `providers` on load and never written back.
    #[serde(flatten, skip_serializing)]
    pub legacy: Map<String, Value>,
    /// The Unified Phone Experience's provider record (`/api/v2/branding/phone/providers`): only its identity.
    /// Everything else it shows is read from the settings above (see the server's Unified Phone Experience API).
    #[serde(default)]
    pub phone_provider: Option<PhoneProviderRecord>,
    /// Customised Unified Phone Experience templates by type (`/api/v2/branding/phone/templates`). For
    /// `otp_enroll` / `otp_verify` the text body is `enrollment_message` / `verification_message`, not kept here.
    #[serde(default)]
    pub phone_templates: BTreeMap<String, PhoneTemplateRecord>,
    /// Fallback chains, country routes and the voice fallback (`crate::routing`).
    #[serde(default, skip_serializing_if = "crate::routing::Routing::is_default")]
    pub routing: crate::routing::Routing,
    /// The stored document this was loaded from: [`GuardianConfig::save`] writes only over it (compare-and-set).
    #[serde(skip)]
    pub loaded: Option<serde_json::Value>,
}

/// Another writer changed the Guardian configuration between this request's read and its write; nothing was saved.
#[derive(Debug)]
pub struct ConfigConflict;

impl std::fmt::Display for ConfigConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the Guardian configuration changed while this request was being processed")
    }
}

impl std::error::Error for ConfigConflict {}

/// The one phone provider of the Unified Phone Experience API.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(default)]
pub struct PhoneProviderRecord {
    /// `pro_` + 22 alphanumerics.
    pub id: String,
    /// The provider's Unified Phone Experience name (`ProviderKind::upe_name`).
    pub name: String,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
}

impl PhoneProviderRecord {
    /// The Guardian provider this record is a view of (`None` for a name no registered provider has).
    pub fn guardian_provider(&self, registry: &callsign_messaging::Registry) -> Option<&'static str> {
        registry.by_upe_name(&self.name).ok().map(|k| k.name())
    }
}

/// A customised Unified Phone Experience template.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(default)]
pub struct PhoneTemplateRecord {
    /// `tem_` + 22 alphanumerics.
    pub id: String,
    pub disabled: bool,
    /// The sender for this message type (`""` = the provider's `from`).
    pub from: String,
    /// The text body, for the types other than `otp_enroll` / `otp_verify`.
    pub text: Option<String>,
    /// The voice body; `None` speaks the text body.
    pub voice: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Default for GuardianConfig {
    fn default() -> Self {
        Self {
            factors: BTreeMap::new(),
            // Auth0 answers `[]` on a new tenant and then behaves as SMS; Callsign says what it does.
            message_types: vec!["sms".into()],
            provider: callsign_messaging::Registry::builtin().default_provider().name().into(),
            enrollment_message: templates::DEFAULT_ENROLLMENT.into(),
            verification_message: templates::DEFAULT_VERIFICATION.into(),
            policies: Vec::new(),
            providers: BTreeMap::new(),
            legacy: Map::new(),
            phone_provider: None,
            phone_templates: BTreeMap::new(),
            routing: Default::default(),
            loaded: None,
        }
    }
}

/// Why [`GuardianConfig::update`] saved nothing.
#[derive(Debug)]
pub enum UpdateError<E> {
    /// The change refused itself (a validation error of the caller's).
    Rejected(E),
    /// Another writer changed a setting this change also changes ([`ConfigConflict`]).
    Conflict,
    Failed(crate::BoxError),
}

/// How many times [`GuardianConfig::update`] re-applies a change that lost a race to an unrelated write.
pub const UPDATE_ATTEMPTS: usize = 16;

/// The leaf paths (`factors.sms`, `message_types`, …; arrays count as leaves) where two JSON documents differ.
pub fn changed_paths(a: &Value, b: &Value) -> Vec<String> {
    fn walk(a: Option<&Value>, b: Option<&Value>, at: &str, out: &mut Vec<String>) {
        match (a, b) {
            (Some(Value::Object(x)), Some(Value::Object(y))) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let path = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
                    walk(x.get(k), y.get(k), &path, out);
                }
            }
            (x, y) if x != y => out.push(at.to_owned()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(Some(a), Some(b), "", &mut out);
    out
}

/// Whether two sets of changed paths touch the same setting (equal paths, or one inside the other).
pub fn overlap(mine: &[String], theirs: &[String]) -> bool {
    let within = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}.")) || b.starts_with(&format!("{a}."));
    mine.iter().any(|m| theirs.iter().any(|t| within(m, t)))
}

impl GuardianConfig {
    /// Load, apply `change`, save, and when another writer saved in between, apply the change again to what that
    /// writer left, as long as the two changes touch different settings (two factors, a template and a policy…).
    /// A concurrent change of the same setting is [`UpdateError::Conflict`], and nothing is saved. `change` must
    /// depend only on the configuration it is given (it may run more than once).
    pub async fn update<E>(
        app: &Core,
        mut change: impl FnMut(&mut GuardianConfig) -> Result<(), E>,
    ) -> Result<GuardianConfig, UpdateError<E>> {
        for _ in 0..UPDATE_ATTEMPTS {
            let mut cfg = GuardianConfig::load_for_update(app).await.map_err(UpdateError::Failed)?;
            let json = |c: &GuardianConfig| serde_json::to_value(c).map_err(|e| UpdateError::Failed(e.into()));
            let base = json(&cfg)?;
            change(&mut cfg).map_err(UpdateError::Rejected)?;
            match cfg.save(app).await {
                Ok(()) => return Ok(cfg),
                Err(e) if e.is::<ConfigConflict>() => {
                    let mine = changed_paths(&base, &json(&cfg)?);
                    let fresh = GuardianConfig::load_for_update(app).await.map_err(UpdateError::Failed)?;
                    let theirs = changed_paths(&base, &json(&fresh)?);
                    if overlap(&mine, &theirs) {
                        return Err(UpdateError::Conflict);
                    }
                }
                Err(e) => return Err(UpdateError::Failed(e)),
            }
        }
        Err(UpdateError::Conflict)
    }

    /// The configuration as this node has it in memory ([`crate::config_cache`]): its own writes at once, other
    /// nodes' within a quarter of a second. For a read that will be written back, [`GuardianConfig::load_for_update`].
    pub async fn load(app: &Core) -> Result<GuardianConfig, crate::BoxError> {
        Self::from_stored(app, app.cache.setting(app.store.as_ref(), SETTINGS_KEY).await?)
    }

    /// The configuration as stored now: the base of a compare-and-set ([`GuardianConfig::save`]).
    pub async fn load_for_update(app: &Core) -> Result<GuardianConfig, crate::BoxError> {
        Self::from_stored(app, app.store.get_setting(SETTINGS_KEY).await?)
    }

    fn from_stored(app: &Core, stored: Option<Value>) -> Result<GuardianConfig, crate::BoxError> {
        Ok(match stored {
            Some(v) => {
                let mut cfg: GuardianConfig = serde_json::from_value(v.clone())?;
                cfg.adopt_legacy(&app.providers);
                cfg.loaded = Some(v);
                cfg
            }
            None => GuardianConfig::default(),
        })
    }

    /// Move settings an older document kept at the top level (`twilio`, `webhook`, … as each provider declares,
    /// `ProviderKind::legacy_settings_key`) under `providers`. A provider's settings already under `providers` win.
    pub fn adopt_legacy(&mut self, registry: &callsign_messaging::Registry) {
        for kind in registry.kinds() {
            if let Some(key) = kind.legacy_settings_key()
                && let Some(Value::Object(values)) = self.legacy.remove(key)
            {
                self.providers.entry(kind.name().to_owned()).or_insert(values);
            }
        }
        self.legacy.clear();
    }

    /// The stored settings of provider `name` (empty when it has none).
    pub fn provider(&self, name: &str) -> Map<String, Value> {
        self.providers.get(name).cloned().unwrap_or_default()
    }

    /// The selected message types as channels (unknown ones left out).
    pub fn channels(&self) -> Vec<callsign_domain::Channel> {
        self.message_types.iter().filter_map(|m| m.parse().ok()).collect()
    }

    /// Write the configuration over the document it was loaded from. When another request (or node) changed it in
    /// between, nothing is written and the error is [`ConfigConflict`]: no change is ever silently lost.
    pub async fn save(&mut self, app: &Core) -> Result<(), crate::BoxError> {
        let doc = serde_json::to_value(&*self)?;
        if !app.store.replace_setting(SETTINGS_KEY, self.loaded.as_ref(), &doc, app.clock.now()).await? {
            return Err(Box::new(ConfigConflict));
        }
        self.loaded = Some(doc);
        Ok(())
    }

    pub fn factor_enabled(&self, name: &str) -> bool {
        self.factors.get(name).copied().unwrap_or(false)
    }

    /// The phone factor is on (`PUT /guardian/factors/sms {"enabled":true}`).
    pub fn phone_enabled(&self) -> bool {
        self.factor_enabled("sms")
    }

    pub fn channel_enabled(&self, channel: &str) -> bool {
        self.message_types.iter().any(|m| m == channel)
    }

    /// The template and sender for a one-time-code message: the Guardian text (or the template type's voice body
    /// for voice, when one is set), or the built-in text when the Unified Phone Experience template is disabled.
    pub fn code_message(&self, enrolling: bool, channel: &str) -> (String, Option<String>) {
        let kind = if enrolling { "otp_enroll" } else { "otp_verify" };
        let guardian = if enrolling { &self.enrollment_message } else { &self.verification_message };
        match self.phone_templates.get(kind) {
            Some(t) if t.disabled => {
                let (text, _) = templates::upe_default(kind).unwrap_or((templates::DEFAULT_VERIFICATION, None));
                (text.to_owned(), None)
            }
            Some(t) => {
                let body = match (&t.voice, channel) {
                    (Some(v), "voice") => v.clone(),
                    _ => guardian.clone(),
                };
                (body, Some(t.from.clone()).filter(|f| !f.is_empty()))
            }
            None => (guardian.clone(), None),
        }
    }

    /// Whether a login must pass a second factor: a policy that says so and a factor that can do it.
    pub fn mfa_required(&self) -> bool {
        self.policies.iter().any(|p| p == "all-applications") && self.phone_enabled()
    }
}

#[cfg(test)]
mod update_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changed_paths_name_the_leaves_that_differ() {
        let a = json!({"factors": {"sms": false, "email": false}, "message_types": ["sms"], "provider": "auth0"});
        let b =
            json!({"factors": {"sms": true, "email": false}, "message_types": ["sms", "voice"], "provider": "auth0"});
        assert_eq!(changed_paths(&a, &b), vec!["factors.sms".to_owned(), "message_types".to_owned()]);
        assert_eq!(changed_paths(&a, &a), Vec::<String>::new());
        let c = json!({"factors": {"sms": false, "email": false, "push": true}, "message_types": ["sms"], "provider": "auth0"});
        assert_eq!(changed_paths(&a, &c), vec!["factors.push".to_owned()]);
    }

    #[test]
    fn changes_overlap_only_on_the_same_setting() {
        let p = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(!overlap(&p(&["factors.sms"]), &p(&["factors.email"])));
        assert!(overlap(&p(&["factors.sms"]), &p(&["factors.sms"])));
        assert!(overlap(&p(&["providers.twilio"]), &p(&["providers.twilio.sid"])));
        assert!(!overlap(&p(&["providers.twilio"]), &p(&["providers.twilio2"])));
        assert!(!overlap(&p(&[]), &p(&["factors.sms"])));
    }
}
