//! The pages of a login transaction: password, phone enrollment, code entry (resend, call me instead, recovery
//! code), the recovery code shown once, and the end: an authorization code sent to the application (or, for an
//! enrollment ticket, the "done" page).
//!
//! GETs show the page of the transaction's current step (any other page redirects there); POSTs check the CSRF
//! token, do the step through the MFA service functions, and redirect to the next page (or show the same page
//! with the error).
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use callsign_domain::phone::{PhoneNumber, mask};
use callsign_store::{Channel, Client, Enrollment, EnrollmentKind, EnrollmentStatus, User};
use serde::Deserialize;
use serde_json::json;

use super::authorize::SsoSession;
use super::pages::{self, CodeView, Ctx, EnrollView};
use super::token::AuthzCode;
use super::{Flash, Page, SealedText, SentCode, Step, Tx, countries, texts};
use crate::app::AppState;
use crate::http::error::OAuthError;
use crate::http::extract::RequestMeta;
use crate::http::oauth::{self, LoginFailure};
use crate::web::{cookies, csrf, session};
use callsign_core::guardian::GuardianConfig;
use callsign_core::mfa::{self, MfaError, Subject};

/// Every field any login form posts.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct Fields {
    pub csrf: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
    pub country: Option<String>,
    pub phone: Option<String>,
    pub channel: Option<String>,
    pub code: Option<String>,
    pub recovery_code: Option<String>,
}

// --- the transaction around each request ---------------------------------------------------------------------------

fn expired(headers: &HeaderMap) -> Response {
    let lang = super::negotiate(None, headers);
    super::error_page(StatusCode::BAD_REQUEST, lang, texts::of(lang).session_expired)
}

/// The browser's transaction, at one of the `steps` (else a redirect to the page of the step it is at).
async fn get_tx(app: &AppState, headers: &HeaderMap, steps: &[Step]) -> Result<Tx, Response> {
    let tx = match super::load_tx(app, headers).await {
        Ok(Some(tx)) => tx,
        Ok(None) => return Err(expired(headers)),
        Err(e) => return Err(super::internal(super::negotiate(None, headers), e)),
    };
    if !steps.contains(&tx.state.step) {
        return Err(super::redirect(StatusCode::SEE_OTHER, tx.state.step.path(), &[]));
    }
    Ok(tx)
}

/// As [`get_tx`], for a form post: the form must parse and carry this transaction's CSRF token (else 403).
pub(super) async fn post_tx(
    app: &AppState,
    headers: &HeaderMap,
    form: Result<Form<Fields>, FormRejection>,
    steps: &[Step],
) -> Result<(Tx, Fields), Response> {
    let tx = match super::load_tx(app, headers).await {
        Ok(Some(tx)) => tx,
        Ok(None) => return Err(expired(headers)),
        Err(e) => return Err(super::internal(super::negotiate(None, headers), e)),
    };
    let lang = tx.state.lang.clone();
    let Ok(Form(fields)) = form else {
        return Err(super::error_page(StatusCode::BAD_REQUEST, &lang, tx.state.texts().csrf_failed));
    };
    if !csrf::verify(app, super::CSRF_PURPOSE, &tx.token, fields.csrf.as_deref()) {
        tracing::info!("login form refused: bad or missing CSRF token");
        return Err(super::error_page(StatusCode::FORBIDDEN, &lang, tx.state.texts().csrf_failed));
    }
    if !steps.contains(&tx.state.step) {
        return Err(super::redirect(StatusCode::SEE_OTHER, tx.state.step.path(), &[]));
    }
    Ok((tx, fields))
}

fn ctx<'a>(app: &AppState, tx: &'a Tx) -> Ctx<'a> {
    Ctx { lang: &tx.state.lang, t: tx.state.texts(), csrf: tx.csrf(app) }
}

async fn save_and_go(app: &AppState, tx: &Tx, status: StatusCode, step: Step) -> Page {
    tx.save(app).await.map_err(|e| super::internal(&tx.state.lang, e))?;
    Ok(super::redirect(status, step.path(), &[]))
}

async fn tx_user(app: &AppState, headers: &HeaderMap, tx: &Tx) -> Result<User, Response> {
    let Some(id) = tx.state.user_id.as_deref() else { return Err(expired(headers)) };
    match app.store.get_user(id).await {
        Ok(Some(u)) if !u.profile.blocked => Ok(u),
        Ok(_) => Err(expired(headers)),
        Err(e) => Err(super::internal(&tx.state.lang, e)),
    }
}

async fn tx_client(app: &AppState, tx: &Tx) -> Result<Option<Client>, Response> {
    let Some(a) = &tx.state.authz else { return Ok(None) };
    match app.store.get_client(&a.client_id).await {
        Ok(Some(c)) => Ok(Some(c)),
        Ok(None) => Err(super::error_page(StatusCode::BAD_REQUEST, &tx.state.lang, tx.state.texts().bad_client)),
        Err(e) => Err(super::internal(&tx.state.lang, e)),
    }
}

async fn tx_enrollment(app: &AppState, headers: &HeaderMap, tx: &Tx, user: &User) -> Result<Enrollment, Response> {
    let Some(id) = tx.state.enrollment_id.as_deref() else { return Err(expired(headers)) };
    match app.store.get_enrollment(id).await {
        Ok(Some(e)) if e.user_id == user.user_id && e.kind == EnrollmentKind::Phone => Ok(e),
        Ok(_) => Err(expired(headers)),
        Err(e) => Err(super::internal(&tx.state.lang, e)),
    }
}

async fn guardian(tx: &Tx, app: &AppState) -> Result<GuardianConfig, Response> {
    GuardianConfig::load(app).await.map_err(|e| super::internal(&tx.state.lang, e))
}

/// The message types the tenant enabled, in a stable order (SMS first).
fn channels(g: &GuardianConfig) -> Vec<String> {
    let v: Vec<String> = ["sms", "voice"].iter().filter(|c| g.channel_enabled(c)).map(|c| (*c).to_owned()).collect();
    if v.is_empty() { vec!["sms".to_owned()] } else { v }
}

fn now_secs(app: &AppState) -> i64 {
    app.clock.now().seconds()
}

fn cooldown_left(app: &AppState, tx: &Tx) -> i64 {
    let Some(last) = tx.state.last_sent_ms else { return 0 };
    let left_ms = last + super::RESEND_COOLDOWN_SECS * 1000 - app.clock.now().millis();
    if left_ms <= 0 { 0 } else { (left_ms + 999) / 1000 }
}

fn add_amr(tx: &mut Tx, method: &str) {
    if !tx.state.amr.iter().any(|m| m == method) {
        tx.state.amr.push(method.to_owned());
    }
}

// --- after the password: the second factor, or the end --------------------------------------------------------------

/// Whether this login still needs a second factor: the tenant requires one (the same rule as the password grant)
/// and it was not done in this transaction or the SSO session it continues.
pub async fn needs_second_factor(app: &AppState, amr: &[String]) -> crate::BoxResult<bool> {
    let g = GuardianConfig::load(app).await?;
    Ok(g.mfa_required() && !amr.iter().any(|m| m == "mfa"))
}

/// The first factor is done (a password, or an SSO session): challenge the enrolled phone, ask to enroll one, or
/// finish. `status` is 303 after a form, 302 from `/authorize`.
pub async fn after_first_factor(
    app: &AppState,
    meta: &RequestMeta,
    tx: &mut Tx,
    user: &User,
    status: StatusCode,
) -> Page {
    let lang = tx.state.lang.clone();
    if !needs_second_factor(app, &tx.state.amr).await.map_err(|e| super::internal(&lang, e))? {
        return finish(app, meta, tx, user, status).await;
    }
    let g = guardian(tx, app).await?;
    let enrollments = app.store.list_enrollments(&user.user_id).await.map_err(|e| super::internal(&lang, e))?;
    let Some(phone) =
        enrollments.into_iter().find(|e| e.kind == EnrollmentKind::Phone && e.status == EnrollmentStatus::Confirmed)
    else {
        tx.state.step = Step::Enroll;
        return save_and_go(app, tx, status, Step::Enroll).await;
    };
    let enabled = channels(&g);
    let channel = phone
        .preferred_channel
        .map(|c| c.as_str().to_owned())
        .filter(|c| enabled.contains(c))
        .unwrap_or_else(|| enabled[0].clone());
    tx.state.enrollment_id = Some(phone.id.clone());
    let client = tx_client(app, tx).await?;
    send(app, meta, tx, user, client.as_ref(), &phone, &channel).await?;
    tx.state.step = Step::Code;
    save_and_go(app, tx, status, Step::Code).await
}

/// Send a code on `channel`; a limit becomes the next page's message.
async fn send(
    app: &AppState,
    meta: &RequestMeta,
    tx: &mut Tx,
    user: &User,
    client: Option<&Client>,
    enrollment: &Enrollment,
    channel: &str,
) -> Result<(), Response> {
    let binding = tx.binding();
    let subject = Subject { user, client, binding: &binding, mfa_token: None };
    let g = match GuardianConfig::load(app).await {
        Ok(g) => g,
        Err(e) => return Err(super::internal(&tx.state.lang, e)),
    };
    // One of `channels(g)`: always a channel.
    let ch = match channel.parse::<Channel>() {
        Ok(ch) => ch,
        Err(e) => return Err(super::internal(&tx.state.lang, e)),
    };
    match mfa::send_challenge(app, meta, subject, enrollment, ch, &g, Some(&tx.state.lang)).await {
        Ok(oob_code) => {
            let to = enrollment.phone_number.as_deref().map(mask).unwrap_or_default();
            tx.state.sent = Some(SentCode { oob_code, channel: channel.to_owned(), to });
            tx.state.last_sent_ms = Some(app.clock.now().millis());
            Ok(())
        }
        Err(MfaError::TooManySms | MfaError::TooManyFromNetwork) => {
            tx.state.flash = Some(Flash::TooManySms);
            Ok(())
        }
        Err(MfaError::TooManyVoice) => {
            tx.state.flash = Some(Flash::TooManyVoice);
            Ok(())
        }
        Err(e) => Err(super::failed(&tx.state.lang, OAuthError::from(e))),
    }
}

/// The login is complete: for `/authorize`, count the login, start the SSO session, and send an authorization code
/// to the application; for an enrollment ticket, show "done".
async fn finish(app: &AppState, meta: &RequestMeta, tx: &mut Tx, user: &User, status: StatusCode) -> Page {
    let lang = tx.state.lang.clone();
    let Some(a) = tx.state.authz.clone() else {
        tx.state.step = Step::Done;
        tx.state.sent = None;
        return save_and_go(app, tx, status, Step::Done).await;
    };
    let Some(client) = tx_client(app, tx).await? else {
        return Err(super::error_page(StatusCode::BAD_REQUEST, &lang, tx.state.texts().bad_client));
    };
    // The transaction ends here, taken from the store in one statement: of two requests finishing the same login at
    // once (a double submit), exactly one gets an authorization code.
    let taken = session::take::<serde_json::Value>(app, super::TX_KIND, &tx.token)
        .await
        .map_err(|e| super::internal(&lang, e))?;
    if taken.is_none() {
        return Err(super::error_page(StatusCode::BAD_REQUEST, &lang, tx.state.texts().session_expired));
    }
    let now = app.clock.now();
    let auth_time = tx.state.auth_time.unwrap_or_else(|| now.seconds());
    let amr = tx.state.amr.clone();
    app.store.record_login(&user.user_id, now).await.map_err(|e| super::internal(&lang, e))?;
    oauth::record_login_success(app, meta, &client, user, json!({"amr": amr})).await;
    let secure = crate::web::secure_cookies(app);
    let sso = SsoSession { user_id: user.user_id.clone(), auth_time, amr: amr.clone() };
    // The SSO session lasts SSO_TTL_SECS from the password, not from its latest use: reusing it for another
    // application does not extend it.
    let ttl = sso_ttl(auth_time, now.seconds());
    let sso_token = session::create(app, super::SSO_KIND, &sso, ttl).await.map_err(|e| super::internal(&lang, e))?;
    let sso_cookie = cookies::set(super::SSO_COOKIE, &sso_token, "/", ttl, secure);
    let code = if a.response_type.has_code() {
        let code = AuthzCode {
            client_id: a.client_id.clone(),
            redirect_uri: a.redirect_uri.clone(),
            user_id: user.user_id.clone(),
            scope: a.scope.clone(),
            audience: a.audience.clone(),
            nonce: a.nonce.clone(),
            code_challenge: a.code_challenge.clone(),
            auth_time,
            amr: amr.clone(),
        };
        Some(
            session::create(app, super::CODE_KIND, &code, super::CODE_TTL_SECS)
                .await
                .map_err(|e| super::internal(&lang, e))?,
        )
    } else {
        None
    };
    let id_token = if a.response_type.has_id_token() {
        let login = callsign_core::grants::FrontChannelLogin {
            scope: &a.scope,
            nonce: a.nonce.as_deref().unwrap_or(""),
            auth_time,
            amr: &amr,
            code: code.as_deref(),
        };
        let token = callsign_core::grants::front_channel_id_token(app, &client, user, &login)
            .await
            .map_err(|e| super::internal(&lang, e.description))?;
        Some(token)
    } else {
        None
    };
    let mut params = Vec::new();
    if let Some(c) = code.as_deref() {
        params.push(("code", c));
    }
    if let Some(t) = id_token.as_deref() {
        params.push(("id_token", t));
    }
    if let Some(s) = a.state.as_deref() {
        params.push(("state", s));
    }
    let cookies = [sso_cookie, cookies::clear(super::TX_COOKIE, super::TX_PATH, secure)];
    Ok(super::respond::send(&a.target(), &params, status, &cookies, &lang))
}

/// What is left of an SSO session that started at `auth_time` (unix seconds), at `now`; at least one second.
fn sso_ttl(auth_time: i64, now: i64) -> u64 {
    let left = i64::try_from(super::SSO_TTL_SECS).unwrap_or(i64::MAX).saturating_sub(now.saturating_sub(auth_time));
    u64::try_from(left).unwrap_or(0).max(1)
}

// --- login ------------------------------------------------------------------------------------------------------------

fn render_login(app: &AppState, tx: &Tx, status: StatusCode, email: &str, error: Option<&str>, open: bool) -> Response {
    let name = tx.state.authz.as_ref().map(|a| a.client_name.as_str()).unwrap_or("");
    super::page(status, pages::login(&ctx(app, tx), name, email, error, open))
}

/// Whether the database connection takes public sign-ups (a login page links to the sign-up page then). An
/// unreadable setting reads as closed.
pub async fn signup_open(app: &AppState) -> bool {
    match callsign_core::connections::load(app).await {
        Ok(c) => !c.options.disable_signup,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the database connection; sign-up shown as closed");
            false
        }
    }
}

/// Move the transaction to `step` (between the login and sign-up pages) and save it.
async fn switch_to(app: &AppState, tx: &mut Tx, step: Step) -> Result<(), Response> {
    if tx.state.step != step {
        tx.state.step = step;
        tx.save(app).await.map_err(|e| super::internal(&tx.state.lang, e))?;
    }
    Ok(())
}

pub async fn login_page(State(app): State<AppState>, headers: HeaderMap) -> Page {
    let mut tx = get_tx(&app, &headers, &[Step::Login, Step::Signup]).await?;
    switch_to(&app, &mut tx, Step::Login).await?;
    let hint = tx.state.login_hint.clone().unwrap_or_default();
    let open = signup_open(&app).await;
    Ok(render_login(&app, &tx, StatusCode::OK, &hint, None, open))
}

pub async fn login_submit(
    State(app): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    form: Result<Form<Fields>, FormRejection>,
) -> Page {
    let (mut tx, f) = post_tx(&app, &headers, form, &[Step::Login]).await?;
    let t = tx.state.texts();
    let open = signup_open(&app).await;
    let email = f.email.unwrap_or_default();
    let password = f.password.unwrap_or_default();
    if email.trim().is_empty() || password.is_empty() {
        return Ok(render_login(&app, &tx, StatusCode::BAD_REQUEST, &email, Some(t.missing_credentials), open));
    }
    let Some(client) = tx_client(&app, &tx).await? else { return Err(expired(&headers)) };
    let user = match oauth::check_password(&app, &meta, &client, &email, &password).await {
        Ok(u) => u,
        Err(LoginFailure::WrongCredentials) => {
            return Ok(render_login(&app, &tx, StatusCode::BAD_REQUEST, &email, Some(t.wrong_credentials), open));
        }
        Err(LoginFailure::Blocked) => {
            return Ok(render_login(&app, &tx, StatusCode::UNAUTHORIZED, &email, Some(t.blocked), open));
        }
        Err(LoginFailure::IpBlocked) => {
            return Ok(render_login(&app, &tx, StatusCode::TOO_MANY_REQUESTS, &email, Some(t.ip_blocked), open));
        }
        Err(LoginFailure::AccountBlocked) => {
            return Ok(render_login(&app, &tx, StatusCode::TOO_MANY_REQUESTS, &email, Some(t.account_blocked), open));
        }
        Err(LoginFailure::Busy) => {
            let mut r = render_login(&app, &tx, StatusCode::SERVICE_UNAVAILABLE, &email, Some(t.busy), open);
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(callsign_core::identity::passwords::RETRY_AFTER_SECS),
            );
            return Ok(r);
        }
        Err(LoginFailure::Internal(e)) => return Err(super::internal(&tx.state.lang, e.description)),
    };
    after_password(&app, &meta, &mut tx, &user).await
}

/// The password was right (a login) or the account was just made with it (a sign-up): the transaction gains the
/// user on a fresh token, then goes on to the second factor or the end.
async fn after_password(app: &AppState, meta: &RequestMeta, tx: &mut Tx, user: &User) -> Page {
    tx.state.user_id = Some(user.user_id.clone());
    tx.state.auth_time = Some(now_secs(app));
    tx.state.amr = vec!["pwd".to_owned()];
    let cookie = tx.rotate(app).await.map_err(|e| super::internal(&tx.state.lang, e))?;
    // An error page (never a redirect to one of the pages) goes out as it is, without the cookie.
    let resp = after_first_factor(app, meta, tx, user, StatusCode::SEE_OTHER).await?;
    // Finished at once (no second factor): the transaction and its cookie are already gone.
    if resp.headers().get(axum::http::header::LOCATION).is_some_and(|l| l.as_bytes().starts_with(b"/u/")) {
        Ok(super::with_cookie(resp, &cookie))
    } else {
        Ok(resp)
    }
}

// --- sign-up -----------------------------------------------------------------------------------------------------------

fn render_signup(app: &AppState, tx: &Tx, status: StatusCode, email: &str, error: Option<&str>) -> Response {
    let name = tx.state.authz.as_ref().map(|a| a.client_name.as_str()).unwrap_or("");
    super::page(status, pages::signup(&ctx(app, tx), name, email, error))
}

pub async fn signup_page(State(app): State<AppState>, headers: HeaderMap) -> Page {
    let mut tx = get_tx(&app, &headers, &[Step::Login, Step::Signup]).await?;
    if !signup_open(&app).await {
        switch_to(&app, &mut tx, Step::Login).await?;
        return Ok(super::redirect(StatusCode::SEE_OTHER, Step::Login.path(), &[]));
    }
    switch_to(&app, &mut tx, Step::Signup).await?;
    let hint = tx.state.login_hint.clone().unwrap_or_default();
    Ok(render_signup(&app, &tx, StatusCode::OK, &hint, None))
}

/// Create the account (`callsign_core::connections::signup`: throttled per IP, `ss` / `fs`), then continue as after
/// a password: phone enrollment when the tenant requires MFA, else back to the application.
pub async fn signup_submit(
    State(app): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    form: Result<Form<Fields>, FormRejection>,
) -> Page {
    use callsign_core::connections::{Signup, SignupError};
    let (mut tx, f) = post_tx(&app, &headers, form, &[Step::Signup]).await?;
    let t = tx.state.texts();
    let email = f.email.unwrap_or_default();
    let password = f.password.unwrap_or_default();
    if email.trim().is_empty() || password.is_empty() {
        return Ok(render_signup(&app, &tx, StatusCode::BAD_REQUEST, &email, Some(t.missing_credentials)));
    }
    let Some(client) = tx_client(&app, &tx).await? else { return Err(expired(&headers)) };
    let req = Signup {
        client_id: client.client_id.clone(),
        connection: callsign_core::identity::DB_CONNECTION.to_owned(),
        email: email.clone(),
        password,
        ..Default::default()
    };
    let user = match callsign_core::connections::signup(&app, &meta, req).await {
        Ok(u) => u,
        Err(e) => {
            let (status, message) = match &e {
                SignupError::UserExists => (StatusCode::BAD_REQUEST, t.signup_exists),
                SignupError::WeakPassword(_) => (StatusCode::BAD_REQUEST, t.signup_weak),
                SignupError::Invalid(_) => (StatusCode::BAD_REQUEST, t.signup_invalid_email),
                SignupError::Disabled | SignupError::UnknownConnection(_) | SignupError::UnknownClient => {
                    (StatusCode::FORBIDDEN, t.signup_disabled)
                }
                SignupError::Blocked => (StatusCode::TOO_MANY_REQUESTS, t.signup_ip_blocked),
                SignupError::Busy | SignupError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, t.busy),
                SignupError::Internal(cause) => return Err(super::internal(&tx.state.lang, cause)),
            };
            let mut r = render_signup(&app, &tx, status, &email, Some(message));
            if status == StatusCode::SERVICE_UNAVAILABLE {
                r.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from(callsign_core::identity::passwords::RETRY_AFTER_SECS),
                );
            }
            return Ok(r);
        }
    };
    after_password(&app, &meta, &mut tx, &user).await
}

// --- phone enrollment --------------------------------------------------------------------------------------------------

struct EnrollForm<'a> {
    country: &'a str,
    phone: &'a str,
    channel: &'a str,
}

fn render_enroll(
    app: &AppState,
    tx: &Tx,
    g: &GuardianConfig,
    status: StatusCode,
    form: Option<EnrollForm<'_>>,
    error: Option<&str>,
) -> Response {
    let enabled = channels(g);
    let default_country = countries::default_region(tx.state.accept_language.as_deref(), &tx.state.lang);
    let (country, phone, channel) = match &form {
        Some(f) => (f.country, f.phone, f.channel),
        None => (default_country, "", enabled[0].as_str()),
    };
    let view =
        EnrollView { countries: countries::list(&tx.state.lang), country, phone, channels: &enabled, channel, error };
    super::page(status, pages::enroll(&ctx(app, tx), &view))
}

pub async fn enroll_page(State(app): State<AppState>, headers: HeaderMap) -> Page {
    let tx = get_tx(&app, &headers, &[Step::Enroll]).await?;
    let g = guardian(&tx, &app).await?;
    if !g.phone_enabled() {
        return Err(super::error_page(StatusCode::CONFLICT, &tx.state.lang, tx.state.texts().phone_unavailable));
    }
    Ok(render_enroll(&app, &tx, &g, StatusCode::OK, None, None))
}

pub async fn enroll_submit(
    State(app): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    form: Result<Form<Fields>, FormRejection>,
) -> Page {
    let (mut tx, f) = post_tx(&app, &headers, form, &[Step::Enroll]).await?;
    let t = tx.state.texts();
    let g = guardian(&tx, &app).await?;
    if !g.phone_enabled() {
        return Err(super::error_page(StatusCode::CONFLICT, &tx.state.lang, t.phone_unavailable));
    }
    let enabled = channels(&g);
    let channel = f.channel.filter(|c| enabled.contains(c)).unwrap_or_else(|| enabled[0].clone());
    let country = f
        .country
        .filter(|c| countries::known(c))
        .unwrap_or_else(|| countries::default_region(tx.state.accept_language.as_deref(), &tx.state.lang).to_owned());
    let raw_phone = f.phone.unwrap_or_default();
    let entered = EnrollForm { country: &country, phone: &raw_phone, channel: &channel };
    let Ok(phone) = PhoneNumber::parse_in(&raw_phone, &country) else {
        return Ok(render_enroll(&app, &tx, &g, StatusCode::BAD_REQUEST, Some(entered), Some(t.invalid_phone)));
    };
    let user = tx_user(&app, &headers, &tx).await?;
    let client = tx_client(&app, &tx).await?;
    let binding = tx.binding();
    let subject = Subject { user: &user, client: client.as_ref(), binding: &binding, mfa_token: None };
    // One of `channels(g)`: always a channel.
    let ch = channel.parse::<Channel>().map_err(|e| super::internal(&tx.state.lang, e))?;
    let enrolled = match mfa::start_enrollment(&app, &meta, subject, &phone, ch, Some(&tx.state.lang)).await {
        Ok(e) => e,
        Err(e) => {
            let (status, text) = match e {
                MfaError::TooManySms | MfaError::TooManyFromNetwork => (StatusCode::TOO_MANY_REQUESTS, t.too_many_sms),
                MfaError::TooManyVoice => (StatusCode::TOO_MANY_REQUESTS, t.too_many_voice),
                MfaError::AlreadyEnrolled => (StatusCode::CONFLICT, t.already_enrolled),
                MfaError::DestinationRefused(_) => (StatusCode::BAD_REQUEST, t.destination_refused),
                other => return Err(super::failed(&tx.state.lang, OAuthError::from(other))),
            };
            return Ok(render_enroll(&app, &tx, &g, status, Some(entered), Some(text)));
        }
    };
    let sealed = enrolled.recovery_code.as_deref().map(|c| SealedText::seal(&app, &binding, c)).transpose();
    tx.state.recovery_code = sealed.map_err(|e| super::internal(&tx.state.lang, e))?;
    tx.state.enrollment_id = Some(enrolled.enrollment.id.clone());
    tx.state.sent = Some(SentCode { oob_code: enrolled.oob_code, channel: channel.clone(), to: phone.masked() });
    tx.state.last_sent_ms = Some(app.clock.now().millis());
    tx.state.step = Step::Code;
    save_and_go(&app, &tx, StatusCode::SEE_OTHER, Step::Code).await
}

// --- code entry ----------------------------------------------------------------------------------------------------------

async fn render_code(
    app: &AppState,
    headers: &HeaderMap,
    tx: &mut Tx,
    status: StatusCode,
    error: Option<&str>,
) -> Page {
    let t = tx.state.texts();
    let g = guardian(tx, app).await?;
    let user = tx_user(app, headers, tx).await?;
    let enrollment = tx_enrollment(app, headers, tx, &user).await?;
    let enrolling = enrollment.status == EnrollmentStatus::Pending;
    let channel = tx
        .state
        .sent
        .as_ref()
        .map(|s| s.channel.clone())
        .or(enrollment.preferred_channel.map(|c| c.as_str().to_owned()))
        .unwrap_or_else(|| "sms".into());
    let cooldown = cooldown_left(app, tx);
    // A one-off message from the previous request, shown once.
    let flash = tx.state.flash.take();
    let too_soon;
    let (notice, flash_error) = match flash {
        Some(Flash::NewCodeSent) => (Some(t.new_code_sent), None),
        Some(Flash::TooManySms) => (None, Some(t.too_many_sms)),
        Some(Flash::TooManyVoice) => (None, Some(t.too_many_voice)),
        Some(Flash::TooSoon) => {
            too_soon = t.resend_too_soon.replace("{n}", &cooldown.max(1).to_string());
            (None, Some(too_soon.as_str()))
        }
        None => (None, None),
    };
    if flash.is_some() {
        tx.save(app).await.map_err(|e| super::internal(&tx.state.lang, e))?;
    }
    let view = CodeView {
        sent: tx.state.sent.as_ref(),
        error: error.or(flash_error),
        notice,
        cooldown,
        channel: &channel,
        can_call: g.channel_enabled("voice") && channel != "voice",
        can_text: g.channel_enabled("sms") && channel == "voice",
        enrolling,
        can_recover: !enrolling && g.factor_enabled("recovery-code"),
    };
    Ok(super::page(status, pages::code(&ctx(app, tx), &view)))
}

pub async fn code_page(State(app): State<AppState>, headers: HeaderMap) -> Page {
    let mut tx = get_tx(&app, &headers, &[Step::Code]).await?;
    render_code(&app, &headers, &mut tx, StatusCode::OK, None).await
}

pub async fn code_submit(
    State(app): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    form: Result<Form<Fields>, FormRejection>,
) -> Page {
    let (mut tx, f) = post_tx(&app, &headers, form, &[Step::Code]).await?;
    let t = tx.state.texts();
    let code: String = f.code.unwrap_or_default().chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != callsign_domain::otp::CODE_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return render_code(&app, &headers, &mut tx, StatusCode::BAD_REQUEST, Some(t.no_code)).await;
    }
    let Some(sent) = tx.state.sent.clone() else {
        return render_code(&app, &headers, &mut tx, StatusCode::BAD_REQUEST, Some(t.expired_code)).await;
    };
    let user = tx_user(&app, &headers, &tx).await?;
    let client = tx_client(&app, &tx).await?;
    let binding = tx.binding();
    let found = mfa::find_challenge(&app, &sent.oob_code, &binding).await;
    let Some(challenge) = found.map_err(|e| super::internal(&tx.state.lang, OAuthError::from(e).description))? else {
        return render_code(&app, &headers, &mut tx, StatusCode::BAD_REQUEST, Some(t.expired_code)).await;
    };
    let subject = Subject { user: &user, client: client.as_ref(), binding: &binding, mfa_token: None };
    let verified = match mfa::verify_challenge(&app, &meta, subject, &challenge, &code).await {
        Ok(v) => v,
        Err(e) => {
            let (status, text) = match e {
                MfaError::WrongCode => (StatusCode::BAD_REQUEST, t.wrong_code),
                MfaError::CodeExpired => (StatusCode::BAD_REQUEST, t.expired_code),
                MfaError::TooManyFailures => (StatusCode::TOO_MANY_REQUESTS, t.too_many_failures),
                other => return Err(super::failed(&tx.state.lang, OAuthError::from(other))),
            };
            return render_code(&app, &headers, &mut tx, status, Some(text)).await;
        }
    };
    add_amr(&mut tx, "mfa");
    tx.state.sent = None;
    if verified.enrolled_now && tx.state.recovery_code.is_some() {
        tx.state.step = Step::ShowRecovery;
        return save_and_go(&app, &tx, StatusCode::SEE_OTHER, Step::ShowRecovery).await;
    }
    tx.state.recovery_code = None;
    finish(&app, &meta, &mut tx, &user, StatusCode::SEE_OTHER).await
}

/// "Send a new code", "Call me instead", "Send me a text message instead": a new code on the posted channel. The
/// same channel again only after the cooldown.
pub async fn resend(
    State(app): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    form: Result<Form<Fields>, FormRejection>,
) -> Page {
    let (mut tx, f) = post_tx(&app, &headers, form, &[Step::Code]).await?;
    let g = guardian(&tx, &app).await?;
    let user = tx_user(&app, &headers, &tx).await?;
    let enrollment = tx_enrollment(&app, &headers, &tx, &user).await?;
    let enabled = channels(&g);
    let current = tx
        .state
        .sent
        .as_ref()
        .map(|s| s.channel.clone())
        .or(enrollment.preferred_channel.map(|c| c.as_str().to_owned()));
    let channel = f
        .channel
        .filter(|c| enabled.contains(c))
        .or(current.clone().filter(|c| enabled.contains(c)))
        .unwrap_or_else(|| enabled[0].clone());
    if current.as_deref() == Some(channel.as_str()) && cooldown_left(&app, &tx) > 0 {
        tx.state.flash = Some(Flash::TooSoon);
        return save_and_go(&app, &tx, StatusCode::SEE_OTHER, Step::Code).await;
    }
    let client = tx_client(&app, &tx).await?;
    tx.state.flash = None;
    send(&app, &meta, &mut tx, &user, client.as_ref(), &enrollment, &channel).await?;
    if tx.state.flash.is_none() {
        tx.state.flash = Some(Flash::NewCodeSent);
    }
    save_and_go(&app, &tx, StatusCode::SEE_OTHER, Step::Code).await
}

/// "Use a different number", while enrolling.
pub async fn change_number(
    State(app): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Fields>, FormRejection>,
) -> Page {
    let (mut tx, _) = post_tx(&app, &headers, form, &[Step::Code]).await?;
    let user = tx_user(&app, &headers, &tx).await?;
    let enrollment = tx_enrollment(&app, &headers, &tx, &user).await?;
    if enrollment.status != EnrollmentStatus::Pending {
        return Ok(super::redirect(StatusCode::SEE_OTHER, Step::Code.path(), &[]));
    }
    tx.state.sent = None;
    tx.state.flash = None;
    tx.state.step = Step::Enroll;
    save_and_go(&app, &tx, StatusCode::SEE_OTHER, Step::Enroll).await
}

// --- recovery codes ----------------------------------------------------------------------------------------------------

/// Whether this transaction may use a recovery code: an enrolled (confirmed) phone and the factor enabled.
async fn may_recover(app: &AppState, headers: &HeaderMap, tx: &Tx) -> Result<User, Response> {
    let g = guardian(tx, app).await?;
    let user = tx_user(app, headers, tx).await?;
    let enrollment = tx_enrollment(app, headers, tx, &user).await?;
    if enrollment.status != EnrollmentStatus::Confirmed || !g.factor_enabled("recovery-code") {
        return Err(super::redirect(StatusCode::SEE_OTHER, Step::Code.path(), &[]));
    }
    Ok(user)
}

pub async fn recovery_page(State(app): State<AppState>, headers: HeaderMap) -> Page {
    let tx = get_tx(&app, &headers, &[Step::Code]).await?;
    may_recover(&app, &headers, &tx).await?;
    Ok(super::page(StatusCode::OK, pages::recovery(&ctx(&app, &tx), None)))
}

pub async fn recovery_submit(
    State(app): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    form: Result<Form<Fields>, FormRejection>,
) -> Page {
    let (mut tx, f) = post_tx(&app, &headers, form, &[Step::Code]).await?;
    let t = tx.state.texts();
    let user = may_recover(&app, &headers, &tx).await?;
    let client = tx_client(&app, &tx).await?;
    let binding = tx.binding();
    let subject = Subject { user: &user, client: client.as_ref(), binding: &binding, mfa_token: None };
    let presented = f.recovery_code.unwrap_or_default();
    let fresh = match mfa::verify_recovery_code(&app, &meta, subject, &presented).await {
        Ok(fresh) => fresh,
        Err(e) => {
            let (status, text) = match e {
                MfaError::WrongRecoveryCode => (StatusCode::BAD_REQUEST, t.wrong_recovery),
                MfaError::TooManyRecoveryFailures => (StatusCode::TOO_MANY_REQUESTS, t.too_many_failures),
                other => return Err(super::failed(&tx.state.lang, OAuthError::from(other))),
            };
            return Ok(super::page(status, pages::recovery(&ctx(&app, &tx), Some(text))));
        }
    };
    let sealed = SealedText::seal(&app, &binding, &fresh).map_err(|e| super::internal(&tx.state.lang, e))?;
    tx.state.recovery_code = Some(sealed);
    add_amr(&mut tx, "mfa");
    tx.state.sent = None;
    tx.state.step = Step::ShowRecovery;
    save_and_go(&app, &tx, StatusCode::SEE_OTHER, Step::ShowRecovery).await
}

pub async fn show_recovery_page(State(app): State<AppState>, headers: HeaderMap) -> Page {
    let tx = get_tx(&app, &headers, &[Step::ShowRecovery]).await?;
    let Some(sealed) = &tx.state.recovery_code else { return Err(expired(&headers)) };
    let code = sealed.open(&app, &tx.binding()).map_err(|e| super::internal(&tx.state.lang, e))?;
    Ok(super::page(StatusCode::OK, pages::show_recovery(&ctx(&app, &tx), &code)))
}

pub async fn show_recovery_submit(
    State(app): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    form: Result<Form<Fields>, FormRejection>,
) -> Page {
    let (mut tx, _) = post_tx(&app, &headers, form, &[Step::ShowRecovery]).await?;
    let user = tx_user(&app, &headers, &tx).await?;
    tx.state.recovery_code = None;
    finish(&app, &meta, &mut tx, &user, StatusCode::SEE_OTHER).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_keep_sms_first_and_never_come_out_empty() {
        let mut g = GuardianConfig { message_types: vec!["voice".into(), "sms".into()], ..Default::default() };
        assert_eq!(channels(&g), ["sms", "voice"]);
        g.message_types = vec![];
        assert_eq!(channels(&g), ["sms"]);
        g.message_types = vec!["voice".into()];
        assert_eq!(channels(&g), ["voice"]);
    }
}
