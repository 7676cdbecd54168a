//! `kizuna export --partner`: a file for a partner holds only what that partner's egress policy
//! lets out, redacted, one object per line; how many versions were withheld is said on stderr.

// Test code: a failed unwrap is a failed test with its location.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{indicator, kizuna};
use kizuna_stix::Tlp;
use serde_json::{Value, json};

/// A partner that is no AMBER client, takes no malware, and gets no internal properties.
const CONFIG: &str = r#"
[[partner]]
name = "dod"
url = "https://dod.example/taxii2/"

[partner.policy]
deny_types = ["malware"]

[partner.policy.redaction]
drop_custom_properties = true
"#;

fn marked(mut object: Value, tlp: Option<Tlp>) -> Value {
    match tlp {
        Some(tlp) => object["object_marking_refs"] = json!([tlp.marking_id()]),
        None => {
            object
                .as_object_mut()
                .unwrap()
                .remove("object_marking_refs");
        }
    }
    object
}

fn green_malware() -> Value {
    json!({
        "type": "malware",
        "spec_version": "2.1",
        "id": "malware--0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d",
        "created": "2026-11-26T00:00:00.000Z",
        "modified": "2026-11-26T00:00:00.000Z",
        "name": "green malware",
        "is_family": false,
        "object_marking_refs": [Tlp::Green.marking_id()],
    })
}

/// GREEN indicator 1, GREEN malware, AMBER indicator 2, unmarked indicator 3, GREEN indicator 4
/// with `x_internal`; imported from a pretty-printed bundle so stored objects span lines.
fn seeded(dir: &Path) -> (PathBuf, String) {
    let data = dir.join("data");
    let config = dir.join("kizuna.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let mut internal = marked(indicator(7, 4), Some(Tlp::Green));
    internal["x_internal"] = json!("ticket INC-1234");
    let bundle = json!({
        "type": "bundle",
        "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
        "objects": [
            marked(indicator(7, 1), Some(Tlp::Green)),
            green_malware(),
            marked(indicator(7, 2), Some(Tlp::Amber)),
            marked(indicator(7, 3), None),
            internal,
        ],
    });
    let file = dir.join("bundle.json");
    std::fs::write(&file, serde_json::to_string_pretty(&bundle).unwrap()).unwrap();
    let config_arg = config.to_str().unwrap().to_owned();
    let (code, out, err) = kizuna(
        &data,
        &[
            "--config",
            &config_arg,
            "import",
            file.to_str().unwrap(),
            "--collection",
            "shared",
        ],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    (data, config_arg)
}

fn lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not one object ({e}): {l}")))
        .collect()
}

fn ids(objects: &[Value]) -> Vec<&str> {
    objects.iter().map(|o| o["id"].as_str().unwrap()).collect()
}

#[test]
fn export_for_a_partner_keeps_only_what_its_policy_lets_out() {
    let dir = tempfile::tempdir().unwrap();
    let (data, config) = seeded(dir.path());

    let (code, out, err) = kizuna(
        &data,
        &[
            "--config",
            &config,
            "export",
            "--collection",
            "shared",
            "--partner",
            "dod",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let exported = lines(&out);
    assert_eq!(
        ids(&exported),
        vec![
            indicator(7, 1)["id"].as_str().unwrap(),
            indicator(7, 4)["id"].as_str().unwrap()
        ]
    );
    assert!(
        !out.contains("x_internal") && !out.contains("INC-1234"),
        "{out}"
    );
    assert_eq!(exported[0], marked(indicator(7, 1), Some(Tlp::Green)));
    assert_eq!(exported[1], marked(indicator(7, 4), Some(Tlp::Green)));
    assert!(err.contains("exported 2 object versions"), "{err}");
    assert!(
        err.contains("withheld 3 object versions") && err.contains("dod"),
        "{err}"
    );

    let (code, out, err) = kizuna(
        &data,
        &[
            "--config",
            &config,
            "export",
            "--collection",
            "shared",
            "--partner",
            "dod",
            "--bundle",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let bundle: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(bundle["objects"].as_array().unwrap().len(), 2);
    assert!(!out.contains("x_internal"), "{out}");

    // Without --partner, everything up to the default TLP ceiling, internal properties included.
    let (code, out, err) = kizuna(
        &data,
        &["--config", &config, "export", "--collection", "shared"],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(lines(&out).len(), 5);
    assert!(out.contains("INC-1234"));
    assert!(!err.contains("withheld"), "{err}");
}

#[test]
fn export_for_an_unknown_partner_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let (data, config) = seeded(dir.path());
    let (code, out, err) = kizuna(
        &data,
        &[
            "--config",
            &config,
            "export",
            "--collection",
            "shared",
            "--partner",
            "nobody",
        ],
        None,
    );
    assert_ne!(code, 0);
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("nobody"), "{err}");
}
