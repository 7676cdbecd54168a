//! Data-driven cases from `testdata/patterns/`: parse/print cases and match cases. Match cases
//! are also run through stix2-matcher: they must agree with it unless the case names a
//! documented deviation, in which case the reference's (different) outcome is asserted too.

use std::path::PathBuf;

use kizuna_pattern::{Observations, Pattern, SpecVersion};
use serde_json::{Map, Value, json};

use crate::reference::{self, Outcome};

fn testdata(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/patterns")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn parse_cases() {
    let cases = testdata("parse.json");
    let mut n = 0;
    for case in cases.as_array().expect("parse.json is a list") {
        let pattern = case["pattern"].as_str().expect("pattern");
        n += 1;
        match (
            Pattern::parse(pattern),
            case.get("canonical"),
            case.get("error"),
        ) {
            (Ok(p), Some(canonical), None) => {
                let printed = p.to_string();
                assert_eq!(
                    printed,
                    canonical.as_str().expect("canonical"),
                    "canonical form of {pattern}"
                );
                let again = Pattern::parse(&printed).expect("canonical form parses");
                assert_eq!(again.ast(), p.ast(), "round trip of {pattern}");
            }
            (Err(e), None, Some(expected)) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(expected.as_str().expect("error")),
                    "error for {pattern:?} is {msg:?}, expected it to contain {expected}"
                );
                if let Some(at) = case.get("at").and_then(Value::as_str) {
                    assert_eq!(
                        e.position.to_string(),
                        at,
                        "position of the error in {pattern:?}"
                    );
                }
            }
            (r, _, _) => panic!("unexpected outcome for {pattern:?}: {r:?}"),
        }
    }
    assert!(n > 50, "parse.json holds {n} cases");
}

fn fix_refs(v: &mut Value, ids: &Map<String, Value>) {
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if k.ends_with("_ref") {
                    if let Some(id) = val.as_str().and_then(|s| ids.get(s)) {
                        *val = id.clone();
                    }
                } else if k.ends_with("_refs") {
                    if let Some(list) = val.as_array_mut() {
                        for item in list {
                            if let Some(id) = item.as_str().and_then(|s| ids.get(s)) {
                                *item = id.clone();
                            }
                        }
                    }
                } else {
                    fix_refs(val, ids);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| fix_refs(i, ids)),
        _ => {}
    }
}

fn od_id(i: usize) -> String {
    format!("observed-data--00000000-0000-4000-8000-{i:012}")
}

/// Expands the shorthand `observed` list into what stix2-matcher takes for `version`.
pub fn expand(observed: &Value, version: &str) -> Value {
    let mut out = Vec::new();
    for (i, od) in observed
        .as_array()
        .expect("observed is a list")
        .iter()
        .enumerate()
    {
        let first = od["first"].as_str().expect("first");
        let last = od.get("last").and_then(Value::as_str).unwrap_or(first);
        let count = od.get("count").and_then(Value::as_u64).unwrap_or(1);
        let objects = od["objects"].as_object().cloned().unwrap_or_default();
        if version == "2.0" {
            out.push(json!({
                "type": "observed-data", "id": od_id(i), "created": first, "modified": first,
                "first_observed": first, "last_observed": last, "number_observed": count,
                "objects": objects,
            }));
            continue;
        }
        let ids: Map<String, Value> = objects
            .iter()
            .map(|(k, o)| {
                let ty = o["type"].as_str().unwrap_or("x-unknown");
                let n: u64 = k.parse().unwrap_or(999);
                (
                    k.clone(),
                    json!(format!("{ty}--00000000-0000-4000-8000-{:06}{n:06}", i)),
                )
            })
            .collect();
        let mut scos = Vec::new();
        for (k, o) in objects {
            let mut o = o.clone();
            fix_refs(&mut o, &ids);
            if let Some(map) = o.as_object_mut() {
                map.insert("id".into(), ids[&k].clone());
            }
            scos.push(o);
        }
        let refs: Vec<Value> = ids.values().cloned().collect();
        let mut objects = vec![json!({
            "type": "observed-data", "spec_version": "2.1", "id": od_id(i),
            "created": first, "modified": first, "first_observed": first, "last_observed": last,
            "number_observed": count, "object_refs": refs,
        })];
        objects.extend(scos);
        // One bundle per observed-data: the loader must pool bundles like the reference does.
        out.push(json!({"type": "bundle", "id": format!("bundle--00000000-0000-4000-8000-{i:012}"), "objects": objects}));
    }
    Value::Array(out)
}

fn version_of(v: &str) -> SpecVersion {
    if v == "2.0" {
        SpecVersion::V20
    } else {
        SpecVersion::V21
    }
}

/// Our outcome, in the reference's terms.
pub fn ours(pattern: &str, version: &str, observations: &Value) -> (Outcome, Vec<String>) {
    let p = match Pattern::parse(pattern) {
        Ok(p) => p,
        Err(e) => return (Outcome::Error(e.to_string()), Vec::new()),
    };
    let obs = match Observations::from_json(observations, version_of(version)) {
        Ok(o) => o,
        Err(e) => return (Outcome::Error(e.to_string()), Vec::new()),
    };
    match p.matches(&obs) {
        Ok(r) => (Outcome::Matched(r.matched), r.observed_data_refs),
        Err(e) => (Outcome::Error(e.to_string()), Vec::new()),
    }
}

fn expected(v: &Value) -> Outcome {
    match v {
        Value::Bool(b) => Outcome::Matched(*b),
        Value::String(s) if s == "error" => Outcome::Error(String::new()),
        other => panic!("expected true, false or \"error\", found {other}"),
    }
}

fn same(a: &Outcome, b: &Outcome) -> bool {
    match (a, b) {
        (Outcome::Matched(x), Outcome::Matched(y)) => x == y,
        (Outcome::Error(_), Outcome::Error(_)) => true,
        _ => false,
    }
}

#[test]
fn match_cases() {
    let cases = testdata("match.json");
    let mut batch = Vec::new();
    let mut checks = Vec::new();
    let mut deviations = 0;
    for case in cases.as_array().expect("match.json is a list") {
        let name = case["name"].as_str().expect("name");
        let pattern = case["pattern"].as_str().expect("pattern");
        let layouts: Vec<String> = case
            .get("layouts")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_else(|| vec!["2.1".into(), "2.0".into()]);
        let spec = expected(&case["matched"]);
        let reference = case
            .get("reference")
            .map(expected)
            .unwrap_or_else(|| spec.clone());
        if case.get("reference").is_some() {
            deviations += 1;
            assert!(
                case.get("deviation")
                    .and_then(Value::as_str)
                    .is_some_and(|d| !d.is_empty()),
                "case {name}: a reference outcome different from the specification needs a \
                 \"deviation\" naming its entry in docs/patterns.md"
            );
        }
        for layout in layouts {
            let observations = expand(&case["observed"], &layout);
            let (got, refs) = ours(pattern, &layout, &observations);
            assert!(
                same(&got, &spec),
                "case {name} ({layout}): {pattern}\n  got {got:?}, the specification says {spec:?}"
            );
            if let Some(want) = case.get("refs").and_then(Value::as_array) {
                let want: Vec<String> = want
                    .iter()
                    .map(|i| od_id(i.as_u64().expect("ref index") as usize))
                    .collect();
                assert_eq!(refs, want, "case {name} ({layout}): observed_data_refs");
            }
            let layout_static: &str = if layout == "2.0" { "2.0" } else { "2.1" };
            batch.push((pattern.to_string(), layout_static, observations));
            checks.push((name.to_string(), layout, reference.clone()));
        }
    }
    assert!(
        checks.len() > 60,
        "match.json yields {} checks",
        checks.len()
    );
    assert!(
        deviations >= 10,
        "match.json documents {deviations} deviations"
    );
    let results = reference::run(&batch);
    for ((name, layout, want), got) in checks.iter().zip(&results) {
        assert!(
            same(got, want),
            "case {name} ({layout}): stix2-matcher said {got:?}, the case expects it to say {want:?}"
        );
    }
}
