//! The pull/push engine: one [`SyncEngine`] per hub, shared by every partner.
//!
//! **Pull** (remote collection → local collection): pages of `match[version]=all` read with
//! `added_after` = the last stored page's `X-TAXII-Date-Added-Last` minus one microsecond (so that
//! objects sharing that instant across a page boundary are re-read, never skipped; re-reading is
//! harmless because the store treats exact duplicates as no-ops), then `next` tokens. Each object is
//! validated; invalid ones are quarantined with the reason. The checkpoint advances only after the
//! page's objects are committed to the store.
//!
//! **Push** (local collection → remote collection): object versions after the watermark (the
//! store's per-collection sequence) are read in order, versions received from this very partner
//! are skipped (no echo), the egress policy decides and redacts, the rest is POSTed in envelopes
//! within the partner's `max_content_length`, status resources are polled until complete, and
//! failures reported for objects the partner already holds (a re-send) are reconciled by asking the
//! partner for that version. Only then are the ledger records and the new watermark committed, in
//! one transaction. A version the partner rejects for good (failed, and not held by the partner)
//! blocks the mapping for `set_aside_after` runs, then is set aside in the outbound quarantine and
//! the watermark moves past it; `kizuna partner retry` sends it once more.
//!
//! **Deletions** (per push mapping, before the objects): the local collection's deletion log
//! (`Store::deletions`) is read after its own watermark; each deleted version that the egress
//! ledger says went to this partner, that did not come from it, and that is still absent locally
//! becomes a `DELETE` (with `match[version]`, except for SCOs). The watermark advances only over
//! deletions the partner answered with 200 or 404; a refusal (401, 403, other 4xx) is recorded
//! and reported, and the objects are pushed all the same.

use std::sync::Arc;
use std::time::Duration;

use kizuna_store::{Collection, Store};
use reqwest::Url;
use serde::Serialize;

use crate::client::{Probe, TaxiiClient, base_url};
use crate::config::PartnerConfig;
use crate::error::{Error, Result};
use crate::policy::Decision;
use crate::retry::{RetryPolicy, joined};
use crate::state::SyncDb;

/// Tuning of the engine.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Retries of each request.
    pub retry: RetryPolicy,
    /// Delay between polls of a pending status resource.
    pub status_poll_interval: Duration,
    /// Polls of a pending status resource before the push counts as failed (and is retried).
    pub status_poll_attempts: u32,
    /// Object versions read from the local store per push step.
    pub push_page: usize,
    /// Failures of one status resource that are checked against the partner's versions.
    pub max_reconcile: usize,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            status_poll_interval: Duration::from_millis(250),
            status_poll_attempts: 120,
            push_page: 500,
            max_reconcile: 200,
        }
    }
}

/// What one pull mapping did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PullReport {
    /// Pages read.
    pub pages: u64,
    /// Object versions newly stored.
    pub added: u64,
    /// Object versions already present (re-read page boundaries, re-sends).
    pub duplicates: u64,
    /// Objects quarantined.
    pub quarantined: u64,
    /// Local versions deleted because the partner deleted them (`mirror_deletions`).
    pub deleted: u64,
}

/// What one push mapping did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PushReport {
    /// Object versions examined.
    pub examined: u64,
    /// Object versions sent (and recorded in the ledger).
    pub sent: u64,
    /// Object versions the policy refused.
    pub refused: u64,
    /// Object versions not sent back to the partner they came from.
    pub echoes: u64,
    /// Envelopes POSTed.
    pub envelopes: u64,
    /// Versions the partner rejected for good in this run (its status said failed and its
    /// versions endpoint confirmed it does not hold them); each is counted in the outbound
    /// quarantine.
    pub rejected: u64,
    /// Versions set aside in the outbound quarantine (in this run, or skipped because they were).
    pub set_aside: u64,
    /// Set-aside versions sent once more because of `kizuna partner retry`.
    pub retried: u64,
    /// Deletions sent that the partner carried out (200).
    pub deleted: u64,
    /// Deletions sent for versions the partner no longer held (404: a harmless re-send).
    pub already_gone: u64,
    /// The partner's refusal of a DELETE (it did not grant us deletion), if one happened; the
    /// deletions wait at that point, object push goes on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_refused: Option<String>,
}

/// What a sync run with one partner did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    /// Partner name.
    pub partner: String,
    /// Per pull mapping (remote collection id), in configuration order.
    pub pulls: Vec<(String, PullReport)>,
    /// Per push mapping (local collection), in configuration order.
    pub pushes: Vec<(String, PushReport)>,
}

/// A partner connection: client, API root URL and its `max_content_length`.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The client.
    pub client: TaxiiClient,
    /// The API root used.
    pub api_root: Url,
    /// The API root's `max_content_length`.
    pub max_content_length: u64,
}

/// One object version the next push would send, or why it would not.
#[derive(Debug, Clone, Serialize)]
pub struct Planned {
    /// Position in the local collection.
    pub seq: i64,
    /// Object id.
    pub id: String,
    /// Version.
    pub version: String,
    /// The policy's decision (an echo is reported as refused with that reason).
    pub decision: Decision,
    /// Bytes that would be sent (after redaction), for allowed objects.
    #[serde(skip)]
    pub bytes: Option<String>,
}

/// The federation engine.
pub struct SyncEngine {
    store: Arc<dyn Store>,
    db: Arc<SyncDb>,
    options: SyncOptions,
    /// Failed runs per partner since this engine was made (for `/metrics`).
    errors: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

impl std::fmt::Debug for SyncEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncEngine")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl SyncEngine {
    /// An engine over the hub's store and the sync database.
    pub fn new(store: Arc<dyn Store>, db: Arc<SyncDb>, options: SyncOptions) -> Self {
        Self {
            store,
            db,
            options,
            errors: Default::default(),
        }
    }

    /// Counts a failed run with `partner`.
    pub(crate) fn count_error(&self, partner: &str) {
        *self
            .errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(partner.to_owned())
            .or_default() += 1;
    }

    /// Failed runs with `partner` since this engine was made.
    pub fn errors(&self, partner: &str) -> u64 {
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(partner)
            .copied()
            .unwrap_or(0)
    }

    /// The sync database.
    pub fn db(&self) -> &Arc<SyncDb> {
        &self.db
    }

    /// Runs pull then push for every mapping of one partner, recording the outcome in the
    /// partner's status. Stops at the first failing mapping (what was committed stays committed).
    pub async fn sync_partner(&self, partner: &PartnerConfig) -> Result<SyncReport> {
        self.db.run_started(&partner.name)?;
        let result = self.sync_partner_inner(partner).await;
        let error = result.as_ref().err().map(ToString::to_string);
        if error.is_some() {
            self.count_error(&partner.name);
        }
        self.db.run_finished(&partner.name, error.as_deref())?;
        result
    }

    async fn sync_partner_inner(&self, partner: &PartnerConfig) -> Result<SyncReport> {
        let conn = self.connect(partner).await?;
        let mut report = SyncReport {
            partner: partner.name.clone(),
            ..Default::default()
        };
        for m in &partner.pull {
            let r = self.pull(partner, &conn, m).await?;
            report.pulls.push((m.remote.clone(), r));
        }
        for m in &partner.push {
            let r = self.push(partner, &conn, m).await?;
            report.pushes.push((m.local.clone(), r));
        }
        Ok(report)
    }

    /// Syncs several partners concurrently; one result per partner, in input order.
    pub async fn sync_all(
        self: &Arc<Self>,
        partners: &[PartnerConfig],
    ) -> Vec<(String, Result<SyncReport>)> {
        let mut set = tokio::task::JoinSet::new();
        for (i, p) in partners.iter().enumerate() {
            let engine = Arc::clone(self);
            let p = p.clone();
            set.spawn(async move { (i, engine.sync_partner(&p).await) });
        }
        let mut out: Vec<Option<Result<SyncReport>>> = partners.iter().map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            if let Ok((i, r)) = joined
                && let Some(slot) = out.get_mut(i)
            {
                *slot = Some(r);
            }
        }
        partners
            .iter()
            .zip(out)
            .map(|(p, r)| {
                (
                    p.name.clone(),
                    r.unwrap_or_else(|| Err(Error::Task("sync task panicked".into()))),
                )
            })
            .collect()
    }

    /// Syncs every partner every `interval` until `shutdown` completes. A round starts only after
    /// the previous one ended, so a slow partner delays the next round instead of piling runs up;
    /// failures are logged and recorded in each partner's status.
    pub async fn run_periodically(
        self: Arc<Self>,
        partners: Vec<PartnerConfig>,
        interval: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let partners = Arc::new(partners);
        self.run_rounds(
            move || std::future::ready(partners.clone()),
            interval,
            shutdown,
        )
        .await;
    }

    /// Like [`SyncEngine::run_periodically`], but asks `partners` for the partners at the start of
    /// every round, so that a configuration change (a policy, a new partner) is picked up without
    /// a restart: what `kizuna serve` runs, with `partners` re-reading `kizuna.toml`.
    pub async fn run_rounds<F, Fut>(
        self: Arc<Self>,
        mut partners: F,
        interval: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Arc<Vec<PartnerConfig>>>,
    {
        let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(100)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = ticker.tick() => {}
            }
            let current = tokio::select! {
                () = &mut shutdown => return,
                current = partners() => current,
            };
            let round = self.sync_all(&current);
            tokio::select! {
                () = &mut shutdown => return,
                results = round => {
                    for (name, result) in results {
                        match result {
                            Ok(report) => tracing::debug!(partner = %name, ?report, "sync round done"),
                            Err(e) => tracing::warn!(partner = %name, error = %e, "sync failed"),
                        }
                    }
                }
            }
        }
    }

    /// Resolves the partner's URL (discovery or API root) to an API root and its limits.
    pub async fn connect(&self, partner: &PartnerConfig) -> Result<Connection> {
        let client = TaxiiClient::new(&partner.client_config()?)?;
        let url = base_url(&partner.url)?;
        let retry = self.options.retry;
        let probe = retry.run("probe", || client.probe(&url)).await?;
        let (api_root, info) = match probe {
            Probe::ApiRoot(info) => (url, info),
            Probe::Discovery(d) => {
                let chosen = match (&partner.api_root, &d.default, d.api_roots.as_slice()) {
                    (Some(configured), _, _) => configured.clone(),
                    (None, Some(default), _) => default.clone(),
                    (None, None, [only]) => only.clone(),
                    _ => {
                        return Err(Error::Config(format!(
                            "partner {}: the discovery lists {} API roots and no default; set api_root",
                            partner.name,
                            d.api_roots.len()
                        )));
                    }
                };
                let root = url
                    .join(&chosen)
                    .map_err(|e| Error::Config(format!("API root {chosen:?}: {e}")))?;
                let root = base_url(root.as_str())?;
                if root.origin() != url.origin() {
                    // Credentials go only where the configuration says.
                    return Err(Error::Config(format!(
                        "partner {}: API root {root} is on another origin than {url}; configure it as url",
                        partner.name
                    )));
                }
                let info = retry.run("api root", || client.api_root(&root)).await?;
                (root, info)
            }
        };
        Ok(Connection {
            client,
            api_root,
            max_content_length: info.max_content_length,
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store, &SyncDb) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = Arc::clone(&self.store);
        let db = Arc::clone(&self.db);
        joined(tokio::task::spawn_blocking(move || f(store.as_ref(), db.as_ref())).await)
    }
}

mod deletions;
mod pull;
mod push;

/// The reason recorded for versions not sent back to the partner they came from.
pub const ECHO_REASON: &str = "received from this partner";

/// The reason recorded for versions skipped because they are set aside in the outbound
/// quarantine.
pub const SET_ASIDE_REASON: &str = "set aside: the partner rejected this version";

fn local_collection_in(
    store: &dyn Store,
    api_root: Option<&str>,
    id_or_alias: &str,
) -> Result<Collection> {
    let api_root = match api_root {
        Some(r) => r.to_owned(),
        None => {
            let roots = store.api_roots()?;
            match roots.as_slice() {
                [only] => only.name.clone(),
                _ => {
                    return Err(Error::Config(format!(
                        "there are {} local API roots: set local_api_root",
                        roots.len()
                    )));
                }
            }
        }
    };
    store.collection(&api_root, id_or_alias)?.ok_or_else(|| {
        Error::Config(format!(
            "no local collection {id_or_alias:?} in API root {api_root}"
        ))
    })
}
