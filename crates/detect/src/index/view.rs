//! Read-only views of JSON for the index scan: `serde_json::Value` (what the sensors build) and
//! [`Lite`], a borrowed tree for JSON lines read from a file.
//!
//! Parsing a line into `Value` costs more than everything the index does with it: every string
//! is copied and every object becomes a hashed map. [`Lite`] borrows strings from the line
//! (copying only those with escapes) and keeps objects as small vectors, which is all a scan of
//! a few paths needs. Only an observation the index finds candidates for is parsed again into a
//! `Value` for the exact evaluator.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// A JSON value borrowed from its text.
#[derive(Debug)]
pub(crate) enum Lite<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as `serde_json::Value::as_f64` and `as_u64` read it.
    Num(f64, Option<u64>),
    /// A string.
    Str(Cow<'a, str>),
    /// An array.
    Arr(Vec<Lite<'a>>),
    /// An object, members in order (duplicates kept; the last one wins, as in `Value`).
    Obj(Vec<(Cow<'a, str>, Lite<'a>)>),
}

/// A key that borrows from the text when it can.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Lite<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Lite<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<Lite<'de>, E> {
                Ok(Lite::Null)
            }
            fn visit_none<E>(self) -> Result<Lite<'de>, E> {
                Ok(Lite::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Lite<'de>, E> {
                Ok(Lite::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Lite<'de>, E> {
                Ok(Lite::Num(n as f64, u64::try_from(n).ok()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Lite<'de>, E> {
                Ok(Lite::Num(n as f64, Some(n)))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Lite<'de>, E> {
                Ok(Lite::Num(n, None))
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Lite<'de>, E> {
                Ok(Lite::Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Lite<'de>, E> {
                Ok(Lite::Str(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Lite<'de>, E> {
                Ok(Lite::Str(Cow::Owned(s)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Lite<'de>, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Lite::Arr(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Lite<'de>, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some((Key(k), v)) = map.next_entry()? {
                    members.push((k, v));
                }
                Ok(Lite::Obj(members))
            }
        }
        d.deserialize_any(V)
    }
}

/// What the scan reads of a JSON value.
pub(crate) trait Json<'a>: Copy + 'a {
    fn as_str(self) -> Option<&'a str>;
    fn as_f64(self) -> Option<f64>;
    fn as_u64(self) -> Option<u64>;
    fn as_bool(self) -> Option<bool>;
    fn items(self) -> Option<&'a [Self::Item]>;
    /// The member `key` of an object.
    fn get(self, key: &str) -> Option<Self>;
    /// Whether this is an object (members may be looked up).
    fn is_object(self) -> bool;
    /// The element type of arrays (and of the objects of a bundle).
    type Item: 'a;
    fn item(x: &'a Self::Item) -> Self;
}

impl<'a> Json<'a> for &'a Value {
    type Item = Value;
    fn as_str(self) -> Option<&'a str> {
        Value::as_str(self)
    }
    fn as_f64(self) -> Option<f64> {
        Value::as_f64(self)
    }
    fn as_u64(self) -> Option<u64> {
        Value::as_u64(self)
    }
    fn as_bool(self) -> Option<bool> {
        Value::as_bool(self)
    }
    fn items(self) -> Option<&'a [Value]> {
        self.as_array().map(Vec::as_slice)
    }
    fn get(self, key: &str) -> Option<Self> {
        let map = self.as_object()?;
        // SCOs have few properties: comparing keys in order beats hashing the key.
        if map.len() <= 12 {
            map.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
        } else {
            map.get(key)
        }
    }
    fn is_object(self) -> bool {
        self.is_object()
    }
    fn item(x: &'a Value) -> Self {
        x
    }
}

impl<'a, 't> Json<'a> for &'a Lite<'t> {
    type Item = Lite<'t>;
    fn as_str(self) -> Option<&'a str> {
        match self {
            Lite::Str(s) => Some(s),
            _ => None,
        }
    }
    fn as_f64(self) -> Option<f64> {
        match self {
            Lite::Num(n, _) => Some(*n),
            _ => None,
        }
    }
    fn as_u64(self) -> Option<u64> {
        match self {
            Lite::Num(_, n) => *n,
            _ => None,
        }
    }
    fn as_bool(self) -> Option<bool> {
        match self {
            Lite::Bool(b) => Some(*b),
            _ => None,
        }
    }
    fn items(self) -> Option<&'a [Lite<'t>]> {
        match self {
            Lite::Arr(items) => Some(items),
            _ => None,
        }
    }
    fn get(self, key: &str) -> Option<Self> {
        match self {
            Lite::Obj(members) => members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn is_object(self) -> bool {
        matches!(self, Lite::Obj(_))
    }
    fn item(x: &'a Lite<'t>) -> Self {
        x
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lite_reads_as_value_does() {
        let text = r#"{"a": "x\"y", "b": [1, 2.5, -3, true, null], "a": "z", "c": {"d": "e"}}"#;
        let lite: Lite<'_> = serde_json::from_str(text).unwrap();
        let value: Value = serde_json::from_str(text).unwrap();
        assert_eq!((&lite).get("a").unwrap().as_str(), Some("z"));
        assert_eq!(value.get("a").unwrap().as_str(), Some("z"));
        let nums: Vec<Option<f64>> = (&lite)
            .get("b")
            .unwrap()
            .items()
            .unwrap()
            .iter()
            .map(|x| x.as_f64())
            .collect();
        let vnums: Vec<Option<f64>> = value["b"]
            .as_array()
            .unwrap()
            .iter()
            .map(Value::as_f64)
            .collect();
        assert_eq!(nums, vnums);
        assert_eq!(
            (&lite).get("c").unwrap().get("d").unwrap().as_str(),
            Some("e")
        );
    }
}
