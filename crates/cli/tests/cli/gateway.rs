//! `payerr gateway` end to end: the real gateway in front of real `payerr simulate` processes, one per
//! dialect, on ephemeral ports; the event database read back after the gateway stops (or is killed).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::commands::{payerr, scratch};
use crate::http::{self, Conn, Reply};
use crate::process::{simulator, Daemon};

/// A decline documented by each built-in dialect: (dialect, X-Simulate-Code, X-Simulate-Type).
const DECLINES: [(&str, &str, Option<&str>); 5] = [
    ("typed-error", "expired_card", Some("payment_error")),
    ("card-issuing", "3002", None),
    ("result-status", "INSUFFICIENT_BALANCE", None),
    ("pts", "1007", None),
    ("portone", "6001", None),
];

const VERDICT_HEADERS: [&str; 6] = [
    "payerr-outcome",
    "payerr-category",
    "payerr-code",
    "payerr-next-action",
    "payerr-retryable",
    "payerr-failover-safe",
];

/// A gateway over `providers` (TOML `[[providers]]` tables), with `settings` at the top of the file.
pub fn gateway(dir: &Path, settings: &str, providers: &str) -> Daemon {
    gateway_with_env(dir, settings, providers, &[])
}

/// [`gateway`] with `tables` (providers, clients) and environment variables (the clients' secrets).
pub fn gateway_with_env(dir: &Path, settings: &str, tables: &str, env: &[(&str, &str)]) -> Daemon {
    let config = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{settings}\n{tables}",
        data_dir(dir).display()
    );
    let path = dir.join("gateway.toml");
    fs::write(&path, config).unwrap();
    Daemon::start(
        &[
            "gateway",
            "--config",
            path.to_str().unwrap(),
            "--log-format",
            "json",
        ],
        env,
        dir,
    )
}

fn data_dir(dir: &Path) -> PathBuf {
    dir.join("data")
}

pub fn provider(id: &str, dialect: &str, upstream: &str, extra: &str) -> String {
    format!("[[providers]]\nid = \"{id}\"\ndialect = \"{dialect}\"\nupstream = \"http://{upstream}\"\n{extra}\n")
}

fn post(addr: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    http::request(addr, "POST", path, &all, body.as_bytes())
}

/// Requests the simulator saw, by "METHOD /path".
pub fn seen(sim: &Daemon, key: &str) -> u64 {
    let stats = sim.get("/__simulator/stats").json();
    stats["requests"][key].as_u64().unwrap_or(0)
}

/// Waits up to 10 s until the simulator has seen `n` requests of `key` ("METHOD /path").
fn wait_seen(sim: &Daemon, key: &str, n: u64) {
    let until = Instant::now() + Duration::from_secs(10);
    while seen(sim, key) < n {
        assert!(
            Instant::now() < until,
            "{key}: the provider saw {} of {n} requests",
            seen(sim, key)
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Whether the gateway's `/metrics` holds `line` (end it with `\n` to match a whole value).
fn has_metric(gw: &Daemon, line: &str) -> bool {
    gw.get("/metrics").text().contains(line)
}

/// Waits up to 10 s until the gateway's `/metrics` holds `line`.
fn wait_for_metric(gw: &Daemon, line: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    while !has_metric(gw, line) {
        assert!(Instant::now() < until, "{line:?} never in /metrics");
        thread::sleep(Duration::from_millis(20));
    }
}

/// `payerr explain` of a code, as JSON.
fn explain(dialect: &str, code: &str, scope: Option<&str>) -> Value {
    let mut args = vec!["explain", code, "--dialect", dialect, "--format", "json"];
    if let Some(scope) = scope {
        args.extend(["--type", scope]);
    }
    let out = payerr(&args, "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn five_dialects_through_the_gateway_get_every_verdict_header() {
    let dir = scratch("gateway-dialects");
    let sims: Vec<(&str, Daemon)> = DECLINES
        .iter()
        .map(|(d, _, _)| (*d, simulator(d)))
        .collect();
    let providers: String = sims
        .iter()
        .map(|(d, sim)| provider(d, d, &sim.addr, ""))
        .collect();
    let gw = gateway(&dir, "", &providers);
    for ((dialect, code, scope), (_, sim)) in DECLINES.iter().zip(&sims) {
        // Success by default, in the dialect's own envelope, passed through unchanged.
        let ok = post(
            &gw.addr,
            &format!("/{dialect}/v1/payments"),
            &[],
            r#"{"amount":100}"#,
        );
        assert!(
            matches!(ok.header("payerr-outcome"), Some("succeeded" | "pending")),
            "{dialect}: {:?} {}",
            ok.headers,
            ok.text()
        );
        let direct = post(&sim.addr, "/v1/payments", &[], r#"{"amount":100}"#);
        assert_eq!(ok.status, direct.status, "{dialect}");

        // A documented decline: the headers say what the catalog says.
        let mut headers = vec![("X-Simulate-Code", *code)];
        if let Some(scope) = scope {
            headers.push(("X-Simulate-Type", scope));
        }
        let declined = post(&gw.addr, &format!("/{dialect}/v1/payments"), &headers, "{}");
        let expected = explain(dialect, code, *scope);
        for name in VERDICT_HEADERS {
            assert!(
                declined.header(name).is_some(),
                "{dialect}: no {name}: {:?}",
                declined.headers
            );
        }
        assert_eq!(
            declined.header("payerr-outcome"),
            Some("failed"),
            "{dialect}"
        );
        assert_eq!(
            declined.header("payerr-category"),
            expected["category"].as_str(),
            "{dialect}"
        );
        assert_eq!(
            declined.header("payerr-code"),
            expected["code"].as_str(),
            "{dialect}"
        );
        assert_eq!(
            declined.header("payerr-next-action"),
            expected["next_action"].as_str()
        );
        assert_eq!(
            declined.header("payerr-retryable"),
            Some("false"),
            "{dialect}"
        );
        assert_eq!(
            declined.header("payerr-failover-safe"),
            Some("false"),
            "{dialect}"
        );
        assert_eq!(
            declined.header("payerr-attempts"),
            Some("1"),
            "{dialect}: a decline is never retried"
        );
        assert!(declined.header("x-request-id").is_some());

        // The same request with ?payerr=verdict answers the verdict; the parameter is not forwarded.
        let verdict = post(
            &gw.addr,
            &format!("/{dialect}/v1/payments?payerr=verdict"),
            &headers,
            "{}",
        );
        let v = verdict.json();
        assert_eq!(v["code"], expected["code"], "{dialect}");
        assert_eq!(v["dialect"], *dialect);
        assert_eq!(verdict.status as u64, v["http_status"].as_u64().unwrap());
        assert_eq!(seen(sim, "POST /v1/payments"), 4, "{dialect}");
    }
    // The gateway answers its own probes and never forwards them.
    assert_eq!(gw.get("/healthz").json()["status"], "ok");
    assert!(gw
        .get("/metrics")
        .text()
        .contains("payerr_gateway_attempts_total"));
    let unknown = gw.get("/nobody/v1/payments");
    assert_eq!(
        (unknown.status, unknown.json()["code"].as_str()),
        (404, Some("provider_not_found"))
    );
    assert!(gw
        .get("/metrics")
        .text()
        .lines()
        .any(|l| l == "payerr_gateway_rejected_total{code=\"provider_not_found\"} 1"));
    for (_, sim) in &sims {
        let stats = sim.get("/__simulator/stats").json();
        let paths: Vec<&String> = stats["requests"].as_object().unwrap().keys().collect();
        assert!(
            paths.iter().all(|p| p.starts_with("POST /v1/payments")),
            "{paths:?}"
        );
    }
    let (status, _) = gw.stop();
    assert!(status.success());
}

#[test]
fn a_503_is_retried_after_its_retry_after() {
    let dir = scratch("gateway-retry");
    let sim = simulator("pts");
    let gw = gateway(
        &dir,
        "[retry]\nbase_ms = 10\nmax_attempts = 2",
        &provider("pts", "pts", &sim.addr, ""),
    );
    let started = Instant::now();
    let reply = post(
        &gw.addr,
        "/pts/v1/payments",
        &[("X-Simulate-Fault", "http-503")],
        "{}",
    );
    let elapsed = started.elapsed();
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(reply.header("payerr-attempts"), Some("2"));
    assert_eq!(
        reply.header("payerr-category"),
        Some("provider_unavailable")
    );
    assert_eq!(seen(&sim, "POST /v1/payments"), 2);
    // The provider asked for one second; the backoff alone would have been at most 10 ms.
    assert!(
        elapsed >= Duration::from_millis(1_000),
        "retried after {elapsed:?}"
    );
}

/// `client_timeout_ms`: a body that does not come in time is a 408 and nothing goes to the
/// provider; a connection with no head in time, or idle after its answer, is closed.
#[test]
fn a_client_too_slow_with_its_head_or_body_is_cut_off_before_anything_is_sent() {
    let dir = scratch("gateway-slow-client");
    let sim = simulator("pts");
    let gw = gateway(
        &dir,
        "client_timeout_ms = 1500",
        &provider("pts", "pts", &sim.addr, ""),
    );
    let started = Instant::now();
    let mut trickle = Conn::open(&gw.addr);
    trickle.write(
        b"POST /pts/v1/payments HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n{\"amount\":",
    );
    let mut silent = Conn::open(&gw.addr);
    let mut kept = Conn::open(&gw.addr);
    assert_eq!(kept.send("GET", "/healthz", &[], b"").status, 200);

    let reply = trickle.read("POST");
    assert_eq!(reply.status, 408);
    assert_eq!(reply.header("connection"), Some("close"));
    assert_eq!(trickle.read_to_end(), b"", "then closed");
    let body = reply.json();
    assert_eq!(body["type"], "invalid_request_error");
    assert_eq!(body["code"], "request_timeout");
    assert!(
        body["message"].as_str().unwrap().contains("1500 ms"),
        "{body}"
    );
    assert!(started.elapsed() >= Duration::from_millis(1500));
    for conn in [&mut silent, &mut kept] {
        assert_eq!(conn.read_to_end(), b"", "closed without an answer");
    }
    assert_eq!(seen(&sim, "POST /v1/payments"), 0, "nothing was sent");
    assert!(gw
        .get("/metrics")
        .text()
        .lines()
        .any(|l| l == "payerr_gateway_rejected_total{code=\"request_timeout\"} 1"));
    // Within the time, the same request goes through, its body in one piece or in two.
    assert_eq!(post(&gw.addr, "/pts/v1/payments", &[], "{}").status, 200);
    let mut halves = Conn::open(&gw.addr);
    halves.write(b"POST /pts/v1/payments HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{");
    thread::sleep(Duration::from_millis(100));
    halves.write(b"}");
    assert_eq!(halves.read("POST").status, 200);
    assert_eq!(seen(&sim, "POST /v1/payments"), 2);
    // The access line names the refusal, as it names the front door's.
    let (status, log) = gw.stop();
    assert!(status.success());
    let refused: Vec<_> = log
        .iter()
        .filter(|line| line["rejected"] == "request_timeout")
        .collect();
    assert_eq!(refused.len(), 1, "{log:?}");
    assert_eq!(refused[0]["status"], 408);
}

#[test]
fn a_timeout_after_sending_is_unknown_never_retried_nor_failed_over() {
    let dir = scratch("gateway-timeout");
    let primary = simulator("portone");
    let fallback = simulator("portone");
    let providers = provider(
        "main",
        "portone",
        &primary.addr,
        "fallback = \"spare\"\ntimeout_ms = 300",
    ) + &provider("spare", "portone", &fallback.addr, "");
    let gw = gateway(&dir, "", &providers);
    let reply = post(
        &gw.addr,
        "/main/v1/payments",
        &[
            ("X-Simulate-Fault", "timeout"),
            ("Idempotency-Key", "0f7e4c2a-9b1d-4e3f-8a5c-6d7e8f9a0b77"),
        ],
        "{}",
    );
    assert_eq!(reply.header("payerr-outcome"), Some("unknown"));
    assert_eq!(reply.header("payerr-code"), Some("timeout"));
    assert_eq!(reply.header("payerr-next-action"), Some("poll"));
    assert_eq!(reply.header("payerr-failover-safe"), Some("false"));
    assert_eq!(reply.header("payerr-attempts"), Some("1"));
    assert_eq!(reply.header("payerr-provider"), Some("main"));
    assert_eq!(
        reply.header("payerr-operation-id"),
        Some("0f7e4c2a-9b1d-4e3f-8a5c-6d7e8f9a0b77")
    );
    let body = reply.json();
    assert_eq!(
        (body["type"].as_str(), body["code"].as_str()),
        (Some("api_error"), Some("timeout"))
    );
    assert_eq!(body["operation_id"], "0f7e4c2a-9b1d-4e3f-8a5c-6d7e8f9a0b77");
    assert_eq!(seen(&primary, "POST /v1/payments"), 1);
    let spare = fallback.get("/__simulator/stats").json();
    assert_eq!(
        spare["total"], 0,
        "the fallback must not see a request that may have run: {spare}"
    );
}

#[test]
fn an_unreachable_provider_is_retried_then_failed_over() {
    let dir = scratch("gateway-failover");
    let spare = simulator("pts");
    // A port with nothing behind it: the connection is refused, so nothing was sent.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap().to_string();
    drop(closed);
    let providers = provider("main", "pts", &dead, "fallback = \"spare\"")
        + &provider("spare", "pts", &spare.addr, "");
    let gw = gateway(&dir, "[retry]\nbase_ms = 10\nmax_attempts = 2", &providers);
    let reply = post(&gw.addr, "/main/v1/payments", &[], r#"{"amount":1}"#);
    assert_eq!(
        reply.header("payerr-provider"),
        Some("spare"),
        "{:?}",
        reply.headers
    );
    assert!(matches!(
        reply.header("payerr-outcome"),
        Some("succeeded" | "pending")
    ));
    assert_eq!(reply.header("payerr-attempts"), Some("3"));
    assert_eq!(seen(&spare, "POST /v1/payments"), 1);
}

#[test]
fn unknown_outcomes_are_polled_until_they_resolve() {
    let dir = scratch("gateway-poll");
    let sim = simulator("result-status");
    let gw = gateway(
        &dir,
        "[poll]\ninterval_ms = 100\ntimeout_ms = 5000",
        &provider(
            "rs",
            "result-status",
            &sim.addr,
            "status_path = \"/v1/payments/{id}\"\ntimeout_ms = 300",
        ),
    );
    // The provider answers "unknown" first and the decline when the operation is queried.
    let reply = post(
        &gw.addr,
        "/rs/v1/payments",
        &[
            ("X-Simulate-Then", "INSUFFICIENT_BALANCE"),
            ("Idempotency-Key", "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c51"),
        ],
        "{}",
    );
    assert_eq!(
        reply.header("payerr-outcome"),
        Some("failed"),
        "{:?} {}",
        reply.headers,
        reply.text()
    );
    assert_eq!(reply.header("payerr-category"), Some("insufficient_funds"));
    assert_eq!(
        reply.header("payerr-operation-id"),
        Some("1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c51")
    );
    assert_eq!(seen(&sim, "POST /v1/payments"), 1, "never re-sent");
    assert!(
        seen(
            &sim,
            "GET /v1/payments/1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c51"
        ) >= 1
    );

    // A timeout after sending is polled too: the operation ran, and its status says so.
    let reply = post(
        &gw.addr,
        "/rs/v1/payments",
        &[
            ("X-Simulate-Fault", "timeout"),
            ("Idempotency-Key", "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c52"),
        ],
        "{}",
    );
    assert_eq!(
        reply.header("payerr-outcome"),
        Some("succeeded"),
        "{:?} {}",
        reply.headers,
        reply.text()
    );
    assert_eq!(seen(&sim, "POST /v1/payments"), 2);
}

/// Sends requests from `threads` threads until `stop`; returns (request id, when its answer came).
fn load(
    addr: &str,
    threads: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<thread::JoinHandle<Vec<(String, Instant)>>> {
    (0..threads)
        .map(|t| {
            let (addr, stop) = (addr.to_owned(), stop.clone());
            thread::spawn(move || {
                let mut done = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let id = format!("load-{t}-{n}");
                    let reply = std::panic::catch_unwind(|| {
                        post(&addr, "/pts/v1/payments", &[("X-Request-Id", &id)], "{}")
                    });
                    match reply {
                        Ok(r) if r.status == 200 => done.push((id, Instant::now())),
                        _ => break, // the gateway was killed mid-request
                    }
                }
                done
            })
        })
        .collect()
}

#[test]
fn events_are_recorded_masked_and_survive_kill_9_as_documented() {
    let dir = scratch("gateway-events");
    let sim = simulator("pts");
    let gw = gateway(
        &dir,
        "event_flush_ms = 50",
        &provider("pts", "pts", &sim.addr, ""),
    );
    // A card number in the query and the body, and a CVV in the query.
    let pan = "4111111111111111";
    let reply = post(
        &gw.addr,
        &format!("/pts/v1/payments?card={pan}&cvv=123&x=1"),
        &[],
        &format!(r#"{{"card":"{pan}","cvv":"123"}}"#),
    );
    assert_eq!(reply.status, 200);

    let stop = Arc::new(AtomicBool::new(false));
    let workers = load(&gw.addr, 4, &stop);
    thread::sleep(Duration::from_millis(1_500));
    let killed_at = Instant::now();
    gw.signal("KILL");
    stop.store(true, Ordering::Relaxed);
    let answered: Vec<(String, Instant)> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(
        answered.len() > 50,
        "only {} requests under load",
        answered.len()
    );
    drop(gw);

    let db = data_dir(&dir).join("events.sqlite3");
    let stored =
        payerr_events::request_ids(&data_dir(&dir)).expect("the database opens after kill -9");
    // The guarantee: an event recorded more than event_flush_ms (+ one commit) before the kill is
    // on disk. An answer is sent after its event is recorded; allow the commit one second.
    let promised: Vec<&String> = answered
        .iter()
        .filter(|(_, at)| killed_at.duration_since(*at) > Duration::from_millis(50 + 1_000))
        .map(|(id, _)| id)
        .collect();
    assert!(!promised.is_empty());
    let lost: Vec<&&String> = promised
        .iter()
        .filter(|id| !stored.contains(**id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} promised events lost: {lost:?}",
        lost.len(),
        promised.len()
    );

    // Nothing in the database file (or its WAL) is a card number, and no CVV value survives.
    for file in fs::read_dir(data_dir(&dir))
        .unwrap()
        .map(|e| e.unwrap().path())
    {
        let bytes = fs::read(&file).unwrap();
        assert_eq!(
            payerr_events::find_card_numbers(&bytes),
            Vec::<String>::new(),
            "{}",
            file.display()
        );
        assert!(
            !String::from_utf8_lossy(&bytes).contains("cvv=123"),
            "{}",
            file.display()
        );
    }
    assert!(db.exists());
}

/// Connections are dealt round robin to one worker thread per core: requests in flight on several
/// connections at once (so on every worker) are all answered after SIGTERM, before the gateway stops.
#[test]
fn sigterm_drains_requests_in_flight_on_every_worker() {
    let dir = scratch("gateway-drain");
    let sim = simulator("pts");
    let gw = gateway(&dir, "", &provider("pts", "pts", &sim.addr, ""));
    let in_flight: Vec<_> = (0..6)
        .map(|_| {
            let addr = gw.addr.clone();
            thread::spawn(move || {
                post(
                    &addr,
                    "/pts/v1/payments",
                    &[("X-Simulate-Fault", "slow:700")],
                    "{}",
                )
            })
        })
        .collect();
    wait_seen(&sim, "POST /v1/payments", 6);
    gw.signal("TERM");
    for request in in_flight {
        let reply = request.join().unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text());
        // pts answers an accepted payment with 1000, "Request accepted".
        assert_eq!(reply.header("payerr-code"), Some("pending"));
    }
    let (status, log) = gw.stop();
    assert!(status.success(), "{status:?}");
    let messages: Vec<&str> = log.iter().filter_map(|l| l["msg"].as_str()).collect();
    let stopped = messages.iter().position(|m| *m == "stopped");
    let flushed = messages
        .iter()
        .position(|m| *m == "stopped; events flushed");
    assert!(stopped.is_some() && stopped < flushed, "{messages:?}");
    assert_eq!(
        payerr_events::request_ids(&data_dir(&dir)).unwrap().len(),
        6
    );
}

#[test]
fn sigterm_flushes_every_event_and_the_report_counts_them() {
    let dir = scratch("gateway-report");
    let sim = simulator("portone");
    let gw = gateway(&dir, "", &provider("acme", "portone", &sim.addr, ""));
    let ids: Arc<Mutex<Vec<String>>> = Arc::default();
    for n in 0..20 {
        let code = if n % 4 == 0 { "6001" } else { "2000" };
        let reply = post(
            &gw.addr,
            "/acme/v1/payments",
            &[("X-Simulate-Code", code)],
            "{}",
        );
        ids.lock()
            .unwrap()
            .push(reply.header("x-request-id").unwrap().to_owned());
    }
    let (status, log) = gw.stop();
    assert!(status.success());
    assert!(
        log.iter().any(|l| l["msg"] == "stopped; events flushed"),
        "{log:?}"
    );
    let stored = payerr_events::request_ids(&data_dir(&dir)).unwrap();
    for id in ids.lock().unwrap().iter() {
        assert!(stored.contains(id), "{id} not recorded");
    }
    let out = payerr(
        &[
            "report",
            "--data-dir",
            data_dir(&dir).to_str().unwrap(),
            "--format",
            "json",
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["totals"]["requests"], 20, "{report}");
}

const DAY_MS: i64 = 86_400_000;

/// What an earlier run of the gateway left in `dir`: one attempt per `(request id, age)`.
fn leave_events(dir: &Path, events: &[(&str, i64)]) {
    let earlier =
        payerr_events::EventLog::open(&data_dir(dir), payerr_events::EventLogOptions::default())
            .unwrap();
    let now = payerr_events::now_ms();
    for &(request_id, age_ms) in events {
        earlier.record(payerr_events::Event {
            at_ms: now - age_ms,
            request_id: request_id.to_owned(),
            provider: "acme".to_owned(),
            dialect: "portone".to_owned(),
            method: "POST".to_owned(),
            path: "/v1/payments".to_owned(),
            attempt: 1,
            kind: payerr_events::AttemptKind::Send,
            http_status: Some(200),
            outcome: payerr::Outcome::Succeeded,
            category: payerr::Category::Approved,
            code: "approved".to_owned(),
            provider_code: Some("2000".to_owned()),
            latency_us: 1_000,
            error: None,
            operation_id: None,
        });
    }
    earlier.close().unwrap();
}

#[test]
fn with_a_retention_older_events_are_deleted_and_counted() {
    let dir = scratch("gateway-retention");
    leave_events(
        &dir,
        &[
            ("old-1", 3 * DAY_MS),
            ("old-2", 3 * DAY_MS),
            ("recent", 3_600_000),
        ],
    );

    let sim = simulator("portone");
    let gw = gateway(
        &dir,
        "event_retention_days = 2",
        &provider("acme", "portone", &sim.addr, ""),
    );
    let reply = post(&gw.addr, "/acme/v1/payments", &[], "{}");
    let new_id = reply.header("x-request-id").unwrap().to_owned();
    wait_for_metric(&gw, "payerr_gateway_events_pruned_total 2\n");
    assert!(gw.stop().0.success());
    let mut stored: Vec<String> = payerr_events::request_ids(&data_dir(&dir))
        .unwrap()
        .into_iter()
        .collect();
    stored.sort();
    let mut expected = vec!["recent".to_owned(), new_id];
    expected.sort();
    assert_eq!(stored, expected);
}

/// A database that refuses the writer's commits (here a trigger; in production a full disk) loses
/// events: `/metrics` counts the refusals and the events given up, and the log says so with the
/// database's error, at the latest when the gateway stops.
#[test]
fn events_the_database_refuses_are_counted_and_logged() {
    let dir = scratch("gateway-refused");
    let sim = simulator("pts");
    let gw = gateway(&dir, "", &provider("pts", "pts", &sim.addr, ""));
    assert_eq!(post(&gw.addr, "/pts/v1/payments", &[], "{}").status, 200);
    wait_for_metric(&gw, "payerr_gateway_events_written_total 1\n");
    let db = rusqlite::Connection::open(payerr_events::db_path(&data_dir(&dir))).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db.execute_batch(
        "CREATE TRIGGER refuse BEFORE INSERT ON events
         BEGIN SELECT RAISE(ROLLBACK, 'refused by the test'); END",
    )
    .unwrap();
    assert_eq!(post(&gw.addr, "/pts/v1/payments", &[], "{}").status, 200);
    // Tried twice, then given up.
    wait_for_metric(&gw, "payerr_gateway_events_lost_total 1\n");
    assert!(has_metric(
        &gw,
        "payerr_gateway_event_write_errors_total 2\n"
    ));
    let (status, log) = gw.stop();
    assert!(status.success(), "{log:?}");
    // One line, or two when a reading fell between the tries: together they tell it all.
    let alarms: Vec<&Value> = log
        .iter()
        .filter(|l| l["event_write_errors_since_last"].is_u64())
        .collect();
    let sum = |field: &str| {
        alarms
            .iter()
            .map(|l| l[field].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(sum("event_write_errors_since_last"), 2, "{alarms:?}");
    assert_eq!(sum("events_lost_since_last"), 1, "{alarms:?}");
    let last = alarms
        .last()
        .unwrap_or_else(|| panic!("no alarm in {log:?}"));
    assert_eq!(last["level"], "error", "{last}");
    assert_eq!(
        last["msg"], "events lost: the event database refused their commits",
        "{last}"
    );
    assert_eq!(last["events_lost_total"], 1, "{last}");
    assert!(
        last["error"]
            .as_str()
            .is_some_and(|e| e.contains("refused by the test")),
        "{last}"
    );
}

/// A retention round the database refuses loses no event, and is told as such: the first round
/// runs as the gateway starts, before the log is watched, and is told all the same.
#[test]
fn a_refused_retention_round_is_told_without_a_loss() {
    let dir = scratch("gateway-retention-refused");
    leave_events(&dir, &[("old-1", 3 * DAY_MS)]);
    rusqlite::Connection::open(payerr_events::db_path(&data_dir(&dir)))
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER keep BEFORE DELETE ON events
             BEGIN SELECT RAISE(ROLLBACK, 'kept by the test'); END",
        )
        .unwrap();
    let sim = simulator("portone");
    let gw = gateway(
        &dir,
        "event_retention_days = 2",
        &provider("acme", "portone", &sim.addr, ""),
    );
    wait_for_metric(&gw, "payerr_gateway_event_write_errors_total 1\n");
    let (status, log) = gw.stop();
    assert!(status.success(), "{log:?}");
    let line = log
        .iter()
        .find(|l| l["event_write_errors_since_last"] == 1)
        .unwrap_or_else(|| panic!("no line for the refused round in {log:?}"));
    assert_eq!(line["level"], "warn", "{line}");
    assert_eq!(line["events_lost_total"], 0, "{line}");
    assert!(
        line["error"]
            .as_str()
            .is_some_and(|e| e.contains("kept by the test")),
        "{line}"
    );
}

/// Sends a payment to the pts provider `sim` through `gw`, which the provider answers after
/// `slow_ms`, and hangs up once the provider has it, while it is still answering.
fn pay_and_hang_up(gw: &Daemon, sim: &Daemon, request_id: &str, slow_ms: u64) {
    use std::io::Write as _;
    let mut client = std::net::TcpStream::connect(&gw.addr).unwrap();
    write!(
        client,
        "POST /pts/v1/payments HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n\
         X-Request-Id: {request_id}\r\nX-Simulate-Fault: slow:{slow_ms}\r\nContent-Length: 2\r\n\r\n{{}}"
    )
    .unwrap();
    wait_seen(sim, "POST /v1/payments", 1);
}

/// `request_id`, sent by [`pay_and_hang_up`], ran to its end: its access line in `log` has the
/// provider's answer, and its attempt is in the database.
fn assert_finished(dir: &Path, log: &[Value], request_id: &str) {
    let line = log
        .iter()
        .find(|l| l["msg"] == "request" && l["request_id"] == request_id)
        .unwrap_or_else(|| panic!("no access line for {request_id} in {log:?}"));
    // What pts answers to a payment it is slow to answer.
    assert_eq!(line["outcome"], "pending", "{line}");
    let stored = payerr_events::request_ids(&data_dir(dir)).unwrap();
    assert!(stored.contains(request_id), "{stored:?}");
}

#[test]
fn a_client_that_hangs_up_cancels_nothing_the_attempt_is_finished_and_recorded() {
    let dir = scratch("gateway-hangup");
    let sim = simulator("pts");
    let gw = gateway(&dir, "", &provider("pts", "pts", &sim.addr, ""));
    pay_and_hang_up(&gw, &sim, "hung-up-1", 600);
    // The attempt runs to its end: its event is recorded and its access line written.
    wait_for_metric(&gw, "payerr_gateway_events_recorded_total 1\n");
    let (status, log) = gw.stop();
    assert!(status.success());
    assert_finished(&dir, &log, "hung-up-1");
}

/// A request whose client hung up has no connection left for the graceful stop to wait for; it is
/// waited for all the same, and its attempt is in the database when the gateway exits.
#[test]
fn sigterm_lets_a_request_whose_client_hung_up_finish_and_records_it() {
    let dir = scratch("gateway-hangup-sigterm");
    let sim = simulator("pts");
    let gw = gateway(&dir, "", &provider("pts", "pts", &sim.addr, ""));
    pay_and_hang_up(&gw, &sim, "hung-up-2", 1500);
    // Time for the gateway to see the connection close and carry on without it.
    thread::sleep(Duration::from_millis(200));
    let (status, log) = gw.stop();
    assert!(status.success(), "{log:?}");
    assert!(log.iter().any(|l| l["msg"] == "stopped"), "{log:?}");
    assert_finished(&dir, &log, "hung-up-2");
}

/// The grace period bounds the wait: a request still running when it ends is cut, and the gateway
/// exits without waiting for the provider.
#[test]
fn sigterm_cuts_a_request_whose_client_hung_up_when_the_grace_period_ends() {
    let dir = scratch("gateway-hangup-grace");
    let sim = simulator("pts");
    let gw = gateway(
        &dir,
        "shutdown_grace_ms = 300",
        &provider("pts", "pts", &sim.addr, ""),
    );
    pay_and_hang_up(&gw, &sim, "hung-up-3", 5000);
    thread::sleep(Duration::from_millis(200));
    let stopping = Instant::now();
    let (status, log) = gw.stop();
    assert!(status.success(), "{log:?}");
    assert!(
        stopping.elapsed() < Duration::from_millis(4000),
        "the stop waited for the provider: {log:?}"
    );
    assert!(
        log.iter().any(|l| l["msg"]
            .as_str()
            .is_some_and(|m| m.starts_with("grace period over"))),
        "{log:?}"
    );
}
