//! `/api/v2/users` and `/api/v2/users-by-email`.
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use callsign_domain::user::{Email, check_password_policy};
use callsign_store::{Page, StoreError, User, UserFilter, UserProfile};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::Path;
use super::{CreateUsers, DeleteUsers, Mgmt, Paging, ReadUsers, UpdateUsers, merge_metadata};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Body, Query};

pub const DB_CONNECTION: &str = "Username-Password-Authentication";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/{id}", get(read).patch(update).delete(remove))
        .route("/users-by-email", get(by_email))
}

pub fn not_found() -> ApiError {
    ApiError::not_found("The user does not exist.").code("inexistent_user")
}

fn conflict() -> ApiError {
    ApiError::conflict("The user already exists.").code("auth0_idp_error")
}

pub fn render(u: &User) -> Value {
    let p = &u.profile;
    let mut v = json!({
        "user_id": u.user_id,
        "email": u.email,
        "email_verified": p.email_verified,
        "name": p.name,
        "nickname": p.nickname,
        "blocked": p.blocked,
        "user_metadata": p.user_metadata,
        "app_metadata": p.app_metadata,
        "identities": [{
            "connection": p.connection,
            "user_id": u.user_id.split_once('|').map_or(u.user_id.as_str(), |(_, id)| id),
            "provider": "auth0",
            "isSocial": false,
        }],
        "created_at": u.created_at.to_rfc3339(),
        "updated_at": u.updated_at.to_rfc3339(),
        "logins_count": u.logins_count,
    });
    if let Some(o) = v.as_object_mut() {
        for (k, val) in [
            ("phone_number", &p.phone_number),
            ("given_name", &p.given_name),
            ("family_name", &p.family_name),
            ("picture", &p.picture),
        ] {
            if let Some(s) = val {
                o.insert(k.to_owned(), json!(s));
            }
        }
        if p.phone_number.is_some() {
            o.insert("phone_verified".into(), json!(p.phone_verified));
        }
        if let Some(t) = u.last_login {
            o.insert("last_login".into(), json!(t.to_rfc3339()));
        }
    }
    v
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct Fields {
    connection: Option<String>,
    email: Option<String>,
    password: Option<String>,
    phone_number: Option<String>,
    user_id: Option<String>,
    username: Option<String>,
    name: Option<String>,
    nickname: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    picture: Option<String>,
    blocked: Option<bool>,
    email_verified: Option<bool>,
    phone_verified: Option<bool>,
    verify_email: Option<bool>,
    user_metadata: Option<Map<String, Value>>,
    app_metadata: Option<Map<String, Value>>,
}

/// E.164: `+`, then 2 to 15 digits, not starting with 0. (Full number checks come with the phone factor.)
fn check_phone(p: &str) -> Result<(), ApiError> {
    let digits = p.strip_prefix('+').unwrap_or("");
    if digits.len() < 2 || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
        return Err(ApiError::invalid_payload(format!(
            "Object didn't pass validation for format phone-number: {p}' on property phone_number (use E.164, e.g. +14155550100)"
        )));
    }
    Ok(())
}

fn check_connection(c: &str) -> Result<(), ApiError> {
    if c != DB_CONNECTION {
        return Err(ApiError::bad_request(format!(
            "The connection does not exist: {c}. The only connection is {DB_CONNECTION}."
        ))
        .code("inexistent_connection"));
    }
    Ok(())
}

fn salt(app: &AppState) -> [u8; 16] {
    callsign_domain::rng::bytes::<16>(app.rng.as_ref())
}

/// Apply the profile fields shared by create and update.
fn apply_profile(p: &mut UserProfile, f: &mut Fields) -> Result<(), ApiError> {
    if let Some(ph) = f.phone_number.take() {
        if ph.is_empty() {
            p.phone_number = None;
        } else {
            check_phone(&ph)?;
            p.phone_number = Some(ph);
        }
    }
    for (slot, val, prop) in [
        (&mut p.name, f.name.take(), "name"),
        (&mut p.nickname, f.nickname.take(), "nickname"),
        (&mut p.given_name, f.given_name.take(), "given_name"),
        (&mut p.family_name, f.family_name.take(), "family_name"),
        (&mut p.picture, f.picture.take(), "picture"),
    ] {
        if let Some(v) = val {
            if v.chars().count() > 300 {
                return Err(ApiError::invalid_payload(format!(
                    "String is too long (300 chars max)' on property {prop}"
                )));
            }
            *slot = Some(v);
        }
    }
    if let Some(b) = f.blocked.take() {
        p.blocked = b;
    }
    if let Some(b) = f.email_verified.take() {
        p.email_verified = b;
    }
    if let Some(b) = f.phone_verified.take() {
        p.phone_verified = b;
    }
    if let Some(m) = f.user_metadata.take() {
        merge_metadata(&mut p.user_metadata, m);
    }
    if let Some(m) = f.app_metadata.take() {
        merge_metadata(&mut p.app_metadata, m);
    }
    Ok(())
}

async fn create(
    _: Mgmt<CreateUsers>,
    State(app): State<AppState>,
    Body(mut f): Body<Fields>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let connection =
        f.connection.take().ok_or_else(|| ApiError::invalid_payload("Missing required property: connection"))?;
    check_connection(&connection)?;
    let email =
        Email::parse(f.email.as_deref().ok_or_else(|| ApiError::invalid_payload("Missing required property: email"))?)
            .map_err(|e| ApiError::invalid_payload(format!("{e}' on property email")))?;
    let password = f.password.take().ok_or_else(|| ApiError::invalid_payload("Missing required property: password"))?;
    check_password_policy(&password)
        .map_err(|e| ApiError::bad_request(e.to_string()).code("password_strength_error"))?;
    if f.username.is_some() {
        return Err(ApiError::invalid_payload("Cannot set username for connection without requires_username"));
    }
    let user_id = match f.user_id.take() {
        Some(id) if !id.is_empty() && id.chars().count() <= 128 && !id.contains('|') => format!("auth0|{id}"),
        Some(_) => {
            return Err(ApiError::invalid_payload("user_id must be 1-128 characters without `|`' on property user_id"));
        }
        None => callsign_domain::ids::user_id(app.rng.as_ref()),
    };
    let now = app.clock.now();
    let mut profile = UserProfile { connection, ..Default::default() };
    apply_profile(&mut profile, &mut f)?;
    if profile.name.is_none() {
        profile.name = Some(email.as_str().to_owned());
    }
    if profile.nickname.is_none() {
        profile.nickname = email.as_str().split('@').next().map(str::to_owned);
    }
    let password_hash = app.passwords.hash(password, salt(&app)).await?.map_err(ApiError::internal)?;
    let user = User {
        user_id,
        email: Some(email.as_str().to_owned()),
        password_hash: Some(password_hash),
        created_at: now,
        updated_at: now,
        last_login: None,
        logins_count: 0,
        profile,
    };
    match app.store.create_user(&user).await {
        Ok(()) => Ok((StatusCode::CREATED, Json(render(&user)))),
        Err(StoreError::Conflict(_)) => Err(conflict()),
        Err(e) => Err(e.into()),
    }
}

async fn read(
    _: Mgmt<ReadUsers>,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(render(&app.store.get_user(&id).await?.ok_or_else(not_found)?)))
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    q: Option<String>,
    search_engine: Option<String>,
    #[serde(flatten)]
    paging: Paging,
}

/// The supported subset of Auth0's user search: `email:"ann@example.com"` (exact, case-insensitive).
fn parse_q(q: &str) -> Result<UserFilter, ApiError> {
    let q = q.trim();
    if q.is_empty() {
        return Ok(UserFilter::default());
    }
    let one_term = !q.contains(" AND ") && !q.contains(" OR ") && !q.to_ascii_lowercase().contains(" and ");
    match q.split_once(':') {
        Some(("email", v)) if one_term && !v.trim().trim_matches('"').contains(char::is_whitespace) => {
            Ok(UserFilter { email: Some(v.trim().trim_matches('"').to_lowercase()) })
        }
        _ => Err(ApiError::invalid_query(format!(
            "Query validation error: 'cannot search by `{q}`; the supported query is email:\"ADDRESS\"'."
        ))),
    }
}

async fn list(
    _: Mgmt<ReadUsers>,
    State(app): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let _ = q.search_engine;
    let filter = match &q.q {
        Some(s) => parse_q(s)?,
        None => UserFilter::default(),
    };
    let listed = app.store.list_users(&filter, q.paging.page()?).await?;
    Ok(Json(q.paging.wrap("users", listed.items.iter().map(render).collect(), listed.total)))
}

#[derive(Debug, Deserialize)]
struct ByEmail {
    email: String,
}

async fn by_email(
    _: Mgmt<ReadUsers>,
    State(app): State<AppState>,
    Query(q): Query<ByEmail>,
) -> Result<Json<Value>, ApiError> {
    let filter = UserFilter { email: Some(q.email.trim().to_lowercase()) };
    let listed = app.store.list_users(&filter, Page::new(0, 100)).await?;
    Ok(Json(Value::Array(listed.items.iter().map(render).collect())))
}

async fn update(
    _: Mgmt<UpdateUsers>,
    State(app): State<AppState>,
    Path(id): Path<String>,
    Body(mut f): Body<Fields>,
) -> Result<Json<Value>, ApiError> {
    let mut user = app.store.get_user(&id).await?.ok_or_else(not_found)?;
    if let Some(c) = f.connection.take() {
        check_connection(&c)?;
    }
    if f.user_id.is_some() || f.username.is_some() || f.verify_email.is_some() && f.email.is_none() {
        return Err(ApiError::invalid_payload("user_id and username cannot be changed; verify_email needs email"));
    }
    if f.password.is_some() && f.email.is_some() {
        return Err(ApiError::bad_request("Cannot update password and email simultaneously"));
    }
    if let Some(e) = f.email.take() {
        let email = Email::parse(&e).map_err(|e| ApiError::invalid_payload(format!("{e}' on property email")))?;
        if user.email.as_deref() != Some(email.as_str()) && f.email_verified.is_none() {
            user.profile.email_verified = false;
        }
        user.email = Some(email.as_str().to_owned());
    }
    if let Some(pw) = f.password.take() {
        check_password_policy(&pw).map_err(|e| ApiError::bad_request(e.to_string()).code("password_strength_error"))?;
        user.password_hash = Some(app.passwords.hash(pw, salt(&app)).await?.map_err(ApiError::internal)?);
    }
    apply_profile(&mut user.profile, &mut f)?;
    user.updated_at = app.clock.now();
    match app.store.update_user(&user).await {
        Ok(()) => Ok(Json(render(&user))),
        Err(StoreError::Conflict(_)) => Err(conflict()),
        Err(StoreError::NotFound) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

async fn remove(
    _: Mgmt<DeleteUsers>,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    match app.store.delete_user(&id).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(StoreError::NotFound) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}
