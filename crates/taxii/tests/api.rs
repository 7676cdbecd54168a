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

struct Hub {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
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
    let app = kizuna_taxii::api::routes().with_state(state);
    Hub {
        _dir: dir,
        store,
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

// ----- discovery, API root, collections -----

#[tokio::test]
async fn discovery_lists_api_roots_with_and_without_trailing_slash() {
    let hub = hub();
    for uri in ["/taxii2/", "/taxii2"] {
        let r = hub.get("reader", uri).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("content-type"), Some(TAXII_JSON));
        let d = r.json();
        assert_eq!(d["title"], "Kizuna TAXII 2.1 hub");
        let roots = d["api_roots"].as_array().unwrap();
        assert!(roots.contains(&json!("/api1/")), "{d}");
    }
}

#[tokio::test]
async fn api_root_information() {
    let hub = hub();
    let r = hub.get("reader", "/api1/").await;
    assert_eq!(r.status, StatusCode::OK);
    let a = r.json();
    assert_eq!(a["versions"], json!([TAXII_JSON]));
    assert_eq!(a["max_content_length"], 10 << 20);
    assert_eq!(hub.get("reader", "/api1").await.status, StatusCode::OK);
    let missing = hub.get("reader", "/nope/").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.header("content-type"), Some(TAXII_JSON));
    assert_eq!(missing.json()["http_status"], "404");
}

#[tokio::test]
async fn collections_show_only_visible_ones_with_permissions_of_the_caller() {
    let hub = hub();
    let r = hub.get("reader", "/api1/collections/").await;
    assert_eq!(r.status, StatusCode::OK);
    let list = r.json()["collections"].as_array().unwrap().clone();
    let ids: Vec<&str> = list.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![MAIN, DROPBOX]);
    assert_eq!(list[0]["can_read"], true);
    assert_eq!(list[0]["can_write"], false);
    assert_eq!(list[0]["alias"], "main");
    assert_eq!(list[1]["can_read"], false);
    assert_eq!(list[1]["can_write"], true);

    let w = hub
        .get("writer", &format!("/api1/collections/{MAIN}/"))
        .await
        .json();
    assert_eq!(
        (w["can_read"].clone(), w["can_write"].clone()),
        (json!(true), json!(true))
    );
    let by_alias = hub.get("reader", "/api1/collections/main").await;
    assert_eq!(by_alias.status, StatusCode::OK);
    assert_eq!(by_alias.json()["id"], MAIN);

    let admin = hub.get("admin", "/api1/collections/").await.json();
    assert_eq!(admin["collections"].as_array().unwrap().len(), 3);
    assert_eq!(
        hub.get("reader", "/nope/collections/").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn invisible_collection_is_404_everywhere() {
    let hub = hub();
    hub.post(
        "admin",
        &objects_url(PRIVATE),
        serde_json::to_vec(&json!({"objects": [indicator(1, 0, None)]})).unwrap(),
    )
    .await;
    let id = indicator_id(1);
    for uri in [
        format!("/api1/collections/{PRIVATE}/"),
        format!("/api1/collections/{PRIVATE}/objects/"),
        format!("/api1/collections/{PRIVATE}/manifest/"),
        format!("/api1/collections/{PRIVATE}/objects/{id}/"),
        format!("/api1/collections/{PRIVATE}/objects/{id}/versions/"),
    ] {
        let r = hub.get("reader", &uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
    }
    let post = hub
        .post("reader", &objects_url(PRIVATE), r#"{"objects":[]}"#)
        .await;
    assert_eq!(post.status, StatusCode::NOT_FOUND);
    let del = hub
        .delete(
            "reader",
            &format!("/api1/collections/{PRIVATE}/objects/{id}/"),
        )
        .await;
    assert_eq!(del.status, StatusCode::NOT_FOUND);
    // Still there for those who may see it.
    assert_eq!(
        hub.get("admin", &objects_url(PRIVATE)).await.ids(),
        vec![id]
    );
}

#[tokio::test]
async fn read_only_account_gets_403_on_post_and_write_only_on_get() {
    let hub = hub();
    let body = serde_json::to_vec(&json!({"objects": [indicator(1, 0, None)]})).unwrap();
    let r = hub.post("reader", &objects_url(MAIN), body.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["http_status"], "403");
    assert!(hub.get("writer", &objects_url(MAIN)).await.ids().is_empty());
    // Write-only: may POST, may not read.
    assert_eq!(
        hub.post("reader", &objects_url(DROPBOX), body).await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        hub.get("reader", &objects_url(DROPBOX)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        hub.get("reader", &format!("/api1/collections/{DROPBOX}/manifest/"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

// ----- content negotiation and body limits -----

#[tokio::test]
async fn accept_header_negotiation() {
    let hub = hub();
    for (accept, expected) in [
        (Some(TAXII_JSON), StatusCode::OK),
        (Some("application/taxii+json"), StatusCode::OK),
        (Some("*/*"), StatusCode::OK),
        (Some("text/html, application/*;q=0.1"), StatusCode::OK),
        (None, StatusCode::OK),
        (Some("application/json"), StatusCode::NOT_ACCEPTABLE),
        (
            Some("application/taxii+json;version=2.0"),
            StatusCode::NOT_ACCEPTABLE,
        ),
        (
            Some("application/stix+json;version=2.1"),
            StatusCode::NOT_ACCEPTABLE,
        ),
    ] {
        for uri in ["/taxii2/", &objects_url(MAIN)] {
            let mut b = Request::get(uri);
            if let Some(a) = accept {
                b = b.header(header::ACCEPT, a);
            }
            let r = hub.send("reader", b.body(Body::empty()).unwrap()).await;
            assert_eq!(r.status, expected, "{accept:?} {uri}");
            assert_eq!(r.header("content-type"), Some(TAXII_JSON));
        }
    }
}

#[tokio::test]
async fn post_content_type_must_be_taxii() {
    let hub = hub();
    let body = serde_json::to_vec(&json!({"objects": [indicator(1, 0, None)]})).unwrap();
    for (ct, expected) in [
        (Some("application/json"), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (
            Some("application/taxii+json;version=2.0"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (None, StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (Some("application/taxii+json"), StatusCode::ACCEPTED),
        (
            Some("application/taxii+json; version=2.1; charset=utf-8"),
            StatusCode::ACCEPTED,
        ),
    ] {
        let mut b = Request::post(objects_url(MAIN)).header(header::ACCEPT, TAXII_JSON);
        if let Some(ct) = ct {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        let r = hub
            .send("writer", b.body(Body::from(body.clone())).unwrap())
            .await;
        assert_eq!(r.status, expected, "{ct:?}");
    }
}

#[tokio::test]
async fn body_over_max_content_length_is_413() {
    let hub = hub();
    let objects: Vec<Value> = (0..40).map(|n| indicator(n, 0, None)).collect();
    let body = serde_json::to_vec(&json!({ "objects": objects })).unwrap();
    assert!(body.len() > 4096);
    let uri = format!("/{SMALL_ROOT}/collections/{SMALL}/objects/");
    // Declared by Content-Length.
    let r = hub.post("writer", &uri, body.clone()).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.json()["http_status"], "413");
    // Not declared (chunked): found while reading.
    let stream = futures_body(body);
    let request = Request::post(&uri)
        .header(header::CONTENT_TYPE, TAXII_JSON)
        .body(stream)
        .unwrap();
    assert_eq!(
        hub.send("writer", request).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // Under the limit: accepted.
    let small = serde_json::to_vec(&json!({ "objects": [indicator(1, 0, None)] })).unwrap();
    assert_eq!(
        hub.post("writer", &uri, small).await.status,
        StatusCode::ACCEPTED
    );
}

/// A body without a known length (as a chunked upload has): `map_frame` hides the size hint.
fn futures_body(bytes: Vec<u8>) -> Body {
    Body::new(http_body_util::Full::new(bytes::Bytes::from(bytes)).map_frame(|f| f))
}

// ----- adding objects -----

#[tokio::test]
async fn partially_invalid_envelope_stores_the_valid_objects() {
    let hub = hub();
    let envelope = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/taxii/mixed-envelope.json"
    ))
    .unwrap();
    let r = hub
        .post("writer", &objects_url(MAIN), envelope.clone())
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let status = r.json();
    assert_eq!(status["status"], "complete");
    assert_eq!(status["total_count"], 7);
    assert_eq!(status["success_count"], 5, "{status}");
    assert_eq!(status["failure_count"], 2, "{status}");
    assert_eq!(status["pending_count"], 0);
    let failures = status["failures"].as_array().unwrap();
    let failed: Vec<&str> = failures.iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert!(failed.contains(&"indicator--1e5f2f2c-1b59-4b53-8d8e-6a1f4e4bd0a1"));
    assert!(failed.contains(&"malware--6b9a5a8c-2f1e-4c5d-9a7b-3e2f1d0c9b8a"));
    for f in failures {
        assert!(!f["message"].as_str().unwrap().is_empty());
        assert!(f["version"].is_string());
    }
    let bad_pattern = failures
        .iter()
        .find(|f| f["id"] == "indicator--1e5f2f2c-1b59-4b53-8d8e-6a1f4e4bd0a1")
        .unwrap();
    assert!(
        bad_pattern["message"].as_str().unwrap().contains("pattern"),
        "{bad_pattern}"
    );

    // The status resource is kept.
    let id = status["id"].as_str().unwrap();
    let again = hub.get("reader", &format!("/api1/status/{id}/")).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json(), status);
    assert_eq!(
        hub.get(
            "reader",
            "/api1/status/00000000-0000-4000-8000-000000000000/"
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );

    // The valid objects are served byte for byte as sent.
    let all = hub.get("reader", &objects_url(MAIN)).await;
    assert_eq!(all.ids().len(), 5);
    let sent: Value = serde_json::from_slice(&envelope).unwrap();
    let text = String::from_utf8(all.body.clone()).unwrap();
    assert!(
        text.contains(r#""x_kizuna_note": {"nested": [1, 2.50, "kept as sent"]}"#),
        "{text}"
    );
    assert_eq!(all.objects()[1], sent["objects"][1]);

    // Writes are audited.
    let writes = hub
        .store
        .audit_events(&AuditQuery {
            action: Some(AuditAction::Write),
            limit: 100,
            ..AuditQuery::default()
        })
        .unwrap();
    assert_eq!(writes.len(), 5);
    assert!(
        writes
            .iter()
            .all(|w| w.account.as_deref() == Some("writer"))
    );
}

#[tokio::test]
async fn all_invalid_envelope_is_422_with_failures() {
    let hub = hub();
    let mut bad = indicator(1, 0, None);
    bad["created"] = json!("not a time");
    let r = hub
        .post(
            "writer",
            &objects_url(MAIN),
            serde_json::to_vec(&json!({"objects": [bad, {"type": "x"}]})).unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let e = r.json();
    assert_eq!(e["http_status"], "422");
    let details = &e["details"];
    assert_eq!(details["failure_count"], 2);
    assert_eq!(details["success_count"], 0);
    let status_id = details["id"].as_str().unwrap();
    let kept = hub
        .get("writer", &format!("/api1/status/{status_id}/"))
        .await;
    assert_eq!(kept.status, StatusCode::OK);
    assert_eq!(kept.json()["failure_count"], 2);
    assert!(hub.get("writer", &objects_url(MAIN)).await.ids().is_empty());
}

#[tokio::test]
async fn malformed_bodies() {
    let hub = hub();
    let url = objects_url(MAIN);
    assert_eq!(
        hub.post("writer", &url, "{not json").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        hub.post("writer", &url, "[1, 2]").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        hub.post("writer", &url, r#"{"objects": 5}"#).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let r = hub.post("writer", &url, deep).await;
    assert!(r.status.is_client_error(), "{}", r.status);
    let empty = hub.post("writer", &url, r#"{}"#).await;
    assert_eq!(empty.status, StatusCode::ACCEPTED);
    assert_eq!(empty.json()["total_count"], 0);
}

#[tokio::test]
async fn exact_duplicates_are_not_errors() {
    let hub = hub();
    let objects: Vec<Value> = (0..3).map(|n| indicator(n, 0, None)).collect();
    hub.post_objects(MAIN, &objects).await;
    let again = hub.post_objects(MAIN, &objects).await.json();
    assert_eq!(again["success_count"], 3);
    assert_eq!(again["failure_count"], 0);
    // Same id and version, different content: a failure, not a silent overwrite.
    let mut changed = indicator(0, 0, None);
    changed["name"] = json!("changed");
    let r = hub
        .post(
            "writer",
            &objects_url(MAIN),
            serde_json::to_vec(&json!({"objects": [changed, indicator(9, 0, None)]})).unwrap(),
        )
        .await
        .json();
    assert_eq!(r["success_count"], 1);
    assert_eq!(r["failure_count"], 1);
    let all = hub
        .get(
            "reader",
            &format!("{}?match[version]=all", objects_url(MAIN)),
        )
        .await;
    assert_eq!(all.ids().len(), 4);
}

// ----- reading: filters, paging, headers -----

#[tokio::test]
async fn filters_on_objects() {
    let hub = hub();
    let mut objects = vec![malware(1)];
    for v in 0..3 {
        objects.push(indicator(1, v, None));
    }
    objects.push(indicator(2, 0, None));
    hub.post_objects(MAIN, &objects).await;
    let later = indicator(3, 0, None);
    let posted = hub.post_objects(MAIN, &[later]).await.json();
    let _ = posted;
    let url = objects_url(MAIN);
    let q = |query: &str| format!("{url}?{query}");

    // Default: last version of each object, in date_added order.
    let r = hub.get("reader", &url).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.ids(),
        vec![
            malware(1)["id"].as_str().unwrap().to_owned(),
            indicator_id(1),
            indicator_id(2),
            indicator_id(3)
        ]
    );
    assert_eq!(r.objects()[1]["modified"], "2024-01-01T00:00:02.000Z");
    assert!(r.header("x-taxii-date-added-first").is_some());
    assert!(r.header("x-taxii-date-added-last").is_some());
    assert_eq!(r.json()["more"], false);

    let types = hub.get("reader", &q("match[type]=malware")).await;
    assert_eq!(types.ids().len(), 1);
    let ids = hub
        .get(
            "reader",
            &q(&format!(
                "match[id]={},{}",
                indicator_id(2),
                indicator_id(3)
            )),
        )
        .await;
    assert_eq!(ids.ids(), vec![indicator_id(2), indicator_id(3)]);
    let all = hub
        .get(
            "reader",
            &q(&format!("match[id]={}&match[version]=all", indicator_id(1))),
        )
        .await;
    assert_eq!(all.ids().len(), 3);
    let first = hub
        .get(
            "reader",
            &q(&format!(
                "match[id]={}&match[version]=first",
                indicator_id(1)
            )),
        )
        .await;
    assert_eq!(first.objects()[0]["modified"], "2024-01-01T00:00:00.000Z");
    let exact = hub
        .get(
            "reader",
            &q(&format!(
                "match[id]={}&match[version]=2024-01-01T00:00:01.000Z",
                indicator_id(1)
            )),
        )
        .await;
    assert_eq!(exact.objects().len(), 1);
    assert_eq!(exact.objects()[0]["modified"], "2024-01-01T00:00:01.000Z");
    let first_last = hub
        .get(
            "reader",
            &q(&format!(
                "match[id]={}&match[version]=first,last",
                indicator_id(1)
            )),
        )
        .await;
    assert_eq!(first_last.objects().len(), 2);
    let spec = hub.get("reader", &q("match[spec_version]=2.1")).await;
    assert_eq!(spec.ids().len(), 4);
    let spec20 = hub.get("reader", &q("match[spec_version]=2.0")).await;
    assert!(spec20.ids().is_empty());
    assert_eq!(spec20.json()["more"], false);

    // added_after: strictly after the first POST's date_added.
    let first_added = r.header("x-taxii-date-added-first").unwrap().to_owned();
    let after = hub
        .get("reader", &q(&format!("added_after={first_added}")))
        .await;
    assert_eq!(after.ids(), vec![indicator_id(3)]);

    let limited = hub.get("reader", &q("limit=2")).await.json();
    assert_eq!(limited["objects"].as_array().unwrap().len(), 2);
    assert_eq!(limited["more"], true);
    assert!(limited["next"].is_string());

    // Unknown match fields are ignored; malformed parameters are 400.
    assert_eq!(
        hub.get("reader", &q("match[x_foo]=bar")).await.ids().len(),
        4
    );
    for bad in [
        "limit=0",
        "added_after=yesterday",
        "match[version]=all,first",
        "limit=1&limit=2",
        "match[id]=bogus",
    ] {
        let r = hub.get("reader", &q(bad)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.json()["http_status"], "400");
    }
}

/// Every object of one POST shares one date_added: paging must follow the sequence.
#[tokio::test]
async fn paging_many_objects_sharing_date_added_no_skips_no_repeats() {
    let hub = hub();
    let objects: Vec<Value> = (0..257).map(|n| indicator(n, 0, None)).collect();
    hub.post_objects(MAIN, &objects).await;
    for endpoint in ["objects", "manifest"] {
        let base = format!("/api1/collections/{MAIN}/{endpoint}/?limit=10&match[type]=indicator");
        let mut seen = Vec::new();
        let mut next: Option<String> = None;
        let mut pages = 0;
        loop {
            let uri = match &next {
                Some(n) => format!("{base}&next={n}"),
                None => base.clone(),
            };
            let r = hub.get("reader", &uri).await;
            assert_eq!(r.status, StatusCode::OK, "{endpoint}");
            let page = r.json();
            let ids = r.ids();
            assert!(ids.len() <= 10);
            if !ids.is_empty() {
                assert!(r.header("x-taxii-date-added-first").is_some());
                assert!(r.header("x-taxii-date-added-last").is_some());
            }
            seen.extend(ids);
            pages += 1;
            if page["more"] == true {
                next = Some(page["next"].as_str().unwrap().to_owned());
            } else {
                assert!(page.get("next").is_none());
                break;
            }
        }
        assert_eq!(pages, 26, "{endpoint}");
        let expected: Vec<String> = (0..257).map(indicator_id).collect();
        assert_eq!(seen, expected, "{endpoint}");
    }
}

#[tokio::test]
async fn limit_above_maximum_is_lowered() {
    let hub = hub_with(ServiceConfig {
        max_page_size: 5,
        default_page_size: 3,
        ..ServiceConfig::default()
    });
    let objects: Vec<Value> = (0..8).map(|n| indicator(n, 0, None)).collect();
    hub.post_objects(MAIN, &objects).await;
    let r = hub
        .get("reader", &format!("{}?limit=1000", objects_url(MAIN)))
        .await;
    assert_eq!(r.ids().len(), 5);
    assert_eq!(r.json()["more"], true);
    let d = hub.get("reader", &objects_url(MAIN)).await;
    assert_eq!(d.ids().len(), 3);
}

#[tokio::test]
async fn next_tokens_are_bound_to_query_account_and_integrity() {
    let hub = hub();
    let objects: Vec<Value> = (0..5).map(|n| indicator(n, 0, None)).collect();
    hub.post_objects(MAIN, &objects).await;
    let url = objects_url(MAIN);
    let first = hub
        .get("reader", &format!("{url}?limit=2&match[type]=indicator"))
        .await
        .json();
    let next = first["next"].as_str().unwrap().to_owned();

    // The same query, any page size: fine.
    let ok = hub
        .get(
            "reader",
            &format!("{url}?limit=3&match[type]=indicator&next={next}"),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(
        ok.ids(),
        vec![indicator_id(2), indicator_id(3), indicator_id(4)]
    );

    // Tampered.
    let mut bytes = next.clone().into_bytes();
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    let r = hub
        .get(
            "reader",
            &format!("{url}?limit=2&match[type]=indicator&next={tampered}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["http_status"], "400");
    for garbage in ["x", "%00", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        let r = hub
            .get(
                "reader",
                &format!("{url}?match[type]=indicator&next={garbage}"),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{garbage}");
    }
    // Another account.
    let r = hub
        .get(
            "other",
            &format!("{url}?limit=2&match[type]=indicator&next={next}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Another query.
    let r = hub
        .get(
            "reader",
            &format!("{url}?limit=2&match[type]=malware&next={next}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = hub
        .get("reader", &format!("{url}?limit=2&next={next}"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Another endpoint.
    let r = hub
        .get(
            "reader",
            &format!(
                "/api1/collections/{MAIN}/manifest/?limit=2&match[type]=indicator&next={next}"
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Same collection by alias: same token works.
    let r = hub
        .get(
            "reader",
            &format!("/api1/collections/main/objects/?match[type]=indicator&next={next}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn next_tokens_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let token;
    {
        let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let state = AppState::new(store, ServiceConfig::default()).unwrap();
        token = state.tokens.seal(
            &kizuna_taxii::token::TokenScope {
                account: "a",
                api_root: "r",
                collection: "c",
                endpoint: "objects",
                filters: "f",
            },
            17,
        );
    }
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let state = AppState::new(store, ServiceConfig::default()).unwrap();
    let opened = state.tokens.open(
        &kizuna_taxii::token::TokenScope {
            account: "a",
            api_root: "r",
            collection: "c",
            endpoint: "objects",
            filters: "f",
        },
        &token,
    );
    assert_eq!(opened.unwrap(), 17);
}

// ----- one object, versions, manifest, delete -----

#[tokio::test]
async fn get_an_object_and_its_versions() {
    let hub = hub();
    for v in 0..3 {
        hub.post_objects(MAIN, &[indicator(1, v, None)]).await;
    }
    let url = format!("{}{}/", objects_url(MAIN), indicator_id(1));
    let r = hub.get("reader", &url).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.objects().len(), 1);
    assert_eq!(r.objects()[0]["modified"], "2024-01-01T00:00:02.000Z");
    assert!(r.header("x-taxii-date-added-first").is_some());
    let all = hub
        .get("reader", &format!("{url}?match[version]=all"))
        .await;
    assert_eq!(all.objects().len(), 3);
    let no_slash = hub.get("reader", url.trim_end_matches('/')).await;
    assert_eq!(no_slash.status, StatusCode::OK);

    let versions = hub.get("reader", &format!("{url}versions/")).await;
    assert_eq!(versions.status, StatusCode::OK);
    assert_eq!(
        versions.json()["versions"],
        json!([
            "2024-01-01T00:00:00.000Z",
            "2024-01-01T00:00:01.000Z",
            "2024-01-01T00:00:02.000Z"
        ])
    );
    assert!(versions.header("x-taxii-date-added-first").is_some());
    assert_ne!(
        versions.header("x-taxii-date-added-first"),
        versions.header("x-taxii-date-added-last")
    );
    let paged = hub
        .get("reader", &format!("{url}versions/?limit=2"))
        .await
        .json();
    assert_eq!(paged["more"], true);
    let rest = hub
        .get(
            "reader",
            &format!(
                "{url}versions/?limit=2&next={}",
                paged["next"].as_str().unwrap()
            ),
        )
        .await
        .json();
    assert_eq!(rest["versions"], json!(["2024-01-01T00:00:02.000Z"]));

    let missing = format!("{}{}/", objects_url(MAIN), indicator_id(99));
    assert_eq!(
        hub.get("reader", &missing).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        hub.get("reader", &format!("{missing}versions/"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        hub.get("reader", &format!("{}not-an-id/", objects_url(MAIN)))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn manifest_records() {
    let hub = hub();
    hub.post_objects(
        MAIN,
        &[indicator(1, 0, None), indicator(1, 1, None), malware(1)],
    )
    .await;
    let r = hub
        .get("reader", &format!("/api1/collections/{MAIN}/manifest/"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let objects = r.objects();
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[0]["id"], indicator_id(1));
    assert_eq!(objects[0]["version"], "2024-01-01T00:00:01.000Z");
    assert_eq!(
        objects[0]["media_type"],
        "application/stix+json;version=2.1"
    );
    let added = objects[0]["date_added"].as_str().unwrap();
    assert_eq!(added.len(), "2024-01-01T00:00:00.000000Z".len(), "{added}");
    assert_eq!(r.header("x-taxii-date-added-first"), Some(added));
    let all = hub
        .get(
            "reader",
            &format!("/api1/collections/{MAIN}/manifest/?match[version]=all&match[type]=indicator"),
        )
        .await;
    assert_eq!(all.objects().len(), 2);
}

#[tokio::test]
async fn delete_an_object() {
    let hub = hub();
    for v in 0..3 {
        hub.post_objects(MAIN, &[indicator(1, v, None)]).await;
    }
    hub.post_objects(MAIN, &[indicator(2, 0, None)]).await;
    let url = format!("{}{}/", objects_url(MAIN), indicator_id(1));

    // Permissions: read-only 403, invisible 404.
    assert_eq!(
        hub.delete("reader", &url).await.status,
        StatusCode::FORBIDDEN
    );

    // One version.
    let one = format!("{url}?match[version]=2024-01-01T00:00:01.000Z");
    let r = hub.delete("writer", &one).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(hub.get("reader", &one).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        hub.delete("writer", &one).await.status,
        StatusCode::NOT_FOUND
    );
    let left = hub
        .get("reader", &format!("{url}?match[version]=all"))
        .await;
    assert_eq!(left.objects().len(), 2);

    // Every version.
    assert_eq!(hub.delete("writer", &url).await.status, StatusCode::OK);
    assert_eq!(hub.get("reader", &url).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        hub.delete("writer", &url).await.status,
        StatusCode::NOT_FOUND
    );
    let manifest = hub
        .get("reader", &format!("/api1/collections/{MAIN}/manifest/"))
        .await;
    assert_eq!(manifest.ids(), vec![indicator_id(2)]);

    let deletes = hub
        .store
        .audit_events(&AuditQuery {
            action: Some(AuditAction::Delete),
            limit: 10,
            ..AuditQuery::default()
        })
        .unwrap();
    assert_eq!(deletes.len(), 2);
}

// ----- TLP clearance -----

#[tokio::test]
async fn amber_cleared_reader_never_sees_amber_strict_or_red() {
    let hub = hub();
    let levels = [
        (10, Some(Tlp::Clear)),
        (11, Some(Tlp::Green)),
        (12, Some(Tlp::Amber)),
        (13, Some(Tlp::AmberStrict)),
        (14, Some(Tlp::Red)),
        (15, None),
    ];
    let objects: Vec<Value> = levels.iter().map(|(n, t)| indicator(*n, 0, *t)).collect();
    hub.post_objects(MAIN, &objects).await;
    let visible = vec![
        indicator_id(10),
        indicator_id(11),
        indicator_id(12),
        indicator_id(15),
    ];

    let r = hub
        .get(
            "reader",
            &format!("{}?match[version]=all", objects_url(MAIN)),
        )
        .await;
    assert_eq!(r.ids(), visible);
    let m = hub
        .get("reader", &format!("/api1/collections/{MAIN}/manifest/"))
        .await;
    assert_eq!(m.ids(), visible);
    for hidden in [13, 14] {
        let url = format!("{}{}/", objects_url(MAIN), indicator_id(hidden));
        assert_eq!(hub.get("reader", &url).await.status, StatusCode::NOT_FOUND);
        assert_eq!(
            hub.get("reader", &format!("{url}?match[version]=all"))
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            hub.get("reader", &format!("{url}versions/")).await.status,
            StatusCode::NOT_FOUND
        );
        let by_id = hub
            .get(
                "reader",
                &format!("{}?match[id]={}", objects_url(MAIN), indicator_id(hidden)),
            )
            .await;
        assert!(by_id.ids().is_empty());
        // The RED-cleared writer sees it.
        assert_eq!(hub.get("writer", &url).await.status, StatusCode::OK);
    }
    // A newer version marked RED hides only itself: `last` for the reader is the older one? No:
    // the reader sees the newest version it is cleared for, or nothing; never the RED one.
    hub.post_objects(MAIN, &[indicator(12, 1, Some(Tlp::Red))])
        .await;
    let r = hub
        .get(
            "reader",
            &format!(
                "{}{}/?match[version]=all",
                objects_url(MAIN),
                indicator_id(12)
            ),
        )
        .await;
    for o in r.objects() {
        assert_ne!(o["object_marking_refs"], json!([Tlp::Red.marking_id()]));
    }

    // Reads are audited, one event per version served.
    let served = hub
        .store
        .audit_events(&AuditQuery {
            account: Some("reader".to_owned()),
            action: Some(AuditAction::Serve),
            limit: 1000,
            ..AuditQuery::default()
        })
        .unwrap();
    assert!(served.len() >= visible.len());
    assert!(served.iter().all(|e| {
        let id = e.object_id.as_deref().unwrap_or("");
        id != indicator_id(13) && id != indicator_id(14)
    }));
}

#[tokio::test]
async fn delete_cannot_touch_what_the_writer_may_not_read() {
    let hub = hub();
    hub.post(
        "admin",
        &objects_url(MAIN),
        serde_json::to_vec(&json!({"objects": [indicator(1, 0, Some(Tlp::Red))]})).unwrap(),
    )
    .await;
    hub.store
        .set_permission("reader", &permission(ROOT, MAIN, true, true))
        .unwrap();
    let url = format!("{}{}/", objects_url(MAIN), indicator_id(1));
    assert_eq!(
        hub.delete("reader", &url).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(hub.get("admin", &url).await.status, StatusCode::OK);
}

#[tokio::test]
async fn method_not_allowed_and_unknown_paths() {
    let hub = hub();
    let r = hub
        .send(
            "writer",
            Request::builder()
                .method(Method::PUT)
                .uri(objects_url(MAIN))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.header("content-type"), Some(TAXII_JSON));
    assert_eq!(r.json()["http_status"], "405");
    let r = hub.get("writer", "/api1/collections/x/y/z/").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["http_status"], "404");
}

/// Envelopes large enough to be validated on several threads keep their order and verdicts.
#[tokio::test]
async fn large_envelope_is_judged_in_order() {
    let hub = hub();
    let mut objects: Vec<Value> = (0..600).map(|n| indicator(n, 0, None)).collect();
    for n in [7usize, 300, 599] {
        objects[n]["pattern"] = json!("[broken");
    }
    let body = serde_json::to_vec(&json!({ "objects": objects })).unwrap();
    let status = hub.post("writer", &objects_url(MAIN), body).await.json();
    assert_eq!(status["success_count"], 597);
    assert_eq!(status["failure_count"], 3);
    let failed: Vec<&str> = status["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        failed,
        vec![indicator_id(7), indicator_id(300), indicator_id(599)]
    );
    let successes = status["successes"].as_array().unwrap();
    assert_eq!(successes[0]["id"], indicator_id(0));
    assert_eq!(successes[596]["id"], indicator_id(598));
}
