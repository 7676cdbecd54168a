//! The mail benchmark's mbox: messages of about 30 KB shaped like what an agency's mail gateway
//! keeps, deterministic so that every run scans the same bytes.
//!
//! Each message has a `Received` chain of three to six hops, a `multipart/alternative` text and
//! HTML body with links, and one of: a PDF (random bytes, base64), a ZIP of a PDF and a text
//! file (deflated), a Word-like `.docx` (a ZIP of XML, deflated, with an image stored), a
//! forwarded `message/rfc822` with its own attachment, or a PDF and a small ZIP together.
//! Japanese subjects (one in six) are RFC 2047 encoded words, half in ISO-2022-JP, half in
//! UTF-8. One message in twenty carries a sender, subject, URL or domain of one of the first
//! 1,000 benchmark indicators.

use std::io::Write;

use super::{Rng, SUBJECTS, WORDS, bad, random_domain, random_ip};

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 in lines of 76 characters, as mail clients write it.
fn base64_lines(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len() * 4 / 3 + data.len() / 57 * 2 + 4);
    for line in data.chunks(57) {
        for c in line.chunks(3) {
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for k in 0..4 {
                if k <= c.len() {
                    s.push(char::from(B64[(n >> (18 - 6 * k) & 63) as usize]));
                } else {
                    s.push('=');
                }
            }
        }
        s.push('\n');
    }
    s
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// A ZIP archive of `(name, content, deflate)` members.
fn zip(members: &[(&str, Vec<u8>, bool)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data, deflate) in members {
        let stored = if *deflate {
            miniz_oxide::deflate::compress_to_vec(data, 6)
        } else {
            data.clone()
        };
        let (method, crc) = (if *deflate { 8u16 } else { 0 }, crc32(data));
        let offset = out.len() as u32;
        let fields = |sig: u32, out: &mut Vec<u8>, central: bool| {
            out.extend_from_slice(&sig.to_le_bytes());
            if central {
                out.extend_from_slice(&20u16.to_le_bytes());
            }
            out.extend_from_slice(&20u16.to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(&method.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes()); // time and date
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(&(stored.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            if central {
                out.extend_from_slice(&[0; 8]); // comment, disk, attributes
                out.extend_from_slice(&0u32.to_le_bytes());
                out.extend_from_slice(&offset.to_le_bytes());
            }
            out.extend_from_slice(name.as_bytes());
        };
        fields(0x0403_4b50, &mut out, false);
        out.extend_from_slice(&stored);
        fields(0x0201_4b50, &mut central, true);
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn random_bytes(r: &mut Rng, n: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..n.div_ceil(8))
        .flat_map(|_| r.next().to_le_bytes())
        .collect();
    v.truncate(n);
    v
}

/// A PDF-looking file: a header, random "streams", a trailer.
fn pdf(r: &mut Rng, n: usize) -> Vec<u8> {
    let mut v = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nstream\n".to_vec();
    v.extend(random_bytes(r, n));
    v.extend_from_slice(b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n");
    v
}

/// Prose of about `n` bytes, with the given links in it.
fn prose(r: &mut Rng, n: usize, links: &[String]) -> String {
    let mut s = String::with_capacity(n + 200);
    let mut k = 0;
    while s.len() < n {
        for _ in 0..12 {
            s.push_str(WORDS[r.below(20) as usize]);
            s.push(' ');
        }
        s.push_str("the account will be reviewed.\n");
        if k < links.len() && r.below(3) == 0 {
            s.push_str(&links[k]);
            s.push('\n');
            k += 1;
        }
    }
    for l in &links[k..] {
        s.push_str(l);
        s.push('\n');
    }
    s
}

fn html(text: &str) -> String {
    let mut h = String::from("<html><head><meta charset=\"utf-8\"></head><body>\n");
    for line in text.lines() {
        if line.starts_with("http") {
            h.push_str(&format!("<p><a href=\"{line}\">{line}</a></p>\n"));
        } else {
            h.push_str(&format!("<p>{line}</p>\n"));
        }
    }
    h.push_str("</body></html>\n");
    h
}

/// An RFC 2047 encoded word of `text` in ISO-2022-JP (what Japanese mail clients still send).
fn iso2022jp_word(text: &str) -> String {
    let (bytes, _, _) = encoding_rs::ISO_2022_JP.encode(text);
    let b64 = base64_lines(&bytes).replace('\n', "");
    format!("=?ISO-2022-JP?B?{b64}?=")
}

struct Attachment {
    content_type: &'static str,
    name: String,
    data: Vec<u8>,
}

impl Attachment {
    fn write(&self, boundary: &str, out: &mut String) {
        out.push_str(&format!(
            "--{boundary}\nContent-Type: {}; name=\"{}\"\nContent-Disposition: attachment; filename=\"{}\"\nContent-Transfer-Encoding: base64\n\n",
            self.content_type, self.name, self.name
        ));
        out.push_str(&base64_lines(&self.data));
    }
}

fn attachments(r: &mut Rng, kind: u64) -> Vec<Attachment> {
    let word = WORDS[r.below(20) as usize];
    match kind {
        0..=3 => {
            let (number, size) = (r.below(10_000), 19_000 + r.below(4_000) as usize);
            vec![Attachment {
                content_type: "application/pdf",
                name: format!("{word}-{number}.pdf"),
                data: pdf(r, size),
            }]
        }
        4..=5 => {
            let inner = pdf(r, 15_000);
            let note = prose(r, 6_000, &[]).into_bytes();
            vec![Attachment {
                content_type: "application/zip",
                name: format!("{word}.zip"),
                data: zip(&[
                    (&format!("{word}/statement.pdf"), inner, true),
                    (&format!("{word}/readme.txt"), note, true),
                ]),
            }]
        }
        6..=7 => {
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><w:document><w:body>{}</w:body></w:document>",
                prose(r, 30_000, &[])
                    .lines()
                    .map(|l| format!("<w:p><w:r><w:t>{l}</w:t></w:r></w:p>"))
                    .collect::<String>()
            );
            vec![Attachment {
                content_type: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                name: format!("{word}-minutes.docx"),
                data: zip(&[
                    (
                        "[Content_Types].xml",
                        b"<?xml version=\"1.0\"?><Types/>".to_vec(),
                        true,
                    ),
                    ("word/document.xml", body.into_bytes(), true),
                    ("word/media/image1.png", random_bytes(r, 12_000), false),
                ]),
            }]
        }
        _ => vec![
            Attachment {
                content_type: "application/pdf",
                name: format!("{word}.pdf"),
                data: pdf(r, 14_000),
            },
            Attachment {
                content_type: "application/zip",
                name: format!("{word}-scan.zip"),
                data: zip(&[("scan.exe", random_bytes(r, 4_000), false)]),
            },
        ],
    }
}

/// Writes `n` messages in mbox format.
pub(super) fn mbox(n: u64, out: &mut impl Write) -> std::io::Result<()> {
    let mut r = Rng(0x0a11_ba5e_0000_0001);
    for i in 0..n {
        let b = (r.below(20) == 0).then(|| bad(r.below(1000)));
        let which = r.below(4);
        let domain = match (&b, which) {
            (Some(b), 3) => b.domain.clone(),
            _ => random_domain(&mut r),
        };
        let from = match (&b, which) {
            (Some(b), 0) => b.email.clone(),
            _ => format!("{}{}@{domain}", WORDS[r.below(20) as usize], r.below(1000)),
        };
        let subject = match (&b, which) {
            (Some(b), 1) => b.subject.clone(),
            _ => format!("{} {}", SUBJECTS[r.below(6) as usize], r.below(100_000)),
        };
        let subject_header = if subject.is_ascii() {
            subject
        } else if r.below(2) == 0 {
            iso2022jp_word(&subject)
        } else {
            format!(
                "=?UTF-8?B?{}?=",
                base64_lines(subject.as_bytes()).replace('\n', "")
            )
        };
        let mut links = vec![
            format!(
                "https://{domain}/{}/{}",
                WORDS[r.below(20) as usize],
                r.below(100_000)
            ),
            format!("https://www.agency.example/notice/{}", r.below(1000)),
        ];
        if let (Some(b), 2) = (&b, which) {
            links.push(b.url.clone());
        }
        let (day, hour, min) = (1 + i / 2880 % 28, i / 120 % 24, i / 2 % 60);
        let date = format!("{day} Mar 2026 {hour:02}:{min:02}:00 +0000");
        let mut m = format!("From {from} Mon Mar  2 {hour:02}:{min:02}:00 2026\n");
        for hop in 0..3 + r.below(4) {
            m.push_str(&format!(
                "Received: from mx{hop}.{domain} (mx{hop}.{domain} [{}])\n\tby gw{hop}.agency.example with ESMTPS id {:016x};\n\t{date}\n",
                random_ip(&mut r),
                r.next()
            ));
        }
        let to = format!("staff{}@agency.example", r.below(5000));
        m.push_str(&format!(
            "From: \"{}\" <{from}>\nTo: <{to}>\nSubject: {subject_header}\nDate: {date}\nMessage-ID: <{:016x}@{domain}>\nMIME-Version: 1.0\n",
            WORDS[r.below(20) as usize],
            r.next()
        ));
        let kind = r.below(10);
        let outer = format!("mixed-{i:08x}");
        let alt = format!("alt-{i:08x}");
        m.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"{outer}\"\n\nThis is a multi-part message in MIME format.\n"
        ));
        let text = prose(&mut r, 1_200, &links);
        m.push_str(&format!(
            "--{outer}\nContent-Type: multipart/alternative; boundary=\"{alt}\"\n\n--{alt}\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 7bit\n\n{text}\n--{alt}\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 7bit\n\n{}\n--{alt}--\n",
            html(&text)
        ));
        if kind == 8 {
            // A forwarded message with its own attachment.
            let inner = format!("fwd-{i:08x}");
            let fwd_domain = random_domain(&mut r);
            let fwd_link = format!("http://{fwd_domain}/{}", r.below(1000));
            let fwd_text = prose(&mut r, 1_500, &[fwd_link]);
            m.push_str(&format!(
                "--{outer}\nContent-Type: message/rfc822\nContent-Disposition: attachment; filename=\"forwarded.eml\"\n\nReceived: from relay.{fwd_domain} ([{}])\n\tby mx.{fwd_domain}; {date}\nFrom: <alert@{fwd_domain}>\nTo: <{from}>\nSubject: Fwd: {}\nDate: {date}\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"{inner}\"\n\n--{inner}\nContent-Type: text/plain; charset=utf-8\n\n{fwd_text}\n",
                random_ip(&mut r),
                SUBJECTS[r.below(5) as usize]
            ));
            attachments(&mut r, 0)[0].write(&inner, &mut m);
            m.push_str(&format!("--{inner}--\n"));
        } else {
            for a in attachments(&mut r, kind) {
                a.write(&outer, &mut m);
            }
        }
        m.push_str(&format!("--{outer}--\n\n"));
        out.write_all(m.as_bytes())?;
    }
    Ok(())
}
