//! payerr's gateway (`payerr gateway`): a reverse proxy in front of payment providers. It forwards
//! each request to its provider, reads the answer as a verdict, and decides what the SPEC allows:
//! retry when the provider certainly did not process the request, fail over on the same condition,
//! poll (never re-send) when the outcome is unknown. Every attempt is recorded in the event log.
//!
//! docs/gateway.md describes the configuration, the headers and the rules; [`policy`] holds the
//! rules themselves, [`proxy`] one request's journey, [`upstream`] the provider connections
//! (`wire` their HTTP/1.1), `server` the listener and `alarm` the log lines when events are lost.

#![deny(missing_docs)]

mod alarm;
pub mod config;
mod detach;
mod metrics;
pub mod policy;
pub mod proxy;
mod server;
pub mod upstream;
mod wire;

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use payerr::Engine;
use payerr_events::{EventLog, EventLogOptions};
use payerr_frontdoor::client::Clients;
use payerr_frontdoor::{FrontDoor, Store};
use payerr_server::log::{Field, Logger};
use payerr_server::request_id::RequestIds;
use payerr_server::LogLevel;

pub use config::GatewayConfig;

/// Runs the gateway until SIGTERM or SIGINT; returns once in-flight requests are answered (or the
/// grace period is over) and every recorded event is in the database.
pub fn run(config: GatewayConfig, engine: Engine) -> Result<(), String> {
    let addr = config.validate(|id| engine.dialect(id).is_some())?;
    let mut providers = BTreeMap::new();
    for p in &config.providers {
        providers.insert(p.id.clone(), Arc::new(proxy::Provider::new(p.clone())?));
    }
    let events = EventLog::open(
        &config.data_dir,
        EventLogOptions {
            capacity: config.event_queue,
            flush_interval: Duration::from_millis(config.event_flush_ms),
            retention: config.event_retention(),
            ..EventLogOptions::default()
        },
    )?;
    let clients = Clients::load(&config.clients, |name| std::env::var(name).ok())?;
    let (logger, writer) =
        Logger::start(config.log_format, config.log_level, Box::new(io::stderr()));
    let logger = Arc::new(logger);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let store = runtime.block_on(Store::open(
        config.store.as_deref(),
        &config.data_dir,
        &config.store_prefix,
    ))?;
    if clients.is_empty() {
        logger.log(
            LogLevel::Warn,
            "no [[clients]] configured: the gateway is open to anyone who reaches its address (docs/client-guide.md)",
            &[("listen", Field::Str(&config.listen))],
        );
    }
    let door = FrontDoor::new(clients, store, config.front_door());
    let state = Arc::new(server::State {
        gateway: proxy::Gateway {
            engine,
            config,
            providers,
            events,
            metrics: metrics::Metrics::default(),
        },
        door,
        logger: logger.clone(),
        ids: RequestIds::new(),
    });
    let (stop_watching, stop) = tokio::sync::oneshot::channel();
    let watching = {
        let state = state.clone();
        runtime.spawn(async move { alarm::watch(&state.gateway.events, &state.logger, stop).await })
    };
    let result = runtime.block_on(server::serve(addr, state.clone()));
    // A last reading, after the last requests; what closing the log loses is told by its own line
    // below.
    let _ = stop_watching.send(());
    let _ = runtime.block_on(watching);
    // Connections still open after the grace period are dropped with the runtime, and with them
    // their share of the state, so that the event log can be closed (flushed) here.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match Arc::try_unwrap(state) {
        Ok(state) => {
            let events = state.gateway.events;
            let (written, dropped) = (events.written(), events.dropped());
            match events.close() {
                Ok(()) => logger.log(
                    LogLevel::Info,
                    "stopped; events flushed",
                    &[
                        ("events_written", Field::U64(written)),
                        ("events_dropped", Field::U64(dropped)),
                    ],
                ),
                Err(e) => logger.log(
                    LogLevel::Error,
                    "the event log could not be flushed",
                    &[("error", Field::Str(&e))],
                ),
            }
        }
        Err(_) => logger.log(
            LogLevel::Warn,
            "the event log is still in use after the shutdown; events still queued may be lost",
            &[],
        ),
    }
    drop(logger);
    let _ = writer.join();
    result
}
