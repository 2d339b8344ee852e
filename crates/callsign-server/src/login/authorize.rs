//! `GET /authorize`: the authorization code flow's entry. Until `redirect_uri` is known to be one of the client's
//! callbacks, every problem is an error page (never a redirect: no open redirector). After that, protocol errors
//! go back to the application as `error`, `error_description` and `state`.
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::respond::{ResponseMode, ResponseType, Target};
use super::{AuthzRequest, LoginTx, Step, texts};
use crate::app::AppState;
use crate::http::extract::RequestMeta;
use crate::web::{cookies, session};

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub scope: Option<String>,
    pub audience: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub response_mode: Option<String>,
    pub ui_locales: Option<String>,
    pub prompt: Option<String>,
    pub login_hint: Option<String>,
    /// `signup` opens the sign-up page instead of the login page (when the connection allows sign-up).
    pub screen_hint: Option<String>,
}

/// The single sign-on session behind `cs_sso`.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
pub struct SsoSession {
    pub user_id: String,
    pub auth_time: i64,
    pub amr: Vec<String>,
}

/// The longest `state`/`nonce` kept (they travel back in URLs and tokens).
const MAX_PARAM: usize = 2048;

pub use callsign_core::grants::is_pkce_string;

/// Whether a client cannot keep a secret and so must use PKCE.
pub fn is_public(client: &callsign_store::Client) -> bool {
    client.spec.token_endpoint_auth_method == "none"
        || matches!(client.spec.app_type.as_deref(), Some("spa") | Some("native"))
}

pub async fn authorize(
    State(app): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    query: Result<Query<AuthorizeParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let p = query.map(|q| q.0).unwrap_or_default();
    let lang = super::negotiate(p.ui_locales.as_deref(), &headers);
    let t = texts::of(lang);
    let bad_client = || super::error_page(StatusCode::BAD_REQUEST, lang, t.bad_client);
    let bad_redirect = || super::error_page(StatusCode::BAD_REQUEST, lang, t.bad_redirect);

    // 1. The client and the callback, checked before anything may be sent back to it.
    let Some(client_id) = p.client_id.as_deref().filter(|c| !c.is_empty()) else { return bad_client() };
    let client = match app.store.get_client(client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return bad_client(),
        Err(e) => return super::internal(lang, e),
    };
    let Some(redirect_uri) = p.redirect_uri.clone() else { return bad_redirect() };
    if !client.spec.callbacks.contains(&redirect_uri) || redirect_uri.contains('#') {
        return bad_redirect();
    }

    // 2. How the answer travels. A `web_message` answer is posted to the callback's origin, which must be one of the
    //    client's web origins; otherwise nothing is posted anywhere (an error page).
    let state = p.state.clone().filter(|s| !s.is_empty());
    let response_type = p.response_type.as_deref().and_then(ResponseType::parse);
    let asked_mode = match p.response_mode.as_deref().filter(|m| !m.is_empty()) {
        None => None,
        Some(m) => match ResponseMode::parse(m) {
            Some(mode) => Some(mode),
            None => {
                let target = Target { redirect_uri: redirect_uri.clone(), mode: ResponseMode::Query, web_origin: None };
                return back(
                    &target,
                    state.as_deref(),
                    "invalid_request",
                    &format!("Unsupported response_mode: {m}"),
                    lang,
                );
            }
        },
    };
    let mode = asked_mode.unwrap_or_else(|| response_type.unwrap_or_default().default_mode());
    let web_origin = if mode == ResponseMode::WebMessage {
        match callsign_domain::web_origin::of(&redirect_uri) {
            Some(o) if callsign_core::origins::web_origin_allowed(&client, &o) => Some(o),
            _ => return super::error_page(StatusCode::BAD_REQUEST, lang, t.bad_web_origin),
        }
    } else {
        None
    };
    let target = Target { redirect_uri: redirect_uri.clone(), mode, web_origin: web_origin.clone() };

    // 3. From here on, errors go back to the application.
    let back = |error: &str, description: &str| back(&target, state.as_deref(), error, description, lang);
    let response_type = match (p.response_type.as_deref(), response_type) {
        (_, Some(rt)) => rt,
        (None, None) => return back("invalid_request", "Missing required parameter: response_type"),
        (Some(other), None) => {
            return back("unsupported_response_type", &format!("Unsupported response type: {other}"));
        }
    };
    if let Some(g) = response_type.grants().iter().find(|g| !client.spec.grant_types.iter().any(|c| c == *g)) {
        return back("unauthorized_client", &format!("Grant type '{g}' not allowed for the client."));
    }
    if response_type.has_id_token() && mode == ResponseMode::Query {
        return back("invalid_request", "response_mode=query is not allowed with an id_token response type");
    }
    if response_type.has_id_token() && p.nonce.as_deref().is_none_or(str::is_empty) {
        return back("invalid_request", "Missing required parameter: nonce (required with an id_token response type)");
    }
    if state.as_ref().is_some_and(|s| s.len() > MAX_PARAM) || p.nonce.as_ref().is_some_and(|s| s.len() > MAX_PARAM) {
        return back("invalid_request", "state and nonce must be at most 2048 characters");
    }
    let code_challenge = match (p.code_challenge.as_deref(), p.code_challenge_method.as_deref()) {
        // No code, nothing for PKCE to protect.
        _ if !response_type.has_code() => None,
        (None, Some(_)) => return back("invalid_request", "code_challenge_method without code_challenge"),
        (None, None) if is_public(&client) => {
            return back(
                "invalid_request",
                "Public clients must use PKCE: code_challenge with code_challenge_method=S256",
            );
        }
        (None, None) => None,
        (Some(_), Some("plain")) | (Some(_), None) => {
            return back("invalid_request", "code_challenge_method must be S256 (plain is not supported)");
        }
        (Some(_), Some(m)) if m != "S256" => {
            return back("invalid_request", &format!("Unsupported code_challenge_method: {m}"));
        }
        (Some(c), Some(_)) if !is_pkce_string(c) => {
            return back("invalid_request", "code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~]");
        }
        (Some(c), Some(_)) => Some(c.to_owned()),
    };
    let audience = p.audience.clone().filter(|a| !a.is_empty());
    if let Some(a) = audience.as_deref() {
        // One of the operator's APIs (resource servers); never the Management API.
        if let Err(e) = callsign_core::resource_servers::for_user_audience(&app, a).await {
            if e.error == "access_denied" {
                return back("access_denied", &e.description);
            }
            return super::internal(lang, e.description);
        }
    }
    let scope = p.scope.clone().filter(|s| !s.trim().is_empty()).unwrap_or_else(|| "openid".into());
    let authz = AuthzRequest {
        client_id: client.client_id.clone(),
        client_name: client.spec.name.clone(),
        redirect_uri: redirect_uri.clone(),
        state: state.clone(),
        nonce: p.nonce.clone().filter(|n| !n.is_empty()),
        scope,
        audience,
        code_challenge,
        response_type,
        response_mode: mode,
        web_origin,
    };
    let prompt: Vec<&str> = p.prompt.as_deref().unwrap_or("").split_whitespace().collect();
    let mut tx = LoginTx {
        lang: lang.to_owned(),
        accept_language: headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(200).collect()),
        authz: Some(authz),
        login_hint: p.login_hint.clone().filter(|h| h.len() <= 320),
        step: Step::Login,
        ..Default::default()
    };

    // 3. A live single sign-on session skips the password (unless prompt=login).
    let sso = if prompt.contains(&"login") { None } else { sso_user(&app, &headers).await };
    if prompt.contains(&"none") && sso.is_none() {
        return back("login_required", "Login required");
    }
    if let Some((s, _)) = &sso
        && prompt.contains(&"none")
    {
        match super::flow::needs_second_factor(&app, &s.amr).await {
            Ok(false) => {}
            Ok(true) => return back("interaction_required", "Multifactor authentication required"),
            Err(e) => return super::internal(lang, e),
        }
    }
    // `screen_hint=signup`: the sign-up page, when the database connection takes sign-ups (else the login page).
    if sso.is_none() && p.screen_hint.as_deref() == Some("signup") && super::flow::signup_open(&app).await {
        tx.step = Step::Signup;
    }
    let (token, cookie) = match super::create_tx(&app, &tx).await {
        Ok(x) => x,
        Err(e) => return super::internal(lang, e),
    };
    if let Some((s, user)) = sso {
        tx.user_id = Some(user.user_id.clone());
        tx.auth_time = Some(s.auth_time);
        tx.amr = s.amr.clone();
        let mut tx = super::Tx { token, state: tx };
        let mut resp = super::flow::after_first_factor(&app, &meta, &mut tx, &user, StatusCode::FOUND)
            .await
            .unwrap_or_else(|error_page| error_page);
        // Still a page to show (the second factor): the browser needs the transaction's cookie.
        let needs_pages =
            resp.headers().get(axum::http::header::LOCATION).is_some_and(|l| l.as_bytes().starts_with(b"/u/"));
        if needs_pages {
            resp = super::with_cookie(resp, &cookie);
        }
        return resp;
    }
    super::redirect(StatusCode::FOUND, tx.step.path(), &[cookie])
}

/// A protocol error sent back to the application the way its answer would have gone.
pub fn back(target: &Target, state: Option<&str>, error: &str, description: &str, lang: &str) -> Response {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(s) = state {
        params.push(("state", s));
    }
    super::respond::send(target, &params, StatusCode::FOUND, &[], lang)
}

/// The user of a live SSO session, if the browser has one and the user may still log in.
async fn sso_user(app: &AppState, headers: &HeaderMap) -> Option<(SsoSession, callsign_store::User)> {
    let token = cookies::get(headers, super::SSO_COOKIE)?;
    let s: SsoSession = session::load(app, super::SSO_KIND, &token).await.ok().flatten()?;
    let user = app.store.get_user(&s.user_id).await.ok().flatten()?;
    (!user.profile.blocked).then_some((s, user))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_strings_follow_rfc_7636() {
        assert!(is_pkce_string(&"a".repeat(43)));
        assert!(is_pkce_string(&"A-._~9".repeat(10)));
        assert!(!is_pkce_string(&"a".repeat(42)));
        assert!(!is_pkce_string(&"a".repeat(129)));
        assert!(!is_pkce_string(&format!("{}+", "a".repeat(43))));
    }
}
