//! The payerr library's integration tests: one binary, one module per concern.

mod catalogs;
mod envelopes;
mod golden;
mod properties;
mod responses;

use payerr::{Engine, Lang, Options, Response, Verdict};

/// Every way to pick a built-in dialect: auto and each id.
pub const DIALECT_CHOICES: &[Option<&str>] = &[
    None,
    Some("typed-error"),
    Some("card-issuing"),
    Some("result-status"),
    Some("pts"),
    Some("portone"),
    Some("http"),
];

/// The built-in engine, shared by the tests.
pub fn engine() -> &'static Engine {
    static ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(|| Engine::builtin().expect("built-in catalogs load"))
}

/// Normalizes `body` with `dialect` (None = auto) in English.
pub fn verdict(dialect: Option<&str>, status: u16, body: &str) -> Verdict {
    engine()
        .normalize(
            &Response::new(status, body.as_bytes()),
            &Options {
                dialect,
                lang: Lang::En,
            },
        )
        .expect("known dialect")
}
