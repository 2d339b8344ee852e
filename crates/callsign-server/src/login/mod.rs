//! Universal Login: the authorization code flow (`/authorize`, the `authorization_code` and `refresh_token`
//! grants, `/userinfo`, `/v2/logout`) and the pages a person sees: login, phone enrollment, code entry, the
//! recovery code, and the enrollment-ticket pages.
//!
//! A login transaction is a server-side session (kind [`TX_KIND`]) behind the `cs_login` cookie: it holds the
//! `/authorize` request and how far the person got. Every form carries a CSRF token bound to that session. The
//! second factor goes through the same service functions as the MFA API (`callsign_core::mfa`), with challenges
//! bound to the transaction instead of an mfa_token. See docs/LOGIN.md.
pub mod authorize;
pub mod countries;
pub mod flow;
pub mod logout;
pub mod pages;
pub mod respond;
pub mod texts;
pub mod ticket;
pub mod token;

use axum::Router;
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use maud::Markup;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::web::{cookies, csrf, session};

/// The login transaction: store kind, cookie, lifetime.
pub const TX_KIND: &str = "login";
pub const TX_COOKIE: &str = "cs_login";
pub const TX_TTL_SECS: u64 = 30 * 60;
/// Where the transaction cookie is sent: the pages only.
pub const TX_PATH: &str = "/u";
/// The single sign-on session: after a successful login, `/authorize` skips the password (and the second factor
/// when it was done) until it expires or `/v2/logout` ends it.
pub const SSO_KIND: &str = "sso";
pub const SSO_COOKIE: &str = "cs_sso";
pub const SSO_TTL_SECS: u64 = 3 * 24 * 3600;
/// Authorization codes: single use, 5 minutes.
pub use callsign_core::sessions::{CODE_KIND, CODE_TTL_SECS, REFRESH_KIND, REFRESH_TTL_SECS};
/// Refresh tokens (scope `offline_access`): rotated on every use, 30 days.
/// The server-enforced wait between two codes on the same channel.
pub const RESEND_COOLDOWN_SECS: i64 = 30;
/// The CSRF purpose of the login forms.
pub const CSRF_PURPOSE: &str = "login";

pub fn routes(app: AppState) -> Router<AppState> {
    use axum::routing::post;
    Router::new()
        .route("/authorize", get(authorize::authorize))
        .route("/u/login", get(flow::login_page).post(flow::login_submit))
        .route("/u/signup", get(flow::signup_page).post(flow::signup_submit))
        .route("/u/mfa/enroll", get(flow::enroll_page).post(flow::enroll_submit))
        .route("/u/mfa/code", get(flow::code_page).post(flow::code_submit))
        .route("/u/mfa/resend", post(flow::resend))
        .route("/u/mfa/change-number", post(flow::change_number))
        .route("/u/mfa/recovery", get(flow::recovery_page).post(flow::recovery_submit))
        .route("/u/mfa/recovery-code", get(flow::show_recovery_page).post(flow::show_recovery_submit))
        .route("/u/ticket", get(ticket::intro_page).post(ticket::intro_submit))
        .route("/u/done", get(ticket::done_page))
        .route("/mfa/enrollment", get(ticket::start))
        .route("/v2/logout", get(logout::logout))
        .route("/oidc/logout", get(logout::oidc_logout))
        // Inside the security headers: they read the image origins the branding adds to the CSP.
        .layer(axum::middleware::from_fn_with_state(app, crate::web::brand::layer))
        .layer(axum::middleware::from_fn(crate::web::security_headers))
}

/// What the application asked for at `/authorize`, kept until the code is issued.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct AuthzRequest {
    pub client_id: String,
    pub client_name: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub scope: String,
    pub audience: Option<String>,
    /// S256 challenge (PKCE).
    pub code_challenge: Option<String>,
    /// What to answer and how (transactions stored before these existed read as the code flow by query).
    #[serde(default)]
    pub response_type: respond::ResponseType,
    #[serde(default)]
    pub response_mode: respond::ResponseMode,
    /// For `web_message`: the origin the answer is posted to (the callback's, one of the client's `web_origins`).
    #[serde(default)]
    pub web_origin: Option<String>,
}

impl AuthzRequest {
    /// Where this request's answer goes.
    pub fn target(&self) -> respond::Target {
        respond::Target {
            redirect_uri: self.redirect_uri.clone(),
            mode: self.response_mode,
            web_origin: self.web_origin.clone(),
        }
    }
}

/// Where a transaction is.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    #[default]
    Login,
    Signup,
    Enroll,
    Code,
    ShowRecovery,
    TicketStart,
    Done,
}

impl Step {
    pub fn path(self) -> &'static str {
        match self {
            Step::Login => "/u/login",
            Step::Signup => "/u/signup",
            Step::Enroll => "/u/mfa/enroll",
            Step::Code => "/u/mfa/code",
            Step::ShowRecovery => "/u/mfa/recovery-code",
            Step::TicketStart => "/u/ticket",
            Step::Done => "/u/done",
        }
    }
}

/// The code sent last.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SentCode {
    pub oob_code: String,
    pub channel: String,
    /// The masked number, for "we sent a code to …".
    pub to: String,
}

/// A one-off message for the next page.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Flash {
    NewCodeSent,
    TooManySms,
    TooManyVoice,
    TooSoon,
}

/// A value sealed under the installation's keyring (the recovery code waiting to be shown).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SealedText {
    key_id: String,
    nonce: String,
    ciphertext: String,
}

impl SealedText {
    pub fn seal(app: &AppState, context: &str, text: &str) -> crate::BoxResult<SealedText> {
        let s = app.keyring.seal(app.rng.as_ref(), context, text.as_bytes())?;
        Ok(SealedText {
            key_id: s.key_id,
            nonce: URL_SAFE_NO_PAD.encode(s.nonce),
            ciphertext: URL_SAFE_NO_PAD.encode(s.ciphertext),
        })
    }

    pub fn open(&self, app: &AppState, context: &str) -> crate::BoxResult<String> {
        let sealed = callsign_domain::seal::Sealed {
            key_id: self.key_id.clone(),
            nonce: URL_SAFE_NO_PAD.decode(&self.nonce)?,
            ciphertext: URL_SAFE_NO_PAD.decode(&self.ciphertext)?,
        };
        let plain = app.keyring.open(context, &sealed)?;
        Ok(String::from_utf8(plain.to_vec())?)
    }
}

/// A login transaction's state.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct LoginTx {
    /// The page language (`en`, `fr`, `es`).
    pub lang: String,
    /// `Accept-Language` at the start, for the country picker's default.
    pub accept_language: Option<String>,
    /// The `/authorize` request; None for an enrollment ticket.
    pub authz: Option<AuthzRequest>,
    /// The enrollment ticket (its hash) until it is redeemed.
    pub ticket_hash: Option<String>,
    pub login_hint: Option<String>,
    pub step: Step,
    pub user_id: Option<String>,
    /// Unix seconds of the password check (or of the SSO session's).
    pub auth_time: Option<i64>,
    pub amr: Vec<String>,
    /// The phone being enrolled or challenged.
    pub enrollment_id: Option<String>,
    pub sent: Option<SentCode>,
    /// Unix ms of the last code sent, for the resend cooldown.
    pub last_sent_ms: Option<i64>,
    /// The recovery code to show once (sealed).
    pub recovery_code: Option<SealedText>,
    pub flash: Option<Flash>,
}

impl LoginTx {
    pub fn texts(&self) -> &'static texts::Texts {
        texts::of(&self.lang)
    }
}

/// A loaded transaction and the cookie token it lives behind.
pub struct Tx {
    pub token: String,
    pub state: LoginTx,
}

impl Tx {
    /// What challenges of this transaction are bound to (never an mfa_token's hash: those are plain hex).
    pub fn binding(&self) -> String {
        format!("web:{}", session::key_of(&self.token))
    }

    pub fn csrf(&self, app: &AppState) -> String {
        csrf::token(app, CSRF_PURPOSE, &self.token)
    }

    pub async fn save(&self, app: &AppState) -> crate::BoxResult<()> {
        session::save(app, TX_KIND, &self.token, &self.state, TX_TTL_SECS).await
    }

    /// Move the transaction to a fresh token (when it gains a user: a planted cookie must not ride along) and
    /// return the new cookie. Challenges sent later are bound to the new token.
    pub async fn rotate(&mut self, app: &AppState) -> crate::BoxResult<String> {
        let (token, cookie) = create_tx(app, &self.state).await?;
        session::destroy(app, TX_KIND, &self.token).await?;
        self.token = token;
        Ok(cookie)
    }
}

/// Add a `Set-Cookie` to a response.
pub fn with_cookie(mut r: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(SET_COOKIE, v);
    }
    r
}

/// The transaction of this browser, if it has a live one.
pub async fn load_tx(app: &AppState, headers: &HeaderMap) -> crate::BoxResult<Option<Tx>> {
    let Some(token) = cookies::get(headers, TX_COOKIE) else { return Ok(None) };
    Ok(session::load::<LoginTx>(app, TX_KIND, &token).await?.map(|state| Tx { token, state }))
}

/// Start a transaction: store it and return the `Set-Cookie` value.
pub async fn create_tx(app: &AppState, state: &LoginTx) -> crate::BoxResult<(String, String)> {
    let token = session::create(app, TX_KIND, state, TX_TTL_SECS).await?;
    let cookie = cookies::set(TX_COOKIE, &token, TX_PATH, TX_TTL_SECS, crate::web::secure_cookies(app));
    Ok((token, cookie))
}

/// The page language from `ui_locales`, then `Accept-Language`.
pub fn negotiate(ui_locales: Option<&str>, headers: &HeaderMap) -> &'static str {
    let accept = headers.get(axum::http::header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    crate::web::i18n::negotiate(ui_locales, accept, texts::LANGS)
}

// --- responses -----------------------------------------------------------------------------------------------------

/// What a login page handler answers: the page, or (`Err`) the page of whatever stopped it (an expired transaction,
/// a refused form, an internal error), so that a step can end the request with `?`.
pub type Page = Result<Response, Response>;

/// An HTML page with a status.
pub fn page(status: StatusCode, markup: Markup) -> Response {
    (status, markup).into_response()
}

/// A redirect (303 after a form, 302 from a GET) with optional cookies.
pub fn redirect(status: StatusCode, location: &str, set_cookies: &[String]) -> Response {
    let Ok(loc) = HeaderValue::from_str(location) else {
        tracing::error!("a redirect location is not a valid header value");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut r = status.into_response();
    r.headers_mut().insert(LOCATION, loc);
    for c in set_cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            r.headers_mut().append(SET_COOKIE, v);
        }
    }
    r
}

/// The page for a failure with no better place to go.
pub fn error_page(status: StatusCode, lang: &str, message: &str) -> Response {
    page(status, pages::message(lang, texts::of(lang).error_title, message, true))
}

/// Log the cause, show the opaque "something went wrong" page.
pub fn internal(lang: &str, cause: impl std::fmt::Display) -> Response {
    tracing::error!(error = %cause, "login page failed");
    error_page(StatusCode::INTERNAL_SERVER_ERROR, lang, texts::of(lang).internal)
}

/// A service refusal that is not the user's doing: 503 "try again in a moment" when the service said so (the rate
/// limits could not be checked, e.g. Redis away: fail closed), the opaque page otherwise.
pub fn failed(lang: &str, e: crate::http::error::OAuthError) -> Response {
    if e.status != StatusCode::SERVICE_UNAVAILABLE {
        return internal(lang, e.description);
    }
    let mut r = error_page(StatusCode::SERVICE_UNAVAILABLE, lang, texts::of(lang).busy);
    r.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(e.retry_after.unwrap_or(1)));
    r
}

/// `redirect_uri` with `params` added to its query.
pub fn with_query(base: &str, params: &[(&str, &str)]) -> String {
    let q = serde_urlencoded::to_string(params).unwrap_or_default();
    if q.is_empty() {
        return base.to_owned();
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{q}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_appended_and_encoded() {
        assert_eq!(
            with_query("https://a.example/cb", &[("code", "x y"), ("state", "s&t")]),
            "https://a.example/cb?code=x+y&state=s%26t"
        );
        assert_eq!(with_query("https://a.example/cb?x=1", &[("code", "c")]), "https://a.example/cb?x=1&code=c");
        assert_eq!(with_query("https://a.example/cb", &[]), "https://a.example/cb");
    }

    #[test]
    fn every_step_has_its_page() {
        for s in [Step::Login, Step::Enroll, Step::Code, Step::ShowRecovery, Step::TicketStart, Step::Done] {
            assert!(s.path().starts_with(TX_PATH));
        }
    }
}
