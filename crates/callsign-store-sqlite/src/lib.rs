//! The embedded backend: one SQLite file (WAL mode), for a single node.
//!
//! The SQL and the `Store` impl are shared with PostgreSQL (`callsign_store::sql`); this crate owns the pool setup,
//! its migrations, the mapping of SQLite errors, and how delivery workers are woken (all in this process).
//!
//! Concurrency: SQLite has one writer at a time. A single `UPDATE` (claiming jobs, consuming a challenge or a
//! ticket) takes the write lock before it reads, so it is atomic on its own; read-modify-write transactions (rate
//! limit buckets) start with `BEGIN IMMEDIATE`, which takes the write lock up front. Both wait for another writer
//! (up to `BUSY_TIMEOUT` on a file; on unlock notifications for `sqlite::memory:`, whose cache is shared) instead of
//! failing at once.
//!
//! On a file, every write goes through one connection of its own (`writer`), and reads through a pool of several
//! (WAL readers do not wait for the writer). Writers then queue in the pool's fair, async wait instead of
//! contending for SQLite's lock, whose busy handler sleeps (1, 2, 5 … 100 ms) and made the long tail of
//! `/mfa/challenge` under load (docs/BENCHMARKS.md). `BUSY_TIMEOUT` is still there for another process writing the
//! same file (the `callsign` admin commands).
#![forbid(unsafe_code)]

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use callsign_store::{StoreError, StoreResult};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::Notify;

/// The migrations, with `ignore_missing` on: a node started on a database that a newer release has already migrated
/// (a rolling upgrade, docs/DEPLOYMENT.md) applies what it knows and ignores the newer ones instead of refusing to
/// start. Migrations only ever add, so the older code keeps working on the newer schema.
static MIGRATOR: Migrator = Migrator { ignore_missing: true, ..sqlx::migrate!("./migrations") };

/// Connections that read (on a file; writes have their own).
const READERS: u32 = 8;

/// How long a statement waits for another writer before failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Reads.
    pool: SqlitePool,
    /// Writes and transactions: one connection on a file, the same pool as `pool` in memory.
    writer: SqlitePool,
    /// Writes to configuration through this store (`SettingStore::config_writes`).
    config_writes: Arc<AtomicU64>,
    /// Wakes the delivery workers waiting in `wait_for_jobs` when a job is enqueued.
    jobs: Arc<Notify>,
}

/// Open (creating if missing) the database a `sqlite://PATH` or `sqlite::memory:` URL names.
pub async fn connect(url: &str) -> StoreResult<SqliteStore> {
    SqliteStore::connect(url).await
}

impl SqliteStore {
    /// Open (creating if missing, with its parent directory) the database a `sqlite://PATH` URL names, relative or
    /// absolute (`sqlite:///var/lib/callsign/callsign.db`), or an in-memory database for `sqlite::memory:`.
    /// Migrations are not run here.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        if !url.starts_with("sqlite:") {
            return Err(StoreError::Other("not a sqlite: URL".into()));
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let open_error = |e: sqlx::Error| StoreError::Other(format!("cannot open the SQLite database: {e}"));
        let (pool, writer) = if is_in_memory(url) {
            // Every connection must see the same in-memory database, which lives only while one is open.
            let pool = SqlitePoolOptions::new()
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await
                .map_err(open_error)?;
            (pool.clone(), pool)
        } else {
            create_parent_dir(options.get_filename())?;
            let options = options.journal_mode(SqliteJournalMode::Wal).synchronous(SqliteSynchronous::Normal);
            // The writer first: it is the connection that switches the file to WAL.
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options.clone())
                .await
                .map_err(open_error)?;
            let pool =
                SqlitePoolOptions::new().max_connections(READERS).connect_with(options).await.map_err(open_error)?;
            (pool, writer)
        };
        Ok(Self { pool, writer, config_writes: Arc::default(), jobs: Arc::new(Notify::new()) })
    }

    /// The underlying pool, for tests and tools.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Close every connection (waits for those in use).
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    /// Inside the transaction that inserted a job: nothing to do, the workers are all in this process.
    async fn announce_jobs(&self, _conn: &mut SqliteConnection) -> StoreResult<()> {
        Ok(())
    }

    /// After that transaction committed: wake the workers waiting now, and leave a permit for the next one to wait,
    /// so that a worker that was between `claim_jobs` and `wait_for_jobs` does not sleep through the new job.
    fn wake_workers(&self) {
        self.jobs.notify_waiters();
        self.jobs.notify_one();
    }

    /// `JobStore::wait_for_jobs`: until a job is enqueued through this store (or a clone of it), or `max_ms` passes.
    async fn wait_for_new_jobs(&self, max_ms: u64) {
        tokio::select! {
            () = self.jobs.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(max_ms)) => {}
        }
    }
}

fn is_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

fn create_parent_dir(file: &Path) -> StoreResult<()> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Other(format!("cannot create the directory {}: {e}", dir.display()))),
        _ => Ok(()),
    }
}

/// SQLite extended result codes for a broken uniqueness rule.
const SQLITE_CONSTRAINT_PRIMARYKEY: &str = "1555";
const SQLITE_CONSTRAINT_UNIQUE: &str = "2067";

/// Unique violations become `Conflict("<columns>")`, e.g. `Conflict("email")` or `Conflict("client_id,audience")`;
/// anything else is `Other`.
fn map_error(e: sqlx::Error) -> StoreError {
    if let Some(db) = e.as_database_error() {
        let code = db.code();
        if matches!(code.as_deref(), Some(SQLITE_CONSTRAINT_PRIMARYKEY | SQLITE_CONSTRAINT_UNIQUE)) {
            return StoreError::Conflict(conflict_columns(db.message()));
        }
    }
    StoreError::Other(e.to_string())
}

/// `UNIQUE constraint failed: client_grants.client_id, client_grants.audience` → `client_id,audience`.
fn conflict_columns(message: &str) -> String {
    let list = message.rsplit_once(": ").map_or(message, |(_, cols)| cols);
    list.split(',')
        .map(|c| c.trim())
        .map(|c| c.rsplit_once('.').map_or(c, |(_, col)| col))
        .collect::<Vec<_>>()
        .join(",")
}

callsign_store::impl_sqlx_store! {
    store: SqliteStore,
    backend: "sqlite",
    database: ::sqlx::Sqlite,
    migrator: MIGRATOR,
    map_error: map_error,
    // One writer at a time (see the crate docs): no row locks, which SQLite does not have anyway.
    claim_lock: "",
    bucket_lock: "",
    begin_write: "BEGIN IMMEDIATE",
    // One writer: events are visible in `seq` order.
    log_horizon: "",
    announce_jobs: SqliteStore::announce_jobs,
    wake_workers: SqliteStore::wake_workers,
    wait_for_jobs: SqliteStore::wait_for_new_jobs,
}

#[cfg(test)]
mod tests {
    use callsign_store::Store;

    use super::*;

    #[test]
    fn conflict_columns_are_read_from_the_message() {
        assert_eq!(conflict_columns("UNIQUE constraint failed: users.email"), "email");
        assert_eq!(
            conflict_columns("UNIQUE constraint failed: client_grants.client_id, client_grants.audience"),
            "client_id,audience"
        );
    }

    #[tokio::test]
    async fn connect_creates_a_missing_file_and_its_directories() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        let file = dir.path().join("a").join("b").join("callsign.db");
        assert!(!file.exists());
        let store = match connect(&format!("sqlite://{}", file.display())).await {
            Ok(s) => s,
            Err(e) => panic!("connect: {e}"),
        };
        assert!(file.exists(), "{} was not created", file.display());
        assert!(store.migrate().await.is_ok());
        assert!(store.check_ready().await.is_ok());
        store.close().await;
    }

    #[tokio::test]
    async fn connect_uses_wal_and_foreign_keys() {
        let Ok(dir) = tempfile::tempdir() else { panic!("tempdir") };
        let url = format!("sqlite://{}", dir.path().join("wal.db").display());
        let Ok(store) = connect(&url).await else { panic!("connect") };
        let mode: Result<(String,), _> = sqlx::query_as("PRAGMA journal_mode").fetch_one(store.pool()).await;
        assert_eq!(mode.ok().map(|m| m.0.to_lowercase()), Some("wal".into()));
        let fk: Result<(i64,), _> = sqlx::query_as("PRAGMA foreign_keys").fetch_one(store.pool()).await;
        assert_eq!(fk.ok().map(|f| f.0), Some(1));
        store.close().await;
    }

    #[test]
    fn relative_paths_stay_relative_to_the_working_directory() {
        let Ok(options) = SqliteConnectOptions::from_str("sqlite://data/callsign.db") else { panic!("parse") };
        assert_eq!(options.get_filename(), Path::new("data/callsign.db"));
        let Ok(options) = SqliteConnectOptions::from_str("sqlite:///var/lib/callsign.db") else { panic!("parse") };
        assert_eq!(options.get_filename(), Path::new("/var/lib/callsign.db"));
    }

    #[tokio::test]
    async fn in_memory_is_shared_by_the_pool_and_pending_migrations_are_reported() {
        let Ok(store) = connect("sqlite::memory:").await else { panic!("connect") };
        match store.check_ready().await {
            Err(StoreError::Other(m)) => assert_eq!(m, "6 migrations pending"),
            other => panic!("expected pending migrations, got {other:?}"),
        }
        assert!(store.migrate().await.is_ok());
        assert!(store.check_ready().await.is_ok());
        // A second connection sees the same tables.
        let (a, b) = (store.pool().acquire().await, store.pool().acquire().await);
        let (Ok(mut a), Ok(mut b)) = (a, b) else { panic!("acquire") };
        let n: Result<(i64,), _> = sqlx::query_as("SELECT COUNT(*) FROM users").fetch_one(&mut *b).await;
        assert_eq!(n.ok(), Some((0,)));
        let n: Result<(i64,), _> = sqlx::query_as("SELECT COUNT(*) FROM clients").fetch_one(&mut *a).await;
        assert_eq!(n.ok(), Some((0,)));
    }

    #[tokio::test]
    async fn other_schemes_are_refused() {
        assert!(matches!(connect("postgres://u@h/db").await, Err(StoreError::Other(_))));
    }
}
