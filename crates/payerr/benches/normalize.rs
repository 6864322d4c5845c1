//! Normalization cost against a bare JSON parse of the same bytes (SPEC §9: at most 1.3×).
//!
//! The corpus is every golden case (tests/golden/*.toml): every documented code of every built-in
//! dialect in a realistic envelope, with its HTTP status and headers. Each round times one pass of the
//! whole corpus through `Engine::normalize` with the explicit dialect, one pass of
//! `serde_json::from_slice::<Value>` over the same bodies, and one pass of `normalize` with dialect
//! auto, in an order that rotates from round to round; the median round of each is reported. Writing
//! the verdicts as JSON (`Verdict::write_json`, what the HTTP service answers) is timed in the same
//! rotation and reported beside them; it is not part of the ratio.
//!
//! Run: `cargo bench -p payerr --bench normalize`. The last line is `ratio: X.XX` (explicit-dialect
//! normalize / bare parse). `PAYERR_BENCH_ROUNDS` overrides the number of rounds.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use payerr::{Engine, Lang, Options, Response, Verdict};
use serde::Deserialize;

const GOLDEN: &[(&str, &str)] = &[
    (
        "typed-error",
        include_str!("../tests/golden/typed-error.toml"),
    ),
    (
        "card-issuing",
        include_str!("../tests/golden/card-issuing.toml"),
    ),
    (
        "result-status",
        include_str!("../tests/golden/result-status.toml"),
    ),
    ("pts", include_str!("../tests/golden/pts.toml")),
    ("portone", include_str!("../tests/golden/portone.toml")),
];

const DEFAULT_ROUNDS: usize = 31;

#[derive(Deserialize)]
struct File {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    http_status: u16,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    body: String,
}

struct Sample {
    dialect: &'static str,
    http_status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn corpus() -> Vec<Sample> {
    let mut out = Vec::new();
    for (dialect, text) in GOLDEN {
        let file: File =
            toml::from_str(text).unwrap_or_else(|e| panic!("golden/{dialect}.toml: {e}"));
        for case in file.cases {
            out.push(Sample {
                dialect,
                http_status: case.http_status,
                headers: case.headers.into_iter().collect(),
                body: case.body.into_bytes(),
            });
        }
    }
    out
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

fn per_response(d: Duration, n: usize) -> f64 {
    d.as_nanos() as f64 / n as f64
}

fn main() {
    let rounds = std::env::var("PAYERR_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|&r: &usize| r > 0)
        .unwrap_or(DEFAULT_ROUNDS);
    let engine = Engine::builtin().expect("built-in catalogs load");
    let samples = corpus();
    let responses: Vec<(Response<'_>, &str)> = samples
        .iter()
        .map(|s| {
            let response = Response {
                http_status: s.http_status,
                headers: s
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect(),
                body: &s.body,
            };
            (response, s.dialect)
        })
        .collect();
    let n = responses.len();
    let bytes: usize = samples.iter().map(|s| s.body.len()).sum();

    let explicit = |engine: &Engine| {
        let start = Instant::now();
        for (response, dialect) in &responses {
            let options = Options {
                dialect: Some(dialect),
                lang: Lang::En,
            };
            black_box(engine.normalize(black_box(response), &options).unwrap());
        }
        start.elapsed()
    };
    let auto = |engine: &Engine| {
        let start = Instant::now();
        let options = Options {
            dialect: None,
            lang: Lang::En,
        };
        for (response, _) in &responses {
            black_box(engine.normalize(black_box(response), &options).unwrap());
        }
        start.elapsed()
    };
    let parse = || {
        let start = Instant::now();
        for (response, _) in &responses {
            // Bodies that are not JSON (an HTML 502 page) fail here as they do in normalize.
            let _ = black_box(serde_json::from_slice::<serde_json::Value>(black_box(
                response.body,
            )));
        }
        start.elapsed()
    };

    let verdicts: Vec<Verdict> = responses
        .iter()
        .map(|(response, dialect)| {
            let options = Options {
                dialect: Some(dialect),
                lang: Lang::En,
            };
            engine.normalize(response, &options).unwrap()
        })
        .collect();
    let mut out = Vec::with_capacity(4096);
    let mut write = || {
        let start = Instant::now();
        for verdict in &verdicts {
            out.clear();
            black_box(verdict).write_json(&mut out);
            black_box(&out);
        }
        start.elapsed()
    };

    // Warm-up: caches, branch predictors, the allocator.
    for _ in 0..3 {
        explicit(&engine);
        auto(&engine);
        parse();
        write();
    }

    let (mut t_explicit, mut t_parse, mut t_auto, mut t_write) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // Rotate the order so that no measure always runs first (or right after another).
        for step in 0..4 {
            match (round + step) % 4 {
                0 => t_explicit.push(explicit(&engine)),
                1 => t_parse.push(parse()),
                2 => t_auto.push(auto(&engine)),
                _ => t_write.push(write()),
            }
        }
    }
    let explicit_ns = per_response(median(t_explicit), n);
    let parse_ns = per_response(median(t_parse), n);
    let auto_ns = per_response(median(t_auto), n);
    let write_ns = per_response(median(t_write), n);

    println!(
        "corpus: {n} responses from tests/golden ({bytes} bytes, {:.0} bytes/response), {rounds} rounds, median",
        bytes as f64 / n as f64
    );
    println!("normalize (explicit dialect): {explicit_ns:.0} ns/response");
    println!("serde_json::from_slice::<Value> (bare parse): {parse_ns:.0} ns/response");
    println!(
        "normalize (--dialect auto): {auto_ns:.0} ns/response ({:.2}x the bare parse)",
        auto_ns / parse_ns
    );
    println!("verdict as JSON (Verdict::write_json, not in the ratio): {write_ns:.0} ns/verdict");
    println!("ratio: {:.2}", explicit_ns / parse_ns);
}
