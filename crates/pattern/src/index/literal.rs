//! Literals every match of a `MATCHES` regular expression contains.
//!
//! The pattern engine hands a `MATCHES` operand to the `regex` crate (with DOTALL) and only
//! falls back to a backtracking engine for look-around and back-references. `regex-syntax` is
//! the parser of the `regex` crate, so parsing the operand with the same options gives the very
//! expression that runs; its literal extractor then yields a finite set of prefixes (or
//! suffixes) one of which starts (or ends) every match. A match lies inside the value, so the
//! value contains one of those literals. An operand `regex-syntax` refuses (the backtracking
//! ones), or whose literal set is infinite or holds the empty string, gets no literal and the
//! pattern falls back to its object type.

use regex_syntax::hir::literal::{ExtractKind, Extractor};

/// More alternatives than this are not worth an automaton entry each.
const MAX_LITERALS: usize = 64;

/// Literals one of which every match contains, or `None` when there is no useful set.
pub(crate) fn required(src: &str) -> Option<Vec<String>> {
    let hir = regex_syntax::ParserBuilder::new()
        .dot_matches_new_line(true)
        .build()
        .parse(src)
        .ok()?;
    let mut best: Option<(usize, Vec<String>)> = None;
    for kind in [ExtractKind::Prefix, ExtractKind::Suffix] {
        let seq = Extractor::new().kind(kind).extract(&hir);
        let Some(lits) = seq.literals() else {
            continue;
        };
        if lits.is_empty() || lits.len() > MAX_LITERALS {
            continue;
        }
        // A literal cut inside a UTF-8 sequence cannot be searched in text; skip such sets.
        let Some(texts) = lits
            .iter()
            .map(|l| String::from_utf8(l.as_bytes().to_vec()).ok())
            .collect::<Option<Vec<String>>>()
        else {
            continue;
        };
        let shortest = texts.iter().map(String::len).min().unwrap_or(0);
        if shortest == 0 {
            continue;
        }
        if best.as_ref().is_none_or(|(b, _)| shortest > *b) {
            best = Some((shortest, texts));
        }
    }
    best.map(|(_, t)| t)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn literals() {
        assert_eq!(required("^https?://evil\\.example/").unwrap().len(), 2);
        assert_eq!(required("(a|b)c.*").unwrap(), ["ac", "bc"]);
        assert!(required("x.*\\.exe$").unwrap().contains(&".exe".to_owned()));
        assert!(required(".*").is_none());
        assert!(required("(?<=a)b").is_none());
        let ci = required("(?i)ab").unwrap();
        assert!(ci.contains(&"AB".to_owned()) && ci.contains(&"ab".to_owned()));
    }
}
