//! Kizuna federation: partner hubs (or any TAXII 2.1 server) that pull each other's intelligence
//! and push their own, over the open standard, without ever sending what policy forbids.
//!
//! # What this crate owns
//!
//! - [`client`]: a complete TAXII 2.1 client (discovery, API root, status, collections, objects
//!   with paging and filters, add objects, object, delete, versions, manifest) over rustls, with
//!   Basic, bearer and client-certificate authentication, a CA bundle or a pinned certificate,
//!   timeouts and capped response bodies. The sync engine is its first user; tests and tools can
//!   use it alone.
//! - [`policy`]: the one egress policy (TLP 2.0, per-partner allow/deny, redaction), re-exported
//!   from the pure `kizuna-policy` crate, which every exit of the hub (TAXII reads by partner
//!   accounts, push, export) asks.
//! - [`ledger`]: the append-only, hash-chained record of every object version that left the hub
//!   and by which exit (push, TAXII read, export), and its verification: the chain logic from
//!   `kizuna-policy` (every exit's crate knows it), stored in `sync.db` by [`state::SyncDb`],
//!   which `kizuna serve` also hands to the TAXII server as its ledger.
//! - [`config`]: partners as written in `kizuna.toml`.
//! - [`engine`]: pull and push (objects, and `DELETE`s for what was deleted locally after it was
//!   pushed), with checkpoints, watermarks and the outbound quarantine (versions a partner
//!   rejected, set aside after `set_aside_after` runs) in the [`state`] database; rounds with
//!   every partner, the partner list asked for at each round so that a running hub follows its
//!   configuration ([`SyncEngine::run_rounds`]).
//!
//! # What it must never do
//!
//! - **Send an object the policy refuses.** Push reads the local store with full clearance and
//!   therefore decides every single version with [`policy::EgressPolicy::explain`] before it is
//!   queued; there is no path from the store to the network that bypasses it. TLP:RED and
//!   AMBER+STRICT are refused by the policy itself, whatever a partner's allow lists say.
//! - **Skip or lose an object.** A pull checkpoint advances only after the page's objects are
//!   committed to the store (a crash re-reads at most a page, and the store ignores exact
//!   duplicates); a push watermark advances only after the partner's status resource confirms the
//!   envelope, in the same transaction that writes the ledger records; a version is skipped only
//!   when the partner confirmed, `set_aside_after` times, that it rejects it, and then it is
//!   listed in the outbound quarantine. A deletion watermark advances only over `DELETE`s the
//!   partner answered (200 or 404).
//! - **Trust the partner.** Response bodies are capped and parsed strictly; received objects are
//!   validated and quarantined with the reason when invalid; redirects are not followed, so
//!   credentials go only to the configured origin; secrets never sit in the configuration file.
//! - **Block the async runtime on SQLite.** Store calls run on tokio's blocking pool; the sync
//!   database's calls are short and serialised by one mutex.
//!
//! The crate knows `kizuna-stix` (validation, markings) and `kizuna-store` (the [`Store`] trait);
//! it does not know the TAXII server. `kizuna-cli` wires it into `kizuna sync`, `kizuna partner`,
//! `kizuna policy` and `kizuna ledger`.
//!
//! [`Store`]: kizuna_store::Store

pub mod client;
pub mod config;
pub mod engine;
mod error;
pub mod ledger;
pub mod metrics;
pub mod retry;
pub mod state;

/// The egress policy, from `kizuna-policy` (kept here so that `kizuna_sync::policy::…` paths hold).
pub mod policy {
    pub use kizuna_policy::*;
}

pub use config::{PartnerConfig, PullMapping, PushMapping};
pub use engine::{SyncEngine, SyncOptions, SyncReport};
pub use error::{Error, Result};
pub use kizuna_policy::{Decision, EgressPolicy, Redaction};
