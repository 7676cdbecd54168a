//! Walking paths into messages: single files, mbox files (split on `From ` lines that follow
//! a blank line or read like a postmark, mboxrd `>From ` unescaped) and Maildir folders (`new/` then `cur/`; `tmp/` holds deliveries in
//! progress and is skipped).
//!
//! Splitting an mbox is sequential, extracting its messages is not: the messages of an mbox
//! are read in batches and a batch is extracted on every core (one contiguous share per
//! thread) while the previous batch is handed out, so that reading and the caller's work
//! (matching, writing) overlap extraction. Observations come out in mbox order, so the output
//! is the same whatever the number of threads, and memory stays bounded by two batches.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::{MailOptions, scan_message};
use crate::{Error, Observation};

/// Directory levels walked below a path given on the command line.
const MAX_WALK_DEPTH: usize = 8;
/// Messages of an mbox read before they are extracted together.
const BATCH_MESSAGES: usize = 64;
/// Raw bytes of an mbox read before a batch is extracted, whatever its number of messages.
const BATCH_BYTES: usize = 16 << 20;

/// Yields one observation per message found under the given paths, in a stable order
/// (directory entries sorted by name). Errors name the path or message and never stop the walk.
pub struct MailSource {
    pending: VecDeque<(PathBuf, usize)>,
    mbox: Option<Mbox>,
    options: MailOptions,
    /// Extracted, not yet handed out (the rest of an mbox batch).
    ready: VecDeque<Result<Observation, Error>>,
    /// The next mbox batch, being extracted while `ready` is handed out.
    inflight: Option<Inflight>,
    jobs: usize,
}

/// A batch being extracted on other threads.
struct Inflight {
    handle: std::thread::JoinHandle<Vec<Result<Observation, Error>>>,
    /// The messages' names, to report them should the extraction thread die.
    names: Vec<String>,
    /// A read error that ended the mbox after this batch.
    failure: Option<Error>,
}

struct Mbox {
    path: String,
    reader: BufReader<File>,
    /// The `From ` line that starts the next message has been read already.
    started: bool,
    /// The previous line was blank: a `From ` line starts a message after a blank line or when
    /// it reads like a postmark, so that an unescaped `From ` in a body (mboxo) does not split
    /// a message.
    prev_blank: bool,
    count: usize,
    done: bool,
}

impl MailSource {
    /// A source over `paths` (files, mbox files, Maildir folders or directories of these).
    pub fn new(paths: impl IntoIterator<Item = PathBuf>, options: MailOptions) -> Self {
        Self {
            pending: paths.into_iter().map(|p| (p, 0)).collect(),
            mbox: None,
            options,
            ready: VecDeque::new(),
            inflight: None,
            jobs: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }

    /// Threads that extract the messages of an mbox (default: one per core; 1 extracts them
    /// on the caller's thread). The observations come out in the same order either way.
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.jobs = jobs.max(1);
        self
    }

    /// Reads the next batch of the open mbox and starts extracting it (on the caller's thread,
    /// straight into `ready`, with one job).
    fn next_batch(&mut self) {
        let Some(mbox) = &mut self.mbox else {
            return;
        };
        let limit = self.options.limits.max_message_bytes;
        let mut batch = Vec::new();
        let mut bytes = 0;
        let mut failure = None;
        while batch.len() < BATCH_MESSAGES && bytes < BATCH_BYTES {
            match mbox.next_message(limit) {
                Ok(Some((raw, cut))) => {
                    mbox.count += 1;
                    bytes += raw.len();
                    batch.push((format!("{}#{}", mbox.path, mbox.count), raw, cut));
                }
                Ok(None) => {
                    self.mbox = None;
                    break;
                }
                Err(source) => {
                    let path = PathBuf::from(&mbox.path);
                    failure = Some(Error::Io { path, source });
                    self.mbox = None;
                    break;
                }
            }
        }
        if batch.is_empty() && failure.is_none() {
            return;
        }
        if self.jobs <= 1 {
            self.ready
                .extend(scan_batch(&batch, &self.options, self.jobs));
            self.ready.extend(failure.map(Err));
            return;
        }
        let names = batch.iter().map(|(name, ..)| name.clone()).collect();
        let (options, jobs) = (self.options.clone(), self.jobs);
        let handle = std::thread::spawn(move || scan_batch(&batch, &options, jobs));
        self.inflight = Some(Inflight {
            handle,
            names,
            failure,
        });
    }

    /// Waits for the batch in flight, queues its observations, and starts the next one.
    fn finish_batch(&mut self, batch: Inflight) {
        // `scan_message` catches the parser's panics; should the thread die all the same, its
        // messages are reported as unreadable rather than ending the scan.
        let done = batch.handle.join().unwrap_or_else(|_| {
            batch
                .names
                .into_iter()
                .map(|source_name| Err(Error::NotMail { source_name }))
                .collect()
        });
        self.ready.extend(done);
        self.ready.extend(batch.failure.map(Err));
        self.next_batch();
    }

    fn expand_dir(&mut self, dir: &Path, depth: usize) -> Result<(), Error> {
        let io = |source| Error::Io {
            path: dir.to_owned(),
            source,
        };
        let is_maildir = ["cur", "new", "tmp"].iter().all(|d| dir.join(d).is_dir());
        let mut found: Vec<(PathBuf, usize)> = Vec::new();
        let listed: Vec<PathBuf> = if is_maildir {
            let mut v = Vec::new();
            for sub in ["new", "cur"] {
                let mut entries = list(&dir.join(sub)).map_err(io)?;
                entries.sort();
                v.extend(entries);
            }
            v
        } else {
            let mut v = list(dir).map_err(io)?;
            v.sort();
            v
        };
        for p in listed {
            let hidden = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if hidden {
                continue;
            }
            if p.is_dir() {
                if depth < MAX_WALK_DEPTH && !is_maildir {
                    found.push((p, depth + 1));
                }
            } else {
                found.push((p, depth + 1));
            }
        }
        for item in found.into_iter().rev() {
            self.pending.push_front(item);
        }
        Ok(())
    }

    /// Reads one file; `walked` files (found in a directory, not named by the caller) that do
    /// not start like mail are skipped, so that a folder's README or archive is not "mail".
    fn read_file(&mut self, path: &Path, walked: bool) -> Result<Option<Observation>, Error> {
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let mut reader = BufReader::new(file);
        let head = reader.fill_buf().map_err(io)?;
        let starts_mbox = head.starts_with(b"From ");
        if walked && !starts_mbox && !starts_with_header(head) {
            return Ok(None);
        }
        let name = path.display().to_string();
        if starts_mbox {
            self.mbox = Some(Mbox {
                path: name,
                reader,
                started: false,
                prev_blank: true,
                count: 0,
                done: false,
            });
            return Ok(None);
        }
        let limit = self.options.limits.max_message_bytes;
        let mut raw = Vec::new();
        reader
            .take(limit as u64 + 1)
            .read_to_end(&mut raw)
            .map_err(io)?;
        let cut = raw.len() > limit;
        raw.truncate(limit);
        let mut obs = scan_message(&raw, &name, &self.options)?;
        if cut {
            obs.notes.push(format!("message cut at {limit} bytes"));
        }
        Ok(Some(obs))
    }
}

/// Whether an mbox `From ` line reads like a postmark: `From SENDER Mon Apr 15 10:00:00 2024`.
fn is_postmark(line: &[u8]) -> bool {
    let text = String::from_utf8_lossy(line);
    let tokens: Vec<&str> = text.split_whitespace().collect();
    tokens.len() >= 7
        && ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].contains(&tokens[2])
        && tokens
            .iter()
            .any(|t| t.len() == 4 && t.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `head` starts with an RFC 5322 header field (`Name:`).
fn starts_with_header(head: &[u8]) -> bool {
    let name_len = head
        .iter()
        .take_while(|b| matches!(b, b'!'..=b'9' | b';'..=b'~'))
        .count();
    name_len > 0 && head.get(name_len) == Some(&b':')
}

fn list(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect()
}

impl Mbox {
    /// The next message's bytes, at most `limit` of them kept; `None` at the end.
    fn next_message(&mut self, limit: usize) -> std::io::Result<Option<(Vec<u8>, bool)>> {
        if self.done {
            return Ok(None);
        }
        let mut msg = Vec::new();
        let mut cut = false;
        let mut line = Vec::with_capacity(256);
        loop {
            line.clear();
            // A line longer than the message limit is read in pieces, never whole.
            let n = (&mut self.reader)
                .take(limit as u64 + 1)
                .read_until(b'\n', &mut line)?;
            if n == 0 {
                self.done = true;
                return Ok(self.started.then_some((msg, cut)));
            }
            let starts_message =
                line.starts_with(b"From ") && (self.prev_blank || is_postmark(&line));
            self.prev_blank = line == b"\n" || line == b"\r\n";
            if starts_message {
                if self.started {
                    return Ok(Some((msg, cut)));
                }
                self.started = true;
                continue;
            }
            if !self.started {
                continue;
            }
            let body: &[u8] = match line.iter().position(|b| *b != b'>') {
                Some(i) if i > 0 && line[i..].starts_with(b"From ") => &line[1..],
                _ => &line,
            };
            if msg.len() + body.len() > limit {
                cut = true;
            } else {
                msg.extend_from_slice(body);
            }
        }
    }
}

/// One raw message of an mbox: its name, its bytes, whether it was cut at the size limit.
type RawMessage = (String, Vec<u8>, bool);

/// Extracts a batch, on up to `jobs` threads, in order.
fn scan_batch(
    batch: &[RawMessage],
    options: &MailOptions,
    jobs: usize,
) -> Vec<Result<Observation, Error>> {
    let scan = |(name, raw, cut): &RawMessage| {
        scan_message(raw, name, options).map(|mut o| {
            if *cut {
                let limit = options.limits.max_message_bytes;
                o.notes.push(format!("message cut at {limit} bytes"));
            }
            o
        })
    };
    // `scan_message` catches the parser's panics; should anything else panic, those messages are
    // reported as unreadable rather than ending the scan.
    crate::parallel::map_in_order(batch, jobs, scan, |(name, ..)| {
        Err(Error::NotMail {
            source_name: name.clone(),
        })
    })
}

impl Iterator for MailSource {
    type Item = Result<Observation, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Some(item);
            }
            if let Some(batch) = self.inflight.take() {
                self.finish_batch(batch);
                continue;
            }
            if self.mbox.is_some() {
                self.next_batch();
                continue;
            }
            let (path, depth) = self.pending.pop_front()?;
            if path.is_dir() {
                if let Err(e) = self.expand_dir(&path, depth) {
                    return Some(Err(e));
                }
                continue;
            }
            match self.read_file(&path, depth > 0) {
                Ok(Some(obs)) => return Some(Ok(obs)),
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
