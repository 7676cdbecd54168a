//! One parsed message to STIX SCOs: email-message, email-addr, url, domain-name, IP addresses
//! from `Received`, and a file for every attachment, ZIP member and forwarded message.

use std::borrow::Cow;
use std::collections::HashSet;

use mail_parser::{
    Address, Encoding, HeaderName, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders,
    PartType,
};
use serde_json::{Map, Value, json};

use super::MailLimits;
use super::urls;
use crate::objects::{ObjectSet, hashes};
use crate::zip::{self, Content, ZipLimits};

/// Extraction state for one top-level message (and everything nested in it).
pub(crate) struct Extractor<'l> {
    pub(crate) set: ObjectSet,
    pub(crate) notes: Vec<String>,
    limits: &'l MailLimits,
    /// Expanded ZIP bytes still allowed for this message.
    budget: u64,
    urls_seen: HashSet<String>,
}

/// Headers that the email-message models as properties; every other one goes to
/// `additional_header_fields`.
fn is_modelled(name: &str) -> bool {
    [
        "date",
        "received",
        "content-type",
        "from",
        "sender",
        "to",
        "cc",
        "bcc",
        "subject",
        "message-id",
    ]
    .iter()
    .any(|m| name.eq_ignore_ascii_case(m))
}

/// Unfolds a raw header value (CRLF + whitespace becomes one space) and trims it.
fn unfold(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    let mut last_space = false;
    for c in text.trim().chars() {
        if c == '\r' || c == '\n' || c == '\t' || c == ' ' {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    out
}

fn raw_slice<'m>(msg: &'m Message<'_>, from: u32, to: u32) -> &'m [u8] {
    // Offsets index the `raw_message` field: for a forwarded message that is not
    // transfer-encoded, the whole outer message (`raw_message()` is only the root part's slice).
    let raw: &[u8] = &msg.raw_message;
    let (a, b) = (from as usize, to as usize);
    raw.get(a.min(b)..b.min(raw.len())).unwrap_or(&[])
}

/// `(display name, address)` of every mailbox in an address header, groups flattened.
fn mailboxes<'a>(addr: &'a Address<'_>) -> Vec<(Option<&'a str>, &'a str)> {
    addr.iter()
        .filter_map(|a| {
            let address = a.address()?.trim();
            (!address.is_empty()).then_some((a.name(), address))
        })
        .collect()
}

/// Decodes an 8-bit or raw ISO-2022-JP header that was sent without RFC 2047 encoding.
fn decode_raw_header(raw: &[u8], charset_hint: Option<&str>) -> Option<(String, &'static str)> {
    let escaped_jis = memchr::memmem::find(raw, b"\x1b$").is_some();
    let eight_bit = raw.iter().any(|b| *b >= 0x80);
    if !escaped_jis && (!eight_bit || std::str::from_utf8(raw).is_ok()) {
        return None;
    }
    let mut tries: Vec<&'static encoding_rs::Encoding> = Vec::new();
    if escaped_jis {
        tries.push(encoding_rs::ISO_2022_JP);
    }
    if let Some(enc) = charset_hint.and_then(|c| encoding_rs::Encoding::for_label(c.as_bytes())) {
        tries.push(enc);
    }
    tries.extend([
        encoding_rs::SHIFT_JIS,
        encoding_rs::EUC_JP,
        encoding_rs::WINDOWS_1252,
    ]);
    tries.into_iter().find_map(|enc| {
        let (text, had_errors) = enc.decode_without_bom_handling(raw);
        (!had_errors).then(|| (unfold(text.as_bytes()), enc.name()))
    })
}

impl<'l> Extractor<'l> {
    pub(crate) fn new(limits: &'l MailLimits) -> Self {
        Self {
            set: ObjectSet::default(),
            notes: Vec::new(),
            limits,
            budget: limits.max_expanded_bytes,
            urls_seen: HashSet::new(),
        }
    }

    fn address(&mut self, name: Option<&str>, address: &str) -> String {
        let mut props = Map::new();
        props.insert("value".into(), Value::String(address.to_owned()));
        if let Some(n) = name.map(str::trim).filter(|n| !n.is_empty()) {
            props.insert("display_name".into(), Value::String(n.to_owned()));
        }
        let id = self.set.add("email-addr", props);
        if let Some((_, domain)) = address.rsplit_once('@') {
            self.set.add_host(domain);
        }
        id
    }

    /// The email-addr ids of an address header. A header sent as raw 8-bit or raw ISO-2022-JP
    /// (no RFC 2047 encoded-words) is decoded first and parsed again, so that display names
    /// come out right instead of as replacement characters.
    fn addresses(
        &mut self,
        value: &HeaderValue<'_>,
        raw: &[u8],
        charset: Option<&str>,
        what: &str,
    ) -> Vec<String> {
        if let Some((text, enc)) = decode_raw_header(raw, charset) {
            self.notes
                .push(format!("{what}: raw 8-bit address header decoded as {enc}"));
            let mini = format!("To: {text}\r\n\r\n");
            let parsed = MessageParser::default().parse(mini.as_bytes());
            let pairs: Vec<(Option<String>, String)> = parsed
                .as_ref()
                .and_then(|m| m.to())
                .map(|a| {
                    mailboxes(a)
                        .into_iter()
                        .map(|(n, a)| (n.map(str::to_owned), a.to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            return pairs
                .iter()
                .map(|(n, a)| self.address(n.as_deref(), a))
                .collect();
        }
        let Some(addr) = value.as_address() else {
            return Vec::new();
        };
        mailboxes(addr)
            .into_iter()
            .map(|(n, a)| self.address(n, a))
            .collect()
    }

    fn url(&mut self, url: String) {
        if self.urls_seen.len() >= self.limits.max_urls {
            if self.urls_seen.len() == self.limits.max_urls {
                // Noted once; the sentinel keeps the count past the limit.
                self.notes.push(format!(
                    "more than {} distinct URLs: the rest are left out",
                    self.limits.max_urls
                ));
                self.urls_seen.insert(String::new());
            }
            return;
        }
        if self.urls_seen.insert(url.clone()) {
            if let Some(h) = urls::host(&url) {
                self.set.add_host(h);
            }
            self.set.add_value("url", &url);
        }
    }

    fn cap_body(&mut self, text: &str, what: &str) -> String {
        if text.len() <= self.limits.max_body_bytes {
            return text.to_owned();
        }
        let mut end = self.limits.max_body_bytes;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        self.notes.push(format!("{what}: body cut at {end} bytes"));
        text[..end].to_owned()
    }

    /// Extracts `msg` and returns its email-message id.
    pub(crate) fn message(&mut self, msg: &Message<'_>, depth: usize, label: &str) -> String {
        let mut props = Map::new();
        let root = msg.root_part();
        let is_multipart = matches!(root.body, PartType::Multipart(_));
        props.insert("is_multipart".into(), Value::Bool(is_multipart));
        if let Some(ts) = msg.date().and_then(super::date_to_timestamp) {
            props.insert("date".into(), Value::String(ts.to_string()));
        }
        let charset = root.content_type().and_then(|ct| ct.attribute("charset"));
        let mut received = Vec::new();
        let mut extra: Map<String, Value> = Map::new();
        let (mut to, mut cc, mut bcc) = (Vec::new(), Vec::new(), Vec::new());
        for h in msg.headers() {
            let raw_name = raw_slice(msg, h.offset_field, h.offset_start);
            let name = String::from_utf8_lossy(raw_name);
            let name = name.trim().trim_end_matches(':').trim().to_owned();
            let raw_value = raw_slice(msg, h.offset_start, h.offset_end);
            match &h.name {
                HeaderName::From => {
                    let ids = self.addresses(&h.value, raw_value, charset, label);
                    if let Some(first) = ids.into_iter().next() {
                        props.entry("from_ref").or_insert(Value::String(first));
                    }
                }
                HeaderName::Sender => {
                    let ids = self.addresses(&h.value, raw_value, charset, label);
                    if let Some(first) = ids.into_iter().next() {
                        props.entry("sender_ref").or_insert(Value::String(first));
                    }
                }
                HeaderName::To => to.extend(self.addresses(&h.value, raw_value, charset, label)),
                HeaderName::Cc => cc.extend(self.addresses(&h.value, raw_value, charset, label)),
                HeaderName::Bcc => bcc.extend(self.addresses(&h.value, raw_value, charset, label)),
                HeaderName::Subject => {
                    let subject = match decode_raw_header(raw_value, charset) {
                        Some((text, enc)) => {
                            self.notes
                                .push(format!("{label}: raw 8-bit Subject decoded as {enc}"));
                            text
                        }
                        None => h.value.as_text().map(str::to_owned).unwrap_or_default(),
                    };
                    props.entry("subject").or_insert(Value::String(subject));
                }
                HeaderName::MessageId => {
                    props
                        .entry("message_id")
                        .or_insert(Value::String(unfold(raw_value)));
                }
                HeaderName::ContentType => {
                    props
                        .entry("content_type")
                        .or_insert(Value::String(unfold(raw_value)));
                }
                HeaderName::Received => {
                    let line = unfold(raw_value);
                    for ip in super::received_ips(&line) {
                        self.set.add_ip(ip);
                    }
                    received.push(Value::String(line));
                }
                _ => {
                    if is_client_ip_header(&name) {
                        for ip in super::received_ips(&unfold(raw_value)) {
                            self.set.add_ip(ip);
                        }
                    }
                    if h.name == HeaderName::ReplyTo {
                        self.addresses(&h.value, raw_value, charset, label);
                    }
                    if is_modelled(&name) || !is_dictionary_key(&name) {
                        continue;
                    }
                    let text = match &h.value {
                        HeaderValue::Text(t) => t.to_string(),
                        HeaderValue::TextList(l) => l.join(", "),
                        _ => unfold(raw_value),
                    };
                    if let Some(Value::Array(list)) = extra.get_mut(&name) {
                        list.push(Value::String(text));
                    } else {
                        extra.insert(name, json!([text]));
                    }
                }
            }
        }
        for (key, list) in [("to_refs", to), ("cc_refs", cc), ("bcc_refs", bcc)] {
            if !list.is_empty() {
                props.insert(key.into(), json!(list));
            }
        }
        if !received.is_empty() {
            props.insert("received_lines".into(), Value::Array(received));
        }
        if !extra.is_empty() {
            props.insert("additional_header_fields".into(), Value::Object(extra));
        }
        let cut_short = self.boundary_missing(msg, label);
        if is_multipart {
            let mut parts = Vec::new();
            let last = msg.parts.len().saturating_sub(1);
            for (i, part) in msg.parts.iter().enumerate().skip(1) {
                let label = format!("{label} part {i}");
                let cut = cut_short && i == last;
                if let Some(p) = self.mime_part(msg, part, depth, &label, cut) {
                    parts.push(p);
                }
            }
            props.insert("body_multipart".into(), Value::Array(parts));
        } else {
            match &root.body {
                PartType::Text(t) | PartType::Html(t) => {
                    self.body_urls(&root.body);
                    let body = self.cap_body(t, label);
                    props.insert("body".into(), Value::String(body));
                }
                _ => {
                    // A message whose only part is binary: its content is still an attachment.
                    self.attachment(msg, root, depth, label, cut_short);
                }
            }
        }
        self.set.add("email-message", props)
    }

    fn body_urls(&mut self, body: &PartType<'_>) {
        let mut found = Vec::new();
        match body {
            PartType::Text(t) => urls::from_text(t, &mut found),
            PartType::Html(h) => urls::from_html(h, &mut found),
            _ => {}
        }
        for u in found {
            self.url(u);
        }
    }

    /// One leaf of a multipart message as a `mime-part-type`; `None` for containers.
    fn mime_part(
        &mut self,
        msg: &Message<'_>,
        part: &MessagePart<'_>,
        depth: usize,
        label: &str,
        cut: bool,
    ) -> Option<Value> {
        let mut entry = Map::new();
        for h in part.headers() {
            let key = match h.name {
                HeaderName::ContentType => "content_type",
                HeaderName::ContentDisposition => "content_disposition",
                _ => continue,
            };
            let v = unfold(raw_slice(msg, h.offset_start, h.offset_end));
            entry.entry(key).or_insert(Value::String(v));
        }
        let is_attachment = part
            .content_disposition()
            .is_some_and(|cd| cd.is_attachment())
            || part.attachment_name().is_some();
        match &part.body {
            PartType::Multipart(_) => return None,
            PartType::Text(t) | PartType::Html(t) if !is_attachment => {
                self.body_urls(&part.body);
                let body = self.cap_body(t, label);
                entry.insert("body".into(), Value::String(body));
            }
            _ => {
                let file = self.attachment(msg, part, depth, label, cut);
                entry.insert("body_raw_ref".into(), Value::String(file));
            }
        }
        Some(Value::Object(entry))
    }

    /// A file SCO for an attachment (a forwarded message included), and what is inside it.
    /// `cut` says the message ends inside this part (no closing boundary).
    fn attachment(
        &mut self,
        msg: &Message<'_>,
        part: &MessagePart<'_>,
        depth: usize,
        label: &str,
        cut: bool,
    ) -> String {
        let (data, truncated) = attachment_bytes(msg, part);
        let mut props = Map::new();
        let name = part.attachment_name().map(str::to_owned);
        if let Some(n) = &name {
            props.insert("name".into(), Value::String(n.clone()));
        }
        let what = name.clone().unwrap_or_else(|| label.to_owned());
        props.insert("hashes".into(), hashes(&data));
        props.insert("size".into(), json!(data.len()));
        if let Some(ct) = part.content_type() {
            let mime = match &ct.c_subtype {
                Some(sub) => format!("{}/{}", ct.c_type, sub),
                None => ct.c_type.to_string(),
            };
            props.insert("mime_type".into(), Value::String(mime.to_ascii_lowercase()));
        }
        if truncated || cut || (part.is_encoding_problem && !is_base64(part)) {
            let why = if truncated || part.is_encoding_problem {
                "transfer encoding damaged (truncated?)"
            } else {
                "message ends inside it (may be truncated)"
            };
            self.notes
                .push(format!("{what}: {why}; hashes cover the bytes received"));
            props.insert(
                "x_kizuna_note".into(),
                json!(format!("{why}: hashes cover the bytes received")),
            );
        }
        if let PartType::Message(inner) = &part.body {
            if depth < self.limits.max_depth {
                self.message(inner, depth + 1, &format!("{what} (forwarded)"));
            } else {
                self.notes.push(format!(
                    "{what}: nesting deeper than {}",
                    self.limits.max_depth
                ));
            }
        } else if zip::looks_like_zip(&data) {
            self.archive(&data, depth + 1, &what, &mut props);
        }
        self.set.add("file", props)
    }

    /// Reads a ZIP's members into file SCOs and records them on the archive's file object
    /// through the `archive-ext` extension (`contains_refs`), as STIX 2.1 models archives.
    fn archive(&mut self, data: &[u8], depth: usize, what: &str, props: &mut Map<String, Value>) {
        if depth > self.limits.max_depth {
            self.notes.push(format!(
                "{what}: nesting deeper than {}",
                self.limits.max_depth
            ));
            return;
        }
        let limits = ZipLimits {
            max_members: self.limits.max_zip_members,
            max_member_bytes: self.limits.max_member_bytes,
        };
        let mut budget = self.budget;
        let mut members = Vec::new();
        let listing = zip::read(data, limits, &mut budget, |m| members.push(m));
        self.budget = budget;
        let mut refs = Vec::new();
        for m in members {
            let base = m
                .path
                .rsplit(['/', '\\'])
                .next()
                .unwrap_or(&m.path)
                .to_owned();
            let mut mp = Map::new();
            mp.insert("name".into(), Value::String(base.clone()));
            match m.content {
                Content::Data(bytes) => {
                    mp.insert("hashes".into(), hashes(&bytes));
                    mp.insert("size".into(), json!(bytes.len()));
                    if zip::looks_like_zip(&bytes) {
                        self.archive(&bytes, depth + 1, &format!("{what}/{base}"), &mut mp);
                    }
                }
                other => {
                    mp.insert("size".into(), json!(m.declared_size));
                    let note = match other {
                        Content::Encrypted => "encrypted: content unknown".to_owned(),
                        Content::TooLarge => format!(
                            "not expanded: larger than the limit (declared {} bytes; ZIP bomb?)",
                            m.declared_size
                        ),
                        Content::Unsupported(method) => {
                            format!("not expanded: compression method {method} not supported")
                        }
                        Content::Damaged(why) => format!("not expanded: {why}"),
                        Content::Data(_) => String::new(),
                    };
                    self.notes.push(format!("{what}: {}: {note}", m.path));
                    mp.insert("x_kizuna_note".into(), Value::String(note));
                }
            }
            refs.push(self.set.add("file", mp));
        }
        for n in listing.notes {
            self.notes.push(format!("{what}: {n}"));
        }
        if listing.encrypted {
            props.insert(
                "x_kizuna_note".into(),
                json!("password-protected ZIP: member names and sizes known, contents unknown"),
            );
        }
        if !refs.is_empty() {
            props.insert(
                "extensions".into(),
                json!({"archive-ext": {"contains_refs": refs}}),
            );
        }
    }

    /// Notes a multipart whose closing boundary never comes (the message was cut short).
    fn boundary_missing(&mut self, msg: &Message<'_>, label: &str) -> bool {
        for part in &msg.parts {
            if !matches!(part.body, PartType::Multipart(_)) {
                continue;
            }
            let Some(boundary) = part.content_type().and_then(|ct| ct.attribute("boundary")) else {
                continue;
            };
            let close = format!("--{boundary}--");
            if memchr::memmem::find(msg.raw_message(), close.as_bytes()).is_none() {
                self.notes.push(format!(
                    "{label}: closing MIME boundary missing (message cut short?)"
                ));
                return true;
            }
        }
        false
    }
}

/// An attachment's bytes as sent, and whether they were cut short.
///
/// Base64 parts `mail-parser` decoded without a problem are taken as it decoded them (decoding
/// them again cost a third of a scan); the others are decoded here from the raw text, leniently
/// (line breaks and stray characters skipped, a partial last quantum kept): `mail-parser` hands
/// back the undecoded text when a part is damaged (no closing boundary), and the hash must cover
/// the bytes the sender attached.
fn attachment_bytes<'m>(msg: &'m Message<'_>, part: &'m MessagePart<'_>) -> (Cow<'m, [u8]>, bool) {
    match &part.body {
        PartType::Message(inner) => (Cow::Borrowed(inner.raw_message()), false),
        PartType::Binary(b) | PartType::InlineBinary(b)
            if part.encoding == Encoding::Base64 && !part.is_encoding_problem =>
        {
            (Cow::Borrowed(b.as_ref()), false)
        }
        _ if is_base64(part) => decode_base64(raw_slice(msg, part.offset_body, part.offset_end)),
        _ if transfer_encoding_is(part, "quoted-printable") => (
            Cow::Owned(decode_qp(raw_slice(msg, part.offset_body, part.offset_end))),
            false,
        ),
        // Text sent as is (7bit, 8bit, binary): the bytes in the charset the sender used,
        // not the UTF-8 text `mail-parser` decoded them to.
        PartType::Text(_) | PartType::Html(_) => (
            Cow::Borrowed(raw_slice(msg, part.offset_body, part.offset_end)),
            false,
        ),
        PartType::Binary(b) | PartType::InlineBinary(b) => (Cow::Borrowed(b.as_ref()), false),
        PartType::Multipart(_) => (Cow::Borrowed(&[][..]), false),
    }
}

/// Whether the part says it is base64 (`mail-parser` forgets on damaged parts; the header stays).
fn is_base64(part: &MessagePart<'_>) -> bool {
    part.encoding == Encoding::Base64 || transfer_encoding_is(part, "base64")
}

fn transfer_encoding_is(part: &MessagePart<'_>, name: &str) -> bool {
    part.content_transfer_encoding()
        .is_some_and(|e| e.trim().eq_ignore_ascii_case(name))
}

/// Quoted-printable, leniently: soft breaks removed, `=XX` decoded, anything else kept.
fn decode_qp(raw: &[u8]) -> Vec<u8> {
    fn hex(b: Option<&u8>) -> Option<u8> {
        (*b? as char)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&c) = raw.get(i) {
        if c == b'=' {
            let rest = raw.get(i + 1..).unwrap_or(&[]);
            if rest.starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if rest.starts_with(b"\n") {
                i += 2;
                continue;
            }
            if let (Some(h), Some(l)) = (hex(rest.first()), hex(rest.get(1))) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

fn decode_base64(raw: &[u8]) -> (Cow<'static, [u8]>, bool) {
    let mut out = Vec::with_capacity(raw.len() / 4 * 3);
    let (mut acc, mut n, mut padded) = (0u32, 0u8, false);
    'lines: for line in raw.split(|b| *b == b'\n') {
        if line.starts_with(b"--") {
            break;
        }
        for &c in line {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                b'=' => {
                    padded = true;
                    break 'lines;
                }
                _ => continue,
            };
            acc = (acc << 6) | u32::from(v);
            n += 1;
            if n == 4 {
                out.extend_from_slice(&acc.to_be_bytes()[1..]);
                (acc, n) = (0, 0);
            }
        }
    }
    match n {
        2 => out.push((acc >> 4) as u8),
        3 => out.extend_from_slice(&((acc >> 2) as u16).to_be_bytes()),
        _ => {}
    }
    (Cow::Owned(out), n != 0 && !padded)
}

/// Headers in which webmail and relays record the sending client's address.
fn is_client_ip_header(name: &str) -> bool {
    [
        "X-Originating-IP",
        "X-Sender-IP",
        "X-Forwarded-For",
        "X-Real-IP",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// STIX dictionary keys: ASCII letters, digits, `-` and `_`, at most 250 characters.
fn is_dictionary_key(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 250
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
