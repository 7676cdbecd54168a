//! The syntax tree and its canonical printer.
//!
//! The tree keeps what the pattern means and nothing of how it was spelled: no comments, no
//! `==`/`<>` aliases. `AND`, `OR` and `FOLLOWEDBY` are n-ary: a chain `a OR b OR c` is one node
//! with three operands (all three operators are associative, `FOLLOWEDBY` read left to right),
//! so the long `OR` lists of indicator feeds stay one level deep; explicit parentheses around a
//! chain of the same operator are kept as a nested node. [`fmt::Display`] prints the canonical form: keywords upper case, one space around
//! operators, parentheses only where precedence requires them, strings re-escaped, timestamps in
//! UTC with the shortest exact fraction. Parsing the printed form gives back an equal tree.

use std::fmt;

use crate::timestamp::Timestamp;

/// An observation expression: the level of the pattern above the square brackets.
#[derive(Debug, Clone, PartialEq)]
pub enum ObservationExpr {
    /// `[ comparison ]`: one observation whose objects satisfy the comparison expression.
    Comparison(ComparisonExpr),
    /// `a AND b AND ...` (two or more): all, bound to different observations.
    And(Vec<ObservationExpr>),
    /// `a OR b OR ...` (two or more): one of them.
    Or(Vec<ObservationExpr>),
    /// `a FOLLOWEDBY b FOLLOWEDBY ...` (two or more): all, each operand's observations not
    /// earlier than those of every operand before it.
    FollowedBy(Vec<ObservationExpr>),
    /// A qualified expression.
    Qualified(Box<ObservationExpr>, Qualifier),
}

/// A qualifier of an observation expression.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Qualifier {
    /// `WITHIN n SECONDS`, kept in nanoseconds (positive).
    Within {
        /// The window length in nanoseconds.
        nanos: u128,
    },
    /// `REPEATS n TIMES` (n ≥ 1).
    Repeats(u32),
    /// `START t'..' STOP t'..'`.
    StartStop {
        /// Inclusive start.
        start: Timestamp,
        /// Exclusive stop.
        stop: Timestamp,
    },
}

/// A comparison expression: the level inside square brackets.
#[derive(Debug, Clone, PartialEq)]
pub enum ComparisonExpr {
    /// All operands (two or more) hold for the same object.
    And(Vec<ComparisonExpr>),
    /// One of the operands (two or more) holds.
    Or(Vec<ComparisonExpr>),
    /// One property test.
    Test(Comparison),
}

/// One property test: `path [NOT] operator operand`, or `[NOT] EXISTS path`.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The object path on the left.
    pub path: ObjectPath,
    /// Whether `NOT` negates the operator.
    pub negated: bool,
    /// The operator and its right-hand side.
    pub op: Operator,
}

/// Comparison operators with their operands.
#[derive(Debug, Clone, PartialEq)]
pub enum Operator {
    /// `=`
    Eq(Constant),
    /// `!=`
    Neq(Constant),
    /// `<`
    Lt(Constant),
    /// `<=`
    Le(Constant),
    /// `>`
    Gt(Constant),
    /// `>=`
    Ge(Constant),
    /// `IN (..)`; all members have one type (integers and floats mix).
    In(Vec<Constant>),
    /// `LIKE '..'` with SQL wildcards `%` and `_`.
    Like(String),
    /// `MATCHES '..'`, a PCRE regular expression.
    Matches(String),
    /// `ISSUBSET '..'`: the property's address or network lies inside the operand network.
    IsSubset(String),
    /// `ISSUPERSET '..'`: the operand address or network lies inside the property's network.
    IsSuperset(String),
    /// `EXISTS`: the path selects at least one value.
    Exists,
}

/// A literal constant.
#[derive(Debug, Clone, PartialEq)]
pub enum Constant {
    /// A string (escapes decoded).
    Str(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// `true` or `false`.
    Bool(bool),
    /// `b'..'` (base64), decoded.
    Binary(Vec<u8>),
    /// `h'..'` (hex), decoded.
    Hex(Vec<u8>),
    /// `t'..'`.
    Timestamp(Timestamp),
}

impl Constant {
    /// The bytes of a binary or hex constant.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Constant::Binary(b) | Constant::Hex(b) => Some(b),
            _ => None,
        }
    }
}

/// `type:step.step[0]...`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectPath {
    /// The SCO type, e.g. `file`.
    pub object_type: String,
    /// The steps, first one always a [`PathStep::Key`].
    pub steps: Vec<PathStep>,
}

/// One step of an object path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathStep {
    /// A property name; `_ref`/`_refs` names dereference.
    Key(String),
    /// A list index; negative indexes select nothing.
    Index(i64),
    /// `[*]`: every element of a list.
    AnyIndex,
}

fn is_plain_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !is_keyword(s)
}

fn is_keyword(s: &str) -> bool {
    matches!(
        s,
        "AND"
            | "OR"
            | "NOT"
            | "FOLLOWEDBY"
            | "LIKE"
            | "MATCHES"
            | "ISSUBSET"
            | "ISSUPERSET"
            | "EXISTS"
            | "LAST"
            | "IN"
            | "START"
            | "STOP"
            | "SECONDS"
            | "true"
            | "false"
            | "WITHIN"
            | "REPEATS"
            | "TIMES"
    )
}

pub(crate) fn write_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("'")?;
    for c in s.chars() {
        match c {
            '\'' => f.write_str("\\'")?,
            '\\' => f.write_str("\\\\")?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("'")
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl fmt::Display for Constant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Constant::Str(s) => write_string(f, s),
            Constant::Int(i) => write!(f, "{i}"),
            Constant::Float(x) => {
                // Debug of f64 is the shortest text that reads back to the same value; the
                // grammar has no exponent, so spell those out in full decimal.
                let s = format!("{x:?}");
                if s.contains('e') || s.contains("inf") || s.contains("NaN") {
                    let full = format!("{x:.400}");
                    let t = full.trim_end_matches('0');
                    let t = if t.ends_with('.') {
                        format!("{t}0")
                    } else {
                        t.to_string()
                    };
                    f.write_str(&t)
                } else {
                    f.write_str(&s)
                }
            }
            Constant::Bool(b) => write!(f, "{b}"),
            Constant::Binary(b) => write!(f, "b'{}'", base64_encode(b)),
            Constant::Hex(b) => {
                f.write_str("h'")?;
                for byte in b {
                    write!(f, "{byte:02x}")?;
                }
                f.write_str("'")
            }
            Constant::Timestamp(t) => write!(f, "t'{t}'"),
        }
    }
}

impl fmt::Display for ObjectPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.object_type)?;
        for (i, step) in self.steps.iter().enumerate() {
            match step {
                PathStep::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if is_plain_ident(k) {
                        f.write_str(k)?;
                    } else {
                        write_string(f, k)?;
                    }
                }
                PathStep::Index(n) => write!(f, "[{n}]")?,
                PathStep::AnyIndex => f.write_str("[*]")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let not = if self.negated { "NOT " } else { "" };
        if let Operator::Exists = self.op {
            return write!(f, "{not}EXISTS {}", self.path);
        }
        write!(f, "{} {not}", self.path)?;
        match &self.op {
            Operator::Eq(c) => write!(f, "= {c}"),
            Operator::Neq(c) => write!(f, "!= {c}"),
            Operator::Lt(c) => write!(f, "< {c}"),
            Operator::Le(c) => write!(f, "<= {c}"),
            Operator::Gt(c) => write!(f, "> {c}"),
            Operator::Ge(c) => write!(f, ">= {c}"),
            Operator::In(set) => {
                f.write_str("IN (")?;
                for (i, c) in set.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{c}")?;
                }
                f.write_str(")")
            }
            Operator::Like(s) => {
                f.write_str("LIKE ")?;
                write_string(f, s)
            }
            Operator::Matches(s) => {
                f.write_str("MATCHES ")?;
                write_string(f, s)
            }
            Operator::IsSubset(s) => {
                f.write_str("ISSUBSET ")?;
                write_string(f, s)
            }
            Operator::IsSuperset(s) => {
                f.write_str("ISSUPERSET ")?;
                write_string(f, s)
            }
            Operator::Exists => Ok(()),
        }
    }
}

impl ComparisonExpr {
    fn precedence(&self) -> u8 {
        match self {
            ComparisonExpr::Or(..) => 1,
            ComparisonExpr::And(..) => 2,
            ComparisonExpr::Test(_) => 3,
        }
    }

    fn write_operand(&self, f: &mut fmt::Formatter<'_>, min: u8) -> fmt::Result {
        if self.precedence() < min {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

impl fmt::Display for ComparisonExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // An operand of the same operator was parenthesised (else the chain would be flat).
        let (items, sep, min) = match self {
            ComparisonExpr::Or(items) => (items, " OR ", 2),
            ComparisonExpr::And(items) => (items, " AND ", 3),
            ComparisonExpr::Test(c) => return write!(f, "{c}"),
        };
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                f.write_str(sep)?;
            }
            item.write_operand(f, min)?;
        }
        Ok(())
    }
}

impl ObservationExpr {
    fn precedence(&self) -> u8 {
        match self {
            ObservationExpr::FollowedBy(..) => 1,
            ObservationExpr::Or(..) => 2,
            ObservationExpr::And(..) => 3,
            ObservationExpr::Qualified(..) | ObservationExpr::Comparison(_) => 4,
        }
    }

    fn write_operand(&self, f: &mut fmt::Formatter<'_>, min: u8) -> fmt::Result {
        if self.precedence() < min {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

fn write_seconds(f: &mut fmt::Formatter<'_>, nanos: u128) -> fmt::Result {
    let whole = nanos / 1_000_000_000;
    let frac = nanos % 1_000_000_000;
    if frac == 0 {
        write!(f, "{whole}")
    } else {
        let s = format!("{frac:09}");
        write!(f, "{whole}.{}", s.trim_end_matches('0'))
    }
}

impl fmt::Display for Qualifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Qualifier::Within { nanos } => {
                f.write_str("WITHIN ")?;
                write_seconds(f, *nanos)?;
                f.write_str(" SECONDS")
            }
            Qualifier::Repeats(n) => write!(f, "REPEATS {n} TIMES"),
            Qualifier::StartStop { start, stop } => write!(f, "START t'{start}' STOP t'{stop}'"),
        }
    }
}

impl fmt::Display for ObservationExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (items, sep, min) = match self {
            ObservationExpr::Comparison(c) => return write!(f, "[{c}]"),
            ObservationExpr::Qualified(inner, q) => {
                inner.write_operand(f, 4)?;
                return write!(f, " {q}");
            }
            ObservationExpr::FollowedBy(items) => (items, " FOLLOWEDBY ", 2),
            ObservationExpr::Or(items) => (items, " OR ", 3),
            ObservationExpr::And(items) => (items, " AND ", 4),
        };
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                f.write_str(sep)?;
            }
            item.write_operand(f, min)?;
        }
        Ok(())
    }
}
