//! The egress ledger's chain: an append-only, hash-chained record of every object version that
//! left the hub for a partner, through whichever exit it left by ([`Exit`]: push, a TAXII read by
//! the partner's account, or `kizuna export --partner`).
//!
//! Each [`LedgerRecord`] carries the SHA-256 of the previous record (`prev_hash`) and its own hash
//! over its sequence number, its fields (the exit included) and `prev_hash`. [`verify`]
//! recomputes the chain:
//!
//! - an **edit** of any field changes that record's hash;
//! - a **deletion** leaves a gap in the sequence and a `prev_hash` that no longer matches;
//! - a **reordering** (swapped sequence numbers or contents) breaks both;
//! - a **truncation** of the tail is caught against the head the storage keeps beside the chain,
//!   and, against someone who can rewrite that too, against a head hash kept elsewhere
//!   (`kizuna ledger show` prints it; `verify` takes it as `expected_head`).
//!
//! # Why it lives in the policy crate
//!
//! Every exit must write the ledger, and the exits live in three crates: push in `kizuna-sync`,
//! TAXII reads in `kizuna-taxii`, export in `kizuna-cli`. The policy crate is the one they all
//! already know, and what is here is as pure as the policy itself: the record type, the hash, the
//! chaining and the verification, plus the [`LedgerStorage`] trait a backend implements. Storage
//! is elsewhere: `kizuna-sync`'s `SyncDb` keeps the ledger in `sync.db` (next to the push
//! watermarks, so that recording a push and advancing its watermark is one transaction), and the
//! command line hands that same database to the TAXII server as its ledger. [`MemoryLedger`] is a
//! plain value holding records in memory, for tests and dry runs; it does no I/O either.
//!
//! # Record formats
//!
//! Records written before the exit was recorded ([`RecordFormat::V1`]) were all pushes and are
//! hashed as they were (without the exit), so that ledgers written by earlier builds still verify;
//! every record appended now is [`RecordFormat::V2`], with the exit among the hashed fields. A V1
//! record whose exit reads anything but `push` fails verification.

use kizuna_stix::Timestamp;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Why a ledger operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The storage behind the ledger failed (a database error, a poisoned lock).
    #[error("egress ledger storage: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl LedgerError {
    /// A storage failure described by a message.
    pub fn storage(message: impl Into<String>) -> Self {
        Self::Storage(message.into().into())
    }
}

/// Result of ledger operations.
pub type Result<T, E = LedgerError> = std::result::Result<T, E>;

/// The way an object version left the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Exit {
    /// Sent by push (`kizuna sync`, `kizuna serve`'s rounds) and accepted by the partner.
    Push,
    /// Served to the partner's reading account by Get Objects or Get an Object.
    Taxii,
    /// Written to a file by `kizuna export --partner`.
    Export,
}

impl Exit {
    /// The name recorded and hashed: `push`, `taxii` or `export`.
    pub fn as_str(self) -> &'static str {
        match self {
            Exit::Push => "push",
            Exit::Taxii => "taxii",
            Exit::Export => "export",
        }
    }

    /// The exit named by [`Exit::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "push" => Some(Exit::Push),
            "taxii" => Some(Exit::Taxii),
            "export" => Some(Exit::Export),
            _ => None,
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is recorded about one object version that left for a partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerEntry {
    /// When it left (push: accepted by the partner; TAXII: just before the response is sent;
    /// export: when the file was complete).
    pub time: Timestamp,
    /// Which exit it left by.
    pub exit: Exit,
    /// Partner name.
    pub partner: String,
    /// Object id.
    pub object_id: String,
    /// Object version (`modified`, else `created`, else the local `date_added`).
    pub version: String,
    /// Effective TLP level, or `unmarked (as LEVEL)` (see [`crate::Decision::marking_label`]).
    pub marking: String,
    /// SHA-256 (hex) of the exact bytes sent (after redaction).
    pub sha256: String,
}

/// How a record's hash is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RecordFormat {
    /// Before exits were recorded: every record is a push, and the exit is not hashed.
    V1,
    /// The exit is among the hashed fields.
    V2,
}

/// A stored, chained ledger record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerRecord {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// The entry.
    #[serde(flatten)]
    pub entry: LedgerEntry,
    /// How `hash` was computed.
    #[serde(skip)]
    pub format: RecordFormat,
    /// Hash of the previous record ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// Hash of this record.
    pub hash: String,
}

/// The newest record's position and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Head {
    /// Sequence number.
    pub seq: u64,
    /// Record hash.
    pub hash: String,
}

/// Where ledger records are kept. Implementations must append atomically: read the current head,
/// build the records with [`chain`], store records and head, all in one transaction, so that two
/// concurrent appends can never fork the chain. An append that returns `Ok` must be durable.
pub trait LedgerStorage: Send + Sync + std::fmt::Debug {
    /// Appends entries after the current head; returns the stored records.
    fn append(&self, entries: &[LedgerEntry]) -> Result<Vec<LedgerRecord>>;
    /// Up to `limit` records with `seq > after`, in sequence order.
    fn records(&self, after: u64, limit: usize) -> Result<Vec<LedgerRecord>>;
    /// The head as recorded by the storage beside the chain (`None` for an empty ledger).
    fn head(&self) -> Result<Option<Head>>;
}

/// The hash of a record in the current format ([`RecordFormat::V2`]): SHA-256 over a domain tag
/// and each field, the exit included, length-prefixed so that no two different records can encode
/// to the same bytes.
pub fn record_hash(seq: u64, entry: &LedgerEntry, prev_hash: &str) -> String {
    record_hash_in(RecordFormat::V2, seq, entry, prev_hash)
}

/// The hash of a record in `format`. A [`RecordFormat::V1`] record whose exit is not
/// [`Exit::Push`] cannot have been written as such: its hash then covers the exit too, so it never
/// matches.
pub fn record_hash_in(
    format: RecordFormat,
    seq: u64,
    entry: &LedgerEntry,
    prev_hash: &str,
) -> String {
    let mut h = Sha256::new();
    let time = entry.time.to_string();
    let seq = seq.to_string();
    let common = [
        time.as_str(),
        entry.partner.as_str(),
        entry.object_id.as_str(),
        entry.version.as_str(),
        entry.marking.as_str(),
        entry.sha256.as_str(),
        prev_hash,
    ];
    let fields: Vec<&str> = match format {
        RecordFormat::V1 if entry.exit == Exit::Push => {
            h.update(b"kizuna-egress-ledger-v1");
            std::iter::once(seq.as_str()).chain(common).collect()
        }
        _ => {
            h.update(b"kizuna-egress-ledger-v2");
            [seq.as_str(), entry.exit.as_str()]
                .into_iter()
                .chain(common)
                .collect()
        }
    };
    for field in fields {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Chains `entries` after `head` (`None`: an empty ledger), in the current format.
pub fn chain(head: Option<&Head>, entries: &[LedgerEntry]) -> Vec<LedgerRecord> {
    let (mut seq, mut prev) = match head {
        Some(h) => (h.seq, h.hash.clone()),
        None => (0, GENESIS_HASH.to_owned()),
    };
    entries
        .iter()
        .map(|entry| {
            seq += 1;
            let hash = record_hash(seq, entry, &prev);
            LedgerRecord {
                seq,
                entry: entry.clone(),
                format: RecordFormat::V2,
                prev_hash: std::mem::replace(&mut prev, hash.clone()),
                hash,
            }
        })
        .collect()
}

/// The SHA-256 (hex) of bytes sent.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Records checked.
    pub records: u64,
    /// The head of the chain as recomputed.
    pub head: Option<Head>,
    /// Every problem found, in chain order; empty when the ledger is intact.
    pub problems: Vec<String>,
}

impl Verification {
    /// Whether the ledger is intact.
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Recomputes the whole chain, reading `batch` records at a time; compares its end with the head
/// the storage recorded and, when given, with `expected_head` (a hash kept elsewhere).
pub fn verify(storage: &dyn LedgerStorage, expected_head: Option<&str>) -> Result<Verification> {
    const BATCH: usize = 10_000;
    let mut problems = Vec::new();
    let mut expected_seq = 1u64;
    let mut prev = GENESIS_HASH.to_owned();
    let mut after = 0u64;
    let mut count = 0u64;
    let mut last: Option<Head> = None;
    loop {
        let records = storage.records(after, BATCH)?;
        let Some(tail) = records.last() else { break };
        after = tail.seq;
        for r in &records {
            count += 1;
            if r.seq != expected_seq {
                problems.push(format!(
                    "record {}: expected sequence number {expected_seq} (a record was deleted or moved)",
                    r.seq
                ));
            }
            if r.prev_hash != prev {
                problems.push(format!(
                    "record {}: prev_hash does not match the previous record (deleted, inserted or reordered records)",
                    r.seq
                ));
            }
            let computed = record_hash_in(r.format, r.seq, &r.entry, &r.prev_hash);
            if computed != r.hash {
                problems.push(format!(
                    "record {}: contents do not match its hash (edited)",
                    r.seq
                ));
            }
            expected_seq = r.seq + 1;
            prev = r.hash.clone();
            last = Some(Head {
                seq: r.seq,
                hash: r.hash.clone(),
            });
        }
        if records.len() < BATCH {
            break;
        }
    }
    let recorded = storage.head()?;
    if recorded != last {
        problems.push(format!(
            "the recorded head ({}) differs from the chain's end ({}): records were removed or added outside the ledger",
            describe(recorded.as_ref()),
            describe(last.as_ref())
        ));
    }
    if let Some(expected) = expected_head {
        let found = last
            .as_ref()
            .is_some_and(|h| h.hash.eq_ignore_ascii_case(expected.trim()));
        if !found {
            problems.push(format!(
                "the chain ends at {} but {expected} was expected",
                describe(last.as_ref())
            ));
        }
    }
    Ok(Verification {
        records: count,
        head: last,
        problems,
    })
}

fn describe(head: Option<&Head>) -> String {
    match head {
        Some(h) => format!("#{} {}", h.seq, h.hash),
        None => "empty".to_owned(),
    }
}

/// An in-memory ledger, for tests and dry runs.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    inner: std::sync::Mutex<(Vec<LedgerRecord>, Option<Head>)>,
}

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Direct access to the records and the recorded head, to simulate tampering in tests.
    pub fn with_raw<R>(
        &self,
        f: impl FnOnce(&mut Vec<LedgerRecord>, &mut Option<Head>) -> R,
    ) -> Result<R> {
        let mut guard = self
            .inner
            .lock()
            .map_err(|_| LedgerError::storage("in-memory ledger lock poisoned"))?;
        let (records, head) = &mut *guard;
        Ok(f(records, head))
    }
}

impl LedgerStorage for MemoryLedger {
    fn append(&self, entries: &[LedgerEntry]) -> Result<Vec<LedgerRecord>> {
        self.with_raw(|records, head| {
            let new = chain(head.as_ref(), entries);
            if let Some(l) = new.last() {
                *head = Some(Head {
                    seq: l.seq,
                    hash: l.hash.clone(),
                });
            }
            records.extend(new.iter().cloned());
            new
        })
    }

    fn records(&self, after: u64, limit: usize) -> Result<Vec<LedgerRecord>> {
        self.with_raw(|records, _| {
            let mut v: Vec<LedgerRecord> =
                records.iter().filter(|r| r.seq > after).cloned().collect();
            v.sort_by_key(|r| r.seq);
            v.truncate(limit);
            v
        })
    }

    fn head(&self) -> Result<Option<Head>> {
        self.with_raw(|_, head| head.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u32, exit: Exit) -> LedgerEntry {
        LedgerEntry {
            time: Timestamp::from_unix_micros(1_700_000_000_000_000 + i64::from(n)),
            exit,
            partner: "dod".into(),
            object_id: format!("indicator--00000000-0000-4000-8000-{n:012}"),
            version: "2026-01-01T00:00:00.000Z".into(),
            marking: "green".into(),
            sha256: sha256_hex(n.to_string().as_bytes()),
        }
    }

    #[test]
    fn hashes_are_unambiguous() {
        let a = entry(1, Exit::Push);
        let mut b = a.clone();
        b.partner = "do".into();
        b.object_id = format!("d{}", a.object_id);
        assert_ne!(
            record_hash(1, &a, GENESIS_HASH),
            record_hash(1, &b, GENESIS_HASH)
        );
        assert_ne!(
            record_hash(1, &a, GENESIS_HASH),
            record_hash(2, &a, GENESIS_HASH)
        );
    }

    #[test]
    fn the_exit_is_hashed() {
        let hashes: std::collections::HashSet<String> = [Exit::Push, Exit::Taxii, Exit::Export]
            .into_iter()
            .map(|exit| record_hash(1, &entry(1, exit), GENESIS_HASH))
            .collect();
        assert_eq!(hashes.len(), 3);
        for exit in [Exit::Push, Exit::Taxii, Exit::Export] {
            assert_eq!(Exit::parse(exit.as_str()), Some(exit));
        }
        assert_eq!(Exit::parse("pull"), None);
    }

    #[test]
    fn chain_links_records() {
        let rs = chain(None, &[entry(1, Exit::Push), entry(2, Exit::Taxii)]);
        assert_eq!(rs[0].prev_hash, GENESIS_HASH);
        assert_eq!(rs[1].prev_hash, rs[0].hash);
        assert_eq!(rs[1].seq, 2);
        assert_eq!(rs[1].format, RecordFormat::V2);
        let more = chain(
            Some(&Head {
                seq: 2,
                hash: rs[1].hash.clone(),
            }),
            &[entry(3, Exit::Export)],
        );
        assert_eq!(more[0].seq, 3);
        assert_eq!(more[0].prev_hash, rs[1].hash);
    }

    /// A ledger written before exits were recorded (V1 records, all pushes) still verifies, new
    /// records chain after it, and relabelling an old record with another exit is caught.
    #[test]
    fn v1_records_still_verify_and_cannot_be_relabelled() {
        let ledger = MemoryLedger::new();
        ledger
            .with_raw(|records, head| {
                let mut prev = GENESIS_HASH.to_owned();
                for seq in 1..=2u64 {
                    let e = entry(seq as u32, Exit::Push);
                    let hash = record_hash_in(RecordFormat::V1, seq, &e, &prev);
                    records.push(LedgerRecord {
                        seq,
                        entry: e,
                        format: RecordFormat::V1,
                        prev_hash: std::mem::replace(&mut prev, hash.clone()),
                        hash: hash.clone(),
                    });
                    *head = Some(Head { seq, hash });
                }
            })
            .unwrap();
        ledger.append(&[entry(3, Exit::Taxii)]).unwrap();
        let v = verify(&ledger, None).unwrap();
        assert!(v.is_intact(), "{:?}", v.problems);
        assert_eq!(v.records, 3);

        ledger
            .with_raw(|records, _| records[0].entry.exit = Exit::Export)
            .unwrap();
        let v = verify(&ledger, None).unwrap();
        assert!(
            v.problems
                .iter()
                .any(|p| p.contains("record 1") && p.contains("edited")),
            "{:?}",
            v.problems
        );
    }

    /// Changing a record's exit (say, hiding an export as a push) is an edit.
    #[test]
    fn editing_the_exit_is_detected() {
        let ledger = MemoryLedger::new();
        ledger
            .append(&[entry(1, Exit::Push), entry(2, Exit::Export)])
            .unwrap();
        assert!(verify(&ledger, None).unwrap().is_intact());
        ledger
            .with_raw(|records, _| records[1].entry.exit = Exit::Push)
            .unwrap();
        let v = verify(&ledger, None).unwrap();
        assert!(
            v.problems
                .iter()
                .any(|p| p.contains("record 2") && p.contains("edited")),
            "{:?}",
            v.problems
        );
    }
}
