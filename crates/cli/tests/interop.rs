//! Interoperability with the OASIS reference tools, against the real `kizuna` binary over HTTPS:
//! the TAXII 2.1 conformance suite of this repository (`conformance/`), and a tour of every
//! endpoint with the PyPI `taxii2-client` whose returned objects all pass `stix2-validator`
//! (`interop/`). The Python peers come from `scripts/peers.sh`; a missing venv fails the test.

// Test code: a failed unwrap is a failed test with its location.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ADMIN_PASSWORD, Hub, kizuna};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    let py = std::env::var_os("KIZUNA_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/py-venv/bin/python"));
    assert!(
        py.exists(),
        "{} is missing: run scripts/peers.sh to install the pinned Python peers",
        py.display()
    );
    py
}

/// A hub with a tester account that reads and writes one collection, only reads a second and only
/// writes a third, so that the suite can check the access-control MUSTs.
struct Fixture {
    _dir: tempfile::TempDir,
    hub: Hub,
    rw: String,
    read_only: String,
    write_only: String,
}

const TESTER_PASSWORD: &str = "tester-password-0123456789";

fn collection_id(data: &Path, alias: &str) -> String {
    let (code, out, err) = kizuna(data, &["collection", "list", "--json"], None);
    assert_eq!(code, 0, "{err}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["alias"] == alias)
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no collection {alias}: {out}"))
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (alias, title) in [
        ("ro", "Read-only for tester"),
        ("wo", "Write-only for tester"),
    ] {
        let (code, _, err) = kizuna(
            &data,
            &["collection", "add", "--title", title, "--alias", alias],
            None,
        );
        assert_eq!(code, 0, "{err}");
    }
    let (code, _, err) = kizuna(
        &data,
        &[
            "account",
            "add",
            "tester",
            "--password-stdin",
            "--tlp-clearance",
            "red",
            "--read",
            "shared",
            "--write",
            "shared",
            "--read",
            "ro",
            "--write",
            "wo",
        ],
        Some(&format!("{TESTER_PASSWORD}\n")),
    );
    assert_eq!(code, 0, "{err}");
    let rw = collection_id(&data, "shared");
    let read_only = collection_id(&data, "ro");
    let write_only = collection_id(&data, "wo");
    let hub = Hub::start(&data, Some(ADMIN_PASSWORD));
    Fixture {
        _dir: dir,
        hub,
        rw,
        read_only,
        write_only,
    }
}

/// Runs a Python script of the repository against the fixture's hub, with the connection
/// arguments the conformance suite and the tour share, then `extra`.
fn run_script(f: &Fixture, script: &str, extra: &[&str]) -> (bool, String) {
    let discovery = format!("{}/taxii2/", f.hub.url);
    let out = Command::new(python())
        .arg(repo().join(script))
        .args([
            "--discovery",
            &discovery,
            "--user",
            "tester",
            "--password",
            TESTER_PASSWORD,
        ])
        .arg("--cacert")
        .arg(&f.hub.cert)
        .args(["--collection", &f.rw])
        .args(extra)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn taxii21_conformance_suite_passes_every_must() {
    let f = fixture();
    let (ok, out) = run_script(
        &f,
        "conformance/taxii21_conformance.py",
        &[
            "--read-only-collection",
            &f.read_only,
            "--write-only-collection",
            &f.write_only,
            "--strict",
        ],
    );
    let last = out
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    assert!(ok, "conformance suite failed ({last}):\n{out}");
    assert!(last.contains(" 0 failed"), "{out}");
}

#[test]
fn taxii2_client_tour_with_stix2_validator() {
    let f = fixture();
    let (ok, out) = run_script(&f, "interop/taxii2client_tour.py", &[]);
    assert!(ok, "taxii2-client tour failed:\n{out}");
}
