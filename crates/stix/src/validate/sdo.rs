//! The STIX domain objects (§4) and relationship objects (§5).

use serde_json::{Map, Value};

use super::ctx::{Ctx, Refs, at};
use super::{ObjectKind, SRO_TYPES, validate_map};

/// Type-specific rules of one SDO or SRO whose type is defined by STIX 2.1.
pub(crate) fn check(ctx: &mut Ctx<'_>, o: &Map<String, Value>, ty: &str) {
    let b = "";
    match ty {
        "attack-pattern" => {
            ctx.req_string(o, b, "name");
            ctx.string(o, b, "description");
            ctx.string_list(o, b, "aliases");
            ctx.kill_chain_phases(o, b);
        }
        "campaign" => {
            ctx.req_string(o, b, "name");
            ctx.strings(o, b, &["description", "objective"]);
            ctx.string_list(o, b, "aliases");
            seen(ctx, o);
        }
        "course-of-action" => {
            ctx.req_string(o, b, "name");
            ctx.string(o, b, "description");
        }
        "grouping" => {
            ctx.req_string(o, b, "name");
            ctx.string(o, b, "description");
            // `context` is an open vocabulary: any string is allowed.
            ctx.req_string(o, b, "context");
            object_refs(ctx, o, Refs::Any);
        }
        "identity" => {
            ctx.req_string(o, b, "name");
            // identity_class and sectors are open vocabularies.
            ctx.strings(
                o,
                b,
                &["description", "identity_class", "contact_information"],
            );
            ctx.string_lists(o, b, &["roles", "sectors"]);
        }
        "incident" => {
            ctx.req_string(o, b, "name");
            ctx.string(o, b, "description");
            ctx.kill_chain_phases(o, b);
        }
        "indicator" => indicator(ctx, o),
        "infrastructure" => {
            ctx.req_string(o, b, "name");
            ctx.string(o, b, "description");
            ctx.string_lists(o, b, &["infrastructure_types", "aliases"]);
            ctx.kill_chain_phases(o, b);
            seen(ctx, o);
        }
        "intrusion-set" => {
            ctx.req_string(o, b, "name");
            ctx.strings(
                o,
                b,
                &["description", "resource_level", "primary_motivation"],
            );
            ctx.string_lists(o, b, &["aliases", "goals", "secondary_motivations"]);
            seen(ctx, o);
        }
        "location" => location(ctx, o),
        "malware" => malware(ctx, o),
        "malware-analysis" => malware_analysis(ctx, o),
        "note" => {
            ctx.string(o, b, "abstract");
            ctx.req_string(o, b, "content");
            ctx.string_list(o, b, "authors");
            object_refs(ctx, o, Refs::Any);
        }
        "observed-data" => observed_data(ctx, o),
        "opinion" => {
            ctx.string(o, b, "explanation");
            ctx.string_list(o, b, "authors");
            if ctx.required(o, b, "opinion").is_some() {
                ctx.enumeration(
                    o,
                    b,
                    "opinion",
                    &[
                        "strongly-disagree",
                        "disagree",
                        "neutral",
                        "agree",
                        "strongly-agree",
                    ],
                );
            }
            object_refs(ctx, o, Refs::Any);
        }
        "report" => {
            ctx.req_string(o, b, "name");
            ctx.string(o, b, "description");
            ctx.string_list(o, b, "report_types");
            if ctx.required(o, b, "published").is_some() {
                ctx.timestamp(o, b, "published");
            }
            object_refs(ctx, o, Refs::Any);
        }
        "threat-actor" => {
            ctx.req_string(o, b, "name");
            ctx.strings(
                o,
                b,
                &[
                    "description",
                    "sophistication",
                    "resource_level",
                    "primary_motivation",
                ],
            );
            ctx.string_lists(
                o,
                b,
                &[
                    "threat_actor_types",
                    "aliases",
                    "roles",
                    "goals",
                    "secondary_motivations",
                    "personal_motivations",
                ],
            );
            seen(ctx, o);
        }
        "tool" => {
            ctx.req_string(o, b, "name");
            ctx.strings(o, b, &["description", "tool_version"]);
            ctx.string_lists(o, b, &["tool_types", "aliases"]);
            ctx.kill_chain_phases(o, b);
        }
        "vulnerability" => {
            ctx.req_string(o, b, "name");
            ctx.string(o, b, "description");
        }
        "relationship" => relationship(ctx, o),
        "sighting" => sighting(ctx, o),
        _ => {}
    }
}

/// `first_seen` <= `last_seen`.
fn seen(ctx: &mut Ctx<'_>, o: &Map<String, Value>) {
    ctx.timestamps(o, "", &["first_seen", "last_seen"]);
    ctx.order(o, "", "first_seen", "last_seen", false);
}

/// A required, non-empty `object_refs`.
fn object_refs(ctx: &mut Ctx<'_>, o: &Map<String, Value>, refs: Refs) {
    if ctx.required(o, "", "object_refs").is_some() {
        ctx.list(o, "", "object_refs");
        ctx.references(o, "", "object_refs", refs);
    }
}

/// §4.7: `pattern`, `pattern_type` (open vocabulary) and `valid_from` are required;
/// `valid_until` is after `valid_from`. The pattern's grammar is the pattern crate's to check.
fn indicator(ctx: &mut Ctx<'_>, o: &Map<String, Value>) {
    let b = "";
    ctx.strings(o, b, &["name", "description", "pattern_version"]);
    ctx.string_list(o, b, "indicator_types");
    ctx.req_string(o, b, "pattern");
    ctx.req_string(o, b, "pattern_type");
    if ctx.required(o, b, "valid_from").is_some() {
        ctx.timestamp(o, b, "valid_from");
    }
    ctx.timestamp(o, b, "valid_until");
    ctx.order(o, b, "valid_from", "valid_until", true);
    ctx.kill_chain_phases(o, b);
}

/// §4.10: one of `region`, `country` or `latitude`+`longitude`; the coordinates go together, in
/// range, and `precision` needs them.
fn location(ctx: &mut Ctx<'_>, o: &Map<String, Value>) {
    let b = "";
    ctx.strings(
        o,
        b,
        &[
            "name",
            "description",
            "region",
            "country",
            "administrative_area",
            "city",
            "street_address",
            "postal_code",
        ],
    );
    ctx.number(o, b, "latitude", -90.0, 90.0);
    ctx.number(o, b, "longitude", -180.0, 180.0);
    ctx.number(o, b, "precision", 0.0, f64::MAX);
    let (lat, lon) = (o.contains_key("latitude"), o.contains_key("longitude"));
    if lat != lon {
        ctx.report(
            if lat { "longitude" } else { "latitude" },
            "latitude and longitude must be present together",
        );
    }
    if o.contains_key("precision") && !(lat && lon) {
        ctx.report("precision", "precision requires latitude and longitude");
    }
    if !(o.contains_key("region") || o.contains_key("country") || (lat && lon)) {
        ctx.report(
            "",
            "one of region, country, or latitude and longitude must be present",
        );
    }
}

/// §4.11: `is_family` is required; a family needs a `name`.
fn malware(ctx: &mut Ctx<'_>, o: &Map<String, Value>) {
    let b = "";
    ctx.strings(o, b, &["name", "description"]);
    if ctx.required(o, b, "is_family").is_some() && ctx.boolean(o, b, "is_family") == Some(true) {
        ctx.required(o, b, "name");
    }
    ctx.string_lists(
        o,
        b,
        &[
            "malware_types",
            "aliases",
            "architecture_execution_envs",
            "implementation_languages",
            "capabilities",
        ],
    );
    ctx.kill_chain_phases(o, b);
    seen(ctx, o);
    ctx.references(o, b, "operating_system_refs", Refs::Types(&["software"]));
    ctx.references(o, b, "sample_refs", Refs::Types(&["file", "artifact"]));
}

/// §4.12: `product`, and `result` or `analysis_sco_refs`.
fn malware_analysis(ctx: &mut Ctx<'_>, o: &Map<String, Value>) {
    let b = "";
    ctx.req_string(o, b, "product");
    ctx.strings(
        o,
        b,
        &[
            "version",
            "configuration_version",
            "analysis_engine_version",
            "analysis_definition_version",
            "result_name",
            "result",
        ],
    );
    ctx.string_list(o, b, "modules");
    ctx.timestamps(o, b, &["submitted", "analysis_started", "analysis_ended"]);
    ctx.reference(o, b, "host_vm_ref", Refs::Types(&["software"]));
    ctx.reference(o, b, "operating_system_ref", Refs::Types(&["software"]));
    ctx.references(o, b, "installed_software_refs", Refs::Types(&["software"]));
    ctx.references(o, b, "analysis_sco_refs", Refs::Sco);
    ctx.reference(
        o,
        b,
        "sample_ref",
        Refs::Types(&["file", "artifact", "network-traffic"]),
    );
    ctx.any_of(o, b, &["result", "analysis_sco_refs"]);
}

/// §4.13: observation window, count, and exactly one of `objects` (deprecated) or `object_refs`.
fn observed_data(ctx: &mut Ctx<'_>, o: &Map<String, Value>) {
    let b = "";
    for name in ["first_observed", "last_observed"] {
        if ctx.required(o, b, name).is_some() {
            ctx.timestamp(o, b, name);
        }
    }
    ctx.order(o, b, "first_observed", "last_observed", false);
    if ctx.required(o, b, "number_observed").is_some() {
        ctx.integer(o, b, "number_observed", Some(1), Some(999_999_999));
    }
    match (o.get("objects"), o.get("object_refs")) {
        (Some(_), Some(_)) => ctx.report("", "objects and object_refs must not both be present"),
        (None, None) => ctx.report("", "one of objects or object_refs must be present"),
        (None, Some(_)) => {
            if let Some(refs) = ctx.list(o, b, "object_refs") {
                let sco = refs.iter().filter_map(Value::as_str).any(|r| {
                    r.split_once("--")
                        .is_some_and(|(ty, _)| !SRO_TYPES.contains(&ty))
                });
                if !sco {
                    ctx.report("object_refs", "must reference at least one SCO");
                }
            }
            ctx.references(o, b, "object_refs", Refs::ScoOrSro);
        }
        (Some(Value::Object(objects)), None) => {
            if objects.is_empty() {
                ctx.report("objects", "must contain at least one object");
            }
            embedded(ctx, objects);
        }
        (Some(_), None) => ctx.report(
            "objects",
            "must be a dictionary of cyber-observable objects",
        ),
    }
}

/// The SCOs of the deprecated `objects` dictionary, whose references are keys of that dictionary.
fn embedded(ctx: &mut Ctx<'_>, objects: &Map<String, Value>) {
    for (key, obj) in objects {
        let base = at("objects", key);
        let Some(m) = obj.as_object() else {
            ctx.report(base, "must be a cyber-observable object");
            continue;
        };
        let mut inner = Ctx::new(ctx.id, Some(objects));
        if matches!(ObjectKind::of(m), ObjectKind::Sco { .. }) {
            validate_map(&mut inner, m, &base);
        } else {
            inner.report(at(&base, "type"), "must be a cyber-observable object type");
        }
        ctx.problems.append(&mut inner.problems);
    }
}

/// §5.1: `relationship_type`, `source_ref`, `target_ref` (SDOs or SCOs, never SROs or meta
/// objects); `stop_time` after `start_time`.
fn relationship(ctx: &mut Ctx<'_>, o: &Map<String, Value>) {
    let b = "";
    if let Some(rt) = ctx.req_string(o, b, "relationship_type")
        && (rt.is_empty()
            || !rt
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'))
    {
        ctx.report("relationship_type", "must contain only a-z, 0-9 and '-'");
    }
    ctx.string(o, b, "description");
    for name in ["source_ref", "target_ref"] {
        if ctx.required(o, b, name).is_some() {
            ctx.reference(o, b, name, Refs::SdoOrSco);
        }
    }
    ctx.timestamps(o, b, &["start_time", "stop_time"]);
    ctx.order(o, b, "start_time", "stop_time", true);
}

/// §5.2: `sighting_of_ref` (an SDO), observations, places, window and count.
fn sighting(ctx: &mut Ctx<'_>, o: &Map<String, Value>) {
    let b = "";
    ctx.string(o, b, "description");
    seen(ctx, o);
    ctx.integer(o, b, "count", Some(0), Some(999_999_999));
    if ctx.required(o, b, "sighting_of_ref").is_some() {
        ctx.reference(o, b, "sighting_of_ref", Refs::Sdo);
    }
    ctx.references(o, b, "observed_data_refs", Refs::Types(&["observed-data"]));
    ctx.references(
        o,
        b,
        "where_sighted_refs",
        Refs::Types(&["identity", "location"]),
    );
    ctx.boolean(o, b, "summary");
}
