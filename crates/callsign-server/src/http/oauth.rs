//! `POST /oauth/token`: client credentials, the password grants, and (through `crate::login::token`) the
//! authorization code and refresh token grants. JSON or form bodies; client authentication by
//! `client_secret_post` or `client_secret_basic`.
use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use callsign_domain::hash::token_matches;
use callsign_store::Client;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::error::OAuthError;
use super::extract::RequestMeta;
use crate::app::AppState;
use crate::http::management::users::DB_CONNECTION;
use crate::identity::events::{self, EventCtx};

pub const PASSWORD_REALM: &str = "http://auth0.com/oauth/grant-type/password-realm";
const OIDC_SCOPES: &[&str] = &["openid", "profile", "email"];

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub audience: Option<String>,
    pub scope: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub realm: Option<String>,
    pub mfa_token: Option<String>,
    pub oob_code: Option<String>,
    pub binding_code: Option<String>,
    pub recovery_code: Option<String>,
    pub otp: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
}

/// The token request body, JSON or form.
pub type TokenBody = super::extract::AuthBody<TokenRequest>;

fn unauthorized_client() -> OAuthError {
    OAuthError::new(StatusCode::UNAUTHORIZED, "access_denied", "Unauthorized")
}

/// Client credentials from the Basic header or the body (not both).
pub(crate) fn presented_credentials(
    headers: &HeaderMap,
    req: &TokenRequest,
) -> Result<(String, Option<String>), OAuthError> {
    let basic = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Basic "));
    if let Some(b64) = basic {
        if req.client_secret.is_some() {
            return Err(OAuthError::invalid_request("Use only one client authentication method"));
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| OAuthError::invalid_request("Malformed Basic authorization header"))?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or_else(|| OAuthError::invalid_request("Malformed Basic authorization header"))?;
        if req.client_id.as_deref().is_some_and(|c| c != id) {
            return Err(OAuthError::invalid_request("client_id in the body does not match the Authorization header"));
        }
        return Ok((id.to_owned(), Some(secret.to_owned())));
    }
    let id =
        req.client_id.clone().ok_or_else(|| OAuthError::invalid_request("Missing required parameter: client_id"))?;
    Ok((id, req.client_secret.clone()))
}

/// Authenticate the client. Confidential clients must present their secret; public ones (`none`) must not need one.
pub(crate) async fn authenticate_client(app: &AppState, id: &str, secret: Option<&str>) -> Result<Client, OAuthError> {
    let client = app.store.get_client(id).await?.ok_or_else(unauthorized_client)?;
    match (client.spec.token_endpoint_auth_method.as_str(), secret) {
        ("none", None) => Ok(client),
        (_, Some(s)) if token_matches(s, &client.secret_hash) => Ok(client),
        _ => Err(unauthorized_client()),
    }
}

pub(crate) fn allows(client: &Client, grant: &str) -> Result<(), OAuthError> {
    if client.spec.grant_types.iter().any(|g| g == grant) {
        Ok(())
    } else {
        Err(OAuthError::new(
            StatusCode::FORBIDDEN,
            "unauthorized_client",
            format!("Grant type '{grant}' not allowed for the client."),
        ))
    }
}

pub async fn token(
    State(app): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    super::extract::AuthBody(req): TokenBody,
) -> Response {
    let result = match req.grant_type.as_deref() {
        None => Err(OAuthError::invalid_request("Missing required parameter: grant_type")),
        Some("client_credentials") => client_credentials(&app, &meta, &headers, &req).await,
        Some(g @ ("password" | PASSWORD_REALM)) => password(&app, &meta, &headers, &req, g).await,
        Some(crate::mfa::service::GRANT_MFA_OOB) => crate::mfa::service::oob_grant(&app, &meta, &headers, &req).await,
        Some(crate::mfa::service::GRANT_MFA_RECOVERY) => {
            crate::mfa::service::recovery_grant(&app, &meta, &headers, &req).await
        }
        Some("authorization_code") => crate::login::token::authorization_code(&app, &meta, &headers, &req).await,
        Some("refresh_token") => crate::login::token::refresh_token(&app, &meta, &headers, &req).await,
        Some(crate::mfa::service::GRANT_MFA_OTP) => Err(OAuthError::new(
            StatusCode::FORBIDDEN,
            "unauthorized_client",
            "The otp factor (authenticator apps) is not available in Callsign; use mfa-oob with SMS or voice.",
        )),
        Some(other) => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!("Unsupported grant type: {other}"),
        )),
    };
    match result {
        Ok(body) => {
            let mut r = (StatusCode::OK, axum::Json(body)).into_response();
            r.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => e.into_response(),
    }
}

async fn client_credentials(
    app: &AppState,
    meta: &RequestMeta,
    headers: &HeaderMap,
    req: &TokenRequest,
) -> Result<Value, OAuthError> {
    let (id, secret) = presented_credentials(headers, req)?;
    let fail = |client: Option<&Client>, why: String| {
        let ctx = EventCtx {
            client_id: Some(id.clone()),
            client_name: client.map(|c| c.spec.name.clone()),
            audience: req.audience.clone(),
            description: Some(why),
            ..Default::default()
        };
        async move { events::record(app, "feccft", meta, ctx).await }
    };
    let client = match authenticate_client(app, &id, secret.as_deref()).await {
        Ok(c) => c,
        Err(e) => {
            fail(None, "Unauthorized".into()).await;
            return Err(e);
        }
    };
    if let Err(e) = allows(&client, "client_credentials") {
        fail(Some(&client), e.description.clone()).await;
        return Err(e);
    }
    let Some(audience) = req.audience.clone().filter(|a| !a.is_empty()) else {
        let e = OAuthError::new(
            StatusCode::FORBIDDEN,
            "access_denied",
            "No audience parameter was provided, and no default audience has been configured",
        );
        fail(Some(&client), e.description.clone()).await;
        return Err(e);
    };
    let Some(grant) = app.store.find_client_grant(&client.client_id, &audience).await? else {
        let e = OAuthError::new(
            StatusCode::FORBIDDEN,
            "access_denied",
            format!(
                "Client is not authorized to access \"{audience}\". You need to create a \"client-grant\" associated to this API."
            ),
        );
        fail(Some(&client), e.description.clone()).await;
        return Err(e);
    };
    // Asked-for scopes are narrowed to the granted ones; no `scope` means all granted scopes.
    let scopes: Vec<String> = match &req.scope {
        Some(s) => callsign_domain::scopes::split(s).into_iter().filter(|x| grant.scope.contains(x)).collect(),
        None => grant.scope.clone(),
    };
    let scope = scopes.join(" ");
    let now = app.clock.now().seconds();
    let lifetime = app.config.access_token_lifetime_secs;
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(app.config.issuer()));
    claims.insert("sub".into(), json!(format!("{}@clients", client.client_id)));
    claims.insert("aud".into(), json!(audience));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + lifetime as i64));
    claims.insert("scope".into(), json!(scope));
    claims.insert("gty".into(), json!("client-credentials"));
    claims.insert("azp".into(), json!(client.client_id));
    let token = app.signer.sign(&claims).await.map_err(OAuthError::internal)?;
    events::record(
        app,
        "seccft",
        meta,
        EventCtx {
            client_id: Some(client.client_id.clone()),
            client_name: Some(client.spec.name.clone()),
            audience: Some(audience),
            scope: Some(scope.clone()),
            ..Default::default()
        },
    )
    .await;
    Ok(json!({"access_token": token, "expires_in": lifetime, "scope": scope, "token_type": "Bearer"}))
}

fn wrong_credentials() -> OAuthError {
    OAuthError::new(StatusCode::FORBIDDEN, "invalid_grant", "Wrong email or password.")
}

/// Why a username and password did not log in.
#[derive(Debug)]
pub enum LoginFailure {
    /// Unknown user or wrong password (the caller cannot tell which; both cost one argon2 verification).
    WrongCredentials,
    Blocked,
    /// Every password-hashing slot stayed busy: nothing was checked, nothing is logged; try again shortly.
    Busy,
    Internal(OAuthError),
}

impl From<LoginFailure> for OAuthError {
    fn from(f: LoginFailure) -> OAuthError {
        match f {
            LoginFailure::WrongCredentials => wrong_credentials(),
            LoginFailure::Blocked => OAuthError::new(StatusCode::UNAUTHORIZED, "unauthorized", "user is blocked"),
            LoginFailure::Busy => OAuthError::busy(),
            LoginFailure::Internal(e) => e,
        }
    }
}

/// Check a database user's email and password for `client`, with the same work whether or not the user exists.
/// Logs `fu` (unknown user), `fp` (wrong password) or `f` (blocked); success is logged by the caller (`s`) once
/// the whole login, second factor included, is done.
pub(crate) async fn check_password(
    app: &AppState,
    meta: &RequestMeta,
    client: &Client,
    username: &str,
    password: &str,
) -> Result<callsign_store::User, LoginFailure> {
    let user = app
        .store
        .get_user_by_email(&username.trim().to_lowercase())
        .await
        .map_err(|e| LoginFailure::Internal(e.into()))?;
    // The same argon2 work whether or not the user exists.
    let ok = app
        .passwords
        .verify(password.to_owned(), user.as_ref().and_then(|u| u.password_hash.clone()))
        .await
        .map_err(|_| LoginFailure::Busy)?;
    let ctx = |user_id: Option<String>, description: Option<String>| EventCtx {
        client_id: Some(client.client_id.clone()),
        client_name: Some(client.spec.name.clone()),
        user_id,
        user_name: Some(username.to_owned()),
        connection: Some(DB_CONNECTION.to_owned()),
        description,
        ..Default::default()
    };
    let user = match (user, ok) {
        (None, _) => {
            events::record(app, "fu", meta, ctx(None, None)).await;
            return Err(LoginFailure::WrongCredentials);
        }
        (Some(u), false) => {
            events::record(app, "fp", meta, ctx(Some(u.user_id), None)).await;
            return Err(LoginFailure::WrongCredentials);
        }
        (Some(u), true) => u,
    };
    if user.profile.blocked {
        events::record(app, "f", meta, ctx(Some(user.user_id.clone()), Some("user is blocked".into()))).await;
        return Err(LoginFailure::Blocked);
    }
    Ok(user)
}

/// The `s` (successful login) event.
pub(crate) async fn record_login_success(
    app: &AppState,
    meta: &RequestMeta,
    client: &Client,
    user: &callsign_store::User,
    details: Value,
) {
    let ctx = EventCtx {
        client_id: Some(client.client_id.clone()),
        client_name: Some(client.spec.name.clone()),
        user_id: Some(user.user_id.clone()),
        user_name: user.email.clone(),
        connection: Some(DB_CONNECTION.to_owned()),
        details,
        ..Default::default()
    };
    events::record(app, "s", meta, ctx).await;
}

async fn password(
    app: &AppState,
    meta: &RequestMeta,
    headers: &HeaderMap,
    req: &TokenRequest,
    grant: &str,
) -> Result<Value, OAuthError> {
    let (id, secret) = presented_credentials(headers, req)?;
    let client = authenticate_client(app, &id, secret.as_deref()).await?;
    allows(&client, grant)?;
    if grant == PASSWORD_REALM {
        match req.realm.as_deref() {
            Some(DB_CONNECTION) => {}
            Some(other) => return Err(OAuthError::invalid_request(format!("Unknown realm: {other}"))),
            None => return Err(OAuthError::invalid_request("Missing required parameter: realm")),
        }
    }
    if req.audience.as_deref() == Some(app.config.management_audience().as_str()) {
        return Err(OAuthError::new(
            StatusCode::FORBIDDEN,
            "access_denied",
            "Management API tokens are issued to applications through client_credentials, not to users",
        ));
    }
    let username =
        req.username.clone().ok_or_else(|| OAuthError::invalid_request("Missing required parameter: username"))?;
    let pw = req.password.clone().ok_or_else(|| OAuthError::invalid_request("Missing required parameter: password"))?;
    let user = check_password(app, meta, &client, &username, &pw).await?;
    let guardian = crate::mfa::config::GuardianConfig::load(app).await.map_err(OAuthError::internal)?;
    if guardian.mfa_required() {
        return crate::mfa::service::require_mfa(app, meta, &client, &user, req.audience.clone(), req.scope.clone())
            .await;
    }
    let body = issue_user_tokens(app, &client, &user, req.audience.as_deref(), req.scope.as_deref()).await?;
    let ctx = EventCtx {
        client_id: Some(client.client_id.clone()),
        client_name: Some(client.spec.name.clone()),
        user_id: Some(user.user_id.clone()),
        user_name: Some(username.clone()),
        connection: Some(DB_CONNECTION.to_owned()),
        ..Default::default()
    };
    events::record(app, "s", meta, ctx).await;
    Ok(body)
}

/// What a user's tokens carry beyond the user, the client, the audience and the scope.
#[derive(Debug, Clone)]
pub(crate) struct TokenOptions<'a> {
    /// The scopes that may appear in the tokens (the password grants: `openid profile email`).
    pub allowed_scopes: &'a [&'a str],
    /// `gty` of the access token (`password` for the password grants; none for the authorization code flow).
    pub gty: Option<&'a str>,
    /// The ID token's `nonce` (from `/authorize`).
    pub nonce: Option<&'a str>,
    /// The ID token's `auth_time` (unix seconds) when the user logged in interactively.
    pub auth_time: Option<i64>,
    /// The ID token's `amr` (`pwd`, `mfa`, …), when known.
    pub amr: &'a [String],
}

/// The tokens a successful login gets (after the password, or after the second factor): counts the login,
/// then issues an access token and, for `openid`, an ID token.
pub(crate) async fn issue_user_tokens(
    app: &AppState,
    client: &Client,
    user: &callsign_store::User,
    audience: Option<&str>,
    scope: Option<&str>,
) -> Result<Value, OAuthError> {
    app.store.record_login(&user.user_id, app.clock.now()).await?;
    let opts =
        TokenOptions { allowed_scopes: OIDC_SCOPES, gty: Some("password"), nonce: None, auth_time: None, amr: &[] };
    issue_tokens(app, client, user, audience, scope, &opts).await
}

/// An access token (and, for `openid`, an ID token) for `user`, issued to `client`. Does not count a login.
pub(crate) async fn issue_tokens(
    app: &AppState,
    client: &Client,
    user: &callsign_store::User,
    audience: Option<&str>,
    scope: Option<&str>,
    opts: &TokenOptions<'_>,
) -> Result<Value, OAuthError> {
    let now = app.clock.now();
    let requested = callsign_domain::scopes::split(scope.unwrap_or("openid"));
    let scopes: Vec<String> = requested.into_iter().filter(|s| opts.allowed_scopes.contains(&s.as_str())).collect();
    let has = |s: &str| scopes.iter().any(|x| x == s);
    let scope = scopes.join(" ");
    let userinfo = format!("{}userinfo", app.config.public_url);
    let aud = match audience.filter(|a| !a.is_empty()) {
        Some(a) if has("openid") => json!([a, userinfo]),
        Some(a) => json!(a),
        None => json!(userinfo),
    };
    let secs = now.seconds();
    let lifetime = app.config.access_token_lifetime_secs;
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(app.config.issuer()));
    claims.insert("sub".into(), json!(user.user_id));
    claims.insert("aud".into(), aud);
    claims.insert("iat".into(), json!(secs));
    claims.insert("exp".into(), json!(secs + lifetime as i64));
    claims.insert("scope".into(), json!(scope));
    if let Some(gty) = opts.gty {
        claims.insert("gty".into(), json!(gty));
    }
    claims.insert("azp".into(), json!(client.client_id));
    let access_token = app.signer.sign(&claims).await.map_err(OAuthError::internal)?;
    let mut body =
        json!({"access_token": access_token, "expires_in": lifetime, "scope": scope, "token_type": "Bearer"});
    if has("openid") {
        let mut id = Map::new();
        id.insert("iss".into(), json!(app.config.issuer()));
        id.insert("sub".into(), json!(user.user_id));
        id.insert("aud".into(), json!(client.client_id));
        id.insert("iat".into(), json!(secs));
        id.insert("exp".into(), json!(secs + app.config.id_token_lifetime_secs as i64));
        if let Some(t) = opts.auth_time {
            id.insert("auth_time".into(), json!(t));
        }
        if let Some(n) = opts.nonce {
            id.insert("nonce".into(), json!(n));
        }
        if !opts.amr.is_empty() {
            id.insert("amr".into(), json!(opts.amr));
        }
        for (k, v) in profile_claims(user, &scopes) {
            id.insert(k, v);
        }
        body["id_token"] = json!(app.signer.sign(&id).await.map_err(OAuthError::internal)?);
    }
    Ok(body)
}

/// The user's claims that `scopes` release (ID token and `/userinfo`).
pub(crate) fn profile_claims(user: &callsign_store::User, scopes: &[String]) -> Map<String, Value> {
    let has = |s: &str| scopes.iter().any(|x| x == s);
    let mut c = Map::new();
    if has("email") {
        c.insert("email".into(), json!(user.email));
        c.insert("email_verified".into(), json!(user.profile.email_verified));
    }
    if has("profile") {
        c.insert("name".into(), json!(user.profile.name));
        c.insert("nickname".into(), json!(user.profile.nickname));
        c.insert("picture".into(), json!(user.profile.picture));
        c.insert("updated_at".into(), json!(user.updated_at.to_rfc3339()));
    }
    if has("phone") {
        c.insert("phone_number".into(), json!(user.profile.phone_number));
        c.insert("phone_number_verified".into(), json!(user.profile.phone_verified));
    }
    c
}
