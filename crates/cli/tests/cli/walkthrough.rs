//! The README's gateway walkthrough, run as written: its configuration, its requests and its report,
//! against a real simulator and gateway, so that what it shows stays what payerr answers.

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::commands::{payerr, scratch};
use crate::http;
use crate::process::{simulator, Daemon};

/// The walkthrough's steps up to the front door (step 6 has tests of its own, in frontdoor.rs).
fn walkthrough() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = fs::read_to_string(path).expect("README.md reads");
    let start = readme
        .find("## Gateway walkthrough")
        .expect("the README has its gateway walkthrough");
    let rest = &readme[start..];
    let end = rest.find("**6.").expect("the walkthrough's step 6");
    rest[..end].to_owned()
}

/// The fenced blocks of `lang` in `text`, in order.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let fence = format!("```{lang}\n");
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(&fence) {
        rest = &rest[at + fence.len()..];
        let end = rest.find("```").expect("a closed block");
        found.push(rest[..end].to_owned());
        rest = &rest[end..];
    }
    found
}

/// The words of a shell command line, with its single-quoted strings as single words.
fn words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in command.chars() {
        match c {
            '\'' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    assert!(!quoted, "unbalanced quotes in {command:?}");
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// A `console` block: the command (after `$ `, continuation lines joined) and the lines shown below.
fn session(block: &str) -> (String, Vec<&str>) {
    let mut lines = block.lines();
    let mut command = lines
        .next()
        .and_then(|l| l.strip_prefix("$ "))
        .expect("a console block starts with `$ `")
        .to_owned();
    while command.ends_with('\\') {
        command.pop();
        command.push(' ');
        command.push_str(lines.next().expect("a continued line"));
    }
    (command, lines.collect())
}

/// Sends a walkthrough `curl -si … -H … -d …` to the gateway; checks the status, every header shown
/// (a request id's value differs per run) and the body.
fn check_curl(gateway: &str, command: &str, shown: &[&str]) {
    let words = words(command);
    assert_eq!(words[..2], ["curl", "-si"], "{command}");
    let path = words[2]
        .strip_prefix("localhost:8090")
        .expect("requests go to the walkthrough's gateway");
    let mut headers = Vec::new();
    let mut body = "";
    let mut rest = words[3..].iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().expect("a flag's value");
        match flag.as_str() {
            "-H" => headers.push(value.split_once(": ").expect("a `Name: value` header")),
            "-d" => body = value,
            other => panic!("a curl flag the test does not know: {other}"),
        }
    }
    let reply = http::request(gateway, "POST", path, &headers, body.as_bytes());
    let blank = shown
        .iter()
        .position(|l| l.is_empty())
        .expect("headers, then the body");
    let status: u16 = shown[0]
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    assert_eq!(reply.status, status, "{command}: {}", reply.text());
    for line in &shown[1..blank] {
        let (name, value) = line.split_once(": ").expect("a `name: value` header");
        let got = reply.header(name);
        if name == "x-request-id" {
            assert!(
                got.is_some_and(|v| v.starts_with("req_")),
                "{command}: {name}"
            );
        } else {
            assert_eq!(got, Some(value), "{command}: {name}");
        }
    }
    assert_eq!(reply.text(), shown[blank + 1..].join("\n"), "{command}");
}

#[test]
fn the_readme_gateway_walkthrough_answers_as_it_shows() {
    let walk = walkthrough();
    let commands = blocks(&walk, "sh");
    assert!(
        commands[0].starts_with("payerr simulate --dialect pts --listen 127.0.0.1:9001"),
        "{}",
        commands[0]
    );
    let sim = simulator("pts");
    let dir = scratch("walkthrough");
    let config = blocks(&walk, "toml")
        .first()
        .expect("the gateway's configuration")
        .replace("127.0.0.1:8090", "127.0.0.1:0")
        .replace("http://127.0.0.1:9001", &format!("http://{}", sim.addr));
    assert!(config.contains("data_dir = \"./payerr-data\""), "{config}");
    let path = dir.join("gateway.toml");
    fs::write(&path, config).expect("writes the configuration");
    let gateway = Daemon::start(
        &[
            "gateway",
            "--config",
            "gateway.toml",
            "--log-format",
            "json",
        ],
        &[],
        &dir,
    );

    let consoles = blocks(&walk, "console");
    let mut curls = 0;
    for (command, shown) in consoles.iter().map(|b| session(b)) {
        if command.starts_with("curl ") {
            check_curl(&gateway.addr, &command, &shown);
            curls += 1;
        }
    }
    assert_eq!(curls, 2, "a decline and a retry");

    // The report, once the events are in (within 100 ms, as the walkthrough says).
    let (command, shown) = consoles
        .iter()
        .map(|b| session(b))
        .find(|(c, _)| c.starts_with("payerr report"))
        .expect("the walkthrough's report");
    assert_eq!(command, "payerr report --data-dir payerr-data");
    let data = dir.join("payerr-data");
    let data = data.to_str().expect("a UTF-8 path");
    // The lines shown whole; `...` marks what the walkthrough leaves out or what differs per run.
    let expected: Vec<&str> = shown
        .iter()
        .copied()
        .filter(|l| !l.contains("..."))
        .collect();
    let missing = |report: &str| -> Vec<String> {
        expected
            .iter()
            .filter(|line| !report.lines().any(|r| r.trim_end() == line.trim_end()))
            .map(|line| (*line).to_owned())
            .collect()
    };
    // Events reach the database within 100 ms of each attempt: the report is read until it shows
    // them all, or for 10 s.
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let out = payerr(&["report", "--data-dir", data], "");
        let report = String::from_utf8_lossy(&out.stdout).into_owned();
        let left = missing(&report);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < until,
            "the report has no line {left:?}:\n{report}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}
