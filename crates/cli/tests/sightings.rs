//! Sightings into the hub: `kizuna scan mail --hub` reads the hub's indicators and writes
//! privacy-reduced, marked sightings into a collection; `kizuna serve` does the same for a
//! watched Maildir, and partners read them over TAXII.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{kizuna, taxii_sightings};
use serde_json::{Value, json};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/mail")
}

fn indicator(n: u32, name: &str, pattern: &str) -> Value {
    json!({
        "type": "indicator", "spec_version": "2.1",
        "id": format!("indicator--00000000-0000-4000-8000-{n:012}"),
        "created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z",
        "name": name, "pattern": pattern, "pattern_type": "stix",
        "valid_from": "2000-01-01T00:00:00Z",
    })
}

/// A hub data directory holding two indicators that hit testdata/mail/plain-utf8.eml: one on
/// a recipient, one on a URL of the body.
fn hub_with_indicators(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    let file = dir.join("indicators.json");
    let inds = json!([
        indicator(
            1,
            "Suzuki targeted",
            "[email-message:to_refs[*].value = 'suzuki@example.jp']"
        ),
        indicator(
            2,
            "Minutes URL",
            "[url:value = 'https://docs.example.org/minutes?id=42&lang=ja']"
        ),
    ]);
    std::fs::write(&file, inds.to_string()).unwrap();
    let (code, _, err) = kizuna(
        &data,
        &["import", "--collection", "shared", file.to_str().unwrap()],
        None,
    );
    assert_eq!(code, 0, "{err}");
    data
}

fn export(data: &Path) -> Vec<Value> {
    let (code, out, err) = kizuna(data, &["export", "--collection", "shared"], None);
    assert_eq!(code, 0, "{err}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn scan_hub_writes_reduced_valid_sightings_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = hub_with_indicators(dir.path());
    let mail = testdata().join("plain-utf8.eml");
    let (code, out, err) = kizuna(
        &data,
        &["scan", "mail", mail.to_str().unwrap(), "--hub"],
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(out.contains("Suzuki targeted"), "{out}");
    assert!(
        out.contains("2 hits of 2 indicators in 1 observations"),
        "{out}"
    );
    assert!(err.contains("2 new, 0 already there"), "{err}");

    let objects = export(&data);
    let sightings: Vec<&Value> = objects.iter().filter(|o| o["type"] == "sighting").collect();
    assert_eq!(sightings.len(), 2);
    let amber = kizuna_stix::Tlp::Amber.marking_id();
    for o in objects.iter().filter(|o| o["type"] != "indicator") {
        assert!(kizuna_stix::validate_object(o).is_empty(), "{o}");
        assert_eq!(o["object_marking_refs"], json!([amber]), "{o}");
    }
    for s in &sightings {
        let od_id = &s["observed_data_refs"][0];
        assert!(objects.iter().any(|o| o["id"] == *od_id), "{s}");
    }
    // Recipients, sender and body that did not match are not shared.
    let text = objects.iter().map(Value::to_string).collect::<String>();
    for private in [
        "hanako@example.jp",
        "team@example.jp",
        "taro@example.org",
        "relay@example.org",
        "Hello,",
        "minutes-42@example.org",
        "Suzuki\"",
    ] {
        assert!(!text.contains(private), "{private} shared: {text}");
    }
    assert!(text.contains("suzuki@example.jp"));

    // The same input again adds nothing.
    let (code, _, err) = kizuna(
        &data,
        &["scan", "mail", mail.to_str().unwrap(), "--hub"],
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("0 new, 2 already there"), "{err}");
    assert_eq!(export(&data).len(), objects.len());
}

#[test]
fn hash_emails_hides_addresses_and_tlp_flag_marks() {
    let dir = tempfile::tempdir().unwrap();
    let data = hub_with_indicators(dir.path());
    let mail = testdata().join("plain-utf8.eml");
    let (code, out, err) = kizuna(
        &data,
        &[
            "scan",
            "mail",
            mail.to_str().unwrap(),
            "--hub",
            "--hash-emails",
            "--tlp",
            "green",
            "--format",
            "jsonl",
            "--explain",
        ],
        None,
    );
    assert_eq!(code, 1, "{err}");
    let first: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(
        first["explain"]["tests"][0]["holds"],
        json!(true),
        "{first}"
    );
    let objects = export(&data);
    let text = objects
        .iter()
        .filter(|o| o["type"] != "indicator")
        .map(Value::to_string)
        .collect::<String>();
    assert!(!text.contains("example.jp"), "{text}");
    assert!(text.contains("@redacted.invalid"), "{text}");
    let green = kizuna_stix::Tlp::Green.marking_id();
    for o in objects.iter().filter(|o| o["type"] != "indicator") {
        assert!(kizuna_stix::validate_object(o).is_empty(), "{o}");
        assert_eq!(o["object_marking_refs"], json!([green]), "{o}");
    }
}

#[test]
fn match_reads_indicators_from_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let data = hub_with_indicators(dir.path());
    let mail = testdata().join("plain-utf8.eml");
    let (_, observables, _) = kizuna(
        &data,
        &["scan", "mail", mail.to_str().unwrap(), "--observables"],
        None,
    );
    let line: Value = serde_json::from_str(observables.lines().next().unwrap()).unwrap();
    let (code, out, err) = kizuna(
        &data,
        &["match", "--hub", "--observations", "-"],
        Some(&format!("{}\n", line["bundle"])),
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
}

/// Polls (bounded: 60 s) until `n` sightings are readable over TAXII.
fn wait_for_sightings(hub: &common::Hub, n: usize) -> Vec<Value> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = hub.client();
    rt.block_on(async {
        for _ in 0..600 {
            let found = taxii_sightings(hub, &client).await;
            if found.len() >= n {
                return found;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("no {n} sightings over TAXII within 60 s");
    })
}

/// Delivers a message into a Maildir as an MTA does: written in `tmp/`, renamed into `new/`.
fn deliver(maildir: &Path, name: &str) {
    let tmp = maildir.join("tmp").join(name);
    std::fs::copy(testdata().join("plain-utf8.eml"), &tmp).unwrap();
    std::fs::rename(&tmp, maildir.join("new").join(name)).unwrap();
}

#[test]
fn serve_watches_a_maildir_and_serves_its_sightings_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let data = hub_with_indicators(dir.path());
    let maildir = dir.path().join("Maildir");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    let config = dir.path().join("kizuna.toml");
    std::fs::write(
        &config,
        format!(
            "[detect]\ninterval_seconds = 0.1\n[[detect.watch]]\nkind = \"maildir\"\npath = {:?}\n",
            maildir.display().to_string()
        ),
    )
    .unwrap();
    let hub = common::Hub::start_with_config(&data, Some(common::ADMIN_PASSWORD), &config);
    deliver(&maildir, "1000.M1P1.host");
    let first = wait_for_sightings(&hub, 2);
    assert_eq!(first.len(), 2, "{first:?}");
    // The MUA moves the message to cur/ with flags: not a new message.
    std::fs::rename(
        maildir.join("new/1000.M1P1.host"),
        maildir.join("cur/1000.M1P1.host:2,S"),
    )
    .unwrap();
    hub.kill();

    let hub = common::Hub::start_with_config(&data, Some(common::ADMIN_PASSWORD), &config);
    deliver(&maildir, "2000.M2P1.host");
    wait_for_sightings(&hub, 4);
    // Once the round that scanned the second delivery is remembered, its sightings (and any
    // rescan of the first message, which sorts before it) are stored.
    let state = data.join("watch-state.json");
    for _ in 0..600 {
        if std::fs::read_to_string(&state).is_ok_and(|s| s.contains("2000.M2P1.host")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let after = wait_for_sightings(&hub, 4);
    // The second delivery gave two sightings; the moved first message none.
    assert_eq!(after.len(), 4, "{after:?}");
    let text = after.iter().map(Value::to_string).collect::<String>();
    assert!(text.contains(kizuna_stix::Tlp::Amber.marking_id()));
    let metrics = metrics(&hub);
    assert!(metrics.contains("kizuna_detect_hits_total"), "{metrics}");
}

#[test]
fn serve_reads_appended_log_lines_once_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = hub_with_indicators(dir.path());
    let mail = testdata().join("plain-utf8.eml");
    let (_, observables, _) = kizuna(
        &data,
        &["scan", "mail", mail.to_str().unwrap(), "--observables"],
        None,
    );
    let bundle: Value = serde_json::from_str::<Value>(observables.lines().next().unwrap()).unwrap()
        ["bundle"]
        .clone();
    let od_id = bundle["objects"][0]["id"].as_str().unwrap().to_owned();
    // The same observation under another observed-data id: a new line, new sightings.
    let line = |n: u32| {
        let fresh = format!("observed-data--00000000-0000-4000-8000-{n:012}");
        format!("{}\n", bundle.to_string().replace(&od_id, &fresh))
    };
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let file = logs.join("observations.jsonl");
    std::fs::write(&file, line(1)).unwrap();
    let config = dir.path().join("kizuna.toml");
    std::fs::write(
        &config,
        format!(
            "[detect]\ninterval_seconds = 0.1\n[[detect.watch]]\nkind = \"stix\"\npath = {:?}\n",
            logs.display().to_string()
        ),
    )
    .unwrap();
    let hub = common::Hub::start_with_config(&data, Some(common::ADMIN_PASSWORD), &config);
    assert_eq!(wait_for_sightings(&hub, 2).len(), 2);
    let append = |text: &str| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    };
    append(&line(2));
    assert_eq!(wait_for_sightings(&hub, 4).len(), 4);
    hub.kill();

    let hub = common::Hub::start_with_config(&data, Some(common::ADMIN_PASSWORD), &config);
    append(&line(3));
    wait_for_sightings(&hub, 6);
    let state = data.join("watch-state.json");
    let size = std::fs::metadata(&file).unwrap().len();
    for _ in 0..600 {
        if std::fs::read_to_string(&state).is_ok_and(|s| s.contains(&format!("\"offset\":{size}")))
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(wait_for_sightings(&hub, 6).len(), 6);
    // After the restart only the new line was matched: offsets survived.
    let metrics = metrics(&hub);
    assert!(
        metrics.contains("\nkizuna_detect_hits_total 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nkizuna_detect_observations_total 1\n"),
        "{metrics}"
    );
}

fn metrics(hub: &common::Hub) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        hub.client()
            .get(format!("{}/metrics", hub.url))
            .basic_auth("admin", Some(common::ADMIN_PASSWORD))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    })
}
