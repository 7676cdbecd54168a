//! `kizuna match` with patterns that bind several observations: lines far apart in the input
//! (in different batches, on different workers) complete `FOLLOWEDBY ... WITHIN` and `REPEATS`,
//! in input order, whatever the number of workers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{kizuna, observation_line as line, pattern_indicator as indicator};
use serde_json::{Value, json};

/// Filler lines that match nothing, enough to put what follows in another batch.
fn filler(out: &mut String, from: u32, count: u32, second: u32) {
    for n in from..from + count {
        out.push_str(&line(n, second, "domain-name", &format!("fill{n}.example")));
        out.push('\n');
    }
}

fn run(dir: &Path, indicators: &[Value], observations: &str, jobs: &str) -> (i32, Vec<Value>) {
    let ind = dir.join("indicators.json");
    std::fs::write(&ind, Value::Array(indicators.to_vec()).to_string()).unwrap();
    let obs = dir.join("observations.jsonl");
    std::fs::write(&obs, observations).unwrap();
    let (code, out, err) = kizuna(
        &dir.join("data"),
        &[
            "match",
            "--indicators",
            ind.to_str().unwrap(),
            "--observations",
            obs.to_str().unwrap(),
            "--jobs",
            jobs,
        ],
        None,
    );
    assert!(code == 0 || code == 1, "{err}");
    // `created` and `modified` are the time of the run: left out to compare runs.
    let sightings = out
        .lines()
        .map(|l| {
            let mut s: Value = serde_json::from_str(l).unwrap();
            let o = s.as_object_mut().unwrap();
            assert!(o.remove("created").is_some() && o.remove("modified").is_some());
            s
        })
        .collect();
    (code, sightings)
}

/// Runs with one and with two workers, checks both give the same output, returns it.
fn run_both(dir: &Path, indicators: &[Value], observations: &str) -> (i32, Vec<Value>) {
    let one = run(dir, indicators, observations, "1");
    let two = run(dir, indicators, observations, "2");
    assert_eq!(one, two, "--jobs 1 and --jobs 2 differ");
    one
}

/// Parenthesised: a qualifier binds to the observation expression just before it.
const FOLLOWED: &str = "([ipv4-addr:value = '198.51.100.7'] FOLLOWEDBY \
     [domain-name:value = 'evil.example']) WITHIN 60 SECONDS";

#[test]
fn followedby_within_across_lines_far_apart() {
    let dir = tempfile::tempdir().unwrap();
    let mut input = String::new();
    input.push_str(&line(1, 0, "ipv4-addr", "198.51.100.7"));
    input.push('\n');
    filler(&mut input, 10, 1500, 10);
    input.push_str(&line(2, 30, "domain-name", "evil.example"));
    input.push('\n');
    filler(&mut input, 2000, 700, 40);
    let (code, sightings) = run_both(dir.path(), &[indicator(1, FOLLOWED)], &input);
    assert_eq!(code, 1);
    assert_eq!(sightings.len(), 1, "{sightings:?}");
    let s = &sightings[0];
    assert_eq!(
        s["sighting_of_ref"],
        "indicator--00000000-0000-4000-8000-000000000001"
    );
    assert_eq!(
        s["observed_data_refs"],
        json!([
            "observed-data--00000000-0000-4000-8000-000000000001",
            "observed-data--00000000-0000-4000-8000-000000000002"
        ])
    );
    assert_eq!(s["first_seen"], "2026-11-26T10:00:00Z");
    assert_eq!(s["last_seen"], "2026-11-26T10:00:30Z");
}

#[test]
fn followedby_outside_the_window_does_not_match() {
    let dir = tempfile::tempdir().unwrap();
    let mut input = String::new();
    input.push_str(&line(1, 0, "ipv4-addr", "198.51.100.7"));
    input.push('\n');
    filler(&mut input, 10, 1500, 30);
    // 90 seconds after the first: past the 60-second window.
    input.push_str(&line(2, 90, "domain-name", "evil.example"));
    input.push('\n');
    let (code, sightings) = run_both(dir.path(), &[indicator(1, FOLLOWED)], &input);
    assert_eq!(code, 0, "{sightings:?}");
    assert!(sightings.is_empty());
    // The wrong order does not match either.
    let mut input = String::new();
    input.push_str(&line(2, 0, "domain-name", "evil.example"));
    input.push('\n');
    filler(&mut input, 10, 600, 5);
    input.push_str(&line(1, 10, "ipv4-addr", "198.51.100.7"));
    input.push('\n');
    let (code, sightings) = run_both(dir.path(), &[indicator(1, FOLLOWED)], &input);
    assert_eq!(code, 0, "{sightings:?}");
}

#[test]
fn repeats_across_lines_and_single_line_hits_are_not_doubled() {
    let dir = tempfile::tempdir().unwrap();
    let repeats = indicator(1, "[ipv4-addr:value = '203.0.113.9'] REPEATS 3 TIMES");
    let single = indicator(2, "[domain-name:value = 'fill700.example']");
    let mut input = String::new();
    for (i, n) in [1u32, 2, 3].into_iter().enumerate() {
        input.push_str(&line(
            n,
            u32::try_from(i).unwrap() * 5,
            "ipv4-addr",
            "203.0.113.9",
        ));
        input.push('\n');
        filler(&mut input, 100 + 1000 * n, 400, 1);
    }
    filler(&mut input, 700, 1, 20);
    let (code, sightings) = run_both(dir.path(), &[repeats, single], &input);
    assert_eq!(code, 1);
    assert_eq!(sightings.len(), 2, "{sightings:?}");
    assert_eq!(
        sightings[0]["observed_data_refs"].as_array().unwrap().len(),
        3,
        "{sightings:?}"
    );
    assert_eq!(
        sightings[1]["sighting_of_ref"],
        "indicator--00000000-0000-4000-8000-000000000002"
    );
    // Two occurrences only: no sighting.
    let mut input = String::new();
    for n in [1u32, 2] {
        input.push_str(&line(n, n, "ipv4-addr", "203.0.113.9"));
        input.push('\n');
        filler(&mut input, 100 + 1000 * n, 600, 1);
    }
    let (code, sightings) = run_both(
        dir.path(),
        &[indicator(
            1,
            "[ipv4-addr:value = '203.0.113.9'] REPEATS 3 TIMES",
        )],
        &input,
    );
    assert_eq!(code, 0, "{sightings:?}");
}

#[test]
fn followedby_in_one_bundle_is_found_once() {
    let dir = tempfile::tempdir().unwrap();
    let a: Value = serde_json::from_str(&line(1, 0, "ipv4-addr", "198.51.100.7")).unwrap();
    let b: Value = serde_json::from_str(&line(2, 20, "domain-name", "evil.example")).unwrap();
    let mut objects = a["objects"].as_array().unwrap().clone();
    objects.extend(b["objects"].as_array().unwrap().iter().cloned());
    let both = json!({"type": "bundle", "id": a["id"], "objects": objects});
    let input = format!("{both}\n");
    let (code, sightings) = run_both(dir.path(), &[indicator(1, FOLLOWED)], &input);
    assert_eq!(code, 1);
    assert_eq!(sightings.len(), 1, "{sightings:?}");
}
