//! Resource servers (Auth0's "APIs"): the operator's own APIs an application may ask access tokens for with
//! `audience=<identifier>`, each with its scopes, token lifetime and signing algorithm; and the Management API, a
//! system resource server that is always there and cannot be changed. They live in one settings document,
//! written by compare-and-set.
use callsign_domain::scopes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Core;
use crate::error::{AuthError, Status};

pub const SETTINGS_KEY: &str = "resource_servers";
/// The id of the Management API's resource server (fixed: it is not stored).
pub const MANAGEMENT_API_ID: &str = "management-api";
pub const DEFAULT_TOKEN_LIFETIME: u64 = 86_400;
pub const DEFAULT_TOKEN_LIFETIME_FOR_WEB: u64 = 7_200;
/// Auth0's upper bound for access token lifetimes (30 days).
pub const MAX_TOKEN_LIFETIME: u64 = 2_592_000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Scope {
    pub value: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResourceServer {
    pub id: String,
    pub name: String,
    /// The audience.
    pub identifier: String,
    pub scopes: Vec<Scope>,
    pub signing_alg: String,
    pub token_lifetime: u64,
    pub token_lifetime_for_web: u64,
    pub allow_offline_access: bool,
    pub skip_consent_for_verifiable_first_party_clients: bool,
    #[serde(default)]
    pub is_system: bool,
}

impl ResourceServer {
    pub fn has_scope(&self, s: &str) -> bool {
        self.scopes.iter().any(|x| x.value == s)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct Document {
    #[serde(default)]
    items: Vec<ResourceServer>,
}

/// The Management API as a resource server (`is_system`), with every Management scope.
pub fn management_api(app: &Core) -> ResourceServer {
    ResourceServer {
        id: MANAGEMENT_API_ID.to_owned(),
        // Auth0's name for it: configuration-as-code tools recognise (and leave out) the Management API by it.
        name: "Auth0 Management API".to_owned(),
        identifier: app.settings.management_audience(),
        scopes: scopes::ALL_MANAGEMENT
            .iter()
            .map(|s| Scope { value: (*s).to_owned(), description: String::new() })
            .collect(),
        signing_alg: "RS256".to_owned(),
        token_lifetime: app.settings.access_token_lifetime_secs,
        token_lifetime_for_web: DEFAULT_TOKEN_LIFETIME_FOR_WEB.min(app.settings.access_token_lifetime_secs),
        allow_offline_access: false,
        skip_consent_for_verifiable_first_party_clients: false,
        is_system: true,
    }
}

/// Why a write was refused.
#[derive(Debug)]
pub enum RsError {
    NotFound,
    /// The Management API cannot be changed or deleted.
    System,
    /// Another resource server has this identifier.
    Conflict,
    Invalid {
        field: &'static str,
        message: String,
    },
    Failed(crate::BoxError),
}

impl<E: Into<crate::BoxError>> From<E> for RsError {
    fn from(e: E) -> Self {
        RsError::Failed(e.into())
    }
}

async fn read(app: &Core) -> Result<(Document, Option<Value>), crate::BoxError> {
    let raw = app.store.get_setting(SETTINGS_KEY).await?;
    let doc = match &raw {
        Some(v) => serde_json::from_value(v.clone())?,
        None => Document::default(),
    };
    Ok((doc, raw))
}

/// Every resource server: the Management API first, then the operator's, oldest first.
pub async fn list(app: &Core) -> Result<Vec<ResourceServer>, crate::BoxError> {
    let (doc, _) = read(app).await?;
    let mut out = vec![management_api(app)];
    out.extend(doc.items);
    Ok(out)
}

/// A resource server by id or by identifier (Auth0 accepts either in the path).
pub async fn get(app: &Core, id_or_identifier: &str) -> Result<Option<ResourceServer>, crate::BoxError> {
    Ok(list(app).await?.into_iter().find(|r| r.id == id_or_identifier || r.identifier == id_or_identifier))
}

/// The operator's resource server whose identifier is `audience`, for a user's token: an unknown audience is 403
/// `access_denied` (`Service not found: …`), like Auth0's; the Management API is refused to users.
pub async fn for_user_audience(app: &Core, audience: &str) -> Result<ResourceServer, AuthError> {
    if audience == app.settings.management_audience() {
        return Err(AuthError::new(
            Status::Forbidden,
            "access_denied",
            "Management API tokens are issued to applications through client_credentials, not to users",
        ));
    }
    let (doc, _) = read(app).await.map_err(AuthError::internal)?;
    doc.items
        .into_iter()
        .find(|r| r.identifier == audience)
        .ok_or_else(|| AuthError::new(Status::Forbidden, "access_denied", format!("Service not found: {audience}")))
}

/// The operator's resource server for `audience` (any caller), if there is one.
pub async fn find(app: &Core, audience: &str) -> Result<Option<ResourceServer>, crate::BoxError> {
    let (doc, _) = read(app).await?;
    Ok(doc.items.into_iter().find(|r| r.identifier == audience))
}

/// The writable fields (absent ones keep their value, or take the default at creation).
#[derive(Debug, Clone, Default)]
pub struct Fields {
    pub name: Option<String>,
    pub identifier: Option<String>,
    pub scopes: Option<Vec<Scope>>,
    pub signing_alg: Option<String>,
    pub token_lifetime: Option<u64>,
    pub token_lifetime_for_web: Option<u64>,
    pub allow_offline_access: Option<bool>,
    pub skip_consent_for_verifiable_first_party_clients: Option<bool>,
}

fn invalid(field: &'static str, message: impl Into<String>) -> RsError {
    RsError::Invalid { field, message: message.into() }
}

/// Apply and check `f` onto `rs`.
fn apply(rs: &mut ResourceServer, f: Fields) -> Result<(), RsError> {
    if let Some(n) = f.name {
        if n.trim().is_empty() || n.chars().count() > 200 || n.contains(['<', '>']) {
            return Err(invalid("name", "1 to 200 characters, without < or >"));
        }
        rs.name = n;
    }
    if let Some(s) = f.scopes {
        let mut seen: Vec<&str> = Vec::new();
        for sc in &s {
            if sc.value.is_empty() || sc.value.chars().count() > 280 || sc.value.contains(char::is_whitespace) {
                return Err(invalid(
                    "scopes",
                    format!("`{}` is not a scope: 1 to 280 characters, no spaces", sc.value),
                ));
            }
            if sc.description.chars().count() > 500 {
                return Err(invalid("scopes", "a scope description is at most 500 characters"));
            }
            if seen.contains(&sc.value.as_str()) {
                return Err(invalid("scopes", format!("the scope `{}` is listed twice", sc.value)));
            }
            seen.push(&sc.value);
        }
        rs.scopes = s;
    }
    if let Some(a) = f.signing_alg {
        if a != "RS256" {
            return Err(invalid(
                "signing_alg",
                "only RS256 is supported (tokens are signed with the tenant's RSA key)",
            ));
        }
        rs.signing_alg = a;
    }
    if let Some(l) = f.token_lifetime {
        if !(1..=MAX_TOKEN_LIFETIME).contains(&l) {
            return Err(invalid("token_lifetime", format!("between 1 and {MAX_TOKEN_LIFETIME} seconds")));
        }
        rs.token_lifetime = l;
    }
    if let Some(l) = f.token_lifetime_for_web {
        if !(1..=MAX_TOKEN_LIFETIME).contains(&l) {
            return Err(invalid("token_lifetime_for_web", format!("between 1 and {MAX_TOKEN_LIFETIME} seconds")));
        }
        rs.token_lifetime_for_web = l;
    }
    if rs.token_lifetime_for_web > rs.token_lifetime {
        return Err(invalid("token_lifetime_for_web", "must not be longer than token_lifetime"));
    }
    if let Some(b) = f.allow_offline_access {
        rs.allow_offline_access = b;
    }
    if let Some(b) = f.skip_consent_for_verifiable_first_party_clients {
        rs.skip_consent_for_verifiable_first_party_clients = b;
    }
    Ok(())
}

/// Read, change and write the document, re-applying the change when another writer got in between
/// ([`crate::documents::modify`]).
async fn modify<T>(app: &Core, change: impl FnMut(&mut Document) -> Result<T, RsError>) -> Result<T, RsError> {
    crate::documents::modify(app, SETTINGS_KEY, "resource servers", Document::default, change)
        .await
        .map_err(RsError::Failed)?
}

/// Create a resource server: `name` and `identifier` required, the identifier unique (and not the Management
/// API's); defaults as Auth0's (RS256, 86400 s, 7200 s for the web, no offline access).
pub async fn create(app: &Core, f: Fields) -> Result<ResourceServer, RsError> {
    let identifier =
        f.identifier.clone().ok_or_else(|| invalid("identifier", "Missing required property: identifier"))?;
    if f.name.is_none() {
        return Err(invalid("name", "Missing required property: name"));
    }
    if identifier.trim().is_empty() || identifier.chars().count() > 600 || identifier.contains(char::is_whitespace) {
        return Err(invalid("identifier", "1 to 600 characters, no spaces (usually the API's URL)"));
    }
    if identifier == app.settings.management_audience() {
        return Err(RsError::Conflict);
    }
    let mut rs = ResourceServer {
        id: hex::encode(callsign_domain::rng::bytes::<12>(app.rng.as_ref())),
        name: String::new(),
        identifier: identifier.clone(),
        scopes: Vec::new(),
        signing_alg: "RS256".to_owned(),
        token_lifetime: DEFAULT_TOKEN_LIFETIME,
        // Never longer than the API's own lifetime when only that one is given.
        token_lifetime_for_web: DEFAULT_TOKEN_LIFETIME_FOR_WEB.min(f.token_lifetime.unwrap_or(DEFAULT_TOKEN_LIFETIME)),
        allow_offline_access: false,
        skip_consent_for_verifiable_first_party_clients: false,
        is_system: false,
    };
    apply(&mut rs, Fields { identifier: None, ..f })?;
    modify(app, |doc| {
        if doc.items.iter().any(|r| r.identifier == identifier) {
            return Err(RsError::Conflict);
        }
        doc.items.push(rs.clone());
        Ok(rs.clone())
    })
    .await
}

/// Update a resource server by id (or identifier). The identifier cannot change; the Management API cannot be
/// updated.
pub async fn update(app: &Core, id: &str, f: Fields) -> Result<ResourceServer, RsError> {
    if id == MANAGEMENT_API_ID || id == app.settings.management_audience() {
        return Err(RsError::System);
    }
    modify(app, |doc| {
        let rs = doc.items.iter_mut().find(|r| r.id == id || r.identifier == id).ok_or(RsError::NotFound)?;
        if f.identifier.as_ref().is_some_and(|i| *i != rs.identifier) {
            return Err(invalid("identifier", "the identifier of a resource server cannot be changed"));
        }
        apply(rs, f.clone())?;
        Ok(rs.clone())
    })
    .await
}

/// Delete a resource server by id (or identifier); the Management API cannot be deleted.
pub async fn delete(app: &Core, id: &str) -> Result<(), RsError> {
    if id == MANAGEMENT_API_ID || id == app.settings.management_audience() {
        return Err(RsError::System);
    }
    modify(app, |doc| {
        let before = doc.items.len();
        doc.items.retain(|r| r.id != id && r.identifier != id);
        if doc.items.len() == before { Err(RsError::NotFound) } else { Ok(()) }
    })
    .await
}
