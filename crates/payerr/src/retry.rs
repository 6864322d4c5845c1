//! Retry and polling policy (SPEC §7): full-jitter exponential backoff, `Retry-After` wins, unknown
//! outcomes are polled and never re-submitted under a new key.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// Longest delay payerr will suggest from a `Retry-After` header: a day. Larger values are clamped so
/// that a hostile or broken header cannot park a caller forever.
const MAX_RETRY_AFTER_MS: u64 = 24 * 60 * 60 * 1000;

/// Backoff for retryable failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// First delay ceiling, in milliseconds.
    pub base_ms: u64,
    /// Largest delay ceiling, in milliseconds.
    pub cap_ms: u64,
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base_ms: 200,
            cap_ms: 10_000,
            max_attempts: 3,
        }
    }
}

impl RetryPolicy {
    /// Full-jitter delay before retry number `retry` (0 for the first retry): a uniform draw from
    /// `[0, min(cap, base * 2^retry)]`. `unit` is the caller's random number in `[0, 1)`, so that this
    /// library stays free of I/O and deterministic under test.
    pub fn backoff_ms(&self, retry: u32, unit: f64) -> u64 {
        let ceiling = self
            .base_ms
            .saturating_mul(1u64 << retry.min(32))
            .min(self.cap_ms);
        (ceiling as f64 * unit.clamp(0.0, 1.0)) as u64
    }

    /// Whether another attempt is allowed after `attempts` attempts.
    pub fn allows_attempt(&self, attempts: u32) -> bool {
        attempts < self.max_attempts
    }
}

/// Polling for unknown outcomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PollPolicy {
    /// Delay between two status queries, in milliseconds.
    pub interval_ms: u64,
    /// How long to poll before escalating to a person, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            interval_ms: 3_000,
            timeout_ms: 60_000,
        }
    }
}

/// Reads a `Retry-After` value: delay-seconds or an HTTP date. A date is measured from `date` (the
/// response's `Date` header) when given, else from `now`. Past dates give 0; nonsense gives `None`.
pub fn parse_retry_after(value: &str, date: Option<&str>, now: SystemTime) -> Option<u64> {
    let value = value.trim();
    if value.bytes().all(|b| b.is_ascii_digit()) && !value.is_empty() {
        let secs: u64 = value.parse().unwrap_or(u64::MAX);
        return Some(secs.saturating_mul(1000).min(MAX_RETRY_AFTER_MS));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let base = date
        .and_then(|d| httpdate::parse_http_date(d.trim()).ok())
        .unwrap_or(now);
    let delay = at.duration_since(base).unwrap_or(Duration::ZERO);
    Some((delay.as_millis().min(u128::from(MAX_RETRY_AFTER_MS))) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_up_to_the_cap_with_full_jitter() {
        let p = RetryPolicy {
            base_ms: 100,
            cap_ms: 1_000,
            max_attempts: 5,
        };
        assert_eq!(p.backoff_ms(0, 0.999_999), 99);
        assert_eq!(p.backoff_ms(2, 0.5), 200);
        assert_eq!(p.backoff_ms(10, 0.5), 500);
        assert_eq!(p.backoff_ms(u32::MAX, 1.0), 1_000);
        assert_eq!(p.backoff_ms(3, 0.0), 0);
        assert!(p.allows_attempt(4));
        assert!(!p.allows_attempt(5));
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(parse_retry_after("7", None, now), Some(7_000));
        assert_eq!(parse_retry_after(" 0 ", None, now), Some(0));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", None, now),
            Some(10_000)
        );
        // The response's Date header is the clock when present.
        assert_eq!(
            parse_retry_after(
                "Sun, 06 Nov 1994 08:49:47 GMT",
                Some("Sun, 06 Nov 1994 08:49:45 GMT"),
                now
            ),
            Some(2_000)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", None, now),
            Some(0)
        );
        assert_eq!(parse_retry_after("soon", None, now), None);
        assert_eq!(parse_retry_after("-3", None, now), None);
        assert_eq!(
            parse_retry_after("99999999999999999999999", None, now),
            Some(MAX_RETRY_AFTER_MS)
        );
    }
}
