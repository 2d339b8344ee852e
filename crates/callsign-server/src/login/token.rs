//! The token side of the authorization code flow: the `authorization_code` grant (PKCE S256, exact
//! `redirect_uri`, single-use codes), the `refresh_token` grant (scope `offline_access`, rotated on every use),
//! and `GET|POST /userinfo`.
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use callsign_store::{Client, User};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::http::error::OAuthError;
use crate::http::extract::RequestMeta;
use crate::http::oauth::{self, TokenOptions, TokenRequest};
use crate::identity::events::{self, EventCtx};
use crate::web::session;

/// The scopes the authorization code flow can grant.
pub const CODE_FLOW_SCOPES: &[&str] = &["openid", "profile", "email", "phone", "offline_access"];

/// What an authorization code stands for (stored under the code's hash, taken once).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthzCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub user_id: String,
    pub scope: String,
    pub audience: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    pub amr: Vec<String>,
}

/// What a refresh token stands for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshGrant {
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub audience: Option<String>,
    pub auth_time: i64,
    pub amr: Vec<String>,
}

fn invalid_grant(description: &str) -> OAuthError {
    OAuthError::new(StatusCode::FORBIDDEN, "invalid_grant", description)
}

/// `BASE64URL(SHA256(verifier)) == challenge`, in constant time.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    callsign_domain::hash::constant_time_eq(computed.as_bytes(), challenge.as_bytes())
}

fn ctx(client_id: &str, client: Option<&Client>, user: Option<&User>, description: Option<String>) -> EventCtx {
    EventCtx {
        client_id: Some(client_id.to_owned()),
        client_name: client.map(|c| c.spec.name.clone()),
        user_id: user.map(|u| u.user_id.clone()),
        user_name: user.and_then(|u| u.email.clone()),
        description,
        ..Default::default()
    }
}

/// The user a code or refresh token names, while they may still get tokens.
async fn active_user(app: &AppState, user_id: &str) -> Result<User, OAuthError> {
    match app.store.get_user(user_id).await? {
        Some(u) if !u.profile.blocked => Ok(u),
        Some(_) => Err(OAuthError::new(StatusCode::UNAUTHORIZED, "unauthorized", "user is blocked")),
        None => Err(invalid_grant("The user no longer exists.")),
    }
}

/// Issue the tokens of the code flow, plus a refresh token for `offline_access` when the client may use them.
async fn issue(
    app: &AppState,
    client: &Client,
    user: &User,
    grant: &RefreshGrant,
    nonce: Option<&str>,
) -> Result<Value, OAuthError> {
    let opts = TokenOptions {
        allowed_scopes: CODE_FLOW_SCOPES,
        gty: None,
        nonce,
        auth_time: Some(grant.auth_time),
        amr: &grant.amr,
    };
    // `offline_access` stays in the scope only when a refresh token comes with it.
    let may_refresh = client.spec.grant_types.iter().any(|g| g == "refresh_token");
    let scope: Vec<String> = callsign_domain::scopes::split(&grant.scope)
        .into_iter()
        .filter(|s| may_refresh || s != "offline_access")
        .collect();
    let offline = scope.iter().any(|s| s == "offline_access");
    let scope = scope.join(" ");
    let mut body = oauth::issue_tokens(app, client, user, grant.audience.as_deref(), Some(&scope), &opts).await?;
    if offline {
        let rt = session::create(app, super::REFRESH_KIND, grant, super::REFRESH_TTL_SECS)
            .await
            .map_err(OAuthError::internal)?;
        body["refresh_token"] = json!(rt);
    }
    Ok(body)
}

/// The two grants of this module.
#[derive(Clone, Copy)]
enum Grant {
    AuthorizationCode,
    RefreshToken,
}

/// `grant_type=authorization_code`.
pub async fn authorization_code(
    app: &AppState,
    meta: &RequestMeta,
    headers: &HeaderMap,
    req: &TokenRequest,
) -> Result<Value, OAuthError> {
    logged(app, meta, headers, req, Grant::AuthorizationCode).await
}

/// `grant_type=refresh_token`: the refresh token is spent and a new one comes with the new access token.
pub async fn refresh_token(
    app: &AppState,
    meta: &RequestMeta,
    headers: &HeaderMap,
    req: &TokenRequest,
) -> Result<Value, OAuthError> {
    logged(app, meta, headers, req, Grant::RefreshToken).await
}

/// Authenticate the client, run the grant, and log its success or failure (`seacft` / `feacft`, `sertft` /
/// `fertft`).
async fn logged(
    app: &AppState,
    meta: &RequestMeta,
    headers: &HeaderMap,
    req: &TokenRequest,
    grant: Grant,
) -> Result<Value, OAuthError> {
    let (ok, failed) = match grant {
        Grant::AuthorizationCode => ("seacft", "feacft"),
        Grant::RefreshToken => ("sertft", "fertft"),
    };
    let (id, secret) = oauth::presented_credentials(headers, req)?;
    let client = match oauth::authenticate_client(app, &id, secret.as_deref()).await {
        Ok(c) => c,
        Err(e) => {
            events::record(app, failed, meta, ctx(&id, None, None, Some("Unauthorized".into()))).await;
            return Err(e);
        }
    };
    let result = match grant {
        Grant::AuthorizationCode => exchange_code(app, &client, req).await,
        Grant::RefreshToken => exchange_refresh(app, &client, req).await,
    };
    match &result {
        Ok((user, _)) => events::record(app, ok, meta, ctx(&id, Some(&client), Some(user), None)).await,
        Err(e) => {
            events::record(app, failed, meta, ctx(&id, Some(&client), None, Some(e.description.clone()))).await;
        }
    }
    result.map(|(_, body)| body)
}

async fn exchange_code(app: &AppState, client: &Client, req: &TokenRequest) -> Result<(User, Value), OAuthError> {
    oauth::allows(client, "authorization_code")?;
    let code = req.code.as_deref().ok_or_else(|| OAuthError::invalid_request("Missing required parameter: code"))?;
    let redirect_uri = req
        .redirect_uri
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("Missing required parameter: redirect_uri"))?;
    // Taken (deleted) before any other check: a code is tried once, right or wrong.
    let data: AuthzCode = session::take(app, super::CODE_KIND, code.trim())
        .await
        .map_err(OAuthError::internal)?
        .ok_or_else(|| invalid_grant("Invalid authorization code"))?;
    if data.client_id != client.client_id {
        return Err(invalid_grant("Invalid authorization code"));
    }
    if data.redirect_uri != redirect_uri {
        return Err(invalid_grant("redirect_uri does not match the one of the authorization request"));
    }
    match (&data.code_challenge, req.code_verifier.as_deref()) {
        (Some(challenge), Some(verifier)) => {
            if !super::authorize::is_pkce_string(verifier) || !pkce_matches(verifier, challenge) {
                return Err(invalid_grant("Failed to verify code verifier"));
            }
        }
        (Some(_), None) => return Err(invalid_grant("Missing required parameter: code_verifier")),
        (None, Some(_)) => {
            return Err(invalid_grant("code_verifier given, but the authorization request had no code_challenge"));
        }
        (None, None) => {}
    }
    let user = active_user(app, &data.user_id).await?;
    let grant = RefreshGrant {
        client_id: data.client_id.clone(),
        user_id: data.user_id.clone(),
        scope: data.scope.clone(),
        audience: data.audience.clone(),
        auth_time: data.auth_time,
        amr: data.amr.clone(),
    };
    let body = issue(app, client, &user, &grant, data.nonce.as_deref()).await?;
    Ok((user, body))
}

/// A refresh may ask for a narrower scope than the token holds, never a wider one.
fn check_refresh_scope(grant: &RefreshGrant, asked: Option<&str>) -> Result<(), OAuthError> {
    let Some(asked) = asked else { return Ok(()) };
    let held = callsign_domain::scopes::split(&grant.scope);
    match callsign_domain::scopes::split(asked).into_iter().find(|s| !held.contains(s)) {
        Some(extra) => Err(OAuthError::new(
            StatusCode::FORBIDDEN,
            "invalid_scope",
            format!("The scope {extra} was not granted to this refresh token."),
        )),
        None => Ok(()),
    }
}

async fn exchange_refresh(app: &AppState, client: &Client, req: &TokenRequest) -> Result<(User, Value), OAuthError> {
    oauth::allows(client, "refresh_token")?;
    let rt = req
        .refresh_token
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("Missing required parameter: refresh_token"))?;
    let rt = rt.trim();
    // Checked before it is spent: another client's attempt or a too-wide scope leaves the token usable.
    let peek: RefreshGrant = session::load(app, super::REFRESH_KIND, rt)
        .await
        .map_err(OAuthError::internal)?
        .ok_or_else(|| invalid_grant("Unknown or invalid refresh token."))?;
    if peek.client_id != client.client_id {
        return Err(invalid_grant("Unknown or invalid refresh token."));
    }
    check_refresh_scope(&peek, req.scope.as_deref())?;
    // Spent atomically: of two concurrent uses, one wins.
    let mut grant: RefreshGrant = session::take(app, super::REFRESH_KIND, rt)
        .await
        .map_err(OAuthError::internal)?
        .ok_or_else(|| invalid_grant("Unknown or invalid refresh token."))?;
    // A narrower scope may be asked for; never a wider one.
    if let Some(asked) = req.scope.as_deref() {
        check_refresh_scope(&grant, Some(asked))?;
        let asked = callsign_domain::scopes::split(asked);
        // offline_access stays, so the new refresh token can be used too.
        let mut kept: Vec<String> = asked;
        if !kept.iter().any(|s| s == "offline_access") {
            kept.push("offline_access".into());
        }
        grant.scope = kept.join(" ");
    }
    let user = active_user(app, &grant.user_id).await?;
    let body = issue(app, client, &user, &grant, None).await?;
    Ok((user, body))
}

// --- /userinfo ---------------------------------------------------------------------------------------------------------

fn unauthorized(description: &str) -> Response {
    let mut r = OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_token", description).into_response();
    r.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
    r
}

/// `GET|POST /userinfo` with `Authorization: Bearer <access token>` (audience `<public_url>userinfo`, scope `openid`).
pub async fn userinfo(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        let mut r =
            OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_request", "Missing access token").into_response();
        r.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(pkce_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
    }
}
