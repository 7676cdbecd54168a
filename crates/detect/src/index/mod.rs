//! The prefilter index: from one observation, the few indicators that could match it.
//!
//! # How
//!
//! Each pattern gets keys from `kizuna_pattern::Pattern::index_keys`, put in table form by
//! [`keys`]: alternatives, one of which some root object satisfies whenever the pattern
//! matches. Keys live in per-path tables:
//!
//! | key | table | lookup per observed value |
//! |---|---|---|
//! | `=` and `IN`, any path (hashes in lower case) | hash map from canonical value to indicators | one hash lookup |
//! | `ISSUBSET` (IPv4, IPv6) | per prefix length, hash map from network base to indicators | one lookup per distinct prefix length indexed on the path (at most 33 or 129) |
//! | `LIKE` literal fragments, `MATCHES` required literals | Aho-Corasick automaton over the literals of the path | one pass over the value |
//! | everything else (`NOT`, `!=`, `<`, `EXISTS`, timestamps, `_hex`/`_bin` paths, literal-free regular expressions) | list per object type | a type check per root object |
//!
//! The paths of all keys form a trie per object type. An observation is scanned once: every
//! root object (an SCO named by an observed-data's `object_refs`) is walked along the trie only,
//! following `_ref`/`_refs` inside the bundle, so the cost of the scan is the number of indexed
//! paths present in the observation, not the number of indicators, and nothing is copied. The
//! candidates found are then confirmed by the exact evaluator, so the index can only make
//! matching faster, never different.
//!
//! # Incremental
//!
//! Adding an indicator inserts its keys; removing one deletes them (its slot stays empty).
//! Hash tables change in place. An automaton cannot: literals added since it was built sit in a
//! short list searched directly, and the path's automaton is rebuilt once that list grows past
//! an eighth of it, so a stream of additions costs amortised constant work per literal and never
//! a rebuild of the whole set.

mod keys;
pub(crate) mod view;

use aho_corasick::{AhoCorasick, MatchKind};
use kizuna_pattern::Pattern;

use keys::{Key, Path, Scalar, Step};
use kizuna_pattern::Net;
use view::Json;

/// The hash maps of the index and the set: `foldhash`'s fast hasher (the one `hashbrown`
/// already builds, without its `std` feature so that no other crate is rebuilt), seeded per
/// process from address-space randomisation, at a fraction of SipHash's cost on the short keys
/// (values, paths, slots) looked up for every observation and inserted for every indicator
/// loaded. It does not claim SipHash's resistance to chosen collisions; the keys are indicator
/// values from files and partners the hub already trusts to feed it.
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Position of an indicator in the set.
pub(crate) type Slot = u32;

/// Literals not yet in the automaton below this many are searched one by one.
const MIN_PENDING: usize = 16;

/// The literals of one path.
#[derive(Debug, Default)]
struct Literals {
    /// Automaton over `built`'s literals (pattern id = position in `built`).
    automaton: Option<AhoCorasick>,
    built: Vec<(String, Vec<Slot>)>,
    /// Added since the automaton was built.
    pending: Vec<(String, Slot)>,
}

impl Literals {
    fn rebuild(&mut self) {
        let mut all: HashMap<String, Vec<Slot>> = HashMap::default();
        for (lit, slots) in self.built.drain(..) {
            all.entry(lit).or_default().extend(slots);
        }
        for (lit, slot) in self.pending.drain(..) {
            all.entry(lit).or_default().push(slot);
        }
        self.built = all.into_iter().filter(|(_, s)| !s.is_empty()).collect();
        self.automaton = if self.built.is_empty() {
            None
        } else {
            AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(self.built.iter().map(|(l, _)| l.as_bytes()))
                .ok()
        };
        if self.automaton.is_none() {
            // Building cannot fail for a few thousand short literals; should it, keep them
            // searchable one by one rather than lose candidates.
            self.pending = self
                .built
                .drain(..)
                .flat_map(|(l, s)| s.into_iter().map(move |s| (l.clone(), s)))
                .collect();
        }
    }

    fn insert(&mut self, lit: String, slot: Slot) {
        self.pending.push((lit, slot));
        if self.pending.len() > MIN_PENDING + self.built.len() / 8 {
            self.rebuild();
        }
    }

    fn remove(&mut self, lit: &str, slot: Slot) {
        self.pending.retain(|(l, s)| !(*s == slot && l == lit));
        for (l, slots) in &mut self.built {
            if l == lit {
                slots.retain(|s| *s != slot);
            }
        }
    }

    fn find(&self, value: &str, out: &mut Vec<Slot>) {
        if let Some(ac) = &self.automaton {
            for m in ac.find_overlapping_iter(value) {
                if let Some((_, slots)) = self.built.get(m.pattern().as_usize()) {
                    out.extend_from_slice(slots);
                }
            }
        }
        for (lit, slot) in &self.pending {
            if value.contains(lit.as_str()) {
                out.push(*slot);
            }
        }
    }
}

/// Everything indexed on one path.
#[derive(Debug, Default)]
struct Table {
    /// Keys on this path (the table is skipped when zero).
    uses: usize,
    /// Hash paths: text values are looked up in lower case.
    lower: bool,
    /// Strings (and binary constants as Latin-1), looked up without allocating.
    text: HashMap<String, Vec<Slot>>,
    /// Numbers and booleans.
    equals: HashMap<Scalar, Vec<Slot>>,
    /// `(v6, prefix length)` → network base → indicators.
    nets: HashMap<(bool, u8), HashMap<u128, Vec<Slot>>>,
    literals: Literals,
}

/// One node of the path trie.
#[derive(Debug, Default)]
struct Node {
    children: Vec<(String, Node)>,
    elem: Option<Box<Node>>,
    table: Option<usize>,
}

impl Node {
    fn child(&mut self, step: &Step) -> &mut Node {
        match step {
            Step::Elem => self.elem.get_or_insert_with(Box::default),
            Step::Key(k) => {
                let at = match self.children.iter().position(|(c, _)| c == k) {
                    Some(at) => at,
                    None => {
                        self.children.push((k.clone(), Node::default()));
                        self.children.len() - 1
                    }
                };
                &mut self.children[at].1
            }
        }
    }
}

/// The index over a set of patterns.
#[derive(Debug, Default)]
pub(crate) struct Index {
    roots: HashMap<String, Node>,
    tables: Vec<Table>,
    /// Fallback keys: object type → indicators.
    by_type: HashMap<String, Vec<Slot>>,
    /// The keys of each slot, to remove them.
    keys_of: HashMap<Slot, Vec<Key>>,
}

fn lower_if(lower: bool, s: &str) -> std::borrow::Cow<'_, str> {
    if lower && s.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(s.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// The objects of one bundle and the observed-data being scanned, for `_ref` resolution.
struct Scope<'a, J: Json<'a>> {
    objects: &'a [J::Item],
    od: J,
    od_id: Option<&'a str>,
}

/// The last object with `id` that is not an observed-data, as the evaluator's pool keeps it.
fn find<'a, J: Json<'a>>(objects: &'a [J::Item], id: &str) -> Option<J> {
    objects.iter().rev().map(J::item).find(|o| {
        o.get("id").and_then(Json::as_str) == Some(id)
            && o.get("type").and_then(Json::as_str) != Some("observed-data")
    })
}

impl<'a, J: Json<'a>> Scope<'a, J> {
    /// As the evaluator resolves: the observed-data itself, else the last other object with
    /// the id (the evaluator also requires it in `object_refs`; resolving more only adds
    /// candidates).
    fn resolve(&self, id: &str) -> Option<J> {
        if self.od_id == Some(id) {
            return Some(self.od);
        }
        find(self.objects, id)
    }
}

impl Index {
    /// Indexes the pattern of `slot`.
    pub(crate) fn insert(&mut self, slot: Slot, pattern: &Pattern) {
        self.insert_keys(slot, keys::table_keys(pattern.index_keys()));
    }

    /// Indexes `slot` under the keys of each of its bracketed expressions: the candidates are
    /// then the observations that may satisfy any part of the pattern (for streams).
    pub(crate) fn insert_brackets(&mut self, slot: Slot, pattern: &Pattern) {
        self.insert_keys(slot, keys::table_keys(pattern.bracket_index_keys()));
    }

    fn insert_keys(&mut self, slot: Slot, keys: Vec<Key>) {
        for key in &keys {
            self.insert_key(slot, key);
        }
        self.keys_of.insert(slot, keys);
    }

    /// Removes the keys of `slot`.
    pub(crate) fn remove(&mut self, slot: Slot) {
        let Some(keys) = self.keys_of.remove(&slot) else {
            return;
        };
        for key in keys {
            match key {
                Key::Type(t) => {
                    if let Some(v) = self.by_type.get_mut(&t) {
                        v.retain(|s| *s != slot);
                    }
                }
                Key::Equals(path, value) => {
                    let t = self.table(&path);
                    t.uses -= 1;
                    match value {
                        Scalar::Text(s) => {
                            let s = lower_if(t.lower, &s).into_owned();
                            if let Some(v) = t.text.get_mut(&s) {
                                v.retain(|x| *x != slot);
                                if v.is_empty() {
                                    t.text.remove(&s);
                                }
                            }
                        }
                        value => {
                            if let Some(v) = t.equals.get_mut(&value) {
                                v.retain(|x| *x != slot);
                                if v.is_empty() {
                                    t.equals.remove(&value);
                                }
                            }
                        }
                    }
                }
                Key::Within(path, n) => {
                    let t = self.table(&path);
                    t.uses -= 1;
                    if let Some(bases) = t.nets.get_mut(&(n.is_v6(), n.prefix())) {
                        if let Some(v) = bases.get_mut(&n.base()) {
                            v.retain(|s| *s != slot);
                            if v.is_empty() {
                                bases.remove(&n.base());
                            }
                        }
                        if bases.is_empty() {
                            t.nets.remove(&(n.is_v6(), n.prefix()));
                        }
                    }
                }
                Key::Contains(path, lit) => {
                    let t = self.table(&path);
                    t.uses -= 1;
                    t.literals.remove(&lit, slot);
                }
            }
        }
    }

    /// Builds every automaton that has literals waiting: call after a bulk load.
    pub(crate) fn compact(&mut self) {
        for t in &mut self.tables {
            if !t.literals.pending.is_empty() {
                t.literals.rebuild();
            }
        }
    }

    fn table(&mut self, path: &Path) -> &mut Table {
        let mut node = self.roots.entry(path.object_type.clone()).or_default();
        for step in &path.steps {
            node = node.child(step);
        }
        let at = match node.table {
            Some(at) => at,
            None => {
                self.tables.push(Table {
                    lower: path.is_hash(),
                    ..Table::default()
                });
                node.table = Some(self.tables.len() - 1);
                self.tables.len() - 1
            }
        };
        &mut self.tables[at]
    }

    fn insert_key(&mut self, slot: Slot, key: &Key) {
        match key {
            Key::Type(t) => {
                self.roots.entry(t.clone()).or_default();
                self.by_type.entry(t.clone()).or_default().push(slot);
            }
            Key::Equals(path, value) => {
                let t = self.table(path);
                t.uses += 1;
                match value {
                    Scalar::Text(s) => {
                        let s = lower_if(t.lower, s).into_owned();
                        t.text.entry(s).or_default().push(slot);
                    }
                    v => t.equals.entry(v.clone()).or_default().push(slot),
                }
            }
            Key::Within(path, n) => {
                let t = self.table(path);
                t.uses += 1;
                t.nets
                    .entry((n.is_v6(), n.prefix()))
                    .or_default()
                    .entry(n.base())
                    .or_default()
                    .push(slot);
            }
            Key::Contains(path, lit) => {
                let t = self.table(path);
                t.uses += 1;
                t.literals.insert(lit.clone(), slot);
            }
        }
    }

    /// The slots whose patterns may match `bundle` (a STIX 2.1 bundle, as a `Value` or a
    /// borrowed [`view::Lite`]), sorted, without duplicates, into `out`.
    pub(crate) fn candidates<'a, J: Json<'a>>(&self, bundle: J, out: &mut Vec<Slot>) {
        out.clear();
        let Some(objects) = bundle.get("objects").and_then(Json::items) else {
            return;
        };
        for od in objects.iter().map(J::item) {
            if od.get("type").and_then(Json::as_str) != Some("observed-data") {
                continue;
            }
            let scope = Scope {
                objects,
                od,
                od_id: od.get("id").and_then(Json::as_str),
            };
            let Some(refs) = od.get("object_refs").and_then(Json::items) else {
                continue;
            };
            for r in refs.iter().map(J::item) {
                let Some(root) = r.as_str().and_then(|id| find::<J>(objects, id)) else {
                    continue;
                };
                let Some(ty) = root.get("type").and_then(Json::as_str) else {
                    continue;
                };
                let Some(node) = self.roots.get(ty) else {
                    continue;
                };
                if let Some(slots) = self.by_type.get(ty) {
                    out.extend_from_slice(slots);
                }
                self.walk(node, root, &scope, out);
            }
        }
        out.sort_unstable();
        out.dedup();
    }

    fn walk<'a, J: Json<'a>>(&self, node: &Node, v: J, scope: &Scope<'a, J>, out: &mut Vec<Slot>) {
        if let Some(t) = node.table {
            self.lookup_value(&self.tables[t], v, out);
        }
        if let (Some(elem), Some(items)) = (&node.elem, v.items()) {
            for item in items.iter().map(J::item) {
                self.walk(elem, item, scope, out);
            }
        }
        if node.children.is_empty() || !v.is_object() {
            return;
        }
        for (k, child) in &node.children {
            let Some(next) = v.get(k) else {
                continue;
            };
            if k.ends_with("_ref") {
                if let Some(target) = next.as_str().and_then(|id| scope.resolve(id)) {
                    self.walk(child, target, scope, out);
                }
            } else if k.ends_with("_refs") {
                // The resolved objects form a list: only list steps go on from here.
                if let (Some(ids), Some(elem)) = (next.items(), &child.elem) {
                    for target in ids
                        .iter()
                        .filter_map(|id| J::item(id).as_str().and_then(|id| scope.resolve(id)))
                    {
                        self.walk(elem, target, scope, out);
                    }
                }
            } else {
                self.walk(child, next, scope, out);
            }
        }
    }

    fn lookup_value<'a, J: Json<'a>>(&self, t: &Table, v: J, out: &mut Vec<Slot>) {
        if t.uses == 0 {
            return;
        }
        if let Some(s) = v.as_str() {
            if !t.text.is_empty()
                && let Some(slots) = t.text.get(lower_if(t.lower, s).as_ref())
            {
                out.extend_from_slice(slots);
            }
            if !t.nets.is_empty()
                && let Some(n) = Net::parse(s)
            {
                for (&(v6, prefix), bases) in &t.nets {
                    if v6 == n.is_v6()
                        && prefix <= n.prefix()
                        && let Some(slots) = bases.get(&(n.bits() & Net::mask(prefix)))
                    {
                        out.extend_from_slice(slots);
                    }
                }
            }
            t.literals.find(s, out);
        } else if let Some(x) = v.as_f64() {
            if let Some(slots) = t.equals.get(&Scalar::num(x)) {
                out.extend_from_slice(slots);
            }
        } else if let Some(b) = v.as_bool()
            && let Some(slots) = t.equals.get(&Scalar::Bool(b))
        {
            out.extend_from_slice(slots);
        }
    }
}
