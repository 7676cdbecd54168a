//! Errors of the STIX model.

use thiserror::Error;

/// A malformed STIX identifier.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid STIX identifier {text:?}: {reason}")]
pub struct IdError {
    /// The text that was rejected.
    pub text: String,
    /// Why it was rejected.
    pub reason: &'static str,
}

impl IdError {
    pub(crate) fn new(text: &str, reason: &'static str) -> Self {
        // Hostile input can be megabytes long; an error message needs only its start.
        let text: String = text.chars().take(120).collect();
        Self { text, reason }
    }
}

/// A malformed STIX timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid STIX timestamp {text:?}: {reason}")]
pub struct TimestampError {
    /// The text that was rejected.
    pub text: String,
    /// Why it was rejected.
    pub reason: &'static str,
}

impl TimestampError {
    pub(crate) fn new(text: &str, reason: &'static str) -> Self {
        let text: String = text.chars().take(64).collect();
        Self { text, reason }
    }
}

/// An unknown TLP level name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown TLP level {0:?}: expected clear, green, amber, amber+strict or red")]
pub struct TlpError(pub String);
