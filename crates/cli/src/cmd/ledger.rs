//! `kizuna ledger verify | show`: the egress ledger of everything that left the hub.

use std::process::ExitCode;

use clap::Subcommand;
use kizuna_sync::ledger::{LedgerStorage, verify};
use kizuna_sync::state::SyncDb;

use crate::config::Config;

/// Ledger subcommands.
#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Recompute the hash chain; exit status 1 on any edit, deletion or reordering.
    Verify {
        /// The head hash recorded earlier (e.g. by `ledger show`), to detect truncation too.
        #[arg(long, value_name = "HASH")]
        expect_head: Option<String>,
    },
    /// Print ledger records, oldest first, and the current head.
    Show {
        /// Only records for this partner.
        #[arg(long)]
        partner: Option<String>,
        /// Only records after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// At most this many records.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a ledger subcommand.
pub fn run(config: &Config, cmd: LedgerCommand) -> anyhow::Result<ExitCode> {
    let db = SyncDb::open(&config.data)?;
    match cmd {
        LedgerCommand::Verify { expect_head } => {
            let v = verify(&db, expect_head.as_deref())?;
            for p in &v.problems {
                eprintln!("ledger: {p}");
            }
            match &v.head {
                Some(h) => println!("{} records, head #{} {}", v.records, h.seq, h.hash),
                None => println!("empty ledger"),
            }
            if v.is_intact() {
                println!("ledger intact");
                Ok(ExitCode::SUCCESS)
            } else {
                println!("ledger TAMPERED: {} problems", v.problems.len());
                Ok(ExitCode::from(1))
            }
        }
        LedgerCommand::Show {
            partner,
            after,
            limit,
            json,
        } => {
            let records = match &partner {
                Some(p) => db.ledger_for(p, after, limit)?,
                None => LedgerStorage::records(&db, after, limit)?,
            };
            for r in &records {
                if json {
                    println!("{}", serde_json::to_string(r)?);
                } else {
                    println!(
                        "#{} {} {:<6} {} {} {} [{}] sha256:{}",
                        r.seq,
                        r.entry.time,
                        r.entry.exit,
                        r.entry.partner,
                        r.entry.object_id,
                        r.entry.version,
                        r.entry.marking,
                        r.entry.sha256
                    );
                }
            }
            if !json {
                match LedgerStorage::head(&db)? {
                    Some(h) => println!("head #{} {}", h.seq, h.hash),
                    None => println!("empty ledger"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
