//! The dashboard's way into the Management API: every read and every change is a request to the `/api/v2` router,
//! dispatched in process (no network), with a short-lived token the dashboard signs for the operator. So a change
//! made in the dashboard runs exactly what the same Management API call runs: the bearer check, the scope check,
//! the handler's validation and storage, `gd_tenant_update` and the `sapi` / `fapi` audit events (client
//! [`super::CLIENT_ID`]), with the operator's IP address and user agent.
//!
//! The token never leaves the process. It lives five minutes and holds only the scopes the dashboard uses
//! ([`SCOPES`]); its `sub` is the operator's user id.
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use axum::http::{HeaderValue, Method, Request};
use callsign_domain::scopes as sc;
use serde_json::{Map, Value, json};
use tower::ServiceExt;

use crate::app::AppState;
use crate::http::PeerAddr;

/// What the dashboard may do through the Management API.
pub const SCOPES: &[&str] = &[
    sc::READ_CLIENTS,
    sc::CREATE_CLIENTS,
    sc::UPDATE_CLIENTS,
    sc::UPDATE_CLIENT_KEYS,
    sc::READ_GUARDIAN_FACTORS,
    sc::UPDATE_GUARDIAN_FACTORS,
    sc::READ_MFA_POLICIES,
    sc::UPDATE_MFA_POLICIES,
    sc::READ_USERS,
    sc::CREATE_USERS,
    sc::UPDATE_USERS,
    sc::READ_LOGS,
    sc::READ_LOG_STREAMS,
    sc::CREATE_LOG_STREAMS,
    sc::UPDATE_LOG_STREAMS,
    sc::DELETE_LOG_STREAMS,
    sc::READ_GUARDIAN_ENROLLMENTS,
    sc::DELETE_GUARDIAN_ENROLLMENTS,
    sc::READ_AUTHENTICATION_METHODS,
    sc::READ_DEV_INBOX,
    sc::READ_TENANT_SETTINGS,
    sc::UPDATE_TENANT_SETTINGS,
    sc::READ_BRANDING,
    sc::UPDATE_BRANDING,
    sc::READ_PHONE_TEMPLATES,
    sc::READ_CONNECTIONS,
    sc::UPDATE_CONNECTIONS,
    sc::READ_ATTACK_PROTECTION,
    sc::UPDATE_ATTACK_PROTECTION,
    sc::READ_ANOMALY_BLOCKS,
    sc::DELETE_ANOMALY_BLOCKS,
    sc::READ_PHONE_DESTINATION_POLICY,
    sc::UPDATE_PHONE_DESTINATION_POLICY,
    sc::READ_PHONE_PUMPING_DETECTION,
    sc::UPDATE_PHONE_PUMPING_DETECTION,
    sc::READ_PHONE_USAGE,
    sc::UPDATE_PHONE_USAGE,
];

/// How long a dashboard token lives (it is minted per page request).
const TOKEN_SECS: i64 = 300;

/// A Management API answer that was not a success: its status and its `message`, shown to the operator as is
/// (a 5xx only ever says "Internal error"; the cause is in the server log).
#[derive(Debug, Clone)]
pub struct ApiFailure {
    pub status: u16,
    pub message: String,
}

/// A Management API message as an operator reads it: Auth0's wire prefixes and wrappers (kept on the API for
/// compatibility) turned into a sentence. `PasswordStrengthError: Password is too weak` says the rules;
/// `Payload validation error: 'X' on property P.` becomes `P: X.`.
pub fn plain_words(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("PasswordStrengthError: ") {
        let what = rest.trim_end_matches('.');
        return format!(
            "{what}. Use at least 8 characters with 3 of these 4 kinds: lower case letters, upper case letters, \
             numbers, special characters (at most 72 bytes)."
        );
    }
    if let Some(inner) = message.strip_prefix("Payload validation error: '") {
        // `'X' on property P.` (what the Management API answers), or `'X'.` without a property.
        if let Some((what, prop)) = inner.rsplit_once("' on property ") {
            let prop = prop.trim_end_matches('.').trim_end_matches('\'');
            return format!("{prop}: {}.", what.trim_end_matches('.'));
        }
        if let Some(what) = inner.strip_suffix("'.") {
            return format!("{}.", what.trim_end_matches('.'));
        }
    }
    message.to_owned()
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl ApiFailure {
    fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "dashboard: the Management API call failed");
        ApiFailure { status: 500, message: "Internal error".into() }
    }
}

/// A Management API client for one dashboard request.
pub struct Api {
    router: axum::Router,
    token: String,
    peer: Option<ConnectInfo<PeerAddr>>,
    client_ip: Option<crate::http::client_ip::ClientIp>,
    user_agent: Option<HeaderValue>,
}

impl Api {
    /// `sub` is the operator's user id (or the dashboard itself, for the setup link before an operator exists);
    /// `parts` are the browser request's, whose address and user agent the audit events carry.
    pub async fn new(app: &AppState, sub: &str, parts: &axum::http::request::Parts) -> crate::BoxResult<Api> {
        let now = app.clock.now().seconds();
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(app.config.issuer()));
        claims.insert("sub".into(), json!(sub));
        claims.insert("aud".into(), json!(app.config.management_audience()));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + TOKEN_SECS));
        claims.insert("scope".into(), json!(SCOPES.join(" ")));
        claims.insert("azp".into(), json!(super::CLIENT_ID));
        claims.insert("gty".into(), json!("dashboard"));
        let token = app.signer.sign(&claims).await?;
        Ok(Api {
            router: crate::http::management::router(app.clone()).with_state(app.clone()),
            token,
            peer: parts.extensions.get::<ConnectInfo<PeerAddr>>().cloned(),
            client_ip: parts.extensions.get::<crate::http::client_ip::ClientIp>().copied(),
            user_agent: parts.headers.get(USER_AGENT).cloned(),
        })
    }

    /// One Management API request; `path` is relative to `/api/v2` (e.g. `/guardian/factors/sms`).
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, ApiFailure> {
        let mut req = Request::builder().method(method).uri(path);
        if let Ok(v) = HeaderValue::from_str(&format!("Bearer {}", self.token)) {
            req = req.header(AUTHORIZATION, v);
        }
        if let Some(ua) = &self.user_agent {
            req = req.header(USER_AGENT, ua.clone());
        }
        let req = match body {
            Some(b) => req.header(CONTENT_TYPE, "application/json").body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        };
        let mut req = req.map_err(ApiFailure::internal)?;
        if let Some(p) = &self.peer {
            req.extensions_mut().insert(*p);
        }
        if let Some(ip) = self.client_ip {
            req.extensions_mut().insert(ip);
        }
        let resp = match self.router.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), 8 * 1024 * 1024).await.map_err(ApiFailure::internal)?;
        let value: Value =
            if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let message = value
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("The request failed with status {status}."));
        Err(ApiFailure { status, message: plain_words(&message) })
    }

    pub async fn get(&self, path: &str) -> Result<Value, ApiFailure> {
        self.call(Method::GET, path, None).await
    }
    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, ApiFailure> {
        self.call(Method::PUT, path, Some(body)).await
    }
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ApiFailure> {
        self.call(Method::POST, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value, ApiFailure> {
        self.call(Method::PATCH, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Result<Value, ApiFailure> {
        self.call(Method::DELETE, path, None).await
    }
}

/// A path segment, percent-encoded (user ids contain `|`).
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query string from pairs (empty values left out).
pub fn query(pairs: &[(&str, &str)]) -> String {
    let kept: Vec<(&str, &str)> = pairs.iter().copied().filter(|(_, v)| !v.is_empty()).collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn segments_are_encoded() {
        assert_eq!(super::seg("auth0|abc-1_2"), "auth0%7Cabc-1_2");
        assert_eq!(super::seg("a/b c"), "a%2Fb%20c");
        assert_eq!(super::query(&[("q", "type:s"), ("page", "")]), "q=type%3As");
    }

    use super::plain_words;

    #[test]
    fn auth0_prefixes_become_sentences() {
        let weak = plain_words("PasswordStrengthError: Password is too weak");
        assert!(weak.starts_with("Password is too weak. Use at least 8 characters"), "{weak}");
        assert_eq!(
            plain_words("Payload validation error: 'String is too long (300 chars max)' on property name'."),
            "name: String is too long (300 chars max)."
        );
        assert_eq!(
            plain_words(
                "Payload validation error: 'An Account SID is AC followed by 32 hexadecimal digits (found 5 \
                 characters)' on property configuration.sid."
            ),
            "configuration.sid: An Account SID is AC followed by 32 hexadecimal digits (found 5 characters)."
        );
        assert_eq!(
            plain_words("Payload validation error: 'Missing required property: email'."),
            "Missing required property: email."
        );
        assert_eq!(plain_words("The user already exists."), "The user already exists.");
    }
}
