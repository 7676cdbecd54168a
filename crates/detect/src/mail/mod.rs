//! The mail sensor: `.eml` files, mbox files and Maildir folders to one [`Observation`] per
//! message.
//!
//! Parsing is `mail-parser`'s (RFC 2047/2231, every charset `encoding_rs` knows, lenient about
//! missing boundaries); this module decides what becomes STIX and where limits apply: message
//! size, nesting depth (forwarded messages and archives inside archives), ZIP member count and
//! expanded bytes. A message that breaks a limit or is malformed is extracted as far as it goes,
//! and what was left out is said in [`Observation::notes`].

mod extract;
mod source;
pub(crate) mod urls;

use std::net::IpAddr;

use kizuna_stix::Timestamp;
use mail_parser::MessageParser;

pub use source::MailSource;

use crate::{Error, Observation};

/// Bounds on what one message may cost.
#[derive(Debug, Clone)]
pub struct MailLimits {
    /// Bytes of one message read at most; the rest is dropped (and noted).
    pub max_message_bytes: usize,
    /// Nesting of forwarded messages and archives inside archives.
    pub max_depth: usize,
    /// ZIP members read per archive.
    pub max_zip_members: usize,
    /// Largest expanded ZIP member.
    pub max_member_bytes: u64,
    /// Expanded ZIP bytes per message, all archives together.
    pub max_expanded_bytes: u64,
    /// Text kept per body in the email-message (URLs are still looked for in all of it).
    pub max_body_bytes: usize,
    /// Distinct URLs taken from one message: a message stuffed with links stops adding them.
    pub max_urls: usize,
}

impl Default for MailLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: 64 << 20,
            max_depth: 4,
            max_zip_members: 1_000,
            max_member_bytes: 32 << 20,
            max_expanded_bytes: 128 << 20,
            max_body_bytes: 1 << 20,
            max_urls: 10_000,
        }
    }
}

/// How messages are turned into observations.
#[derive(Debug, Clone)]
pub struct MailOptions {
    /// Limits.
    pub limits: MailLimits,
    /// The scan time: `created`/`modified` of every observed-data, and its observation time
    /// when a message has no usable `Date`. Fixed by the caller so that output is reproducible.
    pub now: Timestamp,
}

impl Default for MailOptions {
    fn default() -> Self {
        Self {
            limits: MailLimits::default(),
            now: Timestamp::now(),
        }
    }
}

/// Extracts one raw message named `source`.
pub fn scan_message(raw: &[u8], source: &str, options: &MailOptions) -> Result<Observation, Error> {
    // mail-parser 0.11 has a `debug_assert!` that hostile input reaches (found by the mutation
    // tests); a parser panic must cost one message, never the scan.
    let parsed = std::panic::catch_unwind(|| MessageParser::default().parse(raw));
    let Ok(Some(msg)) = parsed else {
        return Err(Error::NotMail {
            source_name: source.to_owned(),
        });
    };
    let mut ex = extract::Extractor::new(&options.limits);
    ex.message(&msg, 0, "message");
    let when = msg
        .date()
        .and_then(date_to_timestamp)
        .unwrap_or(options.now);
    let extract::Extractor { set, notes, .. } = ex;
    Ok(Observation {
        source: source.to_owned(),
        bundle: set.into_bundle(source, when, when, options.now),
        notes,
    })
}

/// A message date as a STIX timestamp, when it is a real date.
pub(crate) fn date_to_timestamp(d: &mail_parser::DateTime) -> Option<Timestamp> {
    if !(1..=12).contains(&d.month) || d.day == 0 || d.year < 1970 || d.year > 9999 {
        return None;
    }
    let secs = d.to_timestamp();
    Some(Timestamp::from_unix_micros(secs.checked_mul(1_000_000)?).with_digits(0))
}

/// IP addresses written in a `Received` line (`[192.0.2.1]`, `IPv6:2001:db8::1`, bare).
pub(crate) fn received_ips(line: &str) -> Vec<IpAddr> {
    let cleaned = line.replace("IPv6:", " ").replace("ipv6:", " ");
    let mut out: Vec<IpAddr> = Vec::new();
    for token in cleaned.split(|c: char| !(c.is_ascii_hexdigit() || c == '.' || c == ':')) {
        let candidates = [token, token.trim_matches(|c| c == '.' || c == ':')];
        for t in candidates {
            if t.len() < 3 {
                continue;
            }
            if let Ok(ip) = t.parse::<IpAddr>() {
                if !out.contains(&ip) {
                    out.push(ip);
                }
                break;
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn received_ips_are_found() {
        let ips = received_ips(
            "from mx.example (mx.example [192.0.2.7]) by relay (IPv6:2001:db8::25) \
             with ESMTP id 12AB; Tue, 1 Jan 2019 10:20:30 +0900",
        );
        assert_eq!(
            ips,
            vec![
                "192.0.2.7".parse::<IpAddr>().unwrap(),
                "2001:db8::25".parse::<IpAddr>().unwrap()
            ]
        );
    }
}
