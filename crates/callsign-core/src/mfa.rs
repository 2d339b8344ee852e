//! The MFA API (reference §8): `mfa_required`, associate, challenge, the MFA grants, and authenticator listing.
//! Errors are Authentication-API shaped; the choices made where Auth0 is unconfirmed are listed in docs/API.md.
use std::time::Duration;

use callsign_domain::hash::{token_hash, token_matches};
use callsign_domain::otp::{self, OtpCode};
use callsign_domain::phone::{PhoneNumber, mask};
use callsign_store::{
    BucketSpec, Challenge, Channel, Client, Enrollment, EnrollmentKind, EnrollmentStatus, MfaToken, User,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Core;
use crate::Origin;
use crate::delivery::{self, Payload};
use crate::error::{AuthError, Status};
use crate::grants::{self, TokenRequest, TokenResponse};
use crate::guardian::GuardianConfig;
use crate::identity::events::{self, EventCtx};
use crate::templates;
use callsign_messaging::{Action, MessageContext};

pub const GRANT_MFA_OOB: &str = "http://auth0.com/oauth/grant-type/mfa-oob";
pub const GRANT_MFA_OTP: &str = "http://auth0.com/oauth/grant-type/mfa-otp";
pub const GRANT_MFA_RECOVERY: &str = "http://auth0.com/oauth/grant-type/mfa-recovery-code";

pub const MFA_TOKEN_LIFETIME: Duration = Duration::from_secs(10 * 60);
pub const CODE_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// 10 sends per user per hour, then one more per hour.
pub const SEND_BUCKET: BucketSpec = BucketSpec { capacity: 10, refill_every_ms: 3_600_000 };
/// Voice calls: at most one per hour.
pub const VOICE_BUCKET: BucketSpec = BucketSpec { capacity: 1, refill_every_ms: 3_600_000 };
/// Wrong codes: 10, refilling one every 6 minutes.
pub const FAILED_CODE_BUCKET: BucketSpec = BucketSpec { capacity: 10, refill_every_ms: 360_000 };

pub const TOO_MANY_SMS: &str = "Too many SMS sent by the user. Wait for some minutes before retrying.";
pub const TOO_MANY_VOICE: &str = "Too many phone calls made to the user. Wait for some minutes before retrying.";
pub const TOO_MANY_FAILURES: &str = "Too many failed codes. Wait for some minutes before retrying.";

fn err(status: Status, error: &'static str, description: impl Into<String>) -> AuthError {
    AuthError::new(status, error, description)
}

fn too_many(description: &str) -> AuthError {
    err(Status::TooManyRequests, "too_many_attempts", description)
}

/// Why a second-factor step was refused. The MFA API turns it into its Authentication-API error
/// (`From<MfaError> for AuthError`); the login pages into a sentence in the user's language.
#[derive(Debug)]
pub enum MfaError {
    /// The per-user send limit (SMS, or any message when the channel is SMS).
    TooManySms,
    /// The per-user voice-call limit.
    TooManyVoice,
    /// Suspicious IP throttling: the caller's address asked for too many messages (`pre-phone-message`).
    TooManyFromNetwork,
    /// The wrong-code bucket is empty.
    TooManyFailures,
    /// The code does not match the challenge.
    WrongCode,
    /// The challenge expired or was already used.
    CodeExpired,
    /// No confirmed recovery code of this user matches.
    WrongRecoveryCode,
    /// The wrong-recovery-code bucket is empty.
    TooManyRecoveryFailures,
    /// A phone is already confirmed for this user.
    AlreadyEnrolled,
    /// The phone destination policy refuses the number on this channel (its country or its type).
    DestinationRefused(crate::destination::Refused),
    /// Anything else, already in its API shape (store failures are opaque 500s).
    Other(AuthError),
}

impl From<MfaError> for AuthError {
    fn from(e: MfaError) -> AuthError {
        match e {
            MfaError::TooManySms => too_many(TOO_MANY_SMS),
            MfaError::TooManyVoice => too_many(TOO_MANY_VOICE),
            MfaError::TooManyFromNetwork => too_many(crate::attack::TOO_MANY_MESSAGES),
            MfaError::TooManyFailures | MfaError::TooManyRecoveryFailures => too_many(TOO_MANY_FAILURES),
            MfaError::WrongCode => err(Status::Forbidden, "invalid_grant", "Invalid binding_code."),
            MfaError::CodeExpired => {
                err(Status::Forbidden, "invalid_grant", "The oob_code has expired or was already used.")
            }
            MfaError::WrongRecoveryCode => err(Status::Forbidden, "invalid_grant", "Invalid recovery_code."),
            MfaError::AlreadyEnrolled => err(Status::Forbidden, "access_denied", "User is already enrolled."),
            MfaError::DestinationRefused(r) => {
                err(Status::BadRequest, "invalid_phone_number", format!("phone_number: {}", r.message()))
            }
            MfaError::Other(e) => e,
        }
    }
}

impl From<AuthError> for MfaError {
    fn from(e: AuthError) -> MfaError {
        MfaError::Other(e)
    }
}

impl From<callsign_store::StoreError> for MfaError {
    fn from(e: callsign_store::StoreError) -> MfaError {
        MfaError::Other(AuthError::from(e))
    }
}

// --- the mfa_token ---------------------------------------------------------------------------------------------

/// The password was right and a second factor is required: issue an `mfa_token` and answer 403 `mfa_required`.
pub async fn require_mfa(
    app: &Core,
    meta: &Origin,
    client: &Client,
    user: &User,
    audience: Option<String>,
    scope: Option<String>,
) -> AuthError {
    match issue_mfa_token(app, meta, client, user, audience, scope).await {
        Ok(raw) => {
            err(Status::Forbidden, "mfa_required", "Multifactor authentication required").with("mfa_token", json!(raw))
        }
        Err(e) => e,
    }
}

async fn issue_mfa_token(
    app: &Core,
    meta: &Origin,
    client: &Client,
    user: &User,
    audience: Option<String>,
    scope: Option<String>,
) -> Result<String, AuthError> {
    let now = app.clock.now();
    let raw = format!("mfa_{}", callsign_domain::rng::from_alphabet(app.rng.as_ref(), callsign_domain::rng::ALNUM, 43));
    app.store
        .insert_mfa_token(&MfaToken {
            token_hash: token_hash(&raw),
            user_id: user.user_id.clone(),
            client_id: client.client_id.clone(),
            audience,
            scope: scope.unwrap_or_else(|| "openid".into()),
            created_at: now,
            expires_at: now.plus(MFA_TOKEN_LIFETIME),
        })
        .await?;
    events::record(app, "mfar", meta, ctx(Some(client), user)).await;
    Ok(raw)
}

pub(crate) fn ctx(client: Option<&Client>, user: &User) -> EventCtx {
    EventCtx {
        client_id: client.map(|c| c.client_id.clone()),
        client_name: client.map(|c| c.spec.name.clone()),
        user_id: Some(user.user_id.clone()),
        user_name: user.email.clone(),
        ..Default::default()
    }
}

/// Who a second-factor step is for: the user, the application (none for an enrollment ticket), and what the
/// challenges are bound to: the mfa_token's hash for the MFA API, the login transaction for the login pages.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub user: &'a User,
    pub client: Option<&'a Client>,
    pub binding: &'a str,
    /// The mfa_token (its hash) that a successful verification spends in the same store transaction (MFA API
    /// grants); `None` where nothing but the challenge or recovery code is spent (the login pages).
    pub mfa_token: Option<&'a str>,
}

impl Subject<'_> {
    fn ctx(&self) -> EventCtx {
        ctx(self.client, self.user)
    }
}

/// A resolved mfa_token with its user and client.
pub struct MfaSession {
    pub token: MfaToken,
    pub user: User,
    pub client: Client,
}

impl MfaSession {
    pub fn subject(&self) -> Subject<'_> {
        Subject {
            user: &self.user,
            client: Some(&self.client),
            binding: &self.token.token_hash,
            mfa_token: Some(&self.token.token_hash),
        }
    }
}

/// Look up a presented mfa_token. Unknown → 403 `invalid_grant` "Malformed mfa_token"; past its lifetime →
/// 401 `expired_token` "mfa_token is expired".
pub async fn resolve_mfa_token(app: &Core, raw: &str) -> Result<MfaSession, AuthError> {
    resolve_mfa_token_for(app, raw, None).await
}

/// [`resolve_mfa_token`] when the caller already loaded (and authenticated) a client: when it is the token's, it is
/// used instead of being read again.
async fn resolve_mfa_token_for(app: &Core, raw: &str, known: Option<&Client>) -> Result<MfaSession, AuthError> {
    let malformed = || err(Status::Forbidden, "invalid_grant", "Malformed mfa_token");
    let token = app.store.get_mfa_token(&token_hash(raw.trim())).await?.ok_or_else(malformed)?;
    if token.expires_at <= app.clock.now() {
        return Err(err(Status::Unauthorized, "expired_token", "mfa_token is expired"));
    }
    let user = app.store.get_user(&token.user_id).await?.ok_or_else(malformed)?;
    let client = match known.filter(|c| c.client_id == token.client_id) {
        Some(c) => c.clone(),
        None => app.cache.client(app.store.as_ref(), &token.client_id).await?.ok_or_else(malformed)?,
    };
    Ok(MfaSession { token, user, client })
}

/// If the caller also authenticated as a client, it must be the one the mfa_token was issued to.
fn check_client(session: &MfaSession, client: Option<&Client>) -> Result<(), AuthError> {
    match client {
        Some(c) if c.client_id != session.client.client_id => {
            Err(AuthError::invalid_request("mfa_token not issued to this client"))
        }
        _ => Ok(()),
    }
}

// --- ids ---------------------------------------------------------------------------------------------------------

/// `sms|dev_X`, `voice|dev_X`, `phone|dev_X`, `recovery-code|dev_X` or bare `dev_X` → (`type`, `dev_X`).
pub fn split_authenticator_id(id: &str) -> (Option<&str>, &str) {
    match id.split_once('|') {
        Some((t, rest)) => (Some(t), rest),
        None => (None, id),
    }
}

fn new_enrollment_id(app: &Core) -> String {
    format!("dev_{}", callsign_domain::rng::from_alphabet(app.rng.as_ref(), callsign_domain::rng::ALNUM, 16))
}

// --- sending a code ------------------------------------------------------------------------------------------------

/// Apply the per-user send limits for a new message on `channel`. Each limit is counted by an atomic take in the
/// limiter (never a read then a write), so parallel requests cannot pass it together: a voice call takes from the
/// voice bucket first and from the send bucket second, and gives the voice token back when the second refuses.
async fn check_send_limits(app: &Core, meta: &Origin, subject: Subject<'_>, channel: Channel) -> Result<(), MfaError> {
    let now = app.clock.now();
    let user = subject.user;
    let refuse = |code: &'static str, text: &'static str| {
        let c =
            EventCtx { description: Some(text.into()), details: json!({"reason": "rate_limited"}), ..subject.ctx() };
        async move { events::record(app, code, meta, c).await }
    };
    // The caller's address first (suspicious IP throttling, `pre-phone-message`): one IP cannot make Callsign send
    // more than its bucket allows across all accounts and numbers. Given back when a per-user limit refuses.
    use crate::attack::{self, Refusal, Stage};
    // Suspicious IP throttling and phone provider protection live in one settings document: read it once.
    let settings = attack::load(app).await.map_err(|e| {
        MfaError::Other(AuthError::limiter_unavailable(format_args!("attack protection settings: {e}")))
    })?;
    match attack::count_with(app, &settings, meta, Stage::PrePhoneMessage).await {
        Ok(()) => {}
        Err(Refusal::Blocked(_)) => {
            let failure = if channel == Channel::Voice { "gd_send_voice_failure" } else { "gd_send_sms_failure" };
            refuse(failure, crate::attack::TOO_MANY_MESSAGES).await;
            return Err(MfaError::TooManyFromNetwork);
        }
        Err(Refusal::Unavailable(e)) => {
            return Err(MfaError::Other(AuthError::limiter_unavailable(format_args!("suspicious IP throttling: {e}"))));
        }
    }
    let exponential = settings.phone_provider_protection.exponential();
    let voice_key = format!("voice-send:{}", user.user_id);
    if channel == Channel::Voice && !limit(app.limiter.bucket_take(&voice_key, VOICE_BUCKET, now).await)?.allowed {
        attack::uncount_with(app, &settings, meta, Stage::PrePhoneMessage).await;
        refuse("gd_send_voice_failure", TOO_MANY_VOICE).await;
        return Err(MfaError::TooManyVoice);
    }
    if exponential {
        // Phone provider protection `exponential`: the per-user backoff replaces the flat send bucket.
        let b = limit(attack::backoff_take(app, &user.user_id).await)?;
        if b.allowed {
            return Ok(());
        }
        attack::uncount_with(app, &settings, meta, Stage::PrePhoneMessage).await;
        let (code, text, e) = if channel == Channel::Voice {
            give_back(app, &voice_key, VOICE_BUCKET).await;
            ("gd_send_voice_failure", TOO_MANY_VOICE, MfaError::TooManyVoice)
        } else {
            ("gd_send_sms_failure", TOO_MANY_SMS, MfaError::TooManySms)
        };
        let retry = b.retry_at.map(|t| t.to_rfc3339());
        let c = EventCtx {
            description: Some(text.into()),
            details: json!({"reason": "rate_limited", "backoff": {"level": b.level, "wait_ms": b.wait_ms, "retry_at": retry}}),
            ..subject.ctx()
        };
        events::record(app, code, meta, c).await;
        return Err(e);
    }
    let s = limit(app.limiter.bucket_take(&format!("send:{}", user.user_id), SEND_BUCKET, now).await)?;
    if !s.allowed {
        attack::uncount_with(app, &settings, meta, Stage::PrePhoneMessage).await;
        if channel == Channel::Voice {
            give_back(app, &voice_key, VOICE_BUCKET).await;
            refuse("gd_send_voice_failure", TOO_MANY_VOICE).await;
            return Err(MfaError::TooManyVoice);
        }
        refuse("gd_send_sms_failure", TOO_MANY_SMS).await;
        return Err(MfaError::TooManySms);
    }
    Ok(())
}

/// Refuse a number the phone destination policy does not let `channel` reach (`crate::destination`), with a
/// `gd_send_{channel}_failure` event whose details say why (country and type, never the number).
async fn check_destination(
    app: &Core,
    meta: &Origin,
    subject: Subject<'_>,
    phone: &PhoneNumber,
    channel: Channel,
) -> Result<(), MfaError> {
    let policy = crate::destination::load(app).await.map_err(AuthError::internal)?;
    let Err(refused) = policy.check(phone, channel) else { return Ok(()) };
    let c = EventCtx { description: Some(refused.message()), details: refused.details(), ..subject.ctx() };
    events::record(app, &format!("gd_send_{channel}_failure"), meta, c).await;
    Err(MfaError::DestinationRefused(refused))
}

/// A limiter answer, or the request refused with 503 when the limiter cannot be asked (fail closed: a limit that
/// cannot be counted lets nothing through, and is no opaque 500 either).
fn limit<T>(answer: callsign_store::StoreResult<T>) -> Result<T, MfaError> {
    answer.map_err(|e| MfaError::Other(AuthError::limiter_unavailable(e)))
}

/// Return a token taken from a bucket by a request that turned out not to count. A failure here costs the user one
/// attempt at most, so it is logged rather than failing a request whose real work is done.
async fn give_back(app: &Core, key: &str, spec: BucketSpec) {
    if let Err(e) = app.limiter.bucket_give_back(key, spec, app.clock.now()).await {
        tracing::warn!(error = %e, "could not give a rate-limit token back");
    }
}

/// What a code message is: its channel, enrollment or verification, the configuration it is sent under (read once
/// per request by the caller), and the language asked for.
struct CodeMessage<'a> {
    channel: Channel,
    enrolling: bool,
    guardian: &'a GuardianConfig,
    requested_locale: Option<&'a str>,
}

/// Generate a code, render the message, and commit the challenge and its delivery job together. Returns the
/// `oob_code` (the challenge's id is its token hash).
async fn send_code(
    app: &Core,
    meta: &Origin,
    subject: Subject<'_>,
    enrollment: &Enrollment,
    m: CodeMessage<'_>,
) -> Result<String, AuthError> {
    let prepared = prepare_code(app, meta, subject, enrollment, m).await?;
    app.store.create_challenge(&prepared.challenge, Some(&prepared.job)).await?;
    Ok(prepared.oob_code)
}

/// A code message ready to be stored: the challenge, its delivery job, and the `oob_code` the caller hands out.
struct PreparedCode {
    oob_code: String,
    challenge: Challenge,
    job: callsign_store::DeliveryJob,
}

/// Generate a code and render its message into a challenge and a delivery job, storing nothing.
async fn prepare_code(
    app: &Core,
    meta: &Origin,
    subject: Subject<'_>,
    enrollment: &Enrollment,
    m: CodeMessage<'_>,
) -> Result<PreparedCode, AuthError> {
    let CodeMessage { channel, enrolling, guardian, requested_locale } = m;
    let phone =
        enrollment.phone_number.clone().ok_or_else(|| AuthError::internal("phone enrollment without a number"))?;
    let tenant = crate::tenant::load(app).await.map_err(AuthError::internal)?;
    let locale = tenant.pick_locale(requested_locale);
    let locale = locale.as_str();
    let friendly = tenant.friendly_name.unwrap_or_else(|| "Callsign".into());
    let code = OtpCode::generate(app.rng.as_ref());
    let (template, from) = guardian.code_message(enrolling, channel.as_str());
    let text = templates::render(
        &template,
        &templates::Vars {
            code: code.expose(),
            message_type: channel.as_str(),
            locale,
            friendly_name: &friendly,
            support_email: tenant.support_email.as_deref().unwrap_or_default(),
            support_url: tenant.support_url.as_deref().unwrap_or_default(),
        },
    )
    .map_err(|e| AuthError::internal(format!("template: {e}")))?;
    let oob_code =
        format!("oob_{}", callsign_domain::rng::from_alphabet(app.rng.as_ref(), callsign_domain::rng::ALNUM, 43));
    let challenge_id = token_hash(&oob_code);
    let now = app.clock.now();
    let challenge = Challenge {
        id: challenge_id.clone(),
        user_id: subject.user.user_id.clone(),
        enrollment_id: enrollment.id.clone(),
        channel,
        code_hash: code.hash(&app.otp_key, &challenge_id),
        mfa_token_hash: Some(subject.binding.to_owned()),
        created_at: now,
        expires_at: now.plus(CODE_LIFETIME),
        consumed_at: None,
    };
    // What only the request knows, for providers that forward it (the custom webhook's event); sealed with the
    // message and erased with it.
    let context = MessageContext {
        action: Some(if enrolling { Action::Enrollment } else { Action::SecondFactorAuthentication }),
        code: Some(zeroize::Zeroizing::new(code.expose().to_owned())),
        client_id: subject.client.map(|c| c.client_id.clone()),
        client_name: subject.client.map(|c| c.spec.name.clone()),
        ip: meta.ip.clone(),
        user_agent: meta.user_agent.clone(),
        language: Some(locale.to_owned()),
        user_id: Some(subject.user.user_id.clone()),
        user: Some(event_user(subject.user)),
        tenant_friendly_name: friendly.clone(),
    };
    let payload = Payload { to: phone, text, locale: locale.to_owned(), from, context };
    let job = delivery::new_job(
        app,
        channel,
        &guardian.provider,
        &payload,
        Some(&subject.user.user_id),
        Some(&enrollment.id),
        Some(&challenge_id),
    )
    .map_err(AuthError::internal)?;
    Ok(PreparedCode { oob_code, challenge, job })
}

/// The Auth0 `user` object of a message's context (the custom provider's Send Phone Message event).
fn event_user(u: &User) -> Value {
    json!({
        "user_id": u.user_id,
        "email": u.email,
        "email_verified": u.profile.email_verified,
        "phone_number": u.profile.phone_number,
        "phone_verified": u.profile.phone_verified,
        "name": u.profile.name,
        "nickname": u.profile.nickname,
        "given_name": u.profile.given_name,
        "family_name": u.profile.family_name,
        "picture": u.profile.picture,
        "created_at": u.created_at.to_rfc3339(),
        "updated_at": u.updated_at.to_rfc3339(),
        "last_login": u.last_login.map(|t| t.to_rfc3339()),
        "logins_count": u.logins_count,
        "identities": [{"connection": u.profile.connection, "provider": "auth0", "user_id": u.user_id.split_once('|').map_or(u.user_id.as_str(), |(_, id)| id), "isSocial": false}],
        "user_metadata": u.profile.user_metadata,
        "app_metadata": u.profile.app_metadata,
    })
}

/// The message language for a requested one (`x-request-language` for the MFA API, the page language for the
/// login pages): kept when it is one of the tenant's enabled locales, otherwise the tenant's default locale.
pub async fn resolve_locale(app: &Core, requested: Option<&str>) -> String {
    let tenant = crate::tenant::load(app).await.ok().unwrap_or_default();
    tenant.pick_locale(requested)
}

/// The requested message language of an MFA API call (`x-request-language`, in the request's origin).
fn requested_language(meta: &Origin) -> Option<&str> {
    meta.language.as_deref()
}

/// What `POST /mfa/associate` answers.
#[derive(Debug, Clone, Serialize)]
pub struct AssociateResponse {
    pub authenticator_type: &'static str,
    pub binding_method: &'static str,
    pub oob_channel: String,
    pub oob_code: String,
    /// The user's first enrollment comes with a recovery code, shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes: Option<Vec<String>>,
}

/// What `POST /mfa/challenge` answers.
#[derive(Debug, Clone, Serialize)]
pub struct ChallengeResponse {
    pub challenge_type: &'static str,
    pub oob_code: String,
    pub binding_method: &'static str,
}

/// One entry of `GET /mfa/authenticators`.
#[derive(Debug, Clone, Serialize)]
pub struct Authenticator {
    pub id: String,
    pub authenticator_type: &'static str,
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oob_channel: Option<String>,
    /// Phones only: the masked number (`null` when unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Option<String>>,
}

// --- enrolling a phone ---------------------------------------------------------------------------------------------

/// A phone enrollment that was started: the pending enrollment, the challenge sent to it, and the recovery code
/// created with a user's first enrollment (to be shown once; it is confirmed together with the phone).
#[derive(Debug)]
pub struct Enrolled {
    pub enrollment: Enrollment,
    pub oob_code: String,
    pub recovery_code: Option<String>,
}

/// Start enrolling `phone` for the subject's user (the caller checked that the phone factor and `channel` are
/// enabled): applies the send limits, replaces a pending enrollment, creates the recovery code of a first
/// enrollment when that factor is on, and sends the enrollment code. Logs `gd_start_enroll`.
pub async fn start_enrollment(
    app: &Core,
    meta: &Origin,
    subject: Subject<'_>,
    phone: &PhoneNumber,
    channel: Channel,
    requested_locale: Option<&str>,
) -> Result<Enrolled, MfaError> {
    let guardian = GuardianConfig::load(app).await.map_err(AuthError::internal)?;
    let existing = app.store.list_enrollments(&subject.user.user_id).await?;
    if existing.iter().any(|e| e.kind == EnrollmentKind::Phone && e.status == EnrollmentStatus::Confirmed) {
        return Err(MfaError::AlreadyEnrolled);
    }
    // The destination policy first: a refused number takes nothing from the send limits, and nothing is sent.
    check_destination(app, meta, subject, phone, channel).await?;
    // The send limits next: a refused request changes nothing (a pending enrollment stays as it was).
    check_send_limits(app, meta, subject, channel).await?;
    let now = app.clock.now();
    let enrollment = Enrollment {
        id: new_enrollment_id(app),
        user_id: subject.user.user_id.clone(),
        kind: EnrollmentKind::Phone,
        status: EnrollmentStatus::Pending,
        phone_number: Some(phone.e164().to_owned()),
        preferred_channel: Some(channel),
        name: Some(phone.masked()),
        secret_hash: None,
        created_at: now,
        enrolled_at: None,
        last_auth: None,
    };
    // The first enrollment also gets a recovery code, shown this once.
    let has_recovery =
        existing.iter().any(|e| e.kind == EnrollmentKind::RecoveryCode && e.status == EnrollmentStatus::Confirmed);
    let (recovery, recovery_code) = if has_recovery || !guardian.factor_enabled("recovery-code") {
        (None, None)
    } else {
        let code = otp::generate_recovery_code(app.rng.as_ref());
        let e = Enrollment {
            id: new_enrollment_id(app),
            user_id: subject.user.user_id.clone(),
            kind: EnrollmentKind::RecoveryCode,
            status: EnrollmentStatus::Pending,
            phone_number: None,
            preferred_channel: None,
            name: None,
            secret_hash: Some(token_hash(&code)),
            created_at: now,
            enrolled_at: None,
            last_auth: None,
        };
        (Some(e), Some(code))
    };
    let m = CodeMessage { channel, enrolling: true, guardian: &guardian, requested_locale };
    let prepared = prepare_code(app, meta, subject, &enrollment, m).await?;
    // One transaction that holds the user: an enrollment that was started and never confirmed is replaced by this
    // one, and a phone confirmed meanwhile (a parallel request) makes this one refused.
    if !app.store.begin_phone_enrollment(&enrollment, recovery.as_ref(), &prepared.challenge, &prepared.job).await? {
        return Err(MfaError::AlreadyEnrolled);
    }
    let oob_code = prepared.oob_code;
    events::record(
        app,
        "gd_start_enroll",
        meta,
        EventCtx {
            details: json!({"authenticator_id": format!("{channel}|{}", enrollment.id), "phone_number": phone.masked(), "country": phone.country()}),
            ..subject.ctx()
        },
    )
    .await;
    Ok(Enrolled { enrollment, oob_code, recovery_code })
}

/// Send a (new) code to an enrolled phone on `channel`, within the send limits. For a pending enrollment it is
/// the enrollment message again; for a confirmed one a verification message, logged as `gd_start_auth`.
pub async fn send_challenge(
    app: &Core,
    meta: &Origin,
    subject: Subject<'_>,
    enrollment: &Enrollment,
    channel: Channel,
    guardian: &GuardianConfig,
    requested_locale: Option<&str>,
) -> Result<String, MfaError> {
    let enrolling = enrollment.status == EnrollmentStatus::Pending;
    check_send_limits(app, meta, subject, channel).await?;
    let m = CodeMessage { channel, enrolling, guardian, requested_locale };
    let oob_code = send_code(app, meta, subject, enrollment, m).await?;
    if !enrolling {
        events::record(
            app,
            "gd_start_auth",
            meta,
            EventCtx { details: json!({"authenticator_id": format!("{channel}|{}", enrollment.id)}), ..subject.ctx() },
        )
        .await;
    }
    Ok(oob_code)
}

// --- POST /mfa/associate -------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct AssociateRequest {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub authenticator_types: Vec<String>,
    pub oob_channels: Vec<String>,
    pub phone_number: Option<String>,
}

pub async fn associate(
    app: &Core,
    meta: &Origin,
    bearer: &str,
    req: AssociateRequest,
) -> Result<AssociateResponse, AuthError> {
    let session = resolve_mfa_token(app, bearer).await?;
    let client = match &req.client_id {
        Some(id) => Some(grants::authenticate_client(app, id, req.client_secret.as_deref()).await?),
        None => None,
    };
    check_client(&session, client.as_ref())?;
    let guardian = GuardianConfig::load(app).await.map_err(AuthError::internal)?;
    if !guardian.phone_enabled() {
        return Err(err(
            Status::Forbidden,
            "unsupported_challenge_type",
            "The phone factor is not enabled for this tenant.",
        ));
    }
    if req.authenticator_types != ["oob"] {
        return Err(AuthError::invalid_request(
            "authenticator_types must be [\"oob\"]; Callsign enrolls phones (SMS or voice)",
        ));
    }
    let channel = match req.oob_channels.as_slice() {
        [c] => c.parse::<Channel>().ok(),
        _ => None,
    }
    .ok_or_else(|| AuthError::invalid_request("oob_channels must be [\"sms\"] or [\"voice\"]"))?;
    if !guardian.channel_enabled(channel.as_str()) {
        return Err(AuthError::invalid_request(format!(
            "The {channel} channel is not enabled; enabled message types: {}",
            guardian.message_types.join(", ")
        )));
    }
    let phone = PhoneNumber::parse(req.phone_number.as_deref().unwrap_or(""))
        .map_err(|e| AuthError::invalid_request(format!("phone_number: {e}")))?;
    let enrolled = start_enrollment(app, meta, session.subject(), &phone, channel, requested_language(meta)).await?;
    Ok(AssociateResponse {
        authenticator_type: "oob",
        binding_method: "prompt",
        oob_channel: channel.as_str().to_owned(),
        oob_code: enrolled.oob_code,
        recovery_codes: enrolled.recovery_code.map(|c| vec![c]),
    })
}

// --- POST /mfa/challenge --------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct ChallengeRequest {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub mfa_token: Option<String>,
    pub challenge_type: Option<String>,
    pub authenticator_id: Option<String>,
}

pub async fn challenge(app: &Core, meta: &Origin, req: ChallengeRequest) -> Result<ChallengeResponse, AuthError> {
    let client_id =
        req.client_id.clone().ok_or_else(|| AuthError::invalid_request("Missing required parameter: client_id"))?;
    let client = grants::authenticate_client(app, &client_id, req.client_secret.as_deref()).await?;
    let raw =
        req.mfa_token.as_deref().ok_or_else(|| AuthError::invalid_request("Missing required parameter: mfa_token"))?;
    let session = resolve_mfa_token_for(app, raw, Some(&client)).await?;
    check_client(&session, Some(&client))?;
    let types: Vec<&str> =
        req.challenge_type.as_deref().map(|t| t.split_whitespace().collect()).unwrap_or_else(|| vec!["oob"]);
    let no_oob = || {
        err(
            Status::Unauthorized,
            "unsupported_challenge_type",
            "User does not have any enrolled authenticator with the supported challenge type (oob)",
        )
    };
    if !types.contains(&"oob") {
        return Err(err(
            Status::Unauthorized,
            "unsupported_challenge_type",
            format!(
                "User does not have any enrolled authenticator with the supported challenge type ({})",
                types.join(" ")
            ),
        ));
    }
    let guardian = GuardianConfig::load(app).await.map_err(AuthError::internal)?;
    let enrollments = app.store.list_enrollments(&session.user.user_id).await?;
    let phones: Vec<&Enrollment> = enrollments
        .iter()
        .filter(|e| e.kind == EnrollmentKind::Phone && e.status == EnrollmentStatus::Confirmed)
        .collect();
    let (enrollment, channel) = match &req.authenticator_id {
        Some(id) => {
            let (t, bare) = split_authenticator_id(id);
            let e = phones.iter().find(|e| e.id == bare).ok_or_else(|| {
                AuthError::invalid_request("authenticator_id does not name an enrolled phone of this user")
            })?;
            let channel = match t {
                Some("sms") => Channel::Sms,
                Some("voice") => Channel::Voice,
                _ => e.preferred_channel.unwrap_or(Channel::Sms),
            };
            (*e, channel)
        }
        None => {
            let e = phones.first().ok_or_else(no_oob)?;
            (*e, e.preferred_channel.unwrap_or(Channel::Sms))
        }
    };
    if !guardian.phone_enabled() {
        return Err(no_oob());
    }
    if !guardian.channel_enabled(channel.as_str()) {
        return Err(AuthError::invalid_request(format!("The {channel} channel is not enabled")));
    }
    let oob_code =
        send_challenge(app, meta, session.subject(), enrollment, channel, &guardian, requested_language(meta)).await?;
    Ok(ChallengeResponse { challenge_type: "oob", oob_code, binding_method: "prompt" })
}

// --- verifying -------------------------------------------------------------------------------------------------------

/// A code that was right.
#[derive(Debug, Clone)]
pub struct Verified {
    /// `<channel>|<enrollment id>`.
    pub authenticator_id: String,
    /// This verification confirmed a pending enrollment (and the recovery code handed out with it).
    pub enrolled_now: bool,
}

/// The challenge an `oob_code` names, when it was issued to `binding` (an mfa_token, a login transaction).
pub async fn find_challenge(app: &Core, oob_code: &str, binding: &str) -> Result<Option<Challenge>, MfaError> {
    let challenge = app.store.get_challenge(&token_hash(oob_code.trim())).await?;
    Ok(challenge.filter(|c| c.mfa_token_hash.as_deref() == Some(binding)))
}

/// Verify `code` for `challenge`: the wrong-code limit, expiry and single use; a right code consumes the challenge
/// (and the subject's mfa_token, in the same transaction) and confirms a pending enrollment (with its recovery
/// code). Logs `gd_auth_failed`, `gd_otp_rate_limit_exceed`, `gd_enrollment_complete` and `gd_auth_succeed` as they
/// happen.
///
/// The wrong-code limit holds under parallel requests: every attempt first takes a token from the user's bucket
/// (one atomic statement), and only an attempt holding one is checked. A wrong code keeps its token spent; any other
/// outcome gives it back. So at most `FAILED_CODE_BUCKET.capacity` guesses are ever checked per bucket, however
/// many arrive at once, and while the bucket is empty every verification is refused, even a right code.
pub async fn verify_challenge(
    app: &Core,
    meta: &Origin,
    subject: Subject<'_>,
    challenge: &Challenge,
    code: &str,
) -> Result<Verified, MfaError> {
    let now = app.clock.now();
    let auth_id = format!("{}|{}", challenge.channel, challenge.enrollment_id);
    let log = |code: &'static str, description: Option<String>, details: Value| {
        let c = EventCtx { description, details, ..subject.ctx() };
        async move { events::record(app, code, meta, c).await }
    };
    let bucket_key = format!("otp-fail:{}", subject.user.user_id);
    let slot = limit(app.limiter.bucket_take(&bucket_key, FAILED_CODE_BUCKET, now).await)?;
    if !slot.allowed {
        log("gd_otp_rate_limit_exceed", Some(TOO_MANY_FAILURES.into()), json!({"authenticator_id": auth_id})).await;
        return Err(MfaError::TooManyFailures);
    }
    if challenge.consumed_at.is_some() || challenge.expires_at <= now {
        give_back(app, &bucket_key, FAILED_CODE_BUCKET).await;
        return Err(MfaError::CodeExpired);
    }
    if !otp::verify_code(&app.otp_key, &challenge.id, code, &challenge.code_hash) {
        log(
            "gd_auth_failed",
            Some("Invalid binding_code.".into()),
            json!({"authenticator_id": auth_id, "remaining_attempts": slot.remaining}),
        )
        .await;
        if slot.remaining == 0 {
            log("gd_otp_rate_limit_exceed", Some(TOO_MANY_FAILURES.into()), Value::Null).await;
        }
        return Err(MfaError::WrongCode);
    }
    let spent = app.store.consume_challenge(&challenge.id, subject.mfa_token, now).await;
    give_back(app, &bucket_key, FAILED_CODE_BUCKET).await;
    if !spent? {
        return Err(MfaError::CodeExpired);
    }
    // Confirm a pending enrollment (and the recovery code handed out with it), in one transaction that holds the
    // user: of two phones enrolled in parallel, only the first confirmed counts.
    let mut enrolled_now = false;
    if let Some(mut e) = app.store.get_enrollment(&challenge.enrollment_id).await? {
        // The code was used: it counts for its destination's SMS-pumping figures, in the slot it was sent in.
        if let Some(phone) = e.phone_number.as_deref().and_then(|p| PhoneNumber::parse(p).ok()) {
            let user = Some(challenge.user_id.as_str());
            crate::pumping::record_verified(app, &phone, meta.ip.as_deref(), challenge.created_at, user).await;
        }
        if e.status == EnrollmentStatus::Pending {
            if !app.store.confirm_phone_enrollment(&e.user_id, &e.id, now).await? {
                return Err(MfaError::CodeExpired);
            }
            enrolled_now = true;
        } else {
            e.last_auth = Some(now);
            app.store.update_enrollment(&e).await?;
        }
    }
    if enrolled_now {
        log("gd_enrollment_complete", None, json!({"authenticator_id": auth_id})).await;
    }
    log("gd_auth_succeed", None, json!({"authenticator_id": auth_id})).await;
    Ok(Verified { authenticator_id: auth_id, enrolled_now })
}

/// Check a recovery code against the user's confirmed one, within the wrong-code limit. A right code is spent and
/// replaced by one compare-and-set in the store (with the subject's mfa_token, in the same transaction), so of
/// parallel requests presenting it exactly one succeeds; the new code is returned (to be shown to the user). The
/// limit works as in [`verify_challenge`]: an attempt is checked only while it holds a token of the bucket, and a
/// wrong code keeps it. Logs `gd_recovery_*`.
pub async fn verify_recovery_code(
    app: &Core,
    meta: &Origin,
    subject: Subject<'_>,
    presented: &str,
) -> Result<String, MfaError> {
    let now = app.clock.now();
    let bucket_key = format!("recovery-fail:{}", subject.user.user_id);
    if !limit(app.limiter.bucket_take(&bucket_key, FAILED_CODE_BUCKET, now).await)?.allowed {
        events::record(app, "gd_recovery_rate_limit_exceed", meta, subject.ctx()).await;
        return Err(MfaError::TooManyRecoveryFailures);
    }
    let code = otp::normalize_recovery_code(presented);
    let enrollments = app.store.list_enrollments(&subject.user.user_id).await?;
    let found = enrollments.into_iter().find(|e| {
        e.kind == EnrollmentKind::RecoveryCode
            && e.status == EnrollmentStatus::Confirmed
            && e.secret_hash.as_deref().is_some_and(|h| token_matches(&code, h))
    });
    let Some(rc) = found else {
        events::record(app, "gd_recovery_failed", meta, subject.ctx()).await;
        return Err(MfaError::WrongRecoveryCode);
    };
    let presented_hash = rc.secret_hash.clone().unwrap_or_default();
    let fresh = otp::generate_recovery_code(app.rng.as_ref());
    let spent =
        app.store.spend_recovery_code(&rc.id, &presented_hash, &token_hash(&fresh), subject.mfa_token, now).await;
    // The code was right when read: whether this request or a parallel one spent it, it was no guess.
    give_back(app, &bucket_key, FAILED_CODE_BUCKET).await;
    if !spent? {
        events::record(
            app,
            "gd_recovery_failed",
            meta,
            EventCtx { description: Some("The recovery code was already used.".into()), ..subject.ctx() },
        )
        .await;
        return Err(MfaError::WrongRecoveryCode);
    }
    events::record(app, "gd_recovery_succeed", meta, subject.ctx()).await;
    Ok(fresh)
}

// --- the MFA grants ----------------------------------------------------------------------------------------------

async fn grant_session(
    app: &Core,
    basic: Option<&str>,
    req: &TokenRequest,
    grant: &str,
) -> Result<MfaSession, AuthError> {
    let (id, secret) = grants::presented_credentials(basic, req)?;
    let client = grants::authenticate_client(app, &id, secret.as_deref()).await?;
    grants::allows(&client, grant)?;
    let raw =
        req.mfa_token.as_deref().ok_or_else(|| AuthError::invalid_request("Missing required parameter: mfa_token"))?;
    let session = resolve_mfa_token_for(app, raw, Some(&client)).await?;
    check_client(&session, Some(&client))?;
    Ok(session)
}

/// `mfa-oob`: verify the code (`binding_code`) of a challenge; confirms a pending enrollment on first success.
pub async fn oob_grant(
    app: &Core,
    meta: &Origin,
    basic: Option<&str>,
    req: &TokenRequest,
) -> Result<TokenResponse, AuthError> {
    let session = grant_session(app, basic, req, GRANT_MFA_OOB).await?;
    let subject = session.subject();
    let fail = |description: String| {
        let c = EventCtx { description: Some(description), ..subject.ctx() };
        async move { events::record(app, "feoobft", meta, c).await }
    };
    let oob_code =
        req.oob_code.as_deref().ok_or_else(|| AuthError::invalid_request("Missing required parameter: oob_code"))?;
    let binding = req
        .binding_code
        .as_deref()
        .ok_or_else(|| AuthError::invalid_request("Missing required parameter: binding_code"))?;
    let Some(challenge) = find_challenge(app, oob_code, subject.binding).await.map_err(AuthError::from)? else {
        fail("The oob_code doesn't match the mfa_token".into()).await;
        return Err(AuthError::invalid_request("The oob_code doesn't match the mfa_token"));
    };
    if let Err(e) = verify_challenge(app, meta, subject, &challenge, binding).await {
        let e = AuthError::from(e);
        fail(e.description.clone()).await;
        return Err(e);
    }
    // The mfa_token was spent with the challenge, in the same transaction.
    let body = grants::issue_user_tokens(
        app,
        &session.client,
        &session.user,
        session.token.audience.as_deref(),
        Some(&session.token.scope),
    )
    .await?;
    events::record(app, "seoobft", meta, subject.ctx()).await;
    Ok(body)
}

/// `mfa-recovery-code`: a recovery code stands in for the phone; a fresh one is returned, the old one is spent.
pub async fn recovery_grant(
    app: &Core,
    meta: &Origin,
    basic: Option<&str>,
    req: &TokenRequest,
) -> Result<TokenResponse, AuthError> {
    let session = grant_session(app, basic, req, GRANT_MFA_RECOVERY).await?;
    let subject = session.subject();
    let guardian = GuardianConfig::load(app).await.map_err(AuthError::internal)?;
    if !guardian.factor_enabled("recovery-code") {
        return Err(err(Status::Forbidden, "unauthorized_client", "The recovery-code factor is not enabled."));
    }
    let presented = req
        .recovery_code
        .as_deref()
        .ok_or_else(|| AuthError::invalid_request("Missing required parameter: recovery_code"))?;
    let fresh = match verify_recovery_code(app, meta, subject, presented).await {
        Ok(f) => f,
        Err(e) => {
            let e = AuthError::from(e);
            let description =
                if e.error == "invalid_grant" { "Invalid recovery_code.".to_owned() } else { e.description.clone() };
            events::record(app, "fercft", meta, EventCtx { description: Some(description), ..subject.ctx() }).await;
            return Err(e);
        }
    };
    // The mfa_token was spent with the recovery code, in the same transaction.
    let mut body = grants::issue_user_tokens(
        app,
        &session.client,
        &session.user,
        session.token.audience.as_deref(),
        Some(&session.token.scope),
    )
    .await?;
    body.recovery_code = Some(fresh);
    events::record(app, "sercft", meta, subject.ctx()).await;
    Ok(body)
}

// --- GET /mfa/authenticators, DELETE /mfa/authenticators/{id} --------------------------------------------------------

pub async fn list_authenticators(app: &Core, bearer: &str) -> Result<Vec<Authenticator>, AuthError> {
    let session = resolve_mfa_token(app, bearer).await?;
    let guardian = GuardianConfig::load(app).await.map_err(AuthError::internal)?;
    let mut out = Vec::new();
    let mut enrollments = app.store.list_enrollments(&session.user.user_id).await?;
    // Phones first, then the recovery code, each oldest first (the store's order).
    enrollments.sort_by_key(|e| e.kind != EnrollmentKind::Phone);
    for e in enrollments {
        let active = e.status == EnrollmentStatus::Confirmed;
        match e.kind {
            EnrollmentKind::Phone => {
                let name = e.phone_number.as_deref().map(mask);
                // A phone is listed once per channel it can be challenged on.
                let mut channels: Vec<&str> = guardian.message_types.iter().map(String::as_str).collect();
                if channels.is_empty() {
                    channels.push("sms");
                }
                for ch in channels {
                    out.push(Authenticator {
                        id: format!("{ch}|{}", e.id),
                        authenticator_type: "oob",
                        active,
                        oob_channel: Some(ch.to_owned()),
                        name: Some(name.clone()),
                    });
                }
            }
            EnrollmentKind::RecoveryCode => out.push(Authenticator {
                id: format!("recovery-code|{}", e.id),
                authenticator_type: "recovery-code",
                active,
                oob_channel: None,
                name: None,
            }),
        }
    }
    Ok(out)
}

pub async fn delete_authenticator(app: &Core, meta: &Origin, bearer: &str, id: &str) -> Result<(), AuthError> {
    let session = resolve_mfa_token(app, bearer).await?;
    let (_, bare) = split_authenticator_id(id);
    let e = app.store.get_enrollment(bare).await?;
    match e {
        // An mfa_token proves only the password. Removing a confirmed factor with it would let whoever knows the
        // password swap in their own phone, so only pending (never confirmed) authenticators can go this way;
        // confirmed ones are removed through the Management API.
        Some(e) if e.user_id == session.user.user_id && e.status == EnrollmentStatus::Confirmed => Err(err(
            Status::Forbidden,
            "access_denied",
            "A confirmed authenticator cannot be removed with an mfa_token; use the Management API.",
        )),
        Some(e) if e.user_id == session.user.user_id => {
            app.store.delete_enrollment(&e.id).await?;
            events::record(
                app,
                "gd_unenroll",
                meta,
                EventCtx { details: json!({"authenticator_id": id}), ..ctx(Some(&session.client), &session.user) },
            )
            .await;
            Ok(())
        }
        _ => Err(err(Status::NotFound, "not_found", "Authenticator not found.")),
    }
}
