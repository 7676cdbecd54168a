//! `kizuna policy explain | dry-run`: why an object would or would not go to a partner, and what
//! the next push would send.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use clap::Subcommand;
use kizuna_stix::Tlp;
use kizuna_store::{ObjectQuery, Store, VersionFilter};
use kizuna_sync::state::SyncDb;
use kizuna_sync::{SyncEngine, SyncOptions};

use crate::config::Config;
use crate::hub;

use super::partner::find_partner;

/// Policy subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Explain whether each stored version of an object may go to a partner, and why.
    Explain {
        /// Partner name.
        #[arg(long)]
        partner: String,
        /// Object id.
        #[arg(long)]
        object: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List what the next push to a partner would send, without sending anything.
    DryRun {
        /// Partner name.
        #[arg(long)]
        partner: String,
        /// Object versions examined per push mapping.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a policy subcommand; `explain` exits 1 when the object is refused or not found.
pub fn run(
    config: &Config,
    config_path: Option<&Path>,
    cmd: PolicyCommand,
) -> anyhow::Result<ExitCode> {
    let store = hub::open(config)?;
    match cmd {
        PolicyCommand::Explain {
            partner,
            object,
            json,
        } => {
            let p = find_partner(config_path, &partner)?;
            let mut any = false;
            let mut all_allowed = true;
            for root in store.api_roots()? {
                for coll in store.collections(&root.name)? {
                    let query = ObjectQuery {
                        ids: vec![object.clone()],
                        versions: VersionFilter::All,
                        limit: 1000,
                        clearance: Tlp::Red,
                        unmarked_as: Tlp::Red,
                        ..Default::default()
                    };
                    let page = store.objects(&coll.as_ref(), &query)?;
                    let mut names = vec![coll.id.as_str()];
                    if let Some(a) = &coll.alias {
                        names.push(a.as_str());
                    }
                    for rec in page.records {
                        any = true;
                        let value: serde_json::Value = serde_json::from_str(&rec.json)?;
                        let d = p.policy.explain(&value, &names);
                        all_allowed &= d.allowed;
                        if json {
                            let v = serde_json::json!({"collection": coll.id, "version": rec.version.to_string(), "decision": d});
                            println!("{v}");
                        } else {
                            println!(
                                "{} version {} in {}/{}: {}",
                                rec.id,
                                rec.version,
                                root.name,
                                coll.alias.as_deref().unwrap_or(&coll.id),
                                if d.allowed { "ALLOWED" } else { "REFUSED" }
                            );
                            for r in &d.reasons {
                                println!("  - {r}");
                            }
                        }
                    }
                }
            }
            if !any {
                bail!("object {object} is not in any local collection");
            }
            Ok(if all_allowed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        PolicyCommand::DryRun {
            partner,
            limit,
            json,
        } => {
            let p = find_partner(config_path, &partner)?;
            let db = Arc::new(SyncDb::open(&config.data)?);
            let engine = SyncEngine::new(store, db, SyncOptions::default());
            for m in &p.push {
                let plan = engine.plan_push(&p, m, limit)?;
                let sending = plan.iter().filter(|x| x.decision.allowed).count();
                if json {
                    let v = serde_json::json!({"local": m.local, "remote": m.remote, "plan": plan});
                    println!("{v}");
                    continue;
                }
                println!(
                    "{} -> {}: {} of {} versions would be sent",
                    m.local,
                    m.remote,
                    sending,
                    plan.len()
                );
                for x in &plan {
                    let why = if x.decision.allowed {
                        "send".to_owned()
                    } else {
                        format!("keep: {}", x.decision.refusal().unwrap_or("refused"))
                    };
                    println!("  {} {} [{}] {why}", x.id, x.version, x.decision.tlp);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
