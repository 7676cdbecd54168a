//! Table-driven validation tests over `testdata/stix`, and a differential test against the
//! OASIS stix2-validator (PyPI) on the same files.
//!
//! - `testdata/stix/valid/*.json`: every object of the file must validate without a problem.
//! - `testdata/stix/invalid/*.json`: the set of problem paths over the file's objects must equal
//!   the lines of the sidecar `.expect` file (`.` stands for the object as a whole, `!input` for a
//!   file that cannot be split into objects at all).

// Test helpers: a panic is how a test reports failure.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use kizuna_stix::{
    META_TYPES, SCO_TYPES, SDO_TYPES, SRO_TYPES, StixId, read_objects, validate_object,
};

fn corpus(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/stix")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("reading {}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no test files in {}", root.display());
    files
}

fn name(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

/// Kizuna's verdict on a file: the problem paths of all its objects (`Err` if it cannot be read).
fn problem_paths(path: &Path) -> Result<BTreeSet<String>, String> {
    let text = std::fs::read_to_string(path).unwrap();
    let objects = read_objects(&text).map_err(|e| e.to_string())?;
    assert!(!objects.is_empty(), "{}: no objects", path.display());
    Ok(objects
        .iter()
        .flat_map(|o| validate_object(&o.value))
        .map(|p| {
            if p.path.is_empty() {
                ".".to_owned()
            } else {
                p.path
            }
        })
        .collect())
}

#[test]
fn valid_corpus_has_no_problems() {
    let mut failures = Vec::new();
    for path in corpus("valid") {
        let text = std::fs::read_to_string(&path).unwrap();
        match read_objects(&text) {
            Err(e) => failures.push(format!("{}: {e}", name(&path))),
            Ok(objects) => {
                for o in objects {
                    for p in validate_object(&o.value) {
                        failures.push(format!("{}: {p}", name(&path)));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "valid files with problems:\n{}",
        failures.join("\n")
    );
}

#[test]
fn valid_corpus_has_an_example_of_every_type() {
    let mut seen = BTreeSet::new();
    for path in corpus("valid") {
        let text = std::fs::read_to_string(&path).unwrap();
        for o in read_objects(&text).unwrap() {
            seen.insert(o.value["type"].as_str().unwrap().to_owned());
            if let Some(embedded) = o.value.get("objects").and_then(|v| v.as_object()) {
                for e in embedded.values() {
                    seen.insert(e["type"].as_str().unwrap().to_owned());
                }
            }
        }
    }
    let missing: Vec<&str> = SDO_TYPES
        .iter()
        .chain(&SRO_TYPES)
        .chain(&SCO_TYPES)
        .chain(&META_TYPES)
        .filter(|t| !seen.contains(**t))
        .copied()
        .collect();
    assert!(missing.is_empty(), "no valid example of {missing:?}");
}

#[test]
fn problems_name_the_object() {
    for path in corpus("invalid") {
        let text = std::fs::read_to_string(&path).unwrap();
        for o in read_objects(&text).unwrap_or_default() {
            let id = o.value["id"].as_str().and_then(|s| StixId::parse(s).ok());
            for p in validate_object(&o.value) {
                assert_eq!(
                    p.object_id.as_deref(),
                    id.as_ref().map(StixId::as_str),
                    "{}: {p}",
                    name(&path)
                );
            }
        }
    }
}

#[test]
fn invalid_corpus_reports_expected_paths() {
    let mut failures = Vec::new();
    for path in corpus("invalid") {
        let expect_file = path.with_extension("expect");
        let expected: BTreeSet<String> = std::fs::read_to_string(&expect_file)
            .unwrap_or_else(|e| panic!("{}: {e}", expect_file.display()))
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        match problem_paths(&path) {
            // `!input`: the file itself must be rejected (malformed JSON, bad bundle envelope).
            Err(_) if expected.contains("!input") => {}
            Err(e) => failures.push(format!("{}: unreadable: {e}", name(&path))),
            Ok(got) if got != expected => {
                let text = std::fs::read_to_string(&path).unwrap();
                let detail: Vec<String> = read_objects(&text)
                    .unwrap()
                    .iter()
                    .flat_map(|o| validate_object(&o.value))
                    .map(|p| format!("    {p}"))
                    .collect();
                failures.push(format!(
                    "{}: expected {expected:?}, got {got:?}\n{}",
                    name(&path),
                    detail.join("\n")
                ));
            }
            Ok(_) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Files on which Kizuna deliberately disagrees with stix2-validator 3.3.2, and why (also in
/// docs/stix.md). The test checks that each still disagrees, so the list cannot go stale.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    // STIX 2.1 §7.2.3 lets a granular marking carry `lang` instead of `marking_ref`; the
    // validator's schema requires marking_ref, and accepts both together, which §7.2.3 forbids.
    (
        "valid/granular-lang",
        "a lang-only granular marking is valid STIX 2.1",
    ),
    (
        "invalid/granular-marking-ref-and-lang",
        "marking_ref and lang together are forbidden",
    ),
    // The deprecated observed-data `objects` form predates SCO ids; the validator crashes
    // (KeyError 'id') on embedded objects without one.
    (
        "valid/observed-data-objects-without-ids",
        "embedded SCOs need no id",
    ),
    // Reference targets the validator does not check (it checks SCO reference types only inside
    // observed-data `objects`, and never created_by_ref / object_marking_refs / sighting_of_ref
    // against SCOs).
    (
        "invalid/created-by-ref-wrong-type",
        "created_by_ref must reference an identity",
    ),
    (
        "invalid/object-marking-not-marking",
        "object_marking_refs must reference marking-definitions",
    ),
    (
        "invalid/sighting-of-sco",
        "sighting_of_ref must reference an SDO",
    ),
    (
        "invalid/directory-contains-wrong",
        "contains_refs: file or directory",
    ),
    (
        "invalid/domain-name-resolves-wrong",
        "resolves_to_refs: ipv4-addr, ipv6-addr, domain-name",
    ),
    ("invalid/email-message-from-wrong", "from_ref: email-addr"),
    (
        "invalid/file-parent-wrong",
        "parent_directory_ref: directory",
    ),
    (
        "invalid/ipv4-addr-resolves-wrong",
        "resolves_to_refs: mac-addr",
    ),
    (
        "invalid/network-traffic-src-wrong",
        "src_ref: address or domain-name",
    ),
    ("invalid/process-image-wrong", "image_ref: file"),
    // Custom properties named *_ref / *_refs must hold identifiers (§3.1 naming rules); the
    // validator does not look at custom properties.
    (
        "invalid/ref-suffix-not-id",
        "a *_ref property must be an identifier",
    ),
    (
        "invalid/refs-suffix-not-ids",
        "a *_refs property must be a list of identifiers",
    ),
    // §7.3 makes created_by_ref required on extension-definition; the schema does not.
    (
        "invalid/extension-definition-no-created-by",
        "extension-definition needs created_by_ref",
    ),
    // The validator has no schema for the TLP 2.0 extension.
    (
        "invalid/marking-definition-tlp2-bad-level",
        "tlp_2_0 must be a TLP 2.0 level",
    ),
    // §3.2: extension keys SHOULD (not MUST) be extension-definition ids or predefined names.
    (
        "valid/extension-custom-key",
        "any dictionary key may name an extension",
    ),
    // §6.6: additional_header_fields values MUST be lists of strings; the schema wants a string
    // or a list of at least two.
    (
        "valid/email-message-header-single",
        "a header with one value is a one-item list",
    ),
    (
        "invalid/email-message-header-string",
        "header values are lists of strings",
    ),
    // Rules of the specification the validator does not check.
    ("invalid/defanged-on-sdo", "§3.2: defanged only on SCOs"),
    ("invalid/hex-uppercase", "§2.8: hex digits are lower-case"),
    (
        "invalid/process-env-not-string",
        "§6.11: environment variable values are strings",
    ),
    (
        "invalid/grouping-no-name",
        "§4.4: a grouping's name is required",
    ),
    (
        "invalid/observed-data-refs-only-sros",
        "§4.14: object_refs holds at least one SCO",
    ),
    // Kizuna is a 2.1 hub: `spec_version` "2.0" is not 2.1 content; the validator's schema
    // enumerates both versions.
    ("invalid/wrong-spec-version", "spec_version must be 2.1"),
];

const VALIDATOR_SCRIPT: &str = r#"
import sys, logging
logging.disable(logging.CRITICAL)
from stix2validator import validate_file, ValidationOptions
opts = ValidationOptions(version="2.1")
for fn in sys.argv[1:]:
    try:
        ok = validate_file(fn, opts).is_valid
    except Exception as e:
        ok = False
    print(("valid" if ok else "invalid") + "\t" + fn)
"#;

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("KIZUNA_PYTHON") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/py-venv/bin/python")
}

#[test]
fn agrees_with_stix2_validator() {
    let py = python();
    assert!(
        py.exists(),
        "the differential test needs the Python peers: run scripts/peers.sh (looked for {}; \
         set KIZUNA_PYTHON to use another interpreter)",
        py.display()
    );
    let files: Vec<PathBuf> = corpus("valid")
        .into_iter()
        .chain(corpus("invalid"))
        .collect();
    let out = Command::new(&py)
        .arg("-c")
        .arg(VALIDATOR_SCRIPT)
        .args(&files)
        .output()
        .expect("running stix2-validator");
    assert!(
        out.status.success(),
        "stix2-validator failed (is it installed? run scripts/peers.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: BTreeMap<String, bool> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(v, f)| (f.to_owned(), v == "valid"))
        .collect();
    assert_eq!(
        theirs.len(),
        files.len(),
        "stix2-validator did not report every file"
    );
    let known: BTreeMap<&str, &str> = KNOWN_DIFFERENCES.iter().copied().collect();
    let mut failures = Vec::new();
    for f in &files {
        let ours = problem_paths(f).is_ok_and(|p| p.is_empty());
        let theirs = theirs[&f.to_string_lossy().into_owned()];
        let dir = f
            .parent()
            .and_then(Path::file_name)
            .unwrap()
            .to_string_lossy();
        let key = format!("{dir}/{}", name(f));
        match (ours == theirs, known.contains_key(key.as_str())) {
            (true, false) | (false, true) => {}
            (false, false) => failures.push(format!(
                "{key}: kizuna says {}, stix2-validator says {}",
                verdict(ours),
                verdict(theirs)
            )),
            (true, true) => failures.push(format!(
                "{key}: listed in KNOWN_DIFFERENCES but both now say {}",
                verdict(ours)
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "disagreements:\n{}",
        failures.join("\n")
    );
}

fn verdict(valid: bool) -> &'static str {
    if valid { "valid" } else { "invalid" }
}

#[test]
fn each_problem_is_reported_once() {
    for path in corpus("invalid") {
        let text = std::fs::read_to_string(&path).unwrap();
        for o in read_objects(&text).unwrap_or_default() {
            let problems = validate_object(&o.value);
            for (i, p) in problems.iter().enumerate() {
                assert!(
                    !problems[..i].contains(p),
                    "{}: reported twice: {p}",
                    name(&path)
                );
            }
        }
    }
}

#[test]
fn the_tlp_marking_definitions_kizuna_publishes_are_valid() {
    for tlp in kizuna_stix::Tlp::ALL {
        let md = tlp.marking_definition();
        assert_eq!(validate_object(&md), vec![], "{tlp}");
    }
}
