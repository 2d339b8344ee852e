//! The Auth0 resource types Callsign does not have (rules, hooks, actions, organizations, roles, custom domains,
//! prompts, migrations, forms, flows, …), answered the way Auth0 answers a tenant that has none of them:
//! empty lists and default settings. Configuration-as-code tools (`a0deploy export`) read every type, and an import
//! of what they read writes the same defaults back, which is accepted; any other write is refused with 400
//! `operation_not_supported` rather than silently dropped. See docs/API.md, "Resource types Callsign does not have".
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use super::{
    Mgmt, Paging, ReadActions, ReadCustomDomains, ReadFlows, ReadFlowsVaultConnections, ReadForms, ReadHooks,
    ReadMigrations, ReadNetworkAcls, ReadOrganizations, ReadPrompts, ReadRoles, ReadRules, ReadRulesConfigs,
    ReadSelfServiceProfiles, UpdateMigrations, UpdatePrompts,
};
use super::{ReadAttackProtection, UpdateAttackProtection};
use super::{ReadConnectionProfiles, ReadEventStreams, ReadTokenExchangeProfiles, ReadUserAttributeProfiles};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Body, Path, Query};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/rules", get(rules))
        .route("/rules-configs", get(rules_configs))
        .route("/hooks", get(hooks))
        .route("/actions/actions", get(actions))
        .route("/actions/triggers", get(triggers))
        .route("/organizations", get(organizations))
        .route("/roles", get(roles))
        .route("/custom-domains", get(custom_domains))
        .route("/prompts", get(prompts).patch(set_prompts))
        .route("/prompts/{prompt}/custom-text/{language}", get(custom_text).put(set_custom_text))
        .route("/prompts/{prompt}/partials", get(partials).put(set_partials))
        .route("/migrations", get(migrations).patch(set_migrations))
        .route("/forms", get(forms))
        .route("/flows", get(flows))
        .route("/flows/vault/connections", get(vault_connections))
        .route("/self-service-profiles", get(self_service_profiles))
        .route("/network-acls", get(network_acls))
        .route("/token-exchange-profiles", get(token_exchange_profiles))
        .route("/user-attribute-profiles", get(user_attribute_profiles))
        .route("/connection-profiles", get(connection_profiles))
        .route("/event-streams", get(event_streams))
        .route("/attack-protection/breached-password-detection", get(breached_passwords).patch(set_breached_passwords))
        .route("/attack-protection/bot-detection", get(bot_detection))
        .route("/attack-protection/captcha", get(captcha))
        .route("/supplemental-signals", get(supplemental_signals))
        .route("/risk-assessments/settings", get(risk_assessments).patch(set_risk_assessments))
        .route("/risk-assessments/settings/new-device", get(new_device).patch(set_new_device))
}

/// An empty list, paged like every Management list (a bare `[]`, or the totals object with `include_totals`).
macro_rules! empty_list {
    ($($name:ident: $scope:ty => $key:literal),+ $(,)?) => {
        $(
            async fn $name(_: Mgmt<$scope>, Query(p): Query<Paging>) -> Result<Json<Value>, ApiError> {
                p.page()?;
                Ok(Json(p.wrap($key, Vec::new(), 0)))
            }
        )+
    };
}

empty_list! {
    rules: ReadRules => "rules",
    hooks: ReadHooks => "hooks",
    organizations: ReadOrganizations => "organizations",
    roles: ReadRoles => "roles",
    forms: ReadForms => "forms",
    flows: ReadFlows => "flows",
    vault_connections: ReadFlowsVaultConnections => "connections",
    self_service_profiles: ReadSelfServiceProfiles => "self_service_profiles",
    network_acls: ReadNetworkAcls => "network_acls",
}

async fn rules_configs(_: Mgmt<ReadRulesConfigs>) -> Json<Value> {
    Json(json!([]))
}

async fn custom_domains(_: Mgmt<ReadCustomDomains>) -> Json<Value> {
    Json(json!([]))
}

/// `GET /actions/actions` answers its own paged shape, totals or not.
async fn actions(_: Mgmt<ReadActions>, Query(p): Query<Paging>) -> Result<Json<Value>, ApiError> {
    p.page()?;
    Ok(Json(json!({"actions": [], "total": 0, "page": p.page.unwrap_or(0), "per_page": p.per_page.unwrap_or(50)})))
}

/// A checkpoint-paged list (`from`, `take`), always empty: `{"<type>": []}` with no `next`.
macro_rules! empty_checkpoint_list {
    ($($name:ident: $scope:ty => $key:literal),+ $(,)?) => {
        $(
            async fn $name(_: Mgmt<$scope>) -> Json<Value> {
                Json(json!({ $key: [] }))
            }
        )+
    };
}

empty_checkpoint_list! {
    token_exchange_profiles: ReadTokenExchangeProfiles => "token_exchange_profiles",
    user_attribute_profiles: ReadUserAttributeProfiles => "user_attribute_profiles",
    connection_profiles: ReadConnectionProfiles => "connection_profiles",
    // Auth0 names this list in camelCase.
    event_streams: ReadEventStreams => "eventStreams",
}

async fn triggers(_: Mgmt<ReadActions>) -> Json<Value> {
    Json(json!({"triggers": []}))
}

/// Refuse a write that would change something Callsign does not have.
fn unsupported(what: &str) -> ApiError {
    ApiError::bad_request(format!(
        "Callsign does not have {what}; only the default settings can be written back (docs/API.md)."
    ))
    .code("operation_not_supported")
}

/// Accept a write whose every field is the one `defaults` holds (or that names no field); answer the defaults.
fn write_back(defaults: Value, body: &Map<String, Value>, what: &str) -> Result<Json<Value>, ApiError> {
    let same = body.iter().all(|(k, v)| defaults.get(k) == Some(v));
    if same { Ok(Json(defaults)) } else { Err(unsupported(what)) }
}

fn prompt_defaults() -> Value {
    json!({"universal_login_experience": "new", "identifier_first": false, "webauthn_platform_first_factor": false})
}

async fn prompts(_: Mgmt<ReadPrompts>) -> Json<Value> {
    Json(prompt_defaults())
}

async fn set_prompts(_: Mgmt<UpdatePrompts>, Body(b): Body<Map<String, Value>>) -> Result<Json<Value>, ApiError> {
    write_back(prompt_defaults(), &b, "configurable prompts")
}

async fn custom_text(_: Mgmt<ReadPrompts>, Path(_): Path<(String, String)>) -> Json<Value> {
    Json(json!({}))
}

async fn set_custom_text(
    _: Mgmt<UpdatePrompts>,
    Path(_): Path<(String, String)>,
    Body(b): Body<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    write_back(json!({}), &b, "custom prompt texts")
}

async fn partials(_: Mgmt<ReadPrompts>, Path(_): Path<String>) -> Json<Value> {
    Json(json!({}))
}

async fn set_partials(
    _: Mgmt<UpdatePrompts>,
    Path(_): Path<String>,
    Body(b): Body<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    write_back(json!({}), &b, "prompt partials")
}

async fn migrations(_: Mgmt<ReadMigrations>) -> Json<Value> {
    Json(json!({"flags": {}}))
}

async fn set_migrations(_: Mgmt<UpdateMigrations>, Body(b): Body<Map<String, Value>>) -> Result<Json<Value>, ApiError> {
    write_back(json!({"flags": {}}), &b, "migration flags")
}

/// Breached password detection is off, and there is nothing to turn on: Callsign checks no breach corpus.
fn breached_password_defaults() -> Value {
    json!({
        "enabled": false,
        "shields": [],
        "admin_notification_frequency": [],
        "method": "standard",
        "stage": {"pre-user-registration": {"shields": []}, "pre-change-password": {"shields": []}},
    })
}

async fn breached_passwords(_: Mgmt<ReadAttackProtection>) -> Json<Value> {
    Json(breached_password_defaults())
}

async fn set_breached_passwords(
    _: Mgmt<UpdateAttackProtection>,
    Body(b): Body<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    write_back(breached_password_defaults(), &b, "breached password detection")
}

/// 403, as Auth0 answers a tenant whose plan lacks the feature (configuration tools skip the type on a 403).
fn not_on_this_tenant(what: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        format!("{what} is not available on this tenant (Callsign does not have it)."),
    )
    .code("operation_not_supported")
}

async fn bot_detection(_: Mgmt<ReadAttackProtection>) -> ApiError {
    not_on_this_tenant("Bot detection")
}

async fn captcha(_: Mgmt<ReadAttackProtection>) -> ApiError {
    not_on_this_tenant("Captcha")
}

async fn supplemental_signals(_: Mgmt<ReadAttackProtection>) -> ApiError {
    not_on_this_tenant("Supplemental signals")
}

async fn risk_assessments(_: Mgmt<ReadAttackProtection>) -> Json<Value> {
    Json(json!({"enabled": false}))
}

async fn set_risk_assessments(
    _: Mgmt<UpdateAttackProtection>,
    Body(b): Body<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    write_back(json!({"enabled": false}), &b, "risk assessments")
}

async fn new_device(_: Mgmt<ReadAttackProtection>) -> Json<Value> {
    Json(json!({"remember_for": 0}))
}

async fn set_new_device(
    _: Mgmt<UpdateAttackProtection>,
    Body(b): Body<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    write_back(json!({"remember_for": 0}), &b, "risk assessments")
}
