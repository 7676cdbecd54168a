//! Seeded generator of (pattern, observations) cases for differential testing.
//!
//! Every operator, qualifier, path form (nested keys, quoted keys, `[n]`, `[*]`, `_ref`,
//! `_refs`), constant type (string with escapes and Unicode, int, float, bool, binary, hex,
//! timestamp) and input layout (one bundle, several bundles, STIX 2.0 embedded objects) is
//! produced, with type mismatches and missing properties. The generator steers clear of the
//! documented deviations from stix2-matcher (`docs/patterns.md`), which have their own cases in
//! `testdata/patterns/deviations.json`: it never generates EXISTS inside AND/OR or NOT EXISTS,
//! IPv6 or /0 networks, newlines, nanosecond timestamps or offsets, and properties compared
//! with `!=`, `NOT <`-style operators or `IN` only ever hold values of the expected type.

use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Str,
    Int,
    Float,
    Bool,
    Bin,
    Time,
    Ip,
}

/// A path the generator knows how to fill: object type, pattern text of the path after the
/// colon, value kind, and how it is laid out in an object.
#[derive(Clone, Copy)]
pub struct PathDef {
    pub object_type: &'static str,
    pub text: &'static str,
    pub kind: Kind,
}

pub const PATHS: &[PathDef] = &[
    PathDef {
        object_type: "x-thing",
        text: "name",
        kind: Kind::Str,
    },
    PathDef {
        object_type: "x-thing",
        text: "size",
        kind: Kind::Int,
    },
    PathDef {
        object_type: "x-thing",
        text: "ratio",
        kind: Kind::Float,
    },
    PathDef {
        object_type: "x-thing",
        text: "flag",
        kind: Kind::Bool,
    },
    PathDef {
        object_type: "x-thing",
        text: "data_hex",
        kind: Kind::Bin,
    },
    PathDef {
        object_type: "x-thing",
        text: "payload_bin",
        kind: Kind::Bin,
    },
    PathDef {
        object_type: "x-thing",
        text: "seen",
        kind: Kind::Time,
    },
    PathDef {
        object_type: "x-thing",
        text: "'odd-key'",
        kind: Kind::Str,
    },
    PathDef {
        object_type: "x-thing",
        text: "nested.inner",
        kind: Kind::Str,
    },
    PathDef {
        object_type: "x-thing",
        text: "nested.'deep key'.n",
        kind: Kind::Int,
    },
    PathDef {
        object_type: "x-thing",
        text: "tags[*]",
        kind: Kind::Str,
    },
    PathDef {
        object_type: "x-thing",
        text: "tags[0]",
        kind: Kind::Str,
    },
    PathDef {
        object_type: "x-thing",
        text: "tags[1]",
        kind: Kind::Str,
    },
    PathDef {
        object_type: "x-thing",
        text: "items[*].k",
        kind: Kind::Str,
    },
    PathDef {
        object_type: "x-thing",
        text: "items[0].n",
        kind: Kind::Int,
    },
    PathDef {
        object_type: "file",
        text: "name",
        kind: Kind::Str,
    },
    PathDef {
        object_type: "file",
        text: "size",
        kind: Kind::Int,
    },
    PathDef {
        object_type: "file",
        text: "hashes.'SHA-256'",
        kind: Kind::Str,
    },
    PathDef {
        object_type: "ipv4-addr",
        text: "value",
        kind: Kind::Ip,
    },
    PathDef {
        object_type: "network-traffic",
        text: "src_ref.value",
        kind: Kind::Ip,
    },
    PathDef {
        object_type: "network-traffic",
        text: "dst_port",
        kind: Kind::Int,
    },
    PathDef {
        object_type: "network-traffic",
        text: "extra_refs[*].value",
        kind: Kind::Ip,
    },
    PathDef {
        object_type: "network-traffic",
        text: "extra_refs[0].value",
        kind: Kind::Ip,
    },
];

const STRINGS: &[&str] = &[
    "alpha",
    "beta",
    "Alpha beta",
    "al%pha",
    "a_b",
    "it's",
    "back\\slash",
    "caf\u{e9}",
    "\u{65e5}\u{672c}",
    "\u{1f980} crab",
    "",
    "ALPHA",
    "1.2.3.4",
    "abc",
    "aXc",
    "0042",
];
const LIKES: &[&str] = &[
    "al%",
    "%ha",
    "%e%",
    "a_b",
    "%",
    "___",
    "it's",
    "caf_",
    "\u{65e5}%",
    "%a%b%",
    "1.2.%",
    "back\\slash",
    "a_c",
];
const REGEXES: &[&str] = &[
    "^al",
    "a.c",
    "[0-9]+",
    "^$",
    "ph",
    "(?i)ALPHA",
    "\u{e9}",
    "\\d{2}",
    "a|b",
    "^[^a]*$",
    "\\w+\\s\\w+",
    "^.{3}$",
    "(ab|cd)c",
    "t's",
];
const IPS: &[&str] = &[
    "10.0.0.1",
    "10.0.0.0/8",
    "10.1.2.3",
    "192.168.1.1",
    "192.168.0.0/16",
    "192.168.1.0/24",
    "8.8.8.8",
    "10.0.0.0/24",
    "172.16.5.4/32",
];
const NETS: &[&str] = &[
    "10.0.0.0/8",
    "10.0.0.0/24",
    "192.168.0.0/16",
    "192.168.1.1/32",
    "8.8.8.0/24",
    "0.0.0.0/1",
    "10.0.0.1/32",
    "128.0.0.0/1",
];
const HEXES: &[&[u8]] = &[b"abc", b"", b"\x00\xff", b"alpha", b"a_b", b"it's"];
const BASE_SECS: i64 = 1_600_000_000;

fn ts(secs: i64, micros: u32) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil from days (days since 1970-01-01).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let base = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    );
    if micros == 0 {
        format!("{base}Z")
    } else {
        format!("{base}.{micros:06}Z")
    }
}

fn pick<'a, T>(rng: &mut StdRng, xs: &'a [T]) -> &'a T {
    &xs[rng.gen_range(0..xs.len())]
}

fn pick_str(rng: &mut StdRng, xs: &[&'static str]) -> &'static str {
    xs[rng.gen_range(0..xs.len())]
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= c.len() {
                char::from(A[(n >> (18 - 6 * i)) as usize & 63])
            } else {
                '='
            });
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A generated case.
pub struct Case {
    pub pattern: String,
    pub version: &'static str,
    pub observations: Value,
}

pub struct Gen {
    pub rng: StdRng,
    /// Paths that must only hold well-typed values in this case.
    strict: Vec<&'static str>,
    /// Set while generating a comparison that stands alone in its brackets.
    lone: bool,
    /// Paths compared with ISSUPERSET: the reference needs CIDR notation in their values.
    cidr_only: bool,
    /// STIX 2.0 mode: the reference parses the 2.0 grammar (no EXISTS) and crashes on
    /// START/STOP, so neither is generated.
    v20: bool,
}

impl Gen {
    pub fn new(rng: StdRng) -> Self {
        Gen {
            rng,
            strict: Vec::new(),
            lone: false,
            cidr_only: false,
            v20: false,
        }
    }

    fn constant(&mut self, kind: Kind, mismatch: bool) -> String {
        let kind = if mismatch {
            // Never a timestamp: the reference raises on strings that are not timestamps.
            *pick(
                &mut self.rng,
                &[Kind::Str, Kind::Int, Kind::Float, Kind::Bool, Kind::Bin],
            )
        } else {
            kind
        };
        let r = &mut self.rng;
        match kind {
            Kind::Str => quote(pick_str(r, STRINGS)),
            Kind::Int => pick(r, &["0", "1", "-1", "42", "+7", "1000", "3"]).to_string(),
            Kind::Float => pick(r, &["0.5", "1.0", "-2.25", "42.0", "+.5", "3.75"]).to_string(),
            Kind::Bool => pick(r, &["true", "false"]).to_string(),
            Kind::Bin => {
                let b = *pick(r, HEXES);
                if r.gen_bool(0.5) {
                    format!("h'{}'", hex(b))
                } else {
                    format!("b'{}'", b64(b))
                }
            }
            Kind::Time => format!(
                "t'{}'",
                ts(
                    BASE_SECS + r.gen_range(-600..8000),
                    if r.gen_bool(0.2) { 250_000 } else { 0 }
                )
            ),
            Kind::Ip => quote(pick_str(r, IPS)),
        }
    }

    fn test(&mut self, object_type: Option<&'static str>) -> String {
        let candidates: Vec<usize> = (0..PATHS.len())
            .filter(|&i| object_type.is_none_or(|t| PATHS[i].object_type == t))
            .collect();
        let pi = *pick(&mut self.rng, &candidates);
        let p = PATHS[pi];
        if matches!(p.kind, Kind::Time | Kind::Ip) {
            // The reference raises on strings that are not timestamps or addresses.
            self.strict.push(p.text);
        }
        let path = format!("{}:{}", p.object_type, p.text);
        let roll = self.rng.gen_range(0..100);
        let not = if self.rng.gen_bool(0.2) { "NOT " } else { "" };
        let mismatch = self.rng.gen_bool(0.15);
        let ordered = |g: &mut Gen| *pick(&mut g.rng, &["<", "<=", ">", ">="]);
        match (p.kind, roll) {
            _ if self.lone && !self.v20 => format!("EXISTS {path}"),
            (_, 0..=29) => {
                let c = self.constant(p.kind, mismatch);
                format!("{path} {not}= {c}")
            }
            (_, 30..=39) => {
                self.strict.push(p.text);
                let c = self.constant(p.kind, false);
                format!("{path} {not}!= {c}")
            }
            (Kind::Bool, 40..=54) => {
                self.strict.push(p.text);
                format!("{path} {not}IN (true)")
            }
            (_, 40..=54) => {
                if !not.is_empty() || mismatch {
                    self.strict.push(p.text);
                }
                let op = ordered(self);
                let kind = if p.kind == Kind::Ip {
                    Kind::Str
                } else {
                    p.kind
                };
                let c = self.constant(kind, mismatch && not.is_empty());
                format!("{path} {not}{op} {c}")
            }
            (_, 55..=64) => {
                self.strict.push(p.text);
                let n = self.rng.gen_range(0..4);
                let kind = if p.kind == Kind::Bin {
                    Kind::Bin
                } else {
                    p.kind
                };
                let members: Vec<String> = (0..n).map(|_| self.constant(kind, false)).collect();
                format!("{path} {not}IN ({})", members.join(", "))
            }
            (Kind::Ip, 65..=84) => {
                let op = if self.rng.gen_bool(0.5) {
                    "ISSUBSET"
                } else {
                    "ISSUPERSET"
                };
                if op == "ISSUPERSET" {
                    self.cidr_only = true;
                }
                let net = if op == "ISSUBSET" {
                    pick(&mut self.rng, NETS)
                } else {
                    pick(&mut self.rng, IPS)
                };
                format!("{path} {not}{op} {}", quote(net))
            }
            (k, 65..=79) if k != Kind::Bin => {
                format!("{path} {not}LIKE {}", quote(pick_str(&mut self.rng, LIKES)))
            }
            _ => format!(
                "{path} {not}MATCHES {}",
                quote(pick_str(&mut self.rng, REGEXES))
            ),
        }
    }

    fn comparison(&mut self, depth: u32) -> String {
        let same_type = self.rng.gen_bool(0.85);
        let ty = PATHS[self.rng.gen_range(0..PATHS.len())].object_type;
        if self.rng.gen_bool(0.1) {
            // A lone EXISTS is the only form of it the reference handles.
            self.lone = true;
            let t = self.test(Some(ty));
            self.lone = false;
            return t;
        }
        self.comparison_of(depth, if same_type { Some(ty) } else { None })
    }

    fn comparison_of(&mut self, depth: u32, ty: Option<&'static str>) -> String {
        if depth == 0 || self.rng.gen_bool(0.55) {
            return self.test(ty);
        }
        let a = self.comparison_of(depth - 1, ty);
        let b = self.comparison_of(depth - 1, ty);
        let op = if self.rng.gen_bool(0.5) { "AND" } else { "OR" };
        if self.rng.gen_bool(0.3) {
            format!("({a} {op} {b})")
        } else {
            format!("{a} {op} {b}")
        }
    }

    fn observation(&mut self, depth: u32) -> String {
        let mut e = if depth == 0 || self.rng.gen_bool(0.45) {
            format!("[{}]", self.comparison(2))
        } else {
            let a = self.observation(depth - 1);
            let b = self.observation(depth - 1);
            let op = *pick(&mut self.rng, &["AND", "OR", "FOLLOWEDBY"]);
            format!("({a} {op} {b})")
        };
        if self.rng.gen_bool(0.3) {
            e = match self.rng.gen_range(0..if self.v20 { 2 } else { 3 }) {
                0 => format!(
                    "{e} WITHIN {} SECONDS",
                    pick(&mut self.rng, &["1", "30", "300", "3600", "0.5", "7200"])
                ),
                1 => format!("{e} REPEATS {} TIMES", self.rng.gen_range(1..4)),
                _ => {
                    let a = BASE_SECS + self.rng.gen_range(-600..4000);
                    let b = a + self.rng.gen_range(-10..5000);
                    format!("{e} START t'{}' STOP t'{}'", ts(a, 0), ts(b, 0))
                }
            };
        }
        e
    }

    /// An occasionally invalid pattern: both engines must reject it.
    fn invalid(&mut self) -> String {
        let base = self.observation(1);
        match self.rng.gen_range(0..7) {
            0 => format!("{base} REPEATS 0 TIMES"),
            1 => format!("{base} WITHIN 0 SECONDS"),
            2 => "[x-thing:name IN ('a', 1)]".to_string(),
            3 => "[x-thing:seen = t'2020-13-01T00:00:00Z']".to_string(),
            4 => format!("({base}"),
            5 => "[x-thing:name = 'unterminated]".to_string(),
            _ => format!("{base} AND"),
        }
    }

    fn value(&mut self, kind: Kind, strict: bool) -> Value {
        let cidr_only = self.cidr_only;
        let r = &mut self.rng;
        let kind = if !strict && r.gen_bool(0.12) {
            *pick(r, &[Kind::Str, Kind::Int, Kind::Float, Kind::Bool])
        } else {
            kind
        };
        match kind {
            Kind::Str => json!(pick(r, STRINGS)),
            Kind::Int => json!(pick(r, &[0, 1, -1, 42, 7, 1000, 3, 2])),
            Kind::Float => json!(pick(r, &[0.5, 1.0, -2.25, 42.0, 3.75, 0.1])),
            Kind::Bool => json!(r.gen_bool(0.5)),
            Kind::Bin => json!(""),
            Kind::Time => json!(ts(
                BASE_SECS + r.gen_range(-600..8000),
                if r.gen_bool(0.2) { 250_000 } else { 0 }
            )),
            Kind::Ip if cidr_only => json!(pick(r, NETS)),
            Kind::Ip => json!(pick(r, IPS)),
        }
    }

    fn is_strict(&self, text: &str) -> bool {
        self.strict.contains(&text)
    }

    fn maybe(&mut self) -> bool {
        self.rng.gen_bool(0.8)
    }

    fn x_thing(&mut self) -> Value {
        let mut o = serde_json::Map::new();
        o.insert("type".into(), json!("x-thing"));
        let s = |g: &Gen, t: &str| g.is_strict(t);
        if self.maybe() {
            let v = self.value(Kind::Str, s(self, "name"));
            o.insert("name".into(), v);
        }
        if self.maybe() {
            let v = self.value(Kind::Int, s(self, "size"));
            o.insert("size".into(), v);
        }
        if self.maybe() {
            let v = self.value(Kind::Float, s(self, "ratio"));
            o.insert("ratio".into(), v);
        }
        if self.maybe() {
            let v = self.value(Kind::Bool, s(self, "flag"));
            o.insert("flag".into(), v);
        }
        if self.maybe() {
            let v = self.value(Kind::Time, s(self, "seen"));
            o.insert("seen".into(), v);
        }
        if self.maybe() {
            let v = self.value(Kind::Str, s(self, "'odd-key'"));
            o.insert("odd-key".into(), v);
        }
        let b = *pick(&mut self.rng, HEXES);
        if self.maybe() {
            o.insert("data_hex".into(), json!(hex(b)));
        }
        let b = *pick(&mut self.rng, HEXES);
        if self.maybe() {
            o.insert("payload_bin".into(), json!(b64(b)));
        }
        if self.maybe() {
            let inner = self.value(Kind::Str, s(self, "nested.inner"));
            let n = self.value(Kind::Int, s(self, "nested.'deep key'.n"));
            o.insert(
                "nested".into(),
                json!({"inner": inner, "deep key": {"n": n}}),
            );
        }
        if self.maybe() {
            let strict = s(self, "tags[*]") || s(self, "tags[0]") || s(self, "tags[1]");
            let n = self.rng.gen_range(0..4);
            let tags: Vec<Value> = (0..n).map(|_| self.value(Kind::Str, strict)).collect();
            o.insert("tags".into(), Value::Array(tags));
        }
        if self.maybe() {
            let strict_k = s(self, "items[*].k");
            let strict_n = s(self, "items[0].n");
            let n = self.rng.gen_range(0..3);
            let items: Vec<Value> = (0..n)
                .map(|_| {
                    let k = self.value(Kind::Str, strict_k);
                    let v = self.value(Kind::Int, strict_n);
                    json!({"k": k, "n": v})
                })
                .collect();
            o.insert("items".into(), Value::Array(items));
        }
        Value::Object(o)
    }

    fn file(&mut self) -> Value {
        let mut o = serde_json::Map::new();
        o.insert("type".into(), json!("file"));
        if self.maybe() {
            let v = self.value(Kind::Str, self.is_strict("name"));
            o.insert("name".into(), v);
        }
        if self.maybe() {
            let v = self.value(Kind::Int, self.is_strict("size"));
            o.insert("size".into(), v);
        }
        if self.maybe() {
            let v = self.value(Kind::Str, self.is_strict("hashes.'SHA-256'"));
            o.insert("hashes".into(), json!({"SHA-256": v}));
        }
        Value::Object(o)
    }

    /// Builds the observations: observed-data with SCOs, in one of three layouts.
    pub fn observations(&mut self, version: &'static str) -> Value {
        let n_obs = self.rng.gen_range(1..5);
        let mut bundles: Vec<Vec<Value>> = vec![Vec::new()];
        let mut v20 = Vec::new();
        let mut sco_counter = 0;
        for i in 0..n_obs {
            let first = BASE_SECS + self.rng.gen_range(-300..4000);
            let micros = if self.rng.gen_bool(0.2) { 123_456 } else { 0 };
            let last = first + *pick(&mut self.rng, &[0, 0, 1, 30, 600]);
            let mut scos: Vec<Value> = Vec::new();
            let n_sco = self.rng.gen_range(1..4);
            for _ in 0..n_sco {
                match self.rng.gen_range(0..4) {
                    0 | 1 => {
                        let o = self.x_thing();
                        scos.push(o)
                    }
                    2 => {
                        let o = self.file();
                        scos.push(o)
                    }
                    _ => {
                        // network-traffic with its addresses.
                        let src = json!({"type": "ipv4-addr", "value": self.value(Kind::Ip, true)});
                        let e1 = json!({"type": "ipv4-addr", "value": self.value(Kind::Ip, true)});
                        let port = self.value(Kind::Int, self.is_strict("dst_port"));
                        scos.push(json!({"type": "network-traffic", "dst_port": port, "src_ref": 1, "extra_refs": [1, 2]}));
                        scos.push(src);
                        scos.push(e1);
                    }
                }
            }
            // Ids (2.1) or local keys (2.0) first, then references to them.
            let base = sco_counter;
            sco_counter += scos.len();
            let ids: Vec<String> = scos
                .iter()
                .enumerate()
                .map(|(k, o)| {
                    if version == "2.1" {
                        let ty = o["type"].as_str().unwrap_or("x-thing");
                        format!("{ty}--00000000-0000-4000-8000-{:012}", base + k)
                    } else {
                        k.to_string()
                    }
                })
                .collect();
            let mut fixed = Vec::new();
            for (k, mut o) in scos.into_iter().enumerate() {
                if let Some(obj) = o.as_object_mut() {
                    if obj.get("type") == Some(&json!("network-traffic")) {
                        obj.insert("src_ref".into(), json!(ids[k + 1]));
                        obj.insert("extra_refs".into(), json!([ids[k + 2], ids[k + 1]]));
                    }
                    if version == "2.1" {
                        obj.insert("id".into(), json!(ids[k]));
                    }
                }
                fixed.push(o);
            }
            let count = *pick(&mut self.rng, &[1, 1, 1, 2, 3]);
            let od_id = format!("observed-data--00000000-0000-4000-8000-{i:012}");
            if version == "2.1" {
                let refs: Vec<Value> = fixed.iter().map(|s| s["id"].clone()).collect();
                let od = json!({
                    "type": "observed-data", "spec_version": "2.1", "id": od_id,
                    "created": ts(first, 0), "modified": ts(first, 0),
                    "first_observed": ts(first, micros), "last_observed": ts(last, micros),
                    "number_observed": count, "object_refs": refs,
                });
                if self.rng.gen_bool(0.3) {
                    bundles.push(Vec::new());
                }
                let b = bundles.len() - 1;
                bundles[b].push(od);
                bundles[b].extend(fixed);
            } else {
                let objects: serde_json::Map<String, Value> = fixed
                    .into_iter()
                    .enumerate()
                    .map(|(k, s)| (k.to_string(), s))
                    .collect();
                v20.push(json!({
                    "type": "observed-data", "id": od_id,
                    "created": ts(first, 0), "modified": ts(first, 0),
                    "first_observed": ts(first, micros), "last_observed": ts(last, micros),
                    "number_observed": count, "objects": objects,
                }));
            }
        }
        if version == "2.0" {
            return Value::Array(v20);
        }
        Value::Array(
            bundles
                .into_iter()
                .filter(|b| !b.is_empty())
                .enumerate()
                .map(|(i, objects)| json!({"type": "bundle", "id": format!("bundle--00000000-0000-4000-8000-{i:012}"), "objects": objects}))
                .collect(),
        )
    }

    pub fn case(&mut self) -> Case {
        self.strict.clear();
        self.cidr_only = false;
        let version = if self.rng.gen_bool(0.8) { "2.1" } else { "2.0" };
        self.v20 = version == "2.0";
        let pattern = if self.rng.gen_bool(0.05) {
            self.invalid()
        } else {
            self.observation(2)
        };
        let observations = self.observations(version);
        Case {
            pattern,
            version,
            observations,
        }
    }
}
