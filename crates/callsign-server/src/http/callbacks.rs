//! Delivery receipts pushed by phone providers, at one route for all of them:
//! `POST /callbacks/{provider}/status/{job_id}` (the callback URL each send names, `callsign_messaging::callback_url`).
//! The provider checks the request itself (`Provider::parse_callback`: Twilio's `X-Twilio-Signature` over the
//! public URL of this endpoint and every posted parameter); anything it does not accept is refused with 403 and
//! not read further. A verified callback appends the receipt (`{provider, status, error_code, sid, …}`) to the
//! job's `details.receipts`, records a `gd_delivery_receipt` log event, and lets the voice fallback act on it
//! (`callsign_core::delivery::receipt_recorded`).
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use callsign_messaging::{Callback, CallbackError};
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{Path, RequestMeta};
use crate::app::AppState;
use callsign_core::guardian::GuardianConfig;
use callsign_core::identity::events::{self, EventCtx};

pub fn routes() -> Router<AppState> {
    Router::new().route("/callbacks/{provider}/status/{job_id}", post(status))
}

fn forbidden() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "Invalid or missing signature.").code("invalid_signature")
}

async fn status(
    State(app): State<AppState>,
    Path((provider_name, job_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    meta: RequestMeta,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    if app.providers.get(&provider_name).is_err() {
        return Err(ApiError::not_found("No such provider."));
    }
    let cfg = GuardianConfig::load(&app).await.map_err(ApiError::internal)?;
    let provider = callsign_core::providers::build(&app, &cfg, &provider_name).await.map_err(ApiError::internal)?;
    let mut url = callsign_messaging::callback_url(&app.config.public_url, &provider_name, &job_id);
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(&q);
    }
    let headers: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_ascii_lowercase(), v.to_owned())))
        .collect();
    // The provider's check first: nothing about the job is looked at for a request it does not accept.
    let outcome =
        match provider.parse_callback(&Callback { message_id: &job_id, url: &url, headers: &headers, body: &body }) {
            Ok(o) => o,
            Err(CallbackError::Unsupported) => {
                return Err(ApiError::not_found("This provider does not send delivery receipts."));
            }
            Err(e) => {
                tracing::warn!(job = %job_id, provider = %provider_name, error = %e, "a delivery callback was refused");
                return Err(forbidden());
            }
        };
    let Some(job) = app.store.get_job(&job_id).await? else {
        return Err(ApiError::not_found("No such delivery job."));
    };
    // The job's provider, or (after a failover) the provider of its chain that sent it.
    let sent_by = |d: &Value| {
        d["provider"].as_str() == Some(provider_name.as_str())
            || d["chain"].as_array().is_some_and(|c| {
                c.iter().any(|a| a["provider"].as_str() == Some(provider_name.as_str()) && a["outcome"] == "sent")
            })
    };
    if job.provider != provider_name && !sent_by(&job.details) {
        return Err(ApiError::not_found("No such delivery job of this provider."));
    }
    if !app.store.record_job_receipt(&job.id, &outcome.receipt, app.clock.now()).await? {
        return Err(ApiError::not_found("No such delivery job."));
    }
    // A delivered receipt cancels the SMS's standby voice call; a failed one places it now.
    callsign_core::delivery::receipt_recorded(&app, &job, outcome.state).await;
    let mut details = outcome.event_details();
    details.insert("job_id".into(), json!(job.id));
    details.insert("channel".into(), json!(job.channel));
    details.insert(
        "authenticator_id".into(),
        job.enrollment_id.as_ref().map_or(Value::Null, |e| json!(format!("{}|{e}", job.channel))),
    );
    tracing::info!(job = %job.id, status = ?outcome.receipt.get("status"), "delivery receipt recorded");
    events::record(
        &app,
        "gd_delivery_receipt",
        &meta,
        EventCtx { user_id: job.user_id.clone(), details: Value::Object(details), ..Default::default() },
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
