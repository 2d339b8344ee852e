//! The development inbox: what the built-in provider "sent" (`GET /api/v2/dev-inbox`), newest first.
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use maud::html;
use serde::Deserialize;
use serde_json::Value;

use super::api::query;
use super::ui::{self, Nav, s};
use super::users::pager;
use super::{Ctx, Page, internal};
use crate::app::AppState;

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct InboxQuery {
    page: Option<u32>,
}

pub async fn list(State(app): State<AppState>, ctx: Ctx, Query(q): Query<InboxQuery>) -> Page {
    let api = ctx.api(&app).await?;
    let page = q.page.unwrap_or(0);
    let path =
        format!("/dev-inbox?{}", query(&[("page", &page.to_string()), ("per_page", "25"), ("include_totals", "true")]));
    let v = api.get(&path).await.map_err(internal)?;
    let messages = v.get("messages").and_then(Value::as_array).cloned().unwrap_or_default();
    let total = v.get("total").and_then(Value::as_u64).unwrap_or(0);
    let remaining = app.config.dev_provider_cap.saturating_sub(total);
    let link = |p: u32| format!("/dashboard/inbox?{}", query(&[("page", &p.to_string())]));
    let body = html! {
        p {
            "Messages the built-in development provider recorded instead of delivering. "
            strong { (remaining) " of " (app.config.dev_provider_cap) " messages left." }
        }
        @if messages.is_empty() {
            p { "No messages yet." }
        } @else {
            table id="inbox" {
                caption class="visually-hidden" { "Messages, newest first" }
                thead { tr {
                    th scope="col" { "Date" } th scope="col" { "To" } th scope="col" { "Channel" } th scope="col" { "Text" }
                } }
                tbody {
                    @for m in &messages {
                        tr {
                            td { (s(m, "created_at")) }
                            td { (s(m, "to")) }
                            td { @if s(m, "channel") == "voice" { "Voice" } @else { "SMS" } }
                            td class="message-text" { (s(m, "text")) }
                        }
                    }
                }
            }
            (pager(page, total, &link))
        }
    };
    Ok(ui::shell(&app, &ctx, Nav::Inbox, "Development inbox", body).into_response())
}
