//! Measures Add Objects end to end in one process: POSTs of envelopes of indicators through the
//! full router (authentication, limits, validation, store) with `tower::ServiceExt::oneshot`, no
//! network; then the same objects' validation and storage measured apart, to show where the time
//! goes.
//!
//! ```text
//! cargo run --release -p kizuna-taxii --example ingest_post -- [POSTS] [PER_POST]
//! ```
//!
//! POSTS (default 50) envelopes of PER_POST (default 1000) indicators of about 450 bytes each,
//! with distinct ids, into a fresh store in a temporary directory.

// A benchmark fails loudly on bad setup.
#![allow(clippy::unwrap_used)]

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use axum::body::Body;
use http::Request;
use kizuna_stix::{ObjectMeta, validate_object};
use kizuna_store::{AuditAction, AuditEvent, CollectionRef, NewObject, Store};
use kizuna_taxii::{AppState, ServiceConfig};
use support::{API_KEY, COLLECTION, ROOT, hub, indicator};
use tower::ServiceExt as _;

fn envelope(from: u64, count: u64) -> Vec<u8> {
    let objects: Vec<String> = (from..from + count).map(indicator).collect();
    format!(r#"{{"objects":[{}]}}"#, objects.join(",")).into_bytes()
}

fn rate(objects: u64, took: Duration) -> f64 {
    objects as f64 / took.as_secs_f64()
}

/// CPU time (user + system) used by this process so far, all threads, exited ones included: on
/// a shared machine, objects per CPU second are steadier than objects per wall second.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which ends with the last ')'): utime is the 12th, stime 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Linux reports these in USER_HZ, 100 per second on every mainstream configuration.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let posts: u64 = args.next().map_or(50, |a| a.parse().unwrap());
    let per_post: u64 = args.next().map_or(1000, |a| a.parse().unwrap());

    let dir = tempfile::tempdir().unwrap();
    let store = hub(dir.path());
    let config = ServiceConfig {
        rate_per_second: 0.0,
        ..ServiceConfig::default()
    };
    let state = AppState::new(store.clone(), config).unwrap();
    let app = kizuna_taxii::router(state);
    let bodies: Vec<Vec<u8>> = (0..posts)
        .map(|p| envelope(p * per_post, per_post))
        .collect();
    let uri = format!("/{ROOT}/collections/{COLLECTION}/objects/");

    let mut each = Vec::with_capacity(bodies.len());
    let cpu = cpu_time();
    let started = Instant::now();
    for body in bodies {
        let request = Request::post(&uri)
            .header("Authorization", format!("Bearer {API_KEY}"))
            .header("Accept", "application/taxii+json;version=2.1")
            .header("Content-Type", "application/taxii+json;version=2.1")
            .header("Content-Length", body.len())
            .body(Body::from(body))
            .unwrap();
        let t = Instant::now();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 202);
        each.push(t.elapsed());
    }
    let total = started.elapsed();
    let cpu = cpu_time() - cpu;
    each.sort();
    println!(
        "end to end: {posts} POSTs of {per_post}: {:.0} objects/s wall, {:.0} objects per CPU second; per POST p50 {:.1} ms, max {:.1} ms",
        rate(posts * per_post, total),
        rate(posts * per_post, cpu),
        each[each.len() / 2].as_secs_f64() * 1000.0,
        each[each.len() - 1].as_secs_f64() * 1000.0,
    );

    // The parts, one thread, on one envelope's worth of fresh objects.
    let texts: Vec<String> = (0..per_post)
        .map(|n| indicator(1_000_000_000 + n))
        .collect();
    let n = per_post;
    let t = Instant::now();
    let values: Vec<serde_json::Value> = texts
        .iter()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect();
    let parse = t.elapsed();
    let t = Instant::now();
    for v in &values {
        assert!(validate_object(v).is_empty());
    }
    let validate = t.elapsed();
    let t = Instant::now();
    let metas: Vec<ObjectMeta> = values
        .iter()
        .map(|v| ObjectMeta::from_value(v).unwrap())
        .collect();
    let meta = t.elapsed();
    let t = Instant::now();
    for v in &values {
        let p = v["pattern"].as_str().unwrap();
        kizuna_pattern::Pattern::parse(p).unwrap();
    }
    let pattern = t.elapsed();
    let objects: Vec<NewObject> = metas
        .into_iter()
        .zip(texts)
        .map(|(meta, json)| NewObject { meta, json })
        .collect();
    let coll = CollectionRef {
        api_root: ROOT.to_owned(),
        id: COLLECTION.to_owned(),
    };
    let t = Instant::now();
    let report = store.add_objects(&coll, objects).unwrap();
    let add = t.elapsed();
    let events: Vec<AuditEvent> = values
        .iter()
        .map(|v| AuditEvent {
            time: report.date_added,
            account: Some("bench".to_owned()),
            action: AuditAction::Write,
            collection: Some(COLLECTION.to_owned()),
            object_id: v["id"].as_str().map(str::to_owned),
            version: v["modified"].as_str().map(str::to_owned),
            detail: None,
        })
        .collect();
    let t = Instant::now();
    store.audit(&events).unwrap();
    let audit = t.elapsed();
    println!(
        "parts, one thread, objects/s: JSON parse {:.0}, validate {:.0}, meta {:.0}, pattern {:.0}, store add {:.0}, audit {:.0}",
        rate(n, parse),
        rate(n, validate),
        rate(n, meta),
        rate(n, pattern),
        rate(n, add),
        rate(n, audit),
    );
}
