//! Measures the latency of Get Objects for a page of 100 from the middle of a large collection,
//! through the full router (authentication, rate limit, audit of every object served) with
//! `tower::ServiceExt::oneshot`, no network.
//!
//! ```text
//! cargo run --release -p kizuna-taxii --example page_latency -- [OBJECTS] [REQUESTS]
//! ```
//!
//! OBJECTS (default 1000000) indicators of about 450 bytes are stored directly (not through
//! POST), in batches of 1000; a client then pages with `limit=1000` to the middle and asks
//! REQUESTS (default 2000) times for the same page of 100 there, with its `next` token, first
//! with the audit of reads on (the default), then off. Prints p50, p99 and max, and how many of
//! the requests waited for room in the audit queue: one client asking back to back reads objects
//! faster than the audit log commits their events, so a long enough run ends up paced by it.

// A benchmark fails loudly on bad setup.
#![allow(clippy::unwrap_used)]

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use http::Request;
use http_body_util::BodyExt as _;
use kizuna_stix::ObjectMeta;
use kizuna_store::{CollectionRef, NewObject, Store};
use kizuna_taxii::{AppState, ServiceConfig};
use support::{API_KEY, COLLECTION, ROOT, hub, indicator};
use tower::ServiceExt as _;

async fn get(app: &Router, uri: &str) -> serde_json::Value {
    let request = Request::get(uri)
        .header("Authorization", format!("Bearer {API_KEY}"))
        .header("Accept", "application/taxii+json;version=2.1")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

/// Times `requests` GETs of `uri` (after a warm-up) and prints p50, p99 and max.
async fn measure(label: &str, app: &Router, uri: &str, requests: usize) {
    for _ in 0..requests / 10 {
        get(app, uri).await;
    }
    let mut took = Vec::with_capacity(requests);
    for _ in 0..requests {
        let request = Request::get(uri)
            .header("Authorization", format!("Bearer {API_KEY}"))
            .header("Accept", "application/taxii+json;version=2.1")
            .body(Body::empty())
            .unwrap();
        let t = Instant::now();
        let response = app.clone().oneshot(request).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        took.push(t.elapsed());
        assert!(body.len() > 100 * 400);
    }
    took.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label}: {requests} requests, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        ms(took[requests / 2]),
        ms(took[requests * 99 / 100]),
        ms(took[requests - 1]),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let objects: u64 = args.next().map_or(1_000_000, |a| a.parse().unwrap());
    let requests: usize = args.next().map_or(2000, |a| a.parse().unwrap());

    let dir = tempfile::tempdir().unwrap();
    let store = hub(dir.path());
    let coll = CollectionRef {
        api_root: ROOT.to_owned(),
        id: COLLECTION.to_owned(),
    };
    let filled = Instant::now();
    for from in (0..objects).step_by(1000) {
        let batch: Vec<NewObject> = (from..(from + 1000).min(objects))
            .map(|n| {
                let json = indicator(n);
                let value: serde_json::Value = serde_json::from_str(&json).unwrap();
                NewObject {
                    meta: ObjectMeta::from_value(&value).unwrap(),
                    json,
                }
            })
            .collect();
        store.add_objects(&coll, batch).unwrap();
    }
    println!(
        "stored {objects} objects in {:.1} s",
        filled.elapsed().as_secs_f64()
    );

    let base = format!("/{ROOT}/collections/{COLLECTION}/objects/");
    for audit_reads in [true, false] {
        let config = ServiceConfig {
            rate_per_second: 0.0,
            audit_reads,
            ..ServiceConfig::default()
        };
        let state = AppState::new(store.clone(), config).unwrap();
        let app = kizuna_taxii::router(state.clone());
        // Page to the middle as a client would, then keep asking for the page found there.
        let mut next = None::<String>;
        for _ in 0..objects / 2 / 1000 {
            let uri = match &next {
                Some(token) => format!("{base}?limit=1000&next={token}"),
                None => format!("{base}?limit=1000"),
            };
            next = get(&app, &uri).await["next"].as_str().map(str::to_owned);
        }
        let uri = match &next {
            Some(token) => format!("{base}?limit=100&next={token}"),
            None => format!("{base}?limit=100"),
        };
        // The walk queued an audit event per object it read: let the writer catch up, so that
        // the measurement starts with an empty audit queue.
        state.audit.flush();
        let waits_before = state.metrics.audit_queue_waits();
        let label = if audit_reads {
            "page of 100 from the middle, audit of reads on"
        } else {
            "page of 100 from the middle, audit of reads off"
        };
        measure(label, &app, &uri, requests).await;
        println!(
            "  requests that waited for room in the audit queue: {}",
            state.metrics.audit_queue_waits() - waits_before
        );
        state.audit.flush();
    }
}
