//! What the services report as it happens, for whoever watches (the server's Prometheus metrics): every log event,
//! every message's terminal outcome, every delivery receipt. The services call [`Telemetry`] and know nothing of
//! how it is exported; by default nothing listens. Labels stay bounded: a channel, a provider's registry name, a
//! country as its ISO code, an outcome and a reason from a short list; never a number, a user or an id.
use callsign_domain::Channel;
use serde_json::Value;

/// A message that reached its end: handed to a provider, or given up.
#[derive(Debug, Clone, Copy)]
pub struct MessageOutcome<'a> {
    pub channel: Channel,
    /// The provider that took it, or the last one tried (a registry name).
    pub provider: &'a str,
    /// The destination's ISO country, when the numbering plan knows it.
    pub country: Option<&'a str>,
    /// `sent` or `failed`.
    pub outcome: &'a str,
    /// Why it failed ([`failure_reason`]); `""` when sent.
    pub reason: &'a str,
    /// From the moment it was queued (the challenge) to the provider's acceptance, when sent.
    pub accepted_after_ms: Option<i64>,
}

/// The listener's side. Every method has a default that does nothing.
pub trait Telemetry: Send + Sync + std::fmt::Debug {
    /// A log event was written (`code` as in the log, its `details`).
    fn event(&self, _code: &str, _details: &Value) {}
    /// A message reached its terminal state.
    fn message(&self, _m: &MessageOutcome<'_>) {}
    /// A delivery receipt arrived for a message queued `after_ms` before.
    fn receipt(&self, _channel: Channel, _provider: &str, _state: &str, _after_ms: i64) {}
}

/// The reasons a failure is counted under: the refusals before a send by name, every provider failure as
/// `provider_error`.
pub fn failure_reason(details: &Value) -> &'static str {
    match details.get("reason").and_then(Value::as_str) {
        Some("destination_not_allowed") => "destination_not_allowed",
        Some("number_type_not_allowed") => "number_type_not_allowed",
        Some("pumping_suspected") => "pumping_suspected",
        Some("usage_cap_reached") => "usage_cap_reached",
        Some("rate_limited") => "rate_limited",
        _ => "provider_error",
    }
}

/// The kind of limit a log event reports a refusal by, when it reports one: `sends` (per user or per address),
/// `wrong_codes`, `wrong_recovery_codes`, `ip_block` (suspicious IP throttling), `brute_force`, `destination`,
/// `number_type`, `pumping`, `usage_cap`.
pub fn refusal_kind(code: &str, details: &Value) -> Option<&'static str> {
    match code {
        "gd_otp_rate_limit_exceed" => Some("wrong_codes"),
        "gd_recovery_rate_limit_exceed" => Some("wrong_recovery_codes"),
        "limit_mu" => Some("ip_block"),
        "limit_wc" => Some("brute_force"),
        "gd_send_sms_failure" | "gd_send_voice_failure" => match details.get("reason").and_then(Value::as_str) {
            Some("rate_limited") => Some("sends"),
            Some("destination_not_allowed") => Some("destination"),
            Some("number_type_not_allowed") => Some("number_type"),
            Some("pumping_suspected") => Some("pumping"),
            Some("usage_cap_reached") => Some("usage_cap"),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn refusals_and_reasons_are_a_short_list() {
        assert_eq!(refusal_kind("gd_send_sms_failure", &json!({"reason": "rate_limited"})), Some("sends"));
        assert_eq!(refusal_kind("gd_send_voice_failure", &json!({"reason": "pumping_suspected"})), Some("pumping"));
        assert_eq!(refusal_kind("gd_send_sms_failure", &json!({"provider": "twilio"})), None, "a provider failure");
        assert_eq!(refusal_kind("limit_mu", &Value::Null), Some("ip_block"));
        assert_eq!(refusal_kind("gd_send_sms", &Value::Null), None);
        assert_eq!(failure_reason(&json!({"reason": "destination_not_allowed"})), "destination_not_allowed");
        assert_eq!(failure_reason(&json!({"reason": "anything else"})), "provider_error");
        assert_eq!(failure_reason(&json!({"error": "boom"})), "provider_error");
    }
}
