//! Indicators against the mail corpus and the log samples: which indicator hits which
//! message or line, and the sightings written for them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on bad test data

use std::path::{Path, PathBuf};

use kizuna_detect::{IndicatorSet, LogFormat, LogSource, MailOptions, MailSource, Observation};
use kizuna_stix::Timestamp;

const IDENTITY: &str = "identity--0b6a4c2e-0000-4000-8000-0000000000aa";

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

fn now() -> Timestamp {
    Timestamp::parse("2026-01-01T00:00:00Z").unwrap()
}

fn indicators() -> IndicatorSet {
    let text = std::fs::read_to_string(testdata().join("logs/indicators.json")).unwrap();
    let (set, report) = IndicatorSet::from_json(&text, IDENTITY, now()).unwrap();
    assert_eq!(report.loaded, 4);
    let skipped = report.skipped.join("\n");
    assert!(skipped.contains("000000000004: revoked"), "{skipped}");
    assert!(
        skipped.contains("000000000005: pattern_type sigma"),
        "{skipped}"
    );
    assert!(skipped.contains("000000000006: "), "{skipped}");
    set
}

/// `(source file name with #N or :LINE, indicator suffix)` for every hit.
fn hits(set: &IndicatorSet, observations: Vec<Observation>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for obs in observations {
        for hit in set.matches(&obs).unwrap() {
            let s = &hit.sighting;
            assert_eq!(s["type"], "sighting");
            assert_eq!(s["sighting_of_ref"], hit.indicator);
            assert_eq!(s["observed_data_refs"][0], hit.observed_data["id"]);
            assert_eq!(s["where_sighted_refs"][0], IDENTITY);
            assert_eq!(s["first_seen"], hit.observed_data["first_observed"]);
            assert_eq!(s["last_seen"], hit.observed_data["last_observed"]);
            assert_eq!(s["count"], 1);
            let name = hit.source.rsplit('/').next().unwrap().to_owned();
            let ind = hit.indicator.rsplit('-').next().unwrap().to_owned();
            out.push((name, ind));
        }
    }
    out
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn mail_corpus_hits() {
    let set = indicators();
    let options = MailOptions {
        now: now(),
        ..MailOptions::default()
    };
    let obs: Vec<Observation> = MailSource::new([testdata().join("mail")], options)
        .map(Result::unwrap)
        .collect();
    assert_eq!(obs.len(), 17);
    let got = hits(&set, obs);
    assert_eq!(
        got,
        pairs(&[
            ("forwarded.eml", "000000000001"),
            ("forwarded.eml", "000000000002"),
            ("mailbox.mbox#2", "000000000001"),
            ("zip-members.eml", "000000000001"),
        ])
    );
}

#[test]
fn log_hits_respect_valid_until() {
    let set = indicators();
    let mut got = Vec::new();
    for (format, paths) in [
        (
            LogFormat::Zeek,
            vec!["logs/zeek/dns.log", "logs/zeek/files.log"],
        ),
        (LogFormat::Suricata, vec!["logs/suricata/eve.json"]),
    ] {
        let obs: Vec<Observation> =
            LogSource::new(format, paths.iter().map(|p| testdata().join(p)), now())
                .filter_map(Result::ok)
                .collect();
        got.extend(hits(&set, obs));
    }
    // eve.json:3 goes to 198.51.100.80 at 10:00:02, before the range indicator expires
    // (10:00:03); eve.json:7 goes to 198.51.100.99 at 10:00:06, after: no hit.
    assert_eq!(
        got,
        pairs(&[
            ("dns.log:1", "000000000007"),
            ("files.log:1", "000000000001"),
            ("eve.json:2", "000000000007"),
            ("eve.json:3", "000000000003"),
            ("eve.json:5", "000000000001"),
        ])
    );
}

#[test]
fn a_sighting_refers_to_the_observed_data_the_pattern_bound() {
    let indicators = r#"{"type": "indicator", "spec_version": "2.1",
        "id": "indicator--0b6a4c2e-0000-4000-8000-000000000010",
        "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
        "pattern": "[domain-name:value = 'a.example'] FOLLOWEDBY [domain-name:value = 'b.example']",
        "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z"}"#;
    let (set, _) = IndicatorSet::from_json(indicators, IDENTITY, now()).unwrap();
    let od = |n: u8, t: &str, d: &str| {
        serde_json::json!([{
            "type": "observed-data", "spec_version": "2.1",
            "id": format!("observed-data--0b6a4c2e-0000-4000-8000-0000000000{n:02}"),
            "created": "2024-04-01T00:00:00.000Z", "modified": "2024-04-01T00:00:00.000Z",
            "first_observed": t, "last_observed": t, "number_observed": 1,
            "object_refs": [format!("domain-name--0b6a4c2e-0000-4000-8000-0000000000{n:02}")]
        }, {"type": "domain-name", "spec_version": "2.1",
            "id": format!("domain-name--0b6a4c2e-0000-4000-8000-0000000000{n:02}"), "value": d}])
    };
    let mut objects = od(1, "2024-04-01T00:00:00Z", "c.example")
        .as_array()
        .unwrap()
        .clone();
    objects.extend(
        od(2, "2024-04-01T01:00:00Z", "a.example")
            .as_array()
            .unwrap()
            .clone(),
    );
    objects.extend(
        od(3, "2024-04-01T02:00:00Z", "b.example")
            .as_array()
            .unwrap()
            .clone(),
    );
    let line = serde_json::json!({"type": "bundle", "id": "bundle--0b6a4c2e-0000-4000-8000-000000000099", "objects": objects});
    let obs: Vec<Observation> = LogSource::from_reader(
        LogFormat::Stix,
        "x.jsonl",
        Box::new(std::io::Cursor::new(format!("{line}\n"))),
        now(),
    )
    .map(Result::unwrap)
    .collect();
    let hits = set.matches(&obs[0]).unwrap();
    assert_eq!(hits.len(), 1);
    let s = &hits[0].sighting;
    assert_eq!(
        s["observed_data_refs"],
        serde_json::json!([
            "observed-data--0b6a4c2e-0000-4000-8000-000000000002",
            "observed-data--0b6a4c2e-0000-4000-8000-000000000003"
        ])
    );
    assert_eq!(s["first_seen"], "2024-04-01T01:00:00Z");
    assert_eq!(s["last_seen"], "2024-04-01T02:00:00Z");
}
