//! `MATCHES` and `LIKE` as regular expressions with bounded cost.
//!
//! `LIKE` needs no regular expression: [`Like`] matches its two wildcards directly, in
//! O(value × operand) time at worst and without compiling anything.
//!
//! A regular expression is first given to the `regex` crate, whose matching time is linear in
//! the input. Only when it uses what that crate refuses by design — look-around and
//! back-references, both PCRE features the specification allows — does it go to `fancy-regex`,
//! which backtracks, with a backtrack limit: an evaluation that hits the limit is reported as
//! [`EvalError::RegexLimit`], never left to run. Both are built with DOTALL, as the specification
//! requires for `MATCHES` (and, for `%` and `_`, for `LIKE`).

use crate::error::EvalError;

/// Size limit for one compiled regular expression (bytes of program).
const COMPILED_SIZE_LIMIT: usize = 1 << 20;
/// Backtracking steps allowed per `fancy-regex` match.
const BACKTRACK_LIMIT: usize = 200_000;

/// A compiled `MATCHES` or `LIKE` operand.
#[derive(Debug, Clone)]
pub(crate) enum Rx {
    /// Linear-time engine.
    Linear(regex::Regex),
    /// Backtracking engine, used only for look-around and back-references.
    Backtracking(fancy_regex::Regex),
}

impl Rx {
    /// Compiles a PCRE-syntax regular expression with DOTALL.
    pub(crate) fn pcre(src: &str) -> Result<Rx, String> {
        let linear_src = pcre_dollar(src, "(?:\\n?\\z)");
        match regex::RegexBuilder::new(&linear_src)
            .dot_matches_new_line(true)
            .size_limit(COMPILED_SIZE_LIMIT)
            .dfa_size_limit(COMPILED_SIZE_LIMIT)
            .build()
        {
            Ok(r) => Ok(Rx::Linear(r)),
            Err(linear_err) => {
                let wrapped = format!("(?s){}", pcre_dollar(src, "(?=\\n?\\z)"));
                fancy_regex::RegexBuilder::new(&wrapped)
                    .backtrack_limit(BACKTRACK_LIMIT)
                    .delegate_size_limit(COMPILED_SIZE_LIMIT)
                    .delegate_dfa_size_limit(COMPILED_SIZE_LIMIT)
                    .build()
                    .map(Rx::Backtracking)
                    .map_err(|fancy_err| match linear_err {
                        regex::Error::CompiledTooBig(_) => linear_err.to_string(),
                        _ => fancy_err.to_string(),
                    })
            }
        }
    }

    /// Whether the expression matches anywhere in `s`.
    pub(crate) fn is_match(&self, s: &str) -> Result<bool, EvalError> {
        match self {
            Rx::Linear(r) => Ok(r.is_match(s)),
            Rx::Backtracking(r) => r
                .is_match(s)
                .map_err(|_| EvalError::RegexLimit(r.as_str().to_string())),
        }
    }
}

/// Rewrites PCRE's `$` for engines where it means only "end of input".
///
/// Without the multi-line flag, PCRE's `$` also matches just before a newline that ends the
/// input. Each `$` outside a character class and not escaped becomes `anchor` (which says exactly
/// that); patterns that set the multi-line flag anywhere are left alone, since there `$` already
/// means the same in both syntaxes.
fn pcre_dollar<'a>(src: &'a str, anchor: &str) -> std::borrow::Cow<'a, str> {
    if !src.contains('$') || sets_multi_line(src) {
        return std::borrow::Cow::Borrowed(src);
    }
    let mut out = String::with_capacity(src.len() + 16);
    let mut chars = src.chars().peekable();
    let mut class_depth = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            '[' => {
                out.push(c);
                class_depth += 1;
                if class_depth == 1 {
                    // `[^]...]` and `[]...]`: a `]` right after the opening is a literal.
                    if chars.peek() == Some(&'^') {
                        out.push('^');
                        chars.next();
                    }
                    if chars.peek() == Some(&']') {
                        out.push(']');
                        chars.next();
                    }
                }
            }
            ']' if class_depth > 0 => {
                out.push(c);
                class_depth -= 1;
            }
            '$' if class_depth == 0 => out.push_str(anchor),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Whether an inline flag group (`(?m)`, `(?im:...)`, ...) turns on multi-line mode.
fn sets_multi_line(src: &str) -> bool {
    src.match_indices("(?").any(|(at, _)| {
        src[at + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphabetic() || *c == '-')
            .take_while(|c| *c != '-')
            .any(|c| c == 'm')
    })
}

/// Byte equality of two slices of equal length, in line for short ones.
#[inline]
fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() > 32 {
        return a == b;
    }
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// A compiled `LIKE` operand: `%` is any run of characters, `_` any one character (newlines
/// included), everything else literal.
#[derive(Debug, Clone)]
pub(crate) struct Like {
    /// The operand split at `%`: literal-or-`_` segments.
    segments: Vec<Vec<LikeChar>>,
    /// For operands without `_` and with at most one `%`: the literal text before and after it
    /// (`None` after when there is no `%`), matched without decoding the value into chars.
    literal: Option<(String, Option<String>)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum LikeChar {
    Any,
    Lit(char),
}

impl Like {
    pub(crate) fn new(operand: &str) -> Like {
        let parts: Vec<&str> = operand.split('%').collect();
        let literal = match parts.as_slice() {
            [a] if !a.contains('_') => Some((a.to_string(), None)),
            [a, b] if !a.contains('_') && !b.contains('_') => {
                Some((a.to_string(), Some(b.to_string())))
            }
            _ => None,
        };
        if literal.is_some() {
            // The segments serve only when there is no literal form.
            return Like {
                segments: Vec::new(),
                literal,
            };
        }
        let segments = parts
            .iter()
            .map(|p| {
                p.chars()
                    .map(|c| {
                        if c == '_' {
                            LikeChar::Any
                        } else {
                            LikeChar::Lit(c)
                        }
                    })
                    .collect()
            })
            .collect();
        Like { segments, literal }
    }

    /// Whether `seg` matches `s` at char offset `at`; returns the end offset.
    fn at(seg: &[LikeChar], s: &[char], at: usize) -> Option<usize> {
        let end = at.checked_add(seg.len())?;
        let window = s.get(at..end)?;
        seg.iter()
            .zip(window)
            .all(|(p, c)| match p {
                LikeChar::Any => true,
                LikeChar::Lit(l) => l == c,
            })
            .then_some(end)
    }

    /// Whether the whole of `s` matches.
    pub(crate) fn is_match(&self, s: &str) -> bool {
        match &self.literal {
            Some((a, None)) => return crate::eval::short_eq(s, a),
            Some((a, Some(b))) => {
                let (s, a, b) = (s.as_bytes(), a.as_bytes(), b.as_bytes());
                return s.len() >= a.len() + b.len()
                    && bytes_eq(&s[..a.len()], a)
                    && bytes_eq(&s[s.len() - b.len()..], b);
            }
            None => {}
        }
        let chars: Vec<char> = s.chars().collect();
        let n = self.segments.len();
        // Leading segment anchored at 0, trailing segment anchored at the end, the middle ones
        // placed leftmost-first: greedy leftmost placement is optimal for `%` separators.
        let first = &self.segments[0];
        let Some(mut pos) = Self::at(first, &chars, 0) else {
            return false;
        };
        if n == 1 {
            return pos == chars.len();
        }
        let last = &self.segments[n - 1];
        let Some(last_start) = chars.len().checked_sub(last.len()) else {
            return false;
        };
        if last_start < pos || Self::at(last, &chars, last_start).is_none() {
            return false;
        }
        for seg in &self.segments[1..n - 1] {
            let mut found = None;
            let mut i = pos;
            while i + seg.len() <= last_start {
                if let Some(end) = Self::at(seg, &chars, i) {
                    found = Some(end);
                    break;
                }
                i += 1;
            }
            match found {
                Some(end) => pos = end,
                None => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcre_features_and_dotall() {
        assert!(matches!(Rx::pcre("a.b").unwrap(), Rx::Linear(_)));
        assert!(Rx::pcre("a.b").unwrap().is_match("a\nb").unwrap());
        let look = Rx::pcre("foo(?=bar)").unwrap();
        assert!(matches!(look, Rx::Backtracking(_)));
        assert!(look.is_match("foobar").unwrap());
        assert!(!look.is_match("foobaz").unwrap());
        let back = Rx::pcre(r"(a+)b\1").unwrap();
        assert!(back.is_match("aabaa").unwrap());
        assert!(Rx::pcre("(").is_err());
    }

    #[test]
    fn dollar_also_matches_before_a_final_newline_as_in_pcre() {
        let rx = Rx::pcre("^abc$").unwrap();
        assert!(rx.is_match("abc").unwrap());
        assert!(rx.is_match("abc\n").unwrap());
        assert!(!rx.is_match("abc\n\n").unwrap());
        assert!(!rx.is_match("abc\nx").unwrap());
        let fancy = Rx::pcre("(?<=a)bc$").unwrap();
        assert!(matches!(fancy, Rx::Backtracking(_)));
        assert!(fancy.is_match("abc\n").unwrap());
        assert!(!fancy.is_match("abc\nx").unwrap());
        // Escaped and in classes, `$` is a literal.
        assert!(Rx::pcre("a\\$").unwrap().is_match("a$").unwrap());
        assert!(Rx::pcre("a[$]").unwrap().is_match("a$").unwrap());
        assert!(Rx::pcre("a[]$]").unwrap().is_match("a$").unwrap());
        assert!(Rx::pcre("a[[:alpha:]$]").unwrap().is_match("a$").unwrap());
        // Multi-line mode keeps its own meaning.
        assert!(Rx::pcre("(?m)^b$").unwrap().is_match("a\nb\nc").unwrap());
        assert_eq!(pcre_dollar("(?im)a$", "X"), "(?im)a$");
        assert_eq!(pcre_dollar("(?-m)a$|[$]\\$", "X"), "(?-m)aX|[$]\\$");
    }

    #[test]
    fn catastrophic_backtracking_is_bounded() {
        let rx = Rx::pcre(r"^(a+)+$(?<=a)").unwrap();
        let input = format!("{}!", "a".repeat(64));
        assert!(matches!(rx.is_match(&input), Err(EvalError::RegexLimit(_))));
    }

    #[test]
    fn like_wildcards() {
        let l = Like::new("a%c_");
        assert!(l.is_match("abbbcd"));
        assert!(l.is_match("a\nc\n"));
        assert!(!l.is_match("abbbc"));
        assert!(Like::new("1.2*").is_match("1.2*"));
        assert!(!Like::new("1.2").is_match("1x2"));
        assert!(Like::new("%").is_match(""));
        assert!(Like::new("").is_match(""));
        assert!(!Like::new("").is_match("a"));
        assert!(Like::new("%.exe").is_match("evil.exe"));
        assert!(!Like::new("%.exe").is_match("exe"));
        assert!(Like::new("a%a").is_match("aa"));
        assert!(!Like::new("a%a").is_match("a"));
        assert!(Like::new("%b%b%").is_match("abab"));
        assert!(!Like::new("%b%b%").is_match("ab"));
        assert!(Like::new("_%_").is_match("ab"));
        assert!(!Like::new("_%_").is_match("a"));
        assert!(Like::new("日%本").is_match("日x本"));
        assert!(Like::new("%ab%ab").is_match("abab"));
        assert!(Like::new("a%b%c").is_match("abcbc"));
    }

    #[test]
    fn pcre_syntax_beyond_the_regex_crate() {
        assert!(Rx::pcre("abc\\z").unwrap().is_match("xabc").unwrap());
        assert!(Rx::pcre("\\Aab").unwrap().is_match("abc").unwrap());
        assert!(Rx::pcre("(?<=a)b").unwrap().is_match("ab").unwrap());
        assert!(Rx::pcre("(?>a+)b").unwrap().is_match("aab").unwrap());
        assert!(Rx::pcre("a++b").unwrap().is_match("aab").unwrap());
    }
}
