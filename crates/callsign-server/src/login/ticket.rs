//! Enrollment tickets (`POST /api/v2/guardian/enrollments/ticket` → `ticket_url`): `GET /mfa/enrollment?ticket=…`
//! starts a transaction for the ticket and shows a "Continue" page; posting it redeems the ticket (single use), then
//! the person enrolls a phone, enters the code, saves the recovery code and sees "done".
//!
//! The ticket is redeemed on the POST, not on the GET, so that a link preview or a mail scanner fetching the URL
//! does not use it up.
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use callsign_domain::hash::token_hash;
use callsign_store::{EnrollmentKind, EnrollmentStatus};
use serde::Deserialize;

use super::flow::{Fields, post_tx};
use super::pages::{self, Ctx};
use super::{LoginTx, Page, Step, texts};
use crate::app::AppState;
use crate::web::session;
use callsign_core::guardian::GuardianConfig;

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct TicketParams {
    pub ticket: Option<String>,
    pub ui_locales: Option<String>,
}

pub async fn start(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<TicketParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let p = query.map(|q| q.0).unwrap_or_default();
    let lang = super::negotiate(p.ui_locales.as_deref(), &headers);
    let Some(ticket) = p.ticket.filter(|t| !t.is_empty() && t.len() <= 256) else {
        return super::error_page(StatusCode::BAD_REQUEST, lang, texts::of(lang).ticket_invalid);
    };
    let tx = LoginTx {
        lang: lang.to_owned(),
        accept_language: headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(200).collect()),
        ticket_hash: Some(token_hash(&ticket)),
        step: Step::TicketStart,
        ..Default::default()
    };
    match super::create_tx(&app, &tx).await {
        Ok((_, cookie)) => super::redirect(StatusCode::SEE_OTHER, Step::TicketStart.path(), &[cookie]),
        Err(e) => super::internal(lang, e),
    }
}

pub async fn intro_page(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let tx = match super::load_tx(&app, &headers).await {
        Ok(Some(tx)) if tx.state.step == Step::TicketStart => tx,
        Ok(Some(tx)) => return super::redirect(StatusCode::SEE_OTHER, tx.state.step.path(), &[]),
        Ok(None) => {
            let lang = super::negotiate(None, &headers);
            return super::error_page(StatusCode::BAD_REQUEST, lang, texts::of(lang).session_expired);
        }
        Err(e) => return super::internal("en", e),
    };
    let ctx = Ctx { lang: &tx.state.lang, t: tx.state.texts(), csrf: tx.csrf(&app) };
    super::page(StatusCode::OK, pages::ticket_intro(&ctx))
}

pub async fn intro_submit(
    State(app): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<Fields>, FormRejection>,
) -> Page {
    let (mut tx, _) = post_tx(&app, &headers, form, &[Step::TicketStart]).await?;
    let lang = tx.state.lang.clone();
    let t = tx.state.texts();
    let invalid = |tx: &super::Tx| {
        let token = tx.token.clone();
        let app = app.clone();
        async move {
            if let Err(e) = session::destroy(&app, super::TX_KIND, &token).await {
                tracing::warn!(error = %e, "could not delete a login transaction");
            }
        }
    };
    // What does not depend on the ticket is checked before it is spent: with the phone factor off, the same link
    // works once an operator turns it on.
    let g = GuardianConfig::load(&app).await.map_err(|e| super::internal(&lang, e))?;
    if !g.phone_enabled() {
        return Err(super::error_page(StatusCode::CONFLICT, &lang, t.phone_unavailable));
    }
    let Some(hash) = tx.state.ticket_hash.take() else {
        invalid(&tx).await;
        return Err(super::error_page(StatusCode::BAD_REQUEST, &lang, t.ticket_invalid));
    };
    let consumed = app.store.consume_ticket(&hash, app.clock.now()).await;
    let Some(ticket) = consumed.map_err(|e| super::internal(&lang, e))? else {
        invalid(&tx).await;
        return Err(super::error_page(StatusCode::BAD_REQUEST, &lang, t.ticket_invalid));
    };
    let user = app.store.get_user(&ticket.user_id).await.map_err(|e| super::internal(&lang, e))?;
    let Some(user) = user.filter(|u| !u.profile.blocked) else {
        invalid(&tx).await;
        return Err(super::error_page(StatusCode::BAD_REQUEST, &lang, t.ticket_invalid));
    };
    let list = app.store.list_enrollments(&user.user_id).await.map_err(|e| super::internal(&lang, e))?;
    if list.iter().any(|e| e.kind == EnrollmentKind::Phone && e.status == EnrollmentStatus::Confirmed) {
        invalid(&tx).await;
        return Err(super::error_page(StatusCode::CONFLICT, &lang, t.already_enrolled));
    }
    tx.state.user_id = Some(user.user_id);
    tx.state.step = Step::Enroll;
    let cookie = tx.rotate(&app).await.map_err(|e| super::internal(&lang, e))?;
    Ok(super::redirect(StatusCode::SEE_OTHER, Step::Enroll.path(), &[cookie]))
}

pub async fn done_page(State(app): State<AppState>, headers: HeaderMap) -> Response {
    match super::load_tx(&app, &headers).await {
        Ok(Some(tx)) if tx.state.step == Step::Done => super::page(StatusCode::OK, pages::done(&tx.state.lang)),
        Ok(Some(tx)) => super::redirect(StatusCode::SEE_OTHER, tx.state.step.path(), &[]),
        Ok(None) => {
            let lang = super::negotiate(None, &headers);
            super::error_page(StatusCode::BAD_REQUEST, lang, texts::of(lang).session_expired)
        }
        Err(e) => super::internal("en", e),
    }
}
