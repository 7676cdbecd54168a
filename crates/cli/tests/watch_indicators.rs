//! The watched directories of `kizuna serve` follow the hub's indicators: one deleted over TAXII
//! stops producing sightings in the next round while ones added in the same round start, and
//! patterns binding several observations are matched across the lines of a watched directory
//! (counted as hits; such a sighting cannot be reduced to one observation, so it is reported,
//! not written, as with `kizuna scan --hub`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{indicator_id, kizuna, pattern_indicator as indicator};
use serde_json::{Value, json};

/// One observation as a JSON line, newline included (appended to a watched log).
fn line(n: u32, second: u32, kind: &str, value: &str) -> String {
    format!("{}\n", common::observation_line(n, second, kind, value))
}

fn append(file: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Runs `f` on a one-thread runtime.
fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn sightings(hub: &common::Hub) -> Vec<Value> {
    block_on(common::taxii_sightings(hub, &hub.client()))
}

/// The indicators each sighting is of, sorted.
fn sighted(found: &[Value]) -> Vec<String> {
    let mut of: Vec<String> = found
        .iter()
        .map(|s| s["sighting_of_ref"].as_str().unwrap().to_owned())
        .collect();
    of.sort();
    of
}

/// Polls (bounded: 60 s) until `ok` holds of the sightings served.
fn wait_for(hub: &common::Hub, what: &str, ok: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    for _ in 0..600 {
        let found = sightings(hub);
        if ok(&found) {
            return found;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!(
        "not within 60 s: {what}; sightings: {:?}",
        sighted(&sightings(hub))
    );
}

/// Polls (bounded: 60 s) until the watcher matches `n` indicators.
fn wait_for_indicators(hub: &common::Hub, n: u64) {
    wait_for_metric(hub, &format!("kizuna_detect_indicators {n}"));
}

/// Polls (bounded: 60 s) until `/metrics` has the line `want`.
fn wait_for_metric(hub: &common::Hub, want: &str) {
    let want = format!("\n{want}\n");
    for _ in 0..600 {
        let metrics = block_on(async {
            hub.client()
                .get(format!("{}/metrics", hub.url))
                .basic_auth("admin", Some(common::ADMIN_PASSWORD))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        });
        if metrics.contains(&want) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("never in /metrics within 60 s: {want}");
}

#[test]
fn deleted_indicators_stop_and_added_ones_start_and_patterns_span_lines() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("indicators.json");
    let followed = "([ipv4-addr:value = '198.51.100.7'] FOLLOWEDBY \
                    [domain-name:value = 'evil.example']) WITHIN 60 SECONDS";
    std::fs::write(
        &file,
        json!([
            indicator(1, "[domain-name:value = 'one.example']"),
            indicator(3, followed),
        ])
        .to_string(),
    )
    .unwrap();
    let (code, _, err) = kizuna(
        &data,
        &["import", "--collection", "shared", file.to_str().unwrap()],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let log = logs.join("observations.jsonl");
    append(&log, &line(1, 0, "domain-name", "one.example"));
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
    wait_for(&hub, "one.example sighted", |s| s.len() == 1);

    // Two lines of two rounds, 30 seconds apart, complete the FOLLOWEDBY: a hit, not written.
    append(&log, &line(2, 10, "ipv4-addr", "198.51.100.7"));
    wait_for_metric(&hub, "kizuna_detect_observations_total 2");
    append(&log, &line(3, 40, "domain-name", "evil.example"));
    wait_for_metric(&hub, "kizuna_detect_hits_total 2");
    wait_for_metric(&hub, "kizuna_detect_observations_total 3");
    assert_eq!(sightings(&hub).len(), 1);

    // Delete indicator 1 and add indicators 2 and 4 over TAXII: the watcher matches 3 only
    // once it has applied both (the deletion alone gives 1, the additions alone 4).
    block_on(async {
        let client = hub.client();
        let url = format!("{}/hub/collections/shared/objects/", hub.url);
        let resp = client
            .delete(format!("{url}{}/", indicator_id(1)))
            .basic_auth("admin", Some(common::ADMIN_PASSWORD))
            .header("Accept", common::TAXII)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body = json!({"objects": [
            indicator(2, "[domain-name:value = 'two.example']"),
            indicator(4, "[domain-name:value = 'four.example']"),
        ]});
        let resp = client
            .post(&url)
            .basic_auth("admin", Some(common::ADMIN_PASSWORD))
            .header("Accept", common::TAXII)
            .header("Content-Type", common::TAXII)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
    });
    wait_for_indicators(&hub, 3);
    // one.example, then two.example: once the second is sighted, the first line was matched.
    append(&log, &line(4, 50, "domain-name", "one.example"));
    append(&log, &line(5, 55, "domain-name", "two.example"));
    let found = wait_for(&hub, "two.example sighted", |s| {
        s.iter()
            .any(|s| s["sighting_of_ref"] == indicator_id(2).as_str())
    });
    assert_eq!(
        sighted(&found),
        vec![indicator_id(1), indicator_id(2)],
        "the deleted indicator sighted again"
    );
}
