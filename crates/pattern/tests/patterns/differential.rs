//! Differential testing against stix2-matcher on seeded generated cases, and the printer
//! round-trip property on the same patterns.

use kizuna_pattern::Pattern;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::cases::ours;
use crate::generator::{Case, Gen};
use crate::reference::{self, Outcome};

const SEEDS: [u64; 3] = [0x5717_0001, 0x5717_0002, 0x5717_0003];
const CASES_PER_SEED: usize = 700;

fn generate() -> Vec<Case> {
    let mut out = Vec::new();
    for seed in SEEDS {
        let mut g = Gen::new(StdRng::seed_from_u64(seed));
        out.extend((0..CASES_PER_SEED).map(|_| g.case()));
    }
    out
}

#[test]
fn printer_round_trips_generated_patterns() {
    let mut parsed = 0;
    for case in generate() {
        let Ok(p) = Pattern::parse(&case.pattern) else {
            continue;
        };
        parsed += 1;
        let printed = p.to_string();
        let again = Pattern::parse(&printed).unwrap_or_else(|e| {
            panic!(
                "canonical form {printed:?} of {:?} does not parse: {e}",
                case.pattern
            )
        });
        assert_eq!(
            again.ast(),
            p.ast(),
            "round trip of {:?} via {printed:?}",
            case.pattern
        );
        assert_eq!(
            again.to_string(),
            printed,
            "canonical form is a fixed point"
        );
    }
    assert!(
        parsed > CASES_PER_SEED * 2,
        "only {parsed} generated patterns parsed"
    );
}

#[test]
fn agrees_with_stix2_matcher() {
    let cases = generate();
    let batch: Vec<(String, &str, serde_json::Value)> = cases
        .iter()
        .map(|c| (c.pattern.clone(), c.version, c.observations.clone()))
        .collect();
    let reference = reference::run(&batch);
    let mut disagreements = Vec::new();
    let (mut matched, mut unmatched, mut errors) = (0, 0, 0);
    for (case, theirs) in cases.iter().zip(&reference) {
        let (mine, _) = ours(&case.pattern, case.version, &case.observations);
        match &mine {
            Outcome::Matched(true) => matched += 1,
            Outcome::Matched(false) => unmatched += 1,
            Outcome::Error(_) => errors += 1,
        }
        let agree = match (&mine, theirs) {
            (Outcome::Matched(a), Outcome::Matched(b)) => a == b,
            (Outcome::Error(_), Outcome::Error(_)) => true,
            _ => false,
        };
        if !agree {
            disagreements.push(format!(
                "-s {} {:?}\n  kizuna: {mine:?}\n  stix2-matcher: {theirs:?}\n  observations: {}",
                case.version, case.pattern, case.observations
            ));
        }
    }
    // The generator must exercise both outcomes and every construct.
    assert!(
        matched > 200 && unmatched > 200 && errors > 20,
        "matched {matched}, unmatched {unmatched}, errors {errors}"
    );
    let all: String = cases
        .iter()
        .map(|c| c.pattern.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for needle in [
        " = ",
        " != ",
        " < ",
        " <= ",
        " > ",
        " >= ",
        " IN (",
        " LIKE ",
        " MATCHES ",
        " ISSUBSET ",
        " ISSUPERSET ",
        "EXISTS ",
        " NOT ",
        " AND ",
        " OR ",
        " FOLLOWEDBY ",
        " WITHIN ",
        " REPEATS ",
        " START t'",
        "[*]",
        "[0]",
        "_ref.",
        "_refs[",
        ".'deep key'",
        ":'odd-key'",
        "b'",
        "h'",
        "t'",
        "true",
        ".5",
        "\\'",
        "\\\\",
        "\u{65e5}",
        "\u{1f980}",
    ] {
        assert!(
            all.contains(needle),
            "the generator never produced {needle:?}"
        );
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} generated cases disagree with stix2-matcher (first 10):\n{}",
        disagreements.len(),
        cases.len(),
        disagreements
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
