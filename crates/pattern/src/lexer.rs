//! Tokens of the patterning language, with their positions.
//!
//! Keywords are upper case and `true`/`false` lower case, as in the grammar of the specification;
//! `/* ... */` and `// ...` comments are skipped like whitespace, as the reference grammar does.

use crate::error::{ParseError, ParseErrorKind, Position};

/// A token kind; literals carry their decoded text, not their value (the parser converts).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    LBrack,
    RBrack,
    LParen,
    RParen,
    Colon,
    Dot,
    Comma,
    Star,
    Eq,
    Neq,
    Lt,
    Le,
    Gt,
    Ge,
    Kw(Kw),
    /// An identifier; `hyphen` says whether it contains `-` (only object types may).
    Ident(String),
    /// A string literal, escapes already decoded.
    Str(String),
    /// Integer literal text, sign included.
    Int(String),
    /// Float literal text, sign included.
    Float(String),
    /// `h'...'` contents.
    Hex(String),
    /// `b'...'` contents.
    Bin(String),
    /// `t'...'` contents.
    Time(String),
    Eof,
}

/// Reserved words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kw {
    And,
    Or,
    Not,
    FollowedBy,
    Like,
    Matches,
    IsSubset,
    IsSuperset,
    Exists,
    Last,
    In,
    Start,
    Stop,
    Seconds,
    True,
    False,
    Within,
    Repeats,
    Times,
}

impl Kw {
    fn from_word(w: &str) -> Option<Kw> {
        Some(match w {
            "AND" => Kw::And,
            "OR" => Kw::Or,
            "NOT" => Kw::Not,
            "FOLLOWEDBY" => Kw::FollowedBy,
            "LIKE" => Kw::Like,
            "MATCHES" => Kw::Matches,
            "ISSUBSET" => Kw::IsSubset,
            "ISSUPERSET" => Kw::IsSuperset,
            "EXISTS" => Kw::Exists,
            "LAST" => Kw::Last,
            "IN" => Kw::In,
            "START" => Kw::Start,
            "STOP" => Kw::Stop,
            "SECONDS" => Kw::Seconds,
            "true" => Kw::True,
            "false" => Kw::False,
            "WITHIN" => Kw::Within,
            "REPEATS" => Kw::Repeats,
            "TIMES" => Kw::Times,
            _ => return None,
        })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kw::And => "AND",
            Kw::Or => "OR",
            Kw::Not => "NOT",
            Kw::FollowedBy => "FOLLOWEDBY",
            Kw::Like => "LIKE",
            Kw::Matches => "MATCHES",
            Kw::IsSubset => "ISSUBSET",
            Kw::IsSuperset => "ISSUPERSET",
            Kw::Exists => "EXISTS",
            Kw::Last => "LAST",
            Kw::In => "IN",
            Kw::Start => "START",
            Kw::Stop => "STOP",
            Kw::Seconds => "SECONDS",
            Kw::True => "true",
            Kw::False => "false",
            Kw::Within => "WITHIN",
            Kw::Repeats => "REPEATS",
            Kw::Times => "TIMES",
        }
    }
}

impl Tok {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::LBrack => "'['".into(),
            Tok::RBrack => "']'".into(),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::Colon => "':'".into(),
            Tok::Dot => "'.'".into(),
            Tok::Comma => "','".into(),
            Tok::Star => "'*'".into(),
            Tok::Eq => "'='".into(),
            Tok::Neq => "'!='".into(),
            Tok::Lt => "'<'".into(),
            Tok::Le => "'<='".into(),
            Tok::Gt => "'>'".into(),
            Tok::Ge => "'>='".into(),
            Tok::Kw(k) => format!("keyword {}", k.as_str()),
            Tok::Ident(s) => format!("identifier {s:?}"),
            Tok::Str(s) => format!("string {}", truncate(s)),
            Tok::Int(s) => format!("integer {s}"),
            Tok::Float(s) => format!("float {s}"),
            Tok::Hex(_) => "hex literal".into(),
            Tok::Bin(_) => "binary literal".into(),
            Tok::Time(_) => "timestamp literal".into(),
            Tok::Eof => "end of pattern".into(),
        }
    }
}

fn truncate(s: &str) -> String {
    let short: String = s.chars().take(40).collect();
    if short.len() < s.len() {
        format!("'{short}...'")
    } else {
        format!("'{short}'")
    }
}

/// A token and where it starts.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) pos: Position,
}

struct Lexer<'a> {
    src: &'a str,
    /// Byte offset of the next character.
    at: usize,
    line: u32,
    column: u32,
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<char> {
        match self.src.as_bytes().get(self.at) {
            Some(&b) if b.is_ascii() => Some(char::from(b)),
            Some(_) => self.src[self.at..].chars().next(),
            None => None,
        }
    }

    fn peek2(&self) -> Option<char> {
        let b = self.src.as_bytes();
        match (b.get(self.at), b.get(self.at + 1)) {
            (Some(&c), Some(&d)) if c.is_ascii() && d.is_ascii() => Some(char::from(d)),
            (Some(&c), None) if c.is_ascii() => None,
            _ => {
                let mut it = self.src[self.at..].chars();
                it.next();
                it.next()
            }
        }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn pos(&self) -> Position {
        Position {
            line: self.line,
            column: self.column,
        }
    }

    fn err(&self, pos: Position, kind: ParseErrorKind) -> ParseError {
        ParseError {
            position: pos,
            kind,
        }
    }

    fn skip_trivia(&mut self) -> Result<(), ParseError> {
        loop {
            if self.src.as_bytes().get(self.at) == Some(&b' ') {
                self.at += 1;
                self.column += 1;
                continue;
            }
            match (self.peek(), self.peek2()) {
                (Some(c), _) if c.is_whitespace() => {
                    self.bump();
                }
                (Some('/'), Some('*')) => {
                    let pos = self.pos();
                    self.bump();
                    self.bump();
                    loop {
                        match self.bump() {
                            Some('*') if self.peek() == Some('/') => {
                                self.bump();
                                break;
                            }
                            Some(_) => {}
                            None => {
                                return Err(self.err(
                                    pos,
                                    ParseErrorKind::Unexpected {
                                        expected: "'*/' closing the comment".into(),
                                        found: "end of pattern".into(),
                                    },
                                ));
                            }
                        }
                    }
                }
                (Some('/'), Some('/')) => {
                    while self.peek().is_some_and(|c| c != '\n' && c != '\r') {
                        self.bump();
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// Reads a quoted body after the opening quote; `\'` and `\\` are the only escapes.
    fn quoted(&mut self, start: Position, escapes: bool) -> Result<String, ParseError> {
        // Fast path: a body without escapes is copied in one piece.
        // `'` and `\` are ASCII, so a byte search finds them at character boundaries.
        let rest = &self.src[self.at..];
        let stop = rest
            .bytes()
            .position(|b| b == b'\'' || (escapes && b == b'\\'));
        if let Some(end) = stop
            && rest.as_bytes()[end] == b'\''
        {
            let body = &rest[..end];
            // Columns count characters: every byte that does not continue a UTF-8 sequence.
            for &b in body.as_bytes() {
                if b == b'\n' {
                    self.line += 1;
                    self.column = 1;
                } else if b & 0xC0 != 0x80 {
                    self.column += 1;
                }
            }
            // The body, then the closing quote.
            self.at += end + 1;
            self.column += 1;
            return Ok(body.to_string());
        }
        let mut out = String::new();
        loop {
            let pos = self.pos();
            match self.bump() {
                None => {
                    return Err(self.err(
                        start,
                        ParseErrorKind::Unexpected {
                            expected: "closing quote".into(),
                            found: "end of pattern".into(),
                        },
                    ));
                }
                Some('\'') => return Ok(out),
                Some('\\') if escapes => match self.bump() {
                    Some(c @ ('\'' | '\\')) => out.push(c),
                    other => {
                        return Err(self.err(
                            pos,
                            ParseErrorKind::InvalidLiteral {
                                what: "string",
                                detail: format!(
                                    "only \\' and \\\\ are escapes, found \\{}",
                                    other.map(String::from).unwrap_or_default()
                                ),
                            },
                        ));
                    }
                },
                Some(c) => out.push(c),
            }
        }
    }

    fn number(&mut self, pos: Position) -> Result<Tok, ParseError> {
        let start = self.at;
        if matches!(self.peek(), Some('+' | '-')) {
            self.bump();
        }
        let int_start = self.at;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        let int_digits = &self.src[int_start..self.at];
        if self.peek() == Some('.') && self.peek2().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
            return Ok(Tok::Float(self.src[start..self.at].to_string()));
        }
        if int_digits.is_empty() {
            return Err(self.err(
                pos,
                ParseErrorKind::Unexpected {
                    expected: "a digit after the sign".into(),
                    found: self.found_here(),
                },
            ));
        }
        if int_digits.len() > 1 && int_digits.starts_with('0') {
            return Err(self.err(
                pos,
                ParseErrorKind::InvalidLiteral {
                    what: "integer",
                    detail: format!("leading zero in {}", &self.src[start..self.at]),
                },
            ));
        }
        Ok(Tok::Int(self.src[start..self.at].to_string()))
    }

    fn found_here(&self) -> String {
        match self.peek() {
            None => "end of pattern".into(),
            Some(c) => format!("{c:?}"),
        }
    }

    fn next_token(&mut self) -> Result<Token, ParseError> {
        self.skip_trivia()?;
        let pos = self.pos();
        let Some(c) = self.peek() else {
            return Ok(Token { tok: Tok::Eof, pos });
        };
        let single = |t: Tok| Some(t);
        let tok = match c {
            '[' => single(Tok::LBrack),
            ']' => single(Tok::RBrack),
            '(' => single(Tok::LParen),
            ')' => single(Tok::RParen),
            ':' => single(Tok::Colon),
            ',' => single(Tok::Comma),
            '*' => single(Tok::Star),
            _ => None,
        };
        if let Some(tok) = tok {
            self.bump();
            return Ok(Token { tok, pos });
        }
        let tok = match c {
            '=' => {
                self.bump();
                if self.peek() == Some('=') {
                    self.bump();
                }
                Tok::Eq
            }
            '!' => {
                self.bump();
                if self.peek() != Some('=') {
                    return Err(self.err(
                        pos,
                        ParseErrorKind::Unexpected {
                            expected: "'!='".into(),
                            found: "'!'".into(),
                        },
                    ));
                }
                self.bump();
                Tok::Neq
            }
            '<' => {
                self.bump();
                match self.peek() {
                    Some('=') => {
                        self.bump();
                        Tok::Le
                    }
                    Some('>') => {
                        self.bump();
                        Tok::Neq
                    }
                    _ => Tok::Lt,
                }
            }
            '>' => {
                self.bump();
                if self.peek() == Some('=') {
                    self.bump();
                    Tok::Ge
                } else {
                    Tok::Gt
                }
            }
            '\'' => {
                self.bump();
                Tok::Str(self.quoted(pos, true)?)
            }
            '.' if !self.peek2().is_some_and(|c| c.is_ascii_digit()) => {
                self.bump();
                Tok::Dot
            }
            '+' | '-' | '.' | '0'..='9' => self.number(pos)?,
            't' | 'b' | 'h' if self.peek2() == Some('\'') => {
                self.bump();
                self.bump();
                let body = self.quoted(pos, false)?;
                match c {
                    't' => Tok::Time(body),
                    'b' => Tok::Bin(body),
                    _ => Tok::Hex(body),
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = self.at;
                // ASCII only, no newline: advance over the bytes directly.
                let n = self.src.as_bytes()[start..]
                    .iter()
                    .take_while(|&&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                    .count();
                self.at += n;
                self.column += n as u32;
                let word = &self.src[start..self.at];
                match Kw::from_word(word) {
                    Some(k) => Tok::Kw(k),
                    None => Tok::Ident(word.to_string()),
                }
            }
            other => {
                return Err(self.err(
                    pos,
                    ParseErrorKind::Unexpected {
                        expected: "a token".into(),
                        found: format!("character {other:?}"),
                    },
                ));
            }
        };
        Ok(Token { tok, pos })
    }
}

/// Splits `src` into tokens, ending with [`Tok::Eof`].
pub(crate) fn tokenize(src: &str, max_tokens: usize) -> Result<Vec<Token>, ParseError> {
    let mut lx = Lexer {
        src,
        at: 0,
        line: 1,
        column: 1,
    };
    let mut out = Vec::with_capacity(src.len() / 4 + 2);
    loop {
        let t = lx.next_token()?;
        let eof = matches!(t.tok, Tok::Eof);
        out.push(t);
        if eof {
            return Ok(out);
        }
        if out.len() > max_tokens {
            return Err(lx.err(
                lx.pos(),
                ParseErrorKind::Limit {
                    what: "token count",
                    max: max_tokens,
                    actual: out.len(),
                },
            ));
        }
    }
}
