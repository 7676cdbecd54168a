//! The schema and its migrations.
//!
//! `schema_version` holds one row per migration applied. Migrations run in one `BEGIN IMMEDIATE`
//! transaction that first reads the version, so two processes opening a fresh store at once apply
//! each migration exactly once. A store written by a newer Kizuna (a version this build does not
//! know) is refused rather than misread.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Result, StoreError};

/// Migration `n` (1-based) is `MIGRATIONS[n - 1]`. Append only; never edit a released one.
const MIGRATIONS: &[&str] = &[V1, V2_DELETIONS, V3_AUDIT_SERVED, V5_ID_KEYS, V6_AUDIT_SEQS];

/// The first schema.
///
/// Objects: `seq` is the table's rowid, taken from one store-wide counter (`counters`, name
/// `objects`) that never goes back, even after deletes, so within a collection it is strictly
/// increasing in commit order. (The counter is read and written once per add call; SQLite's
/// `AUTOINCREMENT` would do the same once per row.) `coll` has no foreign key for the same reason:
/// the add call resolves the collection once, in its transaction.
/// Every index on `(coll, …)` implicitly ends with the rowid, so `objects_coll` orders a
/// collection by `seq`, `objects_last`/`objects_first` do the same for the newest/oldest version
/// of each object only, `objects_added` finds the first `seq` after an `added_after`, and
/// `objects_type` pages through one type. `version` and `date_added` are microseconds since the
/// Unix epoch; `tlp` is 0 (CLEAR) … 4 (RED) or NULL when unmarked.
const V1: &str = "
CREATE TABLE api_roots (
    seq INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    description TEXT,
    max_content_length INTEGER NOT NULL
);

CREATE TABLE collections (
    key INTEGER PRIMARY KEY,
    api_root TEXT NOT NULL REFERENCES api_roots(name),
    id TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT,
    alias TEXT,
    media_types TEXT NOT NULL,
    last_date_added INTEGER NOT NULL DEFAULT 0,
    object_count INTEGER NOT NULL DEFAULT 0,
    UNIQUE (api_root, id)
);
CREATE UNIQUE INDEX collections_alias ON collections(api_root, alias) WHERE alias IS NOT NULL;

CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('objects', 0);

CREATE TABLE objects (
    seq INTEGER PRIMARY KEY,
    coll INTEGER NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    version INTEGER NOT NULL,
    version_digits INTEGER NOT NULL,
    spec_version TEXT NOT NULL,
    date_added INTEGER NOT NULL,
    tlp INTEGER,
    is_first INTEGER NOT NULL,
    is_last INTEGER NOT NULL,
    sha256 BLOB NOT NULL,
    json TEXT NOT NULL,
    id_hash INTEGER NOT NULL
);
CREATE INDEX objects_coll ON objects(coll);
CREATE INDEX objects_id ON objects(coll, id_hash, version);
CREATE INDEX objects_type ON objects(coll, type);
CREATE INDEX objects_added ON objects(coll, date_added);
CREATE INDEX objects_last ON objects(coll) WHERE is_last = 1;
CREATE INDEX objects_first ON objects(coll) WHERE is_first = 1;

CREATE TABLE statuses (
    api_root TEXT NOT NULL,
    id TEXT NOT NULL,
    status TEXT NOT NULL,
    request_timestamp INTEGER NOT NULL,
    total_count INTEGER NOT NULL,
    successes TEXT NOT NULL,
    failures TEXT NOT NULL,
    pendings TEXT NOT NULL,
    PRIMARY KEY (api_root, id)
);
CREATE INDEX statuses_time ON statuses(request_timestamp);

CREATE TABLE accounts (
    name TEXT PRIMARY KEY,
    password_hash TEXT,
    tlp_clearance INTEGER NOT NULL,
    admin INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL
);
CREATE TABLE api_keys (
    sha256 BLOB PRIMARY KEY,
    account TEXT NOT NULL REFERENCES accounts(name),
    created INTEGER NOT NULL
);
CREATE INDEX api_keys_account ON api_keys(account);
CREATE TABLE client_certs (
    sha256 BLOB PRIMARY KEY,
    account TEXT NOT NULL REFERENCES accounts(name),
    created INTEGER NOT NULL
);
CREATE INDEX client_certs_account ON client_certs(account);
CREATE TABLE permissions (
    account TEXT NOT NULL REFERENCES accounts(name),
    api_root TEXT NOT NULL,
    collection TEXT NOT NULL,
    read INTEGER NOT NULL,
    write INTEGER NOT NULL,
    PRIMARY KEY (account, api_root, collection)
) WITHOUT ROWID;

CREATE TABLE audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time INTEGER NOT NULL,
    account TEXT,
    action TEXT NOT NULL,
    collection TEXT,
    object_id TEXT,
    version TEXT,
    detail TEXT
);
CREATE INDEX audit_account ON audit(account);
CREATE INDEX audit_object ON audit(object_id);
CREATE INDEX audit_time ON audit(time);

CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
";

/// The deletion log: one row per object version deleted, written by the delete's transaction, so
/// that push can send deletions to partners incrementally (`seq` after a watermark). `seq` is its
/// own `AUTOINCREMENT` sequence, never reused; `deletions_coll` orders one collection's log by it.
/// `version` is in microseconds as in `objects`; `versioned` is 0 for objects without `modified`
/// or `created` (SCOs), whose version was their local `date_added`; `time` is microseconds.
const V2_DELETIONS: &str = "
CREATE TABLE deletions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    coll INTEGER NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    version_digits INTEGER NOT NULL,
    versioned INTEGER NOT NULL,
    time INTEGER NOT NULL
);
CREATE INDEX deletions_coll ON deletions(coll);
";

/// The audit of reads, one row per response: a `serve` row written by
/// [`Store::audit_served`](crate::Store::audit_served) has no `object_id` or `version` of its own
/// and lists what it served in `served`, one `<object id> <version>` line per version (`\n`
/// between lines). One row and its three index entries per page instead of a row and three index
/// entries per object version: the per-object rows cost the hub most of its CPU under load.
/// Finding an object among them scans the `serve` rows (see `records::audit_events`): the log is
/// written on every read and queried by an operator now and then.
const V3_AUDIT_SERVED: &str = "
ALTER TABLE audit ADD COLUMN served TEXT;
";

/// The id index becomes id keys in three levels (tables), merged like a log-structured tree.
///
/// Why: ids are random (UUIDs), so each object added wrote its entry at a random place of the
/// `objects_id` index: one page of it dirtied, written to the log and later copied by a checkpoint
/// for every object, at 1,000,000 objects ~1.2 log pages per object out of ~1.6
/// (bench/taxii/README.md). Now a row's key (the top 32 bits of `id_hash`, and its `seq`) is filed
/// in `id_keys_recent`, a few pages that every commit rewrites anyway; at 2,000 keys they are
/// merged, in key order, into `id_keys_middle`, and that at 100,000 into `id_keys`, the bulk; a
/// merge writes each page of the level below at most once (see `objects::merge_keys`). A lookup
/// seeks the key in each level and reads the rows of the seqs found, comparing `coll`, `id_hash`
/// and `id` on the row (the versions of one id, and the rare ids whose hash shares its top 32
/// bits). A key is ~13 bytes, half an entry of the old index. A key whose row is deleted is
/// removed with it (and would be harmless: seqs are never reused). The keys of an existing store
/// are read from the old index (a covering scan, not the table), sorted, and written once.
const V5_ID_KEYS: &str = "
CREATE TABLE id_keys (
    key INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (key, seq)
) WITHOUT ROWID;
CREATE TABLE id_keys_middle (
    key INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (key, seq)
) WITHOUT ROWID;
CREATE TABLE id_keys_recent (
    key INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (key, seq)
) WITHOUT ROWID;
INSERT INTO id_keys (key, seq)
    SELECT id_hash >> 32, seq FROM objects INDEXED BY objects_id ORDER BY 1, 2;
DROP INDEX objects_id;
";

/// The audit names the versions it lists by their rows' seqs.
///
/// `audit.seqs` replaces `served` for the `serve` and `write` rows written from now on: the seqs of
/// the object rows served or added, as [`ServedList::to_bytes`](crate::ServedList::to_bytes)
/// encodes them (a few bytes per page instead of ~7 KB of `<id> <version>` lines). Reading the log
/// names each seq's object id and version from its row, or, once the row is deleted, from the
/// deletion log, which now keeps the seq of each row it logs (`object_seq`; NULL for deletions
/// logged before this migration, which no seq-listing row can name: those were written after it).
/// Rows written before keep their `served` text and read as before.
const V6_AUDIT_SEQS: &str = "
ALTER TABLE audit ADD COLUMN seqs BLOB;
ALTER TABLE deletions ADD COLUMN object_seq INTEGER;
CREATE INDEX deletions_object_seq ON deletions(object_seq) WHERE object_seq IS NOT NULL;
";

/// Brings the schema up to date.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let current: Option<i64> =
        tx.query_row("SELECT max(version) FROM schema_version", [], |row| {
            row.get(0)
        })?;
    let current = usize::try_from(current.unwrap_or(0))
        .map_err(|_| StoreError::Corrupt("negative schema version".into()))?;
    if current > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "schema version {current} is newer than this build knows ({})",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [i64::try_from(index + 1).unwrap_or(i64::MAX)],
        )?;
    }
    tx.commit()?;
    Ok(())
}
