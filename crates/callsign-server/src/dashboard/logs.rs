//! Logs: `GET /api/v2/logs?q=type:X AND user_id:"Y" AND date:[A TO B]` with paging, and one event
//! (`GET /api/v2/logs/{id}`) with its details pretty-printed.
//!
//! Dates are rendered as `<time datetime>` with the UTC date and time and how long ago it was (from the server's
//! clock); `/static/app.js` rewrites the text into the browser's time zone and says which. The event types offered
//! are the catalogue Callsign writes from ([`events::CODES`]); application names come from one `GET /clients` per
//! page.
use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use callsign_core::identity::events;
use callsign_domain::Timestamp;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::api::{Api, query, seg};
use super::ui::{self, Nav, s};
use super::users::pager;
use super::{Ctx, Page, internal};
use crate::app::AppState;

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    #[serde(rename = "type")]
    event_type: String,
    user_id: String,
    /// The first day (`YYYY-MM-DD`, UTC) of the range, included.
    from: String,
    /// The last day (`YYYY-MM-DD`, UTC) of the range, included.
    to: String,
    page: Option<u32>,
}

/// The list's filters, checked.
#[derive(Debug, Default, PartialEq, Eq)]
struct Filters {
    event_type: String,
    user_id: String,
    from: String,
    to: String,
}

impl Filters {
    /// The filters as typed, or what is wrong with them (in the operator's words).
    fn parse(q: &ListQuery) -> Result<Filters, String> {
        let typed = q.event_type.trim();
        // A datalist option may be picked as `code — description`: the code is what comes before the dash.
        let code = typed.split_once(" — ").map_or(typed, |(c, _)| c).trim();
        if !code.is_empty() && events::description(code).is_empty() {
            return Err(format!("“{code}” is not an event type Callsign records. Pick one from the list."));
        }
        let from = q.from.trim();
        let to = q.to.trim();
        for (label, day) in [("From", from), ("To", to)] {
            if !day.is_empty() && !is_day(day) {
                return Err(format!("{label}: “{day}” is not a date; use YYYY-MM-DD."));
            }
        }
        // Same-width ISO dates compare as text.
        if !from.is_empty() && !to.is_empty() && from > to {
            return Err("The From date is after the To date.".to_owned());
        }
        Ok(Filters {
            event_type: code.to_owned(),
            user_id: q.user_id.trim().to_owned(),
            from: from.to_owned(),
            to: to.to_owned(),
        })
    }

    /// The `q` of `GET /logs`.
    fn api_query(&self) -> String {
        let mut terms = Vec::new();
        if !self.event_type.is_empty() {
            terms.push(format!("type:{}", self.event_type));
        }
        if !self.user_id.is_empty() {
            terms.push(format!("user_id:\"{}\"", self.user_id));
        }
        if !self.from.is_empty() || !self.to.is_empty() {
            let end = |d: &str| if d.is_empty() { "*".to_owned() } else { d.to_owned() };
            terms.push(format!("date:[{} TO {}]", end(&self.from), end(&self.to)));
        }
        terms.join(" AND ")
    }

    /// A link to page `p` of this list, keeping every filter.
    fn link(&self, p: u32) -> String {
        let page = p.to_string();
        format!(
            "/dashboard/logs?{}",
            query(&[
                ("type", &self.event_type),
                ("user_id", &self.user_id),
                ("from", &self.from),
                ("to", &self.to),
                ("page", &page),
            ])
        )
    }
}

/// `YYYY-MM-DD` naming a real day.
fn is_day(text: &str) -> bool {
    text.len() == 10
        && time::OffsetDateTime::parse(&format!("{text}T00:00:00Z"), &time::format_description::well_known::Rfc3339)
            .is_ok()
}

/// How long ago `then` was, from `now`, in words: "just now", "5 min ago", "3 h ago", "2 days ago".
fn ago(now: Timestamp, then: Timestamp) -> String {
    let secs = (now.millis() - then.millis()) / 1000;
    let (n, future) = if secs < 0 { (-secs, true) } else { (secs, false) };
    let amount = match n {
        0..45 => return "just now".to_owned(),
        45..3_600 => format!("{} min", (n + 30) / 60),
        3_600..86_400 => format!("{} h", n / 3_600),
        _ => {
            let days = n / 86_400;
            match days {
                1 => "1 day".to_owned(),
                2..60 => format!("{days} days"),
                60..730 => format!("{} months", days / 30),
                _ => format!("{} years", days / 365),
            }
        }
    };
    if future { format!("in {amount}") } else { format!("{amount} ago") }
}

/// An event's date: the UTC date and time in a `<time>` (rewritten to local time by `app.js`; a link to the event
/// when `href` is given), how long ago below it. Neither part wraps.
fn when(now: Timestamp, date: &str, href: Option<&str>) -> Markup {
    let parsed = time::OffsetDateTime::parse(date, &time::format_description::well_known::Rfc3339).ok();
    let Some(t) = parsed else { return html! { (date) } };
    let then = Timestamp(i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0));
    let absolute = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    html! {
        span class="when" {
            @let time = html! { time datetime=(date) data-local-time { (absolute) } };
            @if let Some(href) = href { a href=(href) { (time) } } @else { (time) }
            " "
            span class="ago" { (ago(now, then)) }
        }
    }
}

/// Where the page says which time zone its dates are in: UTC, until `app.js` puts the browser's zone here.
fn zone_note() -> Markup {
    html! {
        p class="hint" {
            "Times are in " span data-time-zone { "UTC" } "."
        }
    }
}

/// A user id with a break opportunity after each `|` (`auth0|…`), and nowhere else.
fn id_text(id: &str) -> Markup {
    let mut parts = id.split('|').peekable();
    html! {
        code class="id" {
            @while let Some(part) = parts.next() {
                (part)
                @if parts.peek().is_some() { "|" wbr; }
            }
        }
    }
}

/// The application's name (from the clients list, else the event's `client_name`), its id in a `title`; the id
/// itself when neither names it.
fn client(names: &HashMap<String, String>, e: &Value) -> Markup {
    let id = s(e, "client_id");
    let name = names.get(id).map(String::as_str).filter(|n| !n.is_empty()).unwrap_or(s(e, "client_name"));
    html! {
        @if id.is_empty() {
            (name)
        } @else if name.is_empty() {
            code { (id) }
        } @else {
            span title={ "Client id " (id) } { (name) }
            " " small { code { (id) } }
        }
    }
}

/// Application names by client id: one `GET /clients` (the first 100; others fall back to the event's name), and
/// the dashboard's own.
async fn client_names(api: &Api) -> Result<HashMap<String, String>, super::api::ApiFailure> {
    let v = api.get("/clients?per_page=100").await?;
    let list = v.as_array().cloned().unwrap_or_default();
    let mut names: HashMap<String, String> =
        list.iter().map(|c| (s(c, "client_id").to_owned(), s(c, "name").to_owned())).collect();
    // The dashboard is a caller of the Management API without a stored client.
    names.insert(super::CLIENT_ID.to_owned(), "Callsign Dashboard".to_owned());
    Ok(names)
}

/// The title of an event: the description of its type, else its own, else its code.
fn title_of(e: &Value) -> String {
    let code = s(e, "type");
    [events::description(code), s(e, "description"), code]
        .into_iter()
        .find(|t| !t.is_empty())
        .unwrap_or("Log event")
        .to_owned()
}

pub async fn list(State(app): State<AppState>, ctx: Ctx, Query(q): Query<ListQuery>) -> Page {
    let api = ctx.api(&app).await?;
    let page = q.page.unwrap_or(0);
    let now = app.clock.now();
    let (filters, mut error) = match Filters::parse(&q) {
        Ok(f) => (f, None),
        // What was typed stays in the form; nothing is searched.
        Err(e) => {
            let typed = Filters {
                event_type: q.event_type.trim().to_owned(),
                user_id: q.user_id.trim().to_owned(),
                from: q.from.trim().to_owned(),
                to: q.to.trim().to_owned(),
            };
            (typed, Some(e))
        }
    };
    let (mut logs, mut total) = (Vec::new(), 0);
    if error.is_none() {
        let path = format!(
            "/logs?{}",
            query(&[
                ("q", &filters.api_query()),
                ("page", &page.to_string()),
                ("per_page", "25"),
                ("include_totals", "true"),
            ])
        );
        match api.get(&path).await {
            Ok(v) => {
                logs = v.get("logs").and_then(Value::as_array).cloned().unwrap_or_default();
                total = v.get("total").and_then(Value::as_u64).unwrap_or(0);
            }
            Err(e) if e.status < 500 => error = Some(e.message),
            Err(e) => return Err(internal(e)),
        }
    }
    let names = if logs.is_empty() { HashMap::new() } else { client_names(&api).await.map_err(internal)? };
    let link = |p: u32| filters.link(p);
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let body = html! {
        form method="get" action="/dashboard/logs" role="search" class="filters" {
            div class="row wrap" {
                div {
                    label for="type" { "Event type" }
                    input id="type" name="type" type="search" list="event-types" value=(filters.event_type)
                        autocomplete="off" spellcheck="false" aria-describedby="type-hint";
                    datalist id="event-types" {
                        @for (code, description) in events::CODES {
                            option value=(code) { (code) " — " (description) }
                        }
                    }
                }
                div {
                    label for="user_id" { "User id" }
                    input id="user_id" name="user_id" type="text" value=(filters.user_id) autocomplete="off"
                        spellcheck="false";
                }
                div {
                    label for="from" { "From" }
                    input id="from" name="from" type="date" value=(filters.from) aria-describedby="range-hint";
                }
                div {
                    label for="to" { "To" }
                    input id="to" name="to" type="date" value=(filters.to) aria-describedby="range-hint";
                }
                div class="grow-0" { button type="submit" { "Filter" } }
            }
            p class="hint" {
                span id="type-hint" { "Type a code or words of its description to search the event types." } " "
                span id="range-hint" { "From and To are whole days in UTC, both included." }
            }
        }
        (ui::error(error.as_deref()))
        @if logs.is_empty() {
            @if error.is_none() { p { "No log events match." } }
        } @else {
            (zone_note())
            table id="logs" class="stack" {
                caption class="visually-hidden" { "Log events, newest first" }
                thead { tr {
                    th scope="col" { "Date" } th scope="col" { "Event" }
                    th scope="col" { "User" } th scope="col" { "Application" }
                } }
                tbody {
                    @for e in &logs {
                        tr {
                            td data-label="Date" {
                                (when(now, s(e, "date"), Some(&format!("/dashboard/logs/{}", seg(s(e, "log_id"))))))
                            }
                            td data-label="Event" {
                                code { (s(e, "type")) } " " (s(e, "description"))
                            }
                            td data-label="User" {
                                (s(e, "user_name"))
                                @if !s(e, "user_id").is_empty() { " " small { (id_text(s(e, "user_id"))) } }
                            }
                            td data-label="Application" { (client(&names, e)) }
                        }
                    }
                }
            }
            (pager(page, total, &link))
        }
    };
    Ok((status, ui::shell(&app, &ctx, Nav::Logs, "Logs", body)).into_response())
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
    let names =
        if s(&e, "client_id").is_empty() { HashMap::new() } else { client_names(&api).await.map_err(internal)? };
    let now = app.clock.now();
    let title = title_of(&e);
    let body = html! {
        p { a href="/dashboard/logs" { "← All log events" } }
        dl class="facts log" {
            dt { "Date" } dd { (when(now, s(&e, "date"), None)) " " small { "(" span data-time-zone { "UTC" } ")" } }
            dt { "Type" } dd { code { (s(&e, "type")) } " " (s(&e, "description")) }
            dt { "User" } dd { (s(&e, "user_name")) " " @if !s(&e, "user_id").is_empty() { (id_text(s(&e, "user_id"))) } }
            dt { "Application" } dd { (client(&names, &e)) }
            dt { "IP address" } dd { (s(&e, "ip")) }
        }
        h2 { "Event" }
        pre class="json" tabindex="0" aria-label="The event as JSON" { (ui::pretty(&e)) }
    };
    Ok(ui::shell(&app, &ctx, Nav::Logs, &title, body).into_response())
}

#[cfg(test)]
mod tests {
    use super::{Filters, ListQuery, Timestamp, ago};

    fn filters(event_type: &str, user_id: &str, from: &str, to: &str) -> Result<Filters, String> {
        let q = ListQuery {
            event_type: event_type.into(),
            user_id: user_id.into(),
            from: from.into(),
            to: to.into(),
            page: None,
        };
        Filters::parse(&q)
    }

    #[test]
    fn filters_become_the_api_query() {
        let q = |t, u, f, to| filters(t, u, f, to).unwrap().api_query();
        assert_eq!(q("", "", "", ""), "");
        assert_eq!(q("fp", "", "", ""), "type:fp");
        assert_eq!(q("s", "auth0|x", "", ""), "type:s AND user_id:\"auth0|x\"");
        assert_eq!(q("gd_send_sms — SMS for MFA successfully sent.", "", "", ""), "type:gd_send_sms");
        assert_eq!(q("", "", "2026-12-01", "2026-12-02"), "date:[2026-12-01 TO 2026-12-02]");
        assert_eq!(q("", "", "2026-12-01", ""), "date:[2026-12-01 TO *]");
        assert_eq!(q("", "", "", "2026-12-02"), "date:[* TO 2026-12-02]");
    }

    #[test]
    fn bad_filters_are_explained() {
        assert!(filters("nope", "", "", "").unwrap_err().contains("not an event type"));
        assert!(filters("a AND ip:x", "", "", "").is_err());
        assert!(filters("", "", "2026-13-01", "").unwrap_err().contains("not a date"));
        assert!(filters("", "", "2026-12-02", "2026-12-01").unwrap_err().contains("after"));
    }

    #[test]
    fn links_keep_every_filter() {
        let f = filters("s", "auth0|x", "2026-12-01", "2026-12-02").unwrap();
        assert_eq!(f.link(2), "/dashboard/logs?type=s&user_id=auth0%7Cx&from=2026-12-01&to=2026-12-02&page=2");
    }

    #[test]
    fn ago_in_words() {
        let now = Timestamp(1_000_000_000_000);
        let back = |secs: i64| ago(now, Timestamp(now.0 - secs * 1000));
        assert_eq!(back(10), "just now");
        assert_eq!(back(300), "5 min ago");
        assert_eq!(back(3 * 3600 + 5), "3 h ago");
        assert_eq!(back(86_400), "1 day ago");
        assert_eq!(back(3 * 86_400), "3 days ago");
        assert_eq!(back(90 * 86_400), "3 months ago");
        assert_eq!(back(-600), "in 10 min");
    }
}
