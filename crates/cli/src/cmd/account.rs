//! `kizuna account add | list | revoke`.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use kizuna_stix::{Timestamp, Tlp};
use kizuna_store::{AuditAction, AuditEvent, NewAccount, Permission, Store};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::hub;

/// Account subcommands.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account. Give it at least one credential: a password on stdin, a generated API
    /// key, or a client certificate.
    Add {
        /// Account name (letters, digits, `.`, `_`, `-`).
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Generate an API key (printed once; only its SHA-256 is stored).
        #[arg(long)]
        api_key: bool,
        /// Map this client certificate (PEM file) to the account, for mutual TLS.
        #[arg(long, value_name = "PEM")]
        client_cert: Option<PathBuf>,
        /// Collection (id or alias) the account may read; repeatable.
        #[arg(long = "read", value_name = "COLL")]
        read: Vec<String>,
        /// Collection (id or alias) the account may write; repeatable.
        #[arg(long = "write", value_name = "COLL")]
        write: Vec<String>,
        /// Highest TLP level the account may receive: clear, green, amber, amber+strict, red.
        #[arg(long, default_value = "green", value_name = "LEVEL")]
        tlp_clearance: Tlp,
        /// Administrator: may read and write every collection.
        #[arg(long)]
        admin: bool,
        /// API root of the collections named by --read/--write (default: the only one).
        #[arg(long)]
        api_root: Option<String>,
    },
    /// List accounts with their clearance and permissions.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an account: it can no longer authenticate by any means.
    Revoke {
        /// Account name.
        name: String,
    },
}

/// Runs an account subcommand.
pub fn run(config: &Config, cmd: AccountCommand) -> anyhow::Result<ExitCode> {
    let store = hub::open_initialised(config)?;
    match cmd {
        AccountCommand::Add {
            name,
            password_stdin,
            api_key,
            client_cert,
            read,
            write,
            tlp_clearance,
            admin,
            api_root,
        } => {
            check_name(&name)?;
            if !password_stdin && !api_key && client_cert.is_none() {
                bail!(
                    "account {name:?} needs a credential: --password-stdin, --api-key or --client-cert"
                );
            }
            // Resolve everything that can fail before creating anything.
            let mut perms: Vec<Permission> = Vec::new();
            for (coll, is_write) in read
                .iter()
                .map(|c| (c, false))
                .chain(write.iter().map(|c| (c, true)))
            {
                let c = hub::find_collection(store.as_ref(), api_root.as_deref(), coll)?;
                match perms
                    .iter_mut()
                    .find(|p| p.collection == c.id && p.api_root == c.api_root)
                {
                    Some(p) => {
                        p.read |= !is_write;
                        p.write |= is_write;
                    }
                    None => perms.push(Permission {
                        api_root: c.api_root,
                        collection: c.id,
                        read: !is_write,
                        write: is_write,
                    }),
                }
            }
            let cert_hash = match &client_cert {
                Some(path) => Some(cert_fingerprint(path)?),
                None => None,
            };
            let password_hash = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("cannot read the password from standard input")?;
                let password = line.trim_end_matches(['\r', '\n']);
                if password.len() < 12 {
                    bail!("the password must have at least 12 characters");
                }
                Some(kizuna_store::hash_password(password)?)
            } else {
                None
            };
            store.create_account(&NewAccount {
                name: name.clone(),
                password_hash,
                tlp_clearance,
                admin,
            })?;
            for p in &perms {
                store.set_permission(&name, p)?;
            }
            if let Some(h) = cert_hash {
                store.add_client_cert(&name, &h)?;
            }
            store.audit(&[AuditEvent {
                time: Timestamp::now(),
                account: Some(name.clone()),
                action: AuditAction::Admin,
                collection: None,
                object_id: None,
                version: None,
                detail: Some(format!("account created (clearance {tlp_clearance})")),
            }])?;
            println!("account {name:?} created (TLP clearance {tlp_clearance})");
            if api_key {
                let key = hub::generate_secret();
                let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
                store.add_api_key(&name, &digest)?;
                println!("API key (shown once, send it as `Authorization: Bearer <key>`):\n{key}");
            }
            Ok(ExitCode::SUCCESS)
        }
        AccountCommand::List { json } => {
            let accounts = store.accounts()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&accounts)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<20} {:<13} {:<6} {:<8} {:<5} {:<6} permissions",
                "name", "clearance", "admin", "revoked", "keys", "certs"
            );
            for a in accounts {
                let perms: Vec<String> = a
                    .permissions
                    .iter()
                    .map(|p| {
                        let mode = match (p.read, p.write) {
                            (true, true) => "rw",
                            (true, false) => "r",
                            (false, true) => "w",
                            (false, false) => "-",
                        };
                        format!("{}/{}:{mode}", p.api_root, p.collection)
                    })
                    .collect();
                println!(
                    "{:<20} {:<13} {:<6} {:<8} {:<5} {:<6} {}",
                    a.name,
                    a.tlp_clearance.as_str(),
                    a.admin,
                    a.revoked,
                    a.api_keys,
                    a.client_certs,
                    perms.join(" ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        AccountCommand::Revoke { name } => {
            if !store.revoke_account(&name)? {
                bail!("no account named {name:?}");
            }
            store.audit(&[AuditEvent {
                time: Timestamp::now(),
                account: Some(name.clone()),
                action: AuditAction::Admin,
                collection: None,
                object_id: None,
                version: None,
                detail: Some("account revoked".to_owned()),
            }])?;
            println!("account {name:?} revoked");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        bail!("invalid account name {name:?}: use 1-64 letters, digits, '.', '_' or '-'");
    }
    Ok(())
}

/// SHA-256 of the DER of the first certificate in a PEM file.
fn cert_fingerprint(path: &std::path::Path) -> anyhow::Result<[u8; 32]> {
    let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let cert = rustls_pemfile::certs(&mut pem.as_slice())
        .next()
        .with_context(|| format!("{} holds no PEM certificate", path.display()))?
        .with_context(|| format!("{} holds a malformed certificate", path.display()))?;
    Ok(Sha256::digest(cert.as_ref()).into())
}
