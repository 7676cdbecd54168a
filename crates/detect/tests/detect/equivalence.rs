//! The compiled set (prefilter index, then the exact evaluator on the candidates) gives exactly
//! the sightings of evaluating every pattern against every observation, on seeded generated
//! corpora covering every pattern family, before and after incremental changes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on bad test data

use std::collections::BTreeMap;

use kizuna_detect::{IndicatorSet, Observation};
use kizuna_stix::Timestamp;
use serde_json::{Value, json};

const IDENTITY: &str = "identity--0b6a4c2e-0000-4000-8000-0000000000aa";

/// A small deterministic generator (xorshift64*), so that a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Values shared by patterns and observations, few enough that they meet often.
struct Pools {
    v4: Vec<String>,
    v6: Vec<String>,
    domains: Vec<String>,
    hashes: Vec<String>,
    emails: Vec<String>,
    subjects: Vec<String>,
    names: Vec<String>,
}

impl Pools {
    fn new(rng: &mut Rng) -> Pools {
        let hex = |rng: &mut Rng, n: usize| -> String {
            (0..n)
                .map(|_| char::from(b"0123456789abcdef"[rng.below(16)]))
                .collect()
        };
        let domains: Vec<String> = (0..12)
            .map(|i| {
                format!(
                    "{}{i}.{}",
                    ["evil", "mail", "cdn"][i % 3],
                    ["com", "jp", "example"][i % 3]
                )
            })
            .collect();
        Pools {
            v4: (0..16)
                .map(|_| format!("10.{}.{}.{}", rng.below(3), rng.below(4), rng.below(256)))
                .collect(),
            v6: (0..8)
                .map(|_| format!("2001:db8:{:x}::{:x}", rng.below(3), rng.below(65536)))
                .collect(),
            hashes: (0..10).map(|_| hex(rng, 64)).collect(),
            emails: (0..8)
                .map(|i| format!("user{i}@{}", domains[i % domains.len()]))
                .collect(),
            subjects: [
                "Invoice 2024-17 overdue",
                "Meeting notes",
                "Your parcel is waiting",
                "invoice attached",
                "Re: pension records",
                "年金のお知らせ",
            ]
            .map(str::to_owned)
            .to_vec(),
            names: [
                "report.pdf",
                "invoice.exe",
                "setup.msi",
                "photo.jpg",
                "a_b.exe",
                "notes.txt",
            ]
            .map(str::to_owned)
            .to_vec(),
            domains,
        }
    }
}

/// One pattern of the family named first, in the spelling the family tests.
fn pattern(rng: &mut Rng, p: &Pools) -> (&'static str, String) {
    let families = [
        "equality",
        "in",
        "hash",
        "cidr4",
        "cidr6",
        "like",
        "matches",
        "and",
        "or",
        "not",
        "comparison",
        "temporal",
        "email",
        "number",
        "ref",
    ];
    let family = *rng.pick(&families);
    let s = match family {
        "equality" => format!("[domain-name:value = '{}']", rng.pick(&p.domains)),
        "in" => format!(
            "[ipv4-addr:value IN ('{}', '{}', '{}')]",
            rng.pick(&p.v4),
            rng.pick(&p.v4),
            rng.pick(&p.v4)
        ),
        "hash" => {
            let h = rng.pick(&p.hashes).clone();
            let h = if rng.chance(30) { h.to_uppercase() } else { h };
            if rng.chance(50) {
                format!("[file:hashes.'SHA-256' = '{h}']")
            } else {
                format!(
                    "[file:hashes.'SHA-256' = '{h}' OR file:hashes.MD5 = '{}']",
                    &h[..32]
                )
            }
        }
        "cidr4" => format!(
            "[ipv4-addr:value ISSUBSET '10.{}.{}.0/{}']",
            rng.below(3),
            rng.below(4),
            rng.pick(&[16, 22, 24, 30, 32])
        ),
        "cidr6" => format!(
            "[ipv6-addr:value ISSUBSET '2001:db8:{:x}::/{}']",
            rng.below(3),
            rng.pick(&[32, 48, 64])
        ),
        "like" => {
            let d = rng.pick(&p.domains);
            match rng.below(5) {
                0 => format!("[url:value LIKE 'http://{d}/%']"),
                1 => format!("[url:value LIKE '%{d}%']"),
                2 => format!("[domain-name:value LIKE '%.{}']", &d[d.len() - 3..]),
                3 => "[file:name LIKE '%._xe']".to_owned(),
                _ => "[url:value LIKE '%']".to_owned(),
            }
        }
        "matches" => match rng.below(5) {
            0 => format!(
                "[url:value MATCHES '^https?://{}/']",
                rng.pick(&p.domains).replace('.', "\\\\.")
            ),
            1 => "[email-message:subject MATCHES '(?i)invoice']".to_owned(),
            2 => "[file:name MATCHES '\\\\.(exe|msi)$']".to_owned(),
            3 => "[file:name MATCHES '^.{5,9}$']".to_owned(),
            _ => "[url:value MATCHES '(?<=//)evil']".to_owned(),
        },
        "and" => format!(
            "[file:name = '{}' AND file:size > {}]",
            rng.pick(&p.names),
            rng.below(3000)
        ),
        "or" => format!(
            "[domain-name:value = '{}'] OR [ipv4-addr:value = '{}']",
            rng.pick(&p.domains),
            rng.pick(&p.v4)
        ),
        "not" => match rng.below(3) {
            0 => format!("[domain-name:value NOT = '{}']", rng.pick(&p.domains)),
            1 => format!("[file:name != '{}']", rng.pick(&p.names)),
            _ => "[file:name NOT LIKE '%.exe']".to_owned(),
        },
        "comparison" => match rng.below(3) {
            0 => format!("[file:size < {}]", rng.below(4000)),
            1 => format!("[network-traffic:dst_port >= {}]", rng.below(2000)),
            _ => "[EXISTS email-message:subject]".to_owned(),
        },
        "temporal" => match rng.below(4) {
            0 => format!(
                "[domain-name:value = '{}'] FOLLOWEDBY [ipv4-addr:value = '{}'] WITHIN 600 SECONDS",
                rng.pick(&p.domains),
                rng.pick(&p.v4)
            ),
            1 => format!("[ipv4-addr:value = '{}'] REPEATS 2 TIMES", rng.pick(&p.v4)),
            2 => format!(
                "[domain-name:value = '{}'] START t'2024-01-01T00:00:00Z' STOP t'2024-01-01T12:00:00Z'",
                rng.pick(&p.domains)
            ),
            _ => format!(
                "([file:name = '{}'] AND [domain-name:value = '{}']) WITHIN 60 SECONDS",
                rng.pick(&p.names),
                rng.pick(&p.domains)
            ),
        },
        "email" => match rng.below(3) {
            0 => format!("[email-message:from_ref.value = '{}']", rng.pick(&p.emails)),
            1 => format!(
                "[email-message:to_refs[*].value = '{}']",
                rng.pick(&p.emails)
            ),
            _ => format!(
                "[email-message:from_ref.value = '{}' AND email-message:subject LIKE '%nvoice%']",
                rng.pick(&p.emails)
            ),
        },
        "number" => match rng.below(3) {
            0 => format!(
                "[network-traffic:dst_port = {}]",
                rng.pick(&[25, 80, 443, 8080])
            ),
            1 => "[network-traffic:dst_port IN (443, 80.0)]".to_owned(),
            _ => "[x-kizuna-test:flag = true]".to_owned(),
        },
        _ => format!(
            "[network-traffic:dst_ref.value ISSUBSET '10.{}.0.0/16' AND network-traffic:dst_port = 443]",
            rng.below(3)
        ),
    };
    (family, s)
}

fn indicator(n: usize, family: &str, pattern: &str, rng: &mut Rng) -> Value {
    let mut v = json!({
        "type": "indicator", "spec_version": "2.1",
        "id": format!("indicator--00000000-0000-4000-8000-{n:012}"),
        "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
        "name": family, "pattern": pattern, "pattern_type": "stix",
        "valid_from": "2023-01-01T00:00:00Z",
    });
    if rng.chance(10) {
        v["valid_from"] = json!("2024-01-01T06:00:00Z");
    }
    if rng.chance(10) {
        v["valid_until"] = json!("2024-01-01T18:00:00Z");
    }
    v
}

fn observation(n: usize, rng: &mut Rng, p: &Pools) -> Observation {
    let mut objects = Vec::new();
    let mut refs = Vec::new();
    let add = |objects: &mut Vec<Value>, refs: &mut Vec<String>, mut o: Value, root: bool| {
        let id = format!("{}--{n}-{}", o["type"].as_str().unwrap(), objects.len());
        o["id"] = json!(id);
        if root {
            refs.push(id.clone());
        }
        objects.push(o);
        id
    };
    for _ in 0..1 + rng.below(4) {
        match rng.below(8) {
            0 => {
                add(
                    &mut objects,
                    &mut refs,
                    json!({"type": "domain-name", "value": rng.pick(&p.domains)}),
                    true,
                );
            }
            1 => {
                let v = if rng.chance(70) {
                    rng.pick(&p.v4).clone()
                } else {
                    format!(
                        "10.{}.{}.0/{}",
                        rng.below(3),
                        rng.below(4),
                        rng.pick(&[24, 28])
                    )
                };
                add(
                    &mut objects,
                    &mut refs,
                    json!({"type": "ipv4-addr", "value": v}),
                    true,
                );
            }
            2 => {
                add(
                    &mut objects,
                    &mut refs,
                    json!({"type": "ipv6-addr", "value": rng.pick(&p.v6)}),
                    true,
                );
            }
            3 => {
                let d = rng.pick(&p.domains);
                let scheme = if rng.chance(50) { "http" } else { "https" };
                add(
                    &mut objects,
                    &mut refs,
                    json!({"type": "url", "value": format!("{scheme}://{d}/x?{}", rng.below(9))}),
                    true,
                );
            }
            4 => {
                let h = rng.pick(&p.hashes).clone();
                let h = if rng.chance(20) { h.to_uppercase() } else { h };
                add(
                    &mut objects,
                    &mut refs,
                    json!({"type": "file", "name": rng.pick(&p.names),
                    "size": rng.below(4000), "hashes": {"SHA-256": h, "MD5": &h[..32]}}),
                    true,
                );
            }
            5 => {
                let from = add(
                    &mut objects,
                    &mut refs,
                    json!({"type": "email-addr", "value": rng.pick(&p.emails)}),
                    rng.chance(80),
                );
                let to = add(
                    &mut objects,
                    &mut refs,
                    json!({"type": "email-addr", "value": rng.pick(&p.emails)}),
                    true,
                );
                add(
                    &mut objects,
                    &mut refs,
                    json!({"type": "email-message", "is_multipart": false,
                    "from_ref": from, "to_refs": [to], "subject": rng.pick(&p.subjects)}),
                    true,
                );
            }
            6 => {
                let dst = add(
                    &mut objects,
                    &mut refs,
                    json!({"type": "ipv4-addr", "value": rng.pick(&p.v4)}),
                    true,
                );
                add(
                    &mut objects,
                    &mut refs,
                    json!({"type": "network-traffic", "dst_ref": dst,
                    "dst_port": rng.pick(&[25, 80, 443, 8080, 1024]), "protocols": ["tcp"]}),
                    true,
                );
            }
            _ => {
                add(
                    &mut objects,
                    &mut refs,
                    json!({"type": "x-kizuna-test", "flag": rng.chance(50)}),
                    true,
                );
            }
        }
    }
    let hour = rng.below(24);
    let count = if rng.chance(20) { 2 } else { 1 };
    let od = json!({
        "type": "observed-data", "spec_version": "2.1",
        "id": format!("observed-data--00000000-0000-4000-8000-{n:012}"),
        "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
        "first_observed": format!("2024-01-01T{hour:02}:00:00Z"),
        "last_observed": format!("2024-01-01T{hour:02}:00:30Z"),
        "number_observed": count, "object_refs": refs,
    });
    objects.insert(0, od);
    Observation {
        source: format!("gen:{n}"),
        bundle: json!({"type": "bundle", "id": format!("bundle--{n}"), "objects": objects}),
        notes: Vec::new(),
    }
}

/// `(source, indicator, sighting)` of every hit, both ways; returns hits per family.
fn compare(set: &IndicatorSet, observations: &[Observation]) -> BTreeMap<String, usize> {
    let mut per_family = BTreeMap::new();
    for obs in observations {
        let fast = set.matches(obs).unwrap();
        let slow = set.matches_exhaustive(obs).unwrap();
        let now = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
        let line = set
            .matches_json_line(&obs.bundle.to_string(), &obs.source, now)
            .unwrap();
        let key = |h: &kizuna_detect::Hit| (h.indicator.clone(), h.sighting.to_string());
        let expected: Vec<_> = slow.iter().map(key).collect();
        assert_eq!(
            fast.iter().map(key).collect::<Vec<_>>(),
            expected,
            "{}: {}",
            obs.source,
            obs.bundle
        );
        assert_eq!(
            line.iter().map(key).collect::<Vec<_>>(),
            expected,
            "{}",
            obs.source
        );
        for h in &slow {
            *per_family.entry(h.indicator.clone()).or_insert(0) += 1;
        }
    }
    per_family
}

fn corpus(seed: u64, indicators: usize) -> (Vec<(String, Value)>, Vec<Observation>) {
    let mut rng = Rng(seed);
    let pools = Pools::new(&mut rng);
    let inds = (0..indicators)
        .map(|n| {
            let (family, p) = pattern(&mut rng, &pools);
            (family.to_owned(), indicator(n, family, &p, &mut rng))
        })
        .collect();
    let obs = (0..300).map(|n| observation(n, &mut rng, &pools)).collect();
    (inds, obs)
}

fn load(inds: &[(String, Value)]) -> IndicatorSet {
    let bundle = json!({"type": "bundle", "id": "bundle--i",
        "objects": inds.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>()});
    let now = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
    let (set, report) = IndicatorSet::from_json(&bundle.to_string(), IDENTITY, now).unwrap();
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    set
}

#[test]
fn compiled_set_equals_every_pattern_on_every_observation() {
    for seed in [0x5eed_0001_u64, 0x5eed_0002, 0x5eed_0003] {
        let (inds, obs) = corpus(seed, 300);
        let set = load(&inds);
        let hits = compare(&set, &obs);
        // Every family produced sightings, so none is compared on no-match alone.
        let family_of: BTreeMap<&str, &str> = inds
            .iter()
            .map(|(f, v)| (v["id"].as_str().unwrap(), f.as_str()))
            .collect();
        let mut families = BTreeMap::new();
        for (id, n) in &hits {
            *families.entry(family_of[id.as_str()]).or_insert(0) += n;
        }
        let all: Vec<&str> = family_of.values().copied().collect();
        for f in all {
            assert!(
                families.contains_key(f),
                "seed {seed:#x}: no hit for family {f}"
            );
        }
    }
}

#[test]
fn incremental_changes_keep_the_equivalence() {
    let (inds, obs) = corpus(0x5eed_0010, 240);
    let mut set = load(&inds[..120]);
    // Add the rest one by one (automata grow through their pending lists), then remove and
    // revoke some, then replace some with a newer version.
    for (_, v) in &inds[120..] {
        set.insert(v).unwrap();
    }
    compare(&set, &obs);
    for (_, v) in inds.iter().step_by(3) {
        assert!(set.remove(v["id"].as_str().unwrap()));
    }
    for (_, v) in inds.iter().skip(1).step_by(7) {
        let mut revoked = v.clone();
        revoked["revoked"] = json!(true);
        revoked["modified"] = json!("2024-02-01T00:00:00.000Z");
        assert_eq!(set.insert(&revoked), Err("revoked".to_owned()));
    }
    let removed = inds
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 == 0 || i % 7 == 1)
        .count();
    assert_eq!(set.len(), inds.len() - removed);
    compare(&set, &obs);
    let mut rng = Rng(7);
    let pools = Pools::new(&mut Rng(0x5eed_0010));
    for (_, v) in inds.iter().skip(2).step_by(5) {
        let mut newer = v.clone();
        newer["modified"] = json!("2024-03-01T00:00:00.000Z");
        newer["pattern"] = json!(pattern(&mut rng, &pools).1);
        let _ = set.insert(&newer);
    }
    compare(&set, &obs);
    let mut older = inds[2].1.clone();
    older["modified"] = json!("2023-01-01T00:00:00.000Z");
    assert!(set.insert(&older).is_err());
}

/// Found by the `logs` fuzz target: an object without `type` inside a bundle is not an error
/// for the pattern engine, so the index's cheap check must not refuse the line either.
#[test]
fn fuzz_bundle_member_without_type_is_no_error_for_the_index() {
    let line = r#"{"type":"bundle","id":"bundle--1","objects":[{"type":"observed-d&ata","id":"obZ"},{"typ*e":"domain-name","id":"domain-name--1","value":"example.org"}]}"#;
    let (inds, _) = corpus(0x5eed_0020, 20);
    let set = load(&inds);
    let now = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
    let obs = Observation {
        source: "fuzz".into(),
        bundle: serde_json::from_str(line).unwrap(),
        notes: Vec::new(),
    };
    assert!(set.matches_exhaustive(&obs).unwrap().is_empty());
    assert!(set.matches(&obs).unwrap().is_empty());
    assert!(set.matches_json_line(line, "fuzz", now).unwrap().is_empty());
}
