//! Property tests: `normalize` never panics and every verdict keeps the money rules, whatever the bytes
//! (SPEC §9: malformed JSON, 10 MB bodies, deep nesting, invalid UTF-8, huge numbers).

use proptest::prelude::*;
use proptest::test_runner::Config;

use payerr::{Lang, MatchedBy, Options, Outcome, Response, Verdict};

use crate::golden::money_rule_violations;
use crate::{engine, DIALECT_CHOICES as DIALECTS};

const KNOWN_IDS: &[&str] = &[
    "typed-error",
    "card-issuing",
    "result-status",
    "pts",
    "portone",
    "http",
];

fn config() -> Config {
    Config {
        cases: 256,
        // Never write regression files into the source tree.
        failure_persistence: None,
        ..Config::default()
    }
}

/// Normalizes and checks what must hold for every response; returns the verdict for further checks.
fn check(
    dialect: Option<&str>,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    lang: Lang,
) -> Verdict {
    let response = Response {
        http_status: status,
        headers: headers.to_vec(),
        body,
    };
    let v = engine()
        .normalize(&response, &Options { dialect, lang })
        .expect("a known dialect never fails");
    let violations = money_rule_violations(&v);
    assert!(violations.is_empty(), "{violations:?}\n{v:#?}");
    assert!(KNOWN_IDS.contains(&&*v.dialect), "dialect {}", v.dialect);
    if let Some(id) = dialect {
        assert_eq!(&*v.dialect, id);
    }
    assert_eq!(v.source.http_status, Some(status));
    assert!(
        (100..=599).contains(&v.http_status),
        "merchant status {}",
        v.http_status
    );
    assert!(!v.message.is_empty());
    assert!(
        v.ambiguous.is_empty() || v.ambiguous.len() >= 2,
        "one candidate is not ambiguity"
    );
    if v.outcome == Outcome::Succeeded {
        assert!(!v.retryable && !v.failover_safe);
    }
    // The verdict survives its own JSON contract.
    let json = serde_json::to_string(&v).expect("verdicts serialize");
    let back: Verdict = serde_json::from_str(&json).expect("verdicts deserialize");
    assert_eq!(back, v);
    // The fast writer writes serde's bytes, whatever the provider sent.
    let mut fast = Vec::new();
    v.write_json(&mut fast);
    assert_eq!(String::from_utf8_lossy(&fast), json);
    v
}

fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

fn dialect() -> impl Strategy<Value = Option<&'static str>> {
    proptest::sample::select(DIALECTS)
}

fn lang() -> impl Strategy<Value = Lang> {
    prop_oneof![Just(Lang::En), Just(Lang::Zh)]
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        100u16..600,
        proptest::sample::select(
            &[200u16, 400, 401, 402, 403, 404, 409, 429, 500, 502, 503, 504][..]
        ),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(&'static str, String)>> {
    let retry_after = prop_oneof![
        (0u64..100_000).prop_map(|s| s.to_string()),
        Just("Wed, 21 Oct 2015 07:28:30 GMT".to_owned()),
        Just("99999999999999999999999".to_owned()),
        Just("-1".to_owned()),
        ".{0,12}",
    ];
    proptest::collection::vec(
        prop_oneof![
            retry_after.prop_map(|v| ("Retry-After", v)),
            Just(("Date", "Wed, 21 Oct 2015 07:28:00 GMT".to_owned())),
            ".{0,12}".prop_map(|v| ("Date", v)),
            Just(("Language", "zh_CN".to_owned())),
        ],
        0..3,
    )
}

// ---- arbitrary bytes ------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic_and_keep_the_money_rules(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        dialect in dialect(),
        status in status(),
        lang in lang(),
        headers in headers(),
    ) {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let v = check(dialect, status, &headers, &body, lang);
        // A body that is not JSON is not trusted in part: only the HTTP status (or nothing) decides.
        // (Only for UTF-8 bodies: serde_json skips unread strings without checking their UTF-8, see
        // envelopes::invalid_utf8_anywhere_makes_the_body_untrusted.)
        if std::str::from_utf8(&body).is_ok()
            && !is_blank(&body)
            && serde_json::from_slice::<serde_json::Value>(&body).is_err()
        {
            prop_assert!(
                matches!(v.matched_by, MatchedBy::HttpStatus | MatchedBy::Fallback),
                "{:?}", v.matched_by
            );
            prop_assert_eq!(v.source.code, None);
            prop_assert_eq!(v.source.message, None);
        }
    }

    #[test]
    fn arbitrary_text_bodies_never_panic(
        body in ".{0,256}",
        dialect in dialect(),
        status in status(),
    ) {
        check(dialect, status, &[], body.as_bytes(), Lang::En);
    }
}

// ---- JSON-ish strings built from fragments of real envelopes --------------------------------------

const FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    " ",
    "\n",
    "\"",
    "\\",
    "{\"",
    "\":",
    "null",
    "true",
    "false",
    "\"code\"",
    "\"status_code\"",
    "\"resultCode\"",
    "\"resultStatus\"",
    "\"type\"",
    "\"error\"",
    "\"data\"",
    "\"result\"",
    "\"response\"",
    "\"message\"",
    "\"msg\"",
    "\"resultMessage\"",
    "\"status_reason\"",
    "\"status\"",
    "\"status_channel_reason\"",
    "\"param\"",
    "\"errCode\"",
    "0",
    "\"0\"",
    "1000",
    "1004",
    "\"1004\"",
    "3002",
    "4081",
    "\"4081\"",
    "6001",
    "8001",
    "9999",
    "-1",
    "-0",
    "1.5",
    "1004.0",
    "1e3",
    "1e999",
    "-1e999",
    "99999999999999999999999999",
    "1e-400",
    "\"S\"",
    "\"F\"",
    "\"U\"",
    "\"A\"",
    "\"Success\"",
    "\"Pending\"",
    "\"Failed\"",
    "\"ROLE_NOT_ALLOWED\"",
    "\"PARTIAL_REFUND_NOT_ALLOWED\"",
    "\"invalid_request_error\"",
    "\"payout_error\"",
    "\"api_error\"",
    "\"invalid_parameter\"",
    "\"expired_card\"",
    "\"INVALID_SIGNATURE\"",
    "\"ORDER_NOT_EXIST\"",
    "\"UNKNOWN_EXCEPTION\"",
    "\"Insufficient balance\"",
    "\"card_number Invalid request parameter\"",
    "\"4111111111111111\"",
    "\"card 5500005555555559 declined\"",
    "\"\\u0034\"",
    "\"\\ud800\"",
    "\"\\n\"",
    "\"é余额\"",
    "\"\"",
];

fn fragments() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..48).prop_map(|f| f.concat())
}

/// Keys and scalars of the real envelopes, for generating valid JSON that reaches the matcher.
const KEYS: &[&str] = &[
    "code",
    "status_code",
    "resultCode",
    "resultStatus",
    "type",
    "error",
    "data",
    "result",
    "response",
    "message",
    "msg",
    "resultMessage",
    "status_reason",
    "status",
    "param",
    "errCode",
    "error_code",
    "errorCode",
    "status_channel_reason",
    "x",
];

fn scalar() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let texts = proptest::sample::select(
        &[
            "0",
            "1000",
            "1004",
            "3002",
            "4081",
            "6001",
            "8001",
            "9999",
            "S",
            "F",
            "U",
            "A",
            "Success",
            "Pending",
            "Failed",
            "ROLE_NOT_ALLOWED",
            "invalid_request_error",
            "payout_error",
            "api_error",
            "invalid_parameter",
            "expired_card",
            "INVALID_SIGNATURE",
            "ORDER_NOT_EXIST",
            "Request accepted",
            "4111111111111111",
            "",
            " ",
        ][..],
    );
    prop_oneof![
        texts.prop_map(|s| Value::String(s.to_owned())),
        any::<i64>().prop_map(Value::from),
        (0u64..10_000).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        ".{0,16}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..6).prop_map(
                |fields| {
                    serde_json::Value::Object(
                        fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                    )
                }
            ),
        ]
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn json_ish_fragments_never_panic_and_keep_the_money_rules(
        body in fragments(),
        dialect in dialect(),
        status in status(),
        lang in lang(),
    ) {
        let v = check(dialect, status, &[], body.as_bytes(), lang);
        if !is_blank(body.as_bytes()) && serde_json::from_str::<serde_json::Value>(&body).is_err() {
            prop_assert!(matches!(v.matched_by, MatchedBy::HttpStatus | MatchedBy::Fallback));
        }
    }

    #[test]
    fn valid_envelopes_decide_the_same_in_every_language_and_under_auto(
        body in json_value(),
        status in status(),
    ) {
        let body = serde_json::to_string(&body).unwrap();
        let en = check(None, status, &[], body.as_bytes(), Lang::En);
        let zh = check(None, status, &[], body.as_bytes(), Lang::Zh);
        prop_assert_eq!(
            (en.outcome, en.category, &en.code, en.next_action, en.retryable, en.failover_safe, en.matched_by),
            (zh.outcome, zh.category, &zh.code, zh.next_action, zh.retryable, zh.failover_safe, zh.matched_by)
        );
        // Auto-detection decides exactly as the dialect it reports.
        let explicit = check(Some(&*en.dialect), status, &[], body.as_bytes(), Lang::En);
        prop_assert_eq!(
            (en.outcome, en.category, &en.code, en.next_action, en.matched_by),
            (explicit.outcome, explicit.category, &explicit.code, explicit.next_action, explicit.matched_by),
            "{}", body
        );
        for dialect in &DIALECTS[1..] {
            check(*dialect, status, &[], body.as_bytes(), Lang::En);
        }
    }
}

// ---- deep nesting ---------------------------------------------------------------------------------

#[test]
fn unclosed_deep_nesting_is_not_json_and_never_overflows_the_stack() {
    let n = 100_000;
    let bodies = [
        "[".repeat(n),
        "{\"a\":".repeat(n),
        "{\"error\":".repeat(n),
        "{\"data\":{\"result\":".repeat(n / 2),
        format!("{{\"code\":3002,\"x\":{}", "[".repeat(n)),
    ];
    for body in &bodies {
        for dialect in DIALECTS {
            for status in [200, 502] {
                let v = check(*dialect, status, &[], body.as_bytes(), Lang::En);
                let input = format!("{dialect:?} {status} {}", &body[..40]);
                assert_eq!(v.matched_by, MatchedBy::HttpStatus, "{input}");
                assert_eq!(v.outcome, Outcome::Unknown, "{input}");
                assert_eq!(v.source.code, None, "{input}");
            }
        }
    }
}

#[test]
fn closed_deep_nesting_beside_the_code_does_not_hide_it() {
    let n = 100_000;
    let bodies = [
        format!("{{\"x\":{}{},\"code\":3002}}", "[".repeat(n), "]".repeat(n)),
        format!(
            "{{\"x\":{}1{},\"code\":3002}}",
            "{\"a\":".repeat(n),
            "}".repeat(n)
        ),
        format!(
            "{{\"code\":3002,\"data\":{}null{}}}",
            "{\"data\":".repeat(n),
            "}".repeat(n)
        ),
    ];
    for body in &bodies {
        for dialect in [Some("card-issuing"), None] {
            let v = check(dialect, 200, &[], body.as_bytes(), Lang::En);
            assert_eq!(&*v.dialect, "card-issuing");
            assert_eq!(v.matched_by, MatchedBy::Code, "{}", &body[..40]);
            assert_eq!(v.outcome, Outcome::Failed);
        }
    }
    // Deeply nested bodies without a code are decided like any other codeless body.
    let deep = format!("{}{}", "[".repeat(n), "]".repeat(n));
    for dialect in DIALECTS {
        for status in [200, 400, 502, 503] {
            check(*dialect, status, &[], deep.as_bytes(), Lang::En);
        }
    }
}

#[test]
fn moderate_nesting_next_to_the_code_is_read() {
    let body = format!(
        "{{\"x\":{}{},\"code\":3002}}",
        "[".repeat(100),
        "]".repeat(100)
    );
    let v = check(Some("card-issuing"), 200, &[], body.as_bytes(), Lang::En);
    assert_eq!(v.matched_by, MatchedBy::Code);
    assert_eq!(v.outcome, Outcome::Failed);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_nesting_depth_of_any_opener_never_panics(
        depth in 0usize..5_000,
        opener in proptest::sample::select(&["[", "{\"a\":", "{\"error\":", "{\"result\":", "{\"data\":{\"result\":"][..]),
        closed in any::<bool>(),
        dialect in dialect(),
        status in status(),
    ) {
        let mut body = opener.repeat(depth);
        body.push_str(r#"{"code":3002,"status_code":4081,"resultCode":"ORDER_NOT_EXIST","resultStatus":"F"}"#);
        if closed {
            for _ in 0..depth {
                body.push(if opener == "[" { ']' } else { '}' });
                if opener.matches('{').count() == 2 {
                    body.push('}');
                }
            }
        }
        check(dialect, status, &[], body.as_bytes(), Lang::En);
    }
}

// ---- huge and odd numbers as codes ----------------------------------------------------------------

fn number_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1e999".to_owned()),
        Just("-1e999".to_owned()),
        Just("99999999999999999999999999".to_owned()),
        Just("-99999999999999999999999999".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("-9223372036854775809".to_owned()),
        Just("1e308".to_owned()),
        Just("4.9e-324".to_owned()),
        "[1-9][0-9]{0,400}",
        "-?[0-9]{1,30}(\\.[0-9]{1,30})?([eE][+-]?[0-9]{1,4})?",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn huge_numbers_as_codes_never_panic(
        number in number_literal(),
        field in proptest::sample::select(&["code", "status_code", "resultCode", "errCode"][..]),
        container in proptest::sample::select(&["", "error", "data", "result"][..]),
        dialect in dialect(),
        status in status(),
    ) {
        let inner = format!(r#"{{"{field}":{number},"message":"m","resultStatus":"F","type":"payment_error"}}"#);
        let body = if container.is_empty() { inner } else { format!(r#"{{"{container}":{inner}}}"#) };
        let v = check(dialect, status, &[], body.as_bytes(), Lang::En);
        // An integer with more than 20 digits is no documented code of any dialect. (Fractions and
        // exponents are left out: f64 rounding can turn them into a code, see
        // a_tiny_non_zero_number_is_not_the_success_code.)
        let integer = number.trim_start_matches('-');
        if integer.len() > 20 && integer.bytes().all(|b| b.is_ascii_digit()) {
            prop_assert!(!matches!(v.matched_by, MatchedBy::Code | MatchedBy::CodeAndScope | MatchedBy::CodeAndReason));
        }
    }
}

#[test]
fn the_documented_huge_number_cases_are_decided_safely() {
    for number in ["1e999", "-1e999", "99999999999999999999999999"] {
        for (dialect, field) in [
            ("card-issuing", "code"),
            ("pts", "code"),
            ("portone", "status_code"),
        ] {
            let body = format!(r#"{{"{field}":{number}}}"#);
            for status in [200, 400, 500] {
                let v = check(Some(dialect), status, &[], body.as_bytes(), Lang::En);
                assert_ne!(v.outcome, Outcome::Succeeded, "{dialect} {status} {body}");
                assert!(
                    matches!(v.matched_by, MatchedBy::HttpStatus | MatchedBy::Fallback),
                    "{dialect} {status} {body}: {:?}",
                    v.matched_by
                );
            }
        }
    }
}

#[test]
fn a_huge_integer_code_is_never_reported_as_an_exact_integer() {
    // Beyond u64 a JSON number is only known approximately; it is shown in exponent form so it can
    // never pass for a documented code (exact text would need arbitrary precision on every parse).
    let v = check(
        Some("pts"),
        200,
        &[],
        br#"{"code":99999999999999999999999999}"#,
        Lang::En,
    );
    assert_eq!(v.source.code.as_deref(), Some("1e26"));
    assert_ne!(v.matched_by, payerr::MatchedBy::Code);
}

#[test]
fn a_tiny_non_zero_number_is_not_the_success_code() {
    for number in ["1e-400", "-1e-400", "100000000000000000000E-350"] {
        let body = format!(r#"{{"code":{number}}}"#);
        let v = check(Some("card-issuing"), 200, &[], body.as_bytes(), Lang::En);
        assert_ne!(v.outcome, Outcome::Succeeded, "{body}: {v:#?}");
    }
}

// ---- a 10 MB body -----------------------------------------------------------------------------------

#[test]
fn ten_megabyte_bodies_are_normalized() {
    const MB: usize = 1 << 20;
    // A documented code after a 10 MB field, with a 1 MB message full of card numbers.
    let filler = "0123456789abcdef".repeat(10 * MB / 16);
    let message = "card 4111111111111111 declined; ".repeat(MB / 32);
    let body = format!(r#"{{"data":{{"blob":"{filler}"}},"code":3002,"msg":"{message}"}}"#);
    assert!(body.len() > 10 * MB);
    for dialect in [Some("card-issuing"), None] {
        let v = check(dialect, 200, &[], body.as_bytes(), Lang::En);
        assert_eq!(&*v.dialect, "card-issuing");
        assert_eq!(v.matched_by, MatchedBy::Code);
        assert_eq!(v.outcome, Outcome::Failed);
        let msg = v.source.message.as_deref().unwrap();
        assert!(!msg.contains("4111111111111111"));
        assert!(msg.starts_with("card 411111******1111 declined"));
    }
    // 10 MB that is almost JSON: one byte short of closing.
    let truncated = &body.as_bytes()[..body.len() - 1];
    let v = check(None, 502, &[], truncated, Lang::En);
    assert_eq!(v.matched_by, MatchedBy::HttpStatus);
    // 10 MB of binary noise.
    let noise: Vec<u8> = (0..10 * MB as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let v = check(None, 200, &[], &noise, Lang::En);
    assert!(matches!(v.matched_by, MatchedBy::HttpStatus));
    assert_eq!(v.outcome, Outcome::Unknown);
}

/// Texts where card numbers are likely: runs of digits (some Luhn-valid card numbers), joiners and
/// other characters, in any order.
fn card_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        proptest::sample::select(&["4111111111111111", "5500005555555559", "378282246310005"][..])
            .prop_map(str::to_owned),
        "[0-9]{1,20}",
        proptest::sample::select(
            &[" ", "-", "+", "%20", "%2D", "%2b", "%40", "%A9", "%", "x", "卡", "_", "="][..]
        )
        .prop_map(str::to_owned),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

/// `text` with every percent-escape (`%` and two hex digits) replaced by three spaces.
fn escapes_as_spaces(text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let mut i = 0;
    while i + 2 < bytes.len() {
        if bytes[i] == b'%' && bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit()
        {
            bytes[i..i + 3].fill(b' ');
            i += 3;
        } else {
            i += 1;
        }
    }
    String::from_utf8(bytes).unwrap_or_default()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn masking_leaves_no_bare_card_number_and_changes_only_digits(text in card_text()) {
        let masked = payerr::pan::mask_pans(&text);
        // Only digits become '*': the text keeps its length and every other character.
        prop_assert_eq!(masked.len(), text.len());
        for (m, t) in masked.bytes().zip(text.bytes()) {
            prop_assert!(m == t || (m == b'*' && t.is_ascii_digit()), "{text:?} -> {masked:?}");
        }
        // No unmasked run of 13–19 digits, alone between non-digits, passes Luhn; a percent-escape
        // (`%20`, `%A9`) separates runs as the character it stands for would.
        for run in escapes_as_spaces(&masked).split(|c: char| !c.is_ascii_digit()) {
            prop_assert!(
                !((13..=19).contains(&run.len()) && payerr::pan::luhn_valid(run.as_bytes())),
                "{text:?} -> {masked:?} keeps {run}"
            );
        }
        // Masking again never unmasks. (It may mask more: a masked card's last four digits can
        // join the digits after them into a new Luhn-valid run.)
        let again = payerr::pan::mask_pans(&masked);
        for (a, m) in again.bytes().zip(masked.bytes()) {
            prop_assert!(m != b'*' || a == b'*', "{masked:?} -> {again:?}");
        }
    }
}
