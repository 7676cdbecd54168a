//! The deletion log: what was deleted from a collection, in commit order, so that federation can
//! send deletions on to the partners a version was pushed to without comparing whole manifests.

use kizuna_stix::Timestamp;
use rusqlite::types::Value;
use rusqlite::{Connection, Transaction, params, params_from_iter};

use super::roots::collection_key;
use crate::error::Result;
use crate::model::{CollectionRef, DeletionPage, DeletionRecord};

/// Logs the versions of `objects` matching `conditions` (a `WHERE` clause over `objects` with
/// `params`), with the seqs of their rows (by which the audit log names what it served), before
/// the caller deletes them in the same transaction.
pub(super) fn log(tx: &Transaction<'_>, conditions: &str, params: &[Value]) -> Result<()> {
    let time = params.len() + 1;
    let sql = format!(
        "INSERT INTO deletions (coll, id, version, version_digits, versioned, time, object_seq)
         SELECT coll, id, version, version_digits,
                json_extract(json, '$.modified') IS NOT NULL
                    OR json_extract(json, '$.created') IS NOT NULL,
                ?{time}, seq
         FROM objects NOT INDEXED WHERE {conditions} ORDER BY version"
    );
    let mut all = params.to_vec();
    all.push(Value::Integer(Timestamp::now().unix_micros()));
    tx.prepare_cached(&sql)?.execute(params_from_iter(all))?;
    Ok(())
}

/// Up to `limit` records of a collection's log after `after`.
pub(super) fn page(
    tx: &Connection,
    collection: &CollectionRef,
    after: Option<i64>,
    limit: usize,
) -> Result<DeletionPage> {
    let key = collection_key(tx, collection)?;
    let limit = limit.max(1);
    let mut st = tx.prepare_cached(
        "SELECT seq, id, version, version_digits, versioned, time FROM deletions
         WHERE coll = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )?;
    let mut rows = st.query(params![
        key,
        after.unwrap_or(i64::MIN),
        i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1)
    ])?;
    let mut records = Vec::new();
    let mut more = false;
    while let Some(row) = rows.next()? {
        if records.len() == limit {
            more = true;
            break;
        }
        let digits: i64 = row.get(3)?;
        records.push(DeletionRecord {
            seq: row.get(0)?,
            id: row.get(1)?,
            version: Timestamp::from_unix_micros(row.get(2)?)
                .with_digits(u8::try_from(digits).unwrap_or(6)),
            versioned: row.get(4)?,
            time: Timestamp::from_unix_micros(row.get(5)?),
        });
    }
    Ok(DeletionPage { records, more })
}
