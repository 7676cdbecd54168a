//! The forms of property values: names, identifiers, base64, language tags, URIs, addresses.
//! Predicates on strings and JSON values shared by the object-family modules, and the check of an
//! object's own identifier.

use serde_json::Value;

use super::ctx::Ctx;
use crate::id::StixId;

/// §3.1: property names are ASCII `a-z`, `0-9`, `_`, 3 to 250 characters, starting with a letter.
pub(crate) fn is_property_name(k: &str) -> bool {
    (3..=250).contains(&k.len())
        && k.starts_with(|c: char| c.is_ascii_lowercase())
        && k.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// §2.8: hex is an even number of digits 0-9 and lower-case a-f.
pub(crate) fn is_hex(s: &str) -> bool {
    !s.is_empty()
        && s.len().is_multiple_of(2)
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Standard base64 with padding, as STIX `binary` requires.
pub(crate) fn is_base64(s: &str) -> bool {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return false;
    }
    let pad = b.iter().rev().take_while(|c| **c == b'=').count();
    pad <= 2
        && b[..b.len() - pad]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

/// The UUID of a syntactically valid identifier is an RFC 4122 UUID: variant bits `10` and a
/// version from 1 to 5.
pub(crate) fn rfc4122(id: &str) -> bool {
    let Some((_, uuid)) = id.rsplit_once("--") else {
        return false;
    };
    let b = uuid.as_bytes();
    b.len() == 36 && (b'1'..=b'5').contains(&b[14]) && b"89abAB".contains(&b[19])
}

/// The version digit of an identifier's UUID.
pub(crate) fn uuid_version(id: &StixId) -> u8 {
    id.uuid().as_bytes().get(14).copied().unwrap_or(b'0')
}

/// The object's own identifier must use an RFC 4122 UUID.
pub(crate) fn check_uuid(ctx: &mut Ctx<'_>, id: &StixId) {
    if !rfc4122(id.as_str()) {
        ctx.report(
            "id",
            "the UUID must be an RFC 4122 UUID (version 1-5, variant 10xx)",
        );
    }
}

/// A well-formed RFC 5646 language tag (syntax only: `en`, `de-CH`, `zh-Hant-TW`, `x-klingon`).
pub(crate) fn is_language_tag(s: &str) -> bool {
    let mut parts = s.split('-');
    let Some(first) = parts.next() else {
        return false;
    };
    let first_ok = (2..=8).contains(&first.len()) && first.bytes().all(|b| b.is_ascii_alphabetic())
        || matches!(first, "x" | "i" | "X" | "I");
    first_ok
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// A URI in the RFC 3986 sense, checked for its shape: a scheme, `:`, and no whitespace.
pub(crate) fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut sb = scheme.bytes();
    sb.next().is_some_and(|b| b.is_ascii_alphabetic())
        && sb.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && !rest.is_empty()
        && !s
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
}

/// A JSON string.
pub(crate) fn is_string(v: &Value) -> bool {
    v.is_string()
}

/// A JSON integer.
pub(crate) fn is_integer(v: &Value) -> bool {
    v.is_i64() || v.is_u64()
}

/// A JSON string or integer.
pub(crate) fn is_string_or_integer(v: &Value) -> bool {
    v.is_string() || is_integer(v)
}

/// A non-empty list of strings.
pub(crate) fn is_string_list(v: &Value) -> bool {
    v.as_array()
        .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_string))
}

pub(crate) fn is_media_type(s: &str) -> bool {
    s.split_once('/').is_some_and(|(t, sub)| {
        !t.is_empty()
            && !sub.is_empty()
            && t.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&c))
            && sub
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"!#$&-^_.+;= ".contains(&c))
    })
}

pub(crate) fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.chars().count() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        })
}

pub(crate) fn is_email(s: &str) -> bool {
    s.rsplit_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && !local.chars().any(char::is_whitespace) && is_hostname(domain)
    })
}

fn split_prefix(s: &str, max: u8) -> Option<&str> {
    match s.split_once('/') {
        None => Some(s),
        Some((addr, len)) => {
            let ok = !len.is_empty()
                && len.len() <= 3
                && len.bytes().all(|b| b.is_ascii_digit())
                && len.parse::<u8>().is_ok_and(|n| n <= max);
            ok.then_some(addr)
        }
    }
}

pub(crate) fn is_ipv4_cidr(s: &str) -> bool {
    split_prefix(s, 32).is_some_and(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
}

pub(crate) fn is_ipv6_cidr(s: &str) -> bool {
    split_prefix(s, 128).is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok())
}

pub(crate) fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6
        && parts.iter().all(|p| {
            p.len() == 2
                && p.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_forms() {
        assert!(
            is_base64("aGVsbG8=") && is_base64("") && !is_base64("aGVsbG8") && !is_base64("a===")
        );
        assert!(
            is_language_tag("en") && is_language_tag("zh-Hant-TW") && is_language_tag("x-klingon")
        );
        assert!(
            !is_language_tag("english please") && !is_language_tag("e") && !is_language_tag("en-")
        );
        assert!(is_uri("https://example.com/a?b=c") && is_uri("urn:isbn:0451450523"));
        assert!(!is_uri("example.com") && !is_uri("http://exa mple.com") && !is_uri("1http://x"));
        assert!(rfc4122("x--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"));
        assert!(!rfc4122("x--8e2e2d2b-17d4-0cbf-938f-98ee46b3cd3f"));
        assert!(!rfc4122("x--8e2e2d2b-17d4-4cbf-738f-98ee46b3cd3f"));
        assert!(
            is_property_name("x_acme_2") && !is_property_name("ab") && !is_property_name("x-acme")
        );
    }

    #[test]
    fn address_forms() {
        assert!(
            is_ipv4_cidr("198.51.100.0/24")
                && !is_ipv4_cidr("256.1.1.1")
                && !is_ipv4_cidr("1.2.3.4/33")
        );
        assert!(is_ipv6_cidr("2001:db8::/96") && !is_ipv6_cidr("2001:::1"));
        assert!(
            is_mac("d2:fb:49:24:37:18")
                && !is_mac("D2:FB:49:24:37:18")
                && !is_mac("d2:fb:49:24:37")
        );
        assert!(is_email("jane.smith@example.com") && !is_email("not an address"));
        assert!(
            is_hostname("example.com")
                && is_hostname("xn--bcher-kva.example")
                && !is_hostname("a..b")
        );
        assert!(is_media_type("application/zip") && !is_media_type("zip"));
    }
}
