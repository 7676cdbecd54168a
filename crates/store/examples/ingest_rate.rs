//! Measures the SQLite store alone: ingest rate at 0 and at 1,000,000 stored objects, and the cost
//! of reading a page from the middle of the collection.
//!
//! ```text
//! cargo run --release -p kizuna-store --example ingest_rate -- [FILL] [DIR]
//! ```
//!
//! FILL (default 1000000) is how many objects are stored before the second measurement; DIR
//! (default: a temporary directory) is where the store goes. If DIR already holds the collection
//! of an earlier run (kept with DIR), only the second measurement is made, on top of what is
//! there: `ingest_rate 1000000 DIR` once, then copies of DIR measure a window at 1,000,000 in
//! seconds, or under `perf record`. Objects are indicators of about 450
//! bytes with distinct ids, their metadata built directly (no JSON parsing is measured).

use std::error::Error;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kizuna_stix::{ObjectMeta, StixId, Timestamp};
use kizuna_store::{
    ApiRoot, Collection, CollectionRef, NewObject, ObjectQuery, SqliteStore, Store, VersionFilter,
};

const PROBE: u32 = 50_000;

/// A random-looking but reproducible UUID for `n` (so ids land all over the id index, as real
/// UUIDs do).
fn uuid(n: u32) -> String {
    let mut x = u64::from(n).wrapping_add(0x9e37_79b9_7f4a_7c15);
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

fn indicator(n: u32) -> Result<NewObject, Box<dyn Error>> {
    let id = format!("indicator--{}", uuid(n));
    let json = format!(
        r#"{{"type":"indicator","spec_version":"2.1","id":"{id}","created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","name":"Malicious host {n}","description":"Traffic to this address was seen in connection with a phishing campaign.","pattern":"[ipv4-addr:value = '10.{}.{}.{}']","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z","labels":["malicious-activity"]}}"#,
        (n >> 16) & 0xff,
        (n >> 8) & 0xff,
        n & 0xff
    );
    let t = Timestamp::parse("2024-01-01T00:00:00.000Z")?;
    Ok(NewObject {
        meta: ObjectMeta {
            id: StixId::parse(&id)?,
            spec_version: "2.1".into(),
            created: Some(t),
            modified: Some(t),
            revoked: false,
            tlp: None,
        },
        json,
    })
}

/// CPU time this thread has used (Linux; zero elsewhere). On a shared machine wall time mostly
/// measures the neighbours, so both are printed.
fn cpu_time() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// CPU time of the whole process, all threads (the checkpoint thread included; Linux).
fn process_cpu_time() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .sum()
}

/// Bytes this process has passed to write and read system calls (`wchar`, `rchar`; Linux): the
/// WAL frames, the checkpoints' copies and the page reads that missed SQLite's cache.
fn io_bytes() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("wchar:"), field("rchar:"))
}

/// Objects per second of wall time and of CPU time (the calling thread's, and the process's),
/// and bytes written and read per object.
struct Rate {
    wall: f64,
    cpu: f64,
    process_cpu: f64,
    written: f64,
    read: f64,
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>7.0} objects/s wall, {:>7.0} objects/s of CPU ({:.1} µs), process {:.1} µs CPU, \
             {:>6.0} B written, {:>6.0} B read per object",
            self.wall,
            self.cpu,
            1e6 / self.cpu,
            1e6 / self.process_cpu,
            self.written,
            self.read
        )
    }
}

/// Adds objects `from..to` in batches of `batch`.
fn ingest(
    store: &dyn Store,
    c: &CollectionRef,
    from: u32,
    to: u32,
    batch: u32,
) -> Result<Rate, Box<dyn Error>> {
    let (mut wall, mut cpu) = (Duration::ZERO, Duration::ZERO);
    let (start_process, (start_written, start_read)) = (process_cpu_time(), io_bytes());
    let mut n = from;
    while n < to {
        let end = (n + batch).min(to);
        let objects = (n..end).map(indicator).collect::<Result<Vec<_>, _>>()?;
        let (start, start_cpu) = (Instant::now(), cpu_time());
        store.add_objects(c, objects)?;
        wall += start.elapsed();
        cpu += cpu_time().saturating_sub(start_cpu);
        n = end;
    }
    // Building the objects is on this thread too, between the timed calls; so is the
    // checkpoint thread's copying (of which some may still be under way when this returns).
    let process = process_cpu_time().saturating_sub(start_process);
    let (written, read) = io_bytes();
    let count = f64::from(to.saturating_sub(from));
    Ok(Rate {
        wall: count / wall.as_secs_f64(),
        cpu: count / cpu.as_secs_f64(),
        process_cpu: count / process.as_secs_f64(),
        written: written.saturating_sub(start_written) as f64 / count,
        read: read.saturating_sub(start_read) as f64 / count,
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Reads `rounds` pages of `limit` starting at evenly spread positions; prints p50/p99 of wall
/// time and the mean CPU time (a thread's CPU clock is too coarse for one page).
fn pages(
    store: &dyn Store,
    c: &CollectionRef,
    label: &str,
    base: &ObjectQuery,
    max_seq: i64,
) -> Result<(), Box<dyn Error>> {
    let rounds: u32 = 2000;
    let mut wall = Vec::with_capacity(rounds as usize);
    let start_cpu = cpu_time();
    for i in 0..rounds {
        let mut q = base.clone();
        q.after_seq = Some(max_seq / 4 + (max_seq / 2) * i64::from(i) / i64::from(rounds));
        let start = Instant::now();
        let page = store.objects(c, &q)?;
        wall.push(start.elapsed());
        if page.records.len() != q.limit {
            return Err(format!("{label}: short page of {}", page.records.len()).into());
        }
    }
    let cpu = cpu_time().saturating_sub(start_cpu) / rounds;
    wall.sort();
    println!(
        "  page of {} from the middle, {label}: wall p50 {:?} p99 {:?}, mean CPU {cpu:?}",
        base.limit,
        percentile(&wall, 0.5),
        percentile(&wall, 0.99),
    );
    Ok(())
}

const COLLECTION: &str = "2b1e3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";

/// The second measurement only, on the store an earlier run left in `dir`.
fn again(store: &SqliteStore, dir: &std::path::Path) -> Result<(), Box<dyn Error>> {
    let c = CollectionRef {
        api_root: "bench".into(),
        id: COLLECTION.into(),
    };
    let stored = u32::try_from(store.count_objects(&c)?)?;
    println!("store in {}", dir.display());
    println!("at {stored} stored:");
    println!(
        "  batches of 100:  {}",
        ingest(store, &c, stored, stored + PROBE, 100)?
    );
    println!(
        "  batches of 1000: {}",
        ingest(store, &c, stored + PROBE, stored + 2 * PROBE, 1000)?
    );
    Ok(())
}

/// Gets 2000 objects by id (Get an Object, all versions), ids spread over the first `stored`;
/// prints p50/p99 of wall time.
fn by_id(
    store: &dyn Store,
    c: &CollectionRef,
    stored: u32,
    base: &ObjectQuery,
) -> Result<(), Box<dyn Error>> {
    let rounds: u32 = 2000;
    let mut wall = Vec::with_capacity(rounds as usize);
    for i in 0..rounds {
        let n = u32::try_from(u64::from(stored) * u64::from(i) / u64::from(rounds))?;
        let q = ObjectQuery {
            ids: vec![format!("indicator--{}", uuid(n))],
            ..base.clone()
        };
        let start = Instant::now();
        let page = store.objects(c, &q)?;
        wall.push(start.elapsed());
        if page.records.len() != 1 {
            return Err(format!("object {n}: {} records", page.records.len()).into());
        }
    }
    wall.sort();
    println!(
        "  get an object by id: wall p50 {:?} p99 {:?}",
        percentile(&wall, 0.5),
        percentile(&wall, 0.99),
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let fill: u32 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let temp = tempfile::tempdir()?;
    let dir = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| temp.path().to_owned());
    let store = SqliteStore::open(&dir)?;
    if store.api_root("bench")?.is_some() {
        return again(&store, &dir);
    }
    store.create_api_root(&ApiRoot {
        name: "bench".into(),
        title: "bench".into(),
        description: None,
        max_content_length: 100_000_000,
    })?;
    let collection = Collection {
        api_root: "bench".into(),
        id: COLLECTION.into(),
        title: "bench".into(),
        description: None,
        alias: None,
        media_types: vec![],
    };
    store.create_collection(&collection)?;
    let c = collection.as_ref();

    println!("store in {}", dir.display());
    println!("at 0 stored:");
    println!("  batches of 100:  {}", ingest(&store, &c, 0, PROBE, 100)?);
    println!(
        "  batches of 1000: {}",
        ingest(&store, &c, PROBE, 2 * PROBE, 1000)?
    );
    let top = fill.max(2 * PROBE);
    if top > 2 * PROBE {
        let start = Instant::now();
        let rate = ingest(&store, &c, 2 * PROBE, top, 10_000)?;
        println!(
            "filled to {top} in {:.1?} (batches of 10000: {rate})",
            start.elapsed()
        );
    }
    println!("at {} stored:", store.count_objects(&c)?);
    println!(
        "  batches of 100:  {}",
        ingest(&store, &c, top, top + PROBE, 100)?
    );
    println!(
        "  batches of 1000: {}",
        ingest(&store, &c, top + PROBE, top + 2 * PROBE, 1000)?
    );

    let all = ObjectQuery {
        limit: 100,
        versions: VersionFilter::All,
        clearance: kizuna_stix::Tlp::Red,
        unmarked_as: kizuna_stix::Tlp::Clear,
        ..ObjectQuery::default()
    };
    let first = store.objects(
        &c,
        &ObjectQuery {
            limit: 1,
            ..all.clone()
        },
    )?;
    let max_seq = first.records.first().map_or(0, |r| r.seq) + i64::from(top + 2 * PROBE);
    pages(&store, &c, "all versions", &all, max_seq)?;
    pages(
        &store,
        &c,
        "match[version]=last",
        &ObjectQuery {
            versions: VersionFilter::Last,
            ..all.clone()
        },
        max_seq,
    )?;
    pages(
        &store,
        &c,
        "match[type]=indicator, clearance AMBER",
        &ObjectQuery {
            types: vec!["indicator".into()],
            versions: VersionFilter::Last,
            clearance: kizuna_stix::Tlp::Amber,
            ..all.clone()
        },
        max_seq,
    )?;

    by_id(&store, &c, top + 2 * PROBE, &all)?;

    let start = Instant::now();
    let mut q = ObjectQuery {
        limit: 1000,
        ..all.clone()
    };
    let mut read = 0usize;
    loop {
        let page = store.objects(&c, &q)?;
        read += page.records.len();
        q.after_seq = page.records.last().map(|r| r.seq);
        if !page.more {
            break;
        }
    }
    println!(
        "full paged read of {read} objects (limit 1000): {:.2?}",
        start.elapsed()
    );
    Ok(())
}
