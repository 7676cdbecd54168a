//! Checkpoints off the write path.
//!
//! Why: in WAL mode SQLite copies the log back into the database file (a checkpoint) from inside
//! the commit that finds the log over its threshold, while that writer holds the write lock, so
//! every write waits for it. A checkpoint costs two fsyncs and a write of each page changed since
//! the last one: at 1,000,000 objects, before the id keys (`schema::V5_ID_KEYS`), about one page of
//! the random id index per object added, ~22% of the writer's time, and seconds of fsync on a busy
//! disk. Here a thread of its own, with
//! its own connection, does the copying in `PASSIVE` mode (it never blocks writers or readers),
//! nudged after each write commit, once the log file has grown past [`CHECKPOINT_BYTES`].
//!
//! The log file is truncated back to `journal_size_limit` (= [`CHECKPOINT_BYTES`]) when it
//! restarts, so a file larger than that holds more than [`CHECKPOINT_BYTES`] written since the last
//! complete checkpoint. A writer that keeps writing may append faster than one checkpoint copies;
//! the next checkpoint then waits for [`CHECKPOINT_STEP`] more, and SQLite's own checkpoint stays
//! on in the writer at four times the threshold ([`BACKSTOP_PAGES`]), so the log stays bounded
//! even if this thread falls behind. None of this changes what a commit guarantees: a committed
//! transaction is in the log before the commit returns, checkpointed or not.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags};

use crate::error::Result;

/// Log size past which this thread checkpoints; also the size the log file is truncated to when
/// it restarts. Not more: readers probe one WAL hash table per 16 MiB for each page they read,
/// and a WAL left by a killed process is replayed when the store is next opened.
pub(super) const CHECKPOINT_BYTES: i64 = 64 * 1024 * 1024;

/// Growth of the log after a checkpoint that left it unfinished (the writer appended meanwhile)
/// before the next one.
const CHECKPOINT_STEP: i64 = 16 * 1024 * 1024;

/// Log pages past which the writer checkpoints itself, should this thread fall behind.
pub(super) const BACKSTOP_PAGES: i64 = 4 * 16384;

#[derive(Debug, Default)]
struct Signal {
    /// A commit happened since the thread last looked.
    nudged: bool,
    /// The store is being dropped.
    stop: bool,
}

/// The checkpoint thread of one store handle; stopped when dropped.
#[derive(Debug)]
pub(super) struct Checkpointer {
    signal: Arc<(Mutex<Signal>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread, with a connection of its own to the database at `db`.
    pub(super) fn start(db: &Path) -> Result<Checkpointer> {
        let conn = Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(super::BUSY_TIMEOUT)?;
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        let signal = Arc::new((Mutex::new(Signal::default()), Condvar::new()));
        let theirs = signal.clone();
        let thread = std::thread::Builder::new()
            .name("kizuna-checkpoint".into())
            .spawn(move || run(&conn, &wal, &theirs))
            .map_err(|source| crate::error::StoreError::Io {
                path: db.display().to_string(),
                source,
            })?;
        Ok(Checkpointer {
            signal,
            thread: Some(thread),
        })
    }

    /// Tells the thread that a write committed.
    pub(super) fn nudge(&self) {
        let (lock, wake) = &*self.signal;
        lock.lock().unwrap_or_else(PoisonError::into_inner).nudged = true;
        wake.notify_one();
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (lock, wake) = &*self.signal;
        lock.lock().unwrap_or_else(PoisonError::into_inner).stop = true;
        wake.notify_one();
        if let Some(thread) = self.thread.take() {
            // A panic in the thread has nothing to report back; the writer's own checkpoint still
            // bounds the log.
            let _ = thread.join();
        }
    }
}

fn run(conn: &Connection, wal: &Path, signal: &(Mutex<Signal>, Condvar)) {
    let (lock, wake) = signal;
    let mut next = CHECKPOINT_BYTES;
    loop {
        {
            let mut state = lock.lock().unwrap_or_else(PoisonError::into_inner);
            while !state.nudged && !state.stop {
                state = wake.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
            if state.stop {
                return;
            }
            state.nudged = false;
        }
        let size = std::fs::metadata(wal).map_or(0, |m| i64::try_from(m.len()).unwrap_or(i64::MAX));
        let (checkpoint, after) = due(size, next);
        next = after;
        if !checkpoint {
            continue;
        }
        // An error (a busy database, a full disk) leaves the log as it is: the next nudge tries
        // again, and the writer's own checkpoint still bounds the log.
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }
}

/// Whether a log file of `size` bytes is to be checkpointed now, when the next checkpoint was due
/// past `next` bytes; and when the one after is due.
fn due(size: i64, next: i64) -> (bool, i64) {
    if size <= CHECKPOINT_BYTES {
        // The log restarted (and was truncated) since the last checkpoint.
        (false, CHECKPOINT_BYTES)
    } else if size <= next {
        (false, next)
    } else {
        (true, size.saturating_add(CHECKPOINT_STEP))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: i64 = 1024 * 1024;

    /// Past the threshold a checkpoint runs; if the log did not restart, the next one waits for
    /// another step of growth; once it restarted, the threshold applies again.
    #[test]
    fn checkpoints_are_due_by_log_growth() {
        let mut next = CHECKPOINT_BYTES;
        assert_eq!(due(10 * MIB, next), (false, CHECKPOINT_BYTES));
        assert_eq!(due(CHECKPOINT_BYTES, next), (false, CHECKPOINT_BYTES));
        let (run, after) = due(CHECKPOINT_BYTES + MIB, next);
        assert!(run);
        assert_eq!(after, CHECKPOINT_BYTES + MIB + CHECKPOINT_STEP);
        next = after;
        assert!(
            !due(CHECKPOINT_BYTES + 2 * MIB, next).0,
            "not again before a step"
        );
        assert!(due(next + 1, next).0, "again after a step");
        assert_eq!(
            due(CHECKPOINT_BYTES, next),
            (false, CHECKPOINT_BYTES),
            "restarted"
        );
    }
}
