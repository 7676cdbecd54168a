//! STIX identifiers: `<object-type>--<UUID>`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::IdError;

/// Checks a STIX object type name against §3.1 of STIX 2.1: 3 to 250 characters of `a-z`, `0-9`
/// and `-`, starting with a letter, with no doubled hyphen. Returns the reason it is invalid.
pub fn check_type_name(ty: &str) -> Result<(), &'static str> {
    if ty.len() < 3 {
        return Err("type names have at least 3 characters");
    }
    if ty.len() > 250 {
        return Err("type names have at most 250 characters");
    }
    if !ty
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("type names contain only a-z, 0-9 and '-'");
    }
    if !ty.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("type names begin with a letter");
    }
    if ty.contains("--") {
        return Err("type names contain no '--'");
    }
    Ok(())
}

/// A parsed STIX identifier such as `indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f`.
///
/// The type part is checked with [`check_type_name`]; the UUID part must be the 36-character
/// hyphenated RFC 4122 form. The original text is kept so that the identifier round-trips byte for
/// byte.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StixId {
    text: String,
    type_len: usize,
}

impl StixId {
    /// Parses an identifier.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        let ty = Self::check(text)?;
        Ok(Self {
            text: text.to_owned(),
            type_len: ty.len(),
        })
    }

    /// Checks an identifier without allocating and returns its type part: validation checks
    /// every reference of every object, and most of them only need a yes or no.
    pub fn check(text: &str) -> Result<&str, IdError> {
        let Some((ty, uuid)) = text.split_once("--") else {
            return Err(IdError::new(text, "expected '<type>--<UUID>'"));
        };
        check_type_name(ty).map_err(|why| IdError::new(text, why))?;
        if !is_hyphenated_uuid(uuid) {
            return Err(IdError::new(
                text,
                "the part after '--' must be a UUID (8-4-4-4-12 hexadecimal digits)",
            ));
        }
        Ok(ty)
    }

    /// The object type, e.g. `indicator`.
    pub fn object_type(&self) -> &str {
        &self.text[..self.type_len]
    }

    /// The UUID part, as written.
    pub fn uuid(&self) -> &str {
        &self.text[self.type_len + 2..]
    }

    /// The whole identifier.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn is_hyphenated_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

impl fmt::Display for StixId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for StixId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StixId({})", self.text)
    }
}

impl FromStr for StixId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for StixId {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl Serialize for StixId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for StixId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_splits() {
        let id = StixId::parse("indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f").unwrap();
        assert_eq!(id.object_type(), "indicator");
        assert_eq!(id.uuid(), "8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f");
        let x = StixId::parse("x-acme-widget--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f").unwrap();
        assert_eq!(x.object_type(), "x-acme-widget");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "indicator",
            "indicator--",
            "Indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "ab--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "indicator--8e2e2d2b17d44cbf938f98ee46b3cd3f",
            "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3g",
            "x--y--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "1abc--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        ] {
            assert!(StixId::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
