//! The PostgreSQL backend, for several nodes sharing one database.
//!
//! The SQL and the `Store` impl are shared with SQLite (`callsign_store::sql`); this crate owns the pool setup,
//! its migrations, the mapping of PostgreSQL errors, and the cross-node parts of the delivery outbox. Migrations
//! from several nodes at once are serialised by sqlx's migrator, which holds a PostgreSQL advisory lock while it runs.
//!
//! Concurrency across nodes: claiming jobs picks rows with `FOR UPDATE SKIP LOCKED`, so two claimers never take
//! the same job; rate-limit buckets are read `FOR UPDATE` in the transaction that writes them back. A new job is
//! announced with `NOTIFY` in the transaction that inserts it; `wait_for_jobs` listens for it on one connection
//! per store, taken from the pool when first needed and given back by [`PostgresStore::close`].
#![forbid(unsafe_code)]

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use callsign_store::{StoreError, StoreResult};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::{Mutex, Notify};

/// The migrations, with `ignore_missing` on: a node started on a database that a newer release has already migrated
/// (a rolling upgrade, docs/DEPLOYMENT.md) applies what it knows and ignores the newer ones instead of refusing to
/// start. Migrations only ever add, so the older code keeps working on the newer schema.
static MIGRATOR: Migrator = Migrator { ignore_missing: true, ..sqlx::migrate!("./migrations") };

/// The NOTIFY channel that announces new delivery jobs (suffixed with the schema for schema-scoped stores).
const JOBS_CHANNEL: &str = "callsign_jobs";
/// Longest identifier PostgreSQL keeps (`NAMEDATALEN - 1`); `pg_notify` refuses longer channel names.
const MAX_IDENTIFIER_LEN: usize = 63;
/// `$1` = channel. Delivered when the surrounding transaction commits, and not at all if it rolls back.
const JOBS_NOTIFY: &str = "SELECT pg_notify($1, '')";

/// `unique_violation`
const PG_UNIQUE_VIOLATION: &str = "23505";

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Where writes go: the same pool (PostgreSQL has row locks and many writers).
    writer: PgPool,
    /// Writes to configuration through this store (`SettingStore::config_writes`).
    config_writes: Arc<AtomicU64>,
    /// Where new jobs are announced to every node (see [`jobs_channel`]).
    channel: Arc<str>,
    /// Wakes this process's workers waiting in `wait_for_jobs` at once, without a round trip to the database.
    jobs: Arc<Notify>,
    /// Listens on `channel`; opened by the first `wait_for_jobs`. One at a time waits on it.
    listener: Arc<Mutex<Option<PgListener>>>,
}

/// Connect to the database a `postgres://` or `postgresql://` URL names. Migrations are not run here.
pub async fn connect(url: &str) -> StoreResult<PostgresStore> {
    PostgresStore::connect(url).await
}

/// Like [`connect`], but every connection works in `schema` (created if missing), through `search_path`.
/// Tests use it to give each test its own tables. The name must match `[a-z_][a-z0-9_]*`, at most 63 bytes,
/// and not start with `pg_`.
pub async fn connect_with_schema(url: &str, schema: &str) -> StoreResult<PostgresStore> {
    PostgresStore::connect_with_schema(url, schema).await
}

impl PostgresStore {
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = parse_url(url)?;
        Self::open(options, jobs_channel(None)).await
    }

    pub async fn connect_with_schema(url: &str, schema: &str) -> StoreResult<Self> {
        check_schema_name(schema)?;
        let options = parse_url(url)?;
        let mut conn = PgConnection::connect_with(&options).await.map_err(connect_error)?;
        // The name is checked above, so it is safe to put in the statement (identifiers cannot be bound).
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
            .execute(&mut conn)
            .await
            .map_err(map_error)?;
        conn.close().await.map_err(map_error)?;
        Self::open(options.options([("search_path", schema)]), jobs_channel(Some(schema))).await
    }

    async fn open(options: PgConnectOptions, channel: String) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(connect_error)?;
        Ok(Self {
            writer: pool.clone(),
            pool,
            config_writes: Arc::default(),
            channel: channel.into(),
            jobs: Arc::new(Notify::new()),
            listener: Arc::new(Mutex::new(None)),
        })
    }

    /// The underlying pool, for tests and tools.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Close every connection (waits for those in use, and gives back the one `wait_for_jobs` listens on).
    pub async fn close(&self) {
        // Marks the pool closed at once, which makes a `wait_for_jobs` blocked on the listener give it up.
        let closing = self.pool.close();
        drop(self.listener.lock().await.take());
        closing.await;
    }

    /// Inside the transaction that inserted a job: tell every node's workers, once it commits.
    async fn announce_jobs(&self, conn: &mut PgConnection) -> StoreResult<()> {
        sqlx::query(JOBS_NOTIFY).bind(&*self.channel).execute(conn).await.map_err(map_error)?;
        Ok(())
    }

    /// After that transaction committed: wake this process's workers waiting now, and leave a permit for the next
    /// one to wait, so that a worker between `claim_jobs` and `wait_for_jobs` does not sleep through the new job.
    fn wake_workers(&self) {
        self.jobs.notify_waiters();
        self.jobs.notify_one();
    }

    /// `JobStore::wait_for_jobs`: until a job is announced by any node, or enqueued through this store, or `max_ms`
    /// passes. If the database cannot be listened to, the wait simply lasts `max_ms`.
    async fn wait_for_new_jobs(&self, max_ms: u64) {
        tokio::select! {
            () = self.jobs.notified() => {}
            () = self.hear_jobs_announced() => {}
            () = tokio::time::sleep(Duration::from_millis(max_ms)) => {}
        }
    }

    /// Returns when a job announcement arrives on the listener (opening it first if needed). Never returns when
    /// listening fails: the caller's timeout ends the wait, and the next wait opens a new listener.
    async fn hear_jobs_announced(&self) {
        let mut slot = self.listener.lock().await;
        if slot.is_none() {
            *slot = self.listen().await.ok();
        }
        let heard = match slot.as_mut() {
            Some(listener) => listener.recv().await.is_ok(),
            None => false,
        };
        if heard {
            // Other local waiters are queued behind this lock: they hear it too.
            self.jobs.notify_waiters();
        } else {
            // Lost (the pool is closing, or reconnecting failed): drop it; the next wait starts afresh.
            *slot = None;
            drop(slot);
            std::future::pending::<()>().await;
        }
    }

    async fn listen(&self) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(&self.channel).await?;
        Ok(listener)
    }
}

/// The channel announcing jobs: one per schema, so that stores in different schemas (parallel tests) do not wake
/// each other. Cut to the longest name PostgreSQL keeps (names are ASCII: schema names are checked).
fn jobs_channel(schema: Option<&str>) -> String {
    let mut channel = match schema {
        Some(schema) => format!("{JOBS_CHANNEL}_{schema}"),
        None => JOBS_CHANNEL.to_owned(),
    };
    if channel.len() > MAX_IDENTIFIER_LEN && channel.is_ascii() {
        channel.truncate(MAX_IDENTIFIER_LEN);
    }
    channel
}

fn parse_url(url: &str) -> StoreResult<PgConnectOptions> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(StoreError::Other("not a postgres:// URL".into()));
    }
    // sqlx's parse errors can quote the URL, password included; keep them out of the message.
    PgConnectOptions::from_str(url).map_err(|_| StoreError::Other("invalid PostgreSQL URL".into()))
}

fn connect_error(e: sqlx::Error) -> StoreError {
    StoreError::Other(format!("cannot connect to PostgreSQL: {e}"))
}

fn check_schema_name(schema: &str) -> StoreResult<()> {
    let mut chars = schema.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if first_ok && rest_ok && schema.len() <= 63 && !schema.starts_with("pg_") {
        Ok(())
    } else {
        Err(StoreError::Other(format!("invalid schema name `{schema}`: use [a-z_][a-z0-9_]*, not pg_*")))
    }
}

/// Unique violations become `Conflict("<columns>")`, e.g. `Conflict("email")` or `Conflict("client_id,audience")`;
/// anything else is `Other`.
fn map_error(e: sqlx::Error) -> StoreError {
    if let Some(db) = e.as_database_error()
        && db.code().as_deref() == Some(PG_UNIQUE_VIOLATION)
    {
        return StoreError::Conflict(conflict_columns(db.constraint().unwrap_or("unknown")).to_owned());
    }
    StoreError::Other(e.to_string())
}

/// The constraints named in `migrations/`, and the columns each one guards.
fn conflict_columns(constraint: &str) -> &str {
    match constraint {
        "secrets_pkey" | "settings_pkey" => "name",
        "signing_keys_pkey" => "kid",
        "clients_pkey" => "client_id",
        "client_grants_pkey" => "id",
        "client_grants_client_audience_key" => "client_id,audience",
        "users_pkey" => "user_id",
        "users_email_key" => "email",
        "logs_pkey" => "log_id",
        "enrollments_pkey" | "challenges_pkey" | "delivery_jobs_pkey" | "dev_messages_pkey" => "id",
        "mfa_tokens_pkey" => "token_hash",
        "buckets_pkey" => "key",
        "enrollment_tickets_pkey" => "ticket_hash",
        "log_streams_pkey" => "id",
        other => other,
    }
}

callsign_store::impl_sqlx_store! {
    store: PostgresStore,
    backend: "postgres",
    database: ::sqlx::Postgres,
    migrator: MIGRATOR,
    map_error: map_error,
    // Claimers on every node skip the rows another one is taking; bucket rows are held until written back.
    claim_lock: "FOR UPDATE SKIP LOCKED",
    bucket_lock: "FOR UPDATE",
    begin_write: "BEGIN",
    // Only events whose transaction is older than every running one (see migrations/0004_log_streams.sql).
    log_horizon: "AND tx < (pg_snapshot_xmin(pg_current_snapshot())::text::bigint)",
    announce_jobs: PostgresStore::announce_jobs,
    wake_workers: PostgresStore::wake_workers,
    wait_for_jobs: PostgresStore::wait_for_new_jobs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_checked() {
        for ok in ["cs_test_1_2_3", "callsign", "_x"] {
            assert!(check_schema_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Upper", "a-b", "a;drop", "x\"y", "1abc", "pg_catalog", &"a".repeat(64)] {
            assert!(check_schema_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn constraints_map_to_columns() {
        assert_eq!(conflict_columns("users_email_key"), "email");
        assert_eq!(conflict_columns("client_grants_client_audience_key"), "client_id,audience");
        assert_eq!(conflict_columns("clients_pkey"), "client_id");
        assert_eq!(conflict_columns("enrollments_pkey"), "id");
        assert_eq!(conflict_columns("enrollment_tickets_pkey"), "ticket_hash");
    }

    #[test]
    fn jobs_channels_are_per_schema_and_never_too_long() {
        assert_eq!(jobs_channel(None), "callsign_jobs");
        assert_eq!(jobs_channel(Some("cs_test_1")), "callsign_jobs_cs_test_1");
        let long = "s".repeat(63);
        assert_eq!(jobs_channel(Some(&long)).len(), MAX_IDENTIFIER_LEN);
    }

    #[tokio::test]
    async fn other_schemes_are_refused_without_echoing_the_url() {
        match connect("sqlite://x.db").await {
            Err(StoreError::Other(m)) => assert!(!m.contains("x.db"), "{m}"),
            other => panic!("expected an error, got {other:?}"),
        }
        match connect("postgres://user:hunter2@[bad").await {
            Err(StoreError::Other(m)) => assert!(!m.contains("hunter2"), "{m}"),
            other => panic!("expected an error, got {other:?}"),
        }
        assert!(matches!(connect_with_schema("postgres://u@127.0.0.1/db", "Bad").await, Err(StoreError::Other(_))));
    }
}
