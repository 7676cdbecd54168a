//! Indicators compiled once, matched against every observation, hits written as sightings.
//!
//! [`IndicatorSet::matches`] asks the prefilter index (`crate::index`) for the few indicators
//! an observation could match and confirms each with the exact evaluator;
//! [`IndicatorSet::matches_exhaustive`] evaluates every pattern and is the reference the index
//! is tested against. Both give the same hits in the same order (load order).

use kizuna_pattern::{Observations, Pattern, SpecVersion};
use kizuna_stix::Timestamp;
use serde_json::{Value, json};

use crate::id::derived_id;
use crate::index::view::{Json, Lite};
use crate::index::{HashMap, Index, Slot};
use crate::{Error, LogFormat, Observation, map_json_line};

mod stream;

use stream::Temporal;
pub use stream::{IndicatorStream, StreamLimits, StreamState};

/// One compiled indicator.
#[derive(Debug)]
struct Compiled {
    id: String,
    /// `name`, for people.
    name: Option<String>,
    /// `modified`, to keep the newest version of an id.
    modified: Option<Timestamp>,
    pattern: Pattern,
    valid_from: Option<Timestamp>,
    valid_until: Option<Timestamp>,
    /// For patterns that bind several observations: what a stream needs.
    temporal: Option<Temporal>,
}

/// A set of indicators ready to match observations.
#[derive(Debug)]
pub struct IndicatorSet {
    /// In load order; a removed indicator leaves an empty slot (order is what hits follow).
    slots: Vec<Option<Compiled>>,
    by_id: HashMap<String, Slot>,
    index: Index,
    /// The patterns binding several observations, under the keys of each of their brackets.
    stream_index: Index,
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

/// The top-level items of an indicator file, flattened out of arrays and bundles.
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

/// An indicator's id and what preparing it gave.
type Read = (String, Result<Prepared, String>);

fn prepare_indicators<'a>(objects: impl IntoIterator<Item = &'a Value>, out: &mut Vec<Read>) {
    for o in objects {
        if o.get("type").and_then(Value::as_str) != Some("indicator") {
            continue;
        }
        let id = o
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("(no id)")
            .to_owned();
        out.push((id, prepare(o)));
    }
}

/// `f` on consecutive parts of `items`, on every core when there are enough, results in order.
fn on_every_core<T: Sync, R: Send>(items: &[T], f: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(items.len() / 1000 + 1);
    if threads <= 1 {
        return vec![f(items)];
    }
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let f = &f;
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || f(part)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// The indicators of a file (a bundle, a JSON array, one object, or JSON lines of these), each
/// checked and compiled, in file order. Parsing JSON lines and compiling patterns is most of a
/// load, so both run on every core.
fn read_indicators(text: &str) -> Result<Vec<Read>, Error> {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        let mut objects = Vec::new();
        flatten(v, &mut objects);
        let parts = on_every_core(&objects, |part| {
            let mut out = Vec::new();
            prepare_indicators(part, &mut out);
            out
        });
        return Ok(parts.into_iter().flatten().collect());
    }
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i, l.trim()))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    let parts = on_every_core(&lines, |part| -> Result<Vec<Read>, Error> {
        let mut out = Vec::new();
        for (i, line) in part {
            let v: Value = serde_json::from_str(line)
                .map_err(|e| Error::Indicators(format!("line {}: {e}", i + 1)))?;
            let mut objects = Vec::new();
            flatten(v, &mut objects);
            prepare_indicators(&objects, &mut out);
        }
        Ok(out)
    });
    let mut out = Vec::new();
    for part in parts {
        out.extend(part?);
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

/// The observed-data of a bundle with the times a sighting needs.
type Od<'a> = (&'a Value, &'a str, Option<Timestamp>, Option<Timestamp>);

/// The observed-data of a bundle, in order.
fn observed_data(bundle: &Value) -> Vec<Od<'_>> {
    bundle
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
        .collect()
}

/// What the pattern engine's loader requires of a bundle, checked without loading it, so that
/// an observation no indicator can match is still refused exactly when the evaluator would
/// refuse it.
fn check_loadable<'a, J: Json<'a>>(bundle: J) -> Result<(), String> {
    let objects = bundle
        .get("objects")
        .and_then(Json::items)
        .ok_or("invalid input: bundle without objects")?;
    // Objects inside a bundle need no type (the loader skips them); observed-data are counted
    // in order for the label of one without an id.
    let ods = objects
        .iter()
        .map(J::item)
        .filter(|o| o.get("type").and_then(Json::as_str) == Some("observed-data"));
    for (n, o) in ods.enumerate() {
        check_observed_data(o, n)?;
    }
    Ok(())
}

fn check_observed_data<'a, J: Json<'a>>(o: J, n: usize) -> Result<(), String> {
    let label = o
        .get("id")
        .and_then(Json::as_str)
        .map_or_else(|| format!("#{n}"), str::to_owned);
    let bad = |d: String| format!("observed-data {label}: {d}");
    let ts = |key: &str| {
        let s = o
            .get(key)
            .and_then(Json::as_str)
            .ok_or_else(|| bad(format!("missing or non-string {key}")))?;
        kizuna_pattern::Timestamp::parse_rfc3339(s).map_err(|e| bad(format!("{key}: {e}")))
    };
    let (first, last) = (ts("first_observed")?, ts("last_observed")?);
    if o.get("number_observed")
        .and_then(Json::as_u64)
        .is_none_or(|n| n == 0)
    {
        return Err(bad("number_observed must be an integer >= 1".into()));
    }
    if first > last {
        return Err(bad("first_observed is later than last_observed".into()));
    }
    if o.get("object_refs").and_then(Json::items).is_none() {
        return Err(bad("missing object_refs".into()));
    }
    Ok(())
}

/// An indicator object read and its pattern compiled, before it meets the set.
struct Prepared {
    id: String,
    modified: Option<Timestamp>,
    revoked: bool,
    compiled: Result<Compiled, String>,
}

/// What [`IndicatorSet::insert`] does without the set: checks and compiles one indicator.
fn prepare(obj: &Value) -> Result<Prepared, String> {
    if obj.get("type").and_then(Value::as_str) != Some("indicator") {
        return Err("not an indicator".into());
    }
    let id = obj
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("(no id)")
        .to_owned();
    let modified = timestamp(obj, "modified")?;
    let revoked = obj.get("revoked").and_then(Value::as_bool) == Some(true);
    let compiled = if revoked {
        Err("revoked".into())
    } else {
        compile(obj, &id, modified)
    };
    Ok(Prepared {
        id,
        modified,
        revoked,
        compiled,
    })
}

fn compile(obj: &Value, id: &str, modified: Option<Timestamp>) -> Result<Compiled, String> {
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
        id: id.to_owned(),
        name: obj.get("name").and_then(Value::as_str).map(str::to_owned),
        modified,
        valid_from: timestamp(obj, "valid_from")?,
        valid_until: timestamp(obj, "valid_until")?,
        temporal: Temporal::of(&pattern)?,
        pattern,
    })
}

impl IndicatorSet {
    /// An empty set: sightings name `identity` in `where_sighted_refs` and are created at `now`.
    pub fn new(identity: &str, now: Timestamp) -> Self {
        Self {
            slots: Vec::new(),
            by_id: HashMap::default(),
            index: Index::default(),
            stream_index: Index::default(),
            identity: identity.to_owned(),
            now,
        }
    }

    /// Compiles the STIX indicators in `text` (bundle, array or JSON lines). Objects other than
    /// indicators are ignored; revoked indicators, other pattern types and invalid patterns are
    /// skipped and reported. Of several versions of one id, the latest `modified` is kept.
    /// Sightings name `identity` in `where_sighted_refs` and are created at `now`.
    pub fn from_json(
        text: &str,
        identity: &str,
        now: Timestamp,
    ) -> Result<(Self, LoadReport), Error> {
        let mut report = LoadReport::default();
        let mut set = Self::new(identity, now);
        for (id, p) in read_indicators(text)? {
            if let Err(why) = p.and_then(|p| set.place(p)) {
                report.skipped.push(format!("{id}: {why}"));
            }
        }
        set.index.compact();
        set.stream_index.compact();
        report.loaded = set.len();
        Ok((set, report))
    }

    /// Adds one indicator, or updates it: a newer version (by `modified`) of a loaded id
    /// replaces it, a revoked one removes it. Only the index entries of that indicator change.
    /// Returns why the object was not added (revoked, older than the loaded version, not a
    /// STIX pattern, invalid).
    pub fn insert(&mut self, obj: &Value) -> Result<(), String> {
        self.place(prepare(obj)?)
    }

    /// The part of [`IndicatorSet::insert`] that needs the set.
    fn place(&mut self, p: Prepared) -> Result<(), String> {
        if let Some(&slot) = self.by_id.get(&p.id)
            && let Some(Some(old)) = self.slots.get(slot as usize)
            && old
                .modified
                .is_some_and(|o| p.modified.is_none_or(|m| m < o))
        {
            return Err("older than the version loaded".into());
        }
        if p.revoked {
            self.remove(&p.id);
            return Err("revoked".into());
        }
        let compiled = p.compiled?;
        self.remove(&p.id);
        let slot = Slot::try_from(self.slots.len()).map_err(|_| "too many indicators")?;
        self.index.insert(slot, &compiled.pattern);
        if compiled.temporal.is_some() {
            self.stream_index.insert_brackets(slot, &compiled.pattern);
        }
        self.slots.push(Some(compiled));
        self.by_id.insert(p.id, slot);
        Ok(())
    }

    /// Removes the indicator `id` (revoked or deleted); whether it was loaded.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(slot) = self.by_id.remove(id) else {
            return false;
        };
        self.index.remove(slot);
        self.stream_index.remove(slot);
        if let Some(s) = self.slots.get_mut(slot as usize) {
            *s = None;
        }
        true
    }

    /// Builds the index structures that incremental inserts left pending: call after inserting
    /// many indicators one at a time (a bulk load from a store), as `from_json` does.
    pub fn compact(&mut self) {
        self.index.compact();
        self.stream_index.compact();
    }

    /// Sightings made from now on are created at `now` (a long-running sensor moves the clock).
    pub fn set_now(&mut self, now: Timestamp) {
        self.now = now;
    }

    /// The compiled pattern of the indicator `id`, if loaded.
    pub fn pattern(&self, id: &str) -> Option<&Pattern> {
        let slot = *self.by_id.get(id)?;
        Some(&self.slots.get(slot as usize)?.as_ref()?.pattern)
    }

    /// The `name` of the indicator `id`, if loaded and named.
    pub fn name(&self, id: &str) -> Option<&str> {
        let slot = *self.by_id.get(id)?;
        self.slots.get(slot as usize)?.as_ref()?.name.as_deref()
    }

    /// Number of compiled indicators.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether some loaded pattern binds several observations (`FOLLOWEDBY`, `AND` between
    /// brackets, `REPEATS` more than once). When none does, an
    /// [`IndicatorStream`] over the set gives, for each observation, exactly
    /// [`IndicatorSet::matches`] and remembers nothing, so a caller may match observations
    /// independently (on several threads) and keep only the output in order.
    pub fn binds_several(&self) -> bool {
        self.slots.iter().flatten().any(|c| c.temporal.is_some())
    }

    /// Whether no indicator was compiled.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The indicators `obs` satisfies (valid at the observation's time), as sightings, in load
    /// order. Only the indicators the index finds are evaluated. An observation the pattern
    /// engine cannot load gives an error naming its source.
    pub fn matches(&self, obs: &Observation) -> Result<Vec<Hit>, Error> {
        self.matches_where(obs, |_| true)
    }

    fn matches_where(
        &self,
        obs: &Observation,
        keep: impl Fn(&Compiled) -> bool,
    ) -> Result<Vec<Hit>, Error> {
        let mut candidates = Vec::new();
        self.index.candidates(&obs.bundle, &mut candidates);
        if candidates.is_empty() {
            return check_loadable(&obs.bundle)
                .map(|()| Vec::new())
                .map_err(|reason| Error::BadLine {
                    source_name: obs.source.clone(),
                    reason,
                });
        }
        self.evaluate(
            obs,
            candidates
                .iter()
                .filter_map(|&s| self.slots.get(s as usize)?.as_ref())
                .filter(|c| keep(c)),
        )
    }

    /// [`IndicatorSet::matches`] on one JSON line holding a STIX bundle or an observed-data
    /// (what `map_json_line(LogFormat::Stix, ..)` reads), without building the observation
    /// unless the index finds candidates: the line is scanned as borrowed JSON, so the common
    /// line that matches nothing costs one parse and no copy.
    pub fn matches_json_line(
        &self,
        line: &str,
        source: &str,
        now: Timestamp,
    ) -> Result<Vec<Hit>, Error> {
        let full = || map_json_line(LogFormat::Stix, line, source, now);
        let Ok(lite) = serde_json::from_str::<Lite<'_>>(line) else {
            return full().and_then(|obs| self.matches(&obs));
        };
        let mut candidates = Vec::new();
        let checked = match (&lite).get("type").and_then(Json::as_str) {
            Some("bundle") => {
                self.index.candidates(&lite, &mut candidates);
                check_loadable(&lite)
            }
            // Wrapped in a bundle of its own: its references resolve to nothing, so no
            // indicator has a candidate object in it.
            Some("observed-data") => check_observed_data(&lite, 0),
            _ => return full().and_then(|obs| self.matches(&obs)),
        };
        if candidates.is_empty() {
            return checked
                .map(|()| Vec::new())
                .map_err(|reason| Error::BadLine {
                    source_name: source.to_owned(),
                    reason,
                });
        }
        let obs = full()?;
        self.evaluate(
            &obs,
            candidates
                .iter()
                .filter_map(|&s| self.slots.get(s as usize)?.as_ref()),
        )
    }

    /// What [`IndicatorSet::matches`] gives, by evaluating every indicator: the reference the
    /// index is tested against, and a way to measure what the index saves.
    pub fn matches_exhaustive(&self, obs: &Observation) -> Result<Vec<Hit>, Error> {
        self.evaluate(obs, self.slots.iter().flatten())
    }

    fn evaluate<'s>(
        &self,
        obs: &Observation,
        indicators: impl Iterator<Item = &'s Compiled>,
    ) -> Result<Vec<Hit>, Error> {
        let bad = |reason: String| Error::BadLine {
            source_name: obs.source.clone(),
            reason,
        };
        let loaded = Observations::from_json(&obs.bundle, SpecVersion::V21)
            .map_err(|e| bad(e.to_string()))?;
        let ods = observed_data(&obs.bundle);
        if ods.is_empty() {
            return Ok(Vec::new());
        }
        let valid_at = |ind: &Compiled, at: Option<Timestamp>| {
            at.is_none_or(|at| {
                ind.valid_from.is_none_or(|f| at >= f) && ind.valid_until.is_none_or(|u| at < u)
            })
        };
        let mut hits = Vec::new();
        for ind in indicators {
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
            if let Some(hit) = self.hit(ind, &obs.source, &bound) {
                hits.push(hit);
            }
        }
        Ok(hits)
    }

    /// The sighting of `ind` on the observed-data `bound` (first one first), unless the
    /// indicator was not valid when they were observed.
    fn hit(&self, ind: &Compiled, source: &str, bound: &[&Od<'_>]) -> Option<Hit> {
        let valid_at = |at: Option<Timestamp>| {
            at.is_none_or(|at| {
                ind.valid_from.is_none_or(|f| at >= f) && ind.valid_until.is_none_or(|u| at < u)
            })
        };
        {
            let first = bound.iter().filter_map(|b| b.2).min();
            let last = bound.iter().filter_map(|b| b.3).max().or(first);
            if !valid_at(first) {
                return None;
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
            Some(Hit {
                source: source.to_owned(),
                indicator: ind.id.clone(),
                sighting,
                observed_data: bound.first()?.0.clone(),
            })
        }
    }
}
