//! Index keys: what an index in front of the evaluator may look up to find the patterns an
//! observation could match, without evaluating every pattern.
//!
//! This is the one derivation of keys from a pattern: `kizuna pattern explain` prints it and
//! the detector's prefilter index (`kizuna-detect`) is built from it, so what a user is shown
//! is what the index uses.
//!
//! Each key states a property of one object, reached by an object path that is read exactly as
//! the evaluator reads it (a `_ref`/`_refs` step resolves inside the same observation). The
//! guarantee is one-sided and simple: *if the pattern matches a set of observations, at least
//! one object in them satisfies at least one of the pattern's keys.* An index may therefore skip
//! every pattern none of whose keys is hit and must still run the exact evaluator on the others.
//!
//! Keys are only what an index can look up in the JSON as it is: a value (hash table), a network
//! (per prefix length), a literal inside a string (one automaton pass) or, failing those, the
//! object type. So a test gets its object type as key when its value is not what the JSON
//! holds: a timestamp (many spellings compare equal as instants), a `_hex` or `_bin` property
//! (the evaluator decodes it to bytes), a negation, an order comparison, `EXISTS`, or a `LIKE`
//! or `MATCHES` operand without a required literal.

mod literal;

use std::fmt;

use crate::ast::{
    Comparison, ComparisonExpr, Constant, ObjectPath, ObservationExpr, Operator, PathStep,
};
use crate::net::Net;

/// One key: a cheap necessary condition on one object.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum IndexKey {
    /// The value at `path` equals `value` (strings compare exactly; binary constants may also
    /// equal strings whose characters are their bytes; integers and floats compare as numbers).
    /// Never a timestamp, never on a `_hex` or `_bin` property.
    Equals {
        /// Object path, type included.
        path: ObjectPath,
        /// The constant.
        value: Constant,
    },
    /// The address or network at `path` lies inside `net` (`ISSUBSET`).
    Network {
        /// Object path, type included.
        path: ObjectPath,
        /// The network, read as the evaluator reads it.
        net: Net,
    },
    /// The string at `path` contains `literal`: the longest run of literal characters of a
    /// `LIKE` operand (wherever its wildcards are), or one of the literals every match of a
    /// `MATCHES` regular expression contains (each such literal is a key of its own).
    Contains {
        /// Object path, type included.
        path: ObjectPath,
        /// The literal, never empty.
        literal: String,
    },
    /// An object of this type is present (every property test implies it).
    ObjectType(String),
}

impl IndexKey {
    /// The object type the key is about: an index that cannot use a key may always fall back
    /// to it.
    pub fn object_type(&self) -> &str {
        match self {
            IndexKey::Equals { path, .. }
            | IndexKey::Network { path, .. }
            | IndexKey::Contains { path, .. } => &path.object_type,
            IndexKey::ObjectType(t) => t,
        }
    }

    /// Rank of selectivity: lower is better.
    fn rank(&self) -> u8 {
        match self {
            IndexKey::Equals { .. } => 0,
            IndexKey::Network { .. } => 1,
            IndexKey::Contains { .. } => 2,
            IndexKey::ObjectType(_) => 3,
        }
    }
}

impl fmt::Display for IndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IndexKey::Equals { path, value } => write!(f, "equals {path} = {value}"),
            IndexKey::Network { path, net } => {
                let (ipv6, low, high) = net.range();
                if ipv6 {
                    let (l, h) = (
                        std::net::Ipv6Addr::from(low),
                        std::net::Ipv6Addr::from(high),
                    );
                    write!(f, "network {path} in {l} .. {h}")
                } else {
                    let l = std::net::Ipv4Addr::from((low >> 96) as u32);
                    let h = std::net::Ipv4Addr::from((high >> 96) as u32);
                    write!(f, "network {path} in {l} .. {h}")
                }
            }
            IndexKey::Contains { path, literal } => write!(f, "contains {path} {literal:?}"),
            IndexKey::ObjectType(t) => write!(f, "object type {t}"),
        }
    }
}

/// Alternatives: one of these keys holds whenever the expression holds.
type Keys = Vec<IndexKey>;

fn score(keys: &Keys) -> (u8, usize) {
    (
        keys.iter().map(IndexKey::rank).max().unwrap_or(u8::MAX),
        keys.len(),
    )
}

/// For a conjunction any operand's keys are necessary: keep the most selective.
fn better(a: Keys, b: Keys) -> Keys {
    if score(&b) < score(&a) { b } else { a }
}

/// For a disjunction every operand's keys are needed.
fn union(mut a: Keys, b: Keys) -> Keys {
    for k in b {
        if !a.contains(&k) {
            a.push(k);
        }
    }
    a
}

/// The longest run of literal characters of a `LIKE` operand: every match contains it.
fn like_literal(s: &str) -> &str {
    s.split(['%', '_']).max_by_key(|f| f.len()).unwrap_or("")
}

/// Whether values along the path are compared as the JSON holds them: `_hex` and `_bin`
/// properties are decoded to bytes by the evaluator.
fn raw_path(p: &ObjectPath) -> bool {
    !p.steps
        .iter()
        .any(|s| matches!(s, PathStep::Key(k) if k.ends_with("_hex") || k.ends_with("_bin")))
}

fn test_keys(c: &Comparison) -> Keys {
    let fallback = vec![IndexKey::ObjectType(c.path.object_type.clone())];
    if c.negated || !raw_path(&c.path) {
        return fallback;
    }
    let equals = |v: &Constant| {
        (!matches!(v, Constant::Timestamp(_))).then(|| IndexKey::Equals {
            path: c.path.clone(),
            value: v.clone(),
        })
    };
    let keys: Option<Keys> = match &c.op {
        Operator::Eq(v) => equals(v).map(|k| vec![k]),
        // An empty set matches nothing; the type key keeps it from reading as "unindexable".
        Operator::In(set) if !set.is_empty() => set.iter().map(equals).collect(),
        Operator::IsSubset(s) => Net::parse(s).map(|net| {
            vec![IndexKey::Network {
                path: c.path.clone(),
                net,
            }]
        }),
        Operator::Like(s) => {
            let literal = like_literal(s);
            (!literal.is_empty()).then(|| {
                vec![IndexKey::Contains {
                    path: c.path.clone(),
                    literal: literal.to_owned(),
                }]
            })
        }
        Operator::Matches(rx) => literal::required(rx).map(|lits| {
            lits.into_iter()
                .map(|literal| IndexKey::Contains {
                    path: c.path.clone(),
                    literal,
                })
                .collect()
        }),
        _ => None,
    };
    keys.unwrap_or(fallback)
}

fn comparison_keys(e: &ComparisonExpr) -> Keys {
    match e {
        ComparisonExpr::And(items) => items
            .iter()
            .map(comparison_keys)
            .reduce(better)
            .unwrap_or_default(),
        ComparisonExpr::Or(items) => items
            .iter()
            .map(comparison_keys)
            .reduce(union)
            .unwrap_or_default(),
        ComparisonExpr::Test(t) => test_keys(t),
    }
}

/// The keys of a whole pattern: one of them holds in every set of observations it matches.
pub(crate) fn pattern_keys(e: &ObservationExpr) -> Keys {
    match e {
        ObservationExpr::Comparison(c) => comparison_keys(c),
        ObservationExpr::And(items) | ObservationExpr::FollowedBy(items) => items
            .iter()
            .map(pattern_keys)
            .reduce(better)
            .unwrap_or_default(),
        ObservationExpr::Or(items) => items
            .iter()
            .map(pattern_keys)
            .reduce(union)
            .unwrap_or_default(),
        ObservationExpr::Qualified(a, _) => pattern_keys(a),
    }
}

/// The keys of every bracketed expression of a pattern together: an observation that
/// satisfies any one of them has a key among these, which is what a stream needs to keep it.
pub(crate) fn bracket_keys(e: &ObservationExpr) -> Keys {
    match e {
        ObservationExpr::Comparison(c) => comparison_keys(c),
        ObservationExpr::And(items)
        | ObservationExpr::Or(items)
        | ObservationExpr::FollowedBy(items) => items
            .iter()
            .map(bracket_keys)
            .reduce(union)
            .unwrap_or_default(),
        ObservationExpr::Qualified(a, _) => bracket_keys(a),
    }
}
