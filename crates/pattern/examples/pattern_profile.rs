//! Runs one pattern family a fixed number of times, for `valgrind --tool=callgrind`.
//!
//! Usage: `pattern_profile FAMILIES.json OBSERVED.json FAMILY parse|eval N`.

use kizuna_pattern::{Observations, Pattern, SpecVersion};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, families, observed, family, what, n] = args.as_slice() else {
        return Err("usage: pattern_profile FAMILIES OBSERVED FAMILY parse|eval N".into());
    };
    let n: u64 = n.parse()?;
    let families: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(families)?)?;
    let observed: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(observed)?)?;
    let obs = Observations::from_json(&observed, SpecVersion::V21)?;
    for fam in families.as_array().ok_or("families must be a list")? {
        if fam["family"].as_str() != Some(family.as_str()) {
            continue;
        }
        let text = fam["pattern"].as_str().ok_or("pattern")?;
        let pattern = Pattern::parse(text)?;
        let mut hits = 0u64;
        for _ in 0..n {
            if what == "parse" {
                hits += u64::from(Pattern::parse(std::hint::black_box(text)).is_ok());
            } else {
                hits += u64::from(pattern.is_match(std::hint::black_box(&obs))?);
            }
        }
        println!("{family} {what} {hits}");
    }
    Ok(())
}
