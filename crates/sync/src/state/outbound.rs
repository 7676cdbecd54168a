//! What push keeps about what happens *after* sending: deletion watermarks (how far each push
//! mapping's deletions have been answered by the partner, and its last refusal) and the outbound
//! quarantine (versions a partner rejected: counted across runs, set aside, put back by
//! `kizuna partner retry`). Deletions are not egress, so none of this is in the ledger; deletion
//! push only *reads* the ledger ([`SyncDb::sent_to`]) to know what went to whom.

use kizuna_stix::Timestamp;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::SyncDb;
use crate::error::Result;

/// The tables of this module, created beside the others.
pub(super) const SCHEMA: &str = "
-- For SyncDb::sent_to: was this object version pushed to this partner?
CREATE INDEX IF NOT EXISTS ledger_object ON ledger(object_id, partner);
CREATE TABLE IF NOT EXISTS deletion_watermark (
    partner TEXT NOT NULL,
    local_collection TEXT NOT NULL,
    remote_collection TEXT NOT NULL,
    seq INTEGER,
    deleted INTEGER NOT NULL DEFAULT 0,
    refused TEXT,
    updated TEXT NOT NULL,
    PRIMARY KEY (partner, local_collection, remote_collection)
);
CREATE TABLE IF NOT EXISTS outbound_rejection (
    partner TEXT NOT NULL,
    local_collection TEXT NOT NULL,
    remote_collection TEXT NOT NULL,
    object_id TEXT NOT NULL,
    version TEXT NOT NULL,
    seq INTEGER NOT NULL,
    message TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    first_time TEXT NOT NULL,
    last_time TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (partner, local_collection, remote_collection, object_id, version)
);
";

impl SyncDb {
    /// Whether this version of this object is recorded in the egress ledger as pushed to `partner`
    /// (versions compared as instants, whatever digits they were written with). Only push records
    /// count: a version the partner's account read over TAXII, or that went out in an export
    /// file, was not put into the collection our `DELETE` targets.
    pub fn sent_to(&self, partner: &str, object_id: &str, version: Timestamp) -> Result<bool> {
        let sent: Vec<String> = self.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT DISTINCT version FROM ledger
                 WHERE object_id = ?1 AND partner = ?2 AND (exit IS NULL OR exit = 'push')",
            )?;
            let rows = st.query_map(params![object_id, partner], |r| r.get(0))?;
            rows.collect()
        })?;
        Ok(sent
            .iter()
            .any(|v| Timestamp::parse(v).is_ok_and(|t| t.unix_micros() == version.unix_micros())))
    }

    // ----- deletions pushed -----

    /// The position in `local`'s deletion log up to which deletions have been sent to `remote`.
    pub fn deletion_watermark(
        &self,
        partner: &str,
        local: &str,
        remote: &str,
    ) -> Result<Option<i64>> {
        self.with(|c| {
            c.query_row(
                "SELECT seq FROM deletion_watermark
                 WHERE partner = ?1 AND local_collection = ?2 AND remote_collection = ?3",
                params![partner, local, remote],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()
            .map(Option::flatten)
        })
    }

    /// Records deletions answered by the partner (200, or 404: already gone) up to `seq` of the
    /// deletion log, `sent` DELETEs among them, and clears a recorded refusal. Call only after
    /// the partner answered.
    pub fn commit_deletions(
        &self,
        partner: &str,
        local: &str,
        remote: &str,
        seq: i64,
        sent: u64,
    ) -> Result<()> {
        let now = Timestamp::now().to_string();
        self.with(|c| {
            c.execute(
                "INSERT INTO deletion_watermark (partner, local_collection, remote_collection,
                     seq, deleted, refused, updated)
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6)
                 ON CONFLICT DO UPDATE SET seq = max(coalesce(seq, excluded.seq), excluded.seq),
                     deleted = deleted + excluded.deleted, refused = NULL,
                     updated = excluded.updated",
                params![partner, local, remote, seq, sent as i64, now],
            )?;
            Ok(())
        })
    }

    /// Records that the partner refused a DELETE (it did not grant us deletion): shown by
    /// `kizuna partner show` until a later DELETE succeeds.
    pub fn deletion_refused(
        &self,
        partner: &str,
        local: &str,
        remote: &str,
        message: &str,
    ) -> Result<()> {
        let now = Timestamp::now().to_string();
        self.with(|c| {
            c.execute(
                "INSERT INTO deletion_watermark (partner, local_collection, remote_collection,
                     seq, deleted, refused, updated)
                 VALUES (?1, ?2, ?3, NULL, 0, ?4, ?5)
                 ON CONFLICT DO UPDATE SET refused = excluded.refused, updated = excluded.updated",
                params![partner, local, remote, format!("{now}: {message}"), now],
            )?;
            Ok(())
        })
    }

    /// Where each push mapping's deletions stand.
    pub fn deletion_positions(&self, partner: &str) -> Result<Vec<DeletionPosition>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT local_collection, remote_collection, seq, deleted, refused, updated
                 FROM deletion_watermark WHERE partner = ?1
                 ORDER BY local_collection, remote_collection",
            )?;
            let rows = st.query_map(params![partner], |r| {
                Ok(DeletionPosition {
                    local: r.get(0)?,
                    remote: r.get(1)?,
                    seq: r.get(2)?,
                    deleted: r.get::<_, i64>(3)?.max(0) as u64,
                    refused: r.get(4)?,
                    updated: r.get(5)?,
                })
            })?;
            rows.collect()
        })
    }

    // ----- outbound quarantine -----

    /// Counts one more confirmed rejection of a version by the partner (its status said the
    /// version failed and its versions endpoint says it does not hold it). From `set_aside_after`
    /// attempts on (or at once for a version sent again by `partner retry`) the version is set
    /// aside. Returns the attempts counted so far and whether it is now set aside.
    pub fn count_rejection(
        &self,
        mapping: (&str, &str, &str),
        rejected: &Rejected,
        set_aside_after: u32,
    ) -> Result<(u32, bool)> {
        let (partner, local, remote) = mapping;
        let now = Timestamp::now().to_string();
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO outbound_rejection VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?8, 'counting')
                 ON CONFLICT DO UPDATE SET attempts = attempts + 1, message = excluded.message,
                     seq = excluded.seq, last_time = excluded.last_time,
                     state = CASE state WHEN 'retry' THEN 'set_aside' ELSE state END",
                params![
                    partner,
                    local,
                    remote,
                    rejected.object_id,
                    rejected.version,
                    rejected.seq,
                    rejected.message,
                    now
                ],
            )?;
            tx.execute(
                "UPDATE outbound_rejection SET state = 'set_aside'
                 WHERE partner = ?1 AND local_collection = ?2 AND remote_collection = ?3
                   AND object_id = ?4 AND version = ?5 AND attempts >= ?6",
                params![
                    partner,
                    local,
                    remote,
                    rejected.object_id,
                    rejected.version,
                    i64::from(set_aside_after.max(1))
                ],
            )?;
            let (attempts, state): (i64, String) = tx.query_row(
                "SELECT attempts, state FROM outbound_rejection
                 WHERE partner = ?1 AND local_collection = ?2 AND remote_collection = ?3
                   AND object_id = ?4 AND version = ?5",
                params![partner, local, remote, rejected.object_id, rejected.version],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            tx.commit()?;
            Ok((
                u32::try_from(attempts).unwrap_or(u32::MAX),
                state == "set_aside",
            ))
        })
    }

    /// Whether a version is set aside for this mapping (push skips it).
    pub fn is_set_aside(
        &self,
        mapping: (&str, &str, &str),
        object_id: &str,
        version: &str,
    ) -> Result<bool> {
        let (partner, local, remote) = mapping;
        self.with(|c| {
            c.query_row(
                "SELECT EXISTS (SELECT 1 FROM outbound_rejection
                 WHERE partner = ?1 AND local_collection = ?2 AND remote_collection = ?3
                   AND object_id = ?4 AND version = ?5 AND state = 'set_aside')",
                params![partner, local, remote, object_id, version],
                |r| r.get(0),
            )
        })
    }

    /// Whether any rejection is recorded for this mapping (so that push only looks versions up
    /// when there is something to find).
    pub fn has_rejections(&self, mapping: (&str, &str, &str)) -> Result<bool> {
        let (partner, local, remote) = mapping;
        self.with(|c| {
            c.query_row(
                "SELECT EXISTS (SELECT 1 FROM outbound_rejection
                 WHERE partner = ?1 AND local_collection = ?2 AND remote_collection = ?3)",
                params![partner, local, remote],
                |r| r.get(0),
            )
        })
    }

    /// Forgets the rejections of versions the partner has now accepted.
    pub fn clear_rejections(
        &self,
        mapping: (&str, &str, &str),
        accepted: &[(String, String)],
    ) -> Result<()> {
        let (partner, local, remote) = mapping;
        self.with(|c| {
            let tx = c.transaction()?;
            {
                let mut st = tx.prepare_cached(
                    "DELETE FROM outbound_rejection
                     WHERE partner = ?1 AND local_collection = ?2 AND remote_collection = ?3
                       AND object_id = ?4 AND version = ?5",
                )?;
                for (id, version) in accepted {
                    st.execute(params![partner, local, remote, id, version])?;
                }
            }
            tx.commit()
        })
    }

    /// Puts set-aside versions back, to be sent once more by the next push (all of a partner's,
    /// or one object's). Returns how many.
    pub fn retry_set_aside(&self, partner: &str, object_id: Option<&str>) -> Result<u64> {
        self.with(|c| {
            let n = c.execute(
                "UPDATE outbound_rejection SET state = 'retry'
                 WHERE partner = ?1 AND state = 'set_aside' AND (?2 IS NULL OR object_id = ?2)",
                params![partner, object_id],
            )?;
            Ok(n as u64)
        })
    }

    /// Versions put back by [`SyncDb::retry_set_aside`] for this mapping: (object id, version).
    pub fn retries(&self, mapping: (&str, &str, &str)) -> Result<Vec<(String, String)>> {
        let (partner, local, remote) = mapping;
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT object_id, version FROM outbound_rejection
                 WHERE partner = ?1 AND local_collection = ?2 AND remote_collection = ?3
                   AND state = 'retry' ORDER BY seq",
            )?;
            let rows = st.query_map(params![partner, local, remote], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            rows.collect()
        })
    }

    /// The partner's outbound quarantine: versions it rejected, set aside or still counting.
    pub fn outbound_quarantine(&self, partner: &str) -> Result<Vec<SetAside>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT local_collection, remote_collection, object_id, version, message,
                        attempts, first_time, last_time, state
                 FROM outbound_rejection WHERE partner = ?1 ORDER BY last_time DESC",
            )?;
            let rows = st.query_map(params![partner], |r| {
                Ok(SetAside {
                    local: r.get(0)?,
                    remote: r.get(1)?,
                    object_id: r.get(2)?,
                    version: r.get(3)?,
                    message: r.get(4)?,
                    attempts: r.get::<_, i64>(5)?.max(0) as u64,
                    first_time: r.get(6)?,
                    last_time: r.get(7)?,
                    state: r.get(8)?,
                })
            })?;
            rows.collect()
        })
    }
}

/// Where a push mapping's deletions stand ([`SyncDb::deletion_positions`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeletionPosition {
    /// Local collection id.
    pub local: String,
    /// Remote collection id.
    pub remote: String,
    /// Position in the local deletion log sent up to (`None`: nothing yet).
    pub seq: Option<i64>,
    /// DELETE requests the partner answered with 200 or 404, in total.
    pub deleted: u64,
    /// The partner's last refusal of a DELETE (401, 403, other 4xx), until one succeeds.
    pub refused: Option<String>,
    /// When this changed.
    pub updated: String,
}

/// A version the partner rejected for good ([`SyncDb::count_rejection`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Object id.
    pub object_id: String,
    /// Version, as sent.
    pub version: String,
    /// Its position in the local collection.
    pub seq: i64,
    /// The partner's failure message.
    pub message: String,
}

/// An entry of the outbound quarantine ([`SyncDb::outbound_quarantine`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetAside {
    /// Local collection id.
    pub local: String,
    /// Remote collection id.
    pub remote: String,
    /// Object id.
    pub object_id: String,
    /// Version, as sent.
    pub version: String,
    /// The partner's last failure message.
    pub message: String,
    /// Confirmed rejections counted, across runs.
    pub attempts: u64,
    /// First rejection.
    pub first_time: String,
    /// Last rejection.
    pub last_time: String,
    /// `counting` (still retried, blocking the mapping), `set_aside` (skipped; the watermark
    /// moved past it) or `retry` (to be sent once more by the next push).
    pub state: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::tests::entry;
    use crate::ledger::{Exit, LedgerStorage};

    #[test]
    fn rejections_are_counted_across_calls_then_set_aside_and_retried() {
        let db = SyncDb::open_in_memory().unwrap();
        let key = ("p", "l", "r");
        let rejected = |id: &str| Rejected {
            object_id: id.into(),
            version: "2026-01-01T00:00:00.000Z".into(),
            seq: 5,
            message: "invalid".into(),
        };
        assert!(!db.has_rejections(key).unwrap());
        assert_eq!(
            db.count_rejection(key, &rejected("a"), 2).unwrap(),
            (1, false)
        );
        assert!(db.has_rejections(key).unwrap());
        assert!(
            !db.is_set_aside(key, "a", "2026-01-01T00:00:00.000Z")
                .unwrap()
        );
        assert_eq!(
            db.count_rejection(key, &rejected("a"), 2).unwrap(),
            (2, true)
        );
        assert!(
            db.is_set_aside(key, "a", "2026-01-01T00:00:00.000Z")
                .unwrap()
        );
        // Another mapping of the same partner counts on its own.
        let other = ("p", "l", "r2");
        assert_eq!(
            db.count_rejection(other, &rejected("a"), 2).unwrap(),
            (1, false)
        );
        // Retry: only set-aside ones, only this partner; rejected again, straight back aside.
        assert_eq!(db.retry_set_aside("q", None).unwrap(), 0);
        assert_eq!(db.retry_set_aside("p", Some("a")).unwrap(), 1);
        assert_eq!(db.retries(key).unwrap().len(), 1);
        assert!(db.retries(other).unwrap().is_empty());
        assert_eq!(
            db.count_rejection(key, &rejected("a"), 10).unwrap(),
            (3, true)
        );
        assert!(db.retries(key).unwrap().is_empty());
        let q = db.outbound_quarantine("p").unwrap();
        assert_eq!(q.len(), 2);
        // Accepted at last: forgotten.
        db.clear_rejections(key, &[("a".into(), "2026-01-01T00:00:00.000Z".into())])
            .unwrap();
        assert!(!db.has_rejections(key).unwrap());
        assert!(db.has_rejections(other).unwrap());
    }

    #[test]
    fn deletion_watermark_advances_and_refusals_clear() {
        let db = SyncDb::open_in_memory().unwrap();
        assert_eq!(db.deletion_watermark("p", "l", "r").unwrap(), None);
        db.deletion_refused("p", "l", "r", "HTTP 403").unwrap();
        assert_eq!(db.deletion_watermark("p", "l", "r").unwrap(), None);
        let pos = db.deletion_positions("p").unwrap();
        assert!(pos[0].refused.as_deref().unwrap().ends_with("HTTP 403"));
        db.commit_deletions("p", "l", "r", 7, 2).unwrap();
        // Never backwards.
        db.commit_deletions("p", "l", "r", 3, 1).unwrap();
        assert_eq!(db.deletion_watermark("p", "l", "r").unwrap(), Some(7));
        let pos = db.deletion_positions("p").unwrap();
        assert_eq!((pos[0].deleted, pos[0].refused.as_deref()), (3, None));
    }

    #[test]
    fn sent_to_compares_versions_as_instants() {
        let db = SyncDb::open_in_memory().unwrap();
        let mut e = entry(1);
        e.exit = Exit::Push;
        e.object_id = "indicator--x".into();
        e.version = "2026-01-01T00:00:00.100Z".into();
        db.commit_push("dod", "l", "r", 1, &[e]).unwrap();
        let v = |t: &str| Timestamp::parse(t).unwrap();
        assert!(
            db.sent_to("dod", "indicator--x", v("2026-01-01T00:00:00.1Z"))
                .unwrap()
        );
        assert!(
            !db.sent_to("dod", "indicator--x", v("2026-01-01T00:00:00.2Z"))
                .unwrap()
        );
        assert!(
            !db.sent_to("other", "indicator--x", v("2026-01-01T00:00:00.1Z"))
                .unwrap()
        );
        // A version the partner's account read over TAXII was not pushed.
        let mut read = entry(2);
        read.exit = Exit::Taxii;
        read.object_id = "indicator--x".into();
        read.version = "2026-01-01T00:00:00.300Z".into();
        db.append(&[read]).unwrap();
        assert!(
            !db.sent_to("dod", "indicator--x", v("2026-01-01T00:00:00.3Z"))
                .unwrap()
        );
    }
}
