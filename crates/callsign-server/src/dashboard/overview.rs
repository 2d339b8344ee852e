//! Overview (`/dashboard`, the page an operator lands on): a getting-started checklist drawn from the settings (each
//! step links to the page that does it and says when it is done), the last 24 hours of phone messages, sign-ins and
//! refusals counted from the logs (`GET /logs?q=type:… AND date:[… TO *]&include_totals=true`), and the selected
//! provider with its health on this node. Everything is read through the Management API, as on the other pages.
use axum::extract::State;
use axum::response::IntoResponse;
use maud::{Markup, html};
use serde_json::{Value, json};

use super::api::{Api, ApiFailure, query};
use super::ui::{self, Nav};
use super::{Ctx, Page, internal};
use crate::app::AppState;

/// The counts of the last 24 hours: a label and the event types it adds up.
const COUNTS: &[(&str, &[&str])] = &[
    ("SMS sent", &["gd_send_sms"]),
    ("SMS failed", &["gd_send_sms_failure"]),
    ("Voice calls made", &["gd_send_voice"]),
    ("Voice calls failed", &["gd_send_voice_failure"]),
    ("MFA successes", &["gd_auth_succeed"]),
    ("Wrong or expired codes", &["gd_auth_failed"]),
    ("Refused by limits and blocks", &["limit_mu", "limit_wc", "gd_otp_rate_limit_exceed"]),
];

/// One step of the checklist.
struct Step {
    done: bool,
    title: &'static str,
    text: &'static str,
    href: &'static str,
}

/// How many events of these types the logs hold since `since`.
async fn count(api: &Api, types: &[&str], since: &str) -> Result<u64, ApiFailure> {
    let mut total = 0;
    for t in types {
        let q = format!("type:{t} AND date:[{since} TO *]");
        let path = format!("/logs?{}", query(&[("q", &q), ("per_page", "1"), ("include_totals", "true")]));
        total += api.get(&path).await?.get("total").and_then(Value::as_u64).unwrap_or(0);
    }
    Ok(total)
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
    // The server's clock, as the events' dates are.
    let since = app.clock.now().minus(std::time::Duration::from_secs(24 * 3600)).to_rfc3339();
    let mut counts = Vec::with_capacity(COUNTS.len());
    for (label, types) in COUNTS {
        counts.push((*label, *types, count(&api, types, &since).await.map_err(internal)?));
    }
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
            (tiles(&counts))
            p class="hint" { "Counted from the logs. Each figure opens its events." }
        }
        (provider_panel(&app, &provider))
    };
    Ok(ui::shell(&app, &ctx, Nav::Overview, "Overview", body).into_response())
}

fn tiles(counts: &[(&str, &[&str], u64)]) -> Markup {
    html! {
        ul class="tiles" {
            @for (label, types, n) in counts {
                li {
                    a href={ "/dashboard/logs?" (query(&[("type", types[0])])) } {
                        span class="tile-figure" { (n) }
                        span class="tile-label" { (label) }
                    }
                }
            }
        }
    }
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
