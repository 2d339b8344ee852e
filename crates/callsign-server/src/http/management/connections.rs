//! `/api/v2/connections`: Callsign's one database connection (`Username-Password-Authentication`, strategy
//! `auth0`), over `callsign_core::connections`.
//!
//! - `GET /connections` (`read:connections`): the connection in a list; `strategy` and `name` filter it (a strategy
//!   or name that is not the database connection's gives an empty list), with the usual `page` / `per_page` /
//!   `include_totals`.
//! - `GET /connections/{id}` (`read:connections`): 404 `inexistent_connection` for another id.
//! - `PATCH /connections/{id}` (`update:connections`): `display_name` and `options`; `options` are merged into the
//!   current ones (a new install has `disable_signup: true`; `{"options":{"disable_signup":false}}` opens public
//!   sign-up). The fixed options and the read-only properties (`name`, `strategy`, `realms`,
//!   `is_domain_connection`, `id`) may be sent back as read, not changed; anything else is a 400 naming it.
//! - `GET /connections/{id}/clients` (`read:connections`): the applications enabled on the connection, checkpoint
//!   paged (`take` 1–100, default 50; `from` the `next` of the page before): `{"clients": [{"client_id"}], "next"}`.
//!   Every application signs users in through the one connection, so every application is listed.
//! - `PATCH /connections/{id}/clients` (`update:connections`): `[{"client_id", "status"}]` (1–50 entries). Enabling
//!   an existing application is accepted and changes nothing (204); disabling one is refused with 400
//!   `operation_not_supported`, since no application can be without the connection.
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use callsign_core::connections::{self, ConnectionPatch};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Mgmt, Paging, ReadConnections, UpdateConnections};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Body, Path, Query};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/connections", get(list))
        .route("/connections/{id}", get(read).patch(update))
        .route("/connections/{id}/clients", get(enabled_clients).patch(set_enabled_clients))
}

fn not_found() -> ApiError {
    ApiError::not_found("The connection does not exist").code("inexistent_connection")
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    strategy: Option<String>,
    name: Option<String>,
    fields: Option<String>,
    include_fields: Option<String>,
    #[serde(flatten)]
    paging: Paging,
}

async fn list(
    _: Mgmt<ReadConnections>,
    State(app): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = q.paging.page()?;
    let _ = (&q.fields, &q.include_fields);
    let conn = connections::load(&app).await.map_err(ApiError::internal)?;
    let matches = q.strategy.as_deref().is_none_or(|s| s.split(',').any(|s| s.trim() == "auth0"))
        && q.name.as_deref().is_none_or(|n| n == conn.name());
    let all: Vec<Value> = if matches { vec![conn.view()] } else { Vec::new() };
    let total = all.len() as u64;
    let start = usize::try_from(page.offset()).unwrap_or(usize::MAX);
    let items = all.into_iter().skip(start).collect();
    Ok(Json(q.paging.wrap("connections", items, total)))
}

async fn read(
    _: Mgmt<ReadConnections>,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let conn = connections::load(&app).await.map_err(ApiError::internal)?;
    if conn.id != id {
        return Err(not_found());
    }
    Ok(Json(conn.view()))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct Patch {
    display_name: Option<String>,
    options: Option<Map<String, Value>>,
    // Read-only: accepted when they are what a read answers.
    id: Option<Value>,
    name: Option<Value>,
    strategy: Option<Value>,
    realms: Option<Value>,
    is_domain_connection: Option<Value>,
}

async fn update(
    _: Mgmt<UpdateConnections>,
    State(app): State<AppState>,
    Path(id): Path<String>,
    Body(p): Body<Patch>,
) -> Result<Json<Value>, ApiError> {
    let conn = connections::load(&app).await.map_err(ApiError::internal)?;
    if conn.id != id {
        return Err(not_found());
    }
    let current = conn.view();
    for (prop, v) in [
        ("id", &p.id),
        ("name", &p.name),
        ("strategy", &p.strategy),
        ("realms", &p.realms),
        ("is_domain_connection", &p.is_domain_connection),
    ] {
        if let Some(v) = v
            && current[prop] != *v
        {
            return Err(ApiError::invalid_payload(format!("{prop} cannot be changed' on property {prop}")));
        }
    }
    let conn = connections::update(&app, ConnectionPatch { display_name: p.display_name, options: p.options })
        .await
        .map_err(ApiError::internal)?
        .map_err(|(prop, msg)| ApiError::invalid_payload(format!("{prop} {msg}' on property {prop}")))?;
    Ok(Json(conn.view()))
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct ClientsQuery {
    take: Option<String>,
    from: Option<String>,
}

/// The page size of a checkpoint list: 1–100, 50 when not given.
fn take_of(take: Option<&str>) -> Result<u32, ApiError> {
    match take {
        None => Ok(50),
        Some(t) => {
            t.parse::<u32>().ok().filter(|n| (1..=100).contains(n)).ok_or_else(|| {
                ApiError::invalid_query("Query validation error: 'take' must be an integer from 1 to 100.")
            })
        }
    }
}

async fn enabled_clients(
    _: Mgmt<ReadConnections>,
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ClientsQuery>,
) -> Result<Json<Value>, ApiError> {
    let conn = connections::load(&app).await.map_err(ApiError::internal)?;
    if conn.id != id {
        return Err(not_found());
    }
    let take = take_of(q.take.as_deref())?;
    // `from` is the offset the previous page's `next` named.
    let from = match q.from.as_deref().filter(|f| !f.is_empty()) {
        None => 0,
        Some(f) => f.parse::<u32>().map_err(|_| {
            ApiError::invalid_query("Query validation error: 'from' is not a value this list gave as next.")
        })?,
    };
    if from % take != 0 {
        return Err(ApiError::invalid_query(
            "Query validation error: 'from' must come from a page of the same 'take'.",
        ));
    }
    let listed = app.store.list_clients(callsign_store::Page::new(from / take, take)).await?;
    let clients: Vec<Value> = listed.items.iter().map(|c| json!({"client_id": c.client_id})).collect();
    let seen = u64::from(from) + clients.len() as u64;
    let mut body = json!({"clients": clients});
    if seen < listed.total {
        body["next"] = json!(seen.to_string());
    }
    Ok(Json(body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnabledClient {
    client_id: String,
    status: bool,
}

async fn set_enabled_clients(
    _: Mgmt<UpdateConnections>,
    State(app): State<AppState>,
    Path(id): Path<String>,
    Body(entries): Body<Vec<EnabledClient>>,
) -> Result<axum::http::StatusCode, ApiError> {
    let conn = connections::load(&app).await.map_err(ApiError::internal)?;
    if conn.id != id {
        return Err(not_found());
    }
    if entries.is_empty() || entries.len() > 50 {
        return Err(ApiError::invalid_payload("the list must have 1 to 50 entries"));
    }
    for e in &entries {
        if !e.status {
            return Err(ApiError::bad_request(format!(
                "Every application signs in through the database connection; {} cannot be disabled on it.",
                e.client_id
            ))
            .code("operation_not_supported"));
        }
        if app.store.get_client(&e.client_id).await?.is_none() {
            return Err(
                ApiError::bad_request(format!("The client {} does not exist.", e.client_id)).code("invalid_body")
            );
        }
    }
    Ok(axum::http::StatusCode::NO_CONTENT)
}
