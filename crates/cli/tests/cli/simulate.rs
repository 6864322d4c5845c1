//! `payerr simulate` end to end: the real binary on an ephemeral port, real sockets and signals. What
//! it answers is read back with `payerr normalize`, as a client of the provider would.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::commands::{payerr, scratch, USER_CATALOG};
use crate::http::{self, Reply};
use crate::process::{simulator, Daemon};

/// The five provider dialects.
const PROVIDERS: [&str; 5] = [
    "typed-error",
    "card-issuing",
    "result-status",
    "pts",
    "portone",
];

fn post(sim: &Daemon, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    http::request(&sim.addr, "POST", path, &all, body.as_bytes())
}

fn get(sim: &Daemon, path: &str, headers: &[(&str, &str)]) -> Reply {
    http::request(&sim.addr, "GET", path, headers, &[])
}

fn stats(sim: &Daemon) -> Value {
    let reply = sim.get("/__simulator/stats");
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

/// The operation `id` in the stats.
fn operation(sim: &Daemon, id: &str) -> Value {
    let stats = stats(sim);
    stats["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no operation {id}: {stats}"))
}

/// What payerr itself makes of a reply, with the dialect given.
fn normalize(dialect: &str, reply: &Reply) -> Value {
    let status = reply.status.to_string();
    let out = payerr(
        &[
            "normalize",
            "--dialect",
            dialect,
            "--status",
            &status,
            "--format",
            "json",
        ],
        &reply.text(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Sends `request` on a new connection and reads until the server closes it or `wait` passes.
fn exchange(addr: &str, request: &str, wait: Duration) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(wait))?;
    stream.write_all(request.as_bytes())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(answer)
}

fn raw_post(addr: &str, headers: &str) -> String {
    format!(
        "POST /v1/payments HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n{headers}\r\n{{}}"
    )
}

#[test]
fn every_dialect_answers_success_in_its_envelope_with_the_operation_id() {
    // (dialect, HTTP status, JSON pointer to the id, what payerr reads)
    let cases = [
        ("typed-error", 200, "/id", "succeeded"),
        ("card-issuing", 200, "/data/id", "succeeded"),
        ("result-status", 200, "/paymentId", "succeeded"),
        // PTS documents 1000 "Request accepted" as its only non-error answer.
        ("pts", 200, "/data/order_id", "pending"),
        ("portone", 200, "/order_ref", "succeeded"),
    ];
    for (dialect, status, id_at, outcome) in cases {
        let sim = simulator(dialect);
        let reply = post(&sim, "/v1/payments", &[("Idempotency-Key", "pay-1")], "{}");
        assert_eq!(reply.status, status, "{dialect}: {}", reply.text());
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(
            reply.json().pointer(id_at),
            Some(&"pay-1".into()),
            "{dialect}"
        );
        let verdict = normalize(dialect, &reply);
        assert_eq!(verdict["outcome"], outcome, "{dialect}: {verdict}");
        // The body's id field names the operation when there is no key.
        let reply = post(
            &sim,
            "/v1/payments",
            &[],
            r#"{"amount":100,"order_id":"ord-7"}"#,
        );
        assert_eq!(
            reply.json().pointer(id_at),
            Some(&"ord-7".into()),
            "{dialect}"
        );
        let (status, _) = sim.stop();
        assert!(status.success());
    }
}

/// One `X-Simulate-Code` request and what must come back.
struct CodeCase {
    dialect: &'static str,
    code: &'static str,
    scope: Option<&'static str>,
    reason: Option<&'static str>,
    status: u16,
    /// JSON pointer to a field of the answer, and that field's value as JSON text.
    field: (&'static str, &'static str),
    /// The canonical code payerr reads, and how it matched.
    reads_as: (&'static str, &'static str),
}

#[test]
fn x_simulate_code_answers_the_documented_code_in_the_dialects_envelope_and_status() {
    let case = |dialect, code, status, field, reads_as| CodeCase {
        dialect,
        code,
        scope: None,
        reason: None,
        status,
        field,
        reads_as,
    };
    let cases = [
        case(
            "typed-error",
            "expired_card",
            400,
            ("/code", r#""expired_card""#),
            ("expired_card", "code_and_scope"),
        ),
        CodeCase {
            scope: Some("payout_error"),
            ..case(
                "typed-error",
                "invalid_parameter",
                400,
                ("/type", r#""payout_error""#),
                ("invalid_parameter", "code_and_scope"),
            )
        },
        case(
            "card-issuing",
            "3002",
            200,
            ("/code", "3002"),
            ("insufficient_funds", "code"),
        ),
        case(
            "result-status",
            "RISK_REJECT",
            200,
            ("/result/resultStatus", r#""F""#),
            ("risk_rejected", "code"),
        ),
        case(
            "pts",
            "8001",
            200,
            ("/code", "8001"),
            ("service_unavailable", "code"),
        ),
        case(
            "portone",
            "6001",
            400,
            ("/status_code", "6001"),
            ("issuer_declined", "code"),
        ),
        CodeCase {
            reason: Some("ROLE_NOT_ALLOWED"),
            ..case(
                "portone",
                "4081",
                400,
                ("/status_reason", r#""ROLE_NOT_ALLOWED""#),
                ("permission_denied", "code_and_reason"),
            )
        },
    ];
    for c in cases {
        let sim = simulator(c.dialect);
        let mut headers = vec![("X-Simulate-Code", c.code)];
        headers.extend(c.scope.map(|s| ("X-Simulate-Type", s)));
        headers.extend(c.reason.map(|r| ("X-Simulate-Reason", r)));
        let reply = post(&sim, "/v1/payments", &headers, "{}");
        let what = format!("{} {}: {}", c.dialect, c.code, reply.text());
        assert_eq!(reply.status, c.status, "{what}");
        let expected: Value = serde_json::from_str(c.field.1).unwrap();
        assert_eq!(reply.json().pointer(c.field.0), Some(&expected), "{what}");
        let verdict = normalize(c.dialect, &reply);
        assert_eq!(verdict["source"]["code"], c.code, "{what}");
        assert_eq!(
            (verdict["code"].as_str(), verdict["matched_by"].as_str()),
            (Some(c.reads_as.0), Some(c.reads_as.1)),
            "{what}"
        );
        assert_eq!(verdict["ambiguous"], Value::Array(vec![]), "{what}");
    }
}

#[test]
fn typed_errors_take_their_status_from_the_type() {
    let sim = simulator("typed-error");
    let reply = post(
        &sim,
        "/v1/payments",
        &[
            ("X-Simulate-Code", "internal_error"),
            ("X-Simulate-Type", "api_error"),
        ],
        "{}",
    );
    assert_eq!(reply.status, 500, "api_error is HTTP 500 in seed 000");
    assert_eq!(reply.json()["type"], "api_error");
    let verdict = normalize("typed-error", &reply);
    assert_eq!(
        (
            verdict["outcome"].as_str(),
            verdict["failover_safe"].as_bool()
        ),
        (Some("unknown"), Some(false))
    );
}

#[test]
fn a_code_inside_a_documented_range_answers_with_the_ranges_name() {
    let sim = simulator("portone");
    let reply = post(&sim, "/v1/payments", &[("X-Simulate-Code", "6099")], "{}");
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["message"], "6000 Series - BANK/CARD ERRORS");
    assert_eq!(normalize("portone", &reply)["matched_by"], "range");
}

#[test]
fn bad_simulator_headers_are_a_400_naming_the_header() {
    let sim = simulator("pts");
    struct Bad {
        headers: &'static [(&'static str, &'static str)],
        code: &'static str,
        param: Option<&'static str>,
        /// Words the message must contain.
        says: &'static str,
    }
    let unknown = |headers, param, says| Bad {
        headers,
        code: "unknown_simulate_code",
        param: Some(param),
        says,
    };
    let invalid = |headers, param, says| Bad {
        headers,
        code: "invalid_simulate_header",
        param,
        says,
    };
    let cases = [
        unknown(&[("X-Simulate-Code", "7777")], "X-Simulate-Code", "`pts`"),
        unknown(&[("X-Simulate-Then", "nope")], "X-Simulate-Then", "`pts`"),
        unknown(
            &[("X-Simulate-Code", "1001"), ("X-Simulate-Type", "x")],
            "X-Simulate-Code",
            "type",
        ),
        invalid(
            &[("X-Simulate-Fault", "meltdown")],
            Some("X-Simulate-Fault"),
            "slow:MS",
        ),
        invalid(
            &[("X-Simulate-Fault", "slow:soon")],
            Some("X-Simulate-Fault"),
            "milliseconds",
        ),
        invalid(
            &[("X-Simulate-Then-After", "2")],
            Some("X-Simulate-Then-After"),
            "X-Simulate-Then",
        ),
        invalid(&[("X-Simulate-Cod", "1001")], None, "x-simulate-cod"),
    ];
    for c in &cases {
        let reply = post(&sim, "/v1/payments", c.headers, "{}");
        let what = format!("{:?}: {}", c.headers, reply.text());
        assert_eq!(reply.status, 400, "{what}");
        let body = reply.json();
        assert_eq!(body["type"], "invalid_request_error", "{what}");
        assert_eq!(body["code"], c.code, "{what}");
        assert_eq!(body["param"].as_str(), c.param, "{what}");
        assert!(body["message"].as_str().unwrap().contains(c.says), "{what}");
    }
    let stats = stats(&sim);
    assert_eq!(
        stats["operations"],
        Value::Array(vec![]),
        "refused requests create nothing"
    );
    assert_eq!(
        stats["requests"]["POST /v1/payments"], 7,
        "but they are counted"
    );
}

#[test]
fn http_503_carries_retry_after_and_runs_nothing() {
    let sim = simulator("pts");
    let fault = ("X-Simulate-Fault", "http-503");
    let reply = post(
        &sim,
        "/v1/payments",
        &[fault, ("Idempotency-Key", "u-1")],
        "{}",
    );
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("retry-after"), Some("1"));
    let verdict = normalize("pts", &reply);
    assert_eq!(
        verdict["code"], "service_unavailable",
        "pts documents 8001: {verdict}"
    );
    assert_eq!(verdict["failover_safe"], true);
    let reply = post(
        &sim,
        "/v1/payments",
        &[fault, ("X-Simulate-Retry-After", "7")],
        "{}",
    );
    assert_eq!(reply.header("retry-after"), Some("7"));
    assert_eq!(stats(&sim)["operations"], Value::Array(vec![]));
    // Not run: a query does not find it.
    assert_eq!(get(&sim, "/v1/payments/u-1", &[]).json()["code"], 1002);

    // A dialect without a documented outage code: a bare 503, read from its status.
    let typed = simulator("typed-error");
    let reply = post(&typed, "/v1/payments", &[fault], "{}");
    assert_eq!(
        (reply.status, reply.header("retry-after")),
        (503, Some("1"))
    );
    assert_eq!(
        normalize("typed-error", &reply)["category"],
        "provider_unavailable"
    );
}

#[test]
fn http_500_answers_the_internal_error_and_records_the_operation() {
    for dialect in PROVIDERS {
        let sim = simulator(dialect);
        let reply = post(
            &sim,
            "/v1/payments",
            &[("X-Simulate-Fault", "http-500"), ("Idempotency-Key", "i-1")],
            "{}",
        );
        assert_eq!(reply.status, 500, "{dialect}");
        let verdict = normalize(dialect, &reply);
        assert_eq!(verdict["outcome"], "unknown", "{dialect}: {verdict}");
        assert!(
            matches!(
                verdict["matched_by"].as_str(),
                Some("code" | "code_and_scope")
            ),
            "{verdict}"
        );
        // It may have run, and here it did: a query finds it succeeded.
        assert_eq!(operation(&sim, "i-1")["fault"], "http-500");
        let query = get(&sim, "/v1/payments/i-1", &[]);
        let success = if dialect == "pts" {
            "pending"
        } else {
            "succeeded"
        };
        assert_eq!(
            normalize(dialect, &query)["outcome"],
            success,
            "{dialect}: {}",
            query.text()
        );
        assert_eq!(operation(&sim, "i-1")["queries"], 1);
    }
}

#[test]
fn a_timeout_holds_the_connection_and_the_operation_ran() {
    let sim = simulator("portone");
    let request = raw_post(
        &sim.addr,
        "Idempotency-Key: t-1\r\nX-Simulate-Fault: timeout\r\n",
    );
    let started = Instant::now();
    let err = exchange(&sim.addr, &request, Duration::from_millis(300)).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    let op = operation(&sim, "t-1");
    assert_eq!(
        (op["fault"].as_str(), op["state"].as_str()),
        (Some("timeout"), Some("succeeded"))
    );
    let query = get(&sim, "/v1/payments/t-1", &[]);
    assert_eq!(normalize("portone", &query)["outcome"], "succeeded");
}

#[test]
fn a_reset_closes_the_connection_with_an_rst_and_the_operation_ran() {
    let sim = simulator("card-issuing");
    let request = raw_post(
        &sim.addr,
        "Idempotency-Key: r-1\r\nX-Simulate-Fault: reset\r\n",
    );
    let err = exchange(&sim.addr, &request, Duration::from_secs(10)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert_eq!(operation(&sim, "r-1")["fault"], "reset");
}

#[test]
fn slow_answers_normally_after_the_delay() {
    let sim = simulator("result-status");
    let started = Instant::now();
    let reply = post(
        &sim,
        "/v1/payments",
        &[("X-Simulate-Fault", "slow:200")],
        "{}",
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["result"]["resultStatus"], "S");
}

#[test]
fn then_answers_pending_first_and_the_code_when_queried() {
    let sim = simulator("typed-error");
    let reply = post(
        &sim,
        "/v1/payments",
        &[
            ("X-Simulate-Then", "expired_card"),
            ("X-Simulate-Then-After", "1"),
            ("Idempotency-Key", "p-1"),
        ],
        "{}",
    );
    let verdict = normalize("typed-error", &reply);
    assert!(
        matches!(verdict["outcome"].as_str(), Some("pending" | "unknown")),
        "{verdict}"
    );
    assert_eq!(verdict["failover_safe"], false);
    assert_eq!(operation(&sim, "p-1")["state"], "pending");
    let first = get(&sim, "/v1/payments/p-1", &[]);
    assert_eq!(
        first.json()["code"],
        "operation_in_progress",
        "Then-After 1: one more pending answer"
    );
    let second = get(&sim, "/v1/payments/p-1", &[]);
    assert_eq!(second.status, 400);
    assert_eq!(normalize("typed-error", &second)["code"], "expired_card");
    let op = operation(&sim, "p-1");
    assert_eq!(
        (
            op["state"].as_str(),
            op["code"].as_str(),
            op["queries"].as_u64()
        ),
        (Some("failed"), Some("expired_card"), Some(2))
    );
    // An unknown operation: the dialect's not-found code.
    let missing = get(&sim, "/v1/payments/nope", &[]);
    assert_eq!(normalize("typed-error", &missing)["category"], "not_found");
}

#[test]
fn stats_count_requests_per_method_and_path_and_reset_clears_them() {
    let sim = simulator("pts");
    for _ in 0..3 {
        post(&sim, "/v1/payments", &[], "{}");
    }
    post(&sim, "/v1/refunds", &[("Idempotency-Key", "rf-1")], "{}");
    get(&sim, "/v1/refunds/rf-1", &[]);
    http::request(&sim.addr, "DELETE", "/v1/refunds/rf-1", &[], &[]);
    let s = stats(&sim);
    assert_eq!(s["dialect"], "pts");
    assert_eq!(s["requests"]["POST /v1/payments"], 3);
    assert_eq!(s["requests"]["POST /v1/refunds"], 1);
    assert_eq!(s["requests"]["GET /v1/refunds/rf-1"], 1);
    assert_eq!(s["requests"]["DELETE /v1/refunds/rf-1"], 1);
    assert_eq!(
        s["total"], 6,
        "the stats requests themselves are not counted: {s}"
    );
    let ids: Vec<&str> = s["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["op_1", "op_2", "op_3", "rf-1"],
        "DELETE creates nothing"
    );
    let reset = http::request(&sim.addr, "POST", "/__simulator/reset", &[], &[]);
    assert_eq!(reset.status, 200);
    let s = stats(&sim);
    assert_eq!(
        (
            s["total"].as_u64(),
            s["operations"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0))
    );
}

#[test]
fn sigterm_exits_cleanly_while_a_timeout_holds_a_connection() {
    let sim = simulator("pts");
    let addr = sim.addr.clone();
    let held = std::thread::spawn(move || {
        let request = raw_post(&addr, "X-Simulate-Fault: timeout\r\n");
        exchange(&addr, &request, Duration::from_secs(30))
    });
    let line = sim.wait_log("request");
    assert_eq!(line["fault"], "timeout");
    let (status, log) = sim.stop();
    assert!(status.success(), "{status:?}");
    assert!(log.iter().any(|l| l["msg"] == "stopped"), "{log:?}");
    // The held client sees the connection end without an answer.
    assert_eq!(held.join().unwrap().unwrap(), Vec::<u8>::new());
}

#[test]
fn card_numbers_never_reach_the_log() {
    let sim = simulator("pts");
    let pan = "4111111111111111";
    post(
        &sim,
        &format!("/v1/payments?card={pan}"),
        &[],
        &format!(r#"{{"card":"{pan}","cvv":"123"}}"#),
    );
    get(&sim, &format!("/v1/cards/{pan}"), &[]);
    post(&sim, "/v1/payments", &[], &format!(r#"{{"id":"{pan}"}}"#));
    let stats = stats(&sim).to_string();
    assert!(!stats.contains(pan), "{stats}");
    let (_, log) = sim.stop();
    let text = format!("{log:?}");
    assert!(!text.contains(pan), "{text}");
    assert!(
        text.contains("411111"),
        "the masked number keeps its first digits: {text}"
    );
}

#[test]
fn a_dialect_without_responses_or_an_unknown_one_is_a_usage_error() {
    let dir = scratch("simulate-user-catalog");
    std::fs::write(dir.join("acme.toml"), USER_CATALOG).unwrap();
    let out = payerr(
        &[
            "simulate",
            "--dialect",
            "acme",
            "--listen",
            "127.0.0.1:0",
            "--catalog-dir",
            dir.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no [responses] table"), "{stderr}");
    let out = payerr(
        &["simulate", "--dialect", "nope", "--listen", "127.0.0.1:0"],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown dialect `nope`"));
}

#[test]
fn the_generic_dialect_answers_success_and_refuses_every_code() {
    let sim = simulator("http");
    let reply = post(&sim, "/charge", &[("Idempotency-Key", "g-1")], "{}");
    assert_eq!(
        (reply.status, reply.json()["id"].as_str()),
        (200, Some("g-1"))
    );
    let refused = post(&sim, "/charge", &[("X-Simulate-Code", "declined")], "{}");
    assert_eq!(refused.json()["code"], "unknown_simulate_code");
    let missing = get(&sim, "/charge/nope", &[]);
    assert_eq!(
        (missing.status, missing.json()["code"].as_str()),
        (404, Some("not_found"))
    );
}
