//! Limits that keep one client from exhausting the server: a token-bucket [`RateLimiter`] with
//! bounded memory, and [`check_json_limits`], a scan of raw request bytes that refuses deep nesting
//! and huge strings before any JSON parser (recursive, allocating) sees them.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::StatusCode;

use crate::error::ApiError;

/// Per-key token buckets: each key may make `burst` requests at once and then `rate` per second.
///
/// Memory is bounded: at most `max_keys` buckets are tracked. When the table is full, buckets that
/// have refilled completely are dropped (they are indistinguishable from new ones); if none has,
/// the table is cleared, which can only happen when more than `max_keys` distinct keys were busy
/// within one refill period, and is logged.
#[derive(Debug)]
pub struct RateLimiter<K = String> {
    rate: f64,
    burst: f64,
    max_keys: usize,
    buckets: Mutex<HashMap<K, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// A limiter allowing `rate` requests per second with bursts of `burst` (at least 1) per key.
    /// A `rate` that is not a positive finite number disables limiting.
    pub fn new(rate: f64, burst: f64, max_keys: usize) -> Self {
        Self {
            rate,
            burst: if burst.is_finite() {
                burst.max(1.0)
            } else {
                1.0
            },
            max_keys: max_keys.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the limiter limits anything.
    pub fn enabled(&self) -> bool {
        self.rate.is_finite() && self.rate > 0.0
    }

    /// Takes one token from `key`'s bucket. `Err` carries how long until a token is available.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    /// Whether `key` has a token left, without taking it.
    pub fn would_allow(&self, key: &K) -> bool {
        if !self.enabled() {
            return true;
        }
        let now = Instant::now();
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets
            .get(key)
            .is_none_or(|b| self.refilled(b, now).tokens >= 1.0)
    }

    fn refilled(&self, bucket: &Bucket, now: Instant) -> Bucket {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        Bucket {
            tokens: (bucket.tokens + elapsed * self.rate).min(self.burst),
            updated: now,
        }
    }

    fn check_at(&self, key: &K, now: Instant) -> Result<(), Duration> {
        if !self.enabled() {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            buckets.retain(|_, b| self.refilled(b, now).tokens < self.burst);
            if buckets.len() >= self.max_keys {
                tracing::warn!(
                    max_keys = self.max_keys,
                    "rate limiter table full of active keys; starting afresh"
                );
                buckets.clear();
            }
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        *bucket = self.refilled(bucket, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }

    /// Number of buckets tracked (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// The 429 answer for a caller that must wait `retry_after`; `Retry-After` is in whole seconds,
/// rounded up and at least 1.
pub fn too_many_requests(retry_after: Duration) -> ApiError {
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let secs = secs.max(1);
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "Too many requests")
        .describe(format!(
            "request rate limit exceeded; retry in {secs} second(s)"
        ))
        .header(http::header::RETRY_AFTER, http::HeaderValue::from(secs))
}

/// Checks JSON text for nesting deeper than `max_depth` and strings (keys included) longer than
/// `max_string` bytes, as written (escape sequences count as their raw bytes), in one pass over
/// the raw bytes and without allocating.
///
/// It does not validate JSON; a parser still does that afterwards. It only guarantees the parser
/// is never handed input that would make it recurse deeply or allocate a huge string. Errors name
/// the limit and the byte offset where it was crossed: 400 for nesting, 413 for a string.
pub fn check_json_limits(body: &[u8], max_depth: usize, max_string: usize) -> Result<(), ApiError> {
    let mut depth = 0usize;
    let mut i = 0usize;
    while i < body.len() {
        match body[i] {
            b'{' | b'[' => {
                depth += 1;
                if depth > max_depth {
                    return Err(
                        ApiError::new(StatusCode::BAD_REQUEST, "JSON nested too deeply").describe(
                            format!(
                                "JSON nesting deeper than the limit of {max_depth} levels at byte \
                                 offset {i}"
                            ),
                        ),
                    );
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'"' => {
                let start = i;
                i = string_end(body, i + 1);
                // Content length excludes both quotes; an unterminated string runs to the end.
                let len = i.saturating_sub(start + 1);
                if len > max_string {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "JSON string too long",
                    )
                    .describe(format!(
                        "JSON string starting at byte offset {start} is longer than the limit of \
                         {max_string} bytes"
                    )));
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Index of the closing quote of a string whose content starts at `from`, or `body.len()`.
fn string_end(body: &[u8], mut from: usize) -> usize {
    while from < body.len() {
        match body[from..].iter().position(|&b| b == b'"' || b == b'\\') {
            None => return body.len(),
            Some(k) => {
                let at = from + k;
                if body[at] == b'"' {
                    return at;
                }
                from = at + 2;
            }
        }
    }
    body.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refuses_then_refills() {
        let rl: RateLimiter = RateLimiter::new(2.0, 3.0, 10);
        let t0 = Instant::now();
        let k = "a".to_owned();
        for _ in 0..3 {
            assert!(rl.check_at(&k, t0).is_ok());
        }
        let wait = rl.check_at(&k, t0).unwrap_err();
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500));
        assert!(rl.check_at(&k, t0 + Duration::from_millis(600)).is_ok());
        // Another key is independent.
        assert!(rl.check_at(&"b".to_owned(), t0).is_ok());
    }

    #[test]
    fn table_is_bounded() {
        let rl: RateLimiter<u32> = RateLimiter::new(1.0, 1.0, 100);
        let t0 = Instant::now();
        for k in 0..10_000 {
            let _ = rl.check_at(&k, t0);
            assert!(rl.tracked() <= 100);
        }
    }

    #[test]
    fn disabled_when_rate_not_positive() {
        let rl: RateLimiter = RateLimiter::new(0.0, 1.0, 10);
        for _ in 0..100 {
            assert!(rl.check(&"a".to_owned()).is_ok());
        }
    }

    #[test]
    fn retry_after_rounds_up() {
        let e = too_many_requests(Duration::from_millis(1500));
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.headers[0].1, "2");
        let e = too_many_requests(Duration::from_millis(1));
        assert_eq!(e.headers[0].1, "1");
    }

    #[test]
    fn json_depth() {
        assert!(check_json_limits(br#"{"a":[1,{"b":[]}]}"#, 4, 100).is_ok());
        let e = check_json_limits(br#"{"a":[1,{"b":[]}]}"#, 2, 100).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let d = e.description.unwrap();
        assert!(d.contains("limit of 2") && d.contains("offset 8"), "{d}");
        // Brackets inside strings do not count, escaped quotes do not end strings.
        assert!(check_json_limits(br#"{"a":"[[[[\"[[[["}"#, 1, 100).is_ok());
    }

    #[test]
    fn json_depth_100k_is_quick() {
        let body = vec![b'['; 100_000];
        let e = check_json_limits(&body, 64, 1 << 20).unwrap_err();
        assert!(e.description.unwrap().contains("offset 64"));
    }

    #[test]
    fn json_strings() {
        assert!(check_json_limits(br#"{"abcd":"efgh"}"#, 10, 4).is_ok());
        let e = check_json_limits(br#"{"abcd":"efghi"}"#, 10, 4).unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(e.description.unwrap().contains("offset 8"));
        // Escapes count as written.
        assert!(check_json_limits(br#"["\"\""]"#, 10, 4).is_ok());
        assert!(check_json_limits(br#"["\"\"\""]"#, 10, 4).is_err());
        // Unterminated string at the end.
        assert!(check_json_limits(br#"["abcdef"#, 10, 4).is_err());
        assert!(check_json_limits(br#"["ab\"#, 10, 4).is_ok());
        let mut big = b"{\"x\":\"".to_vec();
        big.extend(std::iter::repeat_n(b'a', 10 << 20));
        big.extend(b"\"}");
        assert!(check_json_limits(&big, 64, 1 << 20).is_err());
    }
}
