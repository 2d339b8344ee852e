//! Universal Login branding (`/api/v2/branding`, in Auth0's shape): the logo, the favicon, the primary colour and
//! the page background of the login pages. One settings document (`branding`); the tenant's friendly name, which
//! the pages show next to the logo, stays in the tenant settings (`friendly_name`), as in Auth0.
//!
//! A change is a JSON merge patch: a property not named is kept, `null` clears it, `colors` merges field by field.
//! Refused, with the property named: an unknown property, a colour that is not `#rrggbb` / `#rgb`, a gradient
//! object for `colors.page_background` (Callsign draws plain colours only), a URL that is not https (http only for
//! localhost) or is longer than [`MAX_URL_LEN`], and `font.url` (the pages use system fonts: Callsign runs offline).
use callsign_domain::color::Rgb;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Core;

pub const SETTINGS_KEY: &str = "branding";
/// The longest `logo_url` / `favicon_url`.
pub const MAX_URL_LEN: usize = 1024;

/// The colours, each stored as given once it parsed (`#rrggbb` or `#rgb`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Colors {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_background: Option<String>,
}

impl Colors {
    fn is_empty(&self) -> bool {
        self.primary.is_none() && self.page_background.is_none()
    }
}

/// The stored branding; what is not set is absent (Auth0 answers only what was set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Branding {
    #[serde(skip_serializing_if = "Colors::is_empty")]
    pub colors: Colors,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub favicon_url: Option<String>,
}

impl Branding {
    pub fn primary(&self) -> Option<Rgb> {
        self.colors.primary.as_deref().and_then(|c| Rgb::parse(c).ok())
    }

    pub fn page_background(&self) -> Option<Rgb> {
        self.colors.page_background.as_deref().and_then(|c| Rgb::parse(c).ok())
    }

    /// Apply a merge patch (see the module). On a refusal, `(property, message)` and nothing changed.
    pub fn apply(&mut self, patch: &Map<String, Value>) -> Result<(), (String, String)> {
        let mut next = self.clone();
        for (k, v) in patch {
            match k.as_str() {
                "colors" => match v {
                    Value::Null => next.colors = Colors::default(),
                    Value::Object(c) => {
                        for (ck, cv) in c {
                            let slot = match ck.as_str() {
                                "primary" => &mut next.colors.primary,
                                "page_background" => &mut next.colors.page_background,
                                _ => return Err((format!("colors.{ck}"), "Additional properties not allowed".into())),
                            };
                            *slot = color(&format!("colors.{ck}"), cv)?;
                        }
                    }
                    _ => return Err(("colors".into(), "Expected type object but found type other".into())),
                },
                "logo_url" => next.logo_url = url("logo_url", v)?,
                "favicon_url" => next.favicon_url = url("favicon_url", v)?,
                "font" => match v {
                    Value::Null => {}
                    Value::Object(f) if f.is_empty() || f.get("url").is_some_and(Value::is_null) => {}
                    _ => {
                        return Err((
                            "font.url".into(),
                            "Custom fonts are not supported: the login pages use the system fonts (Callsign runs offline)"
                                .into(),
                        ));
                    }
                },
                _ => return Err((k.clone(), "Additional properties not allowed".into())),
            }
        }
        *self = next;
        Ok(())
    }
}

fn color(prop: &str, v: &Value) -> Result<Option<String>, (String, String)> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Rgb::parse(s).map(|_| Some(s.clone())).map_err(|e| (prop.to_owned(), e.to_string())),
        Value::Object(_) if prop == "colors.page_background" => Err((
            prop.to_owned(),
            "Gradient backgrounds are not supported: give one colour in #rrggbb or #rgb form".into(),
        )),
        _ => Err((prop.to_owned(), "Expected a colour string in #rrggbb or #rgb form".into())),
    }
}

fn url(prop: &str, v: &Value) -> Result<Option<String>, (String, String)> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.chars().count() > MAX_URL_LEN => {
            Err((prop.to_owned(), format!("String is too long (at most {MAX_URL_LEN} characters)")))
        }
        Value::String(s) => match image_origin(s) {
            Some(_) => Ok(Some(s.clone())),
            None => Err((prop.to_owned(), "Must be an https URL (http only for localhost)".into())),
        },
        _ => Err((prop.to_owned(), "Expected type string".into())),
    }
}

/// The origin (`https://host[:port]`) of an image URL the pages may load: https, or http on localhost; a plain host
/// name or address (no user part); no spaces, quotes or angle brackets anywhere. `None` for anything else. The
/// pages add this origin, and only it, to their `img-src`.
pub fn image_origin(url: &str) -> Option<String> {
    if !url.chars().all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '<' | '>' | '\\' | '`')) {
        return None;
    }
    // The origin as CORS compares them (lower case, no user part, a valid host and port).
    let origin = callsign_domain::web_origin::of(url)?;
    let (scheme, authority) = origin.split_once("://")?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => &authority[..v6.find(']')? + 2],
        None => authority.split(':').next()?,
    };
    let local = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
    match scheme {
        "https" => Some(origin),
        "http" if local => Some(origin),
        _ => None,
    }
}

pub async fn load(app: &Core) -> crate::BoxResult<Branding> {
    crate::documents::load(app, SETTINGS_KEY).await
}

/// Apply a merge patch without losing a concurrent write ([`crate::documents::modify`]); a refusal is the inner
/// `Err((property, message))`, with nothing written.
pub async fn patch(app: &Core, body: &Map<String, Value>) -> crate::BoxResult<Result<Branding, (String, String)>> {
    crate::documents::modify(app, SETTINGS_KEY, "branding", Branding::default, |b| {
        b.apply(body)?;
        Ok(b.clone())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_patch_merges_and_null_clears() {
        let mut b = Branding::default();
        b.apply(&obj(json!({"colors": {"primary": "#123"}, "logo_url": "https://cdn.example/l.png"}))).unwrap();
        b.apply(&obj(json!({"colors": {"page_background": "#ffffff"}}))).unwrap();
        assert_eq!(b.colors.primary.as_deref(), Some("#123"));
        assert_eq!(b.colors.page_background.as_deref(), Some("#ffffff"));
        b.apply(&obj(json!({"colors": {"primary": null}, "logo_url": null}))).unwrap();
        assert_eq!(serde_json::to_value(&b).unwrap(), json!({"colors": {"page_background": "#ffffff"}}));
        b.apply(&obj(json!({"colors": null}))).unwrap();
        assert_eq!(serde_json::to_value(&b).unwrap(), json!({}));
    }

    #[test]
    fn each_refusal_names_its_property_and_changes_nothing() {
        let mut b = Branding::default();
        b.apply(&obj(json!({"colors": {"primary": "#000"}}))).unwrap();
        for (patch, prop) in [
            (json!({"colors": {"primary": "blue"}}), "colors.primary"),
            (
                json!({"colors": {"page_background": {"type": "linear-gradient", "start": "#fff", "end": "#000"}}}),
                "colors.page_background",
            ),
            (json!({"colors": {"accent": "#fff"}}), "colors.accent"),
            (json!({"colors": "#fff"}), "colors"),
            (json!({"logo_url": "javascript:alert(1)"}), "logo_url"),
            (json!({"logo_url": "http://cdn.example/l.png"}), "logo_url"),
            (json!({"favicon_url": 3}), "favicon_url"),
            (json!({"font": {"url": "https://fonts.example/f.woff2"}}), "font.url"),
            (json!({"theme": "dark"}), "theme"),
            (json!({"logo_url": format!("https://a.example/{}", "x".repeat(MAX_URL_LEN))}), "logo_url"),
        ] {
            let before = b.clone();
            let (p, _) = b.apply(&obj(patch.clone())).unwrap_err();
            assert_eq!(p, prop, "{patch}");
            assert_eq!(b, before);
        }
    }

    #[test]
    fn image_origins_are_https_or_local_http() {
        assert_eq!(image_origin("https://CDN.example:8443/a/b.png?x=1").as_deref(), Some("https://cdn.example:8443"));
        assert_eq!(image_origin("http://localhost:3000/logo.svg").as_deref(), Some("http://localhost:3000"));
        assert_eq!(image_origin("http://[::1]/l.png").as_deref(), Some("http://[::1]"));
        for bad in [
            "http://cdn.example/l.png",
            "https://user@cdn.example/l.png",
            "https://cdn.example;script-src */l.png",
            "https://cdn.example/l.png\" onerror=\"x",
            "https:///l.png",
            "https://cdn.example:/l.png",
            "https://cdn.example/a b.png",
            "data:image/png;base64,AAAA",
            "ftp://cdn.example/l.png",
        ] {
            assert_eq!(image_origin(bad), None, "{bad}");
        }
    }
}
