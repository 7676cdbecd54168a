//! `kizuna partner add | list | show | retry | remove`: the partners in `kizuna.toml`
//! (`[[partner]]`), their sync status, and the versions they rejected.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use kizuna_stix::Tlp;
use kizuna_sync::config::{AuthConfig, add_partner, load_partners, remove_partner};
use kizuna_sync::state::SyncDb;
use kizuna_sync::{PartnerConfig, PullMapping, PushMapping};

use crate::config::Config;

/// Partner subcommands.
#[derive(Debug, Subcommand)]
pub enum PartnerCommand {
    /// Add a partner to the configuration file. Secrets are named by environment variable or
    /// file, never written in clear.
    Add(Box<AddArgs>),
    /// List the configured partners.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a partner: configuration (without secrets), sync status, quarantined objects.
    Show {
        /// Partner name.
        name: String,
        /// Quarantined objects to list.
        #[arg(long, default_value_t = 20)]
        quarantine: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Put versions the partner rejected, and that push set aside, back: the next sync sends
    /// them once more (rejected again, they go straight back aside).
    Retry {
        /// Partner name.
        name: String,
        /// Only this object's set-aside versions.
        #[arg(long, value_name = "ID")]
        object: Option<String>,
    },
    /// Remove a partner from the configuration file (its sync state and ledger records stay).
    Remove {
        /// Partner name.
        name: String,
    },
}

/// `kizuna partner add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// Unique name (letters, digits, '-', '_', '.').
    pub name: String,
    /// TAXII discovery URL or API root URL.
    #[arg(long)]
    pub url: String,
    /// The partner's STIX identity (`identity--UUID`).
    #[arg(long)]
    pub identity: Option<String>,
    /// The local account this partner reads our TAXII server with (its reads follow this policy).
    #[arg(long)]
    pub account: Option<String>,
    /// API root to use when --url is a discovery URL (default: the discovery's default).
    #[arg(long)]
    pub api_root: Option<String>,
    /// HTTP Basic user name.
    #[arg(long)]
    pub username: Option<String>,
    /// Environment variable holding the Basic password.
    #[arg(long)]
    pub password_env: Option<String>,
    /// File holding the Basic password.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Environment variable holding a bearer token.
    #[arg(long)]
    pub token_env: Option<String>,
    /// File holding a bearer token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// PEM CA bundle the partner's certificate must chain to.
    #[arg(long)]
    pub ca_bundle: Option<PathBuf>,
    /// SHA-256 fingerprint of the partner's certificate.
    #[arg(long)]
    pub pin_sha256: Option<String>,
    /// PEM client certificate (mutual TLS).
    #[arg(long, requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Allow an http:// URL: credentials and intelligence cross the network in clear.
    #[arg(long)]
    pub danger_plaintext_http: bool,
    /// Pull a remote collection into a local one: REMOTE_ID=LOCAL (id or alias). Repeatable.
    #[arg(long, value_name = "REMOTE=LOCAL")]
    pub pull: Vec<String>,
    /// Delete local versions pulled from this partner once the partner deleted them.
    #[arg(long)]
    pub mirror_deletions: bool,
    /// Push a local collection to a remote one: LOCAL=REMOTE_ID. Repeatable.
    #[arg(long, value_name = "LOCAL=REMOTE")]
    pub push: Vec<String>,
    /// The partner is a TLP client of ours: TLP:AMBER may go to it.
    #[arg(long)]
    pub amber_client: bool,
    /// Level unmarked objects are treated as (default amber).
    #[arg(long, value_name = "LEVEL")]
    pub unmarked_as: Option<Tlp>,
    /// Only these object types. Repeatable.
    #[arg(long)]
    pub allow_type: Vec<String>,
    /// Never these object types. Repeatable.
    #[arg(long)]
    pub deny_type: Vec<String>,
    /// Only objects with one of these labels. Repeatable.
    #[arg(long)]
    pub allow_label: Vec<String>,
    /// Never objects with one of these labels. Repeatable.
    #[arg(long)]
    pub deny_label: Vec<String>,
    /// Only objects from these local collections. Repeatable.
    #[arg(long)]
    pub allow_collection: Vec<String>,
    /// Never objects from these local collections. Repeatable.
    #[arg(long)]
    pub deny_collection: Vec<String>,
    /// Drop `x_` custom properties before sending.
    #[arg(long)]
    pub drop_custom_properties: bool,
    /// Hash email addresses before sending.
    #[arg(long)]
    pub hash_emails: bool,
}

/// The configuration file partners are read from and written to.
pub fn partner_file(config_path: Option<&Path>) -> PathBuf {
    config_path.map_or_else(|| PathBuf::from("kizuna.toml"), Path::to_path_buf)
}

/// Loads the configured partners and finds one by name.
pub fn find_partner(config_path: Option<&Path>, name: &str) -> anyhow::Result<PartnerConfig> {
    let file = partner_file(config_path);
    load_partners(&file)?
        .into_iter()
        .find(|p| p.name == name)
        .with_context(|| format!("no partner {name:?} in {}", file.display()))
}

/// Runs a partner subcommand. `config_path` is the `--config` file (default `./kizuna.toml`).
pub fn run(
    config: &Config,
    config_path: Option<&Path>,
    cmd: PartnerCommand,
) -> anyhow::Result<ExitCode> {
    let file = partner_file(config_path);
    match cmd {
        PartnerCommand::Add(args) => {
            let p = partner_from_args(*args)?;
            add_partner(&file, &p)?;
            println!("partner {} added to {}", p.name, file.display());
            if p.pull.is_empty() && p.push.is_empty() {
                println!(
                    "note: no --pull or --push mapping yet; `kizuna sync` will only check the connection"
                );
            }
        }
        PartnerCommand::List { json } => {
            let partners = load_partners(&file)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&partners)?);
            } else if partners.is_empty() {
                println!("no partners in {}", file.display());
            } else {
                println!("{:<20} {:<6} {:<6} URL", "NAME", "PULLS", "PUSHES");
                for p in partners {
                    println!(
                        "{:<20} {:<6} {:<6} {}",
                        p.name,
                        p.pull.len(),
                        p.push.len(),
                        p.url
                    );
                }
            }
        }
        PartnerCommand::Show {
            name,
            quarantine,
            json,
        } => {
            let p = find_partner(config_path, &name)?;
            let db = SyncDb::open(&config.data)?;
            let status = db.status(&p.name)?;
            let quarantined = db.quarantined(&p.name, quarantine)?;
            let positions = db.positions(&p.name)?;
            let deletions = db.deletion_positions(&p.name)?;
            let outbound = db.outbound_quarantine(&p.name)?;
            if json {
                let v = serde_json::json!({"partner": p, "status": status, "positions": positions,
                    "deletions": deletions, "quarantined": quarantined,
                    "outbound_quarantine": outbound});
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("{}", toml::to_string(&p)?.trim_end());
                println!();
                println!(
                    "last attempt:  {}",
                    status.last_attempt.as_deref().unwrap_or("never")
                );
                println!(
                    "last success:  {}",
                    status.last_success.as_deref().unwrap_or("never")
                );
                println!(
                    "last error:    {}",
                    status.last_error.as_deref().unwrap_or("none")
                );
                println!(
                    "pulled {} / pushed {} / quarantined {} object versions",
                    status.pulled, status.pushed, status.quarantined
                );
                for c in &positions.pulls {
                    println!(
                        "pull {} -> {}: up to date_added {} (as of {})",
                        c.remote, c.local, c.date_added_last, c.updated
                    );
                }
                for w in &positions.pushes {
                    println!(
                        "push {} -> {}: up to local position {} (as of {})",
                        w.local, w.remote, w.seq, w.updated
                    );
                }
                for d in &deletions {
                    println!(
                        "deletions {} -> {}: up to deletion {}, {} sent (as of {})",
                        d.local,
                        d.remote,
                        d.seq.map_or_else(|| "none".to_owned(), |s| s.to_string()),
                        d.deleted,
                        d.updated
                    );
                    if let Some(refused) = &d.refused {
                        println!("  the partner refuses deletions: {refused}");
                    }
                }
                for o in &outbound {
                    println!(
                        "rejected by the partner ({}, {} attempts, last {}): {} {} -> {}: {}",
                        o.state.replace('_', " "),
                        o.attempts,
                        o.last_time,
                        o.object_id,
                        o.version,
                        o.remote,
                        o.message
                    );
                }
                for q in quarantined {
                    println!(
                        "quarantined {} {} from {}: {}",
                        q.time,
                        q.object_id.as_deref().unwrap_or("(no id)"),
                        q.remote_collection,
                        q.reason
                    );
                }
            }
        }
        PartnerCommand::Retry { name, object } => {
            let p = find_partner(config_path, &name)?;
            let db = SyncDb::open(&config.data)?;
            let n = db.retry_set_aside(&p.name, object.as_deref())?;
            println!(
                "{n} set-aside version(s) will be sent to {} on the next sync",
                p.name
            );
        }
        PartnerCommand::Remove { name } => {
            if remove_partner(&file, &name)? {
                println!("partner {name} removed from {}", file.display());
            } else {
                bail!("no partner {name:?} in {}", file.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn split_pair(text: &str, what: &str) -> anyhow::Result<(String, String)> {
    match text.split_once('=') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() => Ok((a.to_owned(), b.to_owned())),
        _ => bail!("--{what} {text:?}: expected A=B"),
    }
}

fn partner_from_args(a: AddArgs) -> anyhow::Result<PartnerConfig> {
    let mut p = PartnerConfig::new(a.name, a.url);
    p.identity = a.identity;
    p.account = a.account;
    p.api_root = a.api_root;
    p.auth = AuthConfig {
        username: a.username,
        password_env: a.password_env,
        password_file: a.password_file,
        token_env: a.token_env,
        token_file: a.token_file,
    };
    p.ca_bundle = a.ca_bundle;
    p.pinned_sha256 = a.pin_sha256;
    p.client_cert = a.client_cert;
    p.client_key = a.client_key;
    p.danger_plaintext_http = a.danger_plaintext_http;
    for m in &a.pull {
        let (remote, local) = split_pair(m, "pull")?;
        p.pull.push(PullMapping {
            remote,
            local,
            local_api_root: None,
            mirror_deletions: a.mirror_deletions,
        });
    }
    for m in &a.push {
        let (local, remote) = split_pair(m, "push")?;
        p.push.push(PushMapping {
            local,
            remote,
            local_api_root: None,
        });
    }
    let policy = &mut p.policy;
    policy.amber_client = a.amber_client;
    if let Some(t) = a.unmarked_as {
        policy.unmarked_as = t;
    }
    policy.allow_types = a.allow_type;
    policy.deny_types = a.deny_type;
    policy.allow_labels = a.allow_label;
    policy.deny_labels = a.deny_label;
    policy.allow_collections = a.allow_collection;
    policy.deny_collections = a.deny_collection;
    policy.redaction.drop_custom_properties = a.drop_custom_properties;
    policy.redaction.hash_email_addresses = a.hash_emails;
    p.check()?;
    Ok(p)
}
