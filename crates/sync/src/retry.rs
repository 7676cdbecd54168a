//! Retries with exponential backoff and full jitter.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

use crate::error::{Error, Result};

/// How often and how patiently a failed request is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (at least 1).
    pub attempts: u32,
    /// Delay cap before the second attempt; doubles for each further one.
    pub base: Duration,
    /// Largest delay cap.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            base: Duration::from_millis(200),
            max: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempt + 1` (attempt counts from 1): uniformly random in
    /// `[0, min(max, base * 2^(attempt-1))]` ("full jitter"), so that many hubs retrying against
    /// one partner spread out instead of hammering it in lockstep.
    pub fn delay(&self, attempt: u32) -> Duration {
        let cap = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max);
        let micros = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rand::thread_rng().gen_range(0..=micros))
    }

    /// Runs `op` until it succeeds, fails with an error that is not retryable, or the attempts
    /// are used up; returns the last error then.
    pub async fn run<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let attempts = self.attempts.max(1);
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if attempt < attempts && e.is_retryable() => {
                    // A partner's Retry-After is honoured, within the policy's largest delay so
                    // that a hostile answer cannot park a sync run for hours.
                    let delay = match e.retry_after() {
                        Some(asked) => asked.min(self.max).max(self.delay(attempt)),
                        None => self.delay(attempt),
                    };
                    tracing::warn!(%what, attempt, ?delay, error = %e, "retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Turns a panicked or cancelled blocking task into an error.
pub(crate) fn joined<T>(r: std::result::Result<Result<T>, tokio::task::JoinError>) -> Result<T> {
    r.map_err(|e| Error::Task(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn delays_grow_and_stay_capped() {
        let p = RetryPolicy {
            attempts: 10,
            base: Duration::from_millis(100),
            max: Duration::from_millis(800),
        };
        for attempt in 1..=12 {
            let cap = Duration::from_millis(100 * (1 << (attempt - 1).min(3)));
            for _ in 0..50 {
                assert!(p.delay(attempt) <= cap, "attempt {attempt}");
            }
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn retries_only_retryable_errors() {
        let p = RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(10),
            max: Duration::from_millis(10),
        };
        let calls = AtomicU32::new(0);
        let r: Result<()> = p
            .run("t", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Error::Push("flaky".into()))
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        calls.store(0, Ordering::SeqCst);
        let r: Result<()> = p
            .run("t", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Error::Config("bad".into()))
            })
            .await;
        assert!(r.is_err());
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "configuration errors are not retried"
        );

        calls.store(0, Ordering::SeqCst);
        let r = p
            .run("t", || async {
                if calls.fetch_add(1, Ordering::SeqCst) < 1 {
                    Err(Error::Push("once".into()))
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(r.unwrap(), 7);
    }
}
