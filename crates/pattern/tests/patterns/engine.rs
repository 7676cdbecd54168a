//! Behaviour that is not a matter of agreeing with the reference: limits on hostile patterns,
//! bounded evaluation cost, index keys, explanations.

use kizuna_pattern::{
    EvalError, IndexKey, Limits, MatchResult, Observations, ParseErrorKind, Pattern, SpecVersion,
};
use serde_json::{Value, json};

use crate::cases::expand;

/// `n` observed-data, one second apart, each with one `x-thing` with `props`.
fn many(n: usize, count: u64, props: Value) -> Observations {
    let observed: Vec<Value> = (0..n)
        .map(|i| {
            let mut obj = props.clone();
            obj["type"] = json!("x-thing");
            json!({
                "first": format!("2024-01-01T{:02}:{:02}:{:02}Z", i / 3600 % 24, i / 60 % 60, i % 60),
                "count": count,
                "objects": {"0": obj},
            })
        })
        .collect();
    Observations::from_json(&expand(&Value::Array(observed), "2.1"), SpecVersion::V21)
        .expect("valid observations")
}

fn limit_error(pattern: &str) -> &'static str {
    match Pattern::parse(pattern) {
        Err(e) => match e.kind {
            ParseErrorKind::Limit { what, .. } => what,
            other => panic!("expected a limit error for {pattern:.60}, got {other}"),
        },
        Ok(_) => panic!("expected a limit error for {pattern:.60}"),
    }
}

#[test]
fn hostile_patterns_are_rejected_not_run() {
    let deep = format!("{}[a:b = 1]{}", "(".repeat(100), ")".repeat(100));
    assert_eq!(limit_error(&deep), "nesting depth");
    let deep_cmp = format!("[{}a:b = 1{}]", "(".repeat(100), ")".repeat(100));
    assert_eq!(limit_error(&deep_cmp), "nesting depth");
    let long = format!("[a:b = '{}']", "x".repeat(70_000));
    assert_eq!(limit_error(&long), "pattern length in bytes");
    let regex = format!("[a:b MATCHES '{}']", "a".repeat(5000));
    assert_eq!(limit_error(&regex), "regular expression length");
    let path = format!("[a:b{} = 1]", ".c".repeat(100));
    assert_eq!(limit_error(&path), "object path steps");
    let qualifiers = format!("[a:b = 1]{}", " REPEATS 1 TIMES".repeat(100));
    assert_eq!(limit_error(&qualifiers), "qualifiers on one expression");
    assert!(
        limit_error("([a:b = 1] REPEATS 100 TIMES) REPEATS 100 TIMES")
            .starts_with("observations one match binds")
    );
    // A regular expression whose compiled form is too large.
    let big = "[a:b MATCHES '(((a{100}){100}){100})']";
    assert!(Pattern::parse(big).is_err());
}

#[test]
fn long_or_lists_stay_shallow() {
    // Indicator feeds put thousands of hashes in one OR list.
    let terms: Vec<String> = (0..1500)
        .map(|i| format!("x-thing:h = '{i:016x}'"))
        .collect();
    let text = format!("[{}]", terms.join(" OR "));
    let p = Pattern::parse(&text).expect("long OR list parses");
    assert_eq!(p.to_string(), text);
    let obs = many(3, 1, json!({"h": format!("{:016x}", 1499)}));
    assert!(p.matches(&obs).expect("evaluates").matched);
    assert_eq!(p.index_keys().len(), 1500);
}

#[test]
fn repeats_and_number_observed_do_not_blow_up() {
    let a = json!({"a": 1});
    let p = Pattern::parse("[x-thing:a = 1] REPEATS 1000 TIMES").expect("parses");
    assert!(
        !p.matches(&many(999, 1, a.clone()))
            .expect("bounded")
            .matched
    );
    assert!(
        p.matches(&many(1000, 1, a.clone()))
            .expect("bounded")
            .matched
    );
    assert!(
        p.matches(&many(1, 1_000_000_000, a.clone()))
            .expect("bounded")
            .matched
    );
    let within =
        Pattern::parse("[x-thing:a = 1] REPEATS 50 TIMES WITHIN 40 SECONDS").expect("parses");
    assert!(
        !within
            .matches(&many(600, 1, a.clone()))
            .expect("bounded")
            .matched
    );
    assert!(
        within
            .matches(&many(600, 2, a.clone()))
            .expect("bounded")
            .matched
    );
    // A compound repeated beyond what the observations can hold fails on the capacity test.
    let compound =
        Pattern::parse("([x-thing:a = 1] AND [x-thing:a = 1]) REPEATS 30 TIMES").expect("parses");
    assert!(
        !compound
            .matches(&many(59, 1, a.clone()))
            .expect("bounded")
            .matched
    );
    assert!(
        compound
            .matches(&many(60, 1, a.clone()))
            .expect("bounded")
            .matched
    );
    let chain = Pattern::parse("([x-thing:a = 1] FOLLOWEDBY [x-thing:a = 1]) REPEATS 20 TIMES")
        .expect("parses");
    assert!(
        chain
            .matches(&many(40, 1, a.clone()))
            .expect("bounded")
            .matched
    );
}

#[test]
fn the_search_budget_turns_blow_ups_into_errors() {
    let limits = Limits {
        max_search_steps: 50,
        ..Limits::default()
    };
    // Every pair is tried and fails the window: more than 50 steps.
    let p = Pattern::parse_with_limits(
        "([x-thing:a = 1] AND [x-thing:a = 1] AND [x-thing:b = 1]) WITHIN 1 SECONDS",
        &limits,
    )
    .expect("parses");
    let r = p.matches(&many(30, 1, json!({"a": 1})));
    assert_eq!(r, Err(EvalError::SearchLimit(50)));
    let r: Result<MatchResult, _> = Pattern::parse(
        "([x-thing:a = 1] AND [x-thing:a = 1] AND [x-thing:b = 1]) WITHIN 1 SECONDS",
    )
    .expect("parses")
    .matches(&many(30, 1, json!({"a": 1})));
    assert_eq!(r.map(|m| m.matched), Ok(false));
}

#[test]
fn catastrophic_regex_is_cut_off() {
    let p = Pattern::parse("[x-thing:s MATCHES '^(a+)+$(?<=a)']").expect("parses");
    let obs = many(1, 1, json!({"s": format!("{}!", "a".repeat(40))}));
    assert!(matches!(p.matches(&obs), Err(EvalError::RegexLimit(_))));
}

#[test]
fn index_keys() {
    let keys = |p: &str| Pattern::parse(p).expect("parses").index_keys();
    let k = keys("[file:name = 'a' AND file:size > 3]");
    assert!(matches!(&k[..], [IndexKey::Equals { .. }]), "{k:?}");
    let k = keys("[file:size > 3 AND file:name LIKE 'inv%.exe']");
    assert!(
        matches!(&k[..], [IndexKey::Contains { literal, .. }] if literal == ".exe"),
        "{k:?}"
    );
    let k = keys("[url:value LIKE '%evil_.com/%']");
    assert!(
        matches!(&k[..], [IndexKey::Contains { literal, .. }] if literal == ".com/"),
        "{k:?}"
    );
    let k = keys("[url:value MATCHES '^https?://evil\\\\.example/']");
    let lits: Vec<&str> = k
        .iter()
        .map(|k| match k {
            IndexKey::Contains { literal, .. } => literal.as_str(),
            _ => "",
        })
        .collect();
    assert_eq!(lits, ["https://evil.example/", "http://evil.example/"]);
    let k = keys("[url:value MATCHES '.*']");
    assert_eq!(k, vec![IndexKey::ObjectType("url".into())]);
    let k = keys("[artifact:payload_bin = b'AAAA']");
    assert_eq!(k, vec![IndexKey::ObjectType("artifact".into())]);
    let k = keys("[x-a:t = t'2024-01-01T00:00:00Z' OR x-a:n = 3]");
    assert_eq!(k.len(), 2, "{k:?}");
    assert_eq!(k[0], IndexKey::ObjectType("x-a".into()));
    let k = keys("[ipv4-addr:value ISSUBSET '10.0.0.0/8'] OR [file:name IN ('a', 'b')]");
    assert_eq!(k.len(), 3, "{k:?}");
    let k = keys("[file:name NOT = 'a']");
    assert_eq!(k, vec![IndexKey::ObjectType("file".into())]);
    let k = keys("[file:size > 3] FOLLOWEDBY [file:name = 'x']");
    assert!(matches!(&k[..], [IndexKey::Equals { .. }]), "{k:?}");
    let shown: Vec<String> = keys("[ipv6-addr:value ISSUBSET '2001:db8::/32']")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        shown,
        ["network ipv6-addr:value in 2001:db8:: .. 2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"]
    );
}

#[test]
fn explain_shows_canonical_form_tree_and_keys() {
    let e = Pattern::parse("[file:name == 'a'] AND [file:size<3] WITHIN 5 SECONDS")
        .expect("parses")
        .explain();
    assert_eq!(
        e.canonical,
        "[file:name = 'a'] AND [file:size < 3] WITHIN 5 SECONDS"
    );
    let text = e.to_string();
    assert!(
        text.contains("  AND\n    observation [ ]\n      file:name = 'a'\n    WITHIN 5 SECONDS\n"),
        "{text}"
    );
    assert!(text.contains("equals file:name = 'a'"), "{text}");
}

#[test]
fn observations_that_cannot_be_used_are_errors() {
    let bad = json!([{"type": "bundle", "id": "bundle--1", "objects": [
        {"type": "observed-data", "id": "observed-data--1", "first_observed": "2024-01-01T00:00:00Z",
         "last_observed": "2024-01-01T00:00:00Z", "number_observed": 0, "object_refs": []}]}]);
    assert!(Observations::from_json(&bad, SpecVersion::V21).is_err());
    assert!(Observations::from_json(&json!(3), SpecVersion::V21).is_err());
    let no_refs = json!([{"type": "observed-data", "id": "observed-data--1", "first_observed": "2024-01-01T00:00:00Z",
         "last_observed": "2024-01-01T00:00:00Z", "number_observed": 1}]);
    assert!(Observations::from_json(&no_refs, SpecVersion::V21).is_err());
    // A bare observed-data with its SCOs next to it (no bundle) is accepted.
    let bare = json!([
        {"type": "observed-data", "id": "observed-data--1", "first_observed": "2024-01-01T00:00:00Z",
         "last_observed": "2024-01-01T00:00:00Z", "number_observed": 1, "object_refs": ["file--1"]},
        {"type": "file", "id": "file--1", "name": "a"}]);
    let obs = Observations::from_json(&bare, SpecVersion::V21).expect("bare objects");
    assert!(
        Pattern::parse("[file:name = 'a']")
            .expect("parses")
            .matches(&obs)
            .expect("evaluates")
            .matched
    );
}

#[test]
fn compiled_patterns_and_observations_are_shareable_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Pattern>();
    shareable::<Observations>();
    let p = std::sync::Arc::new(Pattern::parse("[x-thing:a = 1]").expect("parses"));
    let obs = std::sync::Arc::new(many(10, 1, json!({"a": 1})));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (p, obs) = (p.clone(), obs.clone());
            std::thread::spawn(move || p.is_match(&obs))
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().expect("thread"), Ok(true));
    }
}
