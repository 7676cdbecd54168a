//! URLs in message bodies: plain-text scanning and HTML `href`/`src` attributes.
//!
//! Defanged forms that analysts write on purpose so that nothing clicks them (`hxxp://`,
//! `http[:]//`, `example[.]com`, `example(.)com`) are not URLs and are never turned into any.

use std::sync::LazyLock;

use regex::Regex;

#[allow(clippy::expect_used)] // constant patterns, checked by the unit tests below
static PLAIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\b(?:https?|ftp)://[^\s<>"'`{}|\\^]+"#).expect("valid URL regex")
});

#[allow(clippy::expect_used)]
static ATTR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\b(?:href|src)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+))"#)
        .expect("valid attribute regex")
});

/// Markers of deliberate defanging inside a candidate.
const DEFANGED: &[&str] = &["[.]", "[:]", "(.)", "[dot]", "(dot)", "{.}", "[://]", "[/]"];

/// URLs in plain text, in order of appearance.
pub(crate) fn from_text(text: &str, out: &mut Vec<String>) {
    for m in PLAIN.find_iter(text) {
        if let Some(u) = clean(m.as_str()) {
            out.push(u);
        }
    }
}

/// URLs in HTML: absolute `href`/`src` attribute values, then URLs written in the text.
pub(crate) fn from_html(html: &str, out: &mut Vec<String>) {
    for c in ATTR.captures_iter(html) {
        let raw = c.get(1).or_else(|| c.get(2)).or_else(|| c.get(3));
        if let Some(raw) = raw {
            let value = unescape_entities(raw.as_str().trim());
            let lower = value.to_ascii_lowercase();
            if (lower.starts_with("http://")
                || lower.starts_with("https://")
                || lower.starts_with("ftp://"))
                && let Some(u) = clean(&value)
            {
                out.push(u);
            }
        }
    }
    from_text(&unescape_entities(html), out);
}

fn unescape_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    s.replace("&amp;", "&")
        .replace("&#38;", "&")
        .replace("&quot;", "\"")
        .replace("&#x2F;", "/")
        .replace("&#47;", "/")
}

/// Trims trailing punctuation and rejects defanged or host-less candidates.
fn clean(candidate: &str) -> Option<String> {
    if DEFANGED.iter().any(|d| candidate.contains(d)) {
        return None;
    }
    let mut u = candidate;
    loop {
        let before = u.len();
        u = u.trim_end_matches(['.', ',', ';', ':', '!', '?', '\'', '"', '*']);
        if u.ends_with(')') && u.matches('(').count() < u.matches(')').count() {
            u = &u[..u.len() - 1];
        }
        if u.ends_with(']') && u.matches('[').count() < u.matches(']').count() {
            u = &u[..u.len() - 1];
        }
        if u.ends_with('>') {
            u = &u[..u.len() - 1];
        }
        if u.len() == before {
            break;
        }
    }
    host(u)?;
    Some(u.to_owned())
}

/// The host of an absolute URL (`scheme://[userinfo@]host[:port]/...`), if it has a valid one.
pub(crate) fn host(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        host_port.split(':').next()?
    };
    let ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    ok.then_some(host)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn text(s: &str) -> Vec<String> {
        let mut v = Vec::new();
        from_text(s, &mut v);
        v
    }

    #[test]
    fn plain_urls_are_found_and_trimmed() {
        assert_eq!(
            text("see http://a.example/x?y=1, (https://b.example/p(1)). end"),
            ["http://a.example/x?y=1", "https://b.example/p(1)"]
        );
    }

    #[test]
    fn defanged_urls_are_not_urls() {
        assert!(text("hxxp://evil.example/ hxxps[:]//evil.example/").is_empty());
        assert!(text("http://evil[.]example/path http[:]//evil.example/").is_empty());
        assert!(text("http://evil(.)example/").is_empty());
    }

    #[test]
    fn html_attributes() {
        let mut v = Vec::new();
        from_html(
            r#"<a href="http://x.example/a?b=1&amp;c=2">t</a><img src='https://y.example/i.png'><a href="mailto:a@b">"#,
            &mut v,
        );
        assert!(v.contains(&"http://x.example/a?b=1&c=2".to_owned()));
        assert!(v.contains(&"https://y.example/i.png".to_owned()));
        assert_eq!(host("http://u:p@[2001:db8::1]:80/x"), Some("2001:db8::1"));
    }
}
