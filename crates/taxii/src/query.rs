//! The URL query parameters of TAXII 2.1 (§3.4): parsing, validation and a canonical form.
//!
//! Decisions where the specification leaves room:
//!
//! - **Malformed parameters are 400** (§3.4 MUST): a bad timestamp, a `limit` that is not a
//!   positive integer, a malformed STIX id in `match[id]`, an invalid type name in `match[type]`, a
//!   `spec_version` that is not `n.m`, an empty value or an empty item in a comma list.
//! - **Repeated parameters are 400**: `added_after`, `limit` and `next` must occur at most once
//!   and each `match[<field>]` at most once (§3.4 MUST NOT); a keyword or timestamp repeated in
//!   `match[version]`, or `all` combined with anything else, is 400 too (§3.4.1 MUST NOT).
//! - **Unknown `match[<field>]` fields are ignored**, as are other unknown parameters: §3.4 says
//!   requests MAY use fields the specification does not define and servers MAY ignore them, and a
//!   client written for a richer server then still gets a superset of what it asked for. The same
//!   holds for a known field an endpoint does not take (`match[type]` on Get an Object): it is
//!   checked for well-formedness, then ignored.
//! - A `limit` above the server's maximum page size is lowered to it (§3.4 allows fewer objects
//!   than requested); the envelope's `more`/`next` then tell the client to continue.

use std::borrow::Cow;

use kizuna_stix::{StixId, Timestamp, Tlp, check_type_name};
use kizuna_store::{ObjectQuery, VersionFilter};

use crate::error::ApiError;
use crate::state::ServiceConfig;

/// Most values one `match[...]` parameter may list.
const MAX_VALUES: usize = 1000;

/// Which endpoint a query is for: decides which filters apply (§5.3–§5.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Get Objects: every filter.
    Objects,
    /// Get Object Manifests: every filter.
    Manifest,
    /// Get an Object: `added_after`, `limit`, `next`, `match[version]`, `match[spec_version]`.
    Object,
    /// Get Object Versions: `added_after`, `limit`, `next`, `match[spec_version]`; every version.
    Versions,
    /// Delete an Object: `match[version]` (default: every version), `match[spec_version]`.
    Delete,
}

/// The filters of one request, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    /// `added_after`.
    pub added_after: Option<Timestamp>,
    /// `limit`, as given (before the server's maximum is applied).
    pub limit: Option<usize>,
    /// `next`, as given (opened by [`crate::token::TokenSealer`]).
    pub next: Option<String>,
    /// `match[id]`, sorted and without duplicates.
    pub ids: Vec<String>,
    /// `match[type]`, sorted and without duplicates.
    pub types: Vec<String>,
    /// `match[version]` (default: `last`).
    pub versions: VersionFilter,
    /// `match[spec_version]`, sorted and without duplicates.
    pub spec_versions: Vec<String>,
}

/// Percent-decodes one `application/x-www-form-urlencoded` component.
fn decode(text: &str) -> Result<Cow<'_, str>, ApiError> {
    if !text.bytes().any(|b| b == b'%' || b == b'+') {
        return Ok(Cow::Borrowed(text));
    }
    let bad = || ApiError::bad_request("malformed percent-encoding in the query string");
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
                let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map(Cow::Owned).map_err(|_| bad())
}

/// Splits a comma list, rejecting empty items and overlong lists.
fn items<'a>(name: &str, value: &'a str) -> Result<Vec<&'a str>, ApiError> {
    let list: Vec<&str> = value.split(',').collect();
    if list.iter().any(|v| v.is_empty()) {
        return Err(ApiError::bad_request(format!(
            "{name} has an empty value (values are separated by single commas, without spaces)"
        )));
    }
    if list.len() > MAX_VALUES {
        return Err(ApiError::bad_request(format!(
            "{name} lists more than {MAX_VALUES} values"
        )));
    }
    Ok(list)
}

fn timestamp(name: &str, value: &str) -> Result<Timestamp, ApiError> {
    Timestamp::parse(value)
        .map_err(|e| ApiError::bad_request(format!("{name} is not a valid timestamp: {e}")))
}

fn parse_versions(value: &str) -> Result<VersionFilter, ApiError> {
    const NAME: &str = "match[version]";
    let (mut last, mut first, mut all) = (false, false, false);
    let mut at: Vec<Timestamp> = Vec::new();
    let duplicate = |v: &str| ApiError::bad_request(format!("{NAME} lists {v} more than once"));
    for v in items(NAME, value)? {
        let seen = match v {
            "last" => std::mem::replace(&mut last, true),
            "first" => std::mem::replace(&mut first, true),
            "all" => std::mem::replace(&mut all, true),
            _ => {
                let t = timestamp(NAME, v)?;
                let seen = at.contains(&t);
                at.push(t);
                seen
            }
        };
        if seen {
            return Err(duplicate(v));
        }
    }
    if all {
        if last || first || !at.is_empty() {
            return Err(ApiError::bad_request(format!(
                "{NAME}=all cannot be combined with other versions"
            )));
        }
        return Ok(VersionFilter::All);
    }
    Ok(match (last, first, at.is_empty()) {
        (true, false, true) => VersionFilter::Last,
        (false, true, true) => VersionFilter::First,
        _ => {
            at.sort();
            VersionFilter::Set { last, first, at }
        }
    })
}

fn is_spec_version(v: &str) -> bool {
    v.split_once('.').is_some_and(|(major, minor)| {
        !major.is_empty()
            && !minor.is_empty()
            && major.len() <= 4
            && minor.len() <= 4
            && major.bytes().all(|b| b.is_ascii_digit())
            && minor.bytes().all(|b| b.is_ascii_digit())
    })
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

impl Filters {
    /// Parses and validates a raw query string for `endpoint`; filters the endpoint does not take
    /// are validated and then dropped.
    pub fn parse(raw: Option<&str>, endpoint: Endpoint) -> Result<Self, ApiError> {
        let mut f = Filters::default();
        let mut seen: Vec<String> = Vec::new();
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(key)?;
            let value = decode(value)?;
            let key = key.as_ref();
            let known =
                matches!(key, "added_after" | "limit" | "next") || key.starts_with("match[");
            if !known {
                continue;
            }
            if seen.iter().any(|k| k == key) {
                return Err(ApiError::bad_request(format!(
                    "{key} must not occur more than once"
                )));
            }
            seen.push(key.to_owned());
            if value.is_empty() {
                return Err(ApiError::bad_request(format!("{key} has no value")));
            }
            let value = value.as_ref();
            match key {
                "added_after" => f.added_after = Some(timestamp(key, value)?),
                "limit" => {
                    let n = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| ApiError::bad_request("limit must be a positive integer"))?;
                    f.limit = Some(n);
                }
                "next" => f.next = Some(value.to_owned()),
                "match[id]" => {
                    let mut ids = Vec::new();
                    for v in items(key, value)? {
                        StixId::parse(v)
                            .map_err(|e| ApiError::bad_request(format!("match[id]: {e}")))?;
                        ids.push(v.to_owned());
                    }
                    f.ids = sorted(ids);
                }
                "match[type]" => {
                    let mut types = Vec::new();
                    for v in items(key, value)? {
                        check_type_name(v).map_err(|why| {
                            ApiError::bad_request(format!("match[type]: {v:?}: {why}"))
                        })?;
                        types.push(v.to_owned());
                    }
                    f.types = sorted(types);
                }
                "match[version]" => f.versions = parse_versions(value)?,
                "match[spec_version]" => {
                    let list = items(key, value)?;
                    if let Some(bad) = list.iter().find(|v| !is_spec_version(v)) {
                        return Err(ApiError::bad_request(format!(
                            "match[spec_version]: {bad:?} is not a version such as 2.1"
                        )));
                    }
                    f.spec_versions = sorted(list.into_iter().map(str::to_owned).collect());
                }
                // Unknown match fields: §3.4 lets servers ignore them.
                _ => {}
            }
        }
        match endpoint {
            Endpoint::Objects | Endpoint::Manifest => {}
            Endpoint::Object => {
                f.ids.clear();
                f.types.clear();
            }
            Endpoint::Versions => {
                f.ids.clear();
                f.types.clear();
                f.versions = VersionFilter::All;
            }
            Endpoint::Delete => {
                // Deleting "the object" without naming versions deletes all of them.
                if !seen.iter().any(|k| k == "match[version]") {
                    f.versions = VersionFilter::All;
                }
                f.ids.clear();
                f.types.clear();
                f.added_after = None;
                f.limit = None;
                f.next = None;
            }
        }
        Ok(f)
    }

    /// The page size: the client's `limit` (at most the server's maximum), else the default.
    pub fn page_size(&self, config: &ServiceConfig) -> usize {
        let max = config.max_page_size.max(1);
        self.limit.unwrap_or(config.default_page_size).clamp(1, max)
    }

    /// A canonical text of the filters a `next` token is bound to: equal for requests that mean
    /// the same thing (list order, duplicates and timestamp spelling do not matter) and different
    /// otherwise. `limit` and `next` are not part of it.
    pub fn canonical(&self) -> String {
        use std::fmt::Write;
        let mut s = String::with_capacity(64);
        match self.added_after {
            Some(t) => {
                let _ = write!(s, "aa={}", t.unix_nanos());
            }
            None => s.push_str("aa=-"),
        }
        s.push_str("&id=");
        s.push_str(&self.ids.join(","));
        s.push_str("&type=");
        s.push_str(&self.types.join(","));
        s.push_str("&v=");
        match &self.versions {
            VersionFilter::Last => s.push_str("last"),
            VersionFilter::First => s.push_str("first"),
            VersionFilter::All => s.push_str("all"),
            VersionFilter::Set { last, first, at } => {
                let _ = write!(s, "set:{}:{}", u8::from(*last), u8::from(*first));
                for t in at {
                    let _ = write!(s, ",{}", t.unix_nanos());
                }
            }
        }
        s.push_str("&sv=");
        s.push_str(&self.spec_versions.join(","));
        s
    }

    /// The store query for these filters, for a reader with `clearance`.
    pub fn object_query(
        &self,
        clearance: Tlp,
        unmarked_as: Tlp,
        after_seq: Option<i64>,
        limit: usize,
    ) -> ObjectQuery {
        ObjectQuery {
            added_after: self.added_after,
            after_seq,
            limit,
            ids: self.ids.clone(),
            types: self.types.clone(),
            versions: self.versions.clone(),
            spec_versions: self.spec_versions.clone(),
            clearance,
            unmarked_as,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<Filters, ApiError> {
        Filters::parse(Some(q), Endpoint::Objects)
    }

    #[test]
    fn parses_every_filter() {
        let f = parse(
            "added_after=2020-01-01T00:00:00.000000Z&limit=5&next=abc\
             &match%5Bid%5D=indicator--3600ad1b-fff1-4c98-bcc9-4de3bc2e2ffb\
             &match[type]=malware,indicator&match[version]=first,2018-03-02T01:01:01.123Z,last\
             &match[spec_version]=2.1,2.0&match[x_custom]=1&other=2",
        )
        .unwrap();
        assert_eq!(f.limit, Some(5));
        assert_eq!(f.next.as_deref(), Some("abc"));
        assert_eq!(f.types, vec!["indicator", "malware"]);
        assert_eq!(f.spec_versions, vec!["2.0", "2.1"]);
        assert!(matches!(
            f.versions,
            VersionFilter::Set { last: true, first: true, ref at } if at.len() == 1
        ));
    }

    #[test]
    fn rejects_malformed_and_repeated() {
        for q in [
            "limit=0",
            "limit=-1",
            "limit=x",
            "limit=1&limit=2",
            "added_after=yesterday",
            "added_after=",
            "match[type]=a,,b",
            "match[type]=Bad_Type",
            "match[id]=nope",
            "match[version]=all,last",
            "match[version]=last,last",
            "match[version]=2016-01-01T00:00:00Z,2016-01-01T00:00:00.000Z",
            "match[spec_version]=two",
            "match[type]=indicator&match[type]=malware",
            "match[type]=%ZZ",
        ] {
            assert!(parse(q).is_err(), "{q} should be rejected");
        }
    }

    #[test]
    fn canonical_ignores_order_and_spelling() {
        let a = parse("match[type]=malware,indicator&added_after=2020-01-01T00:00:00Z").unwrap();
        let b =
            parse("added_after=2020-01-01T00:00:00.000000Z&match[type]=indicator,malware&limit=3")
                .unwrap();
        assert_eq!(a.canonical(), b.canonical());
        let c = parse("match[type]=indicator").unwrap();
        assert_ne!(a.canonical(), c.canonical());
        assert_eq!(
            parse("match[version]=last").unwrap().canonical(),
            parse("").unwrap().canonical()
        );
    }

    #[test]
    fn endpoint_masks() {
        let f = Filters::parse(
            Some("match[type]=indicator&match[version]=first"),
            Endpoint::Versions,
        )
        .unwrap();
        assert!(f.types.is_empty());
        assert_eq!(f.versions, VersionFilter::All);
    }
}
