//! Extractors shared by the handlers.
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::{CONTENT_TYPE, USER_AGENT};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Why a request body was not parsed; each API turns it into its own error shape.
#[derive(Debug)]
pub enum BodyError {
    /// A body of a type other than JSON or form, or a non-empty body with no type: 415.
    UnsupportedType,
    /// The body could not be read, or is not valid JSON / form for the endpoint: 400, with what went wrong.
    Invalid { form: bool, detail: String },
}

/// What every body-taking endpoint of both APIs accepts (Auth0 accepts both on the Authentication and the
/// Management API).
pub const ACCEPTED_TYPES: &str = "Content-Type must be application/json or application/x-www-form-urlencoded";

enum Kind {
    Json,
    Form,
}

/// `application/json` (or any `application/*+json`) and `application/x-www-form-urlencoded`, parameters ignored.
fn kind_of(content_type: &str) -> Option<Kind> {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence == "application/x-www-form-urlencoded" {
        Some(Kind::Form)
    } else if essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json")) {
        Some(Kind::Json)
    } else {
        None
    }
}

/// Parse a request body the one way every API endpoint does: JSON or form by `Content-Type`; a body without a type
/// is accepted only when it is empty (it reads as `{}`), any other type is [`BodyError::UnsupportedType`]. An empty
/// or all-whitespace JSON body also reads as `{}`. (Size and read-time limits are enforced before, by
/// [`super::limits`].)
pub async fn parse_body<T: DeserializeOwned, S: Send + Sync>(req: Request, state: &S) -> Result<T, BodyError> {
    let content_type = req.headers().get(CONTENT_TYPE).map(|v| v.to_str().unwrap_or("\u{fffd}").to_owned());
    let kind = match content_type.as_deref() {
        Some(ct) => Some(kind_of(ct).ok_or(BodyError::UnsupportedType)?),
        None => None,
    };
    let bytes = axum::body::Bytes::from_request(req, state)
        .await
        .map_err(|e| BodyError::Invalid { form: false, detail: e.body_text() })?;
    let blank = bytes.iter().all(u8::is_ascii_whitespace);
    match kind {
        None if !blank => Err(BodyError::UnsupportedType),
        Some(Kind::Form) if !form_is_utf8(&bytes) => {
            Err(BodyError::Invalid { form: true, detail: "the form body is not UTF-8 once decoded".into() })
        }
        Some(Kind::Form) => serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| BodyError::Invalid { form: true, detail: format!("Failed to deserialize form body: {e}") }),
        None | Some(Kind::Json) => {
            let bytes: &[u8] = if blank { b"{}" } else { &bytes };
            serde_json::from_slice(bytes).map_err(|e| BodyError::Invalid { form: false, detail: e.to_string() })
        }
    }
}

/// A Management API request body (JSON or form, see [`parse_body`]). Errors are Management-API shaped: 400
/// `invalid_body`, 415 `unsupported_media_type`.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        parse_body(req, state).await.map(Body).map_err(|e| match e {
            BodyError::UnsupportedType => ApiError::new(axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE, ACCEPTED_TYPES)
                .code("unsupported_media_type"),
            BodyError::Invalid { detail, .. } => {
                ApiError::bad_request(format!("Payload validation error: '{detail}'."))
            }
        })
    }
}

/// An Authentication API request body (`/oauth/token`, `/mfa/*`; JSON or form, see [`parse_body`]). Errors are
/// OAuth shaped: 400 `invalid_request`, 415 `invalid_request`.
#[derive(Debug)]
pub struct AuthBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AuthBody<T> {
    type Rejection = super::error::OAuthError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        use super::error::OAuthError;
        parse_body(req, state).await.map(AuthBody).map_err(|e| match e {
            BodyError::UnsupportedType => {
                OAuthError::new(axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_request", ACCEPTED_TYPES)
            }
            BodyError::Invalid { form: true, detail } => {
                OAuthError::invalid_request(format!("Invalid form body: {detail}"))
            }
            BodyError::Invalid { form: false, detail } => {
                OAuthError::invalid_request(format!("Invalid JSON body: {detail}"))
            }
        })
    }
}

/// `axum::extract::Path` refused in the Management API's error shape: a path segment that does not decode (it is
/// not UTF-8 once percent-decoded) answers 400 `invalid_uri`, like Auth0's path validation errors, instead of axum's
/// plain-text rejection. (Also used by the provider callbacks, whose errors take the same shape.)
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, St: Send + Sync> FromRequestParts<St> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(e) => {
                Err(ApiError::bad_request(format!("Path validation error: '{}'.", e.body_text())).code("invalid_uri"))
            }
        }
    }
}

/// [`Path`] for the Authentication API: 400 `invalid_request`.
#[derive(Debug)]
pub struct AuthPath<T>(pub T);

impl<T: DeserializeOwned + Send, St: Send + Sync> FromRequestParts<St> for AuthPath<T> {
    type Rejection = super::error::OAuthError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(AuthPath(v)),
            Err(e) => Err(super::error::OAuthError::invalid_request(format!("Invalid path: {}", e.body_text()))),
        }
    }
}

/// A form body decodes to UTF-8: every key and value, once `+` and percent-escapes are undone, is valid UTF-8
/// (serde_urlencoded would replace bad bytes with U+FFFD and accept the result).
fn form_is_utf8(body: &[u8]) -> bool {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
    }
    body.split(|b| *b == b'&').all(|pair| {
        pair.split(|b| *b == b'=').all(|part| {
            let mut out = Vec::with_capacity(part.len());
            let mut i = 0;
            while i < part.len() {
                match part[i] {
                    b'%' if i + 2 < part.len() => match (hex(part[i + 1]), hex(part[i + 2])) {
                        (Some(h), Some(l)) => {
                            out.push(h * 16 + l);
                            i += 3;
                            continue;
                        }
                        _ => out.push(b'%'),
                    },
                    b'+' => out.push(b' '),
                    b => out.push(b),
                }
                i += 1;
            }
            std::str::from_utf8(&out).is_ok()
        })
    })
}

/// Query strings, with Management-API shaped errors.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::invalid_query(format!("Query validation error: '{}'.", e.body_text())))
    }
}

/// Who sent the request (for log events and message languages): the services' [`callsign_core::Origin`], read from
/// the connection and the headers (`User-Agent`, `x-request-language`). Dereferences to the origin, so `&meta` goes
/// wherever a service wants `&Origin`.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta(pub callsign_core::Origin);

impl std::ops::Deref for RequestMeta {
    type Target = callsign_core::Origin;
    fn deref(&self) -> &callsign_core::Origin {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestMeta::from_parts(&parts.headers, &parts.extensions))
    }
}

impl RequestMeta {
    pub fn from_parts(headers: &axum::http::HeaderMap, extensions: &axum::http::Extensions) -> Self {
        // The resolved client (behind trusted proxies, `client_ip`), else the connection's peer.
        let ip = extensions.get::<super::client_ip::ClientIp>().map(|c| c.0.to_string()).or_else(|| {
            extensions.get::<ConnectInfo<super::PeerAddr>>().map(|c| c.0.0.ip().to_canonical().to_string())
        });
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let user_agent = text(USER_AGENT.as_str()).map(|s| s.chars().take(512).collect());
        let language = text("x-request-language").map(|s| s.chars().take(64).collect());
        RequestMeta(callsign_core::Origin { ip, user_agent, language })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn form_bodies_must_decode_to_utf8() {
        for ok in [&b""[..], b"a=b", b"name=%C3%A9t%C3%A9+x&y=", b"a=100%", b"a=%4", b"%41=%42", "é=ü".as_bytes()] {
            assert!(super::form_is_utf8(ok), "{}", String::from_utf8_lossy(ok));
        }
        for bad in [&b"name=%FF"[..], b"%C3=x", b"a=%C3%28", b"a=\xff"] {
            assert!(!super::form_is_utf8(bad), "{}", String::from_utf8_lossy(bad));
        }
    }
}
