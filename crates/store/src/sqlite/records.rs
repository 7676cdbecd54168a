//! Status resources, the audit log and server secrets.

use std::collections::HashSet;
use std::fmt::Write as _;

use kizuna_stix::Timestamp;
use rand::RngCore;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Transaction, params, params_from_iter};

use crate::error::{Result, StoreError};
use crate::model::{
    AuditAction, AuditEvent, AuditQuery, AuditRecord, ServedEvent, ServedList, Status,
    StatusDetail, StatusState,
};

fn details_json(details: &[StatusDetail]) -> Result<String> {
    serde_json::to_string(details).map_err(|e| StoreError::Invalid(format!("status details: {e}")))
}

fn details_from(text: &str, status: &str) -> Result<Vec<StatusDetail>> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("details of status {status}: {e}")))
}

fn state_str(state: StatusState) -> &'static str {
    match state {
        StatusState::Pending => "pending",
        StatusState::Complete => "complete",
    }
}

pub(super) fn put_status(tx: &Transaction<'_>, s: &Status) -> Result<()> {
    let total = i64::try_from(s.total_count)
        .map_err(|_| StoreError::Invalid(format!("total_count {}", s.total_count)))?;
    tx.prepare_cached(
        "INSERT OR REPLACE INTO statuses
         (api_root, id, status, request_timestamp, total_count, successes, failures, pendings)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        s.api_root,
        s.id,
        state_str(s.status),
        s.request_timestamp.unix_micros(),
        total,
        details_json(&s.successes)?,
        details_json(&s.failures)?,
        details_json(&s.pendings)?,
    ])?;
    Ok(())
}

pub(super) fn status(tx: &Connection, api_root: &str, id: &str) -> Result<Option<Status>> {
    type Row = (String, String, i64, i64, String, String, String);
    let row: Option<Row> = tx
        .prepare_cached(
            "SELECT id, status, request_timestamp, total_count, successes, failures, pendings
             FROM statuses WHERE api_root = ?1 AND id = ?2",
        )?
        .query_row(params![api_root, id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .optional()?;
    let Some((id, state, time, total, successes, failures, pendings)) = row else {
        return Ok(None);
    };
    let status = match state.as_str() {
        "pending" => StatusState::Pending,
        "complete" => StatusState::Complete,
        other => return Err(StoreError::Corrupt(format!("status {id} state {other:?}"))),
    };
    Ok(Some(Status {
        api_root: api_root.to_owned(),
        status,
        request_timestamp: Timestamp::from_unix_micros(time),
        total_count: u64::try_from(total).unwrap_or(0),
        successes: details_from(&successes, &id)?,
        failures: details_from(&failures, &id)?,
        pendings: details_from(&pendings, &id)?,
        id,
    }))
}

pub(super) fn expire_statuses(tx: &Transaction<'_>, before: Timestamp) -> Result<u64> {
    let n = tx
        .prepare_cached("DELETE FROM statuses WHERE request_timestamp < ?1")?
        .execute([before.unix_micros()])?;
    Ok(u64::try_from(n).unwrap_or(0))
}

fn action_from(text: &str) -> Result<AuditAction> {
    Ok(match text {
        "write" => AuditAction::Write,
        "delete" => AuditAction::Delete,
        "serve" => AuditAction::Serve,
        "login-failed" => AuditAction::LoginFailed,
        "admin" => AuditAction::Admin,
        other => return Err(StoreError::Corrupt(format!("audit action {other:?}"))),
    })
}

pub(super) fn audit(tx: &Transaction<'_>, events: &[AuditEvent]) -> Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO audit (time, account, action, collection, object_id, version, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for e in events {
        insert.execute(params![
            e.time.unix_micros(),
            e.account,
            e.action.as_str(),
            e.collection,
            e.object_id,
            e.version,
            e.detail
        ])?;
    }
    Ok(())
}

/// The table of the read log (see [`SqliteStore`](super::SqliteStore): a database file of its own,
/// `audit-reads.db`, next to the objects' one; in memory, a table of the one database). One row
/// per response that served object versions, listing their rows' seqs
/// ([`ServedList::to_bytes`]); `seq` is its own sequence. No index besides the rowid: the log is
/// written on every read and queried by an operator now and then.
pub(super) const READ_LOG_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS served (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time INTEGER NOT NULL,
    account TEXT,
    collection TEXT,
    endpoint TEXT,
    seqs BLOB NOT NULL
);
";

pub(super) fn audit_served(tx: &Transaction<'_>, events: &[ServedEvent]) -> Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO served (time, account, collection, endpoint, seqs)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for e in events.iter().filter(|e| !e.versions.is_empty()) {
        insert.execute(params![
            e.time.unix_micros(),
            e.account,
            e.collection,
            e.endpoint,
            e.versions.to_bytes()
        ])?;
    }
    Ok(())
}

/// Ends an audit log query (`sql` with its `params`): `q`'s `since`, time order, and its limit in
/// rows unless it filters by object. Without an object filter every row yields at least one
/// record, so `limit` rows are enough for `limit` records; with one, a row listing seqs may yield
/// none.
fn since_in_time_order(sql: &mut String, params: &mut Vec<Value>, q: &AuditQuery) {
    if let Some(since) = q.since {
        params.push(Value::Integer(since.unix_micros()));
        let _ = write!(sql, " AND time >= ?{}", params.len());
    }
    sql.push_str(" ORDER BY time, seq");
    if q.limit > 0 && q.object_id.is_none() {
        params.push(Value::Integer(i64::try_from(q.limit).unwrap_or(i64::MAX)));
        let _ = write!(sql, " LIMIT ?{}", params.len());
    }
}

/// One row of the read log, as read back.
pub(super) struct ServedRow {
    seq: i64,
    time: Timestamp,
    account: Option<String>,
    collection: Option<String>,
    endpoint: Option<String>,
    seqs: ServedList,
}

/// The rows of the read log that may hold records `q` asks for, oldest first: filtered by account
/// and time here, by object when they are named ([`audit_events`]). With a limit and no object
/// filter, `limit` rows are enough (each lists at least one version).
pub(super) fn served_rows(conn: &Connection, q: &AuditQuery) -> Result<Vec<ServedRow>> {
    if q.action.is_some_and(|a| a != AuditAction::Serve) {
        return Ok(Vec::new());
    }
    let mut sql =
        "SELECT seq, time, account, collection, endpoint, seqs FROM served WHERE 1".to_owned();
    let mut params = Vec::new();
    if let Some(account) = &q.account {
        params.push(Value::Text(account.clone()));
        let _ = write!(sql, " AND account = ?{}", params.len());
    }
    since_in_time_order(&mut sql, &mut params, q);
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let seq: i64 = r.get(0)?;
        let bytes = r
            .get_ref(5)?
            .as_blob()
            .map_err(|e| StoreError::Corrupt(format!("read log row {seq}: seqs: {e}")))?;
        out.push(ServedRow {
            seq,
            time: Timestamp::from_unix_micros(r.get(1)?),
            account: r.get(2)?,
            collection: r.get(3)?,
            endpoint: r.get(4)?,
            seqs: ServedList::from_bytes(bytes)
                .map_err(|e| StoreError::Corrupt(format!("read log row {seq}: {e}")))?,
        });
    }
    Ok(out)
}

/// The write audit of one add: a single `write` row listing the rows added (`seqs`, as
/// [`audit_served`] lists the rows a response served), instead of a row and three index entries
/// (`audit_object` among them, a random page of the index dirtied per object) per version.
/// Nothing is written when `seqs` is empty.
pub(super) fn audit_written(
    tx: &Transaction<'_>,
    time: Timestamp,
    account: &str,
    collection: &str,
    seqs: std::ops::Range<i64>,
) -> Result<()> {
    if seqs.is_empty() {
        return Ok(());
    }
    let mut written = ServedList::default();
    for seq in seqs {
        written.push(seq);
    }
    tx.prepare_cached(
        "INSERT INTO audit (time, account, action, collection, seqs)
         VALUES (?1, ?2, 'write', ?3, ?4)",
    )?
    .execute(params![
        time.unix_micros(),
        account,
        collection,
        written.to_bytes()
    ])?;
    Ok(())
}

/// Names the object version of a row by its seq: from the row, or from the deletion log once the
/// row is deleted.
struct RowNames<'c> {
    stored: rusqlite::CachedStatement<'c>,
    deleted: rusqlite::CachedStatement<'c>,
}

impl<'c> RowNames<'c> {
    fn new(tx: &'c Connection) -> Result<Self> {
        Ok(Self {
            stored: tx
                .prepare_cached("SELECT id, version, version_digits FROM objects WHERE seq = ?1")?,
            deleted: tx.prepare_cached(
                "SELECT id, version, version_digits FROM deletions
                 WHERE object_seq = ?1 ORDER BY seq LIMIT 1",
            )?,
        })
    }

    /// (object id, version) of row `seq`; `None` if neither the objects nor the deletion log
    /// know it (which the store never leaves behind: see the schema's `V6_AUDIT_SEQS`).
    fn name(&mut self, seq: i64) -> Result<Option<(String, String)>> {
        let read = |row: &rusqlite::Row<'_>| -> rusqlite::Result<(String, i64, i64)> {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        };
        let found = match self.stored.query_row([seq], read).optional()? {
            Some(found) => Some(found),
            None => self.deleted.query_row([seq], read).optional()?,
        };
        Ok(found.map(|(id, version, digits)| {
            let version =
                Timestamp::from_unix_micros(version).with_digits(u8::try_from(digits).unwrap_or(6));
            (id, version.to_string())
        }))
    }
}

/// The seqs of every row, stored or deleted, that holds a version of `object_id` (any
/// collection).
fn seqs_of(tx: &Connection, object_id: &str) -> Result<HashSet<i64>> {
    let mut seqs = super::objects::seqs_of(tx, object_id)?;
    let mut deleted = tx.prepare_cached(
        "SELECT object_seq FROM deletions WHERE id = ?1 AND object_seq IS NOT NULL",
    )?;
    let rows = deleted.query_map([object_id], |row| row.get::<_, i64>(0))?;
    for seq in rows {
        seqs.insert(seq?);
    }
    Ok(seqs)
}

/// The records of the main log (`audit`, in `tx`) and of the read log's rows `served` (from
/// [`served_rows`]) that `q` asks for, merged in time order; `limit == 0` means no limit. A row
/// written by [`audit_served`] or [`audit_written`] becomes one record per version it lists, each
/// named (object id, version) from the row of its seq ([`RowNames`]). Main-log rows written before
/// the `seqs` column list `<id> <version>` lines in `served` and are read as such. Filtering by
/// object finds its versions' seqs first (stored and deleted rows), then keeps the rows listing
/// any of them, and of those only the versions of that object: a scan of the logs, as there is no
/// index per version served, on purpose (the logs are written on every read and queried by an
/// operator now and then).
pub(super) fn audit_events(
    tx: &Connection,
    q: &AuditQuery,
    served: Vec<ServedRow>,
) -> Result<Vec<AuditRecord>> {
    let mut sql =
        "SELECT seq, time, account, action, collection, object_id, version, detail, served, seqs
                   FROM audit WHERE 1"
            .to_owned();
    let mut params = Vec::new();
    if let Some(account) = &q.account {
        params.push(Value::Text(account.clone()));
        let _ = write!(sql, " AND account = ?{}", params.len());
    }
    if let Some(action) = q.action {
        params.push(Value::Text(action.as_str().to_owned()));
        let _ = write!(sql, " AND action = ?{}", params.len());
    }
    let wanted_seqs = match &q.object_id {
        Some(object_id) => {
            params.push(Value::Text(object_id.clone()));
            let n = params.len();
            // Lines are `<id> <version>`: the id between a line start and a space is an exact
            // match.
            params.push(Value::Text(format!("\n{object_id} ")));
            let _ = write!(
                sql,
                " AND (object_id = ?{n} OR seqs IS NOT NULL
                       OR (served IS NOT NULL AND instr(char(10) || served, ?{}) > 0))",
                n + 1
            );
            Some(seqs_of(tx, object_id)?)
        }
        None => None,
    };
    since_in_time_order(&mut sql, &mut params, q);
    let limit = if q.limit == 0 { usize::MAX } else { q.limit };
    let mut names = RowNames::new(tx)?;
    let mut stmt = tx.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(params))?;
    let mut out = Vec::new();
    while out.len() < limit
        && let Some(r) = rows.next()?
    {
        let record = AuditRecord {
            seq: r.get(0)?,
            time: Timestamp::from_unix_micros(r.get(1)?),
            account: r.get(2)?,
            action: action_from(&r.get::<_, String>(3)?)?,
            collection: r.get(4)?,
            object_id: r.get(5)?,
            version: r.get(6)?,
            detail: r.get(7)?,
        };
        if let Some(bytes) = r
            .get_ref(9)?
            .as_blob_or_null()
            .map_err(|e| StoreError::Corrupt(format!("audit event {}: seqs: {e}", record.seq)))?
        {
            let list = ServedList::from_bytes(bytes)
                .map_err(|e| StoreError::Corrupt(format!("audit event {}: {e}", record.seq)))?;
            expand(
                &mut names,
                &list,
                wanted_seqs.as_ref(),
                &record,
                &mut out,
                limit,
            )?;
            continue;
        }
        let Some(served) = r.get::<_, Option<String>>(8)? else {
            if q.object_id.is_none() || record.object_id == q.object_id {
                out.push(record);
            }
            continue;
        };
        for line in served.split('\n') {
            let (id, version) = line.split_once(' ').ok_or_else(|| {
                StoreError::Corrupt(format!("audit event {}: served {line:?}", record.seq))
            })?;
            if q.object_id.as_deref().is_some_and(|wanted| wanted != id) {
                continue;
            }
            if out.len() == limit {
                break;
            }
            out.push(AuditRecord {
                object_id: Some(id.to_owned()),
                version: Some(version.to_owned()),
                ..record.clone()
            });
        }
    }
    // The read log's records, named the same way, merged in by time (the main log's first on a
    // tie).
    let mut reads = Vec::new();
    for row in served {
        if reads.len() == limit {
            break;
        }
        let record = AuditRecord {
            seq: row.seq,
            time: row.time,
            account: row.account,
            action: AuditAction::Serve,
            collection: row.collection,
            object_id: None,
            version: None,
            detail: row.endpoint,
        };
        expand(
            &mut names,
            &row.seqs,
            wanted_seqs.as_ref(),
            &record,
            &mut reads,
            limit,
        )?;
    }
    if reads.is_empty() {
        return Ok(out);
    }
    let mut merged = Vec::with_capacity((out.len() + reads.len()).min(limit));
    let (mut main, mut reads) = (out.into_iter().peekable(), reads.into_iter().peekable());
    while merged.len() < limit {
        let next = match (main.peek(), reads.peek()) {
            (Some(m), Some(r)) if r.time < m.time => reads.next(),
            (Some(_), _) => main.next(),
            (None, _) => reads.next(),
        };
        match next {
            Some(record) => merged.push(record),
            None => break,
        }
    }
    Ok(merged)
}

/// Appends to `out`, up to `limit`, one record per seq of `list` (of `wanted` only, when given),
/// each `record` named by its row ([`RowNames`]).
fn expand(
    names: &mut RowNames<'_>,
    list: &ServedList,
    wanted: Option<&HashSet<i64>>,
    record: &AuditRecord,
    out: &mut Vec<AuditRecord>,
    limit: usize,
) -> Result<()> {
    for seq in list.iter() {
        if wanted.is_some_and(|w| !w.contains(&seq)) {
            continue;
        }
        if out.len() == limit {
            break;
        }
        let (object_id, version) = names.name(seq)?.unzip();
        out.push(AuditRecord {
            object_id,
            version,
            ..record.clone()
        });
    }
    Ok(())
}

pub(super) fn read_secret(tx: &Connection, name: &str) -> Result<Option<[u8; 32]>> {
    let value: Option<Vec<u8>> = tx
        .prepare_cached("SELECT value FROM secrets WHERE name = ?1")?
        .query_row([name], |row| row.get(0))
        .optional()?;
    value
        .map(|v| {
            <[u8; 32]>::try_from(v.as_slice())
                .map_err(|_| StoreError::Corrupt(format!("secret {name} is not 32 bytes")))
        })
        .transpose()
}

/// Creates the secret if no process has yet, then reads whichever value won.
pub(super) fn secret(tx: &Transaction<'_>, name: &str) -> Result<[u8; 32]> {
    let mut fresh = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut fresh)
        .map_err(|e| StoreError::Invalid(format!("no randomness for secret {name}: {e}")))?;
    tx.prepare_cached("INSERT OR IGNORE INTO secrets (name, value) VALUES (?1, ?2)")?
        .execute(params![name, &fresh[..]])?;
    read_secret(tx, name)?.ok_or_else(|| StoreError::Corrupt(format!("secret {name} vanished")))
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    /// An add's write audit is one row listing the seqs of the rows added, as one run; an add
    /// that added nothing writes nothing. (Reading it back, named by object, is the store
    /// conformance suite's `audit_of_reads`.)
    #[test]
    fn the_writes_of_one_add_are_one_row_of_seqs() {
        let mut conn = Connection::open_in_memory().unwrap_or_else(|e| panic!("{e}"));
        super::super::schema::migrate(&mut conn).unwrap_or_else(|e| panic!("{e}"));
        let tx = conn.transaction().unwrap_or_else(|e| panic!("{e}"));
        let time = Timestamp::parse("2026-11-26T12:00:00.000Z").unwrap_or_else(|e| panic!("{e}"));
        audit_written(&tx, time, "alice", "c1", 41..44).unwrap_or_else(|e| panic!("{e}"));
        // Nothing added, nothing written.
        audit_written(&tx, time, "alice", "c1", 44..44).unwrap_or_else(|e| panic!("{e}"));
        let rows: Vec<(String, String, Vec<u8>)> = tx
            .prepare("SELECT action, account, seqs FROM audit")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].0.as_str(), rows[0].1.as_str()), ("write", "alice"));
        let seqs = ServedList::from_bytes(&rows[0].2).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(seqs.iter().collect::<Vec<_>>(), [41, 42, 43]);
        assert!(rows[0].2.len() <= 4);
    }
}
