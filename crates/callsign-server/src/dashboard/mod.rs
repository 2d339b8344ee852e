//! The operator dashboard at `/dashboard/…`: server-rendered pages (no JavaScript needed) over the Management API.
//!
//! - **Operators** are users whose `app_metadata.roles` contains [`ROLE`] (`callsign:admin`). There is no default
//!   password: the first start writes a one-time setup link to the bootstrap credentials file
//!   (`dashboard_setup_url`), and `callsign admin dashboard-link` prints a fresh one. See [`auth`].
//! - **Sessions** are server-side (`web::session`, kind [`SESSION_KIND`]) behind the `cs_dash` cookie (HttpOnly,
//!   SameSite=Lax, Secure on https, path `/dashboard`), with an idle timeout ([`IDLE_SECS`]) and an absolute one
//!   ([`MAX_SESSION_SECS`]). Every form carries a CSRF token bound to the session; every POST checks it.
//! - **Every change goes through the Management API** in process ([`api::Api`]): the same validation, storage and
//!   log events (`gd_tenant_update`, `sapi`/`fapi`) as a call with a Management token.
//!
//! See docs/DASHBOARD.md.
pub mod api;
mod apps;
mod attack;
pub mod auth;
mod branding;
mod charts;
mod destinations;
mod inbox;
mod log_streams;
mod logs;
mod overview;
mod phone;
mod pumping;
mod settings;
mod test_message;
mod ui;
mod usage;
mod users;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use callsign_store::User;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::app::AppState;
use crate::http::extract::RequestMeta;
use crate::web::{cookies, csrf, session};

/// The role that makes a user an operator (in `app_metadata.roles`).
pub const ROLE: &str = "callsign:admin";
/// The client id the dashboard's Management API calls and sign-ins are recorded under.
pub const CLIENT_ID: &str = "callsign-dashboard";
pub const CLIENT_NAME: &str = "Callsign Dashboard";
/// The session: store kind, cookie, cookie path.
pub const SESSION_KIND: &str = "dashboard";
pub const COOKIE: &str = "cs_dash";
pub const COOKIE_PATH: &str = "/dashboard";
/// A session ends after this long without a request…
pub const IDLE_SECS: u64 = 30 * 60;
/// …and at the latest this long after sign-in.
pub const MAX_SESSION_SECS: u64 = 12 * 3600;
/// The CSRF purpose of every dashboard form.
pub const CSRF_PURPOSE: &str = "dashboard";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(overview::page))
        .route("/dashboard/", get(|| async { see_other("/dashboard") }))
        .route("/dashboard/login", get(auth::login_page).post(auth::login_submit))
        .route("/dashboard/logout", post(auth::logout))
        .route("/dashboard/setup/{token}", get(auth::setup_page).post(auth::setup_submit))
        .route("/dashboard/mfa/phone", get(phone::page))
        .route("/dashboard/mfa/phone/factor", post(phone::set_factor))
        .route("/dashboard/mfa/phone/message-types", post(phone::set_message_types))
        .route("/dashboard/mfa/phone/provider", post(phone::set_provider))
        .route("/dashboard/mfa/phone/routing", post(phone::set_routing))
        .route("/dashboard/mfa/phone/secrets", post(phone::create_secret))
        .route("/dashboard/mfa/phone/secrets/delete", post(phone::delete_secret))
        .route("/dashboard/mfa/phone/templates", post(phone::templates))
        .route("/dashboard/mfa/phone/test", post(phone::send_test))
        .route("/dashboard/mfa/phone/policy", post(phone::set_policy))
        .route("/dashboard/security/phone-destinations", get(destinations::page))
        .route("/dashboard/security/phone-destinations/{channel}", post(destinations::save))
        .route(pumping::PAGE, get(pumping::page))
        .route("/dashboard/security/sms-pumping/settings", post(pumping::save))
        .route("/dashboard/security/sms-pumping/release", post(pumping::release))
        .route("/dashboard/security/sms-pumping/trust", post(pumping::trust))
        .route("/dashboard/security/phone-usage", get(usage::page))
        .route("/dashboard/security/phone-usage/triggers", post(usage::save_trigger))
        .route("/dashboard/security/phone-usage/triggers/delete", post(usage::delete_trigger))
        .route("/dashboard/security/phone-usage/prices", post(usage::save_prices))
        .route("/dashboard/security/phone-usage/webhook", post(usage::save_webhook))
        .route("/dashboard/security/attack-protection", get(attack::page))
        .route("/dashboard/security/attack-protection/throttling", post(attack::set_throttling))
        .route("/dashboard/security/attack-protection/brute-force", post(attack::set_brute_force))
        .route("/dashboard/security/attack-protection/phone", post(attack::set_phone))
        .route("/dashboard/security/attack-protection/unblock", post(attack::unblock))
        .route("/dashboard/security/attack-protection/unblock-account", post(attack::unblock_account))
        .route("/dashboard/branding", get(branding::page).post(branding::save))
        .route("/dashboard/applications", get(apps::list))
        .route("/dashboard/applications/new", post(apps::create))
        .route("/dashboard/applications/{id}", get(apps::show).post(apps::update))
        .route("/dashboard/applications/{id}/rotate-secret", post(apps::rotate))
        .route("/dashboard/settings", get(settings::page))
        .route("/dashboard/settings/tenant", post(settings::set_tenant))
        .route("/dashboard/settings/recovery-code", post(settings::set_recovery))
        .route("/dashboard/users", get(users::list))
        .route("/dashboard/users/signup", post(users::set_signup))
        .route("/dashboard/users/{id}", get(users::show))
        .route("/dashboard/users/{id}/reset-mfa", post(users::reset_mfa))
        .route("/dashboard/logs", get(logs::list))
        .route("/dashboard/logs/{id}", get(logs::show))
        .route("/dashboard/inbox", get(inbox::list))
        .route("/dashboard/log-streams", get(log_streams::page).post(log_streams::create))
        .route("/dashboard/log-streams/{id}", post(log_streams::update))
        .route("/dashboard/log-streams/{id}/status", post(log_streams::set_status))
        .route("/dashboard/log-streams/{id}/delete", post(log_streams::delete))
        .layer(axum::middleware::from_fn(crate::web::security_headers))
        .layer(axum::middleware::from_fn(read_through))
}

/// Operators' pages read the configuration from the store, not a node's memory: what another node just saved is
/// what they show (`callsign_core::config_cache::read_through`).
async fn read_through(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    callsign_core::config_cache::read_through(next.run(req)).await
}

/// Whether `user` may use the dashboard: the operator role, and not blocked.
pub fn is_operator(user: &User) -> bool {
    !user.profile.blocked && has_role(&user.profile.app_metadata)
}

pub fn has_role(app_metadata: &serde_json::Map<String, Value>) -> bool {
    app_metadata.get("roles").and_then(Value::as_array).is_some_and(|r| r.iter().any(|x| x.as_str() == Some(ROLE)))
}

/// The dashboard "client" that sign-in events name (it is not stored: the dashboard is part of the server).
pub fn client() -> callsign_store::Client {
    callsign_store::Client {
        client_id: CLIENT_ID.to_owned(),
        secret_hash: String::new(),
        created_at: callsign_domain::Timestamp(0),
        updated_at: callsign_domain::Timestamp(0),
        spec: callsign_store::ClientSpec { name: CLIENT_NAME.to_owned(), ..Default::default() },
    }
}

// --- sessions -------------------------------------------------------------------------------------------------------

/// A dashboard session: anonymous (carries the sign-in form's CSRF binding) until an operator signs in.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct DashSession {
    pub user_id: Option<String>,
    /// Unix ms of the sign-in.
    pub signed_in_ms: i64,
    /// A one-off confirmation for the next page ("Saved.").
    pub flash: Option<String>,
}

fn session_cookie(app: &AppState, token: &str) -> String {
    cookies::set(COOKIE, token, COOKIE_PATH, MAX_SESSION_SECS, crate::web::secure_cookies(app))
}

fn clear_cookie(app: &AppState) -> String {
    cookies::clear(COOKIE, COOKIE_PATH, crate::web::secure_cookies(app))
}

/// Start a session for `state`; returns its token and the `Set-Cookie` value.
pub async fn start_session(app: &AppState, state: &DashSession) -> crate::BoxResult<(String, String)> {
    let token = session::create(app, SESSION_KIND, state, IDLE_SECS).await?;
    let cookie = session_cookie(app, &token);
    Ok((token, cookie))
}

/// The session behind the cookie, if it is alive.
pub async fn load_session(app: &AppState, headers: &HeaderMap) -> crate::BoxResult<Option<(String, DashSession)>> {
    let Some(token) = cookies::get(headers, COOKIE) else { return Ok(None) };
    Ok(session::load::<DashSession>(app, SESSION_KIND, &token).await?.map(|s| (token, s)))
}

/// A signed-in operator's request: the session (idle timer restarted, flash taken out), the operator, and the
/// request's parts (for the Management API's audit events).
pub struct Ctx {
    pub token: String,
    pub session: DashSession,
    pub user: User,
    pub parts: Parts,
    /// The flash message to show on this page.
    pub flash: Option<String>,
}

impl Ctx {
    pub fn csrf(&self, app: &AppState) -> String {
        csrf::token(app, CSRF_PURPOSE, &self.token)
    }

    pub fn email(&self) -> &str {
        self.user.email.as_deref().unwrap_or(&self.user.user_id)
    }

    pub fn meta(&self) -> RequestMeta {
        RequestMeta::from_parts(&self.parts.headers, &self.parts.extensions)
    }

    /// The Management API as this operator.
    pub async fn api(&self, app: &AppState) -> Result<api::Api, Response> {
        api::Api::new(app, &self.user.user_id, &self.parts).await.map_err(internal)
    }

    /// Remember `message` for the next page and answer a 303 to `location`.
    pub async fn flash_and_go(&mut self, app: &AppState, message: impl Into<String>, location: &str) -> Page {
        self.session.flash = Some(message.into());
        session::save(app, SESSION_KIND, &self.token, &self.session, IDLE_SECS).await.map_err(internal)?;
        Ok(see_other(location))
    }
}

/// Look up the signed-in operator; anything else is a redirect to the sign-in page.
async fn authenticate(app: &AppState, parts: &Parts) -> Result<Ctx, Response> {
    let to_login = || see_other_with("/dashboard/login", &[]);
    let Some((token, mut s)) = load_session(app, &parts.headers).await.map_err(internal)? else {
        return Err(to_login());
    };
    let Some(user_id) = s.user_id.clone() else { return Err(to_login()) };
    let now = app.clock.now().millis();
    let too_old = now.saturating_sub(s.signed_in_ms) > (MAX_SESSION_SECS as i64) * 1000;
    let user = app.store.get_user(&user_id).await.map_err(internal)?;
    let Some(user) = user.filter(|u| is_operator(u) && !too_old) else {
        // Expired, or no longer an operator (role removed, blocked, deleted): the session ends now.
        if let Err(e) = session::destroy(app, SESSION_KIND, &token).await {
            tracing::warn!(error = %e, "could not delete an ended dashboard session");
        }
        return Err(see_other_with("/dashboard/login", &[clear_cookie(app)]));
    };
    let flash = s.flash.take();
    // Restart the idle timer (and drop the flash, now shown).
    session::save(app, SESSION_KIND, &token, &s, IDLE_SECS).await.map_err(internal)?;
    Ok(Ctx { token, session: s, user, parts: parts.clone(), flash })
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        authenticate(app, parts).await
    }
}

/// A form posted by a signed-in operator, its CSRF token checked: the operator's context and the form.
pub struct Posted<T> {
    pub ctx: Ctx,
    pub form: T,
}

#[derive(Deserialize)]
struct CsrfField {
    csrf: Option<String>,
}

/// Parse a form body; a body that does not parse is a 400 page.
#[allow(clippy::result_large_err)] // the error is the page to answer with
pub fn parse_form<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Response> {
    serde_urlencoded::from_bytes::<T>(bytes).map_err(|e| {
        tracing::debug!(error = %e, "dashboard: a form did not parse");
        message_page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The form could not be read. Reload the page and try again.",
        )
    })
}

/// Whether the form's `csrf` field is this session's token (`purpose` and `binding` say which session).
pub fn csrf_ok(app: &AppState, purpose: &str, binding: &str, bytes: &[u8]) -> bool {
    let given = serde_urlencoded::from_bytes::<CsrfField>(bytes).ok().and_then(|f| f.csrf);
    csrf::verify(app, purpose, binding, given.as_deref())
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(req: Request, app: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let ctx = Ctx::from_request_parts(&mut parts, app).await?;
        let bytes = Bytes::from_request(Request::from_parts(parts, body), app)
            .await
            .map_err(|_| message_page(StatusCode::BAD_REQUEST, "Bad request", "The form could not be read."))?;
        if !csrf_ok(app, CSRF_PURPOSE, &ctx.token, &bytes) {
            return Err(forbidden());
        }
        let form = parse_form::<T>(&bytes)?;
        Ok(Posted { ctx, form })
    }
}

// --- responses ------------------------------------------------------------------------------------------------------

/// What a dashboard page handler answers: the page, or (`Err`) the page of whatever stopped it (the sign-in
/// redirect, a refused form, an internal error), so that a step can end the request with `?`.
pub type Page = Result<Response, Response>;

/// 303 See Other to `location` (after a form, and for pages that need a sign-in).
pub fn see_other(location: &str) -> Response {
    see_other_with(location, &[])
}

pub fn see_other_with(location: &str, set_cookies: &[String]) -> Response {
    let Ok(loc) = HeaderValue::from_str(location) else {
        return internal("a redirect location is not a valid header value");
    };
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut().insert(LOCATION, loc);
    for c in set_cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            r.headers_mut().append(SET_COOKIE, v);
        }
    }
    r
}

/// A page outside the signed-in shell (errors, sign-in).
pub fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    (status, ui::bare(title, ui::message(title, message))).into_response()
}

/// The answer to a form without a valid CSRF token.
pub fn forbidden() -> Response {
    message_page(
        StatusCode::FORBIDDEN,
        "Request refused",
        "This form has expired or did not come from this dashboard. Go back, reload the page and try again.",
    )
}

/// Log the cause; show the opaque error page.
pub fn internal(cause: impl std::fmt::Display) -> Response {
    tracing::error!(error = %cause, "dashboard page failed");
    message_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The request could not be completed. Try again; if it keeps failing, the server log has the details.",
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn the_role_is_read_from_app_metadata_roles() {
        let m = |v: Value| v.as_object().cloned().unwrap_or_default();
        use serde_json::Value;
        assert!(super::has_role(&m(json!({"roles": ["x", "callsign:admin"]}))));
        assert!(!super::has_role(&m(json!({"roles": "callsign:admin"}))));
        assert!(!super::has_role(&m(json!({"role": ["callsign:admin"]}))));
        assert!(!super::has_role(&m(json!({}))));
    }
}
