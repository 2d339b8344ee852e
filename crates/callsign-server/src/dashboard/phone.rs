//! Multi-factor Auth > Phone Message: the factor toggle, delivery methods, the provider, the templates with a
//! preview, "send a test message", and the MFA policy. The provider form is drawn from the registry: one choice per
//! provider kind, with the settings it declares (`ProviderKind::fields`) as inputs named `{form_id}_{field}`, and a
//! secrets section for each provider with server-generated secrets. Nothing here names a provider.
//!
//! Every change is the Management API call an operator would make by hand (through [`super::api::Api`]):
//!
//! | form | Management API |
//! |---|---|
//! | factor toggle | `PUT /guardian/factors/sms` |
//! | delivery methods | `PUT /guardian/factors/phone/message-types` |
//! | provider | `PUT /guardian/factors/phone/providers/{provider}` (providers with settings), then `PUT /guardian/factors/phone/selected-provider` |
//! | generated secrets | `POST …/providers/{provider}/secrets`, `DELETE …/providers/{provider}/secrets/{id}` |
//! | routing and failover | `PUT /guardian/factors/phone/routing` |
//! | templates | `PUT /guardian/factors/phone/templates` |
//! | policy | `PUT /guardian/policies` |
//!
//! The page reads the same endpoints. A validation error is shown in its section with the API's message; the form
//! keeps what was typed (except secrets).
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use callsign_domain::phone::PhoneNumber;
use callsign_messaging::{FieldKind, FieldSpec, ProviderKind};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

use super::api::{Api, ApiFailure};
use super::ui::{self, Nav};
use super::{Ctx, Page, Posted, internal};
use crate::app::AppState;
use callsign_core::templates;

const PAGE: &str = "/dashboard/mfa/phone";
/// A provider's settings endpoint.
fn settings_path(kind: &dyn ProviderKind) -> String {
    format!("/guardian/factors/phone/providers/{}", super::api::seg(kind.name()))
}

/// The code shown in previews.
const SAMPLE_CODE: &str = "123456";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Factor,
    MessageTypes,
    Provider,
    Routing,
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
    /// The routing form as typed (after a refused save).
    routing: Option<RoutingForm>,
    /// The provider whose generated secrets the error or the new secret is about.
    secrets_of: Option<String>,
    /// A generated secret just created: (id, secret), shown this once.
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
    /// Each provider's Management API view (`GET /guardian/factors/phone/providers/{name}`), by name, for the
    /// providers with settings.
    views: BTreeMap<String, Value>,
    enrollment: String,
    verification: String,
    /// Voice bodies set through the Unified Phone Experience (`/branding/phone/templates`), when they differ from
    /// the text: `(enrollment, verification)`.
    voice: (Option<String>, Option<String>),
    policies: Vec<String>,
    friendly_name: String,
    dev_remaining: u64,
    /// `GET /guardian/factors/phone/routing`.
    routing: Value,
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
    let mut views = BTreeMap::new();
    for kind in app.providers.kinds().filter(|k| !k.fields().is_empty()) {
        views.insert(kind.name().to_owned(), api.get(&settings_path(kind)).await?);
    }
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
    let routing = api.get("/guardian/factors/phone/routing").await?;
    let tenant = api.get("/tenants/settings").await?;
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
    };
    let used = app.store.count_dev_messages().await.map_err(|e| ApiFailure { status: 500, message: e.to_string() })?;
    Ok(Settings {
        enabled,
        message_types: strings(types.get("message_types")),
        provider: ui::s(&provider, "provider").to_owned(),
        views,
        enrollment: ui::s(&tpl, "enrollment_message").to_owned(),
        verification: ui::s(&tpl, "verification_message").to_owned(),
        voice: (voice_of("otp_enroll"), voice_of("otp_verify")),
        policies: strings(Some(&policies)),
        friendly_name: ui::s(&tenant, "friendly_name").to_owned(),
        dev_remaining: app.config.dev_provider_cap.saturating_sub(used),
        routing,
    })
}

pub async fn page(State(app): State<AppState>, ctx: Ctx) -> Page {
    render(&app, &ctx, StatusCode::OK, View::default()).await
}

async fn render(app: &AppState, ctx: &Ctx, status: StatusCode, view: View) -> Page {
    let api = ctx.api(app).await?;
    let s = read_settings(app, &api).await.map_err(internal)?;
    let body = html! {
        p class="muted" { "Users prove who they are with a 6-digit code sent to their phone by SMS or a voice call." }
        (factor_section(app, ctx, &s, &view))
        (message_types_section(app, ctx, &s, &view))
        (provider_section(app, ctx, &s, &view))
        (routing_section(app, ctx, &s, &view))
        (secrets_section(app, ctx, &s, &view))
        (templates_section(app, ctx, &s, &view))
        (test_section(app, ctx, &s, &view))
        (policy_section(app, ctx, &s, &view))
    };
    Ok((status, ui::shell(app, ctx, Nav::Phone, "Phone Message", body)).into_response())
}

fn radio(name: &str, value: &str, checked: bool, label: &str, id: &str) -> Markup {
    html! {
        label class="choice" for=(id) {
            input type="radio" id=(id) name=(name) value=(value) checked[checked];
            (label)
        }
    }
}

/// A labelled on/off switch: a real checkbox (`role="switch"`, so assistive technology says "on"/"off"), operable
/// with the keyboard (Tab, then Space) and drawn as a switch by app.css; posted as `name=on` when on.
pub(super) fn switch(name: &str, id: &str, on: bool, label: &str, hint: &str) -> Markup {
    let hint_id = format!("{id}-hint");
    html! {
        div class="switch-row" {
            input type="checkbox" role="switch" class="switch" id=(id) name=(name) value="on" checked[on]
                aria-describedby=(hint_id);
            label for=(id) { (label) }
            p class="hint" id=(hint_id) { (hint) }
        }
    }
}

/// The save button of a section, with the place where app.js says the section has unsaved changes.
fn save_row(label: &str) -> Markup {
    html! {
        div class="save-row" {
            button type="submit" { (label) }
            span class="unsaved" role="status" data-unsaved { }
        }
    }
}

fn factor_section(app: &AppState, ctx: &Ctx, s: &Settings, v: &View) -> Markup {
    html! {
        section class="panel" id="factor" aria-labelledby="factor-h" {
            h2 id="factor-h" { "Phone factor" }
            (ui::error(v.error_in(Section::Factor)))
            p id="factor-state" {
                "The phone factor is "
                strong { @if s.enabled { "on" } @else { "off" } }
                @if s.enabled { ": users can enroll a phone and receive codes." }
                @else { ": no one is asked for a phone code." }
            }
            form method="post" action="/dashboard/mfa/phone/factor" data-track-changes {
                (ui::csrf(app, ctx))
                (switch("enabled", "factor-enabled", s.enabled, "Phone Message",
                    "Users enroll a phone and sign in with a code sent to it."))
                (save_row("Save"))
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
            form method="post" action="/dashboard/mfa/phone/message-types" data-track-changes {
                (ui::csrf(app, ctx))
                fieldset {
                    legend { "How codes are delivered (with both on, the user chooses)" }
                    (switch("sms", "mt-sms", sms, "SMS", "A text message with the code."))
                    (switch("voice", "mt-voice", voice, "Voice call", "A call that reads the code digit by digit."))
                }
                (save_row("Save delivery methods"))
            }
        }
    }
}

/// The provider form as posted: `provider` (the chosen name) and `{form_id}_{field}` for each provider's settings.
pub type ProviderForm = BTreeMap<String, String>;

/// The form field of a provider's setting.
fn field_id(kind: &dyn ProviderKind, field: &FieldSpec) -> String {
    format!("{}_{}", kind.form_id(), field.name)
}

/// "A token is stored": the secret's label without its qualifiers ("Auth token" → "token").
fn secret_noun(field: &FieldSpec) -> String {
    field.label.rsplit(' ').next().unwrap_or(field.label).to_lowercase()
}

/// The settings fields of `kind` a form shows (generated secrets have their own section).
fn form_fields(kind: &dyn ProviderKind) -> impl Iterator<Item = &'static FieldSpec> {
    kind.fields().iter().filter(|f| !matches!(f.kind, FieldKind::GeneratedSecrets { .. }))
}

/// The field of `kind` holding server-generated secrets, if it has one.
fn generated_secrets(kind: &dyn ProviderKind) -> Option<&'static FieldSpec> {
    kind.fields().iter().find(|f| matches!(f.kind, FieldKind::GeneratedSecrets { .. }))
}

fn provider_section(app: &AppState, ctx: &Ctx, s: &Settings, v: &View) -> Markup {
    let posted = v.provider.as_ref();
    let selected = posted.and_then(|p| p.get("provider")).map_or(s.provider.as_str(), String::as_str);
    let dev = app.providers.default_provider().name();
    let cap = app.config.dev_provider_cap;
    html! {
        section class="panel" id="provider" aria-labelledby="provider-h" {
            h2 id="provider-h" { "Provider" }
            (ui::error(v.error_in(Section::Provider)))
            // One card per provider (a radio inside its label: arrow keys move between them); below, each
            // provider's settings in its own group. app.js shows only the chosen provider's group; without
            // JavaScript every group is shown, each under its provider's name.
            form method="post" action="/dashboard/mfa/phone/provider" data-track-changes data-provider-form {
                (ui::csrf(app, ctx))
                fieldset class="cards" {
                    legend { "Who delivers the messages" }
                    div class="card-grid" {
                        @for kind in app.providers.kinds() {
                            @let id = format!("p-{}", kind.form_id());
                            // The radio is named by the card's title and described by the rest.
                            label class="provider-card" for=(id) {
                                input type="radio" id=(id) name="provider" value=(kind.name())
                                    checked[selected == kind.name()] aria-labelledby={ (id) "-name" }
                                    aria-describedby={ (id) "-text" };
                                span class="card-title" id={ (id) "-name" } { (kind.label()) }
                                @if selected == kind.name() && s.provider == kind.name() {
                                    span class="badge" { "In use" }
                                }
                                span class="card-text" id={ (id) "-text" } { (kind.description()) }
                                @if kind.name() == dev {
                                    span class="card-text" id="dev-remaining" { (s.dev_remaining) " of " (cap) " messages left" }
                                }
                                (health_note(app, kind))
                            }
                        }
                    }
                }
                p class="hint" {
                    "The development provider's messages are in the " a href="/dashboard/inbox" { "development inbox" }
                    "; its " (cap) " messages last this installation's life."
                }
                @for kind in app.providers.kinds() {
                    @let view = s.views.get(kind.name());
                    @if form_fields(kind).next().is_some() {
                        fieldset class="provider-fields" data-provider=(kind.name()) id={ "fields-" (kind.form_id()) } {
                            legend { (kind.label()) " settings" }
                            @for field in form_fields(kind) {
                                (provider_field(kind, field, view, posted))
                            }
                        }
                    }
                }
                (save_row("Save provider"))
            }
        }
    }
}

/// The routing form's fields from the stored document: comma lists, one route per line, the fallback switch.
fn routing_form_of(doc: &Value) -> RoutingForm {
    let list = |v: &Value| -> String {
        v.as_array().into_iter().flatten().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
    };
    let routes = doc["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let matcher = match (r["country"].as_str(), r["calling_code"].as_str()) {
                (Some(c), _) => c.to_owned(),
                (None, Some(cc)) => format!("+{cc}"),
                (None, None) => String::new(),
            };
            let mut line = matcher;
            for c in ["sms", "voice"] {
                let l = list(&r[c]).replace(", ", ",");
                if !l.is_empty() {
                    line.push_str(&format!(" {c}={l}"));
                }
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n");
    RoutingForm {
        sms_fallbacks: list(&doc["fallbacks"]["sms"]),
        voice_fallbacks: list(&doc["fallbacks"]["voice"]),
        routes,
        voice_fallback: if doc["voice_fallback"]["enabled"] == json!(true) { "on".into() } else { String::new() },
        receipt_timeout_seconds: doc["voice_fallback"]["receipt_timeout_seconds"]
            .as_u64()
            .map(|n| n.to_string())
            .unwrap_or_default(),
    }
}

/// Failover chains, country routes and the voice fallback (`/guardian/factors/phone/routing`).
fn routing_section(app: &AppState, ctx: &Ctx, s: &Settings, v: &View) -> Markup {
    let f = v.routing.clone().unwrap_or_else(|| routing_form_of(&s.routing));
    let names: Vec<&str> = app.providers.kinds().map(|k| k.name()).collect();
    // Examples drawn from the registry: the first two providers that are not the development one.
    let dev = app.providers.default_provider().name();
    let ex: Vec<&str> = names.iter().copied().filter(|n| *n != dev).take(2).collect();
    let (a, b) = (ex.first().copied().unwrap_or(dev), ex.get(1).copied().unwrap_or(dev));
    let (sms_example, voice_example) = (format!("e.g. {a}, {b}"), format!("e.g. {b}"));
    let routes_example = format!("GB sms={a},{b}\n+1416 sms={b} voice={b}");
    html! {
        section class="panel" id="routing" aria-labelledby="routing-h" {
            h2 id="routing-h" { "Routing and failover" }
            p class="muted" {
                "The selected provider is tried first, then its fallbacks. A provider that fails (an outage, "
                "throttling, its credentials) hands the message to the next one; a refused number does not. "
                "Providers: " code { (names.join(", ")) } "."
            }
            (ui::error(v.error_in(Section::Routing)))
            form method="post" action="/dashboard/mfa/phone/routing" data-track-changes {
                (ui::csrf(app, ctx))
                label for="routing-sms" { "SMS fallbacks, in order" }
                input type="text" id="routing-sms" name="sms_fallbacks" value=(f.sms_fallbacks) placeholder=(sms_example);
                label for="routing-voice" { "Voice fallbacks, in order" }
                input type="text" id="routing-voice" name="voice_fallbacks" value=(f.voice_fallbacks) placeholder=(voice_example);
                label for="routing-routes" { "Country routes, one per line, first match wins" }
                textarea id="routing-routes" name="routes" rows="4" placeholder=(routes_example) { (f.routes) }
                p class="hint" {
                    "A line is an ISO country (" code { "GB" } ") or a calling-code prefix (" code { "+1416" } "), then "
                    code { "sms=" } " and/or " code { "voice=" } " with the providers to try, in order."
                }
                label class="choice" for="routing-fallback" {
                    input type="checkbox" id="routing-fallback" name="voice_fallback" value="on" checked[f.voice_fallback == "on"];
                    "Call with the same code when an SMS fails"
                }
                label for="routing-timeout" { "…or when no delivery receipt arrives within (seconds, blank for never)" }
                input type="number" id="routing-timeout" name="receipt_timeout_seconds" min="10" max="3600" value=(f.receipt_timeout_seconds);
                (save_row("Save routing"))
            }
        }
    }
}

/// How a provider stands on this node (its circuit breaker), once it has sent anything.
fn health_note(app: &AppState, kind: &dyn ProviderKind) -> Markup {
    use callsign_messaging::BreakerState;
    let h = app.health.status(kind.name());
    if h.recent_sends == 0 && h.state == BreakerState::Closed {
        return html! {};
    }
    let state = match h.state {
        BreakerState::Closed => "Healthy",
        BreakerState::Open => "Unhealthy: skipped by failover chains until it is probed again",
        BreakerState::HalfOpen => "Being probed after failures",
    };
    html! {
        span class="card-text health" id=(format!("health-{}", kind.form_id())) {
            strong { (state) } ". "
            (h.recent_failures) " of " (h.recent_sends) " sends failed in the last minute"
            @if h.recent_timeouts > 0 { " (" (h.recent_timeouts) " timed out)" }
            @if let Some(e) = &h.last_error { ". Last error: " (e) }
            "."
        }
    }
}

/// One setting's label, input and help: what was typed (after a refused save), else the stored value; a secret is
/// never filled in, only said to be stored (masked, as the Management API shows it).
fn provider_field(
    kind: &dyn ProviderKind,
    field: &FieldSpec,
    view: Option<&Value>,
    posted: Option<&ProviderForm>,
) -> Markup {
    let id = field_id(kind, field);
    let hint = format!("{id}-hint");
    let stored = view.map_or("", |v| ui::s(v, field.name));
    let value = posted.and_then(|p| p.get(&id)).map_or(stored, String::as_str);
    let input_type = match field.kind {
        FieldKind::Url => "url",
        FieldKind::Phone => "tel",
        FieldKind::Secret => "password",
        _ => "text",
    };
    html! {
        label for=(id) { (field.label) }
        @if field.kind == FieldKind::Secret {
            input id=(id) name=(id) type="password" autocomplete="new-password" aria-describedby=(hint);
            p id=(hint) class="hint" {
                @if stored.is_empty() { "No " (secret_noun(field)) " is stored. " }
                @else { "A " (secret_noun(field)) " is stored (" (stored) "). Leave blank to keep it. " }
                (field.help) "."
            }
        } @else {
            input id=(id) name=(id) type=(input_type) autocomplete="off" spellcheck="false" value=(value)
                aria-describedby=(hint);
            p id=(hint) class="hint" { (field.help) "." }
        }
    }
}

fn secrets_section(app: &AppState, ctx: &Ctx, s: &Settings, v: &View) -> Markup {
    html! {
        @for kind in app.providers.kinds() {
            @if let Some(field) = generated_secrets(kind) {
                (generated_secrets_section(app, ctx, s, v, kind, field))
            }
        }
    }
}

/// A provider's server-generated secrets (the webhook's signing secrets): listed by id, created (shown once) and
/// deleted through the provider's `…/secrets` endpoints.
fn generated_secrets_section(
    app: &AppState,
    ctx: &Ctx,
    s: &Settings,
    v: &View,
    kind: &dyn ProviderKind,
    field: &FieldSpec,
) -> Markup {
    let secrets: Vec<&Value> = s
        .views
        .get(kind.name())
        .and_then(|view| view.get(field.name))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let anchor = format!("{}-secrets", kind.form_id());
    let noun = field.label.to_lowercase();
    let one = noun.strip_suffix('s').unwrap_or(&noun).to_owned();
    html! {
        section class="panel" id=(anchor) aria-labelledby={ (anchor) "-h" } {
            h2 id={ (anchor) "-h" } { (kind.label()) ": " (noun) }
            (ui::error(v.error_in(Section::Secrets).filter(|_| v.secrets_of.as_deref() == Some(kind.name()))))
            @if let Some((id, secret)) = v.new_secret.as_ref().filter(|_| v.secrets_of.as_deref() == Some(kind.name())) {
                div class="alert ok" role="status" {
                    p { "Secret " code { (id) } " created. Copy it now: it is not shown again." }
                    code class="recovery" { (secret) }
                }
            }
            @if secrets.is_empty() {
                p { "No " (one) " yet." }
            } @else {
                table {
                    caption class="visually-hidden" { (field.label) }
                    thead { tr { th scope="col" { "Id" } th scope="col" { "Created" } th scope="col" { "Action" } } }
                    tbody {
                        @for sec in &secrets {
                            tr {
                                td { code { (ui::s(sec, "id")) } }
                                td { (ui::s(sec, "created_at")) }
                                td {
                                    form class="inline" method="post" action="/dashboard/mfa/phone/secrets/delete" {
                                        (ui::csrf(app, ctx))
                                        input type="hidden" name="provider" value=(kind.name());
                                        input type="hidden" name="id" value=(ui::s(sec, "id"));
                                        button type="submit" class="secondary small" aria-label={ "Delete secret " (ui::s(sec, "id")) } { "Delete" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form method="post" action="/dashboard/mfa/phone/secrets" {
                (ui::csrf(app, ctx))
                input type="hidden" name="provider" value=(kind.name());
                p class="hint" { (field.help) "." }
                button type="submit" class="secondary" { "Create a " (one) }
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
            form method="post" action="/dashboard/mfa/phone/templates" data-track-changes data-live-preview="template-preview" {
                (ui::csrf(app, ctx))
                label for="enrollment_message" { "Enrollment message" }
                textarea id="enrollment_message" name="enrollment_message" rows="3" { (enrollment) }
                label for="verification_message" { "Verification message" }
                textarea id="verification_message" name="verification_message" rows="3" { (verification) }
                div class="buttons save-row" {
                    button type="submit" name="action" value="preview" class="secondary" { "Preview" }
                    button type="submit" name="action" value="save" { "Save templates" }
                    span class="unsaved" role="status" data-unsaved { }
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
                (short_label(app, &s.provider)) ")."
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

/// A provider's name inside a sentence; the stored name itself when this build does not know it.
fn short_label<'a>(app: &AppState, name: &'a str) -> &'a str {
    app.providers.get(name).map_or(name, |k| k.short_label())
}

fn policy_section(app: &AppState, ctx: &Ctx, s: &Settings, v: &View) -> Markup {
    let all = s.policies.iter().any(|p| p == "all-applications");
    html! {
        section class="panel" id="policy" aria-labelledby="policy-h" {
            h2 id="policy-h" { "MFA policy" }
            (ui::error(v.error_in(Section::Policy)))
            form method="post" action="/dashboard/mfa/phone/policy" data-track-changes {
                (ui::csrf(app, ctx))
                fieldset {
                    legend { "Require multi-factor authentication" }
                    (radio("policy", "never", !all, "Never", "policy-never"))
                    (radio("policy", "all-applications", all, "Always, for all applications", "policy-all"))
                }
                (save_row("Save policy"))
            }
        }
    }
}

// --- changes --------------------------------------------------------------------------------------------------------

/// After a change: the flash and a redirect, or the page again with the error in its section.
async fn done(app: &AppState, mut ctx: Ctx, result: Result<String, View>, anchor: &str) -> Page {
    match result {
        Ok(message) => ctx.flash_and_go(app, message, &format!("{PAGE}#{anchor}")).await,
        Err(view) => render(app, &ctx, StatusCode::BAD_REQUEST, view).await,
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct FactorForm {
    /// `on` from the switch (`true` is also understood); absent when the switch is off.
    enabled: String,
}

pub async fn set_factor(State(app): State<AppState>, p: Posted<FactorForm>) -> Page {
    let enabled = matches!(p.form.enabled.as_str(), "on" | "true");
    let api = p.ctx.api(&app).await?;
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
    /// The two switches: `on` when on, absent when off.
    sms: String,
    voice: String,
}

pub async fn set_message_types(State(app): State<AppState>, p: Posted<MessageTypesForm>) -> Page {
    let types: Vec<&str> = [("sms", &p.form.sms), ("voice", &p.form.voice)]
        .into_iter()
        .filter(|(_, v)| v.as_str() == "on")
        .map(|(t, _)| t)
        .collect();
    if types.is_empty() {
        let view = View {
            error: Some((
                Section::MessageTypes,
                "Turn on at least one delivery method (SMS, voice call, or both). To stop sending codes, turn the \
                 phone factor off instead."
                    .to_owned(),
            )),
            ..Default::default()
        };
        return render(&app, &p.ctx, StatusCode::BAD_REQUEST, view).await;
    }
    let api = p.ctx.api(&app).await?;
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

pub async fn set_provider(State(app): State<AppState>, p: Posted<ProviderForm>) -> Page {
    let f = p.form.clone();
    let api = p.ctx.api(&app).await?;
    let result = save_provider(&app, &api, &f).await.map_err(|e| {
        // Keep what was typed, but never a secret.
        let secret_ids: Vec<String> = app
            .providers
            .kinds()
            .flat_map(|k| k.fields().iter().filter(|f| f.kind == FieldKind::Secret).map(move |f| field_id(k, f)))
            .collect();
        let typed = f.into_iter().filter(|(k, _)| !secret_ids.contains(k)).collect();
        View { provider: Some(typed), ..View::failed(Section::Provider, e) }
    });
    done(&app, p.ctx, result, "provider").await
}

/// Save the chosen provider's settings (`PUT …/providers/{name}`, blank fields as null, a secret only when one
/// was typed), then select it.
async fn save_provider(app: &AppState, api: &Api, f: &ProviderForm) -> Result<String, ApiFailure> {
    let name = f.get("provider").map_or("", |s| s.trim());
    let kind = app.providers.get(name).map_err(|e| ApiFailure { status: 400, message: e.to_string() })?;
    let fields: Vec<&FieldSpec> = form_fields(kind).collect();
    if !fields.is_empty() {
        let mut body = serde_json::Map::new();
        for field in fields {
            let typed = f.get(&field_id(kind, field)).map_or("", String::as_str);
            if field.kind == FieldKind::Secret {
                if !typed.is_empty() {
                    body.insert(field.name.to_owned(), json!(typed));
                }
            } else {
                body.insert(field.name.to_owned(), blank_to_null(typed));
            }
        }
        api.put(&settings_path(kind), &Value::Object(body)).await?;
    }
    api.put("/guardian/factors/phone/selected-provider", &json!({"provider": kind.name()})).await?;
    Ok(format!("Provider saved: {}.", kind.short_label()))
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct SecretForm {
    /// The provider (default: the first with generated secrets).
    provider: String,
    /// The secret to delete.
    id: String,
}

/// The provider a secrets form is about: the named one, else the first with generated secrets.
fn secrets_provider(app: &AppState, name: &str) -> Result<&'static dyn ProviderKind, ApiFailure> {
    let kind = if name.is_empty() {
        app.providers.kinds().find(|k| generated_secrets(*k).is_some())
    } else {
        app.providers.get(name).ok().filter(|k| generated_secrets(*k).is_some())
    };
    kind.ok_or_else(|| ApiFailure { status: 400, message: "This provider has no generated secrets.".to_owned() })
}

pub async fn create_secret(State(app): State<AppState>, p: Posted<SecretForm>) -> Page {
    let api = p.ctx.api(&app).await?;
    let failed = |e: ApiFailure, of: Option<String>| View { secrets_of: of, ..View::failed(Section::Secrets, e) };
    let kind = match secrets_provider(&app, &p.form.provider) {
        Ok(k) => k,
        Err(e) => return render(&app, &p.ctx, StatusCode::BAD_REQUEST, failed(e, None)).await,
    };
    let of = Some(kind.name().to_owned());
    match api.post(&format!("{}/secrets", settings_path(kind)), &json!({})).await {
        Ok(v) => {
            let view = View {
                secrets_of: of,
                new_secret: Some((ui::s(&v, "id").to_owned(), ui::s(&v, "secret").to_owned())),
                ..Default::default()
            };
            render(&app, &p.ctx, StatusCode::OK, view).await
        }
        Err(e) => render(&app, &p.ctx, StatusCode::BAD_REQUEST, failed(e, of)).await,
    }
}

pub async fn delete_secret(State(app): State<AppState>, p: Posted<SecretForm>) -> Page {
    let api = p.ctx.api(&app).await?;
    let id = p.form.id.clone();
    let kind = match secrets_provider(&app, &p.form.provider) {
        Ok(k) => k,
        Err(e) => return render(&app, &p.ctx, StatusCode::BAD_REQUEST, View::failed(Section::Secrets, e)).await,
    };
    let of = Some(kind.name().to_owned());
    let result = api
        .delete(&format!("{}/secrets/{}", settings_path(kind), super::api::seg(&id)))
        .await
        .map(|_| format!("Secret {id} deleted."))
        .map_err(|e| View { secrets_of: of, ..View::failed(Section::Secrets, e) });
    done(&app, p.ctx, result, &format!("{}-secrets", kind.form_id())).await
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

pub async fn templates(State(app): State<AppState>, p: Posted<TemplatesForm>) -> Page {
    let enrollment = unix_lines(&p.form.enrollment_message);
    let verification = unix_lines(&p.form.verification_message);
    let typed = Some((enrollment.clone(), verification.clone()));
    if p.form.action != "save" {
        // Preview only: render what was typed, save nothing.
        let view = View { templates: typed, ..Default::default() };
        return render(&app, &p.ctx, StatusCode::OK, view).await;
    }
    let api = p.ctx.api(&app).await?;
    let body = json!({"enrollment_message": enrollment, "verification_message": verification});
    let result = api
        .put("/guardian/factors/phone/templates", &body)
        .await
        .map(|_| "Templates saved.".to_owned())
        .map_err(|e| View { templates: typed, ..View::failed(Section::Templates, e) });
    done(&app, p.ctx, result, "templates").await
}

pub async fn send_test(State(app): State<AppState>, p: Posted<TestForm>) -> Page {
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
        Err(e) => return Err(internal(e.message)),
    };
    let text = callsign_core::delivery::test_text(&friendly);
    let result = super::test_message::send(&app, &p.ctx.meta(), &to, channel, &text)
        .await
        .map(|_| {
            format!("Test message sent by {} to {}.", if channel == "voice" { "voice call" } else { "SMS" }, to.e164())
        })
        .map_err(|e| fail(format!("The provider did not send the message: {e}")));
    done(&app, p.ctx, result, "test").await
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(default)]
pub struct RoutingForm {
    sms_fallbacks: String,
    voice_fallbacks: String,
    routes: String,
    voice_fallback: String,
    receipt_timeout_seconds: String,
}

/// A comma (or space) separated list of provider names.
fn name_list(s: &str) -> Vec<String> {
    s.split([',', ' ']).map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect()
}

/// The routing document a form stands for, or what is wrong with a line (said with its number).
fn routing_document(f: &RoutingForm) -> Result<Value, String> {
    let mut routes = Vec::new();
    for (i, line) in f.routes.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        let matcher = words.next().unwrap_or_default();
        let mut route = serde_json::Map::new();
        if let Some(cc) = matcher.strip_prefix('+') {
            route.insert("calling_code".into(), json!(cc));
        } else if matcher.bytes().all(|b| b.is_ascii_digit()) {
            route.insert("calling_code".into(), json!(matcher));
        } else {
            route.insert("country".into(), json!(matcher));
        }
        for w in words {
            match w.split_once('=') {
                Some((c @ ("sms" | "voice"), list)) => {
                    route.insert(c.into(), json!(name_list(list)));
                }
                _ => {
                    return Err(format!("Route line {}: `{w}` is not `sms=provider,…` or `voice=provider,…`.", i + 1));
                }
            }
        }
        routes.push(Value::Object(route));
    }
    let mut fallback = json!({"enabled": f.voice_fallback == "on"});
    let t = f.receipt_timeout_seconds.trim();
    if !t.is_empty() {
        let n: u32 = t.parse().map_err(|_| format!("The receipt wait `{t}` is not a whole number of seconds."))?;
        fallback["receipt_timeout_seconds"] = json!(n);
    }
    Ok(json!({
        "fallbacks": {"sms": name_list(&f.sms_fallbacks), "voice": name_list(&f.voice_fallbacks)},
        "routes": routes,
        "voice_fallback": fallback,
    }))
}

pub async fn set_routing(State(app): State<AppState>, p: Posted<RoutingForm>) -> Page {
    let f = p.form.clone();
    let api = p.ctx.api(&app).await?;
    let result = match routing_document(&f) {
        Ok(doc) => api
            .put("/guardian/factors/phone/routing", &doc)
            .await
            .map(|_| "Routing saved.".to_owned())
            .map_err(|e| e.message),
        Err(e) => Err(e),
    }
    .map_err(|message| View { routing: Some(f), error: Some((Section::Routing, message)), ..Default::default() });
    done(&app, p.ctx, result, "routing").await
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct PolicyForm {
    policy: String,
}

pub async fn set_policy(State(app): State<AppState>, p: Posted<PolicyForm>) -> Page {
    let policies: Vec<&str> = match p.form.policy.as_str() {
        "never" => vec![],
        other => vec![other],
    };
    let api = p.ctx.api(&app).await?;
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
        let t = callsign_core::templates::DEFAULT_VERIFICATION;
        assert_eq!(super::preview(t, "sms", "Acme").unwrap(), "123456 is your verification code for Acme");
        assert_eq!(super::preview(t, "voice", "Acme").unwrap(), "1.2.3.4.5.6 is your verification code for Acme");
        assert!(super::preview("{% if %}", "sms", "Acme").is_err());
        assert_eq!(super::unix_lines("a\r\nb"), "a\nb");
    }

    #[test]
    fn the_routing_form_round_trips_the_document() {
        use serde_json::json;
        let doc = json!({
            "fallbacks": {"sms": ["telesign", "infobip"], "voice": ["telesign"]},
            "routes": [{"country": "GB", "sms": ["esendex", "twilio"], "voice": []},
                       {"calling_code": "1416", "sms": ["telesign"], "voice": ["telesign"]}],
            "voice_fallback": {"enabled": true, "receipt_timeout_seconds": 60}
        });
        let f = super::routing_form_of(&doc);
        assert_eq!(f.routes, "GB sms=esendex,twilio\n+1416 sms=telesign voice=telesign");
        assert_eq!(f.sms_fallbacks, "telesign, infobip");
        let back = super::routing_document(&f).unwrap();
        assert_eq!(back["routes"][0], json!({"country": "GB", "sms": ["esendex", "twilio"]}));
        assert_eq!(back["routes"][1], json!({"calling_code": "1416", "sms": ["telesign"], "voice": ["telesign"]}));
        assert_eq!((&back["fallbacks"], &back["voice_fallback"]), (&doc["fallbacks"], &doc["voice_fallback"]));
        let bad = super::RoutingForm { routes: "GB esendex".into(), ..Default::default() };
        assert!(super::routing_document(&bad).unwrap_err().contains("Route line 1"));
        let bad = super::RoutingForm { receipt_timeout_seconds: "soon".into(), ..Default::default() };
        assert!(super::routing_document(&bad).unwrap_err().contains("whole number"));
    }
}
