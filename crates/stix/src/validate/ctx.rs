//! The problem collector and the property-level checks every object type builds on: property-name
//! syntax, property types, references, dictionaries and hashes.

use serde_json::{Map, Value};

use super::forms::{is_base64, is_hex, is_property_name, rfc4122};
use super::{Problem, SCO_TYPES, SDO_TYPES, SRO_TYPES};
use crate::id::StixId;
use crate::timestamp::Timestamp;

/// Property names STIX 2.1 reserves and no object may use (§3.8 of the specification).
const RESERVED_PROPERTIES: [&str; 4] = ["severity", "action", "username", "phone_number"];

/// The `extension_type` vocabulary (an enumeration: values outside it are errors).
pub(crate) const EXTENSION_TYPES: [&str; 5] = [
    "new-sdo",
    "new-sco",
    "new-sro",
    "property-extension",
    "toplevel-property-extension",
];

/// Collects the problems of one object.
pub(crate) struct Ctx<'a> {
    pub(crate) id: Option<&'a StixId>,
    pub(crate) problems: Vec<Problem>,
    /// For SCOs embedded in an observed-data `objects` dictionary: references there are keys of
    /// that dictionary, not identifiers.
    local: Option<&'a Map<String, Value>>,
}

/// `base.name`, or `name` at the top level.
pub(crate) fn at(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_owned()
    } else {
        format!("{base}.{name}")
    }
}

/// `base[i]`.
pub(crate) fn idx(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

/// Which object types a reference may point at.
#[derive(Clone, Copy)]
pub(crate) enum Refs {
    /// Any object (never a bundle).
    Any,
    /// Exactly these types.
    Types(&'static [&'static str]),
    /// An SDO: not a known SCO, SRO or meta object (custom types are accepted).
    Sdo,
    /// An SDO or SCO: not an SRO or meta object.
    SdoOrSco,
    /// An SCO: not a known SDO, SRO or meta object.
    Sco,
    /// An SCO or SRO: not a known SDO or meta object.
    ScoOrSro,
}

impl Refs {
    fn allows(self, ty: &str) -> Result<(), String> {
        let meta = matches!(
            ty,
            "marking-definition" | "language-content" | "extension-definition"
        );
        let ok = ty != "bundle"
            && match self {
                Refs::Any => true,
                Refs::Types(types) => types.contains(&ty),
                Refs::Sdo => !SCO_TYPES.contains(&ty) && !SRO_TYPES.contains(&ty) && !meta,
                Refs::SdoOrSco => !SRO_TYPES.contains(&ty) && !meta,
                Refs::Sco => !SDO_TYPES.contains(&ty) && !SRO_TYPES.contains(&ty) && !meta,
                Refs::ScoOrSro => !SDO_TYPES.contains(&ty) && !meta,
            };
        if ok {
            return Ok(());
        }
        Err(match self {
            Refs::Any => "must not reference a bundle".to_owned(),
            Refs::Types(types) => {
                format!("must reference an object of type {}", types.join(" or "))
            }
            Refs::Sdo => format!("must reference a STIX domain object, not a {ty}"),
            Refs::SdoOrSco => format!("must reference an SDO or SCO, not a {ty}"),
            Refs::Sco => format!("must reference a cyber-observable object, not a {ty}"),
            Refs::ScoOrSro => format!("must reference an SCO or SRO, not a {ty}"),
        })
    }
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(id: Option<&'a StixId>, local: Option<&'a Map<String, Value>>) -> Self {
        Self {
            id,
            problems: Vec::new(),
            local,
        }
    }

    /// Records a problem at `path`, once: generic and type-specific rules may both notice the
    /// same fault (an empty list, say), and a report should say it one time.
    pub(crate) fn report(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let p = Problem::new(self.id, path, message);
        if !self.problems.contains(&p) {
            self.problems.push(p);
        }
    }

    /// The property, or a "missing" problem.
    pub(crate) fn required<'v>(
        &mut self,
        o: &'v Map<String, Value>,
        base: &str,
        name: &str,
    ) -> Option<&'v Value> {
        let v = o.get(name);
        if v.is_none() {
            self.report(at(base, name), "required property is missing");
        }
        v
    }

    /// An optional string property.
    pub(crate) fn string<'v>(
        &mut self,
        o: &'v Map<String, Value>,
        base: &str,
        name: &str,
    ) -> Option<&'v str> {
        match o.get(name)? {
            Value::String(s) => Some(s),
            _ => {
                self.report(at(base, name), "must be a string");
                None
            }
        }
    }

    /// A required string property.
    pub(crate) fn req_string<'v>(
        &mut self,
        o: &'v Map<String, Value>,
        base: &str,
        name: &str,
    ) -> Option<&'v str> {
        self.required(o, base, name)?;
        self.string(o, base, name)
    }

    /// Several optional string properties.
    pub(crate) fn strings(&mut self, o: &Map<String, Value>, base: &str, names: &[&str]) {
        for name in names {
            self.string(o, base, name);
        }
    }

    /// An optional boolean property.
    pub(crate) fn boolean(
        &mut self,
        o: &Map<String, Value>,
        base: &str,
        name: &str,
    ) -> Option<bool> {
        match o.get(name)? {
            Value::Bool(b) => Some(*b),
            _ => {
                self.report(at(base, name), "must be a boolean");
                None
            }
        }
    }

    /// Several optional boolean properties.
    pub(crate) fn booleans(&mut self, o: &Map<String, Value>, base: &str, names: &[&str]) {
        for name in names {
            self.boolean(o, base, name);
        }
    }

    /// An optional integer property within `min..=max`.
    pub(crate) fn integer(
        &mut self,
        o: &Map<String, Value>,
        base: &str,
        name: &str,
        min: Option<i64>,
        max: Option<i64>,
    ) -> Option<i64> {
        let v = o.get(name)?;
        let n = match v {
            Value::Number(n) if n.is_i64() => n.as_i64(),
            Value::Number(n) if n.is_u64() => Some(i64::MAX),
            _ => None,
        };
        let Some(n) = n else {
            self.report(at(base, name), "must be an integer");
            return None;
        };
        if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
            let range = match (min, max) {
                (Some(a), Some(b)) => format!("between {a} and {b}"),
                (Some(a), None) => format!("at least {a}"),
                (None, Some(b)) => format!("at most {b}"),
                (None, None) => String::new(),
            };
            self.report(at(base, name), format!("must be {range}, found {v}"));
            return None;
        }
        Some(n)
    }

    /// Several optional integer properties within `min..=max`.
    pub(crate) fn integers(
        &mut self,
        o: &Map<String, Value>,
        base: &str,
        names: &[&str],
        min: Option<i64>,
    ) {
        for name in names {
            self.integer(o, base, name, min, None);
        }
    }

    /// An optional number property within `min..=max`.
    pub(crate) fn number(
        &mut self,
        o: &Map<String, Value>,
        base: &str,
        name: &str,
        min: f64,
        max: f64,
    ) -> Option<f64> {
        let v = o.get(name)?;
        let Some(n) = v.as_f64() else {
            self.report(at(base, name), "must be a number");
            return None;
        };
        if n < min || n > max {
            self.report(
                at(base, name),
                format!("must be between {min} and {max}, found {v}"),
            );
            return None;
        }
        Some(n)
    }

    /// An optional timestamp property.
    pub(crate) fn timestamp(
        &mut self,
        o: &Map<String, Value>,
        base: &str,
        name: &str,
    ) -> Option<Timestamp> {
        match o.get(name)? {
            Value::String(s) => match Timestamp::parse(s) {
                Ok(t) => Some(t),
                Err(e) => {
                    self.report(at(base, name), e.to_string());
                    None
                }
            },
            _ => {
                self.report(at(base, name), "must be a timestamp string");
                None
            }
        }
    }

    /// Several optional timestamp properties.
    pub(crate) fn timestamps(&mut self, o: &Map<String, Value>, base: &str, names: &[&str]) {
        for name in names {
            self.timestamp(o, base, name);
        }
    }

    /// `later` must not come before `earlier` (strictly after when `strict`), when both are valid.
    pub(crate) fn order(
        &mut self,
        o: &Map<String, Value>,
        base: &str,
        earlier: &str,
        later: &str,
        strict: bool,
    ) {
        let parse = |name: &str| {
            o.get(name)
                .and_then(Value::as_str)
                .and_then(|s| Timestamp::parse(s).ok())
        };
        if let (Some(a), Some(b)) = (parse(earlier), parse(later)) {
            if strict && b <= a {
                self.report(at(base, later), format!("must be later than {earlier}"));
            } else if b < a {
                self.report(
                    at(base, later),
                    format!("must be later than or equal to {earlier}"),
                );
            }
        }
    }

    /// An optional non-empty list; returns its items.
    pub(crate) fn list<'v>(
        &mut self,
        o: &'v Map<String, Value>,
        base: &str,
        name: &str,
    ) -> Option<&'v [Value]> {
        match o.get(name)? {
            Value::Array(items) if items.is_empty() => {
                self.report(at(base, name), "lists must not be empty");
                None
            }
            Value::Array(items) => Some(items),
            _ => {
                self.report(at(base, name), "must be a list");
                None
            }
        }
    }

    /// An optional non-empty list of strings.
    pub(crate) fn string_list<'v>(
        &mut self,
        o: &'v Map<String, Value>,
        base: &str,
        name: &str,
    ) -> Option<Vec<&'v str>> {
        let items = self.list(o, base, name)?;
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => out.push(s.as_str()),
                _ => self.report(idx(&at(base, name), i), "must be a string"),
            }
        }
        Some(out)
    }

    /// Several optional lists of strings.
    pub(crate) fn string_lists(&mut self, o: &Map<String, Value>, base: &str, names: &[&str]) {
        for name in names {
            self.string_list(o, base, name);
        }
    }

    /// An optional string property whose value must be one of `allowed` (a STIX enumeration).
    pub(crate) fn enumeration(
        &mut self,
        o: &Map<String, Value>,
        base: &str,
        name: &str,
        allowed: &[&str],
    ) {
        if let Some(s) = self.string(o, base, name)
            && !allowed.contains(&s)
        {
            self.report(
                at(base, name),
                format!("{s:?} is not one of {}", allowed.join(", ")),
            );
        }
    }

    /// An optional dictionary (non-empty JSON object with valid keys).
    pub(crate) fn dict<'v>(
        &mut self,
        o: &'v Map<String, Value>,
        base: &str,
        name: &str,
    ) -> Option<&'v Map<String, Value>> {
        let path = at(base, name);
        match o.get(name)? {
            Value::Object(m) => {
                self.dict_keys(m, &path);
                Some(m)
            }
            _ => {
                self.report(path, "must be a dictionary (JSON object)");
                None
            }
        }
    }

    /// The dictionary rules of STIX 2.1: at least one key; keys of at most 250 ASCII
    /// characters among `a-z A-Z 0-9 - _`.
    pub(crate) fn dict_keys(&mut self, m: &Map<String, Value>, path: &str) {
        if m.is_empty() {
            self.report(path, "dictionaries must have at least one key");
        }
        for k in m.keys() {
            if k.len() > 250
                || !k
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                self.report(
                    at(path, k),
                    "dictionary keys have at most 250 characters of a-z, A-Z, 0-9, '-' and '_'",
                );
            }
        }
    }

    /// An optional dictionary whose values must satisfy `ok` (described by `what`).
    pub(crate) fn dict_of(
        &mut self,
        o: &Map<String, Value>,
        base: &str,
        name: &str,
        ok: fn(&Value) -> bool,
        what: &str,
    ) {
        let Some(m) = self.dict(o, base, name) else {
            return;
        };
        let path = at(base, name);
        for (k, v) in m {
            if !ok(v) {
                self.report(at(&path, k), format!("must be {what}"));
            }
        }
    }

    /// An optional reference to an object of the allowed types. Its form (an identifier, or a
    /// local key inside observed-data) is checked by [`Ctx::properties`].
    pub(crate) fn reference(&mut self, o: &Map<String, Value>, base: &str, name: &str, refs: Refs) {
        if let Some(v) = o.get(name) {
            self.ref_target(v, &at(base, name), refs);
        }
    }

    /// An optional list of references to objects of the allowed types.
    pub(crate) fn references(
        &mut self,
        o: &Map<String, Value>,
        base: &str,
        name: &str,
        refs: Refs,
    ) {
        if let Some(Value::Array(items)) = o.get(name) {
            let path = at(base, name);
            for (i, v) in items.iter().enumerate() {
                self.ref_target(v, &idx(&path, i), refs);
            }
        }
    }

    fn ref_target(&mut self, v: &Value, path: &str, refs: Refs) {
        let Some(s) = v.as_str() else { return };
        let ty = match self.local {
            Some(local) => local
                .get(s)
                .and_then(|o| o.get("type"))
                .and_then(Value::as_str),
            None => StixId::check(s).ok(),
        };
        if let Some(ty) = ty
            && let Err(why) = refs.allows(ty)
        {
            self.report(path, why);
        }
    }

    /// The form of one reference: an identifier, or inside observed-data a key of its `objects`.
    fn ref_form(&self, v: &Value) -> Result<(), String> {
        let Some(s) = v.as_str() else {
            return Err("a reference must be a string".to_owned());
        };
        match self.local {
            Some(local) if !local.contains_key(s) => {
                Err(format!("{s:?} is not a key of the observed-data objects"))
            }
            Some(_) => Ok(()),
            None => match StixId::check(s) {
                Err(e) => Err(e.to_string()),
                Ok(_) if !rfc4122(s) => {
                    Err("the identifier's UUID must be an RFC 4122 UUID (version 1-5)".to_owned())
                }
                Ok(_) => Ok(()),
            },
        }
    }

    /// Rules for every property of an object (or of an extension, or of a nested structure):
    /// property-name syntax, no null, no empty list, `_ref`/`_refs` hold references,
    /// `_bin`/`_hex` hold base64/hex. Unknown properties are otherwise accepted as they are.
    pub(crate) fn properties(&mut self, o: &Map<String, Value>, base: &str, top_level: bool) {
        for (k, v) in o {
            // Paths are built only for problems: most properties have none.
            let path = || at(base, k);
            if k != "id" && !is_property_name(k) {
                self.report(
                    path(),
                    "property names have 3 to 250 characters of a-z, 0-9 and '_'",
                );
            }
            if top_level && RESERVED_PROPERTIES.contains(&k.as_str()) {
                self.report(path(), format!("{k:?} is a reserved property name"));
            }
            match v {
                Value::Null => {
                    self.report(path(), "null is not a valid STIX value; omit the property")
                }
                Value::Array(a) if a.is_empty() => self.report(path(), "lists must not be empty"),
                _ => {}
            }
            if k.ends_with("_ref") {
                if let Err(why) = self.ref_form(v) {
                    self.report(path(), why);
                }
            } else if k.ends_with("_refs") {
                match v {
                    Value::Array(items) => {
                        for (i, item) in items.iter().enumerate() {
                            if let Err(why) = self.ref_form(item) {
                                self.report(idx(&path(), i), why);
                            }
                        }
                    }
                    _ => self.report(path(), "must be a list of references"),
                }
            } else if let Some(original) = k.strip_suffix("_enc") {
                if !o.contains_key(original) {
                    self.report(
                        path(),
                        format!("{k} must not be present without {original}"),
                    );
                }
            } else if k.ends_with("_bin") {
                if !v.as_str().is_some_and(is_base64) {
                    self.report(path(), "must be a base64-encoded binary string");
                }
            } else if k.ends_with("_hex") && !v.as_str().is_some_and(is_hex) {
                self.report(
                    path(),
                    "must be hex: an even number of digits 0-9 and lower-case a-f",
                );
            }
        }
    }

    /// A hashes dictionary: known algorithms must have the right digest form; other keys are
    /// custom algorithm names.
    pub(crate) fn hashes(&mut self, o: &Map<String, Value>, base: &str, name: &str) -> bool {
        let Some(v) = o.get(name) else { return false };
        let path = at(base, name);
        let Some(m) = v.as_object() else {
            self.report(path, "must be a hashes dictionary");
            return false;
        };
        if m.is_empty() {
            self.report(&path, "hashes must have at least one entry");
        }
        for (alg, digest) in m {
            let p = at(&path, alg);
            let Some(d) = digest.as_str() else {
                self.report(p, "a hash value must be a string");
                continue;
            };
            let hex_len = |n: usize| d.len() == n && d.bytes().all(|b| b.is_ascii_hexdigit());
            let ok = match alg.as_str() {
                "MD5" => hex_len(32),
                "SHA-1" => hex_len(40),
                "SHA-256" | "SHA3-256" => hex_len(64),
                "SHA-512" | "SHA3-512" => hex_len(128),
                "SSDEEP" => {
                    (1..=128).contains(&d.len())
                        && d.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"/+:.".contains(&b))
                }
                "TLSH" => d.len() == 70 && d.bytes().all(|b| b.is_ascii_alphanumeric()),
                custom => {
                    if !(3..=250).contains(&custom.len())
                        || !custom
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    {
                        self.report(
                            &p,
                            "custom hash names have 3 to 250 characters of a-z, A-Z, 0-9, '-' and '_'",
                        );
                    }
                    true
                }
            };
            if !ok {
                self.report(p, format!("not a valid {alg} digest"));
            }
        }
        true
    }

    /// `kill_chain_phases`: each with string `kill_chain_name` and `phase_name`.
    pub(crate) fn kill_chain_phases(&mut self, o: &Map<String, Value>, base: &str) {
        let Some(items) = self.list(o, base, "kill_chain_phases") else {
            return;
        };
        let path = at(base, "kill_chain_phases");
        for (i, item) in items.iter().enumerate() {
            let p = idx(&path, i);
            match item.as_object() {
                Some(k) => {
                    self.req_string(k, &p, "kill_chain_name");
                    self.req_string(k, &p, "phase_name");
                }
                None => self.report(p, "a kill chain phase must be an object"),
            }
        }
    }

    /// A list of objects; runs `each` on every item with its path.
    pub(crate) fn objects<'v>(
        &mut self,
        o: &'v Map<String, Value>,
        base: &str,
        name: &str,
        mut each: impl FnMut(&mut Self, &'v Map<String, Value>, &str),
    ) {
        let Some(items) = self.list(o, base, name) else {
            return;
        };
        let path = at(base, name);
        for (i, item) in items.iter().enumerate() {
            let p = idx(&path, i);
            match item.as_object() {
                Some(m) => each(self, m, &p),
                None => self.report(p, "must be an object"),
            }
        }
    }

    /// A nested object property; runs `each` on it.
    pub(crate) fn object<'v>(
        &mut self,
        o: &'v Map<String, Value>,
        base: &str,
        name: &str,
        each: impl FnOnce(&mut Self, &'v Map<String, Value>, &str),
    ) {
        let Some(v) = o.get(name) else { return };
        let p = at(base, name);
        match v.as_object() {
            Some(m) => each(self, m, &p),
            None => self.report(p, "must be an object"),
        }
    }

    /// At least one of `names` must be present.
    pub(crate) fn any_of(&mut self, o: &Map<String, Value>, base: &str, names: &[&str]) {
        if !names.iter().any(|n| o.contains_key(*n)) {
            self.report(
                base,
                format!("at least one of {} must be present", names.join(", ")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_check_form_and_target() {
        let id = StixId::parse("sighting--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f").unwrap();
        let mut ctx = Ctx::new(Some(&id), None);
        let o = json!({
            "sighting_of_ref": "file--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "where_sighted_refs": ["identity--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", "nope"],
        });
        let o = o.as_object().unwrap();
        ctx.properties(o, "", true);
        ctx.reference(o, "", "sighting_of_ref", Refs::Sdo);
        ctx.references(o, "", "where_sighted_refs", Refs::Types(&["identity"]));
        let paths: Vec<&str> = ctx.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["where_sighted_refs[1]", "sighting_of_ref"]);
    }
}
