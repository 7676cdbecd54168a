//! Audit events of reads, written off the request path with group commit.
//!
//! Every object version served by Get Objects and Get an Object is audited. A response's versions
//! are one [`ServedEvent`] (one row in the store's log, listing them all by the seqs of their rows,
//! [`kizuna_store::ServedList`]; the log expands it per version when read): a row and three index
//! entries per object version cost the hub about half of its CPU when serving pages of 100, and
//! listing them as `<id> <version>` text still a fifth. Writing each response's event in a transaction of its
//! own, before answering, costs a commit per response: it took the p99 of a page of 100 from
//! under a millisecond to tens of milliseconds. Instead, a request hands its event to the
//! [`AuditWriter`] and answers; one dedicated thread takes whatever has accumulated within
//! [`LINGER`] of the first event (up to [`MAX_BATCH`] versions) and writes it in one store
//! transaction, so that many responses share one commit.
//!
//! # What this guarantees, and what it trades
//!
//! - **Bounded, lossless under load.** The queue holds at most
//!   [`ServiceConfig::audit_queue`](crate::ServiceConfig::audit_queue) versions served; a request that
//!   finds it full waits for room before it answers. Overload slows reads down; it never drops
//!   their audit events.
//! - **Fail closed.** While the store refuses the audit log's writes (the writer retries the
//!   failed batch with backoff), new reads are refused with 500, as they were when each read
//!   wrote its own events: no object is served unaudited for longer than the failure takes to
//!   show.
//! - **Flushed on graceful shutdown.** [`RunningServer::shutdown`](crate::RunningServer::shutdown)
//!   waits for every event queued by the requests it let finish to be committed, and the writer
//!   drains its queue when the last [`AppState`](crate::AppState) holding it is dropped.
//!   [`AuditWriter::flush`] waits for the same at any time.
//! - **The trade-off:** an event is durable once its batch commits, not when its response is
//!   sent. If the process is killed (SIGKILL, OOM killer, power loss) the events of reads answered
//!   in the moments before are lost: those of the last [`LINGER`] and one commit in normal
//!   operation, at most a full queue under overload; the objects served remain served.
//!
//! Writes, deletes and failed logins do not go through this queue: their events are committed
//! before the client is answered (a `202` to a POST, a `200` to a DELETE, a `401`), so they
//! survive a kill like the change they record.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kizuna_store::{ServedEvent, Store};

use crate::metrics::Metrics;

/// Most versions served written in one transaction (100 full pages of 100, 100 rows). Large
/// enough that a commit's fixed cost is spread over many responses; small enough that a read
/// waiting for room in a full queue waits for one short transaction, not a long one (room is made
/// each time the writer takes a batch).
pub const MAX_BATCH: usize = 10_000;

/// How long the writer waits for more events after the first one of a batch, unless the batch
/// fills up, a flush is asked for, or the writer is closing. It adds at most this much to how
/// long an event stays only in memory.
pub const LINGER: Duration = Duration::from_millis(10);

/// Failed attempts at a batch after which, once the writer is closing, the batch is given up.
const ATTEMPTS_WHEN_CLOSING: u32 = 5;

/// Why an event could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditUnavailable {
    /// The store refused the last batch; the writer is retrying it.
    #[error("the audit log cannot be written at the moment")]
    Failing,
    /// The writer has been shut down.
    #[error("the audit log writer has stopped")]
    Closed,
}

/// The group-commit writer of read audit events (see the module documentation). Owned by
/// [`AppState`](crate::AppState); dropping it drains the queue and stops the thread.
pub struct AuditWriter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when events are queued or the writer is closed.
    work: Condvar,
    /// Signalled when events leave the queue (room) or are finished (progress).
    progress: Condvar,
    capacity: usize,
}

#[derive(Default)]
struct Queue {
    events: VecDeque<ServedEvent>,
    /// Versions served in `events`: what the capacity bounds.
    versions: usize,
    /// Versions ever queued.
    queued: u64,
    /// Versions ever finished: committed or given up.
    finished: u64,
    /// The last batch failed to commit and is being retried.
    failing: bool,
    /// No more events are accepted; the writer drains what is queued and stops.
    closed: bool,
    /// Someone waits in [`AuditWriter::flush`]: commit without lingering until the queue is empty.
    urgent: bool,
    /// Requests waiting for room: the writer must not linger either.
    waiting_for_room: usize,
    /// The writer thread has ended.
    stopped: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl AuditWriter {
    /// Starts the writer thread on `store`, with room for `capacity` queued versions served (at
    /// least one response's worth is always accepted into an empty queue).
    pub fn start(
        store: Arc<dyn Store>,
        capacity: usize,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            progress: Condvar::new(),
            capacity: capacity.max(1),
        });
        let thread = std::thread::Builder::new()
            .name("kizuna-audit".to_owned())
            .spawn({
                let shared = Arc::clone(&shared);
                let metrics = Arc::clone(&metrics);
                move || {
                    let _stopped = Stopped(Arc::clone(&shared));
                    write_loop(&shared, store.as_ref(), &metrics);
                }
            })?;
        Ok(Self {
            shared,
            thread: Some(thread),
            metrics,
        })
    }

    /// Queues the event of one response. Blocking: waits while the queue is full. Fails while
    /// the store refuses audit writes, and after the writer stopped; the caller must then not
    /// serve what the event records.
    pub fn record(&self, event: ServedEvent) -> Result<(), AuditUnavailable> {
        let n = event.versions.len();
        if n == 0 {
            return Ok(());
        }
        let shared = &self.shared;
        let mut queue = shared.lock();
        let mut waited = false;
        loop {
            if queue.closed || queue.stopped {
                return Err(AuditUnavailable::Closed);
            }
            if queue.failing {
                return Err(AuditUnavailable::Failing);
            }
            if queue.events.is_empty() || queue.versions + n <= shared.capacity {
                break;
            }
            if !waited {
                waited = true;
                self.metrics.audit_queue_full();
            }
            queue.waiting_for_room += 1;
            shared.work.notify_one();
            queue = shared
                .progress
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
            queue.waiting_for_room -= 1;
        }
        // Wake the writer only when it waits for a first event or a full batch: while it lingers
        // or writes, it finds this event without being woken (a wake-up per response cost a
        // futex call and a context switch on every read).
        let wake = queue.events.is_empty() || queue.versions + n >= MAX_BATCH;
        queue.queued += n as u64;
        queue.versions += n;
        queue.events.push_back(event);
        drop(queue);
        if wake {
            shared.work.notify_one();
        }
        Ok(())
    }

    /// Waits until every version queued before this call is committed (or, only while closing
    /// after repeated store failures, given up). Blocking; while the store keeps failing, this
    /// keeps waiting.
    pub fn flush(&self) {
        self.flush_until(None);
    }

    /// [`AuditWriter::flush`] waiting at most `limit`; returns whether everything was flushed.
    pub fn flush_timeout(&self, limit: Duration) -> bool {
        self.flush_until(Some(Instant::now() + limit))
    }

    fn flush_until(&self, deadline: Option<Instant>) -> bool {
        let shared = &self.shared;
        let mut queue = shared.lock();
        let target = queue.queued;
        if queue.finished < target {
            queue.urgent = true;
            shared.work.notify_one();
        }
        while queue.finished < target && !queue.stopped {
            queue = match deadline {
                None => shared
                    .progress
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    shared
                        .progress
                        .wait_timeout(queue, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
        queue.finished >= target
    }

    /// Whether a response of `versions` versions served would wait for room in the queue now
    /// (see [`AuditWriter::record`]). A hint: other requests may fill or drain the queue before
    /// this one records its event.
    pub fn would_wait(&self, versions: usize) -> bool {
        let queue = self.shared.lock();
        !queue.events.is_empty() && queue.versions + versions > self.shared.capacity
    }

    /// Versions served queued and not yet committed.
    pub fn pending(&self) -> u64 {
        let queue = self.shared.lock();
        queue.queued - queue.finished
    }
}

impl Drop for AuditWriter {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.work.notify_all();
        self.shared.progress.notify_all();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the audit writer thread panicked");
        }
    }
}

/// Marks the writer stopped when its thread ends, however it ends, so that nobody waits for it.
struct Stopped(Arc<Shared>);

impl Drop for Stopped {
    fn drop(&mut self) {
        self.0.lock().stopped = true;
        self.0.progress.notify_all();
    }
}

fn write_loop(shared: &Shared, store: &dyn Store, metrics: &Metrics) {
    loop {
        let (batch, n): (Vec<ServedEvent>, usize) = {
            let mut queue = shared.lock();
            while queue.events.is_empty() && !queue.closed {
                queue = shared
                    .work
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if queue.events.is_empty() {
                return;
            }
            // Linger a little for more events: one commit of many events costs far less than
            // many commits of a few (each commit rewrites every index page it touched).
            let linger_until = Instant::now() + LINGER;
            while queue.versions < MAX_BATCH
                && !queue.closed
                && !queue.urgent
                && queue.waiting_for_room == 0
            {
                let left = linger_until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                queue = shared
                    .work
                    .wait_timeout(queue, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            // Whole responses, at least one, until the batch would pass MAX_BATCH versions.
            let mut n = 0;
            let mut take = 0;
            for event in &queue.events {
                if take > 0 && n + event.versions.len() > MAX_BATCH {
                    break;
                }
                n += event.versions.len();
                take += 1;
            }
            let batch: Vec<ServedEvent> = queue.events.drain(..take).collect();
            queue.versions -= n;
            if queue.events.is_empty() {
                queue.urgent = false;
            }
            (batch, n)
        };
        // Room was made.
        shared.progress.notify_all();
        let n = n as u64;
        let mut attempt: u32 = 0;
        loop {
            match store.audit_served(&batch) {
                Ok(()) => {
                    let mut queue = shared.lock();
                    queue.finished += n;
                    queue.failing = false;
                    break;
                }
                Err(e) => {
                    attempt += 1;
                    let give_up = {
                        let mut queue = shared.lock();
                        queue.failing = true;
                        let give_up = queue.closed && attempt >= ATTEMPTS_WHEN_CLOSING;
                        if give_up {
                            queue.finished += n;
                        }
                        give_up
                    };
                    // Requests waiting for room must learn that the log is failing.
                    shared.progress.notify_all();
                    if give_up {
                        tracing::error!(error = %e, events = n, "audit events lost: the store refused them while shutting down");
                        metrics.audit_events_lost(n);
                        break;
                    }
                    tracing::warn!(error = %e, events = n, attempt, "could not write audit events; retrying");
                    std::thread::sleep(backoff(attempt));
                }
            }
        }
        shared.progress.notify_all();
    }
}

/// Delay before retrying a failed batch: 50 ms doubling up to 2 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(50u64.saturating_mul(1 << attempt.min(6))).min(Duration::from_secs(2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kizuna_stix::Timestamp;
    use kizuna_store::{AuditQuery, SqliteStore};

    /// A response that served `n` versions, the first of them numbered `first`.
    fn event(first: usize, n: usize) -> ServedEvent {
        ServedEvent {
            time: Timestamp::now(),
            account: Some("a".to_owned()),
            collection: Some("c".to_owned()),
            endpoint: Some("objects".to_owned()),
            versions: {
                let mut list = kizuna_store::ServedList::default();
                for i in first..first + n {
                    // Rows that do not exist: the log still lists them, unnamed.
                    list.push(i64::try_from(i).unwrap());
                }
                list
            },
        }
    }

    fn served(store: &dyn Store) -> usize {
        store
            .audit_events(&AuditQuery {
                limit: 1_000_000,
                ..AuditQuery::default()
            })
            .unwrap()
            .len()
    }

    #[test]
    fn flush_waits_for_every_event_queued_before_it() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        // A queue smaller than the load: producers wait for room instead of dropping.
        let writer =
            Arc::new(AuditWriter::start(store.clone(), 10, Arc::new(Metrics::new())).unwrap());
        std::thread::scope(|scope| {
            for t in 0..4 {
                let writer = Arc::clone(&writer);
                scope.spawn(move || {
                    for i in 0..50 {
                        writer.record(event(t * 1000 + i * 10, 7)).unwrap();
                    }
                });
            }
        });
        writer.flush();
        assert_eq!(writer.pending(), 0);
        assert_eq!(served(store.as_ref()), 4 * 50 * 7);
    }

    #[test]
    fn dropping_the_writer_drains_the_queue() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        let writer = AuditWriter::start(store.clone(), 100_000, Arc::new(Metrics::new())).unwrap();
        for i in 0..20 {
            writer.record(event(i * 100, 100)).unwrap();
        }
        drop(writer);
        assert_eq!(served(store.as_ref()), 2000);
    }

    /// An empty queue takes a response of any size, so a read never goes to the blocking pool
    /// only because its page is larger than the queue.
    #[test]
    fn an_empty_queue_never_makes_a_read_wait() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        let writer = AuditWriter::start(store, 10, Arc::new(Metrics::new())).unwrap();
        assert!(!writer.would_wait(1));
        assert!(!writer.would_wait(1000));
        writer.record(event(0, 1000)).unwrap();
        writer.flush();
        assert!(!writer.would_wait(1000));
    }

    #[test]
    fn backoff_is_bounded() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(40), Duration::from_secs(2));
    }
}
