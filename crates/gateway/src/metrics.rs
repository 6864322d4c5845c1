//! The gateway's Prometheus metrics: client requests by provider and final outcome, attempts by
//! provider and kind, upstream latency, and the event log's counters.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use payerr_events::EventLog;
use payerr_server::listener::{cores, current_worker};

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS.len()],
            sum: 0.0,
            count: 0,
        }
    }
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

    fn add(&mut self, other: &Histogram) {
        for (count, more) in self.counts.iter_mut().zip(&other.counts) {
            *count += more;
        }
        self.sum += other.sum;
        self.count += other.count;
    }
}

/// The gateway's counters, kept per worker thread and added up when rendered.
///
/// Every request updates them. One set shared by the workers would pass its locks and maps from
/// core to core on every request (and make one worker wait for another now and then); with a set
/// per worker, each lock is only ever taken by its own thread, except by a scrape of `/metrics`.
pub struct Metrics {
    /// One per worker thread, plus one (the first) for callers off the workers.
    shards: Box<[Padded<Mutex<Shard>>]>,
    /// Stored idempotent answers replayed.
    replayed: AtomicU64,
}

/// Aligned to its own cache lines, so that two workers' shards never share one.
#[repr(align(128))]
#[derive(Default)]
struct Padded<T>(T);

/// One worker's counts.
#[derive(Default)]
struct Shard {
    /// (provider, outcome) → client requests answered.
    requests: BTreeMap<(String, &'static str), u64>,
    /// (provider, kind) → attempts.
    attempts: BTreeMap<(String, &'static str), u64>,
    /// provider → upstream latency.
    latency: BTreeMap<String, Histogram>,
    /// error code → requests turned away before forwarding.
    rejected: BTreeMap<&'static str, u64>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            shards: (0..=cores()).map(|_| Padded::default()).collect(),
            replayed: AtomicU64::new(0),
        }
    }
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

/// The event log's counters at one moment: rendered in `/metrics`, compared by the alarm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventCounters {
    /// Accepted into the queue.
    pub recorded: u64,
    /// Committed to the database.
    pub written: u64,
    /// Dropped because the queue was full.
    pub dropped: u64,
    /// Deleted because they were older than the retention.
    pub pruned: u64,
    /// Commits the database refused: of events (tried once more) or of retention deletions.
    pub write_errors: u64,
    /// Given up after their batch failed to commit twice.
    pub lost: u64,
}

impl EventCounters {
    /// Reads them off `events`.
    pub fn of(events: &EventLog) -> EventCounters {
        EventCounters {
            recorded: events.recorded(),
            written: events.written(),
            dropped: events.dropped(),
            pruned: events.pruned(),
            write_errors: events.write_errors(),
            lost: events.lost(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Counters stay usable after a panic elsewhere: a count is never half-written.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Metrics {
    /// The calling worker's counts.
    fn shard(&self) -> std::sync::MutexGuard<'_, Shard> {
        let own = current_worker().and_then(|worker| self.shards.get(worker + 1));
        lock(&own.unwrap_or(&self.shards[0]).0)
    }

    /// All workers' counts added up.
    fn total(&self) -> Shard {
        let mut total = Shard::default();
        for shard in self.shards.iter() {
            let shard = lock(&shard.0);
            for (key, n) in &shard.requests {
                *total.requests.entry(key.clone()).or_default() += n;
            }
            for (key, n) in &shard.attempts {
                *total.attempts.entry(key.clone()).or_default() += n;
            }
            for (provider, h) in &shard.latency {
                total.latency.entry(provider.clone()).or_default().add(h);
            }
            for (code, n) in &shard.rejected {
                *total.rejected.entry(code).or_default() += n;
            }
        }
        total
    }

    /// Counts a client request answered with `outcome` by `provider`.
    pub fn request(&self, provider: &str, outcome: &'static str) {
        count(&mut self.shard().requests, (provider, outcome));
    }

    /// Counts one attempt and its latency.
    pub fn attempt(&self, provider: &str, kind: &'static str, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let mut shard = self.shard();
        count(&mut shard.attempts, (provider, kind));
        match shard.latency.get_mut(provider) {
            Some(h) => h.observe(seconds),
            None => {
                let mut h = Histogram::default();
                h.observe(seconds);
                shard.latency.insert(provider.to_owned(), h);
            }
        }
    }

    /// Counts a request turned away with `code` before anything was forwarded.
    pub fn rejected(&self, code: &'static str) {
        *self.shard().rejected.entry(code).or_default() += 1;
    }

    /// Counts a stored idempotent answer replayed.
    pub fn replayed(&self) {
        self.replayed.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self, events: &EventCounters) -> String {
        let total = self.total();
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        };
        counter(
            &mut out,
            "payerr_gateway_requests_total",
            "Client requests answered, by provider and final outcome.",
        );
        for ((provider, outcome), n) in &total.requests {
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
        for ((provider, kind), n) in &total.attempts {
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
        for (provider, h) in &total.latency {
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
            "Requests turned away before anything was forwarded, by error code.",
        );
        for (code, n) in &total.rejected {
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
                "payerr_gateway_events_lost_total",
                "Events given up because the database refused their batch twice.",
                events.lost,
            ),
            (
                "payerr_gateway_event_write_errors_total",
                "Commits the event database refused (disk full, I/O error, lock held too long), of events or of retention deletions.",
                events.write_errors,
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
        let counters = EventCounters {
            recorded: 2,
            written: 1,
            dropped: 0,
            pruned: 5,
            write_errors: 3,
            lost: 7,
        };
        assert_renders(
            &m,
            &counters,
            &[
                "payerr_gateway_requests_total{provider=\"acme\",outcome=\"failed\"} 1",
                "payerr_gateway_attempts_total{provider=\"acme\",kind=\"retry\"} 1",
                "payerr_gateway_upstream_seconds_bucket{provider=\"acme\",le=\"0.005\"} 1",
                "payerr_gateway_upstream_seconds_bucket{provider=\"acme\",le=\"0.05\"} 2",
                "payerr_gateway_upstream_seconds_count{provider=\"acme\"} 2",
                "payerr_gateway_events_written_total 1",
                "payerr_gateway_events_pruned_total 5",
                "payerr_gateway_event_write_errors_total 3",
                "payerr_gateway_events_lost_total 7",
                "payerr_gateway_rejected_total{code=\"signature_invalid\"} 1",
                "payerr_gateway_idempotent_replays_total 1",
            ],
        );
    }

    /// Asserts that `m` renders every line of `lines`.
    fn assert_renders(m: &Metrics, counters: &EventCounters, lines: &[&str]) {
        let text = m.render(counters);
        for line in lines {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }

    #[test]
    fn every_worker_s_counts_are_added_up() {
        let m = Metrics::default();
        m.attempt("acme", "send", Duration::from_millis(3));
        m.request("acme", "succeeded");
        // As a worker thread would: its own shard.
        let worker = &m.shards[1].0;
        {
            let mut shard = lock(worker);
            count(&mut shard.attempts, ("acme", "send"));
            count(&mut shard.requests, ("acme", "succeeded"));
            count(&mut shard.requests, ("bank", "failed"));
            let mut h = Histogram::default();
            h.observe(0.03);
            shard.latency.insert("acme".to_owned(), h);
            shard.rejected.insert("rate_limited", 2);
        }
        let counters = EventCounters::default();
        assert_renders(
            &m,
            &counters,
            &[
                "payerr_gateway_requests_total{provider=\"acme\",outcome=\"succeeded\"} 2",
                "payerr_gateway_requests_total{provider=\"bank\",outcome=\"failed\"} 1",
                "payerr_gateway_attempts_total{provider=\"acme\",kind=\"send\"} 2",
                "payerr_gateway_upstream_seconds_bucket{provider=\"acme\",le=\"0.005\"} 1",
                "payerr_gateway_upstream_seconds_bucket{provider=\"acme\",le=\"0.05\"} 2",
                "payerr_gateway_upstream_seconds_count{provider=\"acme\"} 2",
                "payerr_gateway_rejected_total{code=\"rate_limited\"} 2",
            ],
        );
        assert_eq!(std::mem::align_of::<Padded<Mutex<Shard>>>(), 128);
    }
}
