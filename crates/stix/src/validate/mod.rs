//! Validation of STIX 2.1 objects against the specification's rules.
//!
//! Validation never stops at the first problem: it reports every one it finds, each naming the
//! object id and the JSON path of the property, so that a producer can fix a whole feed at once.

use std::fmt;

use serde_json::Value;

use crate::id::{StixId, check_type_name};
use crate::timestamp::Timestamp;

/// One way an object breaks the specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The object's `id`, when it has a usable one.
    pub object_id: Option<String>,
    /// JSON path of the offending property, e.g. `external_references[2].url`; empty for the
    /// object as a whole.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    /// A problem at `path` of the object `id`.
    pub fn new(id: Option<&StixId>, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            object_id: id.map(|i| i.as_str().to_owned()),
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.object_id, self.path.is_empty()) {
            (Some(id), false) => write!(f, "{id}: {}: {}", self.path, self.message),
            (Some(id), true) => write!(f, "{id}: {}", self.message),
            (None, false) => write!(f, "{}: {}", self.path, self.message),
            (None, true) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Problem {}

/// Validates one STIX 2.1 object and returns every problem found (empty when valid).
pub fn validate_object(object: &Value) -> Vec<Problem> {
    let mut problems = Vec::new();
    let Some(map) = object.as_object() else {
        problems.push(Problem::new(
            None,
            "",
            "a STIX object must be a JSON object",
        ));
        return problems;
    };
    let id = match map.get("id") {
        Some(Value::String(s)) => match StixId::parse(s) {
            Ok(id) => Some(id),
            Err(e) => {
                problems.push(Problem::new(None, "id", e.to_string()));
                None
            }
        },
        Some(_) => {
            problems.push(Problem::new(None, "id", "must be a string"));
            None
        }
        None => {
            problems.push(Problem::new(None, "id", "required property is missing"));
            None
        }
    };
    let id = id.as_ref();
    match map.get("type") {
        Some(Value::String(ty)) => {
            if let Err(why) = check_type_name(ty) {
                problems.push(Problem::new(id, "type", why));
            }
            if let Some(id) = id
                && id.object_type() != ty
            {
                problems.push(Problem::new(
                    Some(id),
                    "id",
                    format!("the id's type part must equal the object's type {ty:?}"),
                ));
            }
        }
        Some(_) => problems.push(Problem::new(id, "type", "must be a string")),
        None => problems.push(Problem::new(id, "type", "required property is missing")),
    }
    let ts = |name: &str, problems: &mut Vec<Problem>| -> Option<Timestamp> {
        match map.get(name)? {
            Value::String(s) => match Timestamp::parse(s) {
                Ok(t) => Some(t),
                Err(e) => {
                    problems.push(Problem::new(id, name, e.to_string()));
                    None
                }
            },
            _ => {
                problems.push(Problem::new(id, name, "must be a timestamp string"));
                None
            }
        }
    };
    let created = ts("created", &mut problems);
    let modified = ts("modified", &mut problems);
    if let (Some(c), Some(m)) = (created, modified)
        && m < c
    {
        problems.push(Problem::new(
            id,
            "modified",
            "must be later than or equal to created",
        ));
    }
    match map.get("spec_version") {
        Some(Value::String(v)) if v == "2.1" => {}
        Some(Value::String(v)) => problems.push(Problem::new(
            id,
            "spec_version",
            format!("must be \"2.1\", found {v:?}"),
        )),
        Some(_) => problems.push(Problem::new(id, "spec_version", "must be a string")),
        None => {}
    }
    problems
}
