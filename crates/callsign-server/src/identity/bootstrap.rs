//! No default passwords: the first start creates one Management API client and writes its credentials to a
//! file only the server's user can read.
use std::path::PathBuf;

use callsign_domain::hash::token_hash;
use callsign_domain::{ids, scopes};
use callsign_store::{Client, ClientGrant, ClientSpec};
use serde_json::json;

use crate::app::AppState;

pub const BOOTSTRAP_FILE: &str = "bootstrap-credentials.json";

/// A machine-to-machine client holding every Management API scope. Returns (client_id, client_secret).
pub async fn create_management_client(app: &AppState, name: &str) -> crate::BoxResult<(String, String)> {
    let now = app.clock.now();
    let client_id = ids::client_id(app.rng.as_ref());
    let secret = ids::client_secret(app.rng.as_ref());
    let client = Client {
        client_id: client_id.clone(),
        secret_hash: token_hash(&secret),
        created_at: now,
        updated_at: now,
        spec: ClientSpec {
            name: name.to_owned(),
            app_type: Some("non_interactive".into()),
            grant_types: vec!["client_credentials".into()],
            is_first_party: true,
            token_endpoint_auth_method: "client_secret_post".into(),
            ..Default::default()
        },
    };
    app.store.create_client(&client).await?;
    app.store
        .create_client_grant(&ClientGrant {
            id: ids::client_grant_id(app.rng.as_ref()),
            client_id: client_id.clone(),
            audience: app.config.management_audience(),
            scope: scopes::ALL_MANAGEMENT.iter().map(|s| (*s).to_owned()).collect(),
            created_at: now,
        })
        .await?;
    Ok((client_id, secret))
}

pub fn credentials_json(app: &AppState, client_id: &str, secret: &str) -> String {
    let v = json!({
        "client_id": client_id,
        "client_secret": secret,
        "audience": app.config.management_audience(),
        "token_url": format!("{}oauth/token", app.config.public_url),
    });
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

/// The bootstrap file: the client's credentials and the dashboard's one-time setup link.
pub fn bootstrap_json(app: &AppState, client_id: &str, secret: &str, setup_url: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(&credentials_json(app, client_id, secret)).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("dashboard_setup_url".into(), json!(setup_url));
    }
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

/// On the first start against an empty database (a cross-node latch in the store), create the client and write
/// `<data dir>/bootstrap-credentials.json` with mode 0600.
pub async fn bootstrap_if_empty(app: &AppState) -> crate::BoxResult<Option<PathBuf>> {
    let first = app
        .store
        .insert_setting_if_absent("bootstrap", &json!({"at": app.clock.now().millis()}), app.clock.now())
        .await?;
    if !first {
        grant_new_scopes(app).await?;
        return Ok(None);
    }
    let (client_id, secret) = create_management_client(app, BOOTSTRAP_CLIENT_NAME).await?;
    let known: Vec<&str> = scopes::ALL_MANAGEMENT.to_vec();
    app.store
        .put_setting(
            "bootstrap",
            &json!({"at": app.clock.now().millis(), "client_id": client_id, "scopes_known": known}),
            app.clock.now(),
        )
        .await?;
    // The operator dashboard has no default password either: a one-time setup link (24 h) goes in the same file.
    let setup_url = crate::dashboard::auth::create_setup_link(app).await?;
    let path = app.config.data_dir.join(BOOTSTRAP_FILE);
    // A file already there belongs to another database (this one was empty): keep it under a new name rather than
    // lose the credentials it holds.
    if path.exists() {
        let kept = app.config.data_dir.join(format!("bootstrap-credentials.{}.json", app.clock.now().millis()));
        std::fs::rename(&path, &kept).map_err(|e| format!("cannot move the earlier {}: {e}", path.display()))?;
        tracing::warn!(earlier = %kept.display(), "a new database in a data directory that had bootstrap credentials: the earlier file (for the other database) is kept under a new name");
    }
    crate::keys::write_private_file(&path, &bootstrap_json(app, &client_id, &secret, &setup_url), true)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    tracing::warn!(path = %path.display(), %client_id, "created the bootstrap Management API client; its credentials and a one-time dashboard setup link (dashboard_setup_url, valid 24 hours) are in this file (mode 0600)");
    Ok(Some(path))
}

/// The bootstrap client's name.
const BOOTSTRAP_CLIENT_NAME: &str = "Callsign Management (bootstrap)";

/// Scopes that versions before the bootstrap record existed did not have. An installation from then gets these
/// (and only these) on its first start with this version.
const SCOPES_ADDED_SINCE_UNRECORDED: &[&str] = &[
    scopes::CREATE_PHONE_PROVIDERS,
    scopes::READ_PHONE_PROVIDERS,
    scopes::UPDATE_PHONE_PROVIDERS,
    scopes::DELETE_PHONE_PROVIDERS,
    scopes::CREATE_PHONE_TEMPLATES,
    scopes::READ_PHONE_TEMPLATES,
    scopes::UPDATE_PHONE_TEMPLATES,
    scopes::DELETE_PHONE_TEMPLATES,
];

/// After an upgrade, give the bootstrap client the Management scopes this version added (those not in the
/// `scopes_known` list it was last given), so that it keeps "holding every scope". Scopes an operator removed
/// from its grant on purpose stay removed: only scopes new to this installation are added. An installation from
/// before this record finds its bootstrap client by name (the oldest one) and gets the scopes added since.
pub async fn grant_new_scopes(app: &AppState) -> crate::BoxResult<Vec<String>> {
    let Some(mut state) = app.store.get_setting("bootstrap").await? else { return Ok(Vec::new()) };
    let client_id = match state.get("client_id").and_then(|v| v.as_str()) {
        Some(id) => Some(id.to_owned()),
        None => legacy_bootstrap_client(app).await?,
    };
    let Some(client_id) = client_id else { return Ok(Vec::new()) };
    let known: Vec<String> = match state.get("scopes_known").and_then(|v| v.as_array()) {
        Some(a) => a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect(),
        None => scopes::ALL_MANAGEMENT
            .iter()
            .filter(|s| !SCOPES_ADDED_SINCE_UNRECORDED.contains(s))
            .map(|s| (*s).to_owned())
            .collect(),
    };
    let new: Vec<String> =
        scopes::ALL_MANAGEMENT.iter().filter(|s| !known.iter().any(|k| k == *s)).map(|s| (*s).to_owned()).collect();
    let grant = if new.is_empty() {
        None
    } else {
        app.store.find_client_grant(&client_id, &app.config.management_audience()).await?
    };
    if let Some(mut grant) = grant {
        for s in &new {
            if !grant.scope.contains(s) {
                grant.scope.push(s.clone());
            }
        }
        app.store.update_client_grant(&grant).await?;
        tracing::info!(%client_id, scopes = %new.join(" "), "gave the bootstrap client the Management scopes this version added");
    }
    let unchanged = state.get("client_id").and_then(|v| v.as_str()) == Some(client_id.as_str()) && new.is_empty();
    if !unchanged {
        if let Some(o) = state.as_object_mut() {
            o.insert("client_id".into(), json!(client_id));
            o.insert("scopes_known".into(), json!(scopes::ALL_MANAGEMENT));
        }
        app.store.put_setting("bootstrap", &state, app.clock.now()).await?;
    }
    Ok(new)
}

/// The oldest client named like the bootstrap client, for installations that did not record its id.
async fn legacy_bootstrap_client(app: &AppState) -> crate::BoxResult<Option<String>> {
    let mut page = 0;
    let mut found: Option<callsign_store::Client> = None;
    loop {
        let listed = app.store.list_clients(callsign_store::Page::new(page, 100)).await?;
        let n = listed.items.len();
        for c in listed.items {
            if c.spec.name == BOOTSTRAP_CLIENT_NAME && found.as_ref().is_none_or(|f| c.created_at < f.created_at) {
                found = Some(c);
            }
        }
        if n < 100 || page >= 100 {
            break;
        }
        page += 1;
    }
    Ok(found.map(|c| c.client_id))
}
