//! Security > Multi-factor Auth > Phone destinations: the phone destination policy (docs/FRAUD.md), one section per
//! channel with its country permissions (the mode, a filterable list of country checkboxes, calling-code prefixes)
//! and its number-type switches, and a notice while a channel lets every country through. Each section saves with
//! `PATCH /guardian/factors/phone/destination-policy` (only that channel's part), as an operator would by hand.
//! The filter box is app.js's; without JavaScript the whole list is there, the chosen countries first.
use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use maud::{Markup, html};
use serde_json::{Value, json};

use super::ui::{self, Nav, lines, list_of, s};
use super::{Ctx, Page, Posted, internal};
use crate::app::AppState;
use crate::login::countries;

pub const PAGE: &str = "/dashboard/security/phone-destinations";
const API: &str = "/guardian/factors/phone/destination-policy";
const CHANNELS: &[(&str, &str)] = &[("sms", "SMS"), ("voice", "Voice calls")];
/// The number-type switches: (key, label, hint).
const TYPES: &[(&str, &str, &str)] = &[
    ("fixed_line", "Landlines", "Most landlines cannot receive SMS."),
    ("voip", "VoIP numbers", "Internet numbers, often used for throwaway accounts."),
    ("premium_rate", "Premium-rate numbers", "Refused by default: the classic toll-fraud destination."),
    ("shared_cost", "Shared-cost numbers", "Refused by default."),
    ("uan", "Universal access numbers", "Refused by default."),
    ("pager", "Pagers", "Refused by default."),
    ("personal_number", "Personal numbers", "Refused by default: they forward anywhere."),
];

/// A refused section: which channel, why, and what the operator chose (shown again instead of the stored policy).
#[derive(Debug, Default)]
struct View {
    channel: Option<String>,
    error: Option<String>,
    typed: Option<Value>,
}

pub async fn page(State(app): State<AppState>, ctx: Ctx) -> Page {
    render(&app, &ctx, StatusCode::OK, View::default()).await
}

async fn render(app: &AppState, ctx: &Ctx, status: StatusCode, v: View) -> Page {
    let api = ctx.api(app).await?;
    let policy = api.get(API).await.map_err(internal)?;
    let everywhere: Vec<&str> =
        CHANNELS.iter().filter(|(c, _)| s(&policy[*c], "mode") == "all").map(|(_, label)| *label).collect();
    let body = html! {
        p class="muted" {
            "Which phone numbers may receive codes. A number is checked when it is enrolled and again before every "
            "message, so a change here applies to phones already enrolled. Refusals are logged as "
            code { "gd_send_sms_failure" } " / " code { "gd_send_voice_failure" } "."
        }
        @if !everywhere.is_empty() {
            div class="alert warn" role="note" id="all-countries-notice" {
                strong { "Every country is allowed" } " for " (everywhere.join(" and ")) ". "
                "Most services serve a few countries: allowing only those closes the others to toll fraud "
                "(SMS pumping). Choose “Only the countries below” and tick them."
            }
        }
        @for (channel, label) in CHANNELS {
            @let mine = v.channel.as_deref() == Some(*channel);
            @let shown = match (&v.typed, mine) { (Some(t), true) => t.clone(), _ => policy.clone() };
            (section(app, ctx, channel, label, &shown, if mine { v.error.as_deref() } else { None }))
        }
    };
    Ok((status, ui::shell(app, ctx, Nav::Destinations, "Phone destinations", body)).into_response())
}

fn section(app: &AppState, ctx: &Ctx, channel: &str, label: &str, p: &Value, error: Option<&str>) -> Markup {
    let c = &p[channel];
    let mode = s(c, "mode");
    let chosen: Vec<&str> = c["countries"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let all = countries::list("en");
    // The chosen countries first, so that the selection shows without scrolling or filtering.
    let ordered =
        all.iter().filter(|k| chosen.contains(&k.code)).chain(all.iter().filter(|k| !chosen.contains(&k.code)));
    let types = &p["number_types"][channel];
    html! {
        section class="panel" id=(channel) aria-labelledby=(format!("{channel}-h")) {
            h2 id=(format!("{channel}-h")) { (label) }
            (ui::error(error))
            form method="post" action=(format!("{PAGE}/{channel}")) data-track-changes {
                (ui::csrf(app, ctx))
                fieldset {
                    legend { "Countries" }
                    @for (value, text) in [("all", "Every country"), ("allow", "Only the countries below"), ("deny", "Every country but those below")] {
                        label class="choice" for=(format!("{channel}-mode-{value}")) {
                            input type="radio" id=(format!("{channel}-mode-{value}")) name="mode" value=(value) checked[mode == value];
                            (text)
                        }
                    }
                }
                label for=(format!("{channel}-filter")) { "Find a country" }
                input type="search" id=(format!("{channel}-filter")) data-filter-list=(format!("{channel}-countries"))
                    placeholder="Name or code" autocomplete="off";
                fieldset id=(format!("{channel}-countries")) class="country-list" {
                    legend { "Countries listed (" (chosen.len()) " chosen)" }
                    @for k in ordered {
                        label class="choice" for=(format!("{channel}-c-{}", k.code)) data-filter-text=(format!("{} {} +{}", k.name, k.code, k.calling_code)) {
                            input type="checkbox" id=(format!("{channel}-c-{}", k.code)) name=(format!("c_{}", k.code)) value="on"
                                checked[chosen.contains(&k.code)];
                            (k.name) " (" (k.code) ", +" (k.calling_code) ")"
                        }
                    }
                }
                label for=(format!("{channel}-codes")) { "Calling-code prefixes (one per line, e.g. +1416 or +882)" }
                textarea id=(format!("{channel}-codes")) name="calling_codes" rows="2" { (lines(&c["calling_codes"])) }
                fieldset {
                    legend { "Kinds of line" }
                    @for (key, text, hint) in TYPES {
                        (super::phone::switch(key, &format!("{channel}-t-{key}"), types[*key] == json!(true), text, hint))
                    }
                    p class="hint" { "Mobile numbers, toll-free numbers and numbers the numbering plan cannot type are always allowed." }
                }
                div class="save-row" {
                    button type="submit" { "Save " (label) }
                    span class="unsaved" role="status" data-unsaved { }
                }
            }
        }
    }
}

/// The section's form as the API's merge patch for that channel (and the policy to show again when refused).
fn patch_of(channel: &str, f: &BTreeMap<String, String>) -> Value {
    let countries: Vec<&str> = f.keys().filter_map(|k| k.strip_prefix("c_")).collect();
    let types: serde_json::Map<String, Value> =
        TYPES.iter().map(|(k, _, _)| ((*k).to_owned(), json!(f.get(*k).is_some_and(|v| v == "on")))).collect();
    json!({
        channel: {
            "mode": f.get("mode").map_or("all", String::as_str),
            "countries": countries,
            "calling_codes": list_of(f.get("calling_codes").map_or("", String::as_str)),
        },
        "number_types": { channel: types },
    })
}

pub async fn save(
    State(app): State<AppState>,
    Path(channel): Path<String>,
    mut p: Posted<BTreeMap<String, String>>,
) -> Page {
    let Some((channel, label)) = CHANNELS.iter().find(|(c, _)| *c == channel) else {
        return Err(super::message_page(StatusCode::NOT_FOUND, "Not found", "There is no such channel."));
    };
    let body = patch_of(channel, &p.form);
    let api = p.ctx.api(&app).await?;
    match api.patch(API, &body).await {
        Ok(_) => p.ctx.flash_and_go(&app, format!("{label} destinations saved."), &format!("{PAGE}#{channel}")).await,
        Err(e) => {
            let view = View { channel: Some((*channel).to_owned()), error: Some(e.message), typed: Some(body) };
            render(&app, &p.ctx, StatusCode::BAD_REQUEST, view).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_the_channels_patch() {
        let f: BTreeMap<String, String> =
            [("mode", "allow"), ("c_GB", "on"), ("c_FR", "on"), ("voip", "on"), ("calling_codes", " +1416 \n\n")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        let p = patch_of("sms", &f);
        assert_eq!(p["sms"], json!({"mode": "allow", "countries": ["FR", "GB"], "calling_codes": ["+1416"]}));
        assert_eq!(p["number_types"]["sms"]["voip"], true);
        assert_eq!(p["number_types"]["sms"]["fixed_line"], false, "an unticked switch is off");
        assert!(p.get("voice").is_none(), "the other channel is left alone");
    }
}
