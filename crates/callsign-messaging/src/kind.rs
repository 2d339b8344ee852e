//! What a provider is before it is built: its names, its declared settings and their checks, and how it is built
//! from them ([`ProviderKind`]); the shared dependencies it is built with ([`Deps`]).
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use callsign_domain::{Channel, Clock, RandomSource, Timestamp};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::provider::{Capabilities, Provider};

/// A provider kind: one per provider module, listed in the [`crate::Registry`]. It owns its settings schema
/// ([`ProviderKind::fields`]), their validation, its secrets and its build; nothing outside its module and the
/// registry names it.
pub trait ProviderKind: Send + Sync {
    /// The Guardian name (`PUT /guardian/factors/phone/selected-provider`): `auth0` (the development provider),
    /// `twilio`, `phone-message-hook`.
    fn name(&self) -> &'static str;

    /// Its name for people, as a form's choice (the dashboard): `Twilio`, `Custom (signed webhook)`.
    fn label(&self) -> &'static str;

    /// Its name inside a sentence ("Provider saved: {short_label}."). Default: [`ProviderKind::label`].
    fn short_label(&self) -> &'static str {
        self.label()
    }

    /// One sentence on what it does, shown under its choice. Default: none.
    fn description(&self) -> &'static str {
        ""
    }

    /// The prefix of its settings' form fields and ids (`{form_id}_{field}`, `p-{form_id}`): letters, digits and
    /// `_` only. Default: [`ProviderKind::name`].
    fn form_id(&self) -> &'static str {
        self.name()
    }

    /// The Unified Phone Experience name (`/branding/phone/providers` `name`): `twilio`, `custom`; `None` when the
    /// provider cannot be a UPE provider (the development provider).
    fn upe_name(&self) -> Option<&'static str>;

    /// What a built provider of this kind can do.
    fn capabilities(&self) -> Capabilities;

    /// The declared settings, in form order: what a generic form shows and [`ProviderKind::check`] checks.
    fn fields(&self) -> &'static [FieldSpec];

    /// Whether `settings` are complete and valid for sending on every one of `channels`: what a send checks
    /// before it goes out (a failing check fails the send, final, naming what is missing), and what the dashboard
    /// shows as "incomplete". The Management API saves incomplete settings (Auth0 does); see
    /// [`ProviderKind::check_selection`] for what it refuses.
    fn check(&self, settings: &ProviderSettings, channels: &[Channel]) -> Result<(), Vec<FieldProblem>>;

    /// What must hold for the provider to be (or stay) selected with `channels` on; the Management API refuses a
    /// change that breaks it (400 with the problem's text). Default: nothing.
    fn check_selection(&self, settings: &ProviderSettings, channels: &[Channel]) -> Result<(), FieldProblem> {
        let _ = (settings, channels);
        Ok(())
    }

    /// The provider, from its settings and the shared dependencies. No I/O: cheap enough to build per send, or
    /// to build once and again when the configuration changes. Incomplete settings still build (each send then
    /// fails, final, naming what is missing for its channel, see [`ProviderKind::check`]); settings of the wrong
    /// shape do not.
    fn build(&self, settings: ProviderSettings, deps: &Deps) -> Result<Arc<dyn Provider>, BuildError>;

    /// The Unified Phone Experience `configuration` members this provider shows (besides `delivery_methods`,
    /// which are the phone factor's channels and the caller's). Default: none.
    fn upe_configuration(&self, values: &Map<String, Value>) -> Map<String, Value> {
        let _ = values;
        Map::new()
    }

    /// Apply a Unified Phone Experience `configuration` object (already checked to be an object with valid
    /// `delivery_methods`, which the caller applies). It replaces the provider's UPE-visible settings as a whole.
    /// Default: only `delivery_methods` is allowed.
    fn apply_upe_configuration(
        &self,
        conf: &Map<String, Value>,
        values: &mut Map<String, Value>,
    ) -> Result<(), FieldProblem> {
        let _ = values;
        only_keys("configuration", conf, &["delivery_methods"])
    }

    /// What deleting the Unified Phone Experience provider record forgets: clears the settings its
    /// `configuration` showed in `values`, and returns the secret fields the caller deletes with it. Default:
    /// nothing (the custom provider keeps its URL and signing secrets, which have their own endpoints).
    fn forget_upe(&self, values: &mut Map<String, Value>) -> &'static [&'static str] {
        let _ = values;
        &[]
    }

    /// The top-level key of the Guardian configuration document where older versions kept this provider's
    /// settings (they are moved under `providers.<name>` when the document is read). Default: none.
    fn legacy_settings_key(&self) -> Option<&'static str> {
        None
    }

    /// The top-level server configuration key where older versions set this provider's API base URL (now
    /// `[providers.<name>] base_url`, which wins). Default: none.
    fn legacy_base_url_key(&self) -> Option<&'static str> {
        None
    }

    /// The sealed secrets a build of these settings needs: `(key in ProviderSettings::secrets, sealed secret
    /// name)`. The caller opens each and hands it over decrypted; one that cannot be opened is left out. Default:
    /// none.
    fn sealed_secrets(&self, values: &Map<String, Value>) -> Vec<(String, String)> {
        let _ = values;
        Vec::new()
    }

    /// A new value of secret field `field` is about to be sealed: pick the sealed secret name it goes under and
    /// record it in `values` (the old one, which [`ProviderKind::sealed_secrets`] no longer lists, is deleted by the
    /// caller once the settings are saved). `None` when `field` is not one of this provider's secrets.
    fn seal_secret_as(&self, field: &str, values: &mut Map<String, Value>, rng: &dyn RandomSource) -> Option<String> {
        let _ = (field, values, rng);
        None
    }

    /// Secret field `field` is cleared: forget it in `values`.
    fn forget_secret(&self, field: &str, values: &mut Map<String, Value>) {
        let _ = (field, values);
    }

    /// The provider's Guardian Management API view (`GET /guardian/factors/phone/providers/<name>`), given how
    /// each secret field stands; `None` when the provider has no such endpoint (the default).
    fn guardian_view(&self, values: &Map<String, Value>, secrets: &BTreeMap<String, SecretState<'_>>) -> Option<Value> {
        let _ = (values, secrets);
        None
    }

    /// Apply a Guardian `PUT /guardian/factors/phone/providers/<name>` body to `values`; on an error `values` is
    /// unchanged. The caller seals the secrets it sets, runs [`ProviderKind::check_selection`] when the provider
    /// is selected, and saves.
    fn apply_guardian_update(
        &self,
        body: &Value,
        values: &mut Map<String, Value>,
    ) -> Result<GuardianUpdate, FieldProblem> {
        let _ = (body, values);
        Err(FieldProblem::rule("", format!("the {} provider has no settings endpoint", self.name())))
    }

    /// Generate, list and return a new secret of the provider's [`FieldKind::GeneratedSecrets`] field (the
    /// caller seals `plain` under `sealed_name`, saves, then deletes the `retired` sealed names). Default: the
    /// provider has none.
    fn add_generated_secret(
        &self,
        values: &mut Map<String, Value>,
        rng: &dyn RandomSource,
        now: Timestamp,
    ) -> Result<GeneratedSecret, BuildError> {
        let _ = (values, rng, now);
        Err(BuildError::new(format!("the {} provider has no generated secrets", self.name())))
    }

    /// Unlist generated secret `id`; returns its sealed name for the caller to delete once the settings are
    /// saved, or `None` when it is not listed.
    fn remove_generated_secret(&self, values: &mut Map<String, Value>, id: &str) -> Result<Option<String>, BuildError> {
        let _ = (values, id);
        Ok(None)
    }

    /// Check a Unified Phone Experience `credentials` value; returns the secrets it sets, by field name. Default:
    /// it must be `{}`.
    fn upe_credentials(&self, credentials: &Value) -> Result<BTreeMap<String, Zeroizing<String>>, FieldProblem> {
        let o = credentials.as_object().ok_or_else(|| FieldProblem::invalid("credentials", "Expected type object"))?;
        only_keys("credentials", o, &[])?;
        Ok(BTreeMap::new())
    }
}

/// What a Guardian `PUT` of a provider's settings did (the new values are already applied).
pub struct GuardianUpdate {
    /// Secret fields the body set (`Some`, to seal) or cleared (`None`).
    pub secrets: BTreeMap<String, Option<Zeroizing<String>>>,
    /// The answer.
    pub echo: Value,
    /// The `gd_tenant_update` details (never a secret).
    pub audit: Value,
}

impl fmt::Debug for GuardianUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardianUpdate").field("echo", &self.echo).field("audit", &self.audit).finish_non_exhaustive()
    }
}

/// A secret the server generated for a provider ([`ProviderKind::add_generated_secret`]).
pub struct GeneratedSecret {
    pub id: String,
    /// Shown once.
    pub plain: Zeroizing<String>,
    /// Where to seal it.
    pub sealed_name: String,
    /// RFC 3339.
    pub created_at: String,
    /// Sealed names of secrets no longer listed (more than the provider keeps active).
    pub retired: Vec<String>,
    /// The `gd_tenant_update` details.
    pub audit: Value,
}

/// One declared setting of a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    /// The key in [`ProviderSettings::values`] (or, for secrets, [`ProviderSettings::secrets`]) and in the
    /// provider's Guardian API body.
    pub name: &'static str,
    /// The form label.
    pub label: &'static str,
    /// What kind of value it is.
    pub kind: FieldKind,
    /// Fewest characters a set value may have.
    pub min_len: usize,
    /// Most characters a set value may have.
    pub max_len: usize,
    /// When a send needs it.
    pub required: Required,
    /// One line of help for the form.
    pub help: &'static str,
}

impl FieldSpec {
    /// Whether a send on `channels` needs this field.
    pub fn required_for(&self, channels: &[Channel]) -> bool {
        match self.required {
            Required::Always => true,
            Required::ForChannel(c) => channels.contains(&c),
            Required::Never => false,
        }
    }
}

/// The kind of a declared setting (how a form shows it and where it is kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Plain text (kept in [`ProviderSettings::values`]).
    Text,
    /// An absolute URL (kept in `values`).
    Url,
    /// A phone number or sender id (kept in `values`).
    Phone,
    /// A secret the operator types (kept sealed; given decrypted in [`ProviderSettings::secrets`] under the field's
    /// name; never shown again, only masked).
    Secret,
    /// Secrets the server generates and rotates (the webhook's signing secrets): `values[name]` lists them as
    /// `[{"id", "created_at"}]`, oldest first, at most `max_active`; each is given decrypted in
    /// [`ProviderSettings::secrets`] under [`ProviderSettings::listed_secret_key`]`(name, id)`. Created and deleted
    /// through the provider's own endpoints, shown once.
    GeneratedSecrets {
        /// How many sign at once.
        max_active: usize,
    },
}

/// When a send needs a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Required {
    /// Always.
    Always,
    /// For this channel (Twilio's `from` for voice).
    ForChannel(Channel),
    /// Never by itself (it may still be one of an either-or, said in the help text).
    Never,
}

/// A provider's settings as the caller keeps them, secrets opened.
#[derive(Clone, Default)]
pub struct ProviderSettings {
    /// The non-secret settings as stored (a JSON object). Keys a provider does not declare are ignored, so the
    /// caller may keep its own bookkeeping (e.g. where a secret is sealed) beside them.
    pub values: Map<String, Value>,
    /// The decrypted secrets, by field name (a [`FieldKind::Secret`] field), or by
    /// [`ProviderSettings::listed_secret_key`] (a [`FieldKind::GeneratedSecrets`] field). A secret that is set but
    /// cannot be opened is left out (and the provider then reports it missing).
    pub secrets: BTreeMap<String, Zeroizing<String>>,
}

impl fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("values", &self.values)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ProviderSettings {
    /// Settings from non-secret values and no secrets.
    pub fn from_values(values: Map<String, Value>) -> Self {
        Self { values, secrets: BTreeMap::new() }
    }

    /// The same settings with `secret` set under `key`.
    pub fn with_secret(mut self, key: impl Into<String>, secret: impl Into<String>) -> Self {
        self.secrets.insert(key.into(), Zeroizing::new(secret.into()));
        self
    }

    /// The key of generated secret `id` of field `field` in [`ProviderSettings::secrets`]: `{field}/{id}`.
    pub fn listed_secret_key(field: &str, id: &str) -> String {
        format!("{field}/{id}")
    }

    /// A text value, trimmed; `None` when absent, null, not a string or blank.
    pub fn text(&self, key: &str) -> Option<String> {
        self.values.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
    }

    /// A secret; `None` when absent or blank.
    pub fn secret(&self, key: &str) -> Option<&Zeroizing<String>> {
        self.secrets.get(key).filter(|s| !s.trim().is_empty())
    }
}

/// How a secret setting stands, for the views that show it masked.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SecretState<'a> {
    /// None is stored.
    Absent,
    /// Stored and opened.
    Plain(&'a str),
    /// Stored, but it cannot be opened (a lost key): shown as `****`.
    Unreadable,
}

impl fmt::Debug for SecretState<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecretState::Absent => "Absent",
            SecretState::Plain(_) => "Plain([redacted])",
            SecretState::Unreadable => "Unreadable",
        })
    }
}

/// What is wrong with one setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// The field (or Management API property path, e.g. `configuration.sid`).
    pub field: String,
    /// What is wrong.
    pub kind: ProblemKind,
    /// For people: what is missing (`from or messaging_service_sid`), the validation text (`String is too long
    /// (64 chars max)`), or the rule's whole sentence.
    pub message: String,
}

/// The kinds of [`FieldProblem`], each with its Management API wording ([`FieldProblem::api_message`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// The field is needed and not set.
    Missing,
    /// The value is not acceptable.
    Invalid,
    /// A rule across settings (the message is a whole sentence).
    Rule,
    /// The body as a whole does not parse (an unknown key, a value of the wrong type): the message is the parser's.
    Body,
}

impl FieldProblem {
    /// `field` is needed; `what` says what is missing, for people (often just the field name).
    pub fn missing(field: impl Into<String>, what: impl Into<String>) -> Self {
        Self { field: field.into(), kind: ProblemKind::Missing, message: what.into() }
    }

    /// `field`'s value is not acceptable, because `message`.
    pub fn invalid(field: impl Into<String>, message: impl fmt::Display) -> Self {
        Self { field: field.into(), kind: ProblemKind::Invalid, message: message.to_string() }
    }

    /// A rule about `field` and others, said in `sentence`.
    pub fn rule(field: impl Into<String>, sentence: impl Into<String>) -> Self {
        Self { field: field.into(), kind: ProblemKind::Rule, message: sentence.into() }
    }

    /// The Management API's 400 message: `Payload validation error: 'Missing required property: {field}'.`,
    /// `Payload validation error: '{message}' on property {field}.`, or the rule's sentence as it is.
    pub fn api_message(&self) -> String {
        match self.kind {
            ProblemKind::Missing => format!("Payload validation error: 'Missing required property: {}'.", self.field),
            ProblemKind::Invalid => {
                format!("Payload validation error: '{}' on property {}.", self.message, self.field)
            }
            ProblemKind::Rule => self.message.clone(),
            ProblemKind::Body => format!("Payload validation error: '{}'.", self.message),
        }
    }
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.api_message())
    }
}

/// `Additional properties not allowed: {k}; allowed are …` for the first key of `o` not in `allowed`.
pub fn only_keys(prop: &str, o: &Map<String, Value>, allowed: &[&str]) -> Result<(), FieldProblem> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(FieldProblem::invalid(
            prop,
            format!("Additional properties not allowed: {k}; allowed are {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

/// A string of `min..=max` characters without control characters (the Management API's length rules).
pub fn check_string(prop: &str, s: &str, min: usize, max: usize) -> Result<(), FieldProblem> {
    let n = s.chars().count();
    if n < min {
        return Err(FieldProblem::invalid(prop, format!("String is too short ({min} chars min)")));
    }
    if n > max {
        return Err(FieldProblem::invalid(prop, format!("String is too long ({max} chars max)")));
    }
    if s.chars().any(char::is_control) {
        return Err(FieldProblem::invalid(prop, "String contains control characters"));
    }
    Ok(())
}

/// Settings that cannot make a provider (a value of the wrong type, an unusable client). The message names the
/// setting, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BuildError {
    /// What is wrong, for people.
    pub message: String,
}

impl BuildError {
    /// A build error saying `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }
}

/// What providers are built with, shared by all of them.
#[derive(Clone)]
pub struct Deps {
    /// The HTTP client every provider shares (pooling, timeouts, user agent): see [`crate::transport::client`].
    pub http: reqwest::Client,
    /// The clock (webhook timestamps, dev inbox dates, attempt durations).
    pub clock: Arc<dyn Clock>,
    /// Randomness (dev inbox message ids).
    pub rng: Arc<dyn RandomSource>,
    /// The server's public URL, with its trailing slash: callback URLs are built on it.
    pub public_url: String,
    /// API base URL overrides by provider name (e.g. Twilio's, aimed at a fake or Prism in tests). A provider uses
    /// its own default when it has none.
    pub base_urls: BTreeMap<String, String>,
    /// Where the development provider records its messages.
    pub inbox: Arc<dyn DevInbox>,
    /// How many messages the development provider records over the installation's life.
    pub dev_cap: u64,
    /// Whether the development provider logs the full number and text (the code).
    pub log_dev_messages: bool,
}

impl fmt::Debug for Deps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deps")
            .field("public_url", &self.public_url)
            .field("base_urls", &self.base_urls)
            .field("dev_cap", &self.dev_cap)
            .field("log_dev_messages", &self.log_dev_messages)
            .finish_non_exhaustive()
    }
}

impl Deps {
    /// The base URL override for `provider`, without a trailing slash, or `default`.
    pub fn base_url(&self, provider: &str, default: &str) -> String {
        self.base_urls.get(provider).map_or(default, String::as_str).trim_end_matches('/').to_owned()
    }
}

/// A message the development provider "sent".
#[derive(Clone, PartialEq, Eq)]
pub struct DevMessage {
    /// `msg_` + 20 letters and digits.
    pub id: String,
    /// E.164.
    pub to: String,
    /// SMS or voice.
    pub channel: Channel,
    /// The rendered text (the code included).
    pub text: String,
    /// When it was recorded.
    pub created_at: Timestamp,
}

impl fmt::Debug for DevMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevMessage")
            .field("id", &self.id)
            .field("to", &callsign_domain::phone::mask(&self.to))
            .field("channel", &self.channel)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// The dev inbox the development provider writes to (the caller implements it over its store).
#[async_trait]
pub trait DevInbox: Send + Sync {
    /// How many messages were ever recorded.
    async fn count(&self) -> Result<u64, Box<dyn std::error::Error + Send + Sync>>;
    /// Record one.
    async fn record(&self, message: DevMessage) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_read_like_the_management_api() {
        assert_eq!(
            FieldProblem::missing("url", "url").api_message(),
            "Payload validation error: 'Missing required property: url'."
        );
        assert_eq!(
            check_string("from", &"x".repeat(65), 0, 64).unwrap_err().api_message(),
            "Payload validation error: 'String is too long (64 chars max)' on property from."
        );
        assert_eq!(check_string("sid", "", 1, 10).unwrap_err().message, "String is too short (1 chars min)");
        assert_eq!(check_string("sid", "a\nb", 1, 10).unwrap_err().message, "String contains control characters");
        assert!(check_string("sid", "abc", 1, 10).is_ok());
        assert_eq!(FieldProblem::rule("from", "Voice needs it.").api_message(), "Voice needs it.");
        let mut o = Map::new();
        o.insert("x".into(), Value::Null);
        assert_eq!(
            only_keys("credentials", &o, &[]).unwrap_err().api_message(),
            "Payload validation error: 'Additional properties not allowed: x; allowed are ' on property credentials."
        );
    }

    #[test]
    fn settings_hide_secrets() {
        let s = ProviderSettings::default().with_secret("auth_token", "hunter2hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.secret("auth_token").map(|z| z.as_str()), Some("hunter2hunter2"));
        assert!(!format!("{:?}", SecretState::Plain("hunter2")).contains("hunter2"));
    }
}
