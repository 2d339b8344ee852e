//! `GET|POST /userinfo`. The grants of the authorization code flow (`authorization_code`, `refresh_token`) are
//! services: [`callsign_core::grants`].
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::http::error::OAuthError;
use crate::http::oauth;

pub use callsign_core::grants::{AuthzCode, CODE_FLOW_SCOPES, RefreshGrant, pkce_matches};

// --- /userinfo ---------------------------------------------------------------------------------------------------------

fn unauthorized(description: &str) -> Response {
    let mut r = OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_token", description).into_response();
    r.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
    r
}

/// The access token of a `/userinfo` request, from the places RFC 6750 allows, in this order: the
/// `Authorization: Bearer` header, the `access_token` query parameter, then (POST) an `access_token` form (or JSON)
/// field. The header wins when a request carries more than one.
async fn presented_token(req: axum::extract::Request) -> Option<String> {
    let from_header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    if from_header.is_some() {
        return from_header;
    }
    let from_query = req
        .uri()
        .query()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "access_token").map(|(_, v)| v))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    if from_query.is_some() || req.method() != axum::http::Method::POST {
        return from_query;
    }
    #[derive(serde::Deserialize)]
    struct Form {
        access_token: Option<String>,
    }
    let form: Form = crate::http::extract::parse_body(req, &()).await.ok()?;
    form.access_token.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

/// `GET|POST /userinfo` with an access token (audience `<public_url>userinfo`, scope `openid`) in the header, the
/// query or the form body ([`presented_token`]).
pub async fn userinfo(State(app): State<AppState>, req: axum::extract::Request) -> Response {
    let Some(token) = presented_token(req).await else {
        let mut r =
            OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_request", "Missing access token").into_response();
        r.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    };
    let token = token.as_str();
    let audience = format!("{}userinfo", app.config.public_url);
    let claims = match app.signer.verify(&app, token, &audience).await {
        Ok(c) => c,
        Err(_) => return unauthorized("Invalid or expired access token"),
    };
    let scopes = callsign_domain::scopes::split(claims.get("scope").and_then(Value::as_str).unwrap_or(""));
    if !scopes.iter().any(|s| s == "openid") {
        let mut r =
            OAuthError::new(StatusCode::FORBIDDEN, "insufficient_scope", "The access token lacks the openid scope")
                .into_response();
        r.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"insufficient_scope\", scope=\"openid\""),
        );
        return r;
    }
    let Some(sub) = claims.get("sub").and_then(Value::as_str) else { return unauthorized("Invalid access token") };
    let user = match app.store.get_user(sub).await {
        Ok(Some(u)) if !u.profile.blocked => u,
        Ok(_) => return unauthorized("The user of this token no longer exists or is blocked"),
        Err(e) => return OAuthError::internal(e).into_response(),
    };
    let mut body = serde_json::Map::new();
    body.insert("sub".into(), json!(user.user_id));
    body.extend(oauth::profile_claims(&user, &scopes));
    (StatusCode::OK, [(axum::http::header::CACHE_CONTROL, "no-store")], axum::Json(Value::Object(body))).into_response()
}
