//! Everything the sensors and the matcher write is valid STIX 2.1, as Kizuna's own validator
//! (`kizuna-stix`) judges it, and every reference resolves inside its bundle.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on bad test data

use std::path::{Path, PathBuf};

use kizuna_detect::{IndicatorSet, LogFormat, LogSource, MailOptions, MailSource, Observation};
use kizuna_stix::{Timestamp, validate_object};
use serde_json::Value;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

fn all_observations() -> Vec<Observation> {
    let now = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
    let options = MailOptions {
        now,
        ..MailOptions::default()
    };
    let mut out: Vec<Observation> = MailSource::new([testdata().join("mail")], options)
        .filter_map(Result::ok)
        .collect();
    for (format, dir) in [
        (LogFormat::Zeek, "logs/zeek"),
        (LogFormat::Suricata, "logs/suricata"),
    ] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(testdata().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        out.extend(LogSource::new(format, files, now).filter_map(Result::ok));
    }
    out
}

fn refs_in(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if k.ends_with("_ref") {
                    out.extend(v.as_str().map(str::to_owned));
                } else if k.ends_with("_refs") {
                    out.extend(
                        v.as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|r| r.as_str().map(str::to_owned)),
                    );
                } else {
                    refs_in(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| refs_in(i, out)),
        _ => {}
    }
}

#[test]
fn every_object_is_valid_stix_and_references_resolve() {
    let observations = all_observations();
    assert!(observations.len() > 20);
    for obs in &observations {
        let objects = obs.bundle["objects"].as_array().unwrap();
        for o in objects {
            let problems = validate_object(o);
            assert!(problems.is_empty(), "{}: {o}\n{problems:?}", obs.source);
            let mut refs = Vec::new();
            refs_in(o, &mut refs);
            for r in refs {
                assert!(
                    objects.iter().any(|x| x["id"] == r.as_str()),
                    "{}: {r} dangles",
                    obs.source
                );
            }
        }
    }
}

#[test]
fn sightings_are_valid_stix() {
    let now = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
    let text = std::fs::read_to_string(testdata().join("logs/indicators.json")).unwrap();
    let identity = "identity--0b6a4c2e-0000-4000-8000-0000000000aa";
    let (set, _) = IndicatorSet::from_json(&text, identity, now).unwrap();
    let mut n = 0;
    for obs in all_observations() {
        for hit in set.matches(&obs).unwrap() {
            let problems = validate_object(&hit.sighting);
            assert!(problems.is_empty(), "{}: {problems:?}", hit.sighting);
            n += 1;
        }
    }
    assert!(n >= 5);
}
