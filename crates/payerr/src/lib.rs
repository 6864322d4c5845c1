//! payerr: one verdict for every payment provider's error dialect.
//!
//! A provider response (HTTP status, headers, body) goes in; a [`Verdict`] comes out: what happened to
//! the operation, why, what to do next, who must act, and what to tell the customer in their language.
//! The library does no I/O: catalogs are data compiled in or handed over as text.
//!
//! ```
//! use payerr::{Engine, Lang, Options, Outcome, Response};
//!
//! let engine = Engine::builtin().unwrap();
//! let body = br#"{"type":"payment_error","code":"expired_card","message":"Expired card"}"#;
//! let verdict = engine
//!     .normalize(&Response::new(400, body), &Options { dialect: Some("typed-error"), lang: Lang::En })
//!     .unwrap();
//! assert_eq!(verdict.outcome, Outcome::Failed);
//! assert_eq!(&*verdict.code, "expired_card");
//! assert!(!verdict.retryable);
//! ```
//!
//! Where things live: the verdict contract in [`verdict`], categories and canonical codes in
//! [`taxonomy`], the catalog format in [`catalog`] (docs/catalog-format.md), body decoding in
//! `envelope`, the matching steps in `matcher`, and the engine that ties them together in [`engine`].
//! How a dialect answers (its `[responses]` table, served by `payerr simulate`) is rendered by
//! [`responses`].

#![deny(missing_docs)]

pub mod catalog;
pub mod engine;
mod envelope;
pub mod error;
pub mod export;
pub mod input;
mod json;
pub mod lang;
pub mod lint;
mod matcher;
pub mod pan;
pub mod param;
pub mod responses;
pub mod retry;
pub mod taxonomy;
pub mod verdict;

pub use catalog::Dialect;
pub use engine::{normalize, Engine, NoResponse, Options, Response, Settings};
pub use error::{Error, ErrorKind};
pub use input::{InputError, ResponseInput};
pub use lang::Lang;
pub use lint::{lint, Diagnostic};
pub use retry::{PollPolicy, RetryPolicy};
pub use taxonomy::{Category, Taxonomy};
pub use verdict::{Actor, Candidate, MatchedBy, NextAction, Outcome, Source, Verdict};
