//! `kizuna serve` runs federation on schedule: two hub processes, B pulling from A every 0.2 s
//! (a `[[partner]]` in B's `kizuna.toml`, A's certificate pinned). What A receives appears at B; a
//! RED object never does (A serves B's account only what its clearance allows); B's `/metrics`
//! shows the sync status of the partner.

#![allow(clippy::unwrap_used)] // a test fails loudly on bad test data

mod common;

use common::{ADMIN_PASSWORD, Hub, TAXII, indicator, kizuna};

/// Tries of a poll, each after a short wait: generous for a loaded 2-core machine.
const TRIES: u32 = 600;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn post(hub: &Hub, client: &reqwest::Client, objects: Vec<serde_json::Value>) {
    let resp = client
        .post(format!("{}/hub/collections/shared/objects/", hub.url))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("Accept", TAXII)
        .header("Content-Type", TAXII)
        .body(serde_json::json!({ "objects": objects }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
}

/// Whether the hub's shared collection holds `id` (read as admin).
async fn holds(hub: &Hub, client: &reqwest::Client, id: &str) -> bool {
    let resp = client
        .get(format!("{}/hub/collections/shared/objects/{id}/", hub.url))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("Accept", TAXII)
        .send()
        .await
        .unwrap();
    match resp.status().as_u16() {
        200 => {
            let body: serde_json::Value = resp.json().await.unwrap();
            body["objects"].as_array().is_some_and(|o| !o.is_empty())
        }
        404 => false,
        s => panic!("unexpected status {s}"),
    }
}

/// Waits (bounded) until the hub holds `id`.
async fn wait_for(hub: &Hub, client: &reqwest::Client, id: &str) {
    for _ in 0..TRIES {
        if holds(hub, client, id).await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{id} never arrived at {}", hub.url);
}

#[test]
fn serve_pulls_from_partner_on_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let (a_data, b_data) = (dir.path().join("a"), dir.path().join("b"));
    let a_config = dir.path().join("a.toml");
    std::fs::write(&a_config, "").unwrap();
    let a = Hub::start_with_config(&a_data, Some(ADMIN_PASSWORD), &a_config);
    let fingerprint = a
        .fingerprint()
        .expect("A printed its certificate fingerprint");

    // B's account at A: reads `shared`, clearance AMBER (so never RED).
    let (code, _, err) = kizuna(
        &a_data,
        &[
            "account",
            "add",
            "node-b",
            "--password-stdin",
            "--read",
            "shared",
            "--tlp-clearance",
            "amber",
        ],
        Some("node-b-password-0123456789\n"),
    );
    assert_eq!(code, 0, "{err}");
    let pw = dir.path().join("b-at-a.pw");
    std::fs::write(&pw, "node-b-password-0123456789\n").unwrap();

    let b_config = dir.path().join("b.toml");
    std::fs::write(
        &b_config,
        format!(
            r#"[sync]
interval_seconds = 0.2

[[partner]]
name = "node-a"
url = "{url}/taxii2/"
pinned_sha256 = "{fingerprint}"
auth = {{ username = "node-b", password_file = "{pw}" }}
page_size = 50

[[partner.pull]]
remote = "shared"
local = "shared"
"#,
            url = a.url,
            pw = pw.display()
        ),
    )
    .unwrap();
    let b = Hub::start_with_config(&b_data, Some(ADMIN_PASSWORD), &b_config);

    runtime().block_on(async {
        let (ca, cb) = (a.client(), b.client());
        let first = indicator(0x5e7e, 1);
        post(&a, &ca, vec![first.clone()]).await;
        wait_for(&b, &cb, first["id"].as_str().unwrap()).await;

        // RED at A, then a GREEN marker: once the marker is at B, a round has read past the RED.
        let mut red = indicator(0x5e7e, 2);
        red["object_marking_refs"] =
            serde_json::json!(["marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"]);
        post(&a, &ca, vec![red.clone()]).await;
        assert!(holds(&a, &ca, red["id"].as_str().unwrap()).await);
        let marker = indicator(0x5e7e, 3);
        post(&a, &ca, vec![marker.clone()]).await;
        wait_for(&b, &cb, marker["id"].as_str().unwrap()).await;
        assert!(
            !holds(&b, &cb, red["id"].as_str().unwrap()).await,
            "the RED object left A"
        );

        // B's /metrics shows the partner's sync status.
        let text = cb
            .get(format!("{}/metrics", b.url))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for series in [
            "kizuna_sync_last_success_timestamp_seconds{partner=\"node-a\"} ",
            "kizuna_sync_lag_seconds{partner=\"node-a\"} ",
            "kizuna_sync_last_run_failed{partner=\"node-a\"} 0",
            "kizuna_sync_errors_total{partner=\"node-a\"} ",
            "kizuna_sync_pulled_objects_total{partner=\"node-a\"} ",
        ] {
            assert!(text.contains(series), "{series} missing from:\n{text}");
        }
    });
}
