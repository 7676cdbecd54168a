//! Traffic Light Protocol levels and the STIX marking definitions that carry them.
//!
//! TLP 2.0 is published as five marking-definition objects using the OASIS extension
//! `extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d`; TLP 1.0 is predefined by STIX 2.1
//! (§7.2.1.4) as four `definition_type: tlp` objects. Both are recognised here by their fixed ids
//! and mapped onto one ordered scale, TLP 1.0 WHITE becoming CLEAR.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::TlpError;

/// A TLP level, ordered from least to most restrictive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tlp {
    /// TLP:CLEAR (TLP 1.0 WHITE): no limit on disclosure.
    Clear,
    /// TLP:GREEN: the community.
    Green,
    /// TLP:AMBER: the recipient's organisation and its clients, need to know.
    Amber,
    /// TLP:AMBER+STRICT: the recipient's organisation only.
    AmberStrict,
    /// TLP:RED: the named recipients only.
    Red,
}

/// The id of the OASIS TLP 2.0 extension definition.
pub const TLP2_EXTENSION_ID: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";

/// The marking-definition ids of TLP 2.0, by level.
pub const TLP2_MARKING_IDS: [(Tlp, &str); 5] = [
    (
        Tlp::Clear,
        "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    ),
    (
        Tlp::Green,
        "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    ),
    (
        Tlp::Amber,
        "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    ),
    (
        Tlp::AmberStrict,
        "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    ),
    (
        Tlp::Red,
        "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
    ),
];

/// The marking-definition ids of TLP 1.0 predefined by STIX 2.1, by level.
pub const TLP1_MARKING_IDS: [(Tlp, &str); 4] = [
    (
        Tlp::Clear,
        "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
    ),
    (
        Tlp::Green,
        "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
    ),
    (
        Tlp::Amber,
        "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
    ),
    (
        Tlp::Red,
        "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
    ),
];

impl Tlp {
    /// All levels, least restrictive first.
    pub const ALL: [Tlp; 5] = [
        Tlp::Clear,
        Tlp::Green,
        Tlp::Amber,
        Tlp::AmberStrict,
        Tlp::Red,
    ];

    /// The level a well-known marking-definition id stands for (TLP 2.0 or 1.0), if any.
    pub fn from_marking_id(id: &str) -> Option<Tlp> {
        TLP2_MARKING_IDS
            .iter()
            .chain(TLP1_MARKING_IDS.iter())
            .find(|(_, known)| *known == id)
            .map(|(tlp, _)| *tlp)
    }

    /// The TLP 2.0 marking-definition id for this level.
    pub fn marking_id(self) -> &'static str {
        TLP2_MARKING_IDS
            .iter()
            .find(|(tlp, _)| *tlp == self)
            .map(|(_, id)| *id)
            .unwrap_or(TLP2_MARKING_IDS[4].1)
    }

    /// The lower-case name used in configuration and in TLP 2.0's `tlp_2_0` property.
    pub fn as_str(self) -> &'static str {
        match self {
            Tlp::Clear => "clear",
            Tlp::Green => "green",
            Tlp::Amber => "amber",
            Tlp::AmberStrict => "amber+strict",
            Tlp::Red => "red",
        }
    }

    /// The TLP 2.0 marking-definition object for this level, exactly as OASIS publishes it.
    pub fn marking_definition(self) -> serde_json::Value {
        serde_json::json!({
            "type": "marking-definition",
            "spec_version": "2.1",
            "id": self.marking_id(),
            "created": "2022-10-01T00:00:00.000Z",
            "name": format!("TLP:{}", self.as_str().to_ascii_uppercase()),
            "extensions": {
                TLP2_EXTENSION_ID: {
                    "extension_type": "property-extension",
                    "tlp_2_0": self.as_str(),
                }
            }
        })
    }
}

impl fmt::Display for Tlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Tlp {
    type Err = TlpError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let name = lower.strip_prefix("tlp:").unwrap_or(&lower);
        Ok(match name {
            "clear" | "white" => Tlp::Clear,
            "green" => Tlp::Green,
            "amber" => Tlp::Amber,
            "amber+strict" | "amber-strict" | "amber_strict" => Tlp::AmberStrict,
            "red" => Tlp::Red,
            _ => return Err(TlpError(s.chars().take(40).collect())),
        })
    }
}

impl Serialize for Tlp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Tlp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The most restrictive TLP level among an object's markings, object-level and granular alike.
///
/// Granular markings are counted for the whole object on purpose: the hub shares whole objects, so
/// an object with one RED-marked property is a RED object for every egress decision. `None` means
/// the object carries no TLP marking at all, and the caller's policy chooses a default.
pub fn effective_tlp(object: &serde_json::Value) -> Option<Tlp> {
    let mut level: Option<Tlp> = None;
    let mut consider = |id: &str| {
        if let Some(t) = Tlp::from_marking_id(id) {
            level = Some(level.map_or(t, |l| l.max(t)));
        }
    };
    if let Some(refs) = object.get("object_marking_refs").and_then(|v| v.as_array()) {
        refs.iter()
            .filter_map(|r| r.as_str())
            .for_each(&mut consider);
    }
    if let Some(gms) = object.get("granular_markings").and_then(|v| v.as_array()) {
        gms.iter()
            .filter_map(|g| g.get("marking_ref").and_then(|r| r.as_str()))
            .for_each(&mut consider);
    }
    // The TLP marking definitions themselves are public: everyone may know what TLP:RED means.
    if level.is_none()
        && object
            .get("id")
            .and_then(|v| v.as_str())
            .is_some_and(|id| Tlp::from_marking_id(id).is_some())
    {
        return Some(Tlp::Clear);
    }
    level
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ordered_and_named() {
        assert!(
            Tlp::Clear < Tlp::Green && Tlp::Amber < Tlp::AmberStrict && Tlp::AmberStrict < Tlp::Red
        );
        for t in Tlp::ALL {
            assert_eq!(t.as_str().parse::<Tlp>().unwrap(), t);
            assert_eq!(Tlp::from_marking_id(t.marking_id()), Some(t));
        }
        assert_eq!("TLP:WHITE".parse::<Tlp>().unwrap(), Tlp::Clear);
        assert!("purple".parse::<Tlp>().is_err());
    }

    #[test]
    fn tlp1_ids_map_onto_the_same_scale() {
        for (t, id) in TLP1_MARKING_IDS {
            assert_eq!(Tlp::from_marking_id(id), Some(t));
        }
    }

    #[test]
    fn effective_level_is_the_most_restrictive() {
        let obj = json!({
            "object_marking_refs": [Tlp::Green.marking_id()],
            "granular_markings": [{"marking_ref": Tlp::Red.marking_id(), "selectors": ["description"]}]
        });
        assert_eq!(effective_tlp(&obj), Some(Tlp::Red));
        assert_eq!(effective_tlp(&json!({"object_marking_refs": []})), None);
        let tlp1 = json!({"object_marking_refs": ["marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"]});
        assert_eq!(effective_tlp(&tlp1), Some(Tlp::Amber));
    }
}
