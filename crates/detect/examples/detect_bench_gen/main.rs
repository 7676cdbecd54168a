//! Generates the data of `bench/detect`: realistic indicators and observations.
//!
//! ```text
//! cargo run --release -p kizuna-detect --example detect_bench_gen -- indicators N > indicators.jsonl
//! cargo run --release -p kizuna-detect --example detect_bench_gen -- observations N > observations.jsonl
//! cargo run --release -p kizuna-detect --example detect_bench_gen -- mbox N > mail.mbox
//! ```
//!
//! Indicators are the mix a threat feed shares: IPv4 addresses, CIDR ranges (IPv4 and IPv6),
//! domains, URLs, file hashes (SHA-256, SHA-1, MD5), email senders and subjects, and a few
//! `LIKE`, `MATCHES` and compound patterns. Observations are one STIX bundle per line shaped
//! like what `kizuna scan` produces from logs and mail: connections, DNS answers, HTTP requests,
//! files and messages. About one observation in a hundred carries a value of one of the first
//! 1,000 indicators, so the number of sightings is the same whatever the size of the set.
//! The mbox (see the `mbox` module) is the mail benchmark's: messages of about 30 KB with
//! attachments.

mod mbox;

use std::io::{BufWriter, Write};

/// xorshift64*: deterministic, so every run measures the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "login", "secure", "update", "cdn", "mail", "portal", "account", "verify", "pension", "files",
    "static", "api", "docs", "shop", "bank", "cloud", "office", "drive", "news", "auth",
];
const PORTS: [u64; 5] = [443, 80, 25, 53, 8080];
const TLDS: &[&str] = &[
    "com", "net", "org", "jp", "top", "xyz", "info", "co.jp", "ru", "io",
];
const SUBJECTS: &[&str] = &[
    "Invoice overdue",
    "Your pension statement",
    "Password expiry notice",
    "Meeting minutes",
    "Shipment delayed",
    "年金記録のお知らせ",
];

fn hex(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b"0123456789abcdef"[rng.below(16) as usize]))
        .collect()
}

/// The values of indicator `i`, derived from `i` alone, so that observations can carry them.
struct Bad {
    ip: String,
    net: String,
    net6: String,
    domain: String,
    url: String,
    sha256: String,
    sha1: String,
    md5: String,
    email: String,
    subject: String,
}

fn bad(i: u64) -> Bad {
    let mut r = Rng(i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let ip = format!(
        "{}.{}.{}.{}",
        1 + r.below(222),
        r.below(256),
        r.below(256),
        1 + r.below(254)
    );
    let net = format!(
        "{}.{}.{}.0/24",
        1 + r.below(222),
        r.below(256),
        r.below(256)
    );
    let net6 = format!("2001:db8:{:x}:{:x}::/64", r.below(65536), r.below(65536));
    let domain = format!(
        "{}-{}{}.{}",
        WORDS[r.below(20) as usize],
        WORDS[r.below(20) as usize],
        r.below(100_000),
        TLDS[r.below(10) as usize]
    );
    let url = format!(
        "http://{domain}/{}/{}.php",
        WORDS[r.below(20) as usize],
        r.below(1000)
    );
    let email = format!("{}{}@{domain}", WORDS[r.below(20) as usize], r.below(1000));
    let subject = format!("{} #{}", SUBJECTS[r.below(6) as usize], r.below(1_000_000));
    Bad {
        ip,
        net,
        net6,
        domain,
        url,
        sha256: hex(&mut r, 64),
        sha1: hex(&mut r, 40),
        md5: hex(&mut r, 32),
        email,
        subject,
    }
}

fn pattern(i: u64) -> String {
    let b = bad(i);
    let esc = |s: &str| s.replace('\\', "\\\\").replace('\'', "\\'");
    match i % 100 {
        0..=21 => format!("[ipv4-addr:value = '{}']", b.ip),
        22..=25 => format!("[ipv4-addr:value ISSUBSET '{}']", b.net),
        26 => format!("[ipv6-addr:value ISSUBSET '{}']", b.net6),
        27..=44 => format!("[domain-name:value = '{}']", b.domain),
        45..=56 => format!("[url:value = '{}']", esc(&b.url)),
        57..=68 => format!("[file:hashes.'SHA-256' = '{}']", b.sha256),
        69..=72 => format!("[file:hashes.'SHA-1' = '{}']", b.sha1),
        73..=78 => format!(
            "[file:hashes.MD5 = '{}' OR file:hashes.'SHA-256' = '{}']",
            b.md5, b.sha256
        ),
        79..=83 => format!("[email-message:from_ref.value = '{}']", b.email),
        84..=86 => format!("[email-message:subject = '{}']", esc(&b.subject)),
        87..=89 => format!("[domain-name:value LIKE '%.{}']", b.domain),
        90..=91 => format!("[url:value LIKE 'http://{}/%']", b.domain),
        92 => format!(
            "[url:value MATCHES '^https?://([a-z0-9-]+\\\\.)*{}/']",
            b.domain.replace('.', "\\\\.")
        ),
        93 => format!(
            "[email-message:subject MATCHES '^{}[0-9]*$']",
            esc(&b.subject)
        ),
        94..=96 => format!(
            "[network-traffic:dst_ref.value = '{}' AND network-traffic:dst_port = 443]",
            b.ip
        ),
        97..=98 => format!(
            "[email-message:from_ref.value = '{}' AND email-message:subject LIKE '%{}%']",
            b.email,
            esc(&b.subject).chars().take(4).collect::<String>()
        ),
        _ => format!(
            "[domain-name:value = '{}'] OR [url:value LIKE '%{}%']",
            b.domain, b.domain
        ),
    }
}

fn indicators(n: u64, out: &mut impl Write) -> std::io::Result<()> {
    for i in 0..n {
        let line = serde_json::json!({
            "type": "indicator", "spec_version": "2.1",
            "id": format!("indicator--00000000-0000-4000-8000-{i:012}"),
            "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
            "pattern": pattern(i), "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z",
        });
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn random_ip(r: &mut Rng) -> String {
    format!(
        "{}.{}.{}.{}",
        1 + r.below(222),
        r.below(256),
        r.below(256),
        1 + r.below(254)
    )
}

fn random_domain(r: &mut Rng) -> String {
    format!(
        "{}{}.{}",
        WORDS[r.below(20) as usize],
        r.below(1_000_000),
        TLDS[r.below(10) as usize]
    )
}

fn observations(n: u64, out: &mut impl Write) -> std::io::Result<()> {
    let mut r = Rng(0x0b5e_7a71_0e55_0001);
    for i in 0..n {
        // One observation in a hundred carries a bad value of one of the first 1,000 indicators.
        let b = (r.below(100) == 0).then(|| bad(r.below(1000)));
        let t = format!(
            "2026-03-{:02}T{:02}:{:02}:{:02}Z",
            1 + i / 86_400 % 28,
            i / 3600 % 24,
            i / 60 % 60,
            i % 60
        );
        let mut objs: Vec<serde_json::Value> = Vec::new();
        let id = |ty: &str, k: usize| format!("{ty}--00000000-0000-5000-8000-{i:08x}{k:04x}");
        match r.below(10) {
            0..=3 => {
                let dst = b
                    .as_ref()
                    .map_or_else(|| random_ip(&mut r), |b| b.ip.clone());
                objs.push(serde_json::json!({"type": "ipv4-addr", "id": id("ipv4-addr", 1), "value": random_ip(&mut r)}));
                objs.push(serde_json::json!({"type": "ipv4-addr", "id": id("ipv4-addr", 2), "value": dst}));
                objs.push(
                    serde_json::json!({"type": "network-traffic", "id": id("network-traffic", 3),
                    "src_ref": id("ipv4-addr", 1), "dst_ref": id("ipv4-addr", 2),
                    "src_port": 1024 + r.below(60000), "dst_port": PORTS[r.below(5) as usize],
                    "protocols": ["ipv4", "tcp"]}),
                );
            }
            4..=5 => {
                let d = b
                    .as_ref()
                    .map_or_else(|| random_domain(&mut r), |b| b.domain.clone());
                objs.push(serde_json::json!({"type": "ipv4-addr", "id": id("ipv4-addr", 1), "value": random_ip(&mut r)}));
                objs.push(serde_json::json!({"type": "domain-name", "id": id("domain-name", 2), "value": d,
                    "resolves_to_refs": [id("ipv4-addr", 1)]}));
            }
            6..=7 => {
                let u = b.as_ref().map_or_else(
                    || {
                        format!(
                            "https://{}/{}/{}",
                            random_domain(&mut r),
                            WORDS[r.below(20) as usize],
                            r.below(100_000)
                        )
                    },
                    |b| b.url.clone(),
                );
                objs.push(serde_json::json!({"type": "url", "id": id("url", 1), "value": u}));
            }
            8 => {
                let (sha256, md5) = b.as_ref().map_or_else(
                    || (hex(&mut r, 64), hex(&mut r, 32)),
                    |b| (b.sha256.clone(), b.md5.clone()),
                );
                objs.push(serde_json::json!({"type": "file", "id": id("file", 1),
                    "name": format!("{}.pdf", WORDS[r.below(20) as usize]), "size": r.below(10_000_000),
                    "hashes": {"SHA-256": sha256, "MD5": md5}}));
            }
            _ => {
                let (from, subject) = b.as_ref().map_or_else(
                    || {
                        (
                            format!("{}@{}", WORDS[r.below(20) as usize], random_domain(&mut r)),
                            format!("{} {}", SUBJECTS[r.below(6) as usize], r.below(1000)),
                        )
                    },
                    |b| (b.email.clone(), b.subject.clone()),
                );
                objs.push(serde_json::json!({"type": "email-addr", "id": id("email-addr", 1), "value": from}));
                objs.push(
                    serde_json::json!({"type": "email-addr", "id": id("email-addr", 2),
                    "value": format!("staff{}@agency.example", r.below(5000))}),
                );
                objs.push(serde_json::json!({"type": "email-message", "id": id("email-message", 3),
                    "is_multipart": false, "from_ref": id("email-addr", 1), "to_refs": [id("email-addr", 2)],
                    "subject": subject, "date": t}));
            }
        }
        let refs: Vec<serde_json::Value> = objs.iter().map(|o| o["id"].clone()).collect();
        let od = serde_json::json!({
            "type": "observed-data", "spec_version": "2.1", "id": id("observed-data", 0),
            "created": t, "modified": t, "first_observed": t, "last_observed": t,
            "number_observed": 1, "object_refs": refs,
        });
        objs.insert(0, od);
        let bundle = serde_json::json!({"type": "bundle", "id": id("bundle", 0), "objects": objs});
        writeln!(out, "{bundle}")?;
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = args.get(1).and_then(|n| n.parse().ok());
    let mut out = BufWriter::new(std::io::stdout().lock());
    match (args.first().map(String::as_str), n) {
        (Some("indicators"), Some(n)) => indicators(n, &mut out)?,
        (Some("observations"), Some(n)) => observations(n, &mut out)?,
        (Some("mbox"), Some(n)) => mbox::mbox(n, &mut out)?,
        _ => {
            eprintln!("usage: detect_bench_gen indicators|observations|mbox N");
            std::process::exit(2);
        }
    }
    out.flush()
}
