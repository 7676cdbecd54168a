//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while talking to a partner, deciding, recording or syncing.
///
/// Variants say *where* it went wrong, so that the sync engine can tell a retryable failure
/// ([`Error::is_retryable`]) from one that needs a person (bad configuration, a partner that
/// refuses our credentials, a tampered ledger).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable (bad URL, missing secret, unreadable CA bundle, ...).
    #[error("configuration: {0}")]
    Config(String),
    /// TLS setup failed (certificate or key unusable).
    #[error("TLS: {0}")]
    Tls(String),
    /// The request could not be sent or the response not received (connection refused or cut,
    /// timeout, TLS handshake or certificate verification failure).
    #[error("transport: {0}")]
    Transport(#[source] reqwest::Error),
    /// The partner answered with an HTTP error status; `message` is the TAXII error's title and
    /// description when the body carried one.
    #[error("HTTP {status} from {url}: {message}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The URL requested.
        url: String,
        /// What the partner said.
        message: String,
        /// The `Retry-After` the partner asked for (429, 503), in seconds form.
        retry_after: Option<std::time::Duration>,
    },
    /// The response body exceeded the configured cap; it was not read further.
    #[error("response from {url} exceeds the {limit}-byte cap")]
    TooLarge {
        /// The URL requested.
        url: String,
        /// The cap, in bytes.
        limit: u64,
    },
    /// The response was not what TAXII 2.1 prescribes (wrong media type, malformed JSON, missing
    /// property, unparsable header).
    #[error("malformed response from {url}: {reason}")]
    Malformed {
        /// The URL requested.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// A single object is larger than the partner's `max_content_length`: it can never be sent.
    #[error(
        "object {id} ({size} bytes in an envelope) exceeds the partner's max_content_length of {limit} bytes"
    )]
    ObjectTooLarge {
        /// Object id.
        id: String,
        /// Size of the smallest envelope holding it.
        size: u64,
        /// The partner's limit.
        limit: u64,
    },
    /// A status resource did not complete in time, or reported failures that are not explained by
    /// the object already being present.
    #[error("push incomplete: {0}")]
    Push(String),
    /// The local object store failed.
    #[error("store: {0}")]
    Store(#[from] kizuna_store::StoreError),
    /// The sync state / ledger database failed.
    #[error("sync database: {0}")]
    Database(#[from] rusqlite::Error),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The egress ledger is not a valid chain.
    #[error("ledger: {0}")]
    Ledger(String),
    /// The egress ledger's storage failed.
    #[error(transparent)]
    LedgerStorage(#[from] kizuna_policy::ledger::LedgerError),
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
}

impl Error {
    /// How long the partner asked us to wait before trying again, if it did.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Error::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether trying again later may succeed: transport failures, 5xx, 429 and 408, malformed
    /// responses and incomplete pushes. Authentication, authorization, validation and configuration errors are
    /// not retried: repeating them only fills the partner's logs.
    pub fn is_retryable(&self) -> bool {
        match self {
            // A body over the cap would be just as large again; the pull engine asks for smaller
            // pages instead.
            Error::Transport(_) | Error::Push(_) | Error::Malformed { .. } => true,
            Error::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            _ => false,
        }
    }
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
