//! Starting `kizuna serve` as a real process for end-to-end tests.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The admin password the tests start hubs with.
pub const ADMIN_PASSWORD: &str = "test-admin-password-0123456789";

/// A `kizuna serve` child process.
pub struct Hub {
    pub child: Child,
    pub url: String,
    pub cert: PathBuf,
    pub data: PathBuf,
    pub stderr_lines: Vec<String>,
}

/// Runs `kizuna ARGS --data DATA` to completion and returns (status, stdout, stderr).
pub fn kizuna(data: &Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kizuna"));
    cmd.arg("--data")
        .arg(data)
        .args(args)
        .env("KIZUNA_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("KIZUNA_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn kizuna");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().expect("wait kizuna");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Hub {
    /// Starts `kizuna serve` on 127.0.0.1:0 over TLS with `data` as data directory and waits for
    /// the line that says where it listens (read from its stderr: no polling, no sleeps).
    pub fn start(data: &Path, admin_password: Option<&str>) -> Hub {
        Self::spawn(data, admin_password, None)
    }

    /// Like [`Hub::start`], with `kizuna --config CONFIG`.
    pub fn start_with_config(data: &Path, admin_password: Option<&str>, config: &Path) -> Hub {
        Self::spawn(data, admin_password, Some(config))
    }

    fn spawn(data: &Path, admin_password: Option<&str>, config: Option<&Path>) -> Hub {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kizuna"));
        if let Some(config) = config {
            cmd.arg("--config").arg(config);
        }
        cmd.arg("--data")
            .arg(data)
            .args(["--log", "warn", "serve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        match admin_password {
            Some(p) => cmd.env("KIZUNA_ADMIN_PASSWORD", p),
            None => cmd.env_remove("KIZUNA_ADMIN_PASSWORD"),
        };
        let mut child = cmd.spawn().expect("spawn kizuna serve");
        let stderr = child.stderr.take().expect("stderr");
        let mut reader = BufReader::new(stderr);
        let mut lines = Vec::new();
        let mut url = None;
        // Read up to the line after "listening" that names the certificate (or warns of plain
        // HTTP), so that `fingerprint` can find it; then drain stderr in the background so the
        // child never blocks on a full pipe.
        loop {
            let mut line = String::new();
            let n = reader.read_line(&mut line).expect("read kizuna stderr");
            assert!(
                n > 0,
                "kizuna serve exited before listening:\n{}",
                lines.join("")
            );
            if let Some(rest) = line.strip_prefix("Kizuna hub listening: ") {
                url = Some(rest.trim().trim_end_matches("/taxii2/").to_owned());
            }
            let done = url.is_some()
                && (line.contains("TLS certificate:") || line.contains("WARNING: plain HTTP"));
            lines.push(line);
            if done {
                break;
            }
        }
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        Hub {
            child,
            url: url.expect("listening line"),
            cert: data.join("tls").join("cert.pem"),
            data: data.to_path_buf(),
            stderr_lines: lines,
        }
    }

    /// An HTTPS client trusting this hub's self-signed certificate.
    pub fn client(&self) -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let pem = std::fs::read(&self.cert).expect("read hub certificate");
        let cert = reqwest::Certificate::from_pem(&pem).expect("parse hub certificate");
        reqwest::Client::builder()
            .add_root_certificate(cert)
            .build()
            .expect("build client")
    }

    /// Kills the process with SIGKILL and reaps it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A valid indicator with a unique id derived from `n`.
pub fn indicator(run: u32, n: u32) -> serde_json::Value {
    serde_json::json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": format!("indicator--{run:08x}-0000-4000-8000-{n:012x}"),
        "created": "2026-11-26T00:00:00.000Z",
        "modified": "2026-11-26T00:00:00.000Z",
        "name": format!("test indicator {n}"),
        "pattern": format!("[ipv4-addr:value = '198.51.{}.{}']", (n >> 8) & 255, n & 255),
        "pattern_type": "stix",
        "valid_from": "2026-11-26T00:00:00Z",
        "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"]
    })
}

/// The TAXII 2.1 media type.
pub const TAXII: &str = "application/taxii+json;version=2.1";

impl Hub {
    /// The SHA-256 fingerprint of the hub's certificate as `kizuna serve` printed it.
    pub fn fingerprint(&self) -> Option<String> {
        self.stderr_lines.iter().find_map(|l| {
            let (_, rest) = l.split_once("(SHA-256 ")?;
            Some(rest.trim().trim_end_matches(')').to_owned())
        })
    }
}

/// The id of the `n`-th test indicator of [`pattern_indicator`].
pub fn indicator_id(n: u32) -> String {
    format!("indicator--00000000-0000-4000-8000-{n:012}")
}

/// A STIX indicator with id [`indicator_id`]`(n)` and `pattern`, valid since 2000.
pub fn pattern_indicator(n: u32, pattern: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "indicator", "spec_version": "2.1",
        "id": indicator_id(n),
        "created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z",
        "pattern": pattern, "pattern_type": "stix",
        "valid_from": "2000-01-01T00:00:00Z",
    })
}

/// One observation as a JSON line (no newline): a bundle with one observed-data at `second`
/// seconds past 10:00 on 2026-11-26 binding one SCO `kind` (`domain-name`, `ipv4-addr`, ...)
/// with value `value`; ids derived from `n`.
pub fn observation_line(n: u32, second: u32, kind: &str, value: &str) -> String {
    let at = format!("2026-11-26T10:{:02}:{:02}Z", second / 60, second % 60);
    let ms = format!("2026-11-26T10:{:02}:{:02}.000Z", second / 60, second % 60);
    let sco = format!("{kind}--00000000-0000-4000-8000-{n:012}");
    serde_json::json!({
        "type": "bundle",
        "id": format!("bundle--00000000-0000-4000-8000-{n:012}"),
        "objects": [
            {
                "type": "observed-data", "spec_version": "2.1",
                "id": format!("observed-data--00000000-0000-4000-8000-{n:012}"),
                "created": ms, "modified": ms,
                "first_observed": at, "last_observed": at, "number_observed": 1,
                "object_refs": [sco],
            },
            {"type": kind, "spec_version": "2.1", "id": sco, "value": value},
        ],
    })
    .to_string()
}

/// The sightings of the default collection (`shared`), read over TAXII as the admin.
pub async fn taxii_sightings(hub: &Hub, client: &reqwest::Client) -> Vec<serde_json::Value> {
    let resp = client
        .get(format!("{}/hub/collections/shared/objects/", hub.url))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("Accept", TAXII)
        .query(&[("match[type]", "sighting"), ("limit", "1000")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    body["objects"].as_array().cloned().unwrap_or_default()
}
