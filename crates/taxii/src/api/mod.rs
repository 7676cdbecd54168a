//! The TAXII 2.1 API (OASIS Standard, 10 June 2021): every endpoint of §4 and §5.
//!
//! | Endpoint | Module |
//! |---|---|
//! | `GET /taxii2/`, `GET /{api-root}/` | [`discovery`] |
//! | `GET /{api-root}/status/{status-id}/` | [`status`] |
//! | `GET /{api-root}/collections/`, `GET /{api-root}/collections/{id}/` | [`collections`] |
//! | `GET /{api-root}/collections/{id}/objects/` | [`objects`] |
//! | `POST /{api-root}/collections/{id}/objects/` | [`add`] |
//! | `GET`, `DELETE /{api-root}/collections/{id}/objects/{object-id}/` | [`objects`] |
//! | `GET /{api-root}/collections/{id}/objects/{object-id}/versions/` | [`objects`] |
//! | `GET /{api-root}/collections/{id}/manifest/` | [`manifest`] |
//!
//! Every path answers with and without its trailing slash (§3.1 requires clients to send it;
//! accepting its absence costs nothing). Every route first passes content negotiation
//! ([`crate::media::negotiate`], 406), and every handler expects the authentication middleware to
//! have inserted a [`Principal`].
//!
//! # Access control
//!
//! Collections are where permissions live (per account: read, write). A collection the caller
//! may neither read nor write is **invisible**: every endpoint answers 404 for it exactly as for a
//! collection that does not exist, and it is left out of the collections list. Answering 403
//! instead would confirm to any authenticated account that a collection with that id or alias
//! exists (§5.4 and §5.5 allow either). A collection the caller can see but not use for the
//! request at hand answers 403 (GET objects on a write-only collection, POST on a read-only
//! one, DELETE without both permissions as §5.7's table requires).
//!
//! Objects above the caller's TLP clearance are filtered by the store in the query itself
//! ([`kizuna_store::ObjectQuery::clearance`]), on every endpoint that returns objects or facts
//! about them (objects, object, versions, manifest), so they are never read into memory for that
//! caller and are indistinguishable from objects that do not exist. An account with an egress
//! policy ([`crate::state::ServiceConfig::egress`]) is then served only what that policy lets out,
//! on the same four endpoints (see [`objects`]), and what objects and object serve it is in the
//! egress ledger before the response is built ([`crate::egress`]).
//!
//! # Performance
//!
//! Store calls run on the blocking pool: a read (objects, object, versions, manifest) does all of
//! its store work (the account of a bearer key or client certificate, collection lookup,
//! permission check, query) in one `spawn_blocking` and one read transaction ([`read_as`], see
//! [`crate::auth`]) and queues its audit event for the [`crate::audit`] writer, which commits
//! them in batches off the request path. Without an egress policy, Get Objects and Get an Object
//! write each row into the envelope and the audit list as SQLite returns it, borrowed from the row
//! ([`kizuna_store::Snapshot::each_object`]), the envelope's head placed in room left in front of
//! the objects, so the body is neither copied nor built from owned records; a POST uses one for the lookup
//! before it reads the body and one for validation and storage (large envelopes are validated
//! on several threads). Objects are served as the
//! exact bytes they were stored as: an envelope is built by concatenating them, never by
//! re-serialising (only an egress policy's redaction rewrites an object, for the accounts it
//! applies to).

pub mod add;
pub mod collections;
pub mod discovery;
pub mod manifest;
pub mod objects;
pub mod status;

use axum::Router;
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use http::request::Parts;
use http::{HeaderValue, Method, StatusCode, header};
use kizuna_stix::Timestamp;
use kizuna_store::{AuditAction, AuditEvent, Collection, ObjectRecord, Snapshot};
use serde::Serialize;

use crate::auth::{AuthFailure, Claim};
use crate::error::ApiError;
use crate::limits::too_many_requests;
use crate::media::{self, TAXII_JSON};
use crate::state::{AppState, Principal};

/// The router with every TAXII 2.1 endpoint. Authentication, rate limiting, body limits and TLS
/// are layered around it by the server module.
pub fn routes() -> Router<AppState> {
    let endpoints: [(&str, MethodRouter<AppState>); 9] = [
        ("/taxii2/", get(discovery::discovery)),
        ("/{api_root}/", get(discovery::api_root)),
        ("/{api_root}/status/{status_id}/", get(status::get_status)),
        ("/{api_root}/collections/", get(collections::list)),
        (
            "/{api_root}/collections/{collection}/",
            get(collections::get_one),
        ),
        (
            "/{api_root}/collections/{collection}/objects/",
            get(objects::get_objects).post(add::add_objects),
        ),
        (
            "/{api_root}/collections/{collection}/objects/{object_id}/",
            get(objects::get_object).delete(objects::delete_object),
        ),
        (
            "/{api_root}/collections/{collection}/objects/{object_id}/versions/",
            get(objects::get_versions),
        ),
        (
            "/{api_root}/collections/{collection}/manifest/",
            get(manifest::get_manifest),
        ),
    ];
    let mut router = Router::new();
    for (path, method_router) in endpoints {
        router = router
            .route(path, method_router.clone())
            .route(path.trim_end_matches('/'), method_router);
    }
    router
        .route_layer(middleware::from_fn(media::negotiate))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(unknown_path)
}

/// The GET endpoints whose handlers take a [`Who`] and look a claimed account up in the read
/// transaction that serves the request (see "Performance" above); for every other request the
/// authentication middleware resolves the account before routing on.
const ONE_STEP_READS: [&str; 4] = [
    "/{api_root}/collections/{collection}/objects/",
    "/{api_root}/collections/{collection}/objects/{object_id}/",
    "/{api_root}/collections/{collection}/objects/{object_id}/versions/",
    "/{api_root}/collections/{collection}/manifest/",
];

/// Whether a request to the route `matched` (with or without its trailing slash) is answered by a
/// handler that resolves its own caller: GET on one of [`ONE_STEP_READS`].
pub(crate) fn resolves_own_caller(method: &Method, matched: Option<&str>) -> bool {
    method == Method::GET
        && matched.is_some_and(|m| {
            ONE_STEP_READS
                .iter()
                .any(|p| p.trim_end_matches('/') == m.trim_end_matches('/'))
        })
}

/// Paths that are no TAXII endpoint: 404 with a TAXII error body.
async fn unknown_path() -> ApiError {
    ApiError::not_found("no TAXII endpoint at this path")
}

/// Methods an endpoint does not define: 405 with a TAXII error body.
async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
        .describe("this endpoint does not support this HTTP method")
}

/// The authenticated caller, taken from the request extension the authentication middleware
/// inserts. Its absence means the router was mounted without authentication: refused with 401.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Caller)
            .ok_or_else(|| {
                ApiError::new(StatusCode::UNAUTHORIZED, "Unauthorized")
                    .describe("authentication is required")
            })
    }
}

impl Caller {
    /// The account name.
    pub fn name(&self) -> &str {
        &self.0.account.name
    }
}

/// Who calls a read endpoint: an account the middleware resolved (HTTP Basic), or a [`Claim`]
/// (bearer API key, client certificate) that [`read_as`] resolves in the request's own read
/// transaction.
#[derive(Debug, Clone)]
pub enum Who {
    /// The account, already resolved.
    Known(Principal),
    /// A credential whose account is still to be looked up.
    Claimed {
        /// The credential.
        claim: Claim,
        /// The request span, to record the account on once it is known.
        span: tracing::Span,
    },
}

impl<S: Send + Sync> FromRequestParts<S> for Who {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(claim) = parts.extensions.get::<Claim>() {
            return Ok(Who::Claimed {
                claim: claim.clone(),
                span: tracing::Span::current(),
            });
        }
        Caller::from_request_parts(parts, state)
            .await
            .map(|c| Who::Known(c.0))
    }
}

/// Why [`read_as`] refused a request inside its snapshot.
enum Refused {
    Auth(AuthFailure),
    Api(ApiError),
}

/// Runs `work` for `who` in one read snapshot of the store: a claimed account is looked up
/// there first (unknown or revoked: 401, counted and audited as a failed login; over its rate:
/// 429), so that the account and what it reads are of one instant and one blocking call serves
/// the request. Blocking.
pub(crate) fn read_as<T>(
    state: &AppState,
    who: &Who,
    work: impl FnOnce(&dyn Snapshot, &Caller) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let outcome = kizuna_store::in_snapshot(state.store.as_ref(), |snapshot| {
        let caller = match who {
            Who::Known(principal) => Caller(principal.clone()),
            Who::Claimed { claim, span } => match state.auth.resolve(claim, snapshot) {
                Ok(principal) => {
                    span.record("account", principal.account.name.as_str());
                    if let Err(wait) = state.rate.check(&principal.account.name) {
                        state.metrics.rate_limited("account");
                        return Ok(Err(Refused::Api(too_many_requests(wait))));
                    }
                    Caller(principal)
                }
                Err(failure) => return Ok(Err(Refused::Auth(failure))),
            },
        };
        Ok(work(snapshot, &caller).map_err(Refused::Api))
    })?;
    match outcome {
        Ok(value) => Ok(value),
        Err(Refused::Api(e)) => Err(e),
        Err(Refused::Auth(failure)) => {
            if let Who::Claimed { claim, .. } = who {
                state.auth.claim_failed(claim, &failure);
            }
            tracing::debug!(reason = failure.label(), "authentication failed");
            Err(failure.into_api_error())
        }
    }
}

/// What a request needs to do with a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// See its description (read or write permission).
    See,
    /// Read its objects.
    Read,
    /// Add objects.
    Write,
    /// Delete objects: read and write (§5.7).
    ReadWrite,
}

/// Looks a collection up by id or alias and checks the caller's permission: 404 when it does not
/// exist or is invisible to the caller, 403 when it is visible but `need` is not granted. Blocking.
pub(crate) fn collection(
    state: &AppState,
    caller: &Caller,
    api_root: &str,
    id_or_alias: &str,
    need: Need,
) -> Result<Collection, ApiError> {
    let found = state.store.collection(api_root, id_or_alias)?;
    permitted(found, caller, api_root, need)
}

/// [`collection`] in a snapshot.
pub(crate) fn collection_in(
    snapshot: &dyn Snapshot,
    caller: &Caller,
    api_root: &str,
    id_or_alias: &str,
    need: Need,
) -> Result<Collection, ApiError> {
    let found = snapshot.collection(api_root, id_or_alias)?;
    permitted(found, caller, api_root, need)
}

fn permitted(
    found: Option<Collection>,
    caller: &Caller,
    api_root: &str,
    need: Need,
) -> Result<Collection, ApiError> {
    let not_found = || ApiError::not_found("no such collection in this API root");
    let collection = found.ok_or_else(not_found)?;
    let account = &caller.0.account;
    let read = account.can_read(api_root, &collection.id);
    let write = account.can_write(api_root, &collection.id);
    if !read && !write {
        return Err(not_found());
    }
    let granted = match need {
        Need::See => true,
        Need::Read => read,
        Need::Write => write,
        Need::ReadWrite => read && write,
    };
    if granted {
        Ok(collection)
    } else {
        Err(ApiError::forbidden(match need {
            Need::Read => "this account may not read this collection",
            Need::Write => "this account may not add objects to this collection",
            _ => "deleting objects requires both read and write permission on the collection",
        }))
    }
}

/// Runs blocking store work on the blocking thread pool.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(&e))?
}

/// A TAXII JSON response with a body already serialised.
pub(crate) fn taxii_response(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut response = (status, body.into()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(TAXII_JSON));
    response
}

/// Serialises a TAXII resource and answers it with `status`.
pub(crate) fn json_response<T: Serialize>(status: StatusCode, resource: &T) -> Response {
    match serde_json::to_vec(resource) {
        Ok(body) => taxii_response(status, body),
        Err(e) => ApiError::internal(&e).into_response(),
    }
}

/// A TAXII timestamp: microsecond precision (§2).
pub(crate) fn taxii_timestamp(t: Timestamp) -> String {
    t.to_micros().to_string()
}

/// Name of the header with the `date_added` of the first record of a response (§3.2).
pub const DATE_ADDED_FIRST: &str = "x-taxii-date-added-first";
/// Name of the header with the `date_added` of the last record of a response (§3.2).
pub const DATE_ADDED_LAST: &str = "x-taxii-date-added-last";

/// Adds `X-TAXII-Date-Added-First/Last` for a page of records (§3.2: every 200 of objects,
/// object, versions and manifest carries them).
///
/// A page without records has no first or last `date_added`; both headers then carry
/// `empty_mark`: the request's `added_after` when it had one, else the earliest timestamp. A client
/// that pages by `added_after` from `X-TAXII-Date-Added-Last` thus stays where it was and misses
/// nothing.
pub(crate) fn date_added_headers(
    response: &mut Response,
    records: &[ObjectRecord],
    empty_mark: Timestamp,
) {
    let span = records
        .first()
        .zip(records.last())
        .map(|(f, l)| (f.date_added, l.date_added));
    date_added_span_headers(response, span, empty_mark);
}

/// [`date_added_headers`] from the first and last `date_added` of a page, if it has records.
pub(crate) fn date_added_span_headers(
    response: &mut Response,
    span: Option<(Timestamp, Timestamp)>,
    empty_mark: Timestamp,
) {
    let (first, last) = span.unwrap_or((empty_mark, empty_mark));
    for (name, t) in [(DATE_ADDED_FIRST, first), (DATE_ADDED_LAST, last)] {
        if let Ok(value) = HeaderValue::from_str(&taxii_timestamp(t)) {
            response
                .headers_mut()
                .insert(header::HeaderName::from_static(name), value);
        }
    }
}

/// An audit event by the caller about one object version of a collection.
pub(crate) fn audit_event(
    caller: &Caller,
    time: Timestamp,
    action: AuditAction,
    collection: &str,
    object_id: &str,
    version: Option<String>,
) -> AuditEvent {
    AuditEvent {
        time,
        account: Some(caller.name().to_owned()),
        action,
        collection: Some(collection.to_owned()),
        object_id: Some(object_id.to_owned()),
        version,
        detail: None,
    }
}
