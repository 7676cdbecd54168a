//! Kizuna's detection sensors: mail and network logs turned into STIX 2.1 observations, and
//! observations matched against shared indicators into sightings.
//!
//! # What this crate owns
//!
//! * **Sources** — [`MailSource`] (`.eml`, mbox, Maildir) and [`LogSource`] (Zeek JSON,
//!   Suricata EVE JSON, STIX observed-data JSONL) are plain iterators of
//!   `Result<Observation, Error>`. Each [`Observation`] is one message or one log line: a
//!   `source` that names it (`PATH`, `PATH#N` for the N-th message of an mbox, `PATH:LINE` for a
//!   log line) and a STIX bundle holding one observed-data and its SCOs.
//! * **Matcher** — [`IndicatorSet`] holds indicators compiled once behind a prefilter index
//!   (equality and `IN` on any path, hashes, CIDR ranges, `LIKE` and `MATCHES` literals; see
//!   the `index` module) and reports, for each observation, the indicators it satisfies as STIX
//!   sightings: the index names the few candidates, the exact evaluator confirms each, so the
//!   result is that of evaluating every pattern and the cost does not grow with the number of
//!   indicators. Indicators are added, replaced and revoked one at a time.
//!   [`IndicatorStream`] adds patterns that bind several observations (`FOLLOWEDBY`, `REPEATS`,
//!   `WITHIN`) across a stream, with bounded state per pattern; [`StreamState`] is that state
//!   alone, for a caller that owns and changes the set (a watcher) or that matches each
//!   observation on other threads and feeds only the multi-observation part in input order.
//! * The sink is the caller's: the CLI prints JSON lines or a table; the hub stores sightings.
//! * **Privacy reduction** — [`reduce`] cuts the observed-data a sighting shares down to what
//!   the indicator's pattern used (the `reduce` module argues how), optionally with email
//!   addresses hashed, so that a hub can share sightings without sharing its mail.
//!
//! # Why a push pipeline of plain iterators
//!
//! ripgrep's `Searcher → Matcher → Sink` split is the model: reading input, deciding what
//! matches and reporting are separate, so each can be tested, fuzzed and replaced alone (the
//! indexed matcher and the pattern-by-pattern reference take the same observations).
//! Sources are pull iterators because that is the cheapest way to give bounded memory: one
//! message or one line is alive at a time, whatever the input size, and parallel consumers can
//! split the stream without the sources knowing.
//!
//! # Why observations are JSON, not a typed model
//!
//! Loading an observation into a heavy typed model can cost more than matching every pattern
//! against it (measured on rstix, see `shared/PEERS.md`). The sensors build the observed-data
//! bundle directly as `serde_json::Value`, the form the pattern engine loads anyway and the
//! form the `--observables` output prints, so extraction is the only cost before matching.
//!
//! # Faithful STIX
//!
//! SCOs are modelled as the STIX 2.1 specification does (email-message with `body_multipart`
//! and `body_raw_ref`, `archive-ext` `contains_refs` for ZIP members, network-traffic with
//! `src_ref`/`dst_ref`, domain-name `resolves_to_refs`) and carry the specification's
//! deterministic UUIDv5 ids, so the same address, hash or URL has the same id in every
//! observation and at every partner. What could not be extracted (an encrypted archive, a
//! truncated attachment, a limit reached) is said in [`Observation::notes`] and, on the object
//! concerned, in an `x_kizuna_note` custom property.
//!
//! # What this crate must never do
//!
//! No async, no SQL, no network, no process concerns (arguments, exit codes, terminals), and
//! no panic on input: every mail and log line is attacker-controlled. Decoders are capped
//! ([`MailLimits`]); a malformed item becomes a note or an error naming it, never a crash.

mod error;
pub mod explain;
pub mod id;
mod index;
mod logs;
mod mail;
mod matcher;
mod objects;
pub mod parallel;
pub mod reduce;
mod zip;

pub use error::Error;
pub use explain::{TestExplanation, explain};
pub use logs::{LogFormat, LogSource, map_json_line};
pub use mail::{MailLimits, MailOptions, MailSource, scan_message};
pub use matcher::{Hit, IndicatorSet, IndicatorStream, LoadReport, StreamLimits, StreamState};
pub use reduce::{ReduceOptions, Reduced, reduce};

use serde_json::{Value, json};

/// One message or log line, extracted.
#[derive(Debug, Clone)]
pub struct Observation {
    /// What was observed: `PATH`, `PATH#N` (N-th message of an mbox, from 1) or `PATH:LINE`.
    pub source: String,
    /// A STIX 2.1 bundle: the observed-data first, then its SCOs.
    pub bundle: Value,
    /// What could not be extracted, and why (empty when everything was).
    pub notes: Vec<String>,
}

impl Observation {
    /// The observed-data object of the bundle.
    pub fn observed_data(&self) -> Option<&Value> {
        self.bundle
            .get("objects")?
            .as_array()?
            .iter()
            .find(|o| o.get("type").and_then(Value::as_str) == Some("observed-data"))
    }

    /// Writes [`Observation::to_json`] as one line, without copying the bundle.
    pub fn write_json_line(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let source = Value::String(self.source.clone());
        write!(out, "{{\"source\":{source},\"bundle\":{}", self.bundle)?;
        if !self.notes.is_empty() {
            write!(out, ",\"notes\":{}", json!(self.notes))?;
        }
        writeln!(out, "}}")
    }

    /// The `--observables` line: `{"source": ..., "bundle": ...}`, plus `notes` when there are.
    pub fn to_json(&self) -> Value {
        let mut v = json!({"source": self.source, "bundle": self.bundle});
        if !self.notes.is_empty() {
            v["notes"] = json!(self.notes);
        }
        v
    }
}
