//! Settings: the tenant's name, support contacts and default language (`GET|PATCH /api/v2/tenants/settings`), shown
//! in messages and on the login pages; and the recovery-code factor (`GET /guardian/factors`, `PUT
//! /guardian/factors/recovery-code`), the way back in for a user who lost their phone.
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ui::{self, Nav, s};
use super::{Ctx, Page, Posted, internal};
use crate::app::AppState;
use crate::login::texts::LANGS;

pub const PAGE: &str = "/dashboard/settings";

/// A refusal to show in a section, with what was typed.
#[derive(Debug, Default)]
struct View {
    tenant_error: Option<String>,
    tenant_typed: Option<Value>,
    recovery_error: Option<String>,
}

pub async fn page(State(app): State<AppState>, ctx: Ctx) -> Page {
    render(&app, &ctx, StatusCode::OK, View::default()).await
}

fn recovery_on(factors: &Value) -> bool {
    factors.as_array().into_iter().flatten().any(|f| f["name"] == "recovery-code" && f["enabled"] == json!(true))
}

async fn render(app: &AppState, ctx: &Ctx, status: StatusCode, v: View) -> Page {
    let api = ctx.api(app).await?;
    let tenant = match v.tenant_typed.clone() {
        Some(t) => t,
        None => api.get("/tenants/settings").await.map_err(internal)?,
    };
    let factors = api.get("/guardian/factors").await.map_err(internal)?;
    let body = html! {
        (tenant_section(app, ctx, &tenant, &v))
        (recovery_section(app, ctx, recovery_on(&factors), &v))
    };
    Ok((status, ui::shell(app, ctx, Nav::Settings, "Settings", body)).into_response())
}

fn tenant_section(app: &AppState, ctx: &Ctx, t: &Value, v: &View) -> Markup {
    let default = t["default_locale"].as_str().unwrap_or("en");
    html! {
        section class="panel" id="tenant" aria-labelledby="tenant-h" {
            h2 id="tenant-h" { "Tenant" }
            p class="muted" { "The name and contacts users see in SMS and voice messages (" code { "{{tenant.friendly_name}}" } ") and on the login pages." }
            (ui::error(v.tenant_error.as_deref()))
            form method="post" action="/dashboard/settings/tenant" {
                (ui::csrf(app, ctx))
                label for="t-name" { "Friendly name" }
                input type="text" id="t-name" name="friendly_name" value=(s(t, "friendly_name")) maxlength="255";
                label for="t-email" { "Support email" }
                input type="email" id="t-email" name="support_email" value=(s(t, "support_email"));
                label for="t-url" { "Support URL" }
                input type="url" id="t-url" name="support_url" value=(s(t, "support_url")) placeholder="https://example.com/support";
                label for="t-locale" { "Default language" }
                select id="t-locale" name="default_locale" {
                    @for l in LANGS {
                        option value=(l) selected[*l == default] { (l) }
                    }
                }
                button type="submit" { "Save tenant settings" }
            }
        }
    }
}

fn recovery_section(app: &AppState, ctx: &Ctx, on: bool, v: &View) -> Markup {
    html! {
        section class="panel" id="recovery" aria-labelledby="recovery-h" {
            h2 id="recovery-h" { "Multi-factor Auth: Recovery Code" }
            p id="recovery-state" {
                @if on {
                    "On: each user gets a recovery code when they enroll a phone, and can log in with it once if they lose the phone."
                } @else {
                    "Off: a user who loses their phone needs an operator to reset their MFA."
                }
            }
            (ui::error(v.recovery_error.as_deref()))
            form method="post" action="/dashboard/settings/recovery-code" {
                (ui::csrf(app, ctx))
                input type="hidden" name="enabled" value=(if on { "off" } else { "on" });
                button type="submit" id="recovery-toggle" { @if on { "Turn recovery codes off" } @else { "Turn recovery codes on" } }
            }
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct TenantForm {
    friendly_name: String,
    support_email: String,
    support_url: String,
    default_locale: String,
}

pub async fn set_tenant(State(app): State<AppState>, p: Posted<TenantForm>) -> Page {
    let mut ctx = p.ctx;
    let f = p.form;
    let mut body = json!({
        "support_email": f.support_email.trim(),
        "support_url": f.support_url.trim(),
        "default_locale": f.default_locale,
    });
    // A blank name keeps the one there is (messages would otherwise name nobody).
    if !f.friendly_name.trim().is_empty() {
        body["friendly_name"] = json!(f.friendly_name.trim());
    }
    let api = ctx.api(&app).await?;
    match api.patch("/tenants/settings", &body).await {
        Ok(_) => ctx.flash_and_go(&app, "Tenant settings saved.", &format!("{PAGE}#tenant")).await,
        Err(e) if e.status < 500 => {
            let v = View { tenant_error: Some(e.message), tenant_typed: Some(body), ..Default::default() };
            render(&app, &ctx, StatusCode::BAD_REQUEST, v).await
        }
        Err(e) => Err(internal(e)),
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct RecoveryForm {
    enabled: String,
}

pub async fn set_recovery(State(app): State<AppState>, p: Posted<RecoveryForm>) -> Page {
    let mut ctx = p.ctx;
    let enabled = match p.form.enabled.as_str() {
        "on" => true,
        "off" => false,
        _ => {
            let v = View { recovery_error: Some("Choose on or off.".into()), ..Default::default() };
            return render(&app, &ctx, StatusCode::BAD_REQUEST, v).await;
        }
    };
    let api = ctx.api(&app).await?;
    match api.put("/guardian/factors/recovery-code", &json!({"enabled": enabled})).await {
        Ok(_) => {
            let m = if enabled { "Recovery codes are on." } else { "Recovery codes are off." };
            ctx.flash_and_go(&app, m, &format!("{PAGE}#recovery")).await
        }
        Err(e) if e.status < 500 => {
            let v = View { recovery_error: Some(e.message), ..Default::default() };
            render(&app, &ctx, StatusCode::BAD_REQUEST, v).await
        }
        Err(e) => Err(internal(e)),
    }
}
