//! Kizuna hubs on loopback, each a real TAXII 2.1 server over TLS (self-signed, pinned by the
//! other side). Two hubs, `mod` and `dod`: what one adds appears at the other, updates and
//! revocations arrive as new versions, what the other sights flows back, and TLP:RED and
//! AMBER+STRICT never leave (checked by reading everything the receiving hub holds, straight from
//! its store). Three hubs in a chain: relayed objects reach the far end, nothing is echoed back to
//! where it came from, and the far end's sighting reaches the first hub.

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
    for h in [a, b, c] {
        h.server.shutdown().await;
    }
}
