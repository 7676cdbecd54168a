//! Push: local collection → remote collection, policy first, ledger and watermark last.

use kizuna_stix::{Timestamp, Tlp};
use kizuna_store::{Collection, CollectionRef, ObjectQuery, Store, VersionFilter};
use serde_json::Value;

use super::{Connection, ECHO_REASON, Planned, PushReport, SyncEngine, local_collection_in};
use crate::client::{ObjectsQuery, StatusResource, pack_envelopes};
use crate::config::{PartnerConfig, PushMapping};
use crate::error::{Error, Result};
use crate::ledger::{Exit, LedgerEntry, sha256_hex};
use crate::policy::{Decision, EgressPolicy};
use crate::state::{SyncDb, version_key};

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
                        exit: Exit::Push,
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
        if decision.allowed && db.received_from(partner, &rec.id, &version_key(rec.version))? {
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
