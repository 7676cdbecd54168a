//! `kizuna audit`: query the audit log.

use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use kizuna_store::{AuditAction, AuditQuery, Store};

use crate::config::Config;
use crate::hub;

/// Arguments of `kizuna audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only events of this account.
    #[arg(long)]
    account: Option<String>,
    /// Only this action: write, delete, serve, login-failed, admin.
    #[arg(long)]
    action: Option<String>,
    /// Only events about this object id.
    #[arg(long)]
    object: Option<String>,
    /// Only events at or after this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// At most this many events, oldest first (narrow with --since for recent ones; 0: all).
    #[arg(long, default_value_t = 1000)]
    limit: usize,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs `kizuna audit`.
pub fn run(config: &Config, args: AuditArgs) -> anyhow::Result<ExitCode> {
    let store = hub::open(config)?;
    let action = match args.action.as_deref() {
        None => None,
        Some("write") => Some(AuditAction::Write),
        Some("delete") => Some(AuditAction::Delete),
        Some("serve") => Some(AuditAction::Serve),
        Some("login-failed") => Some(AuditAction::LoginFailed),
        Some("admin") => Some(AuditAction::Admin),
        Some(other) => {
            bail!("unknown action {other:?}: use write, delete, serve, login-failed or admin")
        }
    };
    let events = store.audit_events(&AuditQuery {
        account: args.account,
        action,
        object_id: args.object,
        since: args.since.as_deref().map(hub::parse_time).transpose()?,
        limit: args.limit,
    })?;
    for e in &events {
        if args.json {
            println!("{}", serde_json::to_string(e)?);
        } else {
            println!(
                "{} {:<12} {:<16} {} {} {} {}",
                e.time,
                e.action.as_str(),
                e.account.as_deref().unwrap_or("-"),
                e.collection.as_deref().unwrap_or("-"),
                e.object_id.as_deref().unwrap_or("-"),
                e.version.as_deref().unwrap_or("-"),
                e.detail.as_deref().unwrap_or("")
            );
        }
    }
    if !args.json {
        eprintln!("{} event(s)", events.len());
    }
    Ok(ExitCode::SUCCESS)
}
