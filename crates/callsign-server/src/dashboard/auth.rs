//! Operator sign-in: the one-time setup link, `/dashboard/login`, sign-out.
//!
//! - The setup link (`/dashboard/setup/<token>`, a `web::session` transient of kind [`SETUP_KIND`], 24 hours, taken
//!   atomically on use) lets whoever holds it create an operator (email + password, under the user service's
//!   password policy), or make an existing user an operator after proving that user's password; then it signs
//!   them in. The first start writes one to the bootstrap credentials file; `callsign admin dashboard-link` prints
//!   a fresh one.
//! - `/dashboard/login` accepts users whose `app_metadata.roles` contains `callsign:admin`. Unknown users, wrong
//!   passwords and non-operators all cost one argon2 verification and all see "Wrong email or password."; the
//!   events are those of the password grant (`fu`, `fp`, `f`, `s`) with client `callsign-dashboard`. Attempts are
//!   limited per IP address (a token bucket in the store).
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use callsign_domain::user::{Email, check_password_policy};
use callsign_store::{BucketSpec, User};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    CSRF_PURPOSE, DashSession, Page, ROLE, client, csrf_ok, forbidden, internal, is_operator, load_session,
    message_page, parse_form, see_other_with, start_session, ui,
};
use crate::app::AppState;
use crate::http::extract::RequestMeta;
use crate::http::management::users::DB_CONNECTION;
use crate::http::oauth::{self, LoginFailure};
use crate::web::{csrf, session};
use callsign_core::identity::events::{self, EventCtx};

/// The setup link: store kind, lifetime, CSRF purpose.
pub const SETUP_KIND: &str = "dashboard_setup";
pub const SETUP_TTL_SECS: u64 = 24 * 3600;
const SETUP_CSRF: &str = "dashboard-setup";
/// Sign-in attempts per IP address: a burst of 20, then one more every 30 seconds.
const LOGIN_BUCKET: BucketSpec = BucketSpec { capacity: 20, refill_every_ms: 30_000 };

const WRONG: &str = "Wrong email or password.";
const BUSY: &str = "Too many sign-ins are in progress. Wait a moment and try again.";
const POLICY_HINT: &str =
    "Use at least 8 characters, with three of: lower-case letters, upper-case letters, digits, other characters.";

#[derive(Debug, Serialize, Deserialize)]
struct SetupLink {
    /// Unix ms; kept so a link can be put back (with its remaining life) if using it fails half-way.
    expires_ms: i64,
}

/// Create a one-time setup link (24 hours) and return its URL.
pub async fn create_setup_link(app: &AppState) -> crate::BoxResult<String> {
    let expires_ms = app.clock.now().millis() + (SETUP_TTL_SECS as i64) * 1000;
    let token = session::create(app, SETUP_KIND, &SetupLink { expires_ms }, SETUP_TTL_SECS).await?;
    Ok(format!("{}dashboard/setup/{token}", app.config.public_url))
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct Credentials {
    email: String,
    password: String,
}

async fn body_bytes(req: Request) -> Result<(axum::http::request::Parts, Bytes), Response> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map_err(|_| message_page(StatusCode::BAD_REQUEST, "Bad request", "The form could not be read."))?;
    Ok((parts, bytes))
}

// --- sign-in --------------------------------------------------------------------------------------------------------

fn login_form(app: &AppState, token: &str, email: &str, error: Option<&str>, info: Option<&str>) -> Markup {
    ui::bare(
        "Sign in",
        html! {
            h1 { "Callsign Dashboard" }
            p class="muted" { "Sign in as an operator (a user with the " code { "callsign:admin" } " role)." }
            @if let Some(i) = info {
                div class="alert ok" role="status" { (i) }
            }
            (ui::error(error))
            form method="post" action="/dashboard/login" {
                (csrf::field(app, CSRF_PURPOSE, token))
                label for="email" { "Email" }
                input id="email" name="email" type="email" autocomplete="username" required value=(email);
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
        },
    )
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct LoginQuery {
    signed_out: Option<String>,
}

pub async fn login_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<LoginQuery>,
) -> Page {
    let existing = load_session(&app, &headers).await.map_err(internal)?;
    let (token, cookie) = match existing {
        Some((_, s)) if s.user_id.is_some() => return Ok(super::see_other("/dashboard")),
        Some((token, _)) => (token, None),
        None => {
            let (t, c) = start_session(&app, &DashSession::default()).await.map_err(internal)?;
            (t, Some(c))
        }
    };
    let info = q.signed_out.is_some().then_some("You have signed out.");
    let mut r = login_form(&app, &token, "", None, info).into_response();
    if let Some(c) = cookie
        && let Ok(v) = axum::http::HeaderValue::from_str(&c)
    {
        r.headers_mut().append(axum::http::header::SET_COOKIE, v);
    }
    Ok(r)
}

pub async fn login_submit(State(app): State<AppState>, req: Request) -> Page {
    let (parts, bytes) = body_bytes(req).await?;
    let meta = RequestMeta::from_parts(&parts.headers, &parts.extensions);
    let Some((token, _)) = load_session(&app, &parts.headers).await.map_err(internal)? else {
        return Err(forbidden());
    };
    if !csrf_ok(&app, CSRF_PURPOSE, &token, &bytes) {
        return Err(forbidden());
    }
    let f: Credentials = parse_form(&bytes)?;
    let again =
        |status: StatusCode, msg: &str| (status, login_form(&app, &token, &f.email, Some(msg), None)).into_response();
    if f.email.trim().is_empty() || f.password.is_empty() {
        return Ok(again(StatusCode::BAD_REQUEST, "Enter your email and password."));
    }
    let ip = meta.ip.clone().unwrap_or_else(|| "unknown".into());
    let bucket = app
        .limiter
        .bucket_take(&format!("dashboard-login:{ip}"), LOGIN_BUCKET, app.clock.now())
        .await
        .map_err(internal)?;
    if !bucket.allowed {
        return Ok(again(StatusCode::TOO_MANY_REQUESTS, "Too many sign-in attempts. Wait a minute and try again."));
    }
    let dash = client();
    let user = match oauth::check_password(&app, &meta, &dash, &f.email, &f.password).await {
        Ok(u) => u,
        Err(LoginFailure::WrongCredentials | LoginFailure::Blocked) => {
            return Ok(again(StatusCode::BAD_REQUEST, WRONG));
        }
        Err(LoginFailure::Busy) => return Ok(again(StatusCode::SERVICE_UNAVAILABLE, BUSY)),
        Err(LoginFailure::IpBlocked) => {
            return Ok(again(StatusCode::TOO_MANY_REQUESTS, callsign_core::attack::BLOCKED));
        }
        Err(LoginFailure::AccountBlocked) => {
            return Ok(again(StatusCode::TOO_MANY_REQUESTS, callsign_core::attack::ACCOUNT_BLOCKED));
        }
        Err(LoginFailure::Internal(e)) => return Err(internal(e.description)),
    };
    if !is_operator(&user) {
        let ctx = EventCtx {
            client_id: Some(dash.client_id.clone()),
            client_name: Some(dash.spec.name.clone()),
            user_id: Some(user.user_id.clone()),
            user_name: Some(f.email.clone()),
            connection: Some(DB_CONNECTION.to_owned()),
            description: Some(format!("not a dashboard operator (the {ROLE} role is missing)")),
            ..Default::default()
        };
        events::record(&app, "f", &meta, ctx).await;
        return Ok(again(StatusCode::BAD_REQUEST, WRONG));
    }
    if let Err(e) = session::destroy(&app, super::SESSION_KIND, &token).await {
        tracing::warn!(error = %e, "could not delete the sign-in session");
    }
    sign_in(&app, &meta, &user).await
}

/// Start an operator's session (a new token: nothing from before the sign-in carries over) and go to the dashboard.
async fn sign_in(app: &AppState, meta: &RequestMeta, user: &User) -> Page {
    let state =
        DashSession { user_id: Some(user.user_id.clone()), signed_in_ms: app.clock.now().millis(), flash: None };
    let (_, cookie) = start_session(app, &state).await.map_err(internal)?;
    app.store.record_login(&user.user_id, app.clock.now()).await.map_err(internal)?;
    oauth::record_login_success(app, meta, &client(), user, json!({"dashboard": true})).await;
    Ok(see_other_with("/dashboard", &[cookie]))
}

pub async fn logout(State(app): State<AppState>, req: Request) -> Page {
    let (parts, bytes) = body_bytes(req).await?;
    let Some((token, _)) = load_session(&app, &parts.headers).await.map_err(internal)? else {
        return Ok(super::see_other("/dashboard/login"));
    };
    if !csrf_ok(&app, CSRF_PURPOSE, &token, &bytes) {
        return Err(forbidden());
    }
    session::destroy(&app, super::SESSION_KIND, &token).await.map_err(internal)?;
    Ok(see_other_with("/dashboard/login?signed_out=1", &[super::clear_cookie(&app)]))
}

// --- the setup link -------------------------------------------------------------------------------------------------

fn gone() -> Response {
    message_page(
        StatusCode::NOT_FOUND,
        "Setup link not valid",
        "This setup link has expired or has already been used. Run `callsign admin dashboard-link` on the server \
         for a new one.",
    )
}

fn setup_form(app: &AppState, token: &str, email: &str, error: Option<&str>) -> Markup {
    ui::bare(
        "Set up an operator",
        html! {
            h1 { "Set up an operator" }
            p { "This one-time link makes you an operator of this Callsign server. Enter the email and password you \
                 will sign in with. If a user with this email exists, enter that user's current password: it will be \
                 given the " code { "callsign:admin" } " role." }
            (ui::error(error))
            form method="post" action={ "/dashboard/setup/" (token) } {
                (csrf::field(app, SETUP_CSRF, token))
                label for="email" { "Email" }
                input id="email" name="email" type="email" autocomplete="username" required value=(email);
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="new-password" required
                    aria-describedby="password-hint";
                p id="password-hint" class="muted" { (POLICY_HINT) }
                button type="submit" { "Create operator and sign in" }
            }
        },
    )
}

pub async fn setup_page(State(app): State<AppState>, Path(token): Path<String>) -> Response {
    match session::load::<SetupLink>(&app, SETUP_KIND, &token).await {
        Ok(Some(_)) => setup_form(&app, &token, "", None).into_response(),
        Ok(None) => gone(),
        Err(e) => internal(e),
    }
}

pub async fn setup_submit(State(app): State<AppState>, Path(token): Path<String>, req: Request) -> Page {
    let (parts, bytes) = body_bytes(req).await?;
    if !csrf_ok(&app, SETUP_CSRF, &token, &bytes) {
        return Err(forbidden());
    }
    if session::load::<SetupLink>(&app, SETUP_KIND, &token).await.map_err(internal)?.is_none() {
        return Err(gone());
    }
    let f: Credentials = parse_form(&bytes)?;
    let again = |msg: &str| (StatusCode::BAD_REQUEST, setup_form(&app, &token, &f.email, Some(msg))).into_response();
    let Ok(email) = Email::parse(&f.email) else { return Ok(again("Enter a valid email address.")) };
    let meta = RequestMeta::from_parts(&parts.headers, &parts.extensions);
    let existing = app.store.get_user_by_email(email.as_str()).await.map_err(internal)?;
    match &existing {
        Some(_) => match oauth::check_password(&app, &meta, &client(), email.as_str(), &f.password).await {
            Ok(_) => {}
            Err(LoginFailure::WrongCredentials) => {
                return Ok(again(
                    "A user with this email exists, and this is not its password. Enter that user's current \
                     password to make it an operator.",
                ));
            }
            Err(LoginFailure::Blocked) => return Ok(again("This user is blocked; unblock it first.")),
            Err(LoginFailure::Busy) => return Ok(again(BUSY)),
            Err(LoginFailure::IpBlocked) => return Ok(again(callsign_core::attack::BLOCKED)),
            Err(LoginFailure::AccountBlocked) => return Ok(again(callsign_core::attack::ACCOUNT_BLOCKED)),
            Err(LoginFailure::Internal(e)) => return Err(internal(e.description)),
        },
        None => {
            if let Err(e) = check_password_policy(&f.password) {
                return Ok(again(&super::api::plain_words(&e.to_string())));
            }
        }
    }
    // Use the link up (atomically: of two submissions at once, one wins).
    let Some(link) = session::take::<SetupLink>(&app, SETUP_KIND, &token).await.map_err(internal)? else {
        return Err(gone());
    };
    let api =
        super::api::Api::new(&app, &format!("{}@setup-link", super::CLIENT_ID), &parts).await.map_err(internal)?;
    let result = match &existing {
        Some(u) => {
            let mut roles: Vec<Value> =
                u.profile.app_metadata.get("roles").and_then(Value::as_array).cloned().unwrap_or_default();
            if !roles.iter().any(|r| r.as_str() == Some(ROLE)) {
                roles.push(json!(ROLE));
            }
            let path = format!("/users/{}", super::api::seg(&u.user_id));
            api.patch(&path, &json!({"app_metadata": {"roles": roles}})).await
        }
        None => {
            let body = json!({
                "connection": DB_CONNECTION,
                "email": email.as_str(),
                "password": f.password,
                "app_metadata": {"roles": [ROLE]},
            });
            api.post("/users", &body).await
        }
    };
    let user_id = match result {
        Ok(v) => v.get("user_id").and_then(Value::as_str).unwrap_or_default().to_owned(),
        Err(e) => {
            // Put the link back with the life it had left, so the operator can try again.
            let left_ms = link.expires_ms - app.clock.now().millis();
            if left_ms > 1000
                && let Err(e) = session::save(&app, SETUP_KIND, &token, &link, (left_ms / 1000) as u64).await
            {
                tracing::warn!(error = %e, "could not restore a setup link after a failed use");
            }
            return Ok(again(&e.message));
        }
    };
    let user = app.store.get_user(&user_id).await.map_err(internal)?;
    let Some(user) = user.filter(is_operator) else {
        return Err(internal("the operator created through the setup link cannot be read back"));
    };
    tracing::info!(user_id = %user.user_id, "a setup link made an operator");
    sign_in(&app, &meta, &user).await
}
