//! payerr's HTTP service (`payerr serve`): normalization, catalog look-up and search, the OpenAPI
//! document, health and Prometheus metrics, over HTTP/1.1 with JSON.
//!
//! The endpoints and their errors are described in docs/http.md; `/openapi.json` is generated from
//! `routes::ROUTES` and the schemas in `openapi`, so the document and the router cannot disagree.
//! The binary (`payerr serve`) builds the engine and the settings and calls [`run`].

#![deny(missing_docs)]

mod api;
mod api_error;
mod config;
pub mod connection;
pub mod listener;
pub mod log;
mod metrics;
mod openapi;
pub mod request_id;
mod routes;
mod search;
mod server;

use std::io;
use std::sync::Arc;
use std::time::Duration;

pub use config::{LogFormat, LogLevel, ServeConfig};
pub use request_id::REQUEST_ID;
pub use server::Reload;

/// Runs the service until SIGTERM or SIGINT, on its own runtime; returns when in-flight requests are
/// answered (or the grace period is over) and every log line is written.
pub fn run(config: ServeConfig, engine: payerr::Engine, reload: Reload) -> Result<(), String> {
    let addr = config.validate()?;
    let (logger, writer) =
        log::Logger::start(config.log_format, config.log_level, Box::new(io::stderr()));
    let logger = Arc::new(logger);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let state = Arc::new(server::State::new(config, engine, reload, logger.clone()));
    let result = runtime.block_on(server::serve(addr, state));
    // Stops the connections still open after the grace period, which drops their share of the state
    // and with it the last loggers, so the log thread can finish.
    runtime.shutdown_timeout(Duration::from_secs(1));
    drop(logger);
    let _ = writer.join();
    result
}
