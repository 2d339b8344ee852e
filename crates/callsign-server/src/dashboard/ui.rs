//! The dashboard's page chrome: the top navigation (with `aria-current`), the sign-out form, flash messages, and the
//! small pieces the pages share. English only.
use maud::{Markup, html};

use super::Ctx;
use crate::app::AppState;
use crate::web::layout;

/// The sections of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Apps,
    Phone,
    Attack,
    Users,
    Logs,
    Inbox,
    Settings,
}

const LINKS: &[(Nav, &str, &str)] = &[
    (Nav::Apps, "/dashboard/applications", "Applications"),
    (Nav::Phone, "/dashboard/mfa/phone", "Multi-factor Auth: Phone Message"),
    (Nav::Attack, "/dashboard/security/attack-protection", "Attack Protection"),
    (Nav::Users, "/dashboard/users", "Users"),
    (Nav::Logs, "/dashboard/logs", "Logs"),
    (Nav::Inbox, "/dashboard/inbox", "Development inbox"),
    (Nav::Settings, "/dashboard/settings", "Settings"),
];

/// A signed-in page: navigation, the page heading, the flash message, then `body`.
pub fn shell(app: &AppState, ctx: &Ctx, active: Nav, title: &str, body: Markup) -> Markup {
    let full_title = format!("{title} · Callsign Dashboard");
    layout::page(
        "en",
        &full_title,
        html! {
            a class="skip-link" href="#main" { "Skip to content" }
            header {
                nav class="top dash" aria-label="Dashboard" {
                    span class="brand" { "Callsign" }
                    @for (nav, href, label) in LINKS {
                        @if *nav == active {
                            a href=(href) aria-current="page" { (label) }
                        } @else {
                            a href=(href) { (label) }
                        }
                    }
                    form class="signout" method="post" action="/dashboard/logout" {
                        input type="hidden" name="csrf" value=(ctx.csrf(app));
                        span class="who" { (ctx.email()) }
                        button type="submit" class="nav-button" { "Sign out" }
                    }
                }
            }
            main id="main" class="wide dash" {
                h1 { (title) }
                @if let Some(f) = &ctx.flash {
                    div class="alert ok" role="status" { (f) }
                }
                (body)
            }
        },
    )
}

/// A page without the navigation (sign-in, setup, errors).
pub fn bare(title: &str, body: Markup) -> Markup {
    let full_title = format!("{title} · Callsign Dashboard");
    layout::page("en", &full_title, html! { main id="main" class="card" { (body) } })
}

pub fn message(title: &str, text: &str) -> Markup {
    html! {
        h1 { (title) }
        p { (text) }
        p { a href="/dashboard" { "Back to the dashboard" } }
    }
}

/// The hidden CSRF field of a signed-in form.
pub fn csrf(app: &AppState, ctx: &Ctx) -> Markup {
    html! { input type="hidden" name="csrf" value=(ctx.csrf(app)); }
}

/// An error region (announced), or nothing.
pub fn error(message: Option<&str>) -> Markup {
    layout::error_box(message)
}

/// Pretty JSON for display.
pub fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// A string field of a JSON value ("" when absent).
pub fn s<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
    v.get(key).and_then(serde_json::Value::as_str).unwrap_or("")
}

/// A JSON list of strings as the lines of a textarea.
pub fn lines(v: &serde_json::Value) -> String {
    v.as_array().into_iter().flatten().filter_map(serde_json::Value::as_str).collect::<Vec<_>>().join("\n")
}

/// The non-empty lines of a textarea, trimmed: a list for the API.
pub fn list_of(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()
}
