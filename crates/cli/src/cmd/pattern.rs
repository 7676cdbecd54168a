//! `kizuna pattern check|explain|match`: the STIX pattern engine at the terminal.
//!
//! `match` is a drop-in for the `stix2-matcher` command line (same `-p`, `-f`, `-s`, `-e`,
//! `-v`, `-q` flags, the same `MATCH:` / `NO MATCH:` lines and exit statuses) with three
//! differences: STIX 2.1 is the default, an invalid pattern prints `ERROR: <pattern>: <message>`
//! and the remaining patterns still run, and `--json` prints one JSON object per pattern.
//! Observations are loaded once and every pattern is compiled once.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use kizuna_pattern::{Observations, ParseError, Pattern, SpecVersion};
use serde_json::json;

/// Subcommands of `kizuna pattern`.
#[derive(Debug, Subcommand)]
pub enum PatternCommand {
    /// Check a pattern; print its canonical form, or the error and exit with status 1.
    Check {
        /// The STIX pattern, e.g. "[file:name = 'evil.exe']".
        pattern: String,
    },
    /// Show a pattern's canonical form, its tree and the index keys the engine derives from it.
    Explain {
        /// The STIX pattern.
        pattern: String,
    },
    /// Match patterns against observed-data, like `stix2-matcher`.
    Match(MatchArgs),
}

/// Arguments of `kizuna pattern match`, named as `stix2-matcher` names them.
#[derive(Debug, Args)]
pub struct MatchArgs {
    /// File with one STIX pattern per line (blank lines and lines starting with `#` skipped).
    #[arg(short = 'p', long = "patterns", value_name = "PATTERNS_FILE")]
    pub patterns: PathBuf,
    /// JSON file: a list of bundles or objects (STIX 2.1), or of observed-data (STIX 2.0).
    #[arg(short = 'f', long = "file", value_name = "OBSERVED_FILE")]
    pub file: PathBuf,
    /// STIX version of the observations.
    #[arg(
        short = 's',
        long = "stix_version",
        alias = "stix-version",
        default_value = "2.1",
        value_parser = ["2.0", "2.1"]
    )]
    pub stix_version: String,
    /// Encoding of both files; only UTF-8 is supported.
    #[arg(short = 'e', long = "encoding", default_value = "utf8")]
    pub encoding: String,
    /// Also print the observed-data each match bound.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// `-q` prints only NO MATCH lines, `-qq` no match lines at all (errors still print).
    #[arg(short = 'q', long = "quiet", action = clap::ArgAction::Count)]
    pub quiet: u8,
    /// Print one JSON object per pattern instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `kizuna pattern` subcommand.
pub fn run(cmd: PatternCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PatternCommand::Check { pattern } => match Pattern::parse(&pattern) {
            Ok(p) => {
                println!("{p}");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprint!("{}", describe_error(&pattern, &e));
                Ok(ExitCode::from(1))
            }
        },
        PatternCommand::Explain { pattern } => match Pattern::parse(&pattern) {
            Ok(p) => {
                print!("{}", p.explain());
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprint!("{}", describe_error(&pattern, &e));
                Ok(ExitCode::from(1))
            }
        },
        PatternCommand::Match(args) => run_match(&args),
    }
}

/// The error, the offending line and a caret under the column.
fn describe_error(pattern: &str, e: &ParseError) -> String {
    let mut out = format!("error: {e}\n");
    let line = pattern
        .lines()
        .nth(e.position.line.saturating_sub(1) as usize)
        .unwrap_or("");
    let col = e.position.column.saturating_sub(1) as usize;
    let _ = writeln!(out, "  {line}");
    let _ = writeln!(out, "  {}^", " ".repeat(col.min(line.chars().count())));
    out
}

/// Escapes like Python's `unicode_escape` codec, which `stix2-matcher` applies to the patterns
/// it prints: backslash, control characters and everything beyond ASCII.
fn python_unicode_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (0x7f..0x100).contains(&(c as u32)) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x7f => out.push(c),
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out
}

fn run_match(args: &MatchArgs) -> anyhow::Result<ExitCode> {
    let enc = args.encoding.to_ascii_lowercase().replace(['-', '_'], "");
    if enc != "utf8" {
        bail!(
            "unsupported encoding {:?}: only UTF-8 is supported",
            args.encoding
        );
    }
    let version = if args.stix_version == "2.0" {
        SpecVersion::V20
    } else {
        SpecVersion::V21
    };
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let input: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", args.file.display()))?;
    let observations = Observations::from_json_owned(input, version)
        .with_context(|| format!("cannot use the observations in {}", args.file.display()))?;
    let patterns = std::fs::read_to_string(&args.patterns)
        .with_context(|| format!("cannot read {}", args.patterns.display()))?;

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut status = 0u8;
    for line in patterns.lines() {
        let pattern = line.trim();
        if pattern.is_empty() || pattern.starts_with('#') {
            continue;
        }
        let outcome = Pattern::parse(pattern)
            .map_err(|e| e.to_string())
            .and_then(|p| p.matches(&observations).map_err(|e| e.to_string()));
        if args.json {
            let (matched, error, refs) = match &outcome {
                Ok(r) => (r.matched, None, r.observed_data_refs.clone()),
                Err(e) => (false, Some(e.clone()), Vec::new()),
            };
            let obj = json!({"pattern": pattern, "matched": matched, "error": error, "observed_data_refs": refs});
            writeln!(out, "{obj}")?;
        }
        let escaped = python_unicode_escape(pattern);
        match outcome {
            Ok(r) if r.matched => {
                if !args.json && args.quiet < 1 {
                    writeln!(out, "\nMATCH:  {escaped}")?;
                    if args.verbose {
                        writeln!(out, "  observed-data: {}", r.observed_data_refs.join(", "))?;
                    }
                }
            }
            Ok(_) => {
                status = status.max(1);
                if !args.json && args.quiet < 2 {
                    writeln!(out, "\nNO MATCH:  {escaped}")?;
                }
            }
            Err(e) => {
                status = 2;
                if !args.json {
                    writeln!(out, "\nERROR: {escaped}: {e}")?;
                }
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::from(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_python() {
        assert_eq!(
            python_unicode_escape("[x:s = 'é\\\n日🦀\u{7f}']"),
            "[x:s = '\\xe9\\\\\\n\\u65e5\\U0001f980\\x7f']"
        );
    }

    #[test]
    fn caret_under_the_error() {
        let e = Pattern::parse("[a:b = ]").expect_err("invalid");
        let text = describe_error("[a:b = ]", &e);
        assert!(text.contains("1:8"), "{text}");
        assert!(text.ends_with("  [a:b = ]\n         ^\n"), "{text:?}");
    }
}
