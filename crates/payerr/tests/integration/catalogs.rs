//! User catalogs through `Engine::new`, line-precise `lint` diagnostics, the built-in catalogs linting
//! clean, and catalog export.

use std::collections::BTreeSet;

use payerr::engine::BUILTIN_CATALOGS;
use payerr::export::{to_json, to_markdown};
use payerr::{
    Category, Diagnostic, Engine, ErrorKind, Lang, MatchedBy, Options, Outcome, Response, Settings,
    Taxonomy, Verdict,
};

use crate::engine;

/// A small valid catalog (docs/catalog-format.md's example, trimmed).
const ACME: &str = r#"id = "acme"
name = "Acme Payments API"
description = "Acme's v2 REST API: numeric code in an HTTP 200 body."
source = "test"

[envelope]
containers = ["", "error"]
code = ["code", "errorCode"]
message = ["message"]
code_format = "numeric"

[[ranges]]
from = 1000
to = 1999
name = "Request errors"
canonical = "invalid_request"

[[status_rules]]
no_error_on_2xx = true
canonical = "approved"

[[entries]]
code = "1001"
message = "Card number invalid"
canonical = "invalid_card_number"
category = "card_invalid"
text = { en = "The card number is not valid.", zh = "卡号无效。" }

[[entries]]
code = "1002"
message = "Upstream timeout"
remedy = "Query the payment before retrying."
remedy_zh = "重试前先查询该笔支付。"
canonical = "timeout"
category = "outcome_unknown"
text = { en = "The upstream bank did not answer in time.", zh = "上游银行未及时响应。" }
"#;

fn user(file: &str, text: &str) -> Vec<(String, String)> {
    vec![(file.to_owned(), text.to_owned())]
}

fn normalize(engine: &Engine, dialect: Option<&str>, status: u16, body: &str) -> Verdict {
    engine
        .normalize(
            &Response::new(status, body.as_bytes()),
            &Options {
                dialect,
                lang: Lang::En,
            },
        )
        .unwrap()
}

/// `text` with the first occurrence of `from` replaced by `to` (which must occur).
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "`{from}` not in the catalog");
    text.replacen(from, to, 1)
}

/// 1-based line of the `nth` (0-based) occurrence of `needle`.
fn line_of(text: &str, needle: &str, nth: usize) -> usize {
    let (offset, _) = text
        .match_indices(needle)
        .nth(nth)
        .unwrap_or_else(|| panic!("`{needle}` #{nth} not found"));
    text[..offset].matches('\n').count() + 1
}

fn lint(text: &str) -> Vec<Diagnostic> {
    payerr::lint("acme.toml", text, &Taxonomy::builtin().unwrap())
}

/// Lints `text` and asserts exactly one diagnostic, on `line`, whose message contains `says`.
fn assert_one(text: &str, line: usize, says: &str) {
    let diagnostics = lint(text);
    assert_eq!(diagnostics.len(), 1, "{diagnostics:#?}");
    let d = &diagnostics[0];
    assert_eq!(d.file, "acme.toml");
    assert_eq!(d.line, line, "{d}");
    assert!(d.column >= 1, "{d}");
    assert!(
        d.message.contains(says),
        "`{}` does not say `{says}`",
        d.message
    );
    assert!(
        d.to_string().starts_with(&format!("acme.toml:{line}:")),
        "{d}"
    );
}

// ---- user catalogs --------------------------------------------------------------------------------

#[test]
fn the_example_catalog_lints_clean() {
    assert_eq!(lint(ACME), Vec::<Diagnostic>::new());
}

#[test]
fn a_new_dialect_is_added_and_usable() {
    let engine = Engine::new(Settings::default(), &user("acme.toml", ACME)).unwrap();
    let ids: Vec<&str> = engine.dialects().map(|d| &*d.id).collect();
    assert_eq!(ids.len(), BUILTIN_CATALOGS.len() + 1);
    assert_eq!(
        ids.last(),
        Some(&"acme"),
        "user dialects come after the built-ins"
    );
    assert_eq!(engine.dialect("acme").unwrap().entries.len(), 2);

    let v = normalize(
        &engine,
        Some("acme"),
        200,
        r#"{"code":1001,"message":"Card number invalid"}"#,
    );
    assert_eq!(
        (&*v.dialect, &*v.code, v.matched_by),
        ("acme", "invalid_card_number", MatchedBy::Code)
    );
    assert_eq!(v.category, Category::CardInvalid);
    assert_eq!(v.detail.as_deref(), Some("The card number is not valid."));
    let v = normalize(
        &engine,
        Some("acme"),
        200,
        r#"{"error":{"errorCode":"1002"}}"#,
    );
    assert_eq!(v.outcome, Outcome::Unknown);
    assert_eq!(
        v.how_to_fix.as_deref(),
        Some("Query the payment before retrying.")
    );
    let v = normalize(&engine, Some("acme"), 200, r#"{"code":1500}"#);
    assert_eq!(
        (v.matched_by, &*v.code),
        (MatchedBy::Range, "invalid_request")
    );
    let v = normalize(&engine, Some("acme"), 200, r#"{"id":"x"}"#);
    assert_eq!(
        (v.matched_by, v.outcome),
        (MatchedBy::Status, Outcome::Succeeded)
    );
    // Chinese texts come from the user file.
    let zh = engine
        .normalize(
            &Response::new(200, br#"{"code":1001}"#),
            &Options {
                dialect: Some("acme"),
                lang: Lang::Zh,
            },
        )
        .unwrap();
    assert_eq!(zh.detail.as_deref(), Some("卡号无效。"));

    // Auto-detection knows it: its documented message outscores the built-ins that also list 1001.
    let v = normalize(
        &engine,
        None,
        200,
        r#"{"code":1001,"message":"Card number invalid"}"#,
    );
    assert_eq!(&*v.dialect, "acme");
    // ...and the built-in engine never heard of it.
    let err = crate::engine()
        .normalize(
            &Response::new(200, b"{}"),
            &Options {
                dialect: Some("acme"),
                lang: Lang::En,
            },
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownDialect);

    // The built-ins are untouched.
    let body = r#"{"code":3002,"msg":"Insufficient balance"}"#;
    assert_eq!(
        normalize(&engine, Some("card-issuing"), 200, body),
        normalize(crate::engine(), Some("card-issuing"), 200, body)
    );
}

#[test]
fn a_user_file_with_a_builtin_id_replaces_that_builtin() {
    let pts = edit(ACME, r#"id = "acme""#, r#"id = "pts""#);
    let engine = Engine::new(Settings::default(), &user("my-pts.toml", &pts)).unwrap();
    let ids: Vec<&str> = engine.dialects().map(|d| &*d.id).collect();
    let builtin_ids: Vec<&str> = crate::engine().dialects().map(|d| &*d.id).collect();
    assert_eq!(ids, builtin_ids, "replaced in place, nothing added");
    let d = engine.dialect("pts").unwrap();
    assert_eq!(d.entries.len(), 2);
    assert_eq!(d.name, "Acme Payments API");
    // The user's meaning of 1001, and none of the built-in codes or ranges.
    let v = normalize(&engine, Some("pts"), 200, r#"{"code":1001}"#);
    assert_eq!(&*v.code, "invalid_card_number");
    let builtin = normalize(crate::engine(), Some("pts"), 200, r#"{"code":8001}"#);
    assert_eq!(builtin.matched_by, MatchedBy::Code);
    let v = normalize(&engine, Some("pts"), 200, r#"{"code":8001}"#);
    assert_eq!(v.matched_by, MatchedBy::HttpStatus);
    // Other built-ins are unchanged.
    assert_eq!(engine.dialect("portone").unwrap().entries.len(), 135);
}

#[test]
fn later_user_files_are_added_in_order() {
    let beta = edit(ACME, r#"id = "acme""#, r#"id = "beta""#);
    let files = vec![
        ("acme.toml".to_owned(), ACME.to_owned()),
        ("beta.toml".to_owned(), beta),
    ];
    let engine = Engine::new(Settings::default(), &files).unwrap();
    let ids: Vec<&str> = engine.dialects().map(|d| &*d.id).collect();
    assert_eq!(&ids[ids.len() - 2..], ["acme", "beta"]);
}

#[test]
fn a_bad_file_makes_the_engine_fail_with_diagnostics() {
    let bad = edit(
        &edit(
            ACME,
            r#"category = "card_invalid""#,
            r#"category = "declind""#,
        ),
        r#"zh = "上游银行未及时响应。""#,
        r#"zh = """#,
    );
    let files = vec![
        (
            "acme.toml".to_owned(),
            ACME.replace(r#"id = "acme""#, r#"id = "good""#),
        ),
        ("bad.toml".to_owned(), bad.clone()),
    ];
    let err = Engine::new(Settings::default(), &files).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidCatalog);
    let lines: Vec<(usize, &str)> = err
        .diagnostics()
        .iter()
        .map(|d| (d.line, &*d.file))
        .collect();
    assert_eq!(
        lines,
        [
            (line_of(&bad, r#"category = "declind""#, 0), "bad.toml"),
            (line_of(&bad, r#"zh = """#, 0), "bad.toml"),
        ]
    );
    let shown = err.to_string();
    assert!(shown.contains("bad.toml"), "{shown}");
    assert!(shown.contains("declind"), "{shown}");

    // A syntax error too.
    let err = Engine::new(
        Settings::default(),
        &user("broken.toml", "id = \"x\"\nname = "),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidCatalog);
    assert_eq!(err.diagnostics().len(), 1);
    assert_eq!(err.diagnostics()[0].line, 2);
}

// ---- lint: one problem at a time, on the right line -----------------------------------------------

#[test]
fn lint_reports_a_toml_syntax_error_on_its_line() {
    let text = edit(
        ACME,
        r#"name = "Request errors""#,
        r#"name = "Request errors"#,
    );
    assert_one(
        &text,
        line_of(&text, r#"name = "Request errors"#, 0),
        "string",
    );
}

#[test]
fn lint_reports_unknown_keys_on_their_line() {
    let text = edit(
        ACME,
        r#"code_format = "numeric""#,
        "code_format = \"numeric\"\ncode_fromat = 1",
    );
    assert_one(
        &text,
        line_of(&text, "code_fromat", 0),
        "unknown field `code_fromat`",
    );
    let text = edit(
        ACME,
        r#"message = "Upstream timeout""#,
        "message = \"Upstream timeout\"\nmesage = \"x\"",
    );
    assert_one(&text, line_of(&text, "mesage", 0), "unknown field `mesage`");
    let text = edit(ACME, "[[ranges]]\n", "[[ranges]]\nfrm = 1\n");
    assert_one(&text, line_of(&text, "frm", 0), "unknown field `frm`");
}

#[test]
fn lint_reports_an_unknown_category_on_its_line() {
    let text = edit(
        ACME,
        r#"category = "card_invalid""#,
        r#"category = "declind""#,
    );
    assert_one(
        &text,
        line_of(&text, "declind", 0),
        "unknown category `declind`",
    );
}

#[test]
fn lint_reports_an_unknown_canonical_code_on_its_line() {
    let text = edit(
        ACME,
        r#"canonical = "timeout""#,
        r#"canonical = "time_out""#,
    );
    assert_one(
        &text,
        line_of(&text, "time_out", 0),
        "unknown canonical code `time_out`",
    );
    // In a range as well.
    let text = edit(
        ACME,
        r#"canonical = "invalid_request""#,
        r#"canonical = "bad_request""#,
    );
    assert_one(
        &text,
        line_of(&text, "bad_request", 0),
        "unknown canonical code `bad_request`",
    );
}

#[test]
fn lint_reports_a_category_that_is_not_the_canonical_codes() {
    let text = edit(
        ACME,
        r#"category = "card_invalid""#,
        r#"category = "declined""#,
    );
    assert_one(
        &text,
        line_of(&text, r#"category = "declined""#, 0),
        "does not match canonical code `invalid_card_number`",
    );
}

#[test]
fn lint_reports_a_duplicate_code_without_distinct_reasons() {
    // Same code, string or integer: the second entry's code line.
    for second in [r#"code = "1001""#, "code = 1001", r#"code = " 1001""#] {
        let text = edit(ACME, r#"code = "1002""#, second);
        assert_one(
            &text,
            line_of(&text, "[[entries]]", 1) + 1,
            "duplicate code `1001`",
        );
    }
    // Reasons that differ only in case are not distinct.
    let text = edit(
        &edit(
            ACME,
            r#"code = "1002""#,
            "code = \"1001\"\nreason = \"LOST\"",
        ),
        r#"code = "1001""#,
        "code = \"1001\"\nreason = \"lost\"",
    );
    assert_one(
        &text,
        line_of(&text, "[[entries]]", 1) + 1,
        "duplicate code `1001`",
    );
    // Distinct reasons are fine.
    let text = edit(
        &edit(
            ACME,
            r#"code = "1002""#,
            "code = \"1001\"\nreason = \"EXPIRED\"",
        ),
        r#"code = "1001""#,
        "code = \"1001\"\nreason = \"LOST\"",
    );
    assert_eq!(lint(&text), Vec::<Diagnostic>::new());
}

#[test]
fn lint_reports_a_duplicate_code_whose_scopes_differ_only_in_case() {
    let text = edit(
        &edit(
            ACME,
            r#"code = "1002""#,
            "code = \"1001\"\nscope = \"Payout_Error\"",
        ),
        r#"code = "1001""#,
        "code = \"1001\"\nscope = \"payout_error\"",
    );
    assert_one(
        &text,
        line_of(&text, "[[entries]]", 1) + 1,
        "duplicate code `1001`",
    );
}

#[test]
fn lint_reports_a_missing_chinese_text_on_the_text_line() {
    let text = edit(ACME, r#", zh = "卡号无效。""#, "");
    assert_one(
        &text,
        line_of(&text, "text = ", 0),
        "missing translation `text.zh`",
    );
    let text = edit(ACME, r#"zh = "上游银行未及时响应。""#, r#"zh = "  ""#);
    assert_one(
        &text,
        line_of(&text, "text = ", 1),
        "missing translation `text.zh`",
    );
}

#[test]
fn lint_reports_a_remedy_without_its_translation_on_the_entry() {
    let text = edit(ACME, "remedy_zh = \"重试前先查询该笔支付。\"\n", "");
    assert_one(&text, line_of(&text, "[[entries]]", 1), "remedy_zh");
}

#[test]
fn lint_reports_failover_safe_with_an_unknown_outcome() {
    let text = edit(
        ACME,
        r#"category = "outcome_unknown""#,
        "category = \"outcome_unknown\"\nfailover_safe = true",
    );
    assert_one(&text, line_of(&text, "[[entries]]", 1), "failover_safe");
    // The outcome set by an override counts as well.
    let text = edit(
        ACME,
        r#"category = "card_invalid""#,
        "category = \"card_invalid\"\noutcome = \"pending\"\nfailover_safe = true",
    );
    assert_one(&text, line_of(&text, "[[entries]]", 0), "failover_safe");
}

#[test]
fn lint_reports_a_range_with_from_greater_than_to() {
    let text = edit(ACME, "from = 1000\nto = 1999", "from = 1999\nto = 1000");
    assert_one(&text, line_of(&text, "[[ranges]]", 0), "greater than");
}

#[test]
fn lint_reports_a_status_rule_with_two_selectors_or_none() {
    let text = edit(
        ACME,
        "no_error_on_2xx = true",
        "no_error_on_2xx = true\nstatus = \"S\"",
    );
    assert_one(&text, line_of(&text, "[[status_rules]]", 0), "exactly one");
    let text = edit(ACME, "no_error_on_2xx = true\n", "");
    assert_one(&text, line_of(&text, "[[status_rules]]", 0), "exactly one");
}

#[test]
fn lint_reports_a_bad_id() {
    for id in ["Acme Pay", "acme_pay", "", "auto"] {
        let text = edit(ACME, r#"id = "acme""#, &format!("id = \"{id}\""));
        assert_one(&text, 1, "dialect id");
    }
}

#[test]
fn lint_reports_every_problem_of_a_file_at_once() {
    let text = edit(
        &edit(
            &edit(ACME, r#"id = "acme""#, r#"id = "ACME""#),
            "from = 1000\nto = 1999",
            "from = 2000\nto = 1999",
        ),
        r#"category = "card_invalid""#,
        r#"category = "declind""#,
    );
    let lines: BTreeSet<usize> = lint(&text).iter().map(|d| d.line).collect();
    assert_eq!(
        lines,
        BTreeSet::from([
            1,
            line_of(&text, "[[ranges]]", 0),
            line_of(&text, "declind", 0)
        ])
    );
}

// ---- built-in catalogs ----------------------------------------------------------------------------

#[test]
fn every_builtin_catalog_lints_clean() {
    let taxonomy = Taxonomy::builtin().unwrap();
    assert_eq!(BUILTIN_CATALOGS.len(), 6);
    for (file, text) in BUILTIN_CATALOGS {
        let diagnostics = payerr::lint(file, text, &taxonomy);
        assert!(diagnostics.is_empty(), "{file}: {diagnostics:#?}");
    }
    // And each is loaded under the id its file names.
    for (file, _) in BUILTIN_CATALOGS {
        let id = file.trim_end_matches(".toml");
        assert!(engine().dialect(id).is_some(), "{id}");
    }
}

// ---- export ---------------------------------------------------------------------------------------

#[test]
fn export_lists_every_code_of_every_builtin_dialect() {
    for d in engine().dialects().filter(|d| !d.entries.is_empty()) {
        let md = to_markdown(d, Lang::En);
        assert!(
            md.starts_with(&format!("# {} (`{}`)", d.name, d.id)),
            "{}",
            d.id
        );
        for e in &d.entries {
            assert!(
                md.contains(&format!("| `{}` |", e.code)),
                "{}: {} missing from markdown",
                d.id,
                e.code
            );
        }
        // One table row per entry (rows that start with a code cell), one per range and status rule.
        let rows = md.lines().filter(|l| l.starts_with("| `")).count();
        assert_eq!(rows, d.entries.len(), "{}", d.id);
        for r in &d.ranges {
            assert!(
                md.contains(&format!("| {}-{} {} |", r.from, r.to, r.name)),
                "{}",
                d.id
            );
        }
        let zh = to_markdown(d, Lang::Zh);
        assert_ne!(zh, md);
        assert!(zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)));

        let json = to_json(d);
        assert_eq!(json["id"], &*d.id);
        let entries = json["entries"].as_array().unwrap();
        assert_eq!(entries.len(), d.entries.len(), "{}", d.id);
        assert_eq!(json["ranges"].as_array().unwrap().len(), d.ranges.len());
        assert_eq!(
            json["status_rules"].as_array().unwrap().len(),
            d.status_rules.len()
        );
        for (exported, entry) in entries.iter().zip(&d.entries) {
            assert_eq!(exported["code"], &*entry.code);
            assert_eq!(exported["canonical"], &*entry.canonical.code);
            assert_eq!(exported["category"], entry.canonical.category.as_str());
            assert_eq!(exported["retryable"], entry.decision.retryable);
            assert_eq!(exported["failover_safe"], entry.decision.failover_safe);
            assert!(exported["text"]["zh"]
                .as_str()
                .is_some_and(|t| !t.is_empty()));
        }
    }
}

#[test]
fn export_of_a_user_dialect_shows_its_remedy() {
    let engine = Engine::new(Settings::default(), &user("acme.toml", ACME)).unwrap();
    let d = engine.dialect("acme").unwrap();
    let md = to_markdown(d, Lang::Zh);
    assert!(md.contains("重试前先查询该笔支付。"), "{md}");
    assert!(md.contains("1000-1999 Request errors"), "{md}");
    let json = to_json(d);
    assert_eq!(
        json["entries"][1]["remedy"]["en"],
        "Query the payment before retrying."
    );
    assert_eq!(json["entries"][1]["outcome"], "unknown");
}
