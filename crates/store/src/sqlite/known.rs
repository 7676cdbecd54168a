//! The id keys of every stored row, in memory: lets an add skip the duplicate check of an id the
//! store has never held.
//!
//! Every object added is first looked up by its id (the oldest and newest stored versions, for the
//! duplicate check and the `first`/`last` flags): a seek into each of the three levels of the id
//! keys (`id_keys`, `id_keys_middle`, `id_keys_recent`, see the schema's `V5_ID_KEYS`), about a
//! tenth of the server's CPU per object ingested. Most objects a hub receives are new ids, for
//! which the lookup finds nothing. [`KnownIds`] holds the key (the top 32 bits of the id hash) of
//! every row stored, so that an id whose key it lacks is known to be new without a lookup; an id
//! whose key it holds (stored, or sharing its key with one that is: one chance in 2^32 per stored
//! id) is looked up as before. It is only ever a superset of the keys stored: a key stays after
//! its rows are deleted or its transaction rolled back, which costs one lookup, never a wrong
//! answer.
//!
//! **Other writers.** Another process may write the same database (`kizuna import` beside
//! `kizuna serve`, or several servers on one store). Rows are numbered from the store-wide
//! counter under the write lock, so the rows this set has not seen are exactly those numbered
//! after the counter value it was last brought up to: at the start of each add, inside the write
//! transaction, it reads the keys of the rows past that value (an index range on the table's
//! `seq`), usually none. The value moves to what an add numbered only once its transaction
//! commits ([`KnownIds::commit`]); a rolled-back transaction's numbers will be given again, to
//! other rows, and those are then read like any other writer's.
//!
//! **Cost.** Loaded once the process has added a sixteenth as many rows as the store holds (at
//! once into an empty or small store; [`LOAD_AFTER`]): one read of the keys' tables, about 0.13 s
//! per million stored rows (measured: a one-object import into a 1,000,000-object store took
//! 139 ms with the load, 5 ms without), inside an add, so the writes queued behind it wait that
//! long, once per process. Then 4 bytes per stored row in a hash set (about 6 MB per million).

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use rusqlite::Connection;

use crate::error::Result;

/// The id key of an id hash, as filed in the id key tables (`key = id_hash >> 32`).
pub(super) fn key_of(id_hash: i64) -> u32 {
    // The top 32 bits, as the tables' arithmetic shift keeps them, reinterpreted.
    (id_hash >> 32) as u32
}

/// Spreads a key over 64 bits for the hash set: keys are already hash bits, but the set reads its
/// control bits from the top of the hash.
#[derive(Default)]
struct SpreadKey(u64);

impl Hasher for SpreadKey {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn write_u32(&mut self, key: u32) {
        self.0 = u64::from(key).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A process loads the keys once it has added at least `1 / LOAD_AFTER` as many rows as the store
/// has numbered: loading costs about 0.13 µs per stored row, the lookup it saves 1–2 µs per row
/// added, so a short-lived writer (`kizuna import` of a small file into a large store) does not
/// read a million keys to save a few lookups, and a server that keeps adding soon loads them.
const LOAD_AFTER: i64 = 16;

/// The id keys of the stored rows, and up to which row number they are known.
#[derive(Debug, Default)]
pub(super) struct KnownIds {
    keys: HashSet<u32, BuildHasherDefault<SpreadKey>>,
    /// Whether `keys` holds every stored key; until it does, every id is looked up.
    loaded: bool,
    /// Rows added while not loaded (counted toward [`LOAD_AFTER`]).
    added_unloaded: i64,
    /// Committed: the keys of every row numbered up to this counter value are in `keys`. `None`
    /// until loaded.
    committed: Option<i64>,
    /// The same, in the open write transaction (which may have added rows), if there is one.
    current: Option<i64>,
}

impl KnownIds {
    /// A write transaction begins: what it adds is provisional until [`KnownIds::commit`].
    pub(super) fn begin(&mut self) {
        self.current = self.committed;
    }

    /// The transaction begun last committed.
    pub(super) fn commit(&mut self) {
        self.committed = self.current;
    }

    /// The transaction begun last rolled back: the row numbers it used will be given again. Its
    /// keys stay (a superset is harmless).
    pub(super) fn rollback(&mut self) {
        self.current = self.committed;
    }

    /// Brings the set up to `counter`, the store's row counter as the open write transaction sees
    /// it: loads every key the first time (once worth it, [`LOAD_AFTER`]), else reads the keys of
    /// the rows numbered since.
    pub(super) fn catch_up(&mut self, tx: &Connection, counter: i64) -> Result<()> {
        match self.current {
            Some(seen) if seen == counter => return Ok(()),
            Some(seen) if seen < counter => {
                let mut stmt =
                    tx.prepare_cached("SELECT id_hash FROM objects WHERE seq > ?1 AND seq <= ?2")?;
                let mut rows = stmt.query([seen, counter])?;
                while let Some(row) = rows.next()? {
                    self.keys.insert(key_of(row.get(0)?));
                }
            }
            // Not loaded, or the counter went back (the file was replaced under a running
            // process, say): read everything, if worth it.
            _ => {
                self.keys.clear();
                self.loaded = false;
                if self.added_unloaded.saturating_mul(LOAD_AFTER) < counter {
                    return Ok(());
                }
                let mut stmt = tx.prepare_cached(
                    "SELECT key FROM id_keys UNION ALL SELECT key FROM id_keys_middle
                     UNION ALL SELECT key FROM id_keys_recent",
                )?;
                let mut rows = stmt.query([])?;
                while let Some(row) = rows.next()? {
                    // Keys are filed as `id_hash >> 32`, which fits 32 bits.
                    let key: i64 = row.get(0)?;
                    self.keys.insert(key as u32);
                }
                self.loaded = true;
            }
        }
        self.current = Some(counter);
        Ok(())
    }

    /// Whether a row with this id key may be stored: `false` means none is.
    pub(super) fn may_hold(&self, key: u32) -> bool {
        !self.loaded || self.keys.contains(&key)
    }

    /// Row `seq`, with id key `key`, was added in the open transaction: the set now knows the
    /// rows up to it.
    pub(super) fn added(&mut self, key: u32, seq: i64) {
        if self.loaded {
            self.keys.insert(key);
            self.current = Some(seq);
        } else {
            self.added_unloaded += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use kizuna_stix::ObjectMeta;
    use rusqlite::{Connection, TransactionBehavior};

    use super::*;
    use crate::model::{CollectionRef, NewObject};
    use crate::sqlite::objects;

    const COLLECTION: &str = "91a7b528-80eb-42ed-a74d-c6fbd5a26116";
    const X: &str = "indicator--00000000-0000-4000-8000-000000000001";
    const Y: &str = "indicator--00000000-0000-4000-8000-000000000002";
    const JAN: &str = "2024-01-01T00:00:00Z";
    const FEB: &str = "2024-02-01T00:00:00Z";
    /// [`FEB`] as the store keeps versions.
    const FEB_MICROS: i64 = 1_706_745_600_000_000;

    fn collection() -> CollectionRef {
        CollectionRef {
            api_root: "r".into(),
            id: COLLECTION.into(),
        }
    }

    /// A database file with one collection, and a second connection to it (another process).
    fn two_connections(dir: &std::path::Path) -> (Connection, Connection) {
        let path = dir.join("kizuna.db");
        let mut first = Connection::open(&path).unwrap();
        first.pragma_update(None, "journal_mode", "WAL").unwrap();
        crate::sqlite::tests::with_collection(&mut first, COLLECTION);
        (first, Connection::open(&path).unwrap())
    }

    fn object(id: &str, modified: &str) -> NewObject {
        let json = serde_json::json!({
            "type": "indicator", "spec_version": "2.1", "id": id,
            "created": "2024-01-01T00:00:00Z", "modified": modified,
        });
        NewObject {
            meta: ObjectMeta::from_value(&json).unwrap(),
            json: json.to_string(),
        }
    }

    /// Adds version `modified` of `id` in one transaction that commits or, if `commit` is false,
    /// rolls back.
    fn add_one(
        conn: &mut Connection,
        known: &mut KnownIds,
        id: &str,
        modified: &str,
        commit: bool,
    ) {
        add(conn, known, &[object(id, modified)], commit);
    }

    /// Adds `objects` in one transaction that commits or, if `commit` is false, rolls back.
    fn add(conn: &mut Connection, known: &mut KnownIds, objects: &[NewObject], commit: bool) {
        known.begin();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        objects::add(&tx, known, &collection(), objects).unwrap();
        if commit {
            tx.commit().unwrap();
            known.commit();
        } else {
            drop(tx);
            known.rollback();
        }
    }

    /// The versions of `id` flagged last.
    fn last_versions(conn: &Connection, id: &str) -> Vec<i64> {
        let mut stmt = conn
            .prepare("SELECT version FROM objects WHERE id = ?1 AND is_last = 1")
            .unwrap();
        stmt.query_map([id], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    /// We add `first` (and commit, or roll back), the other writer adds a version of `theirs`, and
    /// we add a later version of `theirs`: that must be its only version flagged last. Returns our
    /// id keys.
    fn after_the_other_writer(first: &str, commit_first: bool, theirs: &str) -> KnownIds {
        let dir = tempfile::tempdir().unwrap();
        let (mut ours, mut other) = two_connections(dir.path());
        let mut known = KnownIds::default();
        // Into the empty store: our set is loaded at once.
        add_one(&mut ours, &mut known, &nth(999), JAN, true);
        assert!(known.loaded);
        add_one(&mut ours, &mut known, first, JAN, commit_first);
        add_one(&mut other, &mut KnownIds::default(), theirs, JAN, true);
        add_one(&mut ours, &mut known, theirs, FEB, true);
        assert_eq!(last_versions(&ours, theirs), vec![FEB_MICROS], "{theirs}");
        assert!(
            known.loaded,
            "the rows the other writer added were read into the set"
        );
        known
    }

    #[test]
    fn rows_another_writer_added_are_looked_up() {
        // Our set is loaded (empty of X) before the other writer adds X.
        after_the_other_writer(Y, true, X);
    }

    #[test]
    fn numbers_of_a_rolled_back_add_are_read_again() {
        // Our add of X numbers a row, then rolls back: the other writer gives that number to Y.
        let known = after_the_other_writer(X, false, Y);
        assert!(known.may_hold(key_of(super::super::objects::id_hash(Y))));
    }

    /// The id of the `n`th object of a test.
    fn nth(n: u32) -> String {
        format!("indicator--00000000-0000-4000-8000-{:012}", 100 + n)
    }

    #[test]
    fn a_small_writer_to_a_larger_store_looks_ids_up_until_loading_pays() {
        let dir = tempfile::tempdir().unwrap();
        let (mut ours, mut other) = two_connections(dir.path());
        let theirs: Vec<NewObject> = (0..32).map(|n| object(&nth(n), JAN)).collect();
        add(&mut other, &mut KnownIds::default(), &theirs, true);
        let mut known = KnownIds::default();
        // The keys are loaded once 16 × our adds reach the row counter, which is 32, 33, 34 and
        // 35 before our adds: at our fourth add. Until then every id is looked up.
        for (n, loaded_after) in [(0, false), (1, false), (2, false), (3, true)] {
            add_one(&mut ours, &mut known, &nth(n), FEB, true);
            assert_eq!(known.loaded, loaded_after, "after our add {n}");
            assert_eq!(
                last_versions(&ours, &nth(n)),
                vec![FEB_MICROS],
                "{}",
                nth(n)
            );
        }
        assert!(known.may_hold(key_of(super::super::objects::id_hash(&nth(31)))));
        assert!(!known.may_hold(key_of(super::super::objects::id_hash(X))));
    }

    #[test]
    fn a_new_id_skips_nothing_it_should_not() {
        let dir = tempfile::tempdir().unwrap();
        let (mut ours, _) = two_connections(dir.path());
        let mut known = KnownIds::default();
        // Twice in one transaction, then again in another: the last version is the only last.
        add(
            &mut ours,
            &mut known,
            &[
                object(X, "2024-01-01T00:00:00Z"),
                object(X, "2024-03-01T00:00:00Z"),
            ],
            true,
        );
        add_one(&mut ours, &mut known, X, "2024-02-01T00:00:00Z", true);
        assert_eq!(last_versions(&ours, X), vec![1_709_251_200_000_000]);
        // A fresh set (a restarted process) loads the keys from the tables, once worth it.
        let mut fresh = KnownIds {
            added_unloaded: 1,
            ..KnownIds::default()
        };
        fresh.begin();
        fresh.catch_up(&ours, 3).unwrap();
        assert!(fresh.may_hold(key_of(super::super::objects::id_hash(X))));
        assert!(!fresh.may_hold(key_of(super::super::objects::id_hash(Y))));
    }
}
