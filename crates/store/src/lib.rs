//! Kizuna's object store: what the TAXII server, the importers and (later) the federation engine
//! read and write, behind one [`Store`] trait.
//!
//! # Design
//!
//! - **Objects are kept byte for byte.** Each object version is stored as the exact JSON text it
//!   arrived as, next to the few columns it is indexed by ([`kizuna_stix::ObjectMeta`]). Serving an
//!   object is copying bytes, never re-serialising.
//! - **Paging never skips or repeats.** Every object version added to a collection gets the next
//!   value of a sequence, in the same transaction that stores it; values are never reused, so
//!   within a collection the sequence is strictly increasing in commit order (it may have gaps).
//!   Pages are ranges of that sequence (`seq > cursor ORDER BY seq LIMIT n`) over an index, so a
//!   page from the middle of a million-object collection costs the same as the first, and objects
//!   that share one `date_added` are still strictly ordered. `date_added` is non-decreasing along
//!   the sequence, and each add call gets a later one than the call before it in that collection.
//! - **Filtering happens in the query**, TLP clearance included, so that a page is full and no
//!   object above an account's clearance is ever read into the server's memory for it.
//! - **Durability**: [`Store::add_objects`] returns only after its transaction has committed
//!   (SQLite WAL), so a client that got `202 Accepted` keeps its objects if the process is killed.
//! - **Synchronous API.** The trait is blocking on purpose: SQLite is, and the async server calls
//!   it from a blocking thread pool. A PostgreSQL backend implements the same trait and must pass the
//!   same conformance suite (`tests/conformance.rs`).
//!
//! The store never validates STIX beyond what it indexes (that is `kizuna-stix`'s job, done by the
//! callers before they add) and never decides who may see what: callers pass the account's
//! clearance and permissions have already been checked by the TAXII layer.

mod error;
mod model;
mod password;
mod sqlite;

pub use error::{Result, StoreError};
pub use model::*;
pub use password::{hash_password, sha256, verify_password};
pub use sqlite::{DB_FILE, Durability, READ_LOG_FILE, SqliteStore};

use kizuna_stix::Timestamp;

/// Everything Kizuna keeps. Implementations are shared between threads (`Send + Sync`) and each
/// call is atomic.
pub trait Store: Send + Sync {
    // ----- API roots and collections -----

    /// Creates an API root; fails with [`StoreError::Conflict`] when its name exists.
    fn create_api_root(&self, root: &ApiRoot) -> Result<()>;
    /// All API roots, in creation order.
    fn api_roots(&self) -> Result<Vec<ApiRoot>>;
    /// One API root by name (the URL path segment).
    fn api_root(&self, name: &str) -> Result<Option<ApiRoot>>;

    /// Creates a collection in an API root; fails with [`StoreError::Conflict`] when the id or the
    /// alias is taken, [`StoreError::NotFound`] when the API root does not exist.
    fn create_collection(&self, collection: &Collection) -> Result<()>;
    /// The collections of an API root, in creation order.
    fn collections(&self, api_root: &str) -> Result<Vec<Collection>>;
    /// One collection by id or alias.
    fn collection(&self, api_root: &str, id_or_alias: &str) -> Result<Option<Collection>>;

    // ----- objects -----

    /// Adds object versions to a collection in one transaction and returns one outcome per input,
    /// in input order. An exact duplicate (same id, version and bytes) succeeds without a new row;
    /// a different object with the same id and version is a failure. `date_added` is taken once
    /// for the whole call. Objects with neither `modified` nor `created` (SCOs) take that
    /// `date_added` as their version; for them, any stored version with the same bytes makes a
    /// duplicate.
    fn add_objects(&self, collection: &CollectionRef, objects: Vec<NewObject>)
    -> Result<AddReport>;

    /// [`Store::add_objects`], appending in the same transaction an [`AuditAction::Write`] event
    /// by `account` for each object version added (none for duplicates and rejections), so that
    /// no added object is ever without its audit event, even after a crash. The event's time is
    /// the call's `date_added`, its version the object's (or `date_added` for unversioned ones).
    /// The events of one call are stored as one entry of the log listing every version (one row,
    /// not one row and its index entries per object); [`Store::audit_events`] expands it, so
    /// they are read, and found by object id, as if each had been logged alone.
    fn add_objects_audited(
        &self,
        collection: &CollectionRef,
        objects: Vec<NewObject>,
        account: &str,
    ) -> Result<AddReport>;

    /// [`Store::add_objects_audited`], storing in the same transaction the status resource that
    /// reports on it: `status` completed with the add's outcomes ([`StatusDraft::complete`]),
    /// which is returned with the report. The status is readable as soon as this returns, and
    /// exists if and only if the add committed.
    ///
    /// Why one call rather than the add and then [`Store::put_status`]: on SQLite each is a write
    /// transaction queued for the one writer, and the status's own `BEGIN IMMEDIATE`/`COMMIT` cost
    /// more than its row (~3% and 1.3% of the server's CPU under the ingest benchmark); and the
    /// status of an add can no longer be missing after a crash that kept the objects. The
    /// end-to-end A/B could not resolve the CPU saving (bench/taxii/README.md).
    fn add_objects_audited_with_status(
        &self,
        collection: &CollectionRef,
        objects: Vec<NewObject>,
        account: &str,
        status: StatusDraft,
    ) -> Result<(AddReport, Status)>;

    /// A page of object versions matching `query`, in ascending (`date_added`, sequence) order.
    fn objects(&self, collection: &CollectionRef, query: &ObjectQuery) -> Result<ObjectPage>;

    /// Deletes every version of `id` that matches the version and spec_version filters of `query`
    /// (its other filters are ignored); returns how many versions were deleted.
    fn delete_object(
        &self,
        collection: &CollectionRef,
        id: &str,
        query: &ObjectQuery,
    ) -> Result<u64>;

    /// Deletes the versions of `id` that match the version and spec_version filters of `query`,
    /// but only if the caller is cleared for every one of them: in one transaction, so that no
    /// version added or re-marked in between can slip past the check. A version's level is its
    /// TLP, or `query.unmarked_as` when unmarked, and it is within the clearance when at or below
    /// `query.clearance`. The other filters of `query` are ignored.
    fn delete_object_if_cleared(
        &self,
        collection: &CollectionRef,
        id: &str,
        query: &ObjectQuery,
    ) -> Result<ClearedDelete>;

    /// A page of the collection's deletion log after `after_seq`: one record per object version
    /// deleted by [`Store::delete_object`] or [`Store::delete_object_if_cleared`], written in the
    /// same transaction as the delete, in the order the deletes committed. At most `limit`
    /// records.
    fn deletions(
        &self,
        collection: &CollectionRef,
        after_seq: Option<i64>,
        limit: usize,
    ) -> Result<DeletionPage>;

    /// Number of object versions in a collection.
    fn count_objects(&self, collection: &CollectionRef) -> Result<u64>;

    // ----- one snapshot -----

    /// Runs `f` once with a [`Snapshot`]: every read it makes sees the store as of one instant,
    /// in one read transaction. For a request that authenticates and reads in one step, so that
    /// the account it was authenticated as (revoked or not, with the permissions it has) and the
    /// objects it reads are of the same moment, in one call to the blocking pool. Generic callers
    /// use [`in_snapshot`].
    fn read_snapshot(&self, f: &mut dyn FnMut(&dyn Snapshot) -> Result<()>) -> Result<()>;

    // ----- status resources -----

    /// Stores a status resource (replacing one with the same id).
    fn put_status(&self, status: &Status) -> Result<()>;
    /// One status resource of an API root.
    fn status(&self, api_root: &str, id: &str) -> Result<Option<Status>>;
    /// Deletes status resources created before `before`; returns how many.
    fn expire_statuses(&self, before: Timestamp) -> Result<u64>;

    // ----- accounts -----

    /// Creates an account; [`StoreError::Conflict`] when the name exists.
    fn create_account(&self, account: &NewAccount) -> Result<Account>;
    /// All accounts, revoked ones included.
    fn accounts(&self) -> Result<Vec<Account>>;
    /// One account by name.
    fn account(&self, name: &str) -> Result<Option<Account>>;
    /// Marks an account revoked: it can no longer authenticate. Returns false if unknown.
    fn revoke_account(&self, name: &str) -> Result<bool>;
    /// Sets an account's password hash (a PHC string from [`hash_password`]).
    fn set_password_hash(&self, name: &str, phc: &str) -> Result<()>;
    /// Adds an API key to an account; the key itself is never stored, only its SHA-256.
    fn add_api_key(&self, name: &str, key_sha256: &[u8; 32]) -> Result<()>;
    /// The account an API key belongs to (by its SHA-256), if any and not revoked.
    fn account_by_api_key(&self, key_sha256: &[u8; 32]) -> Result<Option<Account>>;
    /// Maps a client certificate (SHA-256 of its DER) to an account.
    fn add_client_cert(&self, name: &str, cert_sha256: &[u8; 32]) -> Result<()>;
    /// The account a client certificate is mapped to, if any and not revoked.
    fn account_by_client_cert(&self, cert_sha256: &[u8; 32]) -> Result<Option<Account>>;
    /// Grants (or with both false, removes) read/write on a collection (by id).
    fn set_permission(&self, name: &str, permission: &Permission) -> Result<()>;

    // ----- audit log -----

    /// Appends audit events in one transaction.
    fn audit(&self, events: &[AuditEvent]) -> Result<()>;
    /// Appends, in one transaction, the events of responses that served object versions: one
    /// entry per response, however many versions it served (see [`ServedEvent`]).
    fn audit_served(&self, events: &[ServedEvent]) -> Result<()>;
    /// Audit events matching `query`, oldest first. A [`ServedEvent`] comes back as one
    /// [`AuditAction::Serve`] record per version it lists (sharing its `seq`, time, account and
    /// collection; the endpoint as `detail`); `object_id` and `limit` apply to those records.
    fn audit_events(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>>;

    // ----- server secrets -----

    /// A random 32-byte secret named `name`, created on first use and then stable for the life of
    /// the store, shared by every server process on it (keys for sealed paging tokens).
    fn secret(&self, name: &str) -> Result<[u8; 32]>;
}

/// The reads a [`Store::read_snapshot`] call may make, all in one read transaction. Each does
/// what the [`Store`] method of the same name does.
pub trait Snapshot {
    /// [`Store::account`].
    fn account(&self, name: &str) -> Result<Option<Account>>;
    /// [`Store::account_by_api_key`].
    fn account_by_api_key(&self, key_sha256: &[u8; 32]) -> Result<Option<Account>>;
    /// [`Store::account_by_client_cert`].
    fn account_by_client_cert(&self, cert_sha256: &[u8; 32]) -> Result<Option<Account>>;
    /// [`Store::collection`].
    fn collection(&self, api_root: &str, id_or_alias: &str) -> Result<Option<Collection>>;
    /// [`Store::objects`].
    fn objects(&self, collection: &CollectionRef, query: &ObjectQuery) -> Result<ObjectPage>;
    /// The page [`Store::objects`] would return, handed to `sink` one record at a time, borrowed
    /// from the database row (nothing is copied that the sink does not copy); returns whether
    /// more records match after the last one. An error from `sink` ends the page with it.
    fn each_object(
        &self,
        collection: &CollectionRef,
        query: &ObjectQuery,
        sink: &mut dyn FnMut(RecordRef<'_>) -> Result<()>,
    ) -> Result<bool>;
    /// [`Snapshot::each_object`] with only what an envelope needs of each record (its seq,
    /// `date_added` and JSON): the same records, in the same order, and the same `more`.
    fn each_envelope_row(
        &self,
        collection: &CollectionRef,
        query: &ObjectQuery,
        sink: &mut dyn FnMut(EnvelopeRow<'_>) -> Result<()>,
    ) -> Result<bool>;
}

/// Runs `f` in one [`Store::read_snapshot`] of `store` and returns what it returns.
pub fn in_snapshot<T>(store: &dyn Store, f: impl FnOnce(&dyn Snapshot) -> Result<T>) -> Result<T> {
    let mut f = Some(f);
    let mut out = None;
    store.read_snapshot(&mut |snapshot| {
        if let Some(f) = f.take() {
            out = Some(f(snapshot)?);
        }
        Ok(())
    })?;
    out.ok_or_else(|| StoreError::Corrupt("the snapshot was not read".to_owned()))
}
