//! Logout: `GET /v2/logout?client_id=…&returnTo=…` (Auth0's) and `GET /oidc/logout?client_id=…&
//! post_logout_redirect_uri=…&state=…` (OpenID Connect RP-initiated logout). Both end the SSO session; the address
//! to go back to must be one of the client's `allowed_logout_urls`, exactly, else an error page and no redirect.
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::authorize::SsoSession;
use super::{pages, texts};
use crate::app::AppState;
use crate::http::extract::RequestMeta;
use crate::web::{cookies, session};
use callsign_core::identity::events::{self, EventCtx};

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct LogoutParams {
    pub client_id: Option<String>,
    #[serde(rename = "returnTo")]
    pub return_to: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
    pub ui_locales: Option<String>,
}

type Params = Result<Query<LogoutParams>, axum::extract::rejection::QueryRejection>;

pub async fn logout(State(app): State<AppState>, meta: RequestMeta, headers: HeaderMap, q: Params) -> Response {
    let p = q.map(|q| q.0).unwrap_or_default();
    let target = p.return_to.clone();
    end(&app, &meta, &headers, &p, target, None).await
}

pub async fn oidc_logout(State(app): State<AppState>, meta: RequestMeta, headers: HeaderMap, q: Params) -> Response {
    let p = q.map(|q| q.0).unwrap_or_default();
    let target = p.post_logout_redirect_uri.clone();
    let state = p.state.clone();
    end(&app, &meta, &headers, &p, target, state).await
}

async fn end(
    app: &AppState,
    meta: &RequestMeta,
    headers: &HeaderMap,
    p: &LogoutParams,
    target: Option<String>,
    state: Option<String>,
) -> Response {
    let lang = super::negotiate(p.ui_locales.as_deref(), headers);
    let t = texts::of(lang);
    // Check where to go before logging out: a refused address changes nothing.
    let client = match p.client_id.as_deref().filter(|c| !c.is_empty()) {
        Some(id) => match app.store.get_client(id).await {
            Ok(Some(c)) => Some(c),
            Ok(None) => return super::error_page(StatusCode::BAD_REQUEST, lang, t.bad_client),
            Err(e) => return super::internal(lang, e),
        },
        None => None,
    };
    if let Some(to) = &target {
        let allowed = client.as_ref().is_some_and(|c| c.spec.allowed_logout_urls.iter().any(|u| u == to));
        if !allowed {
            return super::error_page(StatusCode::BAD_REQUEST, lang, t.bad_return_to);
        }
    }
    let secure = crate::web::secure_cookies(app);
    let mut user_id = None;
    if let Some(token) = cookies::get(headers, super::SSO_COOKIE)
        && let Ok(Some(s)) = session::take::<SsoSession>(app, super::SSO_KIND, &token).await
    {
        user_id = Some(s.user_id);
    }
    let user = match &user_id {
        Some(id) => app.store.get_user(id).await.ok().flatten(),
        None => None,
    };
    let ctx = EventCtx {
        client_id: client.as_ref().map(|c| c.client_id.clone()),
        client_name: client.as_ref().map(|c| c.spec.name.clone()),
        user_id,
        user_name: user.and_then(|u| u.email),
        details: serde_json::json!({"return_to": target}),
        ..Default::default()
    };
    events::record(app, "slo", meta, ctx).await;
    let clear =
        vec![cookies::clear(super::SSO_COOKIE, "/", secure), cookies::clear(super::TX_COOKIE, super::TX_PATH, secure)];
    match target {
        Some(to) => {
            let location = match state.as_deref() {
                Some(s) => super::with_query(&to, &[("state", s)]),
                None => to,
            };
            super::redirect(StatusCode::FOUND, &location, &clear)
        }
        None => {
            let mut r = super::page(StatusCode::OK, pages::message(lang, t.logged_out_title, t.logged_out, false));
            for c in &clear {
                if let Ok(v) = axum::http::HeaderValue::from_str(c) {
                    r.headers_mut().append(axum::http::header::SET_COOKIE, v);
                }
            }
            r
        }
    }
}
