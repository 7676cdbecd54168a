//! What a partner's reading account is subject to, kept live, and the ledger of what it is served.
//!
//! # The live map
//!
//! [`EgressMap`] says, by account name, which partner an account belongs to and that partner's
//! [`EgressPolicy`]. The command line builds it from the `[[partner]]` tables and replaces it
//! whole when they change (`kizuna serve` re-reads them on SIGHUP and before every sync round), so
//! a policy change needs no restart. A request takes the map as it is when it starts (one read
//! lock and an `Arc` clone, nothing else), so a page is decided under one policy, never half and
//! half. Accounts without an entry pay that lookup and nothing more: nothing is parsed, decided or
//! recorded for them.
//!
//! # The ledger of TAXII reads
//!
//! Every object version Get Objects or Get an Object serves to a partner's account is appended to
//! the egress ledger ([`ServiceConfig::ledger`](crate::state::ServiceConfig::ledger), the same
//! ledger push and export write) before the response is built: exit `taxii`, the version, its
//! marking and the SHA-256 of the exact bytes in the envelope (after redaction). If the append
//! fails, or no ledger is configured, the request fails with 503 and nothing is served: an object
//! that left unrecorded is what the ledger exists to rule out. A record therefore means "answered
//! with", not "received by": a client that drops the connection mid-body was still recorded.
//!
//! The append runs on the request's blocking thread (the page is read there too), never on the
//! async runtime. Manifest and versions resources reveal ids, versions and dates, not objects;
//! they are not ledgered (they are audited like every read).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use kizuna_policy::EgressPolicy;
use kizuna_policy::ledger::{Exit, LedgerEntry, LedgerStorage, sha256_hex};
use kizuna_stix::Timestamp;

use crate::error::ApiError;

/// The partner a reading account belongs to, and its policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerEgress {
    /// Partner name, as recorded in the ledger.
    pub partner: String,
    /// What that partner may have.
    pub policy: EgressPolicy,
}

/// One version of the map: swapped whole, never edited.
type Entries = Arc<HashMap<String, Arc<PartnerEgress>>>;

/// Account name → the partner it belongs to. Cloning shares the map: a replacement through one
/// clone is seen by all.
#[derive(Debug, Clone, Default)]
pub struct EgressMap {
    current: Arc<RwLock<Entries>>,
}

impl EgressMap {
    /// A map with these entries.
    pub fn new(entries: HashMap<String, PartnerEgress>) -> Self {
        let map = Self::default();
        map.replace(entries);
        map
    }

    /// Replaces every entry at once: requests that already started keep the map they took.
    pub fn replace(&self, entries: HashMap<String, PartnerEgress>) {
        let entries: HashMap<String, Arc<PartnerEgress>> = entries
            .into_iter()
            .map(|(account, egress)| (account, Arc::new(egress)))
            .collect();
        // A poisoned lock only means a writer panicked mid-swap of an `Arc`, which cannot leave
        // the map half-written: take it over.
        let mut guard = self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = Arc::new(entries);
    }

    /// The entry of `account`, if it is a partner's.
    pub fn get(&self, account: &str) -> Option<Arc<PartnerEgress>> {
        let guard = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.is_empty() {
            return None;
        }
        guard.get(account).cloned()
    }

    /// Whether no account has an egress policy.
    pub fn is_empty(&self) -> bool {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_empty()
    }

    /// The accounts in the map, sorted.
    pub fn accounts(&self) -> Vec<String> {
        let guard = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut accounts: Vec<String> = guard.keys().cloned().collect();
        accounts.sort_unstable();
        accounts
    }
}

/// One version about to be served to a partner: what the ledger records of it.
#[derive(Debug)]
pub(crate) struct Served<'a> {
    pub object_id: &'a str,
    pub version: Timestamp,
    pub marking: &'a str,
    pub bytes: &'a str,
}

/// Appends what is about to be served to `egress`'s partner to the ledger; an error (503) when it
/// cannot be recorded. Blocking.
pub(crate) fn record(
    ledger: Option<&Arc<dyn LedgerStorage>>,
    egress: &PartnerEgress,
    served: &[Served<'_>],
) -> Result<(), ApiError> {
    if served.is_empty() {
        return Ok(());
    }
    let Some(ledger) = ledger else {
        tracing::error!(
            partner = %egress.partner,
            "no egress ledger configured: refusing to serve a partner's account"
        );
        return Err(ledger_unavailable());
    };
    let now = Timestamp::now();
    let entries: Vec<LedgerEntry> = served
        .iter()
        .map(|s| LedgerEntry {
            time: now,
            exit: Exit::Taxii,
            partner: egress.partner.clone(),
            object_id: s.object_id.to_owned(),
            version: s.version.to_string(),
            marking: s.marking.to_owned(),
            sha256: sha256_hex(s.bytes.as_bytes()),
        })
        .collect();
    ledger.append(&entries).map(|_| ()).map_err(|e| {
        tracing::error!(partner = %egress.partner, error = %e, "egress ledger append failed: nothing served");
        ledger_unavailable()
    })
}

fn ledger_unavailable() -> ApiError {
    ApiError::new(
        http::StatusCode::SERVICE_UNAVAILABLE,
        "Egress ledger unavailable",
    )
    .describe("what this account reads must be recorded first, and that failed; try again later")
}
