//! Index keys derived from a pattern's syntax tree.
//!
//! `kizuna_pattern::Pattern::index_keys` states the same kind of necessary condition, but the
//! detector needs three things it does not give: keys in the canonical form the lookup tables
//! use (numbers as one float, binary as Latin-1 text), a literal that every `LIKE` match contains
//! wherever its wildcards are (infixes included), and literals required by `MATCHES`. So the
//! derivation lives here, with the same one-sided guarantee: *if the pattern matches an
//! observation, some root object of it satisfies at least one of the pattern's keys.*

use kizuna_pattern::ast::{
    Comparison, ComparisonExpr, Constant, ObjectPath, ObservationExpr, Operator, PathStep,
};

use super::literal;
use kizuna_pattern::Net;

/// One step of an indexed path: list indexes (`[0]`, `[*]`) all read as "any element", which
/// selects a superset of what the pattern selects.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Step {
    /// A property name (`_ref`/`_refs` names dereference inside the bundle).
    Key(String),
    /// Any element of a list.
    Elem,
}

/// An object type and the steps from it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Path {
    pub(crate) object_type: String,
    pub(crate) steps: Vec<Step>,
}

impl Path {
    /// Whether values along the path read as the evaluator reads them: `_hex` and `_bin`
    /// properties are decoded to bytes there, so they are left to the type key.
    fn of(p: &ObjectPath) -> Option<Path> {
        let mut steps = Vec::with_capacity(p.steps.len());
        for s in &p.steps {
            steps.push(match s {
                PathStep::Key(k) if k.ends_with("_hex") || k.ends_with("_bin") => return None,
                PathStep::Key(k) => Step::Key(k.clone()),
                PathStep::Index(_) | PathStep::AnyIndex => Step::Elem,
            });
        }
        Some(Path {
            object_type: p.object_type.clone(),
            steps,
        })
    }

    /// Hash values are compared case-insensitively by the index (hex spelled in either case
    /// finds the pattern; the evaluator then decides).
    pub(crate) fn is_hash(&self) -> bool {
        matches!(self.steps.first(), Some(Step::Key(k)) if k == "hashes")
    }
}

/// A canonical scalar: what equality compares.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Scalar {
    /// A string, or a binary constant read as Latin-1 (the evaluator's string/binary equality).
    Text(String),
    /// Any number, as the bits of an `f64` (`-0.0` as `0.0`): integers and floats that compare
    /// equal share one key.
    Num(u64),
    /// `true` or `false`.
    Bool(bool),
}

impl Scalar {
    pub(crate) fn num(x: f64) -> Scalar {
        Scalar::Num(if x == 0.0 { 0 } else { x.to_bits() })
    }

    fn of(c: &Constant) -> Option<Scalar> {
        Some(match c {
            Constant::Str(s) => Scalar::Text(s.clone()),
            Constant::Binary(b) | Constant::Hex(b) => {
                Scalar::Text(b.iter().map(|&c| char::from(c)).collect())
            }
            Constant::Int(i) => Scalar::num(*i as f64),
            Constant::Float(f) => Scalar::num(*f),
            Constant::Bool(b) => Scalar::Bool(*b),
            // Timestamps compare as instants with any spelling of the string: not hashable.
            Constant::Timestamp(_) => return None,
        })
    }
}

/// A cheap necessary condition on one root object.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// The value at `path` equals the scalar.
    Equals(Path, Scalar),
    /// The address or network at `path` lies inside the network.
    Within(Path, Net),
    /// The string at `path` contains the literal.
    Contains(Path, String),
    /// A root object of this type is present: the fallback every property test implies.
    Type(String),
}

impl Key {
    fn rank(&self) -> u8 {
        match self {
            Key::Equals(..) => 0,
            Key::Within(..) => 1,
            Key::Contains(..) => 2,
            Key::Type(_) => 3,
        }
    }
}

/// Alternatives: one of them holds whenever the expression holds.
type Keys = Vec<Key>;

fn score(keys: &Keys) -> (u8, usize) {
    (
        keys.iter().map(Key::rank).max().unwrap_or(u8::MAX),
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

fn test_keys(c: &Comparison) -> Keys {
    let fallback = vec![Key::Type(c.path.object_type.clone())];
    if c.negated {
        return fallback;
    }
    let Some(path) = Path::of(&c.path) else {
        return fallback;
    };
    let keys: Option<Keys> = match &c.op {
        Operator::Eq(v) => Scalar::of(v).map(|s| vec![Key::Equals(path, s)]),
        Operator::In(set) if !set.is_empty() => set
            .iter()
            .map(|v| Scalar::of(v).map(|s| Key::Equals(path.clone(), s)))
            .collect(),
        Operator::IsSubset(s) => Net::parse(s).map(|n| vec![Key::Within(path, n)]),
        Operator::Like(s) => {
            let lit = like_literal(s);
            (!lit.is_empty()).then(|| vec![Key::Contains(path, lit.to_owned())])
        }
        Operator::Matches(rx) => literal::required(rx).map(|lits| {
            lits.into_iter()
                .map(|l| Key::Contains(path.clone(), l))
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

/// The keys of a whole pattern.
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

/// The keys of every bracketed expression of a pattern together: an observation that satisfies
/// any one of them has a key among these, which is what a stream needs to keep it.
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kizuna_pattern::Pattern;

    fn keys(p: &str) -> Keys {
        pattern_keys(Pattern::parse(p).unwrap().ast())
    }

    #[test]
    fn shapes() {
        assert!(matches!(
            keys("[file:hashes.'SHA-256' = 'ab']").as_slice(),
            [Key::Equals(_, Scalar::Text(t))] if t == "ab"
        ));
        assert_eq!(keys("[x-a:n IN (1, 2.0)]").len(), 2);
        assert!(matches!(
            keys("[url:value LIKE '%evil_.com/%']").as_slice(),
            [Key::Contains(_, l)] if l == ".com/"
        ));
        assert!(matches!(
            keys("[url:value NOT = 'a']").as_slice(),
            [Key::Type(t)] if t == "url"
        ));
        assert!(matches!(
            keys("[url:value = 'a' AND url:x < 3]").as_slice(),
            [Key::Equals(..)]
        ));
        assert_eq!(
            keys("[url:value = 'a' OR domain-name:value = 'b']").len(),
            2
        );
        assert!(matches!(
            keys("[artifact:payload_bin = b'AAAA']").as_slice(),
            [Key::Type(_)]
        ));
        assert!(matches!(
            keys("[ipv4-addr:value ISSUBSET '10.0.0.0/8']").as_slice(),
            [Key::Within(..)]
        ));
        assert!(matches!(
            keys("[x:t = t'2024-01-01T00:00:00Z']").as_slice(),
            [Key::Type(_)]
        ));
    }
}
