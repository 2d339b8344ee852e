//! `/api/v2/resource-servers`: the operator's APIs (audience, scopes, token lifetime, signing algorithm), over
//! [`callsign_core::resource_servers`]; the Management API is listed as a system resource server that cannot be
//! changed.
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use callsign_core::resource_servers::{self as rs, ResourceServer, RsError, Scope};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

use super::{CreateResourceServers, DeleteResourceServers, Mgmt, Paging, ReadResourceServers, UpdateResourceServers};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Body, Path, Query};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/resource-servers", get(list).post(create))
        .route("/resource-servers/{id}", get(read).patch(update).delete(remove))
}

pub fn render(r: &ResourceServer) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "identifier": r.identifier,
        "scopes": r.scopes,
        "signing_alg": r.signing_alg,
        "token_lifetime": r.token_lifetime,
        "token_lifetime_for_web": r.token_lifetime_for_web,
        "allow_offline_access": r.allow_offline_access,
        "skip_consent_for_verifiable_first_party_clients": r.skip_consent_for_verifiable_first_party_clients,
        "is_system": r.is_system,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeBody {
    value: String,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct Fields {
    name: Option<String>,
    identifier: Option<String>,
    scopes: Option<Vec<ScopeBody>>,
    signing_alg: Option<String>,
    token_lifetime: Option<u64>,
    token_lifetime_for_web: Option<u64>,
    allow_offline_access: Option<bool>,
    skip_consent_for_verifiable_first_party_clients: Option<bool>,
    // Read-only: what a read answers, sent back by configuration-as-code tools.
    #[serde(rename = "id")]
    _id: Option<IgnoredAny>,
    #[serde(rename = "is_system")]
    _is_system: Option<IgnoredAny>,
}

impl From<Fields> for rs::Fields {
    fn from(f: Fields) -> Self {
        rs::Fields {
            name: f.name,
            identifier: f.identifier,
            scopes: f.scopes.map(|v| {
                v.into_iter()
                    .map(|s| Scope { value: s.value, description: s.description.unwrap_or_default() })
                    .collect()
            }),
            signing_alg: f.signing_alg,
            token_lifetime: f.token_lifetime,
            token_lifetime_for_web: f.token_lifetime_for_web,
            allow_offline_access: f.allow_offline_access,
            skip_consent_for_verifiable_first_party_clients: f.skip_consent_for_verifiable_first_party_clients,
        }
    }
}

fn not_found() -> ApiError {
    ApiError::not_found("The resource server does not exist").code("inexistent_resource_server")
}

fn map(e: RsError) -> ApiError {
    match e {
        RsError::NotFound => not_found(),
        RsError::System => ApiError::new(
            StatusCode::FORBIDDEN,
            "The Management API is a system resource server; it cannot be changed or deleted.",
        )
        .code("operation_not_supported"),
        RsError::Conflict => ApiError::conflict("A resource server with the same identifier already exists")
            .code("resource_server_conflict"),
        RsError::Invalid { field, message } => ApiError::invalid_property(field, message),
        RsError::Failed(e) => ApiError::internal(e),
    }
}

async fn list(
    _: Mgmt<ReadResourceServers>,
    State(app): State<AppState>,
    Query(p): Query<Paging>,
) -> Result<Json<Value>, ApiError> {
    let page = p.page()?;
    let all = rs::list(&app).await.map_err(ApiError::internal)?;
    let total = all.len() as u64;
    let items: Vec<Value> = all
        .iter()
        .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
        .take(usize::try_from(page.limit()).unwrap_or(0))
        .map(render)
        .collect();
    Ok(Json(p.wrap("resource_servers", items, total)))
}

async fn read(
    _: Mgmt<ReadResourceServers>,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let r = rs::get(&app, &id).await.map_err(ApiError::internal)?.ok_or_else(not_found)?;
    Ok(Json(render(&r)))
}

async fn create(
    _: Mgmt<CreateResourceServers>,
    State(app): State<AppState>,
    Body(f): Body<Fields>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let r = rs::create(&app, f.into()).await.map_err(map)?;
    Ok((StatusCode::CREATED, Json(render(&r))))
}

async fn update(
    _: Mgmt<UpdateResourceServers>,
    State(app): State<AppState>,
    Path(id): Path<String>,
    Body(f): Body<Fields>,
) -> Result<Json<Value>, ApiError> {
    let r = rs::update(&app, &id, f.into()).await.map_err(map)?;
    Ok(Json(render(&r)))
}

async fn remove(
    _: Mgmt<DeleteResourceServers>,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    rs::delete(&app, &id).await.map_err(map)?;
    Ok(StatusCode::NO_CONTENT)
}
