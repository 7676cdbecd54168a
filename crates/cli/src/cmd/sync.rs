//! `kizuna sync [--partner P]`: one pull/push run with every configured partner (or one), now.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use kizuna_sync::state::SyncDb;
use kizuna_sync::{SyncEngine, SyncOptions};

use crate::config::Config;
use crate::hub;

use super::partner::partner_file;

/// `kizuna sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Only this partner (default: all, in parallel).
    #[arg(long)]
    pub partner: Option<String>,
    /// Print the reports as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `kizuna sync`; exit status 1 when any partner failed.
pub fn run(
    config: &Config,
    config_path: Option<&Path>,
    args: SyncArgs,
) -> anyhow::Result<ExitCode> {
    let file = partner_file(config_path);
    let mut partners = kizuna_sync::config::load_partners(&file)?;
    if let Some(name) = &args.partner {
        partners.retain(|p| &p.name == name);
        if partners.is_empty() {
            bail!("no partner {name:?} in {}", file.display());
        }
    }
    if partners.is_empty() {
        println!("no partners in {}", file.display());
        return Ok(ExitCode::SUCCESS);
    }
    let store = hub::open(config)?;
    let db = Arc::new(SyncDb::open(&config.data)?);
    let engine = Arc::new(SyncEngine::new(store, db, SyncOptions::default()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let results = runtime.block_on(engine.sync_all(&partners));
    let mut failed = false;
    for (name, result) in results {
        match result {
            Ok(report) if args.json => println!("{}", serde_json::to_string(&report)?),
            Ok(report) => {
                for (remote, r) in &report.pulls {
                    println!(
                        "{name}: pulled {remote}: {} added, {} already present, {} quarantined ({} pages)",
                        r.added, r.duplicates, r.quarantined, r.pages
                    );
                }
                for (local, r) in &report.pushes {
                    println!(
                        "{name}: pushed {local}: {} sent in {} envelopes, {} refused by policy, {} not echoed",
                        r.sent, r.envelopes, r.refused, r.echoes
                    );
                    if r.deleted + r.already_gone > 0 {
                        println!(
                            "{name}: deletions from {local}: {} deleted at the partner, {} already gone",
                            r.deleted, r.already_gone
                        );
                    }
                    if let Some(why) = &r.deletion_refused {
                        println!("{name}: the partner refuses deletions from {local}: {why}");
                    }
                    if r.rejected + r.set_aside + r.retried > 0 {
                        println!(
                            "{name}: {local}: {} rejected by the partner, {} set aside, {} retried (kizuna partner show {name})",
                            r.rejected, r.set_aside, r.retried
                        );
                    }
                }
            }
            Err(e) => {
                failed = true;
                eprintln!("{name}: sync failed: {e}");
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
