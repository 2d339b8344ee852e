//! Multi-factor Auth > Phone Message: the factor toggle, delivery methods, the provider (built-in, Twilio, custom
//! webhook), the templates with a preview, "send a test message", and the MFA policy.
//!
//! Every change is the Management API call an operator would make by hand (through [`super::api::Api`]):
//!
//! | form | Management API |
//! |---|---|
//! | factor toggle | `PUT /guardian/factors/sms` |
//! | delivery methods | `PUT /guardian/factors/phone/message-types` |
//! | provider | `PUT /guardian/factors/phone/providers/twilio` or `PUT …/providers/phone-message-hook` (Twilio and custom), then `PUT /guardian/factors/phone/selected-provider` |
//! | signing secrets | `POST …/phone-message-hook/secrets`, `DELETE …/phone-message-hook/secrets/{id}` |
//! | templates | `PUT /guardian/factors/phone/templates` |
//! | policy | `PUT /guardian/policies` |
//!
//! The page reads the same endpoints. A validation error is shown in its section with the API's message; the form
//! keeps what was typed (except secrets).
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use callsign_domain::phone::PhoneNumber;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::{Api, ApiFailure};
use super::ui::{self, Nav};
use super::{Ctx, Posted, internal};
use crate::app::AppState;
use crate::mfa::templates;

const PAGE: &str = "/dashboard/mfa/phone";
const TWILIO: &str = "/guardian/factors/phone/providers/twilio";
const HOOK: &str = "/guardian/factors/phone/providers/phone-message-hook";
/// The code shown in previews.
const SAMPLE_CODE: &str = "123456";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Factor,
    MessageTypes,
    Provider,
    Secrets,
    Templates,
    Test,
    Policy,
}

/// What a re-rendered page carries beyond the stored settings: an error in one section, what was typed.
#[derive(Debug, Default)]
struct View {
    error: Option<(Section, String)>,
    templates: Option<(String, String)>,
    provider: Option<ProviderForm>,
    test: Option<TestForm>,
    /// A signing secret just created: (id, secret), shown this once.
    new_secret: Option<(String, String)>,
}

impl View {
    fn error_in(&self, s: Section) -> Option<&str> {
        self.error.as_ref().filter(|(at, _)| *at == s).map(|(_, m)| m.as_str())
    }
    fn failed(s: Section, e: ApiFailure) -> View {
        View { error: Some((s, e.message)), ..Default::default() }
    }
}

/// The settings as the Management API answers them.
struct Settings {
    enabled: bool,
    message_types: Vec<String>,
    provider: String,
    twilio: Value,
    hook: Value,
    enrollment: String,
    verification: String,
    /// Voice bodies set through the Unified Phone Experience (`/branding/phone/templates`), when they differ from
    /// the text: `(enrollment, verification)`.
    voice: (Option<String>, Option<String>),
    policies: Vec<String>,
    friendly_name: String,
    dev_remaining: u64,
}

async fn read_settings(app: &AppState, api: &Api) -> Result<Settings, ApiFailure> {
    let factors = api.get("/guardian/factors").await?;
    let enabled = factors
        .as_array()
        .into_iter()
        .flatten()
        .any(|f| f.get("name").and_then(Value::as_str) == Some("sms") && f.get("enabled") == Some(&json!(true)));
    let types = api.get("/guardian/factors/phone/message-types").await?;
    let provider = api.get("/guardian/factors/phone/selected-provider").await?;
    let twilio = api.get(TWILIO).await?;
    let hook = api.get(HOOK).await?;
    let tpl = api.get("/guardian/factors/phone/templates").await?;
    let upe = api.get("/branding/phone/templates").await?;
    let voice_of = |kind: &str| -> Option<String> {
        let t =
            upe.get("templates")?.as_array()?.iter().find(|t| t.get("type").and_then(Value::as_str) == Some(kind))?;
        let body = t.get("content")?.get("body")?;
        let (text, voice) = (body.get("text")?.as_str()?, body.get("voice")?.as_str()?);
        (text != voice).then(|| voice.to_owned())
    };
    let policies = api.get("/guardian/policies").await?;
    let tenant = api.get("/tenants/settings").await?;
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
    };
    let used = app.store.count_dev_messages().await.map_err(|e| ApiFailure { status: 500, message: e.to_string() })?;
    Ok(Settings {
        enabled,
        message_types: strings(types.get("message_types")),
        provider: ui::s(&provider, "provider").to_owned(),
        twilio,
        hook,
        enrollment: ui::s(&tpl, "enrollment_message").to_owned(),
        verification: ui::s(&tpl, "verification_message").to_owned(),
        voice: (voice_of("otp_enroll"), voice_of("otp_verify")),
        policies: strings(Some(&policies)),
        friendly_name: ui::s(&tenant, "friendly_name").to_owned(),
        dev_remaining: app.config.dev_provider_cap.saturating_sub(used),
    })
}

pub async fn page(State(app): State<AppState>, ctx: Ctx) -> Response {
    render(&app, &ctx, StatusCode::OK, View::default()).await
}

async fn render(app: &AppState, ctx: &Ctx, status: StatusCode, view: View) -> Response {
    let api = match ctx.api(app).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let s = match read_settings(app, &api).await {
        Ok(s) => s,
        Err(e) => return internal(e),
    };
    let body = html! {
        p class="muted" { "Users prove who they are with a 6-digit code sent to their phone by SMS or a voice call." }
        (factor_section(app, ctx, &s, &view))
        (message_types_section(app, ctx, &s, &view))
        (provider_section(app, ctx, &s, &view))
        (secrets_section(app, ctx, &s, &view))
        (templates_section(app, ctx, &s, &view))
        (test_section(app, ctx, &s, &view))
        (policy_section(app, ctx, &s, &view))
    };
    (status, ui::shell(app, ctx, Nav::Phone, "Phone Message", body)).into_response()
}

fn radio(name: &str, value: &str, checked: bool, label: &str, id: &str) -> Markup {
    html! {
        label class="choice" for=(id) {
            input type="radio" id=(id) name=(name) value=(value) checked[checked];
            (label)
        }
    }
}

fn factor_section(app: &AppState, ctx: &Ctx, s: &Settings, v: &View) -> Markup {
    html! {
        section class="panel" id="factor" aria-labelledby="factor-h" {
            h2 id="factor-h" { "Phone factor" }
            (ui::error(v.error_in(Section::Factor)))
            p {
                "The phone factor is "
                strong { @if s.enabled { "on" } @else { "off" } }
                @if s.enabled { ": users can enroll a phone and receive codes." }
                @else { ": no one is asked for a phone code." }
            }
            form method="post" action="/dashboard/mfa/phone/factor" {
                (ui::csrf(app, ctx))
                input type="hidden" name="enabled" value=(if s.enabled { "false" } else { "true" });
                button type="submit" class=(if s.enabled { "secondary" } else { "" }) {
                    @if s.enabled { "Turn the phone factor off" } @else { "Turn the phone factor on" }
                }
            }
        }
    }
}

fn message_types_section(app: &AppState, ctx: &Ctx, s: &Settings, v: &View) -> Markup {
    let sms = s.message_types.iter().any(|t| t == "sms");
    let voice = s.message_types.iter().any(|t| t == "voice");
    html! {
        section class="panel" id="message-types" aria-labelledby="message-types-h" {
            h2 id="message-types-h" { "Delivery methods" }
            (ui::error(v.error_in(Section::MessageTypes)))
            form method="post" action="/dashboard/mfa/phone/message-types" {
                (ui::csrf(app, ctx))
                fieldset {
                    legend { "How codes are delivered" }
                    (radio("message_types", "sms", sms && !voice, "SMS", "mt-sms"))
                    (radio("message_types", "voice", voice && !sms, "Voice call", "mt-voice"))
                    (radio("message_types", "both", sms && voice, "SMS and voice (the user chooses)", "mt-both"))
                }
                button type="submit" { "Save delivery methods" }
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct ProviderForm {
    provider: String,
    twilio_sid: String,
    twilio_auth_token: String,
    sms_source: String,
    twilio_from: String,
    twilio_messaging_service_sid: String,
    hook_url: String,
}

fn provider_section(app: &AppState, ctx: &Ctx, s: &Settings, v: &View) -> Markup {
    let posted = v.provider.as_ref();
    let provider = posted.map_or(s.provider.as_str(), |p| p.provider.as_str());
    let field = |posted_value: Option<&String>, stored: &str| -> String {
        posted_value.cloned().unwrap_or_else(|| stored.to_owned())
    };
    let sid = field(posted.map(|p| &p.twilio_sid), ui::s(&s.twilio, "sid"));
    let from = field(posted.map(|p| &p.twilio_from), ui::s(&s.twilio, "from"));
    let mss = field(posted.map(|p| &p.twilio_messaging_service_sid), ui::s(&s.twilio, "messaging_service_sid"));
    let source = posted
        .map(|p| p.sms_source.clone())
        .unwrap_or_else(|| if mss.is_empty() { "from".into() } else { "messaging_service".into() });
    let masked_token = ui::s(&s.twilio, "auth_token");
    let hook_url = field(posted.map(|p| &p.hook_url), ui::s(&s.hook, "url"));
    let cap = app.config.dev_provider_cap;
    html! {
        section class="panel" id="provider" aria-labelledby="provider-h" {
            h2 id="provider-h" { "Provider" }
            (ui::error(v.error_in(Section::Provider)))
            form method="post" action="/dashboard/mfa/phone/provider" {
                (ui::csrf(app, ctx))
                fieldset {
                    legend { "Who delivers the messages" }
                    (radio("provider", "auth0", provider == "auth0", "Built-in (development)", "p-auth0"))
                    p class="hint" {
                        "Messages are not delivered to phones: they appear in the "
                        a href="/dashboard/inbox" { "development inbox" } ". "
                        strong id="dev-remaining" { (s.dev_remaining) " of " (cap) " messages left" }
                        " over this installation's life."
                    }
                    (radio("provider", "twilio", provider == "twilio", "Twilio", "p-twilio"))
                    div class="sub" {
                        label for="twilio_sid" { "Account SID" }
                        input id="twilio_sid" name="twilio_sid" type="text" autocomplete="off" spellcheck="false" value=(sid);
                        label for="twilio_auth_token" { "Auth token" }
                        input id="twilio_auth_token" name="twilio_auth_token" type="password" autocomplete="new-password"
                            aria-describedby="twilio-token-hint";
                        p id="twilio-token-hint" class="hint" {
                            @if masked_token.is_empty() { "No token is stored." }
                            @else { "A token is stored (" (masked_token) "). Leave blank to keep it." }
                        }
                        fieldset {
                            legend { "SMS source" }
                            (radio("sms_source", "from", source != "messaging_service", "The From number", "src-from"))
                            (radio("sms_source", "messaging_service", source == "messaging_service", "A Messaging Service", "src-mss"))
                        }
                        label for="twilio_from" { "From number" }
                        input id="twilio_from" name="twilio_from" type="tel" autocomplete="off" value=(from)
                            aria-describedby="twilio-from-hint";
                        p id="twilio-from-hint" class="hint" { "E.164, e.g. +14155550100. Voice calls always need it." }
                        label for="twilio_messaging_service_sid" { "Messaging Service SID" }
                        input id="twilio_messaging_service_sid" name="twilio_messaging_service_sid" type="text"
                            autocomplete="off" spellcheck="false" value=(mss);
                    }
                    (radio("provider", "phone-message-hook", provider == "phone-message-hook", "Custom (signed webhook)", "p-hook"))
                    div class="sub" {
                        label for="hook_url" { "Webhook URL" }
                        input id="hook_url" name="hook_url" type="url" autocomplete="off" value=(hook_url)
                            aria-describedby="hook-url-hint";
                        p id="hook-url-hint" class="hint" {
                            "Callsign POSTs each message here, signed with the secrets below (Standard Webhooks). "
                            "https only (http for localhost)."
                        }
                    }
                }
                button type="submit" { "Save provider" }
            }
        }
    }
}

fn secrets_section(app: &AppState, ctx: &Ctx, s: &Settings, v: &View) -> Markup {
    let secrets: Vec<&Value> = s.hook.get("secrets").and_then(Value::as_array).into_iter().flatten().collect();
    html! {
        section class="panel" id="secrets" aria-labelledby="secrets-h" {
            h2 id="secrets-h" { "Custom provider signing secrets" }
            (ui::error(v.error_in(Section::Secrets)))
            @if let Some((id, secret)) = &v.new_secret {
                div class="alert ok" role="status" {
                    p { "Secret " code { (id) } " created. Copy it now: it is not shown again." }
                    code class="recovery" { (secret) }
                }
            }
            @if secrets.is_empty() {
                p { "No signing secret yet." }
            } @else {
                table {
                    caption class="visually-hidden" { "Signing secrets" }
                    thead { tr { th scope="col" { "Id" } th scope="col" { "Created" } th scope="col" { "Action" } } }
                    tbody {
                        @for sec in &secrets {
                            tr {
                                td { code { (ui::s(sec, "id")) } }
                                td { (ui::s(sec, "created_at")) }
                                td {
                                    form class="inline" method="post" action="/dashboard/mfa/phone/hook-secrets/delete" {
                                        (ui::csrf(app, ctx))
                                        input type="hidden" name="id" value=(ui::s(sec, "id"));
                                        button type="submit" class="secondary small" aria-label={ "Delete secret " (ui::s(sec, "id")) } { "Delete" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form method="post" action="/dashboard/mfa/phone/hook-secrets" {
                (ui::csrf(app, ctx))
                p class="hint" { "The newest two secrets sign each request; a third retires the oldest." }
                button type="submit" class="secondary" { "Create a signing secret" }
            }
        }
    }
}

/// A template rendered for `message_type`, or the compile error.
fn preview(template: &str, message_type: &str, friendly_name: &str) -> Result<String, String> {
    let vars = templates::Vars {
        code: SAMPLE_CODE,
        message_type,
        locale: "en",
        friendly_name,
        support_email: "",
        support_url: "",
    };
    templates::render(template, &vars)
}

fn templates_section(app: &AppState, ctx: &Ctx, s: &Settings, v: &View) -> Markup {
    let (enrollment, verification) =
        v.templates.clone().unwrap_or_else(|| (s.enrollment.clone(), s.verification.clone()));
    let cell = |t: &str, mt: &str| -> Markup {
        match preview(t, mt, &s.friendly_name) {
            Ok(text) => html! { td { (text) } },
            Err(e) => html! { td class="error-text" { "Cannot render: " (e) } },
        }
    };
    html! {
        section class="panel" id="templates" aria-labelledby="templates-h" {
            h2 id="templates-h" { "Message templates" }
            (ui::error(v.error_in(Section::Templates)))
            p class="hint" {
                "Liquid templates. Variables: " code { "{{code}}" } ", " code { "{{message_type}}" } " (sms or voice), "
                code { "{{locale}}" } ", " code { "{{tenant.friendly_name}}" } ", " code { "{{pause}}" }
                " (a pause in voice calls). Voice reads the code digit by digit."
            }
            // `data-live-preview`: app.js re-renders the preview table as the operator types (same renderer).
            form method="post" action="/dashboard/mfa/phone/templates" data-live-preview="template-preview" {
                (ui::csrf(app, ctx))
                label for="enrollment_message" { "Enrollment message" }
                textarea id="enrollment_message" name="enrollment_message" rows="3" { (enrollment) }
                label for="verification_message" { "Verification message" }
                textarea id="verification_message" name="verification_message" rows="3" { (verification) }
                div class="buttons" {
                    button type="submit" name="action" value="preview" class="secondary" { "Preview" }
                    button type="submit" name="action" value="save" { "Save templates" }
                }
            }
            h3 id="preview-h" { "Preview" @if v.templates.is_some() { " (not saved yet)" } }
            table id="template-preview" aria-labelledby="preview-h" aria-live="polite" {
                thead { tr { th scope="col" { "Message" } th scope="col" { "SMS" } th scope="col" { "Voice" } } }
                tbody {
                    tr { th scope="row" { "Enrollment" } (cell(&enrollment, "sms")) (cell(s.voice.0.as_deref().unwrap_or(&enrollment), "voice")) }
                    tr { th scope="row" { "Verification" } (cell(&verification, "sms")) (cell(s.voice.1.as_deref().unwrap_or(&verification), "voice")) }
                }
            }
            p class="hint" { "With the code " (SAMPLE_CODE) " and the tenant name “" (s.friendly_name) "”." }
            @if s.voice.0.is_some() || s.voice.1.is_some() {
                p class="hint" id="voice-bodies" {
                    "Voice calls say the voice body set with the Unified Phone Experience API ("
                    code { "/api/v2/branding/phone/templates" } ") instead of the text above."
                }
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct TestForm {
    to: String,
    channel: String,
}

fn test_section(app: &AppState, ctx: &Ctx, s: &Settings, v: &View) -> Markup {
    let t = v.test.clone().unwrap_or_default();
    let channel = if t.channel.is_empty() { "sms" } else { t.channel.as_str() };
    html! {
        section class="panel" id="test" aria-labelledby="test-h" {
            h2 id="test-h" { "Send a test message" }
            (ui::error(v.error_in(Section::Test)))
            p class="hint" {
                "Sends one message now through the selected provider ("
                (provider_label(&s.provider)) ")."
            }
            form method="post" action="/dashboard/mfa/phone/test" {
                (ui::csrf(app, ctx))
                label for="test_to" { "Phone number" }
                input id="test_to" name="to" type="tel" autocomplete="off" required value=(t.to)
                    aria-describedby="test-to-hint";
                p id="test-to-hint" class="hint" { "International format, e.g. +14155552671." }
                fieldset {
                    legend { "Send by" }
                    (radio("channel", "sms", channel != "voice", "SMS", "test-sms"))
                    (radio("channel", "voice", channel == "voice", "Voice call", "test-voice"))
                }
                button type="submit" { "Send test message" }
            }
        }
    }
}

fn provider_label(p: &str) -> &str {
    match p {
        "auth0" => "built-in",
        "twilio" => "Twilio",
        "phone-message-hook" => "custom webhook",
        other => other,
    }
}

fn policy_section(app: &AppState, ctx: &Ctx, s: &Settings, v: &View) -> Markup {
    let all = s.policies.iter().any(|p| p == "all-applications");
    html! {
        section class="panel" id="policy" aria-labelledby="policy-h" {
            h2 id="policy-h" { "MFA policy" }
            (ui::error(v.error_in(Section::Policy)))
            form method="post" action="/dashboard/mfa/phone/policy" {
                (ui::csrf(app, ctx))
                fieldset {
                    legend { "Require multi-factor authentication" }
                    (radio("policy", "never", !all, "Never", "policy-never"))
                    (radio("policy", "all-applications", all, "Always, for all applications", "policy-all"))
                }
                button type="submit" { "Save policy" }
            }
        }
    }
}

// --- changes --------------------------------------------------------------------------------------------------------

/// After a change: the flash and a redirect, or the page again with the error in its section.
async fn done(app: &AppState, mut ctx: Ctx, result: Result<String, View>, anchor: &str) -> Response {
    match result {
        Ok(message) => ctx.flash_and_go(app, message, &format!("{PAGE}#{anchor}")).await,
        Err(view) => render(app, &ctx, StatusCode::BAD_REQUEST, view).await,
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct FactorForm {
    enabled: String,
}

pub async fn set_factor(State(app): State<AppState>, p: Posted<FactorForm>) -> Response {
    let enabled = p.form.enabled == "true";
    let api = match p.ctx.api(&app).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let result = api
        .put("/guardian/factors/sms", &json!({"enabled": enabled}))
        .await
        .map(|_| format!("The phone factor is {}.", if enabled { "on" } else { "off" }))
        .map_err(|e| View::failed(Section::Factor, e));
    done(&app, p.ctx, result, "factor").await
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct MessageTypesForm {
    message_types: String,
}

pub async fn set_message_types(State(app): State<AppState>, p: Posted<MessageTypesForm>) -> Response {
    let types: Vec<&str> = match p.form.message_types.as_str() {
        "both" => vec!["sms", "voice"],
        "" => vec![],
        other => vec![other],
    };
    let api = match p.ctx.api(&app).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let result = api
        .put("/guardian/factors/phone/message-types", &json!({"message_types": types}))
        .await
        .map(|_| "Delivery methods saved.".to_owned())
        .map_err(|e| View::failed(Section::MessageTypes, e));
    done(&app, p.ctx, result, "message-types").await
}

fn blank_to_null(s: &str) -> Value {
    let t = s.trim();
    if t.is_empty() { Value::Null } else { json!(t) }
}

pub async fn set_provider(State(app): State<AppState>, p: Posted<ProviderForm>) -> Response {
    let f = p.form.clone();
    let api = match p.ctx.api(&app).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let result = save_provider(&api, &f).await.map_err(|e| {
        // Keep what was typed, but never a secret.
        let typed = ProviderForm { twilio_auth_token: String::new(), ..f.clone() };
        View { provider: Some(typed), ..View::failed(Section::Provider, e) }
    });
    done(&app, p.ctx, result, "provider").await
}

async fn save_provider(api: &Api, f: &ProviderForm) -> Result<String, ApiFailure> {
    match f.provider.as_str() {
        "twilio" => {
            let mss = if f.sms_source == "messaging_service" {
                blank_to_null(&f.twilio_messaging_service_sid)
            } else {
                Value::Null
            };
            if f.sms_source == "messaging_service" && mss.is_null() {
                return Err(ApiFailure {
                    status: 400,
                    message: "Enter the Messaging Service SID, or choose the From number as the SMS source.".into(),
                });
            }
            let mut body = json!({
                "sid": blank_to_null(&f.twilio_sid),
                "from": blank_to_null(&f.twilio_from),
                "messaging_service_sid": mss,
            });
            if !f.twilio_auth_token.is_empty()
                && let Some(o) = body.as_object_mut()
            {
                o.insert("auth_token".into(), json!(f.twilio_auth_token));
            }
            api.put(TWILIO, &body).await?;
        }
        "phone-message-hook" => {
            let current = api.get(HOOK).await?;
            if f.hook_url.trim() != ui::s(&current, "url") || current.get("url").is_none_or(Value::is_null) {
                api.put(HOOK, &json!({"url": f.hook_url.trim()})).await?;
            }
        }
        _ => {}
    }
    api.put("/guardian/factors/phone/selected-provider", &json!({"provider": f.provider})).await?;
    Ok(format!("Provider saved: {}.", provider_label(&f.provider)))
}

/// A form with nothing but its CSRF token.
#[derive(Debug, Deserialize, Default)]
pub struct NoFields {}

pub async fn create_hook_secret(State(app): State<AppState>, p: Posted<NoFields>) -> Response {
    let api = match p.ctx.api(&app).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    match api.post(&format!("{HOOK}/secrets"), &json!({})).await {
        Ok(v) => {
            let view = View {
                new_secret: Some((ui::s(&v, "id").to_owned(), ui::s(&v, "secret").to_owned())),
                ..Default::default()
            };
            render(&app, &p.ctx, StatusCode::OK, view).await
        }
        Err(e) => render(&app, &p.ctx, StatusCode::BAD_REQUEST, View::failed(Section::Secrets, e)).await,
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct SecretForm {
    id: String,
}

pub async fn delete_hook_secret(State(app): State<AppState>, p: Posted<SecretForm>) -> Response {
    let api = match p.ctx.api(&app).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let id = p.form.id.clone();
    let result = api
        .delete(&format!("{HOOK}/secrets/{}", super::api::seg(&id)))
        .await
        .map(|_| format!("Signing secret {id} deleted."))
        .map_err(|e| View::failed(Section::Secrets, e));
    done(&app, p.ctx, result, "secrets").await
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct TemplatesForm {
    action: String,
    enrollment_message: String,
    verification_message: String,
}

/// Browsers send textarea line breaks as CRLF.
fn unix_lines(s: &str) -> String {
    s.replace("\r\n", "\n")
}

pub async fn templates(State(app): State<AppState>, p: Posted<TemplatesForm>) -> Response {
    let enrollment = unix_lines(&p.form.enrollment_message);
    let verification = unix_lines(&p.form.verification_message);
    let typed = Some((enrollment.clone(), verification.clone()));
    if p.form.action != "save" {
        // Preview only: render what was typed, save nothing.
        let view = View { templates: typed, ..Default::default() };
        return render(&app, &p.ctx, StatusCode::OK, view).await;
    }
    let api = match p.ctx.api(&app).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let body = json!({"enrollment_message": enrollment, "verification_message": verification});
    let result = api
        .put("/guardian/factors/phone/templates", &body)
        .await
        .map(|_| "Templates saved.".to_owned())
        .map_err(|e| View { templates: typed, ..View::failed(Section::Templates, e) });
    done(&app, p.ctx, result, "templates").await
}

pub async fn send_test(State(app): State<AppState>, p: Posted<TestForm>) -> Response {
    let f = p.form.clone();
    let fail =
        |message: String| View { error: Some((Section::Test, message)), test: Some(f.clone()), ..Default::default() };
    let channel = if f.channel == "voice" { "voice" } else { "sms" };
    let to = match PhoneNumber::parse(f.to.trim()) {
        Ok(n) => n,
        Err(e) => return render(&app, &p.ctx, StatusCode::BAD_REQUEST, fail(e.to_string())).await,
    };
    let friendly = match crate::http::management::tenant::load(&app).await {
        Ok(t) => t.friendly_name.unwrap_or_else(|| "Callsign".to_owned()),
        Err(e) => return internal(e.message),
    };
    let text = crate::mfa::delivery::test_text(&friendly);
    let result = super::test_message::send(&app, &p.ctx.meta(), &to, channel, &text)
        .await
        .map(|_| {
            format!("Test message sent by {} to {}.", if channel == "voice" { "voice call" } else { "SMS" }, to.e164())
        })
        .map_err(|e| fail(format!("The provider did not send the message: {e}")));
    done(&app, p.ctx, result, "test").await
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct PolicyForm {
    policy: String,
}

pub async fn set_policy(State(app): State<AppState>, p: Posted<PolicyForm>) -> Response {
    let policies: Vec<&str> = match p.form.policy.as_str() {
        "never" => vec![],
        other => vec![other],
    };
    let api = match p.ctx.api(&app).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let result = api
        .put("/guardian/policies", &json!(policies))
        .await
        .map(|_| {
            if policies.is_empty() { "MFA policy saved: never." } else { "MFA policy saved: all applications." }
                .to_owned()
        })
        .map_err(|e| View::failed(Section::Policy, e));
    done(&app, p.ctx, result, "policy").await
}

#[cfg(test)]
mod tests {
    #[test]
    fn previews_render_sms_and_voice() {
        let t = crate::mfa::templates::DEFAULT_VERIFICATION;
        assert_eq!(super::preview(t, "sms", "Acme").unwrap(), "123456 is your verification code for Acme");
        assert_eq!(super::preview(t, "voice", "Acme").unwrap(), "1.2.3.4.5.6 is your verification code for Acme");
        assert!(super::preview("{% if %}", "sms", "Acme").is_err());
        assert_eq!(super::unix_lines("a\r\nb"), "a\nb");
    }
}
