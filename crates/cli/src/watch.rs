//! Watched directories inside `kizuna serve`: a Maildir or a directory of JSON logs scanned on
//! every round (`[detect] interval_seconds`), new messages and appended lines matched against
//! the hub's indicators, sightings written into a collection (`crate::sightings`), from where
//! the TAXII server and the push to partners take them.
//!
//! Polling, not file-system notifications: portable, no new dependency, and a round over a
//! directory is a `readdir` and a `stat` per file. Each input is scanned once across restarts:
//! the messages already scanned (by Maildir base name, the part before `:`, so that the move
//! from `new/` to `cur/` and flag changes do not make a message new) and the byte offset and
//! line number reached in each log file are kept in `watch-state.json` in the data directory,
//! written (atomically, by rename) after the sightings of a round are stored. A crash in
//! between rescans a little, and rewriting a sighting already in the collection is a no-op.
//! A log file that shrank was rotated or truncated: it is read again from the start.
//!
//! The indicator set follows the store: each round reads the collection's deletion log
//! (`Store::deletions`) since the last round and removes each deleted indicator from the set
//! (putting back the newest version still stored, when only one version was deleted), then
//! reads the indicator versions added since the last round (`added_after`) into the set, which
//! replaces, adds and revokes one indicator at a time. Only when an indicator collection goes
//! away is the set reloaded.
//!
//! Patterns that bind several observations (`FOLLOWEDBY`, `REPEATS`, `WITHIN`) are matched
//! across the messages or lines of one watched directory, through one stream per directory
//! (`kizuna_detect::StreamState`, bounded per pattern by its window and a count). That state
//! lives in memory only: a restart forgets the observations remembered, so a pattern half
//! satisfied before a restart needs all its observations again after it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use anyhow::{Context, bail};
use kizuna_detect::{
    IndicatorSet, LogFormat, MailOptions, MailSource, Observation, StreamLimits, StreamState,
};
use kizuna_stix::Timestamp;
use kizuna_store::{CollectionRef, Store};
use serde::{Deserialize, Serialize};

use crate::config::{Config, WatchConfig, WatchKind};
use crate::sightings::{self, SightingSink};

/// The file, in the data directory, that remembers what was scanned.
pub const STATE_FILE: &str = "watch-state.json";
/// Longest log line read; a longer one is skipped.
const MAX_LINE: u64 = 4 << 20;
/// Records of the deletion log read at a time.
const DELETIONS_PAGE: usize = 1000;

/// Metric names (Prometheus), in one place.
mod names {
    pub const SCANNED: &str = "kizuna_detect_observations_total";
    pub const HITS: &str = "kizuna_detect_hits_total";
    pub const WRITTEN: &str = "kizuna_detect_sightings_written_total";
    pub const ERRORS: &str = "kizuna_detect_errors_total";
    pub const INDICATORS: &str = "kizuna_detect_indicators";
}

/// Counters of the watched directories, for `/metrics`.
#[derive(Debug, Default)]
pub struct WatchMetrics {
    scanned: AtomicU64,
    hits: AtomicU64,
    written: AtomicU64,
    errors: AtomicU64,
    indicators: AtomicU64,
}

impl WatchMetrics {
    /// Appends the series in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let series = [
            (
                names::SCANNED,
                "counter",
                "Messages and log lines scanned by the watched directories.",
                &self.scanned,
            ),
            (
                names::HITS,
                "counter",
                "Indicator hits in the watched directories.",
                &self.hits,
            ),
            (
                names::WRITTEN,
                "counter",
                "Sightings written to the hub by the watched directories.",
                &self.written,
            ),
            (
                names::ERRORS,
                "counter",
                "Messages, lines and sightings the watched directories could not handle.",
                &self.errors,
            ),
            (
                names::INDICATORS,
                "gauge",
                "Indicators the watched directories match.",
                &self.indicators,
            ),
        ];
        for (name, kind, help, value) in series {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
    }
}

/// What was scanned already, as kept in [`STATE_FILE`].
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// Maildir path → base names of the messages scanned.
    maildir: BTreeMap<String, BTreeSet<String>>,
    /// Log file path → position reached.
    logs: BTreeMap<String, Position>,
}

#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
struct Position {
    offset: u64,
    line: u64,
}

impl State {
    fn load(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is damaged (remove it to rescan everything)",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    fn save(&self, path: &Path) -> anyhow::Result<()> {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(self)?)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// The running watcher: stop it with [`Watch::stop`].
pub struct Watch {
    thread: std::thread::JoinHandle<()>,
    stop: Sender<()>,
    metrics: Arc<WatchMetrics>,
}

impl Watch {
    /// The counters, for `/metrics`.
    pub fn metrics(&self) -> Arc<WatchMetrics> {
        self.metrics.clone()
    }

    /// Stops after the current round and waits for it.
    pub fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

/// One watched directory and where its sightings go.
struct Watched {
    config: WatchConfig,
    sink: SightingSink,
    /// Observations remembered for patterns binding several (in memory only).
    stream: StreamState,
}

/// The watcher's state between rounds.
struct Watcher {
    store: Arc<dyn Store>,
    identity: String,
    set: IndicatorSet,
    /// Per indicator collection: the last deletion-log record and the last `date_added` read.
    seen: HashMap<CollectionRef, (Option<i64>, Option<Timestamp>)>,
    /// Whether some indicator binds several observations.
    temporal: bool,
    watched: Vec<Watched>,
    state_path: PathBuf,
    state: State,
    metrics: Arc<WatchMetrics>,
}

/// Starts watching the `[[detect.watch]]` directories, when there are any.
pub fn start(config: &Config, store: Arc<dyn Store>) -> anyhow::Result<Option<Watch>> {
    if config.detect.watch.is_empty() {
        return Ok(None);
    }
    let interval = config.detect.interval_seconds;
    if !(interval.is_finite() && interval > 0.0) {
        bail!("[detect] interval_seconds must be a positive number of seconds, not {interval}");
    }
    let identity = sightings::identity(None, config)?;
    let mut watched = Vec::new();
    for w in &config.detect.watch {
        let sink = SightingSink::new(store.clone(), config, w.collection.as_deref(), None, false)
            .with_context(|| format!("[[detect.watch]] {}", w.path.display()))?;
        eprintln!(
            "  watching {} ({:?}): sightings into {}",
            w.path.display(),
            w.kind,
            sink.collection().id
        );
        watched.push(Watched {
            config: w.clone(),
            sink,
            stream: StreamState::new(StreamLimits::default()),
        });
    }
    let state_path = config.data.join(STATE_FILE);
    let metrics = Arc::new(WatchMetrics::default());
    let mut watcher = Watcher {
        store,
        set: IndicatorSet::new(&identity, Timestamp::now()),
        identity,
        seen: HashMap::new(),
        temporal: false,
        watched,
        state: State::load(&state_path)?,
        state_path,
        metrics: metrics.clone(),
    };
    let (stop, stopped) = channel();
    let thread = std::thread::Builder::new()
        .name("kizuna-watch".into())
        .spawn(move || watcher.run(&stopped, Duration::from_secs_f64(interval)))
        .context("cannot start the watcher thread")?;
    Ok(Some(Watch {
        thread,
        stop,
        metrics,
    }))
}

impl Watcher {
    fn run(&mut self, stop: &Receiver<()>, interval: Duration) {
        loop {
            if let Err(e) = self.round() {
                self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %format!("{e:#}"), "watched directories: round failed");
            }
            match stop.recv_timeout(interval) {
                Err(RecvTimeoutError::Timeout) => {}
                _ => return,
            }
        }
    }

    fn round(&mut self) -> anyhow::Result<()> {
        self.refresh_indicators()?;
        self.set.set_now(Timestamp::now());
        for i in 0..self.watched.len() {
            self.scan(i)?;
            self.state.save(&self.state_path)?;
        }
        Ok(())
    }

    /// Removes the indicators deleted since the last round and reads the versions added since;
    /// reloads when an indicator collection went away.
    fn refresh_indicators(&mut self) -> anyhow::Result<()> {
        let collections = sightings::indicator_collections(self.store.as_ref(), &[])?;
        let crefs: Vec<CollectionRef> = collections.iter().map(|c| c.as_ref()).collect();
        if self.seen.keys().any(|k| !crefs.contains(k)) {
            self.set = IndicatorSet::new(&self.identity, Timestamp::now());
            self.seen.clear();
        }
        let mut deleted = BTreeSet::new();
        for cref in &crefs {
            let (after, last) = self.seen.get(cref).copied().unwrap_or((None, None));
            // A collection read for the first time: its past deletions are already applied.
            let first = last.is_none();
            let after = self.read_deletions(cref, after, (!first).then_some(&mut deleted))?;
            self.seen.insert(cref.clone(), (after, last));
        }
        for id in &deleted {
            if self.set.remove(id) {
                // Another version, or the same object in another collection, may remain.
                for cref in &crefs {
                    let skipped =
                        sightings::load_id_into(self.store.as_ref(), cref, id, &mut self.set)?;
                    for s in skipped {
                        tracing::warn!(indicator = %s, "indicator skipped");
                    }
                }
            }
        }
        for cref in crefs {
            let (after, last) = self.seen.get(&cref).copied().unwrap_or((None, None));
            let (last, skipped) =
                sightings::load_into(self.store.as_ref(), &cref, last, &mut self.set)?;
            for s in skipped {
                tracing::warn!(indicator = %s, "indicator skipped");
            }
            self.seen
                .insert(cref, (after, last.or(Some(Timestamp::from_unix_micros(0)))));
        }
        self.set.compact();
        self.temporal = self.set.binds_several();
        for w in &mut self.watched {
            w.stream.forget_removed(&self.set);
        }
        self.metrics
            .indicators
            .store(self.set.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Reads the deletion log of `cref` after `after`, putting the ids into `into` when given;
    /// returns the last record read.
    fn read_deletions(
        &self,
        cref: &CollectionRef,
        mut after: Option<i64>,
        mut into: Option<&mut BTreeSet<String>>,
    ) -> anyhow::Result<Option<i64>> {
        loop {
            let page = self.store.deletions(cref, after, DELETIONS_PAGE)?;
            for r in &page.records {
                after = Some(r.seq);
                if let Some(ids) = into.as_deref_mut() {
                    ids.insert(r.id.clone());
                }
            }
            if !page.more || page.records.is_empty() {
                return Ok(after);
            }
        }
    }

    fn scan(&mut self, i: usize) -> anyhow::Result<()> {
        let Some(w) = self.watched.get(i) else {
            return Ok(());
        };
        let config = w.config.clone();
        match config.kind {
            WatchKind::Maildir => self.scan_maildir(i, &config.path),
            WatchKind::Zeek => self.scan_logs(i, &config.path, LogFormat::Zeek),
            WatchKind::Suricata => self.scan_logs(i, &config.path, LogFormat::Suricata),
            WatchKind::Stix => self.scan_logs(i, &config.path, LogFormat::Stix),
        }
    }

    /// Matches one observation and writes its sightings.
    fn observe(&mut self, i: usize, obs: &Observation) -> anyhow::Result<()> {
        self.metrics.scanned.fetch_add(1, Ordering::Relaxed);
        let Some(w) = self.watched.get_mut(i) else {
            return Ok(());
        };
        let set = &self.set;
        let found = set.matches(obs).and_then(|mut hits| {
            if self.temporal {
                // The stream finds those, one observation alone included.
                hits.retain(|h| !set.binds_several_id(&h.indicator));
                hits.extend(w.stream.push_temporal(set, obs)?);
            }
            Ok(hits)
        });
        let hits = match found {
            Ok(hits) => hits,
            Err(e) => {
                self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "watched input not matched");
                return Ok(());
            }
        };
        for hit in &hits {
            self.metrics.hits.fetch_add(1, Ordering::Relaxed);
            let before = w.sink.written;
            w.sink.write(&self.set, obs, hit)?;
            let after = w.sink.written;
            self.metrics
                .written
                .fetch_add(after.sightings - before.sightings, Ordering::Relaxed);
            self.metrics
                .errors
                .fetch_add(after.failed - before.failed, Ordering::Relaxed);
        }
        Ok(())
    }

    fn scan_maildir(&mut self, i: usize, dir: &Path) -> anyhow::Result<()> {
        let key = dir.display().to_string();
        let mut files = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') || !e.file_type().is_ok_and(|t| t.is_file()) {
                    continue;
                }
                let base = name.split(':').next().unwrap_or(&name).to_owned();
                files.push((base, e.path()));
            }
        }
        files.sort();
        let present: BTreeSet<String> = files.iter().map(|(b, _)| b.clone()).collect();
        let mut seen = self.state.maildir.remove(&key).unwrap_or_default();
        // Messages deleted from the Maildir need not be remembered.
        seen.retain(|b| present.contains(b));
        let options = MailOptions {
            now: Timestamp::now(),
            ..MailOptions::default()
        };
        let mut result = Ok(());
        for (base, path) in files {
            if seen.contains(&base) {
                continue;
            }
            for item in MailSource::new(vec![path], options.clone()) {
                match item {
                    Ok(obs) => {
                        if let Err(e) = self.observe(i, &obs) {
                            result = Err(e);
                            break;
                        }
                    }
                    Err(e) => {
                        self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, "watched message not read");
                    }
                }
            }
            if result.is_err() {
                break;
            }
            seen.insert(base);
        }
        self.state.maildir.insert(key, seen);
        result
    }

    fn scan_logs(&mut self, i: usize, dir: &Path, format: LogFormat) -> anyhow::Result<()> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| e.path())
            .collect();
        files.sort();
        for path in files {
            let key = path.display().to_string();
            let mut pos = self.state.logs.get(&key).copied().unwrap_or_default();
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if len < pos.offset {
                pos = Position::default();
            }
            if len == pos.offset {
                continue;
            }
            let mut file = File::open(&path).with_context(|| format!("cannot open {key}"))?;
            file.seek(SeekFrom::Start(pos.offset))?;
            let mut reader = BufReader::new(file);
            let mut line = Vec::new();
            let now = Timestamp::now();
            loop {
                line.clear();
                let n = (&mut reader).take(MAX_LINE).read_until(b'\n', &mut line)?;
                // Only complete lines: a line being written is read next round.
                if n == 0 || (!line.ends_with(b"\n") && (n as u64) < MAX_LINE) {
                    break;
                }
                pos.offset += n as u64;
                pos.line += 1;
                let text = String::from_utf8_lossy(&line);
                let text = text.trim();
                if text.is_empty() || text.starts_with('#') {
                    continue;
                }
                let source = format!("{key}:{}", pos.line);
                match kizuna_detect::map_json_line(format, text, &source, now) {
                    Ok(obs) => self.observe(i, &obs)?,
                    Err(e) => {
                        self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %e, "watched log line not read");
                    }
                }
            }
            self.state.logs.insert(key, pos);
        }
        Ok(())
    }
}
