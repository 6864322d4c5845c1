//! Golden verdicts: every documented code of every built-in dialect, checked by hand for the money
//! (tests/golden/*.toml, each case with its reason in `why`).

use std::collections::BTreeMap;

use payerr::{Lang, MatchedBy, NextAction, Options, Outcome, Response, Verdict};
use serde::Deserialize;

use crate::engine;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    http_status: u16,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    body: String,
    why: String,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    outcome: String,
    category: String,
    code: String,
    next_action: String,
    retryable: bool,
    failover_safe: bool,
    matched_by: String,
    #[serde(default)]
    param: Option<String>,
    #[serde(default)]
    ambiguous: Option<usize>,
    #[serde(default)]
    retry_after_ms: Option<u64>,
}

const DIALECTS: &[(&str, &str)] = &[
    ("typed-error", include_str!("../golden/typed-error.toml")),
    ("card-issuing", include_str!("../golden/card-issuing.toml")),
    (
        "result-status",
        include_str!("../golden/result-status.toml"),
    ),
    ("pts", include_str!("../golden/pts.toml")),
    ("portone", include_str!("../golden/portone.toml")),
];

fn name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

fn run(dialect: Option<&str>, case: &Case, lang: Lang) -> Verdict {
    let headers: Vec<(&str, &str)> = case
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let response = Response {
        http_status: case.http_status,
        headers,
        body: case.body.as_bytes(),
    };
    let verdict = engine()
        .normalize(&response, &Options { dialect, lang })
        .unwrap();
    // Every golden verdict, in both languages, written by the fast writer as serde writes it.
    let mut fast = Vec::new();
    verdict.write_json(&mut fast);
    assert_eq!(
        String::from_utf8_lossy(&fast),
        serde_json::to_string(&verdict).unwrap()
    );
    verdict
}

/// Differences between a verdict and the expectation, as readable lines.
fn differences(v: &Verdict, e: &Expect) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut check = |field: &str, got: String, want: String| {
        if got != want {
            diffs.push(format!("{field}: got {got}, want {want}"));
        }
    };
    check("outcome", name(&v.outcome), e.outcome.clone());
    check("category", name(&v.category), e.category.clone());
    check("code", v.code.to_string(), e.code.clone());
    check("next_action", name(&v.next_action), e.next_action.clone());
    check(
        "retryable",
        v.retryable.to_string(),
        e.retryable.to_string(),
    );
    check(
        "failover_safe",
        v.failover_safe.to_string(),
        e.failover_safe.to_string(),
    );
    check("matched_by", name(&v.matched_by), e.matched_by.clone());
    if let Some(p) = &e.param {
        check("param", format!("{:?}", v.param), format!("{:?}", Some(p)));
    }
    if let Some(n) = e.ambiguous {
        check("ambiguous", v.ambiguous.len().to_string(), n.to_string());
    }
    if let Some(ms) = e.retry_after_ms {
        check(
            "retry_after_ms",
            format!("{:?}", v.retry_after_ms),
            format!("{:?}", Some(ms)),
        );
    }
    diffs
}

/// The hard money rules of SPEC §2, on any verdict.
pub fn money_rule_violations(v: &Verdict) -> Vec<&'static str> {
    let mut out = Vec::new();
    if v.failover_safe && matches!(v.outcome, Outcome::Unknown | Outcome::Pending) {
        out.push("failover_safe with an unknown or pending outcome");
    }
    if v.retryable && v.outcome == Outcome::Succeeded {
        out.push("retryable after success");
    }
    if v.outcome == Outcome::Unknown
        && !matches!(
            v.next_action,
            NextAction::Poll | NextAction::Retry | NextAction::Wait
        )
    {
        out.push("unknown outcome whose next action is neither poll nor a same-key retry");
    }
    if v.next_action == NextAction::Failover && !v.failover_safe {
        out.push("failover suggested when it is not safe");
    }
    use payerr::Category::*;
    if matches!(v.category, FraudRisk | CardBlocked) && v.retryable {
        out.push("fraud or blocked card marked retryable");
    }
    out
}

fn has_cjk(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

#[test]
fn every_golden_case_holds_for_its_dialect_and_under_auto() {
    let mut failures = Vec::new();
    let mut cases = 0;
    for (id, text) in DIALECTS {
        let file: File = toml::from_str(text).unwrap_or_else(|e| panic!("golden/{id}.toml: {e}"));
        for case in &file.cases {
            cases += 1;
            assert!(!case.why.trim().is_empty(), "{id}: {}: no why", case.name);
            let v = run(Some(id), case, Lang::En);
            let mut problems = differences(&v, &case.expect);
            problems.extend(money_rule_violations(&v).into_iter().map(str::to_owned));
            let zh = run(Some(id), case, Lang::Zh);
            if !has_cjk(&zh.message) || zh.message == v.message {
                problems.push(format!("zh message is not Chinese: {}", zh.message));
            }
            if zh.detail.is_some() && !zh.detail.as_deref().is_some_and(has_cjk) {
                problems.push("zh detail is not Chinese".into());
            }
            // A response that names a documented code is recognised by auto-detection too.
            if matches!(
                v.matched_by,
                MatchedBy::Code | MatchedBy::CodeAndScope | MatchedBy::CodeAndReason
            ) {
                let auto = run(None, case, Lang::En);
                if &*auto.dialect != *id {
                    problems.push(format!("auto detected {}", auto.dialect));
                } else if auto != v {
                    problems.push("auto verdict differs from the explicit one".into());
                }
            }
            if !problems.is_empty() {
                failures.push(format!(
                    "{id}: {}:\n    {}",
                    case.name,
                    problems.join("\n    ")
                ));
            }
        }
    }
    assert!(cases > 400, "only {cases} golden cases");
    assert!(
        failures.is_empty(),
        "{} failing golden cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_documented_code_has_a_golden_case() {
    let mut missing = Vec::new();
    for (id, text) in DIALECTS {
        let file: File = toml::from_str(text).unwrap();
        let verdicts: Vec<Verdict> = file
            .cases
            .iter()
            .map(|c| run(Some(id), c, Lang::En))
            .collect();
        let dialect = engine().dialect(id).unwrap();
        for entry in &dialect.entries {
            let covered = verdicts.iter().any(|v| {
                v.source.code.as_deref() == Some(&*entry.code)
                    && entry
                        .scope
                        .as_deref()
                        .is_none_or(|s| v.source.scope.as_deref() == Some(s))
                    && entry.reason.as_deref().is_none_or(|r| {
                        v.source.reason.as_deref() == Some(r) || !v.ambiguous.is_empty()
                    })
                    && v.matched_by != MatchedBy::Range
            });
            if !covered {
                missing.push(format!(
                    "{id} {} {:?} {:?}",
                    entry.code, entry.scope, entry.reason
                ));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "documented codes without a golden case:\n{}",
        missing.join("\n")
    );
}

#[test]
fn catalogs_hold_every_code_their_documents_list() {
    let count = |id: &str| engine().dialect(id).unwrap().entries.len();
    // Counts from the provider documents in shared/seeds (issue 2).
    assert_eq!(count("typed-error"), 73);
    assert_eq!(count("card-issuing"), 61);
    assert_eq!(count("result-status"), 47);
    assert_eq!(count("pts"), 59);
    assert_eq!(count("portone"), 135);
}
