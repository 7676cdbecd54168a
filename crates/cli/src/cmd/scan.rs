//! `kizuna scan mail|logs`: the detection sensors at the terminal.
//!
//! Reads mail (`.eml`, mbox, Maildir) or logs (Zeek JSON, Suricata EVE, STIX JSONL), and either
//! prints what was extracted (`--observables`, one `{"source", "bundle"}` line per message or
//! log line) or matches it against indicators (`--indicators FILE`) and prints each hit as a
//! STIX sighting (`--format jsonl`) or a table. A malformed message or log line is reported on
//! stderr with its `PATH`, `PATH#N` or `PATH:LINE` and the scan goes on.
//!
//! Exit status, as virus scanners have it: 0 when nothing matched, 1 when some indicator
//! matched, 2 when an input could not be read at all or the indicators could not be loaded.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use kizuna_detect::{
    Error, IndicatorSet, IndicatorStream, LogFormat, LogSource, MailOptions, MailSource,
    Observation, StreamLimits,
};
use kizuna_stix::Timestamp;

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
    /// One line per hit: source, indicator, first seen.
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
        conflicts_with = "indicators",
        required_unless_present = "indicators"
    )]
    pub observables: bool,
    /// STIX indicators to match (bundle, JSON array or JSON lines).
    #[arg(long, value_name = "FILE")]
    pub indicators: Option<PathBuf>,
    /// Output format of hits.
    #[arg(long, value_enum, default_value = "table")]
    pub format: HitFormat,
    /// The identity that sighted the indicators (`where_sighted_refs` of every sighting).
    #[arg(long, value_name = "IDENTITY_ID")]
    pub identity: Option<String>,
}

/// Runs `kizuna scan`.
pub fn run(cmd: ScanCommand) -> anyhow::Result<ExitCode> {
    let now = Timestamp::now();
    let (source, output): (
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
    let indicators = match &output.indicators {
        Some(path) => Some(load_indicators(path, output.identity.as_deref(), now)?),
        None if output.observables => None,
        None => bail!("give --observables to print what is extracted, or --indicators FILE"),
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
        writeln!(out, "{:<48} {:<56} FIRST SEEN", "SOURCE", "INDICATOR")?;
    }
    for item in source {
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
        let written = match &mut matcher {
            None => obs.write_json_line(&mut out),
            Some(stream) => match stream.push(&obs) {
                Ok(hits) => hits.iter().try_for_each(|hit| {
                    tally.hits += 1;
                    match output.format {
                        HitFormat::Jsonl => writeln!(out, "{}", hit.to_json()),
                        HitFormat::Table => writeln!(
                            out,
                            "{:<48} {:<56} {}",
                            hit.source,
                            hit.indicator,
                            hit.sighting["first_seen"].as_str().unwrap_or("")
                        ),
                    }
                }),
                Err(e) => {
                    tally.error(&e);
                    Ok(())
                }
            },
        };
        if let Err(e) = written {
            // A closed pipe (`| head`) ends the scan quietly.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(tally.exit_code());
            }
            return Err(e.into());
        }
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
    Ok(tally.exit_code())
}

fn load_indicators(
    path: &PathBuf,
    identity: Option<&str>,
    now: Timestamp,
) -> anyhow::Result<IndicatorSet> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading indicators {}", path.display()))?;
    let local = kizuna_detect::id::derived_id("identity", &["kizuna-local-sensor"]);
    let (set, report) = IndicatorSet::from_json(&text, identity.unwrap_or(&local), now)?;
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
