//! Logs: `GET /api/v2/logs?q=type:X AND user_id:"Y"` with paging, and one event (`GET /api/v2/logs/{id}`) with its
//! details pretty-printed.
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use maud::html;
use serde::Deserialize;
use serde_json::Value;

use super::api::{query, seg};
use super::ui::{self, Nav, s};
use super::users::pager;
use super::{Ctx, Page, internal};
use crate::app::AppState;

/// Event types offered in the filter (any other can be typed).
const TYPES: &[(&str, &str)] = &[
    ("s", "Success Login"),
    ("f", "Failed Login"),
    ("fp", "Wrong password"),
    ("fu", "Unknown user"),
    ("sapi", "API operation"),
    ("fapi", "Failed API operation"),
    ("gd_tenant_update", "MFA settings changed"),
    ("gd_send_sms", "SMS sent"),
    ("gd_send_sms_failure", "SMS failed"),
    ("gd_send_voice", "Voice call made"),
    ("gd_send_voice_failure", "Voice call failed"),
    ("gd_start_enroll", "Enrollment started"),
    ("gd_enrollment_complete", "Enrollment complete"),
    ("gd_auth_succeed", "MFA success"),
    ("gd_auth_failed", "MFA failed"),
    ("gd_otp_rate_limit_exceed", "Too many wrong codes"),
    ("gd_unenroll", "Factor removed"),
    ("seccft", "Client credentials exchange"),
];

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    #[serde(rename = "type")]
    event_type: String,
    user_id: String,
    page: Option<u32>,
}

/// The `q` of `GET /logs` for the filters.
fn log_query(event_type: &str, user_id: &str) -> String {
    let mut terms = Vec::new();
    if !event_type.is_empty() {
        terms.push(format!("type:{event_type}"));
    }
    if !user_id.is_empty() {
        terms.push(format!("user_id:\"{user_id}\""));
    }
    terms.join(" AND ")
}

pub async fn list(State(app): State<AppState>, ctx: Ctx, Query(q): Query<ListQuery>) -> Page {
    let api = ctx.api(&app).await?;
    let page = q.page.unwrap_or(0);
    let event_type = q.event_type.trim().to_owned();
    let user_id = q.user_id.trim().to_owned();
    let path = format!(
        "/logs?{}",
        query(&[
            ("q", &log_query(&event_type, &user_id)),
            ("page", &page.to_string()),
            ("per_page", "25"),
            ("include_totals", "true"),
        ])
    );
    let (logs, total, error) = match api.get(&path).await {
        Ok(v) => (
            v.get("logs").and_then(Value::as_array).cloned().unwrap_or_default(),
            v.get("total").and_then(Value::as_u64).unwrap_or(0),
            None,
        ),
        Err(e) if e.status < 500 => (Vec::new(), 0, Some(e.message)),
        Err(e) => return Err(internal(e)),
    };
    let link = |p: u32| {
        format!("/dashboard/logs?{}", query(&[("type", &event_type), ("user_id", &user_id), ("page", &p.to_string())]))
    };
    let body = html! {
        form method="get" action="/dashboard/logs" role="search" class="filters" {
            div class="row" {
                div {
                    label for="type" { "Event type" }
                    input id="type" name="type" type="text" list="event-types" value=(event_type) autocomplete="off"
                        spellcheck="false";
                    datalist id="event-types" {
                        @for (code, label) in TYPES { option value=(code) { (label) } }
                    }
                }
                div {
                    label for="user_id" { "User id" }
                    input id="user_id" name="user_id" type="text" value=(user_id) autocomplete="off" spellcheck="false";
                }
                div { button type="submit" { "Filter" } }
            }
        }
        (ui::error(error.as_deref()))
        @if logs.is_empty() {
            p { "No log events match." }
        } @else {
            table id="logs" {
                caption class="visually-hidden" { "Log events, newest first" }
                thead { tr {
                    th scope="col" { "Date" } th scope="col" { "Type" } th scope="col" { "Description" }
                    th scope="col" { "User" } th scope="col" { "Client" }
                } }
                tbody {
                    @for e in &logs {
                        tr {
                            td { a href={ "/dashboard/logs/" (seg(s(e, "log_id"))) } { (s(e, "date")) } }
                            td { code { (s(e, "type")) } }
                            td { (s(e, "description")) }
                            td { (s(e, "user_name")) @if !s(e, "user_id").is_empty() { " " code { (s(e, "user_id")) } } }
                            td { (s(e, "client_id")) }
                        }
                    }
                }
            }
            (pager(page, total, &link))
        }
    };
    Ok(ui::shell(&app, &ctx, Nav::Logs, "Logs", body).into_response())
}

pub async fn show(State(app): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Page {
    let api = ctx.api(&app).await?;
    let e = match api.get(&format!("/logs/{}", seg(&id))).await {
        Ok(e) => e,
        Err(e) if e.status == 404 => {
            return Err(super::message_page(
                StatusCode::NOT_FOUND,
                "Log event not found",
                "The log event does not exist.",
            ));
        }
        Err(e) => return Err(internal(e)),
    };
    let title = format!("Log event {}", s(&e, "type"));
    let body = html! {
        p { a href="/dashboard/logs" { "← All log events" } }
        dl class="facts" {
            dt { "Date" } dd { (s(&e, "date")) }
            dt { "Type" } dd { code { (s(&e, "type")) } " " (s(&e, "description")) }
            dt { "User" } dd { (s(&e, "user_name")) " " code { (s(&e, "user_id")) } }
            dt { "Client" } dd { (s(&e, "client_id")) " " (s(&e, "client_name")) }
            dt { "IP address" } dd { (s(&e, "ip")) }
        }
        h2 { "Event" }
        pre class="json" tabindex="0" aria-label="The event as JSON" { (ui::pretty(&e)) }
    };
    Ok(ui::shell(&app, &ctx, Nav::Logs, &title, body).into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn filters_become_the_api_query() {
        assert_eq!(super::log_query("", ""), "");
        assert_eq!(super::log_query("fp", ""), "type:fp");
        assert_eq!(super::log_query("s", "auth0|x"), "type:s AND user_id:\"auth0|x\"");
    }
}
