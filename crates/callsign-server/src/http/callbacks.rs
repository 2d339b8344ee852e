//! Delivery receipts pushed by phone providers.
//!
//! `POST /callbacks/twilio/status/{job_id}`: Twilio's message / call status callback (the `StatusCallback` every
//! Twilio send names). The request must carry a valid `X-Twilio-Signature` for the configured auth token over the
//! public URL of this endpoint and every posted parameter; anything else is refused with 403 and not read further.
//! A verified callback appends `{provider, status, error_code, sid, …}` to the job's `details.receipts` and
//! records a `gd_delivery_receipt` log event.
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{Path, RequestMeta};
use crate::app::AppState;
use crate::identity::events::{self, EventCtx};
use crate::mfa::twilio;

pub fn routes() -> Router<AppState> {
    Router::new().route("/callbacks/twilio/status/{job_id}", post(twilio_status))
}

fn forbidden() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "Invalid or missing X-Twilio-Signature.").code("invalid_signature")
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

async fn twilio_status(
    State(app): State<AppState>,
    Path(job_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    meta: RequestMeta,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    // Signature first: nothing about the job is looked at for an unsigned request.
    let Some(given) = headers.get("x-twilio-signature").and_then(|v| v.to_str().ok()) else {
        tracing::warn!(job = %job_id, "a Twilio callback without X-Twilio-Signature was refused");
        return Err(forbidden());
    };
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).map_err(|_| forbidden())?;
    let token = match twilio::auth_token(&app).await {
        Ok(Some(t)) => t,
        Ok(None) => {
            tracing::warn!(job = %job_id, "a Twilio callback arrived but no auth token is configured to verify it");
            return Err(forbidden());
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    let mut url = twilio::callback_url(&app, &job_id);
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(&q);
    }
    if !twilio::verify(&token, &url, &params, given) {
        tracing::warn!(job = %job_id, "a Twilio callback with a wrong X-Twilio-Signature was refused");
        return Err(forbidden());
    }

    let Some(job) = app.store.get_job(&job_id).await? else {
        return Err(ApiError::not_found("No such delivery job."));
    };
    if job.provider != twilio::PROVIDER {
        return Err(ApiError::not_found("No such Twilio delivery job."));
    }
    let status = param(&params, "MessageStatus")
        .or_else(|| param(&params, "CallStatus"))
        .or_else(|| param(&params, "SmsStatus"))
        .map(str::to_owned);
    let error_code = param(&params, "ErrorCode").map(|c| c.parse::<i64>().map_or_else(|_| json!(c), |n| json!(n)));
    let sid = param(&params, "MessageSid").or_else(|| param(&params, "CallSid")).or_else(|| param(&params, "SmsSid"));
    let mut receipt = json!({
        "provider": twilio::PROVIDER,
        "status": status,
        "error_code": error_code.clone().unwrap_or(Value::Null),
        "sid": sid,
    });
    if let Some(d) = param(&params, "CallDuration") {
        receipt["call_duration"] = json!(d);
    }
    if let Some(m) = param(&params, "ErrorMessage") {
        receipt["error_message"] = json!(m);
    }
    if !app.store.record_job_receipt(&job.id, &receipt, app.clock.now()).await? {
        return Err(ApiError::not_found("No such delivery job."));
    }

    let mut details = json!({
        "job_id": job.id,
        "provider": twilio::PROVIDER,
        "channel": job.channel,
        "status": status,
        "error_code": error_code.unwrap_or(Value::Null),
        "sid": sid,
        "authenticator_id": job.enrollment_id.as_ref().map(|e| format!("{}|{e}", job.channel)),
    });
    if let Some(hint) = receipt["error_code"].as_i64().and_then(twilio::code_hint) {
        details["error_hint"] = json!(hint);
    }
    tracing::info!(job = %job.id, status = ?status, "delivery receipt recorded");
    events::record(
        &app,
        "gd_delivery_receipt",
        &meta,
        EventCtx { user_id: job.user_id.clone(), details, ..Default::default() },
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
