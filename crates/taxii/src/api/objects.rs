//! Get Objects (§5.4), Get an Object (§5.6), Delete an Object (§5.7), Get Object Versions
//! (§5.8), and the paging engine they share with the manifest (§5.3).
//!
//! Paging follows the collection's sequence, not `date_added`: the store orders records by
//! (`date_added`, sequence) and a `next` token seals the sequence number of the last record
//! served, so objects sharing one `date_added` are neither skipped nor repeated. Tokens are bound
//! to the caller, collection, endpoint and filters ([`crate::token`]).
//!
//! Decisions where the specification leaves room:
//!
//! - Get an Object answers **404 when nothing matches** on a first page (no `next`): the object
//!   does not exist, is above the caller's clearance, or no version matches the filters (§5.7
//!   requires 404 when fetching a deleted object/version). Get Object Versions answers 404 only
//!   when the object has no version the caller may see; filters (`match[spec_version]`,
//!   `added_after`) that leave none of its versions give an empty versions resource. A
//!   continuation page that comes back empty is an empty resource, since `more` may be true when
//!   objects were deleted in between (§3.5).
//! - Get an Object takes `match[version]` and `match[spec_version]` (§5.6); `match[id]` and
//!   `match[type]` are ignored there. Versions takes `match[spec_version]` only.
//! - A response without records still carries `X-TAXII-Date-Added-First/Last` (§3.2 says every
//!   200 does): both are the request's `added_after`, or the earliest timestamp without one, so
//!   that paging by `added_after` neither skips nor restarts.
//! - Delete without `match[version]` deletes every version of the object. A delete that would
//!   touch a version above the caller's clearance is refused (403) unless no matching version is
//!   visible at all (404): a writer can neither delete nor learn of what it may not read. The
//!   check and the delete are one store transaction
//!   ([`kizuna_store::Store::delete_object_if_cleared`]).
//! - With `audit_reads`, every object version served by Get Objects and Get an Object is
//!   recorded in the audit log: one event per response listing the versions it served, with the
//!   account, collection, time and endpoint. The events are queued for the [`AuditWriter`], which commits them
//!   in batches off the request path; a full queue makes the read wait, and a failing audit log
//!   fails the read (see [`crate::audit`] for what a kill of the process can lose). Manifests and
//!   version lists serve no object content and are not audited one by one.
//! - An account with an **egress policy** ([`ServiceConfig::egress`]: a partner's reading account)
//!   gets, through objects, object, versions and manifest alike, only the versions the policy lets
//!   out, with its redaction applied: the same [`EgressPolicy`] push obeys, asked with the
//!   collection's id and alias. The store still filters by clearance first; the policy then
//!   decides each record (parsed only for such accounts). Pages may be shorter than `limit`; the
//!   `next` cursor is the last record read, served or withheld, so paging neither repeats nor
//!   skips. A page whose records were all withheld (after up to 10,000 records read) is empty
//!   with `more: true`, and its date-added headers carry the last `date_added` read, so that
//!   clients paging by `added_after` move on. A withheld object is otherwise indistinguishable
//!   from a missing one (404 on object and versions). Only what is served is audited.
//! - What objects and object serve a partner's account is appended to the egress ledger, on the
//!   same blocking thread that read the page and before the response is built; when that fails
//!   the request answers 503 and serves nothing ([`crate::egress`]). Manifests and version lists
//!   are not ledgered: they serve ids, versions and dates, not objects.
//!
//! [`AuditWriter`]: crate::audit::AuditWriter
//! [`ServiceConfig::egress`]: crate::state::ServiceConfig::egress

use std::borrow::Cow;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use http::StatusCode;
use kizuna_policy::EgressPolicy;
use kizuna_stix::{StixId, Timestamp};
use kizuna_store::{
    AuditAction, ClearedDelete, Collection, EnvelopeRow, ObjectQuery, ObjectRecord, ServedEvent,
    ServedList, Snapshot, VersionFilter,
};
use serde::Serialize;
use serde_json::Value;

use super::{
    Caller, Need, Who, audit_event, blocking, date_added_headers, date_added_span_headers, read_as,
    read_inline_as, taxii_response,
};
use crate::egress::Served;
use crate::error::ApiError;
use crate::query::{Endpoint, Filters};
use crate::state::AppState;
use crate::token::TokenScope;

/// One paged read: where, what, and for whom.
#[derive(Debug, Clone)]
pub(crate) struct PageRequest {
    pub api_root: String,
    pub collection: String,
    pub object_id: Option<String>,
    pub endpoint: Endpoint,
    pub filters: Filters,
}

impl PageRequest {
    /// The request for `endpoint` from its path parameters and query string: 400 for an object
    /// id that is not a STIX identifier or for filters the endpoint does not take.
    pub fn new(
        endpoint: Endpoint,
        api_root: String,
        collection: String,
        object_id: Option<String>,
        query: Option<&str>,
    ) -> Result<Self, ApiError> {
        if let Some(id) = &object_id {
            check_object_id(id)?;
        }
        Ok(Self {
            api_root,
            collection,
            object_id,
            endpoint,
            filters: Filters::parse(query, endpoint)?,
        })
    }

    /// Whether the endpoint serves object content, so that each record served is audited.
    fn serves_objects(&self) -> bool {
        matches!(self.endpoint, Endpoint::Objects | Endpoint::Object)
    }
}

/// A page read from the store.
#[derive(Debug)]
pub(crate) struct Page {
    pub records: Vec<ObjectRecord>,
    pub more: bool,
    pub next: Option<String>,
    /// What the date-added headers say when there are no records.
    pub empty_mark: Timestamp,
}

fn endpoint_label(endpoint: Endpoint, object_id: Option<&str>) -> String {
    let name = match endpoint {
        Endpoint::Objects => "objects",
        Endpoint::Manifest => "manifest",
        Endpoint::Object => "object",
        Endpoint::Versions => "versions",
        Endpoint::Delete => "delete",
    };
    match object_id {
        Some(id) => format!("{name}:{id}"),
        None => name.to_owned(),
    }
}

/// Checks an `{object-id}` path parameter: 400 unless it is a STIX identifier.
pub(crate) fn check_object_id(id: &str) -> Result<(), ApiError> {
    StixId::parse(id)
        .map(|_| ())
        .map_err(|e| ApiError::bad_request(format!("the object id in the URL is not valid: {e}")))
}

/// What every page read starts with: the collection (looked up, read permission checked), the
/// endpoint's label, the canonical filters, and the store query (the `next` token opened).
struct Prepared {
    collection: Collection,
    label: String,
    filters_text: String,
    query: ObjectQuery,
}

impl Prepared {
    fn new(
        state: &AppState,
        snapshot: &dyn Snapshot,
        caller: &Caller,
        request: &PageRequest,
    ) -> Result<Self, ApiError> {
        let collection = super::collection_in(
            snapshot,
            caller,
            &request.api_root,
            &request.collection,
            Need::Read,
        )?;
        let filters_text = request.filters.canonical();
        let label = endpoint_label(request.endpoint, request.object_id.as_deref());
        let mut prepared = Self {
            collection,
            label,
            filters_text,
            query: ObjectQuery::default(),
        };
        let after_seq = match &request.filters.next {
            Some(token) => Some(state.tokens.open(&prepared.scope(caller), token)?),
            None => None,
        };
        let limit = request.filters.page_size(&state.config);
        prepared.query = request.filters.object_query(
            caller.0.account.tlp_clearance,
            state.config.unmarked_as,
            after_seq,
            limit,
        );
        if let Some(id) = &request.object_id {
            prepared.query.ids = vec![id.clone()];
        }
        Ok(prepared)
    }

    /// What `next` tokens of this read are bound to.
    fn scope<'a>(&'a self, caller: &'a Caller) -> TokenScope<'a> {
        TokenScope {
            account: caller.name(),
            api_root: &self.collection.api_root,
            collection: &self.collection.id,
            endpoint: &self.label,
            filters: &self.filters_text,
        }
    }

    /// Queues the audit event of the versions served (with `audit_reads`).
    fn audit(
        self,
        state: &AppState,
        caller: &Caller,
        versions: ServedList,
    ) -> Result<(), ApiError> {
        if !state.config.audit_reads || versions.is_empty() {
            return Ok(());
        }
        let event = ServedEvent {
            time: Timestamp::now(),
            account: Some(caller.name().to_owned()),
            collection: Some(self.collection.id),
            endpoint: Some(self.label),
            versions,
        };
        state
            .audit
            .record(event)
            .map_err(|e| ApiError::internal(&e))
    }
}

/// Bytes kept free at the front of an envelope's buffer for its head (`{"more":…,"next":"…",
/// "objects":`), which is known only once the page has been read: the objects are written
/// after it and the head in front of them, so the body is never copied. A head that does not
/// fit (it always does: tokens are under 64 bytes) costs one copy.
const ENVELOPE_HEAD_ROOM: usize = 128;

/// An envelope (§3.7) for Get Objects or Get an Object, written straight from the store's rows.
pub(crate) struct EnvelopePage {
    body: Bytes,
    /// `date_added` of the first and last object, when there are objects.
    span: Option<(Timestamp, Timestamp)>,
    empty_mark: Timestamp,
}

impl EnvelopePage {
    fn is_empty(&self) -> bool {
        self.span.is_none()
    }

    fn into_response(self) -> Response {
        let mut response = taxii_response(StatusCode::OK, self.body);
        date_added_span_headers(&mut response, self.span, self.empty_mark);
        response
    }
}

/// Serves Get Objects or Get an Object (`request`) to `caller`: with an egress policy through
/// [`load_page`] and [`envelope`]; without one (the common case) each row is written into the
/// envelope and the audit list as the store reads it, with no record copied in between.
/// Blocking.
pub(crate) fn serve_envelope(
    state: &AppState,
    snapshot: &dyn Snapshot,
    caller: &Caller,
    request: &PageRequest,
) -> Result<EnvelopePage, ApiError> {
    if state.config.egress.get(caller.name()).is_some() {
        let (_, page) = load_page(state, snapshot, caller, request)?;
        let span = page
            .records
            .first()
            .zip(page.records.last())
            .map(|(f, l)| (f.date_added, l.date_added));
        return Ok(EnvelopePage {
            body: Bytes::from(envelope(&page)),
            span,
            empty_mark: page.empty_mark,
        });
    }
    let prepared = Prepared::new(state, snapshot, caller, request)?;
    let query = &prepared.query;
    let audit = state.config.audit_reads;
    let mut versions = ServedList::default();
    let mut out = Vec::with_capacity(ENVELOPE_HEAD_ROOM + query.limit.min(1000) * 512);
    out.resize(ENVELOPE_HEAD_ROOM, b' ');
    let mut span: Option<(Timestamp, Timestamp)> = None;
    let mut last_seq = None;
    let mut count = 0u64;
    let mut write = |row: EnvelopeRow<'_>| {
        out.push(if count == 0 { b'[' } else { b',' });
        out.extend_from_slice(row.json);
        if audit {
            versions.push(row.seq);
        }
        span = Some((
            span.map_or(row.date_added, |(first, _)| first),
            row.date_added,
        ));
        last_seq = Some(row.seq);
        count += 1;
    };
    let collection = prepared.collection.as_ref();
    // The audit list names each version by its row's seq: the store reads only the envelope's
    // columns either way.
    let more = snapshot.each_envelope_row(&collection, query, &mut |row| {
        write(row);
        Ok(())
    })?;
    if count > 0 {
        out.push(b']');
    }
    out.push(b'}');
    state.metrics.objects_served(count);
    let next = match (more, last_seq) {
        (true, Some(seq)) => Some(state.tokens.seal(&prepared.scope(caller), seq)),
        _ => None,
    };
    let mut head = Vec::with_capacity(ENVELOPE_HEAD_ROOM);
    head.extend_from_slice(if more {
        b"{\"more\":true"
    } else {
        b"{\"more\":false"
    });
    if let Some(next) = &next {
        // Tokens are base64url: nothing to escape.
        head.extend_from_slice(b",\"next\":\"");
        head.extend_from_slice(next.as_bytes());
        head.push(b'"');
    }
    if count > 0 {
        head.extend_from_slice(b",\"objects\":");
    }
    let body = match ENVELOPE_HEAD_ROOM.checked_sub(head.len()) {
        Some(start) => {
            out[start..ENVELOPE_HEAD_ROOM].copy_from_slice(&head);
            Bytes::from(out).slice(start..)
        }
        None => {
            head.extend_from_slice(&out[ENVELOPE_HEAD_ROOM..]);
            Bytes::from(head)
        }
    };
    prepared.audit(state, caller, versions)?;
    Ok(EnvelopePage {
        body,
        span,
        empty_mark: request.filters.added_after.unwrap_or(Timestamp::MIN),
    })
}

/// Reads one page for the caller in `snapshot`: collection lookup and read permission, `next`
/// token, store query with the caller's clearance, egress policy and ledger, audit event queued.
/// Blocking (also while the audit queue is full).
pub(crate) fn load_page(
    state: &AppState,
    snapshot: &dyn Snapshot,
    caller: &Caller,
    request: &PageRequest,
) -> Result<(Collection, Page), ApiError> {
    let prepared = Prepared::new(state, snapshot, caller, request)?;
    let egress = state.config.egress.get(caller.name());
    let page = read_visible(
        snapshot,
        &prepared.collection,
        egress.as_deref().map(|e| &e.policy),
        &prepared.query,
    )?;
    if page.withheld > 0 {
        tracing::debug!(
            account = caller.name(),
            withheld = page.withheld,
            "egress policy withheld object versions"
        );
    }
    if let Some(egress) = egress.as_deref()
        && request.serves_objects()
    {
        let served: Vec<Served<'_>> = page
            .records
            .iter()
            .zip(&page.markings)
            .map(|(r, marking)| Served {
                object_id: &r.id,
                version: r.version,
                marking,
                bytes: &r.json,
            })
            .collect();
        crate::egress::record(state.config.ledger.as_ref(), egress, &served)?;
    }
    if request.serves_objects() {
        state.metrics.objects_served(page.records.len() as u64);
    }
    // The cursor is the last record the store returned, served or withheld.
    let next = match (page.more, page.last) {
        (true, Some((seq, _))) => Some(state.tokens.seal(&prepared.scope(caller), seq)),
        _ => None,
    };
    let collection = prepared.collection.clone();
    if request.serves_objects() && state.config.audit_reads {
        let mut versions = ServedList::default();
        for r in &page.records {
            versions.push(r.seq);
        }
        prepared.audit(state, caller, versions)?;
    }
    // A page whose records were all withheld marks the last one read, so that a client paging by
    // `added_after` moves past them instead of asking for them again.
    let empty_mark = page.last.map_or_else(
        || request.filters.added_after.unwrap_or(Timestamp::MIN),
        |(_, date_added)| date_added,
    );
    Ok((
        collection,
        Page {
            records: page.records,
            more: page.more,
            next,
            empty_mark,
        },
    ))
}

/// Records read for one page, after the caller's egress policy.
struct Visible {
    /// What may be served, in paging order, as the policy lets it out (redacted or not).
    records: Vec<ObjectRecord>,
    /// Under a policy, the marking of each record as the ledger records it; empty without one.
    markings: Vec<String>,
    /// Whether the store holds more matching records after `last`.
    more: bool,
    /// Sequence and `date_added` of the last record the store returned, served or withheld: where
    /// the next page starts.
    last: Option<(i64, Timestamp)>,
    /// How many records the policy withheld.
    withheld: usize,
}

/// Most records read from the store for one page under an egress policy while every one of them is
/// withheld: bounds the work of a single request. Past it, the page is answered empty, with
/// `more` and `next`.
const MAX_WITHHELD_SCAN: usize = 10_000;

/// Reads `query` from the store and keeps what `policy` (the caller's egress policy, if it has
/// one) lets out, with the policy's redaction applied. Without a policy the store's page is the
/// answer as it is and nothing is parsed. With one, each record is parsed and decided; when a
/// whole store page is withheld and the store has more, the following page is read too (up to
/// [`MAX_WITHHELD_SCAN`] records), so that a partner seldom gets an empty page. Pages may be
/// shorter than `limit`, which TAXII allows (§3.5). Blocking.
fn read_visible(
    snapshot: &dyn Snapshot,
    collection: &Collection,
    policy: Option<&EgressPolicy>,
    query: &ObjectQuery,
) -> Result<Visible, ApiError> {
    let cref = collection.as_ref();
    let Some(policy) = policy else {
        let page = snapshot.objects(&cref, query)?;
        let last = page.records.last().map(|r| (r.seq, r.date_added));
        return Ok(Visible {
            records: page.records,
            markings: Vec::new(),
            more: page.more,
            last,
            withheld: 0,
        });
    };
    let names: Vec<&str> = std::iter::once(collection.id.as_str())
        .chain(collection.alias.as_deref())
        .collect();
    let mut query = query.clone();
    let mut read = 0;
    let mut withheld = 0;
    loop {
        let page = snapshot.objects(&cref, &query)?;
        read += page.records.len();
        let last = page.records.last().map(|r| (r.seq, r.date_added));
        let mut records = Vec::with_capacity(page.records.len());
        let mut markings = Vec::with_capacity(page.records.len());
        for mut record in page.records {
            match let_out(policy, &names, &mut record) {
                Some(marking) => {
                    records.push(record);
                    markings.push(marking);
                }
                None => withheld += 1,
            }
        }
        match last {
            Some((seq, _)) if records.is_empty() && page.more && read < MAX_WITHHELD_SCAN => {
                query.after_seq = Some(seq);
            }
            _ => {
                return Ok(Visible {
                    records,
                    markings,
                    more: page.more,
                    last,
                    withheld,
                });
            }
        }
    }
}

/// Whether `policy` lets `record` out of `collection` (named by `names`: its id and alias): when
/// it does, its marking as the ledger records it, and `record.json` becomes the bytes to serve
/// (the stored bytes unless a redaction rewrote the object). A stored record that does not parse
/// is withheld: the policy fails closed.
fn let_out(policy: &EgressPolicy, names: &[&str], record: &mut ObjectRecord) -> Option<String> {
    let object = serde_json::from_str::<Value>(&record.json).ok()?;
    let decision = policy.explain(&object, names);
    if !decision.allowed {
        return None;
    }
    let redacted = match policy.egress_bytes(&record.json, &object) {
        Cow::Owned(bytes) => Some(bytes),
        Cow::Borrowed(_) => None,
    };
    if let Some(bytes) = redacted {
        record.json = bytes;
    }
    Some(decision.marking_label())
}

/// Builds an envelope (§3.7) by concatenating the stored JSON of each record: objects are never
/// re-serialised.
pub(crate) fn envelope(page: &Page) -> Vec<u8> {
    let objects_len: usize = page.records.iter().map(|r| r.json.len() + 1).sum();
    let mut out = Vec::with_capacity(objects_len + 80);
    out.extend_from_slice(if page.more {
        b"{\"more\":true"
    } else {
        b"{\"more\":false"
    });
    if let Some(next) = &page.next {
        // Tokens are base64url: nothing to escape.
        out.extend_from_slice(b",\"next\":\"");
        out.extend_from_slice(next.as_bytes());
        out.push(b'"');
    }
    if !page.records.is_empty() {
        out.extend_from_slice(b",\"objects\":[");
        for (i, record) in page.records.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(record.json.as_bytes());
        }
        out.push(b']');
    }
    out.push(b'}');
    out
}

/// A page answered as a TAXII resource, with its date-added headers.
pub(crate) fn page_response<T: Serialize>(resource: &T, page: &Page) -> Response {
    let mut response = super::json_response(StatusCode::OK, resource);
    date_added_headers(&mut response, &page.records, page.empty_mark);
    response
}

/// `GET /{api-root}/collections/{id}/objects/`.
pub async fn get_objects(
    State(state): State<AppState>,
    who: Who,
    Path((api_root, collection)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let request = PageRequest::new(
        Endpoint::Objects,
        api_root,
        collection,
        None,
        raw.as_deref(),
    )?;
    let shared = state.clone();
    let page = read_inline_as(state, who, move |snapshot, caller| {
        serve_envelope(&shared, snapshot, caller, &request)
    })
    .await?;
    Ok(page.into_response())
}

/// `GET /{api-root}/collections/{id}/objects/{object-id}/`.
pub async fn get_object(
    State(state): State<AppState>,
    who: Who,
    Path((api_root, collection, object_id)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let request = PageRequest::new(
        Endpoint::Object,
        api_root,
        collection,
        Some(object_id),
        raw.as_deref(),
    )?;
    let first_page = request.filters.next.is_none();
    let shared = state.clone();
    let page = read_inline_as(state, who, move |snapshot, caller| {
        serve_envelope(&shared, snapshot, caller, &request)
    })
    .await?;
    if first_page && page.is_empty() {
        return Err(ApiError::not_found(
            "no version of this object matches in this collection",
        ));
    }
    Ok(page.into_response())
}

/// The versions resource (§5.8.1). `next` is not in §5.8.1, but is added (as for the manifest
/// and as medallion does) so that clients such as taxii2-client's `as_pages` can page without
/// skipping versions that share a `date_added`.
#[derive(Debug, Serialize)]
struct VersionsResource {
    more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    versions: Vec<String>,
}

/// `GET /{api-root}/collections/{id}/objects/{object-id}/versions/`.
pub async fn get_versions(
    State(state): State<AppState>,
    who: Who,
    Path((api_root, collection, object_id)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let request = PageRequest::new(
        Endpoint::Versions,
        api_root,
        collection,
        Some(object_id),
        raw.as_deref(),
    )?;
    let page = blocking(move || {
        read_as(&state, &who, |snapshot, caller| {
            versions_page(&state, snapshot, caller, &request)
        })
    })
    .await?;
    let resource = VersionsResource {
        more: page.more,
        next: page.next.clone(),
        versions: page.records.iter().map(|r| r.version.to_string()).collect(),
    };
    Ok(page_response(&resource, &page))
}

/// The page of versions, or 404 when the object has no version the caller may see.
fn versions_page(
    state: &AppState,
    snapshot: &dyn Snapshot,
    caller: &Caller,
    request: &PageRequest,
) -> Result<Page, ApiError> {
    let (collection, page) = load_page(state, snapshot, caller, request)?;
    if page.records.is_empty() && request.filters.next.is_none() {
        // Filters that leave no version of an existing object give an empty list; 404 is for
        // an object that is not there (or not visible to the caller: above its clearance, or
        // withheld in every version by its egress policy).
        let egress = state.config.egress.get(caller.name());
        let policy = egress.as_deref().map(|e| &e.policy);
        let mut any = Filters::default().object_query(
            caller.0.account.tlp_clearance,
            state.config.unmarked_as,
            None,
            if policy.is_some() {
                state.config.max_page_size
            } else {
                1
            },
        );
        any.ids = request.object_id.iter().cloned().collect();
        any.versions = VersionFilter::All;
        if read_visible(snapshot, &collection, policy, &any)?
            .records
            .is_empty()
        {
            return Err(ApiError::not_found("no such object in this collection"));
        }
    }
    Ok(page)
}

/// `DELETE /{api-root}/collections/{id}/objects/{object-id}/`: 200 with an empty body when
/// versions were deleted, 404 when none matched.
pub async fn delete_object(
    State(state): State<AppState>,
    caller: Caller,
    Path((api_root, collection, object_id)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    check_object_id(&object_id)?;
    let filters = Filters::parse(raw.as_deref(), Endpoint::Delete)?;
    let deleted = blocking(move || {
        let collection =
            super::collection(&state, &caller, &api_root, &collection, Need::ReadWrite)?;
        // The caller must be cleared for every matching version; the store checks that and
        // deletes in one transaction, so a version added in between cannot slip past the check.
        let query = filters.object_query(
            caller.0.account.tlp_clearance,
            state.config.unmarked_as,
            None,
            0,
        );
        let deleted =
            match state
                .store
                .delete_object_if_cleared(&collection.as_ref(), &object_id, &query)?
            {
                ClearedDelete::Deleted(n) => n,
                ClearedDelete::NoneVisible => {
                    return Err(ApiError::not_found(
                        "no version of this object matches in this collection",
                    ));
                }
                ClearedDelete::AboveClearance => {
                    return Err(ApiError::forbidden(
                        "some matching versions are above this account's TLP clearance",
                    ));
                }
            };
        let mut event = audit_event(
            &caller,
            Timestamp::now(),
            AuditAction::Delete,
            &collection.id,
            &object_id,
            None,
        );
        event.detail = Some(format!("{deleted} version(s) deleted"));
        state.store.audit(&[event])?;
        Ok(deleted)
    })
    .await?;
    tracing::debug!(deleted, "object versions deleted");
    Ok(taxii_response(StatusCode::OK, Vec::new()))
}
