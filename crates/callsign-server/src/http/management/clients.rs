//! `/api/v2/clients`: applications. Secrets are stored only as hashes and shown once, at creation and rotation
//! (a deliberate deviation from Auth0, which shows them on every read).
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use callsign_domain::hash::token_hash;
use callsign_domain::ids;
use callsign_store::{Client, ClientSpec};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value, json};

use super::Path;
use super::{CreateClients, DeleteClients, Mgmt, Paging, ReadClients, UpdateClientKeys, UpdateClients};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Body, Query};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/clients", get(list).post(create))
        .route("/clients/{id}", get(read).patch(update).delete(remove))
        .route("/clients/{id}/rotate-secret", post(rotate_secret))
}

pub const APP_TYPES: &[&str] = &["native", "spa", "regular_web", "non_interactive"];
pub const GRANT_TYPES: &[&str] = &[
    "authorization_code",
    "implicit",
    "refresh_token",
    "client_credentials",
    "password",
    "http://auth0.com/oauth/grant-type/password-realm",
    "http://auth0.com/oauth/grant-type/mfa-oob",
    "http://auth0.com/oauth/grant-type/mfa-otp",
    "http://auth0.com/oauth/grant-type/mfa-recovery-code",
];
pub const AUTH_METHODS: &[&str] = &["none", "client_secret_post", "client_secret_basic"];

fn not_found() -> ApiError {
    ApiError::not_found("The client does not exist").code("inexistent_client")
}

pub fn render(c: &Client) -> Value {
    let s = &c.spec;
    json!({
        "client_id": c.client_id,
        "name": s.name,
        "description": s.description.clone().unwrap_or_default(),
        "app_type": s.app_type,
        "grant_types": s.grant_types,
        "callbacks": s.callbacks,
        "allowed_logout_urls": s.allowed_logout_urls,
        "web_origins": s.web_origins,
        "allowed_origins": s.allowed_origins,
        "is_first_party": s.is_first_party,
        "token_endpoint_auth_method": s.token_endpoint_auth_method,
        "client_metadata": s.client_metadata,
        "global": false,
        "created_at": c.created_at.to_rfc3339(),
        "updated_at": c.updated_at.to_rfc3339(),
    })
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct Fields {
    name: Option<String>,
    description: Option<String>,
    app_type: Option<String>,
    grant_types: Option<Vec<String>>,
    callbacks: Option<Vec<String>>,
    allowed_logout_urls: Option<Vec<String>>,
    web_origins: Option<Vec<String>>,
    allowed_origins: Option<Vec<String>>,
    is_first_party: Option<bool>,
    token_endpoint_auth_method: Option<String>,
    client_metadata: Option<Map<String, Value>>,
    // Read-only fields a read answers (and Auth0's own), accepted and ignored on writes: configuration-as-code tools
    // (`a0deploy import`) send back what they exported.
    #[serde(rename = "client_id")]
    _client_id: Option<IgnoredAny>,
    #[serde(rename = "global")]
    _global: Option<IgnoredAny>,
    #[serde(rename = "created_at")]
    _created_at: Option<IgnoredAny>,
    #[serde(rename = "updated_at")]
    _updated_at: Option<IgnoredAny>,
    #[serde(rename = "tenant")]
    _tenant: Option<IgnoredAny>,
    #[serde(rename = "signing_keys")]
    _signing_keys: Option<IgnoredAny>,
    #[serde(rename = "callback_url_template")]
    _callback_url_template: Option<IgnoredAny>,
}

fn check_urls(prop: &str, urls: &[String]) -> Result<(), ApiError> {
    for u in urls {
        let ok =
            (u.starts_with("https://") || u.starts_with("http://")) && u.len() > 8 && !u.contains(char::is_whitespace);
        // Custom schemes for native apps (com.example.app://callback) are fine too.
        let custom = u.split_once("://").is_some_and(|(s, rest)| {
            !rest.is_empty() && s.len() > 1 && s.chars().all(|c| c.is_ascii_alphanumeric() || ".+-".contains(c))
        });
        if !ok && !custom {
            return Err(ApiError::invalid_property(prop, format!("`{u}` is not an absolute URL")));
        }
    }
    Ok(())
}

/// Apply fields onto a spec, validating each.
fn apply(spec: &mut ClientSpec, f: Fields) -> Result<(), ApiError> {
    if let Some(n) = f.name {
        if n.trim().is_empty() || n.chars().count() > 255 {
            return Err(ApiError::invalid_property("name", "String is empty or longer than 255 characters"));
        }
        spec.name = n;
    }
    if let Some(d) = f.description {
        if d.chars().count() > 140 {
            return Err(ApiError::invalid_property("description", "String is too long (140 chars max)"));
        }
        spec.description = Some(d);
    }
    if let Some(t) = f.app_type {
        if !APP_TYPES.contains(&t.as_str()) {
            return Err(ApiError::invalid_property(
                "app_type",
                format!("No enum match for: \"{t}\"; expected one of {}", APP_TYPES.join(", ")),
            ));
        }
        spec.app_type = Some(t);
    }
    if let Some(g) = f.grant_types {
        if let Some(bad) = g.iter().find(|g| !GRANT_TYPES.contains(&g.as_str())) {
            return Err(ApiError::invalid_property("grant_types", format!("No enum match for: \"{bad}\"")));
        }
        spec.grant_types = g;
    }
    if let Some(u) = f.callbacks {
        check_urls("callbacks", &u)?;
        spec.callbacks = u;
    }
    if let Some(u) = f.allowed_logout_urls {
        check_urls("allowed_logout_urls", &u)?;
        spec.allowed_logout_urls = u;
    }
    if let Some(u) = f.web_origins {
        check_urls("web_origins", &u)?;
        spec.web_origins = u;
    }
    if let Some(u) = f.allowed_origins {
        check_urls("allowed_origins", &u)?;
        spec.allowed_origins = u;
    }
    if let Some(b) = f.is_first_party {
        spec.is_first_party = b;
    }
    if let Some(m) = f.token_endpoint_auth_method {
        if !AUTH_METHODS.contains(&m.as_str()) {
            return Err(ApiError::invalid_property(
                "token_endpoint_auth_method",
                format!("No enum match for: \"{m}\""),
            ));
        }
        spec.token_endpoint_auth_method = m;
    }
    if let Some(m) = f.client_metadata {
        if m.values().any(|v| !v.is_string()) || m.len() > 10 {
            return Err(ApiError::invalid_property("client_metadata", "at most 10 keys, each with a string value"));
        }
        spec.client_metadata = m;
    }
    Ok(())
}

async fn create(
    _: Mgmt<CreateClients>,
    State(app): State<AppState>,
    Body(f): Body<Fields>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if f.name.is_none() {
        return Err(ApiError::bad_request("Payload validation error: 'Missing required property: name'."));
    }
    let public = matches!(f.app_type.as_deref(), Some("spa") | Some("native"));
    let mut spec = ClientSpec {
        is_first_party: true,
        token_endpoint_auth_method: if public { "none" } else { "client_secret_post" }.to_owned(),
        grant_types: if public {
            vec!["authorization_code".into(), "implicit".into(), "refresh_token".into()]
        } else {
            vec!["authorization_code".into(), "implicit".into(), "refresh_token".into(), "client_credentials".into()]
        },
        ..Default::default()
    };
    apply(&mut spec, f)?;
    let now = app.clock.now();
    let secret = ids::client_secret(app.rng.as_ref());
    let client = Client {
        client_id: ids::client_id(app.rng.as_ref()),
        secret_hash: token_hash(&secret),
        created_at: now,
        updated_at: now,
        spec,
    };
    app.store.create_client(&client).await?;
    let mut body = render(&client);
    body["client_secret"] = json!(secret);
    Ok((StatusCode::CREATED, Json(body)))
}

async fn list(
    _: Mgmt<ReadClients>,
    State(app): State<AppState>,
    Query(p): Query<Paging>,
) -> Result<Json<Value>, ApiError> {
    let listed = app.store.list_clients(p.page()?).await?;
    Ok(Json(p.wrap("clients", listed.items.iter().map(render).collect(), listed.total)))
}

async fn read(
    _: Mgmt<ReadClients>,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let c = app.store.get_client(&id).await?.ok_or_else(not_found)?;
    Ok(Json(render(&c)))
}

async fn update(
    _: Mgmt<UpdateClients>,
    State(app): State<AppState>,
    Path(id): Path<String>,
    Body(f): Body<Fields>,
) -> Result<Json<Value>, ApiError> {
    let mut c = app.store.get_client(&id).await?.ok_or_else(not_found)?;
    apply(&mut c.spec, f)?;
    c.updated_at = app.clock.now();
    app.store.update_client(&c).await.map_err(|e| match e {
        callsign_store::StoreError::NotFound => not_found(),
        e => e.into(),
    })?;
    Ok(Json(render(&c)))
}

async fn remove(
    _: Mgmt<DeleteClients>,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    match app.store.delete_client(&id).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(callsign_store::StoreError::NotFound) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

async fn rotate_secret(
    _: Mgmt<UpdateClientKeys>,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut c = app.store.get_client(&id).await?.ok_or_else(not_found)?;
    let secret = ids::client_secret(app.rng.as_ref());
    c.secret_hash = token_hash(&secret);
    c.updated_at = app.clock.now();
    app.store.update_client(&c).await?;
    let mut body = render(&c);
    body["client_secret"] = json!(secret);
    Ok(Json(body))
}
