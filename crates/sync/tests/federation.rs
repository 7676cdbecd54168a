//! Kizuna hubs on loopback, each a real TAXII 2.1 server over TLS (self-signed, pinned by the
//! other side). Two hubs, `mod` and `dod`: what one adds appears at the other, updates and
//! revocations arrive as new versions, what the other sights flows back, and TLP:RED and
//! AMBER+STRICT never leave (checked by reading everything the receiving hub holds, straight from
//! its store). Three hubs in a chain: relayed objects reach the far end, nothing is echoed back to
//! where it came from, and the far end's sighting reaches the first hub. Deletions: what a hub
//! deletes is deleted where it pushed it (relayed hop by hop, never echoed), a partner refusing
//! deletions still receives objects, and a version the partner rejects is set aside after
//! `set_aside_after` runs so that later versions flow.

#![allow(clippy::unwrap_used)] // a test fails loudly on bad test data

use std::path::Path;
use std::sync::Arc;

use kizuna_stix::{ObjectMeta, Tlp, effective_tlp};
use kizuna_store::{
    ApiRoot, Collection, NewAccount, NewObject, ObjectQuery, Permission, SqliteStore, Store,
    VersionFilter, hash_password,
};
use kizuna_sync::config::AuthConfig;
use kizuna_sync::ledger::verify;
use kizuna_sync::state::SyncDb;
use kizuna_sync::{PartnerConfig, PullMapping, PushMapping, SyncEngine, SyncOptions};
use kizuna_taxii::{AppState, RunningServer, ServerConfig, ServiceConfig, TlsMode};
use serde_json::{Value, json};

const SHARED: &str = "0b3a6c1e-5d2f-4e8a-9c7b-1a2b3c4d5e01";
const INBOX: &str = "0b3a6c1e-5d2f-4e8a-9c7b-1a2b3c4d5e02";

struct Hub {
    store: Arc<SqliteStore>,
    server: RunningServer,
    _dir: tempfile::TempDir,
}

/// A hub with a `shared` and an `inbox` collection and an account for each partner.
async fn hub(partner_accounts: &[&str], password: &str) -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    store
        .create_api_root(&ApiRoot {
            name: "hub".into(),
            title: "hub".into(),
            description: None,
            max_content_length: 1 << 20,
        })
        .unwrap();
    for (id, alias) in [(SHARED, "shared"), (INBOX, "inbox")] {
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
    for partner_account in partner_accounts {
        store
            .create_account(&NewAccount {
                name: (*partner_account).into(),
                password_hash: Some(hash_password(password).unwrap()),
                // The partner's own clearance at this hub: what it may read here.
                tlp_clearance: Tlp::Amber,
                admin: false,
            })
            .unwrap();
        for (coll, read, write) in [(SHARED, true, false), (INBOX, true, true)] {
            store
                .set_permission(
                    partner_account,
                    &Permission {
                        api_root: "hub".into(),
                        collection: coll.into(),
                        read,
                        write,
                    },
                )
                .unwrap();
        }
    }
    let state = AppState::new(store.clone(), ServiceConfig::default()).unwrap();
    let config = ServerConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        TlsMode::SelfSigned {
            dir: dir.path().to_owned(),
            client_ca: None,
        },
    );
    let server = kizuna_taxii::start(config, state).await.unwrap();
    Hub {
        store,
        server,
        _dir: dir,
    }
}

fn partner_of(name: &str, other: &Hub, account: &str, password_file: &Path) -> PartnerConfig {
    let mut p = PartnerConfig::new(name, format!("{}/taxii2/", other.server.url()));
    // Exactly what `kizuna serve` logs (`AB:CD:...`), pasted into the partner's configuration.
    p.pinned_sha256 = Some(other.server.certificate_fingerprint().unwrap().to_string());
    p.auth = AuthConfig {
        username: Some(account.into()),
        password_file: Some(password_file.to_owned()),
        ..Default::default()
    };
    p.page_size = 3;
    // Their shared collection lands in our inbox; our shared collection goes to their inbox.
    p.pull.push(PullMapping {
        remote: SHARED.into(),
        local: "inbox".into(),
        local_api_root: None,
        mirror_deletions: false,
    });
    p.push.push(PushMapping {
        local: "shared".into(),
        remote: INBOX.into(),
        local_api_root: None,
    });
    p
}

fn object(kind: &str, n: u32, modified: &str, tlp: Option<Tlp>) -> Value {
    let id = format!("{kind}--7a1c0000-0000-4000-8000-{n:012}");
    let mut v = match kind {
        "indicator" => json!({
            "type": "indicator", "spec_version": "2.1", "id": id,
            "created": "2026-01-01T00:00:00.000Z", "modified": modified,
            "name": format!("indicator {n}"),
            "pattern": format!("[domain-name:value = 'bad{n}.example']"), "pattern_type": "stix",
            "valid_from": "2026-01-01T00:00:00Z"
        }),
        _ => json!({
            "type": "sighting", "spec_version": "2.1", "id": id,
            "created": "2026-01-01T00:00:00.000Z", "modified": modified,
            "sighting_of_ref": "indicator--7a1c0000-0000-4000-8000-000000000001",
            "count": 1
        }),
    };
    if let Some(t) = tlp {
        v["object_marking_refs"] = json!([t.marking_id()]);
    }
    v
}

fn add(store: &SqliteStore, alias: &str, objects: &[Value]) {
    let coll = store.collection("hub", alias).unwrap().unwrap().as_ref();
    let new = objects
        .iter()
        .map(|o| NewObject {
            meta: ObjectMeta::from_value(o).unwrap(),
            json: o.to_string(),
        })
        .collect();
    for outcome in store.add_objects(&coll, new).unwrap().outcomes {
        assert_eq!(outcome, kizuna_store::AddOutcome::Added);
    }
}

/// Every version a hub holds in a collection, read with full clearance.
fn everything(store: &SqliteStore, alias: &str) -> Vec<Value> {
    let coll = store.collection("hub", alias).unwrap().unwrap().as_ref();
    let q = ObjectQuery {
        limit: 10_000,
        versions: VersionFilter::All,
        clearance: Tlp::Red,
        unmarked_as: Tlp::Red,
        ..Default::default()
    };
    store
        .objects(&coll, &q)
        .unwrap()
        .records
        .iter()
        .map(|r| serde_json::from_str(&r.json).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hubs_share_what_policy_allows_and_nothing_else() {
    let secrets = tempfile::tempdir().unwrap();
    let pw_file = secrets.path().join("pw");
    std::fs::write(&pw_file, "correct horse battery staple\n").unwrap();
    // `mod` holds an account for dod and vice versa.
    let modh = hub(&["dod"], "correct horse battery staple").await;
    let dod = hub(&["mod"], "correct horse battery staple").await;

    let mod_db = Arc::new(SyncDb::open(secrets.path()).unwrap());
    let mod_engine = SyncEngine::new(modh.store.clone(), mod_db.clone(), SyncOptions::default());
    let dod_dir = tempfile::tempdir().unwrap();
    let dod_db = Arc::new(SyncDb::open(dod_dir.path()).unwrap());
    let dod_engine = SyncEngine::new(dod.store.clone(), dod_db.clone(), SyncOptions::default());
    let mut mod_to_dod = partner_of("dod", &dod, "mod", &pw_file);
    let dod_to_mod = partner_of("mod", &modh, "dod", &pw_file);

    // mod's shared intelligence, every marking.
    let levels = [
        (1, Some(Tlp::Clear)),
        (2, Some(Tlp::Green)),
        (3, Some(Tlp::Amber)),
        (4, Some(Tlp::AmberStrict)),
        (5, Some(Tlp::Red)),
        (6, None),
        (7, Some(Tlp::Green)),
    ];
    let v1 = "2026-01-01T00:00:00.000Z";
    let objects: Vec<Value> = levels
        .iter()
        .map(|(n, t)| object("indicator", *n, v1, *t))
        .collect();
    add(&modh.store, "shared", &objects);

    let r = mod_engine.sync_partner(&mod_to_dod).await.unwrap();
    assert_eq!(r.pushes[0].1.sent, 3, "CLEAR and two GREEN: {r:?}");
    assert_eq!(
        r.pushes[0].1.refused, 4,
        "AMBER (not a client), AMBER+STRICT, RED, unmarked"
    );

    // An update arrives as a new version, and so does a revocation.
    let mut revoked = object("indicator", 7, "2026-03-01T00:00:00.000Z", Some(Tlp::Green));
    revoked["revoked"] = json!(true);
    add(
        &modh.store,
        "shared",
        &[
            object("indicator", 2, "2026-02-01T00:00:00.000Z", Some(Tlp::Green)),
            revoked,
        ],
    );
    let r = mod_engine.sync_partner(&mod_to_dod).await.unwrap();
    assert_eq!(r.pushes[0].1.sent, 2);

    let at_dod = everything(&dod.store, "inbox");
    assert_eq!(
        at_dod.len(),
        5,
        "three objects, two of them in two versions"
    );
    let inbox = dod
        .store
        .collection("hub", "inbox")
        .unwrap()
        .unwrap()
        .as_ref();
    let latest_7 = dod
        .store
        .objects(
            &inbox,
            &ObjectQuery {
                ids: vec![objects[6]["id"].as_str().unwrap().to_owned()],
                limit: 10,
                clearance: Tlp::Red,
                unmarked_as: Tlp::Red,
                ..Default::default()
            },
        )
        .unwrap()
        .records;
    assert_eq!(latest_7.len(), 1);
    assert!(
        latest_7[0].json.contains("\"revoked\":true"),
        "the revocation is the newest version"
    );
    for o in &at_dod {
        let tlp = effective_tlp(o);
        assert!(matches!(tlp, Some(Tlp::Clear | Tlp::Green)), "leaked: {o}");
    }
    let versions_of_2: Vec<&str> = at_dod
        .iter()
        .filter(|o| o["id"] == objects[1]["id"])
        .filter_map(|o| o["modified"].as_str())
        .collect();
    assert_eq!(versions_of_2.len(), 2);
    // And nothing at all landed in dod's other collection.
    assert!(everything(&dod.store, "shared").is_empty());

    // dod sights the indicator; the sighting flows back to mod when mod pulls.
    add(
        &dod.store,
        "shared",
        &[object("sighting", 1, v1, Some(Tlp::Green))],
    );
    let r = mod_engine.sync_partner(&mod_to_dod).await.unwrap();
    assert_eq!(r.pulls[0].1.added, 1, "{r:?}");
    let at_mod = everything(&modh.store, "inbox");
    assert_eq!(at_mod.len(), 1);
    assert_eq!(at_mod[0]["type"], "sighting");

    // dod pushes its shared collection (the sighting) to mod too: already there, harmless.
    let r = dod_engine.sync_partner(&dod_to_mod).await.unwrap();
    assert_eq!(r.pushes[0].1.sent, 1, "the sighting: {r:?}");

    // Every object mod sent is in its ledger, and the ledger is intact.
    let v = verify(mod_db.as_ref(), None).unwrap();
    assert!(v.is_intact(), "{:?}", v.problems);
    assert_eq!(v.records, 5);
    assert!(
        mod_db
            .ledger_for("dod", 0, 100)
            .unwrap()
            .iter()
            .all(|r| r.entry.exit == kizuna_sync::ledger::Exit::Push),
        "push records say so"
    );

    // Nothing new: a further run sends and stores nothing.
    let r = mod_engine.sync_partner(&mod_to_dod).await.unwrap();
    assert_eq!((r.pulls[0].1.added, r.pushes[0].1.sent), (0, 0));

    // dod sights again and deletes its first sighting; with mirror_deletions, mod's copy goes
    // too. (An empty manifest is taken for lost access, never for "delete everything".)
    // An SCO too: unversioned, so each hub gives it its own date_added as version; mirroring must
    // not take that difference for a deletion.
    let sco = json!({"type": "ipv4-addr", "spec_version": "2.1",
        "id": "ipv4-addr--12592121-be4c-5a93-a813-5a5af16e50db", "value": "198.51.100.7",
        "object_marking_refs": [Tlp::Green.marking_id()]});
    add(
        &dod.store,
        "shared",
        &[object("sighting", 2, v1, Some(Tlp::Green)), sco],
    );
    let sighting = "sighting--7a1c0000-0000-4000-8000-000000000001";
    let dod_shared = dod
        .store
        .collection("hub", "shared")
        .unwrap()
        .unwrap()
        .as_ref();
    let all = ObjectQuery {
        versions: VersionFilter::All,
        ..Default::default()
    };
    assert_eq!(
        dod.store
            .delete_object(&dod_shared, sighting, &all)
            .unwrap(),
        1
    );
    mod_to_dod.pull[0].mirror_deletions = true;
    let r = mod_engine.sync_partner(&mod_to_dod).await.unwrap();
    assert_eq!((r.pulls[0].1.added, r.pulls[0].1.deleted), (2, 1), "{r:?}");
    let mut left: Vec<String> = everything(&modh.store, "inbox")
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "ipv4-addr--12592121-be4c-5a93-a813-5a5af16e50db",
            "sighting--7a1c0000-0000-4000-8000-000000000002"
        ]
    );
    // Another run deletes nothing more.
    let r = mod_engine.sync_partner(&mod_to_dod).await.unwrap();
    assert_eq!(r.pulls[0].1.deleted, 0, "{r:?}");

    dod.server.shutdown().await;
    modh.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hubs_relay_without_echo_or_leaks() {
    const PW: &str = "three hubs share a password in this test";
    let secrets = tempfile::tempdir().unwrap();
    let pw_file = secrets.path().join("pw");
    std::fs::write(&pw_file, PW).unwrap();
    let a = hub(&["b"], PW).await;
    let b = hub(&["a", "c"], PW).await;
    let c = hub(&["b"], PW).await;
    let engine = |h: &Hub, name: &str| {
        let dir = secrets.path().join(name);
        SyncEngine::new(
            h.store.clone(),
            Arc::new(SyncDb::open(&dir).unwrap()),
            SyncOptions::default(),
        )
    };
    let (a_engine, b_engine) = (engine(&a, "a"), engine(&b, "b"));

    // a pushes its shared collection to b's inbox and pulls b's inbox.
    let mut a_to_b = partner_of("b", &b, "a", &pw_file);
    a_to_b.pull[0].remote = INBOX.into();
    // b relays its inbox to c's inbox and pulls c's shared collection into its inbox.
    let mut b_to_c = partner_of("c", &c, "b", &pw_file);
    b_to_c.push[0].local = "inbox".into();

    let v1 = "2026-01-01T00:00:00.000Z";
    add(
        &a.store,
        "shared",
        &[
            object("indicator", 1, v1, Some(Tlp::Green)),
            object("indicator", 2, v1, Some(Tlp::Red)),
            object("indicator", 3, v1, Some(Tlp::AmberStrict)),
        ],
    );
    let r = a_engine.sync_partner(&a_to_b).await.unwrap();
    assert_eq!(r.pushes[0].1.sent, 1, "{r:?}");

    add(
        &c.store,
        "shared",
        &[object("sighting", 10, v1, Some(Tlp::Green))],
    );
    let r = b_engine.sync_partner(&b_to_c).await.unwrap();
    assert_eq!(r.pulls[0].1.added, 1, "c's sighting reaches b: {r:?}");
    assert_eq!(
        r.pushes[0].1.sent, 1,
        "a's indicator is relayed to c: {r:?}"
    );
    assert_eq!(
        r.pushes[0].1.echoes, 1,
        "c's sighting is not sent back to c: {r:?}"
    );

    let at_c = everything(&c.store, "inbox");
    assert_eq!(at_c.len(), 1);
    assert_eq!(
        at_c[0]["id"],
        "indicator--7a1c0000-0000-4000-8000-000000000001"
    );
    for h in [&b, &c] {
        for alias in ["shared", "inbox"] {
            for o in everything(&h.store, alias) {
                let tlp = effective_tlp(&o);
                assert!(matches!(tlp, Some(Tlp::Clear | Tlp::Green)), "leaked: {o}");
            }
        }
    }

    // The far end's sighting reaches the first hub through the middle one.
    let r = a_engine.sync_partner(&a_to_b).await.unwrap();
    assert!(r.pulls[0].1.added >= 1, "{r:?}");
    assert!(
        everything(&a.store, "inbox")
            .iter()
            .any(|o| o["type"] == "sighting"),
        "c's sighting at a"
    );

    // a deletes its indicator: b's copy goes (a pushed it there), and b passes the deletion on
    // to c (b pushed it there), never back to a (b never sent it to a).
    let relayed = "indicator--7a1c0000-0000-4000-8000-000000000001";
    let a_shared = a
        .store
        .collection("hub", "shared")
        .unwrap()
        .unwrap()
        .as_ref();
    let all = ObjectQuery {
        versions: VersionFilter::All,
        ..Default::default()
    };
    assert_eq!(a.store.delete_object(&a_shared, relayed, &all).unwrap(), 1);
    let r = a_engine.sync_partner(&a_to_b).await.unwrap();
    assert_eq!(r.pushes[0].1.deleted, 1, "{r:?}");
    assert!(
        everything(&b.store, "inbox")
            .iter()
            .all(|o| o["id"] != relayed)
    );
    let r = b_engine.sync_partner(&b_to_c).await.unwrap();
    assert_eq!(r.pushes[0].1.deleted, 1, "{r:?}");
    assert!(
        everything(&c.store, "inbox")
            .iter()
            .all(|o| o["id"] != relayed)
    );
    for h in [a, b, c] {
        h.server.shutdown().await;
    }
}

/// The engines and partner configurations of two hubs, `mod` and `dod`, each with an account for
/// the other.
struct Pair {
    modh: Hub,
    dod: Hub,
    mod_engine: SyncEngine,
    mod_db: Arc<SyncDb>,
    mod_to_dod: PartnerConfig,
    _secrets: tempfile::TempDir,
}

async fn pair() -> Pair {
    pair_with(SyncOptions::default()).await
}

async fn pair_with(options: SyncOptions) -> Pair {
    const PW: &str = "two hubs that delete";
    let secrets = tempfile::tempdir().unwrap();
    let pw_file = secrets.path().join("pw");
    std::fs::write(&pw_file, PW).unwrap();
    let modh = hub(&["dod"], PW).await;
    let dod = hub(&["mod"], PW).await;
    let mod_db = Arc::new(SyncDb::open(secrets.path()).unwrap());
    let mod_engine = SyncEngine::new(modh.store.clone(), mod_db.clone(), options);
    let mod_to_dod = partner_of("dod", &dod, "mod", &pw_file);
    Pair {
        modh,
        dod,
        mod_engine,
        mod_db,
        mod_to_dod,
        _secrets: secrets,
    }
}

fn delete_all(store: &SqliteStore, alias: &str, id: &str) -> u64 {
    let coll = store.collection("hub", alias).unwrap().unwrap().as_ref();
    let all = ObjectQuery {
        versions: VersionFilter::All,
        ..Default::default()
    };
    store.delete_object(&coll, id, &all).unwrap()
}

fn ids(store: &SqliteStore, alias: &str) -> Vec<String> {
    let mut ids: Vec<String> = everything(store, alias)
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_deletions_reach_the_partner_they_were_pushed_to_and_never_echo() {
    let mut p = pair().await;
    let v1 = "2026-01-01T00:00:00.000Z";
    let v2 = "2026-02-01T00:00:00.000Z";
    let green = Some(Tlp::Green);
    add(
        &p.modh.store,
        "shared",
        &[
            object("indicator", 1, v1, green),
            object("indicator", 1, v2, green),
            object("indicator", 2, v1, green),
            object("indicator", 3, v1, green),
            object("indicator", 4, v1, Some(Tlp::Red)),
        ],
    );
    let r = p.mod_engine.sync_partner(&p.mod_to_dod).await.unwrap();
    assert_eq!(r.pushes[0].1.sent, 4, "{r:?}");
    let id = |n: u32| format!("indicator--7a1c0000-0000-4000-8000-{n:012}");

    // Deleted at mod (both versions of 1; the RED 4 that never left): gone at dod after the next
    // run, and only what was sent is asked for.
    assert_eq!(delete_all(&p.modh.store, "shared", &id(1)), 2);
    assert_eq!(delete_all(&p.modh.store, "shared", &id(4)), 1);
    let r = p.mod_engine.sync_partner(&p.mod_to_dod).await.unwrap();
    assert_eq!(
        (r.pushes[0].1.deleted, r.pushes[0].1.already_gone),
        (2, 0),
        "{r:?}"
    );
    assert_eq!(ids(&p.dod.store, "inbox"), [id(2), id(3)]);
    // Nothing more to send; the watermark stays over what the partner answered.
    let r = p.mod_engine.sync_partner(&p.mod_to_dod).await.unwrap();
    assert_eq!(
        (r.pushes[0].1.deleted, r.pushes[0].1.already_gone),
        (0, 0),
        "{r:?}"
    );
    let pos = p.mod_db.deletion_positions("dod").unwrap();
    assert_eq!(
        (pos.len(), pos[0].deleted, pos[0].refused.as_deref()),
        (1, 2, None)
    );

    // Already gone at dod: a 404 counts as done (re-sending is harmless).
    assert_eq!(delete_all(&p.dod.store, "inbox", &id(2)), 1);
    assert_eq!(delete_all(&p.modh.store, "shared", &id(2)), 1);
    let r = p.mod_engine.sync_partner(&p.mod_to_dod).await.unwrap();
    assert_eq!(
        (r.pushes[0].1.deleted, r.pushes[0].1.already_gone),
        (0, 1),
        "{r:?}"
    );

    // Deleted and added again before the next run: the partner keeps it.
    assert_eq!(delete_all(&p.modh.store, "shared", &id(3)), 1);
    add(
        &p.modh.store,
        "shared",
        &[object("indicator", 3, v1, green)],
    );
    let r = p.mod_engine.sync_partner(&p.mod_to_dod).await.unwrap();
    assert_eq!(r.pushes[0].1.deleted, 0, "{r:?}");
    assert_eq!(ids(&p.dod.store, "inbox"), [id(3)]);

    // No echo: dod's sighting, pulled into mod's inbox and pushed on by a second mapping (never
    // back to dod), is deleted at mod; no DELETE goes to dod for it.
    add(&p.dod.store, "shared", &[object("sighting", 1, v1, green)]);
    p.mod_to_dod.push.push(PushMapping {
        local: "inbox".into(),
        remote: INBOX.into(),
        local_api_root: None,
    });
    let r = p.mod_engine.sync_partner(&p.mod_to_dod).await.unwrap();
    assert_eq!((r.pulls[0].1.added, r.pushes[1].1.echoes), (1, 1), "{r:?}");
    let sighting = "sighting--7a1c0000-0000-4000-8000-000000000001";
    assert_eq!(delete_all(&p.modh.store, "inbox", sighting), 1);
    let r = p.mod_engine.sync_partner(&p.mod_to_dod).await.unwrap();
    let pushed = &r.pushes[1].1;
    assert_eq!((pushed.deleted, pushed.already_gone), (0, 0), "{r:?}");
    assert_eq!(ids(&p.dod.store, "shared"), [sighting]);

    p.dod.server.shutdown().await;
    p.modh.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_that_refuses_deletions_still_gets_objects() {
    let p = pair().await;
    // At dod, mod may add to the inbox but not read it, and TAXII deletion needs both (§5.7).
    let write_only = |read| Permission {
        api_root: "hub".into(),
        collection: INBOX.into(),
        read,
        write: true,
    };
    p.dod
        .store
        .set_permission("mod", &write_only(false))
        .unwrap();
    let v1 = "2026-01-01T00:00:00.000Z";
    let green = Some(Tlp::Green);
    add(
        &p.modh.store,
        "shared",
        &[object("indicator", 1, v1, green)],
    );
    let r = p.mod_engine.sync_partner(&p.mod_to_dod).await.unwrap();
    assert_eq!(r.pushes[0].1.sent, 1);
    let id1 = "indicator--7a1c0000-0000-4000-8000-000000000001";
    delete_all(&p.modh.store, "shared", id1);
    add(
        &p.modh.store,
        "shared",
        &[object("indicator", 2, v1, green)],
    );
    let r = p.mod_engine.sync_partner(&p.mod_to_dod).await.unwrap();
    let pushed = &r.pushes[0].1;
    assert!(
        pushed
            .deletion_refused
            .as_deref()
            .is_some_and(|e| e.contains("403")),
        "{r:?}"
    );
    assert_eq!(
        (pushed.deleted, pushed.sent),
        (0, 1),
        "objects still flow: {r:?}"
    );
    let pos = p.mod_db.deletion_positions("dod").unwrap();
    assert!(pos[0].refused.as_deref().is_some_and(|e| e.contains("403")));
    assert_eq!(ids(&p.dod.store, "inbox").len(), 2);

    // Once granted, the waiting deletion goes through and the refusal is cleared.
    p.dod
        .store
        .set_permission("mod", &write_only(true))
        .unwrap();
    let r = p.mod_engine.sync_partner(&p.mod_to_dod).await.unwrap();
    assert_eq!(r.pushes[0].1.deleted, 1, "{r:?}");
    assert!(r.pushes[0].1.deletion_refused.is_none());
    assert!(
        p.mod_db.deletion_positions("dod").unwrap()[0]
            .refused
            .is_none()
    );
    assert_eq!(
        ids(&p.dod.store, "inbox"),
        ["indicator--7a1c0000-0000-4000-8000-000000000002"]
    );

    // A failure that cannot be confirmed (write-only again: dod's versions endpoint answers
    // 403) is an error of the run, never a rejection: nothing is ever set aside for it.
    p.dod
        .store
        .set_permission("mod", &write_only(false))
        .unwrap();
    let mut bad = object("indicator", 3, v1, green);
    bad["pattern"] = json!("[this is not a pattern");
    add(&p.modh.store, "shared", &[bad]);
    for _ in 0..4 {
        let e = p.mod_engine.sync_partner(&p.mod_to_dod).await.unwrap_err();
        assert!(e.to_string().contains("403"), "{e}");
    }
    assert!(p.mod_db.outbound_quarantine("dod").unwrap().is_empty());
    p.dod.server.shutdown().await;
    p.modh.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_the_partner_rejects_is_set_aside_after_n_runs_and_can_be_retried() {
    // Pages of one: the rejected version blocks the pages after its own until it is set aside
    // (versions in its own envelope are accepted by the partner, and recorded, each time).
    let p = pair_with(SyncOptions {
        push_page: 1,
        ..SyncOptions::default()
    })
    .await;
    let v1 = "2026-01-01T00:00:00.000Z";
    let green = Some(Tlp::Green);
    // Valid at mod's store (which does not validate), invalid for dod's TAXII server.
    let mut bad = object("indicator", 2, v1, green);
    bad["pattern"] = json!("[this is not a pattern");
    add(
        &p.modh.store,
        "shared",
        &[object("indicator", 1, v1, green), bad],
    );
    add(
        &p.modh.store,
        "shared",
        &[object("indicator", 3, v1, green)],
    );
    let bad_id = "indicator--7a1c0000-0000-4000-8000-000000000002";
    assert_eq!(p.mod_to_dod.set_aside_after, 3, "the default");
    for attempt in 1..=2 {
        let e = p
            .mod_engine
            .sync_partner(&p.mod_to_dod)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(bad_id) && e.contains(&format!("rejection {attempt} of 3")),
            "{e}"
        );
        let q = p.mod_db.outbound_quarantine("dod").unwrap();
        assert_eq!(
            (q.len(), q[0].attempts, q[0].state.as_str()),
            (1, attempt, "counting")
        );
    }
    assert!(p.mod_db.status("dod").unwrap().last_error.is_some());
    // What came before it arrived on the first run; the next page waits.
    assert_eq!(
        ids(&p.dod.store, "inbox"),
        ["indicator--7a1c0000-0000-4000-8000-000000000001"]
    );
    let r = p.mod_engine.sync_partner(&p.mod_to_dod).await.unwrap();
    let pushed = &r.pushes[0].1;
    assert_eq!((pushed.rejected, pushed.set_aside), (1, 1), "{r:?}");
    assert_eq!(
        ids(&p.dod.store, "inbox"),
        [
            "indicator--7a1c0000-0000-4000-8000-000000000001",
            "indicator--7a1c0000-0000-4000-8000-000000000003"
        ]
    );
    let q = p.mod_db.outbound_quarantine("dod").unwrap();
    assert_eq!((q[0].attempts, q[0].state.as_str()), (3, "set_aside"));
    assert_eq!(q[0].object_id, bad_id);
    assert!(!q[0].message.is_empty());
    assert!(p.mod_db.status("dod").unwrap().last_error.is_none());
    // Later versions flow; the set-aside one is not sent again.
    add(
        &p.modh.store,
        "shared",
        &[object("indicator", 4, v1, green)],
    );
    let r = p.mod_engine.sync_partner(&p.mod_to_dod).await.unwrap();
    assert_eq!(
        (r.pushes[0].1.sent, r.pushes[0].1.rejected),
        (1, 0),
        "{r:?}"
    );

    // `partner retry` sends it once more; rejected again, it goes straight back aside.
    assert_eq!(
        p.mod_db
            .retry_set_aside("dod", Some("indicator--other"))
            .unwrap(),
        0
    );
    assert_eq!(p.mod_db.retry_set_aside("dod", Some(bad_id)).unwrap(), 1);
    let r = p.mod_engine.sync_partner(&p.mod_to_dod).await.unwrap();
    let pushed = &r.pushes[0].1;
    assert_eq!(
        (pushed.retried, pushed.rejected, pushed.set_aside),
        (1, 1, 1),
        "{r:?}"
    );
    let q = p.mod_db.outbound_quarantine("dod").unwrap();
    assert_eq!((q[0].attempts, q[0].state.as_str()), (4, "set_aside"));
    let r = p.mod_engine.sync_partner(&p.mod_to_dod).await.unwrap();
    assert_eq!((r.pushes[0].1.retried, r.pushes[0].1.sent), (0, 0), "{r:?}");

    // Deleted locally while set aside: a retry finds nothing to send and forgets it.
    assert_eq!(p.mod_db.retry_set_aside("dod", None).unwrap(), 1);
    delete_all(&p.modh.store, "shared", bad_id);
    let r = p.mod_engine.sync_partner(&p.mod_to_dod).await.unwrap();
    assert_eq!(
        (r.pushes[0].1.retried, r.pushes[0].1.already_gone),
        (0, 0),
        "{r:?}"
    );
    assert!(p.mod_db.outbound_quarantine("dod").unwrap().is_empty());
    p.dod.server.shutdown().await;
    p.modh.server.shutdown().await;
}
