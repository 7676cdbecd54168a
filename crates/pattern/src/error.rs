//! Typed errors: one enum per failure domain (parsing, loading observations, evaluating).

use std::fmt;

/// Where in the pattern text something happened: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// 1-based line number.
    pub line: u32,
    /// 1-based column, counted in Unicode scalar values.
    pub column: u32,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Why a pattern was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The parser needed one thing and found another.
    #[error("expected {expected}, found {found}")]
    Unexpected {
        /// What the grammar allows here.
        expected: String,
        /// What the text holds here.
        found: String,
    },
    /// A literal is malformed (bad escape, bad base64, impossible date, ...).
    #[error("invalid {what}: {detail}")]
    InvalidLiteral {
        /// The kind of literal (`string`, `timestamp`, ...).
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The pattern is syntactically fine but violates a rule of the specification.
    #[error("{0}")]
    Semantic(String),
    /// A configured limit was exceeded; the pattern is rejected, never executed.
    #[error("limit exceeded: {what} is {actual}, the maximum is {max}")]
    Limit {
        /// The limited quantity.
        what: &'static str,
        /// The maximum allowed.
        max: usize,
        /// The value found (or a lower bound of it).
        actual: usize,
    },
}

/// A pattern that could not be parsed or compiled, with the position of the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{position}: {kind}")]
pub struct ParseError {
    /// Where the problem is.
    pub position: Position,
    /// What the problem is.
    pub kind: ParseErrorKind,
}

/// Input observations that cannot be used for matching.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ObservationError {
    /// The top-level JSON has the wrong shape.
    #[error("invalid input: {0}")]
    Shape(String),
    /// An observed-data object lacks a property the matcher needs or has a bad value.
    #[error("observed-data {id}: {detail}")]
    ObservedData {
        /// The id of the observed-data (or its position when it has none).
        id: String,
        /// What is wrong.
        detail: String,
    },
}

/// Evaluation stopped before a definite answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// The search for a binding of observations to the pattern took more steps than allowed.
    #[error("search limit of {0} steps exceeded")]
    SearchLimit(u64),
    /// A backtracking regular expression hit its backtrack limit.
    #[error("regular expression {0:?} exceeded its backtracking limit")]
    RegexLimit(String),
}
