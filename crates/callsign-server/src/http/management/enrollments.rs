//! A user's MFA enrollments through the Management API (reference §3.9–§3.11, §4):
//! `/guardian/enrollments/**`, `/users/{id}/enrollments`, `/users/{id}/authentication-methods/**`,
//! `/users/{id}/authenticators`.
//!
//! The store keeps bare `dev_…` ids; the API speaks `phone|dev_X` (the phone method), `sms|dev_X` / `voice|dev_X`
//! (its channels) and `recovery-code|dev_X`. Any of those, or the bare id, is accepted on input.
//!
//! Deviations from Auth0, on purpose:
//! - only `phone` authentication methods can be created (others answer 400);
//! - enrollment tickets send no email: `send_mail: true` answers 400, and `send_mail` defaults to false;
//!   `email`, `email_locale` and `allow_multiple_enrollments` are accepted and ignored;
//! - the `include_totals` wrapper of authentication methods always carries `total` (Auth0 omits it when 0);
//! - a phone method lists both channels in `authentication_methods`, the preferred one first.
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use callsign_domain::hash::token_hash;
use callsign_domain::phone::{PhoneNumber, mask};
use callsign_domain::rng::{ALNUM, from_alphabet};
use callsign_store::{Channel, Enrollment, EnrollmentKind, EnrollmentStatus, EnrollmentTicket, StoreError};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Path;
use super::{
    CreateAuthMethods, CreateEnrollmentTickets, DeleteAuthMethods, DeleteGuardianEnrollments, Mgmt, Paging,
    ReadAuthMethods, ReadGuardianEnrollments, ReadUsers, UpdateAuthMethods,
};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Body, Query, RequestMeta};
use callsign_core::identity::events::{self, EventCtx};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/guardian/enrollments/ticket", post(create_ticket))
        .route("/guardian/enrollments/{id}", get(read_enrollment).delete(delete_enrollment))
        .route("/users/{id}/enrollments", get(user_enrollments))
        .route(
            "/users/{id}/authentication-methods",
            get(list_methods).post(create_method).put(replace_methods).delete(delete_methods),
        )
        .route(
            "/users/{id}/authentication-methods/{method_id}",
            get(read_method).patch(update_method).delete(delete_method),
        )
        .route("/users/{id}/authenticators", delete(delete_authenticators))
}

/// How long an enrollment ticket is valid (Auth0 does not say; reference §13 item 3).
pub const TICKET_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

const PHONE: EnrollmentKind = EnrollmentKind::Phone;
const RECOVERY_CODE: EnrollmentKind = EnrollmentKind::RecoveryCode;

// ------------------------------------------------------------------------------------------------------------
// Ids and errors
// ------------------------------------------------------------------------------------------------------------

/// The prefixes an API id may carry, and the enrollment kind each names.
const PREFIXES: &[(&str, EnrollmentKind)] =
    &[("phone|", PHONE), ("sms|", PHONE), ("voice|", PHONE), ("recovery-code|", RECOVERY_CODE)];

/// An API id → (bare store id, the kind its prefix names). None when it is not an enrollment id at all.
pub fn parse_id(id: &str) -> Option<(&str, Option<EnrollmentKind>)> {
    let (bare, kind) =
        PREFIXES.iter().find_map(|(p, k)| id.strip_prefix(p).map(|rest| (rest, Some(*k)))).unwrap_or((id, None));
    let suffix = bare.strip_prefix("dev_")?;
    if suffix.is_empty() || !suffix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return None;
    }
    Some((bare, kind))
}

fn enrollment_not_found() -> ApiError {
    ApiError::not_found("Enrollment not found").code("enrollment_not_found")
}

fn user_not_found() -> ApiError {
    ApiError::not_found("User not found.").code("inexistent_user")
}

fn method_not_found() -> ApiError {
    ApiError::not_found("The authentication method could not be found.").code("inexistent_authentication_method")
}

/// Look an enrollment up by API id; `user_id` (when given) must own it.
async fn find(app: &AppState, id: &str, user_id: Option<&str>) -> Result<Option<Enrollment>, ApiError> {
    let Some((bare, kind)) = parse_id(id) else {
        return Ok(None);
    };
    let Some(e) = app.store.get_enrollment(bare).await? else {
        return Ok(None);
    };
    if kind.is_some_and(|k| k != e.kind) || user_id.is_some_and(|u| u != e.user_id) {
        return Ok(None);
    }
    Ok(Some(e))
}

async fn require_user(app: &AppState, user_id: &str, not_found: fn() -> ApiError) -> Result<(), ApiError> {
    match app.store.get_user(user_id).await? {
        Some(_) => Ok(()),
        None => Err(not_found()),
    }
}

/// Record an enrollment event about `user_id`.
async fn record(app: &AppState, code: &str, meta: &RequestMeta, client_id: &str, user_id: &str, details: Value) {
    events::record(
        app,
        code,
        meta,
        EventCtx {
            client_id: Some(client_id.to_owned()),
            user_id: Some(user_id.to_owned()),
            details,
            ..Default::default()
        },
    )
    .await;
}

fn preferred(e: &Enrollment) -> Channel {
    e.preferred_channel.unwrap_or(Channel::Sms)
}

/// The API id of an enrollment as `/guardian/enrollments` and `/users/{id}/enrollments` speak of it: the phone's
/// preferred channel (`sms|dev_X`), or `recovery-code|dev_X`.
pub fn guardian_id(e: &Enrollment) -> String {
    if e.kind == PHONE { format!("{}|{}", preferred(e), e.id) } else { format!("{}|{}", e.kind, e.id) }
}

fn masked_phone(e: &Enrollment) -> Option<String> {
    e.phone_number.as_deref().map(mask)
}

// ------------------------------------------------------------------------------------------------------------
// /guardian/enrollments/{id}, /users/{id}/enrollments
// ------------------------------------------------------------------------------------------------------------

/// Reference §3.9: only `id` is required; absent fields are left out.
pub fn render_guardian(e: &Enrollment) -> Value {
    let mut v = json!({"id": guardian_id(e), "status": e.status});
    if let Some(o) = v.as_object_mut() {
        if let Some(n) = &e.name {
            o.insert("name".into(), json!(n));
        }
        if let Some(p) = masked_phone(e) {
            o.insert("phone_number".into(), json!(p));
        }
        if let Some(t) = e.enrolled_at {
            o.insert("enrolled_at".into(), json!(t.to_rfc3339()));
        }
        if let Some(t) = e.last_auth {
            o.insert("last_auth".into(), json!(t.to_rfc3339()));
        }
    }
    v
}

/// Reference §4.1 (`UsersEnrollment`): a phone enrollment, typed by its preferred channel.
pub fn render_user_enrollment(e: &Enrollment) -> Value {
    let mut v = render_guardian(e);
    if let Some(o) = v.as_object_mut() {
        o.insert("type".into(), json!(preferred(e)));
        o.insert("auth_method".into(), json!("sms"));
    }
    v
}

async fn read_enrollment(
    _: Mgmt<ReadGuardianEnrollments>,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let e = find(&app, &id, None).await?.ok_or_else(enrollment_not_found)?;
    Ok(Json(render_guardian(&e)))
}

async fn delete_enrollment(
    m: Mgmt<DeleteGuardianEnrollments>,
    State(app): State<AppState>,
    Path(id): Path<String>,
    meta: RequestMeta,
) -> Result<StatusCode, ApiError> {
    let e = find(&app, &id, None).await?.ok_or_else(enrollment_not_found)?;
    match app.store.delete_enrollment(&e.id).await {
        Ok(()) => {}
        Err(StoreError::NotFound) => return Err(enrollment_not_found()),
        Err(err) => return Err(err.into()),
    }
    let details = json!({"enrollment_id": guardian_id(&e), "type": e.kind});
    record(&app, "gd_unenroll", &meta, &m.caller.client_id, &e.user_id, details).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn user_enrollments(
    _: Mgmt<ReadUsers>,
    State(app): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require_user(&app, &user_id, user_not_found).await?;
    let list = app.store.list_enrollments(&user_id).await?;
    Ok(Json(Value::Array(
        list.iter()
            .filter(|e| e.kind == PHONE && e.status == EnrollmentStatus::Confirmed)
            .map(render_user_enrollment)
            .collect(),
    )))
}

// ------------------------------------------------------------------------------------------------------------
// /users/{id}/authentication-methods
// ------------------------------------------------------------------------------------------------------------

/// Reference §4.2 item. Reads mask the phone number and say whether it is confirmed; create and replace
/// answer with the number as given (the wire example's shapes).
pub fn render_method(e: &Enrollment, read: bool) -> Value {
    let mut v = json!({"id": format!("{}|{}", e.kind, e.id), "type": e.kind});
    let Some(o) = v.as_object_mut() else { return v };
    if read {
        o.insert("confirmed".into(), json!(e.status == EnrollmentStatus::Confirmed));
    }
    if let Some(n) = &e.name {
        o.insert("name".into(), json!(n));
    }
    if e.kind == PHONE {
        let phone = if read { masked_phone(e) } else { e.phone_number.clone() };
        if let Some(p) = phone {
            o.insert("phone_number".into(), json!(p));
        }
    }
    o.insert("created_at".into(), json!(e.created_at.to_rfc3339()));
    if e.kind == PHONE {
        let first = preferred(e);
        o.insert("preferred_authentication_method".into(), json!(first));
        let mut channels = vec![first];
        channels.extend(Channel::ALL.iter().copied().filter(|c| *c != first));
        o.insert(
            "authentication_methods".into(),
            json!(channels.iter().map(|c| json!({"id": format!("{c}|{}", e.id), "type": c})).collect::<Vec<_>>()),
        );
    }
    if read {
        if let Some(t) = e.enrolled_at {
            o.insert("enrolled_at".into(), json!(t.to_rfc3339()));
        }
        if let Some(t) = e.last_auth {
            o.insert("last_auth_at".into(), json!(t.to_rfc3339()));
        }
    }
    v
}

async fn list_methods(
    _: Mgmt<ReadAuthMethods>,
    State(app): State<AppState>,
    Path(user_id): Path<String>,
    Query(p): Query<Paging>,
) -> Result<Json<Value>, ApiError> {
    let page = p.page()?;
    require_user(&app, &user_id, super::users::not_found).await?;
    let all = app.store.list_enrollments(&user_id).await?;
    let total = all.len();
    let start = usize::try_from(page.offset()).unwrap_or(usize::MAX);
    let limit = usize::try_from(page.limit()).unwrap_or(usize::MAX);
    let items: Vec<Value> = all.iter().skip(start).take(limit).map(|e| render_method(e, true)).collect();
    if p.include_totals == Some(true) {
        Ok(Json(json!({"authenticators": items, "total": total, "start": start, "limit": limit})))
    } else {
        Ok(Json(Value::Array(items)))
    }
}

async fn read_method(
    _: Mgmt<ReadAuthMethods>,
    State(app): State<AppState>,
    Path((user_id, method_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    require_user(&app, &user_id, super::users::not_found).await?;
    let e = find(&app, &method_id, Some(&user_id)).await?.ok_or_else(method_not_found)?;
    Ok(Json(render_method(&e, true)))
}

/// A new method as `POST` and `PUT` take it (reference §4.2).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct NewMethod {
    #[serde(rename = "type")]
    kind: Option<String>,
    name: Option<String>,
    phone_number: Option<String>,
    preferred_authentication_method: Option<String>,
    email: Option<String>,
    totp_secret: Option<String>,
    key_id: Option<String>,
    public_key: Option<String>,
    relying_party_identifier: Option<String>,
}

/// A checked phone method, ready to store.
#[derive(Debug)]
struct PhoneMethod {
    phone: PhoneNumber,
    preferred: Channel,
    name: Option<String>,
}

/// Auth0's method types; only `phone` is implemented.
const METHOD_TYPES: &[&str] = &["phone", "email", "totp", "webauthn-roaming", "passkey"];

fn check_name(name: Option<String>) -> Result<Option<String>, ApiError> {
    match name {
        Some(n) if n.is_empty() || n.chars().count() > 20 || n.chars().any(char::is_control) => {
            Err(ApiError::invalid_property("name", "String must be 1 to 20 characters"))
        }
        other => Ok(other),
    }
}

fn check_preferred(p: Option<String>) -> Result<Option<Channel>, ApiError> {
    p.map(|p| {
        p.parse::<Channel>().map_err(|_| {
            ApiError::invalid_property(
                "preferred_authentication_method",
                format!("No enum match for: \"{p}\"; expected one of sms, voice"),
            )
        })
    })
    .transpose()
}

fn check_new(m: NewMethod) -> Result<PhoneMethod, ApiError> {
    let kind = m.kind.ok_or_else(|| ApiError::missing_property("type"))?;
    if !METHOD_TYPES.contains(&kind.as_str()) {
        return Err(ApiError::invalid_property(
            "type",
            format!("No enum match for: \"{kind}\"; expected one of {}", METHOD_TYPES.join(", ")),
        ));
    }
    if kind != PHONE.as_str() {
        return Err(ApiError::bad_request(format!(
            "Callsign does not support authentication methods of type `{kind}` yet; only `phone` can be created."
        ))
        .code("unsupported_authentication_method"));
    }
    for (prop, v) in [
        ("email", &m.email),
        ("totp_secret", &m.totp_secret),
        ("key_id", &m.key_id),
        ("public_key", &m.public_key),
        ("relying_party_identifier", &m.relying_party_identifier),
    ] {
        if v.is_some() {
            return Err(ApiError::invalid_property(prop, "Property is not allowed for type phone"));
        }
    }
    let raw = m.phone_number.ok_or_else(|| ApiError::missing_property("phone_number"))?;
    if raw.chars().count() < 2 || raw.chars().count() > 30 {
        return Err(ApiError::invalid_property("phone_number", "String must be 2 to 30 characters"));
    }
    let phone = PhoneNumber::parse(&raw).map_err(|e| ApiError::invalid_property("phone_number", e))?;
    Ok(PhoneMethod {
        phone,
        preferred: check_preferred(m.preferred_authentication_method)?.unwrap_or(Channel::Sms),
        name: check_name(m.name)?,
    })
}

/// The phone destination policy (`callsign_core::destination`) applies to numbers added here as to those enrolled
/// by their users: a number its preferred channel may not reach is refused (400 `invalid_phone_number`), though
/// nothing is sent now, so that no method exists that every later send would refuse.
async fn check_destination(app: &AppState, methods: &[PhoneMethod]) -> Result<(), ApiError> {
    let policy = callsign_core::destination::load(app).await.map_err(ApiError::internal)?;
    for m in methods {
        if let Err(refused) = policy.check(&m.phone, m.preferred) {
            return Err(ApiError::invalid_property("phone_number", refused.message()).code("invalid_phone_number"));
        }
    }
    Ok(())
}

fn new_enrollment(app: &AppState, user_id: &str, m: PhoneMethod) -> Enrollment {
    let now = app.clock.now();
    Enrollment {
        id: format!("dev_{}", from_alphabet(app.rng.as_ref(), ALNUM, 16)),
        user_id: user_id.to_owned(),
        kind: PHONE,
        status: EnrollmentStatus::Confirmed,
        phone_number: Some(m.phone.e164().to_owned()),
        preferred_channel: Some(m.preferred),
        name: m.name,
        secret_hash: None,
        created_at: now,
        enrolled_at: Some(now),
        last_auth: None,
    }
}

fn already_exists() -> ApiError {
    ApiError::conflict("Authentication method already exists.").code("authentication_method_conflict")
}

async fn store_new(app: &AppState, e: &Enrollment) -> Result<(), ApiError> {
    match app.store.create_enrollment(e).await {
        Ok(()) => Ok(()),
        Err(StoreError::Conflict(_)) => Err(already_exists()),
        Err(err) => Err(err.into()),
    }
}

async fn create_method(
    m: Mgmt<CreateAuthMethods>,
    State(app): State<AppState>,
    Path(user_id): Path<String>,
    meta: RequestMeta,
    Body(body): Body<NewMethod>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let method = check_new(body)?;
    check_destination(&app, std::slice::from_ref(&method)).await?;
    require_user(&app, &user_id, super::users::not_found).await?;
    let existing = app.store.list_enrollments(&user_id).await?;
    if existing.iter().any(|e| e.kind == PHONE && e.phone_number.as_deref() == Some(method.phone.e164())) {
        return Err(already_exists());
    }
    let e = new_enrollment(&app, &user_id, method);
    store_new(&app, &e).await?;
    let details = json!({"action": "create", "authentication_method_id": format!("phone|{}", e.id)});
    record(&app, "gd_update_device_account", &meta, &m.caller.client_id, &user_id, details).await;
    Ok((StatusCode::CREATED, Json(render_method(&e, false))))
}

async fn replace_methods(
    m: Mgmt<UpdateAuthMethods>,
    State(app): State<AppState>,
    Path(user_id): Path<String>,
    meta: RequestMeta,
    Body(body): Body<Value>,
) -> Result<Json<Value>, ApiError> {
    let Value::Array(items) = body else {
        return Err(ApiError::bad_request("Payload validation error: 'Expected an array of authentication methods'."));
    };
    let mut methods = Vec::with_capacity(items.len());
    for item in items {
        let nm: NewMethod = serde_json::from_value(item)
            .map_err(|e| ApiError::bad_request(format!("Payload validation error: '{e}'.")))?;
        let pm = check_new(nm)?;
        if methods.iter().any(|p: &PhoneMethod| p.phone == pm.phone) {
            return Err(already_exists());
        }
        methods.push(pm);
    }
    check_destination(&app, &methods).await?;
    require_user(&app, &user_id, super::users::not_found).await?;
    // All or nothing: the old phone methods go and the new ones come in one transaction.
    let created: Vec<Enrollment> = methods.into_iter().map(|pm| new_enrollment(&app, &user_id, pm)).collect();
    let removed: Vec<String> = match app.store.replace_user_enrollments(&user_id, PHONE, &created).await {
        Ok(ids) => ids.into_iter().map(|id| format!("phone|{id}")).collect(),
        Err(StoreError::Conflict(_)) => return Err(already_exists()),
        Err(err) => return Err(err.into()),
    };
    let details = json!({
        "action": "replace",
        "removed": removed,
        "created": created.iter().map(|e| format!("phone|{}", e.id)).collect::<Vec<_>>(),
    });
    record(&app, "gd_update_device_account", &meta, &m.caller.client_id, &user_id, details).await;
    Ok(Json(Value::Array(created.iter().map(|e| render_method(e, false)).collect())))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MethodPatch {
    name: Option<String>,
    preferred_authentication_method: Option<String>,
}

async fn update_method(
    m: Mgmt<UpdateAuthMethods>,
    State(app): State<AppState>,
    Path((user_id, method_id)): Path<(String, String)>,
    meta: RequestMeta,
    Body(patch): Body<MethodPatch>,
) -> Result<Json<Value>, ApiError> {
    let name = check_name(patch.name)?;
    let preferred = check_preferred(patch.preferred_authentication_method)?;
    require_user(&app, &user_id, super::users::not_found).await?;
    let mut e = find(&app, &method_id, Some(&user_id)).await?.ok_or_else(method_not_found)?;
    if e.kind != PHONE {
        return Err(ApiError::bad_request(format!(
            "Authentication methods of type `{}` have nothing to update; only phone methods can be changed.",
            e.kind
        )));
    }
    let mut changed = Vec::new();
    if let Some(n) = name {
        e.name = Some(n);
        changed.push("name");
    }
    if let Some(p) = preferred {
        e.preferred_channel = Some(p);
        changed.push("preferred_authentication_method");
    }
    match app.store.update_enrollment(&e).await {
        Ok(()) => {}
        Err(StoreError::NotFound) => return Err(method_not_found()),
        Err(err) => return Err(err.into()),
    }
    let details =
        json!({"action": "update", "authentication_method_id": format!("phone|{}", e.id), "changed": changed});
    record(&app, "gd_update_device_account", &meta, &m.caller.client_id, &user_id, details).await;
    Ok(Json(render_method(&e, true)))
}

async fn delete_method(
    m: Mgmt<DeleteAuthMethods>,
    State(app): State<AppState>,
    Path((user_id, method_id)): Path<(String, String)>,
    meta: RequestMeta,
) -> Result<StatusCode, ApiError> {
    require_user(&app, &user_id, super::users::not_found).await?;
    let e = find(&app, &method_id, Some(&user_id)).await?.ok_or_else(method_not_found)?;
    match app.store.delete_enrollment(&e.id).await {
        Ok(()) => {}
        Err(StoreError::NotFound) => return Err(method_not_found()),
        Err(err) => return Err(err.into()),
    }
    let details = json!({"authentication_method_id": format!("{}|{}", e.kind, e.id), "type": e.kind});
    record(&app, "gd_unenroll", &meta, &m.caller.client_id, &user_id, details).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete every enrollment of a user, with one `gd_unenroll` event.
async fn delete_all(app: &AppState, meta: &RequestMeta, client_id: &str, user_id: &str) -> Result<(), ApiError> {
    require_user(app, user_id, super::users::not_found).await?;
    let n = app.store.delete_user_enrollments(user_id).await?;
    record(app, "gd_unenroll", meta, client_id, user_id, json!({"all": true, "count": n})).await;
    Ok(())
}

async fn delete_methods(
    m: Mgmt<DeleteAuthMethods>,
    State(app): State<AppState>,
    Path(user_id): Path<String>,
    meta: RequestMeta,
) -> Result<StatusCode, ApiError> {
    delete_all(&app, &meta, &m.caller.client_id, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_authenticators(
    m: Mgmt<DeleteGuardianEnrollments>,
    State(app): State<AppState>,
    Path(user_id): Path<String>,
    meta: RequestMeta,
) -> Result<StatusCode, ApiError> {
    delete_all(&app, &meta, &m.caller.client_id, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------------------------------------------------------
// POST /guardian/enrollments/ticket
// ------------------------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct TicketBody {
    user_id: Option<String>,
    email: Option<String>,
    send_mail: Option<bool>,
    email_locale: Option<String>,
    factor: Option<String>,
    allow_multiple_enrollments: Option<bool>,
}

const TICKET_FACTORS: &[&str] =
    &["push-notification", "phone", "email", "otp", "webauthn-roaming", "webauthn-platform"];

fn check_ticket(b: &TicketBody) -> Result<String, ApiError> {
    let user_id = b.user_id.clone().filter(|u| !u.is_empty()).ok_or_else(|| ApiError::missing_property("user_id"))?;
    if let Some(f) = &b.factor {
        if !TICKET_FACTORS.contains(&f.as_str()) {
            return Err(ApiError::invalid_property(
                "factor",
                format!("No enum match for: \"{f}\"; expected one of {}", TICKET_FACTORS.join(", ")),
            ));
        }
        if f != PHONE.as_str() {
            return Err(ApiError::bad_request(format!(
                "Callsign does not support enrolling the `{f}` factor yet; use `phone`."
            ))
            .code("unsupported_factor"));
        }
    }
    if b.send_mail == Some(true) {
        return Err(ApiError::bad_request(
            "Email delivery is not available in Callsign: send the ticket_url to the user yourself (send_mail must be false).",
        )
        .code("unsupported_send_mail"));
    }
    if b.email.as_ref().is_some_and(|e| e.chars().count() > 320) {
        return Err(ApiError::invalid_property("email", "String is too long (320 chars max)"));
    }
    if b.email_locale.as_ref().is_some_and(|e| e.chars().count() > 64) {
        return Err(ApiError::invalid_property("email_locale", "String is too long (64 chars max)"));
    }
    let _ = b.allow_multiple_enrollments;
    Ok(user_id)
}

async fn create_ticket(
    m: Mgmt<CreateEnrollmentTickets>,
    State(app): State<AppState>,
    meta: RequestMeta,
    Body(body): Body<TicketBody>,
) -> Result<Json<Value>, ApiError> {
    let user_id = check_ticket(&body)?;
    require_user(&app, &user_id, user_not_found).await?;
    let id = from_alphabet(app.rng.as_ref(), ALNUM, 32);
    let now = app.clock.now();
    let ticket = EnrollmentTicket {
        ticket_hash: token_hash(&id),
        user_id: user_id.clone(),
        created_at: now,
        expires_at: now.plus(TICKET_LIFETIME),
        used_at: None,
    };
    app.store.create_ticket(&ticket).await?;
    let details = json!({"expires_at": ticket.expires_at.to_rfc3339()});
    record(&app, "gd_enrollment_ticket_created", &meta, &m.caller.client_id, &user_id, details).await;
    Ok(Json(json!({
        "ticket_id": id,
        "ticket_url": format!("{}mfa/enrollment?ticket={id}", app.config.public_url),
    })))
}

#[cfg(test)]
mod tests {
    use callsign_domain::Timestamp;

    use super::*;

    fn phone(preferred: Channel) -> Enrollment {
        Enrollment {
            id: "dev_abcDEF0123456789".into(),
            user_id: "auth0|u1".into(),
            kind: PHONE,
            status: EnrollmentStatus::Confirmed,
            phone_number: Some("+442071838750".into()),
            preferred_channel: Some(preferred),
            name: Some("Desk".into()),
            secret_hash: None,
            created_at: Timestamp(1_767_225_600_000),
            enrolled_at: Some(Timestamp(1_767_225_600_000)),
            last_auth: None,
        }
    }

    #[test]
    fn ids_parse_with_any_prefix() {
        assert_eq!(parse_id("dev_abc"), Some(("dev_abc", None)));
        assert_eq!(parse_id("phone|dev_abc"), Some(("dev_abc", Some(PHONE))));
        assert_eq!(parse_id("sms|dev_abc"), Some(("dev_abc", Some(PHONE))));
        assert_eq!(parse_id("voice|dev_a-b_c"), Some(("dev_a-b_c", Some(PHONE))));
        assert_eq!(parse_id("recovery-code|dev_abc"), Some(("dev_abc", Some(RECOVERY_CODE))));
        for bad in ["", "dev_", "abc", "totp|dev_abc", "phone|", "phone|dev_a|b", "dev_a b", "email|dev_x"] {
            assert_eq!(parse_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn methods_render_like_the_wire() {
        let e = phone(Channel::Sms);
        assert_eq!(
            render_method(&e, false),
            json!({"id": "phone|dev_abcDEF0123456789", "type": "phone", "name": "Desk", "phone_number": "+442071838750",
                   "created_at": "2026-01-01T00:00:00.000Z", "preferred_authentication_method": "sms",
                   "authentication_methods": [{"id": "sms|dev_abcDEF0123456789", "type": "sms"},
                                              {"id": "voice|dev_abcDEF0123456789", "type": "voice"}]})
        );
        let r = render_method(&phone(Channel::Voice), true);
        assert_eq!(r["phone_number"], "XXXXXXXXX8750");
        assert_eq!(r["confirmed"], true);
        assert_eq!(r["authentication_methods"][0]["type"], "voice");
        assert_eq!(r["enrolled_at"], "2026-01-01T00:00:00.000Z");
        assert_eq!(
            render_user_enrollment(&e),
            json!({"id": "sms|dev_abcDEF0123456789", "status": "confirmed", "name": "Desk", "phone_number": "XXXXXXXXX8750",
                   "enrolled_at": "2026-01-01T00:00:00.000Z", "type": "sms", "auth_method": "sms"})
        );
    }

    #[test]
    fn new_methods_are_checked() {
        let ok = check_new(NewMethod {
            kind: Some("phone".into()),
            phone_number: Some("+1 415 555 2671".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(ok.phone.e164(), "+14155552671");
        assert_eq!(ok.preferred, Channel::Sms);
        let e = check_new(NewMethod { kind: Some("totp".into()), ..Default::default() }).unwrap_err();
        assert!(e.message.contains("does not support"), "{}", e.message);
        assert!(check_new(NewMethod { kind: Some("x".into()), ..Default::default() }).is_err());
        assert!(check_new(NewMethod { kind: Some("phone".into()), ..Default::default() }).is_err());
        let e = check_new(NewMethod {
            kind: Some("phone".into()),
            phone_number: Some("4155552671".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.message.contains("international format"), "{}", e.message);
        assert!(
            check_new(NewMethod {
                kind: Some("phone".into()),
                phone_number: Some("+14155552671".into()),
                preferred_authentication_method: Some("email".into()),
                ..Default::default()
            })
            .is_err()
        );
    }
}
