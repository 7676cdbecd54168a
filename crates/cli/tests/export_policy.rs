//! The egress policy at the exits of the `kizuna` binary. `kizuna export --partner`: a file for a
//! partner holds only what that partner's egress policy lets out, redacted, one object per line;
//! how many versions were withheld is said on stderr. `kizuna serve`: the partner's reading
//! account gets the same over TAXII.

// Test code: a failed unwrap is a failed test with its location.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{ADMIN_PASSWORD, Hub, TAXII, indicator, kizuna};
use kizuna_stix::Tlp;
use serde_json::{Value, json};

/// A partner that is no AMBER client, takes no malware, and gets no internal properties.
const CONFIG: &str = r#"
[[partner]]
name = "dod"
account = "dod-reader"
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

const READER_PASSWORD: &str = "dod-reader-password-0123";

/// Starts `kizuna serve` with the configuration file `config`, as [`Hub::start`] does without
/// one: waits for the line that says where it listens (no polling, no sleeps).
fn serve(data: &Path, config: &str) -> Hub {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_kizuna"))
        .arg("--data")
        .arg(data)
        .args([
            "--config",
            config,
            "--log",
            "warn",
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("KIZUNA_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut lines = Vec::new();
    let url = loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).unwrap();
        assert!(
            n > 0,
            "kizuna serve exited before listening:\n{}",
            lines.join("")
        );
        if let Some(rest) = line.strip_prefix("Kizuna hub listening: ") {
            let url = rest.trim().trim_end_matches("/taxii2/").to_owned();
            lines.push(line);
            break url;
        }
        lines.push(line);
    };
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            sink.clear();
        }
    });
    Hub {
        child,
        url,
        cert: data.join("tls").join("cert.pem"),
        data: data.to_path_buf(),
        stderr_lines: lines,
    }
}

#[test]
fn serve_applies_the_partner_policy_to_its_reading_account() {
    let dir = tempfile::tempdir().unwrap();
    let (data, config) = seeded(dir.path());
    let (code, out, err) = kizuna(
        &data,
        &[
            "account",
            "add",
            "dod-reader",
            "--password-stdin",
            "--read",
            "shared",
            "--tlp-clearance",
            "red",
        ],
        Some(&format!("{READER_PASSWORD}\n")),
    );
    assert_eq!(code, 0, "{out}{err}");
    let hub = serve(&data, &config);
    let client = hub.client();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let get = |path: &str, user: &str, password: &str| {
        let request = client
            .get(format!("{}/hub/collections/shared/{path}", hub.url))
            .basic_auth(user, Some(password))
            .header("Accept", TAXII);
        runtime.block_on(async {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200, "{path} as {user}");
            response.text().await.unwrap()
        })
    };
    let allowed = vec![
        indicator(7, 1)["id"].as_str().unwrap().to_owned(),
        indicator(7, 4)["id"].as_str().unwrap().to_owned(),
    ];
    let listed = |body: &str| -> Vec<String> {
        let v: Value = serde_json::from_str(body).unwrap();
        v["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let objects = get("objects/", "dod-reader", READER_PASSWORD);
    assert_eq!(listed(&objects), allowed);
    assert!(!objects.contains("x_internal"), "{objects}");
    let manifest = get("manifest/", "dod-reader", READER_PASSWORD);
    assert_eq!(listed(&manifest), allowed);
    let admin = get("objects/", "admin", ADMIN_PASSWORD);
    assert_eq!(listed(&admin).len(), 5);
    assert!(admin.contains("INC-1234"));
    assert!(
        hub.stderr_lines
            .iter()
            .any(|l| l.contains("egress policy on TAXII reads by: dod-reader")),
        "{:?}",
        hub.stderr_lines
    );
}
