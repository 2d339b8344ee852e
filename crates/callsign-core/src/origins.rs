//! Which browser origins may call the Authentication API cross-origin (CORS) and receive `web_message` results:
//! those an application lists in its `web_origins` or `allowed_origins` (Auth0's "Allowed Web Origins" and
//! "Allowed Origins (CORS)"). A preflight carries no client id, so an origin is allowed when any application of the
//! tenant lists it.
use callsign_domain::web_origin;
use callsign_store::{Client, Page, StoreResult};

use crate::Core;

/// Clients read per page while looking for an origin.
const PER_PAGE: u32 = 100;

/// Whether `client` lists `origin` (an `Origin` header value) in `web_origins` or `allowed_origins`.
pub fn client_allows(client: &Client, origin: &str) -> bool {
    client.spec.web_origins.iter().chain(&client.spec.allowed_origins).any(|p| web_origin::matches(p, origin))
}

/// Whether `client` lists `origin` in `web_origins` (the origins that may receive `web_message` results and frame
/// the silent-authentication answer).
pub fn web_origin_allowed(client: &Client, origin: &str) -> bool {
    client.spec.web_origins.iter().any(|p| web_origin::matches(p, origin))
}

/// Whether some application of the tenant allows `origin` for CORS.
pub async fn cors_allowed(app: &Core, origin: &str) -> StoreResult<bool> {
    if web_origin::of(origin).is_none() {
        return Ok(false);
    }
    let mut page = 0;
    loop {
        let listed = app.store.list_clients(Page::new(page, PER_PAGE)).await?;
        if listed.items.iter().any(|c| client_allows(c, origin)) {
            return Ok(true);
        }
        let seen = u64::from(page + 1) * u64::from(PER_PAGE);
        if listed.items.is_empty() || seen >= listed.total {
            return Ok(false);
        }
        page += 1;
    }
}
