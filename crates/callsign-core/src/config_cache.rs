//! The hot configuration in memory: settings documents (the Guardian configuration, tenant settings, attack
//! protection…), applications and client grants, read on nearly every request and written rarely.
//!
//! What is cached is dropped, all at once, when either of two numbers moves:
//! - the store's count of configuration writes made through it (`SettingStore::config_writes`): this node's own
//!   writes, seen by the next read, so a node reads what it just wrote;
//! - the database's configuration generation (`SettingStore::config_generation`), raised in the transaction of
//!   every configuration write on any node: read at most once per [`CHECK_INTERVAL`], by the first request after it
//!   has passed, so another node's change is seen within that interval (and the time of one query).
//!
//! A store that does not count its writes (`config_writes` is `None`) is never cached, and nothing is served from
//! memory inside [`read_through`] (the Management API and the dashboard). A failed generation check
//! reads through to the store until a check succeeds. Applications and grants that do not exist are not cached (a
//! caller could otherwise fill memory with made-up names), and each map is emptied when it reaches [`MAX_ENTRIES`].
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use callsign_store::{Client, ClientGrant, Store, StoreResult};
use serde_json::Value;

/// How often the database's configuration generation is read.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// Applications (or client grants) kept at most; the map is emptied when it is full.
pub const MAX_ENTRIES: usize = 10_000;

tokio::task_local! {
    /// Set while a future runs under [`read_through`].
    static READ_THROUGH: ();
}

/// Run `f` with every configuration read going to the store, never to memory: for the operators' surfaces (the
/// Management API, the dashboard), whose reads must show a write made a moment ago on another node, and whose
/// reads are rare. Requests that log in or send codes keep the cache.
pub async fn read_through<F: std::future::Future>(f: F) -> F::Output {
    READ_THROUGH.scope((), f).await
}

/// (configuration writes through this store, the database's generation): what the entries were read at.
type Tag = (u64, i64);

#[derive(Debug, Default)]
pub struct ConfigCache {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The tag the maps were filled at.
    tag: Option<Tag>,
    /// The database's generation as last read, and when that read started (`None`: read it now).
    generation: i64,
    checked_at: Option<Instant>,
    /// Whether the last check failed (then nothing is served from memory until one succeeds).
    unchecked: bool,
    docs: HashMap<String, Option<Value>>,
    clients: HashMap<String, Client>,
    grants: HashMap<(String, String), ClientGrant>,
}

impl Inner {
    /// Move the maps to `tag` (emptying them) if it is newer than theirs; true when they now hold entries of
    /// `tag`, false for a request that read an older tag than the maps' (it reads through).
    fn at(&mut self, tag: Tag) -> bool {
        match self.tag {
            Some(cur) if cur == tag => true,
            Some(cur) if tag.0 < cur.0 || tag.1 < cur.1 => false,
            _ => {
                self.docs.clear();
                self.clients.clear();
                self.grants.clear();
                self.tag = Some(tag);
                true
            }
        }
    }
}

impl ConfigCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while the lock was held leaves maps that are at worst stale by one entry: keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The tag to read at now, or `None` when nothing may be served from memory.
    ///
    /// The check interval is measured on the monotonic clock, not the injected `Clock`: it bounds how stale this
    /// node's copy may be in real time (a test's frozen clock must not freeze the cache), and tells no domain time.
    #[allow(clippy::disallowed_methods)] // a staleness bound in real time, not telling the time
    async fn tag(&self, store: &dyn Store) -> Option<Tag> {
        if READ_THROUGH.try_with(|()| ()).is_ok() {
            return None;
        }
        let writes = store.config_writes()?;
        let due = {
            let mut inner = self.lock();
            let due = inner.checked_at.is_none_or(|at| at.elapsed() >= CHECK_INTERVAL);
            if due {
                // This request checks; the others go on with the generation read last.
                inner.checked_at = Some(Instant::now());
            }
            due
        };
        if due {
            let read = store.config_generation().await;
            let mut inner = self.lock();
            match read {
                Ok(g) => {
                    inner.generation = g;
                    inner.unchecked = false;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the configuration generation; reading through");
                    inner.unchecked = true;
                    inner.checked_at = None;
                }
            }
        }
        let inner = self.lock();
        (!inner.unchecked).then_some((writes, inner.generation))
    }

    fn get<T>(&self, tag: Tag, find: impl FnOnce(&Inner) -> Option<T>) -> Option<T> {
        let mut inner = self.lock();
        if inner.at(tag) { find(&inner) } else { None }
    }

    /// Keep what was read at `tag`, unless the maps have moved on to another tag meanwhile.
    fn put(&self, tag: Tag, keep: impl FnOnce(&mut Inner)) {
        let mut inner = self.lock();
        if inner.tag == Some(tag) {
            keep(&mut inner);
        }
    }

    /// The settings document `key` (`SettingStore::get_setting`).
    pub async fn setting(&self, store: &dyn Store, key: &str) -> StoreResult<Option<Value>> {
        let Some(tag) = self.tag(store).await else { return store.get_setting(key).await };
        if let Some(v) = self.get(tag, |i| i.docs.get(key).cloned()) {
            return Ok(v);
        }
        let v = store.get_setting(key).await?;
        self.put(tag, |i| {
            i.docs.insert(key.to_owned(), v.clone());
        });
        Ok(v)
    }

    /// The application `client_id` (`IdentityStore::get_client`).
    pub async fn client(&self, store: &dyn Store, client_id: &str) -> StoreResult<Option<Client>> {
        let Some(tag) = self.tag(store).await else { return store.get_client(client_id).await };
        if let Some(c) = self.get(tag, |i| i.clients.get(client_id).cloned()) {
            return Ok(Some(c));
        }
        let c = store.get_client(client_id).await?;
        if let Some(c) = &c {
            self.put(tag, |i| {
                if i.clients.len() >= MAX_ENTRIES {
                    i.clients.clear();
                }
                i.clients.insert(client_id.to_owned(), c.clone());
            });
        }
        Ok(c)
    }

    /// The grant of `client_id` for `audience` (`IdentityStore::find_client_grant`).
    pub async fn client_grant(
        &self,
        store: &dyn Store,
        client_id: &str,
        audience: &str,
    ) -> StoreResult<Option<ClientGrant>> {
        let Some(tag) = self.tag(store).await else { return store.find_client_grant(client_id, audience).await };
        let key = (client_id.to_owned(), audience.to_owned());
        if let Some(g) = self.get(tag, |i| i.grants.get(&key).cloned()) {
            return Ok(Some(g));
        }
        let g = store.find_client_grant(client_id, audience).await?;
        if let Some(g) = &g {
            self.put(tag, |i| {
                if i.grants.len() >= MAX_ENTRIES {
                    i.grants.clear();
                }
                i.grants.insert(key, g.clone());
            });
        }
        Ok(g)
    }
}
