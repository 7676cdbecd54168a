//! Observations: the input a pattern is matched against, loaded once and matched many times.
//!
//! The loader keeps SCOs as JSON (no typed model: property tests reach any property, custom ones
//! included, and loading stays cheap) and resolves, once, what every evaluation needs:
//! per observed-data its time interval, `number_observed`, and the objects it refers to.

use serde_json::Value;

use crate::error::ObservationError;
use crate::timestamp::Timestamp;

/// Which STIX layout the observations use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpecVersion {
    /// STIX 2.0: observed-data with an embedded `objects` dictionary keyed by local ids.
    V20,
    /// STIX 2.1: observed-data with `object_refs` into bundles (the default).
    #[default]
    V21,
}

/// STIX 2.1 object types that are not SCOs; a pattern's object type never selects them.
const NON_SCO_TYPES: &[&str] = &[
    "attack-pattern",
    "bundle",
    "campaign",
    "course-of-action",
    "extension-definition",
    "grouping",
    "identity",
    "incident",
    "indicator",
    "infrastructure",
    "intrusion-set",
    "language-content",
    "location",
    "malware",
    "malware-analysis",
    "marking-definition",
    "note",
    "observed-data",
    "opinion",
    "relationship",
    "report",
    "threat-actor",
    "tool",
    "sighting",
    "vulnerability",
];

/// One observed-data: what a pattern's square brackets are matched against.
#[derive(Debug, Clone)]
pub(crate) struct Observation {
    /// The observed-data id, when it has one.
    pub(crate) id: Option<String>,
    pub(crate) first: Timestamp,
    pub(crate) last: Timestamp,
    pub(crate) count: u64,
    /// Objects reachable from this observation: (local key or id, object). Includes non-root
    /// objects so that references resolve.
    pub(crate) objects: Vec<(String, Value)>,
    /// The objects a pattern's object type may select: index into `objects` and type.
    pub(crate) roots: Vec<(usize, String)>,
}

impl Observation {
    /// Resolves a reference made from inside this observation.
    pub(crate) fn resolve(&self, key: &str) -> Option<&Value> {
        self.objects.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// A loaded set of observations.
#[derive(Debug, Clone, Default)]
pub struct Observations {
    pub(crate) items: Vec<Observation>,
}

fn obs_err(id: &str, detail: impl Into<String>) -> ObservationError {
    ObservationError::ObservedData {
        id: id.to_string(),
        detail: detail.into(),
    }
}

fn header(od: &Value, label: &str) -> Result<(Timestamp, Timestamp, u64), ObservationError> {
    let ts = |key: &str| -> Result<Timestamp, ObservationError> {
        let s = od
            .get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| obs_err(label, format!("missing or non-string {key}")))?;
        Timestamp::parse_rfc3339(s).map_err(|e| obs_err(label, format!("{key}: {e}")))
    };
    let first = ts("first_observed")?;
    let last = ts("last_observed")?;
    let count = od
        .get("number_observed")
        .and_then(Value::as_u64)
        .filter(|&n| n >= 1)
        .ok_or_else(|| obs_err(label, "number_observed must be an integer >= 1"))?;
    if first > last {
        return Err(obs_err(label, "first_observed is later than last_observed"));
    }
    Ok((first, last, count))
}

impl Observations {
    /// Loads what `stix2-matcher -s 2.1` (or `-s 2.0`) takes: a JSON list (or one value) of
    /// bundles and/or bare objects for 2.1, of observed-data SDOs with embedded objects for 2.0.
    ///
    /// For 2.1 all objects of all bundles form one pool, as in the reference matcher; each
    /// observed-data sees the objects its `object_refs` name.
    pub fn from_json(input: &Value, version: SpecVersion) -> Result<Self, ObservationError> {
        let top: Vec<&Value> = match input {
            Value::Array(items) => items.iter().collect(),
            Value::Object(_) => vec![input],
            _ => {
                return Err(ObservationError::Shape(
                    "expected a JSON array or object".into(),
                ));
            }
        };
        match version {
            SpecVersion::V21 => Self::load_21(&top),
            SpecVersion::V20 => Self::load_20(&top),
        }
    }

    fn load_21(top: &[&Value]) -> Result<Self, ObservationError> {
        let mut pool: Vec<&Value> = Vec::new();
        for item in top {
            match item.get("type").and_then(Value::as_str) {
                Some("bundle") => {
                    let objects = item
                        .get("objects")
                        .and_then(Value::as_array)
                        .ok_or_else(|| ObservationError::Shape("bundle without objects".into()))?;
                    pool.extend(objects.iter());
                }
                Some(_) => pool.push(item),
                None => {
                    return Err(ObservationError::Shape(
                        "an input object has no string \"type\"".into(),
                    ));
                }
            }
        }
        let mut by_id: std::collections::HashMap<&str, &Value> = std::collections::HashMap::new();
        for o in &pool {
            if o.get("type").and_then(Value::as_str) != Some("observed-data")
                && let Some(id) = o.get("id").and_then(Value::as_str)
            {
                by_id.insert(id, o);
            }
        }
        let mut items = Vec::new();
        for (n, od) in pool
            .iter()
            .filter(|o| o.get("type").and_then(Value::as_str) == Some("observed-data"))
            .enumerate()
        {
            let id = od.get("id").and_then(Value::as_str).map(str::to_string);
            let label = id.clone().unwrap_or_else(|| format!("#{n}"));
            let (first, last, count) = header(od, &label)?;
            let refs = od
                .get("object_refs")
                .and_then(Value::as_array)
                .ok_or_else(|| obs_err(&label, "missing object_refs"))?;
            let mut objects = vec![(id.clone().unwrap_or_default(), (*od).clone())];
            let mut roots = Vec::new();
            for r in refs {
                let Some(target) = r.as_str().and_then(|r| by_id.get_key_value(r)) else {
                    continue;
                };
                let ty = target.1.get("type").and_then(Value::as_str).unwrap_or("");
                if !ty.is_empty() && !NON_SCO_TYPES.contains(&ty) {
                    roots.push((objects.len(), ty.to_string()));
                }
                objects.push(((*target.0).to_string(), (*target.1).clone()));
            }
            items.push(Observation {
                id,
                first,
                last,
                count,
                objects,
                roots,
            });
        }
        Ok(Observations { items })
    }

    fn load_20(top: &[&Value]) -> Result<Self, ObservationError> {
        let mut items = Vec::new();
        for (n, od) in top.iter().enumerate() {
            let id = od.get("id").and_then(Value::as_str).map(str::to_string);
            let label = id.clone().unwrap_or_else(|| format!("#{n}"));
            let (first, last, count) = header(od, &label)?;
            let mut objects = Vec::new();
            match od.get("objects") {
                Some(Value::Object(map)) => {
                    for (k, v) in map {
                        objects.push((k.clone(), v.clone()));
                    }
                }
                None => {}
                Some(_) => return Err(obs_err(&label, "objects must be a dictionary")),
            }
            let roots = objects
                .iter()
                .enumerate()
                .filter_map(|(i, (_, o))| Some((i, o.get("type")?.as_str()?.to_string())))
                .collect();
            items.push(Observation {
                id,
                first,
                last,
                count,
                objects,
                roots,
            });
        }
        Ok(Observations { items })
    }

    /// How many observed-data were loaded.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no observed-data was loaded.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}
