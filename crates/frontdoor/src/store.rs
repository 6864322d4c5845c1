//! The state the front door shares between requests and, through Redis, between gateway processes:
//! nonces already used, rate-limit buckets and idempotency records. One interface, two
//! implementations: [`embedded`](crate::embedded) (this process, with SQLite under the data
//! directory so that nonces and idempotency records outlive a restart) and
//! [`redis`](crate::redis) (every gateway on one Redis acts as one).
//!
//! Every operation is atomic in both: a nonce is claimed once, a token taken once, a key begun once,
//! however many requests race for it.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::embedded::EmbeddedStore;
use crate::idempotency::{Claim, StoredResponse};
use crate::redis::RedisStore;

/// Where the state lives.
pub enum Store {
    /// This process, with SQLite under the data directory.
    Embedded(EmbeddedStore),
    /// A Redis server shared by several gateways.
    Redis(RedisStore),
}

/// The store could not answer (Redis unreachable, SQLite error). The front door then forwards
/// nothing: without its state it cannot promise one upstream call per key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

/// What taking a token from a client's bucket gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rate {
    /// The request may go.
    Allowed,
    /// The bucket is empty; the next token is due after this long.
    Limited {
        /// Time until the next token.
        retry_after: Duration,
    },
}

/// A client's rate limit: tokens come back at `per_second`, and the bucket holds at most `burst`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    /// Tokens per second.
    pub per_second: f64,
    /// Largest number of tokens held.
    pub burst: u32,
}

/// What beginning an idempotency key found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Begun {
    /// The key was new: it is now recorded as in flight for this claim, and the caller makes the
    /// one upstream call.
    Started,
    /// The key was already recorded (by this claim or another one).
    Existing(Record),
}

/// An idempotency record as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Who began the key, and with which request.
    pub claim: Claim,
    /// The answer, once the first request completed; `None` while it is in flight.
    pub response: Option<StoredResponse>,
}

impl Store {
    /// Opens the store a configuration names: `None` for the embedded store under `data_dir`,
    /// `redis://[user:password@]host[:port][/db]` for Redis. Keys in Redis start with `prefix`.
    pub async fn open(spec: Option<&str>, data_dir: &Path, prefix: &str) -> Result<Store, String> {
        match spec {
            None | Some("embedded") => EmbeddedStore::open(data_dir).map(Store::Embedded),
            Some(url) if url.starts_with("redis://") => {
                RedisStore::connect(url, prefix).await.map(Store::Redis)
            }
            Some(other) => Err(format!(
                "store {other:?}: expected \"embedded\" or a redis:// URL"
            )),
        }
    }

    /// Whether `nonce` was already claimed by `client` (and has not expired).
    pub async fn nonce_seen(&self, client: &str, nonce: &str) -> Result<bool, StoreError> {
        match self {
            Store::Embedded(s) => s.nonce_seen(client, nonce).await,
            Store::Redis(s) => s.nonce_seen(client, nonce).await,
        }
    }

    /// Claims `nonce` for `client` for `ttl`; `false` when it was already claimed.
    pub async fn claim_nonce(
        &self,
        client: &str,
        nonce: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Embedded(s) => s.claim_nonce(client, nonce, ttl).await,
            Store::Redis(s) => s.claim_nonce(client, nonce, ttl).await,
        }
    }

    /// Takes one token from `client`'s bucket.
    pub async fn take_token(&self, client: &str, bucket: Bucket) -> Result<Rate, StoreError> {
        match self {
            Store::Embedded(s) => s.take_token(client, bucket).await,
            Store::Redis(s) => s.take_token(client, bucket).await,
        }
    }

    /// Records `key` as in flight for `claim` for `ttl`, unless it is already recorded: then the
    /// record is returned as it is.
    pub async fn begin(
        &self,
        key: &str,
        claim: &Claim,
        ttl: Duration,
    ) -> Result<Begun, StoreError> {
        match self {
            Store::Embedded(s) => s.begin(key, claim, ttl).await,
            Store::Redis(s) => s.begin(key, claim, ttl).await,
        }
    }

    /// Stores the answer of the request that began `key` (by `client`), keeping the key's expiry.
    pub async fn complete(
        &self,
        key: &str,
        client: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        match self {
            Store::Embedded(s) => s.complete(key, client, response).await,
            Store::Redis(s) => s.complete(key, client, response).await,
        }
    }
}
