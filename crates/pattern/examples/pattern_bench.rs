//! Parse and evaluation rates per pattern family, for `bench/pattern/run.sh`.
//!
//! Usage: `pattern_bench FAMILIES.json OBSERVED.json` prints one JSON line per family:
//! `{"family", "parse_per_s", "eval_per_s", "is_match_per_s", "matched"}` (`eval` is
//! [`Pattern::matches`], which also reports the observed-data; `is_match` only the verdict). Each figure is the best of five
//! rounds of about 0.2 s, one thread.

use std::time::{Duration, Instant};

use kizuna_pattern::{Observations, Pattern, SpecVersion};

fn rate(mut f: impl FnMut()) -> f64 {
    let mut best = 0.0f64;
    for _ in 0..5 {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_millis(200) {
            for _ in 0..64 {
                f();
            }
            n += 64;
        }
        best = best.max(n as f64 / start.elapsed().as_secs_f64());
    }
    best
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, families, observed] = args.as_slice() else {
        return Err("usage: pattern_bench FAMILIES.json OBSERVED.json".into());
    };
    let families: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(families)?)?;
    let observed: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(observed)?)?;
    let obs = Observations::from_json(&observed, SpecVersion::V21)?;
    for fam in families.as_array().ok_or("families must be a list")? {
        let text = fam["pattern"].as_str().ok_or("pattern")?;
        let pattern = Pattern::parse(text)?;
        let matched = pattern.matches(&obs)?.matched;
        let parse = rate(|| {
            std::hint::black_box(Pattern::parse(std::hint::black_box(text)).is_ok());
        });
        let eval = rate(|| {
            std::hint::black_box(pattern.matches(std::hint::black_box(&obs)).is_ok());
        });
        let verdict = rate(|| {
            std::hint::black_box(pattern.is_match(std::hint::black_box(&obs)).is_ok());
        });
        println!(
            "{}",
            serde_json::json!({
                "family": fam["family"], "parse_per_s": parse, "eval_per_s": eval,
                "is_match_per_s": verdict, "matched": matched,
            })
        );
    }
    Ok(())
}
