//! "Send a test message": one message, sent now, through the selected provider, outside the MFA flow (no
//! challenge, no code, no job): `mfa::delivery::send_test`, which logs it as a `gd_send_*` event marked as a test.
//! The built-in provider puts it in the development inbox (and counts it against its cap), like any other message.
use callsign_domain::phone::PhoneNumber;
use serde_json::Value;

use crate::app::AppState;
use crate::http::extract::RequestMeta;
use callsign_core::delivery::{TestMessage, send_test};
use callsign_core::guardian::GuardianConfig;

/// Send `text` to `to` on `channel` (`sms` or `voice`) through the selected provider; the provider's details on
/// success, its error message on failure.
pub async fn send(
    app: &AppState,
    meta: &RequestMeta,
    to: &PhoneNumber,
    channel: &str,
    text: &str,
) -> Result<Value, String> {
    let cfg = GuardianConfig::load(app).await.map_err(|e| {
        tracing::error!(error = %e, "cannot read the Guardian configuration");
        "Internal error".to_owned()
    })?;
    let msg = TestMessage {
        provider: &cfg.provider,
        source: "dashboard",
        client_id: Some(super::CLIENT_ID),
        to: to.e164(),
        channel,
        text,
        from: None,
    };
    send_test(app, meta, &msg).await
}
