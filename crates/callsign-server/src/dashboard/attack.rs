//! Security > Attack Protection: suspicious IP throttling, brute-force protection (their settings and
//! allowlists) and phone provider protection (the per-user send limit: flat or exponential), a blocked address looked up and unblocked, and the recent `limit_mu` / `limit_wc` / `ublkdu`
//! events. Every change is the Management API call an operator would make by hand:
//!
//! | form | Management API |
//! |---|---|
//! | throttling | `PATCH /attack-protection/suspicious-ip-throttling` |
//! | brute force | `PATCH /attack-protection/brute-force-protection` |
//! | phone provider protection | `PATCH /attack-protection/phone-provider-protection` |
//! | look up / unblock an address | `GET` / `DELETE /anomaly/blocks/ips/{ip}` |
//! | unblock an account | `DELETE /user-blocks?identifier=` |
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::{Api, query, seg};
use super::ui::{self, Nav, lines, list_of, s};
use super::{Ctx, Page, Posted, internal};
use crate::app::AppState;

pub const PAGE: &str = "/dashboard/security/attack-protection";
const THROTTLING: &str = "/attack-protection/suspicious-ip-throttling";
const BRUTE_FORCE: &str = "/attack-protection/brute-force-protection";
const PHONE: &str = "/attack-protection/phone-provider-protection";
const STAGES: &[(&str, &str)] = &[
    ("pre-login", "Failed logins per IP"),
    ("pre-user-registration", "Sign-ups per IP"),
    ("pre-phone-message", "SMS and voice messages per IP"),
];

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct PageQuery {
    /// An address to look up.
    ip: Option<String>,
}

/// A failure to show in a section.
#[derive(Debug, Default)]
struct View {
    throttling_error: Option<String>,
    brute_force_error: Option<String>,
    phone_error: Option<String>,
    blocks_error: Option<String>,
    /// What the operator typed into a refused form, shown again instead of the stored settings.
    throttling_typed: Option<Value>,
    brute_force_typed: Option<Value>,
}

pub async fn page(State(app): State<AppState>, ctx: Ctx, Query(q): Query<PageQuery>) -> Page {
    render(&app, &ctx, StatusCode::OK, View::default(), q.ip.as_deref()).await
}

fn checked(list: &Value, name: &str) -> bool {
    list.as_array().is_some_and(|a| a.iter().any(|v| v == name))
}

/// A number field's value: the stored number, or what was typed when it was not one.
fn num(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    }
}

async fn recent_events(api: &Api) -> Vec<Value> {
    let mut all = Vec::new();
    for ty in ["limit_mu", "limit_wc", "ublkdu"] {
        let path = format!("/logs?{}", query(&[("q", &format!("type:{ty}")), ("per_page", "20")]));
        if let Ok(Value::Array(items)) = api.get(&path).await {
            all.extend(items);
        }
    }
    all.sort_by(|a, b| s(b, "date").cmp(s(a, "date")));
    all.truncate(20);
    all
}

async fn render(app: &AppState, ctx: &Ctx, status: StatusCode, v: View, ip: Option<&str>) -> Page {
    let api = ctx.api(app).await?;
    let t = match v.throttling_typed.clone() {
        Some(typed) => typed,
        None => api.get(THROTTLING).await.map_err(internal)?,
    };
    let b = match v.brute_force_typed.clone() {
        Some(typed) => typed,
        None => api.get(BRUTE_FORCE).await.map_err(internal)?,
    };
    let phone = api.get(PHONE).await.map_err(internal)?;
    let lookup = match ip.map(str::trim).filter(|i| !i.is_empty()) {
        None => None,
        Some(ip) => Some((
            ip.to_owned(),
            match api.get(&format!("/anomaly/blocks/ips/{}", seg(ip))).await {
                Ok(_) => Ok(true),
                Err(e) if e.status == 404 => Ok(false),
                Err(e) => Err(e.message),
            },
        )),
    };
    let events = recent_events(&api).await;
    let body = html! {
        p class="muted" {
            "Limits per client address and per account that stop password guessing, sign-up floods and SMS pumping. "
            "The client address is the connection's, or the one your trusted proxies report (" code { "trusted_proxies" } ")."
        }
        (throttling_section(app, ctx, &t, &v))
        (brute_force_section(app, ctx, &b, &v))
        (phone_section(app, ctx, &phone, &v))
        (blocks_section(app, ctx, &v, lookup))
        section class="panel" id="events" aria-labelledby="events-h" {
            h2 id="events-h" { "Recent blocks" }
            @if events.is_empty() {
                p { "No address or account has been blocked." }
            } @else {
                table id="block-events" {
                    caption class="visually-hidden" { "Recent block events, newest first" }
                    thead { tr { th scope="col" { "Date" } th scope="col" { "Event" } th scope="col" { "Address" } th scope="col" { "What" } } }
                    tbody {
                        @for e in &events {
                            tr {
                                td { (s(e, "date")) }
                                td { code { (s(e, "type")) } }
                                td { (s(e, "ip")) }
                                td { (s(e, "description")) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok((status, ui::shell(app, ctx, Nav::Attack, "Attack Protection", body)).into_response())
}

fn throttling_section(app: &AppState, ctx: &Ctx, t: &Value, v: &View) -> Markup {
    html! {
        section class="panel" id="throttling" aria-labelledby="throttling-h" {
            h2 id="throttling-h" { "Suspicious IP throttling" }
            (ui::error(v.throttling_error.as_deref()))
            form method="post" action="/dashboard/security/attack-protection/throttling" {
                (ui::csrf(app, ctx))
                label class="choice" for="t-enabled" {
                    input type="checkbox" id="t-enabled" name="enabled" value="on" checked[t["enabled"] == json!(true)];
                    "Throttle addresses that go over these limits"
                }
                label class="choice" for="t-block" {
                    input type="checkbox" id="t-block" name="block" value="on" checked[checked(&t["shields"], "block")];
                    "Block them (off: only log)"
                }
                label class="choice" for="t-notify" {
                    input type="checkbox" id="t-notify" name="admin_notification" value="on" checked[checked(&t["shields"], "admin_notification")];
                    "Notify administrators (a warning in the server log, flagged in the event)"
                }
                @for (stage, label) in STAGES {
                    fieldset {
                        legend { (label) }
                        label for=(format!("{stage}-max")) { "Attempts allowed" }
                        input type="number" id=(format!("{stage}-max")) name=(format!("{stage}_max_attempts")) min="1"
                            value=(num(&t["stage"][*stage]["max_attempts"]));
                        label for=(format!("{stage}-rate")) { "Then one more every (milliseconds)" }
                        input type="number" id=(format!("{stage}-rate")) name=(format!("{stage}_rate")) min="1"
                            value=(num(&t["stage"][*stage]["rate"]));
                    }
                }
                label for="t-allowlist" { "Never throttle these addresses or CIDR blocks (one per line, at most 100)" }
                textarea id="t-allowlist" name="allowlist" rows="3" { (lines(&t["allowlist"])) }
                button type="submit" { "Save throttling" }
            }
        }
    }
}

fn brute_force_section(app: &AppState, ctx: &Ctx, b: &Value, v: &View) -> Markup {
    let mode = s(b, "mode");
    html! {
        section class="panel" id="brute-force" aria-labelledby="brute-force-h" {
            h2 id="brute-force-h" { "Brute-force protection" }
            (ui::error(v.brute_force_error.as_deref()))
            form method="post" action="/dashboard/security/attack-protection/brute-force" {
                (ui::csrf(app, ctx))
                label class="choice" for="b-enabled" {
                    input type="checkbox" id="b-enabled" name="enabled" value="on" checked[b["enabled"] == json!(true)];
                    "Block an account after too many wrong passwords in a row"
                }
                label class="choice" for="b-block" {
                    input type="checkbox" id="b-block" name="block" value="on" checked[checked(&b["shields"], "block")];
                    "Block (off: only log)"
                }
                label class="choice" for="b-notify" {
                    input type="checkbox" id="b-notify" name="user_notification" value="on" checked[checked(&b["shields"], "user_notification")];
                    "Flag the event for notifying the user"
                }
                label for="b-max" { "Wrong passwords in a row" }
                input type="number" id="b-max" name="max_attempts" min="1" max="100" value=(num(&b["max_attempts"]));
                label for="b-mode" { "Count" }
                select id="b-mode" name="mode" {
                    option value="count_per_identifier_and_ip" selected[mode == "count_per_identifier_and_ip"] { "per account and address" }
                    option value="count_per_identifier" selected[mode == "count_per_identifier"] { "per account, from any address" }
                }
                label for="b-allowlist" { "Never count these addresses or CIDR blocks (one per line)" }
                textarea id="b-allowlist" name="allowlist" rows="2" { (lines(&b["allowlist"])) }
                button type="submit" { "Save brute-force protection" }
            }
        }
    }
}

fn phone_section(app: &AppState, ctx: &Ctx, p: &Value, v: &View) -> Markup {
    let kind = s(p, "type");
    html! {
        section class="panel" id="phone" aria-labelledby="phone-h" {
            h2 id="phone-h" { "Phone provider protection" }
            (ui::error(v.phone_error.as_deref()))
            form method="post" action="/dashboard/security/attack-protection/phone" {
                (ui::csrf(app, ctx))
                fieldset {
                    legend { "Messages to one user" }
                    label class="choice" for="p-default" {
                        input type="radio" id="p-default" name="type" value="default" checked[kind != "exponential"];
                        "Flat: 10 an hour, then one more per hour"
                    }
                    label class="choice" for="p-exponential" {
                        input type="radio" id="p-exponential" name="type" value="exponential" checked[kind == "exponential"];
                        "Exponential: each message waits twice as long as the last (30 s, 1, 2, 4 … minutes, at most an hour; two quiet hours start again)"
                    }
                }
                button type="submit" { "Save phone provider protection" }
            }
        }
    }
}

fn blocks_section(app: &AppState, ctx: &Ctx, v: &View, lookup: Option<(String, Result<bool, String>)>) -> Markup {
    html! {
        section class="panel" id="blocks" aria-labelledby="blocks-h" {
            h2 id="blocks-h" { "Blocked addresses and accounts" }
            (ui::error(v.blocks_error.as_deref()))
            form method="get" action=(PAGE) {
                label for="lookup-ip" { "Address" }
                input type="text" id="lookup-ip" name="ip" value=(lookup.as_ref().map_or("", |l| l.0.as_str())) placeholder="203.0.113.7";
                button type="submit" { "Look up" }
            }
            @if let Some((ip, result)) = &lookup {
                @match result {
                    Ok(true) => {
                        p id="lookup-result" { strong { (ip) " is blocked." } }
                        form method="post" action="/dashboard/security/attack-protection/unblock" {
                            (ui::csrf(app, ctx))
                            input type="hidden" name="ip" value=(ip);
                            button type="submit" { "Unblock " (ip) }
                        }
                    }
                    Ok(false) => { p id="lookup-result" { (ip) " is not blocked." } }
                    Err(e) => { (ui::error(Some(e))) }
                }
            }
            form method="post" action="/dashboard/security/attack-protection/unblock-account" {
                (ui::csrf(app, ctx))
                label for="unblock-email" { "Account (email) to unblock" }
                input type="email" id="unblock-email" name="identifier";
                button type="submit" { "Unblock account" }
            }
        }
    }
}

// --- changes --------------------------------------------------------------------------------------------------------

/// A number field as typed: a JSON number when it is a whole number, else the text (refused before it is sent, and
/// shown again as typed).
fn number(form: &std::collections::BTreeMap<String, String>, key: &str) -> Value {
    let v = form.get(key).map_or("", |s| s.trim());
    v.parse::<u64>().map_or_else(|_| json!(v), |n| json!(n))
}

/// The first number field of `body` (at the JSON `pointers`) that is not a number, as a message.
fn not_a_number(body: &Value, pointers: &[String]) -> Option<String> {
    pointers.iter().find_map(|p| match body.pointer(p) {
        Some(Value::String(s)) => Some(format!("`{s}` is not a whole number ({}).", p.trim_start_matches('/'))),
        _ => None,
    })
}

/// Send `body` unless a number field is not one; the refusal's message otherwise.
async fn send_typed(api: &Api, path: &str, body: &Value, numbers: &[String], saved: &str) -> Result<String, String> {
    if let Some(m) = not_a_number(body, numbers) {
        return Err(m);
    }
    api.patch(path, body).await.map(|_| saved.to_owned()).map_err(|e| e.message)
}

async fn done(app: &AppState, mut ctx: Ctx, result: Result<String, View>, anchor: &str) -> Page {
    match result {
        Ok(message) => ctx.flash_and_go(app, message, &format!("{PAGE}#{anchor}")).await,
        Err(view) => render(app, &ctx, StatusCode::BAD_REQUEST, view, None).await,
    }
}

pub async fn set_throttling(
    State(app): State<AppState>,
    p: Posted<std::collections::BTreeMap<String, String>>,
) -> Page {
    let f = &p.form;
    let on = |k: &str| f.get(k).is_some_and(|v| v == "on");
    let mut stage = serde_json::Map::new();
    let mut numbers = Vec::new();
    for (name, _) in STAGES {
        stage.insert(
            (*name).to_owned(),
            json!({"max_attempts": number(f, &format!("{name}_max_attempts")), "rate": number(f, &format!("{name}_rate"))}),
        );
        numbers.push(format!("/stage/{name}/max_attempts"));
        numbers.push(format!("/stage/{name}/rate"));
    }
    let shields: Vec<&str> = ["block", "admin_notification"].into_iter().filter(|s| on(s)).collect();
    let body = json!({"enabled": on("enabled"), "shields": shields,
        "allowlist": list_of(f.get("allowlist").map_or("", |s| s)), "stage": stage});
    let api = p.ctx.api(&app).await?;
    let result = send_typed(&api, THROTTLING, &body, &numbers, "Suspicious IP throttling saved.")
        .await
        .map_err(|m| View { throttling_error: Some(m), throttling_typed: Some(body.clone()), ..Default::default() });
    done(&app, p.ctx, result, "throttling").await
}

pub async fn set_brute_force(
    State(app): State<AppState>,
    p: Posted<std::collections::BTreeMap<String, String>>,
) -> Page {
    let f = &p.form;
    let on = |k: &str| f.get(k).is_some_and(|v| v == "on");
    let shields: Vec<&str> = ["block", "user_notification"].into_iter().filter(|s| on(s)).collect();
    let body = json!({"enabled": on("enabled"), "shields": shields, "max_attempts": number(f, "max_attempts"),
        "mode": f.get("mode").map_or("", |s| s.as_str()), "allowlist": list_of(f.get("allowlist").map_or("", |s| s))});
    let api = p.ctx.api(&app).await?;
    let result = send_typed(&api, BRUTE_FORCE, &body, &["/max_attempts".to_owned()], "Brute-force protection saved.")
        .await
        .map_err(|m| View { brute_force_error: Some(m), brute_force_typed: Some(body.clone()), ..Default::default() });
    done(&app, p.ctx, result, "brute-force").await
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct PhoneForm {
    r#type: String,
}

pub async fn set_phone(State(app): State<AppState>, p: Posted<PhoneForm>) -> Page {
    let api = p.ctx.api(&app).await?;
    let result = api
        .patch(PHONE, &json!({"type": p.form.r#type}))
        .await
        .map(|_| "Phone provider protection saved.".to_owned())
        .map_err(|e| View { phone_error: Some(e.message), ..Default::default() });
    done(&app, p.ctx, result, "phone").await
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct UnblockForm {
    ip: String,
    identifier: String,
}

pub async fn unblock(State(app): State<AppState>, p: Posted<UnblockForm>) -> Page {
    let ip = p.form.ip.trim().to_owned();
    let api = p.ctx.api(&app).await?;
    let result = api
        .delete(&format!("/anomaly/blocks/ips/{}", seg(&ip)))
        .await
        .map(|_| format!("{ip} is unblocked."))
        .map_err(|e| View { blocks_error: Some(e.message), ..Default::default() });
    done(&app, p.ctx, result, "blocks").await
}

pub async fn unblock_account(State(app): State<AppState>, p: Posted<UnblockForm>) -> Page {
    let id = p.form.identifier.trim().to_owned();
    let api = p.ctx.api(&app).await?;
    let result = api
        .delete(&format!("/user-blocks?{}", query(&[("identifier", &id)])))
        .await
        .map(|_| format!("{id} is unblocked."))
        .map_err(|e| View { blocks_error: Some(e.message), ..Default::default() });
    done(&app, p.ctx, result, "blocks").await
}
