//! Why an observation matched: each property test of the indicator's pattern, whether it holds
//! on the observation, and the observed values its object path selects.
//!
//! Each test is judged by the exact evaluator on its own (as the one-test pattern `[test]`), so
//! the verdicts are the engine's, not a second implementation of the operators; only reading
//! the values along a path is done here, for display.

use kizuna_pattern::ast::{Comparison, ComparisonExpr, ObservationExpr, PathStep};
use kizuna_pattern::{Observations, Pattern, SpecVersion};
use serde_json::Value;

/// One property test of a pattern, judged on an observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestExplanation {
    /// The test in canonical form, e.g. `email-addr:value = 'a@example.com'`.
    pub test: String,
    /// Whether some object of the observation satisfies it.
    pub holds: bool,
    /// The observed values its path selects (JSON), at most [`MAX_VALUES`].
    pub values: Vec<String>,
}

/// Values listed per test at most.
pub const MAX_VALUES: usize = 8;

fn tests<'p>(e: &'p ObservationExpr, out: &mut Vec<&'p Comparison>) {
    fn inner<'p>(e: &'p ComparisonExpr, out: &mut Vec<&'p Comparison>) {
        match e {
            ComparisonExpr::And(v) | ComparisonExpr::Or(v) => v.iter().for_each(|c| inner(c, out)),
            ComparisonExpr::Test(c) => out.push(c),
        }
    }
    match e {
        ObservationExpr::Comparison(c) => inner(c, out),
        ObservationExpr::And(v) | ObservationExpr::Or(v) | ObservationExpr::FollowedBy(v) => {
            v.iter().for_each(|o| tests(o, out));
        }
        ObservationExpr::Qualified(o, _) => tests(o, out),
    }
}

/// Every property test of `pattern`, judged on the observation `bundle` (a STIX bundle with
/// observed-data and SCOs).
pub fn explain(pattern: &Pattern, bundle: &Value) -> Vec<TestExplanation> {
    let loaded = Observations::from_json(bundle, SpecVersion::V21).ok();
    let objects: Vec<&Value> = bundle
        .get("objects")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let mut all = Vec::new();
    tests(pattern.ast(), &mut all);
    all.into_iter()
        .map(|c| {
            let test = c.to_string();
            let holds = loaded.as_ref().is_some_and(|o| {
                Pattern::parse(&format!("[{test}]"))
                    .ok()
                    .and_then(|p| p.is_match(o).ok())
                    .unwrap_or(false)
            });
            let mut values = Vec::new();
            for o in objects
                .iter()
                .filter(|o| o.get("type").and_then(Value::as_str) == Some(&c.path.object_type))
            {
                walk(o, &c.path.steps, &objects, 0, &mut values);
            }
            values.truncate(MAX_VALUES);
            TestExplanation {
                test,
                holds,
                values,
            }
        })
        .collect()
}

fn walk(
    value: &Value,
    steps: &[PathStep],
    objects: &[&Value],
    depth: usize,
    out: &mut Vec<String>,
) {
    if out.len() >= MAX_VALUES || depth > 32 {
        return;
    }
    let Some((step, rest)) = steps.split_first() else {
        match value {
            Value::Array(items) => items.iter().for_each(|i| out.push(i.to_string())),
            v => out.push(v.to_string()),
        }
        return;
    };
    let deref = |id: &Value| {
        let id = id.as_str()?;
        objects
            .iter()
            .copied()
            .find(|o| o.get("id").and_then(Value::as_str) == Some(id))
    };
    match (step, value) {
        (PathStep::Key(k), Value::Object(map)) => {
            let Some(v) = map.get(k) else { return };
            if k.ends_with("_ref") {
                if let Some(target) = deref(v) {
                    walk(target, rest, objects, depth + 1, out);
                }
            } else if k.ends_with("_refs") {
                let rest = match rest.first() {
                    Some(PathStep::AnyIndex | PathStep::Index(_)) => &rest[1..],
                    _ => rest,
                };
                for target in v.as_array().into_iter().flatten().filter_map(deref) {
                    walk(target, rest, objects, depth + 1, out);
                }
            } else {
                walk(v, rest, objects, depth + 1, out);
            }
        }
        (PathStep::AnyIndex, Value::Array(items)) => {
            items
                .iter()
                .for_each(|i| walk(i, rest, objects, depth + 1, out));
        }
        (PathStep::Index(n), Value::Array(items)) => {
            if let Some(i) = usize::try_from(*n).ok().and_then(|n| items.get(n)) {
                walk(i, rest, objects, depth + 1, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn says_which_test_held_on_which_value() {
        let bundle = json!({"type": "bundle", "id": "bundle--6d5a8a7e-4a8e-4c1e-9a5e-1b2c3d4e5f60",
        "objects": [
            {"type": "observed-data", "spec_version": "2.1",
             "id": "observed-data--6d5a8a7e-4a8e-4c1e-9a5e-1b2c3d4e5f61",
             "created": "2024-01-01T00:00:00Z", "modified": "2024-01-01T00:00:00Z",
             "first_observed": "2024-01-01T00:00:00Z", "last_observed": "2024-01-01T00:00:00Z",
             "number_observed": 1,
             "object_refs": ["email-message--6d5a8a7e-4a8e-4c1e-9a5e-1b2c3d4e5f62",
                             "email-addr--6d5a8a7e-4a8e-4c1e-9a5e-1b2c3d4e5f63"]},
            {"type": "email-message", "id": "email-message--6d5a8a7e-4a8e-4c1e-9a5e-1b2c3d4e5f62",
             "is_multipart": false, "subject": "Invoice",
             "from_ref": "email-addr--6d5a8a7e-4a8e-4c1e-9a5e-1b2c3d4e5f63"},
            {"type": "email-addr", "id": "email-addr--6d5a8a7e-4a8e-4c1e-9a5e-1b2c3d4e5f63",
             "value": "evil@example.net"}
        ]});
        let p = Pattern::parse(
            "[email-message:from_ref.value LIKE '%@example.net' OR email-message:subject = 'Hi']",
        )
        .unwrap();
        let e = explain(&p, &bundle);
        assert_eq!(e.len(), 2);
        assert!(e[0].holds);
        assert_eq!(e[0].values, vec!["\"evil@example.net\"".to_owned()]);
        assert!(!e[1].holds);
        assert_eq!(e[1].values, vec!["\"Invoice\"".to_owned()]);
    }
}
