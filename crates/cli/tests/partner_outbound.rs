//! `kizuna partner show` lists what a partner refused (deletions it did not let us make, versions
//! it rejected and push set aside), and `kizuna partner retry` puts set-aside versions back for
//! the next sync.

// Test code: a failed unwrap is a failed test with its location.
#![allow(clippy::unwrap_used)]

mod common;

use common::kizuna;
use kizuna_sync::state::{Rejected, SyncDb};

const CONFIG: &str = r#"
[[partner]]
name = "dod"
url = "https://dod.example/taxii2/"
pinned_sha256 = "3f1c000000000000000000000000000000000000000000000000000000000000"

[[partner.push]]
local = "shared"
remote = "0b3a6c1e-5d2f-4e8a-9c7b-1a2b3c4d5e02"
"#;

const BAD: &str = "indicator--7a1c0000-0000-4000-8000-000000000002";

#[test]
fn show_lists_refusals_and_retry_puts_set_aside_versions_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("kizuna.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let config = config.to_str().unwrap();
    let mapping = ("dod", "local-id", "0b3a6c1e-5d2f-4e8a-9c7b-1a2b3c4d5e02");
    {
        let db = SyncDb::open(&data).unwrap();
        let rejected = |id: &str| Rejected {
            object_id: id.into(),
            version: "2026-01-01T00:00:00.000Z".into(),
            seq: 7,
            message: "pattern: unexpected end of input".into(),
        };
        for _ in 0..3 {
            db.count_rejection(mapping, &rejected(BAD), 3).unwrap();
        }
        db.count_rejection(mapping, &rejected("indicator--other"), 3)
            .unwrap();
        db.deletion_refused(mapping.0, mapping.1, mapping.2, "HTTP 403: may not read")
            .unwrap();
    }

    let (code, out, err) = kizuna(&data, &["--config", config, "partner", "show", "dod"], None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("rejected by the partner (set aside, 3 attempts") && out.contains(BAD),
        "{out}"
    );
    assert!(out.contains("(counting, 1 attempts"), "{out}");
    assert!(out.contains("unexpected end of input"), "{out}");
    assert!(
        out.contains("the partner refuses deletions: ") && out.contains("HTTP 403"),
        "{out}"
    );

    let (code, out, err) = kizuna(
        &data,
        &[
            "--config", config, "partner", "retry", "dod", "--object", BAD,
        ],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("1 set-aside version(s)"), "{out}");
    let db = SyncDb::open(&data).unwrap();
    assert_eq!(db.retries(mapping).unwrap().len(), 1);

    let (code, out, err) = kizuna(
        &data,
        &["--config", config, "partner", "show", "dod", "--json"],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let states: Vec<&str> = v["outbound_quarantine"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["state"].as_str().unwrap())
        .collect();
    assert!(
        states.contains(&"retry") && states.contains(&"counting"),
        "{out}"
    );
    assert!(
        v["deletions"][0]["refused"]
            .as_str()
            .unwrap()
            .contains("403")
    );

    // An unknown partner is an error, not a silent zero.
    let (code, _, _) = kizuna(
        &data,
        &["--config", config, "partner", "retry", "nobody"],
        None,
    );
    assert_ne!(code, 0);
}
