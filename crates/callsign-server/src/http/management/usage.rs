//! Usage triggers, prices and the alert webhook (`callsign_core::usage`, `callsign_core::alerts`), a Callsign
//! extension in the style of the destination policy.
//!
//! - `GET /api/v2/guardian/factors/phone/usage` (`read:phone_usage`): `{currency, prices, triggers,
//!   alert_webhook: {url, secret_set}}`, defaults filled in (the shipped price table, no triggers, no webhook).
//! - `PUT` (`update:phone_usage`): replaces `prices` and `triggers` (what the body leaves out takes its default).
//!   `PATCH` (same scope): a JSON merge patch (RFC 7396) over them (a country's price set to `null` goes back to
//!   the default; `triggers` is replaced whole). On both, `alert_webhook` when present sets the webhook
//!   (`{"url": …}` or `{"url": null}`; `secret` optional: a `whsec_…` value to sign with; without one, one is made
//!   the first time a URL is set and answered once, as `alert_webhook.secret`); when absent the webhook is kept.
//!   Bad input is a 400 naming the property. `gd_tenant_update` on every write (never with a secret).
//! - `GET /api/v2/guardian/factors/phone/usage/current` (`read:phone_usage`): this hour's, day's and month's
//!   counts and spend per channel and country, and each trigger's state.
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use callsign_core::usage::{self, UsageSettings};
use serde_json::{Map, Value, json};

use super::documents::merge_patch;
use super::guardian::changed;
use super::{Mgmt, ReadPhoneUsage, UpdatePhoneUsage};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Body, RequestMeta};

pub const PATH: &str = "/guardian/factors/phone/usage";
pub const CURRENT_PATH: &str = "/guardian/factors/phone/usage/current";

pub fn routes() -> Router<AppState> {
    Router::new().route(PATH, get(read).put(replace).patch(merge)).route(CURRENT_PATH, get(current))
}

fn settings_view(s: &UsageSettings) -> Value {
    serde_json::to_value(s).unwrap_or(Value::Null)
}

/// The whole resource.
async fn view(app: &AppState, s: &UsageSettings) -> Result<Value, ApiError> {
    let hook = callsign_core::alerts::webhook(app).await.map_err(ApiError::internal)?;
    let secret_set = callsign_core::alerts::has_secret(app).await.map_err(ApiError::internal)?;
    let mut v = settings_view(s);
    v["currency"] = json!("USD");
    v["alert_webhook"] = json!({"url": hook.url, "secret_set": secret_set});
    Ok(v)
}

async fn read(_: Mgmt<ReadPhoneUsage>, State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let s = usage::load(&app).await.map_err(ApiError::internal)?;
    Ok(Json(view(&app, &s).await?))
}

async fn current(_: Mgmt<ReadPhoneUsage>, State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(usage::current(&app).await.map_err(ApiError::internal)?))
}

/// The body's parts: the settings document's (`prices`, `triggers`) and the webhook's, after checking `currency`.
fn split(body: Value) -> Result<(Map<String, Value>, Option<Value>), ApiError> {
    let Value::Object(mut o) = body else { return Err(ApiError::invalid_payload("Expected type object")) };
    match o.remove("currency") {
        None => {}
        Some(Value::String(c)) if c == "USD" => {}
        Some(_) => return Err(ApiError::invalid_property("currency", "prices are in US dollars: `USD`")),
    }
    let hook = o.remove("alert_webhook");
    Ok((o, hook))
}

fn parse(app: &AppState, doc: &Value) -> Result<UsageSettings, ApiError> {
    usage::parse(doc, app.rng.as_ref()).map_err(|(prop, msg)| ApiError::invalid_property(&prop, msg))
}

/// `alert_webhook` of a write: `(url, secret)`, checked for shape (the URL rule is checked when it is set).
fn webhook_body(v: &Value) -> Result<(Option<String>, Option<String>), ApiError> {
    let Some(o) = v.as_object() else { return Err(ApiError::invalid_property("alert_webhook", "expected an object")) };
    for k in o.keys() {
        if !matches!(k.as_str(), "url" | "secret" | "secret_set") {
            return Err(ApiError::invalid_property(&format!("alert_webhook.{k}"), format!("unknown property `{k}`")));
        }
    }
    let string = |f: &str| match o.get(f) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid_property(&format!("alert_webhook.{f}"), "expected a string")),
    };
    Ok((string("url")?, string("secret")?))
}

async fn replace(
    m: Mgmt<UpdatePhoneUsage>,
    State(app): State<AppState>,
    meta: RequestMeta,
    Body(body): Body<Value>,
) -> Result<Json<Value>, ApiError> {
    let (doc, hook) = split(body)?;
    let new = parse(&app, &Value::Object(doc))?;
    write(&app, &meta, &m.caller.client_id, hook, |s| {
        *s = new.clone();
        Ok(())
    })
    .await
}

async fn merge(
    m: Mgmt<UpdatePhoneUsage>,
    State(app): State<AppState>,
    meta: RequestMeta,
    Body(body): Body<Value>,
) -> Result<Json<Value>, ApiError> {
    let (patch, hook) = split(body)?;
    let patch = Value::Object(patch);
    let app2 = app.clone();
    write(&app, &meta, &m.caller.client_id, hook, move |s| {
        let mut doc = settings_view(s);
        merge_patch(&mut doc, &patch);
        *s = parse(&app2, &doc)?;
        Ok(())
    })
    .await
}

/// Check the webhook part, apply `change` to the settings (compare-and-set), set the webhook, log, answer.
async fn write(
    app: &AppState,
    meta: &RequestMeta,
    client_id: &str,
    hook: Option<Value>,
    change: impl FnMut(&mut UsageSettings) -> Result<(), ApiError>,
) -> Result<Json<Value>, ApiError> {
    let hook = hook.as_ref().map(webhook_body).transpose()?;
    if let Some((Some(url), _)) = &hook
        && !url.trim().is_empty()
        && let Err(e) = callsign_messaging::transport::check_url(url)
    {
        return Err(ApiError::invalid_property("alert_webhook.url", e));
    }
    if let Some((_, Some(secret))) = &hook
        && !callsign_messaging::transport::secret_key(secret)
            .is_ok_and(|k| k.len() >= 24 && secret.starts_with(callsign_messaging::transport::SECRET_PREFIX))
    {
        return Err(ApiError::invalid_property(
            "alert_webhook.secret",
            "a signing secret is `whsec_` and the base64 of at least 24 bytes",
        ));
    }
    let saved = usage::modify(app, change).await.map_err(ApiError::internal)??;
    let made = match &hook {
        Some((url, secret)) => callsign_core::alerts::set_webhook(app, url.as_deref(), secret.as_deref())
            .await
            .map_err(ApiError::internal)?
            .map_err(|(prop, msg)| ApiError::invalid_property(&prop, msg))?,
        None => None,
    };
    let mut answer = view(app, &saved).await?;
    changed(app, meta, client_id, json!({"phone_usage": answer})).await;
    if let Some(secret) = made {
        answer["alert_webhook"]["secret"] = json!(secret.as_str());
    }
    Ok(Json(answer))
}
