//! `GET /api/v2/dev-inbox`: what the development provider (`auth0`) "sent", newest first. Callsign's own endpoint
//! (Auth0 has none): it lets tests and operators read codes without a real phone. Scope `read:dev_inbox`.
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use callsign_domain::phone::PhoneNumber;
use callsign_store::DevMessage;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Mgmt, Paging, ReadDevInbox};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::Query;

pub fn routes() -> Router<AppState> {
    Router::new().route("/dev-inbox", get(list))
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct InboxQuery {
    to: Option<String>,
    #[serde(flatten)]
    paging: Paging,
}

pub fn render(m: &DevMessage) -> Value {
    json!({
        "id": m.id,
        "to": m.to,
        "channel": m.channel,
        "text": m.text,
        "created_at": m.created_at.to_rfc3339(),
    })
}

/// The `to` filter in E.164. An unescaped `+` in a query string arrives as a space, so a leading space counts as
/// `+`.
pub fn parse_to(raw: &str) -> Result<String, ApiError> {
    let fixed = match raw.strip_prefix(' ') {
        Some(rest) if !rest.trim_start().starts_with('+') => format!("+{}", rest.trim_start()),
        _ => raw.to_owned(),
    };
    PhoneNumber::parse(&fixed)
        .map(|p| p.e164().to_owned())
        .map_err(|e| ApiError::invalid_query(format!("Query validation error: '{e}' on property to.")))
}

async fn list(
    _: Mgmt<ReadDevInbox>,
    State(app): State<AppState>,
    Query(q): Query<InboxQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = q.paging.page()?;
    let to = match q.to.as_deref() {
        Some(t) if !t.is_empty() => Some(parse_to(t)?),
        _ => None,
    };
    let listed = app.store.list_dev_messages(to.as_deref(), page).await?;
    Ok(Json(q.paging.wrap("messages", listed.items.iter().map(render).collect(), listed.total)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_is_e164_and_tolerates_an_unescaped_plus() {
        assert_eq!(parse_to("+1 415 555 2671").unwrap(), "+14155552671");
        assert_eq!(parse_to(" 14155552671").unwrap(), "+14155552671");
        assert_eq!(parse_to("0044 20 7183 8750").unwrap(), "+442071838750");
        let e = parse_to("nonsense").unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("international format"), "{}", e.message);
    }
}
