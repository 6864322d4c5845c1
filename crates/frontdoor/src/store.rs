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
            // Not the value itself: a URL may carry a password.
            Some(_) => Err("store: expected \"embedded\" or a redis:// URL".to_owned()),
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

    /// Records `key` as in flight for `claim` for `ttl`, begun by `owner` (a token of the request),
    /// unless it is already recorded: then the record is returned as it is.
    pub async fn begin(
        &self,
        key: &str,
        claim: &Claim,
        owner: &str,
        ttl: Duration,
    ) -> Result<Begun, StoreError> {
        match self {
            Store::Embedded(s) => s.begin(key, claim, owner, ttl).await,
            Store::Redis(s) => s.begin(key, claim, owner, ttl).await,
        }
    }

    /// Deletes `key`'s record if `owner` began it and it has no answer yet: the request that began
    /// it forwarded nothing, so the key may be used again at once.
    pub async fn release(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        match self {
            Store::Embedded(s) => s.release(key, owner).await,
            Store::Redis(s) => s.release(key, owner).await,
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

/// The contract every implementation keeps, written once and run for each (the macro at the end):
/// a key begun once however many requests race, completed only by its owner and only once, then
/// replayed byte for byte; records and nonces absent once expired; a nonce claimed once per client.
/// What only one implementation does (rate buckets, files, connections, URLs) is tested in its own
/// module.
#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::testutil::{
        claim, prefix, redis_store, response, sleep_past_short, TempDir, KEY, MINUTE, SHORT,
    };

    /// A key in flight for `client`, as `begin` answers it to a later request.
    fn in_flight(client: &str) -> Begun {
        Begun::Existing(Record {
            claim: claim(client),
            response: None,
        })
    }

    /// An embedded store in a fresh directory, which lives as long as the returned guard.
    async fn fresh_embedded(name: &str) -> (Store, TempDir) {
        let dir = TempDir::new(name);
        let store = Store::open(None, &dir.0, "").await;
        (store.expect("the embedded store opens"), dir)
    }

    /// A Redis store under a key prefix of its own.
    async fn fresh_redis(name: &str) -> (Store, ()) {
        (Store::Redis(redis_store(&prefix(name)).await), ())
    }

    /// 200 requests race to begin one key, spread over `stores` (gateways sharing their state):
    /// one starts the upstream call, every other one finds it in flight. Once completed, the
    /// answer is replayed byte for byte by every store.
    pub(crate) async fn racing_begins_start_once(stores: &[Arc<Store>]) {
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let store = Arc::clone(&stores[i % stores.len()]);
                tokio::spawn(
                    async move { store.begin(KEY, &claim("shop-1"), "owner-1", MINUTE).await },
                )
            })
            .collect();
        let mut started = 0;
        for task in tasks {
            match task.await.expect("task runs").expect("begin answers") {
                Begun::Started => started += 1,
                existing => assert_eq!(existing, in_flight("shop-1")),
            }
        }
        assert_eq!(started, 1);

        let last = &stores[stores.len() - 1];
        let completed = last.complete(KEY, "shop-1", &response(201)).await;
        assert_eq!(completed, Ok(()));
        for store in stores {
            assert_eq!(
                store.begin(KEY, &claim("shop-1"), "owner-1", MINUTE).await,
                Ok(Begun::Existing(Record {
                    claim: claim("shop-1"),
                    response: Some(response(201))
                }))
            );
        }
    }

    /// 100 requests race to claim one nonce: one wins.
    async fn racing_nonce_claims_win_once(store: Arc<Store>) {
        let claims: Vec<_> = (0..100)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.claim_nonce("shop-1", "n:1", MINUTE).await })
            })
            .collect();
        let mut won = 0;
        for task in claims {
            won += usize::from(task.await.expect("task runs").expect("claim answers"));
        }
        assert_eq!(won, 1);
    }

    async fn nonces_are_claimed_once_per_client(store: &Store) {
        assert_eq!(store.nonce_seen("shop-1", "n:1").await, Ok(false));
        assert_eq!(store.claim_nonce("shop-1", "n:1", MINUTE).await, Ok(true));
        assert_eq!(store.nonce_seen("shop-1", "n:1").await, Ok(true));
        assert_eq!(store.claim_nonce("shop-1", "n:1", MINUTE).await, Ok(false));
        // Nonces are per client.
        assert_eq!(store.nonce_seen("shop-2", "n:1").await, Ok(false));
        assert_eq!(store.claim_nonce("shop-2", "n:1", MINUTE).await, Ok(true));
        assert_eq!(store.nonce_seen("shop-1", "n:2").await, Ok(false));
    }

    async fn only_the_owner_completes_and_only_once(store: &Store) {
        // A key never begun has nothing to complete, and that is no error.
        assert_eq!(
            store.complete("unknown", "shop-1", &response(200)).await,
            Ok(())
        );
        assert_eq!(
            store.begin(KEY, &claim("shop-1"), "owner-1", MINUTE).await,
            Ok(Begun::Started)
        );
        // Another client's complete is ignored, and that client sees the first one's claim, so
        // the door can refuse it.
        assert_eq!(store.complete(KEY, "shop-2", &response(500)).await, Ok(()));
        assert_eq!(
            store.begin(KEY, &claim("shop-2"), "owner-1", MINUTE).await,
            Ok(in_flight("shop-1"))
        );
        assert_eq!(store.complete(KEY, "shop-1", &response(201)).await, Ok(()));
        assert_eq!(store.complete(KEY, "shop-1", &response(502)).await, Ok(()));
        // The first answer is the one kept. A later request with another claim gets the record as
        // it is, for the caller to compare.
        let mut other = claim("shop-2");
        other.path = "/acme/refunds".into();
        for later in [claim("shop-1"), other] {
            assert_eq!(
                store.begin(KEY, &later, "owner-1", MINUTE).await,
                Ok(Begun::Existing(Record {
                    claim: claim("shop-1"),
                    response: Some(response(201))
                }))
            );
        }
    }

    async fn expired_records_and_nonces_count_as_absent(store: &Store) {
        assert_eq!(
            store.begin(KEY, &claim("shop-1"), "owner-1", SHORT).await,
            Ok(Begun::Started)
        );
        assert_eq!(
            store.begin(KEY, &claim("shop-1"), "owner-1", SHORT).await,
            Ok(in_flight("shop-1"))
        );
        assert_eq!(store.claim_nonce("shop-1", "n:1", SHORT).await, Ok(true));
        sleep_past_short().await;

        // Completing an expired key does nothing (it does not bring the record back), and is no
        // error.
        assert_eq!(store.complete(KEY, "shop-1", &response(200)).await, Ok(()));
        assert_eq!(store.nonce_seen("shop-1", "n:1").await, Ok(false));
        assert_eq!(store.claim_nonce("shop-1", "n:1", MINUTE).await, Ok(true));
        // Another client may take an expired key: the old record says nothing any more.
        assert_eq!(
            store.begin(KEY, &claim("shop-2"), "owner-1", MINUTE).await,
            Ok(Begun::Started)
        );
        assert_eq!(
            store.begin(KEY, &claim("shop-1"), "owner-1", MINUTE).await,
            Ok(in_flight("shop-2"))
        );
    }

    async fn complete_keeps_the_expiry_begin_set(store: &Store) {
        assert_eq!(
            store.begin(KEY, &claim("shop-1"), "owner-1", SHORT).await,
            Ok(Begun::Started)
        );
        assert_eq!(store.complete(KEY, "shop-1", &response(200)).await, Ok(()));
        sleep_past_short().await;
        assert_eq!(
            store.begin(KEY, &claim("shop-1"), "owner-1", MINUTE).await,
            Ok(Begun::Started)
        );
    }

    async fn only_the_owner_releases_an_unanswered_key(store: &Store) {
        assert_eq!(
            store.begin(KEY, &claim("shop-1"), "owner-1", MINUTE).await,
            Ok(Begun::Started)
        );
        // Another request's release leaves the key in flight.
        assert_eq!(store.release(KEY, "owner-2").await, Ok(()));
        assert_eq!(
            store.begin(KEY, &claim("shop-1"), "owner-2", MINUTE).await,
            Ok(in_flight("shop-1"))
        );
        // Its own release frees it for the next request.
        assert_eq!(store.release(KEY, "owner-1").await, Ok(()));
        assert_eq!(
            store.begin(KEY, &claim("shop-1"), "owner-3", MINUTE).await,
            Ok(Begun::Started)
        );
        // An answered key is never released: its answer is what later requests get.
        assert_eq!(store.complete(KEY, "shop-1", &response(201)).await, Ok(()));
        assert_eq!(store.release(KEY, "owner-3").await, Ok(()));
        match store.begin(KEY, &claim("shop-1"), "owner-4", MINUTE).await {
            Ok(Begun::Existing(record)) => assert_eq!(record.response, Some(response(201))),
            other => panic!("{other:?}"),
        }
        // Releasing a key nobody holds is no error.
        assert_eq!(store.release("no-such-key", "owner-1").await, Ok(()));
    }

    /// One test per part of the contract, in a module per implementation; `$fresh(name)` makes a
    /// store on fresh state and a guard that keeps that state as long as the test runs.
    macro_rules! conformance {
        ($implementation:ident, $fresh:ident) => {
            mod $implementation {
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn racing_begins_start_one_call_and_replay_it_byte_for_byte() {
                    let (store, _state) = $fresh("begin-race").await;
                    racing_begins_start_once(&[Arc::new(store)]).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn racing_nonce_claims_win_once() {
                    let (store, _state) = $fresh("nonce-race").await;
                    super::racing_nonce_claims_win_once(Arc::new(store)).await;
                }

                #[tokio::test(flavor = "multi_thread")]
                async fn nonces_are_claimed_once_per_client() {
                    let (store, _state) = $fresh("nonce").await;
                    super::nonces_are_claimed_once_per_client(&store).await;
                }

                #[tokio::test(flavor = "multi_thread")]
                async fn only_the_owner_completes_and_only_once() {
                    let (store, _state) = $fresh("complete").await;
                    super::only_the_owner_completes_and_only_once(&store).await;
                }

                #[tokio::test(flavor = "multi_thread")]
                async fn expired_records_and_nonces_count_as_absent() {
                    let (store, _state) = $fresh("expiry").await;
                    super::expired_records_and_nonces_count_as_absent(&store).await;
                }

                #[tokio::test(flavor = "multi_thread")]
                async fn only_the_owner_releases_an_unanswered_key() {
                    let (store, _state) = $fresh("release").await;
                    super::only_the_owner_releases_an_unanswered_key(&store).await;
                }

                #[tokio::test(flavor = "multi_thread")]
                async fn complete_keeps_the_expiry_begin_set() {
                    let (store, _state) = $fresh("keep-expiry").await;
                    super::complete_keeps_the_expiry_begin_set(&store).await;
                }
            }
        };
    }

    conformance!(embedded, fresh_embedded);
    conformance!(redis, fresh_redis);
}
