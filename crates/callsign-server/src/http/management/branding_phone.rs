//! `/api/v2/branding/phone/providers` and `/api/v2/branding/phone/templates`: Auth0's Unified Phone Experience
//! (reference §5, §10.2), as a second view of the one Guardian configuration ([`GuardianConfig`]).
//!
//! There is one phone configuration underneath, so the two APIs cannot disagree:
//! - the provider resource stores only its identity (`id`, `name`, timestamps). A `twilio` provider's `sid`,
//!   `default_from`, `mssid` and auth token *are* the Guardian Twilio settings (`from`,
//!   `messaging_service_sid`); `custom` is the `phone-message-hook` provider (its URL and signing secrets are set
//!   with `/guardian/factors/phone/providers/phone-message-hook`); `delivery_methods` (`text`, `voice`) *are*
//!   the phone factor's message types (`sms`, `voice`); `disabled` is "this provider is not the selected
//!   Guardian provider". Enabling it selects it, disabling it selects the built-in provider (`auth0`), and a
//!   `PUT /guardian/factors/phone/selected-provider` shows up here as `disabled`. Deleting it selects `auth0`
//!   and, for `twilio`, forgets the Twilio settings and token.
//! - the `otp_enroll` / `otp_verify` templates' text bodies *are* Guardian's `enrollment_message` /
//!   `verification_message`. A voice body, when set, is what voice calls say instead (unset: the text is
//!   spoken); `from`, when set, is the sender of that message type; a disabled template sends the built-in text.
//!   `change_password`, `blocked_account` and `password_breach` are stored and can be tried, but no Callsign
//!   flow sends them yet.
//!
//! `try` sends a real message now through the provider (a test message for a provider, the rendered template
//! with the code `123456` for a template) and logs it as `gd_send_sms` / `gd_send_voice` marked `"test": true`.
//! A provider failure is a 400 that carries the provider's error (Auth0 answers 202 and fails later).
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use callsign_domain::phone::PhoneNumber;
use liquid::model::{Object, Value as LValue};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::Path;
use super::guardian::{check_selection, load, save};
use super::phone_providers::{problem, save_with_secrets};
use super::{
    CreatePhoneProviders, CreatePhoneTemplates, DeletePhoneProviders, DeletePhoneTemplates, Mgmt, ReadPhoneProviders,
    ReadPhoneTemplates, UpdatePhoneProviders, UpdatePhoneTemplates, lenient,
};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{Body, Query, RequestMeta};
use callsign_core::delivery::{TestMessage, send_test};
use callsign_core::guardian::{GuardianConfig, PhoneProviderRecord, PhoneTemplateRecord};
use callsign_core::templates;
use callsign_messaging::{FieldKind, ProviderKind, Required};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/branding/phone/providers", get(list_providers).post(create_provider))
        .route("/branding/phone/providers/{id}", get(get_provider).patch(patch_provider).delete(delete_provider))
        .route("/branding/phone/providers/{id}/try", post(try_provider))
        .route("/branding/phone/templates", get(list_templates).post(create_template))
        .route("/branding/phone/templates/{id}", get(get_template).patch(patch_template).delete(delete_template))
        .route("/branding/phone/templates/{id}/reset", patch(reset_template))
        .route("/branding/phone/templates/{id}/try", post(try_template))
}

const NOT_FOUND: &str = "Notification Resource not found";
const TEMPLATE_NOT_FOUND: &str = "Phone template does not exist";
const TRY_ACCEPTED: &str = "Test notification successfully sent for processing";
/// The code a template test message carries.
pub const SAMPLE_CODE: &str = "123456";

fn too_few() -> ApiError {
    ApiError::bad_request("Payload validation error: 'Too few properties defined (0), must be at least 1'.")
}

async fn changed(app: &AppState, meta: &RequestMeta, client_id: &str, details: Value) {
    super::guardian::changed(app, meta, client_id, json!({"branding_phone": details})).await;
}

fn now(app: &AppState) -> String {
    app.clock.now().to_rfc3339()
}

fn new_id(app: &AppState, prefix: &str) -> String {
    format!("{prefix}{}", callsign_domain::rng::from_alphabet(app.rng.as_ref(), callsign_domain::rng::ALNUM, 22))
}

/// The tenant, as Auth0 names it in these resources: the public host.
fn tenant(app: &AppState) -> String {
    let url = app.config.public_url.as_str();
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// A string of `min..=max` characters without control characters.
fn string_in(prop: &str, v: &Value, min: usize, max: usize) -> Result<String, ApiError> {
    let s = v.as_str().ok_or_else(|| ApiError::invalid_property(prop, "Expected type string"))?;
    let n = s.chars().count();
    if n < min {
        return Err(ApiError::invalid_property(prop, format!("String is too short ({min} chars min)")));
    }
    if n > max {
        return Err(ApiError::invalid_property(prop, format!("String is too long ({max} chars max)")));
    }
    if !prop.contains("body") && s.chars().any(char::is_control) {
        return Err(ApiError::invalid_property(prop, "String contains control characters"));
    }
    Ok(s.to_owned())
}

fn object<'a>(prop: &str, v: &'a Value) -> Result<&'a Map<String, Value>, ApiError> {
    v.as_object().ok_or_else(|| ApiError::invalid_property(prop, "Expected type object"))
}

fn only_keys(prop: &str, o: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::invalid_property(
            prop,
            format!("Additional properties not allowed: {k}; allowed are {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    #[serde(deserialize_with = "lenient")]
    disabled: Option<bool>,
}

// ------------------------------------------------------------------------------------------------------------
// Providers
// ------------------------------------------------------------------------------------------------------------

fn delivery_methods(cfg: &GuardianConfig) -> Vec<&'static str> {
    let mut out = Vec::new();
    if cfg.channel_enabled("sms") {
        out.push("text");
    }
    if cfg.channel_enabled("voice") {
        out.push("voice");
    }
    out
}

/// The provider kind a record names (its UPE name).
fn kind_of(app: &AppState, rec: &PhoneProviderRecord) -> Result<&'static dyn ProviderKind, ApiError> {
    app.providers.by_upe_name(&rec.name).map_err(ApiError::internal)
}

fn provider_disabled(app: &AppState, cfg: &GuardianConfig, rec: &PhoneProviderRecord) -> bool {
    rec.guardian_provider(&app.providers) != Some(cfg.provider.as_str())
}

fn provider_view(app: &AppState, cfg: &GuardianConfig, rec: &PhoneProviderRecord) -> Value {
    let mut conf = match app.providers.by_upe_name(&rec.name) {
        Ok(kind) => kind.upe_configuration(&cfg.provider(kind.name())),
        Err(_) => Map::new(),
    };
    conf.insert("delivery_methods".into(), json!(delivery_methods(cfg)));
    json!({
        "id": rec.id,
        "tenant": tenant(app),
        "name": rec.name,
        "channel": "phone",
        "disabled": provider_disabled(app, cfg, rec),
        "configuration": conf,
        "created_at": rec.created_at,
        "updated_at": rec.updated_at,
    })
}

/// Apply a provider's `configuration` (validated as a whole: it replaces the previous one): its
/// `delivery_methods` are the phone factor's message types, the rest is the provider's own.
fn apply_configuration(kind: &dyn ProviderKind, conf: &Value, cfg: &mut GuardianConfig) -> Result<Value, ApiError> {
    let o = object("configuration", conf)?;
    let methods =
        o.get("delivery_methods").ok_or_else(|| ApiError::missing_property("configuration.delivery_methods"))?;
    let methods = methods
        .as_array()
        .ok_or_else(|| ApiError::invalid_property("configuration.delivery_methods", "Expected type array"))?;
    if methods.is_empty() {
        return Err(ApiError::invalid_property("configuration.delivery_methods", "Array is too short (0), minimum 1"));
    }
    let mut types = Vec::new();
    for m in methods {
        match m.as_str() {
            Some("text") => types.push("sms".to_owned()),
            Some("voice") => types.push("voice".to_owned()),
            _ => {
                return Err(ApiError::invalid_property(
                    "configuration.delivery_methods",
                    format!("No enum match for: {m}; expected \"text\" or \"voice\""),
                ));
            }
        }
    }
    let types = super::guardian::normalize_message_types(&types)?;
    let mut values = cfg.provider(kind.name());
    kind.apply_upe_configuration(o, &mut values).map_err(problem)?;
    cfg.providers.insert(kind.name().to_owned(), values);
    cfg.message_types = types.clone();
    Ok(json!({"delivery_methods": types}))
}

/// A provider's `credentials`: the secrets they set, by field (Twilio's auth token; nothing for `custom`).
fn check_credentials(
    kind: &dyn ProviderKind,
    creds: &Value,
) -> Result<BTreeMap<String, Option<Zeroizing<String>>>, ApiError> {
    Ok(kind.upe_credentials(creds).map_err(problem)?.into_iter().map(|(k, v)| (k, Some(v))).collect())
}

/// The secret fields a provider always needs that are neither stored nor given now: `credentials.<field>`.
fn missing_credentials(
    kind: &dyn ProviderKind,
    values: &Map<String, Value>,
    given: &BTreeMap<String, Option<Zeroizing<String>>>,
) -> Result<(), ApiError> {
    let stored: Vec<String> = kind.sealed_secrets(values).into_iter().map(|(k, _)| k).collect();
    for f in kind.fields() {
        if f.kind == FieldKind::Secret
            && f.required == Required::Always
            && !stored.iter().any(|s| s == f.name)
            && !given.contains_key(f.name)
        {
            return Err(ApiError::missing_property(&format!("credentials.{}", f.name)));
        }
    }
    Ok(())
}

fn check_name(app: &AppState, v: Option<String>) -> Result<String, ApiError> {
    let n = v.ok_or_else(|| ApiError::missing_property("name"))?;
    if app.providers.by_upe_name(&n).is_err() {
        let names: Vec<String> = app.providers.upe_names().iter().map(|n| format!("\"{n}\"")).collect();
        return Err(ApiError::invalid_property(
            "name",
            format!("No enum match for: \"{n}\"; expected {}", names.join(" or ")),
        ));
    }
    Ok(n)
}

fn find_provider<'a>(cfg: &'a GuardianConfig, id: &str) -> Result<&'a PhoneProviderRecord, ApiError> {
    cfg.phone_provider.as_ref().filter(|p| p.id == id).ok_or_else(|| ApiError::not_found(NOT_FOUND))
}

async fn list_providers(
    _: Mgmt<ReadPhoneProviders>,
    State(app): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let cfg = load(&app).await?;
    let providers: Vec<Value> = cfg
        .phone_provider
        .iter()
        .filter(|p| q.disabled.is_none_or(|d| d == provider_disabled(&app, &cfg, p)))
        .map(|p| {
            let mut v = provider_view(&app, &cfg, p);
            v["credentials"] = Value::Null;
            v
        })
        .collect();
    Ok(Json(json!({"providers": providers})))
}

async fn get_provider(
    _: Mgmt<ReadPhoneProviders>,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let cfg = load(&app).await?;
    let rec = find_provider(&cfg, &id)?;
    Ok(Json(provider_view(&app, &cfg, rec)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderBody {
    name: Option<String>,
    disabled: Option<bool>,
    configuration: Option<Value>,
    credentials: Option<Value>,
}

async fn create_provider(
    m: Mgmt<CreatePhoneProviders>,
    State(app): State<AppState>,
    meta: RequestMeta,
    Body(b): Body<ProviderBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = check_name(&app, b.name)?;
    let kind = app.providers.by_upe_name(&name).map_err(ApiError::internal)?;
    let credentials = b.credentials.ok_or_else(|| ApiError::missing_property("credentials"))?;
    let secrets = check_credentials(kind, &credentials)?;
    let conf = b.configuration.ok_or_else(|| ApiError::missing_property("configuration"))?;
    let mut cfg = load(&app).await?;
    if cfg.phone_provider.is_some() {
        return Err(ApiError::conflict("Custom phone provider conflict.").code("phone_provider_conflict"));
    }
    let before = cfg.provider(kind.name());
    let applied = apply_configuration(kind, &conf, &mut cfg)?;
    missing_credentials(kind, &cfg.provider(kind.name()), &secrets)?;
    let at = now(&app);
    let rec =
        PhoneProviderRecord { id: new_id(&app, "pro_"), name: name.clone(), created_at: at.clone(), updated_at: at };
    let disabled = b.disabled.unwrap_or(false);
    if !disabled {
        cfg.provider = kind.name().to_owned();
    }
    check_selection(&app, &cfg)?;
    cfg.phone_provider = Some(rec.clone());
    save_with_secrets(&app, &mut cfg, kind, &before, secrets).await?;
    changed(
        &app,
        &meta,
        &m.caller.client_id,
        json!({"provider": {"id": rec.id, "name": name, "disabled": disabled, "configuration": applied}}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(provider_view(&app, &cfg, &rec))))
}

async fn patch_provider(
    m: Mgmt<UpdatePhoneProviders>,
    State(app): State<AppState>,
    Path(id): Path<String>,
    meta: RequestMeta,
    Body(b): Body<ProviderBody>,
) -> Result<Json<Value>, ApiError> {
    if b.name.is_none() && b.disabled.is_none() && b.configuration.is_none() && b.credentials.is_none() {
        return Err(too_few());
    }
    let mut cfg = load(&app).await?;
    let mut rec = find_provider(&cfg, &id)?.clone();
    let was_selected = !provider_disabled(&app, &cfg, &rec);
    let mut details = Map::new();
    if let Some(n) = b.name {
        let n = check_name(&app, Some(n))?;
        if n != rec.name && b.configuration.is_none() {
            return Err(ApiError::missing_property("configuration"));
        }
        details.insert("name".into(), json!(n));
        rec.name = n;
    }
    let kind = kind_of(&app, &rec)?;
    let before = cfg.provider(kind.name());
    let secrets = match &b.credentials {
        Some(c) => check_credentials(kind, c)?,
        None => BTreeMap::new(),
    };
    if let Some(conf) = &b.configuration {
        details.insert("configuration".into(), apply_configuration(kind, conf, &mut cfg)?);
    }
    missing_credentials(kind, &cfg.provider(kind.name()), &secrets)?;
    let selected = match b.disabled {
        Some(d) => {
            details.insert("disabled".into(), json!(d));
            !d
        }
        None => was_selected,
    };
    if selected {
        cfg.provider = kind.name().to_owned();
    } else if was_selected {
        cfg.provider = app.providers.default_provider().name().to_owned();
    }
    check_selection(&app, &cfg)?;
    if !secrets.is_empty() {
        let set: Map<String, Value> = secrets.keys().map(|k| (k.clone(), json!("set"))).collect();
        details.insert("credentials".into(), Value::Object(set));
    }
    rec.updated_at = now(&app);
    cfg.phone_provider = Some(rec.clone());
    save_with_secrets(&app, &mut cfg, kind, &before, secrets).await?;
    changed(&app, &meta, &m.caller.client_id, json!({"provider": {"id": rec.id, "changed": details}})).await;
    Ok(Json(provider_view(&app, &cfg, &rec)))
}

async fn delete_provider(
    m: Mgmt<DeletePhoneProviders>,
    State(app): State<AppState>,
    Path(id): Path<String>,
    meta: RequestMeta,
) -> Result<StatusCode, ApiError> {
    let mut cfg = load(&app).await?;
    let rec = find_provider(&cfg, &id)?.clone();
    if !provider_disabled(&app, &cfg, &rec) {
        cfg.provider = app.providers.default_provider().name().to_owned();
    }
    cfg.phone_provider = None;
    // What the record showed goes with it (the provider says what: Twilio's settings and token), its secrets after
    // the save.
    let kind = kind_of(&app, &rec)?;
    let before = cfg.provider(kind.name());
    let mut values = before.clone();
    let forgotten = kind.forget_upe(&mut values);
    cfg.providers.insert(kind.name().to_owned(), values);
    let secrets = forgotten.iter().map(|f| ((*f).to_owned(), None)).collect();
    save_with_secrets(&app, &mut cfg, kind, &before, secrets).await?;
    changed(&app, &meta, &m.caller.client_id, json!({"provider": {"id": rec.id, "deleted": true}})).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TryBody {
    to: Option<String>,
    delivery_method: Option<String>,
}

/// `(E.164 number, channel)` of a try request.
fn check_try(b: TryBody) -> Result<(PhoneNumber, &'static str), ApiError> {
    let to = string_in("to", &json!(b.to.ok_or_else(|| ApiError::missing_property("to"))?), 1, 16)?;
    let to = PhoneNumber::parse(&to).map_err(|e| ApiError::invalid_property("to", e))?;
    let channel = match b.delivery_method.as_deref() {
        None | Some("text") => "sms",
        Some("voice") => "voice",
        Some(other) => {
            return Err(ApiError::invalid_property(
                "delivery_method",
                format!("No enum match for: \"{other}\"; expected \"text\" or \"voice\""),
            ));
        }
    };
    Ok((to, channel))
}

/// Send a try message now: 202 as Auth0 answers, or a 400 that carries the provider's error.
async fn try_send(
    app: &AppState,
    meta: &RequestMeta,
    msg: &TestMessage<'_>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    send_test(app, meta, msg).await.map_err(|e| {
        ApiError::bad_request(format!("The phone provider did not send the test message: {e}"))
            .code("phone_provider_error")
    })?;
    Ok((StatusCode::ACCEPTED, Json(json!({"code": 202, "message": TRY_ACCEPTED}))))
}

async fn try_provider(
    m: Mgmt<CreatePhoneProviders>,
    State(app): State<AppState>,
    Path(id): Path<String>,
    meta: RequestMeta,
    Body(b): Body<TryBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let cfg = load(&app).await?;
    let rec = find_provider(&cfg, &id)?.clone();
    let (to, channel) = check_try(b)?;
    let tenant = super::tenant::load(&app).await?;
    let text = callsign_core::delivery::test_text(tenant.friendly_name.as_deref().unwrap_or("Callsign"));
    let msg = TestMessage {
        provider: kind_of(&app, &rec)?.name(),
        source: "branding/phone/providers/try",
        client_id: Some(&m.caller.client_id),
        to: to.e164(),
        channel,
        text: &text,
        from: None,
    };
    try_send(&app, &meta, &msg).await
}

// ------------------------------------------------------------------------------------------------------------
// Templates
// ------------------------------------------------------------------------------------------------------------

/// The `(text, voice)` bodies a template type has now.
fn bodies(cfg: &GuardianConfig, kind: &str) -> (String, String) {
    let (def_text, def_voice) = templates::upe_default(kind).unwrap_or_default();
    let rec = cfg.phone_templates.get(kind);
    let text = match kind {
        "otp_enroll" => cfg.enrollment_message.clone(),
        "otp_verify" => cfg.verification_message.clone(),
        _ => rec.and_then(|r| r.text.clone()).unwrap_or_else(|| def_text.to_owned()),
    };
    let voice =
        rec.and_then(|r| r.voice.clone()).or_else(|| def_voice.map(str::to_owned)).unwrap_or_else(|| text.clone());
    (text, voice)
}

fn template_view(app: &AppState, cfg: &GuardianConfig, kind: &str) -> Value {
    let rec = cfg.phone_templates.get(kind);
    let (text, voice) = bodies(cfg, kind);
    let mut v = json!({
        "type": kind,
        "channel": "phone",
        "customizable": true,
        "tenant": tenant(app),
        "disabled": rec.is_some_and(|r| r.disabled),
        "content": {
            "syntax": "liquid",
            "from": rec.map(|r| r.from.clone()).unwrap_or_default(),
            "body": {"text": text, "voice": voice},
        },
    });
    if let (Some(r), Some(o)) = (rec, v.as_object_mut()) {
        o.insert("id".into(), json!(r.id));
        o.insert("created_at".into(), json!(r.created_at));
        o.insert("updated_at".into(), json!(r.updated_at));
    }
    v
}

fn find_template(cfg: &GuardianConfig, id: &str) -> Result<String, ApiError> {
    cfg.phone_templates
        .iter()
        .find(|(_, r)| r.id == id)
        .map(|(k, _)| k.clone())
        .ok_or_else(|| ApiError::not_found(TEMPLATE_NOT_FOUND))
}

/// A body: 1–20000 characters of Liquid that compiles.
fn check_body(prop: &str, v: &Value) -> Result<String, ApiError> {
    let s = string_in(prop, v, 1, 20_000)?;
    templates::validate(&s).map_err(|e| {
        let e = e.trim().trim_end_matches('.');
        ApiError::bad_request(format!("Invalid {prop} template: {e}."))
    })?;
    Ok(s)
}

/// A code message's body must put the code in the message (`templates::require_code`).
fn require_code(prop: &str, body: &str) -> Result<(), ApiError> {
    templates::require_code(body).map_err(|e| ApiError::bad_request(format!("Invalid {prop} template: {e}.")))
}

/// Apply a template's `content` (only the members given). Returns what changed.
fn apply_content(
    kind: &str,
    content: &Value,
    cfg: &mut GuardianConfig,
    rec: &mut PhoneTemplateRecord,
) -> Result<Value, ApiError> {
    let o = object("content", content)?;
    only_keys("content", o, &["syntax", "from", "body"])?;
    let mut changed = Map::new();
    match o.get("syntax") {
        None => {}
        Some(Value::String(s)) if s == "liquid" => {}
        Some(other) => {
            return Err(ApiError::invalid_property(
                "content.syntax",
                format!("No enum match for: {other}; expected \"liquid\""),
            ));
        }
    }
    if let Some(f) = o.get("from") {
        rec.from = match f {
            Value::Null => String::new(),
            Value::String(s) if s.is_empty() => String::new(),
            v => string_in("content.from", v, 1, 16)?,
        };
        changed.insert("from".into(), json!(rec.from));
    }
    if let Some(body) = o.get("body") {
        let b = object("content.body", body)?;
        only_keys("content.body", b, &["text", "voice"])?;
        if let Some(t) = b.get("text") {
            let t = check_body("content.body.text", t)?;
            if templates::CODE_TYPES.contains(&kind) {
                require_code("content.body.text", &t)?;
            }
            match kind {
                "otp_enroll" => cfg.enrollment_message = t,
                "otp_verify" => cfg.verification_message = t,
                _ => rec.text = Some(t),
            }
            changed.insert("text".into(), json!(true));
        }
        if let Some(v) = b.get("voice") {
            rec.voice = match v {
                Value::Null => None,
                v => {
                    let t = check_body("content.body.voice", v)?;
                    if templates::CODE_TYPES.contains(&kind) {
                        require_code("content.body.voice", &t)?;
                    }
                    Some(t)
                }
            };
            changed.insert("voice".into(), json!(true));
        }
    }
    Ok(Value::Object(changed))
}

/// Put a type's content back to the built-in one.
fn reset_content(kind: &str, cfg: &mut GuardianConfig, rec: &mut PhoneTemplateRecord) {
    rec.from = String::new();
    rec.text = None;
    rec.voice = None;
    match kind {
        "otp_enroll" => cfg.enrollment_message = templates::DEFAULT_ENROLLMENT.to_owned(),
        "otp_verify" => cfg.verification_message = templates::DEFAULT_VERIFICATION.to_owned(),
        _ => {}
    }
}

async fn list_templates(
    _: Mgmt<ReadPhoneTemplates>,
    State(app): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let cfg = load(&app).await?;
    let items: Vec<Value> = templates::UPE_TYPES
        .iter()
        .map(|k| template_view(&app, &cfg, k))
        .filter(|v| q.disabled.is_none_or(|d| v["disabled"] == d))
        .collect();
    Ok(Json(json!({"templates": items})))
}

async fn get_template(
    _: Mgmt<ReadPhoneTemplates>,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let cfg = load(&app).await?;
    let kind = find_template(&cfg, &id)?;
    Ok(Json(template_view(&app, &cfg, &kind)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTemplateBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    disabled: Option<bool>,
    content: Option<Value>,
}

async fn create_template(
    m: Mgmt<CreatePhoneTemplates>,
    State(app): State<AppState>,
    meta: RequestMeta,
    Body(b): Body<CreateTemplateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let kind = b.kind.ok_or_else(|| ApiError::missing_property("type"))?;
    if !templates::UPE_TYPES.contains(&kind.as_str()) {
        return Err(ApiError::invalid_property(
            "type",
            format!("No enum match for: \"{kind}\"; expected one of {}", templates::UPE_TYPES.join(", ")),
        ));
    }
    let at = now(&app);
    let id = new_id(&app, "tem_");
    let mut applied = json!({});
    // Through `guardian::update`, so that creating different templates at once all succeed.
    let cfg = super::guardian::update(&app, |cfg| {
        if cfg.phone_templates.contains_key(&kind) {
            return Err(
                ApiError::conflict("Phone template already configured for tenant").code("phone_template_conflict")
            );
        }
        let mut rec = PhoneTemplateRecord {
            id: id.clone(),
            disabled: b.disabled.unwrap_or(false),
            created_at: at.clone(),
            updated_at: at.clone(),
            ..Default::default()
        };
        applied = match &b.content {
            Some(c) => apply_content(&kind, c, cfg, &mut rec)?,
            None => json!({}),
        };
        cfg.phone_templates.insert(kind.clone(), rec);
        Ok(())
    })
    .await?;
    changed(
        &app,
        &meta,
        &m.caller.client_id,
        json!({"template": {"id": id, "type": kind, "disabled": b.disabled.unwrap_or(false), "changed": applied}}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(template_view(&app, &cfg, &kind))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchTemplateBody {
    content: Option<Value>,
    disabled: Option<bool>,
}

async fn patch_template(
    m: Mgmt<UpdatePhoneTemplates>,
    State(app): State<AppState>,
    Path(id): Path<String>,
    meta: RequestMeta,
    Body(b): Body<PatchTemplateBody>,
) -> Result<Json<Value>, ApiError> {
    if b.content.is_none() && b.disabled.is_none() {
        return Err(too_few());
    }
    update_template(&app, &meta, &m.caller.client_id, &id, |kind, cfg, rec| {
        let mut details = match &b.content {
            Some(c) => {
                if c.as_object().is_some_and(Map::is_empty) {
                    return Err(ApiError::invalid_property(
                        "content",
                        "Too few properties defined (0), must be at least 1",
                    ));
                }
                apply_content(kind, c, cfg, rec)?
            }
            None => json!({}),
        };
        if let Some(d) = b.disabled {
            rec.disabled = d;
            details["disabled"] = json!(d);
        }
        Ok(json!({"changed": details}))
    })
    .await
}

/// Change a customised template in place: `f` edits its record (and, for the `otp_*` types, the Guardian text) and
/// says what changed; the record's `updated_at` is set, the configuration saved and `gd_tenant_update` logged.
async fn update_template(
    app: &AppState,
    meta: &RequestMeta,
    client_id: &str,
    id: &str,
    mut f: impl FnMut(&str, &mut GuardianConfig, &mut PhoneTemplateRecord) -> Result<Value, ApiError>,
) -> Result<Json<Value>, ApiError> {
    // Through `guardian::update`: parallel writes of different templates (a0deploy's import) all succeed.
    let at = now(app);
    let mut result: Option<(String, Value)> = None;
    let cfg = super::guardian::update(app, |cfg| {
        let kind = find_template(cfg, id)?;
        let mut rec = cfg.phone_templates.get(&kind).cloned().unwrap_or_default();
        let details = f(&kind, cfg, &mut rec)?;
        rec.updated_at = at.clone();
        cfg.phone_templates.insert(kind.clone(), rec);
        result = Some((kind, details));
        Ok(())
    })
    .await?;
    let Some((kind, mut details)) = result else { return Err(ApiError::internal("the template change did not run")) };
    if let Some(o) = details.as_object_mut() {
        o.insert("id".into(), json!(id));
        o.insert("type".into(), json!(kind));
    }
    changed(app, meta, client_id, json!({ "template": details })).await;
    Ok(Json(template_view(app, &cfg, &kind)))
}

async fn reset_template(
    m: Mgmt<UpdatePhoneTemplates>,
    State(app): State<AppState>,
    Path(id): Path<String>,
    meta: RequestMeta,
) -> Result<Json<Value>, ApiError> {
    update_template(&app, &meta, &m.caller.client_id, &id, |kind, cfg, rec| {
        reset_content(kind, cfg, rec);
        Ok(json!({"reset": true}))
    })
    .await
}

async fn delete_template(
    m: Mgmt<DeletePhoneTemplates>,
    State(app): State<AppState>,
    Path(id): Path<String>,
    meta: RequestMeta,
) -> Result<StatusCode, ApiError> {
    let mut cfg = load(&app).await?;
    let kind = find_template(&cfg, &id)?;
    let mut rec = cfg.phone_templates.remove(&kind).unwrap_or_default();
    reset_content(&kind, &mut cfg, &mut rec);
    save(&app, &mut cfg).await?;
    changed(&app, &meta, &m.caller.client_id, json!({"template": {"id": id, "type": kind, "deleted": true}})).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn try_template(
    m: Mgmt<CreatePhoneTemplates>,
    State(app): State<AppState>,
    Path(id): Path<String>,
    meta: RequestMeta,
    Body(b): Body<TryBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let cfg = load(&app).await?;
    let kind = find_template(&cfg, &id)?;
    let (to, channel) = check_try(b)?;
    let (text_body, voice_body) = bodies(&cfg, &kind);
    let body = if channel == "voice" { voice_body } else { text_body };
    let tenant = super::tenant::load(&app).await?;
    let friendly = tenant.friendly_name.clone().unwrap_or_else(|| "Callsign".to_owned());
    let vars = templates::Vars {
        code: SAMPLE_CODE,
        message_type: channel,
        locale: tenant.default_locale.as_deref().unwrap_or("en"),
        friendly_name: &friendly,
        support_email: tenant.support_email.as_deref().unwrap_or_default(),
        support_url: tenant.support_url.as_deref().unwrap_or_default(),
    };
    // A test has no end user: the `user` object carries the recipient and the caller's address.
    let mut user = Object::new();
    user.insert("phone_number".into(), LValue::scalar(to.e164().to_owned()));
    user.insert("source_ip".into(), LValue::scalar(meta.ip.clone().unwrap_or_default()));
    let mut extra = Object::new();
    extra.insert("user".into(), LValue::Object(user));
    let text = templates::render_with(&body, &vars, extra)
        .map_err(|e| ApiError::bad_request(format!("The template does not render: {e}")))?;
    let from = cfg.phone_templates.get(&kind).map(|r| r.from.clone()).filter(|f| !f.is_empty());
    let msg = TestMessage {
        provider: &cfg.provider,
        source: "branding/phone/templates/try",
        client_id: Some(&m.caller.client_id),
        to: to.e164(),
        channel,
        text: &text,
        from: from.as_deref(),
    };
    try_send(&app, &meta, &msg).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_maps_to_guardian_settings() {
        let registry = callsign_messaging::Registry::builtin();
        let twilio = registry.by_upe_name("twilio").unwrap();
        let custom = registry.by_upe_name("custom").unwrap();
        let mut cfg = GuardianConfig::default();
        let sid = "AC0123456789abcdef0123456789abcdef";
        let conf = json!({"sid": sid, "default_from": "+15550001111", "delivery_methods": ["voice", "text"]});
        apply_configuration(twilio, &conf, &mut cfg).unwrap();
        let values = cfg.provider(twilio.name());
        assert_eq!(values["sid"], sid);
        assert_eq!(values["from"], "+15550001111");
        assert_eq!(cfg.message_types, vec!["sms".to_owned(), "voice".to_owned()]);
        for bad in [
            json!({"sid": sid, "delivery_methods": ["text"]}),
            json!({"sid": sid, "default_from": "+15550001111", "delivery_methods": []}),
            json!({"sid": sid, "default_from": "+15550001111", "delivery_methods": ["email"]}),
            json!({"default_from": "+15550001111", "delivery_methods": ["text"]}),
            json!({"sid": sid, "default_from": "+15550001111", "delivery_methods": ["text"], "extra": 1}),
            json!(sid),
        ] {
            assert_eq!(apply_configuration(twilio, &bad, &mut cfg).unwrap_err().status, 400, "{bad}");
        }
        assert!(apply_configuration(custom, &json!({"delivery_methods": ["text"]}), &mut cfg).is_ok());
        assert!(apply_configuration(custom, &json!({"delivery_methods": ["text"], "sid": "x"}), &mut cfg).is_err());
    }

    #[test]
    fn credentials_are_checked_per_provider() {
        let registry = callsign_messaging::Registry::builtin();
        let twilio = registry.by_upe_name("twilio").unwrap();
        let custom = registry.by_upe_name("custom").unwrap();
        let tok = check_credentials(twilio, &json!({"auth_token": "tok"})).unwrap();
        assert_eq!(tok["auth_token"].as_ref().map(|t| t.as_str()), Some("tok"));
        assert!(check_credentials(twilio, &json!({})).is_err());
        assert!(check_credentials(twilio, &json!({"auth_token": ""})).is_err());
        assert!(check_credentials(custom, &json!({})).unwrap().is_empty());
        assert!(check_credentials(custom, &json!({"auth_token": "x"})).is_err());
    }

    #[test]
    fn content_validates_and_routes_otp_text_to_guardian() {
        let mut cfg = GuardianConfig::default();
        let mut rec = PhoneTemplateRecord::default();
        let c = json!({"from": "+15550001111", "body": {"text": "{{code}} for {{friendly_name}}", "voice": "Say {{code}}"}});
        apply_content("otp_verify", &c, &mut cfg, &mut rec).unwrap();
        assert_eq!(cfg.verification_message, "{{code}} for {{friendly_name}}");
        assert_eq!((rec.text.as_deref(), rec.voice.as_deref()), (None, Some("Say {{code}}")));
        let e = apply_content("otp_verify", &json!({"body": {"text": "{% if %}"}}), &mut cfg, &mut rec).unwrap_err();
        assert!(e.message.starts_with("Invalid content.body.text template"), "{}", e.message);
        assert!(apply_content("otp_verify", &json!({"from": "x".repeat(17)}), &mut cfg, &mut rec).is_err());
        assert!(apply_content("otp_verify", &json!({"syntax": "handlebars"}), &mut cfg, &mut rec).is_err());
        assert!(apply_content("otp_verify", &json!({"body": {"html": "x"}}), &mut cfg, &mut rec).is_err());
        reset_content("otp_verify", &mut cfg, &mut rec);
        assert_eq!(cfg.verification_message, templates::DEFAULT_VERIFICATION);
        assert_eq!(rec, PhoneTemplateRecord::default());
    }
}
