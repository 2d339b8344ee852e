//! Log Streams: the streams (`GET /api/v2/log-streams`) with their status, lag and last error; a new `http` stream
//! (`POST /log-streams`); a stream's name, endpoint, format and authorization (`PATCH /log-streams/{id}`); pause and
//! resume (`PATCH` `status`); delete (`DELETE /log-streams/{id}`). Other sink types are made through the API and
//! shown, paused, resumed and deleted here.
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::seg;
use super::ui::{self, Nav, s};
use super::{Ctx, Page, Posted, internal};
use crate::app::AppState;

pub const PAGE: &str = "/dashboard/log-streams";
const FORMATS: &[(&str, &str)] =
    &[("JSONARRAY", "JSON array"), ("JSONLINES", "JSON lines"), ("JSONOBJECT", "One JSON object per request")];

pub async fn page(State(app): State<AppState>, ctx: Ctx) -> Page {
    render(&app, &ctx, StatusCode::OK, None).await
}

async fn render(app: &AppState, ctx: &Ctx, status: StatusCode, error: Option<&str>) -> Page {
    let api = ctx.api(app).await?;
    let streams = api.get("/log-streams").await.map_err(internal)?;
    let streams = streams.as_array().cloned().unwrap_or_default();
    let body = html! {
        p class="muted" { "Log streams send every log event (or those of the chosen categories) to your monitoring tool as it is written. A stream whose endpoint keeps failing is suspended; fix it, then resume it: it goes on from where it stopped." }
        (ui::error(error))
        @if streams.is_empty() {
            p { "No log stream yet." }
        } @else {
            table id="streams" {
                caption class="visually-hidden" { "Log streams" }
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Type" } th scope="col" { "Status" }
                    th scope="col" { "Lag (events)" } th scope="col" { "Delivered" } th scope="col" { "Last error" }
                } }
                tbody {
                    @for st in &streams {
                        tr {
                            td { (s(st, "name")) }
                            td { (s(st, "type")) }
                            td class=(format!("status-{}", s(st, "status"))) { (s(st, "status")) }
                            td { (st["delivery"]["lag"].as_u64().unwrap_or(0)) }
                            td { (st["delivery"]["delivered"].as_u64().unwrap_or(0)) }
                            td { (st["delivery"]["last_error"].as_str().unwrap_or("—")) }
                        }
                    }
                }
            }
            @for st in &streams {
                (stream_section(app, ctx, st))
            }
        }
        (new_section(app, ctx))
    };
    Ok((status, ui::shell(app, ctx, Nav::LogStreams, "Log Streams", body)).into_response())
}

fn stream_section(app: &AppState, ctx: &Ctx, st: &Value) -> Markup {
    let id = s(st, "id");
    let key = id.replace(|c: char| !c.is_ascii_alphanumeric(), "-");
    let active = s(st, "status") == "active";
    let http = s(st, "type") == "http";
    let format = st["sink"]["httpContentFormat"].as_str().unwrap_or("JSONARRAY");
    html! {
        section class="panel" id=(format!("stream-{key}")) aria-labelledby=(format!("stream-{key}-h")) {
            h2 id=(format!("stream-{key}-h")) { (s(st, "name")) }
            p { "Status: " strong { (s(st, "status")) } ". " (st["delivery"]["lag"].as_u64().unwrap_or(0)) " events not yet handled." }
            form method="post" action=(format!("{PAGE}/{}/status", seg(id))) {
                (ui::csrf(app, ctx))
                input type="hidden" name="status" value=(if active { "paused" } else { "active" });
                button type="submit" { @if active { "Pause " (s(st, "name")) } @else { "Resume " (s(st, "name")) } }
            }
            form method="post" action=(format!("{PAGE}/{}", seg(id))) {
                (ui::csrf(app, ctx))
                label for=(format!("n-{key}")) { "Name" }
                input type="text" id=(format!("n-{key}")) name="name" value=(s(st, "name")) maxlength="100" required;
                @if http {
                    label for=(format!("e-{key}")) { "Endpoint (https)" }
                    input type="url" id=(format!("e-{key}")) name="endpoint" value=(st["sink"]["httpEndpoint"].as_str().unwrap_or(""));
                    label for=(format!("a-{key}")) { "Authorization header (blank keeps the current one)" }
                    input type="password" id=(format!("a-{key}")) name="authorization" autocomplete="off";
                    label for=(format!("f-{key}")) { "Format" }
                    select id=(format!("f-{key}")) name="format" {
                        @for (v, label) in FORMATS {
                            option value=(v) selected[*v == format] { (label) }
                        }
                    }
                }
                button type="submit" { "Save " (s(st, "name")) }
            }
            form method="post" action=(format!("{PAGE}/{}/delete", seg(id))) {
                (ui::csrf(app, ctx))
                button type="submit" class="danger" { "Delete " (s(st, "name")) }
            }
        }
    }
}

fn new_section(app: &AppState, ctx: &Ctx) -> Markup {
    html! {
        section class="panel" id="new" aria-labelledby="new-h" {
            h2 id="new-h" { "New HTTP stream" }
            p class="muted" { "Each event is POSTed as " code { "{\"log_id\", \"data\"}" } ". Datadog, Splunk and Sumo Logic streams are made through " code { "POST /api/v2/log-streams" } "." }
            form method="post" action=(PAGE) {
                (ui::csrf(app, ctx))
                label for="new-name" { "Name" }
                input type="text" id="new-name" name="name" maxlength="100" required;
                label for="new-endpoint" { "Endpoint (https)" }
                input type="url" id="new-endpoint" name="endpoint" required placeholder="https://logs.example.com/auth0";
                label for="new-authorization" { "Authorization header (optional)" }
                input type="password" id="new-authorization" name="authorization" autocomplete="off";
                label for="new-format" { "Format" }
                select id="new-format" name="format" {
                    @for (v, label) in FORMATS { option value=(v) { (label) } }
                }
                button type="submit" { "Create stream" }
            }
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct StreamForm {
    name: String,
    endpoint: String,
    authorization: String,
    format: String,
}

impl StreamForm {
    fn sink(&self) -> Value {
        let mut sink = json!({"httpEndpoint": self.endpoint.trim(), "httpContentFormat": self.format});
        if !self.authorization.trim().is_empty() {
            sink["httpAuthorization"] = json!(self.authorization.trim());
        }
        sink
    }
}

async fn answer(app: &AppState, mut ctx: Ctx, done: Result<Value, super::api::ApiFailure>, said: &str) -> Page {
    match done {
        Ok(_) => ctx.flash_and_go(app, said, PAGE).await,
        Err(e) if e.status < 500 => render(app, &ctx, StatusCode::BAD_REQUEST, Some(&e.message)).await,
        Err(e) => Err(internal(e)),
    }
}

pub async fn create(State(app): State<AppState>, p: Posted<StreamForm>) -> Page {
    let f = p.form;
    let body = json!({"name": f.name.trim(), "type": "http", "sink": f.sink()});
    let done = p.ctx.api(&app).await?.post("/log-streams", &body).await;
    answer(&app, p.ctx, done, "Log stream created.").await
}

pub async fn update(State(app): State<AppState>, Path(id): Path<String>, p: Posted<StreamForm>) -> Page {
    let f = p.form;
    let api = p.ctx.api(&app).await?;
    let current = api.get(&format!("/log-streams/{}", seg(&id))).await.map_err(internal)?;
    let mut body = json!({"name": f.name.trim()});
    if current["type"] == "http" {
        body["sink"] = f.sink();
    }
    let done = api.patch(&format!("/log-streams/{}", seg(&id)), &body).await;
    answer(&app, p.ctx, done, "Log stream saved.").await
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct StatusForm {
    status: String,
}

pub async fn set_status(State(app): State<AppState>, Path(id): Path<String>, p: Posted<StatusForm>) -> Page {
    let said = if p.form.status == "active" { "Log stream resumed." } else { "Log stream paused." };
    let body = json!({"status": p.form.status});
    let done = p.ctx.api(&app).await?.patch(&format!("/log-streams/{}", seg(&id)), &body).await;
    answer(&app, p.ctx, done, said).await
}

pub async fn delete(State(app): State<AppState>, Path(id): Path<String>, p: Posted<StatusForm>) -> Page {
    let done = p.ctx.api(&app).await?.delete(&format!("/log-streams/{}", seg(&id))).await;
    answer(&app, p.ctx, done, "Log stream deleted.").await
}
