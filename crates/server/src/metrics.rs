//! Prometheus metrics, kept in memory and rendered as text on `GET /metrics`.
//!
//! Latency histograms are lock-free; the counters keyed by label values sit behind short mutexes
//! (one lock per request, one per batch for verdicts).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use payerr::{Category, Verdict};

use crate::routes::{Route, ROUTES};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS_S: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

/// Label of requests that matched no route (404 and 405), so unknown paths cannot grow the label set.
pub const UNMATCHED: &str = "unmatched";

/// The `route` label: the route's path template, or [`UNMATCHED`].
pub fn route_label(route: Option<Route>) -> &'static str {
    route.map_or(UNMATCHED, |r| r.spec().template)
}

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS_S.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS_S.iter().position(|&b| seconds <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }
}

/// The service's metrics.
#[derive(Debug)]
pub struct Metrics {
    /// (route label, status) → requests.
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    /// One histogram per route in [`ROUTES`] order, then one for unmatched requests.
    latency: Vec<Histogram>,
    /// dialect → category → verdicts. Keyed by dialect first so that counting looks the dialect up
    /// by its text, without cloning the verdict's `Arc` (a shared counter every request would touch).
    verdicts: Mutex<BTreeMap<Arc<str>, BTreeMap<Category, u64>>>,
    in_flight: AtomicI64,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Mutex::default(),
            latency: (0..=ROUTES.len()).map(|_| Histogram::default()).collect(),
            verdicts: Mutex::default(),
            in_flight: AtomicI64::new(0),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
        }
    }
}

/// A poisoned lock only means another request panicked mid-increment; the counts are still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Metrics {
    /// Counts a finished request under its route (`None`: it matched none).
    pub fn request(&self, route: Option<Route>, status: u16, elapsed: Duration) {
        *lock(&self.requests)
            .entry((route_label(route), status))
            .or_default() += 1;
        self.latency[route.map_or(ROUTES.len(), |r| r as usize)].observe(elapsed);
    }

    /// Counts verdicts by dialect and category.
    pub fn verdicts<'a>(&self, verdicts: impl IntoIterator<Item = &'a Verdict>) {
        let mut counts = lock(&self.verdicts);
        for v in verdicts {
            let by_category = match counts.get_mut(&*v.dialect) {
                Some(by_category) => by_category,
                None => counts.entry(Arc::clone(&v.dialect)).or_default(),
            };
            *by_category.entry(v.category).or_default() += 1;
        }
    }

    /// A request started (+1) or ended (-1).
    pub fn in_flight(&self, delta: i64) {
        self.in_flight.fetch_add(delta, Ordering::Relaxed);
    }

    /// Counts a catalog reload.
    pub fn reload(&self, ok: bool) {
        let counter = if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self, log_lines_dropped: u64) -> String {
        let mut out = String::with_capacity(8 * 1024);
        header(
            &mut out,
            "payerr_http_requests_total",
            "counter",
            "HTTP requests answered, by route template and status.",
        );
        for ((route, status), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "payerr_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        header(
            &mut out,
            "payerr_http_request_duration_seconds",
            "histogram",
            "Time from the request head to the answer, by route template.",
        );
        let labels = ROUTES.iter().map(|r| r.template).chain([UNMATCHED]);
        for (route, h) in labels.zip(&self.latency) {
            let mut cumulative = 0;
            for (bound, bucket) in BUCKETS_S.iter().zip(&h.buckets) {
                cumulative += bucket.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "payerr_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let count = h.count.load(Ordering::Relaxed);
            let sum = h.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "payerr_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}\n\
                 payerr_http_request_duration_seconds_sum{{route=\"{route}\"}} {sum}\n\
                 payerr_http_request_duration_seconds_count{{route=\"{route}\"}} {count}"
            );
        }
        header(
            &mut out,
            "payerr_verdicts_total",
            "counter",
            "Verdicts given, by dialect and category.",
        );
        for (dialect, by_category) in lock(&self.verdicts).iter() {
            for (category, n) in by_category {
                let _ = writeln!(
                    out,
                    "payerr_verdicts_total{{dialect=\"{}\",category=\"{category}\"}} {n}",
                    escape_label(dialect)
                );
            }
        }
        let gauges = [
            (
                "payerr_http_requests_in_flight",
                "gauge",
                "Requests being handled now.",
                self.in_flight.load(Ordering::Relaxed).to_string(),
            ),
            (
                "payerr_log_lines_dropped_total",
                "counter",
                "Log lines dropped because the log writer fell behind.",
                log_lines_dropped.to_string(),
            ),
        ];
        for (name, kind, help, value) in gauges {
            header(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        header(
            &mut out,
            "payerr_catalog_reloads_total",
            "counter",
            "Catalog reloads on SIGHUP, by result (a failed one keeps the previous catalogs).",
        );
        let _ = writeln!(
            out,
            "payerr_catalog_reloads_total{{result=\"ok\"}} {}\npayerr_catalog_reloads_total{{result=\"failed\"}} {}",
            self.reloads_ok.load(Ordering::Relaxed),
            self.reloads_failed.load(Ordering::Relaxed)
        );
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Dialect ids come from user catalogs: escape what the text format reserves.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_latency_are_rendered_cumulatively() {
        let m = Metrics::default();
        m.request(Some(Route::Healthz), 200, Duration::from_micros(50));
        m.request(Some(Route::Healthz), 200, Duration::from_millis(3));
        m.request(None, 404, Duration::from_micros(10));
        let text = m.render(2);
        assert!(text.contains("payerr_http_requests_total{route=\"/healthz\",status=\"200\"} 2"));
        assert!(text.contains("payerr_http_requests_total{route=\"unmatched\",status=\"404\"} 1"));
        assert!(text.contains(
            "payerr_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.0001\"} 1"
        ));
        assert!(text.contains(
            "payerr_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.005\"} 2"
        ));
        assert!(text.contains("payerr_http_request_duration_seconds_count{route=\"/healthz\"} 2"));
        assert!(text.contains("payerr_log_lines_dropped_total 2"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
