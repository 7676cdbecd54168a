//! Group commit: object adds and status resources written at the same time share one write
//! transaction. A TAXII add's own status resource is part of the add's job
//! ([`Job::Add`]'s `status`), so it takes no job, and no commit, of its own.
//!
//! Why: on a busy hub, POSTs queue for the one writer connection anyway, and each commit has a
//! cost of its own besides the rows: the WAL frames of the pages every add touches (the tails of
//! the table and of its sequence-ordered indexes and of the audit log, the collection's row, the
//! sequence counter), SQLite's walk of its page cache at the end of each write transaction, and
//! the lock. So the writes that queue while one transaction runs are run together in the next and
//! committed once.
//!
//! How: a caller puts its [`Job`] (owned data: no closure crosses threads) on the queue, then takes
//! the writer lock. Whoever holds the lock takes the queued jobs (up to [`MAX_GROUP_OBJECTS`]
//! objects), runs them in one `BEGIN IMMEDIATE` transaction in the order they were queued, commits,
//! and then hands each job its result; a caller that gets the lock and finds its result already
//! there returns it. A result is handed over only after the commit that holds the job's writes,
//! so a caller is answered only once its write is as durable as a write of its own would be
//! (see [`Durability`](super::Durability)).
//!
//! A job that fails must not fail the others: then the whole transaction is rolled back and each
//! job of the group runs again in a transaction of its own, so each caller gets the result its
//! job would have had alone. (Savepoints would isolate the jobs too, but make SQLite copy every
//! page a job touches into a statement journal, on every group.)

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::known::KnownIds;
use super::{objects, records};
use crate::error::{Result, StoreError};
use crate::model::{AddReport, CollectionRef, NewObject, Status, StatusDraft};

/// Most objects one group adds (a group takes at least one job, whatever its size): bounds the
/// time a caller waits for the others of its group.
const MAX_GROUP_OBJECTS: usize = 5_000;

/// A write that may share a transaction with others.
#[derive(Debug)]
pub(super) enum Job {
    /// Adds objects; with an account, also audits the versions added as written by it (one
    /// audit row listing them); with a status draft, also stores the status resource that
    /// reports on the add.
    Add {
        collection: CollectionRef,
        objects: Vec<NewObject>,
        account: Option<String>,
        status: Option<StatusDraft>,
    },
    /// Creates or replaces a status resource.
    Status(Status),
}

/// What a [`Job`] returns.
#[derive(Debug)]
pub(super) enum Done {
    /// The report of an [`Job::Add`], and the status resource it stored, if it had a draft.
    Added(AddReport, Option<Status>),
    /// A [`Job::Status`] was stored.
    Stored,
}

impl Job {
    fn objects(&self) -> usize {
        match self {
            // A status counts as one more object.
            Job::Add {
                objects, status, ..
            } => objects.len() + usize::from(status.is_some()),
            Job::Status(_) => 1,
        }
    }

    fn run(&self, tx: &Transaction<'_>, known: &mut KnownIds) -> Result<Done> {
        match self {
            Job::Add {
                collection,
                objects,
                account,
                status,
            } => {
                let added = objects::add(tx, known, collection, objects)?;
                if let Some(account) = account {
                    // One audit row for the whole add, listing the rows added.
                    records::audit_written(
                        tx,
                        added.report.date_added,
                        account,
                        &collection.id,
                        added.seqs,
                    )?;
                }
                let report = added.report;
                let status = match status {
                    Some(draft) => {
                        let status = draft.complete(&report);
                        records::put_status(tx, &status)?;
                        Some(status)
                    }
                    None => None,
                };
                Ok(Done::Added(report, status))
            }
            Job::Status(status) => {
                records::put_status(tx, status)?;
                Ok(Done::Stored)
            }
        }
    }
}

/// Where a job's result is left for its caller.
type Slot = Arc<Mutex<Option<Result<Done>>>>;

/// Jobs waiting for the writer, oldest first.
#[derive(Debug, Default)]
pub(super) struct Queue {
    pending: Mutex<VecDeque<(Job, Slot)>>,
}

impl Queue {
    /// Queues `job`; its result will be left in the returned slot.
    pub(super) fn push(&self, job: Job) -> Slot {
        let slot = Slot::default();
        self.lock().push_back((job, slot.clone()));
        slot
    }

    /// The oldest jobs, up to [`MAX_GROUP_OBJECTS`] objects but at least one job.
    fn take_group(&self) -> Vec<(Job, Slot)> {
        let mut pending = self.lock();
        let mut group = Vec::new();
        let mut objects = 0;
        while let Some((job, _)) = pending.front() {
            if !group.is_empty() && objects + job.objects() > MAX_GROUP_OBJECTS {
                break;
            }
            objects += job.objects();
            if let Some(entry) = pending.pop_front() {
                group.push(entry);
            }
        }
        group
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Job, Slot)>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn take(slot: &Slot) -> Option<Result<Done>> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

fn put(slot: &Slot, result: Result<Done>) {
    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
}

/// Runs queued groups on `conn` (the writer, whose lock the caller holds, with the id keys it
/// keeps beside it) until the job whose result goes to `slot` has run, and returns that result.
/// The queue is first in, first out, so this ends.
pub(super) fn run_until_done(
    conn: &mut Connection,
    known: &mut KnownIds,
    queue: &Queue,
    slot: &Slot,
) -> Result<Done> {
    loop {
        if let Some(result) = take(slot) {
            return result;
        }
        let group = queue.take_group();
        if group.is_empty() {
            return Err(StoreError::Corrupt(
                "a queued write vanished from the write queue".into(),
            ));
        }
        run_group(conn, known, group);
    }
}

/// Runs `group` in one transaction, or, if any job fails, each job in one of its own.
fn run_group(conn: &mut Connection, known: &mut KnownIds, group: Vec<(Job, Slot)>) {
    if let [(job, slot)] = group.as_slice() {
        put(slot, alone(conn, known, job));
        return;
    }
    match together(conn, known, &group) {
        Ok(done) => {
            for ((_, slot), done) in group.iter().zip(done) {
                put(slot, Ok(done));
            }
        }
        Err(_) => {
            for (job, slot) in &group {
                put(slot, alone(conn, known, job));
            }
        }
    }
}

fn together(
    conn: &mut Connection,
    known: &mut KnownIds,
    group: &[(Job, Slot)],
) -> Result<Vec<Done>> {
    in_transaction(conn, known, |tx, known| {
        group
            .iter()
            .map(|(job, _)| job.run(tx, known))
            .collect::<Result<Vec<_>>>()
    })
}

fn alone(conn: &mut Connection, known: &mut KnownIds, job: &Job) -> Result<Done> {
    in_transaction(conn, known, |tx, known| job.run(tx, known))
}

/// Runs `f` in a `BEGIN IMMEDIATE` transaction and commits if it succeeds; `known` follows the
/// transaction's fate.
fn in_transaction<T>(
    conn: &mut Connection,
    known: &mut KnownIds,
    f: impl FnOnce(&Transaction<'_>, &mut KnownIds) -> Result<T>,
) -> Result<T> {
    known.begin();
    let result = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(Into::into)
        .and_then(|tx| {
            let value = f(&tx, known)?;
            tx.commit()?;
            Ok(value)
        });
    match &result {
        Ok(_) => known.commit(),
        Err(_) => known.rollback(),
    }
    result
}

/// The report of an add job's result, and the status resource it stored, if any.
pub(super) fn added(done: Done) -> Result<(AddReport, Option<Status>)> {
    match done {
        Done::Added(report, status) => Ok((report, status)),
        Done::Stored => Err(StoreError::Corrupt(
            "an add got the result of another write".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use kizuna_stix::ObjectMeta;

    use super::*;
    use crate::model::{AddOutcome, StatusState};

    const COLLECTION: &str = "91a7b528-80eb-42ed-a74d-c6fbd5a26116";

    fn store() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::tests::with_collection(&mut conn, COLLECTION);
        conn
    }

    fn add(collection: &str, n: u32) -> Job {
        let json = serde_json::json!({
            "type": "indicator", "spec_version": "2.1",
            "id": format!("indicator--00000000-0000-4000-8000-{n:012}"),
            "created": "2024-01-01T00:00:00Z", "modified": "2024-01-01T00:00:00Z",
        });
        Job::Add {
            collection: CollectionRef {
                api_root: "r".into(),
                id: collection.into(),
            },
            objects: vec![NewObject {
                meta: ObjectMeta::from_value(&json).unwrap(),
                json: json.to_string(),
            }],
            account: Some("alice".into()),
            status: None,
        }
    }

    /// [`add`] with the draft of status `id`.
    fn add_with_status(collection: &str, n: u32, id: &str) -> Job {
        let mut job = add(collection, n);
        if let Job::Add {
            status, objects, ..
        } = &mut job
        {
            *status = Some(StatusDraft {
                api_root: "r".into(),
                id: id.into(),
                request_timestamp: kizuna_stix::Timestamp::from_unix_micros(1),
                total_count: 1,
                failures: vec![],
                submitted: objects
                    .iter()
                    .map(|o| (o.meta.id.as_str().to_owned(), None))
                    .collect(),
            });
        }
        job
    }

    fn status(id: &str) -> Job {
        Job::Status(Status {
            api_root: "r".into(),
            id: id.into(),
            status: StatusState::Complete,
            request_timestamp: kizuna_stix::Timestamp::from_unix_micros(1),
            total_count: 1,
            successes: vec![],
            failures: vec![],
            pendings: vec![],
        })
    }

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |row| row.get(0)).unwrap()
    }

    /// Queued jobs run in one transaction, in order: each add gets its own, later, date_added.
    #[test]
    fn queued_jobs_commit_together_in_order() {
        let mut conn = store();
        let queue = Queue::default();
        let slots: Vec<Slot> = [
            add(COLLECTION, 1),
            status("s1"),
            add(COLLECTION, 2),
            add(COLLECTION, 3),
        ]
        .into_iter()
        .map(|job| queue.push(job))
        .collect();
        let first = run_until_done(&mut conn, &mut KnownIds::default(), &queue, &slots[0]).unwrap();
        assert!(queue.lock().is_empty(), "one group took every job");
        let mut dates = vec![added(first).unwrap().0.date_added];
        for slot in &slots[1..] {
            match take(slot).unwrap().unwrap() {
                Done::Added(report, _) => {
                    assert!(matches!(report.outcomes[..], [AddOutcome::Added]));
                    dates.push(report.date_added);
                }
                Done::Stored => {}
            }
        }
        assert!(dates.windows(2).all(|w| w[0] < w[1]), "{dates:?}");
        assert_eq!(count(&conn, "SELECT count(*) FROM objects"), 3);
        assert_eq!(count(&conn, "SELECT count(*) FROM audit"), 3);
        assert_eq!(count(&conn, "SELECT count(*) FROM statuses"), 1);
    }

    /// A failing job fails alone: the others of its group are stored and answered as if it had
    /// not been there.
    #[test]
    fn a_failing_job_fails_alone() {
        let mut conn = store();
        let queue = Queue::default();
        let good = queue.push(add(COLLECTION, 1));
        let bad = queue.push(add("00000000-0000-4000-8000-000000000000", 2));
        let also_good = queue.push(status("s1"));
        let result = run_until_done(&mut conn, &mut KnownIds::default(), &queue, &good).unwrap();
        assert!(matches!(
            added(result).unwrap().0.outcomes[..],
            [AddOutcome::Added]
        ));
        assert!(matches!(take(&bad), Some(Err(StoreError::NotFound(_)))));
        assert!(matches!(take(&also_good), Some(Ok(Done::Stored))));
        assert_eq!(count(&conn, "SELECT count(*) FROM objects"), 1);
        assert_eq!(count(&conn, "SELECT count(*) FROM statuses"), 1);
    }

    /// An add's status is written by the add's own job: stored with it when its group commits,
    /// and, when another job fails the group, stored once by the add rerun alone, or not at all
    /// if the add itself fails.
    #[test]
    fn an_add_stores_its_own_status() {
        let mut conn = store();
        let queue = Queue::default();
        let good = queue.push(add_with_status(COLLECTION, 1, "s1"));
        let bad = queue.push(add_with_status(
            "00000000-0000-4000-8000-000000000000",
            2,
            "s2",
        ));
        let result = run_until_done(&mut conn, &mut KnownIds::default(), &queue, &good).unwrap();
        let (report, status) = added(result).unwrap();
        assert!(matches!(report.outcomes[..], [AddOutcome::Added]));
        let status = status.unwrap();
        assert_eq!(status.id, "s1");
        assert_eq!(status.successes.len(), 1);
        assert!(matches!(take(&bad), Some(Err(StoreError::NotFound(_)))));
        assert_eq!(count(&conn, "SELECT count(*) FROM statuses"), 1);
        assert_eq!(
            count(&conn, "SELECT count(*) FROM statuses WHERE id = 's1'"),
            1
        );
        let together = queue.push(add_with_status(COLLECTION, 3, "s3"));
        let also = queue.push(add_with_status(COLLECTION, 4, "s4"));
        run_until_done(&mut conn, &mut KnownIds::default(), &queue, &together).unwrap();
        assert!(matches!(take(&also), Some(Ok(Done::Added(_, Some(_))))));
        assert_eq!(count(&conn, "SELECT count(*) FROM statuses"), 3);
        assert_eq!(count(&conn, "SELECT count(*) FROM objects"), 3);
    }

    /// A group stops at its object bound; the rest waits for the next one.
    #[test]
    fn groups_are_bounded() {
        let queue = Queue::default();
        // A status counts as one object.
        for _ in 0..(MAX_GROUP_OBJECTS + 10) {
            queue.push(status("x"));
        }
        assert_eq!(queue.take_group().len(), MAX_GROUP_OBJECTS);
        assert_eq!(queue.take_group().len(), 10);
        assert!(queue.take_group().is_empty());
    }
}
