//! The common properties of §3.2 (versioning, provenance, external references, markings,
//! extensions), by object family.

use serde_json::{Map, Value};

use super::ObjectKind;
use super::ctx::{Ctx, EXTENSION_TYPES, Refs, at, idx};
use super::forms::{is_language_tag, is_uri, rfc4122};
use crate::id::StixId;

/// The common properties (§3.2) and the generic property rules, by object family.
pub(crate) fn check_common(
    ctx: &mut Ctx<'_>,
    o: &Map<String, Value>,
    base: &str,
    kind: ObjectKind,
) {
    ctx.properties(o, base, true);
    let versioned = !matches!(kind, ObjectKind::Sco { .. } | ObjectKind::Bundle);
    // SCOs embedded in observed-data (`base` not empty) carry no spec_version.
    if base.is_empty() && versioned {
        ctx.required(o, base, "spec_version");
    }
    match o.get("spec_version") {
        Some(Value::String(v)) if v == "2.1" => {}
        Some(Value::String(v)) => ctx.report(
            at(base, "spec_version"),
            format!("must be \"2.1\", found {v:?}"),
        ),
        Some(_) => ctx.report(at(base, "spec_version"), "must be a string"),
        None => {}
    }
    if versioned {
        ctx.required(o, base, "created");
        if kind != ObjectKind::MarkingDefinition {
            ctx.required(o, base, "modified");
        }
    }
    for name in ["created", "modified"] {
        let parsed = ctx.timestamp(o, base, name).is_some();
        if parsed
            && versioned
            && o.get(name)
                .and_then(Value::as_str)
                .is_some_and(|s| !has_millis(s))
        {
            ctx.report(
                at(base, name),
                "must be precise to the millisecond (at least 3 fractional digits)",
            );
        }
    }
    ctx.order(o, base, "created", "modified", false);
    ctx.reference(o, base, "created_by_ref", Refs::Types(&["identity"]));
    ctx.boolean(o, base, "revoked");
    if ctx.boolean(o, base, "defanged").is_some() && !matches!(kind, ObjectKind::Sco { .. }) {
        ctx.report(at(base, "defanged"), "only SCOs may carry defanged");
    }
    ctx.string_list(o, base, "labels");
    ctx.integer(o, base, "confidence", Some(0), Some(100));
    if let Some(lang) = ctx.string(o, base, "lang")
        && !is_language_tag(lang)
    {
        ctx.report(
            at(base, "lang"),
            format!("{lang:?} is not an RFC 5646 language tag"),
        );
    }
    ctx.objects(o, base, "external_references", |ctx, r, p| {
        external_reference(ctx, r, p)
    });
    ctx.references(
        o,
        base,
        "object_marking_refs",
        Refs::Types(&["marking-definition"]),
    );
    granular_markings(ctx, o, base);
    extensions(ctx, o, base);
}

fn has_millis(s: &str) -> bool {
    s.get(19..)
        .and_then(|f| f.strip_prefix('.'))
        .is_some_and(|f| f.bytes().take_while(u8::is_ascii_digit).count() >= 3)
}

/// §2.5: `source_name` and at least one of `description`, `url`, `external_id`; the `cve` and
/// `capec` sources must carry an identifier of their form.
fn external_reference(ctx: &mut Ctx<'_>, r: &Map<String, Value>, p: &str) {
    let source = ctx.req_string(r, p, "source_name");
    ctx.string(r, p, "description");
    if let Some(url) = ctx.string(r, p, "url")
        && !is_uri(url)
    {
        ctx.report(at(p, "url"), "must be a URL");
    }
    let external_id = ctx.string(r, p, "external_id");
    ctx.hashes(r, p, "hashes");
    ctx.any_of(r, p, &["description", "url", "external_id"]);
    match (source, external_id) {
        (Some("cve"), Some(eid)) if !is_cve(eid) => ctx.report(
            at(p, "external_id"),
            "a cve reference's external_id must look like CVE-YYYY-NNNN",
        ),
        (Some("capec"), Some(eid)) if !is_capec(eid) => ctx.report(
            at(p, "external_id"),
            "a capec reference's external_id must look like CAPEC-NNN",
        ),
        (Some("cve" | "capec"), None) => ctx.report(
            at(p, "external_id"),
            "required for cve and capec references",
        ),
        _ => {}
    }
}

fn is_cve(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("CVE-") else {
        return false;
    };
    let Some((year, num)) = rest.split_once('-') else {
        return false;
    };
    year.len() == 4
        && year.bytes().all(|b| b.is_ascii_digit())
        && num.len() >= 4
        && num.bytes().all(|b| b.is_ascii_digit())
        && (num.len() == 4 || !num.starts_with('0'))
}

fn is_capec(s: &str) -> bool {
    s.strip_prefix("CAPEC-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// §7.2.3: each granular marking has non-empty `selectors` that resolve in the object, and
/// exactly one of `marking_ref` (a marking-definition) and `lang`.
fn granular_markings(ctx: &mut Ctx<'_>, o: &Map<String, Value>, base: &str) {
    ctx.objects(o, base, "granular_markings", |ctx, g, p| {
        match (g.get("marking_ref"), g.get("lang")) {
            (Some(_), Some(_)) => ctx.report(p, "marking_ref and lang must not both be present"),
            (None, None) => ctx.report(p, "one of marking_ref or lang must be present"),
            _ => {}
        }
        ctx.properties(g, p, false);
        ctx.reference(g, p, "marking_ref", Refs::Types(&["marking-definition"]));
        if let Some(lang) = ctx.string(g, p, "lang")
            && !is_language_tag(lang)
        {
            ctx.report(
                at(p, "lang"),
                format!("{lang:?} is not an RFC 5646 language tag"),
            );
        }
        ctx.required(g, p, "selectors");
        if let Some(selectors) = ctx.string_list(g, p, "selectors") {
            for (i, sel) in selectors.iter().enumerate() {
                if let Err(why) = resolve_selector(o, sel) {
                    ctx.report(
                        idx(&at(p, "selectors"), i),
                        format!("selector {sel:?} {why}"),
                    );
                }
            }
        }
    });
}

/// A selector is a dotted path of property names and `[n]` list indexes that must reach a
/// property present in the object.
fn resolve_selector(o: &Map<String, Value>, sel: &str) -> Result<(), String> {
    let mut cur: Option<&Value> = None;
    for seg in sel.split('.') {
        let index = seg
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .map(|s| s.parse::<usize>());
        let next = match (cur, index) {
            (_, Some(Err(_))) => return Err(format!("has a malformed list index {seg:?}")),
            (None, Some(Ok(_))) => return Err("must start with a property name".to_owned()),
            (None, None) => o.get(seg),
            (Some(Value::Array(a)), Some(Ok(i))) => a.get(i),
            (Some(_), Some(Ok(_))) => {
                return Err(format!("indexes {seg} into something that is not a list"));
            }
            (Some(Value::Object(m)), None) => m.get(seg),
            (Some(_), None) => {
                return Err(format!(
                    "looks up {seg:?} in something that is not an object"
                ));
            }
        };
        match next {
            Some(v) => cur = Some(v),
            None => return Err(format!("does not resolve: {seg:?} is not present")),
        }
    }
    Ok(())
}

/// The `extensions` dictionary: keys are extension-definition ids (their value names an
/// `extension_type`) or predefined `…-ext` names; values are non-empty objects.
fn extensions(ctx: &mut Ctx<'_>, o: &Map<String, Value>, base: &str) {
    let Some(v) = o.get("extensions") else { return };
    let path = at(base, "extensions");
    let Some(m) = v.as_object() else {
        ctx.report(path, "must be a dictionary of extensions");
        return;
    };
    if m.is_empty() {
        ctx.report(&path, "must have at least one extension");
    }
    for (key, ext) in m {
        let p = at(&path, key);
        let is_definition = key.starts_with("extension-definition--");
        if is_definition && (StixId::parse(key).is_err() || !rfc4122(key)) {
            ctx.report(&p, "not a valid extension-definition identifier");
        }
        // §3.2: keys SHOULD be extension-definition ids or predefined extension names; any
        // other name is allowed as long as it is a valid dictionary key.
        if key.len() > 250
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            ctx.report(
                &p,
                "extension names are dictionary keys: at most 250 of a-z, A-Z, 0-9, '-', '_'",
            );
        }
        let Some(e) = ext.as_object() else {
            ctx.report(p, "an extension must be an object");
            continue;
        };
        if e.is_empty() {
            ctx.report(&p, "an extension must have at least one property");
        }
        ctx.properties(e, &p, false);
        if is_definition {
            if ctx.required(e, &p, "extension_type").is_some() {
                ctx.enumeration(e, &p, "extension_type", &EXTENSION_TYPES);
            }
        } else if e.contains_key("extension_type") {
            ctx.enumeration(e, &p, "extension_type", &EXTENSION_TYPES);
        }
    }
}
