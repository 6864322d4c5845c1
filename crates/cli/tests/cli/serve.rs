//! `payerr serve` end to end: the real binary on an ephemeral port, real sockets and signals. Every
//! answer is checked against the service's own OpenAPI document.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::commands::{dialect_ids, scratch, BUILTIN_DIALECTS, USER_CATALOG};
use crate::http::{self, Conn, Reply};
use crate::process::Daemon;
use crate::schema;

/// A running `payerr serve`.
type Server = Daemon;

/// Starts `payerr serve ARGS` on an ephemeral port with JSON logs.
fn serve(args: &[&str]) -> Server {
    serve_with(args, &[], &std::env::temp_dir())
}

fn serve_with(args: &[&str], env: &[(&str, &str)], dir: &Path) -> Server {
    let mut all = vec!["serve", "--listen", "127.0.0.1:0", "--log-format", "json"];
    all.extend_from_slice(args);
    Daemon::start(&all, env, dir)
}

/// The OpenAPI document, fetched once per server.
fn openapi(server: &Server) -> Value {
    let reply = server.get("/openapi.json");
    assert_eq!(reply.status, 200);
    reply.json()
}

/// Asserts the reply is one the document describes for this operation and status, and that it
/// carries a request id.
fn conforms(doc: &Value, template: &str, method: &str, reply: &Reply) {
    assert!(
        reply
            .header("x-request-id")
            .is_some_and(|id| !id.is_empty()),
        "{method} {template}: no X-Request-Id"
    );
    let content_type = reply.header("content-type").unwrap_or_default();
    let described =
        &doc["paths"][template][method]["responses"][reply.status.to_string()]["content"];
    assert!(
        described.get(content_type).is_some(),
        "{method} {template}: Content-Type {content_type} is not described: {described}"
    );
    if content_type != "application/json" {
        return;
    }
    let schema =
        schema::response_schema(doc, template, method, reply.status).unwrap_or_else(|| {
            panic!(
                "{method} {template} answered {} which the document does not describe: {}",
                reply.status,
                reply.text()
            )
        });
    schema::validate(doc, schema, &reply.json()).unwrap_or_else(|e| {
        panic!(
            "{method} {template} {}: {e}\n{}",
            reply.status,
            reply.text()
        )
    });
}

/// Asserts an error answer: status, seed-000 body, and the `Error` schema.
fn error(doc: &Value, reply: &Reply, status: u16, kind: &str, code: &str, param: Option<&str>) {
    assert_eq!(reply.status, status, "{}", reply.text());
    let body = reply.json();
    assert_eq!(
        (
            body["type"].as_str(),
            body["code"].as_str(),
            body["param"].as_str()
        ),
        (Some(kind), Some(code), param),
        "{body}"
    );
    assert!(!body["message"].as_str().unwrap().is_empty());
    schema::validate(doc, &json!({"$ref": "#/components/schemas/Error"}), &body).unwrap();
}

/// Asserts a 400 `invalid_request_error`.
fn bad_request(doc: &Value, reply: &Reply, code: &str, param: Option<&str>) {
    error(doc, reply, 400, "invalid_request_error", code, param);
}

/// Every golden case of the library as a service request, with its dialect.
fn golden_requests() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../payerr/tests/golden");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut requests = Vec::new();
    for file in files {
        let dialect = file.file_stem().unwrap().to_str().unwrap().to_owned();
        let golden: toml::Table = toml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for case in golden["cases"].as_array().unwrap() {
            let mut request = json!({
                "dialect": dialect,
                "http_status": case["http_status"].as_integer().unwrap(),
                "body": case["body"].as_str().unwrap(),
            });
            if let Some(headers) = case.get("headers") {
                request["headers"] = serde_json::to_value(headers).unwrap();
            }
            requests.push(request);
        }
    }
    assert!(requests.len() > 400, "{}", requests.len());
    requests
}

/// `payerr normalize --ndjson` over the same requests: what the library says.
fn cli_verdicts(requests: &[Value]) -> Vec<Value> {
    let ndjson: String = requests.iter().map(|r| format!("{r}\n")).collect();
    let out = crate::commands::payerr(&["normalize", "--ndjson"], &ndjson);
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_service_gives_every_golden_response_the_clis_verdict() {
    let server = serve(&[]);
    let doc = openapi(&server);
    let requests = golden_requests();
    let expected = cli_verdicts(&requests);
    let batch = server.post(
        "/v1/normalize/batch",
        &Value::from(requests.clone()).to_string(),
    );
    conforms(&doc, "/v1/normalize/batch", "post", &batch);
    let answers = batch.json();
    for ((request, answer), verdict) in requests
        .iter()
        .zip(answers.as_array().unwrap())
        .zip(&expected)
    {
        assert_eq!(answer, verdict, "{request}");
    }
    for (request, verdict) in requests.iter().zip(&expected).step_by(7) {
        let reply = server.post("/v1/normalize", &request.to_string());
        conforms(&doc, "/v1/normalize", "post", &reply);
        assert_eq!(&reply.json(), verdict, "{request}");
    }
    assert!(server.stop().0.success());
}

#[test]
fn batches_answer_per_item_errors_in_order_and_respect_the_limit() {
    let server = serve(&["--max-batch-items", "3"]);
    let doc = openapi(&server);
    let items = json!([
        {"http_status": 400, "body": {"type":"payment_error","code":"expired_card","message":"Expired card"}},
        {"http_status": 400, "body": "x", "dialect": "nope"},
        {"body": ""},
    ]);
    let reply = server.post("/v1/normalize/batch", &items.to_string());
    conforms(&doc, "/v1/normalize/batch", "post", &reply);
    let answers = reply.json();
    assert_eq!(answers[0]["code"], "expired_card");
    assert_eq!(answers[1]["error"]["param"], "dialect");
    assert_eq!(answers[2]["error"]["code"], "missing_parameter");
    assert_eq!(answers[2]["error"]["param"], "http_status");
    let four = json!([items[0], items[0], items[0], items[0]]).to_string();
    let reply = server.post("/v1/normalize/batch", &four);
    conforms(&doc, "/v1/normalize/batch", "post", &reply);
    bad_request(&doc, &reply, "batch_too_large", None);
    let reply = server.post("/v1/normalize/batch", r#"{"http_status":400}"#);
    bad_request(&doc, &reply, "invalid_parameter", None);
}

#[test]
fn every_endpoint_answers_as_the_openapi_document_describes() {
    let server = serve(&[]);
    let doc = openapi(&server);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        schema::unsupported_keywords(&doc),
        Vec::<String>::new(),
        "the test validator would ignore these"
    );
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    let gets = [
        ("/v1/dialects", "/v1/dialects"),
        ("/v1/dialects/{id}", "/v1/dialects/portone"),
        (
            "/v1/dialects/{id}/codes/{code}",
            "/v1/dialects/typed-error/codes/expired_card?type=payment_error&lang=zh",
        ),
        (
            "/v1/dialects/{id}/codes/{code}",
            "/v1/dialects/portone/codes/4081?reason=x",
        ),
        ("/v1/categories", "/v1/categories"),
        ("/v1/search", "/v1/search?q=insufficient&limit=3"),
        ("/openapi.json", "/openapi.json"),
        ("/healthz", "/healthz"),
        ("/readyz", "/readyz"),
        ("/metrics", "/metrics"),
    ];
    for (template, path) in gets {
        let reply = server.get(path);
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        conforms(&doc, template, "get", &reply);
    }
    let covered: Vec<&str> = gets
        .iter()
        .map(|(t, _)| *t)
        .chain(["/v1/normalize", "/v1/normalize/batch"])
        .collect();
    for path in paths {
        assert!(covered.contains(&path.as_str()), "{path} is not exercised");
    }

    let dialects = server.get("/v1/dialects").json();
    assert_eq!(dialect_ids(&dialects), BUILTIN_DIALECTS);
    let categories = server.get("/v1/categories").json();
    assert_eq!(categories.as_array().unwrap().len(), 28);
    let unknown = &categories.as_array().unwrap()[3];
    assert_eq!(unknown["category"], "outcome_unknown");
    assert_eq!(unknown["next_action"], "poll");
    assert!(unknown["codes"]
        .as_array()
        .unwrap()
        .contains(&json!("outcome_unknown")));

    let code = server
        .get("/v1/dialects/typed-error/codes/expired_card?type=payment_error&lang=zh")
        .json();
    assert_eq!(
        (
            code["category"].as_str(),
            code["source"]["http_status"].as_u64()
        ),
        (Some("card_expired"), None)
    );
    assert!(code["message"].as_str().unwrap().contains('卡'));
    let head = http::request(&server.addr, "HEAD", "/healthz", &[], &[]);
    assert_eq!((head.status, head.body.len()), (200, 0));
}

#[test]
fn search_finds_balance_errors_in_english_and_chinese() {
    let server = serve(&[]);
    let doc = openapi(&server);
    for query in ["insufficient", "%E4%BD%99%E9%A2%9D%E4%B8%8D%E8%B6%B3"] {
        let reply = server.get(&format!("/v1/search?q={query}&limit=5"));
        conforms(&doc, "/v1/search", "get", &reply);
        let found = reply.json();
        assert!(found["total"].as_u64().unwrap() >= 10, "{found}");
        let results = found["results"].as_array().unwrap();
        assert_eq!(results.len(), 5);
        assert_eq!(results[0]["category"], "insufficient_funds");
        let scores: Vec<u64> = results
            .iter()
            .map(|r| r["score"].as_u64().unwrap())
            .collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    }
    let zh = server
        .get("/v1/search?q=expired_card&dialect=typed-error&lang=zh")
        .json();
    assert_eq!(zh["results"][0]["code"], "expired_card");
    assert!(zh["results"][0]["text"].as_str().unwrap().contains('卡'));
}

#[test]
fn languages_come_from_the_item_the_query_and_the_headers_in_that_order() {
    let server = serve(&[]);
    let body = r#"{"dialect":"typed-error","http_status":400,"body":{"type":"payment_error","code":"expired_card","message":"Expired card"}}"#;
    let zh_item = r#"{"lang":"zh","http_status":400,"body":{"type":"payment_error","code":"expired_card","message":"Expired card"}}"#;
    let post = |path: &str, headers: &[(&str, &str)], body: &str| {
        let mut all = vec![("Content-Type", "application/json")];
        all.extend_from_slice(headers);
        http::request(&server.addr, "POST", path, &all, body.as_bytes()).json()["message"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let is_zh = |s: &str| s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
    assert!(!is_zh(&post("/v1/normalize", &[], body)));
    assert!(is_zh(&post("/v1/normalize?lang=zh", &[], body)));
    assert!(is_zh(&post(
        "/v1/normalize",
        &[("Language", "zh_CN")],
        body
    )));
    assert!(is_zh(&post(
        "/v1/normalize",
        &[("Accept-Language", "zh-CN,zh;q=0.9,en;q=0.5")],
        body
    )));
    assert!(!is_zh(&post(
        "/v1/normalize?lang=en",
        &[("Language", "zh_CN")],
        body
    )));
    assert!(is_zh(&post("/v1/normalize?lang=en", &[], zh_item)));
    assert!(!is_zh(&post("/v1/normalize?lang=fr", &[], body)));
}

#[test]
fn every_error_is_seed_000s_format_with_its_status() {
    let server = serve(&["--max-body-bytes", "2048"]);
    let doc = openapi(&server);
    let addr = server.addr.clone();
    let valid = r#"{"http_status":400,"body":"x"}"#;
    let json_type = ("Content-Type", "application/json");
    type Case<'a> = (
        &'a str,
        &'a str,
        Vec<(&'a str, &'a str)>,
        String,
        u16,
        &'a str,
        &'a str,
        Option<&'a str>,
    );
    #[rustfmt::skip]
    let cases: Vec<Case<'_>> = vec![
        ("GET", "/nope", vec![], String::new(), 404, "invalid_request_error", "route_not_found", None),
        ("GET", "/v1/dialects/nope", vec![], String::new(), 404, "invalid_request_error", "dialect_not_found", None),
        ("GET", "/v1/dialects/pts/codes/nope", vec![], String::new(), 404, "invalid_request_error", "code_not_found", None),
        ("GET", "/v1/dialects/typed-error/codes/expired_card?type=refund_error", vec![], String::new(), 404, "invalid_request_error", "code_not_found", None),
        ("DELETE", "/v1/dialects", vec![], String::new(), 405, "invalid_request_error", "method_not_allowed", None),
        ("GET", "/v1/normalize", vec![], String::new(), 405, "invalid_request_error", "method_not_allowed", None),
        ("POST", "/v1/normalize", vec![("Content-Type", "text/plain")], valid.to_owned(), 415, "invalid_request_error", "unsupported_media_type", None),
        ("POST", "/v1/normalize", vec![json_type], "x".repeat(4096), 413, "invalid_request_error", "body_too_large", None),
        ("POST", "/v1/normalize", vec![json_type], "{".to_owned(), 400, "invalid_request_error", "invalid_parameter", None),
        ("POST", "/v1/normalize", vec![json_type], r#"{"body":""}"#.to_owned(), 400, "invalid_request_error", "missing_parameter", Some("http_status")),
        ("POST", "/v1/normalize", vec![json_type], r#"{"http_status":"400","body":""}"#.to_owned(), 400, "invalid_request_error", "invalid_parameter", Some("http_status")),
        ("POST", "/v1/normalize", vec![json_type], r#"{"http_status":400,"body":"","dialect":"nope"}"#.to_owned(), 400, "invalid_request_error", "invalid_parameter", Some("dialect")),
        ("POST", "/v1/normalize?lnag=zh", vec![json_type], valid.to_owned(), 400, "invalid_request_error", "invalid_parameter", Some("lnag")),
        ("GET", "/v1/search", vec![], String::new(), 400, "invalid_request_error", "missing_parameter", Some("q")),
        ("GET", "/v1/search?q=card&limit=0", vec![], String::new(), 400, "invalid_request_error", "invalid_parameter", Some("limit")),
        ("GET", "/v1/search?q=card&dialect=nope", vec![], String::new(), 400, "invalid_request_error", "invalid_parameter", Some("dialect")),
        ("GET", "/v1/search?q=%E4%BD", vec![], String::new(), 400, "invalid_request_error", "invalid_parameter", Some("q")),
        ("GET", "/healthz?verbose=1", vec![], String::new(), 400, "invalid_request_error", "invalid_parameter", Some("verbose")),
    ];
    for (method, path, headers, body, status, kind, code, param) in cases {
        let reply = http::request(&addr, method, path, &headers, body.as_bytes());
        error(&doc, &reply, status, kind, code, param);
        let template = path.split('?').next().unwrap();
        let template = doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .find(|t| {
                let (t, p): (Vec<_>, Vec<_>) =
                    (t.split('/').collect(), template.split('/').collect());
                t.len() == p.len() && t.iter().zip(&p).all(|(a, b)| a.starts_with('{') || a == b)
            })
            .cloned();
        match (status, template) {
            (404 | 405, _) | (_, None) => {}
            (_, Some(template)) => conforms(&doc, &template, &method.to_ascii_lowercase(), &reply),
        }
        if status == 405 {
            assert!(reply.header("allow").is_some());
        }
    }
    // A body larger than the limit is refused from its declared length, before it is sent; a
    // chunked one is counted as it arrives.
    let declared = b"POST /v1/normalize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n".to_vec();
    let chunk = "x".repeat(3000);
    let chunked = format!(
        "POST /v1/normalize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    for request in [declared, chunked.into_bytes()] {
        let reply = http::raw(&addr, &request);
        error(
            &doc,
            &reply,
            413,
            "invalid_request_error",
            "body_too_large",
            None,
        );
    }
    // Invalid UTF-8 and deep nesting: clear errors, and the server lives on.
    let reply = http::request(&addr, "POST", "/v1/normalize", &[], b"\xff\xfe");
    bad_request(&doc, &reply, "invalid_parameter", None);
    let reply = http::request(
        &addr,
        "POST",
        "/v1/normalize",
        &[],
        b"{\"http_status\":400,\"body\":\"\xff\"}",
    );
    bad_request(&doc, &reply, "invalid_parameter", None);
    // A deeply nested provider body is the provider's problem: it gets a verdict, not an error.
    let nested = format!(
        r#"{{"http_status":400,"body":{}1{}}}"#,
        "[".repeat(900),
        "]".repeat(900)
    );
    let reply = server.post("/v1/normalize", &nested);
    conforms(&doc, "/v1/normalize", "post", &reply);
    assert_eq!(
        reply.json()["outcome"],
        "failed",
        "HTTP 400 alone: invalid request"
    );
    assert_eq!(server.get("/healthz").status, 200);
}

/// The head must come within `request_timeout_ms` of the connection's opening, or of its previous
/// answer: a silent client, a half-sent head and an idle kept-alive connection are closed.
#[test]
fn a_client_that_sends_no_whole_head_within_the_request_timeout_is_cut_off() {
    let server = serve(&["--request-timeout-ms", "500"]);
    let start = Instant::now();
    let mut silent = Conn::open(&server.addr);
    let mut slow = Conn::open(&server.addr);
    slow.write(b"POST /v1/normalize HTTP/1.1\r\nHost:");
    let mut kept = Conn::open(&server.addr);
    assert_eq!(kept.send("GET", "/healthz", &[], b"").status, 200);
    for conn in [&mut silent, &mut slow, &mut kept] {
        assert_eq!(conn.read_to_end(), b"", "closed without an answer");
    }
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(500),
        "closed after {waited:?}"
    );
    assert_eq!(
        server.get("/healthz").status,
        200,
        "new connections are served"
    );
}

#[test]
fn a_full_service_answers_429_while_probes_still_answer_and_slow_uploads_time_out() {
    let server = serve(&["--max-concurrency", "1", "--request-timeout-ms", "1500"]);
    let doc = openapi(&server);
    // Holds the only permit: the head promises a body that never comes.
    let mut slow = Conn::open(&server.addr);
    slow.write(b"POST /v1/normalize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"http_status\":");
    thread::sleep(Duration::from_millis(200));
    let reply = server.post("/v1/normalize", r#"{"http_status":400,"body":"x"}"#);
    conforms(&doc, "/v1/normalize", "post", &reply);
    error(
        &doc,
        &reply,
        429,
        "rate_limit_error",
        "too_many_requests",
        None,
    );
    assert_eq!(reply.header("retry-after"), Some("1"));
    for probe in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(server.get(probe).status, 200, "{probe}");
    }
    let started = Instant::now();
    let timed_out = slow.read("POST");
    assert!(started.elapsed() < Duration::from_secs(5));
    error(
        &doc,
        &timed_out,
        408,
        "invalid_request_error",
        "request_timeout",
        None,
    );
    conforms(&doc, "/v1/normalize", "post", &timed_out);
    let reply = server.post("/v1/normalize", r#"{"http_status":400,"body":"x"}"#);
    assert_eq!(reply.status, 200, "the permit came back");
}

#[test]
fn request_ids_are_echoed_and_logged_without_card_numbers() {
    let server = serve(&[]);
    let reply = http::request(
        &server.addr,
        "GET",
        "/healthz",
        &[("X-Request-Id", "trace-42.a:b_c")],
        &[],
    );
    assert_eq!(reply.header("x-request-id"), Some("trace-42.a:b_c"));
    let reply = http::request(
        &server.addr,
        "GET",
        "/healthz",
        &[("X-Request-Id", "bad id with spaces")],
        &[],
    );
    let fresh = reply.header("x-request-id").unwrap().to_owned();
    assert!(fresh.starts_with("req_"), "{fresh}");
    let pan = "4111111111111111";
    let reply = server.get(&format!("/v1/search?q={pan}"));
    assert_eq!(reply.status, 200);
    let reply = server.post(
        "/v1/normalize",
        &format!(r#"{{"http_status":400,"body":{{"code":"card_declined","message":"card {pan} declined"}}}}"#),
    );
    assert!(
        !reply.text().contains(pan),
        "the verdict masks the card number"
    );
    let (status, log) = server.stop();
    assert!(status.success());
    let traced: Vec<&Value> = log
        .iter()
        .filter(|l| l["request_id"] == "trace-42.a:b_c")
        .collect();
    assert_eq!(traced.len(), 1, "{log:?}");
    assert_eq!(
        (
            &traced[0]["route"],
            &traced[0]["status"],
            &traced[0]["level"]
        ),
        (&json!("/healthz"), &json!(200), &json!("info"))
    );
    assert!(log.iter().any(|l| l["request_id"] == fresh.as_str()));
    let text: String = log.iter().map(|l| format!("{l}\n")).collect();
    assert!(
        !text.contains(pan),
        "a card number reached the log:\n{text}"
    );
    assert!(text.contains("411111******1111"));
    for line in &log {
        assert!(line["ts"].as_str().unwrap().ends_with('Z') && line["msg"].is_string());
    }
}

#[test]
fn sighup_reloads_catalogs_keeps_the_old_ones_on_lint_errors_and_drops_no_request() {
    let dir = scratch("reload");
    let catalog = dir.join("acme.toml");
    std::fs::write(&catalog, USER_CATALOG).unwrap();
    let server = serve(&["--catalog-dir", dir.to_str().unwrap()]);
    let acme =
        r#"{"dialect":"acme","http_status":200,"body":{"err":51,"why":"Insufficient funds"}}"#;
    assert_eq!(
        server.post("/v1/normalize", acme).json()["category"],
        "insufficient_funds"
    );

    // Requests keep flowing on a kept-alive connection through every reload.
    let addr = server.addr.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut conn = Conn::open(&addr);
            let mut statuses = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let reply = conn.send(
                    "POST",
                    "/v1/normalize",
                    &[("Content-Type", "application/json")],
                    br#"{"http_status":503,"body":""}"#,
                );
                statuses.push(reply.status);
            }
            statuses
        })
    };

    std::fs::write(&catalog, USER_CATALOG.replace("Acme Pay", "Acme Payments")).unwrap();
    server.signal("HUP");
    assert_eq!(server.wait_log("catalogs reloaded")["dialects"], 7);
    assert_eq!(
        server.get("/v1/dialects/acme").json()["name"],
        "Acme Payments"
    );

    std::fs::write(
        &catalog,
        USER_CATALOG.replace("insufficient_funds\"\ntext", "insufficent\"\ntext"),
    )
    .unwrap();
    server.signal("HUP");
    let failed = server.wait_log("catalog reload failed; the previous catalogs stay in service");
    assert_eq!(failed["level"], "warn");
    assert!(
        failed["error"].as_str().unwrap().contains("acme.toml"),
        "{failed}"
    );
    assert_eq!(
        server.get("/v1/dialects/acme").json()["name"],
        "Acme Payments"
    );
    assert_eq!(
        server.post("/v1/normalize", acme).json()["category"],
        "insufficient_funds"
    );
    let metrics = server.get("/metrics").text();
    assert!(
        metrics.contains("payerr_catalog_reloads_total{result=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("payerr_catalog_reloads_total{result=\"failed\"} 1"));

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let statuses = load.join().unwrap();
    assert!(
        statuses.len() > 10 && statuses.iter().all(|s| *s == 200),
        "{statuses:?}"
    );
}

#[test]
fn sigterm_drains_the_request_in_flight_then_exits_cleanly() {
    let server = serve(&[]);
    let body = br#"{"http_status":400,"body":{"type":"payment_error","code":"expired_card","message":"Expired card"}}"#;
    let mut conn = Conn::open(&server.addr);
    let head = format!(
        "POST /v1/normalize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write(head.as_bytes());
    conn.write(&body[..10]);
    thread::sleep(Duration::from_millis(100));
    server.signal("TERM");
    server.wait_log("shutting down");
    // New connections are refused once draining starts.
    let refused = (0..50).any(|_| {
        thread::sleep(Duration::from_millis(20));
        std::net::TcpStream::connect(&server.addr).is_err()
    });
    assert!(refused, "the listener is closed while draining");
    conn.write(&body[10..]);
    let reply = conn.read("POST");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["code"], "expired_card");
    let (status, log) = server.stop();
    assert!(status.success(), "{status:?}");
    assert!(log.iter().any(|l| l["msg"] == "stopped"), "{log:?}");
    assert!(log
        .iter()
        .any(|l| l["msg"] == "request" && l["status"] == 200 && l["route"] == "/v1/normalize"));
}

#[test]
fn metrics_count_requests_by_route_and_status_latency_and_verdicts() {
    let server = serve(&[]);
    let expired = r#"{"http_status":400,"body":{"type":"payment_error","code":"expired_card","message":"Expired card"}}"#;
    for _ in 0..3 {
        assert_eq!(server.post("/v1/normalize", expired).status, 200);
    }
    let batch = format!("[{expired},{expired}]");
    assert_eq!(server.post("/v1/normalize/batch", &batch).status, 200);
    assert_eq!(server.get("/nope").status, 404);
    assert_eq!(server.get("/v1/dialects/nope").status, 404);
    let reply = server.get("/metrics");
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = reply.text();
    for expected in [
        "payerr_http_requests_total{route=\"/v1/normalize\",status=\"200\"} 3",
        "payerr_http_requests_total{route=\"/v1/normalize/batch\",status=\"200\"} 1",
        "payerr_http_requests_total{route=\"unmatched\",status=\"404\"} 1",
        "payerr_http_requests_total{route=\"/v1/dialects/{id}\",status=\"404\"} 1",
        "payerr_http_request_duration_seconds_count{route=\"/v1/normalize\"} 3",
        "payerr_http_request_duration_seconds_bucket{route=\"/v1/normalize\",le=\"+Inf\"} 3",
        "payerr_verdicts_total{dialect=\"typed-error\",category=\"card_expired\"} 5",
        "payerr_http_requests_in_flight 1",
        "# TYPE payerr_http_request_duration_seconds histogram",
    ] {
        assert!(text.contains(expected), "missing {expected}:\n{text}");
    }
    // Every sample line is `name{labels} number`.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
}

#[test]
fn settings_come_from_the_file_the_environment_and_flags() {
    let dir = scratch("settings");
    std::fs::write(
        dir.join("payerr.toml"),
        "[serve]\nmax_batch_items = 1\nmax_body_bytes = 100\n",
    )
    .unwrap();
    let server = serve_with(&[], &[("PAYERR_MAX_BODY_BYTES", "5000")], &dir);
    let item = r#"{"http_status":503,"body":""}"#;
    let reply = server.post("/v1/normalize/batch", &format!("[{item},{item}]"));
    assert_eq!(reply.json()["code"], "batch_too_large", "from the file");
    assert_eq!(
        server
            .post("/v1/normalize", &format!("{:1000}", item))
            .status,
        200,
        "the environment wins"
    );
    let doc = openapi(&server);
    assert_eq!(
        doc["components"]["schemas"]["NormalizeBatch"]["maxItems"],
        1
    );
    drop(server);

    let bad = Command::new(env!("CARGO_BIN_EXE_payerr"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("PAYERR_MAX_CONCURRENCY", "lots")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("PAYERR_MAX_CONCURRENCY"));
    let bad = Command::new(env!("CARGO_BIN_EXE_payerr"))
        .args(["serve", "--listen", "localhost"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("IP:PORT"));
    std::fs::write(dir.join("payerr.toml"), "[serve]\nlisten_addr = \"x\"\n").unwrap();
    let bad = Command::new(env!("CARGO_BIN_EXE_payerr"))
        .arg("serve")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("listen_addr"));
}
