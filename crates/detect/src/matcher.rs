//! Indicators compiled once, matched against every observation, hits written as sightings.
//!
//! This first matcher evaluates every pattern against every observation: it is the reference
//! the prefilter index (issue 4, item 1) must agree with, and it is already far cheaper than
//! re-parsing patterns per observation, since each pattern is parsed and compiled once.

use kizuna_pattern::{Observations, Pattern, SpecVersion};
use kizuna_stix::Timestamp;
use serde_json::{Value, json};

use crate::id::derived_id;
use crate::{Error, Observation};

/// One compiled indicator.
#[derive(Debug)]
struct Compiled {
    id: String,
    pattern: Pattern,
    valid_from: Option<Timestamp>,
    valid_until: Option<Timestamp>,
}

/// A set of indicators ready to match observations.
#[derive(Debug)]
pub struct IndicatorSet {
    indicators: Vec<Compiled>,
    identity: String,
    now: Timestamp,
}

/// What loading indicators did: how many were compiled and why others were not.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Indicators compiled.
    pub loaded: usize,
    /// `ID: reason` for every indicator left out (revoked, not a STIX pattern, invalid).
    pub skipped: Vec<String>,
}

/// One indicator matching one observation.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The observation's source (`PATH`, `PATH#N`, `PATH:LINE`).
    pub source: String,
    /// The indicator's id.
    pub indicator: String,
    /// The STIX sighting of the indicator.
    pub sighting: Value,
    /// The observed-data the sighting refers to.
    pub observed_data: Value,
}

impl Hit {
    /// The `--format jsonl` line: `{"source", "indicator", "sighting", "observed_data"}`.
    pub fn to_json(&self) -> Value {
        json!({
            "source": self.source,
            "indicator": self.indicator,
            "sighting": self.sighting,
            "observed_data": self.observed_data,
        })
    }
}

/// Objects of an indicator file: a bundle, a JSON array, one object, or JSON lines of these.
fn objects_of(text: &str) -> Result<Vec<Value>, Error> {
    fn flatten(v: Value, out: &mut Vec<Value>) {
        match v {
            Value::Array(items) => items.into_iter().for_each(|i| flatten(i, out)),
            Value::Object(mut o) if o.get("type").and_then(Value::as_str) == Some("bundle") => {
                if let Some(Value::Array(items)) = o.remove("objects") {
                    out.extend(items);
                }
            }
            other => out.push(other),
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        flatten(v, &mut out);
        return Ok(out);
    }
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| Error::Indicators(format!("line {}: {e}", i + 1)))?;
        flatten(v, &mut out);
    }
    Ok(out)
}

fn timestamp(v: &Value, key: &str) -> Result<Option<Timestamp>, String> {
    match v.get(key).and_then(Value::as_str) {
        None => Ok(None),
        Some(t) => Timestamp::parse(t)
            .map(Some)
            .map_err(|e| format!("{key}: {e}")),
    }
}

impl IndicatorSet {
    /// Compiles the STIX indicators in `text` (bundle, array or JSON lines). Objects other than
    /// indicators are ignored; revoked indicators, other pattern types and invalid patterns are
    /// skipped and reported. Sightings name `identity` in `where_sighted_refs` and are created
    /// at `now`.
    pub fn from_json(
        text: &str,
        identity: &str,
        now: Timestamp,
    ) -> Result<(Self, LoadReport), Error> {
        let mut report = LoadReport::default();
        let mut indicators = Vec::new();
        for obj in objects_of(text)? {
            if obj.get("type").and_then(Value::as_str) != Some("indicator") {
                continue;
            }
            let id = obj
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("(no id)")
                .to_owned();
            let compiled = (|| -> Result<Compiled, String> {
                if obj.get("revoked").and_then(Value::as_bool) == Some(true) {
                    return Err("revoked".into());
                }
                let kind = obj
                    .get("pattern_type")
                    .and_then(Value::as_str)
                    .unwrap_or("stix");
                if kind != "stix" {
                    return Err(format!("pattern_type {kind} is not evaluated"));
                }
                let text = obj
                    .get("pattern")
                    .and_then(Value::as_str)
                    .ok_or("no pattern")?;
                let pattern = Pattern::parse(text).map_err(|e| e.to_string())?;
                Ok(Compiled {
                    id: id.clone(),
                    pattern,
                    valid_from: timestamp(&obj, "valid_from")?,
                    valid_until: timestamp(&obj, "valid_until")?,
                })
            })();
            match compiled {
                Ok(c) => indicators.push(c),
                Err(why) => report.skipped.push(format!("{id}: {why}")),
            }
        }
        report.loaded = indicators.len();
        Ok((
            Self {
                indicators,
                identity: identity.to_owned(),
                now,
            },
            report,
        ))
    }

    /// Number of compiled indicators.
    pub fn len(&self) -> usize {
        self.indicators.len()
    }

    /// Whether no indicator was compiled.
    pub fn is_empty(&self) -> bool {
        self.indicators.is_empty()
    }

    /// The indicators `obs` satisfies (valid at the observation's time), as sightings. An
    /// observation the pattern engine cannot load gives an error naming its source.
    pub fn matches(&self, obs: &Observation) -> Result<Vec<Hit>, Error> {
        let bad = |reason: String| Error::BadLine {
            source_name: obs.source.clone(),
            reason,
        };
        let loaded = Observations::from_json(&obs.bundle, SpecVersion::V21)
            .map_err(|e| bad(e.to_string()))?;
        let ods: Vec<(&Value, &str, Option<Timestamp>, Option<Timestamp>)> = obs
            .bundle
            .get("objects")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|o| o.get("type").and_then(Value::as_str) == Some("observed-data"))
            .map(|o| {
                let t = |k: &str| {
                    o.get(k)
                        .and_then(Value::as_str)
                        .and_then(|t| Timestamp::parse(t).ok())
                };
                let id = o.get("id").and_then(Value::as_str).unwrap_or("");
                (o, id, t("first_observed"), t("last_observed"))
            })
            .collect();
        let Some(&(first_od, ..)) = ods.first() else {
            return Ok(Vec::new());
        };
        let valid_at = |ind: &Compiled, at: Option<Timestamp>| {
            at.is_none_or(|at| {
                ind.valid_from.is_none_or(|f| at >= f) && ind.valid_until.is_none_or(|u| at < u)
            })
        };
        let mut hits = Vec::new();
        for ind in &self.indicators {
            // One observed-data (every sensor's case): check validity before evaluating.
            if ods.len() == 1 && !valid_at(ind, ods[0].2) {
                continue;
            }
            let result = ind
                .pattern
                .matches(&loaded)
                .map_err(|e| bad(e.to_string()))?;
            if !result.matched {
                continue;
            }
            let mut bound: Vec<_> = ods
                .iter()
                .filter(|(_, id, ..)| result.observed_data_refs.iter().any(|r| r == id))
                .collect();
            if bound.is_empty() {
                bound = ods.iter().take(1).collect();
            }
            let first = bound.iter().filter_map(|b| b.2).min();
            let last = bound.iter().filter_map(|b| b.3).max().or(first);
            if !valid_at(ind, first) {
                continue;
            }
            let refs: Vec<&str> = bound.iter().map(|b| b.1).collect();
            let mut id_parts = vec![ind.id.as_str()];
            id_parts.extend(&refs);
            let mut sighting = json!({
                "type": "sighting",
                "spec_version": "2.1",
                "id": derived_id("sighting", &id_parts),
                "created": self.now.with_digits(3).to_string(),
                "modified": self.now.with_digits(3).to_string(),
                "sighting_of_ref": ind.id,
                "observed_data_refs": refs,
                "where_sighted_refs": [self.identity],
                "count": 1,
            });
            if let (Some(f), Some(l)) = (first, last) {
                sighting["first_seen"] = json!(f.to_string());
                sighting["last_seen"] = json!(l.to_string());
            }
            hits.push(Hit {
                source: obs.source.clone(),
                indicator: ind.id.clone(),
                sighting,
                observed_data: bound.first().map_or(first_od, |b| b.0).clone(),
            });
        }
        Ok(hits)
    }
}
