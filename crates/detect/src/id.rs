//! Deterministic SCO identifiers (STIX 2.1 §2.9): UUIDv5 over the JSON canonical form
//! (RFC 8785) of the object's ID contributing properties.
//!
//! The same observable therefore gets the same id in every message, log line, sensor and
//! partner hub that follows the specification, which is what lets a sighting's SCOs be merged.

use serde_json::{Map, Value};
use uuid::Uuid;

/// The namespace the specification fixes for SCO identifiers.
pub const SCO_NAMESPACE: Uuid = Uuid::from_u128(0x00ab_edb4_aa42_466c_9c01_fed2_3315_a9b7);

/// Namespace for the ids Kizuna derives for its own SDOs (observed-data, bundle, sighting), so
/// that re-scanning the same input gives the same ids.
pub const KIZUNA_NAMESPACE: Uuid = Uuid::from_u128(0x6b69_7a75_6e61_5d00_8000_6465_7465_6374);

/// The ID contributing properties of each SCO type the sensors emit.
pub(crate) fn contributing(kind: &str) -> &'static [&'static str] {
    match kind {
        "artifact" => &["hashes", "payload_bin"],
        "autonomous-system" => &["number"],
        "directory" => &["path"],
        "domain-name" | "email-addr" | "ipv4-addr" | "ipv6-addr" | "mac-addr" | "url" => &["value"],
        "email-message" => &["from_ref", "subject", "body"],
        "file" => &["hashes", "name", "extensions", "parent_directory_ref"],
        "mutex" => &["name"],
        "network-traffic" => &[
            "start",
            "end",
            "src_ref",
            "dst_ref",
            "src_port",
            "dst_port",
            "protocols",
            "extensions",
        ],
        "process" => &[],
        "software" => &["name", "cpe", "swid", "vendor", "version"],
        "user-account" => &["account_type", "user_id", "account_login"],
        "windows-registry-key" => &["key", "values"],
        "x509-certificate" => &["hashes", "serial_number"],
        _ => &[],
    }
}

/// The deterministic id of an SCO of type `kind` with properties `props` (the `type`, `id` and
/// `spec_version` members, if present, are ignored). Falls back to a UUIDv5 over all properties
/// when none of the contributing ones is present, so that the result stays deterministic.
pub fn sco_id(kind: &str, props: &Map<String, Value>) -> String {
    // The canonical form is written straight from `props`: no copy of the values. The
    // contributing names are ASCII, so sorting them as strings is RFC 8785's UTF-16 order.
    let mut keys: Vec<&str> = contributing(kind)
        .iter()
        .copied()
        .filter(|k| props.contains_key(*k))
        .collect();
    let mut text = String::with_capacity(128);
    if keys.is_empty() {
        let mut all = Map::new();
        for (k, v) in props {
            if !matches!(k.as_str(), "type" | "id" | "spec_version") {
                all.insert(k.clone(), v.clone());
            }
        }
        canonical(&Value::Object(all), &mut text);
    } else {
        keys.sort_unstable();
        text.push('{');
        for (i, key) in keys.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            quote(key, &mut text);
            text.push(':');
            match props.get(*key) {
                Some(v) if *key == "hashes" => match choose_one_hash(v) {
                    Some(one) => canonical(&one, &mut text),
                    None => canonical(v, &mut text),
                },
                Some(v) => canonical(v, &mut text),
                None => text.push_str("null"),
            }
        }
        text.push('}');
    }
    format!("{kind}--{}", Uuid::new_v5(&SCO_NAMESPACE, text.as_bytes()))
}

/// A Kizuna-derived id for an SDO of type `kind`, from the given name parts.
pub fn derived_id(kind: &str, parts: &[&str]) -> String {
    let name = parts.join("\u{1f}");
    format!(
        "{kind}--{}",
        Uuid::new_v5(&KIZUNA_NAMESPACE, name.as_bytes())
    )
}

/// The specification's choice of one hash: MD5, then SHA-1, SHA-256, SHA-512, else any.
fn choose_one_hash(hashes: &Value) -> Option<Value> {
    let map = hashes.as_object()?;
    let key = ["MD5", "SHA-1", "SHA-256", "SHA-512"]
        .iter()
        .find(|k| map.contains_key(**k))
        .map(|k| (*k).to_owned())
        .or_else(|| map.keys().next().cloned())?;
    let mut one = Map::new();
    one.insert(key.clone(), map.get(&key)?.clone());
    Some(Value::Object(one))
}

/// RFC 8785 (JCS) serialisation: members sorted by UTF-16 code units, no whitespace, strings
/// escaped as ECMAScript does. Numbers the sensors emit are integers, printed as such.
pub fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                if f.fract() == 0.0 && f.abs() < 1e21 {
                    out.push_str(&format!("{f:.0}"));
                } else {
                    out.push_str(&f.to_string());
                }
            }
        }
        Value::String(s) => quote(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                quote(k, out);
                out.push(':');
                if let Some(v) = map.get(k) {
                    canonical(v, out);
                }
            }
            out.push('}');
        }
    }
}

fn quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn matches_the_python_stix2_library() {
        // Ids computed with stix2 3.0.2 (`stix2.v21.DomainName(value=...)` etc.).
        assert_eq!(
            sco_id("domain-name", &obj(json!({"value": "example.com"}))),
            "domain-name--bedb4899-d24b-5401-bc86-8f6b4cc18ec7"
        );
        assert_eq!(
            sco_id("ipv4-addr", &obj(json!({"value": "198.51.100.3"}))),
            "ipv4-addr--28bb3599-77cd-5a82-a950-b5bc3caf07c4"
        );
    }

    #[test]
    fn canonical_sorts_and_escapes() {
        let mut s = String::new();
        canonical(&json!({"b": [1, "x\n"], "a": {"é": true}}), &mut s);
        assert_eq!(s, r#"{"a":{"é":true},"b":[1,"x\n"]}"#);
    }
}
