//! `/api/v2/client-grants`: which client may get tokens for which audience, with which scopes.
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use callsign_store::{ClientGrant, GrantFilter, StoreError};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Path;
use super::{CreateGrants, DeleteGrants, Mgmt, Paging, ReadGrants, UpdateGrants};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Body, Query};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/client-grants", get(list).post(create))
        .route("/client-grants/{id}", get(read).patch(update).delete(remove))
}

fn render(g: &ClientGrant) -> Value {
    json!({"id": g.id, "client_id": g.client_id, "audience": g.audience, "scope": g.scope})
}

fn not_found() -> ApiError {
    ApiError::not_found("The client grant does not exist").code("inexistent_client_grant")
}

/// For the Management API audience, only its own scopes may be granted.
fn check_scopes(app: &AppState, audience: &str, scope: &[String]) -> Result<(), ApiError> {
    if audience == app.config.management_audience()
        && let Some(bad) = scope.iter().find(|s| !callsign_domain::scopes::is_management_scope(s))
    {
        return Err(ApiError::bad_request(format!(
            "Payload validation error: 'The scope `{bad}` is not a Management API scope' on property scope."
        )));
    }
    if let Some(bad) = scope.iter().find(|s| s.is_empty() || s.contains(char::is_whitespace)) {
        return Err(ApiError::bad_request(format!(
            "Payload validation error: 'Invalid scope `{bad}`' on property scope."
        )));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Create {
    client_id: String,
    audience: String,
    scope: Vec<String>,
}

async fn create(
    _: Mgmt<CreateGrants>,
    State(app): State<AppState>,
    Body(b): Body<Create>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if b.audience.trim().is_empty() {
        return Err(ApiError::bad_request(
            "Payload validation error: 'String is too short (0 chars), minimum 1' on property audience.",
        ));
    }
    check_scopes(&app, &b.audience, &b.scope)?;
    if app.store.get_client(&b.client_id).await?.is_none() {
        return Err(ApiError::not_found("The client does not exist").code("inexistent_client"));
    }
    let grant = ClientGrant {
        id: callsign_domain::ids::client_grant_id(app.rng.as_ref()),
        client_id: b.client_id,
        audience: b.audience,
        scope: dedup(b.scope),
        created_at: app.clock.now(),
    };
    match app.store.create_client_grant(&grant).await {
        Ok(()) => Ok((StatusCode::CREATED, Json(render(&grant)))),
        Err(StoreError::Conflict(_)) => {
            Err(ApiError::conflict("A client grant for this client and audience already exists")
                .code("client_grant_conflict"))
        }
        Err(e) => Err(e.into()),
    }
}

fn dedup(v: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(v.len());
    for s in v {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    audience: Option<String>,
    client_id: Option<String>,
    #[serde(flatten)]
    paging: Paging,
}

async fn list(
    _: Mgmt<ReadGrants>,
    State(app): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = GrantFilter { client_id: q.client_id, audience: q.audience };
    let listed = app.store.list_client_grants(&filter, q.paging.page()?).await?;
    Ok(Json(q.paging.wrap("client_grants", listed.items.iter().map(render).collect(), listed.total)))
}

async fn read(
    _: Mgmt<ReadGrants>,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(render(&app.store.get_client_grant(&id).await?.ok_or_else(not_found)?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Update {
    scope: Vec<String>,
}

async fn update(
    _: Mgmt<UpdateGrants>,
    State(app): State<AppState>,
    Path(id): Path<String>,
    Body(b): Body<Update>,
) -> Result<Json<Value>, ApiError> {
    let mut g = app.store.get_client_grant(&id).await?.ok_or_else(not_found)?;
    check_scopes(&app, &g.audience, &b.scope)?;
    g.scope = dedup(b.scope);
    app.store.update_client_grant(&g).await?;
    Ok(Json(render(&g)))
}

async fn remove(
    _: Mgmt<DeleteGrants>,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    match app.store.delete_client_grant(&id).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(StoreError::NotFound) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}
