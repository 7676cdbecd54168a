//! The embedded SQLite backend.
//!
//! # Connections and processes
//!
//! One database file, `DIR/kizuna.db`, in WAL mode. Writes go through one connection behind a
//! mutex and always open their transaction with `BEGIN IMMEDIATE`, so that the write lock is taken
//! before anything is read and two writers (threads or processes) never deadlock on a lock upgrade;
//! `busy_timeout` makes a writer wait for one in another process. Reads use a small pool of other
//! connections, each read in a (deferred) transaction, so they see one consistent snapshot and run
//! concurrently with the writer ([`Store::read_snapshot`] makes several reads in one); reader
//! connections map the database file into memory rather than copy its pages into a cache that
//! every commit invalidates. Object adds and status resources that queue for the writer while
//! it is busy are committed together, in one transaction ([`group`]): each caller still returns
//! only after the commit that holds its write.
//!
//! Several server processes may open the same store, so nothing that another process could change
//! is cached in memory: every call reads the database. The per-object indexing columns, the
//! sequence and the `first`/`last` flags are maintained inside the write transactions.
//!
//! # Ids
//!
//! Ids are random (UUIDs), so an index on them takes each new entry at a random place: with one,
//! every object added dirtied a page of it, and at 1,000,000 objects those pages were all distinct,
//! written to the WAL (~1.2 pages per object) and copied again by each checkpoint, which made an
//! add 1.5–2× dearer than into an empty store. So the rows are found by id through `id_keys`, a
//! table of (level, top 32 bits of the id hash, seq) in three levels: a new row's key goes into
//! the small recent level, whose few pages every commit rewrites anyway; full levels are merged
//! down in key order, which writes each page of the level below at most once (`objects::add`,
//! `schema::V5_ID_KEYS`). A lookup is one seek in each level and a read of the rows found, on
//! which `coll`, `id_hash` and `id` are compared. Everything else the writes maintain is
//! appended in `seq` order (the table and its per-collection indexes). Most ids added are new, and
//! their lookup finds nothing: the writer keeps the key of every stored row in memory
//! ([`known`]), and looks up only the ids whose key it holds.
//!
//! # The read log
//!
//! The audit of reads ([`Store::audit_served`], one row per response listing the seqs of the rows
//! served) is kept in a database file of its own, `DIR/audit-reads.db`, with its own writer
//! connection; everything else the audit log holds (writes, deletes, failed logins) stays in
//! `kizuna.db`, in the transactions of what it records. Why: the audit writer commits every few
//! milliseconds while pages are served, and each commit to `kizuna.db` made every reader connection
//! unmap its memory map of the database at its next read (SQLite does so whenever another connection
//! committed) and fault the pages back in, and grew the log readers search: serving pages with the
//! read audit on cost ~20 µs more per page than with it off, of which writing the audit itself was
//! ~3 (bench/taxii/README.md). With the read log apart, a read-only load leaves `kizuna.db`
//! unchanged. [`Store::audit_events`] reads both and merges them by time. In memory the read log is a
//! table of the one database.
//!
//! # Durability
//!
//! With the default [`Durability::Process`] (`synchronous=NORMAL` in WAL mode) a committed
//! transaction is in the operating system's hands before the call returns: it survives the
//! process being killed (SIGKILL), but the last transactions may be lost if the machine loses
//! power. [`Durability::PowerLoss`] (`synchronous=FULL`) also survives power loss, at the cost of
//! an fsync per transaction.

mod accounts;
mod checkpoint;
mod deletions;
mod group;
mod known;
mod objects;
mod records;
mod roots;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use kizuna_stix::{Timestamp, Tlp};
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::error::{Result, StoreError};
use crate::model::*;
use crate::{Snapshot, Store};

/// Name of the database file inside the data directory.
pub const DB_FILE: &str = "kizuna.db";

/// Name of the read log's database file inside the data directory (see "The read log" above).
pub const READ_LOG_FILE: &str = "audit-reads.db";

/// How long a connection waits for a lock held by another connection or process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Idle reader connections kept open. More than the reads a loaded server runs at once (one per
/// request in flight, on the blocking pool): a connection closed on its way back to a full pool
/// takes its prepared statements and page cache with it, and the next read pays for opening one
/// and parsing the schema and its query again. With 8 kept, 16 clients reading pages spent a fifth
/// of the server's CPU in SQLite's parser (bench/taxii/README.md, "nginx"). Each connection's
/// page cache grows only with what it reads, up to [`CACHE_KIB`].
const MAX_IDLE_READERS: usize = 64;

/// How much of the database file reader connections map into memory instead of reading it into
/// their page cache. Every commit (the audit writer commits every few milliseconds while pages are
/// served) makes each reader drop its page cache at its next transaction, so without the mapping
/// a page read copies its database pages again with `pread`.
const READER_MMAP_BYTES: i64 = 1 << 30;

/// Prepared statements cached per connection; object queries vary with the filters present.
const STATEMENT_CACHE: usize = 128;

/// What a committed write survives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// Survives the process being killed, not a power loss (`synchronous=NORMAL`). The default.
    #[default]
    Process,
    /// Also survives power loss or an operating system crash (`synchronous=FULL`): one fsync per
    /// transaction.
    PowerLoss,
}

/// The SQLite [`Store`].
pub struct SqliteStore {
    /// Copies the log into the database file off the write path; `None` in memory. Declared
    /// first so that its thread stops before the writer closes.
    checkpointer: Option<checkpoint::Checkpointer>,
    writer: Mutex<Writer>,
    /// Adds and status resources waiting for the writer, committed together ([`group`]).
    queue: group::Queue,
    /// `None` for an in-memory store, whose only connection serves reads too.
    readers: Option<ReaderPool>,
    /// The read log's connection (`audit-reads.db`); `None` in memory, where the read log is a
    /// table of the writer's database.
    read_log: Option<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.readers.as_ref().map(|r| &r.path))
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it and `dir` if needed) the store in `dir/kizuna.db`, with
    /// [`Durability::Process`].
    pub fn open(dir: &Path) -> Result<SqliteStore> {
        Self::open_with(dir, Durability::default())
    }

    /// Opens (creating it and `dir` if needed) the store in `dir/kizuna.db`.
    pub fn open_with(dir: &Path, durability: Durability) -> Result<SqliteStore> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        let mut writer = Connection::open(&path)?;
        configure(&writer, durability)?;
        let mode: String =
            writer.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt(format!(
                "{} cannot use WAL mode (journal_mode is {mode})",
                path.display()
            )));
        }
        // Checkpoints run on a thread of their own once the log passes 64 MiB (rather than
        // SQLite's 4: inserts rewrite the same pages, the tails of the table and its indexes and
        // the recent id keys, many times, and each checkpoint copies, and fsyncs, each page
        // once); see [`checkpoint`]. The writer checkpoints itself
        // only if that thread falls far behind.
        writer.pragma_update(None, "wal_autocheckpoint", checkpoint::BACKSTOP_PAGES)?;
        writer.pragma_update(None, "journal_size_limit", checkpoint::CHECKPOINT_BYTES)?;
        schema::migrate(&mut writer)?;
        let read_log = Connection::open(dir.join(READ_LOG_FILE))?;
        configure(&read_log, durability)?;
        let mode: String =
            read_log.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt(format!(
                "{} cannot use WAL mode (journal_mode is {mode})",
                dir.join(READ_LOG_FILE).display()
            )));
        }
        read_log.execute_batch(records::READ_LOG_SCHEMA)?;
        let checkpointer = checkpoint::Checkpointer::start(&path)?;
        Ok(SqliteStore {
            checkpointer: Some(checkpointer),
            writer: Mutex::new(Writer::new(writer)),
            queue: group::Queue::default(),
            readers: Some(ReaderPool {
                path,
                durability,
                idle: Mutex::new(Vec::new()),
            }),
            read_log: Some(Mutex::new(read_log)),
        })
    }

    /// A private in-memory store (for tests): one connection, gone when dropped.
    pub fn open_in_memory() -> Result<SqliteStore> {
        let mut writer = Connection::open_in_memory()?;
        configure(&writer, Durability::Process)?;
        schema::migrate(&mut writer)?;
        writer.execute_batch(records::READ_LOG_SCHEMA)?;
        Ok(SqliteStore {
            checkpointer: None,
            writer: Mutex::new(Writer::new(writer)),
            queue: group::Queue::default(),
            readers: None,
            read_log: None,
        })
    }

    /// The database file, or `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.readers.as_ref().map(|r| r.path.as_path())
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        // A panic while holding the lock cannot leave a transaction open (Transaction rolls back
        // on drop), so the connection is still usable.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction and commits if it succeeds.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        drop(conn);
        self.nudge_checkpointer();
        Ok(value)
    }

    fn nudge_checkpointer(&self) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.nudge();
        }
    }

    /// Runs `job`, in one transaction with whatever other jobs are queued when the writer is free
    /// ([`group`]), and returns its result once that transaction committed.
    fn grouped(&self, job: group::Job) -> Result<group::Done> {
        let slot = self.queue.push(job);
        let mut writer = self.writer();
        let Writer { conn, known } = &mut *writer;
        let done = group::run_until_done(conn, known, &self.queue, &slot);
        drop(writer);
        self.nudge_checkpointer();
        done
    }

    /// Runs `f` in a read transaction (one snapshot) on a reader connection.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        match &self.readers {
            Some(pool) => {
                let reader = pool.get()?;
                in_read_transaction(reader.connection()?, f)
            }
            None => in_read_transaction(&self.writer(), f),
        }
    }
}

/// The writer connection, and the id keys its adds keep in memory ([`known`]).
struct Writer {
    conn: Connection,
    known: known::KnownIds,
}

impl Writer {
    fn new(conn: Connection) -> Writer {
        Writer {
            conn,
            known: known::KnownIds::default(),
        }
    }
}

impl std::ops::Deref for Writer {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl std::ops::DerefMut for Writer {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

/// Runs `f` in a deferred read transaction on `conn` (one snapshot). `BEGIN` and `COMMIT` are
/// cached statements: rusqlite's `Transaction` parses them again each time (`execute_batch`),
/// which was 8% of the server's samples when serving pages. A transaction `f` leaves open by
/// failing or panicking is rolled back, so the connection goes back to its pool clean.
fn in_read_transaction<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    struct Open<'c>(&'c Connection);
    impl Drop for Open<'_> {
        fn drop(&mut self) {
            // A rollback that fails leaves the transaction open: a pooled reader is then closed
            // instead of reused (`PooledReader::drop`).
            if !self.0.is_autocommit() {
                let _ = self
                    .0
                    .prepare_cached("ROLLBACK")
                    .and_then(|mut s| s.execute([]));
            }
        }
    }
    conn.prepare_cached("BEGIN")?.execute([])?;
    let open = Open(conn);
    let value = f(conn)?;
    conn.prepare_cached("COMMIT")?.execute([])?;
    drop(open);
    Ok(value)
}

/// A [`Snapshot`] on a connection inside its read transaction.
struct SqliteSnapshot<'c>(&'c Connection);

impl Snapshot for SqliteSnapshot<'_> {
    fn account(&self, name: &str) -> Result<Option<Account>> {
        accounts::by_name(self.0, name)
    }

    fn account_by_api_key(&self, key_sha256: &[u8; 32]) -> Result<Option<Account>> {
        accounts::by_credential(self.0, accounts::Credential::ApiKey, key_sha256)
    }

    fn account_by_client_cert(&self, cert_sha256: &[u8; 32]) -> Result<Option<Account>> {
        accounts::by_credential(self.0, accounts::Credential::ClientCert, cert_sha256)
    }

    fn collection(&self, api_root: &str, id_or_alias: &str) -> Result<Option<Collection>> {
        roots::collection(self.0, api_root, id_or_alias)
    }

    fn objects(&self, collection: &CollectionRef, query: &ObjectQuery) -> Result<ObjectPage> {
        objects::page(self.0, collection, query)
    }

    fn each_object(
        &self,
        collection: &CollectionRef,
        query: &ObjectQuery,
        sink: &mut dyn FnMut(RecordRef<'_>) -> Result<()>,
    ) -> Result<bool> {
        objects::each(self.0, collection, query, sink)
    }

    fn each_envelope_row(
        &self,
        collection: &CollectionRef,
        query: &ObjectQuery,
        sink: &mut dyn FnMut(EnvelopeRow<'_>) -> Result<()>,
    ) -> Result<bool> {
        objects::each_envelope_row(self.0, collection, query, sink)
    }
}

/// Page cache per connection. Pages are in the operating system's cache as well; a bigger SQLite
/// cache measured no faster at 1,000,000 objects, and SQLite scans it at the end of each write
/// transaction.
const CACHE_KIB: i64 = 16 * 1024;

fn configure(conn: &Connection, durability: Durability) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // The query planner stability guarantee. Without it, SQLite built with STAT4 (as the bundled
    // one is) marks a cached statement whose plan might depend on a bound value, such as the page
    // query's `LIMIT ?`, to be re-prepared each time that value is bound: every page was parsed
    // and planned again (a tenth of the server's CPU under `wrk`). Plans here do not depend on
    // values: the page query names its index, and the store keeps no statistics.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    conn.pragma_update(None, "foreign_keys", true)?;
    let sync = match durability {
        Durability::Process => "NORMAL",
        Durability::PowerLoss => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
    Ok(())
}

/// Reader connections: opened on demand, a few kept idle.
struct ReaderPool {
    path: PathBuf,
    durability: Durability,
    idle: Mutex<Vec<Connection>>,
}

impl ReaderPool {
    fn get(&self) -> Result<PooledReader<'_>> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE
                        | OpenFlags::SQLITE_OPEN_URI
                        | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                configure(&conn, self.durability)?;
                conn.pragma_update(None, "query_only", true)?;
                conn.pragma_update(None, "mmap_size", READER_MMAP_BYTES)?;
                conn
            }
        };
        Ok(PooledReader {
            pool: self,
            conn: Some(conn),
        })
    }
}

/// A reader connection on loan; goes back to the pool when dropped.
struct PooledReader<'a> {
    pool: &'a ReaderPool,
    /// Always `Some` until dropped.
    conn: Option<Connection>,
}

impl PooledReader<'_> {
    fn connection(&self) -> Result<&Connection> {
        self.conn
            .as_ref()
            .ok_or_else(|| StoreError::Corrupt("reader connection already returned".into()))
    }
}

impl Drop for PooledReader<'_> {
    fn drop(&mut self) {
        let mut idle = self
            .pool
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // A connection still in a transaction (a rollback that failed) is closed, not reused.
        if idle.len() < MAX_IDLE_READERS
            && let Some(conn) = self.conn.take()
            && conn.is_autocommit()
        {
            idle.push(conn);
        }
    }
}

pub(crate) fn tlp_to_int(tlp: Tlp) -> i64 {
    match tlp {
        Tlp::Clear => 0,
        Tlp::Green => 1,
        Tlp::Amber => 2,
        Tlp::AmberStrict => 3,
        Tlp::Red => 4,
    }
}

pub(crate) fn tlp_from_int(value: i64) -> Result<Tlp> {
    Ok(match value {
        0 => Tlp::Clear,
        1 => Tlp::Green,
        2 => Tlp::Amber,
        3 => Tlp::AmberStrict,
        4 => Tlp::Red,
        other => return Err(StoreError::Corrupt(format!("TLP level {other}"))),
    })
}

/// Maps a uniqueness violation to [`StoreError::Conflict`].
pub(crate) fn conflict(err: rusqlite::Error, what: impl FnOnce() -> String) -> StoreError {
    match &err {
        rusqlite::Error::SqliteFailure(e, _)
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict(what())
        }
        _ => StoreError::Database(err),
    }
}

impl Store for SqliteStore {
    fn create_api_root(&self, root: &ApiRoot) -> Result<()> {
        self.write(|tx| roots::create_api_root(tx, root))
    }

    fn api_roots(&self) -> Result<Vec<ApiRoot>> {
        self.read(roots::api_roots)
    }

    fn api_root(&self, name: &str) -> Result<Option<ApiRoot>> {
        self.read(|tx| roots::api_root(tx, name))
    }

    fn create_collection(&self, collection: &Collection) -> Result<()> {
        self.write(|tx| roots::create_collection(tx, collection))
    }

    fn collections(&self, api_root: &str) -> Result<Vec<Collection>> {
        self.read(|tx| roots::collections(tx, api_root))
    }

    fn collection(&self, api_root: &str, id_or_alias: &str) -> Result<Option<Collection>> {
        self.read(|tx| roots::collection(tx, api_root, id_or_alias))
    }

    fn add_objects(
        &self,
        collection: &CollectionRef,
        objects: Vec<NewObject>,
    ) -> Result<AddReport> {
        let (report, _) = group::added(self.grouped(group::Job::Add {
            collection: collection.clone(),
            objects,
            account: None,
            status: None,
        })?)?;
        Ok(report)
    }

    fn add_objects_audited(
        &self,
        collection: &CollectionRef,
        objects: Vec<NewObject>,
        account: &str,
    ) -> Result<AddReport> {
        let (report, _) = group::added(self.grouped(group::Job::Add {
            collection: collection.clone(),
            objects,
            account: Some(account.to_owned()),
            status: None,
        })?)?;
        Ok(report)
    }

    fn add_objects_audited_with_status(
        &self,
        collection: &CollectionRef,
        objects: Vec<NewObject>,
        account: &str,
        status: StatusDraft,
    ) -> Result<(AddReport, Status)> {
        match group::added(self.grouped(group::Job::Add {
            collection: collection.clone(),
            objects,
            account: Some(account.to_owned()),
            status: Some(status),
        })?)? {
            (report, Some(status)) => Ok((report, status)),
            (_, None) => Err(StoreError::Corrupt(
                "an add with a status draft stored no status".into(),
            )),
        }
    }

    fn objects(&self, collection: &CollectionRef, query: &ObjectQuery) -> Result<ObjectPage> {
        self.read(|tx| objects::page(tx, collection, query))
    }

    fn read_snapshot(&self, f: &mut dyn FnMut(&dyn Snapshot) -> Result<()>) -> Result<()> {
        self.read(|conn| f(&SqliteSnapshot(conn)))
    }

    fn delete_object(
        &self,
        collection: &CollectionRef,
        id: &str,
        query: &ObjectQuery,
    ) -> Result<u64> {
        self.write(|tx| objects::delete(tx, collection, id, query))
    }

    fn delete_object_if_cleared(
        &self,
        collection: &CollectionRef,
        id: &str,
        query: &ObjectQuery,
    ) -> Result<ClearedDelete> {
        self.write(|tx| objects::delete_if_cleared(tx, collection, id, query))
    }

    fn deletions(
        &self,
        collection: &CollectionRef,
        after_seq: Option<i64>,
        limit: usize,
    ) -> Result<DeletionPage> {
        self.read(|tx| deletions::page(tx, collection, after_seq, limit))
    }

    fn count_objects(&self, collection: &CollectionRef) -> Result<u64> {
        self.read(|tx| objects::count(tx, collection))
    }

    fn put_status(&self, status: &Status) -> Result<()> {
        self.grouped(group::Job::Status(status.clone()))?;
        Ok(())
    }

    fn status(&self, api_root: &str, id: &str) -> Result<Option<Status>> {
        self.read(|tx| records::status(tx, api_root, id))
    }

    fn expire_statuses(&self, before: Timestamp) -> Result<u64> {
        self.write(|tx| records::expire_statuses(tx, before))
    }

    fn create_account(&self, account: &NewAccount) -> Result<Account> {
        self.write(|tx| accounts::create(tx, account))
    }

    fn accounts(&self) -> Result<Vec<Account>> {
        self.read(accounts::all)
    }

    fn account(&self, name: &str) -> Result<Option<Account>> {
        self.read(|tx| accounts::by_name(tx, name))
    }

    fn revoke_account(&self, name: &str) -> Result<bool> {
        self.write(|tx| accounts::revoke(tx, name))
    }

    fn set_password_hash(&self, name: &str, phc: &str) -> Result<()> {
        self.write(|tx| accounts::set_password_hash(tx, name, phc))
    }

    fn add_api_key(&self, name: &str, key_sha256: &[u8; 32]) -> Result<()> {
        self.write(|tx| {
            accounts::add_credential(tx, accounts::Credential::ApiKey, name, key_sha256)
        })
    }

    fn account_by_api_key(&self, key_sha256: &[u8; 32]) -> Result<Option<Account>> {
        self.read(|tx| accounts::by_credential(tx, accounts::Credential::ApiKey, key_sha256))
    }

    fn add_client_cert(&self, name: &str, cert_sha256: &[u8; 32]) -> Result<()> {
        self.write(|tx| {
            accounts::add_credential(tx, accounts::Credential::ClientCert, name, cert_sha256)
        })
    }

    fn account_by_client_cert(&self, cert_sha256: &[u8; 32]) -> Result<Option<Account>> {
        self.read(|tx| accounts::by_credential(tx, accounts::Credential::ClientCert, cert_sha256))
    }

    fn set_permission(&self, name: &str, permission: &Permission) -> Result<()> {
        self.write(|tx| accounts::set_permission(tx, name, permission))
    }

    fn audit(&self, events: &[AuditEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        self.write(|tx| records::audit(tx, events))
    }

    fn audit_served(&self, events: &[ServedEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        match &self.read_log {
            Some(log) => {
                let mut conn = log.lock().unwrap_or_else(PoisonError::into_inner);
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                records::audit_served(&tx, events)?;
                tx.commit()?;
                Ok(())
            }
            None => self.write(|tx| records::audit_served(tx, events)),
        }
    }

    fn audit_events(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>> {
        let served = match &self.read_log {
            Some(log) => {
                let conn = log.lock().unwrap_or_else(PoisonError::into_inner);
                in_read_transaction(&conn, |tx| records::served_rows(tx, query))?
            }
            None => self.read(|tx| records::served_rows(tx, query))?,
        };
        self.read(|tx| records::audit_events(tx, query, served))
    }

    fn secret(&self, name: &str) -> Result<[u8; 32]> {
        // Fast path: most calls find it; only the first ever call needs the write lock.
        if let Some(secret) = self.read(|tx| records::read_secret(tx, name))? {
            return Ok(secret);
        }
        self.write(|tx| records::secret(tx, name))
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::StatementStatus;

    use super::*;

    /// For the tests of the store's parts: migrates `conn` and creates API root `r` holding
    /// `collection`.
    pub(super) fn with_collection(conn: &mut Connection, collection: &str) {
        schema::migrate(conn).unwrap();
        let tx = conn.transaction().unwrap();
        roots::create_api_root(
            &tx,
            &ApiRoot {
                name: "r".into(),
                title: "r".into(),
                description: None,
                max_content_length: 1 << 20,
            },
        )
        .unwrap();
        roots::create_collection(
            &tx,
            &Collection {
                api_root: "r".into(),
                id: collection.into(),
                title: "c".into(),
                description: None,
                alias: None,
                media_types: vec![],
            },
        )
        .unwrap();
        tx.commit().unwrap();
    }

    /// Regression: the page query (a bound `LIMIT`) was parsed again on every execution.
    #[test]
    fn cached_statements_with_a_bound_limit_are_not_prepared_again() {
        let conn = Connection::open_in_memory().unwrap_or_else(|e| panic!("{e}"));
        configure(&conn, Durability::Process).unwrap_or_else(|e| panic!("{e}"));
        conn.execute_batch(
            "CREATE TABLE t (seq INTEGER PRIMARY KEY, coll INTEGER NOT NULL);
             CREATE INDEX t_coll ON t(coll);
             INSERT INTO t (coll) VALUES (1), (1), (1);",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let sql = "SELECT seq FROM t INDEXED BY t_coll WHERE coll = ?1 AND seq > ?2
                   ORDER BY seq LIMIT ?3";
        for after in 0..5_i64 {
            let mut stmt = conn.prepare_cached(sql).unwrap_or_else(|e| panic!("{e}"));
            let rows = stmt
                .query_map(rusqlite::params![1, after, 2 + after], |row| {
                    row.get::<_, i64>(0)
                })
                .unwrap_or_else(|e| panic!("{e}"))
                .count();
            assert!(rows <= 3);
            assert_eq!(stmt.get_status(StatementStatus::RePrepare), 0);
        }
    }
}
