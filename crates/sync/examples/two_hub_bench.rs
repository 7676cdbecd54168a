//! Two Kizuna hubs on this machine (TLS, pinned certificates): how long until N objects added at
//! `mod` are at `dod`, by push and by pull, and, for a trickle of new objects with a 1 s sync
//! interval, how long until each one is at the partner.
//!
//! `cargo run -p kizuna-sync --example two_hub_bench -- [N] [TRICKLE]` (default 100000 and 50).

#![allow(clippy::unwrap_used)] // a benchmark fails loudly

use std::sync::Arc;
use std::time::{Duration, Instant};

use kizuna_stix::{ObjectMeta, Tlp};
use kizuna_store::{
    ApiRoot, Collection, NewAccount, NewObject, Permission, SqliteStore, Store, hash_password,
};
use kizuna_sync::config::AuthConfig;
use kizuna_sync::state::SyncDb;
use kizuna_sync::{PartnerConfig, PullMapping, PushMapping, SyncEngine, SyncOptions};
use kizuna_taxii::{AppState, RunningServer, ServerConfig, ServiceConfig, TlsMode};
use serde_json::json;

const OUTBOX: &str = "0b3a6c1e-5d2f-4e8a-9c7b-1a2b3c4d5e01";
const INBOX: &str = "0b3a6c1e-5d2f-4e8a-9c7b-1a2b3c4d5e02";
const PULLED: &str = "0b3a6c1e-5d2f-4e8a-9c7b-1a2b3c4d5e03";
const PASSWORD: &str = "bench password";

struct Hub {
    store: Arc<SqliteStore>,
    server: RunningServer,
    dir: tempfile::TempDir,
}

async fn hub(partner: &str) -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    store
        .create_api_root(&ApiRoot {
            name: "hub".into(),
            title: "hub".into(),
            description: None,
            max_content_length: 8 << 20,
        })
        .unwrap();
    for (id, alias) in [(OUTBOX, "outbox"), (INBOX, "inbox"), (PULLED, "pulled")] {
        store
            .create_collection(&Collection {
                api_root: "hub".into(),
                id: id.into(),
                title: alias.into(),
                description: None,
                alias: Some(alias.into()),
                media_types: vec!["application/stix+json;version=2.1".into()],
            })
            .unwrap();
    }
    store
        .create_account(&NewAccount {
            name: partner.into(),
            password_hash: Some(hash_password(PASSWORD).unwrap()),
            tlp_clearance: Tlp::Amber,
            admin: false,
        })
        .unwrap();
    for coll in [OUTBOX, INBOX] {
        store
            .set_permission(
                partner,
                &Permission {
                    api_root: "hub".into(),
                    collection: coll.into(),
                    read: true,
                    write: true,
                },
            )
            .unwrap();
    }
    let service = ServiceConfig {
        rate_per_second: 1e6,
        rate_burst: 1e6,
        max_page_size: 1000,
        ..ServiceConfig::default()
    };
    let state = AppState::new(store.clone(), service).unwrap();
    let config = ServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        TlsMode::SelfSigned {
            dir: dir.path().to_owned(),
            client_ca: None,
        },
    );
    let server = kizuna_taxii::start(config, state).await.unwrap();
    Hub { store, server, dir }
}

fn indicator(n: usize) -> serde_json::Value {
    json!({
        "type": "indicator", "spec_version": "2.1",
        "id": format!("indicator--7a1c0000-0000-4000-8000-{n:012}"),
        "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
        "name": format!("bench indicator {n}"),
        "pattern": format!("[domain-name:value = 'bad{n}.example']"), "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
        "object_marking_refs": [Tlp::Green.marking_id()]
    })
}

fn add(store: &SqliteStore, alias: &str, range: std::ops::Range<usize>) {
    let coll = store.collection("hub", alias).unwrap().unwrap().as_ref();
    let objs: Vec<NewObject> = range
        .map(|n| {
            let v = indicator(n);
            NewObject {
                meta: ObjectMeta::from_value(&v).unwrap(),
                json: v.to_string(),
            }
        })
        .collect();
    for chunk in objs.chunks(5000) {
        store.add_objects(&coll, chunk.to_vec()).unwrap();
    }
}

fn partner(of: &Hub, pw: &std::path::Path) -> PartnerConfig {
    let mut p = PartnerConfig::new("peer", format!("{}/taxii2/", of.server.url()));
    p.pinned_sha256 = Some(hex::encode(of.server.certificate_fingerprint().unwrap().0));
    p.auth = AuthConfig {
        username: Some("mod".into()),
        password_file: Some(pw.to_owned()),
        ..Default::default()
    };
    p.page_size = 1000;
    p
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let trickle: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let modh = hub("dod").await;
    let dod = hub("mod").await;
    let pw = modh.dir.path().join("pw");
    std::fs::write(&pw, PASSWORD).unwrap();
    add(&modh.store, "outbox", 0..n);
    println!("{n} GREEN indicators in mod's outbox");

    // Push: mod -> dod.
    let db = Arc::new(SyncDb::open(modh.dir.path()).unwrap());
    let engine = Arc::new(SyncEngine::new(
        modh.store.clone(),
        db,
        SyncOptions::default(),
    ));
    let mut push = partner(&dod, &pw);
    push.push.push(PushMapping {
        local: "outbox".into(),
        remote: INBOX.into(),
        local_api_root: None,
    });
    let t = Instant::now();
    let r = engine.sync_partner(&push).await.unwrap();
    let inbox = dod
        .store
        .collection("hub", "inbox")
        .unwrap()
        .unwrap()
        .as_ref();
    assert_eq!(dod.store.count_objects(&inbox).unwrap() as usize, n);
    let secs = t.elapsed().as_secs_f64();
    println!(
        "push: {n} objects at dod in {secs:.2} s ({:.0} objects/s, {} envelopes)",
        n as f64 / secs,
        r.pushes[0].1.envelopes
    );

    // Pull: dod pulls mod's outbox.
    let db2 = Arc::new(SyncDb::open(dod.dir.path()).unwrap());
    let engine2 = SyncEngine::new(dod.store.clone(), db2, SyncOptions::default());
    let mut pull = partner(&modh, &pw);
    pull.auth.username = Some("dod".into());
    pull.pull.push(PullMapping {
        remote: OUTBOX.into(),
        local: "pulled".into(),
        local_api_root: None,
        mirror_deletions: false,
    });
    let t = Instant::now();
    let r = engine2.sync_partner(&pull).await.unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "pull: {} objects at dod in {secs:.2} s ({:.0} objects/s, {} pages)",
        r.pulls[0].1.added,
        r.pulls[0].1.added as f64 / secs,
        r.pulls[0].1.pages
    );

    // Trickle: one object at a time, sync every second, latency until it is at dod.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn(engine.clone().run_periodically(
        vec![push.clone()],
        Duration::from_secs(1),
        async move {
            let _ = stopped.await;
        },
    ));
    let mut latencies = Vec::new();
    for i in 0..trickle {
        let k = n + i;
        let id = format!("indicator--7a1c0000-0000-4000-8000-{k:012}");
        add(&modh.store, "outbox", k..k + 1);
        let t = Instant::now();
        loop {
            let q = kizuna_store::ObjectQuery {
                ids: vec![id.clone()],
                limit: 1,
                clearance: Tlp::Red,
                unmarked_as: Tlp::Red,
                ..Default::default()
            };
            if !dod.store.objects(&inbox, &q).unwrap().records.is_empty() {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "object {k} never arrived"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        latencies.push(t.elapsed());
        // Spread additions over the sync interval.
        tokio::time::sleep(Duration::from_millis(137 * (i as u64 % 7))).await;
    }
    let _ = stop.send(());
    let _ = runner.await;
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "trickle: {trickle} objects, 1 s interval: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
    dod.server.shutdown().await;
    modh.server.shutdown().await;
}
