//! Recursive-descent parser: one function per precedence level of the grammar (§9 of the
//! specification), left associative, with a depth guard on every recursion.

use crate::Limits;
use crate::ast::{
    Comparison, ComparisonExpr, Constant, ObjectPath, ObservationExpr, Operator, PathStep,
    Qualifier,
};
use crate::error::{ParseError, ParseErrorKind, Position};
use crate::lexer::{Kw, Tok, Token, tokenize};
use crate::regex::Rx;
use crate::timestamp::Timestamp;

/// Output of the parser: the tree and the regular expressions of `MATCHES`, compiled in
/// the order they appear (a left-to-right walk of the tree meets them in the same order).
pub(crate) struct Parsed {
    pub(crate) root: ObservationExpr,
    pub(crate) regexes: Vec<Rx>,
}

struct Parser<'l> {
    toks: Vec<Token>,
    at: usize,
    depth: usize,
    limits: &'l Limits,
    regexes: Vec<Rx>,
}

pub(crate) fn parse(src: &str, limits: &Limits) -> Result<Parsed, ParseError> {
    let chars = src.len();
    if chars > limits.max_pattern_len {
        return Err(ParseError {
            position: Position { line: 1, column: 1 },
            kind: ParseErrorKind::Limit {
                what: "pattern length in bytes",
                max: limits.max_pattern_len,
                actual: chars,
            },
        });
    }
    let toks = tokenize(src, limits.max_pattern_len)?;
    let mut p = Parser {
        toks,
        at: 0,
        depth: 0,
        limits,
        regexes: Vec::new(),
    };
    let root = p.observation_fb()?;
    p.expect_eof()?;
    let size = binding_size(&root);
    if size > limits.max_binding_size as u128 {
        return Err(ParseError {
            position: Position { line: 1, column: 1 },
            kind: ParseErrorKind::Limit {
                what: "observations one match binds (REPEATS multiplied out)",
                max: limits.max_binding_size,
                actual: usize::try_from(size).unwrap_or(usize::MAX),
            },
        });
    }
    Ok(Parsed {
        root,
        regexes: p.regexes,
    })
}

/// How many observation instances one match of `e` binds at most.
pub(crate) fn binding_size(e: &ObservationExpr) -> u128 {
    match e {
        ObservationExpr::Comparison(_) => 1,
        ObservationExpr::And(items) | ObservationExpr::FollowedBy(items) => items
            .iter()
            .fold(0u128, |acc, e| acc.saturating_add(binding_size(e))),
        ObservationExpr::Or(items) => items.iter().map(binding_size).max().unwrap_or(0),
        ObservationExpr::Qualified(a, Qualifier::Repeats(n)) => {
            binding_size(a).saturating_mul(u128::from(*n))
        }
        ObservationExpr::Qualified(a, _) => binding_size(a),
    }
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.at.min(self.toks.len() - 1)].tok
    }

    fn pos(&self) -> Position {
        self.toks[self.at.min(self.toks.len() - 1)].pos
    }

    /// Takes the next token out of the list (no copy of its text). May step past the final
    /// `Eof`; `peek` clamps. A caller that does not want the token gives it back with
    /// [`Parser::unbump`], so that errors describe it.
    fn bump(&mut self) -> Tok {
        let last = self.toks.len() - 1;
        let t = if self.at < last {
            std::mem::replace(&mut self.toks[self.at].tok, Tok::Eof)
        } else {
            Tok::Eof
        };
        self.at += 1;
        t
    }

    /// Un-reads the token `bump` just returned.
    fn unbump(&mut self, t: Tok) {
        self.at -= 1;
        if self.at < self.toks.len() - 1 {
            self.toks[self.at].tok = t;
        }
    }

    fn unexpected(&self, expected: &str) -> ParseError {
        ParseError {
            position: self.pos(),
            kind: ParseErrorKind::Unexpected {
                expected: expected.to_string(),
                found: self.peek().describe(),
            },
        }
    }

    fn err_at(pos: Position, kind: ParseErrorKind) -> ParseError {
        ParseError {
            position: pos,
            kind,
        }
    }

    /// Consumes the next token if it is `t`: punctuation (compared by kind) or a keyword.
    fn eat(&mut self, t: &Tok) -> bool {
        let hit = match (self.peek(), t) {
            (Tok::Kw(a), Tok::Kw(b)) => a == b,
            (
                Tok::Ident(_)
                | Tok::Str(_)
                | Tok::Int(_)
                | Tok::Float(_)
                | Tok::Hex(_)
                | Tok::Bin(_)
                | Tok::Time(_),
                _,
            ) => self.peek() == t,
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        };
        if hit {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn eat_kw(&mut self, k: Kw) -> bool {
        self.eat(&Tok::Kw(k))
    }

    fn expect(&mut self, t: &Tok, expected: &str) -> Result<(), ParseError> {
        if self.eat(t) {
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    fn expect_eof(&mut self) -> Result<(), ParseError> {
        match self.peek() {
            Tok::Eof => Ok(()),
            _ => Err(self.unexpected("AND, OR, FOLLOWEDBY, a qualifier or end of pattern")),
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(Self::err_at(
                self.pos(),
                ParseErrorKind::Limit {
                    what: "nesting depth",
                    max: self.limits.max_depth,
                    actual: self.depth,
                },
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    // ---- observation expressions -------------------------------------------------------

    fn observation_fb(&mut self) -> Result<ObservationExpr, ParseError> {
        self.enter()?;
        let first = self.observation_or()?;
        let e = if self.eat_kw(Kw::FollowedBy) {
            let mut items = vec![first, self.observation_or()?];
            while self.eat_kw(Kw::FollowedBy) {
                items.push(self.observation_or()?);
            }
            ObservationExpr::FollowedBy(items)
        } else {
            first
        };
        self.leave();
        Ok(e)
    }

    fn observation_or(&mut self) -> Result<ObservationExpr, ParseError> {
        let first = self.observation_and()?;
        let e = if self.eat_kw(Kw::Or) {
            let mut items = vec![first, self.observation_and()?];
            while self.eat_kw(Kw::Or) {
                items.push(self.observation_and()?);
            }
            ObservationExpr::Or(items)
        } else {
            first
        };
        Ok(e)
    }

    fn observation_and(&mut self) -> Result<ObservationExpr, ParseError> {
        let first = self.observation_qualified()?;
        let e = if self.eat_kw(Kw::And) {
            let mut items = vec![first, self.observation_qualified()?];
            while self.eat_kw(Kw::And) {
                items.push(self.observation_qualified()?);
            }
            ObservationExpr::And(items)
        } else {
            first
        };
        Ok(e)
    }

    fn observation_qualified(&mut self) -> Result<ObservationExpr, ParseError> {
        let mut e = match self.peek() {
            Tok::LBrack => {
                self.bump();
                let c = self.comparison_or()?;
                self.expect(&Tok::RBrack, "AND, OR or ']'")?;
                ObservationExpr::Comparison(c)
            }
            Tok::LParen => {
                self.bump();
                let e = self.observation_fb()?;
                self.expect(&Tok::RParen, "AND, OR, FOLLOWEDBY, a qualifier or ')'")?;
                e
            }
            _ => return Err(self.unexpected("'[' or '('")),
        };
        let mut qualifiers = 0usize;
        while let Some(q) = self.qualifier()? {
            qualifiers += 1;
            if qualifiers > self.limits.max_depth {
                return Err(Self::err_at(
                    self.pos(),
                    ParseErrorKind::Limit {
                        what: "qualifiers on one expression",
                        max: self.limits.max_depth,
                        actual: qualifiers,
                    },
                ));
            }
            e = ObservationExpr::Qualified(Box::new(e), q);
        }
        Ok(e)
    }

    fn qualifier(&mut self) -> Result<Option<Qualifier>, ParseError> {
        let pos = self.pos();
        match self.peek() {
            Tok::Kw(Kw::Within) => {
                self.bump();
                let npos = self.pos();
                let nanos = match self.bump() {
                    Tok::Int(t) | Tok::Float(t) if !t.starts_with('-') => seconds_to_nanos(&t)
                        .ok_or_else(|| {
                            Self::err_at(
                                npos,
                                ParseErrorKind::InvalidLiteral {
                                    what: "duration",
                                    detail: format!("{t} seconds is out of range"),
                                },
                            )
                        })?,
                    other => {
                        self.unbump(other);
                        return Err(self.unexpected("a positive number of seconds"));
                    }
                };
                if nanos == 0 {
                    return Err(Self::err_at(
                        npos,
                        ParseErrorKind::Semantic("WITHIN needs a positive duration".into()),
                    ));
                }
                if !self.eat_kw(Kw::Seconds) {
                    return Err(self.unexpected("SECONDS"));
                }
                Ok(Some(Qualifier::Within { nanos }))
            }
            Tok::Kw(Kw::Repeats) => {
                self.bump();
                let npos = self.pos();
                let n = match self.bump() {
                    Tok::Int(t) if !t.starts_with('-') => {
                        t.trim_start_matches('+').parse::<u32>().ok()
                    }
                    other => {
                        self.unbump(other);
                        return Err(self.unexpected("a positive integer"));
                    }
                };
                let n = match n {
                    Some(n) if n >= 1 => n,
                    _ => {
                        return Err(Self::err_at(
                            npos,
                            ParseErrorKind::Semantic(
                                "REPEATS needs an integer from 1 to 4294967295".into(),
                            ),
                        ));
                    }
                };
                if !self.eat_kw(Kw::Times) {
                    return Err(self.unexpected("TIMES"));
                }
                Ok(Some(Qualifier::Repeats(n)))
            }
            Tok::Kw(Kw::Start) => {
                self.bump();
                let start = self.timestamp_literal()?;
                if !self.eat_kw(Kw::Stop) {
                    return Err(self.unexpected("STOP"));
                }
                let stop = self.timestamp_literal()?;
                Ok(Some(Qualifier::StartStop { start, stop }))
            }
            Tok::Kw(Kw::Last) => Err(Self::err_at(
                pos,
                ParseErrorKind::Semantic("LAST is reserved and not part of STIX 2.1".into()),
            )),
            _ => Ok(None),
        }
    }

    fn timestamp_literal(&mut self) -> Result<Timestamp, ParseError> {
        let pos = self.pos();
        match self.bump() {
            Tok::Time(s) => Timestamp::parse_literal(&s).map_err(|detail| {
                Self::err_at(
                    pos,
                    ParseErrorKind::InvalidLiteral {
                        what: "timestamp",
                        detail,
                    },
                )
            }),
            other => {
                self.unbump(other);
                Err(self.unexpected("a timestamp literal t'...'"))
            }
        }
    }

    // ---- comparison expressions --------------------------------------------------------

    fn comparison_or(&mut self) -> Result<ComparisonExpr, ParseError> {
        self.enter()?;
        let first = self.comparison_and()?;
        let e = if self.eat_kw(Kw::Or) {
            let mut items = vec![first, self.comparison_and()?];
            while self.eat_kw(Kw::Or) {
                items.push(self.comparison_and()?);
            }
            ComparisonExpr::Or(items)
        } else {
            first
        };
        self.leave();
        Ok(e)
    }

    fn comparison_and(&mut self) -> Result<ComparisonExpr, ParseError> {
        let first = self.comparison_atom()?;
        let e = if self.eat_kw(Kw::And) {
            let mut items = vec![first, self.comparison_atom()?];
            while self.eat_kw(Kw::And) {
                items.push(self.comparison_atom()?);
            }
            ComparisonExpr::And(items)
        } else {
            first
        };
        Ok(e)
    }

    fn comparison_atom(&mut self) -> Result<ComparisonExpr, ParseError> {
        match self.peek() {
            Tok::LParen => {
                self.bump();
                let e = self.comparison_or()?;
                self.expect(&Tok::RParen, "AND, OR or ')'")?;
                Ok(e)
            }
            Tok::Kw(Kw::Not) | Tok::Kw(Kw::Exists) => {
                let negated = self.eat_kw(Kw::Not);
                if !self.eat_kw(Kw::Exists) {
                    return Err(self.unexpected("EXISTS"));
                }
                let path = self.object_path()?;
                Ok(ComparisonExpr::Test(Comparison {
                    path,
                    negated,
                    op: Operator::Exists,
                }))
            }
            Tok::Ident(_) => {
                let path = self.object_path()?;
                let negated = self.eat_kw(Kw::Not);
                let op = self.operator()?;
                Ok(ComparisonExpr::Test(Comparison { path, negated, op }))
            }
            _ => Err(self.unexpected("an object path, EXISTS or '('")),
        }
    }

    fn object_path(&mut self) -> Result<ObjectPath, ParseError> {
        let object_type = match self.bump() {
            Tok::Ident(s) => s,
            other => {
                self.unbump(other);
                return Err(self.unexpected("an object type"));
            }
        };
        self.expect(&Tok::Colon, "':'")?;
        let mut steps = vec![PathStep::Key(self.property_name()?)];
        loop {
            match self.peek() {
                Tok::Dot => {
                    self.bump();
                    steps.push(PathStep::Key(self.property_name()?));
                }
                Tok::LBrack => {
                    self.bump();
                    let pos = self.pos();
                    let step = match self.bump() {
                        Tok::Star => PathStep::AnyIndex,
                        Tok::Int(t) => match t.trim_start_matches('+').parse::<i64>() {
                            Ok(n) => PathStep::Index(n),
                            Err(_) => {
                                return Err(Self::err_at(
                                    pos,
                                    ParseErrorKind::InvalidLiteral {
                                        what: "list index",
                                        detail: format!("{t} is out of range"),
                                    },
                                ));
                            }
                        },
                        other => {
                            self.unbump(other);
                            return Err(self.unexpected("an integer index or '*'"));
                        }
                    };
                    self.expect(&Tok::RBrack, "']'")?;
                    steps.push(step);
                }
                _ => break,
            }
            if steps.len() > self.limits.max_depth {
                return Err(Self::err_at(
                    self.pos(),
                    ParseErrorKind::Limit {
                        what: "object path steps",
                        max: self.limits.max_depth,
                        actual: steps.len(),
                    },
                ));
            }
        }
        Ok(ObjectPath { object_type, steps })
    }

    fn property_name(&mut self) -> Result<String, ParseError> {
        let pos = self.pos();
        match self.bump() {
            Tok::Str(s) => Ok(s),
            Tok::Ident(s) if !s.contains('-') => Ok(s),
            Tok::Ident(s) => Err(Self::err_at(
                pos,
                ParseErrorKind::Unexpected {
                    expected: "a property name (quote names that contain '-')".into(),
                    found: format!("identifier {s:?}"),
                },
            )),
            other => {
                self.unbump(other);
                Err(self.unexpected("a property name"))
            }
        }
    }

    fn operator(&mut self) -> Result<Operator, ParseError> {
        let op = self.bump();
        Ok(match op {
            Tok::Eq => Operator::Eq(self.constant(false)?),
            Tok::Neq => Operator::Neq(self.constant(false)?),
            Tok::Lt => Operator::Lt(self.constant(true)?),
            Tok::Le => Operator::Le(self.constant(true)?),
            Tok::Gt => Operator::Gt(self.constant(true)?),
            Tok::Ge => Operator::Ge(self.constant(true)?),
            Tok::Kw(Kw::In) => Operator::In(self.set()?),
            Tok::Kw(Kw::Like) => Operator::Like(self.string_operand()?.1),
            Tok::Kw(Kw::Matches) => {
                let (pos, s) = self.string_operand()?;
                let rx = Rx::pcre(&s).map_err(|detail| {
                    Self::err_at(
                        pos,
                        ParseErrorKind::InvalidLiteral {
                            what: "regular expression",
                            detail,
                        },
                    )
                })?;
                self.regexes.push(rx);
                Operator::Matches(s)
            }
            Tok::Kw(Kw::IsSubset) => Operator::IsSubset(self.network_operand()?),
            Tok::Kw(Kw::IsSuperset) => Operator::IsSuperset(self.network_operand()?),
            other => {
                self.unbump(other);
                return Err(self.unexpected(
                    "a comparison operator (=, !=, <, <=, >, >=, IN, LIKE, MATCHES, ISSUBSET, ISSUPERSET)",
                ));
            }
        })
    }

    fn string_operand(&mut self) -> Result<(Position, String), ParseError> {
        let pos = self.pos();
        match self.bump() {
            Tok::Str(s) => {
                if s.chars().count() > self.limits.max_regex_len {
                    return Err(Self::err_at(
                        pos,
                        ParseErrorKind::Limit {
                            what: "regular expression length",
                            max: self.limits.max_regex_len,
                            actual: s.chars().count(),
                        },
                    ));
                }
                Ok((pos, s))
            }
            other => {
                self.unbump(other);
                Err(self.unexpected("a string literal"))
            }
        }
    }

    fn network_operand(&mut self) -> Result<String, ParseError> {
        let pos = self.pos();
        match self.bump() {
            Tok::Str(s) => {
                if crate::net::Net::parse(&s).is_none() {
                    return Err(Self::err_at(
                        pos,
                        ParseErrorKind::InvalidLiteral {
                            what: "IP address or CIDR network",
                            detail: format!("{s:?}"),
                        },
                    ));
                }
                Ok(s)
            }
            other => {
                self.unbump(other);
                Err(self.unexpected("a string literal holding an address or network"))
            }
        }
    }

    fn set(&mut self) -> Result<Vec<Constant>, ParseError> {
        self.expect(&Tok::LParen, "'('")?;
        let mut out: Vec<Constant> = Vec::new();
        if self.eat(&Tok::RParen) {
            return Ok(out);
        }
        loop {
            let pos = self.pos();
            let c = self.constant(false)?;
            if let Some(first) = out.first()
                && !same_set_type(first, &c)
            {
                return Err(Self::err_at(
                    pos,
                    ParseErrorKind::Semantic(format!(
                        "set members must have one type: {first} and {c} differ"
                    )),
                ));
            }
            out.push(c);
            if out.len() > self.limits.max_set_len {
                return Err(Self::err_at(
                    pos,
                    ParseErrorKind::Limit {
                        what: "set size",
                        max: self.limits.max_set_len,
                        actual: out.len(),
                    },
                ));
            }
            if self.eat(&Tok::RParen) {
                return Ok(out);
            }
            self.expect(&Tok::Comma, "',' or ')'")?;
        }
    }

    fn constant(&mut self, orderable: bool) -> Result<Constant, ParseError> {
        let pos = self.pos();
        let invalid = |what: &'static str, detail: String| {
            Self::err_at(pos, ParseErrorKind::InvalidLiteral { what, detail })
        };
        let c = match self.bump() {
            Tok::Str(s) => Constant::Str(s),
            Tok::Int(t) => Constant::Int(
                t.trim_start_matches('+')
                    .parse::<i64>()
                    .map_err(|_| invalid("integer", format!("{t} does not fit in 64 bits")))?,
            ),
            Tok::Float(t) => {
                let x = t
                    .trim_start_matches('+')
                    .parse::<f64>()
                    .map_err(|e| invalid("float", e.to_string()))?;
                if !x.is_finite() {
                    return Err(invalid("float", format!("{t} is out of range")));
                }
                Constant::Float(x)
            }
            Tok::Kw(Kw::True) if !orderable => Constant::Bool(true),
            Tok::Kw(Kw::False) if !orderable => Constant::Bool(false),
            Tok::Hex(h) => Constant::Hex(decode_hex(&h).ok_or_else(|| {
                invalid("hex literal", "needs an even number of hex digits".into())
            })?),
            // The grammar needs at least one base64 quantum: `b''` is not a literal.
            Tok::Bin(b) => {
                Constant::Binary(decode_base64(&b).filter(|_| !b.is_empty()).ok_or_else(|| {
                    invalid(
                        "binary literal",
                        "is not non-empty padded standard base64".into(),
                    )
                })?)
            }
            Tok::Time(t) => Constant::Timestamp(
                Timestamp::parse_literal(&t).map_err(|d| invalid("timestamp", d))?,
            ),
            other => {
                self.unbump(other);
                return Err(self.unexpected(if orderable {
                    "a number, string, binary, hex or timestamp literal"
                } else {
                    "a literal"
                }));
            }
        };
        Ok(c)
    }
}

fn same_set_type(a: &Constant, b: &Constant) -> bool {
    use Constant::*;
    matches!(
        (a, b),
        (Str(_), Str(_))
            | (Int(_) | Float(_), Int(_) | Float(_))
            | (Bool(_), Bool(_))
            | (Binary(_) | Hex(_), Binary(_) | Hex(_))
            | (Timestamp(_), Timestamp(_))
    )
}

/// Parses `12`, `1.5`, `.25` as a count of nanoseconds (extra fraction digits truncated).
fn seconds_to_nanos(t: &str) -> Option<u128> {
    let t = t.trim_start_matches('+');
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos: u128 = 0;
    for i in 0..9 {
        let d = frac.as_bytes().get(i).map_or(0, |b| u128::from(b - b'0'));
        nanos = nanos * 10 + d;
    }
    whole.checked_mul(1_000_000_000)?.checked_add(nanos)
}

pub(crate) fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let val = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(val(p[0])? << 4 | val(p[1])?))
        .collect()
}

/// Strict standard base64 with padding (what the grammar accepts).
pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return None;
    }
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    let chunks = b.len() / 4;
    for (i, q) in b.chunks(4).enumerate() {
        let last = i + 1 == chunks;
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for (j, &c) in q.iter().enumerate() {
            let v = if j >= 4 - pad { 0 } else { val(c)? };
            n = n << 6 | v;
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}
