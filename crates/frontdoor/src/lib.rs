//! The gateway's front door (docs/client-guide.md, docs/gateway.md): who may send requests through
//! the gateway, and how often, and that each payment is sent upstream once.
//!
//! - [`client`]: the configured clients, their keys, secrets, addresses, limits and expiry.
//! - [`signature`]: the request signature clients compute and the gateway checks.
//! - [`idempotency`]: `Idempotency-Key` and the records that make one upstream call per key.
//! - [`store`]: the shared state (nonces, rate buckets, idempotency records), embedded or in Redis.
//! - [`door`]: the checks in their documented order.

#![deny(missing_docs)]

pub mod client;
pub mod door;
mod embedded;
pub mod idempotency;
mod redis;
pub mod rejection;
mod resp;
pub mod signature;
pub mod store;

#[cfg(test)]
mod testutil;

pub use door::{Admission, FrontDoor, Presented, Settings, Ticket};
pub use rejection::Rejection;
pub use store::Store;
