//! Errors of the sensors and the matcher.

use std::path::PathBuf;

/// Why an input, or one item of it, could not be turned into an observation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path being read (`-` for standard input).
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// One line of a log could not be mapped; the source goes on with the next line.
    #[error("{source_name}: {reason}")]
    BadLine {
        /// `PATH:LINE`.
        source_name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A message could not be parsed at all (no headers, or the parser gave up).
    #[error("{source_name}: not a mail message")]
    NotMail {
        /// The message's source name.
        source_name: String,
    },
    /// An indicator file could not be read as STIX.
    #[error("indicators: {0}")]
    Indicators(String),
}
