//! Zeek JSON log lines (`conn`, `dns`, `http`, `files`, `ssl`) to SCOs.

use serde_json::{Map, Value, json};

use super::{Mapped, hex_hashes, http_url, resolution, s, time, traffic, u};
use crate::objects::ObjectSet;

/// The connection 4-tuple, from flat (`id.orig_h`) or nested (`id: {orig_h}`) keys.
fn endpoint<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(&format!("id.{key}"))
        .or_else(|| obj.get("id").and_then(|id| id.get(key)))
}

fn which(obj: &Map<String, Value>, hint: Option<&str>) -> Option<&'static str> {
    let by_name = |n: &str| match n {
        "conn" => Some("conn"),
        "dns" => Some("dns"),
        "http" => Some("http"),
        "files" => Some("files"),
        "ssl" => Some("ssl"),
        _ => None,
    };
    if let Some(p) = s(obj, "_path").and_then(by_name) {
        return Some(p);
    }
    if let Some(p) = hint.and_then(by_name) {
        return Some(p);
    }
    let has = |k: &str| obj.contains_key(k);
    if has("query") && (has("qtype_name") || has("answers") || has("rcode")) {
        Some("dns")
    } else if has("method") || (has("host") && has("uri")) {
        Some("http")
    } else if has("fuid") && (has("md5") || has("sha1") || has("mime_type") || has("tx_hosts")) {
        Some("files")
    } else if has("server_name") || has("cipher") || has("cert_chain_fps") {
        Some("ssl")
    } else if has("conn_state") || has("proto") {
        Some("conn")
    } else {
        None
    }
}

/// Maps one Zeek line; `hint` is the log type implied by the file name.
pub(crate) fn map(obj: &Map<String, Value>, hint: Option<&str>) -> Result<Mapped, String> {
    let kind = which(obj, hint).ok_or("not a Zeek conn, dns, http, files or ssl record")?;
    let mut set = ObjectSet::default();
    let ts = obj.get("ts").and_then(time);
    let orig_h = endpoint(obj, "orig_h").and_then(Value::as_str);
    let resp_h = endpoint(obj, "resp_h").and_then(Value::as_str);
    let port = |k| match endpoint(obj, k)? {
        Value::Number(n) => n.as_u64(),
        Value::String(t) => t.parse().ok(),
        _ => None,
    };
    let (orig_p, resp_p) = (port("orig_p"), port("resp_p"));
    let proto = s(obj, "proto").unwrap_or("").to_owned();
    let mut last = ts;
    match kind {
        "conn" => {
            let mut protocols = vec![proto];
            if let Some(svc) = s(obj, "service") {
                protocols.extend(svc.split(',').map(str::to_owned));
            }
            let mut extra = Map::new();
            let duration = obj.get("duration").and_then(Value::as_f64);
            if let (Some(start), Some(d)) = (ts, duration)
                && d.is_finite()
                && d >= 0.0
            {
                let end = start
                    .unix_micros()
                    .saturating_add((d * 1_000_000.0).round() as i64);
                let end = kizuna_stix::Timestamp::from_unix_micros(end);
                extra.insert("end".into(), Value::String(end.to_string()));
                last = Some(end);
            }
            for (from, to) in [
                ("orig_bytes", "src_byte_count"),
                ("resp_bytes", "dst_byte_count"),
                ("orig_pkts", "src_packets"),
                ("resp_pkts", "dst_packets"),
            ] {
                if let Some(n) = u(obj, from) {
                    extra.insert(to.into(), json!(n));
                }
            }
            traffic(
                &mut set, orig_h, orig_p, resp_h, resp_p, protocols, ts, extra,
            );
        }
        "dns" => {
            let protocols = vec![proto, "dns".to_owned()];
            traffic(
                &mut set,
                orig_h,
                orig_p,
                resp_h,
                resp_p,
                protocols,
                ts,
                Map::new(),
            );
            if let Some(q) = s(obj, "query") {
                let answers: Vec<&str> = obj
                    .get("answers")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                resolution(&mut set, q, answers);
            }
        }
        "http" => {
            let mut ext = Map::new();
            if let Some(m) = s(obj, "method") {
                ext.insert("request_method".into(), json!(m.to_ascii_lowercase()));
            }
            ext.insert("request_value".into(), json!(s(obj, "uri").unwrap_or("/")));
            if let Some(v) = s(obj, "version") {
                ext.insert("request_version".into(), json!(format!("http/{v}")));
            }
            let mut headers = Map::new();
            for (k, h) in [
                ("host", "Host"),
                ("user_agent", "User-Agent"),
                ("referrer", "Referer"),
            ] {
                if let Some(v) = s(obj, k) {
                    headers.insert(h.into(), json!([v]));
                }
            }
            if !headers.is_empty() {
                ext.insert("request_header".into(), Value::Object(headers));
            }
            let mut extra = Map::new();
            extra.insert("extensions".into(), json!({"http-request-ext": ext}));
            let protocols = vec!["tcp".to_owned(), "http".to_owned()];
            traffic(
                &mut set, orig_h, orig_p, resp_h, resp_p, protocols, ts, extra,
            );
            http_url(&mut set, s(obj, "host"), resp_p, s(obj, "uri"));
        }
        "files" => {
            for key in ["tx_hosts", "rx_hosts"] {
                for ip in obj.get(key).and_then(Value::as_array).into_iter().flatten() {
                    if let Some(ip) = ip.as_str().and_then(|i| i.parse().ok()) {
                        set.add_ip(ip);
                    }
                }
            }
            let mut props = Map::new();
            if let Some(h) = hex_hashes(["md5", "sha1", "sha256"].iter().filter_map(|k| s(obj, k)))
            {
                props.insert("hashes".into(), h);
            }
            if let Some(name) = s(obj, "filename") {
                let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
                props.insert("name".into(), json!(base));
            }
            if !props.is_empty() {
                if let Some(n) = u(obj, "total_bytes").or_else(|| u(obj, "seen_bytes")) {
                    props.insert("size".into(), json!(n));
                }
                if let Some(m) = s(obj, "mime_type") {
                    props.insert("mime_type".into(), json!(m));
                }
                set.add("file", props);
            }
        }
        _ => {
            let version = s(obj, "version").map(str::to_ascii_lowercase);
            let app = if version.as_deref().is_some_and(|v| v.starts_with("ssl")) {
                "ssl"
            } else {
                "tls"
            };
            let protocols = vec![
                if proto.is_empty() {
                    "tcp".to_owned()
                } else {
                    proto
                },
                app.to_owned(),
            ];
            traffic(
                &mut set,
                orig_h,
                orig_p,
                resp_h,
                resp_p,
                protocols,
                ts,
                Map::new(),
            );
            if let Some(sni) = s(obj, "server_name") {
                set.add_host(sni);
            }
            let mut cert = Map::new();
            let fps: Vec<&str> = obj
                .get("cert_chain_fps")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(Value::as_str)
                .into_iter()
                .collect();
            if let Some(h) = hex_hashes(fps) {
                cert.insert("hashes".into(), h);
            }
            if let Some(v) = s(obj, "subject") {
                cert.insert("subject".into(), json!(v));
            }
            if let Some(v) = s(obj, "issuer") {
                cert.insert("issuer".into(), json!(v));
            }
            if !cert.is_empty() {
                set.add("x509-certificate", cert);
            }
        }
    }
    Ok(Mapped {
        set,
        first: ts,
        last,
    })
}

/// Zeek columns holding numbers: turned into JSON numbers, as Zeek's JSON writer does.
const NUMERIC: &[&str] = &[
    "ts",
    "duration",
    "id.orig_p",
    "id.resp_p",
    "orig_bytes",
    "resp_bytes",
    "orig_pkts",
    "resp_pkts",
    "total_bytes",
    "seen_bytes",
];

/// Zeek columns holding sets or vectors (comma-separated in TSV).
const LISTS: &[&str] = &[
    "answers",
    "TTLs",
    "tx_hosts",
    "rx_hosts",
    "cert_chain_fps",
    "cert_chain_fuids",
    "client_cert_chain_fps",
];

/// One line of a Zeek TSV log as the object Zeek's JSON writer would have written: unset
/// (`-`) and empty (`(empty)`) columns left out.
pub(crate) fn tsv_record(fields: &[String], line: &str) -> Map<String, Value> {
    let mut obj = Map::new();
    for (name, raw) in fields.iter().zip(line.split('\t')) {
        if raw == "-" || raw == "(empty)" || raw.is_empty() {
            continue;
        }
        let value = if NUMERIC.contains(&name.as_str()) {
            match raw.parse::<u64>() {
                Ok(n) => json!(n),
                Err(_) => raw.parse::<f64>().map_or_else(|_| json!(raw), |f| json!(f)),
            }
        } else if LISTS.contains(&name.as_str()) {
            json!(raw.split(',').collect::<Vec<_>>())
        } else {
            json!(raw)
        };
        obj.insert(name.clone(), value);
    }
    obj
}
