//! `kizuna match`: bulk matching of indicators against observations, on every core.
//!
//! Observations are JSON lines, one STIX bundle or observed-data per line (what
//! `kizuna scan --observables` and most exporters write), from a file or standard input. The
//! reader hands batches of lines to one worker per core; each worker parses its lines and
//! matches them against the compiled indicators; a writer puts the results back in input order.
//! Channels are bounded, so memory stays a few batches whatever the input size.
//!
//! Patterns that bind several observations (`[a] FOLLOWEDBY [b] WITHIN 60 SECONDS`,
//! `REPEATS 3 TIMES`) are matched across lines, in input order: when the set holds such
//! patterns, the workers leave out their per-line hits and hand back, with each batch's
//! sightings, the observations the set's stream index finds candidates for; the writer feeds
//! those, in input order, to one [`StreamState`] (bounded per pattern by the window and
//! [`StreamLimits`]), so the result does not depend on the number of workers. A set without
//! such patterns skips all of it. The sightings of a batch come first, then those that its
//! lines complete across lines. Sightings are written as JSON lines on stdout; bad lines are reported on stderr as `PATH:LINE: reason`;
//! a summary (and, on a terminal, a progress spinner) goes to stderr.
//!
//! Exit status, as for `kizuna scan`: 0 when nothing matched, 1 when some indicator matched,
//! 2 when the input could not be read or the indicators could not be loaded.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use kizuna_detect::{
    IndicatorSet, LogFormat, Observation, StreamLimits, StreamState, map_json_line,
};
use kizuna_stix::Timestamp;

use crate::config::Config;

/// Lines handed to a worker at a time: large enough to amortise the channel, small enough to
/// keep every core busy on short inputs.
const BATCH_LINES: usize = 512;

/// Longest observation line read; a longer one is reported and skipped.
const MAX_LINE_BYTES: u64 = 16 << 20;

/// Arguments of `kizuna match`.
#[derive(Debug, Args)]
pub struct MatchArgs {
    /// STIX indicators: a bundle, a JSON array or JSON lines.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "hub",
        conflicts_with = "hub"
    )]
    pub indicators: Option<PathBuf>,
    /// Match the indicators of the hub in --data (sightings are printed, not stored).
    #[arg(long)]
    pub hub: bool,
    /// With --hub: read indicators from this collection (id or alias) only; repeatable.
    #[arg(long = "from-collection", value_name = "COLLECTION", requires = "hub")]
    pub from_collections: Vec<String>,
    /// Observations: JSON lines, one bundle or observed-data per line; `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub observations: PathBuf,
    /// The identity that sighted the indicators (`where_sighted_refs` of every sighting).
    #[arg(long, value_name = "IDENTITY_ID")]
    pub identity: Option<String>,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
}

/// A batch of input lines: its sequence number, the lines' bytes one after the other, and
/// `(line number, end offset)` of each line. One buffer per batch, not one string per line:
/// the reader only finds line ends, and UTF-8 is checked by the workers.
type Batch = (u64, Vec<u8>, Vec<(u64, usize)>);

/// What a worker made of one batch.
struct Done {
    seq: u64,
    /// Sighting lines, ready to write.
    out: Vec<u8>,
    /// Bad lines, ready for stderr.
    errors: Vec<String>,
    observations: u64,
    sightings: u64,
    /// Only when the set binds several observations: the lines that may take part in such a
    /// pattern, in input order, for the writer's stream.
    temporal: Vec<Observation>,
}

/// Runs `kizuna match`.
pub fn run(config: &Config, args: MatchArgs) -> anyhow::Result<ExitCode> {
    let now = Timestamp::now();
    let identity = crate::sightings::identity(args.identity.as_deref(), config)?;
    let set = match &args.indicators {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading indicators {}", path.display()))?;
            let (set, report) = IndicatorSet::from_json(&text, &identity, now)?;
            for skipped in &report.skipped {
                eprintln!("kizuna: indicator skipped: {skipped}");
            }
            if set.is_empty() {
                bail!("{}: no usable STIX indicator", path.display());
            }
            set
        }
        None => {
            crate::sightings::require_hub(config)?;
            let store = crate::hub::open(config)?;
            let set = crate::sightings::load_indicators(
                store.as_ref(),
                &args.from_collections,
                &identity,
                now,
            )?;
            if set.is_empty() {
                bail!(
                    "the hub in {} holds no usable STIX indicator",
                    config.data.display()
                );
            }
            set
        }
    };
    let name = args.observations.display().to_string();
    let input: Box<dyn BufRead + Send> = if name == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let file = File::open(&args.observations)
            .with_context(|| format!("opening observations {name}"))?;
        Box::new(BufReader::with_capacity(1 << 20, file))
    };
    let jobs = args
        .jobs
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1)
        .max(1);
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let started = Instant::now();
    let temporal = set.binds_several();
    let set = Arc::new(set);
    let (work_tx, work_rx) = sync_channel::<Batch>(jobs * 2);
    let work_rx = Arc::new(Mutex::new(work_rx));
    let (done_tx, done_rx) = sync_channel::<Done>(jobs * 2);

    let (read_result, totals) = std::thread::scope(|scope| {
        for _ in 0..jobs {
            let (rx, tx, set, name) = (work_rx.clone(), done_tx.clone(), set.clone(), &name);
            scope.spawn(move || worker(&rx, &tx, &set, name, now, temporal));
        }
        drop(done_tx);
        let writer = scope.spawn(|| write_in_order(done_rx, &bar, &set));
        let read_result = read_batches(input, &name, &work_tx);
        drop(work_tx);
        let totals = writer.join();
        (read_result, totals)
    });
    bar.finish_and_clear();
    let totals = match totals {
        Ok(t) => t?,
        Err(_) => bail!("the output writer stopped unexpectedly"),
    };
    let (lines, read_errors) = read_result?;
    let errors = totals.errors + read_errors;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "kizuna: {lines} lines, {} observations, {} sightings, {errors} errors, {secs:.1} s \
         ({:.0} observations/s, {jobs} workers, {} indicators)",
        totals.observations,
        totals.sightings,
        totals.observations as f64 / secs.max(1e-9),
        set.len(),
    );
    Ok(if totals.sightings > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Reads lines into batches; returns the number of lines and of overlong lines skipped.
fn read_batches(
    mut input: Box<dyn BufRead + Send>,
    name: &str,
    work: &SyncSender<Batch>,
) -> anyhow::Result<(u64, u64)> {
    let (mut line_no, mut seq, mut overlong) = (0u64, 0u64, 0u64);
    let mut data = Vec::with_capacity(BATCH_LINES * 1024);
    let mut ends = Vec::with_capacity(BATCH_LINES);
    let mut scratch = Vec::new();
    loop {
        let start = data.len();
        let n = (&mut input)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut data)
            .with_context(|| format!("reading {name}"))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if n as u64 > MAX_LINE_BYTES && !data.ends_with(b"\n") {
            eprintln!("kizuna: {name}:{line_no}: line longer than {MAX_LINE_BYTES} bytes");
            overlong += 1;
            data.truncate(start);
            // Drop the rest of the line without keeping it.
            loop {
                scratch.clear();
                let m = (&mut input)
                    .take(MAX_LINE_BYTES)
                    .read_until(b'\n', &mut scratch)?;
                if m == 0 || scratch.ends_with(b"\n") {
                    break;
                }
            }
            continue;
        }
        if data[start..].iter().all(u8::is_ascii_whitespace) {
            data.truncate(start);
            continue;
        }
        ends.push((line_no, data.len()));
        if ends.len() == BATCH_LINES {
            let full = std::mem::replace(&mut data, Vec::with_capacity(BATCH_LINES * 1024));
            let full_ends = std::mem::replace(&mut ends, Vec::with_capacity(BATCH_LINES));
            if work.send((seq, full, full_ends)).is_err() {
                bail!("the workers stopped unexpectedly");
            }
            seq += 1;
        }
    }
    if !ends.is_empty() && work.send((seq, data, ends)).is_err() {
        bail!("the workers stopped unexpectedly");
    }
    Ok((line_no, overlong))
}

fn worker(
    work: &Mutex<Receiver<Batch>>,
    done: &SyncSender<Done>,
    set: &IndicatorSet,
    name: &str,
    now: Timestamp,
    temporal: bool,
) {
    loop {
        // The lock is held only to take the next batch.
        let next = match work.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((seq, data, ends)) = next else {
            return;
        };
        let mut result = Done {
            seq,
            out: Vec::new(),
            errors: Vec::new(),
            observations: 0,
            sightings: 0,
            temporal: Vec::new(),
        };
        let mut start = 0;
        for (line_no, end) in ends {
            let bytes = data.get(start..end).unwrap_or_default();
            start = end;
            // Valid UTF-8 is the rule; only a broken line pays for the lossy decoder.
            let text = match std::str::from_utf8(bytes) {
                Ok(text) => std::borrow::Cow::Borrowed(text),
                Err(_) => String::from_utf8_lossy(bytes),
            };
            let source = format!("{name}:{line_no}");
            // Scanned as borrowed JSON; only a line with candidates is fully loaded.
            let hits = set.matches_json_line(text.trim(), &source, now);
            match hits {
                Ok(hits) => {
                    result.observations += 1;
                    if temporal {
                        // Parsed fully a second time only when the stream index may have
                        // candidates for the line.
                        if set.stream_candidates_json_line(text.trim())
                            && let Ok(obs) =
                                map_json_line(LogFormat::Stix, text.trim(), &source, now)
                            && set.stream_candidates(&obs)
                        {
                            result.temporal.push(obs);
                        }
                    }
                    // The writer's stream finds those, one bundle alone included.
                    let single = hits
                        .into_iter()
                        .filter(|h| !temporal || !set.binds_several_id(&h.indicator));
                    for hit in single {
                        result.sightings += 1;
                        // Writing to a Vec cannot fail.
                        let _ = writeln!(result.out, "{}", hit.sighting);
                    }
                }
                Err(e) => result.errors.push(format!("kizuna: {e}")),
            }
        }
        if done.send(result).is_err() {
            return;
        }
    }
}

#[derive(Default)]
struct Totals {
    observations: u64,
    sightings: u64,
    errors: u64,
}

/// Writes each batch's sightings and errors in input order, with the sightings of patterns
/// binding several observations that its lines complete.
fn write_in_order(
    done: Receiver<Done>,
    bar: &ProgressBar,
    set: &IndicatorSet,
) -> anyhow::Result<Totals> {
    let mut stream = StreamState::new(StreamLimits::default());
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
    let mut next = 0u64;
    let mut totals = Totals::default();
    let mut closed = false;
    for batch in done {
        pending.insert(batch.seq, batch);
        while let Some(mut batch) = pending.remove(&next) {
            next += 1;
            for obs in &batch.temporal {
                match stream.push_temporal(set, obs) {
                    Ok(hits) => {
                        for hit in hits {
                            batch.sightings += 1;
                            // Writing to a Vec cannot fail.
                            let _ = writeln!(batch.out, "{}", hit.sighting);
                        }
                    }
                    Err(e) => batch.errors.push(format!("kizuna: {e}")),
                }
            }
            totals.observations += batch.observations;
            totals.sightings += batch.sightings;
            totals.errors += batch.errors.len() as u64;
            for e in &batch.errors {
                bar.suspend(|| eprintln!("{e}"));
            }
            if !closed && let Err(e) = out.write_all(&batch.out) {
                // A closed pipe (`| head`) stops the output, not the count.
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    return Err(e.into());
                }
                closed = true;
            }
            bar.set_message(format!(
                "{} observations, {} sightings",
                totals.observations, totals.sightings
            ));
        }
    }
    if !closed
        && let Err(e) = out.flush()
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e.into());
    }
    Ok(totals)
}
