//! `GET|PATCH /api/v2/tenants/settings`.
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::{Mgmt, ReadTenant, UpdateTenant};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::Body;

pub fn routes() -> Router<AppState> {
    Router::new().route("/tenants/settings", get(read).patch(update))
}

pub use callsign_core::tenant::TenantSettings;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Patch {
    friendly_name: Option<String>,
    support_email: Option<String>,
    support_url: Option<String>,
    picture_url: Option<String>,
    default_locale: Option<String>,
    enabled_locales: Option<Vec<String>>,
}

pub async fn load(app: &AppState) -> Result<TenantSettings, ApiError> {
    callsign_core::tenant::load(app).await.map_err(ApiError::internal)
}

fn render(s: TenantSettings) -> Value {
    serde_json::json!({
        "friendly_name": s.friendly_name.unwrap_or_else(|| "Callsign".to_owned()),
        "support_email": s.support_email.unwrap_or_default(),
        "support_url": s.support_url.unwrap_or_default(),
        "picture_url": s.picture_url.unwrap_or_default(),
        "default_locale": s.default_locale.clone().unwrap_or_else(|| "en".to_owned()),
        "enabled_locales": s.enabled_locales.unwrap_or_else(|| vec![s.default_locale.unwrap_or_else(|| "en".to_owned())]),
    })
}

async fn read(_: Mgmt<ReadTenant>, State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(render(load(&app).await?)))
}

fn is_locale(s: &str) -> bool {
    let mut parts = s.split('-');
    let lang = parts.next().unwrap_or_default();
    (2..=3).contains(&lang.len())
        && lang.bytes().all(|b| b.is_ascii_lowercase())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn is_http_url(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://")) && !s.contains(char::is_whitespace)
}

async fn update(
    _: Mgmt<UpdateTenant>,
    State(app): State<AppState>,
    Body(p): Body<Patch>,
) -> Result<Json<Value>, ApiError> {
    let s = callsign_core::tenant::modify(&app, |s| -> Result<(), ApiError> {
        let p = p.clone();
        if let Some(v) = p.friendly_name {
            if v.chars().count() > 255 {
                return Err(ApiError::bad_request(
                    "Payload validation error: 'String is too long' on property friendly_name.",
                ));
            }
            s.friendly_name = Some(v);
        }
        if let Some(v) = p.support_email {
            if !v.is_empty() {
                callsign_domain::user::Email::parse(&v).map_err(|_| {
                    ApiError::bad_request("Payload validation error: 'Invalid email' on property support_email.")
                })?;
            }
            s.support_email = Some(v);
        }
        for (name, val, slot) in
            [("support_url", p.support_url, &mut s.support_url), ("picture_url", p.picture_url, &mut s.picture_url)]
        {
            if let Some(v) = val {
                if !v.is_empty() && !is_http_url(&v) {
                    return Err(ApiError::bad_request(format!(
                        "Payload validation error: 'Invalid URL' on property {name}."
                    )));
                }
                *slot = Some(v);
            }
        }
        if let Some(v) = p.default_locale {
            if !is_locale(&v) {
                return Err(ApiError::bad_request(format!(
                    "Payload validation error: '`{v}` is not a locale' on property default_locale."
                )));
            }
            s.default_locale = Some(v);
        }
        if let Some(list) = p.enabled_locales {
            if list.is_empty() {
                return Err(ApiError::bad_request("Payload validation error: 'enabled_locales must not be empty'."));
            }
            if let Some(bad) = list.iter().find(|l| !is_locale(l)) {
                return Err(ApiError::bad_request(format!(
                    "Payload validation error: '`{bad}` is not a locale' on property enabled_locales."
                )));
            }
            s.enabled_locales = Some(list);
        }
        if let (Some(default), Some(enabled)) = (&s.default_locale, &s.enabled_locales)
            && !enabled.contains(default)
        {
            return Err(ApiError::bad_request(format!(
                "Payload validation error: 'default_locale `{default}` must be one of enabled_locales'."
            )));
        }
        Ok(())
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(render(s)))
}
