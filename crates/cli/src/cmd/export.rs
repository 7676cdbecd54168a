//! `kizuna export`: a collection's objects as JSON lines (the exact stored bytes) or a bundle.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use kizuna_stix::Tlp;
use kizuna_store::{ObjectQuery, Store, VersionFilter};

use crate::config::Config;
use crate::hub;

/// Arguments of `kizuna export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Collection id or alias.
    #[arg(long)]
    collection: String,
    /// API root (default: the only one holding the collection).
    #[arg(long)]
    api_root: Option<String>,
    /// Only objects added after this time (RFC 3339, e.g. 2026-01-01T00:00:00Z).
    #[arg(long, value_name = "TIME")]
    added_after: Option<String>,
    /// Export only the newest version of each object instead of every version.
    #[arg(long)]
    latest_only: bool,
    /// Highest TLP level written out. A file leaves the hub's control, so RED needs saying.
    #[arg(long, default_value = "amber+strict", value_name = "LEVEL")]
    max_tlp: Tlp,
    /// Write one STIX bundle instead of JSON lines.
    #[arg(long)]
    bundle: bool,
    /// Output file (default: standard output).
    #[arg(long, short)]
    output: Option<PathBuf>,
}

/// Runs `kizuna export`.
pub fn run(config: &Config, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let store = hub::open(config)?;
    let collection =
        hub::find_collection(store.as_ref(), args.api_root.as_deref(), &args.collection)?;
    let added_after = args
        .added_after
        .as_deref()
        .map(hub::parse_time)
        .transpose()?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut query = ObjectQuery {
        added_after,
        limit: 1000,
        versions: if args.latest_only {
            VersionFilter::Last
        } else {
            VersionFilter::All
        },
        clearance: args.max_tlp,
        unmarked_as: config.taxii.unmarked_as,
        ..ObjectQuery::default()
    };
    if args.bundle {
        write!(
            out,
            "{{\"type\":\"bundle\",\"id\":\"bundle--{}\",\"objects\":[",
            hub::new_uuid()
        )?;
    }
    let mut count: u64 = 0;
    let cref = collection.as_ref();
    loop {
        let page = store.objects(&cref, &query)?;
        for rec in &page.records {
            if args.bundle && count > 0 {
                out.write_all(b",")?;
            }
            if args.bundle {
                out.write_all(rec.json.as_bytes())?;
            } else {
                out.write_all(single_line(&rec.json).as_bytes())?;
                out.write_all(b"\n")?;
            }
            count += 1;
        }
        match page.records.last() {
            Some(last) if page.more => query.after_seq = Some(last.seq),
            _ => break,
        }
    }
    if args.bundle {
        out.write_all(b"]}\n")?;
    }
    out.flush()?;
    eprintln!(
        "exported {count} object versions from {} (TLP up to {})",
        collection.id, args.max_tlp
    );
    Ok(ExitCode::SUCCESS)
}

/// The object on one line, for JSON lines. Objects are stored as received, possibly
/// pretty-printed; whitespace outside strings is dropped, and nothing else changes (property order,
/// number spelling and string escapes stay as they were).
fn single_line(json: &str) -> std::borrow::Cow<'_, str> {
    if !json.contains(['\n', '\r']) {
        return std::borrow::Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::single_line;

    #[test]
    fn single_line_keeps_strings_and_order() {
        let pretty = "{\n  \"b\": \"a \\\" \\n x\",\n  \"a\": 1.50\n}";
        assert_eq!(single_line(pretty), "{\"b\":\"a \\\" \\n x\",\"a\":1.50}");
        assert_eq!(single_line("{\"a\": 1}"), "{\"a\": 1}");
    }
}
