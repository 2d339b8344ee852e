//! The store conformance suite on PostgreSQL: a fresh schema for every test, in the database that
//! `CALLSIGN_TEST_POSTGRES_URL` names. Without that variable the tests are skipped, except in CI (`CI=true`),
//! where they fail.
use std::sync::atomic::{AtomicU32, Ordering};

use callsign_store::Store;
use callsign_store_postgres::PostgresStore;
use callsign_testkit::Fixture;

const URL_VAR: &str = "CALLSIGN_TEST_POSTGRES_URL";

/// The database URL, or None when the tests should be skipped.
fn database_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => panic!("{URL_VAR} must be set in CI"),
        _ => {
            eprintln!("skipped: {URL_VAR} is not set");
            None
        }
    }
}

/// Unique across tests in this process and across runs (leftover schemas from failed runs are not reused).
fn schema_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    #[allow(clippy::disallowed_methods)] // only to make the name unique, not to tell the time
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("cs_test_{}_{nanos}_{n}", std::process::id())
}

struct TestSchema {
    store: PostgresStore,
    schema: String,
}

impl Fixture for TestSchema {
    fn store(&self) -> &dyn Store {
        &self.store
    }

    /// Drop the schema of a test that passed.
    async fn finish(self) {
        let drop = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema);
        if let Err(e) = sqlx::query(&drop).execute(self.store.pool()).await {
            eprintln!("could not drop schema {}: {e}", self.schema);
        }
        self.store.close().await;
    }
}

async fn connect(url: &str, schema: &str) -> PostgresStore {
    callsign_store_postgres::connect_with_schema(url, schema)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {URL_VAR} (schema {schema}): {e}"))
}

async fn fresh() -> Option<TestSchema> {
    let url = database_url()?;
    let schema = schema_name();
    let store = connect(&url, &schema).await;
    store.migrate().await.unwrap_or_else(|e| panic!("cannot migrate schema {schema}: {e}"));
    Some(TestSchema { store, schema })
}

callsign_testkit::conformance_suite!(fresh);

/// Several nodes starting at once all run the migrations; sqlx's advisory lock must make that safe.
#[tokio::test]
async fn concurrent_migrations_are_safe() {
    let Some(url) = database_url() else { return };
    let schema = schema_name();
    let stores = [connect(&url, &schema).await, connect(&url, &schema).await, connect(&url, &schema).await];
    let [a, b, c] = &stores;
    let (ra, rb, rc) = tokio::join!(a.migrate(), b.migrate(), c.migrate());
    for r in [ra, rb, rc] {
        r.unwrap_or_else(|e| panic!("concurrent migrate failed: {e}"));
    }
    for s in &stores {
        s.check_ready().await.unwrap_or_else(|e| panic!("not ready: {e}"));
    }
    TestSchema { store: a.clone(), schema }.finish().await;
    for s in &stores {
        s.close().await;
    }
}

/// Before migrating, a fresh schema reports its pending migrations.
#[tokio::test]
async fn unmigrated_schema_is_not_ready() {
    let Some(url) = database_url() else { return };
    let schema = schema_name();
    let store = connect(&url, &schema).await;
    match store.check_ready().await {
        Err(callsign_store::StoreError::Other(m)) => assert_eq!(m, "1 migration pending"),
        other => panic!("expected pending migrations, got {other:?}"),
    }
    TestSchema { store, schema }.finish().await;
}
