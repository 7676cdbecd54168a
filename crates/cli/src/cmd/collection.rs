//! `kizuna collection add | list`.

use std::process::ExitCode;

use anyhow::bail;
use clap::Subcommand;
use kizuna_store::{Collection, Store};

use crate::config::Config;
use crate::hub;

/// Collection subcommands.
#[derive(Debug, Subcommand)]
pub enum CollectionCommand {
    /// Create a collection.
    Add {
        /// Human-readable title.
        #[arg(long)]
        title: String,
        /// Alias usable in URLs instead of the id (unique within the API root).
        #[arg(long)]
        alias: Option<String>,
        /// Description.
        #[arg(long)]
        description: Option<String>,
        /// API root (default: the only one).
        #[arg(long)]
        api_root: Option<String>,
    },
    /// List collections with their object counts.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a collection subcommand.
pub fn run(config: &Config, cmd: CollectionCommand) -> anyhow::Result<ExitCode> {
    let store = hub::open_initialised(config)?;
    match cmd {
        CollectionCommand::Add {
            title,
            alias,
            description,
            api_root,
        } => {
            let api_root = match api_root {
                Some(r) => r,
                None => {
                    let roots = store.api_roots()?;
                    match roots.as_slice() {
                        [only] => only.name.clone(),
                        _ => bail!("there are several API roots: pass --api-root"),
                    }
                }
            };
            if let Some(a) = &alias
                && (a.is_empty()
                    || !a
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')))
            {
                bail!("invalid alias {a:?}: use letters, digits, '.', '_' or '-'");
            }
            let collection = Collection {
                api_root,
                id: hub::new_uuid(),
                title,
                description,
                alias,
                media_types: vec!["application/stix+json;version=2.1".to_owned()],
            };
            store.create_collection(&collection)?;
            println!(
                "collection {} created in API root {:?}{}",
                collection.id,
                collection.api_root,
                collection
                    .alias
                    .as_ref()
                    .map(|a| format!(" (alias {a:?})"))
                    .unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        CollectionCommand::List { json } => {
            let mut rows = Vec::new();
            for root in store.api_roots()? {
                for c in store.collections(&root.name)? {
                    let count = store.count_objects(&c.as_ref())?;
                    rows.push((c, count));
                }
            }
            if json {
                let out: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|(c, n)| {
                        serde_json::json!({
                            "api_root": c.api_root, "id": c.id, "alias": c.alias,
                            "title": c.title, "description": c.description, "objects": n,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&out)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<10} {:<36} {:<12} {:>9}  title",
                "api root", "id", "alias", "objects"
            );
            for (c, n) in rows {
                println!(
                    "{:<10} {:<36} {:<12} {:>9}  {}",
                    c.api_root,
                    c.id,
                    c.alias.as_deref().unwrap_or("-"),
                    n,
                    c.title
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
