//! The page shell shared by every browser page.
use maud::{DOCTYPE, Markup, html};

use super::brand::Brand;

/// A complete HTML document. `lang` is the page language (also `dir`-neutral: all our languages are LTR).
pub fn page(lang: &str, title: &str, body: Markup) -> Markup {
    page_with(lang, title, Head::default(), body)
}

/// What a page adds to the shell's `<head>` and `<body>`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Head<'a> {
    /// A second stylesheet (the tenant's colours, `/branding.css?v=…`).
    pub stylesheet: Option<&'a str>,
    pub favicon: Option<&'a str>,
    pub body_class: Option<&'a str>,
}

/// [`page`] in the tenant's branding (the login pages): its stylesheet and favicon, and `<body class="branded">`,
/// which the stylesheet's custom properties apply to.
pub fn branded_page(lang: &str, title: &str, brand: &Brand, body: Markup) -> Markup {
    let head = Head {
        stylesheet: brand.stylesheet.as_deref(),
        favicon: brand.favicon_url.as_deref(),
        body_class: Some("branded"),
    };
    page_with(lang, title, head, body)
}

pub fn page_with(lang: &str, title: &str, head: Head<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) }
                link rel="stylesheet" href="/static/app.css";
                @if let Some(css) = head.stylesheet {
                    link rel="stylesheet" href=(css);
                }
                @if let Some(icon) = head.favicon {
                    link rel="icon" href=(icon);
                }
                script src="/static/app.js" defer {}
            }
            body class=[head.body_class] {
                (body)
            }
        }
    }
}

/// An alert region for errors (announced by screen readers).
pub fn error_box(message: Option<&str>) -> Markup {
    html! {
        @if let Some(m) = message {
            div class="alert error" role="alert" { (m) }
        }
    }
}
