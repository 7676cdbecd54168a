//! Patterns binding several observations, matched across a stream: they fire when their parts
//! arrive on different lines, agree with evaluating the pattern on all observations at once,
//! and keep bounded state.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on bad test data

use kizuna_detect::{IndicatorSet, IndicatorStream, Observation, StreamLimits, StreamState};
use kizuna_pattern::{Observations, Pattern, SpecVersion};
use kizuna_stix::Timestamp;
use serde_json::{Value, json};

const IDENTITY: &str = "identity--0b6a4c2e-0000-4000-8000-0000000000aa";

fn set(patterns: &[&str]) -> IndicatorSet {
    let objects: Vec<Value> = patterns
        .iter()
        .enumerate()
        .map(|(i, p)| {
            json!({"type": "indicator", "spec_version": "2.1",
                "id": format!("indicator--00000000-0000-4000-8000-{i:012}"),
                "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
                "pattern": p, "pattern_type": "stix", "valid_from": "2023-01-01T00:00:00Z"})
        })
        .collect();
    let now = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
    let (set, report) = IndicatorSet::from_json(
        &json!({"type": "bundle", "id": "bundle--x", "objects": objects}).to_string(),
        IDENTITY,
        now,
    )
    .unwrap();
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    set
}

/// Observation `n` at `seconds` past midnight holding one SCO.
fn obs(n: usize, seconds: u64, sco: Value) -> Observation {
    let t = format!(
        "2024-01-01T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    );
    let mut sco = sco;
    sco["id"] = json!(format!("{}--{n}", sco["type"].as_str().unwrap()));
    Observation {
        source: format!("s:{n}"),
        bundle: json!({"type": "bundle", "id": format!("bundle--{n}"), "objects": [
            {"type": "observed-data", "spec_version": "2.1",
             "id": format!("observed-data--00000000-0000-4000-8000-{n:012}"),
             "created": t, "modified": t, "first_observed": t, "last_observed": t,
             "number_observed": 1, "object_refs": [sco["id"]]},
            sco
        ]}),
        notes: Vec::new(),
    }
}

fn domain(v: &str) -> Value {
    json!({"type": "domain-name", "value": v})
}

fn ip(v: &str) -> Value {
    json!({"type": "ipv4-addr", "value": v})
}

#[test]
fn followedby_within_fires_across_lines_only_inside_the_window() {
    let set = set(&[
        "([domain-name:value = 'a.example'] FOLLOWEDBY [ipv4-addr:value = '10.0.0.1']) WITHIN 60 SECONDS",
    ]);
    let mut stream = IndicatorStream::new(&set, StreamLimits::default());
    // Alone, neither line matches.
    assert!(
        set.matches(&obs(1, 0, domain("a.example")))
            .unwrap()
            .is_empty()
    );
    assert!(
        stream
            .push(&obs(1, 0, domain("a.example")))
            .unwrap()
            .is_empty()
    );
    assert!(stream.push(&obs(2, 10, ip("10.9.9.9"))).unwrap().is_empty());
    let hits = stream.push(&obs(3, 30, ip("10.0.0.1"))).unwrap();
    assert_eq!(hits.len(), 1);
    let refs = &hits[0].sighting["observed_data_refs"];
    assert_eq!(refs.as_array().unwrap().len(), 2, "{refs}");
    assert_eq!(hits[0].sighting["first_seen"], "2024-01-01T00:00:00Z");
    assert_eq!(hits[0].sighting["last_seen"], "2024-01-01T00:00:30Z");
    // Too late: the domain seen at 100 s is out of the window of the address at 200 s.
    assert!(
        stream
            .push(&obs(4, 100, domain("a.example")))
            .unwrap()
            .is_empty()
    );
    assert!(
        stream
            .push(&obs(5, 200, ip("10.0.0.1")))
            .unwrap()
            .is_empty()
    );
    // Wrong order.
    assert!(
        stream
            .push(&obs(6, 300, ip("10.0.0.1")))
            .unwrap()
            .is_empty()
    );
    assert!(
        stream
            .push(&obs(7, 301, domain("b.example")))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn repeats_fires_once_per_binding() {
    let set = set(&["[ipv4-addr:value ISSUBSET '10.0.0.0/8'] REPEATS 3 TIMES WITHIN 600 SECONDS"]);
    let mut stream = IndicatorStream::new(&set, StreamLimits::default());
    let fired: Vec<usize> = (0..7)
        .filter(|&n| {
            !stream
                .push(&obs(n, n as u64, ip(&format!("10.0.0.{n}"))))
                .unwrap()
                .is_empty()
        })
        .collect();
    assert_eq!(fired, [2, 5]);
}

#[test]
fn start_stop_and_single_observation_patterns_in_a_stream() {
    let set = set(&[
        "[domain-name:value = 'a.example'] AND [ipv4-addr:value = '10.0.0.1'] START t'2024-01-01T00:00:00Z' STOP t'2024-01-01T00:01:00Z'",
        "[domain-name:value = 'a.example']",
    ]);
    let mut stream = IndicatorStream::new(&set, StreamLimits::default());
    assert_eq!(
        stream.push(&obs(1, 10, domain("a.example"))).unwrap().len(),
        1
    );
    let hits = stream.push(&obs(2, 20, ip("10.0.0.1"))).unwrap();
    assert_eq!(hits.len(), 1);
    assert!(hits[0].indicator.ends_with("000000000000"));
    // After STOP the pair no longer fires.
    assert_eq!(
        stream.push(&obs(3, 70, domain("a.example"))).unwrap().len(),
        1
    );
    assert!(stream.push(&obs(4, 80, ip("10.0.0.1"))).unwrap().is_empty());
}

#[test]
fn a_stream_fires_exactly_when_the_pattern_matches_all_observations_at_once() {
    let patterns = [
        "[domain-name:value = 'a.example'] FOLLOWEDBY [ipv4-addr:value = '10.0.0.1']",
        "[domain-name:value = 'b.example'] AND [ipv4-addr:value = '10.0.0.2']",
        "[ipv4-addr:value = '10.0.0.3'] REPEATS 2 TIMES",
        "([domain-name:value LIKE '%.example'] FOLLOWEDBY [domain-name:value = 'c.example']) WITHIN 3600 SECONDS",
        "[ipv4-addr:value = '10.0.0.1'] FOLLOWEDBY [domain-name:value = 'b.example'] FOLLOWEDBY [ipv4-addr:value = '10.0.0.3']",
    ];
    let values = [
        domain("a.example"),
        domain("b.example"),
        domain("c.example"),
        domain("d.test"),
        ip("10.0.0.1"),
        ip("10.0.0.2"),
        ip("10.0.0.3"),
    ];
    let mut seed = 0x5eed_u64;
    for round in 0..40 {
        let mut draw = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let len = 1 + (draw() % 6) as usize;
        let stream_obs: Vec<Observation> = (0..len)
            .map(|n| obs(n, n as u64 * 60, values[(draw() % 7) as usize].clone()))
            .collect();
        for (i, p) in patterns.iter().enumerate() {
            let one = set(&[p]);
            let mut stream = IndicatorStream::new(&one, StreamLimits::default());
            let fired = stream_obs
                .iter()
                .any(|o| !stream.push(o).unwrap().is_empty());
            let all = Value::Array(stream_obs.iter().map(|o| o.bundle.clone()).collect());
            let loaded = Observations::from_json(&all, SpecVersion::V21).unwrap();
            let expected = Pattern::parse(p).unwrap().is_match(&loaded).unwrap();
            assert_eq!(fired, expected, "round {round}, pattern {i}");
        }
    }
}

#[test]
fn state_stays_bounded() {
    let set = set(&[
        "([domain-name:value = 'a.example'] FOLLOWEDBY [ipv4-addr:value = '10.0.0.1']) WITHIN 60 SECONDS",
        "[domain-name:value = 'a.example'] FOLLOWEDBY [ipv4-addr:value = '10.0.0.2']",
    ]);
    let limits = StreamLimits { max_buffered: 32 };
    let mut stream = IndicatorStream::new(&set, limits);
    for n in 0..2000 {
        stream
            .push(&obs(n, n as u64 * 10, domain("a.example")))
            .unwrap();
    }
    // 60 s of observations every 10 s for the windowed pattern, the cap for the other.
    assert!(stream.buffered() <= 7 + 32, "{}", stream.buffered());
}

/// `push_temporal` is the multi-observation part of `push` only, `StreamState` serves a set the
/// caller changes, and `forget_removed` drops what a removed indicator had remembered.
#[test]
fn push_temporal_and_state_over_a_changing_set() {
    let mut set = set(&[
        "([domain-name:value = 'a.example'] FOLLOWEDBY [ipv4-addr:value = '10.0.0.1']) WITHIN 60 SECONDS",
        "[domain-name:value = 'a.example']",
    ]);
    assert!(set.binds_several());
    let temporal = "indicator--00000000-0000-4000-8000-000000000000";
    let single = "indicator--00000000-0000-4000-8000-000000000001";
    assert!(set.binds_several_id(temporal) && !set.binds_several_id(single));
    let a = obs(1, 10, domain("a.example"));
    assert!(set.stream_candidates(&a));
    assert!(set.stream_candidates_json_line(&a.bundle.to_string()));
    let other = obs(9, 10, domain("b.example"));
    assert!(!set.stream_candidates(&other));
    assert!(!set.stream_candidates_json_line(&other.bundle.to_string()));

    let mut state = StreamState::new(StreamLimits::default());
    // The single-observation hit of `a` is not the stream's.
    assert!(state.push_temporal(&set, &a).unwrap().is_empty());
    assert_eq!(state.buffered(), 1);
    let hits = state
        .push_temporal(&set, &obs(2, 20, ip("10.0.0.1")))
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].indicator, temporal);
    assert_eq!(
        hits[0].sighting["observed_data_refs"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Remembered, then the indicator goes: forgotten, and no hit after.
    assert!(
        state
            .push_temporal(&set, &obs(3, 30, domain("a.example")))
            .unwrap()
            .is_empty()
    );
    assert_eq!(state.buffered(), 1);
    assert!(set.remove(temporal));
    assert!(!set.binds_several());
    state.forget_removed(&set);
    assert_eq!(state.buffered(), 0);
    assert!(
        state
            .push_temporal(&set, &obs(4, 40, ip("10.0.0.1")))
            .unwrap()
            .is_empty()
    );
}
