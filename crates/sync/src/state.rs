//! The sync database (`sync.db` in the data directory): pull checkpoints, push watermarks,
//! quarantined objects, provenance of pulled versions, per-partner status, the egress ledger
//! (every exit's records: push writes them with its watermark, the TAXII server and
//! `kizuna export --partner` through [`LedgerStorage`]), deletion watermarks (deletions sent to
//! partners) and the outbound quarantine (versions a partner rejected for good).
//!
//! It is a separate SQLite file from the hub's store on purpose, for now: the store's schema is
//! owned by `kizuna-store`, and everything here is federation state. The seam is narrow: the
//! engine only needs [`SyncDb`]'s methods and the ledger's [`LedgerStorage`]; both can move into
//! the store's database later without the engine changing.
//!
//! Everything is committed with `synchronous = FULL`: a checkpoint that says a page is stored must
//! survive a crash, and so must a ledger record.

use std::path::Path;
use std::sync::Mutex;

use kizuna_stix::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::ledger::{
    self, Exit, Head, LedgerEntry, LedgerError, LedgerRecord, LedgerStorage, RecordFormat, chain,
};

mod outbound;

pub use outbound::{DeletionPosition, Rejected, SetAside};

/// File name of the sync database in the data directory.
pub const SYNC_DB_FILE: &str = "sync.db";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ledger (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    partner TEXT NOT NULL,
    object_id TEXT NOT NULL,
    version TEXT NOT NULL,
    marking TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    exit TEXT
);
CREATE INDEX IF NOT EXISTS ledger_partner ON ledger(partner, seq);
CREATE TABLE IF NOT EXISTS ledger_head (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pull_checkpoint (
    partner TEXT NOT NULL,
    remote_collection TEXT NOT NULL,
    local_collection TEXT NOT NULL,
    date_added_last TEXT NOT NULL,
    updated TEXT NOT NULL,
    PRIMARY KEY (partner, remote_collection, local_collection)
);
CREATE TABLE IF NOT EXISTS push_watermark (
    partner TEXT NOT NULL,
    local_collection TEXT NOT NULL,
    remote_collection TEXT NOT NULL,
    seq INTEGER NOT NULL,
    updated TEXT NOT NULL,
    PRIMARY KEY (partner, local_collection, remote_collection)
);
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    partner TEXT NOT NULL,
    remote_collection TEXT NOT NULL,
    object_id TEXT,
    reason TEXT NOT NULL,
    json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS quarantine_partner ON quarantine(partner, id);
CREATE TABLE IF NOT EXISTS provenance (
    object_id TEXT NOT NULL,
    version TEXT NOT NULL,
    partner TEXT NOT NULL,
    received TEXT NOT NULL,
    PRIMARY KEY (object_id, version, partner)
);
CREATE TABLE IF NOT EXISTS partner_status (
    partner TEXT PRIMARY KEY,
    last_attempt TEXT,
    last_success TEXT,
    last_error TEXT,
    pulled INTEGER NOT NULL DEFAULT 0,
    pushed INTEGER NOT NULL DEFAULT 0,
    quarantined INTEGER NOT NULL DEFAULT 0
);
";

/// Longest object text kept in quarantine; longer ones are cut (the reason says why it failed).
const QUARANTINE_JSON_CAP: usize = 256 * 1024;

/// A quarantined object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quarantined {
    /// When it was received.
    pub time: String,
    /// Partner it came from.
    pub partner: String,
    /// Remote collection it came from.
    pub remote_collection: String,
    /// Its id, when it had a usable one.
    pub object_id: Option<String>,
    /// Why it was not stored.
    pub reason: String,
    /// Its JSON text (cut at 256 KiB).
    pub json: String,
}

/// A partner's sync status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PartnerStatus {
    /// Start of the last run.
    pub last_attempt: Option<String>,
    /// End of the last run that succeeded.
    pub last_success: Option<String>,
    /// The error of the last run, when it failed.
    pub last_error: Option<String>,
    /// Object versions stored from this partner, in total.
    pub pulled: u64,
    /// Object versions sent to this partner, in total.
    pub pushed: u64,
    /// Objects quarantined, in total.
    pub quarantined: u64,
}

/// The sync database. One connection behind a mutex: every operation is short, and appends to the
/// ledger must be serialised anyway.
#[derive(Debug)]
pub struct SyncDb {
    conn: Mutex<Connection>,
}

impl SyncDb {
    /// Opens (creating if needed) `sync.db` in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir).map_err(|source| Error::Io {
            path: data_dir.to_owned(),
            source,
        })?;
        let conn = Connection::open(data_dir.join(SYNC_DB_FILE))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        Self::init(conn)
    }

    /// An in-memory database, for tests.
    pub fn open_in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self> {
        conn.execute_batch(SCHEMA)?;
        add_ledger_exit_column(&conn)?;
        conn.execute_batch(outbound::SCHEMA)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<R>) -> Result<R> {
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| Error::Task("sync database lock poisoned".into()))?;
        Ok(f(&mut conn)?)
    }

    /// Raw access for tests that tamper with the ledger.
    #[cfg(test)]
    pub(crate) fn raw<R>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<R>,
    ) -> Result<R> {
        self.with(f)
    }

    // ----- pull -----

    /// The `X-TAXII-Date-Added-Last` of the last page stored from `remote` into `local`.
    pub fn checkpoint(&self, partner: &str, remote: &str, local: &str) -> Result<Option<String>> {
        self.with(|c| {
            c.query_row(
                "SELECT date_added_last FROM pull_checkpoint
                 WHERE partner = ?1 AND remote_collection = ?2 AND local_collection = ?3",
                params![partner, remote, local],
                |r| r.get(0),
            )
            .optional()
        })
    }

    /// Records a stored page: its checkpoint, the provenance of its versions, its quarantined
    /// objects and the counters, in one transaction. Call only after the page's objects are
    /// durably in the store.
    pub fn commit_pull_page(&self, page: &PulledPage<'_>) -> Result<()> {
        let now = Timestamp::now().to_string();
        self.with(|c| {
            let tx = c.transaction()?;
            if let Some(last) = page.date_added_last {
                tx.execute(
                    "INSERT INTO pull_checkpoint VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT DO UPDATE SET date_added_last = excluded.date_added_last,
                         updated = excluded.updated",
                    params![page.partner, page.remote, page.local, last, now],
                )?;
            }
            {
                let mut st = tx.prepare_cached(
                    "INSERT OR IGNORE INTO provenance VALUES (?1, ?2, ?3, ?4)",
                )?;
                for (id, version) in page.stored {
                    st.execute(params![id, version, page.partner, now])?;
                }
                let mut q = tx.prepare_cached(
                    "INSERT INTO quarantine (time, partner, remote_collection, object_id, reason, json)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for (id, reason, json) in page.quarantined {
                    let cut = cut_utf8(json, QUARANTINE_JSON_CAP);
                    q.execute(params![now, page.partner, page.remote, id, reason, cut])?;
                }
            }
            ensure_status_row(&tx, page.partner)?;
            tx.execute(
                "UPDATE partner_status SET pulled = pulled + ?2, quarantined = quarantined + ?3
                 WHERE partner = ?1",
                params![
                    page.partner,
                    page.stored.len() as i64,
                    page.quarantined.len() as i64
                ],
            )?;
            tx.commit()
        })
    }

    /// Whether this version of this object was received from `partner` (so that it is not echoed
    /// back to it). `version` is a [`version_key`]; an unversioned object (an SCO, recorded with
    /// an empty version) counts as received whatever the version asked.
    pub fn received_from(&self, partner: &str, object_id: &str, version: &str) -> Result<bool> {
        Ok(self.received(partner, object_id, version)?.is_some())
    }

    /// How this object version was received from `partner`: `Some(true)` as exactly this version,
    /// `Some(false)` as an unversioned object, `None` not at all.
    pub fn received(&self, partner: &str, object_id: &str, version: &str) -> Result<Option<bool>> {
        self.with(|c| {
            c.query_row(
                "SELECT max(version = ?2) FROM provenance
                 WHERE object_id = ?1 AND (version = ?2 OR version = '') AND partner = ?3
                 HAVING count(*) > 0",
                params![object_id, version, partner],
                |r| r.get::<_, bool>(0),
            )
            .optional()
        })
    }

    /// Which partners this object version came from, and when.
    pub fn provenance(&self, object_id: &str, version: &str) -> Result<Vec<(String, String)>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT partner, received FROM provenance WHERE object_id = ?1 AND version = ?2
                 ORDER BY received",
            )?;
            let rows = st.query_map(params![object_id, version], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }

    /// The newest `limit` quarantined objects of a partner, newest first.
    pub fn quarantined(&self, partner: &str, limit: usize) -> Result<Vec<Quarantined>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT time, partner, remote_collection, object_id, reason, json FROM quarantine
                 WHERE partner = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = st.query_map(params![partner, limit as i64], |r| {
                Ok(Quarantined {
                    time: r.get(0)?,
                    partner: r.get(1)?,
                    remote_collection: r.get(2)?,
                    object_id: r.get(3)?,
                    reason: r.get(4)?,
                    json: r.get(5)?,
                })
            })?;
            rows.collect()
        })
    }

    // ----- push -----

    /// The sequence position in `local` up to which objects have been pushed to `remote`.
    pub fn watermark(&self, partner: &str, local: &str, remote: &str) -> Result<Option<i64>> {
        self.with(|c| {
            c.query_row(
                "SELECT seq FROM push_watermark
                 WHERE partner = ?1 AND local_collection = ?2 AND remote_collection = ?3",
                params![partner, local, remote],
                |r| r.get(0),
            )
            .optional()
        })
    }

    /// Records a successful push: ledger records for what was sent, and the new watermark, in one
    /// transaction, so that a crash can neither lose a record of something sent nor advance the
    /// watermark past something unsent.
    pub fn commit_push(
        &self,
        partner: &str,
        local: &str,
        remote: &str,
        watermark: i64,
        sent: &[LedgerEntry],
    ) -> Result<Vec<LedgerRecord>> {
        let now = Timestamp::now().to_string();
        self.with(|c| {
            let tx = c.transaction()?;
            let records = append_tx(&tx, sent)?;
            tx.execute(
                "INSERT INTO push_watermark VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT DO UPDATE SET seq = excluded.seq, updated = excluded.updated",
                params![partner, local, remote, watermark, now],
            )?;
            ensure_status_row(&tx, partner)?;
            tx.execute(
                "UPDATE partner_status SET pushed = pushed + ?2 WHERE partner = ?1",
                params![partner, sent.len() as i64],
            )?;
            tx.commit()?;
            Ok(records)
        })
    }

    // ----- status -----

    /// Records the start of a run.
    pub fn run_started(&self, partner: &str) -> Result<()> {
        let now = Timestamp::now().to_string();
        self.with(|c| {
            ensure_status_row(c, partner)?;
            c.execute(
                "UPDATE partner_status SET last_attempt = ?2 WHERE partner = ?1",
                params![partner, now],
            )?;
            Ok(())
        })
    }

    /// Records the end of a run: success clears the last error, failure records it.
    pub fn run_finished(&self, partner: &str, error: Option<&str>) -> Result<()> {
        let now = Timestamp::now().to_string();
        self.with(|c| {
            ensure_status_row(c, partner)?;
            match error {
                None => c.execute(
                    "UPDATE partner_status SET last_success = ?2, last_error = NULL WHERE partner = ?1",
                    params![partner, now],
                ),
                Some(e) => c.execute(
                    "UPDATE partner_status SET last_error = ?2 WHERE partner = ?1",
                    params![partner, format!("{now}: {e}")],
                ),
            }?;
            Ok(())
        })
    }

    /// A partner's status.
    pub fn status(&self, partner: &str) -> Result<PartnerStatus> {
        self.with(|c| {
            c.query_row(
                "SELECT last_attempt, last_success, last_error, pulled, pushed, quarantined
                 FROM partner_status WHERE partner = ?1",
                params![partner],
                |r| {
                    Ok(PartnerStatus {
                        last_attempt: r.get(0)?,
                        last_success: r.get(1)?,
                        last_error: r.get(2)?,
                        pulled: r.get::<_, i64>(3)?.max(0) as u64,
                        pushed: r.get::<_, i64>(4)?.max(0) as u64,
                        quarantined: r.get::<_, i64>(5)?.max(0) as u64,
                    })
                },
            )
            .optional()
            .map(Option::unwrap_or_default)
        })
    }

    /// Where each pull and push mapping of a partner stands.
    pub fn positions(&self, partner: &str) -> Result<Positions> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT remote_collection, local_collection, date_added_last, updated
                 FROM pull_checkpoint WHERE partner = ?1 ORDER BY remote_collection, local_collection",
            )?;
            let pulls = st
                .query_map(params![partner], |r| {
                    Ok(PullPosition {
                        remote: r.get(0)?,
                        local: r.get(1)?,
                        date_added_last: r.get(2)?,
                        updated: r.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut st = c.prepare(
                "SELECT local_collection, remote_collection, seq, updated
                 FROM push_watermark WHERE partner = ?1 ORDER BY local_collection, remote_collection",
            )?;
            let pushes = st
                .query_map(params![partner], |r| {
                    Ok(PushPosition {
                        local: r.get(0)?,
                        remote: r.get(1)?,
                        seq: r.get(2)?,
                        updated: r.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Positions { pulls, pushes })
        })
    }

    /// Ledger records sent to one partner, after `after`, at most `limit`.
    pub fn ledger_for(&self, partner: &str, after: u64, limit: usize) -> Result<Vec<LedgerRecord>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT seq, time, partner, object_id, version, marking, sha256, prev_hash, hash, exit
                 FROM ledger WHERE partner = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )?;
            let rows = st.query_map(params![partner, after as i64, limit as i64], read_record)?;
            rows.collect()
        })
    }
}

/// Where a partner's mappings stand ([`SyncDb::positions`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Positions {
    /// Pull checkpoints.
    pub pulls: Vec<PullPosition>,
    /// Push watermarks.
    pub pushes: Vec<PushPosition>,
}

/// A pull checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullPosition {
    /// Remote collection id.
    pub remote: String,
    /// Local collection id.
    pub local: String,
    /// `X-TAXII-Date-Added-Last` of the last page stored.
    pub date_added_last: String,
    /// When it was stored.
    pub updated: String,
}

/// A push watermark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushPosition {
    /// Local collection id.
    pub local: String,
    /// Remote collection id.
    pub remote: String,
    /// Position in the local collection's sequence pushed up to.
    pub seq: i64,
    /// When it advanced.
    pub updated: String,
}

/// The provenance key of a version: the instant in microseconds, printed with six digits (the
/// store keeps versions to the microsecond, whatever digits they were written with).
pub fn version_key(version: kizuna_stix::Timestamp) -> String {
    version.to_micros().to_string()
}

/// What one stored pull page changes in the sync database.
#[derive(Debug)]
pub struct PulledPage<'a> {
    /// Partner name.
    pub partner: &'a str,
    /// Remote collection id.
    pub remote: &'a str,
    /// Local collection id.
    pub local: &'a str,
    /// The page's `X-TAXII-Date-Added-Last`, the next checkpoint.
    pub date_added_last: Option<&'a str>,
    /// (id, version) of the versions stored (added or already present).
    pub stored: &'a [(String, String)],
    /// (id, reason, JSON text) of the objects refused.
    pub quarantined: &'a [(Option<String>, String, String)],
}

fn ensure_status_row(c: &Connection, partner: &str) -> rusqlite::Result<()> {
    c.execute(
        "INSERT OR IGNORE INTO partner_status (partner) VALUES (?1)",
        params![partner],
    )?;
    Ok(())
}

fn cut_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Ledgers written before the exit was recorded have no `exit` column: it is added, and their
/// records keep `exit` NULL, which reads as a [`RecordFormat::V1`] push (hashed without the exit,
/// as they were written).
fn add_ledger_exit_column(c: &Connection) -> rusqlite::Result<()> {
    let has_exit: bool = c.query_row(
        "SELECT count(*) FROM pragma_table_info('ledger') WHERE name = 'exit'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !has_exit {
        c.execute_batch("ALTER TABLE ledger ADD COLUMN exit TEXT")?;
    }
    Ok(())
}

fn read_head(c: &Connection) -> rusqlite::Result<Option<Head>> {
    c.query_row("SELECT seq, hash FROM ledger_head WHERE one = 1", [], |r| {
        Ok(Head {
            seq: r.get::<_, i64>(0)?.max(0) as u64,
            hash: r.get(1)?,
        })
    })
    .optional()
}

fn append_tx(
    tx: &rusqlite::Transaction<'_>,
    entries: &[LedgerEntry],
) -> rusqlite::Result<Vec<LedgerRecord>> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let head = read_head(tx)?;
    let records = chain(head.as_ref(), entries);
    {
        let mut st = tx.prepare_cached(
            "INSERT INTO ledger (seq, time, partner, object_id, version, marking, sha256, prev_hash, hash, exit)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        for r in &records {
            st.execute(params![
                r.seq as i64,
                r.entry.time.to_string(),
                r.entry.partner,
                r.entry.object_id,
                r.entry.version,
                r.entry.marking,
                r.entry.sha256,
                r.prev_hash,
                r.hash,
                r.entry.exit.as_str()
            ])?;
        }
    }
    if let Some(last) = records.last() {
        tx.execute(
            "INSERT INTO ledger_head VALUES (1, ?1, ?2)
             ON CONFLICT DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            params![last.seq as i64, last.hash],
        )?;
    }
    Ok(records)
}

fn read_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<LedgerRecord> {
    let time: String = r.get(1)?;
    let time = Timestamp::parse(&time).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let exit: Option<String> = r.get(9)?;
    let (exit, format) = match exit.as_deref() {
        None => (Exit::Push, RecordFormat::V1),
        Some(name) => (
            Exit::parse(name).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    9,
                    rusqlite::types::Type::Text,
                    format!("unknown ledger exit {name:?}").into(),
                )
            })?,
            RecordFormat::V2,
        ),
    };
    Ok(LedgerRecord {
        seq: r.get::<_, i64>(0)?.max(0) as u64,
        format,
        entry: LedgerEntry {
            time,
            exit,
            partner: r.get(2)?,
            object_id: r.get(3)?,
            version: r.get(4)?,
            marking: r.get(5)?,
            sha256: r.get(6)?,
        },
        prev_hash: r.get(7)?,
        hash: r.get(8)?,
    })
}

impl SyncDb {
    /// Appends ledger records in one transaction (the [`LedgerStorage`] append, with this crate's
    /// error).
    pub fn append_ledger(&self, entries: &[LedgerEntry]) -> Result<Vec<LedgerRecord>> {
        self.with(|c| {
            let tx = c.transaction()?;
            let records = append_tx(&tx, entries)?;
            tx.commit()?;
            Ok(records)
        })
    }

    fn ledger_records(&self, after: u64, limit: usize) -> Result<Vec<LedgerRecord>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT seq, time, partner, object_id, version, marking, sha256, prev_hash, hash, exit
                 FROM ledger WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = st.query_map(params![after as i64, limit as i64], read_record)?;
            rows.collect()
        })
    }

    /// The ledger head recorded beside the chain.
    pub fn ledger_head(&self) -> Result<Option<Head>> {
        self.with(|c| read_head(c))
    }
}

/// The sync database is the hub's ledger storage: `kizuna serve` hands it to the TAXII server,
/// `kizuna export --partner` appends to it, push writes it with [`SyncDb::commit_push`].
impl LedgerStorage for SyncDb {
    fn append(&self, entries: &[LedgerEntry]) -> ledger::Result<Vec<LedgerRecord>> {
        self.append_ledger(entries).map_err(storage_error)
    }

    fn records(&self, after: u64, limit: usize) -> ledger::Result<Vec<LedgerRecord>> {
        self.ledger_records(after, limit).map_err(storage_error)
    }

    fn head(&self) -> ledger::Result<Option<Head>> {
        self.ledger_head().map_err(storage_error)
    }
}

fn storage_error(e: Error) -> LedgerError {
    LedgerError::Storage(Box::new(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::tests::{Tamper, entry, tamper_suite};
    use crate::ledger::{sha256_hex, verify};
    use std::sync::Arc;

    #[test]
    fn sqlite_ledger_detects_tampering() {
        let cell: Arc<Mutex<Option<Arc<SyncDb>>>> = Arc::default();
        let c1 = cell.clone();
        let make = move || -> Box<dyn LedgerStorage> {
            let db = Arc::new(SyncDb::open_in_memory().unwrap());
            *c1.lock().unwrap() = Some(db.clone());
            Box::new(SharedDb(db))
        };
        let tamper = |_: &dyn LedgerStorage, t: Tamper| {
            let db = cell.lock().unwrap().clone().unwrap();
            db.raw(|c| {
                match t {
                    Tamper::EditPartner(s) => {
                        c.execute(
                            "UPDATE ledger SET partner = 'evil' WHERE seq = ?1",
                            [s as i64],
                        )?;
                    }
                    Tamper::EditExit(s) => {
                        c.execute("UPDATE ledger SET exit = 'push' WHERE seq = ?1", [s as i64])?;
                    }
                    Tamper::EditDigest(s) => {
                        c.execute(
                            "UPDATE ledger SET sha256 = ?2 WHERE seq = ?1",
                            params![s as i64, sha256_hex(b"other")],
                        )?;
                    }
                    Tamper::Delete(s) => {
                        c.execute("DELETE FROM ledger WHERE seq = ?1", [s as i64])?;
                    }
                    Tamper::Swap(a, b) => {
                        c.execute("UPDATE ledger SET seq = -1 WHERE seq = ?1", [a as i64])?;
                        c.execute(
                            "UPDATE ledger SET seq = ?1 WHERE seq = ?2",
                            [a as i64, b as i64],
                        )?;
                        c.execute("UPDATE ledger SET seq = ?1 WHERE seq = -1", [b as i64])?;
                    }
                    Tamper::TruncateTail => {
                        c.execute(
                            "DELETE FROM ledger WHERE seq = (SELECT MAX(seq) FROM ledger)",
                            [],
                        )?;
                    }
                    Tamper::TruncateTailAndHead => {
                        c.execute(
                            "DELETE FROM ledger WHERE seq = (SELECT MAX(seq) FROM ledger)",
                            [],
                        )?;
                        c.execute(
                            "UPDATE ledger_head SET seq = (SELECT MAX(seq) FROM ledger),
                                 hash = (SELECT hash FROM ledger ORDER BY seq DESC LIMIT 1)",
                            [],
                        )?;
                    }
                }
                Ok(())
            })
            .unwrap();
        };
        tamper_suite(&make, &tamper);
    }

    #[derive(Debug)]
    struct SharedDb(Arc<SyncDb>);
    impl LedgerStorage for SharedDb {
        fn append(&self, e: &[LedgerEntry]) -> ledger::Result<Vec<LedgerRecord>> {
            self.0.append(e)
        }
        fn records(&self, a: u64, l: usize) -> ledger::Result<Vec<LedgerRecord>> {
            self.0.records(a, l)
        }
        fn head(&self) -> ledger::Result<Option<Head>> {
            LedgerStorage::head(self.0.as_ref())
        }
    }

    /// A `sync.db` written before the exit was recorded: its ledger gains the column, its records
    /// still verify (as V1 pushes), and new records of any exit chain after them.
    #[test]
    fn a_ledger_without_exits_is_migrated_and_still_verifies() {
        use crate::ledger::{GENESIS_HASH, record_hash_in};
        let dir = tempfile::tempdir().unwrap();
        {
            let c = Connection::open(dir.path().join(SYNC_DB_FILE)).unwrap();
            c.execute_batch(&SCHEMA.replace(
                "hash TEXT NOT NULL,\n    exit TEXT\n",
                "hash TEXT NOT NULL\n",
            ))
            .unwrap();
            let mut prev = GENESIS_HASH.to_owned();
            for seq in 1..=2u64 {
                let e = entry(1); // a push
                let hash = record_hash_in(RecordFormat::V1, seq, &e, &prev);
                c.execute(
                    "INSERT INTO ledger (seq, time, partner, object_id, version, marking, sha256, prev_hash, hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![seq as i64, e.time.to_string(), e.partner, e.object_id, e.version, e.marking, e.sha256, prev, hash],
                )
                .unwrap();
                c.execute(
                    "INSERT INTO ledger_head VALUES (1, ?1, ?2)
                     ON CONFLICT DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                    params![seq as i64, hash],
                )
                .unwrap();
                prev = hash;
            }
            let cols: i64 = c
                .query_row(
                    "SELECT count(*) FROM pragma_table_info('ledger') WHERE name = 'exit'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(cols, 0, "the old schema has no exit column");
        }
        let db = SyncDb::open(dir.path()).unwrap();
        let v = verify(&db, None).unwrap();
        assert!(v.is_intact() && v.records == 2, "{:?}", v.problems);
        db.append_ledger(&[entry(2)]).unwrap(); // a TAXII read
        let v = verify(&db, None).unwrap();
        assert!(v.is_intact() && v.records == 3, "{:?}", v.problems);
        let exits: Vec<Exit> = db
            .ledger_for("dod", 0, 10)
            .unwrap()
            .iter()
            .map(|r| r.entry.exit)
            .collect();
        assert_eq!(exits, [Exit::Push, Exit::Push, Exit::Taxii]);
        // Passing off an old push as something else is an edit.
        db.raw(|c| c.execute("UPDATE ledger SET exit = 'export' WHERE seq = 1", []))
            .unwrap();
        assert!(!verify(&db, None).unwrap().is_intact());
    }

    #[test]
    fn push_commit_is_atomic_with_its_ledger_records() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = SyncDb::open(dir.path()).unwrap();
            assert_eq!(db.watermark("dod", "l", "r").unwrap(), None);
            let recs = db
                .commit_push("dod", "l", "r", 7, &[entry(1), entry(2)])
                .unwrap();
            assert_eq!(recs.len(), 2);
            db.commit_push("dod", "l", "r", 9, &[]).unwrap();
        }
        let db = SyncDb::open(dir.path()).unwrap();
        assert_eq!(db.watermark("dod", "l", "r").unwrap(), Some(9));
        let pos = db.positions("dod").unwrap();
        assert_eq!((pos.pushes.len(), pos.pushes[0].seq), (1, 9));
        assert!(pos.pulls.is_empty());
        assert_eq!(db.status("dod").unwrap().pushed, 2);
        assert!(verify(&db, None).unwrap().is_intact());
        assert_eq!(db.ledger_for("dod", 0, 10).unwrap().len(), 2);
        assert!(db.ledger_for("other", 0, 10).unwrap().is_empty());
    }

    #[test]
    fn pull_pages_record_checkpoint_provenance_and_quarantine() {
        let db = SyncDb::open_in_memory().unwrap();
        assert_eq!(db.checkpoint("p", "r", "l").unwrap(), None);
        let stored = vec![
            ("indicator--1".to_owned(), "v1".to_owned()),
            ("ipv4-addr--1".to_owned(), String::new()),
        ];
        let quarantined = vec![(None, "no id".to_owned(), "x".repeat(300 * 1024))];
        db.commit_pull_page(&PulledPage {
            partner: "p",
            remote: "r",
            local: "l",
            date_added_last: Some("2026-01-01T00:00:00.000001Z"),
            stored: &stored,
            quarantined: &quarantined,
        })
        .unwrap();
        assert_eq!(
            db.checkpoint("p", "r", "l").unwrap().as_deref(),
            Some("2026-01-01T00:00:00.000001Z")
        );
        assert!(db.received_from("p", "indicator--1", "v1").unwrap());
        assert_eq!(db.received("p", "indicator--1", "v1").unwrap(), Some(true));
        assert!(!db.received_from("p", "indicator--1", "v2").unwrap());
        assert!(!db.received_from("q", "indicator--1", "v1").unwrap());
        let q = db.quarantined("p", 10).unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].json.len(), QUARANTINE_JSON_CAP);
        assert_eq!(
            db.received("p", "ipv4-addr--1", "any").unwrap(),
            Some(false)
        );
        let s = db.status("p").unwrap();
        assert_eq!((s.pulled, s.quarantined), (2, 1));
        db.run_started("p").unwrap();
        db.run_finished("p", Some("boom")).unwrap();
        assert!(db.status("p").unwrap().last_error.unwrap().contains("boom"));
        db.run_finished("p", None).unwrap();
        let s = db.status("p").unwrap();
        assert!(s.last_error.is_none() && s.last_success.is_some());
    }
}
