//! The gateway's front door end to end: client keys, signatures, nonces, rate limits and
//! idempotency keys through real `payerr gateway` processes in front of a real simulator, with the
//! embedded store and with Redis (`PAYERR_TEST_REDIS`, default `redis://127.0.0.1:6379`; `.ci/run`
//! starts a Redis when none is running).

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use payerr_frontdoor::signature::{body_sha256_hex, sign, signing_string};
use serde_json::Value;

use crate::commands::scratch;
use crate::gateway::{gateway_with_env, provider, seen};
use crate::http::{self, Reply};
use crate::process::{simulator, Daemon};

const SECRET: &str = "shop1-secret-8c1f0e";
const OTHER_SECRET: &str = "shop2-secret-77ad21";
const KEY: &str = "ak_test_shop1";

/// shop-1 and shop-2 may call; the others are there to be refused.
const CLIENTS: &str = r#"
[[clients]]
id = "shop-1"
api_key = "ak_test_shop1"
secret_env = "SHOP1_SECRET"
allowed_ips = ["127.0.0.0/8", "::1"]

[[clients]]
id = "shop-2"
api_key = "ak_test_shop2"
secret_env = "SHOP2_SECRET"
rate_per_s = 20
burst = 20

[[clients]]
id = "paused"
api_key = "ak_test_paused"
secret_env = "SHOP1_SECRET"
enabled = false

[[clients]]
id = "old"
api_key = "ak_test_old"
secret_env = "SHOP1_SECRET"
expires_at = "2020-01-01T00:00:00Z"

[[clients]]
id = "office"
api_key = "ak_test_office"
secret_env = "SHOP1_SECRET"
allowed_ips = ["10.0.0.0/8"]

[[clients]]
id = "slow-lane"
api_key = "ak_test_slow"
secret_env = "SHOP1_SECRET"
rate_per_s = 0.5
burst = 2
"#;

const ENV: [(&str, &str); 2] = [("SHOP1_SECRET", SECRET), ("SHOP2_SECRET", OTHER_SECRET)];

/// The test Redis.
fn redis_url() -> String {
    std::env::var("PAYERR_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A key prefix no other test run uses.
fn redis_prefix(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("payerr-test:{}:{nanos}:{name}:", std::process::id())
}

/// A gateway with `settings` and `CLIENTS` over one provider `acme` (typed-error) at `upstream`,
/// its data under `dir`.
fn gateway(dir: &Path, settings: &str, upstream: &str) -> Daemon {
    let tables = format!(
        "{}\n{CLIENTS}",
        provider("acme", "typed-error", upstream, "")
    );
    gateway_with_env(dir, settings, &tables, &ENV)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A nonce no other request of this test run uses.
fn nonce() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "n-{}-{}-{}",
        std::process::id(),
        now(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A request as a client builds it.
struct Call<'a> {
    method: &'a str,
    target: &'a str,
    body: &'a str,
    key: &'a str,
    secret: &'a str,
    timestamp: u64,
    nonce: String,
    idempotency_key: Option<&'a str>,
}

impl<'a> Call<'a> {
    /// A signed POST by shop-1.
    fn post(target: &'a str, body: &'a str) -> Call<'a> {
        Call {
            method: "POST",
            target,
            body,
            key: KEY,
            secret: SECRET,
            timestamp: now(),
            nonce: nonce(),
            idempotency_key: None,
        }
    }

    fn signature(&self) -> String {
        let text = signing_string(
            self.method,
            self.target,
            &self.timestamp.to_string(),
            &self.nonce,
            &body_sha256_hex(self.body.as_bytes()),
        );
        sign(self.secret.as_bytes(), &text)
    }

    /// Sends it with `extra` headers; `signature` replaces the computed one when given.
    fn send_with(&self, addr: &str, extra: &[(&str, &str)], signature: Option<&str>) -> Reply {
        let computed = self.signature();
        let timestamp = self.timestamp.to_string();
        let mut headers = vec![
            ("Content-Type", "application/json"),
            ("Api-Key", self.key),
            ("Timestamp", timestamp.as_str()),
            ("Nonce", self.nonce.as_str()),
            ("Signature", signature.unwrap_or(&computed)),
        ];
        if let Some(key) = self.idempotency_key {
            headers.push(("Idempotency-Key", key));
        }
        headers.extend_from_slice(extra);
        http::request(
            addr,
            self.method,
            self.target,
            &headers,
            self.body.as_bytes(),
        )
    }

    fn send(&self, addr: &str) -> Reply {
        self.send_with(addr, &[], None)
    }

    /// Sends it with `extra` headers and hangs up without reading the answer.
    fn send_and_hang_up(&self, addr: &str, extra: &[(&str, &str)]) {
        let mut text = format!(
            "{} {} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nApi-Key: {}\r\nTimestamp: {}\r\nNonce: {}\r\nSignature: {}\r\n",
            self.method,
            self.target,
            self.body.len(),
            self.key,
            self.timestamp,
            self.nonce,
            self.signature()
        );
        for (name, value) in self
            .idempotency_key
            .map(|k| ("Idempotency-Key", k))
            .iter()
            .chain(extra)
        {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str("\r\n");
        text.push_str(self.body);
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.write_all(text.as_bytes()).unwrap();
        thread::sleep(Duration::from_millis(200));
    }
}

/// Asserts a seed 000 error with its status.
fn assert_error(reply: &Reply, status: u16, kind: &str, code: &str) {
    assert_eq!(reply.status, status, "{code}: {}", reply.text());
    let body = reply.json();
    assert_eq!(
        (body["type"].as_str(), body["code"].as_str()),
        (Some(kind), Some(code)),
        "{body}"
    );
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(body.get("param").is_some());
}

/// No log line carries a secret, an API key or a signature.
fn assert_no_credentials(log: &[Value], signatures: &[String]) {
    let text: Vec<String> = log.iter().map(Value::to_string).collect();
    let mut secrets = vec![SECRET, OTHER_SECRET, KEY, "ak_test_shop2", "ak_test_slow"];
    secrets.extend(signatures.iter().map(String::as_str));
    for line in &text {
        for secret in &secrets {
            assert!(!line.contains(secret), "{secret:?} in the log: {line}");
        }
    }
    assert!(
        text.iter().any(|l| l.contains("\"client\":\"shop-1\"")),
        "the access log names the client by id"
    );
}

/// A change to a well-formed request.
type Tamper = fn(&mut Call<'_>);

#[test]
fn every_check_refuses_in_the_documented_order() {
    let dir = scratch("frontdoor-checks");
    let sim = simulator("typed-error");
    let gw = gateway(&dir, "", &sim.addr);
    let target = "/acme/v1/payments";
    let body = r#"{"amount":100}"#;

    let unsigned = http::request(&gw.addr, "POST", target, &[], body.as_bytes());
    assert_error(&unsigned, 401, "authentication_error", "api_key_required");
    let cases: [(&str, Tamper, u16, &str, &str); 6] = [
        (
            "unknown key",
            (|c| c.key = "ak_test_nobody"),
            401,
            "authentication_error",
            "api_key_not_found",
        ),
        (
            "disabled",
            (|c| c.key = "ak_test_paused"),
            401,
            "authentication_error",
            "api_key_disabled",
        ),
        (
            "expired",
            (|c| c.key = "ak_test_old"),
            401,
            "authentication_error",
            "api_key_expired",
        ),
        (
            "address",
            (|c| c.key = "ak_test_office"),
            403,
            "permission_error",
            "ip_not_allowed",
        ),
        (
            "old timestamp",
            (|c| c.timestamp -= 301),
            401,
            "authentication_error",
            "timestamp_invalid",
        ),
        (
            "future timestamp",
            (|c| c.timestamp += 301),
            401,
            "authentication_error",
            "timestamp_invalid",
        ),
    ];
    for (what, change, status, kind, code) in cases {
        let mut call = Call::post(target, body);
        change(&mut call);
        let reply = call.send(&gw.addr);
        assert_error(&reply, status, kind, code);
        assert!(
            !reply.text().contains(call.key),
            "{what}: the key is echoed"
        );
    }
    // Each check comes before the next: an expired key with a bad signature hears of its expiry.
    let mut expired = Call::post(target, body);
    expired.key = "ak_test_old";
    let reply = expired.send_with(&gw.addr, &[], Some("00"));
    assert_error(&reply, 401, "authentication_error", "api_key_expired");

    // A wrong signature, a signature by the wrong secret, a body changed after signing.
    let call = Call::post(target, body);
    let reply = call.send_with(&gw.addr, &[], Some(&"0".repeat(64)));
    assert_error(&reply, 401, "authentication_error", "signature_invalid");
    let mut other = Call::post(target, body);
    other.secret = OTHER_SECRET;
    assert_error(
        &other.send(&gw.addr),
        401,
        "authentication_error",
        "signature_invalid",
    );
    let mut tampered = Call::post(target, r#"{"amount":1}"#);
    let signature = tampered.signature();
    tampered.body = r#"{"amount":100000}"#;
    assert_error(
        &tampered.send_with(&gw.addr, &[], Some(&signature)),
        401,
        "authentication_error",
        "signature_invalid",
    );
    // A bad signature did not use its nonce up: signed right, the same nonce goes through.
    let fine = Call {
        nonce: call.nonce.clone(),
        ..Call::post(target, body)
    };
    let first = fine.send(&gw.addr);
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("payerr-outcome"), Some("succeeded"));
    // Once used, the nonce is refused, before the signature is looked at.
    assert_error(
        &fine.send(&gw.addr),
        401,
        "authentication_error",
        "request_replayed",
    );
    assert_error(
        &fine.send_with(&gw.addr, &[], Some(&"1".repeat(64))),
        401,
        "authentication_error",
        "request_replayed",
    );
    let mut long = Call::post(target, body);
    long.nonce = "n".repeat(65);
    assert_error(
        &long.send(&gw.addr),
        401,
        "authentication_error",
        "nonce_invalid",
    );
    assert_eq!(
        seen(&sim, "POST /v1/payments"),
        1,
        "only the good request went upstream"
    );

    // Over the rate: 429 with Retry-After, after the burst of two.
    let slow = |c: &mut Call| c.key = "ak_test_slow";
    for _ in 0..2 {
        let mut call = Call::post(target, body);
        slow(&mut call);
        assert_eq!(call.send(&gw.addr).status, 200);
    }
    let mut call = Call::post(target, body);
    slow(&mut call);
    let limited = call.send(&gw.addr);
    assert_error(&limited, 429, "rate_limit_error", "rate_limited");
    let wait: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "Retry-After {wait}");

    let metrics = gw.get("/metrics").text();
    assert!(metrics.contains("payerr_gateway_rejected_total{code=\"signature_invalid\"} 3"));
    let (status, log) = gw.stop();
    assert!(status.success());
    let signatures = vec![fine.signature(), call.signature()];
    assert_no_credentials(&log, &signatures);
}

/// A provider that answers `{}` to one request and hands over the request's head.
fn capturing_upstream() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (send, heads) = mpsc::channel();
    thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        while reader.read_line(&mut head).unwrap() > 2 {}
        let reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
        reader.get_mut().write_all(reply.as_bytes()).unwrap();
        send.send(head).unwrap();
    });
    (addr, heads)
}

#[test]
fn credentials_stay_at_the_gateway_and_the_query_is_signed() {
    let dir = scratch("frontdoor-forwarded");
    let (upstream, heads) = capturing_upstream();
    let gw = gateway(&dir, "", &upstream);
    let call = Call {
        method: "GET",
        idempotency_key: Some("0d9f7e6c-5b4a-4f3e-8d2c-1b0a9f8e7d6c"),
        ..Call::post("/acme/v1/payments/op_1?expand=all", "")
    };
    let reply = call.send_with(&gw.addr, &[("X-Trace", "t-1")], None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let head = heads
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        head.starts_with("get /v1/payments/op_1?expand=all http/1.1"),
        "{head}"
    );
    assert!(
        head.contains("x-trace: t-1") && head.contains("idempotency-key: "),
        "{head}"
    );
    for name in ["api-key", "timestamp", "nonce", "signature"] {
        assert!(
            !head.contains(&format!("\n{name}:")),
            "{name} forwarded: {head}"
        );
    }
    // Signing without the query is signing another request.
    let mut bare = Call {
        method: "GET",
        ..Call::post("/acme/v1/payments/op_1", "")
    };
    let signature = bare.signature();
    bare.target = "/acme/v1/payments/op_1?expand=all";
    assert_error(
        &bare.send_with(&gw.addr, &[], Some(&signature)),
        401,
        "authentication_error",
        "signature_invalid",
    );
}

/// A POST with an idempotency key by shop-1.
fn keyed<'a>(target: &'a str, body: &'a str, key: &'a str) -> Call<'a> {
    Call {
        idempotency_key: Some(key),
        ..Call::post(target, body)
    }
}

#[test]
fn idempotency_keys_replay_or_refuse_as_seed_000_says() {
    let dir = scratch("frontdoor-idempotency");
    let sim = simulator("typed-error");
    let gw = gateway(&dir, "", &sim.addr);
    let key = "7c4a8d09-ca37-4d6e-9f1b-2b7e3c9a1d55";
    let body = r#"{"amount":100}"#;

    for bad in ["order-42", "7c4a8d09-ca37-1d6e-9f1b-2b7e3c9a1d55"] {
        let reply = keyed("/acme/v1/payments", body, bad).send(&gw.addr);
        assert_error(&reply, 400, "idempotence_error", "invalid_key_format");
    }
    // A decline answered once, then replayed byte for byte with the same headers.
    let decline = [
        ("X-Simulate-Code", "expired_card"),
        ("X-Simulate-Type", "payment_error"),
    ];
    let first = keyed("/acme/v1/payments", body, key).send_with(&gw.addr, &decline, None);
    assert_eq!(first.status, 400, "{}", first.text());
    assert_eq!(first.header("payerr-code"), Some("expired_card"));
    assert_eq!(first.header("idempotent-replayed"), None);
    // The replay does not need the simulator's header: it is not sent upstream.
    let again = keyed("/acme/v1/payments", body, key).send(&gw.addr);
    assert_eq!(again.status, first.status);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    for (name, value) in &first.headers {
        if !["x-request-id", "date"].contains(&name.to_ascii_lowercase().as_str()) {
            assert_eq!(again.header(name), Some(value.as_str()), "{name}");
        }
    }
    assert_ne!(again.header("x-request-id"), first.header("x-request-id"));
    // The key written in capitals is the same key.
    let upper = key.to_uppercase();
    let shouted = keyed("/acme/v1/payments", body, &upper).send(&gw.addr);
    assert_eq!(shouted.header("idempotent-replayed"), Some("true"));

    let mut other_client = keyed("/acme/v1/payments", body, key);
    other_client.key = "ak_test_shop2";
    other_client.secret = OTHER_SECRET;
    let mut put = keyed("/acme/v1/payments", body, key);
    put.method = "PUT";
    let refusals = [
        (other_client, "key_mismatch_account"),
        (put, "key_mismatch_api"),
        (keyed("/acme/v1/refunds", body, key), "key_mismatch_api"),
        (
            keyed("/acme/v1/payments?capture=false", body, key),
            "key_mismatch_api",
        ),
        (
            keyed("/acme/v1/payments", r#"{"amount":200}"#, key),
            "key_mismatch_params",
        ),
    ];
    for (call, code) in refusals {
        assert_error(&call.send(&gw.addr), 400, "idempotence_error", code);
    }
    // One upstream call in all; a GET is not subject to keys.
    assert_eq!(seen(&sim, "POST /v1/payments"), 1);
    let get = Call {
        method: "GET",
        idempotency_key: Some("not-a-uuid"),
        ..Call::post("/acme/v1/payments/op_1", "")
    };
    // Forwarded (the simulator knows no op_1), not refused for its key.
    let reply = get.send(&gw.addr);
    assert_eq!(
        reply.header("payerr-provider"),
        Some("acme"),
        "{}",
        reply.text()
    );
    assert_eq!(seen(&sim, "GET /v1/payments/op_1"), 1);
    let metrics = gw.get("/metrics").text();
    assert!(
        metrics.contains("payerr_gateway_idempotent_replays_total 2"),
        "{metrics}"
    );
}

/// Sends `n` identical keyed POSTs at once to `gateways` (in turn) while the provider takes
/// `slow_ms` to answer; returns every reply.
fn stampede(gateways: &[&str], n: usize, key: &str, slow_ms: u64) -> Vec<Reply> {
    let slow = format!("slow:{slow_ms}");
    let start = Arc::new(std::sync::Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let addr = gateways[i % gateways.len()].to_owned();
            let (key, slow, start) = (key.to_owned(), slow.clone(), start.clone());
            thread::spawn(move || {
                let call = keyed("/acme/v1/payments", r#"{"amount":4200}"#, &key);
                start.wait();
                call.send_with(&addr, &[("X-Simulate-Fault", &slow)], None)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Exactly one reply is the provider's first answer; every other one is `request_being_processed`
/// or its replay.
fn assert_one_call(replies: &[Reply]) {
    let originals: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.status == 200 && r.header("idempotent-replayed").is_none())
        .collect();
    assert_eq!(originals.len(), 1, "one original answer");
    let original = originals[0];
    let mut processing = 0;
    for r in replies {
        if r.status == 400 {
            assert_error(r, 400, "idempotence_error", "request_being_processed");
            processing += 1;
        } else if r.header("idempotent-replayed").is_some() {
            assert_eq!((r.status, &r.body), (original.status, &original.body));
        } else {
            assert!(std::ptr::eq(r, original), "{} {}", r.status, r.text());
        }
    }
    assert!(
        processing > 0,
        "some requests came while the first was in flight"
    );
}

#[test]
fn two_hundred_identical_requests_make_one_upstream_call() {
    let dir = scratch("frontdoor-stampede");
    let sim = simulator("typed-error");
    let gw = gateway(&dir, "", &sim.addr);
    let replies = stampede(
        &[&gw.addr],
        200,
        "0b6f3c1e-5d2a-4c8e-a1f0-9e8d7c6b5a43",
        1500,
    );
    assert_one_call(&replies);
    assert_eq!(seen(&sim, "POST /v1/payments"), 1);
}

#[test]
fn two_gateways_on_one_redis_act_as_one() {
    let sim = simulator("typed-error");
    let store = format!(
        "store = \"{}\"\nstore_prefix = \"{}\"",
        redis_url(),
        redis_prefix("stampede")
    );
    let (dir_a, dir_b) = (scratch("frontdoor-redis-a"), scratch("frontdoor-redis-b"));
    let a = gateway(&dir_a, &store, &sim.addr);
    let b = gateway(&dir_b, &store, &sim.addr);
    let replies = stampede(
        &[&a.addr, &b.addr],
        200,
        "1c7e4d2f-6e3b-4d9f-b2a1-0f9e8d7c6b54",
        1500,
    );
    assert_one_call(&replies);
    assert_eq!(seen(&sim, "POST /v1/payments"), 1);

    // A nonce used at one gateway is refused at the other.
    let call = Call::post("/acme/v1/payments", "{}");
    assert_eq!(call.send(&a.addr).status, 200);
    assert_error(
        &call.send(&b.addr),
        401,
        "authentication_error",
        "request_replayed",
    );
}

#[test]
fn a_rate_limit_holds_across_two_gateways_on_one_redis() {
    let sim = simulator("typed-error");
    let store = format!(
        "store = \"{}\"\nstore_prefix = \"{}\"",
        redis_url(),
        redis_prefix("rate")
    );
    let (dir_a, dir_b) = (scratch("frontdoor-rate-a"), scratch("frontdoor-rate-b"));
    let a = gateway(&dir_a, &store, &sim.addr);
    let b = gateway(&dir_b, &store, &sim.addr);
    // shop-2's limit (20/s, burst 20), spent from both gateways at once for three seconds.
    let (rate, burst, seconds) = (20.0, 20.0, 3.0);
    let allowed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    let handles: Vec<_> = [&a.addr, &b.addr, &a.addr, &b.addr]
        .into_iter()
        .map(|addr| {
            let (addr, allowed) = (addr.clone(), allowed.clone());
            thread::spawn(move || {
                while Instant::now() < until {
                    let call = Call {
                        key: "ak_test_shop2",
                        secret: OTHER_SECRET,
                        ..Call::post("/acme/v1/payments", "{}")
                    };
                    let reply = call.send(&addr);
                    match reply.status {
                        200 => {
                            allowed.fetch_add(1, Ordering::Relaxed);
                        }
                        429 => assert_error(&reply, 429, "rate_limit_error", "rate_limited"),
                        other => panic!("{other}: {}", reply.text()),
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let expected = burst + rate * elapsed;
    let got = allowed.load(Ordering::Relaxed) as f64;
    assert!(
        (got - expected).abs() <= expected * 0.10,
        "{got} requests allowed in {elapsed:.2} s, expected {expected:.0} ± 10%"
    );
}

/// The blocks of docs/client-guide.md marked `<!-- tested: LANG -->`, as (LANG, code).
fn guide_examples() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/client-guide.md");
    let guide = fs::read_to_string(path).unwrap();
    let mut examples = Vec::new();
    let mut rest = guide.as_str();
    while let Some(at) = rest.find("<!-- tested: ") {
        rest = &rest[at + "<!-- tested: ".len()..];
        let lang = rest[..rest.find(" -->").unwrap()].to_owned();
        let fence = rest.find("```").unwrap();
        let code_start = fence + rest[fence..].find('\n').unwrap() + 1;
        let code_end = code_start + rest[code_start..].find("\n```").unwrap();
        examples.push((lang, rest[code_start..code_end].to_owned()));
        rest = &rest[code_end..];
    }
    examples
}

#[test]
fn client_guide_examples_are_accepted() {
    let dir = scratch("frontdoor-guide");
    let sim = simulator("typed-error");
    let gw = gateway(&dir, "", &sim.addr);
    let examples = guide_examples();
    let langs: Vec<&str> = examples.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(langs, ["bash", "python", "node"]);
    for (lang, code) in &examples {
        let (program, file) = match lang.as_str() {
            "bash" => ("bash", "example.sh"),
            "python" => ("python3", "example.py"),
            _ => ("node", "example.js"),
        };
        fs::write(dir.join(file), code).unwrap();
        let out = std::process::Command::new(program)
            .arg(file)
            .current_dir(&dir)
            .env("PAYERR_GATEWAY", format!("http://{}", gw.addr))
            .env("PAYERR_API_KEY", KEY)
            .env("PAYERR_SECRET", SECRET)
            .output()
            .unwrap_or_else(|e| panic!("{program} does not run: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{lang}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("HTTP 200"), "{lang}: {stdout}");
        assert!(
            stdout
                .to_ascii_lowercase()
                .contains("payerr-outcome: succeeded"),
            "{lang}: {stdout}"
        );
    }
    assert_eq!(seen(&sim, "POST /v1/payments"), 3);
}

#[test]
fn a_client_that_hangs_up_finds_its_answer_under_the_key() {
    let dir = scratch("frontdoor-hang-up");
    let sim = simulator("typed-error");
    let gw = gateway(&dir, "", &sim.addr);
    let key = "5ab18c6d-0c7f-4d13-b6e5-4d3c2b1a0f98";
    // The provider takes a second; the client gives up after 200 ms.
    keyed("/acme/v1/payments", r#"{"amount":900}"#, key)
        .send_and_hang_up(&gw.addr, &[("X-Simulate-Fault", "slow:1000")]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let again = loop {
        let reply = keyed("/acme/v1/payments", r#"{"amount":900}"#, key).send(&gw.addr);
        if reply.header("idempotent-replayed").is_some() || Instant::now() > deadline {
            break reply;
        }
        assert_error(&reply, 400, "idempotence_error", "request_being_processed");
        thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(seen(&sim, "POST /v1/payments"), 1);

    // Without a key too, the request runs to its end: its access log line is written.
    Call::post("/acme/v1/payments", "{}")
        .send_and_hang_up(&gw.addr, &[("X-Simulate-Fault", "slow:500")]);
    thread::sleep(Duration::from_millis(800));
    assert_eq!(seen(&sim, "POST /v1/payments"), 2);
    let (_, log) = gw.stop();
    let answered = log
        .iter()
        .filter(|l| l["msg"] == "request" && l["outcome"] == "succeeded" && l["replayed"].is_null())
        .count();
    assert_eq!(answered, 2, "{log:?}");
}

#[test]
fn a_key_is_replayed_after_the_gateway_is_killed_and_restarted() {
    let dir = scratch("frontdoor-restart");
    let sim = simulator("typed-error");
    let gw = gateway(&dir, "", &sim.addr);
    let key = "2d8e5f3a-7f4c-4ea0-83b2-1a0f9e8d7c65";
    let first_call = keyed("/acme/v1/payments", r#"{"amount":700}"#, key);
    let first = first_call.send(&gw.addr);
    assert_eq!(first.status, 200, "{}", first.text());
    // No grace: the answer was stored before it was sent, or the key would not be replayed.
    gw.signal("KILL");
    drop(gw);

    let gw = gateway(&dir, "", &sim.addr);
    let again = keyed("/acme/v1/payments", r#"{"amount":700}"#, key).send(&gw.addr);
    assert_eq!(
        again.header("idempotent-replayed"),
        Some("true"),
        "{}",
        again.text()
    );
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert_eq!(seen(&sim, "POST /v1/payments"), 1);
    // The nonce used before the kill is still used.
    assert_error(
        &first_call.send(&gw.addr),
        401,
        "authentication_error",
        "request_replayed",
    );
}

#[test]
fn an_open_gateway_warns_and_still_sends_a_key_once() {
    let dir = scratch("frontdoor-open");
    let sim = simulator("typed-error");
    let gw = crate::gateway::gateway(&dir, "", &provider("acme", "typed-error", &sim.addr, ""));
    let key = [("Idempotency-Key", "3e9f6a4b-8a5d-4fb1-94c3-2b1a0f9e8d76")];
    let first = http::request(&gw.addr, "POST", "/acme/v1/payments", &key, b"{}");
    let again = http::request(&gw.addr, "POST", "/acme/v1/payments", &key, b"{}");
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(seen(&sim, "POST /v1/payments"), 1);
    let (_, log) = gw.stop();
    assert!(
        log.iter().any(|l| l["level"] == "warn"
            && l["msg"]
                .as_str()
                .unwrap()
                .starts_with("no [[clients]] configured")),
        "{log:?}"
    );
}

#[test]
fn the_gateway_does_not_start_with_an_open_or_unusable_front_door() {
    let dir = scratch("frontdoor-start");
    let acme = provider("acme", "typed-error", "127.0.0.1:9", "");
    let cases = [
        // Open to the network without saying so.
        (
            format!("listen = \"0.0.0.0:0\"\n{acme}"),
            "allow_open = true",
        ),
        // The clients' secrets are not in this process's environment.
        (format!("{acme}\n{CLIENTS}"), "SHOP1_SECRET is not set"),
        // A Redis nobody listens on.
        (
            format!("store = \"redis://127.0.0.1:1\"\n{acme}"),
            "127.0.0.1:1",
        ),
    ];
    for (config, expected) in cases {
        let path = dir.join("gateway.toml");
        let data = dir.join("data");
        fs::write(
            &path,
            format!("data_dir = \"{}\"\n{config}", data.display()),
        )
        .unwrap();
        let out = crate::commands::payerr(&["gateway", "--config", path.to_str().unwrap()], "");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected), "{expected:?} not in {stderr}");
    }
}

#[test]
fn without_its_store_the_gateway_forwards_nothing() {
    // A Redis of this test's own, to be stopped under the gateway.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut redis = std::process::Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server runs (scripts/test.sh installs it)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        thread::sleep(Duration::from_millis(20));
    }
    let dir = scratch("frontdoor-store-down");
    let sim = simulator("typed-error");
    let gw = gateway(
        &dir,
        &format!("store = \"redis://127.0.0.1:{port}\""),
        &sim.addr,
    );
    let key = "4fa07b5c-9b6e-4c02-a5d4-3c2b1a0f9e87";
    let first = keyed("/acme/v1/payments", "{}", key).send(&gw.addr);
    assert_eq!(first.status, 200, "{}", first.text());
    redis.kill().unwrap();
    redis.wait().unwrap();
    // Without its store the gateway cannot tell a repeat from a first request, nor a replayed
    // nonce from a new one: forwarding could pay twice, so nothing goes.
    for call in [
        keyed("/acme/v1/payments", "{}", key),
        Call::post("/acme/v1/payments", "{}"),
    ] {
        assert_error(&call.send(&gw.addr), 503, "api_error", "store_unavailable");
    }
    assert_eq!(seen(&sim, "POST /v1/payments"), 1);
}
