//! The database connection (`Username-Password-Authentication`, strategy `auth0`) and public sign-up through it.
//!
//! Callsign has one connection, as a new Auth0 tenant does. Its settings live in the settings document
//! `db_connection`, created on first read with a random `con_` id (insert-if-absent, so nodes starting together agree
//! on one). The only setting that changes behaviour is `options.disable_signup`: **true on a new install**, so nobody
//! can create an account until an operator opens sign-up (`PATCH /api/v2/connections/{id}` or the dashboard). The
//! other options are reported as they are (the password policy `fair`, no usernames, the tenant's brute-force
//! protection applies) and a write may repeat them but not change them.
//!
//! [`signup`] is `POST /dbconnections/signup` and the sign-up page: every attempt, successful or not, first takes a
//! token from the caller's IP in suspicious IP throttling's `pre-user-registration` stage (so that parallel sign-ups
//! cannot pass the limit together); then the connection, the email, the password policy and the metadata are
//! checked and the user is created. Each outcome writes `ss` (success) or `fs` (failure, with the reason).
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use callsign_domain::user::{Email, UserRuleError, check_password_policy};
use callsign_store::{StoreError, User, UserProfile};

use crate::attack::{self, Refusal, Stage};
use crate::identity::DB_CONNECTION;
use crate::identity::events::{self, EventCtx};
use crate::{Core, Origin};

pub const SETTINGS_KEY: &str = "db_connection";
/// Auth0's name for the password policy Callsign enforces (`check_password_policy`).
pub const PASSWORD_POLICY: &str = "fair";
pub const MIN_PASSWORD_LENGTH: u64 = 8;
/// At most this many `user_metadata` properties at sign-up, each a string of at most [`MAX_METADATA_VALUE`]
/// characters (Auth0's limits for sign-up metadata).
pub const MAX_METADATA_FIELDS: usize = 10;
pub const MAX_METADATA_VALUE: usize = 500;

/// The connection's options. On the wire with Auth0's names; the fixed ones are reported so that a GET's body can
/// be sent back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionOptions {
    pub disable_signup: bool,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions { disable_signup: true }
    }
}

/// The stored document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbConnection {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub options: ConnectionOptions,
}

impl DbConnection {
    pub fn name(&self) -> &'static str {
        DB_CONNECTION
    }

    /// Auth0's connection object.
    pub fn view(&self) -> Value {
        json!({
            "id": self.id,
            "name": DB_CONNECTION,
            "display_name": self.display_name.as_deref().unwrap_or(DB_CONNECTION),
            "strategy": "auth0",
            "realms": [DB_CONNECTION],
            "is_domain_connection": false,
            "options": {
                "disable_signup": self.options.disable_signup,
                "requires_username": false,
                "passwordPolicy": PASSWORD_POLICY,
                "password_complexity_options": {"min_length": MIN_PASSWORD_LENGTH},
                "brute_force_protection": true,
                // No self-service password change ("Forgot password?") in Callsign's login pages.
                "disable_self_service_change_password": true,
            },
        })
    }
}

/// The connection, created on first read.
pub async fn load(app: &Core) -> crate::BoxResult<DbConnection> {
    if let Some(v) = app.cache.setting(app.store.as_ref(), SETTINGS_KEY).await? {
        return Ok(serde_json::from_value(v)?);
    }
    let fresh = DbConnection {
        id: format!("con_{}", callsign_domain::rng::from_alphabet(app.rng.as_ref(), callsign_domain::rng::ALNUM, 16)),
        display_name: None,
        options: ConnectionOptions::default(),
    };
    app.store.insert_setting_if_absent(SETTINGS_KEY, &serde_json::to_value(&fresh)?, app.clock.now()).await?;
    // Whoever inserted first, this is the one stored.
    match app.store.get_setting(SETTINGS_KEY).await? {
        Some(v) => Ok(serde_json::from_value(v)?),
        None => Ok(fresh),
    }
}

/// A change to the connection (`PATCH /api/v2/connections/{id}`): `options` are merged into the current ones (a
/// deliberate difference from Auth0, which replaces the whole object: an options body without `disable_signup` must
/// not open sign-up by accident).
#[derive(Debug, Default, Clone)]
pub struct ConnectionPatch {
    pub display_name: Option<String>,
    pub options: Option<Map<String, Value>>,
}

/// Apply `patch`, or say which property is wrong (`(property, message)`).
pub fn apply(conn: &mut DbConnection, patch: ConnectionPatch) -> Result<(), (String, String)> {
    if let Some(d) = patch.display_name {
        let n = d.trim().chars().count();
        if n == 0 || n > 128 {
            return Err(("display_name".into(), "must be 1 to 128 characters".into()));
        }
        conn.display_name = Some(d.trim().to_owned());
    }
    let Some(options) = patch.options else { return Ok(()) };
    let fixed = conn.view()["options"].clone();
    for (k, v) in options {
        match k.as_str() {
            "disable_signup" => {
                conn.options.disable_signup =
                    v.as_bool().ok_or_else(|| (format!("options.{k}"), "must be a boolean".to_owned()))?;
            }
            "requires_username"
            | "passwordPolicy"
            | "password_complexity_options"
            | "brute_force_protection"
            | "disable_self_service_change_password" => {
                if fixed[&k] != v {
                    return Err((
                        format!("options.{k}"),
                        format!("Callsign's database connection has {k} = {}; it cannot be changed", fixed[&k]),
                    ));
                }
            }
            _ => {
                return Err((
                    format!("options.{k}"),
                    "is not an option of Callsign's database connection (disable_signup, requires_username, \
                     passwordPolicy, password_complexity_options, brute_force_protection, \
                     disable_self_service_change_password)"
                        .to_owned(),
                ));
            }
        }
    }
    Ok(())
}

/// Apply `patch` to the stored connection, re-applying it when another writer got in between (compare-and-set), so
/// that two PATCHes of different properties at the same moment both stand. The refusal of [`apply`] comes back as
/// the inner `Err`, with nothing written.
pub async fn update(app: &Core, patch: ConnectionPatch) -> crate::BoxResult<Result<DbConnection, (String, String)>> {
    let current = load(app).await?; // made on first read
    crate::documents::modify(
        app,
        SETTINGS_KEY,
        "connection",
        || current.clone(),
        |conn| {
            apply(conn, patch.clone())?;
            Ok(conn.clone())
        },
    )
    .await
}

pub async fn save(app: &Core, conn: &DbConnection) -> crate::BoxResult<()> {
    app.store.put_setting(SETTINGS_KEY, &serde_json::to_value(conn)?, app.clock.now()).await?;
    Ok(())
}

// --- sign-up ------------------------------------------------------------------------------------------------------

/// What a sign-up asks for (`POST /dbconnections/signup`, or the sign-up page).
#[derive(Debug, Default, Clone)]
pub struct Signup {
    pub client_id: String,
    pub connection: String,
    pub email: String,
    pub password: String,
    pub username: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub name: Option<String>,
    pub nickname: Option<String>,
    pub picture: Option<String>,
    pub user_metadata: Option<Map<String, Value>>,
}

/// Why a sign-up was refused. Each has Auth0's code ([`SignupError::code`]).
#[derive(Debug)]
pub enum SignupError {
    /// A missing or malformed field: `(what, message)`.
    Invalid(String),
    UnknownClient,
    UnknownConnection(String),
    Disabled,
    UserExists,
    /// The password is weak: the policy's rules, each with whether it was met (Auth0's `description`).
    WeakPassword(Value),
    /// Suspicious IP throttling blocked the caller's IP.
    Blocked,
    /// The password hasher is saturated.
    Busy,
    /// The limiter or the settings could not be read: refused, never let through.
    Unavailable(String),
    Internal(String),
}

impl SignupError {
    /// Auth0's `code` for the error body.
    pub fn code(&self) -> &'static str {
        match self {
            SignupError::Invalid(_) => "invalid_parameter",
            SignupError::UnknownClient => "unauthorized_client",
            SignupError::UnknownConnection(_) => "connection_not_found",
            SignupError::Disabled => "operation_not_allowed",
            SignupError::UserExists => "user_exists",
            SignupError::WeakPassword(_) => "invalid_password",
            SignupError::Blocked => "too_many_attempts",
            SignupError::Busy | SignupError::Unavailable(_) => "temporarily_unavailable",
            SignupError::Internal(_) => "server_error",
        }
    }

    /// A sentence for the log event and the error body (never the password).
    pub fn message(&self) -> String {
        match self {
            SignupError::Invalid(m) => m.clone(),
            SignupError::UnknownClient => "The client does not exist.".into(),
            SignupError::UnknownConnection(c) => format!("The connection does not exist: {c}."),
            SignupError::Disabled => "Public signup is disabled".into(),
            SignupError::UserExists => "The user already exists.".into(),
            SignupError::WeakPassword(_) => "Password is too weak".into(),
            SignupError::Blocked => attack::BLOCKED.into(),
            SignupError::Busy => "The server is busy; try again in a moment.".into(),
            SignupError::Unavailable(_) => "Sign-up is unavailable right now; try again in a moment.".into(),
            SignupError::Internal(_) => "Internal error".into(),
        }
    }
}

/// The policy's rules for `password`, in Auth0's `PasswordStrengthError` description shape.
pub fn policy_report(password: &str) -> Value {
    let long_enough = password.chars().count() >= 8;
    let not_too_long = password.len() <= 72;
    let classes = [
        ("lowerCase", "lower case letters (a-z)", password.chars().any(char::is_lowercase)),
        ("upperCase", "upper case letters (A-Z)", password.chars().any(char::is_uppercase)),
        ("numbers", "numbers (i.e. 0-9)", password.chars().any(|c| c.is_ascii_digit())),
        ("specialCharacters", "special characters (e.g. !@#$%^&*)", password.chars().any(|c| !c.is_alphanumeric())),
    ];
    let met = classes.iter().filter(|c| c.2).count();
    let items: Vec<Value> =
        classes.iter().map(|(code, message, ok)| json!({"code": code, "message": message, "verified": ok})).collect();
    let verified = long_enough && not_too_long && met >= 3;
    json!({
        "rules": [
            {"code": "lengthAtLeast", "message": "At least %d characters in length", "format": [MIN_PASSWORD_LENGTH], "verified": long_enough},
            {"code": "lengthAtMost", "message": "At most %d bytes in length", "format": [72], "verified": not_too_long},
            {"code": "containsAtLeast", "message": "Contain at least %d of the following %d types of characters:", "format": [3, 4], "items": items, "verified": met >= 3},
        ],
        "verified": verified,
    })
}

fn bounded(field: &str, v: Option<String>, max: usize) -> Result<Option<String>, SignupError> {
    match v {
        Some(s) if s.chars().count() > max => {
            Err(SignupError::Invalid(format!("{field} is too long ({max} characters at most)")))
        }
        Some(s) if s.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

fn check_metadata(m: &Map<String, Value>) -> Result<(), SignupError> {
    if m.len() > MAX_METADATA_FIELDS {
        return Err(SignupError::Invalid(format!("user_metadata has at most {MAX_METADATA_FIELDS} properties")));
    }
    for (k, v) in m {
        match v.as_str() {
            Some(s) if s.chars().count() <= MAX_METADATA_VALUE && k.chars().count() <= 100 => {}
            Some(_) => {
                return Err(SignupError::Invalid(format!(
                    "user_metadata.{k} is too long ({MAX_METADATA_VALUE} characters at most)"
                )));
            }
            None => return Err(SignupError::Invalid(format!("user_metadata.{k} must be a string"))),
        }
    }
    Ok(())
}

/// Create an account through the database connection. See the module's documentation for the order of the
/// checks; the throttling token taken first is never given back (Auth0 counts every sign-up attempt).
pub async fn signup(app: &Core, origin: &Origin, req: Signup) -> Result<User, SignupError> {
    let ctx = EventCtx {
        client_id: Some(req.client_id.clone()).filter(|c| !c.is_empty()),
        connection: Some(DB_CONNECTION.to_owned()),
        user_name: Some(req.email.trim().to_lowercase()).filter(|e| !e.is_empty()),
        ..Default::default()
    };
    match attack::count(app, origin, Stage::PreUserRegistration).await {
        Ok(()) => {}
        Err(Refusal::Blocked(_)) => return Err(failed(app, origin, ctx, SignupError::Blocked).await),
        Err(Refusal::Unavailable(e)) => {
            tracing::error!(error = %e, "sign-up refused: the rate limiter is unavailable");
            return Err(SignupError::Unavailable(e));
        }
    }
    match create(app, &req).await {
        Ok((user, client_name)) => {
            let ctx = EventCtx {
                user_id: Some(user.user_id.clone()),
                client_name,
                description: Some("Successful signup".into()),
                ..ctx
            };
            events::record(app, "ss", origin, ctx).await;
            Ok(user)
        }
        Err(e) => Err(failed(app, origin, ctx, e).await),
    }
}

async fn failed(app: &Core, origin: &Origin, ctx: EventCtx, e: SignupError) -> SignupError {
    if let SignupError::Internal(cause) = &e {
        tracing::error!(error = %cause, "sign-up failed");
    }
    let ctx = EventCtx { description: Some(e.message()), details: json!({"error": {"code": e.code()}}), ..ctx };
    events::record(app, "fs", origin, ctx).await;
    e
}

async fn create(app: &Core, req: &Signup) -> Result<(User, Option<String>), SignupError> {
    let internal = |e: &dyn std::fmt::Display| SignupError::Internal(e.to_string());
    if req.client_id.is_empty() {
        return Err(SignupError::Invalid("Missing required property: client_id".into()));
    }
    let client = app.store.get_client(&req.client_id).await.map_err(|e| internal(&e))?;
    let Some(client) = client else { return Err(SignupError::UnknownClient) };
    if req.connection.is_empty() {
        return Err(SignupError::Invalid("Missing required property: connection".into()));
    }
    if req.connection != DB_CONNECTION {
        return Err(SignupError::UnknownConnection(req.connection.clone()));
    }
    let conn = load(app).await.map_err(|e| SignupError::Unavailable(e.to_string()))?;
    if conn.options.disable_signup {
        return Err(SignupError::Disabled);
    }
    if req.email.trim().is_empty() {
        return Err(SignupError::Invalid("Missing required property: email".into()));
    }
    let email = Email::parse(&req.email).map_err(|e| SignupError::Invalid(e.to_string()))?;
    if req.password.is_empty() {
        return Err(SignupError::Invalid("Missing required property: password".into()));
    }
    if req.username.as_deref().is_some_and(|u| !u.is_empty()) {
        return Err(SignupError::Invalid("Cannot set username for connection without requires_username".into()));
    }
    match check_password_policy(&req.password) {
        Ok(()) => {}
        Err(UserRuleError::WeakPassword | UserRuleError::LongPassword) => {
            return Err(SignupError::WeakPassword(policy_report(&req.password)));
        }
        Err(e) => return Err(SignupError::Invalid(e.to_string())),
    }
    let mut profile = UserProfile { connection: DB_CONNECTION.to_owned(), ..Default::default() };
    profile.given_name = bounded("given_name", req.given_name.clone(), 150)?;
    profile.family_name = bounded("family_name", req.family_name.clone(), 150)?;
    profile.name = bounded("name", req.name.clone(), 300)?.or_else(|| Some(email.as_str().to_owned()));
    profile.nickname =
        bounded("nickname", req.nickname.clone(), 300)?.or_else(|| email.as_str().split('@').next().map(str::to_owned));
    profile.picture = bounded("picture", req.picture.clone(), 2_000)?;
    if let Some(m) = &req.user_metadata {
        check_metadata(m)?;
        profile.user_metadata = m.clone();
    }
    // The address is checked before the (slow, bounded) hash: a taken one costs no hashing.
    if app.store.get_user_by_email(email.as_str()).await.map_err(|e| internal(&e))?.is_some() {
        return Err(SignupError::UserExists);
    }
    let salt = callsign_domain::rng::bytes::<16>(app.rng.as_ref());
    let hash = match app.passwords.hash(req.password.clone(), salt).await {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => return Err(internal(&e)),
        Err(_) => return Err(SignupError::Busy),
    };
    let now = app.clock.now();
    let user = User {
        user_id: callsign_domain::ids::user_id(app.rng.as_ref()),
        email: Some(email.as_str().to_owned()),
        password_hash: Some(hash),
        created_at: now,
        updated_at: now,
        last_login: None,
        logins_count: 0,
        profile,
    };
    match app.store.create_user(&user).await {
        Ok(()) => Ok((user, Some(client.spec.name))),
        // Two sign-ups for one address at once: exactly one is created.
        Err(StoreError::Conflict(_)) => Err(SignupError::UserExists),
        Err(e) => Err(internal(&e)),
    }
}

/// Auth0's sign-up answer: `_id` (the user id without `auth0|`), the email, and what was given.
pub fn signup_view(u: &User) -> Value {
    let p = &u.profile;
    let mut v = json!({
        "_id": u.user_id.split_once('|').map_or(u.user_id.as_str(), |(_, id)| id),
        "email": u.email,
        "email_verified": p.email_verified,
    });
    if let Some(o) = v.as_object_mut() {
        for (k, val) in [
            ("given_name", &p.given_name),
            ("family_name", &p.family_name),
            ("name", &p.name),
            ("nickname", &p.nickname),
            ("picture", &p.picture),
        ] {
            if let Some(s) = val {
                o.insert(k.to_owned(), json!(s));
            }
        }
        if !p.user_metadata.is_empty() {
            o.insert("user_metadata".into(), Value::Object(p.user_metadata.clone()));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_report_says_which_rules_a_password_meets() {
        let r = policy_report("short");
        assert_eq!(r["verified"], false);
        assert_eq!(r["rules"][0]["verified"], false);
        assert_eq!(r["rules"][2]["items"][0]["verified"], true);
        assert_eq!(r["rules"][2]["items"][1]["verified"], false);
        assert_eq!(policy_report("Longer-password-1")["verified"], true);
        assert_eq!(policy_report("alllowercaseletters")["verified"], false);
    }

    #[test]
    fn fixed_options_may_be_repeated_but_not_changed() {
        let mut c = DbConnection { id: "con_x".into(), display_name: None, options: ConnectionOptions::default() };
        let options = c.view()["options"].as_object().cloned();
        assert!(apply(&mut c, ConnectionPatch { options, ..Default::default() }).is_ok());
        let mut o = Map::new();
        o.insert("disable_signup".into(), json!(false));
        assert!(apply(&mut c, ConnectionPatch { options: Some(o), ..Default::default() }).is_ok());
        assert!(!c.options.disable_signup);
        let mut o = Map::new();
        o.insert("requires_username".into(), json!(true));
        let e = apply(&mut c, ConnectionPatch { options: Some(o), ..Default::default() }).err();
        assert_eq!(e.map(|e| e.0).as_deref(), Some("options.requires_username"));
        let mut o = Map::new();
        o.insert("mfa".into(), json!({}));
        assert!(apply(&mut c, ConnectionPatch { options: Some(o), ..Default::default() }).is_err());
        let mut o = Map::new();
        o.insert("disable_signup".into(), json!("no"));
        assert!(apply(&mut c, ConnectionPatch { options: Some(o), ..Default::default() }).is_err());
    }
}
