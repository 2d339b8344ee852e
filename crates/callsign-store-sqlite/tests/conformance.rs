//! The store conformance suite on SQLite: a fresh database file in its own temp dir for every test.
use callsign_store::Store;
use callsign_store_sqlite::SqliteStore;
use callsign_testkit::Fixture;
use tempfile::TempDir;

struct TempSqlite {
    store: SqliteStore,
    /// Deleted when the test ends; kept alive until then.
    _dir: TempDir,
}

impl Fixture for TempSqlite {
    fn store(&self) -> &dyn Store {
        &self.store
    }

    async fn finish(self) {
        self.store.close().await;
    }
}

async fn fresh() -> Option<TempSqlite> {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot make a temp dir: {e}"));
    let url = format!("sqlite://{}", dir.path().join("callsign.db").display());
    let store = SqliteStore::connect(&url).await.unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    store.migrate().await.unwrap_or_else(|e| panic!("cannot migrate {url}: {e}"));
    Some(TempSqlite { store, _dir: dir })
}

callsign_testkit::conformance_suite!(fresh);

/// The same suite on `sqlite::memory:` (one shared-cache database per store, as the server's tests use it): its
/// locking differs from a file's (table locks instead of the busy handler), so the concurrency rules are checked
/// there too.
mod in_memory {
    use super::*;

    struct Memory(SqliteStore);

    impl Fixture for Memory {
        fn store(&self) -> &dyn Store {
            &self.0
        }

        async fn finish(self) {
            self.0.close().await;
        }
    }

    async fn fresh() -> Option<Memory> {
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap_or_else(|e| panic!("cannot open: {e}"));
        store.migrate().await.unwrap_or_else(|e| panic!("cannot migrate: {e}"));
        Some(Memory(store))
    }

    callsign_testkit::conformance_suite!(fresh);
}

/// A rolling upgrade: a newer release has applied a migration this binary does not know. The older node still
/// migrates (nothing to do), is ready, and works.
#[tokio::test]
async fn a_migration_of_a_newer_release_does_not_stop_this_one() {
    let Some(fx) = fresh().await else { return };
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101000000, 'from a newer release', 1, x'00', 0)",
    )
    .execute(fx.store.pool())
    .await
    .unwrap_or_else(|e| panic!("cannot record the newer migration: {e}"));
    fx.store.migrate().await.unwrap_or_else(|e| panic!("an older node must still start: {e}"));
    fx.store.check_ready().await.unwrap_or_else(|e| panic!("and be ready: {e}"));
    fx.finish().await;
}
