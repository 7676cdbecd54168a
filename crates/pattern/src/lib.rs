//! The STIX 2.1 patterning language (specification §9): parser, canonical printer, evaluator.
//!
//! # What this crate owns
//! Turning pattern text into a checked tree ([`Pattern::parse`]), printing it back in one
//! canonical spelling ([`Pattern`]'s `Display`), explaining it ([`Pattern::explain`]), and
//! deciding whether observations match it ([`Pattern::matches`]). It is pure: no I/O, no
//! async, no global state. It must never panic or run unbounded on hostile input.
//!
//! # Design
//! - **Parse, don't validate.** [`Pattern::parse`] does all checking up front: grammar,
//!   literal syntax (base64, hex, dates that exist), rules the grammar cannot express (`REPEATS`
//!   ≥ 1, `WITHIN` > 0, sets of one type, regular expressions that compile), and [`Limits`].
//!   A [`Pattern`] that exists can be evaluated; evaluation errors are only the two resource
//!   bounds of [`EvalError`]. The importer of indicators uses the same call to validate
//!   `pattern_type: stix`, so what the hub accepts is exactly what it can run.
//! - **Compile once, evaluate many.** Regular expressions, CIDR networks and the evaluation
//!   tree are built at parse time. [`Observations`] are loaded once too: the JSON is resolved
//!   into per-observed-data object lists, with intervals and counts, so each evaluation only
//!   walks object paths. Nothing is cached between evaluations, so a `Pattern` is `Sync` and
//!   can be shared by threads.
//! - **Hand-written recursive descent** rather than a generated parser: the grammar is small,
//!   errors need `line:column`, *expected* and *found* in our own words, and the depth guard
//!   must sit on every recursion.
//! - **Two stages of evaluation** (see the `eval` module): property tests per object, then a
//!   bounded search for a binding of observations to bracketed expressions, with the symmetry
//!   reductions that keep `REPEATS` and `number_observed` polynomial where the reference matcher
//!   is factorial, and a step budget for what remains.
//! - **Bounded regular expressions.** `MATCHES` takes PCRE syntax. Linear-time `regex` runs all
//!   it can; only look-around and back-references go to `fancy-regex`, with a backtrack limit.
//! - **An index can sit in front.** [`Pattern::index_keys`] lists cheap necessary conditions
//!   (equalities, network ranges, literals every `LIKE` or `MATCHES` match contains, object
//!   types); a detector looks observations up by them and evaluates only the patterns hit. It
//!   is the one derivation of keys: `kizuna pattern explain` prints it, the detector's index
//!   is built from it.
//!
//! # Semantics
//! The reference is the specification; where the reference matcher `stix2-matcher` 3.0.0
//! agrees with it, so do we, and every deliberate difference is listed with an example in
//! `docs/patterns.md`.
//!
//! ```
//! use kizuna_pattern::{Observations, Pattern, SpecVersion};
//!
//! let p = Pattern::parse("[ipv4-addr:value ISSUBSET '198.51.100.0/24']")?;
//! let input = serde_json::json!([{
//!     "type": "bundle", "id": "bundle--1", "objects": [
//!         {"type": "observed-data", "id": "observed-data--1", "number_observed": 1,
//!          "first_observed": "2024-01-01T00:00:00Z", "last_observed": "2024-01-01T00:00:00Z",
//!          "object_refs": ["ipv4-addr--1"]},
//!         {"type": "ipv4-addr", "id": "ipv4-addr--1", "value": "198.51.100.7"}
//!     ]
//! }]);
//! let obs = Observations::from_json(&input, SpecVersion::V21)?;
//! let result = p.matches(&obs)?;
//! assert!(result.matched);
//! assert_eq!(result.observed_data_refs, ["observed-data--1"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

pub mod ast;
mod error;
mod eval;
mod index;
mod indicator;
mod lexer;
mod net;
mod observations;
mod parser;
mod regex;
mod timestamp;

use std::fmt;

pub use error::{EvalError, ObservationError, ParseError, ParseErrorKind, Position};
pub use index::IndexKey;
pub use indicator::check_indicator_pattern;
pub use net::Net;
pub use observations::{Observations, SpecVersion};
pub use timestamp::Timestamp;

use ast::{ComparisonExpr, ObservationExpr, Operator, Qualifier};
use eval::{Expr, Node, Op, Test};

/// Bounds that make hostile patterns fail at parse time instead of consuming the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum pattern length in bytes.
    pub max_pattern_len: usize,
    /// Maximum nesting of parentheses/brackets, path steps and stacked qualifiers.
    pub max_depth: usize,
    /// Maximum length of a `MATCHES` or `LIKE` operand in characters.
    pub max_regex_len: usize,
    /// Maximum number of members of an `IN` set.
    pub max_set_len: usize,
    /// Maximum number of observation instances one match binds (`REPEATS` multiplied out).
    pub max_binding_size: usize,
    /// Maximum steps of the binding search per evaluation.
    pub max_search_steps: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pattern_len: 64 * 1024,
            max_depth: 64,
            max_regex_len: 4096,
            max_set_len: 4096,
            max_binding_size: 1000,
            max_search_steps: 1_000_000,
        }
    }
}

/// A parsed, checked and compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    root: ObservationExpr,
    node: Node,
    leaves: Vec<Expr>,
    max_search_steps: u64,
}

/// The outcome of matching a pattern against observations.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct MatchResult {
    /// Whether some binding of observations satisfies the pattern.
    pub matched: bool,
    /// Ids of the observed-data of the first binding found, in input order (empty on no match;
    /// observed-data without an id are left out).
    pub observed_data_refs: Vec<String>,
}

/// What [`Pattern::explain`] reports: the tree, the canonical text and the index keys.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// The canonical form of the pattern.
    pub canonical: String,
    /// An indented rendering of the tree.
    pub tree: String,
    /// The keys an index may use (see [`Pattern::index_keys`]).
    pub index_keys: Vec<IndexKey>,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "canonical: {}", self.canonical)?;
        writeln!(f, "tree:")?;
        f.write_str(&self.tree)?;
        writeln!(
            f,
            "index keys (a match needs an object satisfying one of them):"
        )?;
        for k in &self.index_keys {
            writeln!(f, "  {k}")?;
        }
        Ok(())
    }
}

impl Pattern {
    /// Parses and compiles `text` with the default [`Limits`].
    pub fn parse(text: &str) -> Result<Pattern, ParseError> {
        Self::parse_with_limits(text, &Limits::default())
    }

    /// Parses and compiles `text` under explicit limits.
    pub fn parse_with_limits(text: &str, limits: &Limits) -> Result<Pattern, ParseError> {
        let parsed = parser::parse(text, limits)?;
        let mut regexes = parsed.regexes.into_iter();
        let mut leaves = Vec::new();
        let node = compile_observation(&parsed.root, &mut leaves, &mut regexes)?;
        Ok(Pattern {
            root: parsed.root,
            node,
            leaves,
            max_search_steps: limits.max_search_steps,
        })
    }

    /// The syntax tree.
    pub fn ast(&self) -> &ObservationExpr {
        &self.root
    }

    /// Matches the pattern against loaded observations.
    pub fn matches(&self, observations: &Observations) -> Result<MatchResult, EvalError> {
        let binding = eval::find_binding(
            &self.node,
            &self.leaves,
            observations,
            self.max_search_steps,
        )?;
        Ok(match binding {
            None => MatchResult::default(),
            Some(idx) => MatchResult {
                matched: true,
                observed_data_refs: idx
                    .into_iter()
                    .filter_map(|i| observations.items[i].id.clone())
                    .collect(),
            },
        })
    }

    /// Whether the pattern matches, without collecting the observed-data of the binding: the
    /// cheaper call for a detector that only needs the verdict.
    pub fn is_match(&self, observations: &Observations) -> Result<bool, EvalError> {
        eval::exists_binding(
            &self.node,
            &self.leaves,
            observations,
            self.max_search_steps,
        )
    }

    /// Cheap necessary conditions for a match: if the pattern matches, some object of the
    /// matched observations satisfies at least one of these keys.
    pub fn index_keys(&self) -> Vec<IndexKey> {
        index::pattern_keys(&self.root)
    }

    /// The keys of every bracketed expression together: an observation that satisfies any one
    /// bracket of the pattern hits one of them. A detector matching a stream (`FOLLOWEDBY`,
    /// `WITHIN`, `REPEATS` across observations) keeps the observations that hit these.
    pub fn bracket_index_keys(&self) -> Vec<IndexKey> {
        index::bracket_keys(&self.root)
    }

    /// The canonical form, the tree and the index keys, for humans.
    pub fn explain(&self) -> Explanation {
        let mut tree = String::new();
        render_observation(&self.root, 1, &mut tree);
        Explanation {
            canonical: self.to_string(),
            tree,
            index_keys: self.index_keys(),
        }
    }
}

impl fmt::Display for Pattern {
    /// The canonical form: `Pattern::parse(&p.to_string())` gives an equal tree.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.root)
    }
}

impl std::str::FromStr for Pattern {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Pattern::parse(s)
    }
}

fn compile_observation(
    e: &ObservationExpr,
    leaves: &mut Vec<Expr>,
    regexes: &mut impl Iterator<Item = regex::Rx>,
) -> Result<Node, ParseError> {
    let mut all = |xs: &[ObservationExpr], leaves: &mut Vec<Expr>| {
        xs.iter()
            .map(|x| compile_observation(x, leaves, regexes))
            .collect::<Result<Vec<Node>, ParseError>>()
    };
    Ok(match e {
        ObservationExpr::Comparison(c) => {
            let expr = compile_comparison(c, regexes)?;
            leaves.push(expr);
            Node::Leaf(leaves.len() - 1)
        }
        ObservationExpr::And(xs) => Node::And(all(xs, leaves)?),
        ObservationExpr::Or(xs) => Node::Or(all(xs, leaves)?),
        ObservationExpr::FollowedBy(xs) => Node::FollowedBy(all(xs, leaves)?),
        ObservationExpr::Qualified(a, q) => {
            let a = Box::new(compile_observation(a, leaves, regexes)?);
            match *q {
                Qualifier::Within { nanos } => Node::Within(a, nanos),
                Qualifier::Repeats(n) => Node::Repeats(a, n),
                Qualifier::StartStop { start, stop } => Node::StartStop(a, start, stop),
            }
        }
    })
}

fn internal(kind: ParseErrorKind) -> ParseError {
    ParseError {
        position: Position { line: 1, column: 1 },
        kind,
    }
}

fn compile_comparison(
    e: &ComparisonExpr,
    regexes: &mut impl Iterator<Item = regex::Rx>,
) -> Result<Expr, ParseError> {
    Ok(match e {
        ComparisonExpr::And(xs) => Expr::And(
            xs.iter()
                .map(|x| compile_comparison(x, regexes))
                .collect::<Result<_, _>>()?,
        ),
        ComparisonExpr::Or(xs) => Expr::Or(
            xs.iter()
                .map(|x| compile_comparison(x, regexes))
                .collect::<Result<_, _>>()?,
        ),
        ComparisonExpr::Test(t) => {
            // The parser compiled every regular expression in this order; compiling again from
            // the text is only a fallback, so that a bug there cannot become a panic.
            let mut rx = |text: &str| match regexes.next() {
                Some(r) => Ok(r),
                None => regex::Rx::pcre(text).map_err(|detail| {
                    internal(ParseErrorKind::InvalidLiteral {
                        what: "regular expression",
                        detail,
                    })
                }),
            };
            let net = |text: &str| {
                net::Net::parse(text).ok_or_else(|| {
                    internal(ParseErrorKind::InvalidLiteral {
                        what: "IP address or CIDR network",
                        detail: text.to_string(),
                    })
                })
            };
            let op = match &t.op {
                Operator::Eq(c) => Op::Eq(c.clone()),
                Operator::Neq(c) => Op::Neq(c.clone()),
                Operator::Lt(c) => Op::Lt(c.clone()),
                Operator::Le(c) => Op::Le(c.clone()),
                Operator::Gt(c) => Op::Gt(c.clone()),
                Operator::Ge(c) => Op::Ge(c.clone()),
                Operator::In(s) => Op::In(s.clone()),
                Operator::Like(s) => Op::Like(regex::Like::new(s)),
                Operator::Matches(s) => Op::Matches(rx(s)?),
                Operator::IsSubset(s) => Op::IsSubset(net(s)?),
                Operator::IsSuperset(s) => Op::IsSuperset(net(s)?),
                Operator::Exists => Op::Exists,
            };
            let steps: Vec<eval::Step> = t.path.steps.iter().map(eval::Step::compile).collect();
            let simple = steps
                .iter()
                .all(|s| matches!(s, eval::Step::Key(_, eval::KeyKind::Plain)));
            Expr::Test(Test {
                object_type: t.path.object_type.clone(),
                steps,
                negated: t.negated,
                op,
                simple,
            })
        }
    })
}

fn render_observation(e: &ObservationExpr, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    match e {
        ObservationExpr::Comparison(c) => {
            out.push_str(&format!("{pad}observation [ ]\n"));
            render_comparison(c, depth + 1, out);
        }
        ObservationExpr::And(items)
        | ObservationExpr::Or(items)
        | ObservationExpr::FollowedBy(items) => {
            let name = match e {
                ObservationExpr::And(..) => "AND",
                ObservationExpr::Or(..) => "OR",
                _ => "FOLLOWEDBY",
            };
            out.push_str(&format!("{pad}{name}\n"));
            for item in items {
                render_observation(item, depth + 1, out);
            }
        }
        ObservationExpr::Qualified(a, q) => {
            out.push_str(&format!("{pad}{q}\n"));
            render_observation(a, depth + 1, out);
        }
    }
}

fn render_comparison(e: &ComparisonExpr, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    match e {
        ComparisonExpr::And(items) | ComparisonExpr::Or(items) => {
            let name = if matches!(e, ComparisonExpr::And(..)) {
                "AND"
            } else {
                "OR"
            };
            out.push_str(&format!("{pad}{name}\n"));
            for item in items {
                render_comparison(item, depth + 1, out);
            }
        }
        ComparisonExpr::Test(t) => out.push_str(&format!("{pad}{t}\n")),
    }
}
