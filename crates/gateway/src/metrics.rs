//! The gateway's Prometheus metrics: client requests by provider and final outcome, attempts by
//! provider and kind, upstream latency, and the event log's counters.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (count, bound) in self.counts.iter_mut().zip(BUCKETS) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }
}

/// Counters shared by every connection. One lock per update: the gateway's attempts are few next
/// to the network time each costs.
#[derive(Default)]
pub struct Metrics {
    /// (provider, outcome) → client requests answered.
    requests: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// (provider, kind) → attempts.
    attempts: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// provider → upstream latency.
    latency: Mutex<BTreeMap<String, Histogram>>,
    /// front door error code → requests turned away.
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    /// Stored idempotent answers replayed.
    replayed: AtomicU64,
}

/// Adds one to the count of `(provider, label)`; the provider's id is copied only the first time.
fn count(
    counts: &mut BTreeMap<(String, &'static str), u64>,
    (provider, label): (&str, &'static str),
) {
    match counts
        .iter_mut()
        .find(|((p, l), _)| p == provider && *l == label)
    {
        Some((_, n)) => *n += 1,
        None => {
            counts.insert((provider.to_owned(), label), 1);
        }
    }
}

/// The event log's counters, read when rendering.
pub struct EventCounters {
    /// Accepted into the queue.
    pub recorded: u64,
    /// Committed to the database.
    pub written: u64,
    /// Dropped because the queue was full.
    pub dropped: u64,
    /// Deleted because they were older than the retention.
    pub pruned: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Counters stay usable after a panic elsewhere: a count is never half-written.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Metrics {
    /// Counts a client request answered with `outcome` by `provider`.
    pub fn request(&self, provider: &str, outcome: &'static str) {
        count(&mut lock(&self.requests), (provider, outcome));
    }

    /// Counts one attempt and its latency.
    pub fn attempt(&self, provider: &str, kind: &'static str, elapsed: Duration) {
        count(&mut lock(&self.attempts), (provider, kind));
        let seconds = elapsed.as_secs_f64();
        let mut latency = lock(&self.latency);
        match latency.get_mut(provider) {
            Some(h) => h.observe(seconds),
            None => {
                let mut h = Histogram {
                    counts: vec![0; BUCKETS.len()],
                    ..Histogram::default()
                };
                h.observe(seconds);
                latency.insert(provider.to_owned(), h);
            }
        }
    }

    /// Counts a request the front door turned away with `code`.
    pub fn rejected(&self, code: &'static str) {
        *lock(&self.rejected).entry(code).or_default() += 1;
    }

    /// Counts a stored idempotent answer replayed.
    pub fn replayed(&self) {
        self.replayed.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self, events: &EventCounters) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        };
        counter(
            &mut out,
            "payerr_gateway_requests_total",
            "Client requests answered, by provider and final outcome.",
        );
        for ((provider, outcome), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "payerr_gateway_requests_total{{provider=\"{provider}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        counter(
            &mut out,
            "payerr_gateway_attempts_total",
            "Upstream attempts, by provider and kind (send, retry, failover, poll).",
        );
        for ((provider, kind), n) in lock(&self.attempts).iter() {
            let _ = writeln!(
                out,
                "payerr_gateway_attempts_total{{provider=\"{provider}\",kind=\"{kind}\"}} {n}"
            );
        }
        let name = "payerr_gateway_upstream_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Upstream attempt latency, by provider.\n# TYPE {name} histogram"
        );
        for (provider, h) in lock(&self.latency).iter() {
            for (bound, count) in BUCKETS.iter().zip(&h.counts) {
                let _ = writeln!(
                    out,
                    "{name}_bucket{{provider=\"{provider}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{provider=\"{provider}\",le=\"+Inf\"}} {}\n{name}_sum{{provider=\"{provider}\"}} {}\n{name}_count{{provider=\"{provider}\"}} {}",
                h.count, h.sum, h.count
            );
        }
        counter(
            &mut out,
            "payerr_gateway_rejected_total",
            "Requests the front door turned away, by error code.",
        );
        for (code, n) in lock(&self.rejected).iter() {
            let _ = writeln!(out, "payerr_gateway_rejected_total{{code=\"{code}\"}} {n}");
        }
        for (name, help, value) in [
            (
                "payerr_gateway_idempotent_replays_total",
                "Stored answers replayed for a repeated Idempotency-Key.",
                self.replayed.load(Ordering::Relaxed),
            ),
            (
                "payerr_gateway_events_recorded_total",
                "Events accepted for the database.",
                events.recorded,
            ),
            (
                "payerr_gateway_events_written_total",
                "Events committed to the database.",
                events.written,
            ),
            (
                "payerr_gateway_events_dropped_total",
                "Events dropped because the writer fell behind.",
                events.dropped,
            ),
            (
                "payerr_gateway_events_pruned_total",
                "Events deleted because they were older than event_retention_days.",
                events.pruned,
            ),
        ] {
            counter(&mut out, name, help);
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let m = Metrics::default();
        m.request("acme", "failed");
        m.attempt("acme", "send", Duration::from_millis(3));
        m.attempt("acme", "retry", Duration::from_millis(30));
        m.rejected("signature_invalid");
        m.replayed();
        let text = m.render(&EventCounters {
            recorded: 2,
            written: 1,
            dropped: 0,
            pruned: 5,
        });
        for line in [
            "payerr_gateway_requests_total{provider=\"acme\",outcome=\"failed\"} 1",
            "payerr_gateway_attempts_total{provider=\"acme\",kind=\"retry\"} 1",
            "payerr_gateway_upstream_seconds_bucket{provider=\"acme\",le=\"0.005\"} 1",
            "payerr_gateway_upstream_seconds_bucket{provider=\"acme\",le=\"0.05\"} 2",
            "payerr_gateway_upstream_seconds_count{provider=\"acme\"} 2",
            "payerr_gateway_events_written_total 1",
            "payerr_gateway_events_pruned_total 5",
            "payerr_gateway_rejected_total{code=\"signature_invalid\"} 1",
            "payerr_gateway_idempotent_replays_total 1",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }
}
