//! Measures Add Objects end to end in one process: POSTs of envelopes of indicators through the
//! full router (authentication, limits, validation, store) with `tower::ServiceExt::oneshot`, no
//! network, from several concurrent clients, into an empty collection and again after filling it;
//! then the same objects' validation and storage measured apart, to show where the time goes.
//!
//! ```text
//! cargo run --release -p kizuna-taxii --example ingest_post -- [POSTS] [PER_POST] [FILL] [CLIENTS] [DIR]
//! ```
//!
//! POSTS (default 500) envelopes of PER_POST (default 100) indicators of about 450 bytes each,
//! with distinct ids, sent by CLIENTS (default 4) concurrent clients into a fresh store (in DIR,
//! default a temporary directory); then, if FILL (default 0) is more than that, the collection is
//! filled up to FILL objects (envelopes of 1000) and the same measurement is repeated.

// A benchmark fails loudly on bad setup.
#![allow(clippy::unwrap_used)]

#[path = "support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use http::Request;
use kizuna_stix::{ObjectMeta, validate_object};
use kizuna_store::{CollectionRef, NewObject, Store};
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

async fn post(app: &Router, body: Vec<u8>) -> Duration {
    let uri = format!("/{ROOT}/collections/{COLLECTION}/objects/");
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
    t.elapsed()
}

/// Sends envelopes `first..first + posts` (of `per_post` objects each) from `clients` concurrent
/// clients; the envelopes are generated before the clock starts.
async fn measure(app: &Router, label: &str, first: u64, posts: u64, per_post: u64, clients: u64) {
    let bodies: Vec<Vec<u8>> = (first..first + posts)
        .map(|p| envelope(p * per_post, per_post))
        .collect();
    let queue = Arc::new(Mutex::new(bodies));
    let cpu = cpu_time();
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (app, queue) = (app.clone(), queue.clone());
            tokio::spawn(async move {
                let mut each = Vec::new();
                loop {
                    let body = queue.lock().unwrap().pop();
                    let Some(body) = body else { break };
                    each.push(post(&app, body).await);
                }
                each
            })
        })
        .collect();
    let mut each = Vec::new();
    for task in tasks {
        each.extend(task.await.unwrap());
    }
    let total = started.elapsed();
    let cpu = cpu_time() - cpu;
    each.sort();
    println!(
        "{label}: {posts} POSTs of {per_post} by {clients} clients: {:.0} objects/s wall, {:.0} objects per CPU second ({:.1} µs CPU/object); per POST p50 {:.1} ms, max {:.1} ms",
        rate(posts * per_post, total),
        rate(posts * per_post, cpu),
        cpu.as_secs_f64() * 1e6 / (posts * per_post) as f64,
        each[each.len() / 2].as_secs_f64() * 1000.0,
        each[each.len() - 1].as_secs_f64() * 1000.0,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let posts: u64 = args.next().map_or(500, |a| a.parse().unwrap());
    let per_post: u64 = args.next().map_or(100, |a| a.parse().unwrap());
    let fill: u64 = args.next().map_or(0, |a| a.parse().unwrap());
    let clients: u64 = args.next().map_or(4, |a| a.parse().unwrap());
    let temp = tempfile::tempdir().unwrap();
    let dir = args
        .next()
        .map_or_else(|| temp.path().to_owned(), std::path::PathBuf::from);

    let store = hub(&dir);
    let config = ServiceConfig {
        rate_per_second: 0.0,
        ..ServiceConfig::default()
    };
    let state = AppState::new(store.clone(), config).unwrap();
    let app = kizuna_taxii::router(state);

    measure(&app, "at 0", 0, posts, per_post, clients).await;
    let stored = posts * per_post;
    if fill > stored {
        // Envelope numbers far above those measured, so that ids never collide.
        let fill_posts = (fill - stored).div_ceil(1000);
        let started = Instant::now();
        let base = 2_000_000;
        for chunk in 0..fill_posts.div_ceil(64) {
            let first = base + chunk * 64;
            let last = (first + 64).min(base + fill_posts);
            let bodies: Vec<Vec<u8>> = (first..last).map(|p| envelope(p * 1000, 1000)).collect();
            for body in bodies {
                post(&app, body).await;
            }
        }
        println!(
            "filled with {} objects in {:.1?}",
            fill_posts * 1000,
            started.elapsed()
        );
        let at = stored + fill_posts * 1000;
        measure(&app, &format!("at {at}"), posts, posts, per_post, clients).await;
    }

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
    // The add with its write audit (one audit entry for the envelope), as a POST stores it.
    let t = Instant::now();
    store.add_objects_audited(&coll, objects, "bench").unwrap();
    let add = t.elapsed();
    println!(
        "parts, one thread, objects/s: JSON parse {:.0}, validate {:.0}, meta {:.0}, pattern {:.0}, store add with its audit {:.0}",
        rate(n, parse),
        rate(n, validate),
        rate(n, meta),
        rate(n, pattern),
        rate(n, add),
    );
}
