//! A deterministic fuzz pass (no fuzz crate yet): corpus messages, ZIP attachments and log lines
//! mutated thousands of ways must give an observation or an error, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on bad test data

use std::io::Cursor;
use std::path::{Path, PathBuf};

use kizuna_detect::{LogFormat, LogSource, MailOptions, scan_message};
use kizuna_stix::Timestamp;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// A small xorshift generator: the same mutations on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const NOISE: &[&[u8]] = &[
    b"\r\n--b1--\r\n",
    b"\r\n--",
    b"=?ISO-2022-JP?B?GyRC?=",
    b"=?UTF-8?Q?=E3=",
    b"; filename*=UTF-8''%E8%AB",
    b"Content-Type: message/rfc822\r\n\r\n",
    b"PK\x03\x04\xff\xff",
    b"\x00\xff\x1b$B",
    b"=\r\n",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(4) {
            0 => v.truncate(rng.below(v.len() + 1)),
            1 => {
                if !v.is_empty() {
                    let at = rng.below(v.len());
                    v[at] = rng.next() as u8;
                }
            }
            2 => {
                let at = rng.below(v.len() + 1);
                let noise = NOISE[rng.below(NOISE.len())];
                v.splice(at..at, noise.iter().copied());
            }
            _ => {
                if v.len() > 2 {
                    let a = rng.below(v.len());
                    let b = (a + rng.below(256)).min(v.len());
                    let chunk = v[a..b].to_vec();
                    let at = rng.below(v.len());
                    v.splice(at..at, chunk);
                }
            }
        }
    }
    v
}

fn options() -> MailOptions {
    MailOptions {
        now: Timestamp::parse("2026-01-01T00:00:00Z").unwrap(),
        ..MailOptions::default()
    }
}

#[test]
fn mutated_messages_never_panic() {
    let mut rng = Rng(0x6b69_7a75_6e61);
    let opts = options();
    let mut files: Vec<PathBuf> = std::fs::read_dir(testdata().join("mail"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml" || e == "mbox"))
        .collect();
    files.sort();
    for file in files {
        let raw = std::fs::read(&file).unwrap();
        let rounds = if raw.len() > 50_000 { 10 } else { 300 };
        for _ in 0..rounds {
            let m = mutate(&mut rng, &raw);
            if let Ok(obs) = scan_message(&m, "m.eml", &opts) {
                assert!(obs.observed_data().is_some());
            }
        }
    }
}

#[test]
fn mutated_zip_attachments_never_panic() {
    let mut rng = Rng(0x7a69_7021);
    let opts = options();
    for name in ["invoice.zip", "secret.zip"] {
        let zip = std::fs::read(testdata().join("mail/attachments").join(name)).unwrap();
        for _ in 0..400 {
            let m = mutate(&mut rng, &zip);
            let mut msg = b"From: a@example.org\r\nSubject: z\r\nMIME-Version: 1.0\r\n\
                Content-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                .to_vec();
            msg.extend_from_slice(base64(&m).as_bytes());
            let obs = scan_message(&msg, "z.eml", &opts).unwrap();
            assert!(obs.observed_data().is_some());
        }
    }
}

#[test]
fn mutated_log_lines_never_panic() {
    let mut rng = Rng(0x1095);
    for (format, file) in [
        (LogFormat::Zeek, "logs/zeek/conn.log"),
        (LogFormat::Zeek, "logs/zeek/dns.log"),
        (LogFormat::Zeek, "logs/zeek/ssl.log"),
        (LogFormat::Suricata, "logs/suricata/eve.json"),
        (LogFormat::Stix, "logs/stix/observed.jsonl"),
    ] {
        let text = std::fs::read(testdata().join(file)).unwrap();
        let mut input = Vec::new();
        let mut expected = 0;
        for _ in 0..200 {
            let mut m = mutate(&mut rng, &text);
            m.retain(|b| *b != b'\n');
            // Blank lines and `#` comments (Zeek headers) are skipped without a report.
            let t = String::from_utf8_lossy(&m);
            if !t.trim().is_empty() && !t.trim().starts_with('#') {
                expected += 1;
            }
            input.extend_from_slice(&m);
            input.push(b'\n');
        }
        let now = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
        let n = LogSource::from_reader(format, file, Box::new(Cursor::new(input)), now).count();
        assert_eq!(n, expected);
    }
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for (i, chunk) in data.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            s.push_str("\r\n");
        }
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                s.push(A[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Found by `mutated_messages_never_panic`: mail-parser 0.11.9 reaches a `debug_assert!`
/// ("Invalid part ID, could not find multipart.") on a message/rfc822 part holding only another
/// message/rfc822 header inside an unterminated-looking multipart. The scan must survive it.
#[test]
fn regression_mail_parser_invalid_part_id_assertion() {
    let raw = b"Content-Type:multipart/;boundary=L4\n\n--L4Content-Type:message/rfc822\n\n\
                Content-Type:message/rfc822\n\n\n--L4--";
    match scan_message(raw, "regression.eml", &options()) {
        Ok(obs) => assert!(obs.observed_data().is_some()),
        Err(e) => assert!(e.to_string().contains("regression.eml")),
    }
}
