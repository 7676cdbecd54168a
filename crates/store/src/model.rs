//! The records the store keeps and the queries it answers.

use kizuna_stix::{ObjectMeta, Timestamp, Tlp};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// Names no API root may take: the paths the TAXII server answers itself at the top level
/// (discovery at `/taxii2/`, `/healthz`, `/metrics`), which would shadow an API root of that
/// name. Compared without regard to case, so that no root differs from them by case alone.
pub const RESERVED_API_ROOT_NAMES: &[&str] = &["taxii2", "healthz", "metrics"];

/// A TAXII API root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiRoot {
    /// The URL path segment (`/{name}/`); `[A-Za-z0-9._~-]+`, not `.` or `..`, and none of
    /// [`RESERVED_API_ROOT_NAMES`].
    pub name: String,
    /// Human-readable title.
    pub title: String,
    /// Optional description.
    pub description: Option<String>,
    /// Largest request body accepted, in bytes (`max_content_length`).
    pub max_content_length: u64,
}

/// A TAXII collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collection {
    /// The API root it belongs to.
    pub api_root: String,
    /// The collection id (a UUID, as TAXII requires).
    pub id: String,
    /// Human-readable title.
    pub title: String,
    /// Optional description.
    pub description: Option<String>,
    /// Optional alias, unique within the API root, usable in URLs instead of the id.
    pub alias: Option<String>,
    /// Media types of the objects it holds (`application/stix+json;version=2.1`).
    pub media_types: Vec<String>,
}

impl Collection {
    /// The handle used to address this collection's objects.
    pub fn as_ref(&self) -> CollectionRef {
        CollectionRef {
            api_root: self.api_root.clone(),
            id: self.id.clone(),
        }
    }
}

/// Addresses one collection's objects: API root name and collection id (not alias).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CollectionRef {
    /// API root name.
    pub api_root: String,
    /// Collection id.
    pub id: String,
}

/// One object version to add: its indexing properties and its exact JSON text.
#[derive(Debug, Clone)]
pub struct NewObject {
    /// Indexing properties, extracted from `json` by the caller.
    pub meta: ObjectMeta,
    /// The object as received; stored and served byte for byte.
    pub json: String,
}

/// What happened to one object of an [`Store::add_objects`](crate::Store::add_objects) call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    /// Stored as a new version.
    Added,
    /// The same id, version and bytes were already stored: nothing to do, not an error.
    Duplicate,
    /// Not stored, with the reason.
    Rejected(String),
}

/// Result of one [`Store::add_objects`](crate::Store::add_objects) call.
#[derive(Debug, Clone)]
pub struct AddReport {
    /// The `date_added` given to the objects added by this call.
    pub date_added: Timestamp,
    /// One outcome per input object, in input order.
    pub outcomes: Vec<AddOutcome>,
}

/// Which versions of each object a query returns (`match[version]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum VersionFilter {
    /// The newest version of each object (TAXII's default).
    #[default]
    Last,
    /// The oldest version of each object.
    First,
    /// Every version.
    All,
    /// Versions equal to any of these timestamps; may be combined with `first`/`last`.
    Set {
        /// Include the newest version.
        last: bool,
        /// Include the oldest version.
        first: bool,
        /// Include versions at exactly these instants.
        at: Vec<Timestamp>,
    },
}

/// A query over one collection's object versions.
///
/// The [`Default`] query reads the newest versions from the start, with a `limit` of 0, the lowest
/// `clearance` (CLEAR) and unmarked objects treated as RED: a caller that forgets to set the
/// marking fields sees too little, never too much.
#[derive(Debug, Clone)]
pub struct ObjectQuery {
    /// Only versions added strictly after this instant (`added_after`).
    pub added_after: Option<Timestamp>,
    /// Resume after this sequence position (from a `next` token).
    pub after_seq: Option<i64>,
    /// Page size; the caller has already applied its own maximum.
    pub limit: usize,
    /// `match[id]`: any of these ids (empty = any).
    pub ids: Vec<String>,
    /// `match[type]`: any of these types (empty = any).
    pub types: Vec<String>,
    /// `match[version]`.
    pub versions: VersionFilter,
    /// `match[spec_version]`: any of these; empty means any. A plain filter on the column: with
    /// none given the store does not narrow each object to its newest spec_version (TAXII's
    /// default), which differs only for objects stored in more than one spec_version.
    pub spec_versions: Vec<String>,
    /// Highest TLP level the reader may see; objects above it are never returned. Unmarked
    /// objects are treated as `unmarked_as`.
    pub clearance: Tlp,
    /// The level unmarked objects are treated as for `clearance`.
    pub unmarked_as: Tlp,
}

impl Default for ObjectQuery {
    fn default() -> Self {
        Self {
            added_after: None,
            after_seq: None,
            limit: 0,
            ids: Vec::new(),
            types: Vec::new(),
            versions: VersionFilter::default(),
            spec_versions: Vec::new(),
            clearance: Tlp::Clear,
            unmarked_as: Tlp::Red,
        }
    }
}

/// What [`Store::delete_object_if_cleared`](crate::Store::delete_object_if_cleared) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClearedDelete {
    /// No matching version is within the clearance (there may be matching versions above it,
    /// which the caller must not learn of): nothing was deleted.
    NoneVisible,
    /// Some matching versions are within the clearance and some above it: nothing was deleted.
    AboveClearance,
    /// Every matching version was within the clearance; this many were deleted (at least one).
    Deleted(u64),
}

/// One object version deleted from a collection, as the deletion log remembers it
/// ([`Store::deletions`](crate::Store::deletions)): so that federation can tell the partners the
/// version was pushed to, in the order the deletions happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionRecord {
    /// Position in the collection's deletion log: strictly increasing in commit order, never
    /// reused (its own sequence, not the objects' one).
    pub seq: i64,
    /// Object id.
    pub id: String,
    /// The version deleted, printed as it was stored.
    pub version: Timestamp,
    /// Whether the object carried its own version (`modified` or `created`). When false (an SCO)
    /// `version` was only the local `date_added`, which means nothing at another hub.
    pub versioned: bool,
    /// When it was deleted.
    pub time: Timestamp,
}

/// A page of the deletion log.
#[derive(Debug, Clone, Default)]
pub struct DeletionPage {
    /// The records, in log order.
    pub records: Vec<DeletionRecord>,
    /// Whether more records follow the last one.
    pub more: bool,
}

/// One stored object version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRecord {
    /// Position in the collection's sequence (paging order).
    pub seq: i64,
    /// Object id.
    pub id: String,
    /// Object type.
    pub object_type: String,
    /// The version (`modified`, else `created`, else `date_added`).
    pub version: Timestamp,
    /// `spec_version`.
    pub spec_version: String,
    /// When this version was added to the collection (microsecond precision).
    pub date_added: Timestamp,
    /// Effective TLP level, if marked.
    pub tlp: Option<Tlp>,
    /// The object's JSON, exactly as received.
    pub json: String,
}

/// One stored object version as the store reads it, borrowed from the database row: what
/// [`Snapshot::each_object`](crate::Snapshot::each_object) hands its sink, so that a page can be
/// written out (an envelope, an audit list) without an [`ObjectRecord`] of four `String`s per
/// object.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'r> {
    /// Position in the collection's sequence (paging order).
    pub seq: i64,
    /// Object id.
    pub id: &'r str,
    /// Object type.
    pub object_type: &'r str,
    /// The version (`modified`, else `created`, else `date_added`).
    pub version: Timestamp,
    /// `spec_version`.
    pub spec_version: &'r str,
    /// When this version was added to the collection (microsecond precision).
    pub date_added: Timestamp,
    /// Effective TLP level, if marked.
    pub tlp: Option<Tlp>,
    /// The object's JSON, exactly as received (UTF-8, not checked again here: it was when
    /// stored, and [`RecordRef::to_record`] checks it).
    pub json: &'r [u8],
}

impl RecordRef<'_> {
    /// The same record, owned; [`StoreError::Corrupt`] if its JSON is not UTF-8.
    pub fn to_record(&self) -> Result<ObjectRecord, StoreError> {
        let json = std::str::from_utf8(self.json)
            .map_err(|e| StoreError::Corrupt(format!("object {}: {e}", self.id)))?;
        Ok(ObjectRecord {
            seq: self.seq,
            id: self.id.to_owned(),
            object_type: self.object_type.to_owned(),
            version: self.version,
            spec_version: self.spec_version.to_owned(),
            date_added: self.date_added,
            tlp: self.tlp,
            json: json.to_owned(),
        })
    }
}

/// What a TAXII envelope needs of one stored object version, borrowed from the database row: what
/// [`Snapshot::each_envelope_row`](crate::Snapshot::each_envelope_row) hands its sink.
///
/// The page query behind it selects only these three columns: through [`RecordRef`] a page read
/// (and UTF-8 checked) six more per row that the envelope never used. Serving pages of 100
/// objects without the read audit, the narrow rows took the server from 122–124 to 90–97 µs of
/// CPU per page (same page) and from 134–158 to 108–117 µs (walking), in an A/B sitting that also
/// had the one-statement account lookup (bench/taxii/README.md).
#[derive(Debug, Clone, Copy)]
pub struct EnvelopeRow<'r> {
    /// Position in the collection's sequence (paging order).
    pub seq: i64,
    /// When this version was added to the collection (microsecond precision).
    pub date_added: Timestamp,
    /// The object's JSON, exactly as received (UTF-8, checked when it was stored).
    pub json: &'r [u8],
}

/// A page of results.
#[derive(Debug, Clone, Default)]
pub struct ObjectPage {
    /// The records, in paging order.
    pub records: Vec<ObjectRecord>,
    /// Whether more records match after the last one.
    pub more: bool,
}

/// Processing state of a status resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusState {
    /// Still being processed.
    Pending,
    /// Done.
    Complete,
}

/// Per-object detail of a status resource (TAXII 2.1 §4.3.1 `status-details`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusDetail {
    /// Object id (or the best identification available for objects without a usable id).
    pub id: String,
    /// Object version.
    pub version: String,
    /// Why it failed (failures only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A TAXII status resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// API root the request was made to.
    pub api_root: String,
    /// Status id (UUID).
    pub id: String,
    /// Overall state.
    pub status: StatusState,
    /// When the request was received.
    pub request_timestamp: Timestamp,
    /// Objects in the request.
    pub total_count: u64,
    /// Objects stored (or already present).
    pub successes: Vec<StatusDetail>,
    /// Objects rejected.
    pub failures: Vec<StatusDetail>,
    /// Objects still pending.
    pub pendings: Vec<StatusDetail>,
}

/// A status resource still to be completed by the add it reports on
/// ([`Store::add_objects_audited_with_status`](crate::Store::add_objects_audited_with_status)):
/// what the caller knew before the add (the request, and the objects it refused itself), and,
/// for each object handed to the add, in the same order, the id and version the status names it
/// by. The add's outcomes then make each of those a success or a failure ([`StatusDraft::complete`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusDraft {
    /// API root the request was made to.
    pub api_root: String,
    /// Status id (UUID).
    pub id: String,
    /// When the request was received.
    pub request_timestamp: Timestamp,
    /// Objects in the request.
    pub total_count: u64,
    /// Objects refused before the add (invalid ones).
    pub failures: Vec<StatusDetail>,
    /// Id and version of each object handed to the add, in the add's order; an object without a
    /// version of its own is named by the add's `date_added`.
    pub submitted: Vec<(String, Option<String>)>,
}

impl StatusDraft {
    /// The complete status resource, given the report of the add of the
    /// [`submitted`](StatusDraft::submitted) objects: an object added or already present is a
    /// success (the latter with the message "already present"), a rejected one a failure after
    /// those the caller refused; an unversioned object's version is the add's `date_added` at
    /// microsecond precision.
    pub fn complete(&self, report: &AddReport) -> Status {
        let date_added = report.date_added.to_micros().to_string();
        let mut successes = Vec::with_capacity(self.submitted.len());
        let mut failures = self.failures.clone();
        for ((id, version), outcome) in self.submitted.iter().zip(&report.outcomes) {
            let id = id.clone();
            let version = version.clone().unwrap_or_else(|| date_added.clone());
            match outcome {
                AddOutcome::Added => successes.push(StatusDetail {
                    id,
                    version,
                    message: None,
                }),
                AddOutcome::Duplicate => successes.push(StatusDetail {
                    id,
                    version,
                    message: Some("already present".to_owned()),
                }),
                AddOutcome::Rejected(why) => failures.push(StatusDetail {
                    id,
                    version,
                    message: Some(why.clone()),
                }),
            }
        }
        Status {
            api_root: self.api_root.clone(),
            id: self.id.clone(),
            status: StatusState::Complete,
            request_timestamp: self.request_timestamp,
            total_count: self.total_count,
            successes,
            failures,
            pendings: Vec::new(),
        }
    }
}

/// Permission of an account on one collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    /// API root name.
    pub api_root: String,
    /// Collection id.
    pub collection: String,
    /// May read objects and manifests.
    pub read: bool,
    /// May add objects (and delete them).
    pub write: bool,
}

/// An account to create.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Unique name.
    pub name: String,
    /// Argon2 PHC string, if the account logs in with a password.
    pub password_hash: Option<String>,
    /// Highest TLP level this account may receive.
    pub tlp_clearance: Tlp,
    /// Administrators may read and write every collection and manage the hub.
    pub admin: bool,
}

/// An account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Unique name.
    pub name: String,
    /// Argon2 PHC string, if the account logs in with a password.
    #[serde(skip)]
    pub password_hash: Option<String>,
    /// Highest TLP level this account may receive.
    pub tlp_clearance: Tlp,
    /// Administrators may read and write every collection.
    pub admin: bool,
    /// Revoked accounts cannot authenticate.
    pub revoked: bool,
    /// When it was created.
    pub created: Timestamp,
    /// Per-collection permissions.
    pub permissions: Vec<Permission>,
    /// Number of API keys.
    pub api_keys: u32,
    /// Number of client certificates mapped to it.
    pub client_certs: u32,
}

impl Account {
    /// Whether the account may read the collection.
    pub fn can_read(&self, api_root: &str, collection: &str) -> bool {
        self.admin
            || self
                .permissions
                .iter()
                .any(|p| p.read && p.api_root == api_root && p.collection == collection)
    }

    /// Whether the account may write to the collection.
    pub fn can_write(&self, api_root: &str, collection: &str) -> bool {
        self.admin
            || self
                .permissions
                .iter()
                .any(|p| p.write && p.api_root == api_root && p.collection == collection)
    }
}

/// What an audit event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditAction {
    /// An object version was added.
    Write,
    /// Object versions were deleted.
    Delete,
    /// An object version was served to the account.
    Serve,
    /// Authentication failed.
    LoginFailed,
    /// An account, key or permission changed.
    Admin,
}

impl AuditAction {
    /// The name stored and queried.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Write => "write",
            AuditAction::Delete => "delete",
            AuditAction::Serve => "serve",
            AuditAction::LoginFailed => "login-failed",
            AuditAction::Admin => "admin",
        }
    }
}

/// An audit event to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// When it happened.
    pub time: Timestamp,
    /// Account name (for failed logins: the name that was tried, if any).
    pub account: Option<String>,
    /// What happened.
    pub action: AuditAction,
    /// Collection id, where relevant.
    pub collection: Option<String>,
    /// Object id, where relevant.
    pub object_id: Option<String>,
    /// Object version, where relevant.
    pub version: Option<String>,
    /// Free text: remote address, reason, count.
    pub detail: Option<String>,
}

/// One response that served object versions: a single audit event listing every version it
/// served, so that a page of 100 objects costs one row in the audit log, not 100. Reading the log
/// ([`Store::audit_events`](crate::Store::audit_events)) expands it into one
/// [`AuditAction::Serve`] record per version, as if each had been logged alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedEvent {
    /// When it was served.
    pub time: Timestamp,
    /// The account it was served to.
    pub account: Option<String>,
    /// Collection id.
    pub collection: Option<String>,
    /// The endpoint that served it (e.g. `objects`, `object:<id>`), kept as each record's detail.
    pub endpoint: Option<String>,
    /// Each version served, in the order served.
    pub versions: ServedList,
}

/// The stored object versions one response served (or one add wrote), by the `seq` of their
/// rows ([`ObjectRecord::seq`]), in the order served.
///
/// A row's `seq` names one version of one object in one collection for good: seqs are never
/// reused, a row's object id and version never change, and a deleted row's id and version stay
/// in the store's deletion log under its seq. So the log can store the seqs and name the
/// (object id, version) pairs when it is read, not when it is written. A page of 100 versions is
/// then a few bytes instead of ~7 KB of `ID VERSION` text: with that text, writing the audit of
/// reads and copying it on through the database's log cost about a fifth of the CPU of serving a
/// page (bench/taxii/README.md).
///
/// Stored as runs of consecutive seqs ([`ServedList::to_bytes`]): a page read in seq order with
/// nothing skipped is one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServedList {
    /// (first seq, number of seqs) of each run of consecutive seqs, in order.
    runs: Vec<(i64, u64)>,
    len: usize,
}

/// First byte of [`ServedList::to_bytes`]: the format.
const SERVED_FORMAT: u8 = 1;

impl ServedList {
    /// Appends the seq of one version served.
    pub fn push(&mut self, seq: i64) {
        self.len += 1;
        if let Some((first, n)) = self.runs.last_mut()
            && first.checked_add_unsigned(*n) == Some(seq)
        {
            *n += 1;
            return;
        }
        self.runs.push((seq, 1));
    }

    /// How many versions are listed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no version is listed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Each seq listed, in order.
    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        self.runs
            .iter()
            .flat_map(|&(first, n)| (0..n).map(move |i| first.wrapping_add_unsigned(i)))
    }

    /// The list as the audit log stores it: a format byte (1), then per run of consecutive seqs
    /// two LEB128 varints, the distance of its first seq from the end of the run before (zigzag,
    /// the first run's from 0) and its length minus one.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.runs.len() * 4);
        out.push(SERVED_FORMAT);
        let mut next = 0i64;
        for &(first, n) in &self.runs {
            let delta = first.wrapping_sub(next);
            put_varint(&mut out, ((delta << 1) ^ (delta >> 63)) as u64);
            put_varint(&mut out, n - 1);
            next = first.wrapping_add_unsigned(n);
        }
        out
    }

    /// Reads what [`ServedList::to_bytes`] wrote; [`StoreError::Corrupt`] for anything else.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("served versions: {what}"));
        let (&format, mut rest) = bytes.split_first().ok_or_else(|| corrupt("empty list"))?;
        if format != SERVED_FORMAT {
            return Err(corrupt(&format!("unknown format {format}")));
        }
        let mut list = ServedList::default();
        let mut next = 0i64;
        while !rest.is_empty() {
            let zigzag = take_varint(&mut rest).ok_or_else(|| corrupt("truncated run"))?;
            let extra = take_varint(&mut rest).ok_or_else(|| corrupt("truncated run"))?;
            let delta = ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64);
            // Wrapping, as written: every i64 is a seq that can be listed.
            let first = next.wrapping_add(delta);
            let n = extra
                .checked_add(1)
                .filter(|_| first.checked_add_unsigned(extra).is_some())
                .ok_or_else(|| corrupt("run out of range"))?;
            let len = usize::try_from(n).map_err(|_| corrupt("run too long"))?;
            list.len = list
                .len
                .checked_add(len)
                .ok_or_else(|| corrupt("too many versions"))?;
            list.runs.push((first, n));
            next = first.wrapping_add_unsigned(n);
        }
        Ok(list)
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The next LEB128 varint of `bytes` (advanced past it); `None` if truncated or over 64 bits.
fn take_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        let part = u64::from(b & 0x7f);
        if i == 9 && part > 1 {
            return None;
        }
        v |= part << (7 * i);
        if b & 0x80 == 0 {
            *bytes = &bytes[i + 1..];
            return Some(v);
        }
    }
    None
}

/// A stored audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// Position in the log.
    pub seq: i64,
    /// When it happened.
    pub time: Timestamp,
    /// Account name.
    pub account: Option<String>,
    /// What happened.
    pub action: AuditAction,
    /// Collection id.
    pub collection: Option<String>,
    /// Object id.
    pub object_id: Option<String>,
    /// Object version.
    pub version: Option<String>,
    /// Free text.
    pub detail: Option<String>,
}

/// Filters for [`Store::audit_events`](crate::Store::audit_events).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only this account.
    pub account: Option<String>,
    /// Only this action.
    pub action: Option<AuditAction>,
    /// Only this object id.
    pub object_id: Option<String>,
    /// Only events at or after this instant.
    pub since: Option<Timestamp>,
    /// At most this many (newest are cut); 0 means no limit.
    pub limit: usize,
}
