//! Writing Auth0-shaped log events. Every feature records what happened here.
use callsign_store::{LogBody, LogEvent};
use serde_json::Value;

use crate::app::AppState;
use crate::http::extract::RequestMeta;

/// Auth0's description for an event code (reference §7.3; identity events from Auth0's log code list).
pub fn description(code: &str) -> &'static str {
    match code {
        "s" => "Success Login",
        "fp" => "Wrong email or password.",
        "fu" => "Wrong email or password.",
        "seccft" => "Client Credentials for Access Token",
        "feccft" => "Failed Exchange of Client Credentials for Access Token",
        "sapi" => "API Operation",
        "fapi" => "Failed API Operation",
        "mfar" => "Multifactor authentication required",
        _ => "",
    }
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
pub async fn record(app: &AppState, code: &str, meta: &RequestMeta, ctx: EventCtx) {
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
