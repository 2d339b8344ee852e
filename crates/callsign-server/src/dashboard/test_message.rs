//! "Send a test message": one message, sent now, through the selected provider (the `Provider` trait of
//! `mfa::delivery`), outside the MFA flow: no challenge, no code, no job. The built-in provider puts it in the
//! development inbox (and counts it against its cap), like any other message.
use callsign_domain::phone::PhoneNumber;
use serde_json::Value;

use crate::app::AppState;
use crate::mfa::config::GuardianConfig;
use crate::mfa::delivery::{Outbound, provider_for};

/// The text of a test message.
pub fn text(friendly_name: &str) -> String {
    format!("This is a test message from {friendly_name}. Your phone provider works.")
}

/// Send `text` to `to` on `channel` (`sms` or `voice`) through the selected provider; the provider's details on
/// success, its error message on failure.
pub async fn send(app: &AppState, to: &PhoneNumber, channel: &str, text: &str) -> Result<Value, String> {
    let cfg = GuardianConfig::load(app).await.map_err(|e| {
        tracing::error!(error = %e, "cannot read the Guardian configuration");
        "Internal error".to_owned()
    })?;
    let provider = provider_for(&cfg.provider);
    let id = format!("test_{}", callsign_domain::rng::from_alphabet(app.rng.as_ref(), callsign_domain::rng::ALNUM, 20));
    let msg = Outbound { job_id: &id, channel, to: to.e164(), text, locale: "en" };
    match provider.send(app, &msg).await {
        Ok(details) => {
            tracing::info!(provider = provider.name(), channel, "test message sent");
            Ok(details)
        }
        Err(e) => {
            tracing::info!(provider = provider.name(), channel, error = %e.message, "test message failed");
            Err(e.message)
        }
    }
}
