//! `MATCHES` and `LIKE` as regular expressions with bounded cost.
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
        match regex::RegexBuilder::new(src)
            .dot_matches_new_line(true)
            .size_limit(COMPILED_SIZE_LIMIT)
            .dfa_size_limit(COMPILED_SIZE_LIMIT)
            .build()
        {
            Ok(r) => Ok(Rx::Linear(r)),
            Err(linear_err) => {
                let wrapped = format!("(?s){src}");
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

    /// Compiles a `LIKE` operand: `%` is any run, `_` any one character, the rest literal.
    pub(crate) fn like(src: &str) -> Result<Rx, String> {
        let mut re = String::with_capacity(src.len() + 8);
        re.push_str("^(?:");
        let mut buf = [0u8; 4];
        for c in src.chars() {
            match c {
                '%' => re.push_str(".*"),
                '_' => re.push('.'),
                c => re.push_str(&regex::escape(c.encode_utf8(&mut buf))),
            }
        }
        re.push_str(")\\z");
        regex::RegexBuilder::new(&re)
            .dot_matches_new_line(true)
            .size_limit(COMPILED_SIZE_LIMIT)
            .build()
            .map(Rx::Linear)
            .map_err(|e| e.to_string())
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
    fn catastrophic_backtracking_is_bounded() {
        let rx = Rx::pcre(r"^(a+)+$(?<=a)").unwrap();
        let input = format!("{}!", "a".repeat(64));
        assert!(matches!(rx.is_match(&input), Err(EvalError::RegexLimit(_))));
    }

    #[test]
    fn like_wildcards() {
        let rx = Rx::like("a%c_").unwrap();
        assert!(rx.is_match("abbbcd").unwrap());
        assert!(rx.is_match("a\nc\n").unwrap());
        assert!(!rx.is_match("abbbc").unwrap());
        assert!(Rx::like("1.2*").unwrap().is_match("1.2*").unwrap());
        assert!(!Rx::like("1.2").unwrap().is_match("1x2").unwrap());
    }
}
