//! Security > Multi-factor Auth > Usage and spend: the usage triggers (docs/FRAUD.md). The current hour's, day's
//! and month's messages and estimated spend per channel and country, as server-rendered SVG bar charts (no
//! JavaScript) with the same figures in a table; the triggers with their state, a form to add or edit one (by id)
//! and a button to remove each; the price table; the alert webhook. Every change goes through the in-process
//! Management API (`/guardian/factors/phone/usage`), as an operator would by hand.
use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use maud::{Markup, html};
use serde_json::{Map, Value, json};

use super::ui::{self, Nav, s};
use super::{Ctx, Page, Posted, internal};
use crate::app::AppState;

pub const PAGE: &str = "/dashboard/security/phone-usage";
const API: &str = "/guardian/factors/phone/usage";
const CURRENT: &str = "/guardian/factors/phone/usage/current";

/// What to show besides the stored state: a refusal (in which section) and, once, a made signing secret.
#[derive(Debug, Default)]
struct View {
    section: Option<&'static str>,
    error: Option<String>,
    secret: Option<String>,
}

pub async fn page(State(app): State<AppState>, ctx: Ctx) -> Page {
    render(&app, &ctx, StatusCode::OK, View::default()).await
}

fn money(v: f64) -> String {
    if v == 0.0 {
        "$0".into()
    } else if v < 1.0 {
        format!("${v:.4}")
    } else {
        format!("${v:.2}")
    }
}

/// One period's bars: a horizontal bar per channel and country, as long as its count (the longest fills the
/// width), labelled with the count and the spend.
fn chart(p: &Value) -> Markup {
    let rows: Vec<&Value> = p["by_channel_and_country"].as_array().into_iter().flatten().collect();
    let period = s(p, "period");
    let max = rows.iter().filter_map(|r| r["count"].as_i64()).max().unwrap_or(0).max(1) as f64;
    let (bar_h, gap, label_w, width) = (18.0, 6.0, 90.0, 560.0);
    let height = (rows.len() as f64) * (bar_h + gap) + gap;
    if rows.is_empty() {
        return html! { p class="muted" { "Nothing sent this " (period) "." } };
    }
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="usage-chart" role="img" preserveAspectRatio="xMinYMin meet"
            viewBox=(format!("0 0 {width} {height}")) aria-labelledby=(format!("chart-{period}-t")) {
            title id=(format!("chart-{period}-t")) {
                "Messages this " (period) " per channel and country: " (p["count"]) " sent, " (money(p["spend"].as_f64().unwrap_or(0.0)))
            }
            @for (i, r) in rows.iter().enumerate() {
                @let y = gap + i as f64 * (bar_h + gap);
                @let count = r["count"].as_i64().unwrap_or(0) as f64;
                @let w = ((width - label_w - 150.0) * count / max).max(1.0);
                text x="0" y=(y + 13.0) { (s(r, "country")) " " (s(r, "channel")) }
                rect x=(label_w) y=(y) width=(format!("{w:.1}")) height=(bar_h) class=(format!("bar-{}", s(r, "channel"))) {}
                text x=(label_w + w + 6.0) y=(y + 13.0) { (r["count"]) " · " (money(r["spend"].as_f64().unwrap_or(0.0))) }
            }
        }
    }
}

fn figures(cur: &Value) -> Markup {
    html! {
        @for p in cur["periods"].as_array().into_iter().flatten() {
            @let period = s(p, "period");
            h3 id=(format!("period-{period}")) {
                "This " (period) ": " (p["count"]) " messages, " (money(p["spend"].as_f64().unwrap_or(0.0)))
            }
            p class="hint" { "From " (s(p, "start")) " to " (s(p, "end")) " (UTC)." }
            (chart(p))
            @let rows: Vec<&Value> = p["by_channel_and_country"].as_array().into_iter().flatten().collect();
            @if !rows.is_empty() {
                table {
                    thead { tr { th { "Country" } th { "Channel" } th { "Messages" } th { "Estimated spend" } } }
                    tbody {
                        @for r in rows {
                            tr { td { (s(r, "country")) } td { (s(r, "channel")) } td { (r["count"]) } td { (money(r["spend"].as_f64().unwrap_or(0.0))) } }
                        }
                    }
                }
            }
        }
    }
}

fn select(name: &str, id: &str, options: &[&str], chosen: &str) -> Markup {
    html! {
        select name=(name) id=(id) {
            @for o in options {
                option value=(o) selected[*o == chosen] { (o) }
            }
        }
    }
}

fn triggers(app: &AppState, ctx: &Ctx, cur: &Value, v: &View) -> Markup {
    let list: Vec<&Value> = cur["triggers"].as_array().into_iter().flatten().collect();
    html! {
        section class="panel" id="triggers" aria-labelledby="triggers-h" {
            h2 id="triggers-h" { "Triggers" }
            p class="muted" {
                "An " strong { "alert" } " trigger writes " code { "cs_usage_trigger" } " and posts to the alert webhook "
                "once per period when its figure reaches the threshold. A " strong { "stop" } " trigger does the same and "
                "refuses every further message it counts until the period ends (UTC)."
            }
            (ui::error(if v.section == Some("triggers") { v.error.as_deref() } else { None }))
            @if list.is_empty() {
                p { "No triggers yet." }
            } @else {
                table {
                    thead { tr { th { "Trigger" } th { "Counts" } th { "This period" } th { "State" } th { span class="visually-hidden" { "Remove" } } } }
                    tbody {
                        @for t in &list {
                            @let spend = s(t, "metric") == "spend";
                            @let fmt = |x: f64| if spend { money(x) } else { format!("{x}") };
                            tr {
                                td { strong { (s(t, "id")) } @if !s(t, "name").is_empty() { " " (s(t, "name")) } }
                                td { (s(t, "metric")) ", " (s(t, "channel")) ", " (t["country"].as_str().unwrap_or("every country")) ", per " (s(t, "period")) }
                                td { (fmt(t["value"].as_f64().unwrap_or(0.0))) " of " (fmt(t["threshold"].as_f64().unwrap_or(0.0))) }
                                td {
                                    @match (t["fired"].as_bool() == Some(true), s(t, "action")) {
                                        (true, "stop") => { strong class="warn" { "Stopped" } }
                                        (true, _) => { strong { "Fired" } }
                                        (false, a) => { "Armed (" (a) ")" }
                                    }
                                }
                                td {
                                    form method="post" action=(format!("{PAGE}/triggers/delete")) {
                                        (ui::csrf(app, ctx))
                                        input type="hidden" name="id" value=(s(t, "id"));
                                        button type="submit" class="secondary" { "Remove " (s(t, "id")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h3 { "Add or change a trigger" }
            form method="post" action=(format!("{PAGE}/triggers")) {
                (ui::csrf(app, ctx))
                label for="t-id" { "Id (an existing id changes that trigger; empty makes one)" }
                input type="text" id="t-id" name="id" autocomplete="off";
                label for="t-name" { "Name" }
                input type="text" id="t-name" name="name" autocomplete="off";
                label for="t-metric" { "Counts" }
                (select("metric", "t-metric", &["count", "spend"], "count"))
                label for="t-period" { "Period (UTC)" }
                (select("period", "t-period", &["hour", "day", "month"], "day"))
                label for="t-channel" { "Channel" }
                (select("channel", "t-channel", &["any", "sms", "voice"], "any"))
                label for="t-country" { "Country (ISO code; empty: every country)" }
                input type="text" id="t-country" name="country" autocomplete="off" size="4";
                label for="t-threshold" { "Threshold (messages, or US dollars for spend)" }
                input type="text" id="t-threshold" name="threshold" inputmode="decimal" required;
                label for="t-action" { "Action" }
                (select("action", "t-action", &["alert", "stop"], "alert"))
                div class="save-row" { button type="submit" { "Save trigger" } }
            }
        }
    }
}

fn prices(app: &AppState, ctx: &Ctx, settings: &Value, v: &View) -> Markup {
    let table: String = settings["prices"]["countries"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(c, p)| format!("{c} {} {}", p["sms"], p["voice"]))
        .collect::<Vec<_>>()
        .join("\n");
    let d = &settings["prices"]["default"];
    html! {
        section class="panel" id="prices" aria-labelledby="prices-h" {
            h2 id="prices-h" { "Prices" }
            p class="muted" { "Estimated US dollars per message (per call for voice). The shipped figures are rough public list prices: set your provider's." }
            (ui::error(if v.section == Some("prices") { v.error.as_deref() } else { None }))
            form method="post" action=(format!("{PAGE}/prices")) {
                (ui::csrf(app, ctx))
                label for="p-sms" { "SMS, every other country" }
                input type="text" id="p-sms" name="default_sms" value=(d["sms"]) inputmode="decimal";
                label for="p-voice" { "Voice, every other country" }
                input type="text" id="p-voice" name="default_voice" value=(d["voice"]) inputmode="decimal";
                label for="p-table" { "Countries: one per line, the ISO code, the SMS price, the voice price" }
                textarea id="p-table" name="countries" rows="10" { (table) }
                div class="save-row" { button type="submit" { "Save prices" } }
            }
        }
    }
}

fn webhook(app: &AppState, ctx: &Ctx, settings: &Value, v: &View) -> Markup {
    let hook = &settings["alert_webhook"];
    html! {
        section class="panel" id="webhook" aria-labelledby="webhook-h" {
            h2 id="webhook-h" { "Alert webhook" }
            p class="muted" {
                "Fired triggers are posted here, signed per Standard Webhooks like the custom phone provider, and retried until "
                "the receiver answers 2xx."
            }
            (ui::error(if v.section == Some("webhook") { v.error.as_deref() } else { None }))
            @if let Some(secret) = &v.secret {
                div class="alert" role="status" id="new-secret" {
                    "The signing secret, shown this once: " code { (secret) }
                }
            }
            form method="post" action=(format!("{PAGE}/webhook")) {
                (ui::csrf(app, ctx))
                label for="w-url" { "URL (https; empty: no webhook)" }
                input type="url" id="w-url" name="url" value=(hook["url"].as_str().unwrap_or("")) autocomplete="off";
                p class="hint" { @if hook["secret_set"] == json!(true) { "A signing secret is set." } @else { "A signing secret is made when a URL is saved." } }
                div class="save-row" { button type="submit" { "Save webhook" } }
            }
        }
    }
}

async fn render(app: &AppState, ctx: &Ctx, status: StatusCode, v: View) -> Page {
    let api = ctx.api(app).await?;
    let settings = api.get(API).await.map_err(internal)?;
    let cur = api.get(CURRENT).await.map_err(internal)?;
    let body = html! {
        p class="muted" {
            "What the messages Callsign sent cost (estimated from the prices below), and the triggers that alert or stop "
            "sending past a count or a spend. Refused messages are logged as "
            code { "gd_send_sms_failure" } " / " code { "gd_send_voice_failure" } " with " code { "usage_cap_reached" } "."
        }
        section class="panel" id="figures" aria-labelledby="figures-h" {
            h2 id="figures-h" { "This period" }
            (figures(&cur))
        }
        (triggers(app, ctx, &cur, &v))
        (prices(app, ctx, &settings, &v))
        (webhook(app, ctx, &settings, &v))
    };
    Ok((status, ui::shell(app, ctx, Nav::Usage, "Usage and spend", body)).into_response())
}

/// A form number as JSON: a number when it reads as one, else the text (the API names the field and refuses it).
fn number(text: &str) -> Value {
    let t = text.trim();
    t.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .and_then(|x| serde_json::Number::from_f64(x).map(Value::Number))
        .unwrap_or_else(|| json!(t))
}

/// The trigger form as the API's trigger.
fn trigger_of(f: &BTreeMap<String, String>) -> Value {
    let get = |k: &str| f.get(k).map_or("", |v| v.trim());
    let mut t = json!({
        "id": get("id"),
        "name": get("name"),
        "metric": get("metric"),
        "period": get("period"),
        "channel": get("channel"),
        "threshold": number(get("threshold")),
        "action": get("action"),
    });
    if !get("country").is_empty() {
        t["country"] = json!(get("country"));
    }
    t
}

/// The stored triggers with `new` put in place of the one with its id (or added).
fn with_trigger(stored: &Value, new: Value) -> Value {
    let mut list: Vec<Value> = stored["triggers"].as_array().cloned().unwrap_or_default();
    match list.iter_mut().find(|t| !s(&new, "id").is_empty() && t["id"] == new["id"]) {
        Some(t) => *t = new,
        None => list.push(new),
    }
    Value::Array(list)
}

/// The prices form as a merge patch: the listed countries set, the others removed.
fn prices_of(f: &BTreeMap<String, String>, stored: &Value) -> Result<Value, String> {
    let mut countries = Map::new();
    for (i, line) in f.get("countries").map_or("", String::as_str).lines().enumerate() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            [] => {}
            [c, sms, voice] => {
                countries.insert(c.to_ascii_uppercase(), json!({"sms": number(sms), "voice": number(voice)}));
            }
            _ => return Err(format!("Line {}: write the country code, the SMS price and the voice price.", i + 1)),
        }
    }
    for c in stored["prices"]["countries"].as_object().into_iter().flatten().map(|(c, _)| c) {
        countries.entry(c.clone()).or_insert(Value::Null);
    }
    let get = |k: &str| number(f.get(k).map_or("", String::as_str));
    Ok(
        json!({"prices": {"default": {"sms": get("default_sms"), "voice": get("default_voice")}, "countries": countries}}),
    )
}

async fn failed(app: &AppState, ctx: &Ctx, section: &'static str, error: String) -> Page {
    render(app, ctx, StatusCode::BAD_REQUEST, View { section: Some(section), error: Some(error), secret: None }).await
}

pub async fn save_trigger(State(app): State<AppState>, mut p: Posted<BTreeMap<String, String>>) -> Page {
    let api = p.ctx.api(&app).await?;
    let stored = api.get(API).await.map_err(internal)?;
    let body = json!({"triggers": with_trigger(&stored, trigger_of(&p.form))});
    match api.patch(API, &body).await {
        Ok(_) => p.ctx.flash_and_go(&app, "Trigger saved.", &format!("{PAGE}#triggers")).await,
        Err(e) => failed(&app, &p.ctx, "triggers", e.message).await,
    }
}

pub async fn delete_trigger(State(app): State<AppState>, mut p: Posted<BTreeMap<String, String>>) -> Page {
    let api = p.ctx.api(&app).await?;
    let stored = api.get(API).await.map_err(internal)?;
    let id = p.form.get("id").cloned().unwrap_or_default();
    let list: Vec<Value> =
        stored["triggers"].as_array().into_iter().flatten().filter(|t| s(t, "id") != id).cloned().collect();
    match api.patch(API, &json!({"triggers": list})).await {
        Ok(_) => p.ctx.flash_and_go(&app, format!("Trigger {id} removed."), &format!("{PAGE}#triggers")).await,
        Err(e) => failed(&app, &p.ctx, "triggers", e.message).await,
    }
}

pub async fn save_prices(State(app): State<AppState>, mut p: Posted<BTreeMap<String, String>>) -> Page {
    let api = p.ctx.api(&app).await?;
    let stored = api.get(API).await.map_err(internal)?;
    let body = match prices_of(&p.form, &stored) {
        Ok(b) => b,
        Err(e) => return failed(&app, &p.ctx, "prices", e).await,
    };
    match api.patch(API, &body).await {
        Ok(_) => p.ctx.flash_and_go(&app, "Prices saved.", &format!("{PAGE}#prices")).await,
        Err(e) => failed(&app, &p.ctx, "prices", e.message).await,
    }
}

pub async fn save_webhook(State(app): State<AppState>, mut p: Posted<BTreeMap<String, String>>) -> Page {
    let api = p.ctx.api(&app).await?;
    let url = p.form.get("url").map(|u| u.trim()).filter(|u| !u.is_empty()).map(str::to_owned);
    match api.patch(API, &json!({"alert_webhook": {"url": url}})).await {
        Ok(v) => match v["alert_webhook"]["secret"].as_str() {
            // The made secret is shown on this answer only (never kept in the session's flash).
            Some(secret) => {
                let view = View { secret: Some(secret.to_owned()), ..Default::default() };
                render(&app, &p.ctx, StatusCode::OK, view).await
            }
            None => p.ctx.flash_and_go(&app, "Alert webhook saved.", &format!("{PAGE}#webhook")).await,
        },
        Err(e) => failed(&app, &p.ctx, "webhook", e.message).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_trigger_form_becomes_a_trigger_in_place() {
        let t = trigger_of(&form(&[
            ("id", "a"),
            ("metric", "spend"),
            ("period", "day"),
            ("channel", "sms"),
            ("threshold", "2.5"),
            ("action", "stop"),
        ]));
        assert_eq!(t["threshold"], 2.5);
        assert!(t.get("country").is_none());
        let stored = json!({"triggers": [{"id": "a", "threshold": 1}, {"id": "b"}]});
        let list = with_trigger(&stored, t);
        assert_eq!(list[0]["threshold"], 2.5);
        assert_eq!(list.as_array().unwrap().len(), 2);
        assert_eq!(trigger_of(&form(&[("threshold", "ten")]))["threshold"], "ten", "left for the API to refuse");
    }

    #[test]
    fn the_prices_form_sets_the_listed_countries_and_removes_the_rest() {
        let stored = json!({"prices": {"countries": {"US": {}, "GB": {}}}});
        let p = prices_of(
            &form(&[("default_sms", "0.1"), ("default_voice", "0.2"), ("countries", "gb 0.04 0.02\n\n")]),
            &stored,
        )
        .unwrap();
        assert_eq!(p["prices"]["countries"]["GB"], json!({"sms": 0.04, "voice": 0.02}));
        assert_eq!(p["prices"]["countries"]["US"], Value::Null);
        assert_eq!(p["prices"]["default"]["voice"], 0.2);
        assert!(prices_of(&form(&[("countries", "GB 0.04")]), &stored).unwrap_err().contains("Line 1"));
    }
}
