//! Store errors.

use thiserror::Error;

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Why a store operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The thing named does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The thing to create exists already.
    #[error("conflict: {0}")]
    Conflict(String),
    /// An argument is not acceptable (bad name, bad id).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// The data directory could not be used.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Stored data could not be read back (corruption or a newer schema).
    #[error("corrupt store: {0}")]
    Corrupt(String),
}
