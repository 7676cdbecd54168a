//! The log samples (`testdata/logs/`) against observables written by hand
//! (`testdata/logs/expected/*.json`, format in its README), line by line.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on bad test data

use std::io::Cursor;
use std::path::{Path, PathBuf};

use kizuna_detect::{Error, LogFormat, LogSource, Observation};
use kizuna_stix::Timestamp;
use serde_json::{Value, json};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/logs")
}

fn now() -> Timestamp {
    Timestamp::parse("2026-01-01T00:00:00Z").unwrap()
}

fn objects(obs: &Observation) -> &Vec<Value> {
    obs.bundle["objects"].as_array().unwrap()
}

fn by_id<'a>(obs: &'a Observation, id: &Value) -> &'a Value {
    objects(obs)
        .iter()
        .find(|o| o["id"] == *id)
        .unwrap_or_else(|| panic!("{}: dangling reference {id}", obs.source))
}

fn find<'a>(obs: &'a Observation, want: &Value) -> Option<&'a Value> {
    let key = ["value", "name", "subject"]
        .into_iter()
        .find(|k| want.get(*k).is_some())
        .unwrap();
    objects(obs)
        .iter()
        .find(|o| o["type"] == want["type"] && o[key] == want[key])
}

fn check_traffic(obs: &Observation, want: &Value) {
    let ctx = &obs.source;
    let nt: Vec<&Value> = objects(obs)
        .iter()
        .filter(|o| o["type"] == "network-traffic")
        .collect();
    assert_eq!(nt.len(), 1, "{ctx}: one network-traffic");
    let nt = nt[0];
    for (key, expected) in want.as_object().unwrap() {
        match key.as_str() {
            "src" | "dst" => {
                let r = &nt[format!("{key}_ref")];
                assert_eq!(&by_id(obs, r)["value"], expected, "{ctx}: {key}");
            }
            "http" => {
                let ext = &nt["extensions"]["http-request-ext"];
                for (k, v) in expected.as_object().unwrap() {
                    assert_eq!(&ext[k], v, "{ctx}: http-request-ext {k}");
                }
            }
            _ => assert_eq!(&nt[key], expected, "{ctx}: {key}"),
        }
    }
}

fn check_object(obs: &Observation, want: &Value) {
    let ctx = format!("{} {want}", obs.source);
    let got = find(obs, want).unwrap_or_else(|| panic!("{ctx}: not found"));
    for (key, expected) in want.as_object().unwrap() {
        match key.as_str() {
            "resolves_to" => {
                let refs = got["resolves_to_refs"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let values: Vec<Value> = refs
                    .iter()
                    .map(|r| by_id(obs, r)["value"].clone())
                    .collect();
                assert_eq!(&Value::Array(values), expected, "{ctx}: resolves_to");
            }
            "hashes" => {
                assert_eq!(
                    got["hashes"].as_object().map(|h| h.len()),
                    expected.as_object().map(|h| h.len()),
                    "{ctx}: hash algorithms"
                );
                for (alg, h) in expected.as_object().unwrap() {
                    assert_eq!(&got["hashes"][alg], h, "{ctx}: {alg}");
                }
            }
            _ => assert_eq!(&got[key], expected, "{ctx}: {key}"),
        }
    }
}

fn check_line(got: &Result<Observation, Error>, want: &Value) {
    if let Some(msg) = want.get("error_contains") {
        let err = got
            .as_ref()
            .err()
            .unwrap_or_else(|| panic!("expected error {msg}"));
        let text = err.to_string();
        assert!(
            text.contains(msg.as_str().unwrap()),
            "{text:?} should contain {msg}"
        );
        return;
    }
    let obs = got.as_ref().unwrap_or_else(|e| panic!("{e}"));
    let suffix = want["source_suffix"].as_str().unwrap();
    assert!(
        obs.source.ends_with(suffix),
        "{} should end with {suffix}",
        obs.source
    );
    let od = obs.observed_data().expect("observed-data");
    for r in od["object_refs"].as_array().unwrap() {
        by_id(obs, r);
    }
    for key in ["first_observed", "last_observed"] {
        if let Some(t) = want.get(key) {
            assert_eq!(&od[key], t, "{}: {key}", obs.source);
        }
    }
    if let Some(t) = want.get("traffic") {
        check_traffic(obs, t);
    }
    for o in want["objects"].as_array().into_iter().flatten() {
        check_object(obs, o);
    }
    for (kind, n) in want["counts"].as_object().into_iter().flatten() {
        let got = objects(obs).iter().filter(|o| o["type"] == *kind).count();
        assert_eq!(
            Some(got as u64),
            n.as_u64(),
            "{}: number of {kind}",
            obs.source
        );
    }
}

fn check(expected_file: &str) {
    let path = dir().join("expected").join(expected_file);
    let want: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let format = match want["format"].as_str().unwrap() {
        "zeek" => LogFormat::Zeek,
        "suricata" => LogFormat::Suricata,
        _ => LogFormat::Stix,
    };
    let inputs = want["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| dir().join(p.as_str().unwrap()));
    let got: Vec<_> = LogSource::new(format, inputs, now()).collect();
    let lines = want["lines"].as_array().unwrap();
    assert_eq!(got.len(), lines.len(), "{expected_file}: number of lines");
    for (g, w) in got.iter().zip(lines) {
        check_line(g, w);
    }
}

#[test]
fn zeek_conn_dns_http_files_ssl() {
    check("zeek.json");
}

#[test]
fn suricata_eve_flow_dns_http_tls_fileinfo() {
    check("suricata.json");
}

#[test]
fn stix_jsonl_passes_through() {
    check("stix.json");
}

#[test]
fn zeek_type_from_path_field_and_iso_timestamps() {
    let line = json!({"_path": "dns", "ts": "2024-04-01T00:00:00.000000Z", "id.orig_h": "10.0.0.1",
                      "id.resp_h": "10.0.0.2", "proto": "udp", "query": "a.example", "answers": ["192.0.2.1"]});
    let reader = Box::new(Cursor::new(format!("{line}\n")));
    let got: Vec<_> = LogSource::from_reader(LogFormat::Zeek, "-", reader, now()).collect();
    let obs = got[0].as_ref().unwrap();
    assert_eq!(obs.source, "-:1");
    let d = find(obs, &json!({"type": "domain-name", "value": "a.example"})).unwrap();
    assert_eq!(by_id(obs, &d["resolves_to_refs"][0])["value"], "192.0.2.1");
    assert_eq!(
        obs.observed_data().unwrap()["first_observed"],
        "2024-04-01T00:00:00.000000Z"
    );
}

#[test]
fn overlong_and_garbage_lines_are_skipped_not_fatal() {
    let mut input = Vec::new();
    input.extend_from_slice(b"\xff\xfe garbage\n");
    input.extend(std::iter::repeat_n(b'x', 5 << 20));
    input.extend_from_slice(b"\n{\"event_type\":\"flow\",\"src_ip\":\"10.0.0.1\",\"dest_ip\":\"10.0.0.2\",\"proto\":\"TCP\"}\n");
    let got: Vec<_> = LogSource::from_reader(
        LogFormat::Suricata,
        "big",
        Box::new(Cursor::new(input)),
        now(),
    )
    .collect();
    assert_eq!(got.len(), 3);
    assert!(got[0].as_ref().is_err());
    assert!(
        got[1]
            .as_ref()
            .err()
            .unwrap()
            .to_string()
            .contains("big:2: line longer")
    );
    assert_eq!(got[2].as_ref().unwrap().source, "big:3");
}

#[test]
fn map_json_line_is_log_source_line_by_line() {
    let path = dir().join("suricata/eve.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let name = path.display().to_string();
    let from_source: Vec<_> = LogSource::new(LogFormat::Suricata, [path], now()).collect();
    let by_line: Vec<_> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            kizuna_detect::map_json_line(
                LogFormat::Suricata,
                l,
                &format!("{name}:{}", i + 1),
                now(),
            )
        })
        .collect();
    assert_eq!(from_source.len(), by_line.len());
    for (a, b) in from_source.iter().zip(&by_line) {
        match (a, b) {
            (Ok(a), Ok(b)) => assert_eq!((&a.source, &a.bundle), (&b.source, &b.bundle)),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            _ => panic!("{a:?} vs {b:?}"),
        }
    }
}
