//! Runs the reference matcher (stix2-matcher 3.0.0 from the pinned Python peers) on a batch.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// What the reference said about one case.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Matched(bool),
    Error(String),
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("KIZUNA_PYTHON") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/py-venv/bin/python");
    assert!(
        p.exists(),
        "the Python reference peers are missing ({}): run scripts/peers.sh from the workspace \
         root (or set KIZUNA_PYTHON to a python with stix2-matcher 3.0.0)",
        p.display()
    );
    p
}

/// Runs every `(pattern, version, observations)` in one Python process.
pub fn run(cases: &[(String, &str, Value)]) -> Vec<Outcome> {
    let driver = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/stix2_matcher_driver.py");
    let input: Vec<Value> = cases
        .iter()
        .map(|(p, v, o)| json!({"pattern": p, "version": v, "observations": o}))
        .collect();
    let mut child = Command::new(python())
        .arg(driver)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the stix2-matcher driver");
    let body = serde_json::to_vec(&input).expect("serialize cases");
    let mut stdin = child.stdin.take().expect("driver stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let out = child
        .wait_with_output()
        .expect("run the stix2-matcher driver");
    writer
        .join()
        .expect("writer thread")
        .expect("write cases to the driver");
    assert!(
        out.status.success(),
        "stix2-matcher driver failed (is stix2-matcher installed? run scripts/peers.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Value> = serde_json::from_slice(&out.stdout).expect("driver output is JSON");
    assert_eq!(results.len(), cases.len());
    results
        .into_iter()
        .map(|r| match r["matched"].as_bool() {
            Some(m) => Outcome::Matched(m),
            None => Outcome::Error(r["error"].as_str().unwrap_or("").to_string()),
        })
        .collect()
}
