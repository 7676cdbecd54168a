//! Observations: the input a pattern is matched against, loaded once and matched many times.
//!
//! The loader keeps SCOs as JSON (no typed model: property tests reach any property, custom ones
//! included, and loading stays cheap) and resolves, once, what every evaluation needs:
//! per observed-data its time interval, `number_observed`, and the objects it refers to.

use std::collections::HashMap;

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
    /// Indexes into [`Observations::objects`] of the objects this observation contains (for
    /// STIX 2.1 the observed-data itself and what its `object_refs` name).
    pub(crate) members: Vec<u32>,
    /// STIX 2.0 only: the local key of each member, parallel to `members`.
    pub(crate) keys: Vec<String>,
    /// The members a pattern's object type may select: object index and index of its type in
    /// [`Observations::types`].
    pub(crate) roots: Vec<(u32, u32)>,
}

/// A loaded set of observations.
///
/// Objects live once in an arena, whatever the number of observed-data that refer to them; an
/// observation is a list of indexes into it.
#[derive(Debug, Clone, Default)]
pub struct Observations {
    pub(crate) items: Vec<Observation>,
    pub(crate) objects: Vec<Value>,
    /// Distinct SCO types, so that roots carry a small index instead of a string.
    pub(crate) types: Vec<String>,
    /// STIX 2.1: object id to index in `objects`.
    ids: HashMap<String, u32>,
}

/// One observation together with the set it belongs to: what a property test sees.
#[derive(Clone, Copy)]
pub(crate) struct Scope<'a> {
    pub(crate) all: &'a Observations,
    pub(crate) obs: &'a Observation,
}

impl<'a> Scope<'a> {
    /// Resolves a reference made from inside this observation (never into another one).
    pub(crate) fn resolve(&self, key: &str) -> Option<&'a Value> {
        let idx = if self.obs.keys.is_empty() {
            let idx = *self.all.ids.get(key)?;
            self.obs.members.contains(&idx).then_some(idx)?
        } else {
            let at = self.obs.keys.iter().position(|k| k == key)?;
            *self.obs.members.get(at)?
        };
        self.all.objects.get(idx as usize)
    }
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

fn type_of(v: &Value) -> Option<&str> {
    v.as_object()?.get("type")?.as_str()
}

impl Observations {
    /// Loads what `stix2-matcher -s 2.1` (or `-s 2.0`) takes: a JSON list (or one value) of
    /// bundles and/or bare objects for 2.1, of observed-data SDOs with embedded objects for 2.0.
    ///
    /// For 2.1 all objects of all bundles form one pool, as in the reference matcher; each
    /// observed-data sees the objects its `object_refs` name. Clones what it keeps; see
    /// [`Observations::from_json_owned`] to move it instead.
    pub fn from_json(input: &Value, version: SpecVersion) -> Result<Self, ObservationError> {
        Self::from_json_owned(input.clone(), version)
    }

    /// Like [`Observations::from_json`], taking the JSON by value so that nothing is copied.
    pub fn from_json_owned(input: Value, version: SpecVersion) -> Result<Self, ObservationError> {
        let top: Vec<Value> = match input {
            Value::Array(items) => items,
            v @ Value::Object(_) => vec![v],
            _ => {
                return Err(ObservationError::Shape(
                    "expected a JSON array or object".into(),
                ));
            }
        };
        match version {
            SpecVersion::V21 => Self::load_21(top),
            SpecVersion::V20 => Self::load_20(top),
        }
    }

    fn type_index(&mut self, ty: &str) -> u32 {
        match self.types.iter().position(|t| t == ty) {
            Some(i) => i as u32,
            None => {
                self.types.push(ty.to_string());
                (self.types.len() - 1) as u32
            }
        }
    }

    fn load_21(top: Vec<Value>) -> Result<Self, ObservationError> {
        let mut all = Observations::default();
        for mut item in top {
            match type_of(&item) {
                Some("bundle") => {
                    let Some(Value::Array(objects)) = item
                        .as_object_mut()
                        .and_then(|m| m.get_mut("objects"))
                        .map(std::mem::take)
                    else {
                        return Err(ObservationError::Shape("bundle without objects".into()));
                    };
                    all.objects.extend(objects);
                }
                Some(_) => all.objects.push(item),
                None => {
                    return Err(ObservationError::Shape(
                        "an input object has no string \"type\"".into(),
                    ));
                }
            }
        }
        if all.objects.len() > u32::MAX as usize {
            return Err(ObservationError::Shape("too many objects".into()));
        }
        let mut observed = Vec::new();
        for (i, o) in all.objects.iter().enumerate() {
            if type_of(o) == Some("observed-data") {
                observed.push(i as u32);
            } else if let Some(id) = o.get("id").and_then(Value::as_str) {
                all.ids.insert(id.to_string(), i as u32);
            }
        }
        for (n, &od_idx) in observed.iter().enumerate() {
            let od = &all.objects[od_idx as usize];
            let id = od.get("id").and_then(Value::as_str).map(str::to_string);
            let label = id.clone().unwrap_or_else(|| format!("#{n}"));
            let (first, last, count) = header(od, &label)?;
            let refs = od
                .get("object_refs")
                .and_then(Value::as_array)
                .ok_or_else(|| obs_err(&label, "missing object_refs"))?;
            let mut members = vec![od_idx];
            let mut root_types: Vec<(u32, String)> = Vec::new();
            for r in refs {
                let Some(&idx) = r.as_str().and_then(|r| all.ids.get(r)) else {
                    continue;
                };
                members.push(idx);
                if let Some(ty) = type_of(&all.objects[idx as usize])
                    && !NON_SCO_TYPES.contains(&ty)
                {
                    root_types.push((idx, ty.to_string()));
                }
            }
            let roots = root_types
                .into_iter()
                .map(|(idx, ty)| (idx, all.type_index(&ty)))
                .collect();
            all.items.push(Observation {
                id,
                first,
                last,
                count,
                members,
                keys: Vec::new(),
                roots,
            });
        }
        Ok(all)
    }

    fn load_20(top: Vec<Value>) -> Result<Self, ObservationError> {
        let mut all = Observations::default();
        for (n, mut od) in top.into_iter().enumerate() {
            let id = od.get("id").and_then(Value::as_str).map(str::to_string);
            let label = id.clone().unwrap_or_else(|| format!("#{n}"));
            let (first, last, count) = header(&od, &label)?;
            let objects = match od
                .as_object_mut()
                .and_then(|m| m.get_mut("objects"))
                .map(std::mem::take)
            {
                Some(Value::Object(map)) => map,
                None => serde_json::Map::new(),
                Some(_) => return Err(obs_err(&label, "objects must be a dictionary")),
            };
            let mut members = Vec::with_capacity(objects.len());
            let mut keys = Vec::with_capacity(objects.len());
            let mut roots = Vec::new();
            for (k, v) in objects {
                let idx = u32::try_from(all.objects.len())
                    .map_err(|_| ObservationError::Shape("too many objects".into()))?;
                if let Some(ty) = type_of(&v) {
                    let t = all.type_index(ty);
                    roots.push((idx, t));
                }
                all.objects.push(v);
                members.push(idx);
                keys.push(k);
            }
            all.items.push(Observation {
                id,
                first,
                last,
                count,
                members,
                keys,
                roots,
            });
        }
        Ok(all)
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
