//! Attack protection (reference §6): suspicious IP throttling, kept in the settings document `attack_protection`
//! and written through `/api/v2/attack-protection/suspicious-ip-throttling`.
//!
//! Each stage is a token bucket per client IP: `max_attempts` tokens, one more every `rate` milliseconds (Auth0's
//! meaning of the two numbers). What takes a token:
//! - `pre-login`: a failed login (wrong password or unknown user) through the password grant, the login page or the
//!   dashboard. Every attempt takes a token before its password is checked and a right password gives it back, so
//!   parallel guesses cannot pass the limit together. An IP whose bucket is empty is refused unchecked (429
//!   `too_many_attempts`), right password or not, until a token refills or an operator unblocks it.
//! - `pre-user-registration`: every sign-up attempt (stored and validated now; counted once sign-up exists).
//! - `pre-phone-message` (a Callsign extension): every SMS or voice message a request asks for (`/mfa/associate`,
//!   `/mfa/challenge`, the login pages), across all accounts and numbers, so that one IP cannot make Callsign send
//!   more than `max_attempts` messages before waiting `rate` per further one.
//!
//! A refusal writes one `limit_mu` event per block (a second bucket of one token per stage and IP, refilling at the
//! stage's rate, says whether this block was logged already), with `details.stage`; `admin_notification` marks it
//! `details.notify_admin` and logs a warning for the operator's alerting. Without the `block` shield nothing is
//! refused: the events still say what would have been. Allowlisted addresses and networks are never counted.
//! Counting is atomic in the limiter (the database, or Redis across nodes), so parallel requests cannot slip past.
use std::net::IpAddr;

use callsign_domain::net::Cidr;
use callsign_store::BucketSpec;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{AuthError, Status};
use crate::identity::events::{self, EventCtx};
use crate::{Core, Origin};

pub const SETTINGS_KEY: &str = "attack_protection";
/// The most allowlist entries (Auth0's limit).
pub const MAX_ALLOWLIST: usize = 100;
/// Auth0's message for a blocked IP.
pub const BLOCKED: &str =
    "We have detected suspicious login behavior and further attempts will be blocked. Contact the administrator.";
/// The message when an IP asked for too many phone messages.
pub const TOO_MANY_MESSAGES: &str =
    "Too many messages were requested from this network. Wait for some minutes before retrying.";

/// One stage's bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageLimit {
    pub max_attempts: u32,
    /// Milliseconds between two attempts granted once the bucket is empty.
    pub rate: u64,
}

impl StageLimit {
    fn spec(self) -> BucketSpec {
        BucketSpec { capacity: self.max_attempts, refill_every_ms: i64::try_from(self.rate).unwrap_or(i64::MAX) }
    }
}

/// The stages, with Auth0's names on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stages {
    #[serde(rename = "pre-login")]
    pub pre_login: StageLimit,
    #[serde(rename = "pre-user-registration")]
    pub pre_user_registration: StageLimit,
    #[serde(rename = "pre-phone-message")]
    pub pre_phone_message: StageLimit,
}

/// Which stage a request is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    PreLogin,
    PreUserRegistration,
    PrePhoneMessage,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::PreLogin, Stage::PreUserRegistration, Stage::PrePhoneMessage];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::PreLogin => "pre-login",
            Stage::PreUserRegistration => "pre-user-registration",
            Stage::PrePhoneMessage => "pre-phone-message",
        }
    }

    /// The allowed `(max_attempts, rate)` ranges (Auth0's for its two stages).
    pub fn ranges(self) -> (std::ops::RangeInclusive<u32>, std::ops::RangeInclusive<u64>) {
        match self {
            Stage::PreLogin => (1..=2_500, 34_560..=86_400_000),
            Stage::PreUserRegistration => (1..=72_000, 1_200..=86_400_000),
            Stage::PrePhoneMessage => (1..=10_000, 1_000..=86_400_000),
        }
    }
}

impl Stages {
    pub fn get(&self, stage: Stage) -> StageLimit {
        match stage {
            Stage::PreLogin => self.pre_login,
            Stage::PreUserRegistration => self.pre_user_registration,
            Stage::PrePhoneMessage => self.pre_phone_message,
        }
    }

    pub fn get_mut(&mut self, stage: Stage) -> &mut StageLimit {
        match stage {
            Stage::PreLogin => &mut self.pre_login,
            Stage::PreUserRegistration => &mut self.pre_user_registration,
            Stage::PrePhoneMessage => &mut self.pre_phone_message,
        }
    }
}

/// An allowlist: at most [`MAX_ALLOWLIST`] addresses or CIDR blocks, each one that parses.
fn check_allowlist(list: &[String]) -> Result<(), (String, String)> {
    if list.len() > MAX_ALLOWLIST {
        return Err(("allowlist".into(), format!("at most {MAX_ALLOWLIST} entries")));
    }
    for (i, a) in list.iter().enumerate() {
        a.parse::<Cidr>().map_err(|e| (format!("allowlist[{i}]"), e.to_string()))?;
    }
    Ok(())
}

/// Whether an allowlist (checked on write) holds `ip`.
fn allowlist_contains(list: &[String], ip: IpAddr) -> bool {
    list.iter().filter_map(|a| a.parse::<Cidr>().ok()).any(|n| n.contains(ip))
}

/// Suspicious IP throttling, in Auth0's shape (plus the `pre-phone-message` stage).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttling {
    pub enabled: bool,
    /// `block` and/or `admin_notification`.
    pub shields: Vec<String>,
    /// Addresses and CIDR blocks never counted, as given (checked on write).
    pub allowlist: Vec<String>,
    pub stage: Stages,
}

impl Default for Throttling {
    /// On, blocking and notifying; 100 failed logins per IP then one per 864 s (100 a day, Auth0's default); 50
    /// sign-ups per IP then one per 1.2 s (50 a minute: the seed's figure); 50 phone messages per IP then one per
    /// 72 s (50 an hour).
    fn default() -> Self {
        Throttling {
            enabled: true,
            shields: vec!["block".into(), "admin_notification".into()],
            allowlist: Vec::new(),
            stage: Stages {
                pre_login: StageLimit { max_attempts: 100, rate: 864_000 },
                pre_user_registration: StageLimit { max_attempts: 50, rate: 1_200 },
                pre_phone_message: StageLimit { max_attempts: 50, rate: 72_000 },
            },
        }
    }
}

impl Throttling {
    /// Check every value (the Management API's 400 names the property): shields, the allowlist (at most 100
    /// IPv4 / IPv6 addresses or CIDR blocks), and each stage's ranges.
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (i, s) in self.shields.iter().enumerate() {
            if s != "block" && s != "admin_notification" {
                return Err((format!("shields[{i}]"), format!("`{s}` is not one of block, admin_notification")));
            }
        }
        check_allowlist(&self.allowlist)?;
        for stage in Stage::ALL {
            let (attempts, rate) = stage.ranges();
            let l = self.stage.get(stage);
            if !attempts.contains(&l.max_attempts) {
                return Err((
                    format!("stage.{}.max_attempts", stage.as_str()),
                    format!("must be from {} to {}", attempts.start(), attempts.end()),
                ));
            }
            if !rate.contains(&l.rate) {
                return Err((
                    format!("stage.{}.rate", stage.as_str()),
                    format!("must be from {} to {} milliseconds", rate.start(), rate.end()),
                ));
            }
        }
        Ok(())
    }

    fn allowlisted(&self, ip: IpAddr) -> bool {
        allowlist_contains(&self.allowlist, ip)
    }

    fn blocks(&self) -> bool {
        self.shields.iter().any(|s| s == "block")
    }
}

/// Brute-force protection, in Auth0's shape: failed logins into one account (from one IP, or from anywhere with
/// `count_per_identifier`) block that pair after `max_attempts` in a row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BruteForce {
    pub enabled: bool,
    /// `block` and/or `user_notification`.
    pub shields: Vec<String>,
    /// `count_per_identifier_and_ip` or `count_per_identifier`.
    pub mode: String,
    pub allowlist: Vec<String>,
    pub max_attempts: u32,
}

/// The most failed logins in a row `max_attempts` may allow.
pub const MAX_BRUTE_FORCE_ATTEMPTS: u32 = 100;
/// A brute-force block lifts by itself after this long (one attempt back), or at once when an operator unblocks it
/// or the user logs in from elsewhere (per identifier and IP).
pub const BRUTE_FORCE_REFILL_MS: i64 = 86_400_000;
/// Auth0's message for a blocked account (without its sentence about an email: Callsign sends none).
pub const ACCOUNT_BLOCKED: &str = "Your account has been blocked after multiple consecutive login attempts.";

impl Default for BruteForce {
    fn default() -> Self {
        BruteForce {
            enabled: true,
            shields: vec!["block".into(), "user_notification".into()],
            mode: "count_per_identifier_and_ip".into(),
            allowlist: Vec::new(),
            max_attempts: 10,
        }
    }
}

impl BruteForce {
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (i, s) in self.shields.iter().enumerate() {
            if s != "block" && s != "user_notification" {
                return Err((format!("shields[{i}]"), format!("`{s}` is not one of block, user_notification")));
            }
        }
        if self.mode != "count_per_identifier_and_ip" && self.mode != "count_per_identifier" {
            return Err((
                "mode".into(),
                format!("`{}` is not one of count_per_identifier_and_ip, count_per_identifier", self.mode),
            ));
        }
        check_allowlist(&self.allowlist)?;
        if !(1..=MAX_BRUTE_FORCE_ATTEMPTS).contains(&self.max_attempts) {
            return Err(("max_attempts".into(), format!("must be from 1 to {MAX_BRUTE_FORCE_ATTEMPTS}")));
        }
        Ok(())
    }

    fn per_ip(&self) -> bool {
        self.mode == "count_per_identifier_and_ip"
    }

    fn spec(&self) -> BucketSpec {
        BucketSpec { capacity: self.max_attempts, refill_every_ms: BRUTE_FORCE_REFILL_MS }
    }
}

/// Phone provider protection, in Auth0's shape: `default` (the flat per-user send limit, 10 then one per hour) or
/// `exponential` (the per-user backoff of [`backoff_take`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneProviderProtection {
    #[serde(rename = "type")]
    pub kind: String,
}

impl Default for PhoneProviderProtection {
    fn default() -> Self {
        PhoneProviderProtection { kind: "default".into() }
    }
}

impl PhoneProviderProtection {
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.kind != "default" && self.kind != "exponential" {
            return Err(("type".into(), format!("`{}` is not one of default, exponential", self.kind)));
        }
        Ok(())
    }

    pub fn exponential(&self) -> bool {
        self.kind == "exponential"
    }
}

/// The stored document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AttackProtection {
    pub suspicious_ip_throttling: Throttling,
    pub brute_force_protection: BruteForce,
    pub phone_provider_protection: PhoneProviderProtection,
}

pub async fn load(app: &Core) -> crate::BoxResult<AttackProtection> {
    crate::documents::load(app, SETTINGS_KEY).await
}

/// Change the settings document (suspicious IP throttling, brute-force and phone provider protection share it)
/// without losing a concurrent write of another of its settings ([`crate::documents::modify`]).
pub async fn modify<T, E>(
    app: &Core,
    change: impl FnMut(&mut AttackProtection) -> Result<T, E>,
) -> crate::BoxResult<Result<T, E>> {
    crate::documents::modify(app, SETTINGS_KEY, "attack protection settings", AttackProtection::default, change).await
}

pub async fn save(app: &Core, settings: &AttackProtection) -> crate::BoxResult<()> {
    let v = serde_json::to_value(settings)?;
    app.store.put_setting(SETTINGS_KEY, &v, app.clock.now()).await?;
    Ok(())
}

/// A limiter call of an operator's read or unblock failed (Redis unreachable, …). The HTTP layer finds it in the
/// error (`BoxError::downcast_ref`) and answers 503, as for any request that needs a limit, not an opaque 500.
#[derive(Debug, thiserror::Error)]
#[error("rate limiter: {0}")]
pub struct LimiterUnavailable(pub callsign_store::StoreError);

/// An IP that throttling refuses at `stage`.
#[derive(Debug)]
pub enum Refusal {
    Blocked(Stage),
    /// The settings or the limiter could not be read: refused (fail closed), said as a 503 by the caller.
    Unavailable(String),
}

impl From<Refusal> for AuthError {
    fn from(r: Refusal) -> AuthError {
        match r {
            Refusal::Blocked(Stage::PrePhoneMessage) => {
                AuthError::new(Status::TooManyRequests, "too_many_attempts", TOO_MANY_MESSAGES)
            }
            Refusal::Blocked(_) => AuthError::new(Status::TooManyRequests, "too_many_attempts", BLOCKED),
            Refusal::Unavailable(e) => AuthError::limiter_unavailable(e),
        }
    }
}

fn bucket_key(stage: Stage, ip: IpAddr) -> String {
    format!("ip:{}:{ip}", stage.as_str())
}

fn logged_key(stage: Stage, ip: IpAddr) -> String {
    format!("ip-blocked:{}:{ip}", stage.as_str())
}

/// The origin's address, when it has one that parses.
fn ip_of(origin: &Origin) -> Option<IpAddr> {
    origin.ip.as_deref().and_then(|s| s.parse::<IpAddr>().ok()).map(|ip| ip.to_canonical())
}

/// The settings and the address throttling counts `origin` under: `None` when it is off, or the IP is allowlisted or unknown.
async fn applies(app: &Core, origin: &Origin) -> Result<Option<(Throttling, IpAddr)>, Refusal> {
    if ip_of(origin).is_none() {
        return Ok(None);
    }
    let settings = load(app).await.map_err(|e| Refusal::Unavailable(e.to_string()))?;
    Ok(applies_with(&settings, origin))
}

/// [`applies`] with the settings already loaded.
fn applies_with(settings: &AttackProtection, origin: &Origin) -> Option<(Throttling, IpAddr)> {
    let ip = ip_of(origin)?;
    let t = &settings.suspicious_ip_throttling;
    if !t.enabled || t.allowlisted(ip) {
        return None;
    }
    Some((t.clone(), ip))
}

/// Take a token at `stage` for `origin` before the work it limits (a password check, a message); refused (when
/// `block` is on) when there is none. Taking first is what holds the limit under parallel requests: however many
/// arrive at once, at most `max_attempts` get past. Writes `limit_mu` once per block. A request that turns out not
/// to count (a right password) gives its token back with [`uncount`].
pub async fn count(app: &Core, origin: &Origin, stage: Stage) -> Result<(), Refusal> {
    let Some((t, ip)) = applies(app, origin).await? else { return Ok(()) };
    take(app, origin, t, ip, stage).await
}

/// [`count`] with the settings already loaded (a caller that needs them for more than this check).
pub async fn count_with(app: &Core, settings: &AttackProtection, origin: &Origin, stage: Stage) -> Result<(), Refusal> {
    let Some((t, ip)) = applies_with(settings, origin) else { return Ok(()) };
    take(app, origin, t, ip, stage).await
}

async fn take(app: &Core, origin: &Origin, t: Throttling, ip: IpAddr, stage: Stage) -> Result<(), Refusal> {
    let spec = t.stage.get(stage).spec();
    let state = app
        .limiter
        .bucket_take(&bucket_key(stage, ip), spec, app.clock.now())
        .await
        .map_err(|e| Refusal::Unavailable(e.to_string()))?;
    if state.allowed {
        return Ok(());
    }
    refused(app, origin, &t, stage, ip).await
}

/// Give back a token taken by [`count`] for a request that does not count (a right password, or a message another
/// limit refused).
pub async fn uncount(app: &Core, origin: &Origin, stage: Stage) {
    let Ok(Some((t, ip))) = applies(app, origin).await else { return };
    give(app, &t, ip, stage).await;
}

/// [`uncount`] with the settings already loaded.
pub async fn uncount_with(app: &Core, settings: &AttackProtection, origin: &Origin, stage: Stage) {
    let Some((t, ip)) = applies_with(settings, origin) else { return };
    give(app, &t, ip, stage).await;
}

async fn give(app: &Core, t: &Throttling, ip: IpAddr, stage: Stage) {
    if let Err(e) =
        app.limiter.bucket_give_back(&bucket_key(stage, ip), t.stage.get(stage).spec(), app.clock.now()).await
    {
        tracing::warn!(error = %e, "could not give an IP throttling token back");
    }
}

async fn refused(app: &Core, origin: &Origin, t: &Throttling, stage: Stage, ip: IpAddr) -> Result<(), Refusal> {
    let marker = BucketSpec { capacity: 1, refill_every_ms: t.stage.get(stage).spec().refill_every_ms };
    let first = app.limiter.bucket_take(&logged_key(stage, ip), marker, app.clock.now()).await.is_ok_and(|s| s.allowed);
    if first {
        let notify = t.shields.iter().any(|s| s == "admin_notification");
        if notify {
            tracing::warn!(%ip, stage = stage.as_str(), "suspicious IP throttling: an IP is blocked (admin notification)");
        }
        let description = match stage {
            Stage::PreLogin => "Too many failed logins from this IP address".to_owned(),
            Stage::PreUserRegistration => "Too many sign-ups from this IP address".to_owned(),
            Stage::PrePhoneMessage => "Too many phone messages requested from this IP address".to_owned(),
        };
        let details =
            json!({"stage": stage.as_str(), "blocked": t.blocks(), "notify_admin": notify, "ip": ip.to_string()});
        events::record(
            app,
            "limit_mu",
            origin,
            EventCtx { description: Some(description), details, ..Default::default() },
        )
        .await;
    }
    if t.blocks() { Err(Refusal::Blocked(stage)) } else { Ok(()) }
}

/// Whether `ip` is blocked now at any stage (`GET /anomaly/blocks/ips/{ip}`): its bucket is empty and `block` is
/// on. An allowlisted IP is never blocked.
pub async fn is_blocked(app: &Core, ip: IpAddr) -> crate::BoxResult<bool> {
    let ip = ip.to_canonical();
    let t = load(app).await?.suspicious_ip_throttling;
    if !t.enabled || !t.blocks() || t.allowlisted(ip) {
        return Ok(false);
    }
    for stage in Stage::ALL {
        let spec = t.stage.get(stage).spec();
        if !app
            .limiter
            .bucket_peek(&bucket_key(stage, ip), spec, app.clock.now())
            .await
            .map_err(LimiterUnavailable)?
            .allowed
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Unblock `ip` at every stage (its buckets are full again) and write `ublkdu`.
pub async fn unblock(app: &Core, origin: &Origin, ip: IpAddr, client_id: Option<String>) -> crate::BoxResult<()> {
    let ip = ip.to_canonical();
    for stage in Stage::ALL {
        app.limiter.bucket_reset(&bucket_key(stage, ip)).await.map_err(LimiterUnavailable)?;
        app.limiter.bucket_reset(&logged_key(stage, ip)).await.map_err(LimiterUnavailable)?;
    }
    let ctx = EventCtx {
        client_id,
        description: Some(format!("IP address {ip} unblocked")),
        details: json!({"ip": ip.to_string()}),
        ..Default::default()
    };
    events::record(app, "ublkdu", origin, ctx).await;
    Ok(())
}

// --- brute-force protection -------------------------------------------------------------------------------------

/// The transient kind that remembers which addresses an identifier is blocked from (for `/user-blocks`).
const BLOCKS_INDEX: &str = "brute-force-blocks";

fn identifier_of(identifier: &str) -> String {
    identifier.trim().to_lowercase()
}

fn bf_key(identifier: &str, ip: Option<IpAddr>) -> String {
    match ip {
        Some(ip) => format!("bf:{identifier}:{ip}"),
        None => format!("bf:{identifier}"),
    }
}

/// Which address a login into `identifier` from `origin` is counted under (`None`: per identifier only), or
/// nothing at all (off, or allowlisted).
async fn bf_applies(app: &Core, origin: &Origin) -> Result<Option<(BruteForce, Option<IpAddr>)>, Refusal> {
    let b = load(app).await.map_err(|e| Refusal::Unavailable(e.to_string()))?.brute_force_protection;
    let ip = ip_of(origin);
    if !b.enabled
        || ip.is_some_and(|ip| b.allowlist.iter().filter_map(|a| a.parse::<Cidr>().ok()).any(|n| n.contains(ip)))
    {
        return Ok(None);
    }
    let counted = if b.per_ip() { ip } else { None };
    Ok(Some((b, counted)))
}

/// Take a token from `identifier`'s failed-login bucket (from `origin`'s address, in the default mode) before its
/// password is checked, so that parallel guesses cannot pass the limit together: `false` when there is none and
/// `block` is on (the login is refused unchecked). The first refusal of a block writes `limit_wc`; the take that
/// empties the bucket remembers the block for `/user-blocks`. A right password resets the bucket
/// ([`account_success`]); an unknown identifier gives its token back ([`account_give_back`]).
pub async fn account_take(app: &Core, origin: &Origin, identifier: &str) -> Result<bool, Refusal> {
    let Some((b, ip)) = bf_applies(app, origin).await? else { return Ok(true) };
    let id = identifier_of(identifier);
    let now = app.clock.now();
    let state = app
        .limiter
        .bucket_take(&bf_key(&id, ip), b.spec(), now)
        .await
        .map_err(|e| Refusal::Unavailable(e.to_string()))?;
    if state.allowed {
        if state.remaining == 0 {
            remember_block(app, &id, ip).await;
        }
        return Ok(true);
    }
    let block = b.shields.iter().any(|s| s == "block");
    let marker = BucketSpec { capacity: 1, refill_every_ms: BRUTE_FORCE_REFILL_MS };
    if app.limiter.bucket_take(&format!("bf-logged:{}", bf_key(&id, ip)), marker, now).await.is_ok_and(|s| s.allowed) {
        let user_id = app.store.get_user_by_email(&id).await.ok().flatten().map(|u| u.user_id);
        let notify = b.shields.iter().any(|s| s == "user_notification");
        let details = json!({"identifier": id, "ip": ip.map(|i| i.to_string()), "mode": b.mode,
            "max_attempts": b.max_attempts, "blocked": block, "notify_user": notify});
        let ctx = EventCtx {
            user_id,
            user_name: Some(id.clone()),
            description: Some(format!("Blocked after {} failed logins in a row", b.max_attempts)),
            details,
            ..Default::default()
        };
        events::record(app, "limit_wc", origin, ctx).await;
    }
    Ok(!block)
}

/// Give back the token [`account_take`] took for a login that does not count: an identifier that is no account
/// (brute-force protection counts failures into accounts), or a password that could not be checked.
pub async fn account_give_back(app: &Core, origin: &Origin, identifier: &str) {
    let Ok(Some((b, ip))) = bf_applies(app, origin).await else { return };
    let key = bf_key(&identifier_of(identifier), ip);
    if let Err(e) = app.limiter.bucket_give_back(&key, b.spec(), app.clock.now()).await {
        tracing::warn!(error = %e, "could not give a brute-force token back");
    }
}

/// A successful login into `identifier`: its failures in a row start again from zero.
pub async fn account_success(app: &Core, origin: &Origin, identifier: &str) {
    let Ok(Some((_, ip))) = bf_applies(app, origin).await else { return };
    if let Err(e) = app.limiter.bucket_reset(&bf_key(&identifier_of(identifier), ip)).await {
        tracing::warn!(error = %e, "could not reset a brute-force counter after a successful login");
    }
}

async fn remember_block(app: &Core, id: &str, ip: Option<IpAddr>) {
    let now = app.clock.now();
    let mut ips: Vec<String> = match app.store.get_transient(BLOCKS_INDEX, id, now).await {
        Ok(Some(v)) => serde_json::from_value(v["ips"].clone()).unwrap_or_default(),
        _ => Vec::new(),
    };
    let entry = ip.map_or_else(String::new, |i| i.to_string());
    if !ips.contains(&entry) {
        ips.push(entry);
    }
    let expires = now.plus(std::time::Duration::from_secs(30 * 86_400));
    if let Err(e) = app.store.put_transient(BLOCKS_INDEX, id, &json!({"ips": ips}), expires).await {
        tracing::warn!(error = %e, "could not remember a brute-force block");
    }
}

/// The blocks on `identifier` now: `(identifier, ip)` pairs (`ip` empty for a per-identifier block).
pub async fn account_blocks(app: &Core, identifier: &str) -> crate::BoxResult<Vec<(String, String)>> {
    let id = identifier_of(identifier);
    let b = load(app).await?.brute_force_protection;
    let now = app.clock.now();
    let ips: Vec<String> = match app.store.get_transient(BLOCKS_INDEX, &id, now).await? {
        Some(v) => serde_json::from_value(v["ips"].clone()).unwrap_or_default(),
        None => Vec::new(),
    };
    let mut out = Vec::new();
    for ip in ips {
        let parsed = ip.parse::<IpAddr>().ok();
        if !app.limiter.bucket_peek(&bf_key(&id, parsed), b.spec(), now).await.map_err(LimiterUnavailable)?.allowed {
            out.push((id.clone(), ip));
        }
    }
    Ok(out)
}

/// Lift every block on `identifier` (every address it was blocked from) and write `ublkdu`.
pub async fn unblock_account(
    app: &Core,
    origin: &Origin,
    identifier: &str,
    client_id: Option<String>,
) -> crate::BoxResult<()> {
    let id = identifier_of(identifier);
    let now = app.clock.now();
    let ips: Vec<String> = match app.store.get_transient(BLOCKS_INDEX, &id, now).await? {
        Some(v) => serde_json::from_value(v["ips"].clone()).unwrap_or_default(),
        None => Vec::new(),
    };
    for ip in ips.iter().map(|i| i.parse::<IpAddr>().ok()).chain([None]) {
        app.limiter.bucket_reset(&bf_key(&id, ip)).await.map_err(LimiterUnavailable)?;
        app.limiter.bucket_reset(&format!("bf-logged:{}", bf_key(&id, ip))).await.map_err(LimiterUnavailable)?;
    }
    app.store.delete_transient(BLOCKS_INDEX, &id).await?;
    let ctx = EventCtx {
        client_id,
        user_name: Some(id.clone()),
        description: Some(format!("Login blocks on {id} released")),
        details: json!({"identifier": id}),
        ..Default::default()
    };
    events::record(app, "ublkdu", origin, ctx).await;
    Ok(())
}

// --- phone provider protection: the exponential backoff -----------------------------------------------------------

/// The exponential backoff of phone provider protection `exponential`: the first message to a user at once, then
/// each further one at least 30 s after the one before, the wait doubling per message (30 s, 1, 2, 4, 8, 16, 32
/// minutes) up to one hour; two hours without a message to the user start again from the first. One atomic call in
/// the limiter (`RateLimiter::backoff_take`), so of parallel requests at one step exactly one is sent, on every node.
pub const BACKOFF: callsign_store::BackoffSpec =
    callsign_store::BackoffSpec { base_ms: 30_000, max_ms: 3_600_000, reset_after_ms: 7_200_000 };

fn backoff_key(user_id: &str) -> String {
    format!("send-exp:{user_id}")
}

/// One more message to `user_id` under the backoff.
pub async fn backoff_take(
    app: &Core,
    user_id: &str,
) -> Result<callsign_store::BackoffState, callsign_store::StoreError> {
    app.limiter.backoff_take(&backoff_key(user_id), BACKOFF, app.clock.now()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_bad_values_name_their_property() {
        Throttling::default().validate().unwrap();
        let bad = |f: &dyn Fn(&mut Throttling)| {
            let mut t = Throttling::default();
            f(&mut t);
            t.validate().unwrap_err().0
        };
        assert_eq!(bad(&|t| t.shields = vec!["email".into()]), "shields[0]");
        assert_eq!(bad(&|t| t.allowlist = vec!["10.0.0.0/8".into(), "10.0.0.0/40".into()]), "allowlist[1]");
        assert_eq!(bad(&|t| t.allowlist = vec!["10.0.0.1".into(); 101]), "allowlist");
        assert_eq!(bad(&|t| t.stage.pre_login.max_attempts = 0), "stage.pre-login.max_attempts");
        assert_eq!(bad(&|t| t.stage.pre_login.rate = 1_000), "stage.pre-login.rate");
        assert_eq!(
            bad(&|t| t.stage.pre_user_registration.max_attempts = 72_001),
            "stage.pre-user-registration.max_attempts"
        );
        assert_eq!(bad(&|t| t.stage.pre_phone_message.rate = 999), "stage.pre-phone-message.rate");
        let t = Throttling { allowlist: vec!["192.0.2.0/24".into(), "2001:db8::1".into()], ..Default::default() };
        t.validate().unwrap();
        assert!(t.allowlisted("192.0.2.9".parse().unwrap()) && !t.allowlisted("192.0.3.9".parse().unwrap()));
    }

    #[test]
    fn brute_force_settings_are_checked() {
        BruteForce::default().validate().unwrap();
        let bad = |f: &dyn Fn(&mut BruteForce)| {
            let mut b = BruteForce::default();
            f(&mut b);
            b.validate().unwrap_err().0
        };
        assert_eq!(bad(&|b| b.mode = "per_ip".into()), "mode");
        assert_eq!(bad(&|b| b.shields = vec!["admin_notification".into()]), "shields[0]");
        assert_eq!(bad(&|b| b.max_attempts = 0), "max_attempts");
        assert_eq!(bad(&|b| b.max_attempts = 101), "max_attempts");
        assert_eq!(bad(&|b| b.allowlist = vec!["x".into()]), "allowlist[0]");
        // A document written before brute-force protection existed still reads, with its defaults.
        let old: AttackProtection =
            serde_json::from_value(serde_json::json!({"suspicious_ip_throttling": Throttling::default()})).unwrap();
        assert_eq!(old.brute_force_protection, BruteForce::default());
    }
}
