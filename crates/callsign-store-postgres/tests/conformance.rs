//! The store conformance suite on PostgreSQL: a fresh schema for every test, in the database that
//! `CALLSIGN_TEST_POSTGRES_URL` names. Without that variable the tests are skipped, except in CI (`CI=true`),
//! where they fail.
use std::time::Duration;

use callsign_domain::Timestamp;
use callsign_domain::seal::Sealed;
use callsign_store::{Channel, DeliveryJob, JobStatus, JobStore, Store};
use callsign_store_postgres::PostgresStore;
use callsign_testkit::Fixture;

const URL_VAR: &str = "CALLSIGN_TEST_POSTGRES_URL";

/// The database URL, or None when the tests should be skipped.
fn database_url() -> Option<String> {
    callsign_testkit::service_url(URL_VAR)
}

/// Unique across tests in this process and across runs (leftover schemas from failed runs are not reused).
fn schema_name() -> String {
    callsign_testkit::unique_name("cs_test")
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
        Err(callsign_store::StoreError::Other(m)) => assert_eq!(m, "6 migrations pending"),
        other => panic!("expected pending migrations, got {other:?}"),
    }
    TestSchema { store, schema }.finish().await;
}

// --- several nodes sharing one database: each store below has its own pool, as separate processes would ---

fn job(id: &str) -> DeliveryJob {
    DeliveryJob {
        id: id.to_owned(),
        channel: Channel::Sms,
        user_id: None,
        enrollment_id: None,
        challenge_id: None,
        provider: "auth0".into(),
        payload: Some(Sealed { key_id: "k1".into(), nonce: vec![1; 12], ciphertext: b"sealed".to_vec() }),
        status: JobStatus::Pending,
        attempts: 0,
        max_attempts: 5,
        run_at: Timestamp::from_millis(1_000),
        claimed_by: None,
        claim_expires_at: None,
        last_error: None,
        details: serde_json::json!({}),
        created_at: Timestamp::from_millis(1_000),
        finished_at: None,
    }
}

async fn two_nodes() -> Option<(PostgresStore, PostgresStore, String)> {
    let url = database_url()?;
    let schema = schema_name();
    let a = connect(&url, &schema).await;
    a.migrate().await.unwrap_or_else(|e| panic!("cannot migrate schema {schema}: {e}"));
    let b = connect(&url, &schema).await;
    Some((a, b, schema))
}

#[allow(clippy::disallowed_methods)] // measuring how long a wait took, not telling the time
fn stopwatch() -> std::time::Instant {
    std::time::Instant::now()
}

/// Workers on two nodes, in parallel threads, claiming from one outbox: every job is handed out exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_are_claimed_once_across_nodes() {
    let Some((a, b, schema)) = two_nodes().await else { return };
    const JOBS: usize = 80;
    for n in 0..JOBS {
        a.enqueue_job(&job(&format!("job-{n:02}"))).await.unwrap_or_else(|e| panic!("enqueue: {e}"));
    }
    let mut workers = Vec::new();
    for w in 0..6 {
        let node = if w % 2 == 0 { a.clone() } else { b.clone() };
        workers.push(tokio::spawn(async move {
            let name = format!("node-{}-worker-{w}", w % 2);
            let mut mine = Vec::new();
            loop {
                let claimed = node
                    .claim_jobs(&name, Timestamp::from_millis(5_000), 60_000, 2)
                    .await
                    .unwrap_or_else(|e| panic!("claim: {e}"));
                if claimed.is_empty() {
                    return mine;
                }
                mine.extend(claimed.into_iter().map(|j| j.id));
            }
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap_or_else(|e| panic!("worker panicked: {e}")));
    }
    assert_eq!(all.len(), JOBS, "claimed {} times for {JOBS} jobs", all.len());
    all.sort();
    all.dedup();
    assert_eq!(all.len(), JOBS, "a job was handed to two workers");
    b.close().await;
    TestSchema { store: a, schema }.finish().await;
}

/// A job enqueued on one node wakes a worker waiting on another (LISTEN/NOTIFY), and not one in another schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_on_one_node_wakes_another() {
    let Some((a, b, schema)) = two_nodes().await else { return };
    let Some(url) = database_url() else { return };
    let other_schema = schema_name();
    let other = connect(&url, &other_schema).await;

    let waiter = tokio::spawn({
        let b = b.clone();
        async move {
            let started = stopwatch();
            b.wait_for_jobs(10_000).await;
            started.elapsed()
        }
    });
    let bystander = tokio::spawn({
        let other = other.clone();
        async move {
            let started = stopwatch();
            other.wait_for_jobs(1_500).await;
            started.elapsed()
        }
    });
    // Let both start listening, then enqueue on node a.
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.enqueue_job(&job("j1")).await.unwrap_or_else(|e| panic!("enqueue: {e}"));
    let waited = waiter.await.unwrap_or_else(|e| panic!("waiter panicked: {e}"));
    assert!(waited < Duration::from_secs(2), "node b was not woken: {waited:?}");
    let idle = bystander.await.unwrap_or_else(|e| panic!("bystander panicked: {e}"));
    assert!(idle >= Duration::from_millis(1_400), "another schema's store was woken: {idle:?}");

    TestSchema { store: other, schema: other_schema }.finish().await;
    b.close().await;
    TestSchema { store: a, schema }.finish().await;
}

/// Closing a store while a worker waits on its listener connection does not hang.
#[tokio::test]
async fn close_while_waiting_for_jobs() {
    let Some((a, b, schema)) = two_nodes().await else { return };
    let waiter = tokio::spawn({
        let b = b.clone();
        async move { b.wait_for_jobs(30_000).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let closed = tokio::time::timeout(Duration::from_secs(5), b.close()).await;
    assert!(closed.is_ok(), "close() hung on the listener's connection");
    waiter.abort();
    TestSchema { store: a, schema }.finish().await;
}

/// A rolling upgrade: a newer release has applied a migration this binary does not know. The older node still
/// migrates (nothing to do), is ready, and works.
#[tokio::test]
async fn a_migration_of_a_newer_release_does_not_stop_this_one() {
    let Some(fx) = fresh().await else { return };
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101000000, 'from a newer release', true, '\\x00', 0)",
    )
    .execute(fx.store.pool())
    .await
    .unwrap_or_else(|e| panic!("cannot record the newer migration: {e}"));
    fx.store.migrate().await.unwrap_or_else(|e| panic!("an older node must still start: {e}"));
    fx.store.check_ready().await.unwrap_or_else(|e| panic!("and be ready: {e}"));
    fx.finish().await;
}

/// An event whose transaction commits after a later one's is not stepped over: a log stream's reader sees
/// neither until the earlier transaction ends, then both, in `(tx, seq)` order.
#[tokio::test]
async fn log_events_committing_late_are_not_stepped_over() {
    use callsign_store::{LogCursor, LogStore, LogStreamStore};
    let Some(fixture) = fresh().await else { return };
    let store = &fixture.store;
    let insert = "INSERT INTO logs (log_id, date, event_type, user_id, client_id, data) \
                  VALUES ($1, 1, 's', NULL, NULL, '{}')";
    store.insert_log(&event("00001")).await.unwrap_or_else(|e| panic!("insert: {e}"));
    // Other tests' transactions (on this cluster) hold the horizon back for a moment: wait them out.
    let first = seen_after(store, LogCursor::default(), 1).await;
    // A slow writer takes its transaction first…
    let mut slow = store.pool().begin().await.unwrap_or_else(|e| panic!("begin: {e}"));
    sqlx::query(insert).bind("00002").execute(&mut *slow).await.unwrap_or_else(|e| panic!("slow insert: {e}"));
    // …a fast one commits after it started.
    store.insert_log(&event("00003")).await.unwrap_or_else(|e| panic!("insert: {e}"));
    let seen = store.list_logs_after(first[0].cursor, 10).await.unwrap_or_else(|e| panic!("list: {e}"));
    assert!(seen.is_empty(), "nothing is handed out while an older transaction may still add an event: {seen:?}");
    slow.commit().await.unwrap_or_else(|e| panic!("commit: {e}"));
    let seen = seen_after(store, first[0].cursor, 2).await;
    let ids: Vec<&str> = seen.iter().map(|e| e.event.log_id.as_str()).collect();
    assert_eq!(ids, ["00002", "00003"]);
    fixture.finish().await;
}

/// The events after `cursor`, once there are `n` of them (other transactions on the cluster end within seconds).
async fn seen_after(
    store: &PostgresStore,
    cursor: callsign_store::LogCursor,
    n: usize,
) -> Vec<callsign_store::OrderedLogEvent> {
    use callsign_store::LogStreamStore;
    for _ in 0..500 {
        let seen = store.list_logs_after(cursor, 10).await.unwrap_or_else(|e| panic!("list: {e}"));
        if seen.len() >= n {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("fewer than {n} events after {cursor:?}");
}

fn event(id: &str) -> callsign_store::LogEvent {
    callsign_store::LogEvent {
        log_id: id.to_owned(),
        date: Timestamp::from_millis(1),
        event_type: "s".into(),
        user_id: None,
        client_id: None,
        body: callsign_store::LogBody::default(),
    }
}
