//! Envelope variants, HTTP-only decisions, Retry-After, languages, scopes and reasons, ranges, status
//! caps, auto-detection and PAN masking, all through `Engine::normalize` (and the free `normalize`).

use payerr::{
    Category, Engine, ErrorKind, Lang, MatchedBy, NextAction, Options, Outcome, PollPolicy,
    Response, RetryPolicy, Settings, Verdict,
};

use crate::golden::money_rule_violations;
use crate::{engine, verdict};

/// Normalizes a full response (headers included) with `dialect` (None = auto) in `lang`.
fn run(dialect: Option<&str>, response: &Response<'_>, lang: Lang) -> Verdict {
    engine()
        .normalize(response, &Options { dialect, lang })
        .expect("known dialect")
}

fn has_cjk(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

/// Asserts the money rules of SPEC §2 on a verdict, naming the input.
fn assert_money_rules(v: &Verdict, input: &str) {
    let violations = money_rule_violations(v);
    assert!(violations.is_empty(), "{input}: {violations:?}\n{v:#?}");
}

// ---- envelope variants ----------------------------------------------------------------------------

/// The same documented code, wrapped every way a dialect's envelope allows, gives the same decision.
fn assert_variants(
    dialect: &str,
    status: u16,
    bodies: &[&str],
    want_code: &str,
    want_source: &str,
) {
    let mut first: Option<Verdict> = None;
    for body in bodies {
        let v = verdict(Some(dialect), status, body);
        assert_eq!(&*v.dialect, dialect, "{body}");
        assert_eq!(&*v.code, want_code, "{dialect}: {body}");
        assert_eq!(v.source.code.as_deref(), Some(want_source), "{body}");
        assert!(
            matches!(
                v.matched_by,
                MatchedBy::Code | MatchedBy::CodeAndScope | MatchedBy::CodeAndReason
            ),
            "{body}: matched by {:?}",
            v.matched_by
        );
        assert!(
            v.source
                .message
                .as_deref()
                .is_some_and(|m| m.starts_with("msg-")),
            "{body}: message not read: {:?}",
            v.source.message
        );
        assert_money_rules(&v, body);
        if let Some(f) = &first {
            assert_eq!(
                (
                    f.outcome,
                    f.category,
                    f.next_action,
                    f.retryable,
                    f.failover_safe
                ),
                (
                    v.outcome,
                    v.category,
                    v.next_action,
                    v.retryable,
                    v.failover_safe
                ),
                "{body}"
            );
        } else {
            first = Some(v);
        }
    }
}

#[test]
fn typed_error_fields_at_top_level_or_under_error_data_result() {
    assert_variants(
        "typed-error",
        400,
        &[
            r#"{"type":"payment_error","code":"expired_card","message":"msg-top"}"#,
            r#"{"error":{"type":"payment_error","code":"expired_card","message":"msg-error"}}"#,
            r#"{"data":{"type":"payment_error","code":"expired_card","msg":"msg-data"}}"#,
            r#"{"result":{"type":"payment_error","code":"expired_card","error_message":"msg-result"}}"#,
            r#"{"error":{"type":"payment_error","error_code":"expired_card","errorMessage":"msg-alt"}}"#,
        ],
        "expired_card",
        "expired_card",
    );
    let v = verdict(
        Some("typed-error"),
        400,
        r#"{"error":{"type":"payment_error","code":"expired_card","message":"msg"}}"#,
    );
    assert_eq!(v.outcome, Outcome::Failed);
    assert_eq!(v.category, Category::CardExpired);
    assert_eq!(v.matched_by, MatchedBy::CodeAndScope);
    assert_eq!(v.source.scope.as_deref(), Some("payment_error"));
}

#[test]
fn card_issuing_numeric_and_string_codes_in_every_container() {
    assert_variants(
        "card-issuing",
        200,
        &[
            r#"{"code":3002,"msg":"msg-top"}"#,
            r#"{"code":"3002","message":"msg-string"}"#,
            r#"{"code":" 3002 ","msg":"msg-padded"}"#,
            r#"{"code":3002.0,"msg":"msg-float"}"#,
            r#"{"data":{"code":3002,"msg":"msg-data"}}"#,
            r#"{"result":{"errCode":"3002","errMsg":"msg-result"}}"#,
            r#"{"error":{"error_code":3002,"message":"msg-error"}}"#,
        ],
        "insufficient_funds",
        "3002",
    );
}

#[test]
fn result_status_fields_under_result_top_level_data_and_data_result() {
    assert_variants(
        "result-status",
        200,
        &[
            r#"{"result":{"resultStatus":"F","resultCode":"ORDER_NOT_EXIST","resultMessage":"msg-result"}}"#,
            r#"{"resultStatus":"F","resultCode":"ORDER_NOT_EXIST","resultMessage":"msg-top"}"#,
            r#"{"data":{"resultStatus":"F","resultCode":"ORDER_NOT_EXIST","resultMsg":"msg-data"}}"#,
            r#"{"data":{"result":{"resultStatus":"F","resultCode":"ORDER_NOT_EXIST","resultMessage":"msg-dr"}}}"#,
            r#"{"response":{"result":{"resultStatus":"F","resultCode":"ORDER_NOT_EXIST","resultMessage":"msg-rr"}}}"#,
        ],
        "order_not_found",
        "ORDER_NOT_EXIST",
    );
}

#[test]
fn pts_numeric_and_string_codes_in_every_container() {
    assert_variants(
        "pts",
        200,
        &[
            r#"{"code":8001,"message":"msg-top"}"#,
            r#"{"code":"8001","msg":"msg-string"}"#,
            r#"{"data":{"code":8001,"message":"msg-data"}}"#,
            r#"{"result":{"error_code":"8001","message":"msg-result"}}"#,
            r#"{"error":{"errorCode":8001,"msg":"msg-error"}}"#,
        ],
        "service_unavailable",
        "8001",
    );
    let v = verdict(Some("pts"), 200, r#"{"code":"8001","msg":"x"}"#);
    assert_eq!(v.category, Category::ProviderUnavailable);
}

#[test]
fn portone_numeric_and_string_codes_in_every_container() {
    assert_variants(
        "portone",
        200,
        &[
            r#"{"status_code":4081,"status_reason":"ROLE_NOT_ALLOWED","message":"msg-top"}"#,
            r#"{"status_code":"4081","status_reason":"ROLE_NOT_ALLOWED","msg":"msg-string"}"#,
            r#"{"data":{"status_code":4081,"status_reason":"ROLE_NOT_ALLOWED","status_channel_reason":"msg-data"}}"#,
            r#"{"error":{"status_code":"4081","status_reason":"ROLE_NOT_ALLOWED","message":"msg-error"}}"#,
            r#"{"result":{"status_code":4081,"status_reason":"ROLE_NOT_ALLOWED","message":"msg-result"}}"#,
        ],
        "permission_denied",
        "4081",
    );
}

#[test]
fn the_codes_container_wins_for_message_scope_and_reason() {
    // typed-error: a top-level type and message belong to another object than the code under `error`.
    let v = verdict(
        Some("typed-error"),
        400,
        r#"{"type":"api_error","message":"outer","error":{"type":"payout_error","code":"invalid_parameter","message":"inner"}}"#,
    );
    assert_eq!(v.source.scope.as_deref(), Some("payout_error"));
    assert_eq!(v.source.message.as_deref(), Some("inner"));
    assert_eq!(v.matched_by, MatchedBy::CodeAndScope);
    assert_eq!(v.outcome, Outcome::Failed);

    // portone: the reason next to the code decides, not the one at the top level.
    let v = verdict(
        Some("portone"),
        200,
        r#"{"status_reason":"PARTIAL_REFUND_NOT_ALLOWED","data":{"status_code":4081,"status_reason":"ROLE_NOT_ALLOWED"}}"#,
    );
    assert_eq!(v.source.reason.as_deref(), Some("ROLE_NOT_ALLOWED"));
    assert_eq!(&*v.code, "permission_denied");

    // card-issuing: a message elsewhere is used only when the code's container has none.
    let v = verdict(
        Some("card-issuing"),
        200,
        r#"{"msg":"outer","data":{"code":3002,"msg":"inner"}}"#,
    );
    assert_eq!(v.source.message.as_deref(), Some("inner"));
    let v = verdict(
        Some("card-issuing"),
        200,
        r#"{"msg":"outer","data":{"code":3002}}"#,
    );
    assert_eq!(v.source.message.as_deref(), Some("outer"));

    // The top-level code comes first when both are present; an empty code counts as absent.
    let v = verdict(
        Some("card-issuing"),
        200,
        r#"{"code":"","data":{"code":3002}}"#,
    );
    assert_eq!(v.source.code.as_deref(), Some("3002"));
    let v = verdict(
        Some("card-issuing"),
        200,
        r#"{"code":0,"data":{"code":3002}}"#,
    );
    assert_eq!(v.outcome, Outcome::Succeeded);
}

#[test]
fn first_of_duplicated_keys_wins_and_unrelated_nesting_is_ignored() {
    let v = verdict(
        Some("pts"),
        200,
        r#"{"items":[{"code":1000}],"meta":{"code":1000},"code":8001,"code":1000}"#,
    );
    assert_eq!(v.source.code.as_deref(), Some("8001"));
    assert_eq!(&*v.code, "service_unavailable");
}

// ---- HTTP-level decisions ---------------------------------------------------------------------------

#[test]
fn a_failure_code_inside_http_200_is_a_failure() {
    for dialect in [Some("card-issuing"), None] {
        let v = verdict(
            dialect,
            200,
            r#"{"code":3002,"msg":"Insufficient balance"}"#,
        );
        assert_eq!(&*v.dialect, "card-issuing");
        assert_eq!(v.outcome, Outcome::Failed, "{dialect:?}");
        assert_eq!(v.category, Category::InsufficientFunds);
        assert_eq!(v.matched_by, MatchedBy::Code);
        assert!(!v.retryable);
        assert_ne!(v.http_status, 200);
    }
    // Result-status F inside 200, pts 8001 inside 200: failures too.
    let v = verdict(
        None,
        200,
        r#"{"result":{"resultStatus":"F","resultCode":"ORDER_NOT_EXIST","resultMessage":"Order not found"}}"#,
    );
    assert_eq!(v.outcome, Outcome::Failed);
    // A 2xx with nothing recognisable is not success either.
    let v = verdict(None, 200, r#"{"hello":"world"}"#);
    assert_eq!(v.outcome, Outcome::Unknown);
    assert_eq!(v.next_action, NextAction::Poll);
    assert_eq!(v.matched_by, MatchedBy::HttpStatus);
}

#[test]
fn unreadable_bodies_are_decided_by_the_http_status() {
    let html = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>";
    let bodies: [(&str, &[u8]); 6] = [
        ("html", html.as_bytes()),
        ("empty", b""),
        ("blank", b" \r\n\t "),
        ("invalid utf-8", b"{\"code\":\"\xff\xfe\",\"msg\":\"x\"}"),
        ("truncated json", br#"{"code":1001,"msg":"System err"#),
        ("trailing garbage", br#"{"code":1001} <html>"#),
    ];
    for &dialect in crate::DIALECT_CHOICES {
        for (what, body) in bodies {
            let v = run(dialect, &Response::new(502, body), Lang::En);
            let input = format!("{dialect:?} 502 {what}");
            assert_eq!(v.matched_by, MatchedBy::HttpStatus, "{input}");
            assert_eq!(v.outcome, Outcome::Unknown, "{input}");
            assert_eq!(v.next_action, NextAction::Poll, "{input}");
            assert!(!v.failover_safe, "{input}");
            assert!(!v.retryable, "{input}");
            assert_eq!(
                v.source.code, None,
                "{input}: a broken body is not trusted in part"
            );
            assert_eq!(v.source.http_status, Some(502));
            if dialect.is_none() {
                assert_eq!(&*v.dialect, "http", "{input}");
            }
            assert_money_rules(&v, &input);
        }
    }
}

#[test]
fn invalid_utf8_anywhere_makes_the_body_untrusted() {
    // With the bad byte in the message, the body is rejected (see above); in a field payerr does not
    // read, the same bytes are accepted and the code decides.
    let body: &[u8] = b"{\"note\":\"caf\xe9\",\"code\":3002,\"msg\":\"Insufficient balance\"}";
    let v = run(Some("card-issuing"), &Response::new(502, body), Lang::En);
    assert_eq!(v.matched_by, MatchedBy::HttpStatus);
    assert_eq!(v.source.code, None);
}

#[test]
fn a_503_without_a_body_code_is_provider_unavailable_and_failover_safe() {
    for (dialect, body) in [
        (None, ""),
        (None, "<html>Service Unavailable</html>"),
        (Some("pts"), "{}"),
        (Some("card-issuing"), r#"{"msg":"maintenance"}"#),
        (Some("http"), ""),
    ] {
        let v = verdict(dialect, 503, body);
        let input = format!("{dialect:?} 503 {body}");
        assert_eq!(v.category, Category::ProviderUnavailable, "{input}");
        assert_eq!(v.outcome, Outcome::Failed, "{input}");
        assert_eq!(v.matched_by, MatchedBy::HttpStatus, "{input}");
        assert!(v.failover_safe, "{input}");
        assert!(v.retryable, "{input}");
        assert_money_rules(&v, &input);
    }
}

#[test]
fn informational_and_redirect_statuses_without_a_code_fall_back_safely() {
    for status in [100, 101, 103, 301, 302, 304, 307] {
        for body in ["", "<html>Moved</html>", "{}"] {
            let v = verdict(None, status, body);
            let input = format!("{status} {body:?}");
            assert_eq!(v.matched_by, MatchedBy::Fallback, "{input}");
            assert_eq!(&*v.code, "unrecognized_response", "{input}");
            assert_eq!(v.outcome, Outcome::Unknown, "{input}");
            assert_eq!(v.next_action, NextAction::Poll, "{input}");
            assert!(!v.failover_safe && !v.retryable, "{input}");
        }
    }
}

// ---- Retry-After and default delays -----------------------------------------------------------------

#[test]
fn retry_after_in_seconds_sets_the_first_delay() {
    for name in ["Retry-After", "retry-after", "RETRY-AFTER"] {
        let r = Response::new(503, b"").header(name, "120");
        let v = run(None, &r, Lang::En);
        assert!(v.retryable);
        assert_eq!(v.retry_after_ms, Some(120_000), "{name}");
    }
    let r = Response::new(200, br#"{"code":8001,"message":"Service not available"}"#)
        .header("Retry-After", " 3 ");
    assert_eq!(run(Some("pts"), &r, Lang::En).retry_after_ms, Some(3_000));
}

#[test]
fn retry_after_as_an_http_date_is_measured_from_the_response_date() {
    // Dates far in the past: the delay must come from the Date header, not the local clock.
    let r = Response::new(429, b"")
        .header("Date", "Wed, 21 Oct 2015 07:28:00 GMT")
        .header("Retry-After", "Wed, 21 Oct 2015 07:28:30 GMT");
    let v = run(None, &r, Lang::En);
    assert_eq!(v.category, Category::RateLimited);
    assert_eq!(v.retry_after_ms, Some(30_000));
    // A date before the response's Date means "now".
    let r = Response::new(503, b"")
        .header("Date", "Wed, 21 Oct 2015 07:28:00 GMT")
        .header("Retry-After", "Wed, 21 Oct 2015 07:27:00 GMT");
    assert_eq!(run(None, &r, Lang::En).retry_after_ms, Some(0));
}

#[test]
fn without_retry_after_the_configured_defaults_apply() {
    let v = verdict(None, 503, "");
    assert!(v.retryable);
    assert_eq!(v.retry_after_ms, Some(200));
    let v = verdict(None, 502, "");
    assert_eq!(v.next_action, NextAction::Poll);
    assert_eq!(v.retry_after_ms, Some(3_000));
    // Unparseable Retry-After is ignored, not trusted.
    let r = Response::new(503, b"").header("Retry-After", "soon");
    assert_eq!(run(None, &r, Lang::En).retry_after_ms, Some(200));
    // A poll takes the provider's Retry-After too.
    let r = Response::new(502, b"").header("Retry-After", "7");
    assert_eq!(run(None, &r, Lang::En).retry_after_ms, Some(7_000));
}

#[test]
fn retry_after_does_not_make_a_final_failure_retryable() {
    let r = Response::new(200, br#"{"code":3002,"msg":"Insufficient balance"}"#)
        .header("Retry-After", "5");
    let v = run(Some("card-issuing"), &r, Lang::En);
    assert!(!v.retryable);
    assert_eq!(v.next_action, NextAction::CustomerAction);
    assert_eq!(v.retry_after_ms, None);
}

#[test]
fn settings_change_the_default_delays() {
    let settings = Settings {
        retry: RetryPolicy {
            base_ms: 750,
            ..RetryPolicy::default()
        },
        poll: PollPolicy {
            interval_ms: 1_234,
            ..PollPolicy::default()
        },
    };
    let engine = Engine::new(settings, &[]).unwrap();
    let opts = Options::default();
    let v = engine.normalize(&Response::new(503, b""), &opts).unwrap();
    assert_eq!(v.retry_after_ms, Some(750));
    let v = engine.normalize(&Response::new(504, b""), &opts).unwrap();
    assert_eq!(v.retry_after_ms, Some(1_234));
    assert_eq!(engine.settings(), &settings);
}

// ---- languages --------------------------------------------------------------------------------------

#[test]
fn chinese_and_english_texts() {
    let body = br#"{"code":3002,"msg":"Insufficient balance"}"#;
    let r = Response::new(200, body);
    let zh = run(Some("card-issuing"), &r, Lang::Zh);
    let en = run(Some("card-issuing"), &r, Lang::En);
    assert!(has_cjk(&zh.message), "{}", zh.message);
    assert!(zh.detail.as_deref().is_some_and(has_cjk), "{:?}", zh.detail);
    assert!(zh.how_to_fix.as_deref().is_some_and(has_cjk));
    assert!(
        !has_cjk(&en.message) && en.message.is_ascii(),
        "{}",
        en.message
    );
    assert!(en.detail.as_deref().is_some_and(|d| !has_cjk(d)));
    assert!(en.how_to_fix.as_deref().is_some_and(|d| !has_cjk(d)));
    // Only the texts differ.
    assert_eq!(
        (
            zh.outcome,
            zh.category,
            &zh.code,
            zh.next_action,
            zh.matched_by
        ),
        (
            en.outcome,
            en.category,
            &en.code,
            en.next_action,
            en.matched_by
        )
    );
    // The provider's own remedy is translated too (typed-error documents remedies).
    let r = Response::new(
        400,
        br#"{"type":"invalid_request_error","code":"missing_parameter","message":"Mandatory parameter is missing"}"#,
    );
    let zh = run(Some("typed-error"), &r, Lang::Zh);
    let en = run(Some("typed-error"), &r, Lang::En);
    assert!(en
        .how_to_fix
        .as_deref()
        .unwrap()
        .starts_with("Check whether all required"));
    assert!(zh.how_to_fix.as_deref().is_some_and(has_cjk));
}

#[test]
fn language_header_negotiation_selects_chinese() {
    let lang = Lang::negotiate(None, Some("zh_CN"), None);
    assert_eq!(lang, Lang::Zh);
    assert_eq!(
        Lang::negotiate(None, Some("en_US"), Some("zh-CN")),
        Lang::En
    );
    assert_eq!(
        Lang::negotiate(None, Some("fr_FR"), Some("zh-CN;q=0.8")),
        Lang::Zh
    );
    assert_eq!(Lang::negotiate(Some("de"), None, None), Lang::En);
    let r = Response::new(503, b"").header("Language", "zh_CN");
    let v = run(None, &r, lang);
    assert!(has_cjk(&v.message), "{}", v.message);
}

// ---- typed-error scopes -----------------------------------------------------------------------------

#[test]
fn a_scoped_code_is_told_apart_by_its_type() {
    let irq = verdict(
        Some("typed-error"),
        400,
        r#"{"type":"invalid_request_error","code":"invalid_parameter","message":"parameter is invalid"}"#,
    );
    let payout = verdict(
        Some("typed-error"),
        400,
        r#"{"type":"payout_error","code":"invalid_parameter","message":"bad currency"}"#,
    );
    for v in [&irq, &payout] {
        assert_eq!(v.matched_by, MatchedBy::CodeAndScope);
        assert!(v.ambiguous.is_empty());
        assert_eq!(v.outcome, Outcome::Failed);
    }
    // Each scope has its own documented remedy and detail.
    assert_ne!(irq.how_to_fix, payout.how_to_fix);
    assert!(payout.detail.as_deref().unwrap().contains("payout"));
    assert!(!irq.detail.as_deref().unwrap().contains("payout"));
}

#[test]
fn a_scoped_code_without_type_is_ambiguous_between_its_scopes() {
    let v = verdict(
        Some("typed-error"),
        400,
        r#"{"code":"invalid_parameter","message":"bad"}"#,
    );
    assert_eq!(v.matched_by, MatchedBy::Code);
    let mut scopes: Vec<&str> = v
        .ambiguous
        .iter()
        .filter_map(|c| c.scope.as_deref())
        .collect();
    scopes.sort_unstable();
    assert_eq!(scopes, ["invalid_request_error", "payout_error"]);
    assert!(v
        .ambiguous
        .iter()
        .all(|c| &*c.provider_code == "invalid_parameter"));
    assert!(!v.retryable && !v.failover_safe);
}

#[test]
fn a_code_under_an_undocumented_type_still_matches_the_code() {
    let v = verdict(
        Some("typed-error"),
        400,
        r#"{"type":"card_error","code":"expired_card","message":"Expired card"}"#,
    );
    assert_eq!(v.matched_by, MatchedBy::Code);
    assert_eq!(&*v.code, "expired_card");
    assert_eq!(v.category, Category::CardExpired);
    assert!(v.ambiguous.is_empty());
    assert_eq!(v.source.scope.as_deref(), Some("card_error"));
    // A code documented in two scopes, sent under a third: both meanings are offered.
    let v = verdict(
        Some("typed-error"),
        400,
        r#"{"type":"weird_error","code":"invalid_parameter","message":"x"}"#,
    );
    assert_eq!(v.matched_by, MatchedBy::Code);
    assert_eq!(v.ambiguous.len(), 2);
}

// ---- portone reasons ------------------------------------------------------------------------------

#[test]
fn portone_4081_is_told_apart_by_its_reason() {
    let v = verdict(
        Some("portone"),
        200,
        r#"{"status_code":4081,"status_reason":"ROLE_NOT_ALLOWED","status":"Failed"}"#,
    );
    assert_eq!(v.category, Category::PermissionDenied);
    assert_eq!(v.matched_by, MatchedBy::CodeAndReason);
    assert!(v.ambiguous.is_empty());
    // Reasons compare case-insensitively.
    let v = verdict(
        Some("portone"),
        200,
        r#"{"status_code":"4081","status_reason":"partial_refund_not_allowed"}"#,
    );
    assert_eq!(v.matched_by, MatchedBy::CodeAndReason);
    assert_eq!(v.category, Category::InvalidState);
}

#[test]
fn portone_4081_without_a_known_reason_is_ambiguous_and_never_retried() {
    for body in [
        r#"{"status_code":4081}"#,
        r#"{"status_code":4081,"status_reason":""}"#,
        r#"{"status_code":4081,"status_reason":"SOMETHING_ELSE"}"#,
    ] {
        let v = verdict(Some("portone"), 200, body);
        assert_eq!(v.ambiguous.len(), 2, "{body}");
        let mut reasons: Vec<&str> = v
            .ambiguous
            .iter()
            .filter_map(|c| c.reason.as_deref())
            .collect();
        reasons.sort_unstable();
        assert_eq!(
            reasons,
            ["PARTIAL_REFUND_NOT_ALLOWED", "ROLE_NOT_ALLOWED"],
            "{body}"
        );
        assert_eq!(v.matched_by, MatchedBy::Code, "{body}");
        assert!(!v.retryable, "{body}");
        assert!(!v.failover_safe, "{body}");
        assert_money_rules(&v, body);
    }
}

// ---- ranges ---------------------------------------------------------------------------------------

/// An undocumented code, the outcome its range gives, and the range's canonical code.
type RangeCase = (&'static str, Outcome, &'static str);

#[test]
fn undocumented_codes_in_documented_ranges_match_by_range() {
    let cases: &[(&str, &[RangeCase])] = &[
        (
            "card-issuing",
            &[
                ("1999", Outcome::Unknown, "outcome_unknown"),
                ("2999", Outcome::Unknown, "outcome_unknown"),
                ("3999", Outcome::Unknown, "outcome_unknown"),
                ("4999", Outcome::Unknown, "outcome_unknown"),
            ],
        ),
        (
            "pts",
            &[
                ("1999", Outcome::Failed, "provider_rejected"),
                ("4999", Outcome::Unknown, "upstream_error"),
                ("8999", Outcome::Unknown, "internal_error"),
                ("9500", Outcome::Unknown, "internal_error"),
            ],
        ),
        (
            "portone",
            &[
                ("1999", Outcome::Pending, "pending"),
                ("2999", Outcome::Succeeded, "approved"),
                ("4999", Outcome::Failed, "invalid_request"),
                ("5999", Outcome::Unknown, "internal_error"),
                ("6999", Outcome::Failed, "declined"),
                ("7999", Outcome::Unknown, "outcome_unknown"),
                ("8999", Outcome::Unknown, "upstream_error"),
            ],
        ),
    ];
    for (dialect, codes) in cases {
        let field = if *dialect == "portone" {
            "status_code"
        } else {
            "code"
        };
        let d = engine().dialect(dialect).unwrap();
        for (code, outcome, canonical) in *codes {
            assert!(
                !d.knows(code),
                "{dialect} {code} is documented; pick another"
            );
            for body in [
                format!(r#"{{"{field}":{code}}}"#),
                format!(r#"{{"{field}":"{code}"}}"#),
            ] {
                for status in [200, 400] {
                    let v = verdict(Some(dialect), status, &body);
                    let input = format!("{dialect} {status} {body}");
                    assert_eq!(v.matched_by, MatchedBy::Range, "{input}");
                    assert_eq!(v.outcome, *outcome, "{input}");
                    assert_eq!(&*v.code, *canonical, "{input}");
                    assert_eq!(v.detail, None, "{input}: no entry, no detail");
                    assert_money_rules(&v, &input);
                }
            }
        }
    }
}

#[test]
fn a_numeric_code_outside_every_range_falls_through_to_the_http_status() {
    let v = verdict(Some("card-issuing"), 200, r#"{"code":9999}"#);
    assert_eq!(v.matched_by, MatchedBy::HttpStatus);
    assert_eq!(v.outcome, Outcome::Unknown);
    assert_eq!(v.source.code.as_deref(), Some("9999"));
}

// ---- status caps --------------------------------------------------------------------------------

#[test]
fn a_documented_failure_sent_with_status_u_is_unknown() {
    let f = verdict(
        Some("result-status"),
        200,
        r#"{"result":{"resultStatus":"F","resultCode":"ORDER_NOT_EXIST","resultMessage":"Order not found"}}"#,
    );
    assert_eq!(f.outcome, Outcome::Failed);
    let u = verdict(
        Some("result-status"),
        200,
        r#"{"result":{"resultStatus":"U","resultCode":"ORDER_NOT_EXIST","resultMessage":"Order not found"}}"#,
    );
    assert_eq!(u.outcome, Outcome::Unknown);
    assert_eq!(u.next_action, NextAction::Poll);
    assert!(!u.failover_safe && !u.retryable);
    assert_eq!(u.retry_after_ms, Some(3_000));
    assert_eq!(u.source.status.as_deref(), Some("U"));
    assert_money_rules(&u, "F code with U");
    // Lower-case status values cap as well.
    let u = verdict(
        Some("result-status"),
        200,
        r#"{"result":{"resultStatus":"u","resultCode":"ORDER_NOT_EXIST"}}"#,
    );
    assert_eq!(u.outcome, Outcome::Unknown);
    // portone's status caps the same way: a documented bank decline (failed) sent with a non-terminal
    // status is not a certain failure.
    let v = verdict(
        Some("portone"),
        200,
        r#"{"status_code":6001,"status":"Pending"}"#,
    );
    assert_eq!(v.outcome, Outcome::Unknown);
    assert!(!v.failover_safe);
}

#[test]
fn a_capped_verdict_tells_the_customer_the_outcome_is_being_confirmed() {
    let unknown_message = verdict(None, 504, "").message;
    for (dialect, body) in [
        (
            "result-status",
            r#"{"result":{"resultStatus":"U","resultCode":"INVALID_SIGNATURE","resultMessage":"x"}}"#,
        ),
        ("portone", r#"{"status_code":2000,"status":"Failed"}"#),
    ] {
        let v = verdict(Some(dialect), 200, body);
        assert_eq!(v.outcome, Outcome::Unknown, "{body}");
        assert_eq!(v.message, unknown_message, "{body}");
    }
}

// ---- auto-detection -------------------------------------------------------------------------------

#[test]
fn auto_detection_reports_the_dialect_it_chose() {
    let typical: &[(&str, u16, &str)] = &[
        (
            "typed-error",
            400,
            r#"{"error":{"type":"payment_error","code":"insufficient_funds","message":"Insufficient funds"}}"#,
        ),
        (
            "card-issuing",
            200,
            r#"{"code":2003,"msg":"Cardholder not found","data":null}"#,
        ),
        (
            "result-status",
            200,
            r#"{"result":{"resultStatus":"U","resultCode":"UNKNOWN_EXCEPTION","resultMessage":"An API calling is failed, which is caused by unknown reasons."}}"#,
        ),
        (
            "pts",
            200,
            r#"{"code":1000,"message":"Request accepted","data":{"order_id":"PO1"}}"#,
        ),
        (
            "portone",
            200,
            r#"{"status_code":6001,"status_reason":"BANK_REFUSED_TRANSACTION","status":"Failed","order_ref":"2Q00"}"#,
        ),
    ];
    for (want, status, body) in typical {
        let auto = verdict(None, *status, body);
        assert_eq!(&*auto.dialect, *want, "{body}");
        let explicit = verdict(Some(want), *status, body);
        assert_eq!(auto, explicit, "{body}");
        // "auto" spelled out is the same as no dialect.
        assert_eq!(verdict(Some("auto"), *status, body), auto);
    }
}

#[test]
fn a_body_nobody_recognises_is_the_generic_dialect() {
    for (status, body) in [
        (400, r#"{"foo":"bar"}"#),
        (500, "Internal Server Error"),
        (402, r#"[1,2,3]"#),
        (200, ""),
    ] {
        let v = verdict(None, status, body);
        assert_eq!(&*v.dialect, "http", "{body}");
        assert!(matches!(
            v.matched_by,
            MatchedBy::HttpStatus | MatchedBy::Fallback
        ));
    }
}

#[test]
fn auto_falling_back_to_http_reports_what_explicit_http_reports() {
    for body in [
        r#"{"error_description":"bad things"}"#,
        r#"{"error":{"resultCode":"X1","message":"m"}}"#,
    ] {
        let auto = verdict(None, 400, body);
        assert_eq!(&*auto.dialect, "http");
        assert_eq!(auto, verdict(Some("http"), 400, body), "{body}");
    }
}

#[test]
fn auto_reads_a_code_after_many_envelope_fields() {
    let names = [
        "message",
        "msg",
        "error_message",
        "errorMessage",
        "resultMessage",
        "resultMsg",
        "type",
        "param",
        "resultStatus",
        "status",
        "status_reason",
        "status_channel_reason",
        "errMsg",
    ];
    let mut body = String::from("{");
    for container in ["data", "error", "result"] {
        let fields: Vec<String> = names.iter().map(|n| format!(r#""{n}":"v""#)).collect();
        body.push_str(&format!(r#""{container}":{{{}}},"#, fields.join(",")));
    }
    body.push_str(r#""code":3002}"#);
    let explicit = verdict(Some("card-issuing"), 200, &body);
    assert_eq!(explicit.matched_by, MatchedBy::Code);
    let auto = verdict(None, 200, &body);
    assert_eq!(&*auto.dialect, "card-issuing", "{body}");
    assert_eq!(auto.matched_by, MatchedBy::Code, "{body}");
}

#[test]
fn an_unknown_dialect_id_is_an_error() {
    let err = engine()
        .normalize(
            &Response::new(400, b"{}"),
            &Options {
                dialect: Some("stripe-ish"),
                lang: Lang::En,
            },
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownDialect);
    assert!(err.to_string().contains("stripe-ish"), "{err}");
    assert!(err.to_string().contains("portone"), "{err}");
}

// ---- PAN masking ----------------------------------------------------------------------------------

#[test]
fn a_card_number_in_the_provider_message_never_reaches_the_verdict() {
    let pans = [
        "4111111111111111",
        "5500005555555559",
        "378282246310005",
        "6011111111111117",
    ];
    for pan in pans {
        let bodies = [
            (
                "card-issuing",
                format!(r#"{{"code":2003,"msg":"Card {pan} not found"}}"#),
            ),
            (
                "typed-error",
                format!(
                    r#"{{"type":"payment_error","code":"expired_card","message":"card:{pan}"}}"#
                ),
            ),
            (
                "result-status",
                format!(
                    r#"{{"result":{{"resultStatus":"F","resultCode":"ORDER_NOT_EXIST","resultMessage":"{pan}"}}}}"#
                ),
            ),
            (
                "pts",
                format!(r#"{{"code":1001,"message":"card_no={pan} invalid"}}"#),
            ),
            (
                "portone",
                format!(r#"{{"status_code":6001,"status_channel_reason":"declined {pan}"}}"#),
            ),
        ];
        for (dialect, body) in &bodies {
            for d in [Some(*dialect), None] {
                for lang in [Lang::En, Lang::Zh] {
                    let v = run(d, &Response::new(200, body.as_bytes()), lang);
                    let json = serde_json::to_string(&v).unwrap();
                    assert!(!json.contains(pan), "{d:?} {body}: {json}");
                    let masked = format!(
                        "{}{}{}",
                        &pan[..6],
                        "*".repeat(pan.len() - 10),
                        &pan[pan.len() - 4..]
                    );
                    assert!(json.contains(&masked), "{d:?} {body}: message lost: {json}");
                }
            }
        }
    }
    // A code that is itself a card number is masked as well.
    let v = verdict(Some("card-issuing"), 200, r#"{"code":4111111111111111}"#);
    assert!(!serde_json::to_string(&v)
        .unwrap()
        .contains("4111111111111111"));
    // A 16-digit order number that fails Luhn is kept as sent.
    let v = verdict(
        Some("pts"),
        200,
        r#"{"code":1002,"message":"order 4111111111111112"}"#,
    );
    assert_eq!(v.source.message.as_deref(), Some("order 4111111111111112"));
}

#[test]
fn a_card_number_in_any_source_field_never_reaches_the_verdict() {
    for (dialect, body) in [
        (
            "portone",
            r#"{"status_code":6001,"status_reason":"4111111111111111"}"#,
        ),
        (
            "portone",
            r#"{"status_code":6001,"status":"4111111111111111"}"#,
        ),
        (
            "typed-error",
            r#"{"type":"4111111111111111","code":"expired_card"}"#,
        ),
        (
            "result-status",
            r#"{"result":{"resultStatus":"4111111111111111","resultCode":"ORDER_NOT_EXIST"}}"#,
        ),
    ] {
        let v = verdict(Some(dialect), 400, body);
        let json = serde_json::to_string(&v).unwrap();
        assert!(!json.contains("4111111111111111"), "{body}: {json}");
    }
}

// ---- param ----------------------------------------------------------------------------------------

#[test]
fn card_issuing_names_the_offending_field_around_its_message() {
    for (msg, want) in [
        ("card_number Invalid request parameter", "card_number"),
        ("Invalid request parameter: expiry_date", "expiry_date"),
        ("expiry_date 请求参数无效", "expiry_date"),
    ] {
        let body = format!(r#"{{"code":1004,"msg":"{msg}"}}"#);
        let v = verdict(Some("card-issuing"), 200, &body);
        assert_eq!(v.param.as_deref(), Some(want), "{msg}");
    }
    // The documented text alone names no field.
    let v = verdict(
        Some("card-issuing"),
        200,
        r#"{"code":1004,"msg":"Invalid request parameter"}"#,
    );
    assert_eq!(v.param, None);
    // typed-error names it in its own field.
    let v = verdict(
        Some("typed-error"),
        400,
        r#"{"error":{"type":"invalid_request_error","code":"missing_parameter","message":"m","param":"amount"}}"#,
    );
    assert_eq!(v.param.as_deref(), Some("amount"));
}

#[test]
fn card_issuing_finds_a_one_word_field_after_the_message() {
    for msg in [
        "Invalid request parameter: email",
        "Invalid request parameter [email]",
        "email Invalid request parameter",
    ] {
        let body = format!(r#"{{"code":1004,"msg":"{msg}"}}"#);
        let v = verdict(Some("card-issuing"), 200, &body);
        assert_eq!(v.param.as_deref(), Some("email"), "{msg}");
    }
}

// ---- typed-error success rule -----------------------------------------------------------------------

#[test]
fn typed_error_2xx_without_an_error_object_is_success() {
    let v = verdict(
        Some("typed-error"),
        200,
        r#"{"id":"pay_1","object":"payment","amount":1000,"status":"succeeded"}"#,
    );
    assert_eq!(v.outcome, Outcome::Succeeded);
    assert_eq!(v.matched_by, MatchedBy::Status);
    // ...but an error type with a 2xx is not.
    let v = verdict(
        Some("typed-error"),
        200,
        r#"{"error":{"type":"api_error","message":"Internal error"}}"#,
    );
    assert_ne!(v.outcome, Outcome::Succeeded);
}

#[test]
fn typed_error_2xx_with_an_error_object_is_not_success() {
    for body in [
        r#"{"error":{"message":"Internal failure"}}"#,
        r#"{"error":{"type":"mystery_error","message":"Something failed"}}"#,
    ] {
        let v = verdict(Some("typed-error"), 200, body);
        assert_ne!(v.outcome, Outcome::Succeeded, "{body}");
    }
}

// ---- the free function ----------------------------------------------------------------------------

#[test]
fn the_free_function_detects_the_dialect_and_answers_in_english() {
    let body = br#"{"result":{"resultStatus":"F","resultCode":"ORDER_NOT_EXIST","resultMessage":"Order not found"}}"#;
    let v = payerr::normalize(&Response::new(200, body));
    assert_eq!(&*v.dialect, "result-status");
    assert_eq!(&*v.code, "order_not_found");
    assert_eq!(v.outcome, Outcome::Failed);
    assert!(!has_cjk(&v.message));
    assert_eq!(v, verdict(None, 200, std::str::from_utf8(body).unwrap()));
    let v = payerr::normalize(&Response::new(502, b"<html>Bad Gateway</html>"));
    assert_eq!((&*v.dialect, v.outcome), ("http", Outcome::Unknown));
}

#[test]
fn no_response_is_unavailable_before_sending_and_unknown_after() {
    let engine = Engine::builtin().unwrap();
    let v = engine
        .no_response("pts", payerr::NoResponse::NotSent, Lang::En)
        .unwrap();
    assert_eq!(
        (&*v.dialect, v.outcome, v.category, v.matched_by),
        (
            "pts",
            Outcome::Failed,
            Category::ProviderUnavailable,
            MatchedBy::Transport
        )
    );
    assert!(v.retryable && v.failover_safe);
    let v = engine
        .no_response("portone", payerr::NoResponse::MaybeSent, Lang::Zh)
        .unwrap();
    assert_eq!(
        (v.outcome, &*v.code, v.next_action),
        (Outcome::Unknown, "timeout", NextAction::Poll)
    );
    assert!(!v.retryable && !v.failover_safe);
    assert!(v.message.contains("请勿重复支付"), "{}", v.message);
    assert!(engine
        .no_response("nope", payerr::NoResponse::NotSent, Lang::En)
        .is_err());
}
