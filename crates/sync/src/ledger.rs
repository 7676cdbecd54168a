//! The egress ledger: an append-only, hash-chained record of every object version that left the
//! hub for a partner, by push, by a TAXII read of the partner's account, or by
//! `kizuna export --partner`.
//!
//! The chain logic (record, hash, chaining, verification, the [`LedgerStorage`] trait) is in the
//! pure `kizuna-policy` crate, re-exported here so that `kizuna_sync::ledger::…` paths hold: every
//! exit must write the ledger, the exits live in three crates, and the policy crate is the one all
//! of them know. The storage is here: [`crate::state::SyncDb`] keeps the ledger in `sync.db`, next
//! to the push watermarks so that recording a push and advancing its watermark is one transaction,
//! and `kizuna serve` hands the same database to the TAXII server as its ledger.

pub use kizuna_policy::ledger::*;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use kizuna_stix::Timestamp;

    pub(crate) fn entry(n: u32) -> LedgerEntry {
        LedgerEntry {
            time: Timestamp::from_unix_micros(1_700_000_000_000_000 + i64::from(n)),
            exit: if n.is_multiple_of(2) {
                Exit::Taxii
            } else {
                Exit::Push
            },
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
            (Tamper::EditExit(2), "edited"),
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
        EditExit(u64),
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
            Tamper::EditExit(s) => {
                if let Some(r) = records.iter_mut().find(|r| r.seq == s) {
                    r.entry.exit = Exit::Push;
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

    #[derive(Debug)]
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
}
