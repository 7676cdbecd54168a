//! `kizuna scan mail|logs`: the detection sensors at the terminal.
//!
//! Reads mail (`.eml`, mbox, Maildir) or logs (Zeek JSON, Suricata EVE, STIX JSONL), and either
//! prints what was extracted (`--observables`, one `{"source", "bundle"}` line per message or
//! log line) or matches it against indicators (`--indicators FILE`, or `--hub`: those of the
//! hub's store) and prints each hit as a STIX sighting (`--format jsonl`) or a table, with
//! `--explain` saying why it matched. With `--hub`, each sighting is also written, privacy-
//! reduced and marked, into a collection of the hub (`crate::sightings`). A malformed message
//! or log line is reported on stderr with its `PATH`, `PATH#N` or `PATH:LINE` and the scan goes
//! on.
//!
//! Exit status, as virus scanners have it: 0 when nothing matched, 1 when some indicator
//! matched, 2 when an input could not be read at all or the indicators could not be loaded.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use std::sync::Arc;

use kizuna_detect::{
    Error, Hit, IndicatorSet, IndicatorStream, LogFormat, LogSource, MailOptions, MailSource,
    Observation, ReduceOptions, StreamLimits,
};
use kizuna_stix::{Timestamp, Tlp};
use kizuna_store::Store;

use crate::config::Config;
use crate::hub;
use crate::sightings::{self, SightingSink};

/// Subcommands of `kizuna scan`.
#[derive(Debug, Subcommand)]
pub enum ScanCommand {
    /// Scan mail: `.eml` files, mbox files (messages named `PATH#N`) and Maildir folders.
    Mail {
        /// Files and folders to scan.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Scan log lines (named `PATH:LINE`): Zeek (JSON or TSV), Suricata EVE JSON or STIX JSONL.
    Logs {
        /// The log format.
        #[arg(long, value_enum)]
        input: InputFormat,
        /// Log files; `-` reads standard input.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// Log formats `kizuna scan logs` reads.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum InputFormat {
    /// Zeek logs (conn, dns, http, files, ssl), JSON or TSV.
    Zeek,
    /// Suricata EVE JSON (flow, dns, http, tls, fileinfo).
    Suricata,
    /// One STIX bundle or observed-data per line.
    Stix,
}

/// How hits are printed.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum HitFormat {
    /// One line per hit: source, indicator (name or id), matched value, first seen; a summary.
    Table,
    /// One JSON object per hit: `{"source", "indicator", "sighting", "observed_data"}`.
    Jsonl,
}

/// What to do with the observations.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Print the extracted observables (one `{"source", "bundle"}` line each) instead of
    /// matching.
    #[arg(
        long,
        conflicts_with_all = ["indicators", "hub"],
        required_unless_present_any = ["indicators", "hub"]
    )]
    pub observables: bool,
    /// STIX indicators to match (bundle, JSON array or JSON lines).
    #[arg(long, value_name = "FILE", conflicts_with = "hub")]
    pub indicators: Option<PathBuf>,
    /// Use the hub in --data: indicators from its collections, and every sighting written
    /// (privacy-reduced, marked) into a collection, from where partners receive it.
    #[arg(long)]
    pub hub: bool,
    /// Read indicators from this collection (id or alias) only; repeatable. Default: all.
    #[arg(long = "from-collection", value_name = "COLLECTION", requires = "hub")]
    pub from_collections: Vec<String>,
    /// Write sightings into this collection (default: `[detect] sightings_collection`, else
    /// `shared`).
    #[arg(long, value_name = "COLLECTION", requires = "hub")]
    pub to_collection: Option<String>,
    /// TLP marking of the objects written (default: `[detect] tlp`, else amber).
    #[arg(long, value_name = "LEVEL", requires = "hub")]
    pub tlp: Option<Tlp>,
    /// Replace email addresses in the shared observed-data by salted hashes.
    #[arg(long, requires = "hub")]
    pub hash_emails: bool,
    /// Output format of hits.
    #[arg(long, value_enum, default_value = "table")]
    pub format: HitFormat,
    /// For each hit, show why it matched: each test of the pattern and the observed values.
    #[arg(long)]
    pub explain: bool,
    /// The identity that sighted the indicators (`where_sighted_refs` of every sighting).
    #[arg(long, value_name = "IDENTITY_ID")]
    pub identity: Option<String>,
}

/// Runs `kizuna scan`.
pub fn run(config: &Config, cmd: ScanCommand) -> anyhow::Result<ExitCode> {
    let now = Timestamp::now();
    let is_mail = matches!(cmd, ScanCommand::Mail { .. });
    let (mut source, output): (
        Box<dyn Iterator<Item = Result<Observation, Error>>>,
        OutputArgs,
    ) = match cmd {
        ScanCommand::Mail { paths, output } => {
            let options = MailOptions {
                now,
                ..MailOptions::default()
            };
            (Box::new(MailSource::new(paths, options)), output)
        }
        ScanCommand::Logs {
            input,
            paths,
            output,
        } => {
            let format = match input {
                InputFormat::Zeek => LogFormat::Zeek,
                InputFormat::Suricata => LogFormat::Suricata,
                InputFormat::Stix => LogFormat::Stix,
            };
            (Box::new(LogSource::new(format, paths, now)), output)
        }
    };
    let identity = sightings::identity(output.identity.as_deref(), config)?;
    let mut sink = None;
    let indicators = match &output.indicators {
        Some(path) => Some(load_indicators(path, &identity, now)?),
        None if output.hub => {
            sightings::require_hub(config)?;
            let store: Arc<dyn Store> = hub::open(config)?;
            let set = sightings::load_indicators(
                store.as_ref(),
                &output.from_collections,
                &identity,
                now,
            )?;
            if set.is_empty() {
                bail!(
                    "the hub in {} holds no usable STIX indicator",
                    config.data.display()
                );
            }
            eprintln!("kizuna: {} indicators loaded from the hub", set.len());
            sink = Some(SightingSink::new(
                store,
                config,
                output.to_collection.as_deref(),
                output.tlp,
                output.hash_emails,
            )?);
            Some(set)
        }
        None if output.observables => None,
        None => bail!("give --observables to print what is extracted, --indicators FILE or --hub"),
    };
    // Messages and lines arrive in order, one at a time: a stream also matches the patterns
    // that bind several observations (`FOLLOWEDBY`, `REPEATS`, `WITHIN`) across them.
    let mut matcher = indicators
        .as_ref()
        .map(|set| IndicatorStream::new(set, StreamLimits::default()));
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut tally = Tally::default();
    if matcher.is_some() && output.format == HitFormat::Table {
        writeln!(
            out,
            "{:<40} {:<40} {:<40} FIRST SEEN",
            "SOURCE", "INDICATOR", "MATCHED"
        )?;
    }
    // When no loaded pattern binds several observations, the stream is each observation's own
    // matching and remembers nothing: mail (extracted in batches on every core already) is then
    // matched a batch at a time on every core too, and printed in order. Log lines stay one at
    // a time, so that `scan logs -` on a live pipe prints each hit as its line arrives.
    // (Should cross-observation patterns be loaded, the stream sees every observation in order
    // on this thread, as before.)
    let parallel = is_mail && indicators.as_ref().is_some_and(|s| !s.binds_several());
    let batch_len = if parallel { MATCH_BATCH } else { 1 };
    loop {
        let batch: Vec<_> = source.by_ref().take(batch_len).collect();
        if batch.is_empty() {
            break;
        }
        let mut matched = match &indicators {
            Some(set) if parallel => match_batch(set, &batch),
            _ => Vec::new(),
        }
        .into_iter();
        for item in batch {
            let pre = matched.next().flatten();
            let obs = match item {
                Ok(obs) => obs,
                Err(e) => {
                    tally.error(&e);
                    continue;
                }
            };
            tally.observations += 1;
            for note in &obs.notes {
                eprintln!("kizuna: {}: {note}", obs.source);
            }
            let written = match (&mut matcher, &indicators) {
                (Some(stream), Some(set)) => match pre.unwrap_or_else(|| stream.push(&obs)) {
                    Ok(hits) => hits.iter().try_for_each(|hit| {
                        tally.hits += 1;
                        tally.indicators.insert(hit.indicator.clone());
                        if let Some(sink) = &mut sink {
                            sink.write(set, &obs, hit).map_err(std::io::Error::other)?;
                        }
                        print_hit(&mut out, set, &obs, hit, &output)
                    }),
                    Err(e) => {
                        tally.error(&e);
                        Ok(())
                    }
                },
                _ => obs.write_json_line(&mut out),
            };
            if let Err(e) = written {
                // A closed pipe (`| head`) ends the scan quietly.
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    return Ok(tally.exit_code());
                }
                return Err(e.into());
            }
        }
    }
    if matcher.is_some() && output.format == HitFormat::Table {
        let _ = writeln!(
            out,
            "{} hits of {} indicators in {} observations",
            tally.hits,
            tally.indicators.len(),
            tally.observations
        );
    }
    out.flush().or_else(|e| {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Ok(())
        } else {
            Err(e)
        }
    })?;
    eprintln!(
        "kizuna: {} observations, {} hits, {} errors",
        tally.observations, tally.hits, tally.errors
    );
    if let Some(sink) = &sink {
        let w = sink.written;
        eprintln!(
            "kizuna: sightings written to collection {} ({}): {} new, {} already there, {} not written",
            sink.collection().id,
            sink.collection().title,
            w.sightings,
            w.already,
            w.failed
        );
    }
    Ok(tally.exit_code())
}

/// One hit, as a table row or a JSON line, with its explanation when asked.
fn print_hit(
    out: &mut impl Write,
    set: &IndicatorSet,
    obs: &Observation,
    hit: &Hit,
    output: &OutputArgs,
) -> std::io::Result<()> {
    let pattern = set.pattern(&hit.indicator);
    let explained = match pattern {
        Some(p) if output.explain || output.format == HitFormat::Table => {
            // Explained on what a partner would be shown, when the hit can be reduced.
            let bundle = kizuna_detect::reduce(hit, obs, p, &ReduceOptions::default())
                .map_or_else(|_| obs.bundle.clone(), |r| r.bundle());
            kizuna_detect::explain(p, &bundle)
        }
        _ => Vec::new(),
    };
    match output.format {
        HitFormat::Jsonl => {
            let mut line = hit.to_json();
            if output.explain {
                line["explain"] = serde_json::json!({
                    "pattern": pattern.map(ToString::to_string),
                    "tests": explained.iter().map(|t| serde_json::json!({
                        "test": t.test, "holds": t.holds, "observed": t.values,
                    })).collect::<Vec<_>>(),
                });
            }
            writeln!(out, "{line}")
        }
        HitFormat::Table => {
            let matched = explained
                .iter()
                .find(|t| t.holds)
                .and_then(|t| t.values.first())
                .map(|v| v.trim_matches('"').to_owned())
                .unwrap_or_default();
            writeln!(
                out,
                "{:<40} {:<40} {:<40} {}",
                hit.source,
                set.name(&hit.indicator).unwrap_or(&hit.indicator),
                matched,
                hit.sighting["first_seen"].as_str().unwrap_or("")
            )?;
            if output.explain {
                if let Some(p) = pattern {
                    writeln!(out, "    {} {p}", hit.indicator)?;
                }
                for t in &explained {
                    writeln!(
                        out,
                        "    {} {}    observed: {}",
                        if t.holds { "MATCH" } else { "no   " },
                        t.test,
                        if t.values.is_empty() {
                            "(nothing)".to_owned()
                        } else {
                            t.values.join(", ")
                        }
                    )?;
                }
            }
            Ok(())
        }
    }
}

/// Observations matched together on every core (see [`IndicatorSet::binds_several`]).
const MATCH_BATCH: usize = 64;

/// Each observation of `batch` matched alone, on every core, in order: one entry per item,
/// `None` for an item that is an error (or whose thread died: the caller matches it again).
fn match_batch(
    set: &IndicatorSet,
    batch: &[Result<Observation, Error>],
) -> Vec<Option<Result<Vec<Hit>, Error>>> {
    let one = |item: &Result<Observation, Error>| item.as_ref().ok().map(|obs| set.matches(obs));
    let jobs = std::thread::available_parallelism().map_or(1, usize::from);
    kizuna_detect::parallel::map_in_order(batch, jobs, one, |_| None)
}

fn load_indicators(path: &PathBuf, identity: &str, now: Timestamp) -> anyhow::Result<IndicatorSet> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading indicators {}", path.display()))?;
    let (set, report) = IndicatorSet::from_json(&text, identity, now)?;
    for skipped in &report.skipped {
        eprintln!("kizuna: indicator skipped: {skipped}");
    }
    if set.is_empty() {
        bail!("{}: no usable STIX indicator", path.display());
    }
    eprintln!("kizuna: {} indicators loaded", report.loaded);
    Ok(set)
}

#[derive(Default)]
struct Tally {
    observations: u64,
    indicators: std::collections::HashSet<String>,
    hits: u64,
    errors: u64,
    unreadable: u64,
}

impl Tally {
    fn error(&mut self, e: &Error) {
        self.errors += 1;
        if matches!(e, Error::Io { .. }) {
            self.unreadable += 1;
        }
        eprintln!("kizuna: {e}");
    }

    fn exit_code(&self) -> ExitCode {
        if self.hits > 0 {
            ExitCode::from(1)
        } else if self.unreadable > 0 {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        }
    }
}
