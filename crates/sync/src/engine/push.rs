//! Push: local collection → remote collection, policy first, ledger and watermark last.

use kizuna_stix::{Timestamp, Tlp};
use kizuna_store::{Collection, CollectionRef, ObjectQuery, ObjectRecord, Store, VersionFilter};
use serde_json::Value;

use super::{
    Connection, ECHO_REASON, Planned, PushReport, SET_ASIDE_REASON, SyncEngine, local_collection_in,
};
use crate::client::{ObjectsQuery, StatusResource, pack_envelopes};
use crate::config::{PartnerConfig, PushMapping};
use crate::error::{Error, Result};
use crate::ledger::{Exit, LedgerEntry, sha256_hex};
use crate::policy::{Decision, EgressPolicy};
use crate::state::{Rejected, SyncDb, version_key};

impl SyncEngine {
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
            (&partner.name, &partner.policy, &mapping.remote),
            &local,
            after,
            limit,
        )?;
        Ok(planned)
    }

    /// Pushes a mapping: first the deletions (so that a partner refusing them or a rejected
    /// version cannot hold the other back), then versions put back by `partner retry`, then
    /// everything after the watermark that policy lets through.
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
        let deletions = self
            .push_deletions(partner, conn, mapping, &local, &mut report)
            .await;
        self.push_retries(partner, conn, mapping, &local, &mut report)
            .await?;
        self.push_objects(partner, conn, mapping, &local, &mut report)
            .await?;
        deletions?;
        Ok(report)
    }

    async fn push_objects(
        &self,
        partner: &PartnerConfig,
        conn: &Connection,
        mapping: &PushMapping,
        local: &Collection,
        report: &mut PushReport,
    ) -> Result<()> {
        let mut watermark = self
            .db
            .watermark(&partner.name, &local.id, &mapping.remote)?;
        loop {
            let (name, policy, remote, coll, page) = (
                partner.name.clone(),
                partner.policy.clone(),
                mapping.remote.clone(),
                local.clone(),
                self.options.push_page,
            );
            let (planned, last_seq, more) = self
                .blocking(move |s, db| {
                    select(s, db, (&name, &policy, &remote), &coll, watermark, page)
                })
                .await?;
            let Some(last_seq) = last_seq else { break };
            report.examined += planned.len() as u64;
            let outgoing: Vec<&Planned> = planned.iter().filter(|p| p.bytes.is_some()).collect();
            for p in planned.iter().filter(|p| p.bytes.is_none()) {
                match p.decision.reasons.last() {
                    Some(r) if r.starts_with(ECHO_REASON) => report.echoes += 1,
                    Some(r) if r.starts_with(SET_ASIDE_REASON) => report.set_aside += 1,
                    _ => report.refused += 1,
                }
            }
            let items: Vec<(&str, &str)> = outgoing
                .iter()
                .map(|p| (p.id.as_str(), p.bytes.as_deref().unwrap_or("")))
                .collect();
            let batches = pack_envelopes(&items, conn.max_content_length)?;
            for (b, range) in batches.iter().enumerate() {
                let batch = &outgoing[range.clone()];
                let rejected = self.send_batch(conn, &mapping.remote, batch).await?;
                report.envelopes += 1;
                let blocked =
                    self.count_rejections(partner, local, mapping, batch, &rejected, report)?;
                let accepted: Vec<&Planned> = batch
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !rejected.iter().any(|(r, _)| r == i))
                    .map(|(_, p)| *p)
                    .collect();
                report.sent += accepted.len() as u64;
                // The last batch of the page covers the refused versions after it too. A
                // version still blocking stops the watermark just before it.
                let covered = match &blocked {
                    Some((seq, _)) => (seq - 1).max(watermark.unwrap_or(0)),
                    None if b + 1 == batches.len() => last_seq,
                    None => batch.last().map_or(last_seq, |p| p.seq),
                };
                self.commit_sent(partner, local, mapping, covered, &accepted)?;
                if let Some((_, why)) = blocked {
                    return Err(Error::Push(why));
                }
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
        Ok(())
    }

    /// Sends once more the versions `kizuna partner retry` put back; the watermark stays where
    /// it is. A version rejected again goes straight back aside.
    async fn push_retries(
        &self,
        partner: &PartnerConfig,
        conn: &Connection,
        mapping: &PushMapping,
        local: &Collection,
        report: &mut PushReport,
    ) -> Result<()> {
        let key = (
            partner.name.as_str(),
            local.id.as_str(),
            mapping.remote.as_str(),
        );
        let retries = self.db.retries(key)?;
        if retries.is_empty() {
            return Ok(());
        }
        let (name, policy, coll) = (partner.name.clone(), partner.policy.clone(), local.clone());
        let (planned, gone) = self
            .blocking(move |s, db| {
                let names = collection_names(&coll);
                let mut planned = Vec::new();
                let mut gone = Vec::new();
                for (id, version) in retries {
                    let at = Timestamp::parse(&version).ok();
                    let query = ObjectQuery {
                        ids: vec![id.clone()],
                        limit: 1,
                        versions: VersionFilter::Set {
                            last: false,
                            first: false,
                            at: at.into_iter().collect(),
                        },
                        clearance: Tlp::Red,
                        unmarked_as: Tlp::Red,
                        ..Default::default()
                    };
                    let page = s.objects(&coll.as_ref(), &query)?;
                    match page.records.first() {
                        Some(rec) => planned.push(plan_record(db, &name, &policy, &names, rec)?),
                        None => gone.push((id, version)),
                    }
                }
                Ok((planned, gone))
            })
            .await?;
        // Deleted locally since, or now refused by policy: nothing left to retry.
        let mut dropped = gone;
        for p in planned.iter().filter(|p| p.bytes.is_none()) {
            report.refused += 1;
            dropped.push((p.id.clone(), p.version.clone()));
        }
        self.db.clear_rejections(key, &dropped)?;
        let outgoing: Vec<&Planned> = planned.iter().filter(|p| p.bytes.is_some()).collect();
        let items: Vec<(&str, &str)> = outgoing
            .iter()
            .map(|p| (p.id.as_str(), p.bytes.as_deref().unwrap_or("")))
            .collect();
        let watermark = self
            .db
            .watermark(&partner.name, &local.id, &mapping.remote)?
            .unwrap_or(0);
        for range in pack_envelopes(&items, conn.max_content_length)? {
            let batch = &outgoing[range];
            let rejected = self.send_batch(conn, &mapping.remote, batch).await?;
            report.envelopes += 1;
            report.retried += batch.len() as u64;
            self.count_rejections(partner, local, mapping, batch, &rejected, report)?;
            let accepted: Vec<&Planned> = batch
                .iter()
                .enumerate()
                .filter(|(i, _)| !rejected.iter().any(|(r, _)| r == i))
                .map(|(_, p)| *p)
                .collect();
            report.sent += accepted.len() as u64;
            self.commit_sent(partner, local, mapping, watermark, &accepted)?;
        }
        Ok(())
    }

    /// Counts the confirmed rejections of a batch in the outbound quarantine. Returns the first
    /// version that still blocks the mapping (not yet set aside), with the error to report.
    fn count_rejections(
        &self,
        partner: &PartnerConfig,
        local: &Collection,
        mapping: &PushMapping,
        batch: &[&Planned],
        rejected: &[(usize, String)],
        report: &mut PushReport,
    ) -> Result<Option<(i64, String)>> {
        let key = (
            partner.name.as_str(),
            local.id.as_str(),
            mapping.remote.as_str(),
        );
        let mut blocked: Option<(i64, String)> = None;
        for (i, message) in rejected {
            let Some(p) = batch.get(*i) else { continue };
            report.rejected += 1;
            let r = Rejected {
                object_id: p.id.clone(),
                version: p.version.clone(),
                seq: p.seq,
                message: message.clone(),
            };
            let (attempts, set_aside) =
                self.db.count_rejection(key, &r, partner.set_aside_after)?;
            if set_aside {
                report.set_aside += 1;
                tracing::warn!(partner = %partner.name, id = %p.id, version = %p.version,
                    attempts, "version set aside: the partner rejects it");
            } else if blocked.as_ref().is_none_or(|(seq, _)| p.seq < *seq) {
                blocked = Some((
                    p.seq,
                    format!(
                        "the partner refused {} version {} (rejection {attempts} of {} before it is set aside): {message}",
                        p.id, p.version, partner.set_aside_after
                    ),
                ));
            }
        }
        Ok(blocked)
    }

    /// Commits ledger records for what the partner accepted and the watermark, and forgets
    /// earlier rejections of those versions.
    fn commit_sent(
        &self,
        partner: &PartnerConfig,
        local: &Collection,
        mapping: &PushMapping,
        watermark: i64,
        accepted: &[&Planned],
    ) -> Result<()> {
        let now = Timestamp::now();
        let entries: Vec<LedgerEntry> = accepted
            .iter()
            .map(|p| LedgerEntry {
                time: now,
                exit: Exit::Push,
                partner: partner.name.clone(),
                object_id: p.id.clone(),
                version: p.version.clone(),
                marking: marking_label(&p.decision),
                sha256: sha256_hex(p.bytes.as_deref().unwrap_or("").as_bytes()),
            })
            .collect();
        self.db.commit_push(
            &partner.name,
            &local.id,
            &mapping.remote,
            watermark,
            &entries,
        )?;
        let key = (
            partner.name.as_str(),
            local.id.as_str(),
            mapping.remote.as_str(),
        );
        if self.db.has_rejections(key)? {
            let done: Vec<(String, String)> = accepted
                .iter()
                .map(|p| (p.id.clone(), p.version.clone()))
                .collect();
            self.db.clear_rejections(key, &done)?;
        }
        Ok(())
    }

    /// POSTs one envelope (retrying), waits for its status, and reconciles failures. Returns the
    /// versions the partner rejected for good: (index in `batch`, the partner's message).
    async fn send_batch(
        &self,
        conn: &Connection,
        remote: &str,
        batch: &[&Planned],
    ) -> Result<Vec<(usize, String)>> {
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

    /// Checks a status resource's failures against the partner's versions endpoint: a failure
    /// for a version the partner holds is what some servers answer to a re-send, and is
    /// accepted; one for a version it does not hold is a rejection, returned as (index in
    /// `batch`, message). Anything that cannot be checked (pending, failures counted but not
    /// listed, a failure for something not sent, a versions request that fails) is an error,
    /// never a rejection.
    async fn reconcile(
        &self,
        conn: &Connection,
        remote: &str,
        batch: &[&Planned],
        status: &StatusResource,
    ) -> Result<Vec<(usize, String)>> {
        if !status.is_complete() {
            return Err(Error::Push(format!("status {} still pending", status.id)));
        }
        if status.failure_count == 0 && status.failures.is_empty() {
            return Ok(Vec::new());
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
        let mut rejected = Vec::new();
        for failure in &status.failures {
            let reported = Timestamp::parse(&failure.version).ok();
            let same = |p: &&Planned| {
                p.id == failure.id
                    && (p.version == failure.version
                        || (reported.is_some() && Timestamp::parse(&p.version).ok() == reported))
            };
            // A batch may hold several versions of one object: match the version when the
            // partner names one we sent, else the first version of that id.
            let index = batch
                .iter()
                .position(same)
                .or_else(|| batch.iter().position(|p| p.id == failure.id));
            let Some((index, ours)) = index.and_then(|i| batch.get(i).map(|p| (i, p))) else {
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
            if !present && !rejected.iter().any(|(i, _)| *i == index) {
                rejected.push((
                    index,
                    failure
                        .message
                        .clone()
                        .unwrap_or_else(|| "no reason given".to_owned()),
                ));
            }
        }
        Ok(rejected)
    }
}

/// Reads up to `limit` versions after `after` and decides each. Returns the plan, the sequence
/// position of the last version read (`None`: nothing new) and whether more remain.
fn select(
    store: &dyn Store,
    db: &SyncDb,
    (partner, policy, remote): (&str, &EgressPolicy, &str),
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
    let names = collection_names(collection);
    let key = (partner, collection.id.as_str(), remote);
    let any_set_aside = db.has_rejections(key)?;
    let mut planned = Vec::with_capacity(page.records.len());
    for rec in &page.records {
        let mut p = plan_record(db, partner, policy, &names, rec)?;
        if p.bytes.is_some() && any_set_aside && db.is_set_aside(key, &p.id, &p.version)? {
            p.bytes = None;
            p.decision.allowed = false;
            p.decision
                .reasons
                .push(format!("{SET_ASIDE_REASON} (kizuna partner retry)"));
        }
        planned.push(p);
    }
    let last = page.records.last().map(|r| r.seq);
    Ok((planned, last, page.more))
}

/// The names the policy knows a collection by: its id and alias.
fn collection_names(collection: &Collection) -> Vec<&str> {
    let mut names: Vec<&str> = vec![collection.id.as_str()];
    if let Some(a) = &collection.alias {
        names.push(a.as_str());
    }
    names
}

/// Decides one stored version for `partner`: policy, then no echo, then redaction.
fn plan_record(
    db: &SyncDb,
    partner: &str,
    policy: &EgressPolicy,
    names: &[&str],
    rec: &ObjectRecord,
) -> Result<Planned> {
    let version = rec.version.to_string();
    let value: Value = match serde_json::from_str(&rec.json) {
        Ok(v) => v,
        Err(e) => {
            return Ok(Planned {
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
        }
    };
    let mut decision = policy.explain(&value, names);
    let mut bytes = None;
    if decision.allowed && db.received_from(partner, &rec.id, &version_key(rec.version))? {
        decision.allowed = false;
        decision
            .reasons
            .push(format!("{ECHO_REASON}: not sent back"));
    } else if decision.allowed {
        bytes = Some(policy.egress_bytes(&rec.json, &value).into_owned());
    }
    Ok(Planned {
        seq: rec.seq,
        id: rec.id.clone(),
        version,
        decision,
        bytes,
    })
}

fn marking_label(d: &Decision) -> String {
    if d.marked {
        d.tlp.as_str().to_owned()
    } else {
        format!("unmarked (as {})", d.tlp.as_str())
    }
}
