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

/// The (object id, version) pairs one response served, kept as the text the audit log stores:
/// one `ID VERSION` line per version. Built while the page is written, it is stored as it is: the
/// audit writer neither copies nor re-checks it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServedList {
    text: String,
    len: usize,
}

impl ServedList {
    /// An empty list with room for `bytes` of text (about 60 per version).
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            text: String::with_capacity(bytes),
            len: 0,
        }
    }

    /// Appends one version served. An id that is empty or holds a space or a line break is
    /// refused ([`StoreError::Invalid`]): its line could not be read back unambiguously (STIX
    /// identifiers hold neither).
    pub fn push(&mut self, id: &str, version: Timestamp) -> Result<(), StoreError> {
        if id.is_empty() || id.bytes().any(|b| b == b' ' || b == b'\n') {
            return Err(StoreError::Invalid(format!(
                "audit of a read: object id {id:?}"
            )));
        }
        if self.len > 0 {
            self.text.push('\n');
        }
        self.text.push_str(id);
        self.text.push(' ');
        version.push_to(&mut self.text);
        self.len += 1;
        Ok(())
    }

    /// How many versions are listed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no version is listed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The list as the audit log stores it: one `ID VERSION` line per version.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Each (object id, version) listed, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.text
            .split('\n')
            .filter(|_| self.len > 0)
            .filter_map(|line| line.split_once(' '))
    }
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
