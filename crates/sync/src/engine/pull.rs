//! Pull: remote collection → local collection, page by page, checkpoint after each stored page.

use std::collections::HashSet;

use kizuna_stix::{ObjectMeta, Timestamp, Tlp, validate_object};
use kizuna_store::{AddOutcome, Collection, NewObject, ObjectQuery, VersionFilter};
use serde_json::Value;

use super::{Connection, PullReport, SyncEngine, local_collection_in};
use crate::client::ObjectsQuery;
use crate::config::{PartnerConfig, PullMapping};
use crate::error::{Error, Result};
use crate::state::{PulledPage, version_key};

impl SyncEngine {
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
        if mapping.mirror_deletions {
            report.deleted = self
                .mirror_deletions(partner, conn, &mapping.remote, &local)
                .await?;
        }
        Ok(report)
    }

    /// Every (id, version) the partner's collection lists in its manifest. A missing page would
    /// read as a deletion, so a failed `next` page restarts the whole read (a token may be
    /// consumed by the failed answer), and pages over the response cap are asked smaller.
    async fn remote_versions(
        &self,
        partner: &PartnerConfig,
        conn: &Connection,
        remote: &str,
    ) -> Result<HashSet<(String, i64)>> {
        let mut page_size = partner.page_size;
        let mut restarts = 0;
        'restart: loop {
            let mut held = HashSet::new();
            let mut query = ObjectsQuery {
                limit: Some(page_size),
                versions: vec!["all".to_owned()],
                ..Default::default()
            };
            loop {
                let result = if query.next.is_none() {
                    self.options
                        .retry
                        .run("manifest", || {
                            conn.client.manifest(&conn.api_root, remote, &query)
                        })
                        .await
                } else {
                    conn.client.manifest(&conn.api_root, remote, &query).await
                };
                let page = match result {
                    Ok(p) => p,
                    Err(Error::TooLarge { .. }) if page_size > 1 => {
                        page_size /= 2;
                        continue 'restart;
                    }
                    Err(e)
                        if query.next.is_some()
                            && (e.is_retryable()
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
                        tokio::time::sleep(self.options.retry.delay(restarts)).await;
                        continue 'restart;
                    }
                    Err(e) => return Err(e),
                };
                for r in &page.records {
                    let version = Timestamp::parse(&r.version).map_err(|e| Error::Malformed {
                        url: conn.api_root.to_string(),
                        reason: format!("manifest version of {}: {e}", r.id),
                    })?;
                    held.insert((r.id.clone(), version.unix_micros()));
                }
                match (page.more, page.next) {
                    (true, Some(next)) => query.next = Some(next),
                    (false, _) => return Ok(held),
                    (true, None) => {
                        return Err(Error::Malformed {
                            url: conn.api_root.to_string(),
                            reason: "manifest says more but gives no next token".into(),
                        });
                    }
                }
            }
        }
    }

    /// Deletes the local versions received from `partner` that its collection no longer lists in
    /// its manifest. Nothing is deleted unless the whole manifest was read; and a manifest that is
    /// empty while we hold versions from it is taken for lost access, not for deletion of
    /// everything.
    async fn mirror_deletions(
        &self,
        partner: &PartnerConfig,
        conn: &Connection,
        remote: &str,
        local: &Collection,
    ) -> Result<u64> {
        let held = self.remote_versions(partner, conn, remote).await?;
        let held_ids: HashSet<String> = held.iter().map(|(id, _)| id.clone()).collect();
        let (name, coll) = (partner.name.clone(), local.as_ref());
        self.blocking(move |store, db| {
            let mut gone = Vec::new();
            let mut after = None;
            let mut ours = 0u64;
            loop {
                let page = store.objects(
                    &coll,
                    &ObjectQuery {
                        after_seq: after,
                        limit: 1000,
                        versions: VersionFilter::All,
                        clearance: Tlp::Red,
                        unmarked_as: Tlp::Red,
                        ..Default::default()
                    },
                )?;
                for rec in &page.records {
                    let still_there = match db.received(&name, &rec.id, &version_key(rec.version))? {
                        None => continue,
                        Some(true) => held.contains(&(rec.id.clone(), rec.version.unix_micros())),
                        // Unversioned: versions differ between hubs, the id decides.
                        Some(false) => held_ids.contains(rec.id.as_str()),
                    };
                    ours += 1;
                    if !still_there {
                        gone.push((rec.id.clone(), rec.version));
                    }
                }
                after = page.records.last().map(|r| r.seq);
                if !page.more || after.is_none() {
                    break;
                }
            }
            if held.is_empty() && ours > 0 {
                tracing::warn!(partner = %name, ours, "the partner's manifest is empty: not mirroring deletions");
                return Ok(0);
            }
            let mut deleted = 0;
            for (id, version) in gone {
                let only = ObjectQuery {
                    versions: VersionFilter::Set {
                        last: false,
                        first: false,
                        at: vec![version],
                    },
                    ..Default::default()
                };
                deleted += store.delete_object(&coll, &id, &only)?;
            }
            Ok(deleted)
        })
        .await
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
    // Unversioned objects (SCOs) are recorded with an empty version: the store gives them their
    // date_added as version, which differs from hub to hub.
    let version = meta.version().map(version_key).unwrap_or_default();
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
        assert_eq!(
            key.1, "2026-01-02T00:00:00.000000Z",
            "provenance keys are microseconds"
        );
    }
}
