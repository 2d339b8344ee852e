//! Applications: the list (`GET /api/v2/clients`), a new one (`POST /clients`), one application's URLs and grant
//! types (`GET` / `PATCH /clients/{id}`), and a new secret (`POST /clients/{id}/rotate-secret`). A client secret is
//! shown once, on the answer to the POST that made it (never on a page that a GET can show again).
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use maud::html;
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::seg;
use super::ui::{self, Nav, lines, list_of, s};
use super::{Ctx, Page, Posted, internal};
use crate::app::AppState;

pub const PAGE: &str = "/dashboard/applications";

const APP_TYPES: &[(&str, &str)] = &[
    ("regular_web", "Regular web application"),
    ("spa", "Single-page application"),
    ("native", "Native or mobile application"),
    ("non_interactive", "Machine to machine"),
];

const GRANTS: &[(&str, &str)] = &[
    ("authorization_code", "Authorization code (Universal Login)"),
    ("refresh_token", "Refresh token"),
    ("implicit", "Implicit (ID token from /authorize)"),
    ("client_credentials", "Client credentials"),
    ("password", "Password"),
    ("http://auth0.com/oauth/grant-type/password-realm", "Password realm"),
    ("http://auth0.com/oauth/grant-type/mfa-oob", "MFA: out-of-band code (SMS, voice)"),
    ("http://auth0.com/oauth/grant-type/mfa-recovery-code", "MFA: recovery code"),
];

pub async fn list(State(app): State<AppState>, ctx: Ctx) -> Page {
    render_list(&app, &ctx, StatusCode::OK, None, None).await
}

async fn render_list(
    app: &AppState,
    ctx: &Ctx,
    status: StatusCode,
    error: Option<&str>,
    typed: Option<&NewForm>,
) -> Page {
    let api = ctx.api(app).await?;
    let clients = api.get("/clients?per_page=100").await.map_err(internal)?;
    let clients = clients.as_array().cloned().unwrap_or_default();
    let name = typed.map_or("", |t| t.name.as_str());
    let chosen = typed.map_or("regular_web", |t| t.app_type.as_str());
    let body = html! {
        @if clients.is_empty() {
            p { "No application yet." }
        } @else {
            table id="apps" {
                caption class="visually-hidden" { "Applications" }
                thead { tr { th scope="col" { "Name" } th scope="col" { "Type" } th scope="col" { "Client id" } } }
                tbody {
                    @for c in &clients {
                        tr {
                            td { a href={ (PAGE) "/" (seg(s(c, "client_id"))) } { (s(c, "name")) } }
                            td { (s(c, "app_type")) }
                            td { code { (s(c, "client_id")) } }
                        }
                    }
                }
            }
        }
        section class="panel" id="new" aria-labelledby="new-h" {
            h2 id="new-h" { "New application" }
            (ui::error(error))
            form method="post" action={ (PAGE) "/new" } {
                (ui::csrf(app, ctx))
                label for="a-name" { "Name" }
                input type="text" id="a-name" name="name" value=(name) required maxlength="255";
                label for="a-type" { "Type" }
                select id="a-type" name="app_type" {
                    @for (v, label) in APP_TYPES {
                        option value=(v) selected[*v == chosen] { (label) }
                    }
                }
                button type="submit" { "Create application" }
            }
        }
    };
    Ok((status, ui::shell(app, ctx, Nav::Apps, "Applications", body)).into_response())
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct NewForm {
    name: String,
    app_type: String,
}

/// The page that shows a new client secret, once, as the answer to the POST that made it.
fn secret_page(app: &AppState, ctx: &Ctx, c: &Value, title: &str) -> axum::response::Response {
    let id = s(c, "client_id");
    let body = html! {
        section class="panel" aria-labelledby="secret-h" {
            h2 id="secret-h" { "Client secret" }
            p { "Copy it now: it is shown only this once, and stored only as a hash." }
            label for="client-id" { "Client id" }
            input type="text" id="client-id" readonly value=(id);
            label for="client-secret" { "Client secret" }
            input type="text" id="client-secret" readonly value=(s(c, "client_secret"));
            p { a href={ (PAGE) "/" (seg(id)) } { "Continue to " (s(c, "name")) } }
        }
    };
    ui::shell(app, ctx, Nav::Apps, title, body).into_response()
}

pub async fn create(State(app): State<AppState>, p: Posted<NewForm>) -> Page {
    let ctx = p.ctx;
    let api = ctx.api(&app).await?;
    let body = json!({"name": p.form.name.trim(), "app_type": p.form.app_type});
    match api.post("/clients", &body).await {
        Ok(c) => Ok(secret_page(&app, &ctx, &c, "Application created")),
        Err(e) if e.status < 500 => {
            render_list(&app, &ctx, StatusCode::BAD_REQUEST, Some(&e.message), Some(&p.form)).await
        }
        Err(e) => Err(internal(e)),
    }
}

pub async fn show(State(app): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Page {
    render_app(&app, &ctx, &id, StatusCode::OK, None, None).await
}

async fn render_app(
    app: &AppState,
    ctx: &Ctx,
    id: &str,
    status: StatusCode,
    error: Option<&str>,
    typed: Option<Value>,
) -> Page {
    let api = ctx.api(app).await?;
    let c =
        match api.get(&format!("/clients/{}", seg(id))).await {
            Ok(c) => c,
            Err(e) if e.status == 404 => {
                return Ok((StatusCode::NOT_FOUND, ui::shell(app, ctx, Nav::Apps, "Application not found", html! {
                p { "There is no application " code { (id) } "." } p { a href=(PAGE) { "All applications" } }
            }))
                .into_response());
            }
            Err(e) => return Err(internal(e)),
        };
    let shown = typed.unwrap_or_else(|| c.clone());
    let granted = |g: &str| shown["grant_types"].as_array().is_some_and(|a| a.iter().any(|v| v == g));
    let action = format!("{PAGE}/{}", seg(id));
    let body = html! {
        p { "Client id " code { (s(&c, "client_id")) } " · " (s(&c, "app_type")) }
        section class="panel" id="settings" aria-labelledby="settings-h" {
            h2 id="settings-h" { "Settings" }
            (ui::error(error))
            form method="post" action=(action) {
                (ui::csrf(app, ctx))
                label for="a-name" { "Name" }
                input type="text" id="a-name" name="name" value=(s(&shown, "name")) required maxlength="255";
                label for="a-callbacks" { "Allowed callback URLs (one per line)" }
                textarea id="a-callbacks" name="callbacks" rows="3" { (lines(&shown["callbacks"])) }
                label for="a-logout" { "Allowed logout URLs (one per line)" }
                textarea id="a-logout" name="allowed_logout_urls" rows="2" { (lines(&shown["allowed_logout_urls"])) }
                label for="a-origins" { "Allowed web origins (one per line)" }
                textarea id="a-origins" name="web_origins" rows="2" { (lines(&shown["web_origins"])) }
                fieldset {
                    legend { "Grant types" }
                    @for (g, label) in GRANTS {
                        label class="choice" {
                            input type="checkbox" name="grant_types" value=(g) checked[granted(g)];
                            (label)
                        }
                    }
                }
                button type="submit" { "Save application" }
            }
        }
        section class="panel" id="secret" aria-labelledby="secret-h" {
            h2 id="secret-h" { "Client secret" }
            p { "A new secret replaces the current one at once: applications using the old one stop working." }
            form method="post" action={ (action) "/rotate-secret" } {
                (ui::csrf(app, ctx))
                button type="submit" class="secondary" { "Rotate the secret" }
            }
        }
    };
    Ok((status, ui::shell(app, ctx, Nav::Apps, &format!("Application {}", s(&c, "name")), body)).into_response())
}

/// The settings form: repeated `grant_types` checkboxes, so it is read as pairs.
pub async fn update(State(app): State<AppState>, Path(id): Path<String>, p: Posted<Vec<(String, String)>>) -> Page {
    let ctx = p.ctx;
    let get = |k: &str| p.form.iter().find(|(n, _)| n == k).map_or("", |(_, v)| v.as_str());
    let grants: Vec<&str> = p.form.iter().filter(|(n, _)| n == "grant_types").map(|(_, v)| v.as_str()).collect();
    let body = json!({
        "name": get("name").trim(),
        "callbacks": list_of(get("callbacks")),
        "allowed_logout_urls": list_of(get("allowed_logout_urls")),
        "web_origins": list_of(get("web_origins")),
        "grant_types": grants,
    });
    let api = ctx.api(&app).await?;
    match api.patch(&format!("/clients/{}", seg(&id)), &body).await {
        Ok(_) => {
            let mut ctx = ctx;
            ctx.flash_and_go(&app, "Application saved.", &format!("{PAGE}/{}", seg(&id))).await
        }
        Err(e) if e.status < 500 => {
            render_app(&app, &ctx, &id, StatusCode::BAD_REQUEST, Some(&e.message), Some(body)).await
        }
        Err(e) => Err(internal(e)),
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct NoFields {}

pub async fn rotate(State(app): State<AppState>, Path(id): Path<String>, p: Posted<NoFields>) -> Page {
    let ctx = p.ctx;
    let api = ctx.api(&app).await?;
    match api.post(&format!("/clients/{}/rotate-secret", seg(&id)), &json!({})).await {
        Ok(c) => Ok(secret_page(&app, &ctx, &c, "New client secret")),
        Err(e) if e.status < 500 => render_app(&app, &ctx, &id, StatusCode::BAD_REQUEST, Some(&e.message), None).await,
        Err(e) => Err(internal(e)),
    }
}
