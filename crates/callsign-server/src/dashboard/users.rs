//! Users: search by email (`GET /api/v2/users?q=email:"…"`), a user with their phone enrollments
//! (`GET /api/v2/users/{id}` and `…/authentication-methods`, numbers masked), and "reset MFA"
//! (`DELETE /api/v2/users/{id}/authenticators`); and whether the database connection takes public sign-ups
//! (`GET|PATCH /api/v2/connections…`, `options.disable_signup`).
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use maud::html;
use serde::Deserialize;
use serde_json::Value;

use super::api::{query, seg};
use super::ui::{self, Nav, s};
use super::{Ctx, Page, Posted, has_role, internal};
use crate::app::AppState;

const PER_PAGE: u32 = 25;

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    email: String,
    page: Option<u32>,
}

pub async fn list(State(app): State<AppState>, ctx: Ctx, Query(q): Query<ListQuery>) -> Page {
    let api = ctx.api(&app).await?;
    let page = q.page.unwrap_or(0);
    let email = q.email.trim().to_owned();
    let filter = if email.is_empty() { String::new() } else { format!("email:\"{email}\"") };
    let path = format!(
        "/users?{}",
        query(&[
            ("q", &filter),
            ("page", &page.to_string()),
            ("per_page", &PER_PAGE.to_string()),
            ("include_totals", "true")
        ])
    );
    let (users, total, error) = match api.get(&path).await {
        Ok(v) => (
            v.get("users").and_then(Value::as_array).cloned().unwrap_or_default(),
            v.get("total").and_then(Value::as_u64).unwrap_or(0),
            None,
        ),
        Err(e) if e.status < 500 => (Vec::new(), 0, Some(e.message)),
        Err(e) => return Err(internal(e)),
    };
    let link = |p: u32| format!("/dashboard/users?{}", query(&[("email", &email), ("page", &p.to_string())]));
    let connection = api.get("/connections").await.map_err(internal)?;
    let open = connection.get(0).and_then(|c| c["options"]["disable_signup"].as_bool()).is_some_and(|d| !d);
    let body = html! {
        section class="panel" aria-labelledby="signup-h" {
            h2 id="signup-h" { "Public sign-up" }
            p id="signup-state" {
                @if open {
                    "On: anyone can create an account on the login pages (" code { "/authorize?screen_hint=signup" }
                    ") and through " code { "POST /dbconnections/signup" } ". Suspicious IP throttling limits sign-ups per IP."
                } @else {
                    "Off: only operators create accounts (here or through the Management API). This is the default."
                }
            }
            form method="post" action="/dashboard/users/signup" {
                (ui::csrf(&app, &ctx))
                input type="hidden" name="open" value=(if open { "off" } else { "on" });
                button type="submit" id="signup-toggle" { @if open { "Turn sign-up off" } @else { "Turn sign-up on" } }
            }
        }
        form method="get" action="/dashboard/users" role="search" class="filters" {
            label for="email" { "Email" }
            div class="row" {
                input id="email" name="email" type="email" value=(email) autocomplete="off";
                button type="submit" { "Search" }
            }
        }
        (ui::error(error.as_deref()))
        @if users.is_empty() {
            p { @if email.is_empty() { "No users yet." } @else { "No user has the email " (email) "." } }
        } @else {
            table {
                caption class="visually-hidden" { "Users" }
                thead { tr {
                    th scope="col" { "Email" } th scope="col" { "User id" } th scope="col" { "Operator" }
                    th scope="col" { "Logins" } th scope="col" { "Created" }
                } }
                tbody {
                    @for u in &users {
                        tr {
                            td { a href={ "/dashboard/users/" (seg(s(u, "user_id"))) } { (s(u, "email")) } }
                            td { code { (s(u, "user_id")) } }
                            td { @if u.get("app_metadata").and_then(Value::as_object).is_some_and(has_role) { "yes" } @else { "no" } }
                            td { (u.get("logins_count").and_then(Value::as_u64).unwrap_or(0)) }
                            td { (s(u, "created_at")) }
                        }
                    }
                }
            }
            (pager(page, total, &link))
        }
    };
    Ok(ui::shell(&app, &ctx, Nav::Users, "Users", body).into_response())
}

/// "Previous / Next" links and where we are.
pub fn pager(page: u32, total: u64, link: &dyn Fn(u32) -> String) -> maud::Markup {
    let per = u64::from(PER_PAGE);
    let pages = total.div_ceil(per).max(1);
    html! {
        nav class="pager" aria-label="Pages" {
            @if page > 0 { a href=(link(page - 1)) rel="prev" { "Previous" } }
            span { "Page " (u64::from(page) + 1) " of " (pages) " (" (total) " in all)" }
            @if u64::from(page) + 1 < pages { a href=(link(page + 1)) rel="next" { "Next" } }
        }
    }
}

pub async fn show(State(app): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Page {
    render_user(&app, &ctx, &id, StatusCode::OK, None).await
}

async fn render_user(app: &AppState, ctx: &Ctx, id: &str, status: StatusCode, error: Option<&str>) -> Page {
    let api = ctx.api(app).await?;
    let user = match api.get(&format!("/users/{}", seg(id))).await {
        Ok(u) => u,
        Err(e) if e.status == 404 => {
            return Err(super::message_page(StatusCode::NOT_FOUND, "User not found", "The user does not exist."));
        }
        Err(e) => return Err(internal(e)),
    };
    let methods = api.get(&format!("/users/{}/authentication-methods", seg(id))).await.map_err(internal)?;
    let methods = methods.as_array().cloned().unwrap_or_default();
    let operator = user.get("app_metadata").and_then(Value::as_object).is_some_and(has_role);
    let title = format!("User {}", s(&user, "email"));
    let body = html! {
        p { a href="/dashboard/users" { "← All users" } }
        (ui::error(error))
        dl class="facts" {
            dt { "Email" } dd { (s(&user, "email")) }
            dt { "User id" } dd { code { (s(&user, "user_id")) } }
            dt { "Operator" } dd { @if operator { "yes (callsign:admin)" } @else { "no" } }
            dt { "Blocked" } dd { @if user.get("blocked") == Some(&Value::Bool(true)) { "yes" } @else { "no" } }
            dt { "Logins" } dd { (user.get("logins_count").and_then(Value::as_u64).unwrap_or(0)) }
            dt { "Last login" } dd { (s(&user, "last_login")) }
            dt { "Created" } dd { (s(&user, "created_at")) }
        }
        p { a href={ "/dashboard/logs?" (query(&[("user_id", s(&user, "user_id"))])) } { "This user's log events" } }
        section class="panel" aria-labelledby="mfa-h" {
            h2 id="mfa-h" { "Multi-factor authentication" }
            @if methods.is_empty() {
                p { "No enrolled factor." }
            } @else {
                table {
                    caption class="visually-hidden" { "Enrolled factors" }
                    thead { tr {
                        th scope="col" { "Type" } th scope="col" { "Phone number" } th scope="col" { "Confirmed" }
                        th scope="col" { "Preferred" } th scope="col" { "Enrolled" } th scope="col" { "Last used" }
                    } }
                    tbody {
                        @for m in &methods {
                            tr {
                                td { (s(m, "type")) }
                                td { (s(m, "phone_number")) }
                                td { @if m.get("confirmed") == Some(&Value::Bool(true)) { "yes" } @else { "no" } }
                                td { (s(m, "preferred_authentication_method")) }
                                td { (s(m, "enrolled_at")) }
                                td { (s(m, "last_auth_at")) }
                            }
                        }
                    }
                }
            }
            form method="post" action={ "/dashboard/users/" (seg(id)) "/reset-mfa" } {
                (ui::csrf(app, ctx))
                p class="hint" id="reset-hint" {
                    "Removes every enrolled factor (phones and the recovery code). The user enrolls again at the next login."
                }
                button type="submit" class="danger" aria-describedby="reset-hint" { "Reset MFA" }
            }
        }
    };
    Ok((status, ui::shell(app, ctx, Nav::Users, &title, body)).into_response())
}

#[derive(Debug, Deserialize, Default)]
pub struct NoFields {}

pub async fn reset_mfa(State(app): State<AppState>, Path(id): Path<String>, p: Posted<NoFields>) -> Page {
    let mut ctx = p.ctx;
    let api = ctx.api(&app).await?;
    match api.delete(&format!("/users/{}/authenticators", seg(&id))).await {
        Ok(_) => {
            let to = format!("/dashboard/users/{}", seg(&id));
            ctx.flash_and_go(&app, "MFA reset: every enrolled factor of this user was removed.", &to).await
        }
        Err(e) if e.status < 500 => render_user(&app, &ctx, &id, StatusCode::BAD_REQUEST, Some(&e.message)).await,
        Err(e) => Err(internal(e)),
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct SignupFields {
    open: String,
}

/// Turn public sign-up on or off (`PATCH /api/v2/connections/{id}` with `options.disable_signup`).
pub async fn set_signup(State(app): State<AppState>, p: Posted<SignupFields>) -> Page {
    let mut ctx = p.ctx;
    let open = match p.form.open.as_str() {
        "on" => true,
        "off" => false,
        _ => return ctx.flash_and_go(&app, "Choose on or off.", "/dashboard/users").await,
    };
    let api = ctx.api(&app).await?;
    let list = api.get("/connections").await.map_err(internal)?;
    let id = list.get(0).map(|c| s(c, "id")).unwrap_or_default();
    let body = serde_json::json!({"options": {"disable_signup": !open}});
    match api.patch(&format!("/connections/{}", seg(id)), &body).await {
        Ok(_) => {
            let message = if open { "Public sign-up is on." } else { "Public sign-up is off." };
            ctx.flash_and_go(&app, message, "/dashboard/users").await
        }
        Err(e) if e.status < 500 => ctx.flash_and_go(&app, e.message, "/dashboard/users").await,
        Err(e) => Err(internal(e)),
    }
}
