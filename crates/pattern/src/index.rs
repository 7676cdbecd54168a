//! Index keys: what an index in front of the evaluator may look up to find the patterns an
//! observation could match, without evaluating every pattern.
//!
//! Each key states a property of one object, reached by an object path that is read exactly as
//! the evaluator reads it (a `_ref`/`_refs` step resolves inside the same observation). The guarantee is one-sided and simple: *if the
//! pattern matches a set of observations, at least one object in them satisfies at least one of
//! the pattern's keys.* An index may therefore skip every pattern none of whose keys is hit and
//! must still run the exact evaluator on the others.

use std::fmt;

use crate::ast::{Comparison, ComparisonExpr, Constant, ObjectPath, ObservationExpr, Operator};
use crate::net::Net;

/// One key: a cheap necessary condition on one object.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum IndexKey {
    /// The object at `path` equals `value` (strings compare exactly; binary constants may also
    /// equal strings whose characters are their bytes; timestamps compare as instants).
    Equals {
        /// Object path, type included.
        path: ObjectPath,
        /// The constant.
        value: Constant,
    },
    /// The address or network at `path` lies in `[low, high]` (IPv4 as the top 32 bits).
    Network {
        /// Object path, type included.
        path: ObjectPath,
        /// Whether the range is IPv6.
        ipv6: bool,
        /// First address of the range.
        low: u128,
        /// Last address of the range.
        high: u128,
    },
    /// The string at `path` starts with `prefix` and ends with `suffix` (either may be empty).
    Affix {
        /// Object path, type included.
        path: ObjectPath,
        /// Literal start of every match.
        prefix: String,
        /// Literal end of every match.
        suffix: String,
    },
    /// Something exists at `path`.
    Exists {
        /// Object path, type included.
        path: ObjectPath,
    },
    /// An object of this type is present (every property test implies it).
    ObjectType(String),
}

impl IndexKey {
    /// Rank of selectivity: lower is better.
    fn rank(&self) -> u8 {
        match self {
            IndexKey::Equals { .. } => 0,
            IndexKey::Network { .. } => 1,
            IndexKey::Affix { .. } => 2,
            IndexKey::Exists { .. } => 3,
            IndexKey::ObjectType(_) => 4,
        }
    }
}

impl fmt::Display for IndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IndexKey::Equals { path, value } => write!(f, "equals {path} = {value}"),
            IndexKey::Network {
                path,
                ipv6,
                low,
                high,
            } => {
                if *ipv6 {
                    let (l, h) = (
                        std::net::Ipv6Addr::from(*low),
                        std::net::Ipv6Addr::from(*high),
                    );
                    write!(f, "network {path} in {l} .. {h}")
                } else {
                    let l = std::net::Ipv4Addr::from((*low >> 96) as u32);
                    let h = std::net::Ipv4Addr::from((*high >> 96) as u32);
                    write!(f, "network {path} in {l} .. {h}")
                }
            }
            IndexKey::Affix {
                path,
                prefix,
                suffix,
            } => write!(f, "affix {path} starts {prefix:?} ends {suffix:?}"),
            IndexKey::Exists { path } => write!(f, "exists {path}"),
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

fn better(a: Keys, b: Keys) -> Keys {
    if score(&b) < score(&a) { b } else { a }
}

fn union(mut a: Keys, b: Keys) -> Keys {
    for k in b {
        if !a.contains(&k) {
            a.push(k);
        }
    }
    a
}

fn like_affix(s: &str) -> (String, String) {
    let wild = |c: char| c == '%' || c == '_';
    let prefix: String = s.chars().take_while(|&c| !wild(c)).collect();
    if prefix.chars().count() == s.chars().count() {
        return (prefix, String::new());
    }
    let mut suffix: Vec<char> = s.chars().rev().take_while(|&c| !wild(c)).collect();
    suffix.reverse();
    (prefix, suffix.into_iter().collect())
}

fn test_keys(c: &Comparison) -> Keys {
    let fallback = vec![IndexKey::ObjectType(c.path.object_type.clone())];
    if c.negated {
        return fallback;
    }
    let path = c.path.clone();
    match &c.op {
        Operator::Eq(v) => vec![IndexKey::Equals {
            path,
            value: v.clone(),
        }],
        Operator::In(set) if !set.is_empty() => set
            .iter()
            .map(|v| IndexKey::Equals {
                path: path.clone(),
                value: v.clone(),
            })
            .collect(),
        // An empty set matches nothing; no key is needed, but an empty list would read as
        // "unindexable", so keep the type.
        Operator::In(_) => fallback,
        Operator::IsSubset(s) => match Net::parse(s) {
            Some(n) => {
                let (ipv6, low, high) = n.range();
                vec![IndexKey::Network {
                    path,
                    ipv6,
                    low,
                    high,
                }]
            }
            None => fallback,
        },
        Operator::Like(s) => {
            let (prefix, suffix) = like_affix(s);
            if prefix.is_empty() && suffix.is_empty() {
                vec![IndexKey::Exists { path }]
            } else {
                vec![IndexKey::Affix {
                    path,
                    prefix,
                    suffix,
                }]
            }
        }
        // Every other operator at least needs the property to be there.
        Operator::Exists
        | Operator::Neq(_)
        | Operator::Lt(_)
        | Operator::Le(_)
        | Operator::Gt(_)
        | Operator::Ge(_)
        | Operator::Matches(_)
        | Operator::IsSuperset(_) => vec![IndexKey::Exists { path }],
    }
}

pub(crate) fn comparison_keys(e: &ComparisonExpr) -> Keys {
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

pub(crate) fn observation_keys(e: &ObservationExpr) -> Keys {
    match e {
        ObservationExpr::Comparison(c) => comparison_keys(c),
        ObservationExpr::And(items) | ObservationExpr::FollowedBy(items) => items
            .iter()
            .map(observation_keys)
            .reduce(better)
            .unwrap_or_default(),
        ObservationExpr::Or(items) => items
            .iter()
            .map(observation_keys)
            .reduce(union)
            .unwrap_or_default(),
        ObservationExpr::Qualified(a, _) => observation_keys(a),
    }
}
