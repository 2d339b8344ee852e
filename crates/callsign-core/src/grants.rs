//! The token grants of `POST /oauth/token`: client credentials, the password grants, the authorization code and
//! refresh token grants (the MFA grants are in [`crate::mfa`]), client authentication (`client_secret_post` or
//! `client_secret_basic`), and the tokens a login earns.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use callsign_domain::hash::token_matches;
use callsign_store::{Client, User};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::error::{AuthError, Status};
use crate::identity::DB_CONNECTION;
use crate::identity::events::{self, EventCtx};
use crate::sessions;
use crate::{Core, Origin};

pub const PASSWORD_REALM: &str = "http://auth0.com/oauth/grant-type/password-realm";
const OIDC_SCOPES: &[&str] = &["openid", "profile", "email"];

/// What a token request answers: Auth0's token response (absent members are left out).
#[derive(Debug, Clone, Serialize, Default)]
pub struct TokenResponse {
    pub access_token: String,
    pub expires_in: u64,
    pub scope: String,
    pub token_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// A fresh recovery code (the `mfa-recovery-code` grant).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_code: Option<String>,
}

/// Run the grant `req.grant_type` names. `basic` is the base64 part of an `Authorization: Basic …` header, if one
/// was sent (client_secret_basic).
pub async fn token(
    app: &Core,
    meta: &Origin,
    basic: Option<&str>,
    req: &TokenRequest,
) -> Result<TokenResponse, AuthError> {
    match req.grant_type.as_deref() {
        None => Err(AuthError::invalid_request("Missing required parameter: grant_type")),
        Some("client_credentials") => client_credentials(app, meta, basic, req).await,
        Some(g @ ("password" | PASSWORD_REALM)) => password(app, meta, basic, req, g).await,
        Some(crate::mfa::GRANT_MFA_OOB) => crate::mfa::oob_grant(app, meta, basic, req).await,
        Some(crate::mfa::GRANT_MFA_RECOVERY) => crate::mfa::recovery_grant(app, meta, basic, req).await,
        Some("authorization_code") => authorization_code(app, meta, basic, req).await,
        Some("refresh_token") => refresh_token(app, meta, basic, req).await,
        Some(crate::mfa::GRANT_MFA_OTP) => Err(AuthError::new(
            Status::Forbidden,
            "unauthorized_client",
            "The otp factor (authenticator apps) is not available in Callsign; use mfa-oob with SMS or voice.",
        )),
        Some(other) => Err(AuthError::new(
            Status::BadRequest,
            "unsupported_grant_type",
            format!("Unsupported grant type: {other}"),
        )),
    }
}

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

fn unauthorized_client() -> AuthError {
    AuthError::new(Status::Unauthorized, "access_denied", "Unauthorized")
}

/// Client credentials from the Basic header or the body (not both).
pub fn presented_credentials(basic: Option<&str>, req: &TokenRequest) -> Result<(String, Option<String>), AuthError> {
    if let Some(b64) = basic {
        if req.client_secret.is_some() {
            return Err(AuthError::invalid_request("Use only one client authentication method"));
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| AuthError::invalid_request("Malformed Basic authorization header"))?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or_else(|| AuthError::invalid_request("Malformed Basic authorization header"))?;
        if req.client_id.as_deref().is_some_and(|c| c != id) {
            return Err(AuthError::invalid_request("client_id in the body does not match the Authorization header"));
        }
        return Ok((id.to_owned(), Some(secret.to_owned())));
    }
    let id =
        req.client_id.clone().ok_or_else(|| AuthError::invalid_request("Missing required parameter: client_id"))?;
    Ok((id, req.client_secret.clone()))
}

/// Authenticate the client. Confidential clients must present their secret; public ones (`none`) must not need one.
pub async fn authenticate_client(app: &Core, id: &str, secret: Option<&str>) -> Result<Client, AuthError> {
    let client = app.cache.client(app.store.as_ref(), id).await?.ok_or_else(unauthorized_client)?;
    match (client.spec.token_endpoint_auth_method.as_str(), secret) {
        ("none", None) => Ok(client),
        (_, Some(s)) if token_matches(s, &client.secret_hash) => Ok(client),
        _ => Err(unauthorized_client()),
    }
}

pub fn allows(client: &Client, grant: &str) -> Result<(), AuthError> {
    if client.spec.grant_types.iter().any(|g| g == grant) {
        Ok(())
    } else {
        Err(AuthError::new(
            Status::Forbidden,
            "unauthorized_client",
            format!("Grant type '{grant}' not allowed for the client."),
        ))
    }
}

async fn client_credentials(
    app: &Core,
    meta: &Origin,
    basic: Option<&str>,
    req: &TokenRequest,
) -> Result<TokenResponse, AuthError> {
    let (id, secret) = presented_credentials(basic, req)?;
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
        let e = AuthError::new(
            Status::Forbidden,
            "access_denied",
            "No audience parameter was provided, and no default audience has been configured",
        );
        fail(Some(&client), e.description.clone()).await;
        return Err(e);
    };
    let Some(grant) = app.cache.client_grant(app.store.as_ref(), &client.client_id, &audience).await? else {
        let e = AuthError::new(
            Status::Forbidden,
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
    let lifetime = app.settings.access_token_lifetime_secs;
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(app.settings.issuer()));
    claims.insert("sub".into(), json!(format!("{}@clients", client.client_id)));
    claims.insert("aud".into(), json!(audience));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + lifetime as i64));
    claims.insert("scope".into(), json!(scope));
    claims.insert("gty".into(), json!("client-credentials"));
    claims.insert("azp".into(), json!(client.client_id));
    let token = app.signer.sign(&claims).await.map_err(AuthError::internal)?;
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
    Ok(TokenResponse { access_token: token, expires_in: lifetime, scope, token_type: "Bearer", ..Default::default() })
}

fn wrong_credentials() -> AuthError {
    AuthError::new(Status::Forbidden, "invalid_grant", "Wrong email or password.")
}

/// Why a username and password did not log in.
#[derive(Debug)]
pub enum LoginFailure {
    /// Unknown user or wrong password (the caller cannot tell which; both cost one argon2 verification).
    WrongCredentials,
    Blocked,
    /// Every password-hashing slot stayed busy, or the rate limits could not be checked (the limiter, e.g. Redis,
    /// is unreachable: fail closed): nothing was checked; try again shortly (503).
    Busy,
    /// Suspicious IP throttling blocks the caller's address (too many failed logins from it): nothing was checked.
    IpBlocked,
    /// Brute-force protection blocks this account (from this address): nothing was checked.
    AccountBlocked,
    Internal(AuthError),
}

impl From<LoginFailure> for AuthError {
    fn from(f: LoginFailure) -> AuthError {
        match f {
            LoginFailure::WrongCredentials => wrong_credentials(),
            LoginFailure::Blocked => AuthError::new(Status::Unauthorized, "unauthorized", "user is blocked"),
            LoginFailure::Busy => AuthError::busy(),
            LoginFailure::IpBlocked => crate::attack::Refusal::Blocked(crate::attack::Stage::PreLogin).into(),
            LoginFailure::AccountBlocked => {
                AuthError::new(Status::TooManyRequests, "too_many_attempts", crate::attack::ACCOUNT_BLOCKED)
            }
            LoginFailure::Internal(e) => e,
        }
    }
}

/// Check a database user's email and password for `client`, with the same work whether or not the user exists.
/// Logs `fu` (unknown user), `fp` (wrong password) or `f` (blocked); success is logged by the caller (`s`) once
/// the whole login, second factor included, is done.
pub async fn check_password(
    app: &Core,
    meta: &Origin,
    client: &Client,
    username: &str,
    password: &str,
) -> Result<User, LoginFailure> {
    use crate::attack::{self, Refusal, Stage};
    // Suspicious IP throttling and brute-force protection each take a token before any password work, so that
    // parallel guesses cannot pass a limit together; a blocked address or account is refused unchecked, the right
    // password included. A right password gives the IP token back and resets the account's count.
    attack::count(app, meta, Stage::PreLogin).await.map_err(|r| match r {
        Refusal::Blocked(_) => LoginFailure::IpBlocked,
        Refusal::Unavailable(e) => {
            tracing::error!(error = %e, "suspicious IP throttling cannot be checked; the login is refused");
            LoginFailure::Busy
        }
    })?;
    match attack::account_take(app, meta, username).await {
        Ok(true) => {}
        Ok(false) => return Err(LoginFailure::AccountBlocked),
        Err(e) => {
            tracing::error!(error = ?e, "brute-force protection cannot be checked; the login is refused");
            return Err(LoginFailure::Busy);
        }
    }
    let user = app
        .store
        .get_user_by_email(&username.trim().to_lowercase())
        .await
        .map_err(|e| LoginFailure::Internal(e.into()))?;
    // The same argon2 work whether or not the user exists.
    let ok = match app.passwords.verify(password.to_owned(), user.as_ref().and_then(|u| u.password_hash.clone())).await
    {
        Ok(ok) => ok,
        Err(_) => {
            // Nothing was checked: the tokens go back.
            attack::uncount(app, meta, Stage::PreLogin).await;
            attack::account_give_back(app, meta, username).await;
            return Err(LoginFailure::Busy);
        }
    };
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
            attack::account_give_back(app, meta, username).await;
            return Err(LoginFailure::WrongCredentials);
        }
        (Some(u), false) => {
            events::record(app, "fp", meta, ctx(Some(u.user_id), None)).await;
            return Err(LoginFailure::WrongCredentials);
        }
        (Some(u), true) => u,
    };
    attack::uncount(app, meta, Stage::PreLogin).await;
    attack::account_success(app, meta, username).await;
    if user.profile.blocked {
        events::record(app, "f", meta, ctx(Some(user.user_id.clone()), Some("user is blocked".into()))).await;
        return Err(LoginFailure::Blocked);
    }
    Ok(user)
}

/// The `s` (successful login) event.
pub async fn record_login_success(app: &Core, meta: &Origin, client: &Client, user: &User, details: Value) {
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
    app: &Core,
    meta: &Origin,
    basic: Option<&str>,
    req: &TokenRequest,
    grant: &str,
) -> Result<TokenResponse, AuthError> {
    let (id, secret) = presented_credentials(basic, req)?;
    let client = authenticate_client(app, &id, secret.as_deref()).await?;
    allows(&client, grant)?;
    if grant == PASSWORD_REALM {
        match req.realm.as_deref() {
            Some(DB_CONNECTION) => {}
            Some(other) => return Err(AuthError::invalid_request(format!("Unknown realm: {other}"))),
            None => return Err(AuthError::invalid_request("Missing required parameter: realm")),
        }
    }
    if let Some(a) = req.audience.as_deref().filter(|a| !a.is_empty()) {
        crate::resource_servers::for_user_audience(app, a).await?;
    }
    let username =
        req.username.clone().ok_or_else(|| AuthError::invalid_request("Missing required parameter: username"))?;
    let pw = req.password.clone().ok_or_else(|| AuthError::invalid_request("Missing required parameter: password"))?;
    let user = check_password(app, meta, &client, &username, &pw).await?;
    let guardian = crate::guardian::GuardianConfig::load(app).await.map_err(AuthError::internal)?;
    if guardian.mfa_required() {
        return Err(crate::mfa::require_mfa(app, meta, &client, &user, req.audience.clone(), req.scope.clone()).await);
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
pub struct TokenOptions<'a> {
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
pub async fn issue_user_tokens(
    app: &Core,
    client: &Client,
    user: &User,
    audience: Option<&str>,
    scope: Option<&str>,
) -> Result<TokenResponse, AuthError> {
    app.store.record_login(&user.user_id, app.clock.now()).await?;
    let opts =
        TokenOptions { allowed_scopes: OIDC_SCOPES, gty: Some("password"), nonce: None, auth_time: None, amr: &[] };
    issue_tokens(app, client, user, audience, scope, &opts).await
}

/// An access token (and, for `openid`, an ID token) for `user`, issued to `client`. Does not count a login.
pub async fn issue_tokens(
    app: &Core,
    client: &Client,
    user: &User,
    audience: Option<&str>,
    scope: Option<&str>,
    opts: &TokenOptions<'_>,
) -> Result<TokenResponse, AuthError> {
    let now = app.clock.now();
    let audience = audience.filter(|a| !a.is_empty());
    // An audience must be one of the operator's resource servers: its scopes may be asked for, its lifetime holds.
    let api = match audience {
        Some(a) => Some(crate::resource_servers::for_user_audience(app, a).await?),
        None => None,
    };
    let requested = callsign_domain::scopes::split(scope.unwrap_or("openid"));
    let scopes: Vec<String> = requested
        .into_iter()
        .filter(|s| opts.allowed_scopes.contains(&s.as_str()) || api.as_ref().is_some_and(|r| r.has_scope(s)))
        .collect();
    let has = |s: &str| scopes.iter().any(|x| x == s);
    let scope = scopes.join(" ");
    let userinfo = format!("{}userinfo", app.settings.public_url);
    let aud = match audience {
        Some(a) if has("openid") => json!([a, userinfo]),
        Some(a) => json!(a),
        None => json!(userinfo),
    };
    let secs = now.seconds();
    let lifetime = api.as_ref().map_or(app.settings.access_token_lifetime_secs, |r| r.token_lifetime);
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(app.settings.issuer()));
    claims.insert("sub".into(), json!(user.user_id));
    claims.insert("aud".into(), aud);
    claims.insert("iat".into(), json!(secs));
    claims.insert("exp".into(), json!(secs + lifetime as i64));
    claims.insert("scope".into(), json!(scope));
    if let Some(gty) = opts.gty {
        claims.insert("gty".into(), json!(gty));
    }
    claims.insert("azp".into(), json!(client.client_id));
    let access_token = app.signer.sign(&claims).await.map_err(AuthError::internal)?;
    let mut body =
        TokenResponse { access_token, expires_in: lifetime, scope, token_type: "Bearer", ..Default::default() };
    if has("openid") {
        let mut id = Map::new();
        id.insert("iss".into(), json!(app.settings.issuer()));
        id.insert("sub".into(), json!(user.user_id));
        id.insert("aud".into(), json!(client.client_id));
        id.insert("iat".into(), json!(secs));
        id.insert("exp".into(), json!(secs + app.settings.id_token_lifetime_secs as i64));
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
        body.id_token = Some(app.signer.sign(&id).await.map_err(AuthError::internal)?);
    }
    Ok(body)
}

/// The user's claims that `scopes` release (ID token and `/userinfo`); those without a value are left out.
pub fn profile_claims(user: &User, scopes: &[String]) -> Map<String, Value> {
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
    if has("phone") && user.profile.phone_number.is_some() {
        c.insert("phone_number".into(), json!(user.profile.phone_number));
        c.insert("phone_number_verified".into(), json!(user.profile.phone_verified));
    }
    // A claim with no value is left out (OIDC Core §5.3.2), never sent as null.
    c.retain(|_, v| !v.is_null());
    c
}

/// A PKCE code challenge or verifier: 43–128 characters of `[A-Za-z0-9-._~]` (RFC 7636 §4.1).
pub fn is_pkce_string(s: &str) -> bool {
    (43..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

// --- the authorization code flow's grants ---------------------------------------------------------------

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

fn invalid_grant(description: &str) -> AuthError {
    AuthError::new(Status::Forbidden, "invalid_grant", description)
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
async fn active_user(app: &Core, user_id: &str) -> Result<User, AuthError> {
    match app.store.get_user(user_id).await? {
        Some(u) if !u.profile.blocked => Ok(u),
        Some(_) => Err(AuthError::new(Status::Unauthorized, "unauthorized", "user is blocked")),
        None => Err(invalid_grant("The user no longer exists.")),
    }
}

/// Issue the tokens of the code flow, plus a refresh token for `offline_access` when the client may use them.
async fn issue(
    app: &Core,
    client: &Client,
    user: &User,
    grant: &RefreshGrant,
    nonce: Option<&str>,
) -> Result<TokenResponse, AuthError> {
    let opts = TokenOptions {
        allowed_scopes: CODE_FLOW_SCOPES,
        gty: None,
        nonce,
        auth_time: Some(grant.auth_time),
        amr: &grant.amr,
    };
    // `offline_access` stays in the scope only when a refresh token comes with it: the client has the grant, and the
    // API asked for (if any) allows offline access.
    let api_allows = match grant.audience.as_deref().filter(|a| !a.is_empty()) {
        Some(a) => crate::resource_servers::for_user_audience(app, a).await?.allow_offline_access,
        None => true,
    };
    let may_refresh = api_allows && client.spec.grant_types.iter().any(|g| g == "refresh_token");
    let scope: Vec<String> = callsign_domain::scopes::split(&grant.scope)
        .into_iter()
        .filter(|s| may_refresh || s != "offline_access")
        .collect();
    let offline = scope.iter().any(|s| s == "offline_access");
    let scope = scope.join(" ");
    let mut body = issue_tokens(app, client, user, grant.audience.as_deref(), Some(&scope), &opts).await?;
    if offline {
        let rt = sessions::create(app, sessions::REFRESH_KIND, grant, sessions::REFRESH_TTL_SECS)
            .await
            .map_err(AuthError::internal)?;
        body.refresh_token = Some(rt);
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
    app: &Core,
    meta: &Origin,
    basic: Option<&str>,
    req: &TokenRequest,
) -> Result<TokenResponse, AuthError> {
    logged(app, meta, basic, req, Grant::AuthorizationCode).await
}

/// `grant_type=refresh_token`: the refresh token is spent and a new one comes with the new access token.
pub async fn refresh_token(
    app: &Core,
    meta: &Origin,
    basic: Option<&str>,
    req: &TokenRequest,
) -> Result<TokenResponse, AuthError> {
    logged(app, meta, basic, req, Grant::RefreshToken).await
}

/// Authenticate the client, run the grant, and log its success or failure (`seacft` / `feacft`, `sertft` /
/// `fertft`).
async fn logged(
    app: &Core,
    meta: &Origin,
    basic: Option<&str>,
    req: &TokenRequest,
    grant: Grant,
) -> Result<TokenResponse, AuthError> {
    let (ok, failed) = match grant {
        Grant::AuthorizationCode => ("seacft", "feacft"),
        Grant::RefreshToken => ("sertft", "fertft"),
    };
    let (id, secret) = presented_credentials(basic, req)?;
    let client = match authenticate_client(app, &id, secret.as_deref()).await {
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

async fn exchange_code(app: &Core, client: &Client, req: &TokenRequest) -> Result<(User, TokenResponse), AuthError> {
    allows(client, "authorization_code")?;
    let code = req.code.as_deref().ok_or_else(|| AuthError::invalid_request("Missing required parameter: code"))?;
    let redirect_uri = req
        .redirect_uri
        .as_deref()
        .ok_or_else(|| AuthError::invalid_request("Missing required parameter: redirect_uri"))?;
    // Taken (deleted) before any other check: a code is tried once, right or wrong.
    let data: AuthzCode = sessions::take(app, sessions::CODE_KIND, code.trim())
        .await
        .map_err(AuthError::internal)?
        .ok_or_else(|| invalid_grant("Invalid authorization code"))?;
    if data.client_id != client.client_id {
        return Err(invalid_grant("Invalid authorization code"));
    }
    if data.redirect_uri != redirect_uri {
        return Err(invalid_grant("redirect_uri does not match the one of the authorization request"));
    }
    match (&data.code_challenge, req.code_verifier.as_deref()) {
        (Some(challenge), Some(verifier)) => {
            if !is_pkce_string(verifier) || !pkce_matches(verifier, challenge) {
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
fn check_refresh_scope(grant: &RefreshGrant, asked: Option<&str>) -> Result<(), AuthError> {
    let Some(asked) = asked else { return Ok(()) };
    let held = callsign_domain::scopes::split(&grant.scope);
    match callsign_domain::scopes::split(asked).into_iter().find(|s| !held.contains(s)) {
        Some(extra) => Err(AuthError::new(
            Status::Forbidden,
            "invalid_scope",
            format!("The scope {extra} was not granted to this refresh token."),
        )),
        None => Ok(()),
    }
}

async fn exchange_refresh(app: &Core, client: &Client, req: &TokenRequest) -> Result<(User, TokenResponse), AuthError> {
    allows(client, "refresh_token")?;
    let rt = req
        .refresh_token
        .as_deref()
        .ok_or_else(|| AuthError::invalid_request("Missing required parameter: refresh_token"))?;
    let rt = rt.trim();
    // Checked before it is spent: another client's attempt or a too-wide scope leaves the token usable.
    let peek: RefreshGrant = sessions::load(app, sessions::REFRESH_KIND, rt)
        .await
        .map_err(AuthError::internal)?
        .ok_or_else(|| invalid_grant("Unknown or invalid refresh token."))?;
    if peek.client_id != client.client_id {
        return Err(invalid_grant("Unknown or invalid refresh token."));
    }
    check_refresh_scope(&peek, req.scope.as_deref())?;
    // Spent atomically: of two concurrent uses, one wins.
    let mut grant: RefreshGrant = sessions::take(app, sessions::REFRESH_KIND, rt)
        .await
        .map_err(AuthError::internal)?
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

// --- token revocation (`POST /oauth/revoke`) ----------------------------------------------------------------------

/// The body of `POST /oauth/revoke` (RFC 7009; Auth0 revokes refresh tokens only).
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct RevokeRequest {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub token: Option<String>,
    /// Accepted and ignored: only refresh tokens can be revoked (an access token is a JWT that lives until it
    /// expires), so every token is looked up as one.
    pub token_type_hint: Option<String>,
}

/// Revoke a refresh token, as Auth0 does: the client authenticates as at the token endpoint (401 `invalid_client`
/// otherwise); a missing `token` is 400 `invalid_request`; a token that is unknown, expired, already used or revoked,
/// or issued to another client is answered like a revoked one (`Ok`), and only a token of this client is removed.
/// Logs `srrt` when a token was revoked.
pub async fn revoke(app: &Core, meta: &Origin, basic: Option<&str>, req: &RevokeRequest) -> Result<(), AuthError> {
    let as_token_request = TokenRequest {
        client_id: req.client_id.clone(),
        client_secret: req.client_secret.clone(),
        ..Default::default()
    };
    let (id, secret) = presented_credentials(basic, &as_token_request)?;
    let client = authenticate_client(app, &id, secret.as_deref())
        .await
        .map_err(|_| AuthError::new(Status::Unauthorized, "invalid_client", "Client authentication failed"))?;
    let token = req
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AuthError::invalid_request("Missing required parameter: token"))?;
    let Some(grant) =
        sessions::load::<RefreshGrant>(app, sessions::REFRESH_KIND, token).await.map_err(AuthError::internal)?
    else {
        return Ok(());
    };
    if grant.client_id != client.client_id {
        return Ok(());
    }
    // Taken in one statement: a concurrent refresh either ran before (and its new token lives on, as with any
    // rotation) or finds the token gone.
    let taken: Option<RefreshGrant> =
        sessions::take(app, sessions::REFRESH_KIND, token).await.map_err(AuthError::internal)?;
    if taken.is_some() {
        let user = app.store.get_user(&grant.user_id).await.ok().flatten();
        events::record(app, "srrt", meta, ctx(&client.client_id, Some(&client), user.as_ref(), None)).await;
    }
    Ok(())
}

// --- the ID token of the implicit and hybrid flows (`/authorize` with `response_type=id_token` / `code id_token`) ---

/// OpenID Connect's `c_hash`: base64url of the left half of SHA-256 of the code (the ID tokens are RS256).
pub fn c_hash(code: &str) -> String {
    let digest = Sha256::digest(code.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// What the front-channel ID token is about.
#[derive(Debug, Clone)]
pub struct FrontChannelLogin<'a> {
    pub scope: &'a str,
    pub nonce: &'a str,
    pub auth_time: i64,
    pub amr: &'a [String],
    /// The authorization code issued with it (hybrid flow): adds `c_hash`.
    pub code: Option<&'a str>,
}

/// The ID token `/authorize` returns itself (implicit and hybrid flows): `iss`, `sub`, `aud` = the client, `iat`,
/// `exp`, `nonce` (required for these flows), `auth_time`, `amr`, the profile claims of the scope, and `c_hash` with
/// a code. No access token comes with it, so the claims are in the ID token. Does not count a login (the login
/// flow does).
pub async fn front_channel_id_token(
    app: &Core,
    client: &Client,
    user: &User,
    login: &FrontChannelLogin<'_>,
) -> Result<String, AuthError> {
    let secs = app.clock.now().seconds();
    let scopes: Vec<String> = callsign_domain::scopes::split(login.scope)
        .into_iter()
        .filter(|s| CODE_FLOW_SCOPES.contains(&s.as_str()))
        .collect();
    let mut id = Map::new();
    id.insert("iss".into(), json!(app.settings.issuer()));
    id.insert("sub".into(), json!(user.user_id));
    id.insert("aud".into(), json!(client.client_id));
    id.insert("iat".into(), json!(secs));
    id.insert("exp".into(), json!(secs + app.settings.id_token_lifetime_secs as i64));
    id.insert("nonce".into(), json!(login.nonce));
    id.insert("auth_time".into(), json!(login.auth_time));
    if !login.amr.is_empty() {
        id.insert("amr".into(), json!(login.amr));
    }
    if let Some(code) = login.code {
        id.insert("c_hash".into(), json!(c_hash(code)));
    }
    for (k, v) in profile_claims(user, &scopes) {
        id.insert(k, v);
    }
    app.signer.sign(&id).await.map_err(AuthError::internal)
}
