//! Writing Auth0-shaped log events. Every feature records what happened here.
use callsign_store::{LogBody, LogEvent};
use serde_json::Value;

use crate::Core;
use crate::Origin;

/// Every event code Callsign writes, with Auth0's description (reference §7.3; identity events from Auth0's log code
/// list). The one list: [`description`] reads it, and the dashboard offers it as the Logs filter.
pub const CODES: &[(&str, &str)] = &[
    ("s", "Success Login"),
    ("fp", "Wrong email or password."),
    ("fu", "Wrong email or password."),
    ("seccft", "Client Credentials for Access Token"),
    ("feccft", "Failed Exchange of Client Credentials for Access Token"),
    ("sapi", "API Operation"),
    ("fapi", "Failed API Operation"),
    ("mfar", "A user has been prompted for multi-factor authentication."),
    ("f", "Failed Login"),
    ("gd_start_enroll", "Multi-factor authentication enroll has started."),
    ("gd_enrollment_complete", "A first time MFA user has successfully enrolled using one of the factors."),
    ("gd_start_auth", "Second factor authentication event started for MFA."),
    ("gd_auth_succeed", "Multi-factor authentication success."),
    ("gd_auth_failed", "Multi-factor authentication failed."),
    ("gd_otp_rate_limit_exceed", "A user entered an incorrect code more than the maximum allowed number of times."),
    ("gd_send_sms", "SMS for MFA successfully sent."),
    ("gd_send_sms_failure", "Attempt to send SMS for MFA failed."),
    ("gd_send_voice", "Voice call for MFA successfully made."),
    ("gd_send_voice_failure", "Attempt to make Voice call for MFA failed."),
    ("gd_recovery_succeed", "A user successfully authenticates with a recovery code."),
    ("gd_recovery_rate_limit_exceed", "A user enters a wrong recovery code too many times."),
    ("gd_recovery_failed", "A user enters a wrong recovery code when attempting to authenticate."),
    ("gd_unenroll", "Device used for second factor authentication has been unenrolled."),
    ("gd_update_device_account", "Device used for second factor authentication has been updated."),
    ("gd_tenant_update", "Guardian tenant update"),
    ("gd_delivery_receipt", "Delivery receipt from the phone provider"),
    ("gd_enrollment_ticket_created", "An enrollment ticket was created."),
    ("cs_pumping_detected", "SMS pumping suspected: codes for new enrollments to a destination segment are held."),
    ("cs_pumping_released", "An operator released an SMS-pumping hold."),
    (
        "cs_usage_trigger",
        "A phone usage trigger crossed its threshold (Callsign): an alert, or a hard stop for the rest of the period.",
    ),
    ("seoobft", "Password and OOB challenge for Access Token"),
    ("feoobft", "Failed exchange of Password and OOB challenge for Access Token"),
    ("sercft", "Password and MFA recovery code for Access Token"),
    ("fercft", "Failed exchange of Password and MFA recovery code for Access Token"),
    ("seacft", "Authorization Code for Access Token"),
    ("feacft", "Failed Exchange of Authorization Code for Access Token"),
    ("sertft", "Refresh Token for Access Token"),
    ("fertft", "Failed Exchange of Refresh Token for Access Token"),
    ("slo", "Success Logout"),
    ("limit_mu", "An IP address is blocked because it attempted too many failed logins without a successful login."),
    ("ublkdu", "User block setup by anomaly detection has been released"),
    (
        "limit_wc",
        "An IP address is blocked because it reached the maximum failed login attempts into a single account.",
    ),
    ("srrt", "Successful Refresh Token revocation"),
    ("ss", "Success Signup"),
    ("fs", "Failed Signup"),
];

/// Auth0's description for an event code ("" for a code not in [`CODES`]).
pub fn description(code: &str) -> &'static str {
    CODES.iter().find(|(c, _)| *c == code).map_or("", |(_, d)| d)
}

/// What an event is about; every field optional.
#[derive(Debug, Default, Clone)]
pub struct EventCtx {
    pub client_id: Option<String>,
    pub client_name: Option<String>,
    pub user_id: Option<String>,
    pub user_name: Option<String>,
    pub audience: Option<String>,
    pub scope: Option<String>,
    pub connection: Option<String>,
    pub description: Option<String>,
    pub details: Value,
}

/// Record an event. A failure to log is itself logged, never turned into a failed request.
pub async fn record(app: &Core, code: &str, meta: &Origin, ctx: EventCtx) {
    if let Some(t) = app.telemetry() {
        t.event(code, &ctx.details);
    }
    crate::stats::record_event(app, code, &ctx.details).await;
    let now = app.clock.now();
    let event = LogEvent {
        log_id: callsign_domain::ids::log_id(app.rng.as_ref(), now),
        date: now,
        event_type: code.to_owned(),
        user_id: ctx.user_id,
        client_id: ctx.client_id,
        body: LogBody {
            description: Some(ctx.description.unwrap_or_else(|| description(code).to_owned())),
            client_name: ctx.client_name,
            ip: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            user_name: ctx.user_name,
            audience: ctx.audience,
            scope: ctx.scope,
            connection: ctx.connection.clone(),
            strategy: ctx.connection.map(|_| "auth0".to_owned()),
            details: ctx.details,
        },
    };
    if let Err(e) = app.store.insert_log(&event).await {
        tracing::error!(error = %e, code, "could not store a log event");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_catalogue_describes_each_code_once() {
        let mut seen = std::collections::BTreeSet::new();
        for (code, text) in super::CODES {
            assert!(seen.insert(code), "{code} is listed twice");
            assert!(!text.is_empty(), "{code} has no description");
        }
        assert_eq!(super::description("gd_send_sms"), "SMS for MFA successfully sent.");
        assert_eq!(super::description("nope"), "");
    }
}
