//! The page shell shared by every browser page.
use maud::{DOCTYPE, Markup, html};

/// A complete HTML document. `lang` is the page language (also `dir`-neutral: all our languages are LTR).
pub fn page(lang: &str, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body {
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
