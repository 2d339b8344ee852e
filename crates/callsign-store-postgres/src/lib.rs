//! The PostgreSQL backend, for several nodes sharing one database.
//!
//! The SQL and the `Store` impl are shared with SQLite (`callsign_store::sql`); this crate owns the pool setup,
//! its migrations and the mapping of PostgreSQL errors. Migrations from several nodes at once are serialised by
//! sqlx's migrator, which holds a PostgreSQL advisory lock while it runs.
#![forbid(unsafe_code)]

use std::str::FromStr;
use std::time::Duration;

use callsign_store::{StoreError, StoreResult};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// `unique_violation`
const PG_UNIQUE_VIOLATION: &str = "23505";

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
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
        Self::open(options).await
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
        Self::open(options.options([("search_path", schema)])).await
    }

    async fn open(options: PgConnectOptions) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(connect_error)?;
        Ok(Self { pool })
    }

    /// The underlying pool, for tests and tools.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Close every connection (waits for those in use).
    pub async fn close(&self) {
        self.pool.close().await;
    }
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
        other => other,
    }
}

callsign_store::impl_sqlx_store! {
    store: PostgresStore,
    backend: "postgres",
    migrator: MIGRATOR,
    map_error: map_error,
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
