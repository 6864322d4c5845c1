//! payerr's event log: gateway attempts in SQLite (batched, off the request path) and the report read
//! from it.
//!
//! The gateway opens one [`EventLog`] per data directory and calls [`EventLog::record`] for every
//! attempt (send, retry, failover, poll). `record` only pushes onto a bounded queue; one writer thread
//! sanitizes the events ([`sanitize`]) and commits them in batches to `DATA_DIR/events.sqlite3`
//! (WAL, `synchronous=NORMAL`; the schema is in docs/gateway-events.md). `payerr report`
//! reads the same file read-only with [`read_report`].
//!
//! ```no_run
//! use payerr_events::{AttemptKind, Event, EventLog, EventLogOptions};
//!
//! let log = EventLog::open("payerr-data".as_ref(), EventLogOptions::default())?;
//! log.record(Event {
//!     at_ms: payerr_events::now_ms(),
//!     request_id: "req-1".into(),
//!     provider: "acme".into(),
//!     dialect: "portone".into(),
//!     method: "POST".into(),
//!     path: "/payments?cvv=123".into(), // stored as "/payments"
//!     attempt: 1,
//!     kind: AttemptKind::Send,
//!     http_status: Some(200),
//!     outcome: payerr::Outcome::Succeeded,
//!     category: payerr::Category::Approved,
//!     code: "approved".into(),
//!     provider_code: Some("2000".into()),
//!     latency_us: 1_250,
//!     error: None,
//!     operation_id: Some("op-1".into()),
//! });
//! log.close()?; // at graceful shutdown: writes everything still queued
//! # Ok::<(), String>(())
//! ```
//!
//! # Durability
//!
//! An event accepted by [`EventLog::record`] (not counted in [`EventLog::dropped`]) is committed at
//! most `flush_interval` (default 100 ms) after it was recorded, plus the time of one commit, as long
//! as the writer keeps up (each commit takes less than `flush_interval`; a backlog of more than
//! `max_batch` events waits for the commits ahead of it). A commit is a write to the WAL file, which
//! the operating system keeps when the process dies. Hence:
//!
//! - an event recorded more than `flush_interval` + the time of one commit before the process is
//!   killed (even with SIGKILL) is in the database;
//! - events still queued at that moment are lost;
//! - on SIGTERM (graceful shutdown, the gateway calls [`EventLog::close`]) nothing queued is lost.
//!
//! `synchronous=NORMAL` does not fsync each commit: a power cut or kernel crash may lose the last
//! commits (never corrupt the file). An event refused because the queue was full is counted in
//! [`EventLog::dropped`]; a batch that fails to commit twice is counted in [`EventLog::lost`].
//!
//! # Retention
//!
//! Events are kept for ever unless [`EventLogOptions::retention`] is set: then the writer thread
//! deletes older events when the log opens and every minute, 1,000 per transaction
//! ([`EventLog::pruned`] counts them).
//!
//! # Sanitizing
//!
//! Nothing is stored unsanitized: every text field has card numbers masked to first 6 + last 4 and
//! CVV-like `name=value` pairs removed ([`sanitize_text`]). [`find_card_numbers`] scans any bytes (the
//! database file) for what the sanitizer would have masked.

#![deny(missing_docs)]

mod event;
mod log;
mod read;
mod report;
mod sanitize;
mod schema;

pub use event::{now_ms, AttemptKind, Event};
pub use log::{EventLog, EventLogOptions};
pub use read::{read_events, request_ids};
pub use report::{
    parse_since, read_report, CategoryCount, CodeCount, Counts, FailoverCount, Outcomes,
    ProviderReport, Report, Window,
};
pub use sanitize::{find_card_numbers, is_security_code_name, sanitize, sanitize_text};
pub use schema::{db_path, APPLICATION_ID, DB_FILE, SCHEMA_VERSION};

#[cfg(test)]
mod testutil;
