//! A TAXII 2.1 client: every endpoint of the standard (§4–§5), over rustls, with the defences a
//! hub needs when the other side may be broken or hostile.
//!
//! - **Bounded**: every request has a connect and a total timeout, and a response body is read
//!   chunk by chunk up to a cap ([`ClientConfig::max_response_bytes`]); an oversized page is an
//!   [`Error::TooLarge`], never an allocation of whatever the server sends.
//! - **Strict about what it accepts**: error statuses become [`Error::Status`] with the TAXII error
//!   message, bodies that are not TAXII JSON become [`Error::Malformed`].
//! - **Secure by default**: HTTPS only unless `danger_plaintext_http`; trust is an explicit CA
//!   bundle or a pinned certificate; redirects are not followed, so credentials never travel to a
//!   host that was not configured.
//! - **Lossless**: objects come back as their exact JSON text ([`RawObject`]), ready to be stored
//!   byte for byte.

mod resources;
pub mod tls;

use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, Response, StatusCode, Url};
use serde::de::DeserializeOwned;

pub use resources::{
    ApiRootInfo, CollectionInfo, Discovery, ManifestPage, ManifestRecord, ObjectsPage, RawObject,
    StatusDetail, StatusResource, VersionsPage,
};
pub use tls::{ClientCert, Trust};

use crate::error::{Error, Result};
use resources::{
    CollectionsBody, EnvelopeBody, ErrorBody, ErrorWithStatus, ManifestBody, VersionsBody,
};

/// The TAXII 2.1 media type, sent in `Accept` and `Content-Type`.
pub const TAXII_MEDIA_TYPE: &str = "application/taxii+json;version=2.1";

/// Bytes an envelope adds around its objects: `{"objects":[` and `]}`.
const ENVELOPE_OVERHEAD: u64 = br#"{"objects":[]}"#.len() as u64;

/// A secret (password or token): never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// How the client authenticates (client certificates are part of the TLS configuration,
/// [`ClientConfig::client_cert`], and may be combined with these).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// No HTTP authentication.
    #[default]
    None,
    /// HTTP Basic.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: Secret,
    },
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
}

/// Everything a client needs to talk to one partner.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// HTTP authentication.
    pub auth: Auth,
    /// How the server certificate is trusted; required for `https` URLs.
    pub trust: Option<Trust>,
    /// Client certificate for mutual TLS.
    pub client_cert: Option<ClientCert>,
    /// Allow `http://` URLs: credentials and intelligence then cross the network in clear.
    pub danger_plaintext_http: bool,
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, body included.
    pub request_timeout: Duration,
    /// Largest response body read, in bytes.
    pub max_response_bytes: u64,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            auth: Auth::None,
            trust: None,
            client_cert: None,
            danger_plaintext_http: false,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_response_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Filters of the objects, manifest, object and versions endpoints (§3.4). Several values of one
/// `match[...]` are sent comma-separated, as the standard prescribes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectsQuery {
    /// `added_after` (a TAXII timestamp, sent verbatim).
    pub added_after: Option<String>,
    /// `limit`.
    pub limit: Option<usize>,
    /// `next`, from the previous page.
    pub next: Option<String>,
    /// `match[id]`.
    pub ids: Vec<String>,
    /// `match[type]`.
    pub types: Vec<String>,
    /// `match[version]`: `all`, `first`, `last` or timestamps.
    pub versions: Vec<String>,
    /// `match[spec_version]`.
    pub spec_versions: Vec<String>,
}

impl ObjectsQuery {
    fn apply(&self, url: &mut Url) {
        let mut pairs = url.query_pairs_mut();
        if let Some(a) = &self.added_after {
            pairs.append_pair("added_after", a);
        }
        if let Some(l) = self.limit {
            pairs.append_pair("limit", &l.to_string());
        }
        if let Some(n) = &self.next {
            pairs.append_pair("next", n);
        }
        for (name, values) in [
            ("match[id]", &self.ids),
            ("match[type]", &self.types),
            ("match[version]", &self.versions),
            ("match[spec_version]", &self.spec_versions),
        ] {
            if !values.is_empty() {
                pairs.append_pair(name, &values.join(","));
            }
        }
        drop(pairs);
        if url.query() == Some("") {
            url.set_query(None);
        }
    }
}

/// What a URL turned out to be ([`TaxiiClient::probe`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A discovery resource.
    Discovery(Discovery),
    /// An API root.
    ApiRoot(ApiRootInfo),
}

/// A TAXII 2.1 client for one partner. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct TaxiiClient {
    http: reqwest::Client,
    auth: Auth,
    danger_plaintext_http: bool,
    max_response_bytes: u64,
}

impl TaxiiClient {
    /// Builds a client; fails when the TLS material is unusable.
    pub fn new(config: &ClientConfig) -> Result<Self> {
        let tls = match &config.trust {
            Some(trust) => tls::client_config(trust, config.client_cert.as_ref())?,
            // Without trust only plain HTTP can work; an empty root store makes every HTTPS
            // handshake fail instead of silently trusting something.
            None => {
                if config.client_cert.is_some() {
                    return Err(Error::Config(
                        "a client certificate needs a CA bundle or a pinned fingerprint".into(),
                    ));
                }
                tls::client_config_without_trust()?
            }
        };
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("kizuna-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Tls(e.to_string()))?;
        Ok(Self {
            http,
            auth: config.auth.clone(),
            danger_plaintext_http: config.danger_plaintext_http,
            max_response_bytes: config.max_response_bytes,
        })
    }

    // ----- server and API root -----

    /// `GET {discovery}` (§4.1).
    pub async fn discovery(&self, url: &Url) -> Result<Discovery> {
        Ok(self.get_json(url.clone()).await?.0)
    }

    /// `GET {url}` of a URL that may be a discovery or an API root: the answer tells which (an API
    /// root has `max_content_length`).
    pub async fn probe(&self, url: &Url) -> Result<Probe> {
        let (value, _): (serde_json::Value, _) = self.get_json(url.clone()).await?;
        let malformed = |e: serde_json::Error| Error::Malformed {
            url: url.to_string(),
            reason: e.to_string(),
        };
        if value.get("max_content_length").is_some() {
            Ok(Probe::ApiRoot(
                serde_json::from_value(value).map_err(malformed)?,
            ))
        } else {
            Ok(Probe::Discovery(
                serde_json::from_value(value).map_err(malformed)?,
            ))
        }
    }

    /// `GET {api-root}/` (§4.2).
    pub async fn api_root(&self, api_root: &Url) -> Result<ApiRootInfo> {
        Ok(self.get_json(api_root.clone()).await?.0)
    }

    /// `GET {api-root}/status/{id}/` (§4.3).
    pub async fn status(&self, api_root: &Url, status_id: &str) -> Result<StatusResource> {
        let url = join(api_root, &["status", status_id])?;
        Ok(self.get_json(url).await?.0)
    }

    /// `GET {api-root}/collections/` (§5.1).
    pub async fn collections(&self, api_root: &Url) -> Result<Vec<CollectionInfo>> {
        let url = join(api_root, &["collections"])?;
        let body: CollectionsBody = self.get_json(url).await?.0;
        Ok(body.collections)
    }

    /// `GET {api-root}/collections/{id}/` (§5.2).
    pub async fn collection(&self, api_root: &Url, collection: &str) -> Result<CollectionInfo> {
        let url = join(api_root, &["collections", collection])?;
        Ok(self.get_json(url).await?.0)
    }

    // ----- objects -----

    /// `GET {api-root}/collections/{id}/manifest/` (§5.3).
    pub async fn manifest(
        &self,
        api_root: &Url,
        collection: &str,
        query: &ObjectsQuery,
    ) -> Result<ManifestPage> {
        let mut url = join(api_root, &["collections", collection, "manifest"])?;
        query.apply(&mut url);
        let (body, headers): (ManifestBody, _) = self.get_json(url.clone()).await?;
        Ok(ManifestPage {
            records: body.objects,
            more: body.more,
            next: body.next,
            date_added_first: header_text(&headers, "x-taxii-date-added-first", &url)?,
            date_added_last: header_text(&headers, "x-taxii-date-added-last", &url)?,
        })
    }

    /// `GET {api-root}/collections/{id}/objects/` (§5.4): one page.
    pub async fn objects(
        &self,
        api_root: &Url,
        collection: &str,
        query: &ObjectsQuery,
    ) -> Result<ObjectsPage> {
        let mut url = join(api_root, &["collections", collection, "objects"])?;
        query.apply(&mut url);
        self.envelope(url).await
    }

    /// `POST {api-root}/collections/{id}/objects/` (§5.5) of one envelope built from the objects'
    /// JSON texts. The caller keeps it within `max_content_length` ([`pack_envelopes`]).
    pub async fn add_objects(
        &self,
        api_root: &Url,
        collection: &str,
        objects: &[&str],
    ) -> Result<StatusResource> {
        let url = join(api_root, &["collections", collection, "objects"])?;
        let body = envelope_bytes(objects);
        let request = self
            .request(Method::POST, url.clone())?
            .header(header::CONTENT_TYPE, TAXII_MEDIA_TYPE)
            .body(body);
        let response = request.send().await.map_err(Error::Transport)?;
        if response.status() == StatusCode::UNPROCESSABLE_ENTITY {
            // Some servers (Kizuna among them) answer 422 when no object of the envelope could be
            // stored, with the status resource in the error's `details` (§3.6.1): its failures
            // are per object, as in a 202's, and are handled the same way.
            let body = self.read_body(response, &url).await?;
            if let Ok(ErrorWithStatus { details: status }) = serde_json::from_slice(&body) {
                return Ok(status);
            }
            let message = serde_json::from_slice::<ErrorBody>(&body)
                .ok()
                .map(|e| {
                    [e.title, e.description]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                })
                .filter(|parts| !parts.is_empty())
                .map_or_else(
                    || canonical(StatusCode::UNPROCESSABLE_ENTITY),
                    |p| p.join(": "),
                );
            return Err(Error::Status {
                status: 422,
                url: url.to_string(),
                message,
                retry_after: None,
            });
        }
        let response = self.check(response, &url).await?;
        let (status, _) = self.read_json(response, &url).await?;
        Ok(status)
    }

    /// Polls a status resource until it is complete, at most `attempts` times, `interval` apart.
    /// Returns the last state seen (complete or not).
    pub async fn wait_for_status(
        &self,
        api_root: &Url,
        status: StatusResource,
        interval: Duration,
        attempts: u32,
    ) -> Result<StatusResource> {
        let mut current = status;
        let mut tries = 0;
        while !current.is_complete() && tries < attempts {
            tokio::time::sleep(interval).await;
            current = self.status(api_root, &current.id).await?;
            tries += 1;
        }
        Ok(current)
    }

    /// `GET {api-root}/collections/{id}/objects/{object-id}/` (§5.6).
    pub async fn object(
        &self,
        api_root: &Url,
        collection: &str,
        object_id: &str,
        query: &ObjectsQuery,
    ) -> Result<ObjectsPage> {
        let mut url = join(api_root, &["collections", collection, "objects", object_id])?;
        query.apply(&mut url);
        self.envelope(url).await
    }

    /// `DELETE {api-root}/collections/{id}/objects/{object-id}/` (§5.7), honouring the version
    /// and spec_version filters of `query`.
    pub async fn delete_object(
        &self,
        api_root: &Url,
        collection: &str,
        object_id: &str,
        query: &ObjectsQuery,
    ) -> Result<()> {
        let mut url = join(api_root, &["collections", collection, "objects", object_id])?;
        query.apply(&mut url);
        let response = self
            .send(self.request(Method::DELETE, url.clone())?, &url)
            .await?;
        // The body (if any) carries nothing we need; read it within the cap to free the connection.
        self.read_body(response, &url).await?;
        Ok(())
    }

    /// `GET {api-root}/collections/{id}/objects/{object-id}/versions/` (§5.8).
    pub async fn versions(
        &self,
        api_root: &Url,
        collection: &str,
        object_id: &str,
        query: &ObjectsQuery,
    ) -> Result<VersionsPage> {
        let mut url = join(
            api_root,
            &["collections", collection, "objects", object_id, "versions"],
        )?;
        query.apply(&mut url);
        let (body, headers): (VersionsBody, _) = self.get_json(url.clone()).await?;
        Ok(VersionsPage {
            versions: body.versions,
            more: body.more,
            next: body.next,
            date_added_first: header_text(&headers, "x-taxii-date-added-first", &url)?,
            date_added_last: header_text(&headers, "x-taxii-date-added-last", &url)?,
        })
    }

    // ----- plumbing -----

    async fn envelope(&self, url: Url) -> Result<ObjectsPage> {
        let (body, headers): (EnvelopeBody, _) = self.get_json(url.clone()).await?;
        if body.more && body.next.is_none() {
            // Without a token, "more" cannot be followed; a later incremental pull by
            // added_after still gets the rest, so this is not fatal for callers that loop on it.
            tracing::debug!(%url, "server says more but gives no next token");
        }
        Ok(ObjectsPage {
            objects: body.objects,
            more: body.more,
            next: body.next,
            date_added_first: header_text(&headers, "x-taxii-date-added-first", &url)?,
            date_added_last: header_text(&headers, "x-taxii-date-added-last", &url)?,
        })
    }

    fn request(&self, method: Method, url: Url) -> Result<reqwest::RequestBuilder> {
        match url.scheme() {
            "https" => {}
            "http" if self.danger_plaintext_http => {}
            "http" => {
                return Err(Error::Config(format!(
                    "{url} is plain HTTP: use https, or set danger_plaintext_http"
                )));
            }
            other => return Err(Error::Config(format!("unsupported URL scheme {other:?}"))),
        }
        let builder = self
            .http
            .request(method, url)
            .header(header::ACCEPT, TAXII_MEDIA_TYPE);
        Ok(match &self.auth {
            Auth::None => builder,
            Auth::Basic { username, password } => {
                builder.basic_auth(username, Some(password.expose()))
            }
            Auth::Bearer(token) => builder.bearer_auth(token.expose()),
        })
    }

    async fn send(&self, request: reqwest::RequestBuilder, url: &Url) -> Result<Response> {
        let response = request.send().await.map_err(Error::Transport)?;
        self.check(response, url).await
    }

    /// The response if its status is a success, else [`Error::Status`] with the TAXII error.
    async fn check(&self, response: Response, url: &Url) -> Result<Response> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        // Only the delta-seconds form; an HTTP date is rare from TAXII servers and the backoff
        // applies anyway.
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let message = self.error_message(response, url).await;
        Err(Error::Status {
            status: status.as_u16(),
            url: url.to_string(),
            message,
            retry_after,
        })
    }

    /// The TAXII error's title and description, or the start of the body, never more than a few
    /// KiB of it.
    async fn error_message(&self, response: Response, url: &Url) -> String {
        let status = response.status();
        let body = match read_capped(response, 16 * 1024, url).await {
            Ok(b) => b,
            Err(_) => return canonical(status),
        };
        if let Ok(e) = serde_json::from_slice::<ErrorBody>(&body) {
            let parts: Vec<String> = [e.title, e.description].into_iter().flatten().collect();
            if !parts.is_empty() {
                return parts.join(": ");
            }
        }
        let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
        if text.trim().is_empty() {
            canonical(status)
        } else {
            text
        }
    }

    async fn get_json<T: DeserializeOwned>(&self, url: Url) -> Result<(T, HeaderMap)> {
        let response = self
            .send(self.request(Method::GET, url.clone())?, &url)
            .await?;
        self.read_json(response, &url).await
    }

    async fn read_json<T: DeserializeOwned>(
        &self,
        response: Response,
        url: &Url,
    ) -> Result<(T, HeaderMap)> {
        let headers = response.headers().clone();
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_taxii_json(content_type) {
            return Err(Error::Malformed {
                url: url.to_string(),
                reason: format!("Content-Type {content_type:?} is not application/taxii+json"),
            });
        }
        let body = self.read_body(response, url).await?;
        let value = serde_json::from_slice(&body).map_err(|e| Error::Malformed {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        Ok((value, headers))
    }

    async fn read_body(&self, response: Response, url: &Url) -> Result<Vec<u8>> {
        read_capped(response, self.max_response_bytes, url).await
    }
}

/// Reads a body chunk by chunk, failing as soon as it passes `limit` bytes.
async fn read_capped(mut response: Response, limit: u64, url: &Url) -> Result<Vec<u8>> {
    let too_large = || Error::TooLarge {
        url: url.to_string(),
        limit,
    };
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Error::Transport)? {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn canonical(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("error").to_owned()
}

fn is_taxii_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    // Some servers answer with plain application/json; the body is still checked as TAXII JSON.
    essence == "application/taxii+json" || essence == "application/json"
}

fn header_text(headers: &HeaderMap, name: &str, url: &Url) -> Result<Option<String>> {
    match headers.get(name).map(HeaderValue::to_str) {
        None => Ok(None),
        Some(Ok(v)) => Ok(Some(v.trim().to_owned())),
        Some(Err(_)) => Err(Error::Malformed {
            url: url.to_string(),
            reason: format!("header {name} is not text"),
        }),
    }
}

/// Normalises an API root or discovery URL: it must parse, and it ends with `/` so that relative
/// joins stay below it.
pub fn base_url(text: &str) -> Result<Url> {
    let mut url = Url::parse(text).map_err(|e| Error::Config(format!("URL {text:?}: {e}")))?;
    if url.cannot_be_a_base() {
        return Err(Error::Config(format!("URL {text:?} cannot be a base")));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// `{base}/{segments...}/`, refusing segments that could change the path (ids and collection ids
/// come from configuration and from partners).
fn join(base: &Url, segments: &[&str]) -> Result<Url> {
    let mut url = base.clone();
    {
        let mut path = url
            .path_segments_mut()
            .map_err(|_| Error::Config(format!("URL {base} cannot be a base")))?;
        path.pop_if_empty();
        for s in segments {
            let safe = !s.is_empty()
                && s.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':')
                })
                && *s != "."
                && *s != "..";
            if !safe {
                return Err(Error::Config(format!("invalid path segment {s:?}")));
            }
            path.push(s);
        }
        path.push("");
    }
    Ok(url)
}

/// The bytes of an envelope holding these objects' JSON texts.
pub fn envelope_bytes(objects: &[&str]) -> Vec<u8> {
    let size = objects.iter().map(|o| o.len() + 1).sum::<usize>() + ENVELOPE_OVERHEAD as usize;
    let mut body = Vec::with_capacity(size);
    body.extend_from_slice(br#"{"objects":["#);
    for (i, o) in objects.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(o.as_bytes());
    }
    body.extend_from_slice(b"]}");
    body
}

/// Splits objects (id, JSON text) into consecutive batches whose envelopes are at most
/// `max_content_length` bytes each, preserving order. Fails on an object that cannot fit alone.
pub fn pack_envelopes(
    objects: &[(&str, &str)],
    max_content_length: u64,
) -> Result<Vec<std::ops::Range<usize>>> {
    let mut batches = Vec::new();
    let mut start = 0;
    let mut size = ENVELOPE_OVERHEAD;
    for (i, (id, json)) in objects.iter().enumerate() {
        let len = json.len() as u64;
        if ENVELOPE_OVERHEAD + len > max_content_length {
            return Err(Error::ObjectTooLarge {
                id: (*id).to_owned(),
                size: ENVELOPE_OVERHEAD + len,
                limit: max_content_length,
            });
        }
        let added = if i == start { len } else { len + 1 };
        if size + added > max_content_length {
            batches.push(start..i);
            start = i;
            size = ENVELOPE_OVERHEAD + len;
        } else {
            size += added;
        }
    }
    if start < objects.len() {
        batches.push(start..objects.len());
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_end_with_a_slash_and_joins_stay_below() {
        let b = base_url("https://h:1/api1").unwrap();
        assert_eq!(b.as_str(), "https://h:1/api1/");
        let u = join(&b, &["collections", "abc-1", "objects"]).unwrap();
        assert_eq!(u.as_str(), "https://h:1/api1/collections/abc-1/objects/");
        assert!(join(&b, &["collections", ".."]).is_err());
        assert!(join(&b, &["collections", "a/b"]).is_err());
        assert!(join(&b, &["collections", "a?b"]).is_err());
        assert!(base_url("not a url").is_err());
    }

    #[test]
    fn queries_are_comma_separated_and_omitted_when_empty() {
        let mut u = base_url("https://h/r/").unwrap();
        ObjectsQuery::default().apply(&mut u);
        assert_eq!(u.as_str(), "https://h/r/");
        let q = ObjectsQuery {
            added_after: Some("2026-01-01T00:00:00.000Z".into()),
            limit: Some(10),
            types: vec!["indicator".into(), "malware".into()],
            versions: vec!["all".into()],
            ..Default::default()
        };
        q.apply(&mut u);
        let pairs: Vec<(String, String)> = u.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            vec![
                ("added_after".into(), "2026-01-01T00:00:00.000Z".into()),
                ("limit".into(), "10".into()),
                ("match[type]".into(), "indicator,malware".into()),
                ("match[version]".into(), "all".into()),
            ]
        );
    }

    #[test]
    fn envelopes_respect_the_limit_exactly() {
        let objs: Vec<(&str, &str)> = vec![("a", "{\"x\":1}"), ("b", "{\"y\":22}"), ("c", "{}")];
        let texts: Vec<&str> = objs.iter().map(|o| o.1).collect();
        let all = envelope_bytes(&texts).len() as u64;
        assert_eq!(pack_envelopes(&objs, all).unwrap(), vec![0..3]);
        let batches = pack_envelopes(&objs, all - 1).unwrap();
        assert_eq!(batches.len(), 2);
        for r in &batches {
            let part: Vec<&str> = texts[r.clone()].to_vec();
            assert!((envelope_bytes(&part).len() as u64) < all);
            serde_json::from_slice::<serde_json::Value>(&envelope_bytes(&part)).unwrap();
        }
        assert!(matches!(
            pack_envelopes(&objs, ENVELOPE_OVERHEAD + 3),
            Err(Error::ObjectTooLarge { .. })
        ));
        assert!(pack_envelopes(&[], 10).unwrap().is_empty());
    }

    #[test]
    fn secrets_do_not_print() {
        let a = Auth::Bearer(Secret::new("hunter2"));
        assert!(!format!("{a:?}").contains("hunter2"));
    }

    #[test]
    fn plain_http_needs_the_danger_flag() {
        let c = TaxiiClient::new(&ClientConfig::default()).unwrap();
        let err = c
            .request(Method::GET, Url::parse("http://127.0.0.1:1/").unwrap())
            .unwrap_err();
        assert!(err.to_string().contains("danger_plaintext_http"), "{err}");
    }
}
