//! `kizuna export`: a collection's objects as JSON lines (the exact stored bytes) or a bundle;
//! with `--partner`, only what that partner's egress policy lets out, redacted as it says (the
//! policy push and the TAXII server apply to the same partner).
//!
//! With `--partner`, every version written is in the egress ledger (exit `export`, SHA-256 of the
//! bytes written: the one-line form for JSON lines, the object as stored or redacted in a bundle)
//! before it is written: each page of up to 1,000 versions is appended to the ledger in one
//! transaction, then written. So the ledger holds at least what left: if writing fails midway
//! (disk full, a closed pipe), the versions of the page being written are recorded although some
//! of them never reached the file, and the command fails saying how many versions were recorded.
//! If the ledger cannot be written, nothing more is written out and the command fails. An export
//! without `--partner` is not for a partner and is not ledgered.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use kizuna_stix::Tlp;
use kizuna_store::{ObjectQuery, Store, VersionFilter};
use kizuna_sync::ledger::{Exit, LedgerEntry, sha256_hex};
use kizuna_sync::state::SyncDb;
use kizuna_sync::{Decision, EgressPolicy};

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
    /// Export for this partner (`[[partner]]` in the configuration): only what its egress policy
    /// lets out, with its redaction applied. How many versions were withheld is said on stderr.
    #[arg(long, value_name = "NAME")]
    partner: Option<String>,
    /// Write one STIX bundle instead of JSON lines.
    #[arg(long)]
    bundle: bool,
    /// Output file (default: standard output).
    #[arg(long, short)]
    output: Option<PathBuf>,
}

/// Runs `kizuna export`.
pub fn run(config: &Config, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let policy: Option<&EgressPolicy> = match &args.partner {
        Some(name) => Some(
            &config
                .partners
                .iter()
                .find(|p| &p.name == name)
                .with_context(|| format!("no partner {name:?} in the configuration"))?
                .policy,
        ),
        None => None,
    };
    let ledger = match &args.partner {
        Some(partner) => Some((
            partner.as_str(),
            SyncDb::open(&config.data).with_context(|| {
                format!("cannot open the egress ledger in {}", config.data.display())
            })?,
        )),
        None => None,
    };
    let store = hub::open(config)?;
    let collection =
        hub::find_collection(store.as_ref(), args.api_root.as_deref(), &args.collection)?;
    let names: Vec<&str> = std::iter::once(collection.id.as_str())
        .chain(collection.alias.as_deref())
        .collect();
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
    let mut withheld: u64 = 0;
    let mut recorded: u64 = 0;
    let cref = collection.as_ref();
    let written = (|| -> anyhow::Result<()> {
        loop {
            let page = store.objects(&cref, &query)?;
            // What this page lets out, in the form it is written.
            let mut outgoing = Vec::with_capacity(page.records.len());
            for rec in &page.records {
                let (json, decision) = match policy {
                    None => (std::borrow::Cow::Borrowed(rec.json.as_str()), None),
                    Some(policy) => match let_out(policy, &names, &rec.json) {
                        Some((json, decision)) => (json, Some(decision)),
                        None => {
                            withheld += 1;
                            continue;
                        }
                    },
                };
                let bytes = if args.bundle {
                    json
                } else {
                    std::borrow::Cow::Owned(single_line(&json).into_owned())
                };
                outgoing.push((rec, bytes, decision));
            }
            if let Some((partner, db)) = &ledger
                && !outgoing.is_empty()
            {
                let now = kizuna_stix::Timestamp::now();
                let entries: Vec<LedgerEntry> = outgoing
                    .iter()
                    .map(|(rec, bytes, decision)| LedgerEntry {
                        time: now,
                        exit: Exit::Export,
                        partner: (*partner).to_owned(),
                        object_id: rec.id.clone(),
                        version: rec.version.to_string(),
                        marking: decision
                            .as_ref()
                            .map(Decision::marking_label)
                            .unwrap_or_default(),
                        sha256: sha256_hex(bytes.as_bytes()),
                    })
                    .collect();
                db.append_ledger(&entries).context(
                    "cannot record the export in the egress ledger; nothing more written",
                )?;
                recorded += entries.len() as u64;
            }
            for (_, bytes, _) in &outgoing {
                if args.bundle && count > 0 {
                    out.write_all(b",")?;
                }
                out.write_all(bytes.as_bytes())?;
                if !args.bundle {
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
        Ok(())
    })();
    if let Err(e) = written {
        if let Some(partner) = &args.partner {
            eprintln!(
                "export failed: {recorded} object versions for partner {partner} are in the egress ledger, of which {count} were handed to the output before the failure"
            );
        }
        return Err(e);
    }
    eprintln!(
        "exported {count} object versions from {} (TLP up to {})",
        collection.id, args.max_tlp
    );
    if let Some(partner) = &args.partner {
        eprintln!("withheld {withheld} object versions by the egress policy of partner {partner}");
        eprintln!("recorded {recorded} object versions in the egress ledger (exit export)");
    }
    Ok(ExitCode::SUCCESS)
}

/// The bytes `policy` lets out for a stored object of the collection named by `names` (its id
/// and alias), with the decision, or `None` when it withholds it. A stored object that does not
/// parse is withheld: the policy fails closed.
fn let_out<'a>(
    policy: &EgressPolicy,
    names: &[&str],
    json: &'a str,
) -> Option<(std::borrow::Cow<'a, str>, Decision)> {
    let object: serde_json::Value = serde_json::from_str(json).ok()?;
    let decision = policy.explain(&object, names);
    decision
        .allowed
        .then(|| (policy.egress_bytes(json, &object), decision))
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
