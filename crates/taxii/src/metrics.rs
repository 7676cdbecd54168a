//! Prometheus metrics, with every name defined once in [`names`], written in the text exposition
//! format by hand (no metrics framework: a few counters do not justify one).
//!
//! Label values come only from closed sets (route templates, HTTP methods, status codes, failure
//! reasons), never from what a client sends, so the number of series is bounded.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// The metric names, in one place.
pub mod names {
    /// Counter of requests answered, by `route` (template), `method` and `status`.
    pub const HTTP_REQUESTS: &str = "kizuna_http_requests_total";
    /// Histogram of request latency in seconds, by `route`.
    pub const HTTP_LATENCY: &str = "kizuna_http_request_duration_seconds";
    /// Counter of object versions stored through the TAXII API.
    pub const OBJECTS_STORED: &str = "kizuna_objects_stored_total";
    /// Counter of object versions served through the TAXII API.
    pub const OBJECTS_SERVED: &str = "kizuna_objects_served_total";
    /// Counter of read audit events given up because the store refused them at shutdown.
    pub const AUDIT_EVENTS_LOST: &str = "kizuna_audit_events_lost_total";
    /// Counter of reads that found the audit queue full and waited for room (back-pressure).
    pub const AUDIT_QUEUE_FULL: &str = "kizuna_audit_queue_full_total";
    /// Counter of failed authentications, by `reason`.
    pub const AUTH_FAILURES: &str = "kizuna_auth_failures_total";
    /// Counter of slow (argon2) password verifications actually run.
    pub const PASSWORD_VERIFICATIONS: &str = "kizuna_password_verifications_total";
    /// Counter of requests refused by a rate limit, by `limit` (`account` or `failed_logins`).
    pub const RATE_LIMITED: &str = "kizuna_rate_limited_total";
    /// Gauge of open client connections.
    pub const CONNECTIONS_OPEN: &str = "kizuna_connections_open";
    /// Counter of accepted client connections.
    pub const CONNECTIONS: &str = "kizuna_connections_total";
    /// Counter of connections dropped before serving, by `reason`.
    pub const CONNECTIONS_DROPPED: &str = "kizuna_connections_dropped_total";
}

/// Upper bounds of the latency histogram buckets, in seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// What is counted per route template: answers by method and status, and latency.
#[derive(Debug, Default)]
struct RouteStats {
    answers: BTreeMap<(&'static str, u16), u64>,
    latency: Histogram,
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The server's metrics. Shared through [`crate::AppState`]; every method is cheap and
/// thread-safe.
#[derive(Debug, Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<String, RouteStats>>,
    objects_stored: AtomicU64,
    objects_served: AtomicU64,
    audit_events_lost: AtomicU64,
    audit_queue_full: AtomicU64,
    auth_failures: Mutex<BTreeMap<&'static str, u64>>,
    password_verifications: AtomicU64,
    rate_limited: Mutex<BTreeMap<&'static str, u64>>,
    connections_open: AtomicI64,
    connections: AtomicU64,
    connections_dropped: Mutex<BTreeMap<&'static str, u64>>,
    extra: std::sync::OnceLock<ExtraMetrics>,
}

/// A renderer of further series (for example the federation status of `kizuna-sync`) appended
/// to [`Metrics::render`]'s output; it must write complete Prometheus text lines.
pub type ExtraMetricsFn = dyn Fn(&mut String) + Send + Sync;

struct ExtraMetrics(std::sync::Arc<ExtraMetricsFn>);

impl std::fmt::Debug for ExtraMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExtraMetrics")
    }
}

fn bump(map: &Mutex<BTreeMap<&'static str, u64>>, label: &'static str) {
    *map.lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(label)
        .or_default() += 1;
}

/// The label for an HTTP method: the standard ones by name, anything else as `other`.
pub fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::DELETE => "DELETE",
        http::Method::HEAD => "HEAD",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

impl Metrics {
    /// Fresh metrics, all zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one answered request: `route` is the matched route template (or `unmatched`).
    pub fn request(&self, route: &str, method: &http::Method, status: u16, latency: Duration) {
        let method = method_label(method);
        let secs = latency.as_secs_f64();
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        // Allocates only the first time a route is seen.
        let stats = match routes.get_mut(route) {
            Some(stats) => stats,
            None => routes.entry(route.to_owned()).or_default(),
        };
        *stats.answers.entry((method, status)).or_default() += 1;
        let h = &mut stats.latency;
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// Counts object versions stored (call after a successful add).
    pub fn objects_stored(&self, n: u64) {
        self.objects_stored.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts object versions served (call when a page is written).
    pub fn objects_served(&self, n: u64) {
        self.objects_served.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts read audit events that could not be written.
    pub fn audit_events_lost(&self, n: u64) {
        self.audit_events_lost.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a read that waited for room in the audit queue.
    pub fn audit_queue_full(&self) {
        self.audit_queue_full.fetch_add(1, Ordering::Relaxed);
    }

    /// How many reads waited for room in the audit queue so far.
    pub fn audit_queue_waits(&self) -> u64 {
        self.audit_queue_full.load(Ordering::Relaxed)
    }

    /// Counts a failed authentication.
    pub fn auth_failure(&self, reason: &'static str) {
        bump(&self.auth_failures, reason);
    }

    /// Counts a slow password verification.
    pub fn password_verification(&self) {
        self.password_verifications.fetch_add(1, Ordering::Relaxed);
    }

    /// How many slow password verifications ran so far.
    pub fn password_verifications(&self) -> u64 {
        self.password_verifications.load(Ordering::Relaxed)
    }

    /// Counts a request refused by rate limit `limit`.
    pub fn rate_limited(&self, limit: &'static str) {
        bump(&self.rate_limited, limit);
    }

    /// A connection was accepted and is now open.
    pub fn connection_opened(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    /// An open connection closed.
    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// A connection was dropped before it was served (limit, handshake failure or timeout).
    pub fn connection_dropped(&self, reason: &'static str) {
        bump(&self.connections_dropped, reason);
    }

    /// Sets the renderer of further series appended to [`Metrics::render`] (once; returns false
    /// if one was already set).
    pub fn set_extra(&self, render: std::sync::Arc<ExtraMetricsFn>) -> bool {
        self.extra.set(ExtraMetrics(render)).is_ok()
    }

    /// The metrics in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        header(
            &mut out,
            names::HTTP_REQUESTS,
            "counter",
            "HTTP requests answered.",
        );
        for (route, stats) in routes.iter() {
            let route = escape(route);
            for ((method, status), n) in &stats.answers {
                let _ = writeln!(
                    out,
                    "{}{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}",
                    names::HTTP_REQUESTS,
                );
            }
        }
        header(
            &mut out,
            names::HTTP_LATENCY,
            "histogram",
            "HTTP request latency in seconds.",
        );
        for (route, stats) in routes.iter() {
            let route = escape(route);
            let h = &stats.latency;
            for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{}_bucket{{route=\"{route}\",le=\"{bound}\"}} {}",
                    names::HTTP_LATENCY,
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "{}_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                names::HTTP_LATENCY,
                h.count
            );
            let _ = writeln!(
                out,
                "{}_sum{{route=\"{route}\"}} {}",
                names::HTTP_LATENCY,
                h.sum
            );
            let _ = writeln!(
                out,
                "{}_count{{route=\"{route}\"}} {}",
                names::HTTP_LATENCY,
                h.count
            );
        }
        drop(routes);
        scalar(
            &mut out,
            names::OBJECTS_STORED,
            "counter",
            "Object versions stored.",
            &self.objects_stored,
        );
        scalar(
            &mut out,
            names::OBJECTS_SERVED,
            "counter",
            "Object versions served.",
            &self.objects_served,
        );
        scalar(
            &mut out,
            names::AUDIT_EVENTS_LOST,
            "counter",
            "Read audit events lost (the store refused them at shutdown).",
            &self.audit_events_lost,
        );
        scalar(
            &mut out,
            names::AUDIT_QUEUE_FULL,
            "counter",
            "Reads that waited for room in the audit queue.",
            &self.audit_queue_full,
        );
        labelled(
            &mut out,
            names::AUTH_FAILURES,
            "Failed authentications.",
            "reason",
            &self.auth_failures,
        );
        scalar(
            &mut out,
            names::PASSWORD_VERIFICATIONS,
            "counter",
            "Argon2 password verifications run.",
            &self.password_verifications,
        );
        labelled(
            &mut out,
            names::RATE_LIMITED,
            "Requests refused by a rate limit.",
            "limit",
            &self.rate_limited,
        );
        header(
            &mut out,
            names::CONNECTIONS_OPEN,
            "gauge",
            "Open client connections.",
        );
        let _ = writeln!(
            out,
            "{} {}",
            names::CONNECTIONS_OPEN,
            self.connections_open.load(Ordering::Relaxed)
        );
        scalar(
            &mut out,
            names::CONNECTIONS,
            "counter",
            "Client connections accepted.",
            &self.connections,
        );
        labelled(
            &mut out,
            names::CONNECTIONS_DROPPED,
            "Connections dropped before being served.",
            "reason",
            &self.connections_dropped,
        );
        if let Some(extra) = self.extra.get() {
            (extra.0)(&mut out);
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn scalar(out: &mut String, name: &str, kind: &str, help: &str, value: &AtomicU64) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
}

fn labelled(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    map: &Mutex<BTreeMap<&'static str, u64>>,
) {
    header(out, name, "counter", help);
    for (value, n) in map.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {n}", escape(value));
    }
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
    use super::*;

    #[test]
    fn renders_every_family() {
        let m = Metrics::new();
        m.request(
            "/taxii2/",
            &http::Method::GET,
            200,
            Duration::from_millis(3),
        );
        m.request(
            "/taxii2/",
            &http::Method::GET,
            200,
            Duration::from_millis(30),
        );
        m.objects_stored(5);
        m.objects_served(7);
        m.audit_events_lost(2);
        m.audit_queue_full();
        m.auth_failure("bad_password");
        m.rate_limited("account");
        m.connection_opened();
        let text = m.render();
        assert!(text.contains(
            "kizuna_http_requests_total{route=\"/taxii2/\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "kizuna_http_request_duration_seconds_bucket{route=\"/taxii2/\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "kizuna_http_request_duration_seconds_bucket{route=\"/taxii2/\",le=\"+Inf\"} 2"
        ));
        assert!(text.contains("kizuna_objects_stored_total 5"));
        assert!(text.contains("kizuna_objects_served_total 7"));
        assert!(text.contains("kizuna_audit_events_lost_total 2"));
        assert!(text.contains("kizuna_audit_queue_full_total 1"));
        assert!(text.contains("kizuna_auth_failures_total{reason=\"bad_password\"} 1"));
        assert!(text.contains("kizuna_rate_limited_total{limit=\"account\"} 1"));
        assert!(text.contains("kizuna_connections_open 1"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(
                line.rsplit_once(' ')
                    .is_some_and(|(_, v)| v.parse::<f64>().is_ok()),
                "{line}"
            );
        }
    }

    #[test]
    fn label_escaping() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
