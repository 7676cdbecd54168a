//! Any pattern against a fixed set of observations covering every value type, references,
//! lists, counts and time spans: evaluation never panics (run with `-timeout=1` to also catch
//! slow inputs; the issue's bar is 100 ms per evaluation).
#![no_main]

use std::sync::OnceLock;

use kizuna_pattern::{Observations, Pattern, SpecVersion};
use libfuzzer_sys::fuzz_target;

const OBSERVED: &str = r#"[{"type": "bundle", "id": "bundle--1", "objects": [
 {"type": "observed-data", "id": "observed-data--1", "first_observed": "2024-01-01T00:00:00Z",
  "last_observed": "2024-01-01T00:00:10Z", "number_observed": 3,
  "object_refs": ["file--1", "ipv4-addr--1", "ipv6-addr--1", "network-traffic--1", "email-message--1", "email-addr--1", "x-thing--1"]},
 {"type": "file", "id": "file--1", "name": "invoice.exe", "size": 4096, "hashes": {"SHA-256": "aa", "MD5": "bb"},
  "ctime": "2023-12-31T23:00:00.123456789Z", "x_payload_bin": "AAEC", "x_data_hex": "00ff"},
 {"type": "ipv4-addr", "id": "ipv4-addr--1", "value": "198.51.100.7"},
 {"type": "ipv6-addr", "id": "ipv6-addr--1", "value": "2001:db8::/48"},
 {"type": "network-traffic", "id": "network-traffic--1", "src_ref": "ipv4-addr--1", "dst_ref": "ipv6-addr--1",
  "dst_port": 443, "protocols": ["tcp", "tls"]},
 {"type": "email-message", "id": "email-message--1", "to_refs": ["email-addr--1", "missing"], "from_ref": "email-addr--1",
  "subject": "multi\nline é 日本"},
 {"type": "email-addr", "id": "email-addr--1", "value": "a@example.com"},
 {"type": "x-thing", "id": "x-thing--1", "flag": true, "ratio": 0.5, "nothing": null,
  "items": [{"k": 1}, {"k": "a"}, [1, 2]], "nested": {"a": {"b": [true, 1.5, "c"]}}},
 {"type": "observed-data", "id": "observed-data--2", "first_observed": "2024-01-01T00:00:05Z",
  "last_observed": "2024-01-01T01:00:10+01:00", "number_observed": 1, "object_refs": ["file--2"]},
 {"type": "file", "id": "file--2", "name": "setup.exe", "size": 1.5e3}
]}]"#;

fn observations() -> &'static Observations {
    static OBS: OnceLock<Observations> = OnceLock::new();
    OBS.get_or_init(|| {
        let v: serde_json::Value = serde_json::from_str(OBSERVED).expect("fixed JSON");
        Observations::from_json(&v, SpecVersion::V21).expect("fixed observations")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = Pattern::parse(text) {
        let full = p.matches(observations());
        let verdict = p.is_match(observations());
        if let (Ok(full), Ok(verdict)) = (&full, &verdict) {
            assert_eq!(full.matched, *verdict);
        }
        let _ = p.index_keys();
    }
});
