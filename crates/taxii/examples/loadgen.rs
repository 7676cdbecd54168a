//! A TAXII ingest load generator that is not the bottleneck: POSTs pre-generated envelopes of
//! indicators to a running `kizuna serve` over K keep-alive HTTPS connections and reports what
//! the server sustained, with the server's CPU time per object.
//!
//! ```text
//! cargo run --release -p kizuna-taxii --example loadgen -- --ready READY.json --password PW \
//!     [--pid SERVER_PID] [-n 100000] [--batch 100] [--connections 4] [--seed 1] \
//!     [--status-every 100] [--json-out FILE]
//! cargo run --release -p kizuna-taxii --example loadgen -- --dump-envelope K [-n N] [--batch B] [--seed S]
//! ```
//!
//! `READY.json` is the file `kizuna serve --ready-file` writes (`url`, `api_root`, `collection`,
//! `cert`); the account is `--user` (default `admin`) with `--password` (or the environment
//! variable `KIZUNA_ADMIN_PASSWORD`). `bench/taxii/ingest.sh` starts the server and runs this.
//!
//! The objects are the same as `bench/taxii/bench.py`'s, byte for byte (its seeded Mersenne
//! Twister for the ids, its timestamps, names and patterns), so figures compare; `--dump-envelope`
//! prints one envelope for `ingest.sh` to check that against Python. All envelopes are generated
//! before the clock starts. Each connection is its own client offering only HTTP/1.1 (as Python
//! `requests` does), so there are exactly `--connections` TLS sessions; each takes the next
//! envelope as soon as its previous POST is answered.
//!
//! Every answer must be 202 with a status resource in state `complete` whose `success_count` is
//! the envelope's size and `failure_count` 0, else the run fails. After the run, every
//! `--status-every`-th status resource is fetched again (`GET .../status/{id}/`) and must say the
//! same. Printed: objects/s over the whole run and over the first and last 10% of the objects (by
//! completion), POST latency p50/p99 (overall, first and last 10% of envelopes), the server's CPU
//! (user + system from `/proc/<pid>/stat`, in µs per object, overall and per 10% window) and this
//! process's own CPU.

// A benchmark fails loudly on bad setup.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::Mutex;

/// Command line.
struct Args {
    ready: Option<String>,
    user: String,
    password: Option<String>,
    pid: Option<u32>,
    n: usize,
    batch: usize,
    connections: usize,
    seed: u64,
    status_every: usize,
    threads: usize,
    json_out: Option<String>,
    dump_envelope: Option<usize>,
}

fn parse_args() -> Args {
    let mut args = Args {
        ready: None,
        user: "admin".to_owned(),
        password: std::env::var("KIZUNA_ADMIN_PASSWORD").ok(),
        pid: None,
        n: 100_000,
        batch: 100,
        connections: 4,
        seed: 1,
        status_every: 100,
        threads: 1,
        json_out: None,
        dump_envelope: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--ready" => args.ready = Some(value()),
            "--user" => args.user = value(),
            "--password" => args.password = Some(value()),
            "--pid" => args.pid = Some(value().parse().unwrap()),
            "-n" | "--objects" => args.n = value().parse().unwrap(),
            "--batch" => args.batch = value().parse().unwrap(),
            "--connections" => args.connections = value().parse().unwrap(),
            "--seed" => args.seed = value().parse().unwrap(),
            "--status-every" => args.status_every = value().parse().unwrap(),
            "--client-threads" => args.threads = value().parse().unwrap(),
            "--json-out" => args.json_out = Some(value()),
            "--dump-envelope" => args.dump_envelope = Some(value().parse().unwrap()),
            other => panic!("unknown argument {other:?} (see the top of examples/loadgen.rs)"),
        }
    }
    assert!(args.batch > 0 && args.connections > 0 && args.threads > 0);
    args
}

/// CPython's `random.Random` (MT19937 seeded with `init_by_array`), as far as bench.py uses it.
struct PyRandom {
    mt: [u32; 624],
    index: usize,
}

impl PyRandom {
    /// `random.Random(seed)` for a non-negative integer seed.
    fn new(seed: u64) -> Self {
        let mut key: Vec<u32> = Vec::new();
        let mut s = seed;
        while s > 0 {
            key.push(s as u32);
            s >>= 32;
        }
        if key.is_empty() {
            key.push(0);
        }
        let mut r = PyRandom {
            mt: [0; 624],
            index: 624,
        };
        r.init_genrand(19_650_218);
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..624.max(key.len()) {
            let prev = r.mt[i - 1] ^ (r.mt[i - 1] >> 30);
            r.mt[i] = (r.mt[i] ^ prev.wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= 624 {
                r.mt[0] = r.mt[623];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..623 {
            let prev = r.mt[i - 1] ^ (r.mt[i - 1] >> 30);
            r.mt[i] = (r.mt[i] ^ prev.wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= 624 {
                r.mt[0] = r.mt[623];
                i = 1;
            }
        }
        r.mt[0] = 0x8000_0000;
        r
    }

    fn init_genrand(&mut self, s: u32) {
        self.mt[0] = s;
        for i in 1..624 {
            let prev = self.mt[i - 1] ^ (self.mt[i - 1] >> 30);
            self.mt[i] = 1_812_433_253u32.wrapping_mul(prev).wrapping_add(i as u32);
        }
        self.index = 624;
    }

    fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            for k in 0..624 {
                let y = (self.mt[k] & 0x8000_0000) | (self.mt[(k + 1) % 624] & 0x7fff_ffff);
                let mut v = self.mt[(k + 397) % 624] ^ (y >> 1);
                if y & 1 != 0 {
                    v ^= 0x9908_b0df;
                }
                self.mt[k] = v;
            }
            self.index = 0;
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `getrandbits(128)`: the first 32-bit word is the least significant.
    fn bits128(&mut self) -> u128 {
        (0..4).fold(0u128, |acc, i| {
            acc | (u128::from(self.next_u32()) << (32 * i))
        })
    }
}

/// `str(uuid.UUID(int=x, version=4))`.
fn uuid4(x: u128) -> String {
    let mut x = x;
    x &= !(0xc000u128 << 48);
    x |= 0x8000u128 << 48;
    x &= !(0xf000u128 << 64);
    x |= 4u128 << 76;
    let h = format!("{x:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// 2026-01-01T00:00:00Z plus `seconds`, as bench.py writes it (`%Y-%m-%dT%H:%M:%S.000Z`).
fn timestamp(seconds: u64) -> String {
    // Days since 1970-01-01 of 2026-01-01.
    let days = 20_454 + seconds / 86_400;
    let secs = seconds % 86_400;
    // Civil from days (H. Hinnant's algorithm), for days after 1970.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// bench.py's `envelope(k, batch, n, seed)`: objects `k*batch .. min(n, (k+1)*batch)`.
fn envelope(k: usize, batch: usize, n: usize, seed: u64) -> Vec<u8> {
    let mut rng = PyRandom::new(seed * 1_000_003 + k as u64);
    let mut out = String::with_capacity(batch * 440 + 16);
    out.push_str("{\"objects\":[");
    for i in k * batch..n.min((k + 1) * batch) {
        if i > k * batch {
            out.push(',');
        }
        let t = timestamp(i as u64);
        let oid = uuid4(rng.bits128());
        out.push_str(&format!(
            "{{\"type\":\"indicator\",\"spec_version\":\"2.1\",\"id\":\"indicator--{oid}\",\"created\":\"{t}\",\"modified\":\"{t}\",\
             \"name\":\"bench indicator {i}\",\"indicator_types\":[\"malicious-activity\"],\
             \"pattern\":\"[ipv4-addr:value = '{}.{}.{}.{}']\",\"pattern_type\":\"stix\",\"valid_from\":\"{t}\"}}",
            10 + i % 200,
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255
        ));
    }
    out.push_str("]}");
    out.into_bytes()
}

/// CPU time (user + system) of process `pid` ("self" for this one), from `/proc/<pid>/stat`.
fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which ends with the last ')'): utime is the 12th, stime 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    // In USER_HZ, 100 per second on every mainstream configuration.
    Some(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

/// The server's and this process's CPU time at one instant.
#[derive(Clone, Copy)]
struct Mark {
    at: Instant,
    server: Option<Duration>,
    client: Option<Duration>,
}

impl Mark {
    fn now(pid: Option<u32>) -> Self {
        Mark {
            at: Instant::now(),
            server: pid.and_then(|p| cpu_time(&p.to_string())),
            client: cpu_time("self"),
        }
    }
}

/// The fields of a status resource this checks.
#[derive(Deserialize)]
struct StatusResource {
    id: String,
    status: String,
    success_count: u64,
    failure_count: u64,
    pending_count: u64,
}

impl StatusResource {
    fn check(&self, expected: usize) -> Result<(), String> {
        if self.status != "complete"
            || self.success_count != expected as u64
            || self.failure_count != 0
            || self.pending_count != 0
        {
            return Err(format!(
                "status {}: {} with {} successes, {} failures, {} pending; expected {expected} successes",
                self.id, self.status, self.success_count, self.failure_count, self.pending_count
            ));
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct Ready {
    url: String,
    api_root: String,
    collection: String,
    cert: Option<String>,
}

/// What the sending tasks share.
struct Run {
    bodies: Vec<Bytes>,
    sizes: Vec<usize>,
    next: AtomicUsize,
    done_objects: AtomicUsize,
    /// Marks at 10% and 90% of the objects answered.
    marks: Mutex<[Option<Mark>; 2]>,
    pid: Option<u32>,
    n: usize,
}

/// Per envelope: latency, status id.
type Answer = (usize, Duration, String);

fn client(ready: &Ready) -> reqwest::Client {
    kizuna_taxii::tls::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    if let Some(cert) = &ready.cert {
        for c in kizuna_taxii::tls::read_certs(std::path::Path::new(cert)).unwrap() {
            roots.add(c).unwrap();
        }
    }
    let mut tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .http1_only()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap()
}

async fn sender(
    run: Arc<Run>,
    http: reqwest::Client,
    url: String,
    user: String,
    password: String,
) -> Result<Vec<Answer>, String> {
    let mut answers = Vec::new();
    loop {
        let k = run.next.fetch_add(1, Ordering::Relaxed);
        let Some(body) = run.bodies.get(k) else {
            return Ok(answers);
        };
        let t = Instant::now();
        let response = http
            .post(&url)
            .basic_auth(&user, Some(&password))
            .header("Accept", "application/taxii+json;version=2.1")
            .header("Content-Type", "application/taxii+json;version=2.1")
            .body(body.clone())
            .send()
            .await
            .map_err(|e| format!("envelope {k}: {e}"))?;
        let code = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("envelope {k}: {e}"))?;
        let took = t.elapsed();
        if code != 202 {
            return Err(format!(
                "envelope {k}: HTTP {code} {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
            ));
        }
        let status: StatusResource =
            serde_json::from_slice(&bytes).map_err(|e| format!("envelope {k}: {e}"))?;
        status
            .check(run.sizes[k])
            .map_err(|e| format!("envelope {k}: {e}"))?;
        let before = run.done_objects.fetch_add(run.sizes[k], Ordering::Relaxed);
        let after = before + run.sizes[k];
        for (slot, fraction) in [(0usize, 0.1f64), (1, 0.9)] {
            let threshold = (run.n as f64 * fraction).ceil() as usize;
            if before < threshold && after >= threshold {
                run.marks.lock().await[slot] = Some(Mark::now(run.pid));
            }
        }
        answers.push((k, took, status.id));
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// Objects/s and server CPU µs/object between two marks.
fn window(objects: usize, from: &Mark, to: &Mark) -> (f64, Option<f64>) {
    let secs = to.at.duration_since(from.at).as_secs_f64();
    let cpu = match (from.server, to.server) {
        (Some(a), Some(b)) => Some((b - a).as_secs_f64() * 1e6 / objects as f64),
        _ => None,
    };
    (objects as f64 / secs, cpu)
}

fn fmt_cpu(cpu: Option<f64>) -> String {
    cpu.map_or_else(|| "-".to_owned(), |c| format!("{c:.1}"))
}

fn main() {
    let args = parse_args();
    if let Some(k) = args.dump_envelope {
        let body = envelope(k, args.batch, args.n, args.seed);
        std::io::Write::write_all(&mut std::io::stdout(), &body).unwrap();
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(args));
}

async fn run(args: Args) {
    let ready: Ready = serde_json::from_slice(
        &std::fs::read(args.ready.as_deref().expect("--ready FILE")).unwrap(),
    )
    .unwrap();
    let password = args
        .password
        .clone()
        .expect("--password or KIZUNA_ADMIN_PASSWORD");
    let base = format!(
        "{}/{}/collections/{}",
        ready.url.trim_end_matches('/'),
        ready.api_root,
        ready.collection
    );
    let objects_url = format!("{base}/objects/");
    let n_env = args.n.div_ceil(args.batch);

    let generated = Instant::now();
    let bodies: Vec<Bytes> = (0..n_env)
        .map(|k| Bytes::from(envelope(k, args.batch, args.n, args.seed)))
        .collect();
    let sizes: Vec<usize> = (0..n_env)
        .map(|k| args.n.min((k + 1) * args.batch) - k * args.batch)
        .collect();
    let bytes: usize = bodies.iter().map(Bytes::len).sum();
    eprintln!(
        "generated {} objects in {n_env} envelopes ({:.0} MB) in {:.1?}",
        args.n,
        bytes as f64 / 1e6,
        generated.elapsed()
    );

    // One client per connection, each connected before the clock starts.
    let clients: Vec<reqwest::Client> = (0..args.connections).map(|_| client(&ready)).collect();
    for http in &clients {
        let r = http
            .get(format!("{base}/"))
            .basic_auth(&args.user, Some(&password))
            .header("Accept", "application/taxii+json;version=2.1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "GET {base}/: {}", r.text().await.unwrap());
        r.bytes().await.unwrap();
    }

    let run = Arc::new(Run {
        bodies,
        sizes,
        next: AtomicUsize::new(0),
        done_objects: AtomicUsize::new(0),
        marks: Mutex::new([None, None]),
        pid: args.pid,
        n: args.n,
    });
    let start = Mark::now(args.pid);
    let tasks: Vec<_> = clients
        .iter()
        .map(|http| {
            tokio::spawn(sender(
                run.clone(),
                http.clone(),
                objects_url.clone(),
                args.user.clone(),
                password.clone(),
            ))
        })
        .collect();
    let mut answers: Vec<Answer> = Vec::with_capacity(n_env);
    let mut failure = None;
    for task in tasks {
        match task.await.unwrap() {
            Ok(a) => answers.extend(a),
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    let end = Mark::now(args.pid);
    if let Some(e) = failure {
        eprintln!("ingest failed: {e}");
        std::process::exit(1);
    }
    answers.sort_by_key(|a| a.0);

    // Status resources read back: every `status_every`-th envelope.
    let mut checked = 0;
    if args.status_every > 0 {
        for (k, _, id) in answers.iter().step_by(args.status_every) {
            let r = clients[0]
                .get(format!(
                    "{}/{}/status/{id}/",
                    ready.url.trim_end_matches('/'),
                    ready.api_root
                ))
                .basic_auth(&args.user, Some(&password))
                .header("Accept", "application/taxii+json;version=2.1")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "status {id}");
            let status: StatusResource = r.json().await.unwrap();
            if let Err(e) = status.check(run.sizes[*k]) {
                eprintln!("status read back for envelope {k}: {e}");
                std::process::exit(1);
            }
            checked += 1;
        }
    }

    let marks = *run.marks.lock().await;
    let (first, last) = (marks[0].unwrap_or(end), marks[1].unwrap_or(start));
    let tenth = (args.n as f64 * 0.1).ceil() as usize;
    let (rate, cpu) = window(args.n, &start, &end);
    let (rate_first, cpu_first) = window(tenth, &start, &first);
    let (rate_last, cpu_last) = window(args.n - (args.n as f64 * 0.9).ceil() as usize, &last, &end);
    let client_cpu = match (start.client, end.client) {
        (Some(a), Some(b)) => (b - a).as_secs_f64() * 1e6 / args.n as f64,
        _ => f64::NAN,
    };
    let mut all: Vec<Duration> = answers.iter().map(|a| a.1).collect();
    let env_tenth = n_env.div_ceil(10);
    let mut first_lat: Vec<Duration> = all[..env_tenth].to_vec();
    let mut last_lat: Vec<Duration> = all[n_env - env_tenth..].to_vec();
    all.sort();
    first_lat.sort();
    last_lat.sort();
    let seconds = end.at.duration_since(start.at).as_secs_f64();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "ingest of {} objects, envelopes of {}, {} HTTPS connections: {seconds:.2} s, {rate:.0} objects/s; \
         server CPU {} µs/object, client CPU {client_cpu:.1} µs/object",
        args.n,
        args.batch,
        args.connections,
        fmt_cpu(cpu)
    );
    println!(
        "  first 10% of objects: {rate_first:.0} objects/s, server CPU {} µs/object; last 10%: {rate_last:.0} objects/s, {} µs/object; last/first rate {:.2}",
        fmt_cpu(cpu_first),
        fmt_cpu(cpu_last),
        rate_last / rate_first
    );
    println!(
        "  POST p50 {:.1} ms, p99 {:.1} ms; first 10% of envelopes p50 {:.1} ms, last 10% p50 {:.1} ms; {} status resources read back, all complete; loadavg {}",
        percentile(&all, 50.0),
        percentile(&all, 99.0),
        percentile(&first_lat, 50.0),
        percentile(&last_lat, 50.0),
        checked,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    if let Some(path) = &args.json_out {
        let json = serde_json::json!({
            "objects": args.n,
            "batch": args.batch,
            "connections": args.connections,
            "seconds": seconds,
            "objects_per_s": rate,
            "objects_per_s_first10": rate_first,
            "objects_per_s_last10": rate_last,
            "server_cpu_us_per_object": cpu,
            "server_cpu_us_per_object_first10": cpu_first,
            "server_cpu_us_per_object_last10": cpu_last,
            "client_cpu_us_per_object": client_cpu,
            "post_p50_ms": percentile(&all, 50.0),
            "post_p99_ms": percentile(&all, 99.0),
            "post_p50_first10_ms": percentile(&first_lat, 50.0),
            "post_p50_last10_ms": percentile(&last_lat, 50.0),
            "statuses_read_back": checked,
            "loadavg": load.trim(),
        });
        std::fs::write(path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    }
}
