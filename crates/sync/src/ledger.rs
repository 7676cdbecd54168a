//! The egress ledger: an append-only, hash-chained record of every object version that left the
//! hub for a partner.
//!
//! Each [`LedgerRecord`] carries the SHA-256 of the previous record (`prev_hash`) and its own hash
//! over its sequence number, its fields and `prev_hash`. [`verify`] recomputes the chain:
//!
//! - an **edit** of any field changes that record's hash;
//! - a **deletion** leaves a gap in the sequence and a `prev_hash` that no longer matches;
//! - a **reordering** (swapped sequence numbers or contents) breaks both;
//! - a **truncation** of the tail is caught against the head the storage keeps beside the chain,
//!   and, against someone who can rewrite that too, against a head hash kept elsewhere
//!   (`kizuna ledger show` prints it; `verify` takes it as `expected_head`).
//!
//! # Storage seam
//!
//! The chain logic is here and storage-independent; [`LedgerStorage`] is what a backend provides.
//! Today the ledger lives in the sync database (`sync.db` in the data directory, see
//! [`crate::state::SyncDb`]), next to the push watermarks so that recording a push and advancing
//! its watermark is one transaction. Moving it into the hub's store means implementing
//! [`LedgerStorage`] there, with [`chain`] called inside the store's transaction.

use kizuna_stix::Timestamp;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What is recorded about one object version sent to a partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerEntry {
    /// When it was sent (accepted by the partner).
    pub time: Timestamp,
    /// Partner name.
    pub partner: String,
    /// Object id.
    pub object_id: String,
    /// Object version (`modified`, else `created`, else the local `date_added`).
    pub version: String,
    /// Effective TLP level, or `unmarked (as LEVEL)`.
    pub marking: String,
    /// SHA-256 (hex) of the exact bytes sent (after redaction).
    pub sha256: String,
}

/// A stored, chained ledger record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerRecord {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// The entry.
    #[serde(flatten)]
    pub entry: LedgerEntry,
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
/// concurrent appends can never fork the chain.
pub trait LedgerStorage {
    /// Appends entries after the current head; returns the stored records.
    fn append(&self, entries: &[LedgerEntry]) -> Result<Vec<LedgerRecord>>;
    /// Up to `limit` records with `seq > after`, in sequence order.
    fn records(&self, after: u64, limit: usize) -> Result<Vec<LedgerRecord>>;
    /// The head as recorded by the storage beside the chain (`None` for an empty ledger).
    fn head(&self) -> Result<Option<Head>>;
}

/// The hash of a record: SHA-256 over a domain tag and each field, length-prefixed so that no two
/// different records can encode to the same bytes.
pub fn record_hash(seq: u64, entry: &LedgerEntry, prev_hash: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"kizuna-egress-ledger-v1");
    let time = entry.time.to_string();
    for field in [
        seq.to_string().as_str(),
        time.as_str(),
        entry.partner.as_str(),
        entry.object_id.as_str(),
        entry.version.as_str(),
        entry.marking.as_str(),
        entry.sha256.as_str(),
        prev_hash,
    ] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Chains `entries` after `head` (`None`: an empty ledger).
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
            let computed = record_hash(r.seq, &r.entry, &r.prev_hash);
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
            .map_err(|_| Error::Ledger("lock poisoned".into()))?;
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
pub(crate) mod tests {
    use super::*;

    pub(crate) fn entry(n: u32) -> LedgerEntry {
        LedgerEntry {
            time: Timestamp::from_unix_micros(1_700_000_000_000_000 + i64::from(n)),
            partner: "dod".into(),
            object_id: format!("indicator--00000000-0000-4000-8000-{n:012}"),
            version: "2026-01-01T00:00:00.000Z".into(),
            marking: "green".into(),
            sha256: sha256_hex(n.to_string().as_bytes()),
        }
    }

    /// Runs the tamper suite against any storage, given a way to tamper with it.
    pub(crate) fn tamper_suite(
        make: &dyn Fn() -> Box<dyn LedgerStorage>,
        tamper: &dyn Fn(&dyn LedgerStorage, Tamper),
    ) {
        let fill = |l: &dyn LedgerStorage| {
            l.append(&[entry(1), entry(2)]).unwrap();
            l.append(&[entry(3)]).unwrap();
            l.append(&[entry(4), entry(5)]).unwrap();
        };
        let l = make();
        let v = verify(l.as_ref(), None).unwrap();
        assert!(v.is_intact() && v.records == 0 && v.head.is_none());
        fill(l.as_ref());
        let v = verify(l.as_ref(), None).unwrap();
        assert!(v.is_intact(), "{:?}", v.problems);
        assert_eq!(v.records, 5);
        let head = v.head.clone().unwrap();
        assert_eq!(head.seq, 5);
        assert!(verify(l.as_ref(), Some(&head.hash)).unwrap().is_intact());
        assert!(!verify(l.as_ref(), Some(GENESIS_HASH)).unwrap().is_intact());

        for (t, what) in [
            (Tamper::EditPartner(3), "edited"),
            (Tamper::EditDigest(1), "edited"),
            (Tamper::Delete(3), "deleted"),
            (Tamper::Swap(2, 4), "prev_hash"),
            (Tamper::TruncateTail, "recorded head"),
        ] {
            let l = make();
            fill(l.as_ref());
            tamper(l.as_ref(), t);
            let v = verify(l.as_ref(), None).unwrap();
            assert!(!v.is_intact(), "{t:?} went unnoticed");
            assert!(
                v.problems.iter().any(|p| p.contains(what)),
                "{t:?}: {:?}",
                v.problems
            );
        }
        // Truncation of both tail and recorded head: only an external head catches it.
        let l = make();
        fill(l.as_ref());
        let head = verify(l.as_ref(), None).unwrap().head.unwrap();
        tamper(l.as_ref(), Tamper::TruncateTailAndHead);
        assert!(verify(l.as_ref(), None).unwrap().is_intact());
        assert!(!verify(l.as_ref(), Some(&head.hash)).unwrap().is_intact());
    }

    /// Ways of tampering with a stored ledger.
    #[derive(Debug, Clone, Copy)]
    pub(crate) enum Tamper {
        EditPartner(u64),
        EditDigest(u64),
        Delete(u64),
        Swap(u64, u64),
        TruncateTail,
        TruncateTailAndHead,
    }

    fn tamper_memory(l: &dyn LedgerStorage, t: Tamper, mem: &MemoryLedger) {
        let _ = l;
        mem.with_raw(|records, head| match t {
            Tamper::EditPartner(s) => {
                if let Some(r) = records.iter_mut().find(|r| r.seq == s) {
                    r.entry.partner = "evil".into();
                }
            }
            Tamper::EditDigest(s) => {
                if let Some(r) = records.iter_mut().find(|r| r.seq == s) {
                    r.entry.sha256 = sha256_hex(b"other");
                }
            }
            Tamper::Delete(s) => records.retain(|r| r.seq != s),
            Tamper::Swap(a, b) => {
                for r in records.iter_mut() {
                    if r.seq == a {
                        r.seq = b;
                    } else if r.seq == b {
                        r.seq = a;
                    }
                }
            }
            Tamper::TruncateTail => {
                records.pop();
            }
            Tamper::TruncateTailAndHead => {
                records.pop();
                *head = records.last().map(|r| Head {
                    seq: r.seq,
                    hash: r.hash.clone(),
                });
            }
        })
        .unwrap();
    }

    #[test]
    fn memory_ledger_detects_tampering() {
        use std::sync::Arc;
        let cell: Arc<std::sync::Mutex<Option<Arc<MemoryLedger>>>> = Arc::default();
        let c1 = cell.clone();
        let make = move || -> Box<dyn LedgerStorage> {
            let m = Arc::new(MemoryLedger::new());
            *c1.lock().unwrap() = Some(m.clone());
            Box::new(Shared(m))
        };
        let tamper = |l: &dyn LedgerStorage, t: Tamper| {
            let m = cell.lock().unwrap().clone().unwrap();
            tamper_memory(l, t, &m);
        };
        tamper_suite(&make, &tamper);
    }

    struct Shared(std::sync::Arc<MemoryLedger>);
    impl LedgerStorage for Shared {
        fn append(&self, e: &[LedgerEntry]) -> Result<Vec<LedgerRecord>> {
            self.0.append(e)
        }
        fn records(&self, a: u64, l: usize) -> Result<Vec<LedgerRecord>> {
            self.0.records(a, l)
        }
        fn head(&self) -> Result<Option<Head>> {
            self.0.head()
        }
    }

    #[test]
    fn hashes_are_unambiguous() {
        let a = entry(1);
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
    fn chain_links_records() {
        let rs = chain(None, &[entry(1), entry(2)]);
        assert_eq!(rs[0].prev_hash, GENESIS_HASH);
        assert_eq!(rs[1].prev_hash, rs[0].hash);
        assert_eq!(rs[1].seq, 2);
        let more = chain(
            Some(&Head {
                seq: 2,
                hash: rs[1].hash.clone(),
            }),
            &[entry(3)],
        );
        assert_eq!(more[0].seq, 3);
        assert_eq!(more[0].prev_hash, rs[1].hash);
    }
}
