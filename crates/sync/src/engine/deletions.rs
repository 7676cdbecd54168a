//! Deletion push: what was deleted from a local collection is deleted at the partners it was
//! pushed to.
//!
//! TAXII has no deletion feed, so deletions travel as `DELETE` requests. The local store's
//! deletion log (`Store::deletions`) gives them in commit order; a watermark per push mapping,
//! separate from the objects' one, says how far the partner has answered. A deletion is sent only
//! for a version the egress ledger records as pushed to this partner (so never one it gave us,
//! which push does not send back, and never one it did not get from us), and only if the version
//! is still absent locally (it may have been added again since). Deletions are not egress: no object leaves, so
//! they are not written to the ledger; they are counted in the sync report and beside the
//! watermark in `sync.db`.

use kizuna_stix::Tlp;
use kizuna_store::{Collection, DeletionRecord, ObjectQuery, VersionFilter};

use super::{Connection, PushReport, SyncEngine};
use crate::client::ObjectsQuery;
use crate::config::{PartnerConfig, PushMapping};
use crate::error::{Error, Result};

impl SyncEngine {
    /// Sends the deletions logged after the mapping's deletion watermark. A refusal by the
    /// partner is recorded and reported, and ends this step without an error; the watermark
    /// advances only over deletions the partner answered with 200 or 404.
    pub(super) async fn push_deletions(
        &self,
        partner: &PartnerConfig,
        conn: &Connection,
        mapping: &PushMapping,
        local: &Collection,
        report: &mut PushReport,
    ) -> Result<()> {
        let (name, remote) = (partner.name.as_str(), mapping.remote.as_str());
        let mut after = self.db.deletion_watermark(name, &local.id, remote)?;
        loop {
            let (coll, limit) = (local.as_ref(), self.options.push_page);
            let page = self
                .blocking(move |s, _| Ok(s.deletions(&coll, after, limit)?))
                .await?;
            let Some(last) = page.records.last().map(|r| r.seq) else {
                break;
            };
            let mut answered = 0;
            // The last record of this page dealt with (sent and answered, or not due).
            let mut done: Option<i64> = None;
            for rec in &page.records {
                if !self.deletion_due(name, local, rec).await? {
                    done = Some(rec.seq);
                    continue;
                }
                let query = ObjectsQuery {
                    // An SCO's version was our own date_added: the partner's copy has another.
                    versions: if rec.versioned {
                        vec![rec.version.to_string()]
                    } else {
                        Vec::new()
                    },
                    ..Default::default()
                };
                let answer = self
                    .options
                    .retry
                    .run("delete", || {
                        conn.client
                            .delete_object(&conn.api_root, remote, &rec.id, &query)
                    })
                    .await;
                match answer {
                    Ok(()) => report.deleted += 1,
                    Err(Error::Status { status: 404, .. }) => report.already_gone += 1,
                    Err(e) => {
                        // Everything before this one is dealt with; this one is not.
                        if let Some(done) = done {
                            self.db
                                .commit_deletions(name, &local.id, remote, done, answered)?;
                        }
                        return match e {
                            Error::Status { status, .. }
                                if (400..500).contains(&status)
                                    && status != 408
                                    && status != 429 =>
                            {
                                let why = e.to_string();
                                tracing::warn!(partner = %name, id = %rec.id, error = %why,
                                    "the partner refuses a deletion");
                                self.db.deletion_refused(name, &local.id, remote, &why)?;
                                report.deletion_refused = Some(why);
                                Ok(())
                            }
                            e => Err(e),
                        };
                    }
                }
                answered += 1;
                done = Some(rec.seq);
            }
            self.db
                .commit_deletions(name, &local.id, remote, last, answered)?;
            after = Some(last);
            if !page.more {
                break;
            }
        }
        Ok(())
    }

    /// Whether a logged deletion is to be sent to `partner`: the version went to it and is not
    /// held locally again. The ledger alone decides "went to it": push never sends a version back
    /// to the partner it came from, so a partner's own versions are never in its ledger records
    /// (no echo), while a version we sent first and later pulled back from it is ours to delete.
    async fn deletion_due(
        &self,
        partner: &str,
        local: &Collection,
        rec: &DeletionRecord,
    ) -> Result<bool> {
        if !self.db.sent_to(partner, &rec.id, rec.version)? {
            return Ok(false);
        }
        let query = ObjectQuery {
            ids: vec![rec.id.clone()],
            limit: 1,
            // For an SCO (no version of its own), a DELETE removes every copy at the partner:
            // only when we hold none any more.
            versions: if rec.versioned {
                VersionFilter::Set {
                    last: false,
                    first: false,
                    at: vec![rec.version],
                }
            } else {
                VersionFilter::All
            },
            clearance: Tlp::Red,
            unmarked_as: Tlp::Red,
            ..Default::default()
        };
        let coll = local.as_ref();
        let held = self
            .blocking(move |s, _| Ok(!s.objects(&coll, &query)?.records.is_empty()))
            .await?;
        Ok(!held)
    }
}
