//! `payerr report`'s numbers: pure queries over the event database, read-only, in one read
//! transaction (a consistent snapshot while the gateway keeps writing). The CLI only prints them.
//!
//! Definitions (docs/report.md):
//! - a *request* is a distinct `request_id` among the window's attempts; its *final attempt* is its
//!   highest attempt number in the window, and the request's final outcome is that attempt's outcome
//!   (a request still in flight counts with its latest attempt);
//! - the *approval rate* is succeeded / (succeeded + failed) final outcomes: `unknown` and `pending`
//!   requests are not decided yet, so they are left out of the rate and shown as their own counts;
//! - per provider, requests count where their final attempt went; attempts count where they went;
//! - latency percentiles are nearest-rank over attempt latencies (timeouts included);
//! - top codes count attempts that did not succeed.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rusqlite::{named_params, Connection, Row};
use serde::Serialize;

use crate::schema;

/// Attempts with `from_ms <= at_ms <= to_ms` (Unix milliseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    /// Start of the window, inclusive.
    pub from_ms: i64,
    /// End of the window, inclusive (the time the report was made).
    pub to_ms: i64,
}

impl Window {
    /// The `since` before `now_ms`, up to `now_ms`.
    pub fn last(since: Duration, now_ms: i64) -> Window {
        let since = i64::try_from(since.as_millis()).unwrap_or(i64::MAX);
        Window {
            from_ms: now_ms.saturating_sub(since),
            to_ms: now_ms,
        }
    }
}

/// Parses `--since`: a positive whole number followed by `s`, `m`, `h` or `d` (`30s`, `15m`, `24h`,
/// `7d`).
pub fn parse_since(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!(
            "invalid duration {text:?}: expected a positive number followed by s, m, h or d \
             (e.g. 30s, 15m, 24h, 7d)"
        )
    };
    let text = text.trim();
    let split = text.len().saturating_sub(1);
    let (number, unit) = (text.get(..split).unwrap_or(""), text.get(split..));
    let seconds_per_unit = match unit {
        Some("s") => 1,
        Some("m") => 60,
        Some("h") => 3600,
        Some("d") => 86_400,
        _ => return Err(invalid()),
    };
    // `u64::from_str` accepts a leading `+`; a duration is plain digits.
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    match number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(seconds_per_unit))
    {
        Some(0) | None => Err(invalid()),
        Some(seconds) => Ok(Duration::from_secs(seconds)),
    }
}

/// Everything `payerr report` shows. Field names are the JSON output (docs/report.md).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The data directory read.
    pub data_dir: String,
    /// The attempts counted.
    pub window: Window,
    /// Time of the most recent event in the whole database, in or out of the window: tells whether
    /// the gateway is writing at all.
    pub last_event_at_ms: Option<i64>,
    /// All providers together.
    pub totals: Counts,
    /// One entry per provider with attempts in the window, by provider id.
    pub providers: Vec<ProviderReport>,
    /// Attempts per provider and category, by provider, then most attempts first.
    pub categories: Vec<CategoryCount>,
    /// The 10 most frequent codes of attempts that did not succeed, most frequent first.
    pub top_codes: Vec<CodeCount>,
    /// Failovers by the provider failed over from and the one failed over to, most first.
    pub failovers: Vec<FailoverCount>,
}

/// Request and attempt counts, for all providers or one.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Counts {
    /// Client requests (distinct request ids).
    pub requests: u64,
    /// Attempts of any kind.
    pub attempts: u64,
    /// Requests by final outcome.
    pub outcomes: Outcomes,
    /// succeeded / (succeeded + failed); `None` when no request is decided.
    pub approval_rate: Option<f64>,
    /// Attempts of kind `retry`.
    pub retries: u64,
    /// Attempts of kind `failover`.
    pub failovers: u64,
    /// Attempts of kind `poll`.
    pub polls: u64,
    /// Attempts that got no HTTP response (timeout, connection error).
    pub no_response: u64,
    /// Median attempt latency in microseconds (nearest rank); `None` without attempts.
    pub latency_p50_us: Option<u64>,
    /// 99th percentile attempt latency in microseconds (nearest rank); `None` without attempts.
    pub latency_p99_us: Option<u64>,
}

/// Requests by the outcome of their final attempt.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Outcomes {
    /// Final outcome `succeeded`.
    pub succeeded: u64,
    /// Final outcome `failed`.
    pub failed: u64,
    /// Final outcome `unknown`: the provider may or may not have executed it.
    pub unknown: u64,
    /// Final outcome `pending`: still processing at the provider.
    pub pending: u64,
}

/// One provider's counts.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProviderReport {
    /// Provider id.
    pub provider: String,
    /// Its counts; requests are those whose final attempt went to this provider.
    #[serde(flatten)]
    pub counts: Counts,
}

/// Attempts of one provider in one category.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CategoryCount {
    /// Provider id.
    pub provider: String,
    /// Category (SPEC §2).
    pub category: String,
    /// Attempts.
    pub attempts: u64,
}

/// Attempts that ended with one code at one provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CodeCount {
    /// Canonical code.
    pub code: String,
    /// The provider's own code, if it sent one.
    pub provider_code: Option<String>,
    /// Provider id.
    pub provider: String,
    /// Attempts.
    pub attempts: u64,
}

/// Failovers between two providers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailoverCount {
    /// The provider of the attempt before the failover; `None` if that attempt was not recorded.
    pub from: Option<String>,
    /// The provider failed over to.
    pub to: String,
    /// Failover attempts.
    pub attempts: u64,
}

/// How many codes `top_codes` lists.
const TOP_CODES: u32 = 10;

/// Reads the report of `window` from `data_dir/events.sqlite3`, read-only.
///
/// Errors: the directory does not exist, holds no database (the gateway never ran with it), or the
/// file is not a payerr event database; each names the path.
pub fn read_report(data_dir: &Path, window: Window) -> Result<Report, String> {
    let conn = schema::open_existing(data_dir)?;
    let fail = |e: rusqlite::Error| format!("{}: {e}", schema::db_path(data_dir).display());
    // One read transaction: every number comes from the same snapshot.
    let tx = conn.unchecked_transaction().map_err(fail)?;
    let mut report = query(&tx, window).map_err(fail)?;
    report.data_dir = data_dir.display().to_string();
    Ok(report)
}

fn query(conn: &Connection, window: Window) -> rusqlite::Result<Report> {
    let mut providers: BTreeMap<String, ProviderReport> = BTreeMap::new();
    let attempts = rows(
        conn,
        window,
        "SELECT provider, count(*), sum(kind = 'retry'), sum(kind = 'failover'),
                sum(kind = 'poll'), sum(http_status IS NULL)
         FROM events WHERE at_ms BETWEEN :from AND :to GROUP BY provider",
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                Counts {
                    attempts: r.get(1)?,
                    retries: r.get(2)?,
                    failovers: r.get(3)?,
                    polls: r.get(4)?,
                    no_response: r.get(5)?,
                    ..Counts::default()
                },
            ))
        },
    )?;
    for (provider, mut counts) in attempts {
        counts.latency_p50_us = percentile(conn, window, Some(&provider), counts.attempts, 50)?;
        counts.latency_p99_us = percentile(conn, window, Some(&provider), counts.attempts, 99)?;
        providers.insert(provider.clone(), ProviderReport { provider, counts });
    }
    // The final attempt of each request: highest attempt number, then latest, then last written.
    let finals = rows(
        conn,
        window,
        "SELECT provider, outcome, count(*) FROM (
             SELECT provider, outcome, row_number() OVER (
                 PARTITION BY request_id ORDER BY attempt DESC, at_ms DESC, id DESC) AS rank
             FROM events WHERE at_ms BETWEEN :from AND :to)
         WHERE rank = 1 GROUP BY provider, outcome",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?)),
    )?;
    for (provider, outcome, n) in finals {
        if let Some(p) = providers.get_mut(&provider) {
            p.counts.add_final(&outcome, n);
        }
    }
    let mut totals = Counts::default();
    for p in providers.values_mut() {
        p.counts.approval_rate = p.counts.outcomes.approval_rate();
        totals.add(&p.counts);
    }
    totals.approval_rate = totals.outcomes.approval_rate();
    totals.latency_p50_us = percentile(conn, window, None, totals.attempts, 50)?;
    totals.latency_p99_us = percentile(conn, window, None, totals.attempts, 99)?;
    Ok(Report {
        data_dir: String::new(),
        window,
        last_event_at_ms: conn.query_row("SELECT max(at_ms) FROM events", [], |r| r.get(0))?,
        totals,
        providers: providers.into_values().collect(),
        categories: rows(
            conn,
            window,
            "SELECT provider, category, count(*) AS n FROM events
             WHERE at_ms BETWEEN :from AND :to
             GROUP BY provider, category ORDER BY provider, n DESC, category",
            |r| {
                Ok(CategoryCount {
                    provider: r.get(0)?,
                    category: r.get(1)?,
                    attempts: r.get(2)?,
                })
            },
        )?,
        top_codes: rows(
            conn,
            window,
            &format!(
                "SELECT code, provider_code, provider, count(*) AS n FROM events
                 WHERE at_ms BETWEEN :from AND :to AND outcome <> 'succeeded'
                 GROUP BY code, provider_code, provider
                 ORDER BY n DESC, provider, code, provider_code LIMIT {TOP_CODES}"
            ),
            |r| {
                Ok(CodeCount {
                    code: r.get(0)?,
                    provider_code: r.get(1)?,
                    provider: r.get(2)?,
                    attempts: r.get(3)?,
                })
            },
        )?,
        // The attempt before a failover may lie before the window: it is looked up without one.
        failovers: rows(
            conn,
            window,
            "SELECT (SELECT p.provider FROM events p
                     WHERE p.request_id = e.request_id AND p.attempt < e.attempt
                     ORDER BY p.attempt DESC, p.id DESC LIMIT 1) AS origin,
                    e.provider, count(*) AS n
             FROM events e WHERE e.at_ms BETWEEN :from AND :to AND e.kind = 'failover'
             GROUP BY origin, e.provider ORDER BY n DESC, origin, e.provider",
            |r| {
                Ok(FailoverCount {
                    from: r.get(0)?,
                    to: r.get(1)?,
                    attempts: r.get(2)?,
                })
            },
        )?,
    })
}

/// The rows of a query over the window (parameters `:from` and `:to`).
fn rows<T>(
    conn: &Connection,
    window: Window,
    sql: &str,
    map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(
        named_params! {":from": window.from_ms, ":to": window.to_ms},
        map,
    )?;
    rows.collect()
}

/// The nearest-rank `p`th percentile of the window's attempt latencies (`n` of them), of one provider
/// or all. SQLite sorts, so memory stays bounded however many attempts there are.
fn percentile(
    conn: &Connection,
    window: Window,
    provider: Option<&str>,
    n: u64,
    p: u64,
) -> rusqlite::Result<Option<u64>> {
    let Some(rank) = nearest_rank(p, n) else {
        return Ok(None);
    };
    let mut stmt = conn.prepare(
        "SELECT latency_us FROM events
         WHERE at_ms BETWEEN :from AND :to AND (:provider IS NULL OR provider = :provider)
         ORDER BY latency_us LIMIT 1 OFFSET :offset",
    )?;
    let mut rows = stmt.query(named_params! {
        ":provider": provider,
        ":from": window.from_ms,
        ":to": window.to_ms,
        ":offset": rank - 1,
    })?;
    rows.next()?.map(|r| r.get(0)).transpose()
}

/// The 1-based rank of the `p`th percentile among `n` sorted values: ⌈p·n/100⌉, at least 1; `None`
/// when there are no values.
fn nearest_rank(p: u64, n: u64) -> Option<u64> {
    (n > 0).then(|| (p.saturating_mul(n).div_ceil(100)).clamp(1, n))
}

impl Outcomes {
    /// succeeded / (succeeded + failed).
    fn approval_rate(&self) -> Option<f64> {
        let decided = self.succeeded + self.failed;
        (decided > 0).then(|| self.succeeded as f64 / decided as f64)
    }
}

impl Counts {
    /// Counts `n` requests whose final outcome is `outcome` (as stored).
    fn add_final(&mut self, outcome: &str, n: u64) {
        let o = &mut self.outcomes;
        let slot = match outcome {
            "succeeded" => &mut o.succeeded,
            "failed" => &mut o.failed,
            "pending" => &mut o.pending,
            // A value this build does not know is not a decision either.
            _ => &mut o.unknown,
        };
        *slot += n;
        self.requests += n;
    }

    /// Adds another set of counts (the approval rate is computed afterwards).
    fn add(&mut self, other: &Counts) {
        self.requests += other.requests;
        self.attempts += other.attempts;
        self.outcomes.succeeded += other.outcomes.succeeded;
        self.outcomes.failed += other.outcomes.failed;
        self.outcomes.unknown += other.outcomes.unknown;
        self.outcomes.pending += other.outcomes.pending;
        self.retries += other.retries;
        self.failovers += other.failovers;
        self.polls += other.polls;
        self.no_response += other.no_response;
    }
}

#[cfg(test)]
mod tests {
    use payerr::{Category, Outcome};

    use super::*;
    use crate::testutil::{event, Scratch};
    use crate::{AttemptKind, Event, EventLog, EventLogOptions};

    /// One attempt of the known data set.
    #[allow(clippy::too_many_arguments)]
    fn attempt(
        at_ms: i64,
        request: &str,
        provider: &str,
        n: u32,
        kind: AttemptKind,
        verdict: (Outcome, Category, &str, Option<&str>),
        http_status: Option<u16>,
        latency_us: u64,
    ) -> Event {
        let (outcome, category, code, provider_code) = verdict;
        Event {
            kind,
            outcome,
            category,
            code: code.to_owned(),
            provider_code: provider_code.map(str::to_owned),
            http_status,
            latency_us,
            ..event(at_ms, request, provider, n)
        }
    }

    const APPROVED: (Outcome, Category, &str, Option<&str>) = (
        Outcome::Succeeded,
        Category::Approved,
        "approved",
        Some("2000"),
    );
    const UNAVAILABLE: (Outcome, Category, &str, Option<&str>) = (
        Outcome::Failed,
        Category::ProviderUnavailable,
        "service_unavailable",
        Some("5003"),
    );

    fn declined(provider_code: &str) -> (Outcome, Category, &str, Option<&str>) {
        (
            Outcome::Failed,
            Category::Declined,
            "do_not_honor",
            Some(provider_code),
        )
    }

    /// Six requests in the window [1000, 2000] and one on each side of it.
    fn known_events() -> Vec<Event> {
        use AttemptKind::*;
        let timeout = (Outcome::Unknown, Category::OutcomeUnknown, "timeout", None);
        let pending = (Outcome::Pending, Category::Pending, "pending", Some("1000"));
        let gateway_timeout = (
            Outcome::Unknown,
            Category::OutcomeUnknown,
            "gateway_timeout",
            None,
        );
        vec![
            attempt(500, "r0", "acme", 1, Send, APPROVED, Some(200), 1),
            attempt(1000, "r1", "acme", 1, Send, APPROVED, Some(200), 100),
            attempt(
                1100,
                "r2",
                "acme",
                1,
                Send,
                declined("6001"),
                Some(200),
                200,
            ),
            attempt(1200, "r3", "acme", 1, Send, UNAVAILABLE, Some(503), 300),
            attempt(1300, "r3", "acme", 2, Retry, UNAVAILABLE, Some(503), 400),
            attempt(1400, "r3", "beta", 3, Failover, APPROVED, Some(200), 50),
            attempt(1500, "r4", "acme", 1, Send, timeout, None, 10_000),
            attempt(1600, "r4", "acme", 2, Poll, pending, Some(200), 500),
            attempt(1700, "r5", "beta", 1, Send, gateway_timeout, Some(504), 700),
            attempt(2000, "r6", "beta", 1, Send, declined("05"), Some(402), 60),
            attempt(2001, "r7", "beta", 1, Send, declined("05"), Some(402), 60),
        ]
    }

    fn database(name: &str, events: Vec<Event>) -> Scratch {
        let dir = Scratch::new(name);
        let log = EventLog::open(dir.path(), EventLogOptions::default()).expect("opens");
        for e in events {
            log.record(e);
        }
        log.close().expect("writes");
        dir
    }

    fn counts(
        requests: u64,
        attempts: u64,
        outcomes: [u64; 4],
        kinds: [u64; 4],
        latency: (Option<u64>, Option<u64>),
    ) -> Counts {
        let [succeeded, failed, unknown, pending] = outcomes;
        let [retries, failovers, polls, no_response] = kinds;
        let outcomes = Outcomes {
            succeeded,
            failed,
            unknown,
            pending,
        };
        Counts {
            requests,
            attempts,
            approval_rate: outcomes.approval_rate(),
            outcomes,
            retries,
            failovers,
            polls,
            no_response,
            latency_p50_us: latency.0,
            latency_p99_us: latency.1,
        }
    }

    #[test]
    fn aggregates_the_window_exactly() {
        let dir = database("known", known_events());
        let window = Window {
            from_ms: 1000,
            to_ms: 2000,
        };
        let report = read_report(dir.path(), window).expect("reads");
        assert_eq!(report.window, window);
        assert_eq!(report.last_event_at_ms, Some(2001));
        // All latencies: 50 60 100 200 300 400 500 700 10000, ranks 5 and 9.
        let latency = (Some(300), Some(10_000));
        assert_eq!(
            report.totals,
            counts(6, 9, [2, 2, 1, 1], [1, 1, 1, 1], latency)
        );
        assert_eq!(report.totals.approval_rate, Some(0.5));
        let acme = &report.providers[0];
        assert_eq!(acme.provider, "acme");
        // Sorted latencies 100 200 300 400 500 10000: ranks ⌈0.5·6⌉ = 3 and ⌈0.99·6⌉ = 6.
        let latency = (Some(300), Some(10_000));
        assert_eq!(
            acme.counts,
            counts(3, 6, [1, 1, 0, 1], [1, 0, 1, 1], latency)
        );
        let beta = &report.providers[1];
        assert_eq!(beta.provider, "beta");
        let latency = (Some(60), Some(700));
        assert_eq!(
            beta.counts,
            counts(3, 3, [1, 1, 1, 0], [0, 1, 0, 0], latency)
        );
        assert_eq!(report.providers.len(), 2);

        let categories: Vec<(&str, &str, u64)> = report
            .categories
            .iter()
            .map(|c| (c.provider.as_str(), c.category.as_str(), c.attempts))
            .collect();
        assert_eq!(
            categories,
            [
                ("acme", "provider_unavailable", 2),
                ("acme", "approved", 1),
                ("acme", "declined", 1),
                ("acme", "outcome_unknown", 1),
                ("acme", "pending", 1),
                ("beta", "approved", 1),
                ("beta", "declined", 1),
                ("beta", "outcome_unknown", 1),
            ]
        );
        let codes: Vec<(&str, Option<&str>, &str, u64)> = report
            .top_codes
            .iter()
            .map(|c| {
                let pc = c.provider_code.as_deref();
                (c.code.as_str(), pc, c.provider.as_str(), c.attempts)
            })
            .collect();
        assert_eq!(
            codes,
            [
                ("service_unavailable", Some("5003"), "acme", 2),
                ("do_not_honor", Some("6001"), "acme", 1),
                ("pending", Some("1000"), "acme", 1),
                ("timeout", None, "acme", 1),
                ("do_not_honor", Some("05"), "beta", 1),
                ("gateway_timeout", None, "beta", 1),
            ]
        );
        assert_eq!(
            report.failovers,
            [FailoverCount {
                from: Some("acme".to_owned()),
                to: "beta".to_owned(),
                attempts: 1
            }]
        );
        assert_eq!(report.data_dir, dir.path().display().to_string());
    }

    #[test]
    fn the_json_fields_are_the_documented_ones() {
        let dir = database("json", known_events());
        let window = Window {
            from_ms: 1000,
            to_ms: 2000,
        };
        let report = read_report(dir.path(), window).expect("reads");
        let json = serde_json::to_value(&report).expect("serializes");
        let acme = &json["providers"][0];
        for key in [
            "provider",
            "requests",
            "attempts",
            "outcomes",
            "approval_rate",
            "retries",
            "failovers",
            "polls",
            "no_response",
            "latency_p50_us",
            "latency_p99_us",
        ] {
            assert!(acme.get(key).is_some(), "providers[].{key}");
        }
        assert_eq!(json["totals"]["outcomes"]["pending"], 1);
        assert_eq!(json["window"]["from_ms"], 1000);
        assert_eq!(
            json["top_codes"][3]["provider_code"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn the_final_attempt_decides_a_request_even_across_providers() {
        use AttemptKind::*;
        // Failed twice, then approved after failover: one approved request, counted at beta.
        let dir = database(
            "final",
            vec![
                attempt(10, "r", "acme", 1, Send, UNAVAILABLE, Some(503), 1),
                attempt(11, "r", "acme", 2, Retry, UNAVAILABLE, Some(503), 1),
                attempt(12, "r", "beta", 3, Failover, APPROVED, Some(200), 1),
            ],
        );
        let report = read_report(
            dir.path(),
            Window {
                from_ms: 0,
                to_ms: 100,
            },
        )
        .expect("reads");
        assert_eq!(report.totals.requests, 1);
        assert_eq!(report.totals.approval_rate, Some(1.0));
        assert_eq!(report.providers[0].counts.requests, 0);
        assert_eq!(report.providers[0].counts.approval_rate, None);
        assert_eq!(report.providers[1].counts.requests, 1);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(nearest_rank(50, 0), None);
        assert_eq!(nearest_rank(50, 1), Some(1));
        assert_eq!(nearest_rank(99, 1), Some(1));
        assert_eq!(nearest_rank(50, 4), Some(2));
        assert_eq!(nearest_rank(99, 4), Some(4));
        assert_eq!(nearest_rank(50, 100), Some(50));
        assert_eq!(nearest_rank(99, 100), Some(99));
        assert_eq!(nearest_rank(99, 1000), Some(990));
        assert_eq!(nearest_rank(99, 101), Some(100));

        // Latencies 1..=1000 µs written in reverse: p50 = 500, p99 = 990.
        let events = (1..=1000u64)
            .rev()
            .map(|us| Event {
                latency_us: us,
                ..event(5, &format!("r{us}"), "acme", 1)
            })
            .collect();
        let dir = database("percentiles", events);
        let report = read_report(
            dir.path(),
            Window {
                from_ms: 0,
                to_ms: 10,
            },
        )
        .expect("reads");
        let acme = &report.providers[0].counts;
        assert_eq!(
            (acme.latency_p50_us, acme.latency_p99_us),
            (Some(500), Some(990))
        );
    }

    #[test]
    fn an_empty_window_reports_zeros() {
        let dir = database("empty", known_events());
        let report = read_report(
            dir.path(),
            Window {
                from_ms: 5000,
                to_ms: 6000,
            },
        )
        .expect("reads");
        assert_eq!(report.totals, Counts::default());
        assert!(report.providers.is_empty() && report.top_codes.is_empty());
        assert!(report.categories.is_empty() && report.failovers.is_empty());
        assert_eq!(report.last_event_at_ms, Some(2001));
    }

    #[test]
    fn a_missing_directory_or_database_is_an_error_naming_it() {
        let dir = Scratch::new("missing");
        let window = Window {
            from_ms: 0,
            to_ms: 1,
        };
        let error = read_report(dir.path(), window).expect_err("no directory");
        assert!(error.contains("does not exist"), "{error}");
        assert!(error.contains(&dir.path().display().to_string()), "{error}");
        std::fs::create_dir_all(dir.path()).expect("creates");
        let error = read_report(dir.path(), window).expect_err("no database");
        assert!(error.contains("the gateway has not written to"), "{error}");
        assert!(
            !crate::db_path(dir.path()).exists(),
            "reading creates nothing"
        );
    }

    #[test]
    fn the_report_reads_while_the_log_is_writing() {
        let dir = Scratch::new("live");
        let log = EventLog::open(dir.path(), EventLogOptions::default()).expect("opens");
        log.record(event(7, "r", "acme", 1));
        let window = Window {
            from_ms: 0,
            to_ms: 10,
        };
        let until = std::time::Instant::now() + Duration::from_secs(10);
        let mut requests = 0;
        while requests == 0 && std::time::Instant::now() < until {
            requests = read_report(dir.path(), window)
                .expect("reads")
                .totals
                .requests;
        }
        assert_eq!(requests, 1);
        log.close().expect("closes");
    }

    #[test]
    fn since_takes_a_number_and_a_unit() {
        assert_eq!(parse_since("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_since("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_since("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_since(" 7d "), Ok(Duration::from_secs(604_800)));
        for bad in [
            "",
            "h",
            "24",
            "0h",
            "-1h",
            "+1h",
            "1.5h",
            "24H",
            "1w",
            "24 h",
            "99999999999999999999d",
        ] {
            let error = parse_since(bad).expect_err(bad);
            assert!(error.contains("e.g. 30s, 15m, 24h, 7d"), "{error}");
        }
        assert_eq!(
            Window::last(Duration::from_secs(60), 100_000),
            Window {
                from_ms: 40_000,
                to_ms: 100_000
            }
        );
    }
}
