//! The development provider (`auth0` in the Guardian API): delivers nothing, records every message in the dev
//! inbox ([`crate::DevInbox`]), and stops after [`crate::Deps::dev_cap`] messages over the installation's life,
//! like Auth0's test sender. Its log line masks the number and leaves the code out unless
//! [`crate::Deps::log_dev_messages`] asks for them.
use std::sync::Arc;

use async_trait::async_trait;
use callsign_domain::rng::{ALNUM, from_alphabet};
use callsign_domain::{Channel, Clock, RandomSource};
use serde_json::json;

use crate::kind::{BuildError, Deps, DevInbox, DevMessage, FieldProblem, FieldSpec, ProviderKind, ProviderSettings};
use crate::message::Message;
use crate::provider::{Capabilities, Provider, Receipt, SendError};

/// The Guardian name.
pub const NAME: &str = "auth0";

const CAPABILITIES: Capabilities =
    Capabilities { channels: &[Channel::Sms, Channel::Voice], receipts: false, provider_codes: false };

/// The development provider's kind: no settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct DevKind;

impl ProviderKind for DevKind {
    fn name(&self) -> &'static str {
        NAME
    }
    fn label(&self) -> &'static str {
        "Built-in (development)"
    }
    fn short_label(&self) -> &'static str {
        "built-in"
    }
    fn description(&self) -> &'static str {
        "Messages are not delivered to phones: they appear in the development inbox."
    }
    fn form_id(&self) -> &'static str {
        "auth0"
    }
    fn upe_name(&self) -> Option<&'static str> {
        None
    }
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }
    fn fields(&self) -> &'static [FieldSpec] {
        &[]
    }
    fn check(&self, _: &ProviderSettings, _: &[Channel]) -> Result<(), Vec<FieldProblem>> {
        Ok(())
    }
    fn build(&self, _: ProviderSettings, deps: &Deps) -> Result<Arc<dyn Provider>, BuildError> {
        Ok(Arc::new(DevProvider {
            inbox: deps.inbox.clone(),
            clock: deps.clock.clone(),
            rng: deps.rng.clone(),
            cap: deps.dev_cap,
            log_messages: deps.log_dev_messages,
        }))
    }
}

/// The built development provider.
pub struct DevProvider {
    inbox: Arc<dyn DevInbox>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn RandomSource>,
    cap: u64,
    log_messages: bool,
}

fn unavailable(e: &(dyn std::error::Error + Send + Sync)) -> SendError {
    SendError::retryable(format!("dev inbox unavailable: {e}"))
}

#[async_trait]
impl Provider for DevProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn send(&self, msg: &Message) -> Result<Receipt, SendError> {
        let used = self.inbox.count().await.map_err(|e| unavailable(e.as_ref()))?;
        if used >= self.cap {
            return Err(SendError::fatal(format!(
                "the development provider's limit of {} messages is reached; configure a real provider",
                self.cap
            )));
        }
        let id = format!("msg_{}", from_alphabet(self.rng.as_ref(), ALNUM, 20));
        let m = DevMessage {
            id: id.clone(),
            to: msg.to.e164().to_owned(),
            channel: msg.channel,
            text: msg.text.clone(),
            created_at: self.clock.now(),
        };
        // A message for the same job recorded twice (a retry after a lost claim) is harmless: same text, new id.
        self.inbox.record(m).await.map_err(|e| unavailable(e.as_ref()))?;
        // The code is read in the dev inbox; the log names the message with the number masked, and carries the
        // number and the text (the code) only when asked to.
        let channel = msg.channel.as_str();
        if self.log_messages {
            tracing::info!(to = %msg.to.e164(), channel, text = %msg.text, "development provider message");
        } else {
            let to = msg.to.masked();
            tracing::info!(%to, channel, message_id = %id, "development provider message recorded in the dev inbox");
        }
        Ok(Receipt {
            provider: NAME,
            details: json!({"message_id": id, "remaining": self.cap.saturating_sub(used + 1)}),
        })
    }
}
