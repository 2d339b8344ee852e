//! Overview (`/dashboard`, the page an operator lands on): a getting-started checklist drawn from the settings (each
//! step links to the page that does it and says when it is done); the phone messages as charts drawn on the server
//! (SVG, no JavaScript): sends and failures per hour over the last 24 hours and per day over 30 days for each
//! channel, the failure rate by provider, the top destination countries, the refusals by limit and the delivery
//! queue; and the selected provider with its health on this node. The settings are read through the Management API,
//! as on the other pages; the figures come from the hourly statistics in the store (`callsign_core::stats`), so the
//! page costs the same with a million log events as with ten.
use axum::extract::State;
use axum::response::IntoResponse;
use callsign_core::stats::{self, Series};
use maud::{Markup, html};
use serde_json::{Value, json};

use super::api::query;
use super::charts::{self, Bar, Row};
use super::ui::{self, Nav};
use super::{Ctx, Page, internal};
use crate::app::AppState;

/// One step of the checklist.
struct Step {
    done: bool,
    title: &'static str,
    text: &'static str,
    href: &'static str,
}

fn enabled(factors: &Value, name: &str) -> bool {
    factors.as_array().into_iter().flatten().any(|f| f["name"] == name && f["enabled"] == json!(true))
}

pub async fn page(State(app): State<AppState>, ctx: Ctx) -> Page {
    let api = ctx.api(&app).await?;
    let factors = api.get("/guardian/factors").await.map_err(internal)?;
    let provider = api.get("/guardian/factors/phone/selected-provider").await.map_err(internal)?;
    let policies = api.get("/guardian/policies").await.map_err(internal)?;
    let clients = api.get("/clients?per_page=100").await.map_err(internal)?;
    let tenant = api.get("/tenants/settings").await.map_err(internal)?;
    let provider = ui::s(&provider, "provider").to_owned();
    let dev = app.providers.default_provider().name();
    let apps = clients.as_array().into_iter().flatten().filter(|c| c["app_type"] != "non_interactive").count();
    let steps = [
        Step {
            done: enabled(&factors, "sms"),
            title: "Turn the phone factor on",
            text: "Users enroll a phone and get a code by SMS or voice call.",
            href: "/dashboard/mfa/phone#factor",
        },
        Step {
            done: provider != dev,
            title: "Choose a provider that reaches real phones",
            text: "The development provider only writes to the development inbox.",
            href: "/dashboard/mfa/phone#provider",
        },
        Step {
            done: policies.as_array().is_some_and(|p| p.iter().any(|x| x == "all-applications")),
            title: "Require multi-factor authentication",
            text: "Until then, users are only asked for a code by applications that ask for it.",
            href: "/dashboard/mfa/phone#policy",
        },
        Step {
            done: enabled(&factors, "recovery-code"),
            title: "Turn recovery codes on",
            text: "The way back in for a user who lost their phone.",
            href: "/dashboard/settings#recovery",
        },
        Step {
            done: apps > 0,
            title: "Create an application",
            text: "The app your users sign in to, with its callback URLs.",
            href: "/dashboard/applications",
        },
        Step {
            done: !ui::s(&tenant, "friendly_name").is_empty() && !ui::s(&tenant, "support_email").is_empty(),
            title: "Name the tenant and its support contact",
            text: "The name users see in messages and on the login pages, and whom they can ask for help.",
            href: "/dashboard/settings#tenant",
        },
    ];
    let day = stats::last_hours(&app, 24).await.map_err(internal)?;
    let month = stats::last_hours(&app, 30 * 24).await.map_err(internal)?;
    let queue = app.store.queue_stats(app.clock.now()).await.map_err(internal)?;
    let done = steps.iter().filter(|s| s.done).count();
    let body = html! {
        section class="panel" id="getting-started" aria-labelledby="getting-started-h" {
            h2 id="getting-started-h" { "Getting started" }
            p class="muted" { (done) " of " (steps.len()) " steps done." }
            ol class="checklist" {
                @for s in &steps {
                    li class=(if s.done { "done" } else { "todo" }) {
                        span class="check" aria-hidden="true" { @if s.done { "✓" } @else { "○" } }
                        span {
                            a href=(s.href) { (s.title) }
                            span class="visually-hidden" { @if s.done { " (done)" } @else { " (to do)" } }
                            br;
                            span class="hint" { (s.text) }
                        }
                    }
                }
            }
        }
        section class="panel" id="last-day" aria-labelledby="last-day-h" {
            h2 id="last-day-h" { "The last 24 hours" }
            (tiles(&day))
            @for (channel, label) in [("sms", "SMS"), ("voice", "Voice calls")] {
                (charts::time_bars(&format!("{channel}-24h"), &format!("{label} per hour, last 24 hours"),
                    "Messages handed to the provider and messages that failed, per hour (UTC).", &hourly(&day, channel)))
            }
        }
        section class="panel" id="last-month" aria-labelledby="last-month-h" {
            h2 id="last-month-h" { "The last 30 days" }
            @for (channel, label) in [("sms", "SMS"), ("voice", "Voice calls")] {
                (charts::time_bars(&format!("{channel}-30d"), &format!("{label} per day, last 30 days"),
                    "Messages handed to the provider and messages that failed, per day (UTC).", &daily(&month, channel)))
            }
            div class="breakdowns" {
                (charts::breakdown("providers-30d", "Failure rate by provider", &failure_rates(&month), Some(1.0)))
                (charts::breakdown("countries-30d", "Top destination countries", &countries(&month), None))
            }
        }
        section class="panel" id="refusals" aria-labelledby="refusals-h" {
            h2 id="refusals-h" { "Refusals and the queue" }
            div class="breakdowns" {
                (charts::breakdown("refusals-24h", "Refused by limits and defences, last 24 hours", &refusals(&day), None))
                div {
                    h3 { "Delivery queue" }
                    p id="queue" {
                        (queue.due) " due, " (queue.running) " being sent"
                        @if let Some(at) = queue.oldest_due_at {
                            "; the oldest has waited " (((app.clock.now().millis() - at.millis()).max(0) / 1000)) " s"
                        }
                        "."
                    }
                }
            }
            p class="hint" { "Figures from the hourly statistics every node writes to the database. Each tile opens its events in the logs." }
        }
        (provider_panel(&app, &provider))
    };
    Ok(ui::shell(&app, &ctx, Nav::Overview, "Overview", body).into_response())
}

/// The tiles of the last 24 hours: a label, the statistic it adds up, and the log events it opens.
const TILES: &[(&str, &[&str], &str)] = &[
    ("SMS sent", &["msg|sms|sent"], "gd_send_sms"),
    ("SMS failed", &["msg|sms|failed"], "gd_send_sms_failure"),
    ("Voice calls made", &["msg|voice|sent"], "gd_send_voice"),
    ("Voice calls failed", &["msg|voice|failed"], "gd_send_voice_failure"),
    ("MFA successes", &["event|gd_auth_succeed"], "gd_auth_succeed"),
    ("Wrong or expired codes", &["event|gd_auth_failed"], "gd_auth_failed"),
    ("Refused by limits and defences", &[], "limit_mu"),
];

fn tiles(day: &Series) -> Markup {
    let refused: i64 = day.by("refusal").iter().map(|b| b.total).sum();
    html! {
        ul class="tiles" {
            @for (label, keys, code) in TILES {
                @let n = if keys.is_empty() { refused } else { keys.iter().map(|k| day.total(k)).sum() };
                li {
                    a href={ "/dashboard/logs?" (query(&[("type", *code)])) } {
                        span class="tile-figure" { (n) }
                        span class="tile-label" { (label) }
                    }
                }
            }
        }
    }
}

fn clock_of(slot: i64) -> (i64, i64) {
    let mins = slot.div_euclid(60_000);
    (mins.div_euclid(60).rem_euclid(24), mins.rem_euclid(60))
}

fn hourly(day: &Series, channel: &str) -> Vec<Bar> {
    let sent = day.per(&format!("msg|{channel}|sent"), 1);
    let failed = day.per(&format!("msg|{channel}|failed"), 1);
    sent.iter()
        .zip(&failed)
        .enumerate()
        .map(|(i, ((at, s), (_, f)))| {
            let (h, _) = clock_of(*at);
            let label = format!("{h:02}:00");
            let tick = if i % 6 == 0 { label.clone() } else { String::new() };
            Bar { label, tick, sent: *s, failed: *f }
        })
        .collect()
}

fn daily(month: &Series, channel: &str) -> Vec<Bar> {
    let sent = month.per(&format!("msg|{channel}|sent"), 24);
    let failed = month.per(&format!("msg|{channel}|failed"), 24);
    sent.iter()
        .zip(&failed)
        .enumerate()
        .map(|(i, ((at, s), (_, f)))| {
            let date = callsign_domain::Timestamp::from_millis(*at).to_rfc3339();
            let label = date.get(..10).unwrap_or(&date).to_owned();
            let tick = if i % 7 == 0 { label.get(5..).unwrap_or(&label).to_owned() } else { String::new() };
            Bar { label, tick, sent: *s, failed: *f }
        })
        .collect()
}

fn failure_rates(month: &Series) -> Vec<Row> {
    month
        .by("provider")
        .into_iter()
        .filter_map(|b| {
            let rate = b.failure_rate()?;
            Some(Row {
                text: format!("{:.1} % ({} of {})", rate * 100.0, b.failed, b.sent + b.failed),
                value: rate,
                name: b.name,
            })
        })
        .collect()
}

fn countries(month: &Series) -> Vec<Row> {
    month
        .by("country")
        .into_iter()
        .take(10)
        .map(|b| Row {
            text: format!("{} sent, {} failed", b.sent, b.failed),
            value: b.total as f64,
            name: if b.name == "ZZ" { "unknown".to_owned() } else { b.name },
        })
        .collect()
}

fn refusals(day: &Series) -> Vec<Row> {
    day.by("refusal")
        .into_iter()
        .map(|b| Row { text: b.total.to_string(), value: b.total as f64, name: b.name.replace('_', " ") })
        .collect()
}

fn provider_panel(app: &AppState, provider: &str) -> Markup {
    use callsign_messaging::BreakerState;
    let label = app.providers.get(provider).map_or(provider, |k| k.label());
    let h = app.health.status(provider);
    let state = match h.state {
        BreakerState::Closed => "Healthy",
        BreakerState::Open => "Unhealthy: failover chains skip it until it is probed again",
        BreakerState::HalfOpen => "Being probed after failures",
    };
    html! {
        section class="panel" id="provider" aria-labelledby="provider-h" {
            h2 id="provider-h" { "Provider" }
            p { strong { (label) } " delivers the codes. " a href="/dashboard/mfa/phone#provider" { "Change it" } }
            p id="provider-health" {
                (state) ". "
                @if h.recent_sends == 0 { "Nothing sent from this node in the last minute." }
                @else { (h.recent_failures) " of " (h.recent_sends) " sends from this node failed in the last minute." }
            }
        }
    }
}
