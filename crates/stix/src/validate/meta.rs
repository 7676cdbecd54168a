//! The STIX meta objects (§7): marking definitions (statement, TLP 1.0 and the TLP 2.0
//! extension form), language content and extension definitions.

use serde_json::{Map, Value};

use super::ctx::{Ctx, EXTENSION_TYPES, Refs, at};
use super::forms::{is_language_tag, is_property_name};
use crate::tlp::{TLP1_MARKING_IDS, TLP2_EXTENSION_ID, TLP2_MARKING_IDS, Tlp};

/// The `created` timestamp of the four TLP 1.0 marking definitions.
const TLP1_CREATED: &str = "2017-01-20T00:00:00.000Z";

/// §7.2.1: a marking is defined either by `definition_type` + `definition` (statement, tlp or
/// another type) or by an extension (the TLP 2.0 form). The predefined TLP markings must be exactly
/// the objects OASIS publishes.
pub(crate) fn marking_definition(ctx: &mut Ctx<'_>, o: &Map<String, Value>) {
    let b = "";
    ctx.string(o, b, "name");
    let own_id = o.get("id").and_then(Value::as_str).unwrap_or("");
    if let Some(Value::Array(refs)) = o.get("object_marking_refs")
        && let Some(i) = refs.iter().position(|r| r.as_str() == Some(own_id))
    {
        ctx.report(
            format!("object_marking_refs[{i}]"),
            "a marking definition must not mark itself",
        );
    }
    if let Some(Value::Array(gms)) = o.get("granular_markings")
        && let Some(i) = gms
            .iter()
            .position(|g| g.get("marking_ref").and_then(Value::as_str) == Some(own_id))
    {
        ctx.report(
            format!("granular_markings[{i}].marking_ref"),
            "a marking definition must not mark itself",
        );
    }
    let has_extensions = o.contains_key("extensions");
    let definition_type = ctx.string(o, b, "definition_type");
    match (definition_type, o.get("definition")) {
        (None, None) if !has_extensions => {
            ctx.report(
                "definition_type",
                "required unless the marking is defined by an extension",
            );
            ctx.report(
                "definition",
                "required unless the marking is defined by an extension",
            );
        }
        (Some(_), None) => ctx.report("definition", "required when definition_type is present"),
        (None, Some(_)) => ctx.report("definition_type", "required when definition is present"),
        _ => {}
    }
    let definition = match o.get("definition") {
        Some(Value::Object(d)) => Some(d),
        Some(_) => {
            ctx.report("definition", "must be an object");
            None
        }
        None => None,
    };
    match (definition_type, definition) {
        (Some("statement"), Some(d)) => {
            ctx.req_string(d, "definition", "statement");
        }
        (Some("tlp"), Some(d)) => tlp1(ctx, o, d),
        _ => {}
    }
    if let Some(level) = TLP1_MARKING_IDS
        .iter()
        .find(|(_, id)| *id == own_id)
        .map(|(t, _)| *t)
        && definition_type != Some("tlp")
    {
        ctx.report(
            "definition_type",
            format!("the TLP 1.0 marking for {level} must have definition_type \"tlp\""),
        );
    }
    tlp2(ctx, o, own_id);
}

/// The TLP 1.0 markings are four fixed objects (§7.2.1.4).
fn tlp1(ctx: &mut Ctx<'_>, o: &Map<String, Value>, d: &Map<String, Value>) {
    let id = o.get("id").and_then(Value::as_str).unwrap_or("");
    let Some(level) = TLP1_MARKING_IDS
        .iter()
        .find(|(_, known)| *known == id)
        .map(|(t, _)| *t)
    else {
        ctx.report(
            "id",
            "a definition_type \"tlp\" marking must be one of the four predefined TLP 1.0 markings",
        );
        return;
    };
    let colour = if level == Tlp::Clear {
        "white"
    } else {
        level.as_str()
    };
    if d.get("tlp").and_then(Value::as_str) != Some(colour) {
        ctx.report(
            "definition.tlp",
            format!("must be {colour:?} for this marking id"),
        );
    }
    let name = format!("TLP:{}", colour.to_ascii_uppercase());
    if o.get("name").and_then(Value::as_str) != Some(name.as_str()) {
        ctx.report("name", format!("must be {name:?} for this marking id"));
    }
    if o.get("created").and_then(Value::as_str) != Some(TLP1_CREATED) {
        ctx.report(
            "created",
            format!("must be {TLP1_CREATED:?} for the TLP 1.0 markings"),
        );
    }
}

/// The TLP 2.0 markings use the OASIS TLP extension with a `tlp_2_0` level.
fn tlp2(ctx: &mut Ctx<'_>, o: &Map<String, Value>, own_id: &str) {
    let ext = o
        .get("extensions")
        .and_then(|e| e.get(TLP2_EXTENSION_ID))
        .and_then(Value::as_object);
    let predefined = TLP2_MARKING_IDS
        .iter()
        .find(|(_, id)| *id == own_id)
        .map(|(t, _)| *t);
    let Some(ext) = ext else {
        if let Some(level) = predefined {
            ctx.report(
                "extensions",
                format!("the TLP 2.0 marking for {level} must carry the TLP 2.0 extension"),
            );
        }
        return;
    };
    let path = format!("extensions.{TLP2_EXTENSION_ID}");
    if ext.get("extension_type").and_then(Value::as_str) != Some("property-extension") {
        ctx.report(
            at(&path, "extension_type"),
            "must be \"property-extension\"",
        );
    }
    let level = match ext.get("tlp_2_0").and_then(Value::as_str) {
        Some(s) => match Tlp::ALL.iter().find(|t| t.as_str() == s) {
            Some(t) => Some(*t),
            None => {
                ctx.report(
                    at(&path, "tlp_2_0"),
                    format!("{s:?} is not one of clear, green, amber, amber+strict, red"),
                );
                None
            }
        },
        None => {
            ctx.report(at(&path, "tlp_2_0"), "required string property is missing");
            None
        }
    };
    if let (Some(want), Some(got)) = (predefined, level)
        && want != got
    {
        ctx.report(
            at(&path, "tlp_2_0"),
            format!("the marking {own_id} is TLP:{want}, not {got}"),
        );
    }
}

/// §7.1: `object_ref` (any object but a language-content or bundle) and `contents`, a dictionary
/// from language tags to dictionaries of translated properties.
pub(crate) fn language_content(ctx: &mut Ctx<'_>, o: &Map<String, Value>) {
    let b = "";
    if ctx.required(o, b, "object_ref").is_some() {
        ctx.reference(o, b, "object_ref", Refs::Any);
        if let Some(s) = o.get("object_ref").and_then(Value::as_str)
            && s.starts_with("language-content--")
        {
            ctx.report("object_ref", "must not reference another language-content");
        }
    }
    ctx.timestamp(o, b, "object_modified");
    if ctx.required(o, b, "contents").is_none() {
        return;
    }
    let Some(contents) = ctx.dict(o, b, "contents") else {
        return;
    };
    for (lang, translated) in contents {
        let p = at("contents", lang);
        if !is_language_tag(lang) {
            ctx.report(&p, format!("{lang:?} is not an RFC 5646 language tag"));
        }
        let Some(props) = translated.as_object() else {
            ctx.report(p, "must be a dictionary of translated properties");
            continue;
        };
        if props.is_empty() {
            ctx.report(&p, "must translate at least one property");
        }
        for k in props.keys() {
            if !is_property_name(k) {
                ctx.report(
                    at(&p, k),
                    "keys must be property names (3 to 250 of a-z, 0-9, '_')",
                );
            }
        }
    }
}

/// §7.3: `name`, `schema`, `version`, `extension_types` and `created_by_ref` are required;
/// `extension_properties` only with `toplevel-property-extension`.
pub(crate) fn extension_definition(ctx: &mut Ctx<'_>, o: &Map<String, Value>) {
    let b = "";
    ctx.required(o, b, "created_by_ref");
    ctx.req_string(o, b, "name");
    ctx.string(o, b, "description");
    ctx.req_string(o, b, "schema");
    ctx.req_string(o, b, "version");
    if ctx.required(o, b, "extension_types").is_some()
        && let Some(types) = ctx.string_list(o, b, "extension_types")
    {
        for (i, t) in types.iter().enumerate() {
            if !EXTENSION_TYPES.contains(t) {
                ctx.report(
                    format!("extension_types[{i}]"),
                    format!("{t:?} is not one of {}", EXTENSION_TYPES.join(", ")),
                );
            }
        }
        if o.contains_key("extension_properties") && !types.contains(&"toplevel-property-extension")
        {
            ctx.report(
                "extension_properties",
                "only allowed when extension_types contains toplevel-property-extension",
            );
        }
    }
    if let Some(props) = ctx.string_list(o, b, "extension_properties") {
        for (i, p) in props.iter().enumerate() {
            if !is_property_name(p) {
                ctx.report(
                    format!("extension_properties[{i}]"),
                    "must be a property name",
                );
            }
        }
    }
}
