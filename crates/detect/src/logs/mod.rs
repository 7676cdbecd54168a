//! The log sensors: one JSON line in, one [`Observation`] out, streamed in bounded memory.
//!
//! Each line is mapped on its own (no state across lines), so memory is one line plus its SCOs
//! whatever the input size, and a bad line costs only itself: it is reported as
//! [`Error::BadLine`] with `PATH:LINE` and the next line is read.

mod suricata;
mod zeek;

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::IpAddr;
use std::path::PathBuf;

use kizuna_stix::Timestamp;
use serde_json::{Map, Value, json};

use crate::objects::ObjectSet;
use crate::{Error, Observation};

/// Longest line read; a longer one is reported and skipped.
const MAX_LINE_BYTES: usize = 4 << 20;

/// Which kind of log the lines are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Zeek logs (`conn`, `dns`, `http`, `files`, `ssl`) as JSON lines or as TSV with their
    /// `#fields` header; the record type comes from `_path` or `#path`, else from the file
    /// name (`conn.log`, `dns.2024-01-01.00:00:00.log`), else from the fields.
    Zeek,
    /// Suricata EVE JSON (`flow`, `dns`, `http`, `tls`, `fileinfo`; other events give the flow).
    Suricata,
    /// STIX JSONL: one bundle or observed-data per line, passed through.
    Stix,
}

/// What a mapper returns for one line: the SCOs and the time they were observed.
pub(crate) struct Mapped {
    pub(crate) set: ObjectSet,
    pub(crate) first: Option<Timestamp>,
    pub(crate) last: Option<Timestamp>,
}

/// The input being read.
struct Input {
    name: String,
    reader: Box<dyn BufRead>,
    /// The Zeek log type (`#path` header, else the file name).
    zeek_path: Option<String>,
    /// The columns of a Zeek TSV log (`#fields` header).
    zeek_fields: Option<Vec<String>>,
}

impl Input {
    fn new(name: String, reader: Box<dyn BufRead>) -> Self {
        let zeek_path = zeek_hint(&name);
        Self {
            name,
            reader,
            zeek_path,
            zeek_fields: None,
        }
    }
}

/// Yields one observation per log line of the given inputs (`-` is standard input).
pub struct LogSource {
    format: LogFormat,
    pending: VecDeque<PathBuf>,
    current: Option<Input>,
    line_no: u64,
    now: Timestamp,
    line: Vec<u8>,
}

impl LogSource {
    /// A source over `paths` of the given format; `now` is the `created` time of every
    /// observed-data and the observation time of lines without one.
    pub fn new(
        format: LogFormat,
        paths: impl IntoIterator<Item = PathBuf>,
        now: Timestamp,
    ) -> Self {
        Self {
            format,
            pending: paths.into_iter().collect(),
            current: None,
            line_no: 0,
            now,
            line: Vec::new(),
        }
    }

    /// A source over one reader named `name` (used in `source` as `NAME:LINE`).
    pub fn from_reader(
        format: LogFormat,
        name: &str,
        reader: Box<dyn BufRead>,
        now: Timestamp,
    ) -> Self {
        let mut s = Self::new(format, [], now);
        s.current = Some(Input::new(name.to_owned(), reader));
        s
    }

    fn open(&mut self, path: PathBuf) -> Result<(), Error> {
        let name = path.display().to_string();
        let reader: Box<dyn BufRead> = if name == "-" {
            Box::new(BufReader::new(std::io::stdin()))
        } else {
            let file = File::open(&path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            Box::new(BufReader::new(file))
        };
        self.current = Some(Input::new(name, reader));
        self.line_no = 0;
        Ok(())
    }
}

/// Maps one JSON log line of `format` named `source` (`PATH:LINE`) on its own: the stateless
/// half of [`LogSource`], for callers that read lines themselves and map them on several
/// threads. `now` is the observed-data's `created` time and the observation time of lines
/// without one. Zeek TSV needs its `#fields` header and is read through [`LogSource`] only.
pub fn map_json_line(
    format: LogFormat,
    text: &str,
    source: &str,
    now: Timestamp,
) -> Result<Observation, Error> {
    map_line(format, now, text, source, None, None).map_err(|reason| Error::BadLine {
        source_name: source.to_owned(),
        reason,
    })
}

fn map_line(
    format: LogFormat,
    now: Timestamp,
    text: &str,
    source: &str,
    zeek_path: Option<&str>,
    zeek_fields: Option<&[String]>,
) -> Result<Observation, String> {
    let obj = if format == LogFormat::Zeek && !text.starts_with('{') {
        let fields =
            zeek_fields.ok_or("not JSON, and no #fields header came before it for Zeek TSV")?;
        zeek::tsv_record(fields, text)
    } else {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(obj) = value else {
            return Err("not a JSON object".into());
        };
        obj
    };
    if format == LogFormat::Stix {
        return stix_line(obj, source);
    }
    let mapped = match format {
        LogFormat::Zeek => zeek::map(&obj, zeek_path)?,
        _ => suricata::map(&obj)?,
    };
    if mapped.set.is_empty() {
        return Err("no observables in this line".into());
    }
    let first = mapped.first.unwrap_or(now);
    let last = mapped.last.unwrap_or(first);
    Ok(Observation {
        source: source.to_owned(),
        bundle: mapped.set.into_bundle(source, first, last, now),
        notes: Vec::new(),
    })
}

/// The Zeek log type a file name implies: `conn.log`, `dns.2024-01-01.00:00:00.log` → `dns`.
fn zeek_hint(name: &str) -> Option<String> {
    let file = name.rsplit('/').next()?;
    let stem = file.split('.').next()?;
    (!stem.is_empty()).then(|| stem.to_ascii_lowercase())
}

fn stix_line(obj: Map<String, Value>, source: &str) -> Result<Observation, String> {
    let bundle = match obj.get("type").and_then(Value::as_str) {
        Some("bundle") => Value::Object(obj),
        Some("observed-data") => {
            let id = obj
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            json!({
                "type": "bundle",
                "id": crate::id::derived_id("bundle", &[id.as_str()]),
                "objects": [Value::Object(obj)],
            })
        }
        Some(other) => return Err(format!("expected a bundle or observed-data, not {other}")),
        None => return Err("no \"type\"".into()),
    };
    Ok(Observation {
        source: source.to_owned(),
        bundle,
        notes: Vec::new(),
    })
}

impl Iterator for LogSource {
    type Item = Result<Observation, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.current.is_none() {
                let path = self.pending.pop_front()?;
                if let Err(e) = self.open(path) {
                    return Some(Err(e));
                }
            }
            let input = self.current.as_mut()?;
            self.line.clear();
            let read = (&mut input.reader)
                .take(MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut self.line);
            let n = match read {
                Ok(n) => n,
                Err(source) => {
                    let path = PathBuf::from(input.name.as_str());
                    self.current = None;
                    return Some(Err(Error::Io { path, source }));
                }
            };
            if n == 0 {
                self.current = None;
                continue;
            }
            self.line_no += 1;
            let source = format!("{}:{}", input.name, self.line_no);
            if self.line.len() > MAX_LINE_BYTES && !self.line.ends_with(b"\n") {
                // Skip the rest of the overlong line without keeping it.
                loop {
                    self.line.clear();
                    match (&mut input.reader)
                        .take(MAX_LINE_BYTES as u64)
                        .read_until(b'\n', &mut self.line)
                    {
                        Ok(0) | Err(_) => break,
                        Ok(_) if self.line.ends_with(b"\n") => break,
                        Ok(_) => {}
                    }
                }
                return Some(Err(Error::BadLine {
                    source_name: source,
                    reason: format!("line longer than {MAX_LINE_BYTES} bytes"),
                }));
            }
            let text = String::from_utf8_lossy(&self.line);
            // Tabs are Zeek TSV separators: only line ends and spaces are trimmed.
            let text = text.trim_end_matches(['\r', '\n']).trim_matches(' ');
            if text.trim().is_empty() {
                continue;
            }
            if let Some(header) = text.strip_prefix('#') {
                // Zeek TSV headers; other comment lines are skipped.
                if let Some(fields) = header.strip_prefix("fields\t") {
                    input.zeek_fields = Some(fields.split('\t').map(str::to_owned).collect());
                } else if let Some(path) = header.strip_prefix("path\t") {
                    input.zeek_path = Some(path.trim().to_owned());
                }
                continue;
            }
            let Some(input) = self.current.as_ref() else {
                continue;
            };
            return Some(
                map_line(
                    self.format,
                    self.now,
                    text,
                    &source,
                    input.zeek_path.as_deref(),
                    input.zeek_fields.as_deref(),
                )
                .map_err(|reason| Error::BadLine {
                    source_name: source,
                    reason,
                }),
            );
        }
    }
}

// Helpers shared by the mappers.

/// A string member.
pub(crate) fn s<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|v| !v.is_empty() && *v != "-")
}

/// A non-negative integer member (numbers or numeric strings).
pub(crate) fn u(obj: &Map<String, Value>, key: &str) -> Option<u64> {
    match obj.get(key)? {
        Value::Number(n) => n.as_u64(),
        Value::String(t) => t.trim().parse().ok(),
        _ => None,
    }
}

/// Epoch seconds (Zeek's default) or an RFC 3339 string (`+0000` offsets included).
pub(crate) fn time(v: &Value) -> Option<Timestamp> {
    match v {
        Value::Number(n) => {
            let f = n.as_f64()?;
            if !(0.0..=253_402_300_799.0).contains(&f) {
                return None;
            }
            Some(Timestamp::from_unix_micros((f * 1_000_000.0).round() as i64))
        }
        Value::String(t) => match t.trim().parse::<f64>() {
            Ok(f) => time(&json!(f)),
            Err(_) => parse_time(t.trim()),
        },
        _ => None,
    }
}

fn parse_time(t: &str) -> Option<Timestamp> {
    if let Ok(ts) = Timestamp::parse(t) {
        return Some(ts);
    }
    // Suricata: 2024-01-01T10:20:30.123456+0000; certificates: 2024-01-01T00:00:00.
    let t_at = t.find('T')?;
    let (base, offset) = match t[t_at..].find(['+', '-']) {
        Some(i) => (&t[..t_at + i], &t[t_at + i..]),
        None => (t.trim_end_matches('Z'), ""),
    };
    let utc = Timestamp::parse(&format!("{base}Z")).ok()?;
    if offset.is_empty() {
        return Some(utc);
    }
    let sign: i64 = if offset.starts_with('-') { -1 } else { 1 };
    let digits: String = offset[1..].chars().filter(char::is_ascii_digit).collect();
    let hours: i64 = digits.get(0..2)?.parse().ok()?;
    let minutes: i64 = digits.get(2..4).and_then(|m| m.parse().ok()).unwrap_or(0);
    let shift = sign * (hours * 3_600 + minutes * 60) * 1_000_000;
    Some(Timestamp::from_unix_micros(utc.unix_micros() - shift))
}

/// Adds a network-traffic with its endpoints; returns its id, or `None` without endpoints.
#[allow(clippy::too_many_arguments)]
pub(crate) fn traffic(
    set: &mut ObjectSet,
    src: Option<&str>,
    src_port: Option<u64>,
    dst: Option<&str>,
    dst_port: Option<u64>,
    protocols: Vec<String>,
    start: Option<Timestamp>,
    extra: Map<String, Value>,
) -> Option<String> {
    let src_ref = src
        .and_then(|a| a.parse::<IpAddr>().ok())
        .map(|ip| set.add_ip(ip));
    let dst_ref = dst
        .and_then(|a| a.parse::<IpAddr>().ok())
        .map(|ip| set.add_ip(ip));
    if src_ref.is_none() && dst_ref.is_none() {
        return None;
    }
    let mut props = Map::new();
    if let Some(t) = start {
        props.insert("start".into(), Value::String(t.to_string()));
    }
    if let Some(r) = src_ref {
        props.insert("src_ref".into(), Value::String(r));
    }
    if let Some(r) = dst_ref {
        props.insert("dst_ref".into(), Value::String(r));
    }
    if let Some(p) = src_port.filter(|p| *p <= 65_535) {
        props.insert("src_port".into(), json!(p));
    }
    if let Some(p) = dst_port.filter(|p| *p <= 65_535) {
        props.insert("dst_port".into(), json!(p));
    }
    let mut protos: Vec<String> = Vec::new();
    for p in protocols {
        let p = p.trim().to_ascii_lowercase();
        if !p.is_empty() && p != "-" && p != "failed" && !protos.contains(&p) {
            protos.push(p);
        }
    }
    if protos.is_empty() {
        protos.push("ip".into());
    }
    props.insert("protocols".into(), json!(protos));
    props.extend(extra);
    Some(set.add("network-traffic", props))
}

/// Adds a domain-name resolving to the given answers (IP addresses or names).
pub(crate) fn resolution<'a>(
    set: &mut ObjectSet,
    name: &str,
    answers: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let mut refs: Vec<Value> = Vec::new();
    for a in answers {
        let a = a.trim().trim_end_matches('.');
        if a.is_empty() {
            continue;
        }
        let r = match a.parse::<IpAddr>() {
            Ok(ip) => Some(set.add_ip(ip)),
            Err(_) => set.add_host(a),
        };
        if let Some(r) = r.map(Value::String).filter(|r| !refs.contains(r)) {
            refs.push(r);
        }
    }
    let lower = name.trim().trim_end_matches('.').to_ascii_lowercase();
    if !crate::objects::is_domain(&lower) {
        return None;
    }
    let mut props = Map::new();
    props.insert("value".into(), Value::String(lower));
    if !refs.is_empty() {
        props.insert("resolves_to_refs".into(), Value::Array(refs));
    }
    Some(set.add("domain-name", props))
}

/// Adds a url (and its host) for an HTTP request.
pub(crate) fn http_url(
    set: &mut ObjectSet,
    host: Option<&str>,
    port: Option<u64>,
    uri: Option<&str>,
) -> Option<String> {
    let uri = uri.unwrap_or("/");
    let value = if uri.contains("://") {
        uri.to_owned()
    } else {
        let host = host?;
        let port = match port {
            Some(p) if p != 80 && !host.contains(':') => format!(":{p}"),
            _ => String::new(),
        };
        let slash = if uri.starts_with('/') { "" } else { "/" };
        format!("http://{host}{port}{slash}{uri}")
    };
    if let Some(h) = crate::mail::urls::host(&value) {
        set.add_host(h);
    }
    Some(set.add_value("url", &value))
}

/// STIX hashes from hex strings, keyed `MD5`, `SHA-1`, `SHA-256` by length.
pub(crate) fn hex_hashes<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Value> {
    let mut m = Map::new();
    for v in values {
        let hex: String = v
            .chars()
            .filter(|c| *c != ':')
            .collect::<String>()
            .to_ascii_lowercase();
        if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        let key = match hex.len() {
            32 => "MD5",
            40 => "SHA-1",
            64 => "SHA-256",
            _ => continue,
        };
        m.entry(key).or_insert(Value::String(hex));
    }
    (!m.is_empty()).then_some(Value::Object(m))
}
