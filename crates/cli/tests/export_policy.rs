//! The egress policy at the exits of the `kizuna` binary. `kizuna export --partner`: a file for a
//! partner holds only what that partner's egress policy lets out, redacted, one object per line;
//! how many versions were withheld is said on stderr. `kizuna serve`: the partner's reading
//! account gets the same over TAXII. Both exits write the egress ledger (exits `taxii` and
//! `export`, SHA-256 of the bytes that left), and a running `kizuna serve` picks up a policy
//! change on SIGHUP or at its next sync round, keeping the old policy when the file is broken.

// Test code: a failed unwrap is a failed test with its location.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{ADMIN_PASSWORD, Hub, TAXII, indicator, kizuna};
use kizuna_stix::Tlp;
use serde_json::{Value, json};

/// A partner that is no AMBER client, takes no malware, and gets no internal properties. Its own
/// server is down (nothing listens on port 1): it only reads from us.
const CONFIG: &str = r#"
[[partner]]
name = "dod"
account = "dod-reader"
url = "http://127.0.0.1:1/taxii2/"
danger_plaintext_http = true

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
    serve_watching(data, config).0
}

/// Like [`serve`], and the lines the hub writes on stderr afterwards.
fn serve_watching(data: &Path, config: &str) -> (Hub, std::sync::mpsc::Receiver<String>) {
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
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            let _ = tx.send(std::mem::take(&mut line));
        }
    });
    let hub = Hub {
        child,
        url,
        cert: data.join("tls").join("cert.pem"),
        data: data.to_path_buf(),
        stderr_lines: lines,
    };
    (hub, rx)
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

fn add_reader(data: &Path) {
    let (code, out, err) = kizuna(
        data,
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
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The exact text of each object of an envelope, as the client received it.
fn raw_objects(body: &str) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow, default)]
        objects: Vec<&'a serde_json::value::RawValue>,
    }
    let envelope: Envelope<'_> = serde_json::from_str(body).unwrap();
    envelope
        .objects
        .iter()
        .map(|o| o.get().to_owned())
        .collect()
}

/// `kizuna ledger show --partner dod --json`: (exit, object id, sha256) of each record.
fn ledger_of_dod(data: &Path, config: &str) -> Vec<(String, String, String)> {
    let (code, out, err) = kizuna(
        data,
        &[
            "--config",
            config,
            "ledger",
            "show",
            "--partner",
            "dod",
            "--json",
            "--limit",
            "1000",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    lines(&out)
        .iter()
        .map(|r| {
            (
                r["exit"].as_str().unwrap().to_owned(),
                r["object_id"].as_str().unwrap().to_owned(),
                r["sha256"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn assert_ledger_intact(data: &Path, config: &str) {
    let (code, out, err) = kizuna(data, &["--config", config, "ledger", "verify"], None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ledger intact"), "{out}");
}

/// A blocking TAXII reader for the partner's account.
struct Reader<'a> {
    hub: &'a Hub,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl<'a> Reader<'a> {
    fn new(hub: &'a Hub) -> Self {
        Self {
            hub,
            client: hub.client(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    fn get(&self, path: &str) -> String {
        let request = self
            .client
            .get(format!("{}/hub/collections/shared/{path}", self.hub.url))
            .basic_auth("dod-reader", Some(READER_PASSWORD))
            .header("Accept", TAXII);
        self.runtime.block_on(async {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            response.text().await.unwrap()
        })
    }

    /// Ids of the objects the partner's account reads now.
    fn ids(&self) -> Vec<String> {
        let body = self.get("objects/");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["objects"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|o| o["id"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Reads until the partner's account reads `expected` (bounded: a reload is asynchronous).
    fn wait_until_reads(&self, expected: &[String]) {
        let mut last = Vec::new();
        for _ in 0..TRIES {
            last = self.ids();
            if last == expected {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("the partner still reads {last:?}, not {expected:?}");
    }
}

/// Polls of a reload, each after a short wait: generous for a loaded 2-core machine.
const TRIES: u32 = 1200;

fn allowed() -> Vec<String> {
    vec![
        indicator(7, 1)["id"].as_str().unwrap().to_owned(),
        indicator(7, 4)["id"].as_str().unwrap().to_owned(),
    ]
}

/// CONFIG, with indicators denied too.
fn stricter_config() -> String {
    CONFIG.replace(
        r#"deny_types = ["malware"]"#,
        r#"deny_types = ["malware", "indicator"]"#,
    )
}

fn hang_up(hub: &Hub) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &hub.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// All three ways out are in one ledger: what the partner's account reads over TAXII (exactly the
/// versions served, with the SHA-256 of the bytes it received; not what is withheld, not the
/// manifest), what `export --partner` writes (SHA-256 of each line), and the chain stays intact.
/// Then a SIGHUP with a broken file keeps the policy in force, and one with a stricter policy
/// applies it to the next read, without a restart.
#[test]
fn every_exit_is_ledgered_and_sighup_reloads_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let (data, config) = seeded(dir.path());
    add_reader(&data);
    let (hub, stderr) = serve_watching(&data, &config);
    let reader = Reader::new(&hub);

    let body = reader.get("objects/");
    let raw = raw_objects(&body);
    assert_eq!(raw.len(), 2, "{body}");
    let one = reader.get(&format!("objects/{}/", allowed()[0]));
    let raw_one = raw_objects(&one);
    reader.get("manifest/");
    let mut expected: Vec<(String, String, String)> = allowed()
        .into_iter()
        .zip(&raw)
        .chain(std::iter::once((allowed()[0].clone(), &raw_one[0])))
        .map(|(id, bytes)| ("taxii".to_owned(), id, sha256_hex(bytes.as_bytes())))
        .collect();
    assert_eq!(ledger_of_dod(&data, &config), expected);

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
    assert!(
        err.contains("recorded 2 object versions in the egress ledger"),
        "{err}"
    );
    expected.extend(
        allowed()
            .into_iter()
            .zip(out.lines())
            .map(|(id, line)| ("export".to_owned(), id, sha256_hex(line.as_bytes()))),
    );
    assert_eq!(ledger_of_dod(&data, &config), expected);
    // An export that is for no partner is not ledgered.
    let (code, _, err) = kizuna(
        &data,
        &["--config", &config, "export", "--collection", "shared"],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(ledger_of_dod(&data, &config).len(), expected.len());
    let (code, shown, err) = kizuna(&data, &["--config", &config, "ledger", "show"], None);
    assert_eq!(code, 0, "{err}");
    assert!(
        shown.contains(" taxii ") && shown.contains(" export "),
        "{shown}"
    );
    assert_ledger_intact(&data, &config);

    // A broken file: the error is logged with the file and line, and the old policy stays.
    std::fs::write(&config, format!("{CONFIG}\n[partner.policy.oops\n")).unwrap();
    hang_up(&hub);
    let logged = stderr
        .iter()
        .find(|l| l.contains("not reloaded"))
        .expect("the reload error is logged");
    assert!(
        logged.contains("kizuna.toml") && logged.contains("line"),
        "{logged}"
    );
    assert_eq!(reader.ids(), allowed());

    // A stricter policy applies without a restart.
    std::fs::write(&config, stricter_config()).unwrap();
    hang_up(&hub);
    reader.wait_until_reads(&[]);
    // Reads before the reload were ledgered; a read that serves nothing records nothing.
    let after_reload = ledger_of_dod(&data, &config);
    assert!(after_reload.len() >= expected.len() + 2);
    assert!(after_reload.iter().all(|(_, id, _)| allowed().contains(id)));
    assert!(reader.ids().is_empty());
    assert_eq!(ledger_of_dod(&data, &config), after_reload);
    assert_ledger_intact(&data, &config);
}

/// Without any signal, the next sync round re-reads the partners: push and TAXII reads obey the
/// same configuration.
#[test]
fn a_sync_round_reloads_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let (data, config) = seeded(dir.path());
    add_reader(&data);
    // Rounds every 0.2 s; the partner's own server is down, so each round only fails to connect.
    let with_rounds = |text: &str| format!("[sync]\ninterval_seconds = 0.2\n{text}");
    std::fs::write(&config, with_rounds(CONFIG)).unwrap();
    let hub = serve(&data, &config);
    let reader = Reader::new(&hub);
    assert_eq!(reader.ids(), allowed());
    std::fs::write(&config, with_rounds(&stricter_config())).unwrap();
    reader.wait_until_reads(&[]);
}

/// An export whose output fails (a full disk) fails, and says what the ledger holds: the versions
/// of the page being written, recorded before the write, although they never fully left.
#[cfg(target_os = "linux")]
#[test]
fn a_failed_export_says_what_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (data, config) = seeded(dir.path());
    let (code, _, err) = kizuna(
        &data,
        &[
            "--config",
            &config,
            "export",
            "--collection",
            "shared",
            "--partner",
            "dod",
            "--output",
            "/dev/full",
        ],
        None,
    );
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains("2 object versions for partner dod are in the egress ledger"),
        "{err}"
    );
    let recorded = ledger_of_dod(&data, &config);
    assert_eq!(recorded.len(), 2);
    assert!(recorded.iter().all(|(exit, _, _)| exit == "export"));
    assert_ledger_intact(&data, &config);
}
