//! Index keys in the form the lookup tables use.
//!
//! The keys themselves come from `kizuna_pattern::Pattern::index_keys` (and
//! `bracket_index_keys` for streams), the one derivation that `kizuna pattern explain` prints
//! too, with its one-sided guarantee: *if the pattern matches an observation, some root object
//! of it satisfies at least one of the pattern's keys.* Here they are only put in canonical
//! form: list indexes read as "any element", numbers as one float, binary constants as Latin-1
//! text, so that equal values share one hash entry.

use kizuna_pattern::IndexKey;
use kizuna_pattern::Net;
use kizuna_pattern::ast::{Constant, ObjectPath, PathStep};

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
    fn of(p: ObjectPath) -> Path {
        let steps = p
            .steps
            .into_iter()
            .map(|s| match s {
                PathStep::Key(k) => Step::Key(k),
                PathStep::Index(_) | PathStep::AnyIndex => Step::Elem,
            })
            .collect();
        Path {
            object_type: p.object_type,
            steps,
        }
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
            // Timestamps compare as instants with any spelling of the string: not hashable
            // (`index_keys` never gives one).
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
    /// The table form of a key of the pattern engine; a key the tables cannot hold becomes its
    /// object type, which every property test implies.
    fn of(key: IndexKey) -> Key {
        let fallback = Key::Type(key.object_type().to_owned());
        match key {
            IndexKey::Equals { path, value } => match Scalar::of(&value) {
                Some(s) => Key::Equals(Path::of(path), s),
                None => fallback,
            },
            IndexKey::Network { path, net } => Key::Within(Path::of(path), net),
            IndexKey::Contains { path, literal } => Key::Contains(Path::of(path), literal),
            IndexKey::ObjectType(t) => Key::Type(t),
            _ => fallback,
        }
    }
}

/// The table form of a pattern's keys (alternatives, without duplicates).
pub(crate) fn table_keys(keys: Vec<IndexKey>) -> Vec<Key> {
    let mut out: Vec<Key> = Vec::with_capacity(keys.len());
    for k in keys.into_iter().map(Key::of) {
        if !out.contains(&k) {
            out.push(k);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kizuna_pattern::Pattern;

    fn keys(p: &str) -> Vec<Key> {
        table_keys(Pattern::parse(p).unwrap().index_keys())
    }

    #[test]
    fn shapes() {
        assert!(matches!(
            keys("[file:hashes.'SHA-256' = 'ab']").as_slice(),
            [Key::Equals(_, Scalar::Text(t))] if t == "ab"
        ));
        assert_eq!(keys("[x-a:n IN (1, 1.0, 2)]").len(), 2);
        assert!(matches!(
            keys("[url:value LIKE '%evil_.com/%']").as_slice(),
            [Key::Contains(_, l)] if l == ".com/"
        ));
        assert!(matches!(
            keys("[x-a:list[0] = 'a' OR x-a:list[*] = 'a']").as_slice(),
            [Key::Equals(p, _)] if p.steps == [Step::Key("list".into()), Step::Elem]
        ));
        assert!(matches!(
            keys("[x:b = b'QUJD']").as_slice(),
            [Key::Equals(_, Scalar::Text(t))] if t == "ABC"
        ));
        assert!(matches!(
            keys("[ipv4-addr:value ISSUBSET '10.0.0.0/8']").as_slice(),
            [Key::Within(..)]
        ));
    }
}
