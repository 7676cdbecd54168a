//! Object versions: adding, paging, deleting.
//!
//! Every statement here is an index seek (the tests below check the query plans): a page walks an
//! index in `seq` order from its cursor, so its cost does not depend on where in the collection it
//! starts, and adding an object looks its id up in the id index, so the cost of an add does not
//! grow with the collection (beyond the logarithm of a B-tree).
//!
//! Versions are kept in microseconds, TAXII's precision for dates: two versions of one object
//! less than a microsecond apart are the same version to the store.

use std::fmt::Write as _;

use kizuna_stix::Timestamp;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params, params_from_iter};

use super::known::{KnownIds, key_of};
use super::roots::collection_key;
use super::{tlp_from_int, tlp_to_int};
use crate::error::{Result, StoreError};
use crate::model::{
    AddOutcome, AddReport, ClearedDelete, CollectionRef, EnvelopeRow, NewObject, ObjectPage,
    ObjectQuery, RecordRef, VersionFilter,
};
use crate::password::sha256;

/// The key of the id index: 64 bits of FNV-1a over the id. An integer key keeps that index (the
/// only one whose inserts land at random places) a third the size of one on the id text, so
/// more of it stays in cache; the id itself is always compared too, so collisions are harmless.
pub(super) fn id_hash(id: &str) -> i64 {
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Number of fractional digits `t` is written with (so that a version prints back as received,
/// up to microsecond precision).
fn fraction_digits(t: &Timestamp) -> i64 {
    let text = t.to_string();
    match text.find('.') {
        Some(dot) => i64::try_from(text.len().saturating_sub(dot + 2)).unwrap_or(6),
        None => 0,
    }
}

/// The seqs of the rows whose id hash shares its top 32 bits with parameter `$p`: one seek in each
/// level of the id keys (`id_keys`, `id_keys_middle`, `id_keys_recent`).
macro_rules! keys {
    ($p:literal) => {
        concat!(
            "(SELECT seq FROM id_keys WHERE key = (",
            $p,
            " >> 32)
              UNION ALL SELECT seq FROM id_keys_middle WHERE key = (",
            $p,
            " >> 32)
              UNION ALL SELECT seq FROM id_keys_recent WHERE key = (",
            $p,
            " >> 32))"
        )
    };
}

/// Oldest and newest stored version of an id (`?1` collection, `?2` id, `?3` id hash). Run for
/// every object added: a join from the keys, which SQLite runs as a co-routine, where
/// `seq IN (…)` would build a temporary table each time.
const SPAN: &str = concat!(
    "SELECT min(o.version), max(o.version) FROM ",
    keys!("?3"),
    " AS k CROSS JOIN objects AS o ON o.seq = k.seq
     WHERE o.id_hash = ?3 AND o.coll = ?1 AND o.id = ?2"
);
/// The hash of the bytes stored for one version of an id.
const SAME_VERSION: &str = concat!(
    "SELECT o.sha256 FROM ",
    keys!("?4"),
    " AS k CROSS JOIN objects AS o ON o.seq = k.seq
     WHERE o.id_hash = ?4 AND o.coll = ?1 AND o.id = ?2 AND o.version = ?3"
);
/// Whether these exact bytes are stored under an id (for unversioned objects).
const SAME_BYTES: &str = concat!(
    "SELECT EXISTS (SELECT 1 FROM ",
    keys!("?4"),
    " AS k CROSS JOIN objects AS o ON o.seq = k.seq
     WHERE o.id_hash = ?4 AND o.coll = ?1 AND o.id = ?2 AND o.sha256 = ?3)"
);
/// Takes the `first` flag off a version.
const CLEAR_FIRST: &str = concat!(
    "UPDATE objects NOT INDEXED SET is_first = 0 WHERE seq IN ",
    keys!("?4"),
    " AND id_hash = ?4 AND coll = ?1 AND id = ?2 AND version = ?3"
);
/// Takes the `last` flag off a version.
const CLEAR_LAST: &str = concat!(
    "UPDATE objects NOT INDEXED SET is_last = 0 WHERE seq IN ",
    keys!("?4"),
    " AND id_hash = ?4 AND coll = ?1 AND id = ?2 AND version = ?3"
);
/// The rows of one id (`?1` collection, `?2` id, `?3` id hash), found by its keys; for a
/// statement on `objects NOT INDEXED` (so that SQLite looks the keys' seqs up rather than
/// walking the collection's index).
const BY_ID: &str = concat!(
    "seq IN ",
    keys!("?3"),
    " AND id_hash = ?3 AND coll = ?1 AND id = ?2"
);
/// The seqs of every stored row of an id, in any collection (`?1` id, `?2` id hash).
const SEQS_OF_ID: &str = concat!(
    "SELECT o.seq FROM ",
    keys!("?2"),
    " AS k CROSS JOIN objects AS o ON o.seq = k.seq WHERE o.id_hash = ?2 AND o.id = ?1"
);
/// Files a new row's id key (`?1` id hash, `?2` seq) in the recent level.
const FILE_KEY: &str = "INSERT INTO id_keys_recent (key, seq) VALUES (?1 >> 32, ?2)";
/// Keys in the recent level past which they are merged into the middle level.
const RECENT_KEYS: i64 = 2_000;
/// Keys in the middle level past which they are merged into the bulk level.
const MIDDLE_KEYS: i64 = 100_000;
/// The first seq added after an instant (`added_after`).
const FIRST_ADDED_AFTER: &str = "SELECT seq FROM objects INDEXED BY objects_added
     WHERE coll = ?1 AND date_added > ?2 ORDER BY date_added, seq LIMIT 1";

/// What [`add`] did.
pub(super) struct Added {
    pub report: AddReport,
    /// The seqs given to the versions added, one each in input order: the added ones are the
    /// only rows the add numbers, from the store-wide counter, so they are consecutive.
    pub seqs: std::ops::Range<i64>,
}

pub(super) fn add(
    tx: &Transaction<'_>,
    known: &mut KnownIds,
    collection: &CollectionRef,
    objects: &[NewObject],
) -> Result<Added> {
    let key = collection_key(tx, collection)?;
    // date_added never goes backwards along the sequence, even if the clock does or another
    // process's clock is ahead, and each call gets a later one than the call before: a client
    // that polls with `added_after` = the last date_added it saw can miss nothing, because the
    // objects sharing one date_added were all committed together.
    let last: i64 = tx
        .prepare_cached("SELECT last_date_added FROM collections WHERE key = ?1")?
        .query_row([key], |row| row.get(0))?;
    let date_added = Timestamp::now().unix_micros().max(last.saturating_add(1));
    let mut seq: i64 = tx
        .prepare_cached("SELECT value FROM counters WHERE name = 'objects'")?
        .query_row([], |row| row.get(0))?;
    let first_seq = seq + 1;
    known.catch_up(tx, seq)?;

    let mut span = tx.prepare_cached(SPAN)?;
    let mut same_version = tx.prepare_cached(SAME_VERSION)?;
    let mut same_bytes = tx.prepare_cached(SAME_BYTES)?;
    let mut clear_first = tx.prepare_cached(CLEAR_FIRST)?;
    let mut clear_last = tx.prepare_cached(CLEAR_LAST)?;
    let mut file_key = tx.prepare_cached(FILE_KEY)?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO objects (seq, coll, id, type, version, version_digits, spec_version,
                              date_added, tlp, is_first, is_last, sha256, json, id_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?;

    let mut outcomes = Vec::with_capacity(objects.len());
    let mut added: i64 = 0;
    for object in objects {
        let hash = sha256(object.json.as_bytes());
        let id = object.meta.id.as_str();
        let id_hash = id_hash(id);
        let versioned = object.meta.version();
        let (version, digits) = match &versioned {
            Some(v) => (v.unix_micros(), fraction_digits(v)),
            None => (date_added, 6),
        };
        // An id whose key no stored row has is new: no lookup ([`KnownIds`]).
        let (min, max): (Option<i64>, Option<i64>) = if known.may_hold(key_of(id_hash)) {
            span.query_row(params![key, id, id_hash], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?
        } else {
            (None, None)
        };
        let (is_first, is_last) = match (min, max) {
            (Some(min), Some(max)) => {
                // Unversioned objects (SCOs) take the date they were added as version, so a
                // repeat is recognised by its bytes alone.
                if versioned.is_none() {
                    let seen: bool = same_bytes
                        .query_row(params![key, id, &hash[..], id_hash], |row| row.get(0))?;
                    if seen {
                        outcomes.push(AddOutcome::Duplicate);
                        continue;
                    }
                }
                let stored: Option<Vec<u8>> = same_version
                    .query_row(params![key, id, version, id_hash], |row| row.get(0))
                    .optional()?;
                if let Some(stored) = stored {
                    outcomes.push(if stored == hash {
                        AddOutcome::Duplicate
                    } else if versioned.is_none() {
                        AddOutcome::Rejected(format!(
                            "another object with id {id} is added by the same request"
                        ))
                    } else {
                        AddOutcome::Rejected(format!(
                            "a different object with id {id} and version {} is already stored",
                            Timestamp::from_unix_micros(version)
                        ))
                    });
                    continue;
                }
                if version < min {
                    clear_first.execute(params![key, id, min, id_hash])?;
                }
                if version > max {
                    clear_last.execute(params![key, id, max, id_hash])?;
                }
                (version < min, version > max)
            }
            _ => (true, true),
        };
        seq += 1;
        insert.execute(params![
            seq,
            key,
            id,
            object.meta.id.object_type(),
            version,
            digits,
            &object.meta.spec_version,
            date_added,
            object.meta.tlp.map(tlp_to_int),
            is_first,
            is_last,
            &hash[..],
            &object.json,
            id_hash,
        ])?;
        file_key.execute(params![id_hash, seq])?;
        known.added(key_of(id_hash), seq);
        added += 1;
        outcomes.push(AddOutcome::Added);
    }
    if added > 0 {
        tx.prepare_cached(
            "UPDATE collections SET last_date_added = ?2, object_count = object_count + ?3
             WHERE key = ?1",
        )?
        .execute(params![key, date_added, added])?;
        tx.prepare_cached("UPDATE counters SET value = ?1 WHERE name = 'objects'")?
            .execute([seq])?;
        merge_keys(tx, RECENT_KEYS, MIDDLE_KEYS)?;
    }
    Ok(Added {
        report: AddReport {
            date_added: Timestamp::from_unix_micros(date_added),
            outcomes,
        },
        seqs: first_seq..seq + 1,
    })
}

/// Merges the recent level of the id keys into the middle one once it holds `recent` keys
/// ([`RECENT_KEYS`]), and the middle one into the bulk level once that holds `middle`
/// ([`MIDDLE_KEYS`]); see the schema's `V5_ID_KEYS` for why. Each merge inserts a level's keys in
/// key order, so it writes each page of the level below at most once, and then empties the level.
/// A merge into the bulk level runs inside the add that fills the middle one: at 1,000,000 keys
/// it took 0.17 s of CPU (bench/taxii/README.md), once per 100,000 objects added.
fn merge_keys(tx: &Transaction<'_>, recent: i64, middle: i64) -> Result<()> {
    // One table per level: `INSERT INTO t SELECT … FROM t` would copy the rows into a temporary
    // table first.
    let count = |level: &str| -> Result<i64> {
        Ok(tx
            .prepare_cached(&format!("SELECT count(*) FROM {level}"))?
            .query_row([], |row| row.get(0))?)
    };
    let merge = |from: &str, into: &str| -> Result<()> {
        tx.prepare_cached(&format!(
            "INSERT INTO {into} (key, seq) SELECT key, seq FROM {from} ORDER BY key, seq"
        ))?
        .execute([])?;
        tx.prepare_cached(&format!("DELETE FROM {from}"))?
            .execute([])?;
        Ok(())
    };
    if count("id_keys_recent")? >= recent {
        merge("id_keys_recent", "id_keys_middle")?;
        if count("id_keys_middle")? >= middle {
            merge("id_keys_middle", "id_keys")?;
        }
    }
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

/// The columns a page query selects: whole records ([`RecordRef`]), or what an envelope needs
/// ([`EnvelopeRow`]).
///
/// The JSON stays TEXT. SQLite's `OP_Column` copies a text or blob value out of its page into the
/// statement's register, NUL-terminated, whatever the column's type (the `memcpy` inside
/// `sqlite3_step` in a profile), so `sqlite3_column_text` then hands out that buffer without a
/// second copy: `CAST(json AS BLOB)` was measured to leave the copy where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Columns {
    /// `seq, id, type, version, version_digits, spec_version, date_added, tlp, json`
    Record,
    /// `seq, date_added, json`
    Envelope,
}

impl Columns {
    fn select(self) -> &'static str {
        match self {
            Columns::Record => {
                "seq, id, type, version, version_digits, spec_version, date_added, tlp, json"
            }
            Columns::Envelope => "seq, date_added, json",
        }
    }
}

/// Reads the row of a [`Columns::Record`] page query without copying a column.
fn record_ref<'r>(row: &'r Row<'_>) -> Result<RecordRef<'r>> {
    let text = |i: usize| -> Result<&'r str> {
        row.get_ref(i)?
            .as_str()
            .map_err(|e| StoreError::Corrupt(format!("object column {i}: {e}")))
    };
    let digits: i64 = row.get(4)?;
    let tlp: Option<i64> = row.get(7)?;
    Ok(RecordRef {
        seq: row.get(0)?,
        id: text(1)?,
        object_type: text(2)?,
        version: Timestamp::from_unix_micros(row.get(3)?)
            .with_digits(u8::try_from(digits).unwrap_or(6)),
        spec_version: text(5)?,
        date_added: Timestamp::from_unix_micros(row.get(6)?),
        tlp: tlp.map(tlp_from_int).transpose()?,
        json: json_bytes(row, 8)?,
    })
}

/// Reads the row of a [`Columns::Envelope`] page query without copying a column.
fn envelope_row<'r>(row: &'r Row<'_>) -> Result<EnvelopeRow<'r>> {
    Ok(EnvelopeRow {
        seq: row.get(0)?,
        date_added: Timestamp::from_unix_micros(row.get(1)?),
        json: json_bytes(row, 2)?,
    })
}

/// The JSON column `i`, borrowed from the row (not UTF-8 checked again: it was when stored).
fn json_bytes<'r>(row: &'r Row<'_>, i: usize) -> Result<&'r [u8]> {
    row.get_ref(i)?
        .as_bytes()
        .map_err(|e| StoreError::Corrupt(format!("object json: {e}")))
}

/// The page query for `query` in collection `key`, resuming after `after`, selecting `columns`.
fn page_sql(query: &ObjectQuery, key: i64, after: i64, columns: Columns) -> (String, Vec<Value>) {
    // The index is chosen here rather than by the planner (which has no statistics): each choice
    // yields rows in seq order, except for ids: their rows are found by the seqs of their keys
    // (`id_keys`), and sorted.
    let index = if !query.ids.is_empty() {
        // The rows of the ids, by their keys' seqs.
        ""
    } else if query.types.len() == 1 {
        "objects_type"
    } else {
        match query.versions {
            VersionFilter::Last => "objects_last",
            VersionFilter::First => "objects_first",
            _ => "objects_coll",
        }
    };
    let from = if index.is_empty() {
        "objects NOT INDEXED".to_owned()
    } else {
        format!("objects INDEXED BY {index}")
    };
    let mut sql = format!(
        "SELECT {} FROM {from} WHERE coll = ?1 AND seq > ?2",
        columns.select()
    );
    let mut params = vec![Value::Integer(key), Value::Integer(after)];
    if let Some(t) = query.added_after {
        params.push(Value::Integer(t.unix_micros()));
        let _ = write!(sql, " AND date_added > ?{}", params.len());
    }
    if !query.ids.is_empty() {
        let hashes: Vec<i64> = query.ids.iter().map(|id| id_hash(id)).collect();
        params.push(Value::Text(json_array(&hashes)));
        params.push(Value::Text(json_array(&query.ids)));
        let _ = write!(
            sql,
            " AND seq IN (SELECT seq FROM id_keys
                             WHERE key IN (SELECT value >> 32 FROM json_each(?{0}))
                           UNION ALL SELECT seq FROM id_keys_middle
                             WHERE key IN (SELECT value >> 32 FROM json_each(?{0}))
                           UNION ALL SELECT seq FROM id_keys_recent
                             WHERE key IN (SELECT value >> 32 FROM json_each(?{0})))
               AND id_hash IN (SELECT value FROM json_each(?{0}))
               AND id IN (SELECT value FROM json_each(?{1}))",
            params.len() - 1,
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

    (sql, params)
}

pub(super) fn page(
    tx: &Connection,
    collection: &CollectionRef,
    query: &ObjectQuery,
) -> Result<ObjectPage> {
    let mut records = Vec::with_capacity(query.limit.min(1000));
    let more = each(tx, collection, query, &mut |r| {
        records.push(r.to_record()?);
        Ok(())
    })?;
    Ok(ObjectPage { records, more })
}

/// Hands each record of the page `query` asks for to `sink`, borrowed from its row, in paging
/// order; returns whether more records match after the last one.
pub(super) fn each(
    tx: &Connection,
    collection: &CollectionRef,
    query: &ObjectQuery,
    sink: &mut dyn FnMut(RecordRef<'_>) -> Result<()>,
) -> Result<bool> {
    each_row(tx, collection, query, Columns::Record, &mut |row| {
        sink(record_ref(row)?)
    })
}

/// [`each`] with only the columns of an [`EnvelopeRow`].
pub(super) fn each_envelope_row(
    tx: &Connection,
    collection: &CollectionRef,
    query: &ObjectQuery,
    sink: &mut dyn FnMut(EnvelopeRow<'_>) -> Result<()>,
) -> Result<bool> {
    each_row(tx, collection, query, Columns::Envelope, &mut |row| {
        sink(envelope_row(row)?)
    })
}

/// Runs the page query for `query` selecting `columns` and hands each row of the page to `sink`;
/// returns whether more rows match after the last one.
fn each_row(
    tx: &Connection,
    collection: &CollectionRef,
    query: &ObjectQuery,
    columns: Columns,
    sink: &mut dyn FnMut(&Row<'_>) -> Result<()>,
) -> Result<bool> {
    let key = collection_key(tx, collection)?;
    let mut after = query.after_seq.unwrap_or(0);
    if let Some(t) = query.added_after {
        // date_added is non-decreasing along seq: the first row added after `t` bounds the range.
        let first: Option<i64> = tx
            .prepare_cached(FIRST_ADDED_AFTER)?
            .query_row(params![key, t.unix_micros()], |row| row.get(0))
            .optional()?;
        match first {
            Some(seq) => after = after.max(seq - 1),
            None => return Ok(false),
        }
    }

    let (sql, params) = page_sql(query, key, after, columns);
    let mut stmt = tx.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(params))?;
    let mut n = 0;
    while let Some(row) = rows.next()? {
        if n == query.limit {
            return Ok(true);
        }
        sink(row)?;
        n += 1;
    }
    Ok(false)
}

/// The seqs of every stored row of `id`, in any collection.
pub(super) fn seqs_of(tx: &Connection, id: &str) -> Result<std::collections::HashSet<i64>> {
    let mut stmt = tx.prepare_cached(SEQS_OF_ID)?;
    let rows = stmt.query_map(params![id, id_hash(id)], |row| row.get::<_, i64>(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn delete(
    tx: &Transaction<'_>,
    collection: &CollectionRef,
    id: &str,
    query: &ObjectQuery,
) -> Result<u64> {
    let key = collection_key(tx, collection)?;
    let mut conditions = BY_ID.to_owned();
    let mut params = vec![
        Value::Integer(key),
        Value::Text(id.to_owned()),
        Value::Integer(id_hash(id)),
    ];
    version_conditions(query, &mut conditions, &mut params);
    super::deletions::log(tx, &conditions, &params)?;
    let sql = format!("DELETE FROM objects NOT INDEXED WHERE {conditions}");
    let deleted = tx.prepare_cached(&sql)?.execute(params_from_iter(params))?;
    if deleted > 0 {
        tx.prepare_cached(&format!(
            "UPDATE objects NOT INDEXED
                 SET is_first = (version = (SELECT min(version) FROM objects NOT INDEXED
                                            WHERE {BY_ID})),
                     is_last = (version = (SELECT max(version) FROM objects NOT INDEXED
                                           WHERE {BY_ID}))
                 WHERE {BY_ID}"
        ))?
        .execute(params![key, id, id_hash(id)])?;
        // The keys of the versions deleted (seqs are never reused, so a stale key would only
        // cost a lookup).
        for level in ["id_keys", "id_keys_middle", "id_keys_recent"] {
            tx.prepare_cached(&format!(
                "DELETE FROM {level} WHERE key = (?1 >> 32)
                   AND NOT EXISTS (SELECT 1 FROM objects WHERE objects.seq = {level}.seq)"
            ))?
            .execute([id_hash(id)])?;
        }
        let deleted = i64::try_from(deleted)
            .map_err(|_| StoreError::Corrupt(format!("{deleted} rows deleted")))?;
        tx.prepare_cached(
            "UPDATE collections SET object_count = object_count - ?2 WHERE key = ?1",
        )?
        .execute(params![key, deleted])?;
    }
    Ok(u64::try_from(deleted).unwrap_or(0))
}

/// Counts the matching versions within and above the clearance, and deletes them only when
/// none is above it; the caller's write transaction makes the check and the delete one step.
pub(super) fn delete_if_cleared(
    tx: &Transaction<'_>,
    collection: &CollectionRef,
    id: &str,
    query: &ObjectQuery,
) -> Result<ClearedDelete> {
    let key = collection_key(tx, collection)?;
    let mut sql = "SELECT coalesce(sum(coalesce(tlp, ?4) <= ?5), 0),
                          coalesce(sum(coalesce(tlp, ?4) > ?5), 0)
                   FROM objects NOT INDEXED WHERE "
        .to_owned()
        + BY_ID;
    let mut params = vec![
        Value::Integer(key),
        Value::Text(id.to_owned()),
        Value::Integer(id_hash(id)),
        Value::Integer(tlp_to_int(query.unmarked_as)),
        Value::Integer(tlp_to_int(query.clearance)),
    ];
    version_conditions(query, &mut sql, &mut params);
    let (visible, hidden): (i64, i64) = tx
        .prepare_cached(&sql)?
        .query_row(params_from_iter(params), |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    Ok(if visible == 0 {
        ClearedDelete::NoneVisible
    } else if hidden > 0 {
        ClearedDelete::AboveClearance
    } else {
        ClearedDelete::Deleted(delete(tx, collection, id, query)?)
    })
}

pub(super) fn count(tx: &Connection, collection: &CollectionRef) -> Result<u64> {
    let key = collection_key(tx, collection)?;
    let count: i64 = tx
        .prepare_cached("SELECT object_count FROM collections WHERE key = ?1")?
        .query_row([key], |row| row.get(0))?;
    Ok(u64::try_from(count).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use kizuna_stix::Tlp;
    use rusqlite::Connection;

    use super::*;

    fn plan(conn: &Connection, sql: &str, params: Vec<Value>) -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        stmt.query_map(params_from_iter(params), |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    /// Every page query walks an index in seq order from the cursor: no table scan, no sort,
    /// except the `ids` query, which sorts the few versions of the ids it was given.
    #[test]
    fn page_queries_seek_an_index_in_seq_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        let t = Timestamp::parse("2020-01-01T00:00:00Z").unwrap();
        let base = ObjectQuery {
            limit: 100,
            clearance: Tlp::Amber,
            unmarked_as: Tlp::Green,
            ..ObjectQuery::default()
        };
        let set = VersionFilter::Set {
            last: true,
            first: false,
            at: vec![t],
        };
        let mut queries = Vec::new();
        for versions in [
            VersionFilter::Last,
            VersionFilter::First,
            VersionFilter::All,
            set,
        ] {
            for types in [
                vec![],
                vec!["indicator".to_owned()],
                vec!["a".into(), "b".into()],
            ] {
                for spec_versions in [vec![], vec!["2.1".to_owned()]] {
                    for added_after in [None, Some(t)] {
                        queries.push(ObjectQuery {
                            versions: versions.clone(),
                            types: types.clone(),
                            spec_versions: spec_versions.clone(),
                            added_after,
                            ..base.clone()
                        });
                    }
                }
            }
        }
        for columns in [Columns::Record, Columns::Envelope] {
            for query in &queries {
                let (sql, params) = page_sql(query, 1, 1000, columns);
                let plan = plan(&conn, &sql, params);
                let main = &plan[0];
                assert!(
                    main.starts_with("SEARCH objects USING INDEX objects_")
                        && main.contains("rowid>?"),
                    "{query:?}: {plan:?}"
                );
                assert!(
                    !plan.iter().any(|step| step.contains("TEMP B-TREE")),
                    "{query:?}: {plan:?}"
                );
            }
            let ids = ObjectQuery {
                ids: vec!["indicator--1".into(), "indicator--2".into()],
                ..base.clone()
            };
            let (sql, params) = page_sql(&ids, 1, 1000, columns);
            let plan = plan(&conn, &sql, params);
            assert!(
                plan[0].starts_with("SEARCH objects USING INTEGER PRIMARY KEY (rowid=?)"),
                "{plan:?}"
            );
            assert!(
                plan.iter()
                    .filter(|step| step.contains("id_keys"))
                    .all(|step| step.starts_with("SEARCH id_keys")
                        && step.contains("USING PRIMARY KEY (key=?)")),
                "{plan:?}"
            );
        }
    }

    /// Each page shape reads its own columns: a record whole, an envelope row as its record's
    /// seq, `date_added` and bytes.
    #[test]
    fn page_rows_read_their_columns() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        let json = r#"{"type":"indicator","id":"indicator--1"}"#;
        conn.execute(
            "INSERT INTO objects (seq, coll, id, type, version, version_digits, spec_version,
                                  date_added, tlp, is_first, is_last, sha256, json, id_hash)
             VALUES (7, 1, 'indicator--1', 'indicator', 5, 3, '2.1', 11, NULL, 1, 1, x'00', ?1, 0)",
            [json],
        )
        .unwrap();
        let query = ObjectQuery {
            limit: 10,
            clearance: Tlp::Red,
            unmarked_as: Tlp::Green,
            ..ObjectQuery::default()
        };
        for columns in [Columns::Record, Columns::Envelope] {
            let (sql, params) = page_sql(&query, 1, 0, columns);
            let mut stmt = conn.prepare(&sql).unwrap();
            let mut rows = stmt.query(params_from_iter(params)).unwrap();
            let row = rows.next().unwrap().unwrap();
            assert_eq!(
                row.as_ref().column_count(),
                match columns {
                    Columns::Record => 9,
                    Columns::Envelope => 3,
                }
            );
            let (seq, date_added, bytes) = match columns {
                Columns::Record => {
                    let r = record_ref(row).unwrap();
                    assert_eq!((r.id, r.spec_version), ("indicator--1", "2.1"));
                    (r.seq, r.date_added, r.json)
                }
                Columns::Envelope => {
                    let r = envelope_row(row).unwrap();
                    (r.seq, r.date_added, r.json)
                }
            };
            assert_eq!(
                (seq, date_added, bytes),
                (7, Timestamp::from_unix_micros(11), json.as_bytes())
            );
        }
    }

    /// What an add or a delete does per object are seeks: of the id's key in each level of the
    /// id keys, then of the rows by seq; whatever the collection's size.
    #[test]
    fn id_statements_seek() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        let n = || Value::Integer(1);
        let text = || Value::Text("x".into());
        let by_id = format!("SELECT count(*) FROM objects NOT INDEXED WHERE {BY_ID}");
        let delete = format!("DELETE FROM objects NOT INDEXED WHERE {BY_ID}");
        for (sql, params) in [
            (SPAN, vec![n(), text(), n()]),
            (SAME_VERSION, vec![n(), text(), n(), n()]),
            (SAME_BYTES, vec![n(), text(), n(), n()]),
            (CLEAR_FIRST, vec![n(), text(), n(), n()]),
            (CLEAR_LAST, vec![n(), text(), n(), n()]),
            (&by_id, vec![n(), text(), n()]),
            (&delete, vec![n(), text(), n()]),
        ] {
            let plan = plan(&conn, sql, params);
            let searches: Vec<&String> = plan
                .iter()
                .filter(|step| step.starts_with("SEARCH"))
                .collect();
            assert_eq!(
                searches
                    .iter()
                    .filter(|step| step.starts_with("SEARCH id_keys")
                        && step.contains(" USING PRIMARY KEY (key=?)"))
                    .count(),
                3,
                "one seek in each level: {sql}: {plan:?}"
            );
            assert!(
                searches
                    .iter()
                    .all(|step| step.starts_with("SEARCH id_keys")
                        || step.contains("USING INTEGER PRIMARY KEY (rowid=?)")),
                "{sql}: {plan:?}"
            );
            assert!(
                searches
                    .iter()
                    .any(|step| step.contains("USING INTEGER PRIMARY KEY (rowid=?)")),
                "{sql}: {plan:?}"
            );
            assert!(
                !plan.iter().any(|step| step.starts_with("SCAN")
                    && step != "SCAN CONSTANT ROW"
                    && step != "SCAN k"),
                "{sql}: {plan:?}"
            );
        }
        let plan = plan(&conn, FIRST_ADDED_AFTER, vec![n(), n()]);
        assert!(
            plan[0].starts_with("SEARCH objects USING COVERING INDEX objects_added (coll=? AND"),
            "{plan:?}"
        );
    }

    /// Keys move down a level when the level fills, all of them, and each level stays in key
    /// order; a lookup finds a key whatever its level.
    #[test]
    fn keys_merge_down_the_levels() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        let tx = conn.transaction().unwrap();
        let levels = |tx: &Transaction<'_>| -> Vec<Vec<(i64, i64)>> {
            ["id_keys", "id_keys_middle", "id_keys_recent"]
                .iter()
                .map(|level| {
                    tx.prepare(&format!("SELECT key, seq FROM {level}"))
                        .unwrap()
                        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                        .unwrap()
                        .collect::<rusqlite::Result<_>>()
                        .unwrap()
                })
                .collect()
        };
        let mut filed = Vec::new();
        for seq in 1..=25i64 {
            let hash = id_hash(&format!("indicator--{seq}"));
            tx.execute(FILE_KEY, params![hash, seq]).unwrap();
            filed.push((hash >> 32, seq));
            merge_keys(&tx, 4, 10).unwrap();
            let now = levels(&tx);
            assert!(now[2].len() < 4, "recent level merged when full: {now:?}");
            assert!(now[1].len() < 10, "middle level merged when full: {now:?}");
            let mut all: Vec<_> = now.concat();
            all.sort();
            let mut expected = filed.clone();
            expected.sort();
            assert_eq!(all, expected, "no key lost or doubled");
            for level in &now {
                assert!(level.windows(2).all(|w| w[0] < w[1]));
            }
            let sizes = (now[0].len(), now[1].len(), now[2].len());
            match seq {
                7 => assert_eq!(sizes, (0, 4, 3)),
                8 => assert_eq!(sizes, (0, 8, 0)),
                12 => assert_eq!(sizes, (12, 0, 0)),
                25 => assert_eq!(sizes, (24, 0, 1)),
                _ => {}
            }
        }
        for (key, seq) in filed {
            let found: i64 = tx
                .query_row(
                    concat!("SELECT count(*) FROM ", keys!("?1"), " WHERE seq = ?2"),
                    params![key << 32, seq],
                    |row| row.get(0),
                )
                .unwrap();
            assert_eq!(found, 1);
        }
    }
}
