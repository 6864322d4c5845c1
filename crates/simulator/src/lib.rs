//! payerr's mock payment provider (`payerr simulate`): one dialect's envelopes, codes and faults over
//! HTTP, for tests, demos and load tests. docs/simulator.md describes it for its users.
//!
//! How the dialect answers is data: the `[responses]` table of its catalog, rendered by
//! [`payerr::responses`]. Here are the parts that are not: the `X-Simulate-*` headers (`directive`),
//! the operations and request counts it remembers (`ledger`), what each request becomes (`provider`,
//! no I/O), the simulator's own errors (`rejection`), and sockets and signals (`server`).

#![deny(missing_docs)]

mod directive;
mod ledger;
mod provider;
mod rejection;
mod server;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use payerr::Dialect;
use payerr_server::log::Logger;
use payerr_server::{LogFormat, LogLevel};

/// Settings of `payerr simulate`.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Address to listen on, `IP:PORT`; port 0 picks a free port (the `listening` log line tells it).
    pub listen: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Least severe log level written (`info` writes one line per request).
    pub log_level: LogLevel,
}

/// Plays a provider speaking `dialect` until SIGTERM or SIGINT, on its own runtime. Fails at once
/// when the dialect has no `[responses]` table or the address cannot be used.
pub fn run(settings: &Settings, dialect: Dialect) -> Result<(), String> {
    let addr: SocketAddr = settings.listen.parse().map_err(|_| {
        format!(
            "listen address {:?} is not IP:PORT (e.g. 127.0.0.1:9001)",
            settings.listen
        )
    })?;
    let provider = provider::Provider::new(dialect)?;
    let (logger, writer) = Logger::start(
        settings.log_format,
        settings.log_level,
        Box::new(io::stderr()),
    );
    let logger = Arc::new(logger);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let result = runtime.block_on(server::serve(addr, provider, logger.clone()));
    // Ends the connections still open after the grace period, which drops the last loggers they
    // hold, so that the log thread can finish.
    runtime.shutdown_timeout(Duration::from_secs(1));
    drop(logger);
    let _ = writer.join();
    result
}
