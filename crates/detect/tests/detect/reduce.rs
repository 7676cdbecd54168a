//! Privacy reduction over the mail corpus: for indicators built from every message's own
//! observables, the shared observed-data validates, still matches the indicator, and holds no
//! address the pattern did not need.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on bad test data

use std::path::{Path, PathBuf};

use kizuna_detect::{IndicatorSet, MailOptions, MailSource, Observation, ReduceOptions, reduce};
use kizuna_pattern::{Observations, SpecVersion};
use kizuna_stix::Timestamp;
use serde_json::{Value, json};

const IDENTITY: &str = "identity--0b6a4c2e-0000-4000-8000-0000000000aa";

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/mail")
}

fn corpus() -> Vec<Observation> {
    let options = MailOptions {
        now: Timestamp::parse("2026-01-01T00:00:00Z").unwrap(),
        ..MailOptions::default()
    };
    MailSource::new(vec![testdata()], options)
        .filter_map(Result::ok)
        .collect()
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

/// Patterns built from an observation's objects: addresses, recipients, subjects, URLs, hashes,
/// attachment names, a LIKE on the sender's domain and a compound one.
fn patterns(obs: &Observation) -> Vec<String> {
    let objects = obs.bundle["objects"].as_array().unwrap();
    let by_id = |id: &str| objects.iter().find(|o| o["id"] == id);
    let mut out = Vec::new();
    for o in objects {
        match o["type"].as_str().unwrap() {
            "email-addr" => out.push(format!(
                "[email-addr:value = '{}']",
                quote(o["value"].as_str().unwrap())
            )),
            "url" | "domain-name" => out.push(format!(
                "[{}:value = '{}']",
                o["type"].as_str().unwrap(),
                quote(o["value"].as_str().unwrap())
            )),
            "file" => {
                if let Some(h) = o["hashes"]["SHA-256"].as_str() {
                    out.push(format!("[file:hashes.'SHA-256' = '{h}']"));
                }
                if let Some(n) = o["name"].as_str() {
                    out.push(format!(
                        "[email-message:body_multipart[*].body_raw_ref.name = '{}']",
                        quote(n)
                    ));
                }
            }
            "email-message" => {
                if let Some(s) = o["subject"].as_str() {
                    out.push(format!("[email-message:subject = '{}']", quote(s)));
                }
                for to in o["to_refs"].as_array().into_iter().flatten() {
                    let addr = by_id(to.as_str().unwrap()).unwrap();
                    out.push(format!(
                        "[email-message:to_refs[*].value = '{}']",
                        quote(addr["value"].as_str().unwrap())
                    ));
                }
                if let Some(from) = o["from_ref"].as_str() {
                    let addr = by_id(from).unwrap()["value"].as_str().unwrap();
                    let domain = addr.rsplit('@').next().unwrap();
                    out.push(format!(
                        "[email-message:from_ref.value LIKE '%@{}']",
                        quote(domain)
                    ));
                    if let Some(s) = o["subject"].as_str() {
                        out.push(format!(
                            "[email-message:from_ref.value = '{}' AND email-message:subject = '{}'] OR [x-none:a = 1]",
                            quote(addr),
                            quote(s)
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn indicator(n: usize, pattern: &str) -> Value {
    json!({
        "type": "indicator", "spec_version": "2.1",
        "id": format!("indicator--00000000-0000-4000-8000-{n:012}"),
        "created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z",
        "pattern": pattern, "pattern_type": "stix", "valid_from": "2000-01-01T00:00:00Z",
    })
}

/// Email addresses anywhere in the reduced objects.
fn addresses(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .filter(|o| o["type"] == "email-addr")
        .map(|o| o["value"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn reduced_sightings_validate_still_match_and_keep_only_what_matched() {
    let corpus = corpus();
    assert!(corpus.len() >= 10, "{}", corpus.len());
    let mut checked = 0;
    for obs in &corpus {
        let pats = patterns(obs);
        let inds: Vec<Value> = pats
            .iter()
            .enumerate()
            .map(|(n, p)| indicator(n, p))
            .collect();
        let (set, report) = IndicatorSet::from_json(
            &Value::Array(inds.clone()).to_string(),
            IDENTITY,
            Timestamp::now(),
        )
        .unwrap();
        assert!(report.skipped.is_empty(), "{:?}", report.skipped);
        let hits = set.matches(obs).unwrap();
        for hit in &hits {
            let pattern = set.pattern(&hit.indicator).unwrap();
            let r = reduce(hit, obs, pattern, &ReduceOptions::default())
                .unwrap_or_else(|e| panic!("{}: {e}", obs.source));
            let text = pattern.to_string();
            for o in r.objects.iter().chain([&r.observed_data, &r.sighting]) {
                let problems = kizuna_stix::validate_object(o);
                assert!(
                    problems.is_empty(),
                    "{}: {text}: {o}: {problems:?}",
                    obs.source
                );
            }
            let loaded = Observations::from_json(&r.bundle(), SpecVersion::V21).unwrap();
            assert!(
                pattern.matches(&loaded).unwrap().matched,
                "{}: {text}",
                obs.source
            );
            assert_eq!(r.sighting["observed_data_refs"][0], r.observed_data["id"]);
            // Every address shared is one the pattern named or the one its LIKE matched.
            for addr in addresses(&r.objects) {
                let named = text.contains(&format!("'{}'", quote(&addr)));
                let liked =
                    text.contains("LIKE") && text.contains(addr.rsplit('@').next().unwrap());
                assert!(named || liked, "{}: {text}: shares {addr}", obs.source);
            }
            // No message body, no headers the pattern did not name.
            for o in r.objects.iter().filter(|o| o["type"] == "email-message") {
                assert!(o.get("body").is_none(), "{text}: {o}");
                assert!(o.get("additional_header_fields").is_none(), "{text}: {o}");
                assert!(o.get("received_lines").is_none(), "{text}: {o}");
                if !text.contains("to_refs") {
                    assert!(o.get("to_refs").is_none(), "{text}: {o}");
                }
                for part in o["body_multipart"].as_array().into_iter().flatten() {
                    assert!(part.get("body").is_none_or(|b| b == ""), "{text}: {part}");
                }
            }
            checked += 1;
        }
        // Reducing the same hit twice gives the same ids.
        if let Some(hit) = hits.first() {
            let p = set.pattern(&hit.indicator).unwrap();
            let a = reduce(hit, obs, p, &ReduceOptions::default()).unwrap();
            let b = reduce(hit, obs, p, &ReduceOptions::default()).unwrap();
            assert_eq!(a.bundle(), b.bundle());
        }
    }
    assert!(checked > 50, "only {checked} sightings checked");
}

#[test]
fn hashing_hides_every_address_consistently_and_marks_every_object() {
    let obs = corpus()
        .into_iter()
        .find(|o| o.source.ends_with("plain-utf8.eml"))
        .unwrap();
    let ind = indicator(1, "[email-message:to_refs[*].value = 'suzuki@example.jp']");
    let (set, _) = IndicatorSet::from_json(&ind.to_string(), IDENTITY, Timestamp::now()).unwrap();
    let hits = set.matches(&obs).unwrap();
    assert_eq!(hits.len(), 1);
    let hash = |a: &str| format!("{}@redacted.invalid", a.len());
    let marking = kizuna_stix::Tlp::Amber.marking_id();
    let options = ReduceOptions {
        hash_email: Some(&hash),
        marking: Some(marking),
    };
    let p = set.pattern(&hits[0].indicator).unwrap();
    let r = reduce(&hits[0], &obs, p, &options).unwrap();
    let text = r.bundle().to_string();
    assert!(!text.contains("example.jp"), "{text}");
    assert!(!text.contains("Suzuki"), "display name shared: {text}");
    assert_eq!(
        addresses(&r.objects),
        vec!["17@redacted.invalid".to_owned()]
    );
    for o in r.objects.iter().chain([&r.observed_data, &r.sighting]) {
        assert_eq!(o["object_marking_refs"], json!([marking]), "{o}");
        assert!(kizuna_stix::validate_object(o).is_empty(), "{o}");
    }
    // The address's id is the specification's id of the hashed address, and the message
    // refers to it: no id derived from the clear address is left.
    let addr = r
        .objects
        .iter()
        .find(|o| o["type"] == "email-addr")
        .unwrap();
    let mut props = serde_json::Map::new();
    props.insert("value".into(), json!("17@redacted.invalid"));
    assert_eq!(addr["id"], kizuna_detect::id::sco_id("email-addr", &props));
    let msg = r
        .objects
        .iter()
        .find(|o| o["type"] == "email-message")
        .unwrap();
    assert_eq!(msg["to_refs"], json!([addr["id"]]));
    assert!(
        !text.contains(
            obs.bundle["objects"]
                .as_array()
                .unwrap()
                .iter()
                .find(|o| o["value"] == "suzuki@example.jp")
                .unwrap()["id"]
                .as_str()
                .unwrap()
        )
    );
}

/// Patterns from a log observation: every address, domain, URL, hash and port it holds.
fn log_patterns(obs: &Observation) -> Vec<String> {
    let mut out = Vec::new();
    for o in obs.bundle["objects"].as_array().unwrap() {
        let kind = o["type"].as_str().unwrap();
        match kind {
            "ipv4-addr" | "ipv6-addr" | "domain-name" | "url" => out.push(format!(
                "[{kind}:value = '{}']",
                quote(o["value"].as_str().unwrap())
            )),
            "network-traffic" => {
                if let Some(p) = o["dst_port"].as_u64() {
                    out.push(format!("[network-traffic:dst_port = {p}]"));
                }
                out.push("[network-traffic:dst_ref.value ISSUBSET '0.0.0.0/0']".to_owned());
            }
            "file" | "x509-certificate" => {
                for (alg, h) in o["hashes"].as_object().into_iter().flatten() {
                    out.push(format!(
                        "[{kind}:hashes.'{alg}' = '{}']",
                        h.as_str().unwrap()
                    ));
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn reduced_log_sightings_validate_and_still_match() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/logs");
    let now = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
    let mut checked = 0;
    for (format, dir) in [
        (kizuna_detect::LogFormat::Zeek, "zeek"),
        (kizuna_detect::LogFormat::Suricata, "suricata"),
    ] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for obs in kizuna_detect::LogSource::new(format, files, now).filter_map(Result::ok) {
            let inds: Vec<Value> = log_patterns(&obs)
                .iter()
                .enumerate()
                .map(|(n, p)| indicator(n, p))
                .collect();
            let (set, _) =
                IndicatorSet::from_json(&Value::Array(inds).to_string(), IDENTITY, now).unwrap();
            for hit in set.matches(&obs).unwrap() {
                let pattern = set.pattern(&hit.indicator).unwrap();
                let r = reduce(&hit, &obs, pattern, &ReduceOptions::default())
                    .unwrap_or_else(|e| panic!("{e}"));
                for o in r.objects.iter().chain([&r.observed_data, &r.sighting]) {
                    let problems = kizuna_stix::validate_object(o);
                    assert!(
                        problems.is_empty(),
                        "{}: {pattern}: {o}: {problems:?}",
                        obs.source
                    );
                }
                let loaded = Observations::from_json(&r.bundle(), SpecVersion::V21).unwrap();
                assert!(pattern.matches(&loaded).unwrap().matched, "{pattern}");
                checked += 1;
            }
        }
    }
    assert!(checked > 20, "only {checked} log sightings checked");
}
