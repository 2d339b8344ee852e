//! The one place that picks a storage backend, from the database URL's scheme.
use std::sync::Arc;

use callsign_store::{Store, StoreError};

pub fn check_scheme(url: &str) -> Result<(), String> {
    let scheme = url.split_once("://").map(|(s, _)| s).or_else(|| url.split_once(':').map(|(s, _)| s));
    match scheme {
        Some("sqlite") | Some("postgres") | Some("postgresql") => Ok(()),
        Some(other) => Err(format!(
            "unknown database scheme `{other}`; use sqlite://PATH (embedded) or postgres://USER@HOST:PORT/DB"
        )),
        None => Err(format!(
            "`{}` is not a database URL; use sqlite://PATH (embedded) or postgres://USER@HOST:PORT/DB",
            crate::config::redact_url(url)
        )),
    }
}

/// Connect to the backend the URL names. Migrations are not run here.
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    check_scheme(url).map_err(StoreError::Other)?;
    if url.starts_with("sqlite:") {
        Ok(Arc::new(callsign_store_sqlite::SqliteStore::connect(url).await?))
    } else {
        Ok(Arc::new(callsign_store_postgres::PostgresStore::connect(url).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        assert!(check_scheme("sqlite://./x.db").is_ok());
        assert!(check_scheme("sqlite::memory:").is_ok());
        assert!(check_scheme("postgres://u@h/db").is_ok());
        assert!(check_scheme("postgresql://u@h/db").is_ok());
        let e = check_scheme("mysql://u@h/db").unwrap_err();
        assert!(e.contains("`mysql`"), "{e}");
        assert!(check_scheme("callsign.db").is_err());
    }
}
