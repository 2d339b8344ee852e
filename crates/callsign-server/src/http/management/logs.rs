//! `GET /api/v2/logs`, `GET /api/v2/logs/{id}`, `GET /api/v2/users/{id}/logs`.
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use callsign_store::{LogEvent, LogPaging, LogQuery};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Path;
use super::{Mgmt, Paging, ReadLogs};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::Query;

pub fn routes() -> Router<AppState> {
    Router::new().route("/logs", get(list)).route("/logs/{id}", get(read)).route("/users/{id}/logs", get(user_logs))
}

pub fn render(e: &LogEvent) -> Value {
    let b = &e.body;
    let mut v = json!({
        "log_id": e.log_id,
        "_id": e.log_id,
        "date": e.date.to_rfc3339(),
        "type": e.event_type,
        "description": b.description,
        "client_id": e.client_id,
        "client_name": b.client_name,
        "ip": b.ip,
        "user_agent": b.user_agent,
        "user_id": e.user_id,
        "user_name": b.user_name,
        "details": b.details,
    });
    if let Some(obj) = v.as_object_mut() {
        for (k, val) in
            [("audience", &b.audience), ("scope", &b.scope), ("connection", &b.connection), ("strategy", &b.strategy)]
        {
            if let Some(s) = val {
                obj.insert(k.to_owned(), json!(s));
            }
        }
    }
    v
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    q: Option<String>,
    from: Option<String>,
    #[serde(deserialize_with = "super::lenient")]
    take: Option<u32>,
    #[serde(flatten)]
    paging: Paging,
}

/// The supported subset of Auth0's log search syntax: `type:X`, `user_id:"Y"`, joined by `AND`.
fn parse_q(q: &str) -> Result<(Option<String>, Option<String>), ApiError> {
    let mut event_type = None;
    let mut user_id = None;
    let normalized = q.replace(" and ", " AND ");
    for term in normalized.split(" AND ").map(str::trim).filter(|t| !t.is_empty()) {
        let (field, value) = term.split_once(':').ok_or_else(|| {
            ApiError::invalid_query(format!("Query validation error: 'cannot parse `{term}`; use field:value'."))
        })?;
        let value = value.trim().trim_matches('"').to_owned();
        match field.trim() {
            "type" => event_type = Some(value),
            "user_id" => user_id = Some(value),
            other => {
                return Err(ApiError::invalid_query(format!(
                    "Query validation error: 'searching by `{other}` is not supported; use type or user_id'."
                )));
            }
        }
    }
    Ok((event_type, user_id))
}

async fn run(app: &AppState, q: ListQuery, forced_user: Option<String>) -> Result<Value, ApiError> {
    let (event_type, user_id) = match &q.q {
        Some(s) => parse_q(s)?,
        None => (None, None),
    };
    let paging = if q.from.is_some() || q.take.is_some() {
        let take = q.take.unwrap_or(50);
        if take == 0 || take > 100 {
            return Err(ApiError::invalid_query("Query validation error: 'take' must be between 1 and 100."));
        }
        LogPaging::From { from: q.from.clone(), take }
    } else {
        LogPaging::Page(q.paging.page()?)
    };
    let checkpoint = matches!(paging, LogPaging::From { .. });
    let listed = app.store.list_logs(&LogQuery { event_type, user_id: forced_user.or(user_id), paging }).await?;
    let items: Vec<Value> = listed.items.iter().map(render).collect();
    Ok(if checkpoint { Value::Array(items) } else { q.paging.wrap("logs", items, listed.total) })
}

async fn list(
    _: Mgmt<ReadLogs>,
    State(app): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(run(&app, q, None).await?))
}

async fn user_logs(
    _: Mgmt<ReadLogs>,
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(run(&app, q, Some(id)).await?))
}

async fn read(_: Mgmt<ReadLogs>, State(app): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let e = app.store.get_log(&id).await?.ok_or_else(|| ApiError::not_found("Log not found."))?;
    Ok(Json(render(&e)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn q_syntax() {
        assert_eq!(super::parse_q("type:s").unwrap(), (Some("s".into()), None));
        assert_eq!(
            super::parse_q("type:\"fp\" AND user_id:\"auth0|abc\"").unwrap(),
            (Some("fp".into()), Some("auth0|abc".into()))
        );
        assert!(super::parse_q("ip:1.2.3.4").is_err());
    }
}
