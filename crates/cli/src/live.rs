//! The `[[partner]]` tables of a running `kizuna serve`, kept live.
//!
//! `kizuna serve` re-reads them from `kizuna.toml` on SIGHUP and at the start of every sync round,
//! and swaps, in one step each, the partner list the next sync round uses and the TAXII server's
//! egress map (which account belongs to which partner, under which policy). Push and TAXII reads
//! therefore obey the same configuration within one round. A file that fails to parse (or whose
//! partners fail their checks) changes nothing: the old configuration stays in force and the error
//! is logged with the file and, for syntax and key errors, the line and column. Only the
//! `[[partner]]` tables are re-read; other settings (listener, TLS, `[taxii]`, `[sync]`) still need
//! a restart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use kizuna_sync::PartnerConfig;
use kizuna_taxii::{EgressMap, PartnerEgress};

/// The partners in force, and the TAXII server's egress map built from them.
#[derive(Debug)]
pub struct LivePartners {
    /// The configuration file re-read (`None`: there was none, so there is nothing to re-read).
    path: Option<PathBuf>,
    partners: RwLock<Arc<Vec<PartnerConfig>>>,
    egress: EgressMap,
}

impl LivePartners {
    /// The partners loaded at start-up from `path`.
    pub fn new(path: Option<PathBuf>, partners: Vec<PartnerConfig>) -> Self {
        let egress = EgressMap::new(egress_entries(&partners));
        Self {
            path,
            partners: RwLock::new(Arc::new(partners)),
            egress,
        }
    }

    /// The egress map to give the TAXII server (shared: replaced in place by [`Self::reload`]).
    pub fn egress(&self) -> EgressMap {
        self.egress.clone()
    }

    /// The partners in force.
    pub fn partners(&self) -> Arc<Vec<PartnerConfig>> {
        self.partners
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Re-reads the `[[partner]]` tables; on success replaces the partner list and the egress map,
    /// on failure logs why and keeps both. Returns whether anything changed. Blocking (reads the
    /// file).
    pub fn reload(&self) -> bool {
        let Some(path) = &self.path else {
            return false;
        };
        let partners = match kizuna_sync::config::load_partners(path) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "partner configuration not reloaded: the previous one stays in force");
                return false;
            }
        };
        let mut current = self
            .partners
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if **current == partners {
            return false;
        }
        self.egress.replace(egress_entries(&partners));
        tracing::info!(
            file = %path.display(),
            partners = partners.len(),
            reading_accounts = ?self.egress.accounts(),
            "partner configuration reloaded"
        );
        *current = Arc::new(partners);
        true
    }
}

/// The configuration file `kizuna serve` re-reads: the one given with `--config`, else
/// `./kizuna.toml` when it exists (as [`crate::config::Config::load`] chose at start-up).
pub fn config_file(given: Option<&Path>) -> Option<PathBuf> {
    match given {
        Some(p) => Some(p.to_owned()),
        None => {
            let default = Path::new("kizuna.toml");
            default.exists().then(|| default.to_owned())
        }
    }
}

/// The egress map entries of partners that read from us with a local account (`account = "..."`
/// in their `[[partner]]` table), by account. (Loading refuses an account given to two partners.)
pub fn egress_entries(partners: &[PartnerConfig]) -> HashMap<String, PartnerEgress> {
    partners
        .iter()
        .filter_map(|p| {
            Some((
                p.account.clone()?,
                PartnerEgress {
                    partner: p.name.clone(),
                    policy: p.policy.clone(),
                },
            ))
        })
        .collect()
}

/// Reloads on every SIGHUP until `stop` turns true (Unix only; elsewhere only sync rounds reload).
/// The signal handler is installed before this returns, so a SIGHUP sent once the server is up
/// is a reload, never the default "terminate".
pub fn spawn_reload_on_sighup(
    live: Arc<LivePartners>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let stopped = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let hangup = signal(SignalKind::hangup());
        tokio::spawn(async move {
            let mut hangup = match hangup {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGHUP: partner configuration reloads only at sync rounds");
                    return;
                }
            };
            tokio::pin!(stopped);
            loop {
                tokio::select! {
                    () = &mut stopped => return,
                    received = hangup.recv() => {
                        if received.is_none() {
                            return;
                        }
                        let live = live.clone();
                        if let Err(e) = tokio::task::spawn_blocking(move || live.reload()).await {
                            tracing::error!(error = %e, "partner configuration reload failed");
                        }
                    }
                }
            }
        })
    }
    #[cfg(not(unix))]
    {
        let _ = live;
        tokio::spawn(stopped)
    }
}
