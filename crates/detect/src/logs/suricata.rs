//! Suricata EVE JSON lines (`flow`, `dns`, `http`, `tls`, `fileinfo`) to SCOs. Every other
//! event type (alerts, anomalies, ...) gives its flow's endpoints.

use serde_json::{Map, Value, json};

use super::{Mapped, hex_hashes, http_url, resolution, s, time, traffic, u};
use crate::objects::ObjectSet;

fn sub<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Map<String, Value>> {
    obj.get(key).and_then(Value::as_object)
}

/// Maps one EVE line.
pub(crate) fn map(obj: &Map<String, Value>) -> Result<Mapped, String> {
    let event = s(obj, "event_type").ok_or("no \"event_type\": not Suricata EVE")?;
    let mut set = ObjectSet::default();
    let ts = obj.get("timestamp").and_then(time);
    let (src, dst) = (s(obj, "src_ip"), s(obj, "dest_ip"));
    let (sport, dport) = (u(obj, "src_port"), u(obj, "dest_port"));
    let proto = s(obj, "proto").unwrap_or("").to_owned();
    let app = s(obj, "app_proto").unwrap_or("").to_owned();
    let mut first = ts;
    let mut last = ts;
    let mut extra = Map::new();
    let mut protocols = vec![proto, app];
    match event {
        "flow" | "netflow" => {
            if let Some(flow) = sub(obj, "flow").or_else(|| sub(obj, "netflow")) {
                let start = flow.get("start").and_then(time);
                let end = flow.get("end").and_then(time);
                if let Some(e) = end {
                    extra.insert("end".into(), json!(e.to_string()));
                }
                for (from, to) in [
                    ("bytes_toserver", "src_byte_count"),
                    ("bytes_toclient", "dst_byte_count"),
                    ("pkts_toserver", "src_packets"),
                    ("pkts_toclient", "dst_packets"),
                ] {
                    if let Some(n) = u(flow, from) {
                        extra.insert(to.into(), json!(n));
                    }
                }
                first = start.or(ts);
                last = end.or(first);
            }
            traffic(&mut set, src, sport, dst, dport, protocols, first, extra);
        }
        "dns" => {
            protocols.push("dns".into());
            traffic(&mut set, src, sport, dst, dport, protocols, ts, extra);
            if let Some(dns) = sub(obj, "dns") {
                dns_names(&mut set, dns);
            }
        }
        "http" => {
            let http = sub(obj, "http");
            let mut ext = Map::new();
            if let Some(h) = http {
                if let Some(m) = s(h, "http_method") {
                    ext.insert("request_method".into(), json!(m.to_ascii_lowercase()));
                }
                ext.insert("request_value".into(), json!(s(h, "url").unwrap_or("/")));
                if let Some(v) = s(h, "protocol") {
                    ext.insert("request_version".into(), json!(v.to_ascii_lowercase()));
                }
                let mut headers = Map::new();
                for (k, name) in [
                    ("hostname", "Host"),
                    ("http_user_agent", "User-Agent"),
                    ("http_refer", "Referer"),
                ] {
                    if let Some(v) = s(h, k) {
                        headers.insert(name.into(), json!([v]));
                    }
                }
                if !headers.is_empty() {
                    ext.insert("request_header".into(), Value::Object(headers));
                }
            }
            extra.insert("extensions".into(), json!({"http-request-ext": ext}));
            protocols.push("http".into());
            traffic(&mut set, src, sport, dst, dport, protocols, ts, extra);
            if let Some(h) = http {
                let port = u(h, "http_port").or(dport);
                http_url(&mut set, s(h, "hostname"), port, s(h, "url"));
            }
        }
        "tls" => {
            protocols.push("tls".into());
            traffic(&mut set, src, sport, dst, dport, protocols, ts, extra);
            if let Some(tls) = sub(obj, "tls") {
                if let Some(sni) = s(tls, "sni") {
                    set.add_host(sni);
                }
                let mut cert = Map::new();
                if let Some(h) = hex_hashes(s(tls, "fingerprint")) {
                    cert.insert("hashes".into(), h);
                }
                for (from, to) in [
                    ("serial", "serial_number"),
                    ("subject", "subject"),
                    ("issuerdn", "issuer"),
                ] {
                    if let Some(v) = s(tls, from) {
                        cert.insert(to.into(), json!(v));
                    }
                }
                for (from, to) in [
                    ("notbefore", "validity_not_before"),
                    ("notafter", "validity_not_after"),
                ] {
                    if let Some(t) = tls.get(from).and_then(time) {
                        cert.insert(to.into(), json!(t.to_string()));
                    }
                }
                if !cert.is_empty() {
                    set.add("x509-certificate", cert);
                }
            }
        }
        "fileinfo" => {
            traffic(&mut set, src, sport, dst, dport, protocols, ts, extra);
            if let Some(h) = sub(obj, "http") {
                http_url(
                    &mut set,
                    s(h, "hostname"),
                    u(h, "http_port").or(sport),
                    s(h, "url"),
                );
            }
            if let Some(fi) = sub(obj, "fileinfo") {
                let mut props = Map::new();
                let hashes = ["md5", "sha1", "sha256"].iter().filter_map(|k| s(fi, k));
                if let Some(h) = hex_hashes(hashes) {
                    props.insert("hashes".into(), h);
                }
                if let Some(name) = s(fi, "filename") {
                    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
                    if !base.is_empty() {
                        props.insert("name".into(), json!(base));
                    }
                }
                if !props.is_empty() {
                    if let Some(n) = u(fi, "size") {
                        props.insert("size".into(), json!(n));
                    }
                    set.add("file", props);
                }
            }
        }
        _ => {
            traffic(&mut set, src, sport, dst, dport, protocols, ts, extra);
        }
    }
    Ok(Mapped { set, first, last })
}

/// Queries and answers of the three EVE DNS layouts (v1 per record, v2 `answers`, v3 `queries`).
fn dns_names(set: &mut ObjectSet, dns: &Map<String, Value>) {
    let mut names: Vec<String> = Vec::new();
    let mut answers: Vec<(String, String)> = Vec::new();
    if let Some(q) = s(dns, "rrname") {
        names.push(q.to_owned());
        if let Some(rdata) = s(dns, "rdata") {
            answers.push((q.to_owned(), rdata.to_owned()));
        }
    }
    for q in dns
        .get("queries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(n) = q.as_object().and_then(|q| s(q, "rrname")) {
            names.push(n.to_owned());
        }
    }
    for a in dns
        .get("answers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(a) = a.as_object()
            && let (Some(n), Some(rdata)) = (s(a, "rrname"), s(a, "rdata"))
        {
            answers.push((n.to_owned(), rdata.to_owned()));
        }
    }
    if let Some(grouped) = sub(dns, "grouped") {
        for rdatas in grouped.values().filter_map(Value::as_array) {
            for r in rdatas.iter().filter_map(Value::as_str) {
                if let Some(q) = names.first() {
                    answers.push((q.clone(), r.to_owned()));
                }
            }
        }
    }
    for (n, _) in &answers {
        if !names.iter().any(|m| m.eq_ignore_ascii_case(n)) {
            names.push(n.clone());
        }
    }
    for name in names {
        let resolved = answers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, r)| r.as_str());
        resolution(set, &name, resolved);
    }
}
