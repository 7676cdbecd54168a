//! Object versions: adding, paging, deleting.
//!
//! Every statement here runs on an index whose order is the paging order (see the schema), so the
//! cost of a page does not depend on where in the collection it starts, and the cost of adding an
//! object does not depend on how many are stored.

use std::fmt::Write as _;

use kizuna_stix::Timestamp;
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Row, Transaction, params, params_from_iter};

use super::roots::collection_key;
use super::{tlp_from_int, tlp_to_int};
use crate::error::{Result, StoreError};
use crate::model::{
    AddOutcome, AddReport, CollectionRef, NewObject, ObjectPage, ObjectQuery, ObjectRecord,
    VersionFilter,
};
use crate::password::sha256;

/// Number of fractional digits `t` is written with (so that a version prints back as received,
/// up to microsecond precision).
fn fraction_digits(t: &Timestamp) -> i64 {
    let text = t.to_string();
    match text.find('.') {
        Some(dot) => i64::try_from(text.len().saturating_sub(dot + 2)).unwrap_or(6),
        None => 0,
    }
}

pub(super) fn add(
    tx: &Transaction<'_>,
    collection: &CollectionRef,
    objects: Vec<NewObject>,
) -> Result<AddReport> {
    let key = collection_key(tx, collection)?;
    // date_added never goes backwards along the sequence, even if the clock does or another
    // process's clock is ahead, and each call gets a later one than the call before: a client
    // that polls with `added_after` = the last date_added it saw can miss nothing, because the
    // objects sharing one date_added were all committed together.
    let last: i64 = tx
        .prepare_cached("SELECT last_date_added FROM collections WHERE key = ?1")?
        .query_row([key], |row| row.get(0))?;
    let date_added = Timestamp::now().unix_micros().max(last.saturating_add(1));

    let mut span = tx.prepare_cached(
        "SELECT (SELECT min(version) FROM objects WHERE coll = ?1 AND id = ?2),
                (SELECT max(version) FROM objects WHERE coll = ?1 AND id = ?2)",
    )?;
    let mut same_version = tx.prepare_cached(
        "SELECT sha256 FROM objects WHERE coll = ?1 AND id = ?2 AND version = ?3",
    )?;
    let mut same_bytes = tx.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM objects WHERE coll = ?1 AND id = ?2 AND sha256 = ?3)",
    )?;
    let mut clear_first = tx.prepare_cached(
        "UPDATE objects SET is_first = 0 WHERE coll = ?1 AND id = ?2 AND version = ?3",
    )?;
    let mut clear_last = tx.prepare_cached(
        "UPDATE objects SET is_last = 0 WHERE coll = ?1 AND id = ?2 AND version = ?3",
    )?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO objects (coll, id, type, version, version_digits, spec_version, date_added,
                              tlp, is_first, is_last, sha256, json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;

    let mut outcomes = Vec::with_capacity(objects.len());
    let mut added: i64 = 0;
    for object in objects {
        let hash = sha256(object.json.as_bytes());
        let id = object.meta.id.as_str();
        let versioned = object.meta.version();
        let (version, digits) = match &versioned {
            Some(v) => (v.unix_micros(), fraction_digits(v)),
            None => (date_added, 6),
        };
        let (min, max): (Option<i64>, Option<i64>) =
            span.query_row(params![key, id], |row| Ok((row.get(0)?, row.get(1)?)))?;
        if let (Some(min), Some(max)) = (min, max) {
            // Unversioned objects (SCOs) take the date they were added as version, so a repeat
            // is recognised by its bytes alone.
            if versioned.is_none() {
                let seen: bool =
                    same_bytes.query_row(params![key, id, &hash[..]], |row| row.get(0))?;
                if seen {
                    outcomes.push(AddOutcome::Duplicate);
                    continue;
                }
            }
            let stored: Option<Vec<u8>> = same_version
                .query_row(params![key, id, version], |row| row.get(0))
                .optional()?;
            if let Some(stored) = stored {
                outcomes.push(if stored == hash {
                    AddOutcome::Duplicate
                } else {
                    AddOutcome::Rejected(format!(
                        "a different object with id {id} and version {} is already stored",
                        Timestamp::from_unix_micros(version)
                    ))
                });
                continue;
            }
            let is_first = version < min;
            let is_last = version > max;
            if is_first {
                clear_first.execute(params![key, id, min])?;
            }
            if is_last {
                clear_last.execute(params![key, id, max])?;
            }
            insert_row(
                &mut insert,
                key,
                &object,
                version,
                digits,
                date_added,
                is_first,
                is_last,
                &hash,
            )?;
        } else {
            insert_row(
                &mut insert,
                key,
                &object,
                version,
                digits,
                date_added,
                true,
                true,
                &hash,
            )?;
        }
        added += 1;
        outcomes.push(AddOutcome::Added);
    }
    if added > 0 {
        tx.prepare_cached(
            "UPDATE collections SET last_date_added = ?2, object_count = object_count + ?3
             WHERE key = ?1",
        )?
        .execute(params![key, date_added, added])?;
    }
    Ok(AddReport {
        date_added: Timestamp::from_unix_micros(date_added),
        outcomes,
    })
}

#[allow(clippy::too_many_arguments)]
fn insert_row(
    insert: &mut rusqlite::CachedStatement<'_>,
    key: i64,
    object: &NewObject,
    version: i64,
    digits: i64,
    date_added: i64,
    is_first: bool,
    is_last: bool,
    hash: &[u8; 32],
) -> Result<()> {
    insert.execute(params![
        key,
        object.meta.id.as_str(),
        object.meta.id.object_type(),
        version,
        digits,
        object.meta.spec_version,
        date_added,
        object.meta.tlp.map(tlp_to_int),
        is_first,
        is_last,
        &hash[..],
        object.json,
    ])?;
    Ok(())
}

/// Appends the `match[version]` and `match[spec_version]` conditions.
fn version_conditions(query: &ObjectQuery, sql: &mut String, params: &mut Vec<Value>) {
    match &query.versions {
        VersionFilter::Last => sql.push_str(" AND is_last = 1"),
        VersionFilter::First => sql.push_str(" AND is_first = 1"),
        VersionFilter::All => {}
        VersionFilter::Set { last, first, at } => {
            let mut any = Vec::new();
            if *last {
                any.push("is_last = 1".to_owned());
            }
            if *first {
                any.push("is_first = 1".to_owned());
            }
            if !at.is_empty() {
                let micros: Vec<i64> = at.iter().map(Timestamp::unix_micros).collect();
                params.push(Value::Text(json_array(&micros)));
                any.push(format!(
                    "version IN (SELECT value FROM json_each(?{}))",
                    params.len()
                ));
            }
            if any.is_empty() {
                sql.push_str(" AND 0");
            } else {
                let _ = write!(sql, " AND ({})", any.join(" OR "));
            }
        }
    }
    if !query.spec_versions.is_empty() {
        params.push(Value::Text(json_array(&query.spec_versions)));
        let _ = write!(
            sql,
            " AND spec_version IN (SELECT value FROM json_each(?{}))",
            params.len()
        );
    }
}

fn json_array<T: serde::Serialize>(items: &[T]) -> String {
    // Serialising strings and integers cannot fail.
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

fn record_row(row: &Row<'_>) -> rusqlite::Result<(ObjectRecord, Option<i64>)> {
    let digits: i64 = row.get(4)?;
    Ok((
        ObjectRecord {
            seq: row.get(0)?,
            id: row.get(1)?,
            object_type: row.get(2)?,
            version: Timestamp::from_unix_micros(row.get(3)?)
                .with_digits(u8::try_from(digits).unwrap_or(6)),
            spec_version: row.get(5)?,
            date_added: Timestamp::from_unix_micros(row.get(6)?),
            tlp: None,
            json: row.get(8)?,
        },
        row.get(7)?,
    ))
}

pub(super) fn page(
    tx: &Transaction<'_>,
    collection: &CollectionRef,
    query: &ObjectQuery,
) -> Result<ObjectPage> {
    let key = collection_key(tx, collection)?;
    let mut after = query.after_seq.unwrap_or(0);
    if let Some(t) = query.added_after {
        // date_added is non-decreasing along seq: the first row added after `t` bounds the range.
        let first: Option<i64> = tx
            .prepare_cached(
                "SELECT seq FROM objects INDEXED BY objects_added
                 WHERE coll = ?1 AND date_added > ?2 ORDER BY date_added, seq LIMIT 1",
            )?
            .query_row(params![key, t.unix_micros()], |row| row.get(0))
            .optional()?;
        match first {
            Some(seq) => after = after.max(seq - 1),
            None => return Ok(ObjectPage::default()),
        }
    }

    // The index is chosen here rather than by the planner (which has no statistics): each choice
    // yields rows in seq order, except `objects_id`, which finds the few versions of the ids
    // asked for and sorts them.
    let index = if !query.ids.is_empty() {
        "objects_id"
    } else if query.types.len() == 1 {
        "objects_type"
    } else {
        match query.versions {
            VersionFilter::Last => "objects_last",
            VersionFilter::First => "objects_first",
            _ => "objects_coll",
        }
    };
    let mut sql = format!(
        "SELECT seq, id, type, version, version_digits, spec_version, date_added, tlp, json
         FROM objects INDEXED BY {index} WHERE coll = ?1 AND seq > ?2"
    );
    let mut params = vec![Value::Integer(key), Value::Integer(after)];
    if let Some(t) = query.added_after {
        params.push(Value::Integer(t.unix_micros()));
        let _ = write!(sql, " AND date_added > ?{}", params.len());
    }
    if !query.ids.is_empty() {
        params.push(Value::Text(json_array(&query.ids)));
        let _ = write!(
            sql,
            " AND id IN (SELECT value FROM json_each(?{}))",
            params.len()
        );
    }
    match query.types.as_slice() {
        [] => {}
        [one] => {
            params.push(Value::Text(one.clone()));
            let _ = write!(sql, " AND type = ?{}", params.len());
        }
        many => {
            params.push(Value::Text(json_array(many)));
            let _ = write!(
                sql,
                " AND type IN (SELECT value FROM json_each(?{}))",
                params.len()
            );
        }
    }
    version_conditions(query, &mut sql, &mut params);
    params.push(Value::Integer(tlp_to_int(query.unmarked_as)));
    params.push(Value::Integer(tlp_to_int(query.clearance)));
    let _ = write!(
        sql,
        " AND coalesce(tlp, ?{}) <= ?{}",
        params.len() - 1,
        params.len()
    );
    params.push(Value::Integer(
        i64::try_from(query.limit.saturating_add(1)).unwrap_or(i64::MAX),
    ));
    let _ = write!(sql, " ORDER BY seq LIMIT ?{}", params.len());

    let mut stmt = tx.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(params))?;
    let mut records = Vec::with_capacity(query.limit.min(1000));
    let mut more = false;
    while let Some(row) = rows.next()? {
        if records.len() == query.limit {
            more = true;
            break;
        }
        let (mut record, tlp) = record_row(row)?;
        record.tlp = tlp.map(tlp_from_int).transpose()?;
        records.push(record);
    }
    Ok(ObjectPage { records, more })
}

pub(super) fn delete(
    tx: &Transaction<'_>,
    collection: &CollectionRef,
    id: &str,
    query: &ObjectQuery,
) -> Result<u64> {
    let key = collection_key(tx, collection)?;
    let mut sql = "DELETE FROM objects WHERE coll = ?1 AND id = ?2".to_owned();
    let mut params = vec![Value::Integer(key), Value::Text(id.to_owned())];
    version_conditions(query, &mut sql, &mut params);
    let deleted = tx.prepare_cached(&sql)?.execute(params_from_iter(params))?;
    if deleted > 0 {
        tx.prepare_cached(
            "UPDATE objects
             SET is_first = (version = (SELECT min(version) FROM objects WHERE coll = ?1 AND id = ?2)),
                 is_last = (version = (SELECT max(version) FROM objects WHERE coll = ?1 AND id = ?2))
             WHERE coll = ?1 AND id = ?2",
        )?
        .execute(params![key, id])?;
        let deleted = i64::try_from(deleted)
            .map_err(|_| StoreError::Corrupt(format!("{deleted} rows deleted")))?;
        tx.prepare_cached(
            "UPDATE collections SET object_count = object_count - ?2 WHERE key = ?1",
        )?
        .execute(params![key, deleted])?;
    }
    Ok(u64::try_from(deleted).unwrap_or(0))
}

pub(super) fn count(tx: &Transaction<'_>, collection: &CollectionRef) -> Result<u64> {
    let key = collection_key(tx, collection)?;
    let count: i64 = tx
        .prepare_cached("SELECT object_count FROM collections WHERE key = ?1")?
        .query_row([key], |row| row.get(0))?;
    Ok(u64::try_from(count).unwrap_or(0))
}
