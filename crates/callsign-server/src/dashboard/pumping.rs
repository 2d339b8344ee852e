//! Security > Multi-factor Auth > SMS pumping: the detector's figures per segment (docs/FRAUD.md) with a Release
//! button on each hold and a Trust / Stop trusting button on each segment, then its settings. Every change goes
//! through the Management API (`/guardian/factors/phone/pumping-detection`): a release is `DELETE …/holds/{segment}`,
//! trusting is a `PATCH` of the `trusted` list, the settings form a `PATCH` of the rest. No JavaScript needed.
use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use maud::{Markup, html};
use serde_json::{Value, json};

use super::ui::{self, Nav, lines, list_of};
use super::{Ctx, Page, Posted, internal};
use crate::app::AppState;

pub const PAGE: &str = "/dashboard/security/sms-pumping";
const API: &str = "/guardian/factors/phone/pumping-detection";

/// A refused settings form: why, and what the operator typed.
#[derive(Debug, Default)]
struct View {
    error: Option<String>,
    typed: Option<Value>,
}

pub async fn page(State(app): State<AppState>, ctx: Ctx) -> Page {
    render(&app, &ctx, StatusCode::OK, View::default()).await
}

fn percent(v: &Value) -> String {
    v.as_f64().map_or("—".into(), |c| format!("{:.0} %", c * 100.0))
}

fn status_label(status: &str) -> &'static str {
    match status {
        "held" => "Held",
        "suspect" => "Suspect",
        "trusted" => "Trusted",
        _ => "OK",
    }
}

async fn render(app: &AppState, ctx: &Ctx, status: StatusCode, v: View) -> Page {
    let api = ctx.api(app).await?;
    let stored = api.get(API).await.map_err(internal)?;
    let figures = api.get(&format!("{API}/segments")).await.map_err(internal)?;
    let segments: Vec<Value> = figures["segments"].as_array().cloned().unwrap_or_default();
    let held = segments.iter().filter(|s| s["status"] == "held").count();
    let shown = v.typed.clone().unwrap_or_else(|| stored.clone());
    let body = html! {
        p class="muted" {
            "Pumped numbers never type their code. Callsign counts, per number range, source address and country, "
            "how many codes were sent and how many were used over the last " (stored["window_minutes"]) " minutes, "
            "and holds codes for new enrollments to a segment that converts below "
            (percent(&stored["min_conversion"])) ". Codes to numbers already enrolled are never held. Holds are "
            "logged as " code { "cs_pumping_detected" } ", the refused codes as " code { "gd_send_sms_failure" } "."
        }
        @if stored["enabled"] != json!(true) {
            div class="alert warn" role="note" { strong { "Holding is off." } " The figures are counted, but nothing is held." }
        }
        section class="panel" aria-labelledby="segments-h" {
            h2 id="segments-h" { "Segments" }
            @if segments.is_empty() {
                p { "No codes were sent in the window." }
            } @else {
                p { (segments.len()) " segments with traffic in the window; " (held) " held." }
                div {
                    table class="stack" {
                        caption class="visually-hidden" { "Codes sent and used per segment, held and suspect first" }
                        thead { tr {
                            th scope="col" { "Segment" } th scope="col" { "Sent" } th scope="col" { "Used" }
                            th scope="col" { "Conversion (judged)" } th scope="col" { "Status" } th scope="col" { "Actions" }
                        } }
                        tbody {
                            @for seg in &segments {
                                @let name = seg["segment"].as_str().unwrap_or_default();
                                @let st = seg["status"].as_str().unwrap_or_default();
                                tr {
                                    th scope="row" data-label="Segment" { code { (name) } }
                                    td data-label="Sent" { (seg["sent"]) }
                                    td data-label="Used" { (seg["verified"]) }
                                    td data-label="Conversion (judged)" {
                                        @if seg["judged_sent"].as_i64().unwrap_or(0) == 0 { "not judged yet" }
                                        @else { (percent(&seg["conversion"])) " of " (seg["judged_sent"]) " codes" }
                                    }
                                    td data-label="Status" {
                                        span class=(format!("badge {st}")) { (status_label(st)) }
                                        @if let Some(until) = seg["hold_ends"].as_str() {
                                            " until " time datetime=(until) { (until) }
                                        }
                                    }
                                    td class="actions" data-label="Actions" {
                                        @if st == "held" {
                                            form method="post" action=(format!("{PAGE}/release")) class="inline" {
                                                (ui::csrf(app, ctx))
                                                input type="hidden" name="segment" value=(name);
                                                button type="submit" aria-label=(format!("Release {name}")) { "Release" }
                                            }
                                        }
                                        form method="post" action=(format!("{PAGE}/trust")) class="inline" {
                                            (ui::csrf(app, ctx))
                                            input type="hidden" name="segment" value=(name);
                                            @if st == "trusted" {
                                                input type="hidden" name="trusted" value="off";
                                                button type="submit" class="secondary" aria-label=(format!("Stop trusting {name}")) { "Stop trusting" }
                                            } @else {
                                                input type="hidden" name="trusted" value="on";
                                                button type="submit" class="secondary" aria-label=(format!("Trust {name}")) { "Trust" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        (settings_section(app, ctx, &shown, v.error.as_deref()))
    };
    Ok((status, ui::shell(app, ctx, Nav::Pumping, "SMS pumping", body)).into_response())
}

fn number_field(id: &str, label: &str, value: &Value, hint: &str) -> Markup {
    // What was typed comes back as it was (a refused text is a JSON string).
    let text = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
    html! {
        label for=(id) { (label) }
        input type="text" inputmode="decimal" id=(id) name=(id) value=(text) aria-describedby=(format!("{id}-hint"));
        p class="hint" id=(format!("{id}-hint")) { (hint) }
    }
}

fn settings_section(app: &AppState, ctx: &Ctx, s: &Value, error: Option<&str>) -> Markup {
    html! {
        section class="panel" aria-labelledby="settings-h" {
            h2 id="settings-h" { "Settings" }
            (ui::error(error))
            form method="post" action=(format!("{PAGE}/settings")) data-track-changes {
                (ui::csrf(app, ctx))
                (super::phone::switch("enabled", "enabled", s["enabled"] == json!(true), "Hold suspect segments", "Off: the figures are counted and shown, nothing is held."))
                (number_field("window_minutes", "Window (minutes)", &s["window_minutes"], "How far back the figures reach (5 to 1440)."))
                (number_field("grace_seconds", "Grace period (seconds)", &s["grace_seconds"], "Codes younger than this are not judged yet: they may still be typed (0 to 900)."))
                (number_field("min_conversion", "Lowest conversion rate", &s["min_conversion"], "Used ÷ sent, between 0 and 1. Below it, a segment with enough sends is held."))
                fieldset {
                    legend { "Fewest sends before a segment is judged" }
                    (number_field("min_prefix", "Number range", &s["min_sends"]["prefix"], "A range is the number less its last digits (1 000 numbers by default)."))
                    (number_field("min_ip", "Source address", &s["min_sends"]["ip"], "Trust your own servers' addresses if they call the MFA API for your users."))
                    (number_field("min_country", "Country", &s["min_sends"]["country"], "A country is judged without its ranges already held."))
                }
                (number_field("hold_minutes", "Hold (minutes)", &s["hold_minutes"], "How long a detection holds a segment (1 to 10080)."))
                (number_field("prefix_digits", "Digits dropped for a range", &s["prefix_digits"], "2 to 5."))
                label for="trusted" { "Trusted segments (one per line)" }
                textarea id="trusted" name="trusted" rows="3" aria-describedby="trusted-hint" { (lines(&s["trusted"])) }
                p class="hint" id="trusted-hint" { "For example country:GB, prefix:+447400123 or ip:203.0.113.7. A trusted segment is never held." }
                div class="save-row" {
                    button type="submit" { "Save settings" }
                    span class="unsaved" role="status" data-unsaved { }
                }
            }
        }
    }
}

/// A typed number as JSON: an integer or a decimal when it reads as one, else the text (the API names the field).
fn num(text: Option<&String>) -> Value {
    let t = text.map_or("", |t| t.trim());
    t.parse::<u64>().map(Value::from).or_else(|_| t.parse::<f64>().map(Value::from)).unwrap_or_else(|_| json!(t))
}

/// The settings form as the API's merge patch.
fn patch_of(f: &BTreeMap<String, String>) -> Value {
    json!({
        "enabled": f.get("enabled").is_some_and(|v| v == "on"),
        "window_minutes": num(f.get("window_minutes")),
        "grace_seconds": num(f.get("grace_seconds")),
        "min_conversion": num(f.get("min_conversion")),
        "min_sends": {
            "prefix": num(f.get("min_prefix")),
            "ip": num(f.get("min_ip")),
            "country": num(f.get("min_country")),
        },
        "hold_minutes": num(f.get("hold_minutes")),
        "prefix_digits": num(f.get("prefix_digits")),
        "trusted": list_of(f.get("trusted").map_or("", String::as_str)),
    })
}

pub async fn save(State(app): State<AppState>, mut p: Posted<BTreeMap<String, String>>) -> Page {
    let body = patch_of(&p.form);
    let api = p.ctx.api(&app).await?;
    match api.patch(API, &body).await {
        Ok(_) => p.ctx.flash_and_go(&app, "SMS-pumping settings saved.", &format!("{PAGE}#settings-h")).await,
        Err(e) => {
            let view = View { error: Some(e.message), typed: Some(body) };
            render(&app, &p.ctx, StatusCode::BAD_REQUEST, view).await
        }
    }
}

pub async fn release(State(app): State<AppState>, mut p: Posted<BTreeMap<String, String>>) -> Page {
    let segment = p.form.get("segment").cloned().unwrap_or_default();
    let api = p.ctx.api(&app).await?;
    let path = format!("{API}/holds/{}", segment.replace('%', "%25").replace('+', "%2B"));
    let message = match api.delete(&path).await {
        Ok(_) => format!("The hold on {segment} is released."),
        Err(e) => e.message,
    };
    p.ctx.flash_and_go(&app, message, PAGE).await
}

pub async fn trust(State(app): State<AppState>, mut p: Posted<BTreeMap<String, String>>) -> Page {
    let segment = p.form.get("segment").cloned().unwrap_or_default();
    let on = p.form.get("trusted").is_some_and(|v| v == "on");
    let api = p.ctx.api(&app).await?;
    let stored = api.get(API).await.map_err(internal)?;
    let mut trusted: Vec<String> =
        stored["trusted"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect();
    trusted.retain(|t| *t != segment);
    if on {
        trusted.push(segment.clone());
    }
    let message = match api.patch(API, &json!({"trusted": trusted})).await {
        Ok(_) if on => format!("{segment} is trusted: it is never held."),
        Ok(_) => format!("{segment} is no longer trusted."),
        Err(e) => e.message,
    };
    p.ctx.flash_and_go(&app, message, PAGE).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_the_patch() {
        let f: BTreeMap<String, String> = [
            ("enabled", "on"),
            ("window_minutes", "30"),
            ("grace_seconds", " 120 "),
            ("min_conversion", "0.3"),
            ("min_prefix", "8"),
            ("min_ip", "x"),
            ("min_country", "50"),
            ("hold_minutes", "60"),
            ("prefix_digits", "4"),
            ("trusted", "country:GB\n\nip:10.0.0.1\n"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let p = patch_of(&f);
        assert_eq!(p["enabled"], true);
        assert_eq!(p["grace_seconds"], 120);
        assert_eq!(p["min_conversion"], 0.3);
        assert_eq!(p["min_sends"], json!({"prefix": 8, "ip": "x", "country": 50}), "bad text goes to the API as is");
        assert_eq!(p["trusted"], json!(["country:GB", "ip:10.0.0.1"]));
        let off = patch_of(&BTreeMap::new());
        assert_eq!(off["enabled"], false, "an unticked switch is off");
    }
}
