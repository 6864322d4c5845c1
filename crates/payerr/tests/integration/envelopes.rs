//! scratch
use payerr::{Lang, Options, Response};
#[test]
fn dump() {
    let cases: &[(Option<&str>, u16, &str)] = &[
        (Some("typed-error"), 200, r#"{"error":{"message":"Internal failure"}}"#),
        (Some("typed-error"), 200, r#"{"error":{"type":"mystery_error","message":"x"}}"#),
        (Some("typed-error"), 200, r#"{"id":"pay_1","status":"succeeded"}"#),
        (Some("typed-error"), 200, ""),
        (Some("typed-error"), 200, "<html>oops</html>"),
        (Some("portone"), 200, r#"{"status_code":6001,"status_reason":"4111111111111111","status":"4111111111111111"}"#),
        (Some("typed-error"), 400, r#"{"type":"4111111111111111","code":"x","message":"card 4111111111111111"}"#),
        (Some("typed-error"), 400, r#"{"type":"api_error","error":{"type":"payout_error","code":"invalid_parameter","message":"inner"},"message":"outer"}"#),
        (Some("card-issuing"), 200, r#"{"msg":"outer","data":{"code":3002,"message":"inner"}}"#),
        (Some("card-issuing"), 200, r#"{"code":-0}"#),
        (Some("card-issuing"), 200, r#"{"code":0.0}"#),
        (Some("card-issuing"), 200, r#"{"code":1004,"msg":"Invalid request parameter: email"}"#),
        (Some("card-issuing"), 200, r#"{"code":1004,"msg":"card_number Invalid request parameter"}"#),
        (Some("card-issuing"), 200, r#"{"code":"9999"}"#),
        (Some("card-issuing"), 200, r#"{"code":"1999"}"#),
        (Some("result-status"), 200, r#"{"data":{"result":{"resultStatus":"F","resultCode":"ORDER_NOT_EXIST"}}}"#),
        (Some("portone"), 200, r#"{"status":"Success"}"#),
        (Some("portone"), 200, r#"{"status_code":2000,"status":"Failed"}"#),
        (Some("portone"), 200, r#"{"status_code":6001,"status":"Pending"}"#),
    ];
    for (d, s, b) in cases {
        let v = crate::engine().normalize(&Response::new(*s, b.as_bytes()), &Options { dialect: *d, lang: Lang::En }).unwrap();
        println!("{d:?} {s} {b}\n  {}", serde_json::to_string(&v).unwrap());
    }
}
