//! The tenant's branding on the login pages: the friendly name (tenant settings), the logo, the favicon and the
//! colours (`/api/v2/branding`, `callsign_core::branding`).
//!
//! - The colours reach the pages through `/branding.css` ([`stylesheet`]): CSS custom properties generated from the
//!   settings, linked as `/branding.css?v=<hash of its text>` so that a browser caches each version for good and
//!   fetches the next one as soon as the settings change. The CSP (`style-src 'self'`) stays as it is: nothing
//!   inline.
//! - A primary colour is the buttons' background, with black or white text, whichever reads better (WCAG AA for any
//!   colour); links and focus rings use the primary colour moved just far enough towards black (light scheme) or
//!   white (dark scheme) to read at 4.5:1 on the card.
//! - The logo and favicon origins are added to the page's `img-src` ([`ImageSources`]), and only they.
//!
//! Every login page needs this, including the error pages that handlers build deep in a flow from nothing but the
//! page language. Rather than thread the branding through each of those ~40 call sites, the login routes' middleware
//! ([`layer`]) loads it once per request and makes it the request's [`current`] branding (a task-local value: it
//! lives exactly as long as the request's handler). Outside a request, e.g. in unit tests, pages get the defaults.
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use callsign_core::branding::{self, Branding};
use callsign_domain::color::{Rgb, WHITE};

use crate::app::AppState;

/// What a login page shows of the tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Brand {
    /// The tenant's friendly name (`Callsign` until one is set).
    pub name: String,
    pub logo_url: Option<String>,
    pub favicon_url: Option<String>,
    /// `/branding.css?v=…` when a colour is set.
    pub stylesheet: Option<String>,
}

impl Brand {
    pub fn of(name: &str, b: &Branding) -> Brand {
        let css = css(b);
        Brand {
            name: name.to_owned(),
            logo_url: b.logo_url.clone(),
            favicon_url: b.favicon_url.clone(),
            stylesheet: (!css.is_empty()).then(|| format!("/branding.css?v={}", version(&css))),
        }
    }

    /// The defaults: Callsign's name and look.
    pub fn plain() -> Brand {
        Brand { name: "Callsign".into(), ..Brand::default() }
    }

    pub async fn load(app: &AppState) -> crate::BoxResult<Brand> {
        let tenant = callsign_core::tenant::load(app).await?;
        let b = branding::load(app).await?;
        Ok(Brand::of(tenant.friendly_name(), &b))
    }

    /// The origins the page must load images from (the logo's, the favicon's).
    pub fn image_sources(&self) -> ImageSources {
        let mut v: Vec<String> = [&self.logo_url, &self.favicon_url]
            .into_iter()
            .flatten()
            .filter_map(|u| branding::image_origin(u))
            .collect();
        v.dedup();
        ImageSources(v)
    }
}

/// A response extension: origins [`super::security_headers`] adds to the page's `img-src`.
#[derive(Debug, Clone, Default)]
pub struct ImageSources(pub Vec<String>);

tokio::task_local! {
    static CURRENT: Arc<Brand>;
}

/// The branding of the request being served ([`Brand::plain`] outside one).
pub fn current() -> Arc<Brand> {
    CURRENT.try_with(Arc::clone).unwrap_or_else(|_| Arc::new(Brand::plain()))
}

/// Run `f` with `brand` as the [`current`] branding.
pub async fn scope<F: std::future::Future>(brand: Brand, f: F) -> F::Output {
    CURRENT.scope(Arc::new(brand), f).await
}

/// Middleware of the login pages: load the branding (the defaults, logged, if it cannot be read: a login page is
/// still better than none), serve the request with it, and name its image origins for the CSP.
pub async fn layer(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let brand = Brand::load(&app).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "the branding could not be read; the login page shows the defaults");
        Brand::plain()
    });
    let sources = brand.image_sources();
    let mut res = scope(brand, next.run(req)).await;
    if !sources.0.is_empty() {
        res.extensions_mut().insert(sources);
    }
    res
}

fn version(css: &str) -> String {
    callsign_domain::hash::token_hash(css).chars().take(16).collect()
}

/// The card's colours in each scheme (app.css `--card`), which link colours must read on, and the hover tint of
/// secondary buttons (`--accent-soft`).
const CARD_LIGHT: [Rgb; 2] = [WHITE, Rgb(0xe3, 0xec, 0xfb)];
const CARD_DARK: [Rgb; 2] = [Rgb(0x1b, 0x20, 0x27), Rgb(0x1f, 0x33, 0x57)];

fn readable_on_all(c: Rgb, backgrounds: &[Rgb]) -> Rgb {
    backgrounds.iter().fold(c, |c, bg| c.readable_on(*bg))
}

/// The custom properties for `b`'s colours ("" when none is set), under `.branded` (the login pages' `<body>`, and
/// the dashboard's preview card).
pub fn css(b: &Branding) -> String {
    let mut light = Vec::new();
    let mut dark = Vec::new();
    if let Some(p) = b.primary() {
        light.push(format!("--button-bg: {p}; --button-fg: {};", p.readable_text()));
        let link = readable_on_all(p, &CARD_LIGHT);
        light.push(format!("--accent: {link}; --focus: {link};"));
        let link = readable_on_all(p, &CARD_DARK);
        dark.push(format!("--accent: {link}; --focus: {link};"));
    }
    if let Some(bg) = b.page_background() {
        light.push(format!("--page-bg: {bg};"));
    }
    if light.is_empty() {
        return String::new();
    }
    let mut out =
        format!("/* Callsign: the tenant's branding (/api/v2/branding). */\n.branded {{ {} }}\n", light.join(" "));
    if !dark.is_empty() {
        out.push_str(&format!("@media (prefers-color-scheme: dark) {{ .branded {{ {} }} }}\n", dark.join(" ")));
    }
    out
}

/// `GET /branding.css`: the current colours. Cached for a year when asked for by the current version (the link a
/// page carries), not cached otherwise (an old link, or none).
pub async fn stylesheet(State(app): State<AppState>, axum::extract::RawQuery(q): axum::extract::RawQuery) -> Response {
    // Read by hand, so that any query is answered (one that does not name the current version is an old link).
    let asked = q.as_deref().unwrap_or("").split('&').find_map(|kv| kv.strip_prefix("v=")).map(str::to_owned);
    let b = match branding::load(&app).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "the branding could not be read for /branding.css");
            return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let text = css(&b);
    let cache = if asked.as_deref() == Some(version(&text).as_str()) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8")),
            (CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn branding(v: serde_json::Value) -> Branding {
        let mut b = Branding::default();
        b.apply(v.as_object().unwrap()).unwrap();
        b
    }

    #[test]
    fn colours_become_custom_properties_with_readable_text() {
        assert_eq!(css(&Branding::default()), "");
        let dark = css(&branding(json!({"colors": {"primary": "#0b1a33", "page_background": "#f7f3e8"}})));
        assert!(dark.contains("--button-bg: #0b1a33; --button-fg: #ffffff;"), "{dark}");
        assert!(dark.contains("--accent: #0b1a33;"), "{dark}");
        assert!(dark.contains("--page-bg: #f7f3e8;"), "{dark}");
        // On the dark card the navy is lightened for links.
        assert!(dark.contains("@media (prefers-color-scheme: dark) { .branded { --accent: #"));
        assert!(!dark.contains("dark) { .branded { --accent: #0b1a33"), "{dark}");
        let light = css(&branding(json!({"colors": {"primary": "#ffeb3b"}})));
        assert!(light.contains("--button-fg: #000000;"), "{light}");
        assert!(
            !light.contains(".branded { --button-bg: #ffeb3b; --button-fg: #000000; --accent: #ffeb3b;"),
            "{light}"
        );
        assert!(light.contains("dark) { .branded { --accent: #ffeb3b;"), "yellow reads on the dark card: {light}");
    }

    #[test]
    fn the_stylesheet_link_changes_with_the_colours() {
        let a = Brand::of("Acme", &branding(json!({"colors": {"primary": "#112233"}})));
        let b = Brand::of("Acme", &branding(json!({"colors": {"primary": "#112234"}})));
        assert!(a.stylesheet.as_deref().is_some_and(|s| s.starts_with("/branding.css?v=")));
        assert_ne!(a.stylesheet, b.stylesheet);
        assert_eq!(Brand::of("Acme", &Branding::default()).stylesheet, None);
    }

    #[test]
    fn only_the_logo_and_favicon_origins_are_image_sources() {
        let b = Brand::of(
            "Acme",
            &branding(json!({"logo_url": "https://cdn.example/l.png", "favicon_url": "https://cdn.example/f.ico"})),
        );
        assert_eq!(b.image_sources().0, vec!["https://cdn.example".to_owned()]);
        assert!(Brand::plain().image_sources().0.is_empty());
    }
}
