//! The Management API (`/api/v2`): RS256 bearer tokens for the Management audience, a scope per endpoint.
mod absent;
mod attack_protection;
mod branding;
mod branding_phone;
mod clients;
mod connections;
pub mod destination_policy;
mod dev_inbox;
mod documents;
mod enrollments;
mod grants;
mod guardian;
mod log_streams;
mod logs;
pub mod phone_providers;
pub mod phone_routing;
pub mod pumping;
mod resource_servers;
pub mod tenant;
pub mod usage;
pub mod users;

use std::marker::PhantomData;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, header::AUTHORIZATION};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::RequestMeta;
use crate::app::AppState;
use callsign_core::identity::events::{self, EventCtx};

pub fn router(app: AppState) -> Router<AppState> {
    Router::new()
        .merge(clients::routes())
        .merge(grants::routes())
        .merge(users::routes())
        .merge(logs::routes())
        .merge(tenant::routes())
        .merge(guardian::routes())
        .merge(phone_providers::routes())
        .merge(phone_routing::routes())
        .merge(branding::routes())
        .merge(destination_policy::routes())
        .merge(pumping::routes())
        .merge(usage::routes())
        .merge(branding_phone::routes())
        .merge(enrollments::routes())
        .merge(dev_inbox::routes())
        .merge(attack_protection::routes())
        .merge(connections::routes())
        .merge(absent::routes())
        .merge(resource_servers::routes())
        .merge(log_streams::routes())
        .fallback(|| async { ApiError::not_found("Not Found") })
        .layer(axum::middleware::from_fn_with_state(app, authenticate))
}

/// The verified caller of a Management API request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub client_id: String,
    pub scopes: Vec<String>,
}

/// Verify the bearer token before any handler runs; afterwards record `sapi` / `fapi` for every write.
async fn authenticate(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let meta = RequestMeta::from_parts(req.headers(), req.extensions());
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .map(str::to_owned);
    let Some(token) = token else {
        return ApiError::unauthorized("Missing authentication").into_response();
    };
    let claims = match app.signer.verify(&app, &token, &app.config.management_audience()).await {
        Ok(c) => c,
        Err(e) => return ApiError::unauthorized(e.to_string()).into_response(),
    };
    let client_id = claims
        .get("azp")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| claims.get("sub").and_then(Value::as_str).map(|s| s.trim_end_matches("@clients").to_owned()))
        .unwrap_or_default();
    // A person's token (the dashboard's, minted for a signed-in operator) names them in the audit events.
    let operator = claims.get("sub").and_then(Value::as_str).filter(|s| !s.ends_with("@clients")).map(str::to_owned);
    let scopes = claims.get("scope").and_then(Value::as_str).map(callsign_domain::scopes::split).unwrap_or_default();
    let caller = Arc::new(Caller { client_id: client_id.clone(), scopes });
    req.extensions_mut().insert(caller);
    let method = req.method().clone();
    let path = format!("/api/v2{}", req.uri().path());
    // Operators read what was just written, on any node (the configuration cache is for the login and MFA paths).
    let resp = callsign_core::config_cache::read_through(next.run(req)).await;
    if method != Method::GET && method != Method::HEAD {
        let status = resp.status();
        let code = if status.is_success() { "sapi" } else { "fapi" };
        events::record(
            &app,
            code,
            &meta,
            EventCtx {
                client_id: Some(client_id),
                user_id: operator,
                description: Some(format!("{} {}", operation(&method), path)),
                details: json!({"request": {"method": method.as_str().to_lowercase(), "path": path}, "response": {"statusCode": status.as_u16()}}),
                ..Default::default()
            },
        )
        .await;
    }
    resp
}

fn operation(m: &Method) -> &'static str {
    match *m {
        Method::POST => "Create",
        Method::PATCH | Method::PUT => "Update",
        Method::DELETE => "Delete",
        _ => "Operation",
    }
}

/// A set of scopes any one of which allows an endpoint.
pub trait ScopeSet: Send + Sync + 'static {
    const ANY: &'static [&'static str];
}

macro_rules! scope_sets {
    ($($name:ident => [$($s:expr),+]),+ $(,)?) => {
        $(
            #[derive(Debug)]
            pub struct $name;
            impl ScopeSet for $name {
                const ANY: &'static [&'static str] = &[$($s),+];
            }
        )+
    };
}

use callsign_domain::scopes as sc;
scope_sets! {
    ReadClients => [sc::READ_CLIENTS],
    CreateClients => [sc::CREATE_CLIENTS],
    UpdateClients => [sc::UPDATE_CLIENTS],
    DeleteClients => [sc::DELETE_CLIENTS],
    UpdateClientKeys => [sc::UPDATE_CLIENT_KEYS],
    ReadGrants => [sc::READ_CLIENT_GRANTS],
    CreateGrants => [sc::CREATE_CLIENT_GRANTS],
    UpdateGrants => [sc::UPDATE_CLIENT_GRANTS],
    DeleteGrants => [sc::DELETE_CLIENT_GRANTS],
    ReadUsers => [sc::READ_USERS],
    CreateUsers => [sc::CREATE_USERS],
    UpdateUsers => [sc::UPDATE_USERS],
    DeleteUsers => [sc::DELETE_USERS],
    ReadLogs => [sc::READ_LOGS, sc::READ_LOGS_USERS],
    ReadTenant => [sc::READ_TENANT_SETTINGS],
    UpdateTenant => [sc::UPDATE_TENANT_SETTINGS],
    ReadGuardianFactors => [sc::READ_GUARDIAN_FACTORS],
    UpdateGuardianFactors => [sc::UPDATE_GUARDIAN_FACTORS],
    ReadMfaPolicies => [sc::READ_MFA_POLICIES],
    UpdateMfaPolicies => [sc::UPDATE_MFA_POLICIES],
    ReadGuardianEnrollments => [sc::READ_GUARDIAN_ENROLLMENTS],
    DeleteGuardianEnrollments => [sc::DELETE_GUARDIAN_ENROLLMENTS],
    CreateEnrollmentTickets => [sc::CREATE_GUARDIAN_ENROLLMENT_TICKETS],
    ReadAuthMethods => [sc::READ_AUTHENTICATION_METHODS],
    CreateAuthMethods => [sc::CREATE_AUTHENTICATION_METHODS],
    UpdateAuthMethods => [sc::UPDATE_AUTHENTICATION_METHODS],
    DeleteAuthMethods => [sc::DELETE_AUTHENTICATION_METHODS],
    CreatePhoneProviders => [sc::CREATE_PHONE_PROVIDERS],
    ReadPhoneProviders => [sc::READ_PHONE_PROVIDERS],
    UpdatePhoneProviders => [sc::UPDATE_PHONE_PROVIDERS],
    DeletePhoneProviders => [sc::DELETE_PHONE_PROVIDERS],
    CreatePhoneTemplates => [sc::CREATE_PHONE_TEMPLATES],
    ReadPhoneTemplates => [sc::READ_PHONE_TEMPLATES],
    UpdatePhoneTemplates => [sc::UPDATE_PHONE_TEMPLATES],
    DeletePhoneTemplates => [sc::DELETE_PHONE_TEMPLATES],
    ReadDevInbox => [sc::READ_DEV_INBOX],
    ReadConnections => [sc::READ_CONNECTIONS],
    UpdateConnections => [sc::UPDATE_CONNECTIONS],
    ReadAttackProtection => [sc::READ_ATTACK_PROTECTION],
    UpdateAttackProtection => [sc::UPDATE_ATTACK_PROTECTION],
    ReadAnomalyBlocks => [sc::READ_ANOMALY_BLOCKS],
    DeleteAnomalyBlocks => [sc::DELETE_ANOMALY_BLOCKS],
    ReadResourceServers => [sc::READ_RESOURCE_SERVERS],
    CreateResourceServers => [sc::CREATE_RESOURCE_SERVERS],
    UpdateResourceServers => [sc::UPDATE_RESOURCE_SERVERS],
    DeleteResourceServers => [sc::DELETE_RESOURCE_SERVERS],
    ReadRules => [sc::READ_RULES],
    ReadRulesConfigs => [sc::READ_RULES_CONFIGS],
    ReadHooks => [sc::READ_HOOKS],
    ReadActions => [sc::READ_ACTIONS],
    ReadOrganizations => [sc::READ_ORGANIZATIONS],
    ReadRoles => [sc::READ_ROLES],
    ReadCustomDomains => [sc::READ_CUSTOM_DOMAINS],
    ReadPrompts => [sc::READ_PROMPTS],
    UpdatePrompts => [sc::UPDATE_PROMPTS],
    ReadBranding => [sc::READ_BRANDING],
    UpdateBranding => [sc::UPDATE_BRANDING],
    ReadMigrations => [sc::READ_MIGRATIONS],
    UpdateMigrations => [sc::UPDATE_MIGRATIONS],
    ReadForms => [sc::READ_FORMS],
    ReadFlows => [sc::READ_FLOWS],
    ReadFlowsVaultConnections => [sc::READ_FLOWS_VAULT_CONNECTIONS],
    ReadSelfServiceProfiles => [sc::READ_SELF_SERVICE_PROFILES],
    ReadNetworkAcls => [sc::READ_NETWORK_ACLS],
    ReadTokenExchangeProfiles => [sc::READ_TOKEN_EXCHANGE_PROFILES],
    ReadUserAttributeProfiles => [sc::READ_USER_ATTRIBUTE_PROFILES],
    ReadConnectionProfiles => [sc::READ_CONNECTION_PROFILES],
    ReadEventStreams => [sc::READ_EVENT_STREAMS],
    ReadLogStreams => [sc::READ_LOG_STREAMS],
    CreateLogStreams => [sc::CREATE_LOG_STREAMS],
    UpdateLogStreams => [sc::UPDATE_LOG_STREAMS],
    DeleteLogStreams => [sc::DELETE_LOG_STREAMS],
    ReadDestinationPolicy => [sc::READ_PHONE_DESTINATION_POLICY],
    UpdateDestinationPolicy => [sc::UPDATE_PHONE_DESTINATION_POLICY],
    ReadPumpingDetection => [sc::READ_PHONE_PUMPING_DETECTION],
    UpdatePumpingDetection => [sc::UPDATE_PHONE_PUMPING_DETECTION],
    ReadPhoneUsage => [sc::READ_PHONE_USAGE],
    UpdatePhoneUsage => [sc::UPDATE_PHONE_USAGE],
}

/// Extractor: the caller, proven to hold one of `S`'s scopes.
#[derive(Debug)]
pub struct Mgmt<S: ScopeSet> {
    pub caller: Arc<Caller>,
    _scopes: PhantomData<S>,
}

impl<S: ScopeSet, St: Send + Sync> FromRequestParts<St> for Mgmt<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, ApiError> {
        let caller = parts
            .extensions
            .get::<Arc<Caller>>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("Missing authentication"))?;
        if !S::ANY.iter().any(|s| caller.scopes.iter().any(|c| c == s)) {
            return Err(ApiError::insufficient_scope(S::ANY));
        }
        Ok(Mgmt { caller, _scopes: PhantomData })
    }
}

pub use crate::http::extract::Path;

/// Auth0's paging parameters. Query structs `#[serde(flatten)]` this, and flattening hands every value over as a
/// string, so the fields parse from strings themselves.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct Paging {
    #[serde(deserialize_with = "lenient")]
    pub page: Option<u32>,
    #[serde(deserialize_with = "lenient")]
    pub per_page: Option<u32>,
    #[serde(deserialize_with = "lenient")]
    pub include_totals: Option<bool>,
}

/// A query value given as a string (`"10"`, `"true"`) or as the value itself.
pub fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr + serde::Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either<T> {
        S(String),
        V(T),
    }
    match Option::<Either<T>>::deserialize(d)? {
        None => Ok(None),
        Some(Either::V(v)) => Ok(Some(v)),
        Some(Either::S(s)) if s.is_empty() => Ok(None),
        Some(Either::S(s)) => s.parse().map(Some).map_err(|_| serde::de::Error::custom(format!("invalid value `{s}`"))),
    }
}

impl Paging {
    pub fn page(&self) -> Result<callsign_store::Page, ApiError> {
        let per_page = self.per_page.unwrap_or(50);
        if per_page == 0 || per_page > 100 {
            return Err(ApiError::invalid_query("Query validation error: 'per_page' must be between 1 and 100."));
        }
        Ok(callsign_store::Page::new(self.page.unwrap_or(0), per_page))
    }

    /// A bare array, or `{start, limit, length, total, <key>: [...]}` with `include_totals=true`.
    pub fn wrap(&self, key: &str, items: Vec<Value>, total: u64) -> Value {
        if self.include_totals == Some(true) {
            let page = u64::from(self.page.unwrap_or(0));
            let limit = u64::from(self.per_page.unwrap_or(50));
            json!({"start": page.saturating_mul(limit), "limit": limit, "length": items.len(), "total": total, key: items})
        } else {
            Value::Array(items)
        }
    }
}

/// Shallow merge used by PATCH for metadata: keys set to null are removed.
pub fn merge_metadata(target: &mut serde_json::Map<String, Value>, patch: serde_json::Map<String, Value>) {
    for (k, v) in patch {
        if v.is_null() {
            target.remove(&k);
        } else {
            target.insert(k, v);
        }
    }
}
