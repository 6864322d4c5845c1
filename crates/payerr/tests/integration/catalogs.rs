//! scratch
const BASE: &str = r#"id = "acme"
name = "Acme"
description = "Acme test dialect."

[envelope]
containers = ["", "error"]
code = ["code"]
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
remedy = "Query first."
remedy_zh = "先查询。"
canonical = "timeout"
category = "outcome_unknown"
text = { en = "Timeout.", zh = "超时。" }
"#;
#[test]
fn dump() {
    let tax = payerr::Taxonomy::builtin().unwrap();
    let muts: &[(&str, &str)] = &[
        ("", ""),
        (
            "code_format = \"numeric\"",
            "code_format = \"numeric\"\ncode_fromat = 1",
        ),
        (
            "category = \"card_invalid\"",
            "category = \"card_invalidd\"",
        ),
        (
            "canonical = \"invalid_card_number\"",
            "canonical = \"invalid_card_numbr\"",
        ),
        ("category = \"card_invalid\"", "category = \"declined\""),
        ("code = \"1002\"", "code = \"1001\""),
        ("zh = \"卡号无效。\"", "zh = \"\""),
        ("remedy_zh = \"先查询。\"\n", ""),
        (
            "category = \"outcome_unknown\"",
            "category = \"outcome_unknown\"\nfailover_safe = true",
        ),
        ("from = 1000\nto = 1999", "from = 1999\nto = 1000"),
        (
            "no_error_on_2xx = true",
            "no_error_on_2xx = true\nstatus = \"S\"",
        ),
        ("id = \"acme\"", "id = \"Acme Pay\""),
        ("name = \"Acme\"", "name = \"Acme"),
        (
            "text = { en = \"Timeout.\", zh = \"超时。\" }",
            "text = { en = \"Timeout.\" }",
        ),
    ];
    for (a, b) in muts {
        let t = BASE.replacen(a, b, 1);
        println!("--- {b:?}");
        for d in payerr::lint("acme.toml", &t, &tax) {
            println!("  {d}");
        }
    }
}
