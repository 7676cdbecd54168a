//! Interop with the OASIS reference server, medallion 3.0.0 (PyPI), as a partner: the TAXII
//! client through every endpoint, then the sync engine pulling from and pushing to it.
//!
//! medallion comes from `scripts/peers.sh` (a venv in `target/py-venv`); without it this test
//! fails, naming the script, rather than skipping silently.

#![allow(clippy::unwrap_used)] // a test fails loudly on bad test data

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use kizuna_stix::Tlp;
use kizuna_store::{ApiRoot, Collection, ObjectQuery, SqliteStore, Store, VersionFilter};
use kizuna_sync::client::{
    Auth, ClientConfig, ObjectsQuery, Probe, Secret, TaxiiClient, base_url, pack_envelopes,
};
use kizuna_sync::config::AuthConfig;
use kizuna_sync::ledger::{LedgerStorage, verify};
use kizuna_sync::state::SyncDb;
use kizuna_sync::{
    EgressPolicy, Error, PartnerConfig, PullMapping, PushMapping, SyncEngine, SyncOptions,
};
use serde_json::{Value, json};

const COLL_RW: &str = "472c94ae-3113-4e3e-a4dd-a9f4ac7471d4";
const COLL_PULL: &str = "365fed99-08fa-fdcd-a1b3-fb247eb41d01";
const USER: &str = "kizuna";
const PASSWORD: &str = "medallion-test-password";

fn venv_bin() -> PathBuf {
    match std::env::var_os("KIZUNA_PYTHON") {
        Some(p) => PathBuf::from(p)
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default(),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/py-venv/bin"),
    }
}

/// A medallion process, killed when dropped.
struct Medallion {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Medallion {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Medallion {
    fn start(max_content_length: u64, page_size: usize) -> Medallion {
        let exe = venv_bin().join("medallion");
        assert!(
            exe.exists(),
            "medallion not found at {}: run scripts/peers.sh to install the Python peers \
             (or set KIZUNA_PYTHON to the venv's python)",
            exe.display()
        );
        let dir = tempfile::tempdir().unwrap();
        // Pick a free port: bind 127.0.0.1:0, note the port, release it.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let collection = |id: &str, title: &str| {
            json!({"id": id, "title": title, "can_read": true, "can_write": true,
                   "media_types": ["application/stix+json;version=2.1"],
                   "objects": [], "manifest": []})
        };
        let data = json!({
            "/discovery": {
                "title": "medallion for kizuna-sync tests",
                "description": "",
                "default": format!("{base}/api1/"),
                "api_roots": [format!("{base}/api1/")]
            },
            "api1": {
                "information": {
                    "title": "api1",
                    "versions": ["application/taxii+json;version=2.1"],
                    "max_content_length": max_content_length
                },
                "status": [],
                "collections": [collection(COLL_RW, "push here"), collection(COLL_PULL, "pull from here")]
            }
        });
        let data_path = dir.path().join("data.json");
        std::fs::write(&data_path, data.to_string()).unwrap();
        let config = json!({
            "backend": {"module_class": "MemoryBackend",
                        "module": "medallion.backends.memory_backend",
                        "filename": data_path},
            "users": {USER: PASSWORD},
            "taxii": {"max_page_size": page_size}
        });
        let config_path = dir.path().join("config.json");
        std::fs::write(&config_path, config.to_string()).unwrap();
        let log = dir.path().join("medallion.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(&exe)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg(&config_path)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        let mut m = Medallion {
            child,
            port,
            log,
            _dir: dir,
        };
        m.wait_ready();
        m
    }

    fn wait_ready(&mut self) {
        for _ in 0..300 {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("medallion exited early ({status}): {}", self.log_text());
            }
            if TcpStream::connect_timeout(
                &([127, 0, 0, 1], self.port).into(),
                Duration::from_millis(100),
            )
            .is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("medallion not listening after 30 s: {}", self.log_text());
    }

    fn log_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

fn client() -> TaxiiClient {
    TaxiiClient::new(&ClientConfig {
        auth: Auth::Basic {
            username: USER.into(),
            password: Secret::new(PASSWORD),
        },
        danger_plaintext_http: true,
        request_timeout: Duration::from_secs(30),
        ..Default::default()
    })
    .unwrap()
}

fn indicator(n: u32, modified: &str, tlp: Option<Tlp>) -> Value {
    let mut v = json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": format!("indicator--5f8d1b4e-0000-4000-8000-{n:012}"),
        "created": "2026-01-01T00:00:00.000Z",
        "modified": modified,
        "name": format!("indicator {n}"),
        "pattern": format!("[ipv4-addr:value = '10.0.0.{}']", n % 250),
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z"
    });
    if let Some(t) = tlp {
        v["object_marking_refs"] = json!([t.marking_id()]);
    }
    v
}

/// Reads every object version of a remote collection, following `next`.
async fn read_all(
    c: &TaxiiClient,
    root: &reqwest::Url,
    coll: &str,
    limit: usize,
) -> (Vec<Value>, usize) {
    let mut q = ObjectsQuery {
        limit: Some(limit),
        versions: vec!["all".into()],
        ..Default::default()
    };
    let mut out = Vec::new();
    let mut pages = 0;
    loop {
        let page = c.objects(root, coll, &q).await.unwrap();
        pages += 1;
        assert!(pages < 1000, "paging does not end");
        out.extend(
            page.objects
                .iter()
                .map(|r| serde_json::from_str::<Value>(r.get()).unwrap()),
        );
        match (page.more, page.next) {
            (true, Some(n)) => q.next = Some(n),
            _ => break,
        }
    }
    (out, pages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_speaks_every_endpoint_with_medallion() {
    // A small max_content_length forces several envelopes; a page size of 5 forces paging.
    let m = Medallion::start(4000, 5);
    let c = client();

    let discovery_url = base_url(&m.url("/taxii2/")).unwrap();
    let Probe::Discovery(d) = c.probe(&discovery_url).await.unwrap() else {
        panic!("discovery expected")
    };
    assert_eq!(d.api_roots.len(), 1);
    let root = base_url(&d.api_roots[0]).unwrap();
    assert_eq!(c.discovery(&discovery_url).await.unwrap(), d);
    let info = c.api_root(&root).await.unwrap();
    assert_eq!(info.max_content_length, 4000);
    assert!(matches!(c.probe(&root).await.unwrap(), Probe::ApiRoot(_)));

    let colls = c.collections(&root).await.unwrap();
    assert_eq!(colls.len(), 2);
    let coll = c.collection(&root, COLL_RW).await.unwrap();
    assert!(coll.can_read && coll.can_write);

    // Push 12 objects in envelopes within max_content_length.
    let objects: Vec<String> = (1..=12)
        .map(|n| indicator(n, "2026-01-01T00:00:00.000Z", Some(Tlp::Green)).to_string())
        .collect();
    let items: Vec<(&str, &str)> = objects.iter().map(|o| ("x", o.as_str())).collect();
    let batches = pack_envelopes(&items, info.max_content_length).unwrap();
    assert!(
        batches.len() > 1,
        "the limit should force several envelopes"
    );
    for b in &batches {
        let texts: Vec<&str> = objects[b.clone()].iter().map(String::as_str).collect();
        let status = c.add_objects(&root, COLL_RW, &texts).await.unwrap();
        let status = c
            .wait_for_status(&root, status, Duration::from_millis(50), 20)
            .await
            .unwrap();
        assert!(status.is_complete());
        assert_eq!(status.success_count as usize, texts.len(), "{status:?}");
        let again = c.status(&root, &status.id).await.unwrap();
        assert_eq!(again.id, status.id);
    }
    // An envelope over the limit is refused by the server with 413.
    let all: Vec<&str> = objects.iter().map(String::as_str).collect();
    match c.add_objects(&root, COLL_RW, &all).await {
        Err(Error::Status { status: 413, .. }) => {}
        other => panic!("expected 413, got {other:?}"),
    }

    // Paging with limit and next.
    let (read, pages) = read_all(&c, &root, COLL_RW, 5).await;
    assert_eq!(read.len(), 12);
    assert_eq!(pages, 3);
    let first = c
        .objects(
            &root,
            COLL_RW,
            &ObjectsQuery {
                limit: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(first.more && first.next.is_some());
    assert!(first.date_added_first.is_some() && first.date_added_last.is_some());

    // A new version, then added_after from the last checkpoint sees only it.
    // medallion 3.0.0 answers 500 to a `next` without `limit` (KeyError in get_next).
    let mut q = ObjectsQuery {
        limit: Some(5),
        versions: vec!["all".into()],
        ..Default::default()
    };
    let checkpoint = loop {
        let page = c.objects(&root, COLL_RW, &q).await.unwrap();
        match (page.more, page.next) {
            (true, Some(n)) => q.next = Some(n),
            _ => break page.date_added_last.unwrap(),
        }
    };
    let v2 = indicator(3, "2026-02-01T00:00:00.000Z", Some(Tlp::Green)).to_string();
    let st = c.add_objects(&root, COLL_RW, &[&v2]).await.unwrap();
    assert_eq!(st.success_count, 1);
    let newer = c
        .objects(
            &root,
            COLL_RW,
            &ObjectsQuery {
                added_after: Some(checkpoint),
                versions: vec!["all".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(newer.objects.len(), 1);
    let id3 = "indicator--5f8d1b4e-0000-4000-8000-000000000003";
    assert!(newer.objects[0].get().contains(id3));

    // match[id], match[type], versions, manifest, object.
    let by_id = c
        .objects(
            &root,
            COLL_RW,
            &ObjectsQuery {
                ids: vec![id3.into()],
                versions: vec!["all".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(by_id.objects.len(), 2);
    let by_type = c
        .objects(
            &root,
            COLL_RW,
            &ObjectsQuery {
                types: vec!["malware".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(by_type.objects.is_empty());
    let versions = c
        .versions(&root, COLL_RW, id3, &ObjectsQuery::default())
        .await
        .unwrap();
    assert_eq!(versions.versions.len(), 2, "{versions:?}");
    let mut q = ObjectsQuery {
        limit: Some(5),
        ..Default::default()
    };
    let mut records = Vec::new();
    loop {
        let page = c.manifest(&root, COLL_RW, &q).await.unwrap();
        assert!(page.records.len() <= 5 && page.date_added_last.is_some());
        records.extend(page.records);
        match (page.more, page.next) {
            (true, Some(n)) => q.next = Some(n),
            _ => break,
        }
    }
    assert_eq!(records.len(), 12, "latest versions only by default");
    assert!(
        records
            .iter()
            .any(|r| r.id == id3 && r.version == "2026-02-01T00:00:00.000Z")
    );
    let one = c
        .object(&root, COLL_RW, id3, &ObjectsQuery::default())
        .await
        .unwrap();
    assert_eq!(one.objects.len(), 1);
    assert!(one.objects[0].get().contains("2026-02-01"));

    // Delete, then the object is gone.
    // medallion deletes only the newest version unless told otherwise.
    let every = ObjectsQuery {
        versions: vec!["all".into()],
        ..Default::default()
    };
    c.delete_object(&root, COLL_RW, id3, &every).await.unwrap();
    match c
        .object(&root, COLL_RW, id3, &ObjectsQuery::default())
        .await
    {
        Err(Error::Status { status: 404, .. }) => {}
        other => panic!("expected 404 after delete, got {other:?}"),
    }

    // Errors: unknown collection, wrong password, response cap.
    match c
        .collection(&root, "00000000-0000-4000-8000-000000000000")
        .await
    {
        Err(Error::Status { status: 404, .. }) => {}
        other => panic!("expected 404, got {other:?}"),
    }
    let wrong = TaxiiClient::new(&ClientConfig {
        auth: Auth::Basic {
            username: USER.into(),
            password: Secret::new("wrong"),
        },
        danger_plaintext_http: true,
        ..Default::default()
    })
    .unwrap();
    match wrong.collections(&root).await {
        Err(Error::Status { status: 401, .. }) => {}
        other => panic!("expected 401, got {other:?}"),
    }
    let tiny = TaxiiClient::new(&ClientConfig {
        auth: Auth::Basic {
            username: USER.into(),
            password: Secret::new(PASSWORD),
        },
        danger_plaintext_http: true,
        max_response_bytes: 1000,
        ..Default::default()
    })
    .unwrap();
    match tiny.objects(&root, COLL_RW, &ObjectsQuery::default()).await {
        Err(Error::TooLarge { limit: 1000, .. }) => {}
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

fn local_store(dir: &std::path::Path) -> Arc<SqliteStore> {
    let store = SqliteStore::open(dir).unwrap();
    store
        .create_api_root(&ApiRoot {
            name: "hub".into(),
            title: "hub".into(),
            description: None,
            max_content_length: 10 * 1024 * 1024,
        })
        .unwrap();
    for (id, alias) in [
        ("6d1e3f57-8c3a-4b37-9b8e-0e5f0b2f7a01", "inbox"),
        ("6d1e3f57-8c3a-4b37-9b8e-0e5f0b2f7a02", "shared"),
    ] {
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
    Arc::new(store)
}

fn partner(m: &Medallion, name: &str, dir: &std::path::Path) -> PartnerConfig {
    let password_file = dir.join("medallion.password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let mut p = PartnerConfig::new(name, m.url("/taxii2/"));
    p.danger_plaintext_http = true;
    p.page_size = 4;
    p.auth = AuthConfig {
        username: Some(USER.into()),
        password_file: Some(password_file),
        ..Default::default()
    };
    p.pull.push(PullMapping {
        remote: COLL_PULL.into(),
        local: "inbox".into(),
        local_api_root: None,
        mirror_deletions: true,
    });
    p.push.push(PushMapping {
        local: "shared".into(),
        remote: COLL_RW.into(),
        local_api_root: None,
    });
    p.policy = EgressPolicy {
        amber_client: true,
        ..Default::default()
    };
    p
}

fn add_local(store: &SqliteStore, alias: &str, objects: &[Value]) {
    let coll = store.collection("hub", alias).unwrap().unwrap().as_ref();
    let new = objects
        .iter()
        .map(|o| kizuna_store::NewObject {
            meta: kizuna_stix::ObjectMeta::from_value(o).unwrap(),
            json: o.to_string(),
        })
        .collect();
    store.add_objects(&coll, new).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_pulls_from_and_pushes_to_medallion() {
    let m = Medallion::start(3000, 5);
    let c = client();
    let root = base_url(&m.url("/api1/")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path());
    let db = Arc::new(SyncDb::open(dir.path()).unwrap());
    let engine = SyncEngine::new(store.clone(), db.clone(), SyncOptions::default());
    let p = partner(&m, "medallion", dir.path());

    // Remote has 9 valid objects (one with two versions) and one invalid one.
    let mut remote: Vec<String> = (100..108)
        .map(|n| indicator(n, "2026-01-01T00:00:00.000Z", Some(Tlp::Green)).to_string())
        .collect();
    remote.push(indicator(100, "2026-03-01T00:00:00.000Z", Some(Tlp::Green)).to_string());
    let bad = json!({"type": "indicator", "spec_version": "2.1",
        "id": "indicator--5f8d1b4e-0000-4000-8000-0000000000ff",
        "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z"});
    remote.push(bad.to_string());
    let texts: Vec<&str> = remote.iter().map(String::as_str).collect();
    for chunk in texts.chunks(4) {
        c.add_objects(&root, COLL_PULL, chunk).await.unwrap();
    }

    // Local objects to push: GREEN, AMBER (partner is an AMBER client), unmarked (AMBER by
    // default), AMBER+STRICT and RED (never).
    let local = vec![
        indicator(200, "2026-01-01T00:00:00.000Z", Some(Tlp::Green)),
        indicator(201, "2026-01-01T00:00:00.000Z", Some(Tlp::Amber)),
        indicator(202, "2026-01-01T00:00:00.000Z", None),
        indicator(203, "2026-01-01T00:00:00.000Z", Some(Tlp::AmberStrict)),
        indicator(204, "2026-01-01T00:00:00.000Z", Some(Tlp::Red)),
        indicator(205, "2026-01-01T00:00:00.000Z", Some(Tlp::Clear)),
    ];
    add_local(&store, "shared", &local);

    let report = engine.sync_partner(&p).await.unwrap();
    let (_, pull) = &report.pulls[0];
    assert_eq!(pull.added, 9, "{pull:?}");
    assert_eq!(pull.quarantined, 1);
    assert!(pull.pages >= 3, "page size 4 over 10 objects: {pull:?}");
    let q = db.quarantined("medallion", 10).unwrap();
    assert_eq!(
        q[0].object_id.as_deref(),
        Some("indicator--5f8d1b4e-0000-4000-8000-0000000000ff")
    );
    let inbox = store.collection("hub", "inbox").unwrap().unwrap().as_ref();
    let all_versions = ObjectQuery {
        limit: 1000,
        versions: VersionFilter::All,
        clearance: Tlp::Red,
        unmarked_as: Tlp::Red,
        ..Default::default()
    };
    assert_eq!(
        store.objects(&inbox, &all_versions).unwrap().records.len(),
        9
    );
    let latest = store
        .objects(
            &inbox,
            &ObjectQuery {
                versions: VersionFilter::Last,
                ..all_versions.clone()
            },
        )
        .unwrap();
    assert_eq!(
        latest.records.len(),
        8,
        "the newer version supersedes the older"
    );

    let (_, push) = &report.pushes[0];
    assert_eq!(push.sent, 4, "{push:?}");
    assert_eq!(push.refused, 2);
    let (at_partner, _) = read_all(&c, &root, COLL_RW, 5).await;
    let ids: Vec<&str> = at_partner.iter().filter_map(|o| o["id"].as_str()).collect();
    assert_eq!(ids.len(), 4);
    for o in &at_partner {
        let tlp = kizuna_stix::effective_tlp(o);
        assert!(
            tlp != Some(Tlp::Red) && tlp != Some(Tlp::AmberStrict),
            "{o}"
        );
    }
    let v = verify(db.as_ref(), None).unwrap();
    assert!(v.is_intact(), "{:?}", v.problems);
    assert_eq!(v.records, 4);

    // A second run: nothing new either way (checkpoint re-reads the boundary as duplicates).
    let again = engine.sync_partner(&p).await.unwrap();
    assert_eq!(again.pulls[0].1.added, 0);
    assert_eq!(again.pushes[0].1.sent, 0);

    // Incremental: one new remote version and one new local object.
    let newer = indicator(101, "2026-04-01T00:00:00.000Z", Some(Tlp::Green)).to_string();
    c.add_objects(&root, COLL_PULL, &[&newer]).await.unwrap();
    add_local(
        &store,
        "shared",
        &[indicator(206, "2026-01-01T00:00:00.000Z", Some(Tlp::Green))],
    );
    let third = engine.sync_partner(&p).await.unwrap();
    assert_eq!(third.pulls[0].1.added, 1);
    assert_eq!(third.pushes[0].1.sent, 1);
    assert_eq!(third.pulls[0].1.deleted, 0);

    // A deletion at the partner propagates (mirror_deletions), and only that one.
    let gone = "indicator--5f8d1b4e-0000-4000-8000-000000000102";
    let every = ObjectsQuery {
        versions: vec!["all".into()],
        ..Default::default()
    };
    c.delete_object(&root, COLL_PULL, gone, &every)
        .await
        .unwrap();
    let fourth = engine.sync_partner(&p).await.unwrap();
    assert_eq!(fourth.pulls[0].1.deleted, 1, "{fourth:?}");
    let left = store.objects(&inbox, &all_versions).unwrap().records;
    assert_eq!(left.len(), 9, "10 versions pulled, one deleted");
    assert!(left.iter().all(|r| r.id != gone));

    // Re-sending is harmless: a fresh watermark (another partner name, same server) re-sends
    // everything, medallion reports duplicates as failures, and the engine reconciles them.
    let mut twin = partner(&m, "medallion-twin", dir.path());
    twin.pull.clear();
    let resend = engine.sync_partner(&twin).await.unwrap();
    assert_eq!(resend.pushes[0].1.sent, 5);
    let (at_partner, _) = read_all(&c, &root, COLL_RW, 5).await;
    assert_eq!(at_partner.len(), 5, "no duplicate versions at the partner");
    assert_eq!(LedgerStorage::head(db.as_ref()).unwrap().unwrap().seq, 10);
    assert!(verify(db.as_ref(), None).unwrap().is_intact());
    let status = db.status("medallion").unwrap();
    assert!(status.last_error.is_none() && status.last_success.is_some());

    // A local deletion of a pushed object reaches medallion (DELETE with match[version]); the
    // twin mapping, which sent it too, then finds it already gone (404: harmless).
    let shared = store.collection("hub", "shared").unwrap().unwrap().as_ref();
    let deleted = "indicator--5f8d1b4e-0000-4000-8000-000000000200";
    assert_eq!(
        store
            .delete_object(&shared, deleted, &all_versions)
            .unwrap(),
        1
    );
    let fifth = engine.sync_partner(&p).await.unwrap();
    let push = &fifth.pushes[0].1;
    assert_eq!((push.deleted, push.already_gone), (1, 0), "{fifth:?}");
    assert!(push.deletion_refused.is_none());
    let (at_partner, _) = read_all(&c, &root, COLL_RW, 5).await;
    assert_eq!(at_partner.len(), 4);
    assert!(at_partner.iter().all(|o| o["id"] != deleted));
    let twin_again = engine.sync_partner(&twin).await.unwrap();
    let push = &twin_again.pushes[0].1;
    assert_eq!((push.deleted, push.already_gone), (0, 1), "{twin_again:?}");
}

/// What [`faulty_proxy`] does to every `every`-th connection (the others are forwarded intact).
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Forward `keep` bytes of the response, then cut the connection.
    Cut { keep: usize },
    /// Forward `keep` bytes of the response, then hold the connection open and send nothing more
    /// (a partner that stops answering mid-response; the client's request timeout must end it).
    Stall { keep: usize },
    /// Forward the request, wait until the partner has started answering (so it did the work),
    /// then answer `500 Internal Server Error` instead and close.
    ServerError,
    /// Answer bytes that are not HTTP at all, without forwarding the request.
    Garbage,
}

/// A TCP proxy in front of `upstream` that does `fault` to every `every`-th connection. Returns
/// its port and the connection count.
async fn faulty_proxy(
    upstream: u16,
    every: u32,
    fault: Fault,
) -> (u16, Arc<std::sync::atomic::AtomicU32>) {
    use std::sync::atomic::{AtomicU32, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicU32::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if n % every != every - 1 {
                    let Ok(mut server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    return;
                }
                if let Fault::Garbage = fault {
                    let mut buf = [0u8; 1024];
                    let _ = client.read(&mut buf).await;
                    let _ = client
                        .write_all(b"\x00\x17garbage that is not HTTP\r\n\r\n\xff\xfe")
                        .await;
                    return;
                }
                let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    return;
                };
                let (mut cr, mut cw) = client.split();
                let (mut sr, mut sw) = server.split();
                let upload = async {
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                };
                let download = async {
                    let keep = match fault {
                        Fault::Cut { keep } | Fault::Stall { keep } => keep,
                        Fault::ServerError | Fault::Garbage => 0,
                    };
                    let mut buf = vec![0u8; keep.max(1)];
                    let mut sent = 0;
                    while sent < keep {
                        match sr.read(&mut buf[sent..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => {
                                if cw.write_all(&buf[sent..sent + k]).await.is_err() {
                                    return;
                                }
                                sent += k;
                            }
                        }
                    }
                    match fault {
                        // Hold the connection: the client gives up on its own timeout.
                        Fault::Stall { .. } => std::future::pending::<()>().await,
                        Fault::ServerError => {
                            // The partner has begun its answer: the request was processed.
                            if matches!(sr.read(&mut buf).await, Ok(k) if k > 0) {
                                let _ = cw
                                    .write_all(
                                        b"HTTP/1.1 500 Internal Server Error\r\n\
                                          Content-Type: text/plain\r\nContent-Length: 4\r\n\
                                          Connection: close\r\n\r\noops",
                                    )
                                    .await;
                            }
                        }
                        Fault::Cut { .. } | Fault::Garbage => {}
                    }
                };
                // The download side ends first (or, for a stall, the client gives up and the upload
                // ends); dropping both halves closes the connection.
                tokio::select! {
                    () = upload => {}
                    () = download => {}
                }
            });
        }
    });
    (port, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_recovers_from_connections_cut_mid_response() {
    engine_recovers_from(Fault::Cut { keep: 100 }, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_recovers_from_a_partner_that_stalls_mid_response() {
    engine_recovers_from(Fault::Stall { keep: 100 }, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_recovers_from_500s_after_the_partner_did_the_work() {
    engine_recovers_from(Fault::ServerError, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_recovers_from_garbage_answers() {
    engine_recovers_from(Fault::Garbage, 3).await;
}

/// Pull and push through a [`faulty_proxy`] doing `fault` to every `every`-th connection: after
/// the run every remote version is stored here exactly once, every allowed local version is at
/// the partner exactly once, nothing forbidden was sent, and the ledger is intact.
async fn engine_recovers_from(fault: Fault, every: u32) {
    let m = Medallion::start(2000, 5);
    let c = client();
    let root = base_url(&m.url("/api1/")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path());
    let db = Arc::new(SyncDb::open(dir.path()).unwrap());
    let options = SyncOptions {
        retry: kizuna_sync::retry::RetryPolicy {
            attempts: 10,
            base: Duration::from_millis(10),
            max: Duration::from_millis(100),
        },
        status_poll_interval: Duration::from_millis(20),
        ..Default::default()
    };
    let engine = SyncEngine::new(store.clone(), db.clone(), options);

    let remote: Vec<String> = (300..317)
        .map(|n| indicator(n, "2026-01-01T00:00:00.000Z", Some(Tlp::Green)).to_string())
        .collect();
    for chunk in remote.chunks(5) {
        let texts: Vec<&str> = chunk.iter().map(String::as_str).collect();
        c.add_objects(&root, COLL_PULL, &texts).await.unwrap();
    }
    let mut local: Vec<Value> = (400..412)
        .map(|n| indicator(n, "2026-01-01T00:00:00.000Z", Some(Tlp::Green)))
        .collect();
    local.push(indicator(412, "2026-01-01T00:00:00.000Z", Some(Tlp::Red)));
    local.push(indicator(
        413,
        "2026-01-01T00:00:00.000Z",
        Some(Tlp::AmberStrict),
    ));
    add_local(&store, "shared", &local);

    let (proxy, connections) = faulty_proxy(m.port, every, fault).await;
    let mut p = partner(&m, "flaky", dir.path());
    // The shortest request timeout, so that a stalled response is given up on soon.
    p.timeout_secs = 1;
    // The API root directly: the discovery would name medallion's own origin, which is refused.
    p.url = format!("http://127.0.0.1:{proxy}/api1/");
    // Mirroring deletions needs one whole manifest read without a fault, which this proxy never
    // allows (it fails safe: nothing is deleted, the run reports the error).
    p.pull[0].mirror_deletions = false;
    let report = engine.sync_partner(&p).await.unwrap();
    assert!(
        connections.load(std::sync::atomic::Ordering::SeqCst) >= every,
        "the proxy hit at least one connection with {fault:?}"
    );

    // Pull: every remote version stored exactly once.
    let inbox = store.collection("hub", "inbox").unwrap().unwrap().as_ref();
    let all = ObjectQuery {
        limit: 1000,
        versions: VersionFilter::All,
        clearance: Tlp::Red,
        unmarked_as: Tlp::Red,
        ..Default::default()
    };
    let got = store.objects(&inbox, &all).unwrap().records;
    assert_eq!(got.len(), 17, "{report:?}");
    let mut ids: Vec<&str> = got.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 17);

    // Push: every allowed version at the partner exactly once, nothing forbidden.
    let (at_partner, _) = read_all(&c, &root, COLL_RW, 5).await;
    assert_eq!(at_partner.len(), 12, "{report:?}");
    let mut ids: Vec<&str> = at_partner.iter().filter_map(|o| o["id"].as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 12);
    for o in &at_partner {
        assert_eq!(kizuna_stix::effective_tlp(o), Some(Tlp::Green), "{o}");
    }
    let v = verify(db.as_ref(), None).unwrap();
    assert!(v.is_intact());
    assert!(v.records >= 12, "every send recorded, re-sends included");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_down_fails_the_run_and_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path());
    let db = Arc::new(SyncDb::open(dir.path()).unwrap());
    add_local(
        &store,
        "shared",
        &[indicator(500, "2026-01-01T00:00:00.000Z", Some(Tlp::Green))],
    );
    let options = SyncOptions {
        retry: kizuna_sync::retry::RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(10),
            max: Duration::from_millis(20),
        },
        ..Default::default()
    };
    let engine = SyncEngine::new(store.clone(), db.clone(), options);
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, PASSWORD).unwrap();
    let mut p = PartnerConfig::new("down", format!("http://127.0.0.1:{port}/taxii2/"));
    p.danger_plaintext_http = true;
    p.auth = AuthConfig {
        username: Some(USER.into()),
        password_file: Some(pw),
        ..Default::default()
    };
    p.push.push(PushMapping {
        local: "shared".into(),
        remote: COLL_RW.into(),
        local_api_root: None,
    });
    let e = engine.sync_partner(&p).await.unwrap_err();
    assert!(matches!(e, Error::Transport(_)), "{e}");
    let status = db.status("down").unwrap();
    assert!(status.last_error.unwrap().contains("transport"));
    assert!(status.last_success.is_none());
    assert_eq!(
        db.watermark("down", "6d1e3f57-8c3a-4b37-9b8e-0e5f0b2f7a02", COLL_RW)
            .unwrap(),
        None
    );
    assert!(verify(db.as_ref(), None).unwrap().head.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_pages_are_refused_and_asked_for_smaller() {
    let m = Medallion::start(100_000, 50);
    let c = client();
    let root = base_url(&m.url("/api1/")).unwrap();
    let remote: Vec<String> = (600..620)
        .map(|n| indicator(n, "2026-01-01T00:00:00.000Z", Some(Tlp::Green)).to_string())
        .collect();
    let texts: Vec<&str> = remote.iter().map(String::as_str).collect();
    c.add_objects(&root, COLL_PULL, &texts).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let store = local_store(dir.path());
    let db = Arc::new(SyncDb::open(dir.path()).unwrap());
    let engine = SyncEngine::new(store.clone(), db, SyncOptions::default());
    let mut p = partner(&m, "small-pages", dir.path());
    p.push.clear();
    p.page_size = 20;
    // One object is about 450 bytes: a page of 20 is far over the cap, a page of 2 fits.
    p.max_response_bytes = 1500;
    let report = engine.sync_partner(&p).await.unwrap();
    assert_eq!(report.pulls[0].1.added, 20, "{report:?}");
    assert!(report.pulls[0].1.pages >= 10, "{report:?}");
}
