//! Validation of STIX 2.1 objects against the specification's rules.
//!
//! Validation never stops at the first problem: it reports every one it finds, each naming the
//! object id and the JSON path of the property, so that a producer can fix a whole feed at once.
//!
//! The rules are split by object family: [`ctx`] holds the problem collector and the
//! property-level checks, [`forms`] the forms of values (names, identifiers, addresses),
//! [`common`] the common properties every type shares, [`sdo`] the domain and relationship
//! objects, [`sco`] the cyber-observable objects and [`meta`] the marking definitions, language
//! content and extension definitions. Unknown properties are always accepted (a hub must keep
//! custom content); only the property-name syntax and the reserved names apply to them.

mod common;
mod ctx;
mod forms;
mod meta;
mod sco;
mod sdo;

use std::fmt;

use serde_json::{Map, Value};

use crate::id::StixId;
use ctx::Ctx;

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

/// The STIX 2.1 domain objects (SDOs).
pub const SDO_TYPES: [&str; 19] = [
    "attack-pattern",
    "campaign",
    "course-of-action",
    "grouping",
    "identity",
    "incident",
    "indicator",
    "infrastructure",
    "intrusion-set",
    "location",
    "malware",
    "malware-analysis",
    "note",
    "observed-data",
    "opinion",
    "report",
    "threat-actor",
    "tool",
    "vulnerability",
];

/// The STIX 2.1 relationship objects (SROs).
pub const SRO_TYPES: [&str; 2] = ["relationship", "sighting"];

/// The STIX 2.1 cyber-observable objects (SCOs).
pub const SCO_TYPES: [&str; 18] = [
    "artifact",
    "autonomous-system",
    "directory",
    "domain-name",
    "email-addr",
    "email-message",
    "file",
    "ipv4-addr",
    "ipv6-addr",
    "mac-addr",
    "mutex",
    "network-traffic",
    "process",
    "software",
    "url",
    "user-account",
    "windows-registry-key",
    "x509-certificate",
];

/// The STIX 2.1 meta objects (SMOs).
pub const META_TYPES: [&str; 3] = [
    "language-content",
    "marking-definition",
    "extension-definition",
];

/// The family an object belongs to, which decides its common properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// A STIX domain object; `custom` when its type is not one of [`SDO_TYPES`].
    Sdo {
        /// Defined by an extension definition or an `x-` type rather than by STIX 2.1 itself.
        custom: bool,
    },
    /// A STIX relationship object; `custom` when defined by a `new-sro` extension.
    Sro {
        /// Defined by an extension definition rather than by STIX 2.1 itself.
        custom: bool,
    },
    /// A STIX cyber-observable object; `custom` when its type is not one of [`SCO_TYPES`].
    Sco {
        /// Defined by an extension definition or an `x-` type rather than by STIX 2.1 itself.
        custom: bool,
    },
    /// `marking-definition`.
    MarkingDefinition,
    /// `language-content`.
    LanguageContent,
    /// `extension-definition`.
    ExtensionDefinition,
    /// `bundle`: a container, not an object.
    Bundle,
}

impl ObjectKind {
    /// Classifies an object by its `type` and, for custom types, by the `extension_type` of its
    /// extension-definition extensions (`new-sdo`, `new-sco`, `new-sro`). A custom type without
    /// one is an SCO when it has neither `created` nor `modified` (SCOs have no versioning
    /// properties), else an SDO: the same rule stix2-validator applies.
    pub fn of(object: &Map<String, Value>) -> Self {
        let ty = object.get("type").and_then(Value::as_str).unwrap_or("");
        match ty {
            "marking-definition" => return Self::MarkingDefinition,
            "language-content" => return Self::LanguageContent,
            "extension-definition" => return Self::ExtensionDefinition,
            "bundle" => return Self::Bundle,
            _ => {}
        }
        if SDO_TYPES.contains(&ty) {
            return Self::Sdo { custom: false };
        }
        if SRO_TYPES.contains(&ty) {
            return Self::Sro { custom: false };
        }
        if SCO_TYPES.contains(&ty) {
            return Self::Sco { custom: false };
        }
        let declared = object
            .get("extensions")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.starts_with("extension-definition--"))
            .find_map(
                |(_, v)| match v.get("extension_type").and_then(Value::as_str) {
                    Some("new-sdo") => Some(Self::Sdo { custom: true }),
                    Some("new-sco") => Some(Self::Sco { custom: true }),
                    Some("new-sro") => Some(Self::Sro { custom: true }),
                    _ => None,
                },
            );
        declared.unwrap_or(
            if object.contains_key("created") || object.contains_key("modified") {
                Self::Sdo { custom: true }
            } else {
                Self::Sco { custom: true }
            },
        )
    }
}

/// Validates one STIX 2.1 object and returns every problem found (empty when valid).
///
/// Covers the common properties, the required properties and property types of every STIX 2.1
/// type, reference properties (`*_ref`, `*_refs`) and the types they may point at, markings,
/// extensions, hashes and the ordering rules between timestamps. It does not parse indicator
/// patterns (that is the pattern crate's job: see [`validate_object_with`]) and it cannot see other
/// objects, so it does not check that references resolve.
pub fn validate_object(object: &Value) -> Vec<Problem> {
    let Some(map) = object.as_object() else {
        return vec![Problem::new(
            None,
            "",
            "a STIX object must be a JSON object",
        )];
    };
    let mut early = Vec::new();
    let id = match map.get("id") {
        Some(Value::String(s)) => match StixId::parse(s) {
            Ok(id) => Some(id),
            Err(e) => {
                early.push(Problem::new(None, "id", e.to_string()));
                None
            }
        },
        Some(_) => {
            early.push(Problem::new(None, "id", "must be a string"));
            None
        }
        None => {
            early.push(Problem::new(None, "id", "required property is missing"));
            None
        }
    };
    let mut ctx = Ctx::new(id.as_ref(), None);
    ctx.problems = early;
    validate_map(&mut ctx, map, "");
    ctx.problems
}

/// Checks the grammar of indicator patterns. This crate does not parse patterns (the pattern
/// crate does); a caller that has a parser passes it to [`validate_object_with`]. Any
/// `Fn(pattern, pattern_type, pattern_version) -> Result<(), String>` is one.
pub trait PatternChecker {
    /// Why `pattern`, written in `pattern_type` (e.g. `stix`, `yara`) at `pattern_version`, is
    /// invalid; `Ok` when it is valid or when the checker does not know the pattern type.
    fn check(
        &self,
        pattern: &str,
        pattern_type: &str,
        pattern_version: Option<&str>,
    ) -> Result<(), String>;
}

impl<F> PatternChecker for F
where
    F: Fn(&str, &str, Option<&str>) -> Result<(), String>,
{
    fn check(
        &self,
        pattern: &str,
        pattern_type: &str,
        pattern_version: Option<&str>,
    ) -> Result<(), String> {
        self(pattern, pattern_type, pattern_version)
    }
}

/// [`validate_object`], plus the pattern grammar of indicators, checked by `patterns` and
/// reported at the path `pattern`.
pub fn validate_object_with(object: &Value, patterns: &dyn PatternChecker) -> Vec<Problem> {
    let mut problems = validate_object(object);
    if object.get("type").and_then(Value::as_str) == Some("indicator")
        && let (Some(pattern), Some(pattern_type)) = (
            object.get("pattern").and_then(Value::as_str),
            object.get("pattern_type").and_then(Value::as_str),
        )
        && let Err(why) = patterns.check(
            pattern,
            pattern_type,
            object.get("pattern_version").and_then(Value::as_str),
        )
    {
        let id = object
            .get("id")
            .and_then(Value::as_str)
            .and_then(|s| StixId::parse(s).ok());
        problems.push(Problem::new(id.as_ref(), "pattern", why));
    }
    problems
}

/// Validates `map` as a whole object at `base` (empty for a top-level object, `objects.<key>` for
/// an SCO embedded in observed-data).
fn validate_map(ctx: &mut Ctx<'_>, map: &Map<String, Value>, base: &str) {
    let ty = match map.get("type") {
        Some(Value::String(ty)) => {
            if let Err(why) = crate::id::check_type_name(ty) {
                ctx.report(ctx::at(base, "type"), why);
            }
            if ty == "action" {
                ctx.report(ctx::at(base, "type"), "\"action\" is a reserved type name");
            }
            ty.as_str()
        }
        Some(_) => {
            ctx.report(ctx::at(base, "type"), "must be a string");
            ""
        }
        None => {
            ctx.report(ctx::at(base, "type"), "required property is missing");
            ""
        }
    };
    if base.is_empty() {
        if let Some(id) = ctx.id
            && !ty.is_empty()
            && id.object_type() != ty
        {
            ctx.report(
                "id",
                format!("the id's type part must equal the object's type {ty:?}"),
            );
        }
        if let Some(id) = ctx.id {
            forms::check_uuid(ctx, id);
        }
    }
    let kind = ObjectKind::of(map);
    common::check_common(ctx, map, base, kind);
    match kind {
        ObjectKind::Sdo { custom: false } | ObjectKind::Sro { custom: false } => {
            sdo::check(ctx, map, ty);
        }
        ObjectKind::Sco { custom: false } => sco::check(ctx, map, base, ty),
        ObjectKind::MarkingDefinition => meta::marking_definition(ctx, map),
        ObjectKind::LanguageContent => meta::language_content(ctx, map),
        ObjectKind::ExtensionDefinition => meta::extension_definition(ctx, map),
        ObjectKind::Bundle => ctx.report(
            ctx::at(base, "type"),
            "a bundle is a container, not a STIX object: split it into its objects first",
        ),
        ObjectKind::Sdo { custom: true }
        | ObjectKind::Sro { custom: true }
        | ObjectKind::Sco { custom: true } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pattern_checker_reports_at_pattern() {
        let indicator = json!({
            "type": "indicator",
            "spec_version": "2.1",
            "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "created": "2016-04-06T20:03:48.000Z",
            "modified": "2016-04-06T20:03:48.000Z",
            "pattern": "[file:name = ",
            "pattern_type": "stix",
            "valid_from": "2016-04-06T20:03:48Z",
        });
        assert!(validate_object(&indicator).is_empty());
        let reject = |p: &str, t: &str, _v: Option<&str>| -> Result<(), String> {
            if t == "stix" && !p.ends_with(']') {
                Err("unterminated observation expression".to_owned())
            } else {
                Ok(())
            }
        };
        let problems = validate_object_with(&indicator, &reject);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "pattern");
        assert_eq!(
            problems[0].object_id.as_deref(),
            Some("indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f")
        );
    }
}
