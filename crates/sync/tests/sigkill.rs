//! Fault test: the partner hub is killed with SIGKILL in the middle of a page.
//!
//! The partner is a real Kizuna hub (`kizuna_taxii::start` over a `SqliteStore`) running in a child
//! process: this very test binary, re-executed with `KIZUNA_SIGKILL_HUB_DIR` set, which makes the
//! `hub_child_process` test serve that data directory instead of returning at once. Between the
//! engine and the partner sits a small TCP proxy that counts the objects requests; when the
//! `KILL_AT`-th one is answered it forwards only the first bytes of the answer, tells the test,
//! which SIGKILLs the partner, and then cuts the connection: the engine sees a page cut short by a
//! dead partner. The partner is then restarted on the same data directory and the sync run again:
//! every object version must be present exactly once locally, none skipped.
//!
//! No sleeps synchronise anything: the child announces its port on stdout, the proxy signals the
//! moment to kill through a channel, and `Child::wait` observes the death.

#![allow(clippy::unwrap_used)] // a test fails loudly on bad test data
#![cfg(target_os = "linux")] // SIGKILL, and /proc/self/fd for the child's announcement

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kizuna_stix::{ObjectMeta, Tlp};
use kizuna_store::{
    ApiRoot, Collection, NewAccount, NewObject, ObjectQuery, Permission, SqliteStore, Store,
    VersionFilter, hash_password,
};
use kizuna_sync::config::AuthConfig;
use kizuna_sync::retry::RetryPolicy;
use kizuna_sync::state::SyncDb;
use kizuna_sync::{PartnerConfig, PullMapping, SyncEngine, SyncOptions};
use kizuna_taxii::{AppState, ServerConfig, ServiceConfig, TlsMode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CHILD_ENV: &str = "KIZUNA_SIGKILL_HUB_DIR";
const PORT_LINE: &str = "KIZUNA_HUB_PORT=";
const SHARED: &str = "0b3a6c1e-5d2f-4e8a-9c7b-1a2b3c4d5e01";
const PASSWORD: &str = "correct horse battery staple";
/// Objects, each in `VERSIONS` versions, added in batches of `BATCH` (so that pages carry
/// different `date_added` instants).
const OBJECTS: u32 = 120;
const VERSIONS: u32 = 2;
const BATCH: usize = 12;
/// Objects per page asked by the puller: 240 versions make about 35 pages.
const PAGE: usize = 7;
/// The objects request whose answer is cut by the kill.
const KILL_AT: usize = 12;

/// Not a test of its own: the partner hub when re-executed by `partner_killed_mid_page`
/// (returns at once otherwise).
#[test]
fn hub_child_process() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = Arc::new(SqliteStore::open(Path::new(&dir)).unwrap());
        let state = AppState::new(store, ServiceConfig::default()).unwrap();
        let config =
            ServerConfig::new("127.0.0.1:0".parse().unwrap(), TlsMode::DangerPlaintextHttp);
        let server = kizuna_taxii::start(config, state).await.unwrap();
        // Straight to file descriptor 1, the parent's pipe: the test harness captures what goes
        // through `std::io::stdout`.
        let line = format!("{PORT_LINE}{}\n", server.local_addr().port());
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .open("/proc/self/fd/1")
            .unwrap();
        out.write_all(line.as_bytes()).unwrap();
        out.flush().unwrap();
        drop(out);
        // Serves until killed.
        std::future::pending::<()>().await;
    });
}

/// The partner process, SIGKILLed when dropped (so that a failing test leaves no server behind).
struct Partner(Child);

impl Drop for Partner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the partner hub over `dir` in a child process; returns it and its address.
fn start_partner(dir: &Path) -> (Partner, SocketAddr) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "hub_child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Partner(child);
    let mut port = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        // The harness may print `test hub_child_process ... ` on the same line first.
        if let Some((_, p)) = line.split_once(PORT_LINE) {
            port = Some(p.trim().parse::<u16>().unwrap());
            break;
        }
    }
    let port = port.expect("the partner hub did not announce its port");
    (child, SocketAddr::from(([127, 0, 0, 1], port)))
}

fn object(n: u32, version: u32) -> Value {
    json!({
        "type": "indicator", "spec_version": "2.1",
        "id": format!("indicator--7a1c0000-0000-4000-8000-{n:012}"),
        "created": "2026-01-01T00:00:00.000Z",
        "modified": format!("2026-01-{:02}T00:00:00.000Z", version + 1),
        "name": format!("indicator {n} v{version}"),
        "pattern": format!("[domain-name:value = 'bad{n}.example']"), "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
        "object_marking_refs": [Tlp::Green.marking_id()],
    })
}

/// The partner's data: a `shared` collection with every version, and an account for us.
fn prepare_partner(dir: &Path) -> BTreeSet<(String, String)> {
    let store = SqliteStore::open(dir).unwrap();
    store
        .create_api_root(&ApiRoot {
            name: "hub".into(),
            title: "hub".into(),
            description: None,
            max_content_length: 1 << 20,
        })
        .unwrap();
    store
        .create_collection(&Collection {
            api_root: "hub".into(),
            id: SHARED.into(),
            title: "shared".into(),
            description: None,
            alias: Some("shared".into()),
            media_types: vec!["application/stix+json;version=2.1".into()],
        })
        .unwrap();
    store
        .create_account(&NewAccount {
            name: "mod".into(),
            password_hash: Some(hash_password(PASSWORD).unwrap()),
            tlp_clearance: Tlp::Amber,
            admin: false,
        })
        .unwrap();
    store
        .set_permission(
            "mod",
            &Permission {
                api_root: "hub".into(),
                collection: SHARED.into(),
                read: true,
                write: false,
            },
        )
        .unwrap();
    let coll = store.collection("hub", "shared").unwrap().unwrap().as_ref();
    let mut expected = BTreeSet::new();
    let all: Vec<Value> = (1..=VERSIONS)
        .flat_map(|v| (1..=OBJECTS).map(move |n| object(n, v)))
        .collect();
    for batch in all.chunks(BATCH) {
        let new: Vec<NewObject> = batch
            .iter()
            .map(|o| {
                expected.insert((
                    o["id"].as_str().unwrap().to_owned(),
                    o["modified"].as_str().unwrap().to_owned(),
                ));
                NewObject {
                    meta: ObjectMeta::from_value(o).unwrap(),
                    json: o.to_string(),
                }
            })
            .collect();
        for outcome in store.add_objects(&coll, new).unwrap().outcomes {
            assert_eq!(outcome, kizuna_store::AddOutcome::Added);
        }
    }
    expected
}

/// A local hub store with an `inbox` collection.
fn local_store(dir: &Path) -> Arc<SqliteStore> {
    let store = Arc::new(SqliteStore::open(dir).unwrap());
    store
        .create_api_root(&ApiRoot {
            name: "hub".into(),
            title: "hub".into(),
            description: None,
            max_content_length: 1 << 20,
        })
        .unwrap();
    store
        .create_collection(&Collection {
            api_root: "hub".into(),
            id: "0b3a6c1e-5d2f-4e8a-9c7b-1a2b3c4d5e02".into(),
            title: "inbox".into(),
            description: None,
            alias: Some("inbox".into()),
            media_types: vec!["application/stix+json;version=2.1".into()],
        })
        .unwrap();
    store
}

/// Every (id, modified) the local inbox holds, with how many times.
fn held(store: &SqliteStore) -> BTreeMap<(String, String), u32> {
    let coll = store.collection("hub", "inbox").unwrap().unwrap().as_ref();
    let mut out = BTreeMap::new();
    let mut after = None;
    for _ in 0..1000 {
        let page = store
            .objects(
                &coll,
                &ObjectQuery {
                    after_seq: after,
                    limit: 1000,
                    versions: VersionFilter::All,
                    clearance: Tlp::Red,
                    unmarked_as: Tlp::Red,
                    ..Default::default()
                },
            )
            .unwrap();
        for r in &page.records {
            let v: Value = serde_json::from_str(&r.json).unwrap();
            let key = (
                v["id"].as_str().unwrap().to_owned(),
                v["modified"].as_str().unwrap().to_owned(),
            );
            *out.entry(key).or_insert(0) += 1;
        }
        after = page.records.last().map(|r| r.seq);
        if !page.more || after.is_none() {
            return out;
        }
    }
    panic!("the inbox never ended");
}

/// Whether `buf` holds a request to the objects endpoint (the puller's requests are GETs without
/// bodies, so request heads are whole in the client-to-partner stream).
fn count_object_requests(buf: &[u8]) -> usize {
    String::from_utf8_lossy(buf).matches("/objects/?").count()
}

/// A one-shot proxy to `upstream`: counts objects requests across connections; the answer to the
/// `KILL_AT`-th is forwarded only in part, then `kill_now` fires and the connection is cut once the
/// partner has died (its side of the connection ends).
async fn proxy(
    upstream: SocketAddr,
    kill_now: tokio::sync::mpsc::UnboundedSender<()>,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let Ok(server) = TcpStream::connect(upstream).await else {
                // The partner is dead: refuse by closing.
                continue;
            };
            let (requests, kill_now) = (requests.clone(), kill_now.clone());
            tokio::spawn(async move {
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                // Set to the request count when the KILL_AT-th request went up this connection.
                let armed = Arc::new(AtomicUsize::new(0));
                let up_armed = armed.clone();
                let up = tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    // Request heads may be split across reads: keep the tail of the last one.
                    let mut tail: Vec<u8> = Vec::new();
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        let mut seen = tail.clone();
                        seen.extend_from_slice(&buf[..n]);
                        let found = count_object_requests(&seen) - count_object_requests(&tail);
                        tail = seen[seen.len().saturating_sub(16)..].to_vec();
                        for _ in 0..found {
                            if requests.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AT {
                                up_armed.store(1, Ordering::SeqCst);
                            }
                        }
                        if sw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if armed.load(Ordering::SeqCst) == 1 {
                        // No pipelining: everything from now on answers the KILL_AT-th request.
                        // Forward a part of it, have the partner killed, wait for its death.
                        let part = n.min(300) / 2;
                        let _ = cw.write_all(&buf[..part]).await;
                        let _ = cw.flush().await;
                        let _ = kill_now.send(());
                        while let Ok(n) = sr.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                        }
                        break;
                    }
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                up.abort();
                // Dropping both halves cuts the client's connection.
            });
        }
    });
    addr
}

fn partner(url: String, password_file: &Path) -> PartnerConfig {
    let mut p = PartnerConfig::new("dod", url);
    p.danger_plaintext_http = true;
    p.auth = AuthConfig {
        username: Some("mod".into()),
        password_file: Some(password_file.to_owned()),
        ..Default::default()
    };
    p.page_size = PAGE;
    p.timeout_secs = 30;
    p.pull.push(PullMapping {
        remote: SHARED.into(),
        local: "inbox".into(),
        local_api_root: None,
        mirror_deletions: false,
    });
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_killed_mid_page() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let partner_dir = tempfile::tempdir().unwrap();
    let expected = prepare_partner(partner_dir.path());
    assert_eq!(expected.len(), (OBJECTS * VERSIONS) as usize);

    let local_dir = tempfile::tempdir().unwrap();
    let store = local_store(local_dir.path());
    let db = Arc::new(SyncDb::open(local_dir.path()).unwrap());
    let options = SyncOptions {
        // One attempt per request: after the kill, the run ends quickly with an error instead of
        // retrying a dead partner.
        retry: RetryPolicy {
            attempts: 1,
            base: Duration::from_millis(10),
            max: Duration::from_millis(10),
        },
        ..SyncOptions::default()
    };
    let engine = SyncEngine::new(store.clone(), db.clone(), options);
    let pw = local_dir.path().join("pw");
    std::fs::write(&pw, PASSWORD).unwrap();

    // First run, through the killing proxy.
    let (mut child, upstream) = start_partner(partner_dir.path());
    let (kill_tx, mut kill_rx) = tokio::sync::mpsc::unbounded_channel();
    let via = proxy(upstream, kill_tx).await;
    let p = partner(format!("http://{via}/taxii2/"), &pw);
    let sync = engine.sync_partner(&p);
    tokio::pin!(sync);
    let first = tokio::select! {
        r = &mut sync => panic!("the pull ended before the kill: {r:?}"),
        Some(()) = kill_rx.recv() => {
            child.0.kill().unwrap(); // SIGKILL
            let status = tokio::task::block_in_place(|| child.0.wait().unwrap());
            assert!(!status.success(), "killed: {status:?}");
            sync.await
        }
    };
    assert!(first.is_err(), "the run must fail: {first:?}");
    let status = db.status("dod").unwrap();
    assert!(status.last_error.is_some(), "{status:?}");
    let before = held(&store);
    let stored: usize = before.values().map(|n| *n as usize).sum();
    assert!(
        stored >= (KILL_AT - 2) * PAGE && stored < expected.len(),
        "pages before the kill were stored, the rest not yet: {stored}"
    );
    assert!(before.values().all(|n| *n == 1), "no duplicates so far");

    // The partner restarts on the same data directory (a new port), and the sync resumes.
    let (child, upstream) = start_partner(partner_dir.path());
    let p = partner(format!("http://{upstream}/taxii2/"), &pw);
    let second = engine.sync_partner(&p).await;
    drop(child);
    let report = second.unwrap();
    let pull = &report.pulls[0].1;
    assert!(
        pull.added as usize + stored == expected.len(),
        "the rest was added, nothing twice: {pull:?}, {stored} before"
    );

    let after = held(&store);
    let keys: BTreeSet<(String, String)> = after.keys().cloned().collect();
    let missing: Vec<_> = expected.difference(&keys).collect();
    assert!(missing.is_empty(), "skipped: {missing:?}");
    let extra: Vec<_> = keys.difference(&expected).collect();
    assert!(extra.is_empty(), "unexpected: {extra:?}");
    let twice: Vec<_> = after.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "present more than once: {twice:?}");
    assert!(db.status("dod").unwrap().last_error.is_none());
}
