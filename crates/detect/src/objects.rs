//! Collecting one observation's SCOs and wrapping them in an observed-data inside a bundle.

use std::collections::HashMap;

use kizuna_stix::Timestamp;
use md5::Md5;
use serde_json::{Map, Value, json};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::id::{derived_id, sco_id};

/// The SCOs of one observation, deduplicated by id, in the order they were first seen.
#[derive(Debug, Default)]
pub(crate) struct ObjectSet {
    objects: Vec<Map<String, Value>>,
    index: HashMap<String, usize>,
}

impl ObjectSet {
    /// Adds an SCO of type `kind` and returns its deterministic id. An SCO already present keeps
    /// its properties and gains the ones it lacked (an address seen once with a display name).
    pub(crate) fn add(&mut self, kind: &str, props: Map<String, Value>) -> String {
        let id = sco_id(kind, &props);
        if let Some(&at) = self.index.get(&id) {
            if let Some(existing) = self.objects.get_mut(at) {
                for (k, v) in props {
                    existing.entry(k).or_insert(v);
                }
            }
            return id;
        }
        let mut obj = Map::with_capacity(props.len() + 3);
        obj.insert("type".into(), Value::String(kind.to_owned()));
        obj.insert("spec_version".into(), Value::String("2.1".into()));
        obj.insert("id".into(), Value::String(id.clone()));
        obj.extend(props);
        self.index.insert(id.clone(), self.objects.len());
        self.objects.push(obj);
        id
    }

    /// Adds a `value`-keyed SCO (address, domain, URL).
    pub(crate) fn add_value(&mut self, kind: &str, value: &str) -> String {
        let mut props = Map::new();
        props.insert("value".into(), Value::String(value.to_owned()));
        self.add(kind, props)
    }

    /// Adds an IP address SCO of the right type for `ip`.
    pub(crate) fn add_ip(&mut self, ip: std::net::IpAddr) -> String {
        match ip {
            std::net::IpAddr::V4(v4) => self.add_value("ipv4-addr", &v4.to_string()),
            std::net::IpAddr::V6(v6) => self.add_value("ipv6-addr", &v6.to_string()),
        }
    }

    /// Adds the SCO for a host name or address literal: an IP SCO or a domain-name.
    pub(crate) fn add_host(&mut self, host: &str) -> Option<String> {
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return None;
        }
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            return Some(self.add_ip(ip));
        }
        let lower = host.trim_end_matches('.').to_ascii_lowercase();
        if !is_domain(&lower) {
            return None;
        }
        Some(self.add_value("domain-name", &lower))
    }

    /// Whether nothing was collected.
    pub(crate) fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Wraps the SCOs in an observed-data (`number_observed` 1) inside a bundle.
    pub(crate) fn into_bundle(
        self,
        source: &str,
        first: Timestamp,
        last: Timestamp,
        created: Timestamp,
    ) -> Value {
        let refs: Vec<Value> = self
            .objects
            .iter()
            .filter_map(|o| o.get("id").cloned())
            .collect();
        let mut parts: Vec<String> = vec![source.to_owned(), first.to_string()];
        parts.extend(refs.iter().filter_map(|r| r.as_str().map(str::to_owned)));
        let part_refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        let od_id = derived_id("observed-data", &part_refs);
        // `created`/`modified` must carry milliseconds (STIX 2.1 §3.2).
        let created = created.with_digits(3).to_string();
        let observed = json!({
            "type": "observed-data",
            "spec_version": "2.1",
            "id": od_id,
            "created": created,
            "modified": created,
            "first_observed": first.to_string(),
            "last_observed": last.to_string(),
            "number_observed": 1,
            "object_refs": refs,
        });
        let mut objects = Vec::with_capacity(self.objects.len() + 1);
        objects.push(observed);
        objects.extend(self.objects.into_iter().map(Value::Object));
        json!({
            "type": "bundle",
            "id": derived_id("bundle", &[od_id.as_str()]),
            "objects": objects,
        })
    }
}

/// Whether `s` (lower case) looks like a DNS name: dot-separated labels of letters, digits,
/// hyphens and underscores (IDNs arrive either as A-labels or as Unicode, both kept).
pub(crate) fn is_domain(s: &str) -> bool {
    if s.len() > 253 || !s.contains('.') {
        return false;
    }
    s.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
    })
}

/// MD5, SHA-1 and SHA-256 of `data`, as STIX `hashes` (lower-case hex).
pub(crate) fn hashes(data: &[u8]) -> Value {
    let mut m = Map::new();
    m.insert("MD5".into(), Value::String(hex(&Md5::digest(data))));
    m.insert("SHA-1".into(), Value::String(hex(&Sha1::digest(data))));
    m.insert("SHA-256".into(), Value::String(hex(&Sha256::digest(data))));
    Value::Object(m)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
