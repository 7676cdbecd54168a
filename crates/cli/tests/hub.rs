//! End-to-end tests of the `kizuna` binary as an operator runs it: first run, accounts,
//! import/export, and crash safety of acknowledged writes.

// Test code: a failed unwrap is a failed test with its location.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;

use common::{ADMIN_PASSWORD, Hub, TAXII, indicator, kizuna};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    user: &str,
    password: &str,
    objects: Vec<serde_json::Value>,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(url)
        .basic_auth(user, Some(password))
        .header("Accept", TAXII)
        .header("Content-Type", TAXII)
        .body(serde_json::json!({ "objects": objects }).to_string())
        .send()
        .await
}

/// Reads every object id of the default collection, following `next` tokens.
async fn all_ids(hub: &Hub, client: &reqwest::Client) -> HashSet<String> {
    let base = format!("{}/hub/collections/shared/objects/", hub.url);
    let mut ids = HashSet::new();
    let mut next: Option<String> = None;
    loop {
        let mut req = client
            .get(&base)
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .header("Accept", TAXII)
            .query(&[("limit", "1000")]);
        if let Some(n) = &next {
            req = req.query(&[("next", n.as_str())]);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let body: serde_json::Value = resp.json().await.unwrap();
        for o in body["objects"].as_array().into_iter().flatten() {
            assert!(
                ids.insert(o["id"].as_str().unwrap().to_owned()),
                "repeated object"
            );
        }
        match body["next"].as_str() {
            Some(n) if body["more"] == true => next = Some(n.to_owned()),
            _ => break,
        }
    }
    ids
}

#[test]
fn first_run_prints_a_generated_admin_password_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let hub = Hub::start(&data, None);
    let said = hub.stderr_lines.join("");
    assert!(said.contains("admin password (shown once"), "{said}");
    assert!(data.join("tls/cert.pem").exists());
    hub.kill();
    let again = Hub::start(&data, None);
    let said = again.stderr_lines.join("");
    assert!(!said.contains("admin password"), "{said}");
}

#[test]
fn acknowledged_posts_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rt = runtime();
    let hub = Hub::start(&data, Some(ADMIN_PASSWORD));
    let client = hub.client();
    let url = format!("{}/hub/collections/shared/objects/", hub.url);
    // A writer POSTs envelopes back to back; the test kills the server with SIGKILL once 30 have
    // been acknowledged, while the writer keeps sending.
    let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel::<Vec<String>>();
    let writer = {
        let client = client.clone();
        let url = url.clone();
        rt.spawn(async move {
            for batch in 0u32..400 {
                let objects: Vec<_> = (0..50).map(|i| indicator(7, batch * 50 + i)).collect();
                let ids = objects
                    .iter()
                    .map(|o| o["id"].as_str().unwrap().to_owned())
                    .collect();
                match post(&client, &url, "admin", ADMIN_PASSWORD, objects).await {
                    Ok(resp) if resp.status() == 202 => {
                        let status: serde_json::Value = match resp.json().await {
                            Ok(s) => s,
                            Err(_) => return,
                        };
                        assert_eq!(status["success_count"], 50, "{status}");
                        if acked_tx.send(ids).is_err() {
                            return;
                        }
                    }
                    Ok(resp) => panic!("unexpected status {}", resp.status()),
                    Err(_) => return, // the server is gone
                }
            }
        })
    };
    let mut acked: Vec<String> = Vec::new();
    rt.block_on(async {
        for _ in 0..30 {
            acked.extend(acked_rx.recv().await.expect("writer stopped early"));
        }
    });
    hub.kill();
    rt.block_on(writer).unwrap();
    // Whatever the writer saw acknowledged after the 30th answer counts too.
    while let Ok(ids) = acked_rx.try_recv() {
        acked.extend(ids);
    }
    let hub = Hub::start(&data, Some(ADMIN_PASSWORD));
    let client = hub.client();
    let stored = rt.block_on(all_ids(&hub, &client));
    let missing: Vec<_> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged objects lost after SIGKILL, e.g. {:?}",
        missing.len(),
        acked.len(),
        missing.first()
    );
}

#[test]
fn accounts_import_export_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // An account needs a credential.
    let (code, _, err) = kizuna(&data, &["account", "add", "nobody"], None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("needs a credential"), "{err}");
    let (code, out, err) = kizuna(
        &data,
        &[
            "account",
            "add",
            "mod-jp",
            "--password-stdin",
            "--read",
            "shared",
            "--write",
            "shared",
            "--tlp-clearance",
            "amber",
        ],
        Some("partner-password-1234\n"),
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = kizuna(
        &data,
        &["account", "add", "feed", "--api-key", "--read", "shared"],
        None,
    );
    assert_eq!(code, 0);
    assert!(out.contains("API key"), "{out}");
    let (_, list, _) = kizuna(&data, &["account", "list"], None);
    assert!(
        list.contains("mod-jp") && list.contains("amber") && list.contains("feed"),
        "{list}"
    );

    // Import: two valid objects and one invalid one; the valid ones are stored, the invalid one is
    // reported with its location, and the exit status says something was wrong.
    let file = dir.path().join("bundle.json");
    let mut bad = indicator(9, 3);
    bad["pattern"] = serde_json::json!("[ipv4-addr:value = ");
    let bundle = serde_json::json!({
        "type": "bundle",
        "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d",
        "objects": [indicator(9, 1), indicator(9, 2), bad],
    });
    std::fs::write(&file, serde_json::to_string_pretty(&bundle).unwrap()).unwrap();
    let (code, _, err) = kizuna(
        &data,
        &["import", file.to_str().unwrap(), "--collection", "shared"],
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("2 added") && err.contains("1 invalid"),
        "{err}"
    );
    assert!(
        err.contains("pattern"),
        "the problem names the property: {err}"
    );
    // Importing again stores nothing new and is not an error for the valid objects.
    let (_, _, err) = kizuna(
        &data,
        &["import", file.to_str().unwrap(), "--collection", "shared"],
        None,
    );
    assert!(err.contains("0 added, 2 already present"), "{err}");

    let (code, out, err) = kizuna(&data, &["export", "--collection", "shared"], None);
    assert_eq!(code, 0, "{err}");
    let exported: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(exported.len(), 2);
    assert_eq!(
        exported[0],
        indicator(9, 1),
        "objects come back as they went in"
    );

    let (code, out, _) = kizuna(&data, &["audit", "--action", "admin"], None);
    assert_eq!(code, 0);
    assert!(out.contains("mod-jp"), "{out}");
}

/// Every object version a hub serves is found by `kizuna audit` by object, by account and by
/// time, one line per version, although the hub logs one event per response (a page of many
/// versions is one row of the log).
#[test]
fn audit_finds_every_version_served_by_object_account_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (code, out, err) = kizuna(
        &data,
        &[
            "account",
            "add",
            "reader",
            "--password-stdin",
            "--read",
            "shared",
            "--tlp-clearance",
            "amber",
        ],
        Some("reader-password-1234\n"),
    );
    assert_eq!(code, 0, "{out}{err}");
    let file = dir.path().join("bundle.json");
    let bundle = serde_json::json!({
        "type": "bundle",
        "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56e",
        "objects": (0..5).map(|n| indicator(3, n)).collect::<Vec<_>>(),
    });
    std::fs::write(&file, bundle.to_string()).unwrap();
    let (code, _, err) = kizuna(
        &data,
        &["import", file.to_str().unwrap(), "--collection", "shared"],
        None,
    );
    assert_eq!(code, 0, "{err}");

    let hub = Hub::start(&data, Some(ADMIN_PASSWORD));
    let client = hub.client();
    let rt = runtime();
    let objects = format!("{}/hub/collections/shared/objects/", hub.url);
    let wanted = indicator(3, 2)["id"].as_str().unwrap().to_owned();
    rt.block_on(async {
        // Two pages of the whole collection, then the one object by its own endpoint.
        for url in [
            objects.clone(),
            objects.clone(),
            format!("{objects}{wanted}/"),
        ] {
            let resp = client
                .get(&url)
                .basic_auth("reader", Some("reader-password-1234"))
                .header("Accept", TAXII)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{url}");
        }
    });
    // A graceful stop commits the audit events of every read answered.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &hub.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut hub = hub;
    assert!(hub.child.wait().unwrap().success());

    let served_lines = |args: &[&str]| {
        let mut all = vec!["audit", "--action", "serve"];
        all.extend_from_slice(args);
        let (code, out, err) = kizuna(&data, &all, None);
        assert_eq!(code, 0, "{err}");
        out.lines().map(str::to_owned).collect::<Vec<_>>()
    };
    let by_object = served_lines(&["--object", &wanted]);
    assert_eq!(by_object.len(), 3, "{by_object:?}");
    assert!(
        by_object.iter().all(|l| l.contains(" reader ")
            && l.contains(&wanted)
            && l.contains("2026-11-26T00:00:00")),
        "{by_object:?}"
    );
    assert!(
        by_object[2].contains(&format!("object:{wanted}")),
        "{by_object:?}"
    );
    let by_account = served_lines(&["--account", "reader"]);
    assert_eq!(by_account.len(), 5 + 5 + 1, "{by_account:?}");
    for n in 0..5 {
        let id = indicator(3, n)["id"].as_str().unwrap().to_owned();
        assert!(by_account.iter().any(|l| l.contains(&id)), "{id} not found");
    }
    assert!(served_lines(&["--account", "admin"]).is_empty());
    assert_eq!(served_lines(&["--since", "2000-01-01T00:00:00Z"]).len(), 11);
    assert!(served_lines(&["--since", "2999-01-01T00:00:00Z"]).is_empty());
    assert_eq!(
        served_lines(&["--object", &wanted, "--limit", "2"]).len(),
        2
    );
}

/// Every object version written over TAXII is found by `kizuna audit --object`, one line per
/// version, although the hub logs one write event per envelope; an exact duplicate sent again is
/// not a write.
#[test]
fn audit_finds_every_version_written_by_object_although_logged_per_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let hub = Hub::start(&data, Some(ADMIN_PASSWORD));
    let client = hub.client();
    let rt = runtime();
    let objects = format!("{}/hub/collections/shared/objects/", hub.url);
    let mut newer = indicator(4, 1);
    newer["modified"] = serde_json::json!("2026-11-27T00:00:00.000Z");
    let envelopes = [
        (0..3).map(|n| indicator(4, n)).collect::<Vec<_>>(),
        // A duplicate, a new object and a new version of an object already written.
        vec![indicator(4, 0), indicator(4, 3), newer],
    ];
    rt.block_on(async {
        for envelope in envelopes {
            let resp = post(&client, &objects, "admin", ADMIN_PASSWORD, envelope)
                .await
                .unwrap();
            assert_eq!(resp.status(), 202);
            let status: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(status["success_count"], 3, "{status}");
        }
    });
    // Writes are committed before the 202: no graceful stop needed to find them.
    drop(hub);

    let audit = |args: &[&str]| {
        let mut all = vec!["audit"];
        all.extend_from_slice(args);
        let (code, out, err) = kizuna(&data, &all, None);
        assert_eq!(code, 0, "{err}");
        out.lines().map(str::to_owned).collect::<Vec<_>>()
    };
    let id = |n: u32| indicator(4, n)["id"].as_str().unwrap().to_owned();
    for n in [0, 2, 3] {
        let lines = audit(&["--object", &id(n)]);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains(" write ")
                && lines[0].contains(" admin ")
                && lines[0].contains(&format!(" {} 2026-11-26T00:00:00", id(n))),
            "{lines:?}"
        );
    }
    let versions = audit(&["--object", &id(1)]);
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert!(versions[0].contains(" 2026-11-26T00:00:00"), "{versions:?}");
    assert!(versions[1].contains(" 2026-11-27T00:00:00"), "{versions:?}");
    assert_eq!(audit(&["--action", "write"]).len(), 5);
    assert_eq!(audit(&["--action", "write", "--account", "admin"]).len(), 5);
    assert_eq!(audit(&["--action", "write", "--limit", "4"]).len(), 4);
}
