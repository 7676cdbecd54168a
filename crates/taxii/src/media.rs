//! TAXII 2.1 media types and content negotiation (§1.6.8, §3.1).
//!
//! Kizuna speaks exactly one TAXII version, 2.1, so negotiation is a yes/no question:
//!
//! - **`Accept`**: a request is served when it has no `Accept` header, or when one of its media
//!   ranges (with a non-zero `q`) is `application/taxii+json` with `version=2.1` or without a
//!   version (§1.6.8.2: "latest version the server supports", which is 2.1), `application/*` or
//!   `*/*`. Anything else, `application/taxii+json;version=2.0` included, gets 406.
//! - **`Content-Type`** of a POST body: `application/taxii+json`, with `version=2.1` or without a
//!   version (other parameters such as `charset=utf-8` are ignored); anything else gets 415.
//! - Every response is `application/taxii+json;version=2.1` ([`TAXII_JSON`]).

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, header};

use crate::error::ApiError;

/// The media type of every TAXII 2.1 response, and the preferred one for requests.
pub const TAXII_JSON: &str = "application/taxii+json;version=2.1";

/// The media type of STIX 2.1 objects, as advertised in collections and manifests.
pub const STIX_JSON: &str = "application/stix+json;version=2.1";

/// The TAXII version this server implements, as the `version` media-type parameter spells it.
const VERSION: &str = "2.1";

/// One parsed media range or media type: lower-cased type and subtype, plus the parameters
/// Kizuna looks at.
#[derive(Debug, PartialEq)]
struct MediaRange<'a> {
    essence: String,
    version: Option<&'a str>,
    q_zero: bool,
}

fn parse_media_range(text: &str) -> Option<MediaRange<'_>> {
    let mut parts = text.split(';');
    let essence = parts.next()?.trim().to_ascii_lowercase();
    if essence.is_empty() || !essence.contains('/') {
        return None;
    }
    let mut version = None;
    let mut q_zero = false;
    for param in parts {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        match name.trim().to_ascii_lowercase().as_str() {
            "version" => version = Some(value),
            "q" => q_zero = value.parse::<f32>().is_ok_and(|q| q <= 0.0),
            _ => {}
        }
    }
    Some(MediaRange {
        essence,
        version,
        q_zero,
    })
}

/// Whether an `Accept` header value admits a TAXII 2.1 response.
pub fn accept_admits_taxii(value: &str) -> bool {
    value
        .split(',')
        .filter_map(parse_media_range)
        .filter(|r| !r.q_zero)
        .any(|r| match r.essence.as_str() {
            "application/taxii+json" => r.version.is_none_or(|v| v == VERSION),
            "*/*" | "application/*" => true,
            _ => false,
        })
}

/// Checks the request's `Accept` headers (all of them); 406 when none admits TAXII 2.1.
pub fn check_accept(headers: &HeaderMap) -> Result<(), ApiError> {
    let mut values = headers.get_all(header::ACCEPT).iter().peekable();
    if values.peek().is_none() {
        return Ok(());
    }
    let admitted = values.any(|v| v.to_str().is_ok_and(accept_admits_taxii));
    if admitted {
        Ok(())
    } else {
        Err(ApiError::not_acceptable(format!(
            "this server answers only {TAXII_JSON} (or application/taxii+json without a version)"
        )))
    }
}

/// Whether a `Content-Type` value is TAXII 2.1 JSON.
pub fn is_taxii_content_type(value: &str) -> bool {
    parse_media_range(value).is_some_and(|m| {
        m.essence == "application/taxii+json" && m.version.is_none_or(|v| v == VERSION)
    })
}

/// Checks the `Content-Type` of a request with a body; 415 unless it is TAXII 2.1 JSON.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    match value {
        Some(v) if is_taxii_content_type(v) => Ok(()),
        Some(_) => Err(ApiError::unsupported_media_type(format!(
            "the request body must be {TAXII_JSON}"
        ))),
        None => Err(ApiError::unsupported_media_type(format!(
            "a Content-Type of {TAXII_JSON} is required"
        ))),
    }
}

/// Middleware applied to every TAXII route: answers 406 before any handler runs when the client
/// cannot accept TAXII 2.1 JSON.
pub async fn negotiate(request: Request, next: Next) -> Response {
    match check_accept(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_ranges() {
        assert!(accept_admits_taxii(TAXII_JSON));
        assert!(accept_admits_taxii("application/taxii+json"));
        assert!(accept_admits_taxii(
            "Application/TAXII+JSON; Version=\"2.1\""
        ));
        assert!(accept_admits_taxii("*/*"));
        assert!(accept_admits_taxii("text/html, application/*;q=0.5"));
        assert!(!accept_admits_taxii("application/taxii+json;version=2.0"));
        assert!(!accept_admits_taxii("application/json"));
        assert!(!accept_admits_taxii("application/taxii+json;q=0"));
        assert!(!accept_admits_taxii(""));
    }

    #[test]
    fn content_types() {
        assert!(is_taxii_content_type(TAXII_JSON));
        assert!(is_taxii_content_type("application/taxii+json"));
        assert!(is_taxii_content_type(
            "application/taxii+json; charset=utf-8; version=2.1"
        ));
        assert!(!is_taxii_content_type("application/json"));
        assert!(!is_taxii_content_type("application/taxii+json;version=2.0"));
        assert!(!is_taxii_content_type("application/stix+json;version=2.1"));
    }
}
