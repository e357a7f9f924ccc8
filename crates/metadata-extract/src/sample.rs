//! The bundled sample catalog that `outpost run` extracts when given no connector: a SQLite
//! database built from `samples/sample-catalog.sql`, so the first command a newcomer runs
//! needs no server, cluster or cloud.

use std::path::Path;

use crate::{ExtractError, WriteError};

/// The sample catalog's generator, built into the binary.
pub const SAMPLE_CATALOG_SQL: &str = include_str!("../../../samples/sample-catalog.sql");

/// Builds the sample catalog into a new SQLite database at `db`.
pub fn build(db: &Path) -> Result<(), ExtractError> {
    let connection = rusqlite::Connection::open(db).map_err(|e| WriteError::Io {
        path: db.to_owned(),
        source: std::io::Error::other(e),
    })?;
    connection
        .execute_batch(SAMPLE_CATALOG_SQL)
        .map_err(|e| ExtractError::Query {
            target: "samples/sample-catalog.sql".to_owned(),
            what: "the sample catalog",
            connection_lost: false,
            source: Box::new(e),
        })
}
