//! The dashboard's page chrome: the top bar (the signed-in operator and the sign-out form), the left-hand menu in
//! sections (collapsible on a phone, without JavaScript), the breadcrumb, flash messages, and the small pieces the
//! pages share. English only.
use maud::{Markup, html};

use super::Ctx;
use crate::app::AppState;
use crate::web::layout;

/// The pages of the menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Apps,
    Users,
    Phone,
    Recovery,
    Destinations,
    Pumping,
    Usage,
    Attack,
    Branding,
    Logs,
    LogStreams,
    Inbox,
    Settings,
}

impl Nav {
    /// The page's link and its label in the menu.
    const fn link(self) -> (&'static str, &'static str) {
        match self {
            Nav::Overview => ("/dashboard", "Overview"),
            Nav::Apps => ("/dashboard/applications", "Applications"),
            Nav::Users => ("/dashboard/users", "Users"),
            Nav::Phone => ("/dashboard/mfa/phone", "Phone Message"),
            // The switch is a section of the Settings page.
            Nav::Recovery => ("/dashboard/settings#recovery", "Recovery Code"),
            Nav::Destinations => ("/dashboard/security/phone-destinations", "Phone destinations"),
            Nav::Pumping => ("/dashboard/security/sms-pumping", "SMS pumping"),
            Nav::Usage => ("/dashboard/security/phone-usage", "Usage and spend"),
            Nav::Attack => ("/dashboard/security/attack-protection", "Attack Protection"),
            Nav::Branding => ("/dashboard/branding", "Universal Login"),
            Nav::Logs => ("/dashboard/logs", "Logs"),
            Nav::LogStreams => ("/dashboard/log-streams", "Log Streams"),
            Nav::Inbox => ("/dashboard/inbox", "Development inbox"),
            Nav::Settings => ("/dashboard/settings", "Settings"),
        }
    }

    /// The menu sections above the page, outermost first (the breadcrumb's first steps; they have no page).
    const fn sections(self) -> &'static [&'static str] {
        match self {
            Nav::Phone | Nav::Recovery | Nav::Destinations | Nav::Pumping | Nav::Usage => {
                &["Security", "Multi-factor Auth"]
            }
            Nav::Attack => &["Security"],
            Nav::Branding => &["Branding"],
            Nav::Logs | Nav::LogStreams | Nav::Inbox => &["Monitoring"],
            Nav::Overview | Nav::Apps | Nav::Users | Nav::Settings => &[],
        }
    }
}

/// One entry of the menu: a page, or a titled group of entries.
enum Item {
    Page(Nav),
    Group(&'static str, &'static [Item]),
}

/// The menu, in the order and sections of the Auth0 Dashboard.
const MENU: &[Item] = &[
    Item::Page(Nav::Overview),
    Item::Page(Nav::Apps),
    Item::Page(Nav::Users),
    Item::Group("Branding", &[Item::Page(Nav::Branding)]),
    Item::Group(
        "Security",
        &[
            Item::Group(
                "Multi-factor Auth",
                &[
                    Item::Page(Nav::Phone),
                    Item::Page(Nav::Destinations),
                    Item::Page(Nav::Pumping),
                    Item::Page(Nav::Usage),
                    Item::Page(Nav::Recovery),
                ],
            ),
            Item::Page(Nav::Attack),
        ],
    ),
    Item::Group("Monitoring", &[Item::Page(Nav::Logs), Item::Page(Nav::LogStreams), Item::Page(Nav::Inbox)]),
    Item::Page(Nav::Settings),
];

fn menu(items: &[Item], active: Nav) -> Markup {
    html! {
        ul {
            @for item in items {
                @match item {
                    Item::Page(nav) => {
                        @let (href, label) = nav.link();
                        li { a href=(href) aria-current=[(*nav == active).then_some("page")] { (label) } }
                    }
                    Item::Group(title, children) => {
                        li class="group" {
                            span class="group-title" { (title) }
                            (menu(children, active))
                        }
                    }
                }
            }
        }
    }
}

/// The breadcrumb: the menu sections, the page (a link when `title` names something inside it, e.g. one user), then
/// the title, marked as the current page.
fn breadcrumb(active: Nav, title: &str) -> Markup {
    let (href, label) = active.link();
    html! {
        nav class="breadcrumb" aria-label="Breadcrumb" {
            ol {
                @for section in active.sections() {
                    li { (section) }
                }
                @if label != title {
                    li { a href=(href) { (label) } }
                }
                li { span aria-current="page" { (title) } }
            }
        }
    }
}

/// A signed-in page: the top bar, the menu, the breadcrumb and the page heading, the flash message, then `body`.
///
/// The menu is one `<details>`: on a wide screen the stylesheet keeps it open and hides its summary; on a phone the
/// summary ("Menu") opens and closes it, by mouse, touch or keyboard, without JavaScript.
pub fn shell(app: &AppState, ctx: &Ctx, active: Nav, title: &str, body: Markup) -> Markup {
    shell_with_stylesheet(app, ctx, active, title, None, body)
}

/// [`shell`] with a second stylesheet (the Branding page's preview: the saved colours, `/branding.css`).
pub fn shell_with_stylesheet(
    app: &AppState,
    ctx: &Ctx,
    active: Nav,
    title: &str,
    stylesheet: Option<&str>,
    body: Markup,
) -> Markup {
    let full_title = format!("{title} · Callsign Dashboard");
    layout::page_with(
        "en",
        &full_title,
        layout::Head { stylesheet, ..Default::default() },
        html! {
            a class="skip-link" href="#main" { "Skip to content" }
            div class="dash-layout" {
                header class="dash-top" {
                    a class="brand" href="/dashboard" { "Callsign" span class="brand-sub" { " Dashboard" } }
                    form class="signout" method="post" action="/dashboard/logout" {
                        input type="hidden" name="csrf" value=(ctx.csrf(app));
                        span class="who" title=(ctx.email()) { (ctx.email()) }
                        button type="submit" class="nav-button" { "Sign out" }
                    }
                }
                nav class="side" aria-label="Dashboard" {
                    details class="menu" {
                        summary { "Menu" }
                        (menu(MENU, active))
                    }
                }
                main id="main" class="wide dash" {
                    (breadcrumb(active, title))
                    h1 { (title) }
                    @if let Some(f) = &ctx.flash {
                        div class="alert ok" role="status" { (f) }
                    }
                    (body)
                }
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
