//! The hub as the sensors' source and sink: indicators read from the local store, sightings
//! (privacy-reduced, marked) written back into a collection, from where the existing push and
//! TAXII reads take them to partners.
//!
//! Writing goes through the [`Store`] trait with the validation `kizuna import` applies. A hit
//! whose sighting id is already in the collection is skipped whole, so scanning the same input
//! twice (or a watcher restarting after a crash between writing and remembering) adds nothing:
//! the ids are deterministic (docs/detection.md, "Identifiers") while `created`/`modified` are
//! the scan time, so the bytes of a repeat would differ.

use std::path::Path;

use anyhow::{Context, bail};
use kizuna_detect::{Hit, IndicatorSet, Observation, ReduceOptions};
use kizuna_stix::{ObjectMeta, Timestamp, Tlp};
use kizuna_store::{AddOutcome, Collection, CollectionRef, NewObject, ObjectQuery, Store};
use kizuna_sync::Redaction;
use serde_json::Value;

use crate::config::Config;
use crate::hub;

/// Page size when reading indicators out of the store.
const PAGE: usize = 1000;

/// The identity sightings name when none is configured.
pub fn local_identity() -> String {
    kizuna_detect::id::derived_id("identity", &["kizuna-local-sensor"])
}

/// `--identity`, else `[detect] identity`, else the fixed local identity; checked.
pub fn identity(flag: Option<&str>, config: &Config) -> anyhow::Result<String> {
    let id = flag
        .map(str::to_owned)
        .or_else(|| config.detect.identity.clone())
        .unwrap_or_else(local_identity);
    let parsed = kizuna_stix::StixId::parse(&id).map_err(|e| anyhow::anyhow!("identity: {e}"))?;
    if parsed.object_type() != "identity" {
        bail!("identity must be an identity--UUID id, not {id}");
    }
    Ok(id)
}

/// The collections indicators are read from: those named, else every collection of the hub.
pub fn indicator_collections(
    store: &dyn Store,
    named: &[String],
) -> anyhow::Result<Vec<Collection>> {
    if !named.is_empty() {
        return named
            .iter()
            .map(|c| hub::find_collection(store, None, c))
            .collect();
    }
    let mut all = Vec::new();
    for root in store.api_roots()? {
        all.extend(store.collections(&root.name)?);
    }
    Ok(all)
}

/// A query for every indicator version a collection holds (the hub reads its own data: no
/// clearance limit).
fn indicator_query(added_after: Option<Timestamp>, after_seq: Option<i64>) -> ObjectQuery {
    ObjectQuery {
        added_after,
        after_seq,
        limit: PAGE,
        types: vec!["indicator".to_owned()],
        versions: kizuna_store::VersionFilter::All,
        clearance: Tlp::Red,
        unmarked_as: Tlp::Red,
        ..ObjectQuery::default()
    }
}

/// Feeds every indicator version added to `collection` after `added_after` to `set` (newer
/// versions replace, revoked ones remove); returns the latest `date_added` seen and the
/// reasons indicators were skipped.
pub fn load_into(
    store: &dyn Store,
    collection: &CollectionRef,
    added_after: Option<Timestamp>,
    set: &mut IndicatorSet,
) -> anyhow::Result<(Option<Timestamp>, Vec<String>)> {
    let mut after_seq = None;
    let mut last = added_after;
    let mut skipped = Vec::new();
    loop {
        let page = store.objects(collection, &indicator_query(added_after, after_seq))?;
        for r in &page.records {
            after_seq = Some(r.seq);
            last = Some(last.map_or(r.date_added, |l| l.max(r.date_added)));
            let obj: Value = match serde_json::from_str(&r.json) {
                Ok(v) => v,
                Err(e) => {
                    skipped.push(format!("{}: {e}", r.id));
                    continue;
                }
            };
            if let Err(why) = set.insert(&obj) {
                // A revoked or superseded version is the normal life of an indicator.
                if why != "revoked" && why != "older than the version loaded" {
                    skipped.push(format!("{}: {why}", r.id));
                }
            }
        }
        if !page.more || page.records.is_empty() {
            break;
        }
    }
    Ok((last, skipped))
}

/// Feeds every stored version of the indicator `id` in `collection` to `set` (the newest
/// stays); returns the reasons versions were skipped.
pub fn load_id_into(
    store: &dyn Store,
    collection: &CollectionRef,
    id: &str,
    set: &mut IndicatorSet,
) -> anyhow::Result<Vec<String>> {
    let mut after_seq = None;
    let mut skipped = Vec::new();
    loop {
        let query = ObjectQuery {
            ids: vec![id.to_owned()],
            ..indicator_query(None, after_seq)
        };
        let page = store.objects(collection, &query)?;
        for r in &page.records {
            after_seq = Some(r.seq);
            let obj: Value = match serde_json::from_str(&r.json) {
                Ok(v) => v,
                Err(e) => {
                    skipped.push(format!("{}: {e}", r.id));
                    continue;
                }
            };
            if let Err(why) = set.insert(&obj)
                && why != "revoked"
                && why != "older than the version loaded"
            {
                skipped.push(format!("{}: {why}", r.id));
            }
        }
        if !page.more || page.records.is_empty() {
            return Ok(skipped);
        }
    }
}

/// The indicators of the hub's collections (`named`, else all), for `--hub`.
pub fn load_indicators(
    store: &dyn Store,
    named: &[String],
    identity: &str,
    now: Timestamp,
) -> anyhow::Result<IndicatorSet> {
    let mut set = IndicatorSet::new(identity, now);
    for c in indicator_collections(store, named)? {
        let (_, skipped) = load_into(store, &c.as_ref(), None, &mut set)?;
        for s in skipped {
            eprintln!("kizuna: indicator skipped: {s}");
        }
    }
    set.compact();
    Ok(set)
}

/// What writing sightings did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Written {
    /// Sightings written (with their observed-data and SCOs).
    pub sightings: u64,
    /// Sightings already in the collection.
    pub already: u64,
    /// Sightings not written (not reducible, invalid, refused by the store).
    pub failed: u64,
}

/// Writes privacy-reduced sightings into one collection.
pub struct SightingSink {
    store: std::sync::Arc<dyn Store>,
    collection: Collection,
    marking: &'static str,
    redaction: Option<Redaction>,
    /// Totals so far.
    pub written: Written,
}

impl SightingSink {
    /// The sink of `[detect]` (or the flags' overrides): collection `to` (else
    /// `sightings_collection`, else `shared`), marking `tlp`, addresses hashed when `hash_emails`.
    pub fn new(
        store: std::sync::Arc<dyn Store>,
        config: &Config,
        to: Option<&str>,
        tlp: Option<Tlp>,
        hash_emails: bool,
    ) -> anyhow::Result<Self> {
        let name = to
            .or(config.detect.sightings_collection.as_deref())
            .unwrap_or(hub::DEFAULT_COLLECTION_ALIAS);
        let collection = hub::find_collection(store.as_ref(), None, name)
            .context("the collection for sightings")?;
        let redaction = if hash_emails || config.detect.hash_emails {
            let salt = if config.detect.email_hash_salt.is_empty() {
                hex(&store.secret("detect-email-hash-salt")?)
            } else {
                config.detect.email_hash_salt.clone()
            };
            Some(Redaction {
                hash_email_addresses: true,
                email_hash_salt: salt,
                ..Redaction::default()
            })
        } else {
            None
        };
        Ok(Self {
            store,
            collection,
            marking: tlp.unwrap_or(config.detect.tlp).marking_id(),
            redaction,
            written: Written::default(),
        })
    }

    /// The collection written to.
    pub fn collection(&self) -> &Collection {
        &self.collection
    }

    /// Whether the sighting `id` is already in the collection.
    fn present(&self, id: &str) -> anyhow::Result<bool> {
        let query = ObjectQuery {
            ids: vec![id.to_owned()],
            limit: 1,
            versions: kizuna_store::VersionFilter::All,
            clearance: Tlp::Red,
            unmarked_as: Tlp::Red,
            ..ObjectQuery::default()
        };
        Ok(!self
            .store
            .objects(&self.collection.as_ref(), &query)?
            .records
            .is_empty())
    }

    /// Reduces `hit` (of `obs`, matched by the indicator's `set` pattern) and stores it; a
    /// problem with one hit is reported on stderr and counted, never fatal.
    pub fn write(
        &mut self,
        set: &IndicatorSet,
        obs: &Observation,
        hit: &Hit,
    ) -> anyhow::Result<()> {
        let sighting_id = hit.sighting["id"].as_str().unwrap_or_default();
        if self.present(sighting_id)? {
            self.written.already += 1;
            return Ok(());
        }
        let Some(pattern) = set.pattern(&hit.indicator) else {
            self.written.failed += 1;
            return Ok(());
        };
        let hash = |a: &str| {
            self.redaction
                .as_ref()
                .map_or_else(|| a.to_owned(), |r| r.hash_address(a))
        };
        let options = ReduceOptions {
            hash_email: self
                .redaction
                .is_some()
                .then_some(&hash as &dyn Fn(&str) -> String),
            marking: Some(self.marking),
        };
        let reduced = match kizuna_detect::reduce(hit, obs, pattern, &options) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("kizuna: not written to the hub: {e}");
                self.written.failed += 1;
                return Ok(());
            }
        };
        let mut batch = Vec::new();
        for object in reduced.into_objects() {
            let problems = kizuna_stix::validate_object_with(
                &object,
                &kizuna_pattern::check_indicator_pattern,
            );
            let meta = ObjectMeta::from_value(&object);
            match (problems.is_empty(), meta) {
                (true, Ok(meta)) => batch.push(NewObject {
                    meta,
                    json: object.to_string(),
                }),
                (_, meta) => {
                    let why = problems
                        .iter()
                        .map(ToString::to_string)
                        .chain(meta.err().map(|p| p.to_string()))
                        .collect::<Vec<_>>()
                        .join("; ");
                    eprintln!(
                        "kizuna: {}: sighting not written, invalid object: {why}",
                        hit.source
                    );
                    self.written.failed += 1;
                    return Ok(());
                }
            }
        }
        let report = self.store.add_objects(&self.collection.as_ref(), batch)?;
        let refused: Vec<&String> = report
            .outcomes
            .iter()
            .filter_map(|o| match o {
                AddOutcome::Rejected(why) => Some(why),
                _ => None,
            })
            .collect();
        if refused.is_empty() {
            self.written.sightings += 1;
        } else {
            for why in refused {
                eprintln!("kizuna: {}: refused by the store: {why}", hit.source);
            }
            self.written.failed += 1;
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a data directory holds a hub (so `--hub` does not silently create one).
pub fn require_hub(config: &Config) -> anyhow::Result<()> {
    if !Path::new(&config.data).join(kizuna_store::DB_FILE).exists() {
        bail!(
            "no hub in {} (give --data DIR of a hub, or import indicators first)",
            config.data.display()
        );
    }
    Ok(())
}
