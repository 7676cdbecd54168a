//! The TAXII 2.1 endpoints, driven through the router (no TLS, no authentication middleware: each
//! request carries the `Principal` the middleware would have inserted) on a real SQLite store.

// Helpers outside `#[test]` functions unwrap too: a test fails loudly on bad test data.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use kizuna_stix::Tlp;
use kizuna_store::{
    ApiRoot, AuditAction, AuditQuery, Collection, NewAccount, Permission, SqliteStore, Store,
};
use kizuna_taxii::media::TAXII_JSON;
use kizuna_taxii::{AppState, AuthMethod, Principal, ServiceConfig};
use serde_json::{Value, json};
use tower::ServiceExt;

const ROOT: &str = "api1";
/// Read-write for `writer`, read-only for `reader`, alias `main`.
const MAIN: &str = "9f0a4f5c-1c9e-4a43-8d55-2f0d6b7c1a01";
/// Visible to nobody but `admin`.
const PRIVATE: &str = "3b1c2d4e-5f60-4718-9a2b-3c4d5e6f7a02";
/// Write-only for `reader`.
const DROPBOX: &str = "5d6e7f80-9102-4b3c-8d4e-5f6071829303";
/// Root with a small max_content_length.
const SMALL_ROOT: &str = "small";
const SMALL: &str = "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c04";

pub(crate) struct Hub {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    state: AppState,
    app: Router,
}

fn collection(root: &str, id: &str, alias: Option<&str>) -> Collection {
    Collection {
        api_root: root.to_owned(),
        id: id.to_owned(),
        title: format!("collection {id}"),
        description: None,
        alias: alias.map(str::to_owned),
        media_types: vec!["application/stix+json;version=2.1".to_owned()],
    }
}

fn permission(root: &str, id: &str, read: bool, write: bool) -> Permission {
    Permission {
        api_root: root.to_owned(),
        collection: id.to_owned(),
        read,
        write,
    }
}

fn hub_with(config: ServiceConfig) -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    for (name, max) in [(ROOT, 10 << 20), (SMALL_ROOT, 4096)] {
        store
            .create_api_root(&ApiRoot {
                name: name.to_owned(),
                title: format!("root {name}"),
                description: None,
                max_content_length: max,
            })
            .unwrap();
    }
    store
        .create_collection(&collection(ROOT, MAIN, Some("main")))
        .unwrap();
    store
        .create_collection(&collection(ROOT, PRIVATE, None))
        .unwrap();
    store
        .create_collection(&collection(ROOT, DROPBOX, None))
        .unwrap();
    store
        .create_collection(&collection(SMALL_ROOT, SMALL, None))
        .unwrap();
    for (name, clearance, admin) in [
        ("admin", Tlp::Red, true),
        ("writer", Tlp::Red, false),
        ("reader", Tlp::Amber, false),
        ("other", Tlp::Red, false),
    ] {
        store
            .create_account(&NewAccount {
                name: name.to_owned(),
                password_hash: None,
                tlp_clearance: clearance,
                admin,
            })
            .unwrap();
    }
    store
        .set_permission("writer", &permission(ROOT, MAIN, true, true))
        .unwrap();
    store
        .set_permission("writer", &permission(SMALL_ROOT, SMALL, true, true))
        .unwrap();
    store
        .set_permission("reader", &permission(ROOT, MAIN, true, false))
        .unwrap();
    store
        .set_permission("reader", &permission(ROOT, DROPBOX, false, true))
        .unwrap();
    store
        .set_permission("other", &permission(ROOT, MAIN, true, false))
        .unwrap();
    let state = AppState::new(store.clone(), config).unwrap();
    let app = kizuna_taxii::api::routes().with_state(state.clone());
    Hub {
        _dir: dir,
        store,
        state,
        app,
    }
}

fn hub() -> Hub {
    hub_with(ServiceConfig::default())
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn objects(&self) -> Vec<Value> {
        self.json()
            .get("objects")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    fn ids(&self) -> Vec<String> {
        self.objects()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

impl Hub {
    fn principal(&self, name: &str) -> Principal {
        Principal {
            account: Arc::new(self.store.account(name).unwrap().unwrap()),
            method: AuthMethod::Basic,
        }
    }

    async fn send(&self, as_account: &str, request: Request<Body>) -> Reply {
        let mut request = request;
        request.extensions_mut().insert(self.principal(as_account));
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, as_account: &str, uri: &str) -> Reply {
        let request = Request::get(uri)
            .header(header::ACCEPT, TAXII_JSON)
            .body(Body::empty())
            .unwrap();
        self.send(as_account, request).await
    }

    async fn delete(&self, as_account: &str, uri: &str) -> Reply {
        let request = Request::delete(uri)
            .header(header::ACCEPT, TAXII_JSON)
            .body(Body::empty())
            .unwrap();
        self.send(as_account, request).await
    }

    async fn post(&self, as_account: &str, uri: &str, body: impl Into<Vec<u8>>) -> Reply {
        let body = body.into();
        let request = Request::post(uri)
            .header(header::ACCEPT, TAXII_JSON)
            .header(header::CONTENT_TYPE, TAXII_JSON)
            .header(header::CONTENT_LENGTH, body.len())
            .body(Body::from(body))
            .unwrap();
        self.send(as_account, request).await
    }

    async fn post_objects(&self, collection: &str, objects: &[Value]) -> Reply {
        let body = serde_json::to_vec(&json!({ "objects": objects })).unwrap();
        let reply = self.post("writer", &objects_url(collection), body).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.json());
        reply
    }
}

fn objects_url(collection: &str) -> String {
    format!("/{ROOT}/collections/{collection}/objects/")
}

fn uuid(kind: u32, n: u32) -> String {
    format!("{kind:08x}-0000-4000-8000-{n:012x}")
}

/// A valid indicator; `version` picks its `modified` second.
fn indicator(n: u32, version: u32, tlp: Option<Tlp>) -> Value {
    let mut o = json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": format!("indicator--{}", uuid(1, n)),
        "created": "2024-01-01T00:00:00.000Z",
        "modified": format!("2024-01-01T00:00:{version:02}.000Z"),
        "name": format!("indicator {n}"),
        "pattern": format!("[ipv4-addr:value = '198.51.100.{}']", n % 250),
        "pattern_type": "stix",
        "valid_from": "2024-01-01T00:00:00Z",
    });
    if let Some(tlp) = tlp {
        o["object_marking_refs"] = json!([tlp.marking_id()]);
    }
    o
}

fn malware(n: u32) -> Value {
    json!({
        "type": "malware",
        "spec_version": "2.1",
        "id": format!("malware--{}", uuid(2, n)),
        "created": "2024-02-01T00:00:00.000Z",
        "modified": "2024-02-01T00:00:00.000Z",
        "name": format!("malware {n}"),
        "is_family": false,
        "object_marking_refs": [Tlp::Green.marking_id()],
    })
}

fn indicator_id(n: u32) -> String {
    format!("indicator--{}", uuid(1, n))
}

#[path = "api/egress.rs"]
mod egress;
#[path = "api/reads.rs"]
mod reads;
#[path = "api/resources.rs"]
mod resources;
#[path = "api/writes.rs"]
mod writes;
