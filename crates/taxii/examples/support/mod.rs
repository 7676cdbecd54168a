//! What the examples share: a store with one collection and an account that may use it, and a
//! generator of indicators. Not an example itself (cargo builds only `examples/*.rs` and
//! `examples/*/main.rs` as examples).

use std::sync::Arc;

use kizuna_stix::Tlp;
use kizuna_store::{ApiRoot, Collection, NewAccount, Permission, SqliteStore, Store};

/// The API root of the example store.
pub const ROOT: &str = "api1";
/// The collection of the example store.
pub const COLLECTION: &str = "91a7b528-80eb-42ed-a74d-c6fbd5a26116";
/// The API key of account `bench` (read, write, cleared for RED).
pub const API_KEY: &str = "kz_bench_0123456789abcdef0123456789abcdef";

/// A random-looking but reproducible UUID for `n`.
fn uuid(n: u64) -> String {
    let mut x = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut next = || {
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    };
    let (a, b) = (next(), next());
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

/// An indicator of about 450 bytes.
pub fn indicator(n: u64) -> String {
    format!(
        r#"{{"type":"indicator","spec_version":"2.1","id":"indicator--{}","created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","name":"Malicious host {n}","description":"Traffic to this address was seen in connection with a phishing campaign.","pattern":"[ipv4-addr:value = '10.{}.{}.{}']","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z","labels":["malicious-activity"]}}"#,
        uuid(n),
        (n >> 16) & 0xff,
        (n >> 8) & 0xff,
        n & 0xff
    )
}

/// A store with one API root and collection, and an account `bench` with an API key.
pub fn hub(dir: &std::path::Path) -> Arc<SqliteStore> {
    let store = Arc::new(SqliteStore::open(dir).unwrap());
    store
        .create_api_root(&ApiRoot {
            name: ROOT.to_owned(),
            title: "bench".to_owned(),
            description: None,
            max_content_length: 256 << 20,
        })
        .unwrap();
    store
        .create_collection(&Collection {
            api_root: ROOT.to_owned(),
            id: COLLECTION.to_owned(),
            title: "bench".to_owned(),
            description: None,
            alias: None,
            media_types: vec!["application/stix+json;version=2.1".to_owned()],
        })
        .unwrap();
    store
        .create_account(&NewAccount {
            name: "bench".to_owned(),
            password_hash: None,
            tlp_clearance: Tlp::Red,
            admin: false,
        })
        .unwrap();
    store
        .set_permission(
            "bench",
            &Permission {
                api_root: ROOT.to_owned(),
                collection: COLLECTION.to_owned(),
                read: true,
                write: true,
            },
        )
        .unwrap();
    store
        .add_api_key("bench", &kizuna_store::sha256(API_KEY.as_bytes()))
        .unwrap();
    store
}
