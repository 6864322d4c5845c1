//! Normalizes one provider response with the library: `cargo run -p payerr --example normalize`.

use payerr::{Engine, Lang, Options, Outcome, Response};

fn main() -> Result<(), payerr::Error> {
    let engine = Engine::builtin()?;
    // A card-issuing failure inside an HTTP 200, with the offending field named in the message.
    let body = br#"{"code":1004,"msg":"card_number Invalid request parameter"}"#;
    let response = Response::new(200, body).header("Language", "zh_CN");
    let verdict = engine.normalize(
        &response,
        &Options {
            dialect: None, // auto-detect
            lang: Lang::Zh,
        },
    )?;
    assert_eq!(verdict.outcome, Outcome::Failed);
    println!("dialect:     {}", verdict.dialect);
    println!(
        "outcome:     {:?} / {} / {}",
        verdict.outcome, verdict.category, verdict.code
    );
    println!(
        "next action: {:?} (retryable: {})",
        verdict.next_action, verdict.retryable
    );
    println!("param:       {}", verdict.param.as_deref().unwrap_or("-"));
    println!("customer:    {}", verdict.message);
    Ok(())
}
