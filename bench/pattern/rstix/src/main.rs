//! Kizuna's pattern engine (`kizuna-pattern`) against the Rust crate `rstix` 0.23, in one
//! process, on the same inputs (issue 3).
//!
//! Usage: `pattern-bench-rstix FAMILIES.json OBSERVED.json` (defaults: `../families.json`,
//! `../observed.json`).
//!
//! For each pattern family it measures, for both engines:
//! - the parse rate (`kizuna_pattern::Pattern::parse`, `rstix::Pattern::parse`, which also
//!   type-checks);
//! - the evaluation rate of one pattern, parsed once, against the observations, prepared once:
//!   Kizuna `Pattern::is_match` (verdict only) and `Pattern::matches` (also lists the
//!   observed-data of the binding) on an `Observations`; rstix `Pattern::evaluate` (verdict only)
//!   on an `ObservationContext`.
//!
//! And once, the cost of preparing the observations from JSON text:
//! - Kizuna: `serde_json::from_str::<Value>` of OBSERVED + `Observations::from_json_owned`;
//! - rstix: `Bundle::parse` (its typed model: typed SDOs/SCOs, reference validation) of one bundle
//!   holding every object of OBSERVED's bundles (an `ObservationContext` takes a single bundle for
//!   `_ref` resolution), then the list of `TimestampedObservation`s: each SCO named by an
//!   observed-data's `object_refs`, stamped with its `first_observed` (what rstix's own
//!   `evaluate_observed_data` builds, for every observed-data at once).
//!
//! Every figure is the median of five rounds of at least 0.2 s, one thread. Both engines' verdicts
//! are compared for every pair; a list of further probes (verdict only, not timed) shows inputs
//! the specification allows that rstix rejects or evaluates differently.

use std::hint::black_box;
use std::time::{Duration, Instant};

use rstix::model::sdo::{ObservedDataForm, SdoObject};
use rstix::model::{Bundle, StixObject};
use rstix::pattern::{ObservationContext, TimestampedObservation};
use serde_json::Value;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Median of five rounds of at least 200 ms: calls per second.
fn rate(mut f: impl FnMut()) -> f64 {
    let mut rounds = Vec::with_capacity(5);
    for _ in 0..5 {
        let start = Instant::now();
        let mut n = 0u64;
        let mut batch = 1u64;
        while start.elapsed() < Duration::from_millis(200) {
            for _ in 0..batch {
                f();
            }
            n += batch;
            batch = (batch * 2).min(256);
        }
        rounds.push(n as f64 / start.elapsed().as_secs_f64());
    }
    rounds.sort_by(f64::total_cmp);
    rounds[2]
}

/// One bundle holding every object of the input's bundles (rstix's context takes one bundle).
fn merged_bundle_text(observed: &Value) -> Res<String> {
    let mut objects = Vec::new();
    let items = observed.as_array().ok_or("OBSERVED must be a list of bundles")?;
    for b in items {
        let objs = b["objects"].as_array().ok_or("bundle without objects")?;
        objects.extend(objs.iter().cloned());
    }
    let id = items
        .first()
        .and_then(|b| b["id"].as_str())
        .ok_or("bundle without id")?;
    Ok(serde_json::json!({"type": "bundle", "id": id, "objects": objects}).to_string())
}

/// What rstix's `evaluate_observed_data` builds, for every observed-data of the bundle.
fn rstix_observations(bundle: &Bundle) -> Res<Vec<TimestampedObservation<'_>>> {
    let mut out = Vec::new();
    for obj in bundle.objects() {
        let StixObject::Sdo(SdoObject::ObservedData(od)) = obj else {
            continue;
        };
        match &od.form {
            ObservedDataForm::ObjectRefs(refs) => {
                for id in refs {
                    let Some(StixObject::Sco(sco)) = bundle.get(id) else {
                        return Err(format!("object_refs: {id} missing or not an SCO").into());
                    };
                    out.push(TimestampedObservation {
                        sco,
                        at: Some(od.first_observed.clone()),
                    });
                }
            }
            ObservedDataForm::DeprecatedObjects(_) => return Err("2.0 embedded objects".into()),
        }
    }
    Ok(out)
}

/// Verdict-only probes: spec-valid inputs per family beyond the timed ones.
const PROBES: &[(&str, &str)] = &[
    ("equality", "[file:size = 48213]"),
    ("equality", "[network-traffic:protocols[*] = 'tls']"),
    ("equality", "[file:hashes.MD5 != 'd41d8cd98f00b204e9800998ecf8427e']"),
    ("IN", "[network-traffic:dst_port IN (80, 443, 8443)]"),
    ("IN", "[file:name NOT IN ('setup.exe', 'invoice_2024.exe')]"),
    ("LIKE", "[file:name LIKE 'inv_ice%']"),
    ("LIKE", "[file:name NOT LIKE '%.exe']"),
    ("MATCHES", "[file:name MATCHES '^(?!setup)[a-z_0-9]+\\\\.exe$']"),
    ("MATCHES", "[file:name MATCHES '^(.)\\\\1*etup']"),
    ("MATCHES", "[file:name MATCHES '\\\\.EXE$']"),
    ("CIDR", "[ipv4-addr:value ISSUBSET '198.51.100.7/32']"),
    ("CIDR", "[ipv4-addr:value ISSUBSET '0.0.0.0/0']"),
    ("CIDR", "[ipv4-addr:value ISSUPERSET '198.51.100.7']"),
    ("references", "[network-traffic:src_ref.value ISSUBSET '203.0.113.0/24']"),
    ("references", "[network-traffic:dst_ref.type = 'ipv4-addr']"),
    ("compound", "[file:name = 'setup.exe' AND file:size NOT > 5000]"),
    ("compound", "[file:name = 'setup.exe' AND (file:size < 100 OR file:size >= 1200)]"),
    ("compound", "[ipv4-addr:value = '198.51.100.7'] AND [network-traffic:dst_port = 443]"),
    ("compound", "[ipv4-addr:value = '198.51.100.7'] OR [file:name = 'nothing']"),
    ("temporal", "[ipv4-addr:value = '198.51.100.7'] FOLLOWEDBY [file:name = 'setup.exe']"),
    ("temporal", "[file:name = 'setup.exe'] FOLLOWEDBY [ipv4-addr:value = '198.51.100.7']"),
    ("temporal", "[file:name LIKE '%.exe'] REPEATS 2 TIMES"),
    ("temporal", "[file:name LIKE '%.exe'] REPEATS 3 TIMES"),
    ("temporal", "[file:name = 'setup.exe'] START t'2024-05-01T10:00:30Z' STOP t'2024-05-01T10:02:00Z'"),
    ("temporal", "([ipv4-addr:value = '198.51.100.7'] AND [file:name = 'setup.exe']) WITHIN 30 SECONDS"),
    ("compound", "[file:name = 'setup.exe' AND EXISTS file:hashes.MD5]"),
    ("compound", "[file:name = 'setup.exe' AND NOT EXISTS file:hashes.MD5]"),
];

/// An error on one line.
fn one_line(e: impl std::fmt::Display) -> String {
    e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

fn verdict_kizuna(text: &str, obs: &kizuna_pattern::Observations) -> String {
    match kizuna_pattern::Pattern::parse(text) {
        Err(e) => format!("parse error: {}", one_line(e)),
        Ok(p) => match p.is_match(obs) {
            Ok(v) => v.to_string(),
            Err(e) => format!("eval error: {}", one_line(e)),
        },
    }
}

fn verdict_rstix(text: &str, ctx: &ObservationContext<'_>) -> String {
    match rstix::Pattern::parse(text) {
        Err(e) => format!("parse error: {}", one_line(e)),
        Ok(p) => match p.evaluate(ctx) {
            Ok(v) => v.to_string(),
            Err(e) => format!("eval error: {}", one_line(e)),
        },
    }
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let families_path = args.get(1).map_or("../families.json", String::as_str);
    let observed_path = args.get(2).map_or("../observed.json", String::as_str);
    let families: Value = serde_json::from_str(&std::fs::read_to_string(families_path)?)?;
    let observed_text = std::fs::read_to_string(observed_path)?;
    let observed: Value = serde_json::from_str(&observed_text)?;
    let merged_text = merged_bundle_text(&observed)?;

    // Prepared once.
    let k_obs = kizuna_pattern::Observations::from_json(&observed, kizuna_pattern::SpecVersion::V21)?;
    let bundle = Bundle::parse(&merged_text)?;
    let r_list = rstix_observations(&bundle)?;
    let ctx = ObservationContext {
        observations: &r_list,
        bundle: Some(&bundle),
    };

    // Cost of preparing the observations from JSON text.
    let k_prep = rate(|| {
        let v: Value = serde_json::from_str(black_box(&observed_text)).expect("json");
        let o = kizuna_pattern::Observations::from_json_owned(v, kizuna_pattern::SpecVersion::V21)
            .expect("observations");
        black_box(o);
    });
    let r_prep = rate(|| {
        let b = Bundle::parse(black_box(&merged_text)).expect("bundle");
        let l = rstix_observations(&b).expect("observations");
        black_box(l.len());
    });

    println!(
        "{{\"prepare\": true, \"kizuna_prepare_per_s\": {k_prep}, \"rstix_prepare_per_s\": {r_prep}, \"observed_bytes\": {}, \"rstix_observations\": {}}}",
        observed_text.len(),
        r_list.len()
    );

    let mut mismatches = 0;
    for fam in families.as_array().ok_or("families must be a list")? {
        let family = fam["family"].as_str().ok_or("family")?;
        let text = fam["pattern"].as_str().ok_or("pattern")?;
        let kp = kizuna_pattern::Pattern::parse(text)?;
        let k_verdict = kp.is_match(&k_obs)?;
        let k_parse = rate(|| {
            black_box(kizuna_pattern::Pattern::parse(black_box(text)).is_ok());
        });
        let k_is_match = rate(|| {
            black_box(kp.is_match(black_box(&k_obs)).is_ok());
        });
        let k_matches = rate(|| {
            black_box(kp.matches(black_box(&k_obs)).is_ok());
        });
        let mut row = serde_json::json!({
            "family": family, "pattern": text,
            "kizuna_parse_per_s": k_parse, "kizuna_is_match_per_s": k_is_match,
            "kizuna_matches_per_s": k_matches, "kizuna_verdict": k_verdict,
        });
        match rstix::Pattern::parse(text) {
            Err(e) => {
                row["rstix_error"] = format!("parse: {e}").into();
                mismatches += 1;
            }
            Ok(rp) => {
                let r_parse = rate(|| {
                    black_box(rstix::Pattern::parse(black_box(text)).is_ok());
                });
                row["rstix_parse_per_s"] = r_parse.into();
                match rp.evaluate(&ctx) {
                    Err(e) => {
                        row["rstix_error"] = format!("evaluate: {e}").into();
                        mismatches += 1;
                    }
                    Ok(r_verdict) => {
                        let r_eval = rate(|| {
                            black_box(rp.evaluate(black_box(&ctx)).is_ok());
                        });
                        row["rstix_eval_per_s"] = r_eval.into();
                        row["rstix_verdict"] = r_verdict.into();
                        if r_verdict != k_verdict {
                            mismatches += 1;
                        }
                    }
                }
            }
        }
        println!("{row}");
    }

    for (family, text) in PROBES {
        let k = verdict_kizuna(text, &k_obs);
        let r = verdict_rstix(text, &ctx);
        println!(
            "{}",
            serde_json::json!({"probe": family, "pattern": text, "kizuna": k, "rstix": r, "same": k == r})
        );
    }
    eprintln!("timed families with a verdict mismatch or an rstix error: {mismatches}");
    Ok(())
}
