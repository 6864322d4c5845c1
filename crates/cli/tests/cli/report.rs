//! `payerr report` through the real binary, over databases written by `payerr_events` itself.

use std::path::Path;
use std::process::Output;

use payerr::{Category, Outcome};
use payerr_events::{AttemptKind, Event, EventLog, EventLogOptions};
use serde_json::Value;

use crate::commands::{payerr, scratch};

const MINUTE_MS: i64 = 60_000;

/// An attempt `minutes_ago`; the verdict is approved unless `failed` names a declining provider code.
fn attempt(
    minutes_ago: i64,
    request: &str,
    provider: &str,
    n: u32,
    kind: AttemptKind,
    failed: Option<&str>,
    latency_us: u64,
) -> Event {
    let (outcome, category, code) = match failed {
        Some(_) => (Outcome::Failed, Category::Declined, "do_not_honor"),
        None => (Outcome::Succeeded, Category::Approved, "approved"),
    };
    Event {
        at_ms: payerr_events::now_ms() - minutes_ago * MINUTE_MS,
        request_id: request.to_owned(),
        provider: provider.to_owned(),
        dialect: "portone".to_owned(),
        method: "POST".to_owned(),
        path: "/v1/payments".to_owned(),
        attempt: n,
        kind,
        http_status: Some(200),
        outcome,
        category,
        code: code.to_owned(),
        provider_code: Some(failed.unwrap_or("2000").to_owned()),
        latency_us,
        error: None,
        operation_id: None,
    }
}

/// Four requests in the last hour (one approved after a retry, one declined after failing over)
/// and one two hours ago.
fn write_known_events(data_dir: &Path) {
    use AttemptKind::{Failover, Retry, Send};
    let log = EventLog::open(data_dir, EventLogOptions::default()).expect("opens");
    for e in [
        attempt(120, "old", "acme", 1, Send, None, 9_000),
        attempt(30, "r1", "acme", 1, Send, None, 1_000),
        attempt(29, "r2", "acme", 1, Send, Some("6001"), 2_000),
        attempt(28, "r2", "acme", 2, Retry, None, 3_000),
        attempt(27, "r3", "acme", 1, Send, Some("6001"), 4_000),
        attempt(27, "r3", "beta", 2, Failover, Some("05"), 500),
        attempt(26, "r4", "beta", 1, Send, None, 700),
    ] {
        log.record(e);
    }
    log.close().expect("writes every event");
}

fn report(data_dir: &Path, extra: &[&str]) -> Output {
    let dir = data_dir.to_str().expect("UTF-8 path");
    let mut args = vec!["report", "--data-dir", dir];
    args.extend_from_slice(extra);
    payerr(&args, "")
}

fn json(out: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

fn usage_error(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn json_report_counts_the_window() {
    let dir = scratch("report-json");
    write_known_events(&dir);
    let v = json(&report(&dir, &["--format", "json", "--since", "1h"]));
    let totals = &v["totals"];
    assert_eq!(totals["requests"], 4);
    assert_eq!(totals["attempts"], 6);
    assert_eq!(totals["approval_rate"], 0.75);
    assert_eq!(totals["outcomes"]["succeeded"], 3);
    assert_eq!(totals["outcomes"]["failed"], 1);
    assert_eq!(totals["retries"], 1);
    assert_eq!(totals["failovers"], 1);
    assert_eq!(v["data_dir"], dir.display().to_string());
    let acme = &v["providers"][0];
    assert_eq!(acme["provider"], "acme");
    assert_eq!(acme["attempts"], 4);
    assert_eq!(acme["requests"], 2, "r3's final attempt went to beta");
    assert_eq!(acme["latency_p50_us"], 2_000);
    assert_eq!(acme["latency_p99_us"], 4_000);
    let beta = &v["providers"][1];
    assert_eq!(beta["approval_rate"], 0.5);
    assert_eq!(v["top_codes"][0]["provider_code"], "6001");
    assert_eq!(v["top_codes"][0]["attempts"], 2);
    assert_eq!(v["failovers"][0]["from"], "acme");
    assert_eq!(v["failovers"][0]["to"], "beta");

    // The default window (24h) takes the older request in.
    let v = json(&report(&dir, &["--format", "json"]));
    assert_eq!(v["totals"]["requests"], 5);
}

#[test]
fn text_report_is_aligned_tables() {
    let dir = scratch("report-text");
    write_known_events(&dir);
    let out = report(&dir, &["--since", "1h"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(text.starts_with("payerr report: last 1h, "), "{text}");
    assert!(
        text.contains(&format!("\ndata dir: {}\n", dir.display())),
        "{text}"
    );
    for line in [
        "requests 4   approval rate 75.0% (3 succeeded of 4 decided)",
        "attempts 6: 1 retries, 1 failovers, 0 polls, 0 without response",
        "from  to    attempts",
        "acme  beta         1",
        "attempts  provider  code          provider code",
        "       2  acme      do_not_honor  6001",
        "acme      approved         2",
        "          declined         2",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    // Numbers are right-aligned under their headers.
    let lines: Vec<&str> = text.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.starts_with("provider  attempts"))
        .expect("attempts table");
    let acme = lines[header + 1];
    assert_eq!(acme.len(), lines[header].len(), "{}\n{acme}", lines[header]);
    assert!(acme.starts_with("acme   "), "{acme}");
    assert!(acme.ends_with("2.00  4.00"), "{acme}");
}

#[test]
fn an_empty_window_prints_zeros_and_says_so() {
    let dir = scratch("report-empty");
    write_known_events(&dir);
    let out = report(&dir, &["--since", "10s"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(text.contains("requests 0   approval rate -"), "{text}");
    assert!(
        text.contains("No attempts in this window: the most recent event is from"),
        "{text}"
    );
    let v = json(&report(&dir, &["--since", "10s", "--format", "json"]));
    assert_eq!(v["totals"]["requests"], 0);
    assert_eq!(v["totals"]["approval_rate"], Value::Null);
    assert_eq!(v["providers"], serde_json::json!([]));
}

#[test]
fn a_missing_data_dir_or_database_is_a_usage_error_naming_it() {
    let dir = scratch("report-missing");
    let missing = dir.join("nowhere");
    let error = usage_error(&report(&missing, &[]));
    assert!(
        error.starts_with("payerr: no events: the data directory"),
        "{error}"
    );
    assert!(error.contains(&missing.display().to_string()), "{error}");
    assert!(error.contains("does not exist"), "{error}");

    let error = usage_error(&report(&dir, &[]));
    assert!(error.contains("the gateway has not written to"), "{error}");

    std::fs::write(
        dir.join("events.sqlite3"),
        "not a database at all".repeat(50),
    )
    .expect("writes");
    let error = usage_error(&report(&dir, &[]));
    assert!(error.contains("not a payerr event database"), "{error}");
}

#[test]
fn a_bad_since_is_a_usage_error() {
    let dir = scratch("report-since");
    write_known_events(&dir);
    for bad in ["1w", "0h", "abc", "-5m", ""] {
        let error = usage_error(&report(&dir, &[&format!("--since={bad}")]));
        assert!(
            error.contains("--since: invalid duration"),
            "{bad}: {error}"
        );
        assert!(error.contains("e.g. 30s, 15m, 24h, 7d"), "{error}");
    }
}
