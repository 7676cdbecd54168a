//! Evaluation: property tests per object, then a bounded search binding observations to the
//! pattern's observation expressions.
//!
//! Stage 1 evaluates each bracketed comparison expression against every observation and keeps
//! the list of observations that satisfy it (its *candidates*). Stage 2 looks for a *binding*:
//! one observation instance per bracketed expression (REPEATS multiplies), no instance used
//! twice, under the temporal constraints of WITHIN, START/STOP and FOLLOWEDBY.
//!
//! The search is depth-first over the tree with continuations, and it is kept polynomial on
//! the inputs that made the reference matcher blow up:
//! - instances of one observed-data (`number_observed` > 1) are interchangeable, so the search
//!   counts them instead of enumerating them;
//! - the repetitions of `REPEATS n` are unordered, so the search only builds them in
//!   non-decreasing order (no n! permutations), and a capacity test stops early when too few
//!   candidates remain;
//! - temporal constraints are pushed down to the choice of each observation, so a branch dies as
//!   soon as it breaks a window instead of at the end.
//!
//! What remains exponential in the worst case is bounded by a step budget
//! ([`crate::Limits::max_search_steps`]); reaching it is an error, never a wrong answer.

use std::cmp::Ordering;

use serde_json::Value;

use crate::ast::{Constant, PathStep};
use crate::error::EvalError;
use crate::net::Net;
use crate::observations::{Observation, Observations, Scope};
use crate::parser::{decode_base64, decode_hex};
use crate::regex::{Like, Rx};
use crate::timestamp::Timestamp;

/// A compiled observation expression.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Leaf(usize),
    And(Vec<Node>),
    Or(Vec<Node>),
    FollowedBy(Vec<Node>),
    Within(Box<Node>, u128),
    Repeats(Box<Node>, u32),
    StartStop(Box<Node>, Timestamp, Timestamp),
}

/// A compiled comparison expression (the inside of one pair of brackets).
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Test(Test),
}

/// A compiled property test.
#[derive(Debug, Clone)]
pub(crate) struct Test {
    pub(crate) object_type: String,
    pub(crate) steps: Vec<Step>,
    pub(crate) negated: bool,
    pub(crate) op: Op,
    /// Whether every step is a plain key (no index, `_ref(s)`, `_hex` or `_bin`): the path is
    /// then followed directly instead of through [`walk`].
    pub(crate) simple: bool,
}

/// A compiled path step: what a key's suffix means is decided once, at compile time.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    Key(String, KeyKind),
    /// `None` for negative indexes, which select nothing.
    Index(Option<usize>),
    Any,
}

/// How a property's value is read, from the suffix of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Plain,
    /// `_hex`: binary, hex-encoded.
    Hex,
    /// `_bin`: binary, base64-encoded.
    Bin,
    /// `_ref`: an id resolved inside the observation.
    Ref,
    /// `_refs`: a list of ids resolved inside the observation.
    Refs,
}

impl Step {
    pub(crate) fn compile(step: &PathStep) -> Step {
        match step {
            PathStep::Key(k) => {
                let kind = if k.ends_with("_hex") {
                    KeyKind::Hex
                } else if k.ends_with("_bin") {
                    KeyKind::Bin
                } else if k.ends_with("_ref") {
                    KeyKind::Ref
                } else if k.ends_with("_refs") {
                    KeyKind::Refs
                } else {
                    KeyKind::Plain
                };
                Step::Key(k.clone(), kind)
            }
            PathStep::Index(i) => Step::Index(usize::try_from(*i).ok()),
            PathStep::AnyIndex => Step::Any,
        }
    }
}

/// A compiled operator.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Eq(Constant),
    Neq(Constant),
    Lt(Constant),
    Le(Constant),
    Gt(Constant),
    Ge(Constant),
    In(Vec<Constant>),
    Like(Like),
    Matches(Rx),
    IsSubset(Net),
    IsSuperset(Net),
    Exists,
}

/// A value selected by an object path.
enum Val<'a> {
    Json(&'a Value),
    /// From a `_hex` / `_bin` property.
    Bytes(Vec<u8>),
    /// From a `_refs` property: the resolved objects, as a list.
    Objects(Vec<&'a Value>),
}

fn latin1(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

fn latin1_decode(b: &[u8]) -> String {
    b.iter().map(|&c| char::from(c)).collect()
}

fn cmp_num(v: &serde_json::Number, c: &Constant) -> Option<Ordering> {
    match c {
        Constant::Int(i) => {
            if let Some(x) = v.as_i64() {
                Some(x.cmp(i))
            } else if let Some(x) = v.as_u64() {
                Some(i128::from(x).cmp(&i128::from(*i)))
            } else {
                v.as_f64()?.partial_cmp(&(*i as f64))
            }
        }
        Constant::Float(f) => v.as_f64()?.partial_cmp(f),
        _ => None,
    }
}

/// Orders a selected value against a constant; `None` when the types are not comparable.
fn compare(v: &Val<'_>, c: &Constant) -> Option<Ordering> {
    match (v, c) {
        (Val::Json(Value::Number(n)), Constant::Int(_) | Constant::Float(_)) => cmp_num(n, c),
        (Val::Json(Value::String(s)), Constant::Str(k)) => Some(s.as_str().cmp(k.as_str())),
        (Val::Json(Value::String(s)), Constant::Binary(b) | Constant::Hex(b)) => {
            Some(latin1(s)?.as_slice().cmp(b.as_slice()))
        }
        (Val::Json(Value::String(s)), Constant::Timestamp(t)) => {
            Some(Timestamp::parse_rfc3339(s).ok()?.cmp(t))
        }
        (Val::Json(Value::Bool(b)), Constant::Bool(k)) => Some(b.cmp(k)),
        (Val::Bytes(b), Constant::Binary(k) | Constant::Hex(k)) => Some(b.as_slice().cmp(k)),
        (Val::Bytes(b), Constant::Str(s)) => Some(b.as_slice().cmp(latin1(s)?.as_slice())),
        _ => None,
    }
}

/// Equality; a string holding characters above U+00FF is unequal (not incomparable) to binary.
fn equals(v: &Val<'_>, c: &Constant) -> Option<bool> {
    match (v, c) {
        (Val::Json(Value::String(s)), Constant::Binary(b) | Constant::Hex(b)) => {
            Some(latin1(s).is_some_and(|l| l == *b))
        }
        (Val::Bytes(b), Constant::Str(s)) => Some(latin1(s).is_some_and(|l| l == *b)),
        _ => compare(v, c).map(|o| o == Ordering::Equal),
    }
}

fn text_of<'v>(v: &'v Val<'_>) -> Option<std::borrow::Cow<'v, str>> {
    match v {
        Val::Json(Value::String(s)) => Some(std::borrow::Cow::Borrowed(s.as_str())),
        Val::Bytes(b) => Some(std::borrow::Cow::Owned(latin1_decode(b))),
        _ => None,
    }
}

impl Test {
    /// The test on one selected value, before `NOT`: `None` when it does not apply.
    fn base(&self, v: &Val<'_>) -> Result<Option<bool>, EvalError> {
        // The most common test, string equality, without going through an ordering.
        if let (Op::Eq(Constant::Str(k)), Val::Json(Value::String(s))) = (&self.op, v) {
            return Ok(Some(s.len() == k.len() && s.as_bytes() == k.as_bytes()));
        }
        Ok(match &self.op {
            Op::Eq(c) => equals(v, c),
            Op::Neq(c) => equals(v, c).map(|e| !e),
            Op::Lt(c) => compare(v, c).map(|o| o == Ordering::Less),
            Op::Le(c) => compare(v, c).map(|o| o != Ordering::Greater),
            Op::Gt(c) => compare(v, c).map(|o| o == Ordering::Greater),
            Op::Ge(c) => compare(v, c).map(|o| o != Ordering::Less),
            Op::In(set) => Some(set.iter().any(|c| equals(v, c) == Some(true))),
            Op::Like(like) => text_of(v).map(|s| like.is_match(&s)),
            Op::Matches(rx) => match text_of(v) {
                Some(s) => Some(rx.is_match(&s)?),
                None => None,
            },
            Op::IsSubset(outer) => match v {
                Val::Json(Value::String(s)) => Net::parse(s).map(|n| n.within(outer)),
                _ => None,
            },
            Op::IsSuperset(inner) => match v {
                Val::Json(Value::String(s)) => Net::parse(s).map(|n| inner.within(&n)),
                _ => None,
            },
            Op::Exists => Some(true),
        })
    }

    /// Whether the test holds for the object `root` of observation `obs`.
    fn holds(&self, obs: Scope<'_>, root: &Value) -> Result<bool, EvalError> {
        if self.simple {
            // The same as `walk` for a path of plain keys: a missing property or a non-object
            // on the way selects nothing.
            let mut v = root;
            for step in &self.steps {
                let (Step::Key(k, _), Value::Object(map)) = (step, v) else {
                    return Ok(if let Op::Exists = self.op {
                        self.negated
                    } else {
                        false
                    });
                };
                match lookup(map, k) {
                    Some(next) => v = next,
                    None => {
                        return Ok(if let Op::Exists = self.op {
                            self.negated
                        } else {
                            false
                        });
                    }
                }
            }
            if let Op::Exists = self.op {
                return Ok(!self.negated);
            }
            return Ok(self.base(&Val::Json(v))?.unwrap_or(false) != self.negated);
        }
        if let Op::Exists = self.op {
            let mut found = false;
            walk(obs, Val::Json(root), &self.steps, &mut |_| {
                found = true;
                Ok(true)
            })?;
            return Ok(found != self.negated);
        }
        walk(obs, Val::Json(root), &self.steps, &mut |v| {
            // A comparison of incomparable types is false; NOT negates the comparison.
            Ok(self.base(&v)?.unwrap_or(false) != self.negated)
        })
    }
}

/// String equality for the short strings of keys and types: lengths first, then the bytes in
/// line (no call into `memcmp` for a handful of bytes).
#[inline]
pub(crate) fn short_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    if std::ptr::eq(a, b) {
        return true;
    }
    if a.len() > 32 {
        return a == b;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    diff == 0
}

/// A property of a JSON object. SCOs have few properties: comparing keys in order beats hashing
/// the key (serde_json's map hashes with SipHash) up to a dozen or so entries.
pub(crate) fn lookup<'a>(map: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    if map.len() <= 12 {
        map.iter().find(|(k, _)| short_eq(k, key)).map(|(_, v)| v)
    } else {
        map.get(key)
    }
}

/// Calls `f` on every value the path selects from `v`, stopping at the first `true`.
fn walk<'a>(
    obs: Scope<'a>,
    v: Val<'a>,
    steps: &[Step],
    f: &mut dyn FnMut(Val<'a>) -> Result<bool, EvalError>,
) -> Result<bool, EvalError> {
    let Some((step, rest)) = steps.split_first() else {
        return f(v);
    };
    match step {
        Step::Key(k, kind) => {
            let Val::Json(Value::Object(map)) = v else {
                return Ok(false);
            };
            let Some(next) = lookup(map, k) else {
                return Ok(false);
            };
            let next = match kind {
                KeyKind::Plain => Val::Json(next),
                KeyKind::Hex | KeyKind::Bin => {
                    let decoded = next.as_str().and_then(|s| {
                        if *kind == KeyKind::Hex {
                            decode_hex(s)
                        } else {
                            decode_base64(s)
                        }
                    });
                    match decoded {
                        Some(b) => Val::Bytes(b),
                        None => return Ok(false),
                    }
                }
                KeyKind::Ref => match next.as_str().and_then(|id| obs.resolve(id)) {
                    Some(o) => Val::Json(o),
                    None => return Ok(false),
                },
                KeyKind::Refs => {
                    let Some(ids) = next.as_array() else {
                        return Ok(false);
                    };
                    let objs: Vec<&Value> = ids
                        .iter()
                        .filter_map(|id| id.as_str().and_then(|id| obs.resolve(id)))
                        .collect();
                    if objs.is_empty() {
                        return Ok(false);
                    }
                    Val::Objects(objs)
                }
            };
            walk(obs, next, rest, f)
        }
        Step::Index(i) => {
            let Some(i) = *i else {
                return Ok(false);
            };
            let next = match v {
                Val::Json(Value::Array(a)) => a.get(i),
                Val::Objects(o) => o.get(i).copied(),
                _ => None,
            };
            match next {
                Some(n) => walk(obs, Val::Json(n), rest, f),
                None => Ok(false),
            }
        }
        Step::Any => {
            match v {
                Val::Json(Value::Array(a)) => {
                    for item in a {
                        if walk(obs, Val::Json(item), rest, f)? {
                            return Ok(true);
                        }
                    }
                }
                Val::Objects(o) => {
                    for item in o {
                        if walk(obs, Val::Json(item), rest, f)? {
                            return Ok(true);
                        }
                    }
                }
                _ => {}
            }
            Ok(false)
        }
    }
}

impl Expr {
    fn holds(&self, obs: Scope<'_>, root: &Value, root_type: &str) -> Result<bool, EvalError> {
        match self {
            Expr::And(items) => {
                for item in items {
                    if !item.holds(obs, root, root_type)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Expr::Or(items) => {
                for item in items {
                    if item.holds(obs, root, root_type)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Expr::Test(t) => {
                if !short_eq(&t.object_type, root_type) {
                    return Ok(false);
                }
                t.holds(obs, root)
            }
        }
    }

    /// The object type of every test, when they all name the same one: no object of another
    /// type can satisfy the expression (a test of another type is false, before any `NOT`).
    fn only_type(&self) -> Option<&str> {
        match self {
            Expr::Test(t) => Some(&t.object_type),
            Expr::And(items) | Expr::Or(items) => {
                let (first, rest) = items.split_first()?;
                let ty = first.only_type()?;
                rest.iter()
                    .all(|x| x.only_type().is_some_and(|t| short_eq(t, ty)))
                    .then_some(ty)
            }
        }
    }

    /// What [`Expr::matches_typed`] needs to know of the expression's object type, worked out
    /// once per set of observations: `Some((type, None))` when no loaded object has it.
    pub(crate) fn type_filter<'s>(
        &'s self,
        all: &Observations,
    ) -> Option<(&'s str, Option<usize>)> {
        let ty = self.only_type()?;
        Some((ty, all.types.iter().position(|t| short_eq(t, ty))))
    }

    /// Whether some root object of `obs` satisfies the whole expression; `filter` is
    /// [`Expr::type_filter`] for `all`.
    pub(crate) fn matches_typed(
        &self,
        all: &Observations,
        obs: &Observation,
        filter: Option<(&str, Option<usize>)>,
    ) -> Result<bool, EvalError> {
        let scope = Scope { all, obs };
        if let Some((ty, ti)) = filter {
            // Roots carry the index of their type: compare that instead of the strings.
            let Some(ti) = ti else {
                return Ok(false);
            };
            for &(r, t) in &obs.roots {
                if t as usize != ti {
                    continue;
                }
                let Some(root) = all.objects.get(r as usize) else {
                    continue;
                };
                if self.holds(scope, root, ty)? {
                    return Ok(true);
                }
            }
            return Ok(false);
        }
        for &(r, ty) in &obs.roots {
            let (Some(root), Some(ty)) = (all.objects.get(r as usize), all.types.get(ty as usize))
            else {
                continue;
            };
            if self.holds(scope, root, ty)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

// ---- stage 2: binding search ---------------------------------------------------------------

#[derive(Clone, Copy)]
struct Span {
    max_first: Timestamp,
    min_last: Timestamp,
}

impl Span {
    fn merge(self, o: Span) -> Span {
        Span {
            max_first: self.max_first.max(o.max_first),
            min_last: self.min_last.min(o.min_last),
        }
    }
}

#[derive(Clone, Copy)]
enum Constraint {
    /// WITHIN: max(first) - min(last) over the scope's observations stays within `nanos`.
    Window { nanos: u128, span: Option<Span> },
    /// FOLLOWEDBY: every observation of the right side ends no earlier than this.
    NotBefore(Timestamp),
    /// START/STOP: every observation overlaps [start, stop).
    Range(Timestamp, Timestamp),
}

struct Ctx<'a> {
    obs: &'a [Observation],
    /// The candidates of every leaf, one after the other; `ranges[leaf]` delimits a leaf's.
    cands: Vec<u32>,
    ranges: Vec<(u32, u32)>,
    limit: u64,
}

impl Ctx<'_> {
    /// The observations that satisfy leaf `i`, in input order.
    fn cands(&self, i: usize) -> &[u32] {
        match self.ranges.get(i) {
            Some(&(a, b)) => self.cands.get(a as usize..b as usize).unwrap_or(&[]),
            None => &[],
        }
    }
}

struct State {
    used: Vec<u64>,
    trail: Vec<u32>,
    constraints: Vec<Constraint>,
    /// Saved window spans, restored on backtrack: (constraint index, old span).
    undo: Vec<(usize, Option<Span>)>,
    steps: u64,
    aborted: bool,
}

type Cont<'k> = dyn FnMut(&mut State, Span) -> bool + 'k;

impl State {
    fn admissible(&self, first: Timestamp, last: Timestamp) -> bool {
        self.constraints.iter().all(|c| match *c {
            Constraint::Window { nanos, span } => {
                let s = match span {
                    Some(s) => s.merge(Span {
                        max_first: first,
                        min_last: last,
                    }),
                    None => Span {
                        max_first: first,
                        min_last: last,
                    },
                };
                s.max_first.as_nanos() - s.min_last.as_nanos() <= nanos as i128
            }
            Constraint::NotBefore(t) => last >= t,
            Constraint::Range(start, stop) => first < stop && last >= start,
        })
    }

    /// Records an observation's interval in every open window; returns the undo mark.
    fn enter(&mut self, first: Timestamp, last: Timestamp) -> usize {
        let mark = self.undo.len();
        let here = Span {
            max_first: first,
            min_last: last,
        };
        for (i, c) in self.constraints.iter_mut().enumerate() {
            if let Constraint::Window { span, .. } = c {
                self.undo.push((i, *span));
                *span = Some(span.map_or(here, |s| s.merge(here)));
            }
        }
        mark
    }

    fn leave(&mut self, mark: usize) {
        while self.undo.len() > mark {
            if let Some((i, old)) = self.undo.pop()
                && let Some(Constraint::Window { span, .. }) = self.constraints.get_mut(i)
            {
                *span = old;
            }
        }
    }

    fn tick(&mut self, limit: u64) -> bool {
        self.steps += 1;
        if self.steps > limit {
            self.aborted = true;
        }
        !self.aborted
    }

    /// Runs `k` with the innermost constraint lifted (it belongs to a finished scope).
    fn outside(&mut self, span: Span, k: &mut Cont<'_>) -> bool {
        self.outside_then(|st| k(st, span))
    }

    fn outside_then(&mut self, f: impl FnOnce(&mut State) -> bool) -> bool {
        let Some(c) = self.constraints.pop() else {
            return f(self);
        };
        let r = f(self);
        self.constraints.push(c);
        r
    }
}

fn solve(ctx: &Ctx<'_>, st: &mut State, node: &Node, k: &mut Cont<'_>) -> bool {
    match node {
        Node::Leaf(i) => {
            for &o in ctx.cands(*i) {
                let ou = o as usize;
                let ob = &ctx.obs[ou];
                if st.used[ou] >= ob.count || !st.admissible(ob.first, ob.last) {
                    continue;
                }
                if !st.tick(ctx.limit) {
                    return false;
                }
                let mark = st.enter(ob.first, ob.last);
                st.used[ou] += 1;
                st.trail.push(o);
                let span = Span {
                    max_first: ob.first,
                    min_last: ob.last,
                };
                let r = k(st, span);
                st.trail.pop();
                st.used[ou] -= 1;
                st.leave(mark);
                if r {
                    return true;
                }
                if st.aborted {
                    return false;
                }
            }
            false
        }
        Node::And(items) => solve_all(ctx, st, items, None, false, k),
        Node::FollowedBy(items) => solve_all(ctx, st, items, None, true, k),
        Node::Or(items) => {
            for item in items {
                if solve(ctx, st, item, k) {
                    return true;
                }
                if st.aborted {
                    return false;
                }
            }
            false
        }
        Node::Within(a, nanos) => {
            st.constraints.push(Constraint::Window {
                nanos: *nanos,
                span: None,
            });
            let r = solve(ctx, st, a, &mut |st, s| st.outside(s, k));
            st.constraints.pop();
            r
        }
        Node::StartStop(a, start, stop) => {
            if start >= stop {
                return false;
            }
            st.constraints.push(Constraint::Range(*start, *stop));
            let r = solve(ctx, st, a, &mut |st, s| st.outside(s, k));
            st.constraints.pop();
            r
        }
        Node::Repeats(a, n) => match a.as_ref() {
            Node::Leaf(i) => repeat_leaf(ctx, st, *i, u64::from(*n), 0, None, k),
            _ => repeat(ctx, st, a, *n, None, None, k),
        },
    }
}

/// Binds every operand in turn (`AND`), or in temporal order (`FOLLOWEDBY`: each operand's
/// observations end no earlier than the latest start among the operands before it).
fn solve_all(
    ctx: &Ctx<'_>,
    st: &mut State,
    items: &[Node],
    acc: Option<Span>,
    ordered: bool,
    k: &mut Cont<'_>,
) -> bool {
    let Some((first, rest)) = items.split_first() else {
        return match acc {
            Some(span) => k(st, span),
            None => false,
        };
    };
    let bound = match acc {
        Some(a) if ordered => Some(a.max_first),
        _ => None,
    };
    if let Some(t) = bound {
        st.constraints.push(Constraint::NotBefore(t));
    }
    let r = solve(ctx, st, first, &mut |st, s| {
        let acc = Some(acc.map_or(s, |a| a.merge(s)));
        if bound.is_some() {
            st.outside_then(|st| solve_all(ctx, st, rest, acc, ordered, k))
        } else {
            solve_all(ctx, st, rest, acc, ordered, k)
        }
    });
    if bound.is_some() {
        st.constraints.pop();
    }
    r
}

/// `REPEATS n` of a general expression: repetitions built in non-decreasing order of the
/// observations they bind, which visits each set of repetitions once instead of n! times.
fn repeat(
    ctx: &Ctx<'_>,
    st: &mut State,
    node: &Node,
    left: u32,
    prev: Option<(usize, usize)>,
    acc: Option<Span>,
    k: &mut Cont<'_>,
) -> bool {
    if left == 0 {
        return match acc {
            Some(span) => k(st, span),
            None => false,
        };
    }
    // Capacity test: the remaining repetitions need at least `left × min_size` instances of
    // observations that satisfy some bracketed expression of `node`.
    if u128::from(left) * u128::from(min_size(node)) > u128::from(free_capacity(ctx, st, node)) {
        return false;
    }
    let start = st.trail.len();
    solve(ctx, st, node, &mut |st, s| {
        let end = st.trail.len();
        if let Some((ps, pe)) = prev
            && st.trail[start..end] < st.trail[ps..pe]
        {
            return false;
        }
        let acc = Some(acc.map_or(s, |a| a.merge(s)));
        repeat(ctx, st, node, left - 1, Some((start, end)), acc, k)
    })
}

/// The fewest observation instances one binding of `node` uses.
fn min_size(node: &Node) -> u64 {
    match node {
        Node::Leaf(_) => 1,
        Node::And(items) | Node::FollowedBy(items) => {
            items.iter().map(min_size).fold(0, u64::saturating_add)
        }
        Node::Or(items) => items.iter().map(min_size).min().unwrap_or(0),
        Node::Repeats(a, n) => min_size(a).saturating_mul(u64::from(*n)),
        Node::Within(a, _) | Node::StartStop(a, ..) => min_size(a),
    }
}

fn collect_leaves(node: &Node, out: &mut Vec<usize>) {
    match node {
        Node::Leaf(i) => out.push(*i),
        Node::And(items) | Node::FollowedBy(items) | Node::Or(items) => {
            items.iter().for_each(|n| collect_leaves(n, out));
        }
        Node::Repeats(a, _) | Node::Within(a, _) | Node::StartStop(a, ..) => collect_leaves(a, out),
    }
}

/// Unused instances of the observations that satisfy one of `node`'s bracketed expressions.
fn free_capacity(ctx: &Ctx<'_>, st: &State, node: &Node) -> u64 {
    let mut leaves = Vec::new();
    collect_leaves(node, &mut leaves);
    let mut seen = vec![false; ctx.obs.len()];
    let mut total = 0u64;
    for leaf in leaves {
        for &o in ctx.cands(leaf) {
            let o = o as usize;
            if !seen[o] {
                seen[o] = true;
                total = total.saturating_add(ctx.obs[o].count - st.used[o]);
            }
        }
    }
    total
}

/// `REPEATS n` of one bracketed expression: choose how many instances to take from each
/// candidate observation, in candidate order, with a capacity test before each choice.
fn repeat_leaf(
    ctx: &Ctx<'_>,
    st: &mut State,
    leaf: usize,
    left: u64,
    from: usize,
    acc: Option<Span>,
    k: &mut Cont<'_>,
) -> bool {
    if left == 0 {
        return match acc {
            Some(span) => k(st, span),
            None => false,
        };
    }
    let cands = ctx.cands(leaf);
    let mut capacity = 0u64;
    for &o in &cands[from..] {
        let ob = &ctx.obs[o as usize];
        if st.admissible(ob.first, ob.last) {
            capacity += ob.count - st.used[o as usize];
            if capacity >= left {
                break;
            }
        }
    }
    if capacity < left {
        return false;
    }
    for (j, &o) in cands.iter().enumerate().skip(from) {
        let ou = o as usize;
        let ob = &ctx.obs[ou];
        let avail = ob.count - st.used[ou];
        if avail == 0 || !st.admissible(ob.first, ob.last) {
            continue;
        }
        let mark = st.enter(ob.first, ob.last);
        let span = Span {
            max_first: ob.first,
            min_last: ob.last,
        };
        let acc2 = Some(acc.map_or(span, |a| a.merge(span)));
        let mut take = avail.min(left);
        while take > 0 {
            if !st.tick(ctx.limit) {
                st.leave(mark);
                return false;
            }
            st.used[ou] += take;
            for _ in 0..take {
                st.trail.push(o);
            }
            let r = repeat_leaf(ctx, st, leaf, left - take, j + 1, acc2, k);
            st.trail.truncate(st.trail.len() - take as usize);
            st.used[ou] -= take;
            if r {
                st.leave(mark);
                return true;
            }
            if st.aborted {
                st.leave(mark);
                return false;
            }
            take -= 1;
        }
        st.leave(mark);
    }
    false
}

/// Whether some binding exists, without reporting it.
pub(crate) fn exists_binding(
    root: &Node,
    leaves: &[Expr],
    observations: &Observations,
    limit: u64,
) -> Result<bool, EvalError> {
    if let (Node::Leaf(0), [leaf]) = (root, leaves) {
        let filter = leaf.type_filter(observations);
        for o in &observations.items {
            if leaf.matches_typed(observations, o, filter)? {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    search(root, leaves, observations, limit, &mut |_| {})
}

/// Finds one binding; returns the observation indexes it uses, sorted and deduplicated.
pub(crate) fn find_binding(
    root: &Node,
    leaves: &[Expr],
    observations: &Observations,
    limit: u64,
) -> Result<Option<Vec<usize>>, EvalError> {
    let obs = &observations.items;
    if let (Node::Leaf(0), [leaf]) = (root, leaves) {
        // One bracketed expression: the first observation that satisfies it is the binding.
        let filter = leaf.type_filter(observations);
        for (i, o) in obs.iter().enumerate() {
            if leaf.matches_typed(observations, o, filter)? {
                return Ok(Some(vec![i]));
            }
        }
        return Ok(None);
    }
    let mut found: Option<Vec<usize>> = None;
    search(root, leaves, observations, limit, &mut |trail| {
        let mut b: Vec<usize> = trail.iter().map(|&o| o as usize).collect();
        b.sort_unstable();
        b.dedup();
        found = Some(b);
    })?;
    Ok(found)
}

/// Buffers of the binding search, kept per thread between evaluations so that an evaluation
/// allocates nothing once the buffers have grown (no state is carried: each search clears them).
#[derive(Default)]
struct Scratch {
    cands: Vec<u32>,
    ranges: Vec<(u32, u32)>,
    used: Vec<u64>,
    trail: Vec<u32>,
    constraints: Vec<Constraint>,
    undo: Vec<(usize, Option<Span>)>,
}

thread_local! {
    static SCRATCH: std::cell::Cell<Option<Box<Scratch>>> = const { std::cell::Cell::new(None) };
}

/// Stage 1 then stage 2; calls `report` with the trail of the first binding found, and says
/// whether there was one.
fn search(
    root: &Node,
    leaves: &[Expr],
    observations: &Observations,
    limit: u64,
    report: &mut dyn FnMut(&[u32]),
) -> Result<bool, EvalError> {
    let obs = &observations.items;
    let mut scratch = SCRATCH.with(|c| c.take()).unwrap_or_default();
    let r = search_in(root, leaves, observations, obs, limit, report, &mut scratch);
    // Buffers grown by a large set of observations are dropped rather than kept by the thread.
    let large = [
        scratch.cands.capacity(),
        scratch.ranges.capacity(),
        scratch.used.capacity(),
        scratch.trail.capacity(),
        scratch.constraints.capacity(),
        scratch.undo.capacity(),
    ]
    .into_iter()
    .any(|c| c > SCRATCH_KEEP_MAX);
    if !large {
        SCRATCH.with(|c| c.set(Some(scratch)));
    }
    r
}

/// The largest buffer (in elements) a thread keeps between evaluations.
const SCRATCH_KEEP_MAX: usize = 1 << 16;

fn search_in(
    root: &Node,
    leaves: &[Expr],
    observations: &Observations,
    obs: &[Observation],
    limit: u64,
    report: &mut dyn FnMut(&[u32]),
    scratch: &mut Scratch,
) -> Result<bool, EvalError> {
    let Scratch {
        cands,
        ranges,
        used,
        trail,
        constraints,
        undo,
    } = scratch;
    cands.clear();
    ranges.clear();
    for leaf in leaves {
        let start = cands.len() as u32;
        let filter = leaf.type_filter(observations);
        if !matches!(filter, Some((_, None))) {
            for (i, o) in obs.iter().enumerate() {
                if leaf.matches_typed(observations, o, filter)? {
                    cands.push(i as u32);
                }
            }
        }
        ranges.push((start, cands.len() as u32));
    }
    used.clear();
    used.resize(obs.len(), 0);
    trail.clear();
    constraints.clear();
    undo.clear();
    let ctx = Ctx {
        obs,
        cands: std::mem::take(cands),
        ranges: std::mem::take(ranges),
        limit,
    };
    let mut st = State {
        used: std::mem::take(used),
        trail: std::mem::take(trail),
        constraints: std::mem::take(constraints),
        undo: std::mem::take(undo),
        steps: 0,
        aborted: false,
    };
    let mut found = false;
    solve(&ctx, &mut st, root, &mut |st, _| {
        report(&st.trail);
        found = true;
        true
    });
    let aborted = st.aborted;
    *cands = ctx.cands;
    *ranges = ctx.ranges;
    *used = st.used;
    *trail = st.trail;
    *constraints = st.constraints;
    *undo = st.undo;
    if aborted && !found {
        return Err(EvalError::SearchLimit(limit));
    }
    Ok(found)
}
