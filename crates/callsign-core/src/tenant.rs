//! Tenant settings: one small document (friendly name, support contacts, locales) read by messages and pages and
//! written by the Management API (`/api/v2/tenants/settings`).
use serde::{Deserialize, Serialize};

use crate::Core;

pub const SETTINGS_KEY: &str = "tenant";

/// Stored settings; absent fields take defaults on read.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct TenantSettings {
    pub friendly_name: Option<String>,
    pub support_email: Option<String>,
    pub support_url: Option<String>,
    pub picture_url: Option<String>,
    pub default_locale: Option<String>,
    pub enabled_locales: Option<Vec<String>>,
}

impl TenantSettings {
    /// The name messages and pages show (`Callsign` until one is set).
    pub fn friendly_name(&self) -> &str {
        self.friendly_name.as_deref().unwrap_or("Callsign")
    }

    /// The message language for a requested one (`x-request-language` for the MFA API, the page language for the
    /// login pages): kept when it is one of the tenant's enabled locales, otherwise the tenant's default locale.
    pub fn pick_locale(&self, requested: Option<&str>) -> String {
        let default = self.default_locale.clone().unwrap_or_else(|| "en".into());
        let enabled = self.enabled_locales.clone().unwrap_or_else(|| vec![default.clone()]);
        requested
            .map(|s| s.split(',').next().unwrap_or("").trim().to_owned())
            .filter(|l| enabled.iter().any(|e| e.eq_ignore_ascii_case(l)))
            .unwrap_or(default)
    }
}

pub async fn load(app: &Core) -> crate::BoxResult<TenantSettings> {
    crate::documents::load(app, SETTINGS_KEY).await
}

/// Change the settings without losing a concurrent write of another field ([`crate::documents::modify`]).
pub async fn modify<E>(
    app: &Core,
    mut change: impl FnMut(&mut TenantSettings) -> Result<(), E>,
) -> crate::BoxResult<Result<TenantSettings, E>> {
    crate::documents::modify(app, SETTINGS_KEY, "tenant settings", TenantSettings::default, |s| {
        change(s)?;
        Ok(s.clone())
    })
    .await
}

pub async fn save(app: &Core, settings: &TenantSettings) -> crate::BoxResult<()> {
    let v = serde_json::to_value(settings)?;
    app.store.put_setting(SETTINGS_KEY, &v, app.clock.now()).await?;
    Ok(())
}
