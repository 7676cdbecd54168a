//! Patterns that bind several observations (`FOLLOWEDBY`, `AND` between brackets, `REPEATS`,
//! with `WITHIN` or `START`/`STOP`) matched across a stream of observations.
//!
//! [`IndicatorSet::matches`] judges each observation alone, so `[a] FOLLOWEDBY [b]` only fires
//! when one bundle holds both. An [`IndicatorStream`] remembers, per such pattern, the recent
//! observations that satisfy at least one of its bracketed expressions (found through a second
//! index holding the keys of every bracket, then confirmed by evaluating the brackets), and
//! evaluates the whole pattern on them with the exact evaluator each time one arrives.
//!
//! Memory is bounded twice: a pattern under `WITHIN n SECONDS` (outermost qualifier) drops
//! observations that ended more than n seconds before the latest start seen, and every pattern
//! keeps at most [`StreamLimits::max_buffered`] observations (oldest dropped first). The window
//! assumes observations arrive roughly in time order; a late observation older than a window is
//! not matched with earlier ones. Observations bound by a sighting are forgotten, so one
//! observation supports at most one sighting per pattern.

use std::collections::{HashMap, VecDeque};

use kizuna_pattern::ast::{ObservationExpr, Qualifier};
use kizuna_pattern::{Observations, Pattern, SpecVersion};
use serde_json::Value;

use super::{Compiled, Hit, IndicatorSet, Od, observed_data};
use crate::index::Slot;
use crate::index::view::{Json, Lite};
use crate::{Error, Observation};

/// What a stream needs of a pattern that binds several observations.
#[derive(Debug)]
pub(super) struct Temporal {
    /// Each bracketed expression alone, to tell whether an observation is worth keeping.
    brackets: Vec<Pattern>,
    /// The outermost `WITHIN`, in nanoseconds.
    window: Option<i128>,
}

fn binds_several(e: &ObservationExpr) -> bool {
    match e {
        ObservationExpr::Comparison(_) => false,
        ObservationExpr::And(_) | ObservationExpr::FollowedBy(_) => true,
        ObservationExpr::Or(items) => items.iter().any(binds_several),
        ObservationExpr::Qualified(a, Qualifier::Repeats(n)) => *n > 1 || binds_several(a),
        ObservationExpr::Qualified(a, _) => binds_several(a),
    }
}

fn window(e: &ObservationExpr) -> Option<i128> {
    match e {
        ObservationExpr::Qualified(a, q) => {
            let here = match q {
                Qualifier::Within { nanos } => i128::try_from(*nanos).ok(),
                _ => None,
            };
            match (here, window(a)) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            }
        }
        _ => None,
    }
}

fn brackets(e: &ObservationExpr, out: &mut Vec<Pattern>) -> Result<(), String> {
    match e {
        ObservationExpr::Comparison(c) => {
            out.push(Pattern::parse(&format!("[{c}]")).map_err(|e| e.to_string())?);
        }
        ObservationExpr::And(items)
        | ObservationExpr::Or(items)
        | ObservationExpr::FollowedBy(items) => {
            for i in items {
                brackets(i, out)?;
            }
        }
        ObservationExpr::Qualified(a, _) => brackets(a, out)?,
    }
    Ok(())
}

impl Temporal {
    /// `None` for a pattern one observation satisfies alone.
    pub(super) fn of(p: &Pattern) -> Result<Option<Temporal>, String> {
        if !binds_several(p.ast()) {
            return Ok(None);
        }
        let mut b = Vec::new();
        brackets(p.ast(), &mut b)?;
        Ok(Some(Temporal {
            brackets: b,
            window: window(p.ast()),
        }))
    }
}

/// Bounds of an [`IndicatorStream`].
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// Observations kept per pattern at most (the oldest go first).
    pub max_buffered: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits { max_buffered: 256 }
    }
}

/// One remembered observation.
#[derive(Debug)]
struct Buffered {
    bundle: Value,
    /// `last_observed` (latest of its observed-data), nanoseconds since the epoch.
    last: i128,
}

/// The memory of a stream, apart from the set it matches: what [`IndicatorStream`] keeps, for a
/// caller that owns the set and changes it between observations (a long-running watcher adding
/// and removing indicators), or that does the per-observation matching elsewhere (on other
/// threads) and feeds only the multi-observation part in input order.
#[derive(Debug)]
pub struct StreamState {
    limits: StreamLimits,
    buffers: HashMap<Slot, VecDeque<Buffered>>,
    /// Latest `first_observed` seen.
    horizon: Option<i128>,
}

/// Matching over a stream: per-observation matching, plus patterns that bind several
/// observations matched across the observations seen so far (see the module documentation).
#[derive(Debug)]
pub struct IndicatorStream<'s> {
    set: &'s IndicatorSet,
    state: StreamState,
}

fn nanos(od: &Value, key: &str) -> Option<i128> {
    let s = od.get(key)?.as_str()?;
    Some(kizuna_pattern::Timestamp::parse_rfc3339(s).ok()?.as_nanos())
}

impl IndicatorSet {
    /// Whether the indicator `id` is loaded and binds several observations.
    pub fn binds_several_id(&self, id: &str) -> bool {
        self.by_id.get(id).is_some_and(
            |&slot| matches!(self.slots.get(slot as usize), Some(Some(c)) if c.temporal.is_some()),
        )
    }

    /// [`IndicatorSet::stream_candidates`] on one JSON line (as
    /// [`IndicatorSet::matches_json_line`] reads it), scanned as borrowed JSON so that the
    /// common line costs one parse and no copy: `false` when the line surely takes part in no
    /// pattern binding several observations, `true` when it may (check the observation it
    /// makes with [`IndicatorSet::stream_candidates`]).
    pub fn stream_candidates_json_line(&self, line: &str) -> bool {
        let Ok(lite) = serde_json::from_str::<Lite<'_>>(line) else {
            return true;
        };
        match (&lite).get("type").and_then(Json::as_str) {
            Some("bundle") => {
                let mut candidates = Vec::new();
                self.stream_index.candidates(&lite, &mut candidates);
                !candidates.is_empty()
            }
            // Wrapped in a bundle of its own: its references resolve to nothing.
            Some("observed-data") => false,
            _ => true,
        }
    }

    /// Whether `obs` may take part in a pattern binding several observations (the stream
    /// index finds candidates for it): only such observations need feeding to
    /// [`StreamState::push_temporal`]; the others are sure to change nothing there.
    pub fn stream_candidates(&self, obs: &Observation) -> bool {
        let mut candidates = Vec::new();
        self.stream_index.candidates(&obs.bundle, &mut candidates);
        !candidates.is_empty()
    }
}

impl<'s> IndicatorStream<'s> {
    /// A stream over `set`, remembering nothing yet.
    pub fn new(set: &'s IndicatorSet, limits: StreamLimits) -> Self {
        IndicatorStream {
            set,
            state: StreamState::new(limits),
        }
    }

    /// Observations remembered, over all patterns.
    pub fn buffered(&self) -> usize {
        self.state.buffered()
    }

    /// The hits of the next observation: those of the patterns it satisfies alone (as
    /// [`IndicatorSet::matches`], in load order), then those of patterns binding several
    /// observations that it completes, each naming every observed-data bound.
    pub fn push(&mut self, obs: &Observation) -> Result<Vec<Hit>, Error> {
        let mut hits = self.set.matches_where(obs, |c| c.temporal.is_none())?;
        hits.extend(self.state.push_temporal(self.set, obs)?);
        Ok(hits)
    }

    /// Only the multi-observation part of [`IndicatorStream::push`]: the hits of the patterns
    /// binding several observations, with `obs` and the observations remembered, including one
    /// that `obs` satisfies alone. For a caller that finds the per-observation hits otherwise
    /// (with [`IndicatorSet::matches_json_line`] on other threads): it leaves out their hits of
    /// such patterns ([`IndicatorSet::binds_several_id`]) so that none is found twice, and
    /// feeds here, in input order, the observations [`IndicatorSet::stream_candidates`] keeps.
    pub fn push_temporal(&mut self, obs: &Observation) -> Result<Vec<Hit>, Error> {
        self.state.push_temporal(self.set, obs)
    }
}

impl StreamState {
    /// Remembers nothing yet.
    pub fn new(limits: StreamLimits) -> Self {
        StreamState {
            limits,
            buffers: HashMap::new(),
            horizon: None,
        }
    }

    /// Observations remembered, over all patterns.
    pub fn buffered(&self) -> usize {
        self.buffers.values().map(VecDeque::len).sum()
    }

    /// Forgets what was remembered for indicators no longer in `set` (removed or replaced by
    /// a newer version): call after changing the set.
    pub fn forget_removed(&mut self, set: &IndicatorSet) {
        self.buffers.retain(|slot, _| {
            matches!(set.slots.get(*slot as usize), Some(Some(c)) if c.temporal.is_some())
        });
    }

    /// [`IndicatorStream::push_temporal`] over `set`: the hits of patterns binding several
    /// observations that `obs` completes, with the observations remembered so far.
    pub fn push_temporal(
        &mut self,
        set: &IndicatorSet,
        obs: &Observation,
    ) -> Result<Vec<Hit>, Error> {
        let mut hits = Vec::new();
        let mut candidates = Vec::new();
        set.stream_index.candidates(&obs.bundle, &mut candidates);
        if candidates.is_empty() {
            return Ok(hits);
        }
        let bad = |reason: String| Error::BadLine {
            source_name: obs.source.clone(),
            reason,
        };
        let loaded = Observations::from_json(&obs.bundle, SpecVersion::V21)
            .map_err(|e| bad(e.to_string()))?;
        let ods = observed_data(&obs.bundle);
        let first = ods
            .iter()
            .filter_map(|o| nanos(o.0, "first_observed"))
            .min();
        let last = ods.iter().filter_map(|o| nanos(o.0, "last_observed")).max();
        let (Some(first), Some(last)) = (first, last) else {
            return Ok(hits);
        };
        let horizon = self.horizon.map_or(first, |h| h.max(first));
        self.horizon = Some(horizon);
        for slot in candidates {
            let Some(Some(ind)) = set.slots.get(slot as usize) else {
                continue;
            };
            let Some(t) = &ind.temporal else {
                continue;
            };
            // An evaluation error keeps the observation: the full evaluation reports it.
            if !t
                .brackets
                .iter()
                .any(|b| b.is_match(&loaded).unwrap_or(true))
            {
                continue;
            }
            let buffer = self.buffers.entry(slot).or_default();
            buffer.push_back(Buffered {
                bundle: obs.bundle.clone(),
                last,
            });
            if let Some(w) = t.window {
                buffer.retain(|b| b.last >= horizon.saturating_sub(w));
            }
            while buffer.len() > self.limits.max_buffered.max(1) {
                buffer.pop_front();
            }
            if let Some(hit) = complete(set, ind, buffer, &obs.source).map_err(bad)? {
                hits.push(hit);
            }
        }
        Ok(hits)
    }
}

/// Evaluates `ind` on the buffer; on a match, the sighting, and the bound observations leave.
fn complete(
    set: &IndicatorSet,
    ind: &Compiled,
    buffer: &mut VecDeque<Buffered>,
    source: &str,
) -> Result<Option<Hit>, String> {
    let input = Value::Array(buffer.iter().map(|b| b.bundle.clone()).collect());
    let all = Observations::from_json(&input, SpecVersion::V21).map_err(|e| e.to_string())?;
    let result = ind.pattern.matches(&all).map_err(|e| e.to_string())?;
    if !result.matched {
        return Ok(None);
    }
    let refs = result.observed_data_refs;
    let hit = {
        let ods: Vec<Od<'_>> = buffer
            .iter()
            .flat_map(|b| observed_data(&b.bundle))
            .collect();
        let mut bound: Vec<&Od<'_>> = ods
            .iter()
            .filter(|o| refs.iter().any(|r| r == o.1))
            .collect();
        if bound.is_empty() {
            bound = ods.iter().rev().take(1).collect();
        }
        set.hit(ind, source, &bound)
    };
    buffer.retain(|b| {
        !observed_data(&b.bundle)
            .iter()
            .any(|o| refs.iter().any(|r| r == o.1))
    });
    Ok(hit)
}
