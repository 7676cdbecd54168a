//! Status resources, the audit log and server secrets.

use std::fmt::Write as _;

use kizuna_stix::Timestamp;
use rand::RngCore;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Transaction, params, params_from_iter};

use crate::error::{Result, StoreError};
use crate::model::{
    AuditAction, AuditEvent, AuditQuery, AuditRecord, ServedEvent, Status, StatusDetail,
    StatusState,
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

pub(super) fn audit_served(tx: &Transaction<'_>, events: &[ServedEvent]) -> Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO audit (time, account, action, collection, detail, served)
         VALUES (?1, ?2, 'serve', ?3, ?4, ?5)",
    )?;
    for e in events.iter().filter(|e| !e.versions.is_empty()) {
        insert.execute(params![
            e.time.unix_micros(),
            e.account,
            e.collection,
            e.endpoint,
            e.versions.as_str()
        ])?;
    }
    Ok(())
}

/// The write audit of one add: a single `write` row listing every version added, one
/// `<object id> <version>` line each in `served` (as [`audit_served`] lists the versions of a
/// response), instead of a row and three index entries (`audit_object` among them, a random page
/// of the index dirtied per object) per version. Nothing is written when `versions` is empty. Ids
/// are [`StixId`](kizuna_stix::StixId)s and versions timestamps: neither can hold a space or a line
/// break, so no line can be misread.
pub(super) fn audit_written<'a>(
    tx: &Transaction<'_>,
    time: Timestamp,
    account: &str,
    collection: &str,
    versions: impl Iterator<Item = (&'a str, Timestamp)>,
) -> Result<()> {
    let mut written = String::new();
    for (id, version) in versions {
        if !written.is_empty() {
            written.push('\n');
        }
        let _ = write!(written, "{id} {version}");
    }
    if written.is_empty() {
        return Ok(());
    }
    tx.prepare_cached(
        "INSERT INTO audit (time, account, action, collection, served)
         VALUES (?1, ?2, 'write', ?3, ?4)",
    )?
    .execute(params![time.unix_micros(), account, collection, written])?;
    Ok(())
}

/// `limit == 0` means no limit. A row written by [`audit_served`] or [`audit_written`] becomes one
/// record per version
/// it lists. Filtering by object finds those rows with `instr` on their `served` text (a scan of
/// the log; there is no index per version served, on purpose), then keeps only the lines of that
/// object.
pub(super) fn audit_events(tx: &Connection, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
    let mut sql =
        "SELECT seq, time, account, action, collection, object_id, version, detail, served
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
    if let Some(object_id) = &q.object_id {
        params.push(Value::Text(object_id.clone()));
        let n = params.len();
        // Lines are `<id> <version>`: the id between a line start and a space is an exact match.
        params.push(Value::Text(format!("\n{object_id} ")));
        let _ = write!(
            sql,
            " AND (object_id = ?{n} OR (served IS NOT NULL AND instr(char(10) || served, ?{}) > 0))",
            n + 1
        );
    }
    if let Some(since) = q.since {
        params.push(Value::Integer(since.unix_micros()));
        let _ = write!(sql, " AND time >= ?{}", params.len());
    }
    sql.push_str(" ORDER BY seq");
    // Every row yields at least one record, so `limit` rows are enough for `limit` records.
    if q.limit > 0 {
        params.push(Value::Integer(i64::try_from(q.limit).unwrap_or(i64::MAX)));
        let _ = write!(sql, " LIMIT ?{}", params.len());
    }
    let limit = if q.limit == 0 { usize::MAX } else { q.limit };
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
        let Some(served) = r.get::<_, Option<String>>(8)? else {
            out.push(record);
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
    Ok(out)
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

    /// An add's write audit is one row, and reading the log expands it into one write record per
    /// version, found by object id; an id that is only a prefix of a listed one finds nothing.
    #[test]
    fn the_writes_of_one_add_are_one_row_expanded_when_read() {
        let mut conn = Connection::open_in_memory().unwrap_or_else(|e| panic!("{e}"));
        super::super::schema::migrate(&mut conn).unwrap_or_else(|e| panic!("{e}"));
        let tx = conn.transaction().unwrap_or_else(|e| panic!("{e}"));
        let time = Timestamp::parse("2026-11-26T12:00:00.000Z").unwrap_or_else(|e| panic!("{e}"));
        let v = |s: &str| Timestamp::parse(s).unwrap_or_else(|e| panic!("{e}"));
        let ids = [
            "indicator--00000000-0000-4000-8000-000000000001",
            "indicator--00000000-0000-4000-8000-000000000002",
            "ipv4-addr--00000000-0000-4000-8000-000000000003",
        ];
        let versions = [
            v("2024-01-01T00:00:00.000Z"),
            v("2024-02-01T00:00:00.123Z"),
            time,
        ];
        audit_written(&tx, time, "alice", "c1", ids.into_iter().zip(versions))
            .unwrap_or_else(|e| panic!("{e}"));
        // Nothing added, nothing written.
        audit_written(&tx, time, "alice", "c1", std::iter::empty())
            .unwrap_or_else(|e| panic!("{e}"));
        let rows: i64 = tx
            .query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rows, 1);

        let all = audit_events(
            &tx,
            &AuditQuery {
                action: Some(AuditAction::Write),
                ..AuditQuery::default()
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let got: Vec<(Option<&str>, Option<&str>)> = all
            .iter()
            .map(|e| (e.object_id.as_deref(), e.version.as_deref()))
            .collect();
        let expected: Vec<(Option<&str>, Option<String>)> = ids
            .iter()
            .zip(versions)
            .map(|(id, v)| (Some(*id), Some(v.to_string())))
            .collect();
        assert_eq!(
            got,
            expected
                .iter()
                .map(|(id, v)| (*id, v.as_deref()))
                .collect::<Vec<_>>()
        );
        assert!(all.iter().all(|e| e.account.as_deref() == Some("alice")
            && e.collection.as_deref() == Some("c1")
            && e.time == time
            && e.detail.is_none()));

        let by_object = |id: &str| {
            audit_events(
                &tx,
                &AuditQuery {
                    object_id: Some(id.to_owned()),
                    ..AuditQuery::default()
                },
            )
            .unwrap_or_else(|e| panic!("{e}"))
        };
        let second = by_object(ids[1]);
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].object_id.as_deref(), Some(ids[1]));
        assert_eq!(second[0].version, Some(versions[1].to_string()));
        assert!(by_object("indicator--00000000-0000-4000-8000-00000000000").is_empty());
        assert!(by_object("00000000-0000-4000-8000-000000000001").is_empty());
    }
}
