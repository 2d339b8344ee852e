//! What the HTTP providers share: the client, how a failed request is classified (retryable or final), and how
//! much of an error body is kept, and how a webhook is signed (Standard Webhooks: the custom provider and operator
//! alerts).
use std::time::Duration;

use crate::kind::BuildError;

/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// The `User-Agent` of every provider request.
pub const USER_AGENT: &str = concat!("Callsign/", env!("CARGO_PKG_VERSION"));

/// The HTTP client providers share: 5 s to connect, 15 s per request, `User-Agent: Callsign/<version>`,
/// redirects followed (reqwest's default: up to 10).
pub fn client() -> Result<reqwest::Client, BuildError> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(USER_AGENT)
        .build()
        .map_err(|e| BuildError::new(format!("cannot build the HTTP client: {e}")))
}

/// A request that got no answer. Always retryable: the provider may be back in a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportFailure {
    /// `timed out`, `could not connect` or `request failed`.
    pub kind: &'static str,
    /// The client's error text, without the URL (it may carry a secret or a path).
    pub detail: String,
}

/// What kind of failure a client error is (see [`TransportFailure`]).
pub fn transport_failure(e: reqwest::Error) -> TransportFailure {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    TransportFailure { kind, detail: e.without_url().to_string() }
}

/// The [`SendError`](crate::SendError) of a request to `label`'s API that got no answer: retryable, with the
/// client's error (without the URL) in the message, and `{code: null, message: "<label> <kind>", status: null}` as
/// the provider details every HTTP provider logs.
pub fn failed_request(label: &str, e: reqwest::Error) -> crate::SendError {
    let f = transport_failure(e);
    crate::SendError::retryable(format!("{label} {}: {}", f.kind, f.detail))
        .with_details(serde_json::json!({"code": null, "message": format!("{label} {}", f.kind), "status": null}))
}

/// Whether an HTTP status is worth trying again: server errors (5xx) and rate limits (429). Every other non-2xx
/// answer (4xx, 3xx) is final.
pub fn status_is_retryable(status: u16) -> bool {
    status >= 500 || status == 429
}

/// The first `max_bytes` bytes of a response body (read no further), as text (lossy UTF-8).
pub async fn body_excerpt(mut resp: reqwest::Response, max_bytes: usize) -> String {
    let mut buf: Vec<u8> = Vec::new();
    while buf.len() < max_bytes {
        match resp.chunk().await {
            Ok(Some(c)) => buf.extend_from_slice(&c),
            _ => break,
        }
    }
    buf.truncate(max_bytes);
    String::from_utf8_lossy(&buf).into_owned()
}

// --- Standard Webhooks (the custom provider, operator alerts) ----------------------------------------------------

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// The prefix of a Standard Webhooks signing secret as shown to the operator (`whsec_<base64>`).
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a signing secret.
pub const SECRET_BYTES: usize = 32;

/// The hook must be HTTPS; plain `http://` is allowed only for the loopback host (local receivers, tests). No
/// credentials in the URL, at most 2048 characters.
pub fn check_url(raw: &str) -> Result<reqwest::Url, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("the url is empty".into());
    }
    if raw.len() > 2048 {
        return Err("the url is longer than 2048 characters".into());
    }
    let url = reqwest::Url::parse(raw).map_err(|e| format!("the url is not valid: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the url must not carry credentials; the request is signed instead".into());
    }
    let host = url.host_str().unwrap_or_default();
    match url.scheme() {
        "https" if !host.is_empty() => Ok(url),
        "http" if matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1") => Ok(url),
        "http" => Err("the url must use https (plain http is allowed only for 127.0.0.1 and localhost)".into()),
        other => Err(format!("the url must use https, not `{other}`")),
    }
}

/// A fresh signing secret as shown to the operator once: `whsec_` and the base64 of 32 random bytes.
pub fn new_secret(rng: &dyn callsign_domain::RandomSource) -> Zeroizing<String> {
    let bytes = Zeroizing::new(callsign_domain::rng::bytes::<SECRET_BYTES>(rng));
    Zeroizing::new(format!("{SECRET_PREFIX}{}", B64.encode(bytes.as_slice())))
}

/// The HMAC key of a `whsec_…` secret (a secret without the prefix is taken as base64 all the same).
pub fn secret_key(secret: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let b64 = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    B64.decode(b64).map(Zeroizing::new).map_err(|_| "the signing secret is not valid base64".to_owned())
}

/// `v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| "the signing key is not usable".to_owned())?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!("v1,{}", B64.encode(mac.finalize().into_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        for s in [500, 502, 503, 599, 429] {
            assert!(status_is_retryable(s), "{s}");
        }
        for s in [300, 301, 400, 401, 403, 404, 409, 422] {
            assert!(!status_is_retryable(s), "{s}");
        }
    }

    #[test]
    fn the_client_builds() {
        assert!(client().is_ok());
        assert!(USER_AGENT.starts_with("Callsign/"));
    }
}
