//! End-to-end tests of the `payerr` binary: real process, real stdin/stdout, real exit codes.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

pub fn payerr(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_payerr"))
        .args(args)
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("payerr starts");
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn json(out: &Output) -> Value {
    assert!(out.status.success(), "stderr: {}", stderr(out));
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

/// A fresh directory under the system temp dir for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("payerr-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const EXPIRED: &str = r#"{"type":"payment_error","code":"expired_card","message":"Expired card"}"#;

#[test]
fn normalize_prints_the_verdict_as_json_from_stdin() {
    let v = json(&payerr(
        &[
            "normalize",
            "--dialect",
            "typed-error",
            "--status",
            "400",
            "--format",
            "json",
        ],
        EXPIRED,
    ));
    assert_eq!(v["dialect"], "typed-error");
    assert_eq!(v["outcome"], "failed");
    assert_eq!(v["category"], "card_expired");
    assert_eq!(v["code"], "expired_card");
    assert_eq!(v["matched_by"], "code_and_scope");
    assert_eq!(v["retryable"], false);
    assert_eq!(v["source"]["http_status"], 400);
    assert_eq!(v["source"]["type"], "payment_error");
}

#[test]
fn normalize_reads_a_file_and_auto_detects_the_dialect() {
    let dir = scratch("file");
    let path = dir.join("body.json");
    std::fs::write(
        &path,
        r#"{"result":{"resultStatus":"F","resultCode":"INSUFFICIENT_BALANCE","resultMessage":"Customer has insufficient funds"}}"#,
    )
    .unwrap();
    let v = json(&payerr(
        &["normalize", "-f", "json", path.to_str().unwrap()],
        "",
    ));
    assert_eq!(v["dialect"], "result-status");
    assert_eq!(v["category"], "insufficient_funds");
    assert_eq!(v["next_action"], "customer_action");
}

#[test]
fn normalize_text_output_reads_at_a_glance() {
    let out = payerr(&["normalize", "--status", "400"], EXPIRED);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(
        text.starts_with("FAILED · card_expired / expired_card"),
        "{text}"
    );
    for label in [
        "What happened",
        "Provider said",
        "Next",
        "Tell customer",
        "How to fix",
        "Your API",
    ] {
        assert!(text.contains(label), "missing {label}: {text}");
    }
    assert!(text.contains("do not retry"));
}

#[test]
fn retry_after_header_and_language_reach_the_verdict() {
    let v = json(&payerr(
        &[
            "normalize",
            "-s",
            "503",
            "-H",
            "Retry-After: 9",
            "--lang",
            "zh",
            "-f",
            "json",
        ],
        "<html><body>Service Unavailable</body></html>",
    ));
    assert_eq!(v["dialect"], "http");
    assert_eq!(v["category"], "provider_unavailable");
    assert_eq!(v["retry_after_ms"], 9000);
    assert_eq!(v["failover_safe"], true);
    assert!(v["message"]
        .as_str()
        .unwrap()
        .chars()
        .any(|c| c > '\u{4e00}'));
    // The seed-001 Language header picks the language when --lang is absent.
    let v = json(&payerr(
        &["normalize", "-H", "Language: zh_CN", "-f", "json"],
        r#"{"code":1004,"msg":"card_number Invalid request parameter"}"#,
    ));
    assert_eq!(v["dialect"], "card-issuing");
    assert_eq!(v["param"], "card_number");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .chars()
        .any(|c| c > '\u{4e00}'));
}

#[test]
fn a_gateway_timeout_is_unknown_and_never_failed_over() {
    let v = json(&payerr(&["normalize", "-s", "504", "-f", "json"], ""));
    assert_eq!(v["outcome"], "unknown");
    assert_eq!(v["next_action"], "poll");
    assert_eq!(v["failover_safe"], false);
    assert_eq!(v["matched_by"], "http_status");
}

#[test]
fn ndjson_answers_every_line_in_order_and_survives_bad_lines() {
    let input = [
        r#"{"dialect":"pts","http_status":200,"body":{"code":8001,"msg":"Service not available"}}"#,
        "not json at all",
        "",
        r#"{"http_status":200}"#,
        r#"{"dialect":"nope","http_status":200,"body":"{}"}"#,
        r#"{"http_status":400,"headers":{"Accept-Language":"zh-CN"},"body":"{\"type\":\"payment_error\",\"code\":\"fraud\",\"message\":\"FRAUD\"}"}"#,
    ]
    .join("\n");
    let out = payerr(&["normalize", "--ndjson"], &input);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "one answer per non-empty line");
    assert_eq!(lines[0]["code"], "service_unavailable");
    assert_eq!(lines[0]["failover_safe"], true);
    assert_eq!(lines[1]["line"], 2);
    assert_eq!(lines[1]["error"]["type"], "invalid_request_error");
    assert_eq!(lines[1]["error"]["code"], "invalid_parameter");
    assert_eq!(lines[2]["line"], 4);
    assert_eq!(lines[2]["error"]["code"], "missing_parameter");
    assert_eq!(lines[3]["error"]["param"], "dialect");
    assert_eq!(lines[4]["category"], "fraud_risk");
    assert_eq!(lines[4]["retryable"], false);
    let message = lines[4]["message"].as_str().unwrap();
    assert!(
        !message.contains("欺诈") && !message.contains("风险"),
        "{message}"
    );
}

#[test]
fn usage_errors_exit_2_with_a_message() {
    let out = payerr(&["normalize", "--dialect", "bogus"], "{}");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown dialect `bogus`"),
        "{}",
        stderr(&out)
    );
    let out = payerr(&["normalize", "/definitely/not/here.json"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read"));
    let out = payerr(&["normalize", "-H", "no colon"], "{}");
    assert_eq!(out.status.code(), Some(2));
    let out = payerr(&["normalize", "--status", "99"], "{}");
    assert_eq!(out.status.code(), Some(2));
    let out = payerr(&["explain", "1004"], "");
    assert_eq!(out.status.code(), Some(2), "--dialect is required");
}

#[test]
fn explain_covers_scope_reason_ambiguity_and_languages() {
    let v = json(&payerr(
        &[
            "explain",
            "invalid_parameter",
            "-d",
            "typed-error",
            "--type",
            "payout_error",
            "-f",
            "json",
        ],
        "",
    ));
    assert_eq!(v["matched_by"], "code_and_scope");
    assert_eq!(
        v["source"]["message"]
            .as_str()
            .unwrap()
            .split(',')
            .next()
            .unwrap(),
        "Missing"
    );
    let v = json(&payerr(
        &["explain", "4081", "-d", "portone", "-f", "json"],
        "",
    ));
    assert_eq!(v["ambiguous"].as_array().unwrap().len(), 2);
    let v = json(&payerr(
        &[
            "explain",
            "4081",
            "-d",
            "portone",
            "--reason",
            "ROLE_NOT_ALLOWED",
            "-f",
            "json",
        ],
        "",
    ));
    assert_eq!(v["category"], "permission_denied");
    assert_eq!(v["matched_by"], "code_and_reason");
    let v = json(&payerr(
        &[
            "explain",
            "3002",
            "-d",
            "card-issuing",
            "-l",
            "zh",
            "-f",
            "json",
        ],
        "",
    ));
    assert!(v["message"].as_str().unwrap().contains("余额不足"));
    // An undocumented code gets the best verdict the remaining steps allow.
    let v = json(&payerr(
        &["explain", "6099", "-d", "portone", "-f", "json"],
        "",
    ));
    assert_eq!(v["matched_by"], "range");
    assert_eq!(v["category"], "declined");
}

/// The built-in dialects, in auto-detection order.
pub const BUILTIN_DIALECTS: [&str; 6] = [
    "typed-error",
    "card-issuing",
    "result-status",
    "pts",
    "portone",
    "http",
];

/// The ids of a JSON list of dialects (`catalog list -f json`, `GET /v1/dialects`).
pub fn dialect_ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect()
}

#[test]
fn catalog_list_show_export_and_codes() {
    let list = json(&payerr(&["catalog", "list", "-f", "json"], ""));
    assert_eq!(dialect_ids(&list), BUILTIN_DIALECTS);
    let show = payerr(&["catalog", "show", "pts"], "");
    assert!(stdout(&show).contains("| `8001` | Service not available |"));
    let export = json(&payerr(&["catalog", "export", "portone"], ""));
    assert_eq!(export["entries"].as_array().unwrap().len(), 135);
    let all = json(&payerr(&["catalog", "export"], ""));
    assert_eq!(all.as_array().unwrap().len(), 6);
    let md = stdout(&payerr(&["catalog", "export", "--format", "markdown"], ""));
    assert!(md.contains("# PortOne (`portone`)") && md.contains("## payout_error"));
    let codes = json(&payerr(&["catalog", "codes", "-f", "json"], ""));
    assert!(codes.as_array().unwrap().len() > 100);
    let out = payerr(&["catalog", "show", "nope"], "");
    assert_eq!(out.status.code(), Some(2));
}

pub const USER_CATALOG: &str = r#"
id = "acme"
name = "Acme Pay"
description = "Numeric code in the body."

[envelope]
containers = [""]
code = ["err"]
message = ["why"]
code_format = "numeric"

[[entries]]
code = "51"
message = "Insufficient funds"
canonical = "insufficient_funds"
category = "insufficient_funds"
text = { en = "The card has no funds.", zh = "卡内余额不足。" }
"#;

#[test]
fn user_catalogs_lint_and_load_from_a_directory() {
    let dir = scratch("catalogs");
    std::fs::write(dir.join("acme.toml"), USER_CATALOG).unwrap();
    let out = payerr(&["catalog", "lint", dir.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("1 file(s), 0 error(s)"));
    let v = json(&payerr(
        &[
            "--catalog-dir",
            dir.to_str().unwrap(),
            "normalize",
            "-d",
            "acme",
            "-f",
            "json",
        ],
        r#"{"err":51,"why":"Insufficient funds"}"#,
    ));
    assert_eq!(v["category"], "insufficient_funds");
    assert_eq!(v["matched_by"], "code");

    let bad = USER_CATALOG
        .replace(
            "category = \"insufficient_funds\"",
            "category = \"declind\"",
        )
        .replace(", zh = \"卡内余额不足。\"", "");
    std::fs::write(dir.join("bad.toml"), bad).unwrap();
    let out = payerr(&["catalog", "lint", dir.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1));
    let report = stdout(&out);
    assert!(
        report.contains("bad.toml:16:12: error: unknown category `declind`"),
        "{report}"
    );
    assert!(
        report.contains("bad.toml:17:8: error: code `51`: missing translation `text.zh`"),
        "{report}"
    );
    assert!(report.contains("2 file(s), 2 error(s)"), "{report}");
    // A directory holding a bad catalog refuses to load rather than serve half a catalog.
    let out = payerr(
        &["--catalog-dir", dir.to_str().unwrap(), "catalog", "list"],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad.toml"));
}

#[test]
fn config_file_sets_the_retry_policy() {
    let dir = scratch("config");
    let config = dir.join("payerr.toml");
    std::fs::write(
        &config,
        "[retry]\nbase_ms = 750\n[poll]\ninterval_ms = 5000\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let v = json(&payerr(
        &["--config", config, "normalize", "-s", "429", "-f", "json"],
        "",
    ));
    assert_eq!(v["retry_after_ms"], 750);
    let v = json(&payerr(
        &["--config", config, "normalize", "-s", "500", "-f", "json"],
        "",
    ));
    assert_eq!(v["retry_after_ms"], 5000);
    std::fs::write(dir.join("bad.toml"), "[retry]\nbase = 1\n").unwrap();
    let out = payerr(
        &[
            "--config",
            dir.join("bad.toml").to_str().unwrap(),
            "catalog",
            "list",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown field `base`"),
        "{}",
        stderr(&out)
    );
}
