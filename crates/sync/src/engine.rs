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
//! one transaction.

use std::sync::Arc;
use std::time::Duration;

use kizuna_stix::Tlp;
use kizuna_stix::{ObjectMeta, Timestamp, validate_object};
use kizuna_store::{
    AddOutcome, Collection, CollectionRef, NewObject, ObjectQuery, Store, VersionFilter,
};
use reqwest::Url;
use serde::Serialize;
use serde_json::Value;

use crate::client::{ObjectsQuery, Probe, StatusResource, TaxiiClient, base_url, pack_envelopes};
use crate::config::{PartnerConfig, PullMapping, PushMapping};
use crate::error::{Error, Result};
use crate::ledger::{LedgerEntry, sha256_hex};
use crate::policy::{Decision, EgressPolicy};
use crate::retry::{RetryPolicy, joined};
use crate::state::{PulledPage, SyncDb};

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
        Self { store, db, options }
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

    /// Syncs every partner every `interval` until `shutdown` completes (what `kizuna serve` runs).
    /// A round starts only after the previous one ended, so a slow partner delays the next round
    /// instead of piling runs up; failures are logged and recorded in each partner's status.
    pub async fn run_periodically(
        self: Arc<Self>,
        partners: Vec<PartnerConfig>,
        interval: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(100)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = ticker.tick() => {}
            }
            let round = self.sync_all(&partners);
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

    // ----- pull -----

    /// Pulls one remote collection into a local one until the partner has nothing more.
    pub async fn pull(
        &self,
        partner: &PartnerConfig,
        conn: &Connection,
        mapping: &PullMapping,
    ) -> Result<PullReport> {
        let local = {
            let (root, name) = (mapping.local_api_root.clone(), mapping.local.clone());
            self.blocking(move |s, _| local_collection_in(s, root.as_deref(), &name))
                .await?
        };
        let local_ref = local.as_ref();
        let mut report = PullReport::default();
        let mut checkpoint = self
            .db
            .checkpoint(&partner.name, &mapping.remote, &local.id)?;
        let mut page_size = partner.page_size;
        let base = |checkpoint: &Option<String>, page_size: usize| -> Result<ObjectsQuery> {
            Ok(ObjectsQuery {
                added_after: checkpoint.as_deref().map(reread_from).transpose()?,
                limit: Some(page_size),
                versions: vec!["all".to_owned()],
                ..Default::default()
            })
        };
        let mut query = base(&checkpoint, page_size)?;
        let mut restarts = 0;
        loop {
            let page = if query.next.is_none() {
                // A query by added_after alone is idempotent: retry it as it is.
                match self
                    .options
                    .retry
                    .run("objects", || {
                        conn.client.objects(&conn.api_root, &mapping.remote, &query)
                    })
                    .await
                {
                    Ok(p) => p,
                    // A page over the response cap: ask for smaller ones, down to one object.
                    Err(Error::TooLarge { .. }) if page_size > 1 => {
                        page_size /= 2;
                        tracing::warn!(partner = %partner.name, page_size, "page too large; asking for smaller pages");
                        query = base(&checkpoint, page_size)?;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            } else {
                // A `next` token may be consumed by the server as it answers (medallion pops the
                // page it serves), so retrying it after a cut response could skip a page; and it
                // may expire or be forgotten by a restarted partner. Either way, start again from
                // the checkpoint, which is never past anything unstored.
                match conn
                    .client
                    .objects(&conn.api_root, &mapping.remote, &query)
                    .await
                {
                    Ok(p) => p,
                    Err(Error::TooLarge { .. }) if page_size > 1 => {
                        page_size /= 2;
                        tracing::warn!(partner = %partner.name, page_size, "page too large; asking for smaller pages");
                        query = base(&checkpoint, page_size)?;
                        continue;
                    }
                    Err(e)
                        if (e.is_retryable()
                            || matches!(
                                e,
                                Error::Status {
                                    status: 400..=499,
                                    ..
                                }
                            ))
                            && restarts < self.options.retry.attempts =>
                    {
                        restarts += 1;
                        tracing::warn!(partner = %partner.name, error = %e, restarts, "page failed; restarting from the checkpoint");
                        tokio::time::sleep(self.options.retry.delay(restarts)).await;
                        query = base(&checkpoint, page_size)?;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            };
            report.pages += 1;
            let mut valid = Vec::new();
            let mut valid_keys = Vec::new();
            let mut quarantined: Vec<(Option<String>, String, String)> = Vec::new();
            for (index, raw) in page.objects.iter().enumerate() {
                match check_object(raw.get()) {
                    Ok((object, key)) => {
                        valid.push(object);
                        valid_keys.push((index, key));
                    }
                    Err((id, reason)) => quarantined.push((id, reason, raw.get().to_owned())),
                }
            }
            let add_ref = local_ref.clone();
            let outcomes = if valid.is_empty() {
                Vec::new()
            } else {
                self.blocking(move |s, _| Ok(s.add_objects(&add_ref, valid)?.outcomes))
                    .await?
            };
            let mut stored = Vec::new();
            for ((index, key), outcome) in valid_keys.into_iter().zip(outcomes) {
                match outcome {
                    AddOutcome::Added => {
                        report.added += 1;
                        stored.push(key);
                    }
                    AddOutcome::Duplicate => {
                        report.duplicates += 1;
                        stored.push(key);
                    }
                    AddOutcome::Rejected(reason) => {
                        let json = page.objects.get(index).map_or("", |r| r.get()).to_owned();
                        quarantined.push((Some(key.0), format!("store refused: {reason}"), json));
                    }
                }
            }
            report.quarantined += quarantined.len() as u64;
            let new_checkpoint = page.date_added_last.clone().or(checkpoint.clone());
            if let Some(c) = &new_checkpoint {
                Timestamp::parse(c).map_err(|e| Error::Malformed {
                    url: conn.api_root.to_string(),
                    reason: format!("X-TAXII-Date-Added-Last: {e}"),
                })?;
            }
            self.db.commit_pull_page(&PulledPage {
                partner: &partner.name,
                remote: &mapping.remote,
                local: &local.id,
                date_added_last: new_checkpoint.as_deref(),
                stored: &stored,
                quarantined: &quarantined,
            })?;
            let advanced = new_checkpoint != checkpoint;
            if advanced {
                restarts = 0;
            }
            checkpoint = new_checkpoint;
            match (page.more, page.next) {
                (true, Some(next)) => query.next = Some(next),
                // A server that says "more" without a token: continue by added_after, as long as
                // that makes progress.
                (true, None) if advanced && !page.objects.is_empty() => {
                    query = base(&checkpoint, page_size)?
                }
                _ => break,
            }
        }
        Ok(report)
    }

    // ----- push -----

    /// What the next push of `mapping` would send, without sending anything (`policy dry-run`).
    pub fn plan_push(
        &self,
        partner: &PartnerConfig,
        mapping: &PushMapping,
        limit: usize,
    ) -> Result<Vec<Planned>> {
        let local = local_collection_in(
            self.store.as_ref(),
            mapping.local_api_root.as_deref(),
            &mapping.local,
        )?;
        let after = self
            .db
            .watermark(&partner.name, &local.id, &mapping.remote)?;
        let (planned, _, _) = select(
            self.store.as_ref(),
            &self.db,
            &partner.name,
            &partner.policy,
            &local,
            after,
            limit,
        )?;
        Ok(planned)
    }

    /// Pushes everything after the watermark that policy lets through.
    pub async fn push(
        &self,
        partner: &PartnerConfig,
        conn: &Connection,
        mapping: &PushMapping,
    ) -> Result<PushReport> {
        let local = {
            let (root, name) = (mapping.local_api_root.clone(), mapping.local.clone());
            self.blocking(move |s, _| local_collection_in(s, root.as_deref(), &name))
                .await?
        };
        let mut report = PushReport::default();
        let mut watermark = self
            .db
            .watermark(&partner.name, &local.id, &mapping.remote)?;
        loop {
            let (name, policy, coll, page) = (
                partner.name.clone(),
                partner.policy.clone(),
                local.clone(),
                self.options.push_page,
            );
            let (planned, last_seq, more) = self
                .blocking(move |s, db| select(s, db, &name, &policy, &coll, watermark, page))
                .await?;
            let Some(last_seq) = last_seq else { break };
            report.examined += planned.len() as u64;
            let outgoing: Vec<&Planned> = planned.iter().filter(|p| p.bytes.is_some()).collect();
            for p in planned.iter().filter(|p| p.bytes.is_none()) {
                if p.decision
                    .reasons
                    .last()
                    .is_some_and(|r| r.starts_with(ECHO_REASON))
                {
                    report.echoes += 1;
                } else {
                    report.refused += 1;
                }
            }
            let items: Vec<(&str, &str)> = outgoing
                .iter()
                .map(|p| (p.id.as_str(), p.bytes.as_deref().unwrap_or("")))
                .collect();
            let batches = pack_envelopes(&items, conn.max_content_length)?;
            for (b, range) in batches.iter().enumerate() {
                let batch = &outgoing[range.clone()];
                self.send_batch(conn, &mapping.remote, batch).await?;
                report.envelopes += 1;
                report.sent += batch.len() as u64;
                let now = Timestamp::now();
                let entries: Vec<LedgerEntry> = batch
                    .iter()
                    .map(|p| LedgerEntry {
                        time: now,
                        partner: partner.name.clone(),
                        object_id: p.id.clone(),
                        version: p.version.clone(),
                        marking: marking_label(&p.decision),
                        sha256: sha256_hex(p.bytes.as_deref().unwrap_or("").as_bytes()),
                    })
                    .collect();
                // The last batch of the page covers the refused versions after it too.
                let covered = if b + 1 == batches.len() {
                    last_seq
                } else {
                    batch.last().map_or(last_seq, |p| p.seq)
                };
                self.db.commit_push(
                    &partner.name,
                    &local.id,
                    &mapping.remote,
                    covered,
                    &entries,
                )?;
            }
            if batches.is_empty() {
                self.db
                    .commit_push(&partner.name, &local.id, &mapping.remote, last_seq, &[])?;
            }
            watermark = Some(last_seq);
            if !more {
                break;
            }
        }
        Ok(report)
    }

    /// POSTs one envelope (retrying), waits for its status, and reconciles failures.
    async fn send_batch(&self, conn: &Connection, remote: &str, batch: &[&Planned]) -> Result<()> {
        let texts: Vec<&str> = batch
            .iter()
            .map(|p| p.bytes.as_deref().unwrap_or(""))
            .collect();
        self.options
            .retry
            .run("push", || async {
                let status = conn
                    .client
                    .add_objects(&conn.api_root, remote, &texts)
                    .await?;
                let status = conn
                    .client
                    .wait_for_status(
                        &conn.api_root,
                        status,
                        self.options.status_poll_interval,
                        self.options.status_poll_attempts,
                    )
                    .await?;
                self.reconcile(conn, remote, batch, &status).await
            })
            .await
    }

    /// Accepts a status resource when every failure is an object version the partner already
    /// holds (the usual answer to a re-send by servers that do not treat duplicates as success).
    async fn reconcile(
        &self,
        conn: &Connection,
        remote: &str,
        batch: &[&Planned],
        status: &StatusResource,
    ) -> Result<()> {
        if !status.is_complete() {
            return Err(Error::Push(format!("status {} still pending", status.id)));
        }
        if status.failure_count == 0 && status.failures.is_empty() {
            return Ok(());
        }
        // Failures counted but not listed cannot be checked one by one.
        if (status.failures.len() as u64) < status.failure_count
            || status.failures.len() > self.options.max_reconcile
        {
            return Err(Error::Push(format!(
                "status {}: {} failures that cannot be checked one by one",
                status.id, status.failure_count
            )));
        }
        for failure in &status.failures {
            let Some(ours) = batch.iter().find(|p| p.id == failure.id) else {
                return Err(Error::Push(format!(
                    "status {} reports a failure for {} which was not sent",
                    status.id, failure.id
                )));
            };
            let wanted = Timestamp::parse(&ours.version).ok();
            // Retried on its own: one cut connection here must not send the whole batch again.
            let any_version = ObjectsQuery::default();
            let versions = self
                .options
                .retry
                .run("versions", || {
                    conn.client
                        .versions(&conn.api_root, remote, &ours.id, &any_version)
                })
                .await;
            let present = match versions {
                Ok(v) => v.versions.iter().any(|s| {
                    s == &ours.version
                        || (Timestamp::parse(s).ok().is_some()
                            && Timestamp::parse(s).ok() == wanted)
                }),
                Err(Error::Status { status: 404, .. }) => false,
                Err(e) => return Err(e),
            };
            if !present {
                return Err(Error::Push(format!(
                    "the partner refused {} version {}: {}",
                    ours.id,
                    ours.version,
                    failure.message.as_deref().unwrap_or("no reason given")
                )));
            }
        }
        Ok(())
    }
}

/// The reason recorded for versions not sent back to the partner they came from.
pub const ECHO_REASON: &str = "received from this partner";

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

/// Reads up to `limit` versions after `after` and decides each. Returns the plan, the sequence
/// position of the last version read (`None`: nothing new) and whether more remain.
fn select(
    store: &dyn Store,
    db: &SyncDb,
    partner: &str,
    policy: &EgressPolicy,
    collection: &Collection,
    after: Option<i64>,
    limit: usize,
) -> Result<(Vec<Planned>, Option<i64>, bool)> {
    let query = ObjectQuery {
        after_seq: after,
        limit: limit.max(1),
        versions: VersionFilter::All,
        // The policy decides below; the store must hand over everything, RED included.
        clearance: Tlp::Red,
        unmarked_as: Tlp::Red,
        ..Default::default()
    };
    let page = store.objects(&CollectionRef::clone(&collection.as_ref()), &query)?;
    let mut names: Vec<&str> = vec![collection.id.as_str()];
    if let Some(a) = &collection.alias {
        names.push(a.as_str());
    }
    let mut planned = Vec::with_capacity(page.records.len());
    for rec in &page.records {
        let version = rec.version.to_string();
        let value: Value = match serde_json::from_str(&rec.json) {
            Ok(v) => v,
            Err(e) => {
                planned.push(Planned {
                    seq: rec.seq,
                    id: rec.id.clone(),
                    version,
                    decision: Decision {
                        allowed: false,
                        tlp: Tlp::Red,
                        marked: false,
                        reasons: vec![format!("stored JSON unreadable: {e}")],
                    },
                    bytes: None,
                });
                continue;
            }
        };
        let mut decision = policy.explain(&value, &names);
        let mut bytes = None;
        if decision.allowed && db.received_from(partner, &rec.id, &version)? {
            decision.allowed = false;
            decision
                .reasons
                .push(format!("{ECHO_REASON}: not sent back"));
        } else if decision.allowed {
            bytes = Some(policy.egress_bytes(&rec.json, &value).into_owned());
        }
        planned.push(Planned {
            seq: rec.seq,
            id: rec.id.clone(),
            version,
            decision,
            bytes,
        });
    }
    let last = page.records.last().map(|r| r.seq);
    Ok((planned, last, page.more))
}

fn marking_label(d: &Decision) -> String {
    if d.marked {
        d.tlp.as_str().to_owned()
    } else {
        format!("unmarked (as {})", d.tlp.as_str())
    }
}

/// `added_after` for a checkpoint: one microsecond earlier, so that versions sharing the
/// checkpoint's instant are read again rather than skipped.
fn reread_from(checkpoint: &str) -> Result<String> {
    let t = Timestamp::parse(checkpoint)
        .map_err(|e| Error::Config(format!("stored checkpoint {checkpoint:?}: {e}")))?;
    Ok(Timestamp::from_unix_micros(t.unix_micros() - 1).to_string())
}

/// (id, version) of an object version.
type VersionKey = (String, String);
/// (id if any, reason) of a refused object.
type Refused = (Option<String>, String);

/// Validates one received object; on success the store's input and its (id, version) key, else
/// the id (if any) and the reason.
fn check_object(raw: &str) -> std::result::Result<(NewObject, VersionKey), Refused> {
    let value: Value = serde_json::from_str(raw).map_err(|e| (None, format!("not JSON: {e}")))?;
    let id = value.get("id").and_then(Value::as_str).map(str::to_owned);
    let problems = validate_object(&value);
    if !problems.is_empty() {
        let reason = problems
            .iter()
            .take(10)
            .map(|p| {
                if p.path.is_empty() {
                    p.message.clone()
                } else {
                    format!("{}: {}", p.path, p.message)
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        return Err((id, format!("invalid STIX: {reason}")));
    }
    let meta = ObjectMeta::from_value(&value).map_err(|p| {
        (
            id.clone(),
            format!("invalid STIX: {}: {}", p.path, p.message),
        )
    })?;
    let version = meta.version().map(|t| t.to_string()).unwrap_or_default();
    let key = (meta.id.as_str().to_owned(), version);
    Ok((
        NewObject {
            meta,
            json: raw.to_owned(),
        },
        key,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_are_reread_from_one_microsecond_earlier() {
        assert_eq!(
            reread_from("2026-01-01T00:00:00.000000Z").unwrap(),
            "2025-12-31T23:59:59.999999Z"
        );
        assert_eq!(
            reread_from("2026-01-01T00:00:01.5Z").unwrap(),
            "2026-01-01T00:00:01.499999Z"
        );
        assert!(reread_from("garbage").is_err());
    }

    #[test]
    fn received_objects_are_validated() {
        assert!(check_object("not json").is_err());
        let (id, reason) = check_object(r#"{"type":"indicator","id":"indicator--x"}"#).unwrap_err();
        assert_eq!(id.as_deref(), Some("indicator--x"));
        assert!(reason.contains("invalid STIX"), "{reason}");
        let good = r#"{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-02T00:00:00.000Z","pattern":"[ipv4-addr:value = '1.2.3.4']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}"#;
        let (obj, key) = check_object(good).unwrap();
        assert_eq!(obj.json, good, "kept byte for byte");
        assert_eq!(key.1, "2026-01-02T00:00:00.000Z");
    }
}
