//! The federation status as Prometheus series, for the hub's `/metrics` (`kizuna serve` hands
//! [`SyncEngine::render_metrics`] to the TAXII server's metrics as an extra renderer). Every name
//! is defined once in [`names`]; the only label is `partner`, whose values come from the
//! configuration, never from the network.

use std::fmt::Write as _;

use kizuna_stix::Timestamp;

use crate::engine::SyncEngine;

/// The metric names, in one place.
pub mod names {
    /// Gauge: Unix time (seconds) at which the last successful sync run with the partner ended.
    pub const LAST_SUCCESS: &str = "kizuna_sync_last_success_timestamp_seconds";
    /// Gauge: seconds since the last successful sync run with the partner ended (how stale what
    /// we hold from it may be); absent until a run has succeeded.
    pub const LAG: &str = "kizuna_sync_lag_seconds";
    /// Gauge: 1 when the partner's last run failed, else 0.
    pub const LAST_RUN_FAILED: &str = "kizuna_sync_last_run_failed";
    /// Counter: failed sync runs with the partner since this process started.
    pub const ERRORS: &str = "kizuna_sync_errors_total";
    /// Counter: object versions stored from the partner.
    pub const PULLED: &str = "kizuna_sync_pulled_objects_total";
    /// Counter: object versions sent to the partner.
    pub const PUSHED: &str = "kizuna_sync_pushed_objects_total";
    /// Counter: objects from the partner quarantined.
    pub const QUARANTINED: &str = "kizuna_sync_quarantined_objects_total";
}

impl SyncEngine {
    /// Appends the status of `partners` to `out` in the Prometheus text exposition format.
    /// Reads the sync database (short queries); a partner whose status cannot be read is left out.
    pub fn render_metrics(&self, partners: &[String], out: &mut String) {
        let now = Timestamp::now().unix_micros();
        let rows: Vec<_> = partners
            .iter()
            .filter_map(|p| Some((escape(p), self.db().status(p).ok()?, self.errors(p))))
            .collect();
        let success = |s: &crate::state::PartnerStatus| {
            s.last_success
                .as_deref()
                .and_then(|t| Timestamp::parse(t).ok())
                .map(|t| t.unix_micros())
        };
        header(
            out,
            names::LAST_SUCCESS,
            "gauge",
            "End of the last successful sync run (Unix seconds).",
        );
        for (p, s, _) in &rows {
            if let Some(t) = success(s) {
                let _ = writeln!(
                    out,
                    "{}{{partner=\"{p}\"}} {}",
                    names::LAST_SUCCESS,
                    secs(t)
                );
            }
        }
        header(
            out,
            names::LAG,
            "gauge",
            "Seconds since the last successful sync run ended.",
        );
        for (p, s, _) in &rows {
            if let Some(t) = success(s) {
                let _ = writeln!(
                    out,
                    "{}{{partner=\"{p}\"}} {}",
                    names::LAG,
                    secs((now - t).max(0))
                );
            }
        }
        header(
            out,
            names::LAST_RUN_FAILED,
            "gauge",
            "1 when the last sync run failed.",
        );
        for (p, s, _) in &rows {
            let _ = writeln!(
                out,
                "{}{{partner=\"{p}\"}} {}",
                names::LAST_RUN_FAILED,
                u8::from(s.last_error.is_some())
            );
        }
        header(
            out,
            names::ERRORS,
            "counter",
            "Failed sync runs since the process started.",
        );
        for (p, _, errors) in &rows {
            let _ = writeln!(out, "{}{{partner=\"{p}\"}} {errors}", names::ERRORS);
        }
        for (name, help, get) in [
            (
                names::PULLED,
                "Object versions stored from the partner.",
                (|s| s.pulled) as fn(&crate::state::PartnerStatus) -> u64,
            ),
            (names::PUSHED, "Object versions sent to the partner.", |s| {
                s.pushed
            }),
            (
                names::QUARANTINED,
                "Objects from the partner quarantined.",
                |s| s.quarantined,
            ),
        ] {
            header(out, name, "counter", help);
            for (p, s, _) in &rows {
                let _ = writeln!(out, "{name}{{partner=\"{p}\"}} {}", get(s));
            }
        }
    }
}

fn secs(micros: i64) -> f64 {
    micros as f64 / 1e6
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value as the exposition format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use super::*;
    use crate::SyncOptions;
    use crate::state::SyncDb;

    #[test]
    fn renders_status_per_partner() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(kizuna_store::SqliteStore::open(dir.path()).unwrap());
        let db = Arc::new(SyncDb::open_in_memory().unwrap());
        let engine = SyncEngine::new(store, db.clone(), SyncOptions::default());
        db.run_started("dod").unwrap();
        db.run_finished("dod", None).unwrap();
        db.run_started("bad\"one").unwrap();
        db.run_finished("bad\"one", Some("refused")).unwrap();
        engine.count_error("bad\"one");
        let mut out = String::new();
        engine.render_metrics(&["dod".into(), "bad\"one".into()], &mut out);
        assert!(
            out.contains("kizuna_sync_last_success_timestamp_seconds{partner=\"dod\"} "),
            "{out}"
        );
        assert!(
            out.contains("kizuna_sync_lag_seconds{partner=\"dod\"} "),
            "{out}"
        );
        assert!(
            out.contains("kizuna_sync_last_run_failed{partner=\"dod\"} 0"),
            "{out}"
        );
        assert!(
            out.contains("kizuna_sync_last_run_failed{partner=\"bad\\\"one\"} 1"),
            "{out}"
        );
        assert!(
            out.contains("kizuna_sync_errors_total{partner=\"bad\\\"one\"} 1"),
            "{out}"
        );
        assert!(
            out.contains("kizuna_sync_pulled_objects_total{partner=\"dod\"} 0"),
            "{out}"
        );
        assert!(
            !out.contains("kizuna_sync_lag_seconds{partner=\"bad"),
            "never succeeded: {out}"
        );
        for line in out.lines().filter(|l| !l.starts_with('#')) {
            assert!(
                line.rsplit_once(' ')
                    .is_some_and(|(_, v)| v.parse::<f64>().is_ok()),
                "{line}"
            );
        }
    }
}
