//! Privacy reduction: what of an observation a sighting shares.
//!
//! A sighting tells a partner that their indicator was seen here; the observed-data it points to
//! is evidence, and evidence is personal data (who wrote to whom, what the message said). So the
//! observed-data shared with a sighting is cut down to what the indicator's pattern needed:
//!
//! 1. **Project** every SCO onto the object paths the pattern names for its type (a path into a
//!    `_ref`/`_refs` continues on the objects referenced), plus the properties the
//!    specification requires (`is_multipart`, `value`, `protocols`, one of `hashes`/`name`, ...).
//!    Objects of types the pattern never names are dropped, and so are properties it never
//!    names: recipient lists, headers, bodies, other attachments.
//! 2. **Minimise** greedily with the exact evaluator as judge: each root object, each remaining
//!    optional property and each list element (other recipients, other MIME parts, other ZIP
//!    members) is removed if the pattern still matches without it. What stays is what this
//!    match used — an observation binding of the pattern engine, found without opening the
//!    engine's internals, and checked rather than assumed.
//! 3. Optionally **hash email addresses** (the caller passes the function, so the policy
//!    crate's salted `hash_address` stays the one definition) and drop display names.
//! 4. **Re-identify**: an object that lost properties is no longer the observable its
//!    specification id names, so it gets a UUIDv5 over what it still holds (for an address
//!    reduced to its `value` that is the specification id again); references are rewritten
//!    bottom-up so that no id derived from a clear address survives hashing.
//!
//! Step 2 makes the shared observed-data still match the indicator (unless addresses were
//! hashed and the pattern tests them: the partner then learns that its indicator matched, not
//! the address). The reduced objects are valid STIX (tested over the mail corpus).

use std::collections::{BTreeMap, HashMap, HashSet};

use kizuna_pattern::ast::{ComparisonExpr, ObservationExpr, PathStep};
use kizuna_pattern::{Observations, Pattern, SpecVersion};
use serde_json::{Map, Value, json};

use crate::id::{SCO_NAMESPACE, canonical, derived_id};
use crate::{Error, Hit, Observation};

/// How to reduce.
#[derive(Default, Clone, Copy)]
pub struct ReduceOptions<'a> {
    /// Replaces every email address (`email-addr` `value`); display names are dropped too.
    pub hash_email: Option<&'a dyn Fn(&str) -> String>,
    /// A marking-definition id put in `object_marking_refs` of every object written.
    pub marking: Option<&'a str>,
}

impl std::fmt::Debug for ReduceOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReduceOptions")
            .field("hash_email", &self.hash_email.is_some())
            .field("marking", &self.marking)
            .finish()
    }
}

/// A sighting ready to share: the sighting, its reduced observed-data and the SCOs it keeps.
#[derive(Debug, Clone)]
pub struct Reduced {
    /// The sighting, its `observed_data_refs` naming [`Reduced::observed_data`].
    pub sighting: Value,
    /// The observed-data: a new id, `object_refs` naming the kept root objects.
    pub observed_data: Value,
    /// The SCOs kept, reduced.
    pub objects: Vec<Value>,
}

impl Reduced {
    /// The observed-data and its SCOs as a bundle, as the pattern engine and partners read it.
    pub fn bundle(&self) -> Value {
        let mut objects = vec![self.observed_data.clone()];
        objects.extend(self.objects.iter().cloned());
        let id = derived_id(
            "bundle",
            &[self.observed_data["id"].as_str().unwrap_or_default()],
        );
        json!({"type": "bundle", "id": id, "objects": objects})
    }

    /// Every object to store: the SCOs first (they are referenced), then the observed-data,
    /// then the sighting.
    pub fn into_objects(self) -> Vec<Value> {
        let mut all = self.objects;
        all.push(self.observed_data);
        all.push(self.sighting);
        all
    }
}

/// The properties the specification requires of an SCO type: all of `all`, and one of each
/// `any` group (the first present is kept when none is).
fn required(kind: &str) -> (&'static [&'static str], &'static [&'static [&'static str]]) {
    match kind {
        "email-message" => (&["is_multipart"], &[]),
        "domain-name" | "email-addr" | "ipv4-addr" | "ipv6-addr" | "mac-addr" | "url" => {
            (&["value"], &[])
        }
        "autonomous-system" => (&["number"], &[]),
        "directory" => (&["path"], &[]),
        "mutex" | "software" => (&["name"], &[]),
        "file" => (&[], &[&["hashes", "name"]]),
        "network-traffic" => (&["protocols"], &[&["dst_ref", "src_ref"]]),
        "artifact" => (&[], &[&["payload_bin", "url", "hashes"]]),
        _ => (&[], &[]),
    }
}

fn is_common(key: &str) -> bool {
    matches!(key, "type" | "id" | "spec_version")
}

/// The object paths of a pattern, by SCO type.
fn paths_by_type(pattern: &Pattern) -> HashMap<String, Vec<Vec<PathStep>>> {
    fn comparisons(e: &ComparisonExpr, out: &mut HashMap<String, Vec<Vec<PathStep>>>) {
        match e {
            ComparisonExpr::And(v) | ComparisonExpr::Or(v) => {
                v.iter().for_each(|c| comparisons(c, out));
            }
            ComparisonExpr::Test(c) => out
                .entry(c.path.object_type.clone())
                .or_default()
                .push(c.path.steps.clone()),
        }
    }
    fn observation(e: &ObservationExpr, out: &mut HashMap<String, Vec<Vec<PathStep>>>) {
        match e {
            ObservationExpr::Comparison(c) => comparisons(c, out),
            ObservationExpr::And(v) | ObservationExpr::Or(v) | ObservationExpr::FollowedBy(v) => {
                v.iter().for_each(|o| observation(o, out));
            }
            ObservationExpr::Qualified(o, _) => observation(o, out),
        }
    }
    let mut out = HashMap::new();
    observation(pattern.ast(), &mut out);
    out
}

/// The SCOs of a bundle by id, and the observed-data's root ids.
struct Source<'a> {
    objects: HashMap<&'a str, &'a Map<String, Value>>,
    roots: Vec<&'a str>,
}

impl<'a> Source<'a> {
    fn new(bundle: &'a Value, od: &'a Value) -> Self {
        let objects = bundle
            .get("objects")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
            .filter(|o| o.get("type").and_then(Value::as_str) != Some("observed-data"))
            .filter_map(|o| Some((o.get("id")?.as_str()?, o)))
            .collect();
        let roots = od
            .get("object_refs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        Self { objects, roots }
    }
}

/// Objects being reduced: projections of the source's, by original id, in first-kept order.
#[derive(Clone, Default)]
struct Kept {
    order: Vec<String>,
    objects: HashMap<String, Map<String, Value>>,
    /// Where projection started: the objects of the types the pattern names.
    roots: Vec<String>,
    /// The original `object_refs`.
    listed: Vec<String>,
}

impl Kept {
    /// Keeps (a projection of) `id` along `paths`, following references.
    fn project(
        &mut self,
        src: &Source<'_>,
        by_type: &HashMap<String, Vec<Vec<PathStep>>>,
        id: &str,
        extra: &[Vec<PathStep>],
        depth: usize,
    ) {
        let Some(obj) = src.objects.get(id) else {
            return;
        };
        if depth > 16 {
            return;
        }
        let kind = obj.get("type").and_then(Value::as_str).unwrap_or_default();
        let mut paths: Vec<&[PathStep]> = extra.iter().map(Vec::as_slice).collect();
        if depth == 0 {
            paths.extend(by_type.get(kind).into_iter().flatten().map(Vec::as_slice));
        }
        let mut follow = Vec::new();
        let projected = project_object(obj, &paths, &mut follow);
        let entry = self.objects.entry(id.to_owned()).or_insert_with(|| {
            self.order.push(id.to_owned());
            let mut base = Map::new();
            for (k, v) in *obj {
                if is_common(k) {
                    base.insert(k.clone(), v.clone());
                }
            }
            let (all, any) = required(kind);
            for k in all {
                if let Some(v) = obj.get(*k) {
                    base.insert((*k).to_owned(), v.clone());
                }
            }
            for group in any {
                if let Some(k) = group.iter().find(|k| obj.contains_key(**k)) {
                    base.insert((*k).to_owned(), obj[*k].clone());
                    collect_refs(k, &obj[*k], &mut follow);
                }
            }
            base
        });
        merge(entry, projected);
        // An SCO must say something of its own type (§6): keep one property when the
        // projection left none.
        if entry.keys().all(|k| is_common(k))
            && let Some((k, v)) = obj.iter().find(|(k, _)| !is_common(k))
        {
            entry.insert(k.clone(), v.clone());
            collect_refs(k, v, &mut follow);
        }
        for (target, rest) in follow {
            self.project(src, by_type, &target, &[rest], depth + 1);
        }
    }

    /// The observed-data's `object_refs`: every kept object the original listed, in its order
    /// (the pattern engine resolves references among these only).
    fn object_refs(&self) -> Vec<String> {
        let live = self.reachable();
        self.listed
            .iter()
            .filter(|id| live.contains(*id))
            .cloned()
            .collect()
    }

    /// The ids still reachable from the roots.
    fn reachable(&self) -> HashSet<String> {
        let mut seen = HashSet::new();
        let mut todo: Vec<String> = self.roots.clone();
        while let Some(id) = todo.pop() {
            if !seen.insert(id.clone()) {
                continue;
            }
            if let Some(o) = self.objects.get(&id) {
                for (k, v) in o {
                    let mut refs = Vec::new();
                    collect_refs(k, v, &mut refs);
                    todo.extend(refs.into_iter().map(|(t, _)| t));
                }
            }
        }
        seen
    }

    /// The observation bundle of what is kept (original ids), for the evaluator.
    fn bundle(&self, od: &Value) -> Value {
        let mut od = od.clone();
        od["object_refs"] = json!(self.object_refs());
        let live = self.reachable();
        let mut objects = vec![od];
        for id in &self.order {
            if live.contains(id)
                && let Some(o) = self.objects.get(id)
            {
                objects.push(Value::Object(o.clone()));
            }
        }
        json!({"type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000000", "objects": objects})
    }
}

/// Every reference in `value` (a property named `key`), with the path left to follow (empty).
fn collect_refs(key: &str, value: &Value, out: &mut Vec<(String, Vec<PathStep>)>) {
    match value {
        Value::String(s) if key.ends_with("_ref") => out.push((s.clone(), Vec::new())),
        Value::Array(items) if key.ends_with("_refs") => out.extend(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(|s| (s.to_owned(), Vec::new())),
        ),
        Value::Array(items) => items.iter().for_each(|i| collect_refs(key, i, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| collect_refs(k, v, out)),
        _ => {}
    }
}

fn merge(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Object(a)), Value::Object(b)) => merge(a, b),
            (Some(Value::Array(a)), Value::Array(b)) if a.len() == b.len() => {
                for (x, y) in a.iter_mut().zip(b) {
                    if let (Value::Object(x), Value::Object(y)) = (x, y) {
                        merge(x, y);
                    }
                }
            }
            (Some(_), _) => {}
            (None, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// `obj` keeping only what `paths` select; references met on the way are added to `follow`
/// with the rest of their path.
fn project_object(
    obj: &Map<String, Value>,
    paths: &[&[PathStep]],
    follow: &mut Vec<(String, Vec<PathStep>)>,
) -> Map<String, Value> {
    let mut groups: BTreeMap<&str, Vec<&[PathStep]>> = BTreeMap::new();
    for p in paths {
        if let Some((PathStep::Key(k), rest)) = p.split_first() {
            groups.entry(k.as_str()).or_default().push(rest);
        }
    }
    let mut out = Map::new();
    for (key, rests) in groups {
        let Some(value) = obj.get(key) else {
            continue;
        };
        if key.ends_with("_ref") || key.ends_with("_refs") {
            let ids: Vec<&str> = match value {
                Value::String(s) => vec![s.as_str()],
                Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            for rest in &rests {
                // `to_refs[*].value`: the index selects among the references.
                let rest = match rest.first() {
                    Some(PathStep::AnyIndex | PathStep::Index(_)) => &rest[1..],
                    _ => rest,
                };
                for id in &ids {
                    follow.push(((*id).to_owned(), rest.to_vec()));
                }
            }
            out.insert(key.to_owned(), value.clone());
        } else if let Some(v) = project_value(value, &rests, follow) {
            out.insert(key.to_owned(), v);
        }
    }
    out
}

fn project_value(
    value: &Value,
    paths: &[&[PathStep]],
    follow: &mut Vec<(String, Vec<PathStep>)>,
) -> Option<Value> {
    if paths.iter().any(|p| p.is_empty()) {
        let mut refs = Vec::new();
        collect_refs("", value, &mut refs);
        follow.extend(refs);
        return Some(value.clone());
    }
    match value {
        Value::Object(map) => {
            let p = project_object(map, paths, follow);
            (!p.is_empty()).then_some(Value::Object(p))
        }
        Value::Array(items) => {
            let rests: Vec<&[PathStep]> = paths
                .iter()
                .filter_map(|p| match p.first() {
                    Some(PathStep::AnyIndex | PathStep::Index(_)) => Some(&p[1..]),
                    _ => None,
                })
                .collect();
            if rests.is_empty() {
                return None;
            }
            let items: Vec<Value> = items
                .iter()
                .map(|i| {
                    let mut p = project_value(i, &rests, follow);
                    if let (Some(Value::Object(part)), Value::Object(orig)) = (&mut p, i) {
                        mime_part_body(part, orig, follow);
                    }
                    p.unwrap_or(Value::Object(Map::new()))
                })
                .collect();
            Some(Value::Array(items))
        }
        _ => None,
    }
}

/// A MIME part needs `body` or `body_raw_ref` (§6.6). When the pattern named neither, the part's
/// attachment reference is kept, or else an empty body: the text is not what matched.
fn mime_part_body(
    part: &mut Map<String, Value>,
    orig: &Map<String, Value>,
    follow: &mut Vec<(String, Vec<PathStep>)>,
) {
    let is_part = orig.contains_key("body") || orig.contains_key("body_raw_ref");
    if !is_part || part.contains_key("body") || part.contains_key("body_raw_ref") {
        return;
    }
    if let Some(r) = orig.get("body_raw_ref") {
        part.insert("body_raw_ref".into(), r.clone());
        collect_refs("body_raw_ref", r, follow);
    } else {
        part.insert("body".into(), Value::String(String::new()));
    }
}

/// Whether `pattern` matches the observation `bundle`.
fn still_matches(pattern: &Pattern, bundle: &Value) -> bool {
    Observations::from_json(bundle, SpecVersion::V21)
        .ok()
        .and_then(|o| pattern.matches(&o).ok())
        .is_some_and(|r| r.matched)
}

/// The privacy-reduced form of `hit`, which `obs` produced and `pattern` (the indicator's)
/// matched. Fails when the hit's observed-data is not in `obs` (a sighting across several
/// observations) or when the reduction would no longer match without hashing (a bug).
pub fn reduce(
    hit: &Hit,
    obs: &Observation,
    pattern: &Pattern,
    options: &ReduceOptions<'_>,
) -> Result<Reduced, Error> {
    let bad = |reason: &str| Error::BadLine {
        source_name: obs.source.clone(),
        reason: format!("sighting of {}: {reason}", hit.indicator),
    };
    let od_id = hit.observed_data["id"].as_str().unwrap_or_default();
    let refs = hit.sighting["observed_data_refs"]
        .as_array()
        .map_or(0, Vec::len);
    let od = obs
        .bundle
        .get("objects")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|o| o.get("id").and_then(Value::as_str) == Some(od_id))
        .filter(|_| refs == 1)
        .ok_or_else(|| bad("it binds several observations; not reduced"))?;
    let src = Source::new(&obs.bundle, od);
    let by_type = paths_by_type(pattern);

    // 1. Projection.
    let mut kept = Kept {
        listed: src.roots.iter().map(|r| (*r).to_owned()).collect(),
        ..Kept::default()
    };
    for root in &src.roots {
        let Some(kind) = src.objects.get(root).and_then(|o| o.get("type")?.as_str()) else {
            continue;
        };
        if by_type.contains_key(kind) {
            kept.project(&src, &by_type, root, &[], 0);
            kept.roots.push((*root).to_owned());
        }
    }
    if !still_matches(pattern, &kept.bundle(od)) {
        return Err(bad("the projection no longer matches"));
    }

    // 2. Greedy minimisation, the evaluator as judge.
    minimise(&mut kept, pattern, od);

    // 3. and 4. Hashing, re-identification.
    let live = kept.reachable();
    let mut objects: Vec<(String, Map<String, Value>)> = kept
        .order
        .iter()
        .filter(|id| live.contains(*id))
        .filter_map(|id| Some((id.clone(), kept.objects.get(id)?.clone())))
        .collect();
    if let Some(hash) = options.hash_email {
        for (_, o) in &mut objects {
            if o.get("type").and_then(Value::as_str) == Some("email-addr") {
                o.remove("display_name");
                if let Some(Value::String(v)) = o.get_mut("value") {
                    *v = hash(v);
                }
            }
        }
    }
    let renamed = reidentify(&src, &mut objects);
    let new_id = |id: &str| renamed.get(id).cloned().unwrap_or_else(|| id.to_owned());

    let mut reduced_od = od.clone();
    let roots: Vec<String> = kept.object_refs().iter().map(|r| new_id(r)).collect();
    let od_new = derived_id("observed-data", &[od_id, &hit.indicator, "reduced"]);
    reduced_od["id"] = json!(od_new);
    reduced_od["object_refs"] = json!(roots);
    let mut sighting = hit.sighting.clone();
    sighting["observed_data_refs"] = json!([od_new]);
    let mut objects: Vec<Value> = objects.into_iter().map(|(_, o)| Value::Object(o)).collect();
    if let Some(marking) = options.marking {
        for o in objects.iter_mut().chain([&mut reduced_od, &mut sighting]) {
            o["object_marking_refs"] = json!([marking]);
        }
    }
    let reduced = Reduced {
        sighting,
        observed_data: reduced_od,
        objects,
    };
    if options.hash_email.is_none() && !still_matches(pattern, &reduced.bundle()) {
        return Err(bad("the reduced observation no longer matches"));
    }
    Ok(reduced)
}

/// Removes root objects, optional properties and list elements while the pattern still matches.
fn minimise(kept: &mut Kept, pattern: &Pattern, od: &Value) {
    let try_with = |kept: &mut Kept, candidate: Kept| {
        if still_matches(pattern, &candidate.bundle(od)) {
            *kept = candidate;
        }
    };
    for i in (0..kept.roots.len()).rev() {
        let mut c = kept.clone();
        c.roots.remove(i);
        if !c.roots.is_empty() {
            try_with(kept, c);
        }
    }
    let ids = kept.order.clone();
    for id in &ids {
        let Some(obj) = kept.objects.get(id) else {
            continue;
        };
        let kind = obj.get("type").and_then(Value::as_str).unwrap_or_default();
        let (all, any) = required(kind);
        let keys: Vec<String> = obj
            .keys()
            .filter(|k| !is_common(k) && !all.contains(&k.as_str()))
            .cloned()
            .collect();
        for key in keys {
            // Lists first, element by element (other recipients, parts, members).
            let len = kept
                .objects
                .get(id)
                .and_then(|o| o.get(&key)?.as_array().map(Vec::len));
            for i in (0..len.unwrap_or(0)).rev() {
                let mut c = kept.clone();
                if let Some(Value::Array(items)) =
                    c.objects.get_mut(id).and_then(|o| o.get_mut(&key))
                    && items.len() > 1
                {
                    items.remove(i);
                    try_with(kept, c);
                }
            }
            let mut c = kept.clone();
            if let Some(o) = c.objects.get_mut(id) {
                o.remove(&key);
                let any_ok = any.iter().all(|g| g.iter().any(|k| o.contains_key(*k)));
                let own = o.keys().any(|k| !is_common(k));
                if any_ok && own {
                    try_with(kept, c);
                }
            }
        }
    }
}

/// Gives every object that differs from its source a UUIDv5 over what it holds, rewriting the
/// references to it. Each pass starts again from the reduced objects with the names of the pass
/// before, so a chain of references settles in as many passes as it is long. Returns original
/// id → new id.
fn reidentify(
    src: &Source<'_>,
    objects: &mut [(String, Map<String, Value>)],
) -> HashMap<String, String> {
    let base: Vec<Map<String, Value>> = objects.iter().map(|(_, o)| o.clone()).collect();
    let mut renamed: HashMap<String, String> = HashMap::new();
    for _ in 0..=objects.len() {
        let mut next = HashMap::new();
        for ((orig, o), b) in objects.iter_mut().zip(&base) {
            *o = b.clone();
            for (k, v) in o.iter_mut() {
                rewrite_refs(k, v, &renamed);
            }
            let same = src.objects.get(orig.as_str()).is_some_and(|s| **s == *o);
            if !same {
                let kind = o.get("type").and_then(Value::as_str).unwrap_or_default();
                let id = content_id(kind, o);
                o.insert("id".into(), Value::String(id.clone()));
                next.insert(orig.clone(), id);
            }
        }
        if next == renamed {
            break;
        }
        renamed = next;
    }
    renamed
}

fn rewrite_refs(key: &str, value: &mut Value, renamed: &HashMap<String, String>) {
    match value {
        Value::String(s) if key.ends_with("_ref") => {
            if let Some(n) = renamed.get(s.as_str()) {
                *s = n.clone();
            }
        }
        Value::Array(items) if key.ends_with("_refs") => {
            for i in items {
                if let Value::String(s) = i
                    && let Some(n) = renamed.get(s.as_str())
                {
                    *s = n.clone();
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| rewrite_refs(key, i, renamed)),
        Value::Object(map) => map
            .iter_mut()
            .for_each(|(k, v)| rewrite_refs(k, v, renamed)),
        _ => {}
    }
}

/// A UUIDv5 (the SCO namespace) over every property but `type`, `id`, `spec_version` and
/// markings: for an object holding only its ID contributing properties (an address's `value`)
/// that is the specification's id. An object left without any contributing property must have
/// a version-4 id (§2.9); it gets the same hash with the version bits of 4, so that scanning
/// the same input twice still gives the same id.
fn content_id(kind: &str, o: &Map<String, Value>) -> String {
    let mut props = Map::new();
    for (k, v) in o {
        if !is_common(k) && k != "object_marking_refs" {
            props.insert(k.clone(), v.clone());
        }
    }
    let mut text = String::new();
    canonical(&Value::Object(props), &mut text);
    let v5 = uuid::Uuid::new_v5(&SCO_NAMESPACE, text.as_bytes());
    let contributing = crate::id::contributing(kind);
    if !contributing.is_empty() && !contributing.iter().any(|k| o.contains_key(*k)) {
        let v4 = uuid::Builder::from_random_bytes(*v5.as_bytes()).into_uuid();
        return format!("{kind}--{v4}");
    }
    format!("{kind}--{v5}")
}
