//! Branding › Universal Login: the login pages' logo, primary colour and page background (`GET|PATCH
//! /api/v2/branding`), with a live preview of the login card.
//!
//! The preview is a scaled mock of the card under `class="branded"`, so `/branding.css` colours it with the saved
//! settings; `app.js` recolours it as the operator types or picks (through the CSSOM, which the CSP allows). Each
//! colour has a picker (`<input type=color>`) and a text field, kept in step by the script; without it, the text
//! field is what is saved unless only the picker was changed.
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use callsign_core::branding::image_origin;
use callsign_domain::color::Rgb;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ui::{self, Nav};
use super::{Ctx, Page, Posted, internal};
use crate::app::AppState;
use crate::web::brand::{self, ImageSources};

pub const PAGE: &str = "/dashboard/branding";
/// What the pickers show for a colour that is not set (the login pages' own: app.css `--accent`, `--bg`).
const DEFAULT_PRIMARY: &str = "#0b57d0";
const DEFAULT_BACKGROUND: &str = "#f4f5f7";

/// What the form shows: the saved settings, or what was typed when the API refused it.
#[derive(Debug, Default, Clone)]
struct Typed {
    logo_url: String,
    primary: String,
    page_background: String,
}

impl Typed {
    fn of(b: &Value) -> Typed {
        let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
        Typed {
            logo_url: s(&b["logo_url"]),
            primary: s(&b["colors"]["primary"]),
            page_background: s(&b["colors"]["page_background"]),
        }
    }
}

pub async fn page(State(app): State<AppState>, ctx: Ctx) -> Page {
    render(&app, &ctx, StatusCode::OK, None, None).await
}

/// A colour as the picker needs it (`#rrggbb`), or `fallback`.
fn picker(value: &str, fallback: &str) -> String {
    Rgb::parse(value.trim()).map(|c| c.to_string()).unwrap_or_else(|_| fallback.to_owned())
}

async fn render(app: &AppState, ctx: &Ctx, status: StatusCode, error: Option<String>, typed: Option<Typed>) -> Page {
    let api = ctx.api(app).await?;
    let saved = api.get("/branding").await.map_err(internal)?;
    let tenant = api.get("/tenants/settings").await.map_err(internal)?;
    let name = tenant["friendly_name"].as_str().unwrap_or("Callsign").to_owned();
    let saved_typed = Typed::of(&saved);
    let t = typed.unwrap_or_else(|| saved_typed.clone());
    let body = html! {
        section class="panel" id="universal-login" aria-labelledby="ul-h" {
            h2 id="ul-h" { "Universal Login" }
            p class="muted" {
                "The logo and colours of the login, sign-up, phone and code pages. The name beside the logo is the "
                "tenant's friendly name (" a href="/dashboard/settings#tenant" { "Settings" } ")."
            }
            div class="branding-grid" {
                form method="post" action=(PAGE) id="branding-form" data-brand-preview="brand-preview" {
                    (ui::error(error.as_deref()))
                    (ui::csrf(app, ctx))
                    label for="b-logo" { "Logo URL" }
                    input type="url" id="b-logo" name="logo_url" value=(t.logo_url) maxlength="1024"
                        placeholder="https://example.com/logo.png" aria-describedby="b-logo-hint";
                    p class="hint" id="b-logo-hint" {
                        "An https address (http only on localhost). Shown about 52 pixels high. Leave empty for none."
                    }
                    (color_field("primary", "Primary colour", "Buttons, links and focus rings. Button text is black or white, whichever reads better.", &t.primary, &saved_typed.primary, DEFAULT_PRIMARY))
                    (color_field("page_background", "Page background", "Behind the login card.", &t.page_background, &saved_typed.page_background, DEFAULT_BACKGROUND))
                    p class="hint" { "Clear a text field to go back to Callsign's own colour." }
                    button type="submit" { "Save branding" }
                }
                (preview(&name, &saved_typed))
            }
        }
    };
    let css = brand_stylesheet(&saved);
    let shell = ui::shell_with_stylesheet(app, ctx, Nav::Branding, "Universal Login", css.as_deref(), body);
    let mut res = (status, shell).into_response();
    // The saved logo may come from another origin: the preview may load it (and only it), as the login pages do.
    if let Some(origin) = image_origin(&saved_typed.logo_url) {
        res.extensions_mut().insert(ImageSources(vec![origin]));
    }
    Ok(res)
}

/// The `/branding.css` link of the saved colours, for the preview.
fn brand_stylesheet(saved: &Value) -> Option<String> {
    let b: callsign_core::branding::Branding = serde_json::from_value(saved.clone()).unwrap_or_default();
    brand::Brand::of("", &b).stylesheet
}

fn color_field(name: &str, label: &str, hint: &str, value: &str, saved: &str, fallback: &str) -> Markup {
    let id = format!("b-{name}");
    let pick = format!("{id}-picker");
    html! {
        fieldset class="color-field" {
            legend { (label) }
            p class="hint" id=(format!("{id}-hint")) { (hint) }
            div class="row" {
                div {
                    label for=(pick) { "Pick" }
                    input type="color" id=(pick) name=(format!("{name}_picker")) value=(picker(value, fallback))
                        data-color-text=(id);
                }
                div {
                    label for=(id) { "Hex value" }
                    input type="text" id=(id) name=(name) value=(value) maxlength="7" placeholder=(fallback)
                        pattern="#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})" spellcheck="false" autocomplete="off"
                        aria-describedby=(format!("{id}-hint")) data-color-var=(name);
                }
            }
            input type="hidden" name=(format!("{name}_was")) value=(saved);
        }
    }
}

/// The mock login card, in the saved branding (`/branding.css` on `.branded`); `app.js` updates it live.
fn preview(name: &str, saved: &Typed) -> Markup {
    html! {
        figure class="brand-preview-frame" aria-labelledby="preview-caption" {
            figcaption id="preview-caption" class="hint" { "Preview of the login page" }
            div class="brand-preview branded" id="brand-preview" aria-hidden="true" {
                div class="preview-card" {
                    div class="brand" {
                        img class="brand-logo" id="preview-logo" src=[(!saved.logo_url.is_empty()).then_some(&saved.logo_url)]
                            alt="" hidden[saved.logo_url.is_empty()];
                        span class="brand-name" { (name) }
                    }
                    p class="preview-title" { "Log in" }
                    span class="preview-input" {}
                    span class="preview-input" {}
                    span class="preview-button" id="preview-button" { "Continue" }
                    span class="preview-link" { "Sign up" }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct BrandingForm {
    logo_url: String,
    primary: String,
    primary_picker: String,
    primary_was: String,
    page_background: String,
    page_background_picker: String,
    page_background_was: String,
}

/// The colour to save: the text field, unless only the picker changed (a browser without the script).
fn chosen(text: &str, picker_value: &str, was: &str, fallback: &str) -> Value {
    let text = text.trim();
    let value = if text == was && !picker_value.is_empty() && picker_value != picker(was, fallback) {
        picker_value
    } else {
        text
    };
    if value.is_empty() { Value::Null } else { json!(value) }
}

pub async fn save(State(app): State<AppState>, p: Posted<BrandingForm>) -> Page {
    let mut ctx = p.ctx;
    let f = p.form;
    let primary = chosen(&f.primary, &f.primary_picker, &f.primary_was, DEFAULT_PRIMARY);
    let background = chosen(&f.page_background, &f.page_background_picker, &f.page_background_was, DEFAULT_BACKGROUND);
    let logo = f.logo_url.trim();
    let body = json!({
        "logo_url": if logo.is_empty() { Value::Null } else { json!(logo) },
        "colors": {"primary": primary, "page_background": background},
    });
    let api = ctx.api(&app).await?;
    match api.patch("/branding", &body).await {
        Ok(_) => ctx.flash_and_go(&app, "Branding saved.", &format!("{PAGE}#universal-login")).await,
        Err(e) if e.status < 500 => {
            let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
            let typed = Typed {
                logo_url: logo.to_owned(),
                primary: s(&body["colors"]["primary"]),
                page_background: s(&body["colors"]["page_background"]),
            };
            render(&app, &ctx, StatusCode::BAD_REQUEST, Some(e.message), Some(typed)).await
        }
        Err(e) => Err(internal(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_field_wins_unless_only_the_picker_changed() {
        assert_eq!(chosen("#112233", "#0b57d0", "", DEFAULT_PRIMARY), json!("#112233"));
        assert_eq!(chosen("", "#0b57d0", "", DEFAULT_PRIMARY), Value::Null);
        assert_eq!(chosen("", "#ff0000", "", DEFAULT_PRIMARY), json!("#ff0000"));
        assert_eq!(chosen("#abc", "#aabbcc", "#abc", DEFAULT_PRIMARY), json!("#abc"));
        assert_eq!(chosen("#abc", "#000000", "#abc", DEFAULT_PRIMARY), json!("#000000"));
        assert_eq!(chosen("nope", "#000000", "#abc", DEFAULT_PRIMARY), json!("nope"));
    }
}
