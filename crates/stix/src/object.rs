//! The common properties every stored STIX object is indexed by.

use serde_json::Value;

use crate::id::StixId;
use crate::timestamp::Timestamp;
use crate::tlp::{Tlp, effective_tlp};
use crate::validate::Problem;

/// What the store and the TAXII server need to know of an object without understanding its type:
/// identity, version and marking. Built from the object's JSON, which stays the source of truth
/// (kept byte for byte by the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// `id`.
    pub id: StixId,
    /// `spec_version`; `2.1` when absent on an SCO (STIX 2.1 §3.2 defaults SCOs to 2.1).
    pub spec_version: String,
    /// `created`, when the object has it (SCOs do not).
    pub created: Option<Timestamp>,
    /// `modified`, when the object has it.
    pub modified: Option<Timestamp>,
    /// `revoked: true`.
    pub revoked: bool,
    /// The most restrictive TLP level among the object's markings ([`effective_tlp`]).
    pub tlp: Option<Tlp>,
}

impl ObjectMeta {
    /// Extracts the indexing properties, failing on the first one that is missing or malformed.
    /// Full validation is [`crate::validate_object`]; this is the minimum needed to store.
    pub fn from_value(object: &Value) -> Result<Self, Problem> {
        let id_text = object
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| Problem::new(None, "id", "required string property is missing"))?;
        let id = StixId::parse(id_text).map_err(|e| Problem::new(None, "id", e.to_string()))?;
        let at = |name: &str| -> Result<Option<Timestamp>, Problem> {
            match object.get(name) {
                None => Ok(None),
                Some(Value::String(s)) => Timestamp::parse(s)
                    .map(Some)
                    .map_err(|e| Problem::new(Some(&id), name, e.to_string())),
                Some(_) => Err(Problem::new(Some(&id), name, "must be a timestamp string")),
            }
        };
        let created = at("created")?;
        let modified = at("modified")?;
        let spec_version = match object.get("spec_version") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(Problem::new(Some(&id), "spec_version", "must be a string")),
            None => "2.1".to_owned(),
        };
        Ok(Self {
            revoked: object.get("revoked").and_then(Value::as_bool) == Some(true),
            tlp: effective_tlp(object),
            id,
            spec_version,
            created,
            modified,
        })
    }

    /// The object's version as TAXII 2.1 defines it (§3.4.2, `match[version]`): `modified`, else
    /// `created`; objects with neither (SCOs) are unversioned and take their `date_added`.
    pub fn version(&self) -> Option<Timestamp> {
        self.modified.or(self.created)
    }
}
