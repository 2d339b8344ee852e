//! Operator alerts: something an operator must hear about now (a usage trigger crossed, a pumping throttle
//! started), posted to the alert webhook, signed per Standard Webhooks like the custom phone provider
//! (`callsign_messaging::transport::sign`: `webhook-id`, `webhook-timestamp`, `webhook-signature`).
//!
//! Durable and retried (docs/ARCHITECTURE.md, "Operator alerts"): [`raise`] appends the alert to an outbox, a
//! settings document (`alert_outbox`) changed only by compare-and-set ([`crate::documents::modify`]), so that it is
//! in the database before `raise` returns. A sender ([`send_due`], every few seconds on every node,
//! [`spawn_sender`]) claims the due alerts with a lease written into the same document (of two nodes, the one whose
//! write lands claims; the other sees the lease), posts them, and removes the delivered ones; a failed post is
//! retried with exponential backoff (10 s doubling, at most an hour) for as long as it takes, a crashed sender's
//! lease runs out and another node takes the alert over. An alert raised while no webhook is configured waits in
//! the outbox until one is (setting a webhook makes every waiting alert due at once). The outbox holds at most [`MAX_PENDING`] alerts; past that a new alert is refused
//! (logged as an error), never an accepted one dropped.
//!
//! The webhook: its URL in the `alert_webhook` settings document (the custom provider's rule: https, plain http
//! only for 127.0.0.1 and localhost), its `whsec_…` signing secret sealed in the secrets table
//! ([`SECRET_NAME`]), never shown again after it was made.
use callsign_domain::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::Core;

pub const SETTINGS_KEY: &str = "alert_webhook";
pub const OUTBOX_KEY: &str = "alert_outbox";
/// The sealed signing secret.
pub const SECRET_NAME: &str = "alerts/webhook-secret";
/// The most alerts waiting at once.
pub const MAX_PENDING: usize = 1_000;
/// How long a sender's claim holds.
pub const LEASE_MS: i64 = 60_000;
/// The first retry's delay; it doubles up to [`MAX_BACKOFF_MS`].
pub const FIRST_BACKOFF_MS: i64 = 10_000;
pub const MAX_BACKOFF_MS: i64 = 3_600_000;
/// How many alerts one [`send_due`] claims.
pub const BATCH: usize = 20;
/// How often each node looks for due alerts.
pub const SEND_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Where alerts go.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertWebhook {
    pub url: Option<String>,
}

/// One alert waiting to be delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub id: String,
    pub kind: String,
    pub details: Value,
    pub created_at: i64,
    pub attempts: u32,
    pub next_at: i64,
    #[serde(default)]
    pub lease_until: i64,
    #[serde(default)]
    pub leased_by: Option<String>,
    #[serde(default)]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Outbox {
    alerts: Vec<Pending>,
}

/// The delay before retry number `attempts` (1 = the first retry).
pub fn backoff_ms(attempts: u32) -> i64 {
    FIRST_BACKOFF_MS.saturating_mul(1_i64 << attempts.saturating_sub(1).min(20)).min(MAX_BACKOFF_MS)
}

/// Raise an operator alert of `kind` (`usage_trigger`, `pumping_suspected`, …): stored in the outbox now, posted
/// to the alert webhook by a sender. Never fails the caller: a failure to store it is logged as an error.
pub async fn raise(app: &Core, kind: &str, details: Value) {
    let now = app.clock.now().millis();
    let id = format!("alr_{}", callsign_domain::rng::from_alphabet(app.rng.as_ref(), callsign_domain::rng::ALNUM, 20));
    let alert = Pending {
        id: id.clone(),
        kind: kind.to_owned(),
        details,
        created_at: now,
        attempts: 0,
        next_at: now,
        lease_until: 0,
        leased_by: None,
        last_error: None,
    };
    let result = outbox(app, |o| {
        if o.alerts.len() >= MAX_PENDING {
            return Err(());
        }
        o.alerts.push(alert.clone());
        Ok(())
    })
    .await;
    match result {
        Ok(Ok(())) => tracing::info!(alert = %id, kind, "operator alert raised"),
        Ok(Err(())) => {
            tracing::error!(kind, "operator alert refused: {MAX_PENDING} alerts already wait for the alert webhook")
        }
        Err(e) => tracing::error!(kind, error = %e, "operator alert could not be stored"),
    }
}

async fn outbox<R, E>(
    app: &Core,
    mut change: impl FnMut(&mut Outbox) -> Result<R, E>,
) -> crate::BoxResult<Result<R, E>> {
    crate::documents::modify(app, OUTBOX_KEY, "alert outbox", Outbox::default, |o| change(o)).await
}

/// The alerts waiting (delivered ones are gone).
pub async fn pending(app: &Core) -> crate::BoxResult<Vec<Pending>> {
    Ok(crate::documents::load::<Outbox>(app, OUTBOX_KEY).await?.alerts)
}

/// The configured webhook.
pub async fn webhook(app: &Core) -> crate::BoxResult<AlertWebhook> {
    crate::documents::load(app, SETTINGS_KEY).await
}

/// Whether a signing secret is stored.
pub async fn has_secret(app: &Core) -> crate::BoxResult<bool> {
    Ok(app.store.get_secret(SECRET_NAME).await?.is_some())
}

/// Why a webhook setting was refused: `(property, message)`.
pub type FieldError = (String, String);

/// Set (or with `None`, remove) the webhook URL; store `secret` (a `whsec_…` value) when given, or make one when
/// a URL is set and none is stored yet. The made secret comes back (shown once).
pub async fn set_webhook(
    app: &Core,
    url: Option<&str>,
    secret: Option<&str>,
) -> crate::BoxResult<Result<Option<Zeroizing<String>>, FieldError>> {
    let url = match url.map(str::trim).filter(|u| !u.is_empty()) {
        Some(u) => match callsign_messaging::transport::check_url(u) {
            Ok(u) => Some(u.to_string()),
            Err(e) => return Ok(Err(("alert_webhook.url".into(), e))),
        },
        None => None,
    };
    let given = match secret {
        Some(s) => match callsign_messaging::transport::secret_key(s) {
            Ok(k) if k.len() >= 24 && s.starts_with(callsign_messaging::transport::SECRET_PREFIX) => {
                Some(Zeroizing::new(s.to_owned()))
            }
            _ => {
                return Ok(Err((
                    "alert_webhook.secret".into(),
                    "a signing secret is `whsec_` and the base64 of at least 24 bytes".into(),
                )));
            }
        },
        None => None,
    };
    let made = if given.is_none() && url.is_some() && !has_secret(app).await? {
        Some(callsign_messaging::transport::new_secret(app.rng.as_ref()))
    } else {
        None
    };
    if let Some(s) = given.as_ref().or(made.as_ref()) {
        let sealed = app.keyring.seal(app.rng.as_ref(), SECRET_NAME, s.as_bytes())?;
        app.store
            .put_secret(&callsign_store::SealedSecret {
                name: SECRET_NAME.to_owned(),
                sealed,
                updated_at: app.clock.now(),
            })
            .await?;
    }
    let set = url.is_some();
    let doc = serde_json::to_value(AlertWebhook { url })?;
    app.store.put_setting(SETTINGS_KEY, &doc, app.clock.now()).await?;
    if set && !pending(app).await?.is_empty() {
        // What waited (for a webhook, or out a backoff against the old one) is due at once.
        let now = app.clock.now().millis();
        outbox(app, |o| {
            for a in &mut o.alerts {
                a.next_at = a.next_at.min(now);
            }
            Ok::<_, ()>(())
        })
        .await?
        .ok();
    }
    Ok(Ok(made))
}

/// Claim the due alerts (at most [`BATCH`]), post them, and settle each: delivered ones leave the outbox, failed
/// ones wait their backoff. Returns how many were delivered.
pub async fn send_due(app: &Core, worker: &str) -> crate::BoxResult<usize> {
    let now = app.clock.now().millis();
    let due = |a: &Pending| a.next_at <= now && a.lease_until <= now;
    // A plain read first: an idle node (nothing due, the usual case) writes nothing.
    if !pending(app).await?.iter().any(due) {
        return Ok(0);
    }
    let claimed = outbox(app, |o| {
        let mut mine = Vec::new();
        for a in o.alerts.iter_mut().filter(|a| due(a)).take(BATCH) {
            a.lease_until = now + LEASE_MS;
            a.leased_by = Some(worker.to_owned());
            mine.push(a.clone());
        }
        Ok::<_, ()>(mine)
    })
    .await?
    .unwrap_or_default();
    if claimed.is_empty() {
        return Ok(0);
    }
    let target = target(app).await;
    let mut delivered = 0;
    for a in claimed {
        let result = match &target {
            Ok((url, key)) => post(app, url, key, &a).await,
            Err(e) => Err(e.clone()),
        };
        let later = app.clock.now().millis();
        let settle = outbox(app, |o| {
            let Some(i) = o.alerts.iter().position(|p| p.id == a.id && p.leased_by.as_deref() == Some(worker)) else {
                return Ok::<_, ()>(());
            };
            match &result {
                Ok(()) => {
                    o.alerts.remove(i);
                }
                Err(e) => {
                    let p = &mut o.alerts[i];
                    p.attempts += 1;
                    p.next_at = later + backoff_ms(p.attempts);
                    p.lease_until = 0;
                    p.leased_by = None;
                    p.last_error = Some(e.clone());
                }
            }
            Ok(())
        })
        .await;
        match (&result, settle) {
            (Ok(()), Ok(_)) => {
                delivered += 1;
                tracing::info!(alert = %a.id, kind = %a.kind, "operator alert delivered");
            }
            (Err(e), Ok(_)) => {
                tracing::warn!(alert = %a.id, kind = %a.kind, attempts = a.attempts + 1, error = %e, "operator alert not delivered; will retry")
            }
            (_, Err(e)) => tracing::warn!(alert = %a.id, error = %e, "the alert outbox could not be updated"),
        }
    }
    Ok(delivered)
}

/// The webhook URL and signing key, or why there is none.
async fn target(app: &Core) -> Result<(reqwest::Url, Zeroizing<Vec<u8>>), String> {
    let hook = webhook(app).await.map_err(|e| format!("cannot read the alert webhook: {e}"))?;
    let url = hook.url.ok_or("no alert webhook is configured")?;
    let url = callsign_messaging::transport::check_url(&url)?;
    let sealed = app
        .store
        .get_secret(SECRET_NAME)
        .await
        .map_err(|e| format!("cannot read the alert signing secret: {e}"))?
        .ok_or("the alert webhook has no signing secret")?;
    let secret = app.keyring.open(SECRET_NAME, &sealed.sealed).map_err(|e| format!("cannot open the secret: {e}"))?;
    let secret = std::str::from_utf8(&secret).map_err(|_| "the alert signing secret is corrupt".to_owned())?;
    let key = callsign_messaging::transport::secret_key(secret)?;
    Ok((url, key))
}

/// The body posted for an alert (Standard Webhooks' `type`, `timestamp`, `data`).
pub fn body(a: &Pending) -> Value {
    json!({
        "type": format!("callsign.alert.{}", a.kind),
        "timestamp": Timestamp::from_millis(a.created_at).to_rfc3339(),
        "data": {"id": a.id, "kind": a.kind, "details": a.details},
    })
}

async fn post(app: &Core, url: &reqwest::Url, key: &[u8], a: &Pending) -> Result<(), String> {
    let body = serde_json::to_vec(&body(a)).map_err(|e| e.to_string())?;
    let ts = app.clock.now().seconds();
    let sig = callsign_messaging::transport::sign(key, &a.id, ts, &body)?;
    let host = url.host_str().unwrap_or_default().to_owned();
    let resp = app
        .http
        .post(url.clone())
        .header("content-type", "application/json")
        .header("webhook-id", &a.id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sig)
        .body(body)
        .send()
        .await
        .map_err(|e| {
            let f = callsign_messaging::transport::transport_failure(e);
            format!("the alert webhook at {host} {}: {}", f.kind, f.detail)
        })?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("the alert webhook at {host} answered {}", resp.status()))
    }
}

/// Look for due alerts every [`SEND_EVERY`] until `stop` changes.
pub fn spawn_sender(
    app: &std::sync::Arc<Core>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let node = callsign_domain::rng::from_alphabet(app.rng.as_ref(), callsign_domain::rng::ALNUM, 8);
    crate::spawn_every(app, SEND_EVERY, stop, move |app| {
        let node = node.clone();
        async move {
            if let Err(e) = send_due(&app, &node).await {
                tracing::warn!(error = %e, "operator alerts could not be sent");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff_ms(1), 10_000);
        assert_eq!(backoff_ms(2), 20_000);
        assert_eq!(backoff_ms(5), 160_000);
        assert_eq!(backoff_ms(30), MAX_BACKOFF_MS);
        assert_eq!(backoff_ms(u32::MAX), MAX_BACKOFF_MS);
    }
}
