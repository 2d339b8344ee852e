//! The phone providers as the services use them: each provider's settings live in the Guardian configuration
//! (`providers.<name>`, see [`GuardianConfig::provider`]) with its secrets sealed apart; here they are opened and
//! a provider is built through the registry (`callsign_messaging`), and secret changes are sealed and cleaned up.
//! Nothing here names a provider.
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use callsign_messaging::{DevInbox, DevMessage, Provider, ProviderKind, ProviderSettings, SecretState};
use callsign_store::{SealedSecret, Store};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::Core;
use crate::guardian::GuardianConfig;

/// The development provider's inbox, kept in the store.
pub struct StoreInbox(pub Arc<dyn Store>);

#[async_trait]
impl DevInbox for StoreInbox {
    async fn count(&self) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.0.count_dev_messages().await?)
    }

    async fn record(&self, m: DevMessage) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let message = callsign_store::DevMessage {
            id: m.id,
            to: m.to,
            channel: m.channel.as_str().to_owned(),
            text: m.text,
            created_at: m.created_at,
        };
        Ok(self.0.insert_dev_message(&message).await?)
    }
}

/// Why a provider could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// No registered provider has this name: a configuration from another build, or a bad write.
    #[error("{0}")]
    Unknown(#[from] callsign_messaging::UnknownProvider),
    /// Its settings are not of the shape it declares.
    #[error("{0}")]
    Build(#[from] callsign_messaging::BuildError),
    /// A secret could not be read (the store is unavailable): worth trying again.
    #[error("the provider's secrets cannot be read: {0}")]
    Store(#[from] callsign_store::StoreError),
}

/// The opened secrets of `values` for `kind`: each sealed secret it names, decrypted; one that is missing or cannot
/// be opened is left out (and reported by the provider's own checks), with a warning.
pub async fn open_secrets(
    app: &Core,
    kind: &dyn ProviderKind,
    values: &Map<String, Value>,
) -> Result<BTreeMap<String, Zeroizing<String>>, callsign_store::StoreError> {
    let mut out = BTreeMap::new();
    for (key, name) in kind.sealed_secrets(values) {
        let Some(stored) = app.store.get_secret(&name).await? else {
            tracing::warn!(provider = kind.name(), secret = %key, "a provider secret is missing from the store");
            continue;
        };
        match app.keyring.open(&name, &stored.sealed).map(|p| String::from_utf8(p.to_vec())) {
            Ok(Ok(plain)) => {
                out.insert(key, Zeroizing::new(plain));
            }
            _ => tracing::warn!(provider = kind.name(), secret = %key, "a provider secret cannot be opened"),
        }
    }
    Ok(out)
}

/// Provider `name`'s kind and its settings with the secrets opened.
pub async fn settings(
    app: &Core,
    guardian: &GuardianConfig,
    name: &str,
) -> Result<(&'static dyn ProviderKind, ProviderSettings), ProviderError> {
    let kind = app.providers.get(name)?;
    let values = guardian.provider(name);
    let secrets = open_secrets(app, kind, &values).await?;
    Ok((kind, ProviderSettings { values, secrets }))
}

/// Provider `name`, built from its settings.
pub async fn build(app: &Core, guardian: &GuardianConfig, name: &str) -> Result<Arc<dyn Provider>, ProviderError> {
    let (kind, settings) = settings(app, guardian, name).await?;
    Ok(kind.build(settings, &app.provider_deps)?)
}

/// How each secret of `values` stands, for the views that show it masked: the opened ones (as `Plain` through
/// [`secret_states`]), and the listed ones that cannot be opened.
pub struct SecretStates {
    opened: BTreeMap<String, Zeroizing<String>>,
    listed: Vec<String>,
}

impl SecretStates {
    pub fn states(&self) -> BTreeMap<String, SecretState<'_>> {
        self.listed
            .iter()
            .map(|k| {
                let state = self.opened.get(k).map_or(SecretState::Unreadable, |p| SecretState::Plain(p.as_str()));
                (k.clone(), state)
            })
            .collect()
    }
}

pub async fn secret_states(
    app: &Core,
    kind: &dyn ProviderKind,
    values: &Map<String, Value>,
) -> Result<SecretStates, callsign_store::StoreError> {
    let listed = kind.sealed_secrets(values).into_iter().map(|(k, _)| k).collect();
    Ok(SecretStates { opened: open_secrets(app, kind, values).await?, listed })
}

/// Seal each secret a change sets, under the name the provider picks (recorded in `values`), and forget each it
/// clears. Returns the new sealed names, which the caller deletes if its save is refused.
pub async fn seal_secrets(
    app: &Core,
    kind: &dyn ProviderKind,
    values: &mut Map<String, Value>,
    secrets: BTreeMap<String, Option<Zeroizing<String>>>,
) -> crate::BoxResult<Vec<String>> {
    let mut sealed = Vec::new();
    for (field, plain) in secrets {
        match plain {
            Some(plain) => {
                let name = kind
                    .seal_secret_as(&field, values, app.rng.as_ref())
                    .ok_or_else(|| format!("`{field}` is not a secret of the {} provider", kind.name()))?;
                seal(app, &name, plain.as_bytes()).await?;
                sealed.push(name);
            }
            None => kind.forget_secret(&field, values),
        }
    }
    Ok(sealed)
}

/// Seal `plain` under `name` (insert or replace).
pub async fn seal(app: &Core, name: &str, plain: &[u8]) -> crate::BoxResult<()> {
    let sealed = app.keyring.seal(app.rng.as_ref(), name, plain)?;
    app.store.put_secret(&SealedSecret { name: name.to_owned(), sealed, updated_at: app.clock.now() }).await?;
    Ok(())
}

/// The sealed secrets `before` named that `after` no longer does (to delete once `after` is saved).
pub fn obsolete_secrets(
    kind: &dyn ProviderKind,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> Vec<String> {
    let kept: Vec<String> = kind.sealed_secrets(after).into_iter().map(|(_, n)| n).collect();
    kind.sealed_secrets(before).into_iter().map(|(_, n)| n).filter(|n| !kept.contains(n)).collect()
}

/// Delete sealed secrets nothing names any more. An unlisted secret is never used; a failure here leaves an
/// unused row, logged.
pub async fn delete_secrets(app: &Core, names: &[String]) {
    for name in names {
        match app.store.delete_secret(name).await {
            Ok(()) | Err(callsign_store::StoreError::NotFound) => {}
            Err(e) => tracing::warn!(secret = %name, error = %e, "could not delete an unused provider secret"),
        }
    }
}
