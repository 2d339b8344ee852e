//! How an authorization response (a code, an ID token, or an error) goes back to the application: the
//! `response_type`s and `response_mode`s of `/authorize`.
//!
//! - `query` (the code flow's default): a redirect to `redirect_uri?…`;
//! - `fragment` (the default with an ID token): a redirect to `redirect_uri#…`;
//! - `form_post`: a page whose form posts the fields to `redirect_uri` (submitted by `app.js`, or by its button);
//! - `web_message`: a page whose script posts `{"type":"authorization_response","response":{…}}` to
//!   `window.opener || window.parent`, with the `redirect_uri`'s origin as the target origin (one of the client's
//!   `web_origins`). That page alone may be framed, and only by that origin ([`FrameAncestor`]).
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::texts;
use crate::web::layout;

/// What `/authorize` was asked to answer.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ResponseType {
    /// `code`: the authorization code flow.
    #[default]
    Code,
    /// `id_token`: the implicit flow, an ID token only.
    IdToken,
    /// `code id_token`: the hybrid flow, a code and an ID token with `c_hash`.
    CodeIdToken,
}

impl ResponseType {
    /// `response_type`'s value (space separated, in any order); None for the types Callsign does not issue
    /// (`token`, `id_token token`, …).
    pub fn parse(s: &str) -> Option<ResponseType> {
        let mut parts: Vec<&str> = s.split_whitespace().collect();
        parts.sort_unstable();
        parts.dedup();
        match parts.as_slice() {
            ["code"] => Some(ResponseType::Code),
            ["id_token"] => Some(ResponseType::IdToken),
            ["code", "id_token"] => Some(ResponseType::CodeIdToken),
            _ => None,
        }
    }

    pub fn has_code(self) -> bool {
        matches!(self, ResponseType::Code | ResponseType::CodeIdToken)
    }

    pub fn has_id_token(self) -> bool {
        matches!(self, ResponseType::IdToken | ResponseType::CodeIdToken)
    }

    /// The mode used when none is asked for (OpenID Connect: query for the code, fragment with an ID token).
    pub fn default_mode(self) -> ResponseMode {
        if self.has_id_token() { ResponseMode::Fragment } else { ResponseMode::Query }
    }

    /// The grants the client needs for this type (Auth0: the hybrid flow needs both).
    pub fn grants(self) -> &'static [&'static str] {
        match self {
            ResponseType::Code => &["authorization_code"],
            ResponseType::IdToken => &["implicit"],
            ResponseType::CodeIdToken => &["authorization_code", "implicit"],
        }
    }
}

/// How the response travels.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    #[default]
    Query,
    Fragment,
    FormPost,
    WebMessage,
}

impl ResponseMode {
    pub fn parse(s: &str) -> Option<ResponseMode> {
        match s {
            "query" => Some(ResponseMode::Query),
            "fragment" => Some(ResponseMode::Fragment),
            "form_post" => Some(ResponseMode::FormPost),
            "web_message" => Some(ResponseMode::WebMessage),
            _ => None,
        }
    }
}

/// Where an authorization response goes: the callback (already checked against the client's `callbacks`), how, and
/// for `web_message` the origin it is posted to (already checked against the client's `web_origins`).
#[derive(Debug, Clone)]
pub struct Target {
    pub redirect_uri: String,
    pub mode: ResponseMode,
    pub web_origin: Option<String>,
}

/// A response extension asking [`crate::web::security_headers`] to let `origin` (and only it) frame this page.
#[derive(Debug, Clone)]
pub struct FrameAncestor(pub String);

/// Send `params` (`code`, `id_token`, `state`, or `error`, `error_description`, `state`) to the application.
/// `status` is the redirect's (302 from `/authorize`, 303 after a form); the two page modes answer 200. `cookies`
/// go on the response whatever the mode.
pub fn send(target: &Target, params: &[(&str, &str)], status: StatusCode, cookies: &[String], lang: &str) -> Response {
    match target.mode {
        ResponseMode::Query => super::redirect(status, &super::with_query(&target.redirect_uri, params), cookies),
        ResponseMode::Fragment => super::redirect(status, &with_fragment(&target.redirect_uri, params), cookies),
        ResponseMode::FormPost => with_cookies(form_post(&target.redirect_uri, params, lang), cookies),
        ResponseMode::WebMessage => match &target.web_origin {
            Some(origin) => with_cookies(web_message(origin, params, lang), cookies),
            None => {
                tracing::error!("a web_message response without its checked origin");
                super::error_page(StatusCode::BAD_REQUEST, lang, texts::of(lang).bad_redirect)
            }
        },
    }
}

fn with_cookies(mut r: Response, cookies: &[String]) -> Response {
    for c in cookies {
        r = super::with_cookie(r, c);
    }
    r
}

/// `redirect_uri#k=v&…` (the callback has no fragment: `/authorize` refuses one).
pub fn with_fragment(base: &str, params: &[(&str, &str)]) -> String {
    let q = serde_urlencoded::to_string(params).unwrap_or_default();
    format!("{base}#{q}")
}

/// The `form_post` page: hidden fields posted to the callback. `app.js` submits it at once; without JavaScript the
/// button does.
fn form_post(redirect_uri: &str, params: &[(&str, &str)], lang: &str) -> Response {
    let t = texts::of(lang);
    let body = html! {
        main class="card" {
            form method="post" action=(redirect_uri) data-auto-submit {
                @for (k, v) in params {
                    input type="hidden" name=(k) value=(v);
                }
                noscript { p { (t.continue_) } }
                button type="submit" { (t.continue_) }
            }
        }
    };
    (StatusCode::OK, layout::page(lang, t.continue_, body)).into_response()
}

/// The message `web_message` posts: `{"type":"authorization_response","response":{…params}}`.
pub fn web_message_payload(params: &[(&str, &str)]) -> Value {
    let response: Map<String, Value> = params.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
    json!({"type": "authorization_response", "response": response})
}

/// The `web_message` page: the message and its target origin in data attributes (HTML-escaped, never inline
/// script), posted by `app.js`.
fn web_message(origin: &str, params: &[(&str, &str)], lang: &str) -> Response {
    let payload = web_message_payload(params).to_string();
    let body = html! {
        div id="cs-web-message" hidden data-origin=(origin) data-message=(payload) {}
    };
    let mut r = (StatusCode::OK, layout::page(lang, texts::of(lang).continue_, body)).into_response();
    r.extensions_mut().insert(FrameAncestor(origin.to_owned()));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_types_parse_in_any_order() {
        assert_eq!(ResponseType::parse("code"), Some(ResponseType::Code));
        assert_eq!(ResponseType::parse("id_token"), Some(ResponseType::IdToken));
        assert_eq!(ResponseType::parse("id_token  code"), Some(ResponseType::CodeIdToken));
        for bad in ["", "token", "id_token token", "code token", "code id_token token", "none"] {
            assert_eq!(ResponseType::parse(bad), None, "{bad}");
        }
        assert_eq!(ResponseType::IdToken.default_mode(), ResponseMode::Fragment);
        assert_eq!(ResponseType::Code.default_mode(), ResponseMode::Query);
    }

    #[test]
    fn fragments_are_encoded() {
        assert_eq!(
            with_fragment("https://a.example/cb", &[("id_token", "a.b"), ("state", "s&t")]),
            "https://a.example/cb#id_token=a.b&state=s%26t"
        );
    }
}
