//! The embedded store: the front door's state for a gateway that shares it with no other process.
//!
//! What lives where:
//!
//! - Nonces and idempotency records are in SQLite, in `frontdoor.sqlite` under the data directory.
//!   They outlive a restart, `kill -9` included: a nonce used before it cannot be replayed after
//!   it, and a key begun before it is still known after it, so the one upstream call per key holds
//!   across restarts (a key whose first request was cut short by the crash stays in flight until it
//!   expires, rather than being sent upstream a second time).
//! - Rate buckets are in memory. They refill within seconds, so losing them at a restart gives a
//!   client at most one more burst, which is not worth a disk write per request.
//!
//! Durability: the database runs in WAL mode with `synchronous=NORMAL`. A commit has reached the WAL
//! file (in the operating system's cache) before the call returns, so it survives the gateway
//! crashing or being killed, which is what the front door promises. It is not fsynced on each
//! commit, so a power cut or a crash of the operating system may lose the last commits (without
//! corrupting the file); paying an fsync per request to cover that is not part of the promise.
//!
//! Atomicity: one connection behind one mutex, so this process's operations run one at a time
//! however many requests race; each write is an `IMMEDIATE` transaction, so the check and the write
//! of a nonce or key happen under SQLite's write lock too.
//!
//! Expiry: times are unix milliseconds of the wall clock, since only those mean the same after a
//! restart. An expired nonce or record counts as absent everywhere; expired rows are pruned at most
//! once a minute by an operation that already holds the connection, so the file does not grow
//! without bound.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use payerr_sqlite::Schema;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::idempotency::{Claim, StoredResponse};
use crate::store::{Begun, Bucket, Rate, Record, StoreError};

/// Name of the database file inside the data directory.
const DB_FILE: &str = "frontdoor.sqlite";

/// `PRAGMA application_id` of the front door's database ("PYFD"), so that another SQLite file in
/// its place (the event log's, another program's) is refused instead of written into.
const APPLICATION_ID: i32 = 0x5059_4644;

/// Schema migrations: `MIGRATIONS[n]` takes a database from version `n` to `n + 1`. Append only.
const MIGRATIONS: [&str; 1] = [
    // Version 1. Nonces are per client, so the pair is the key. An idempotency key is one row
    // whoever sent it, because a later request from another client must be told the key is not
    // its own. `response` stays NULL while the first request is in flight; `owner` names the
    // request that began it, so that only that request can release it unanswered. The expiry indexes
    // serve the prune.
    "CREATE TABLE IF NOT EXISTS nonces (
        client     TEXT    NOT NULL,
        nonce      TEXT    NOT NULL,
        expires_ms INTEGER NOT NULL,
        PRIMARY KEY (client, nonce)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS nonces_expires_ms ON nonces (expires_ms);
    CREATE TABLE IF NOT EXISTS idempotency (
        key         TEXT    PRIMARY KEY,
        client      TEXT    NOT NULL,
        method      TEXT    NOT NULL,
        path        TEXT    NOT NULL,
        body_sha256 TEXT    NOT NULL,
        owner       TEXT    NOT NULL,
        expires_ms  INTEGER NOT NULL,
        response    BLOB
    );
    CREATE INDEX IF NOT EXISTS idempotency_expires_ms ON idempotency (expires_ms);",
];

/// The front door's database for [`payerr_sqlite`]: it opens the file (WAL, `synchronous=NORMAL`:
/// durable against a crash of the process, see the module documentation, not a power cut), refuses
/// a foreign or newer file, and migrates the schema to the version this build writes and reads.
const SCHEMA: Schema = Schema {
    name: "front door database",
    application_id: APPLICATION_ID,
    migrations: &MIGRATIONS,
};

/// Time between two prunes of expired rows.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// `Retry-After` of a bucket that never refills (a rate of zero or less, or a burst of zero): there
/// is no true answer, and a second keeps a client from hammering.
const NO_REFILL_RETRY: Duration = Duration::from_secs(1);

/// Shortest computed `Retry-After`: never zero, which would tell a client to spin.
const MIN_RETRY_AFTER: Duration = Duration::from_millis(1);
/// Longest computed `Retry-After` (a rate near zero): a day says "not soon" without overflowing a
/// caller's arithmetic as `Duration::MAX` would.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// The front door's state for one gateway process: nonces and idempotency records in SQLite under
/// the data directory, rate buckets in memory.
pub struct EmbeddedStore {
    /// Shared with the blocking tasks that do the SQLite work.
    db: Arc<Mutex<Db>>,
    /// Per client: tokens left and when they were counted. Its size is bounded by the configured
    /// clients, the only ids that reach a bucket.
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

/// The connection and what the operations holding it need besides.
struct Db {
    conn: Connection,
    /// The database file, for error messages.
    path: PathBuf,
    /// When expired rows are next pruned.
    next_prune: Instant,
}

impl EmbeddedStore {
    /// Opens (creating the directory and the file if needed) `data_dir/frontdoor.sqlite`. A file
    /// that is not the front door's database, or is a newer build's, is refused with an error that
    /// names it.
    pub fn open(data_dir: &Path) -> Result<EmbeddedStore, String> {
        if data_dir.exists() && !data_dir.is_dir() {
            return Err(format!(
                "data directory {}: exists and is not a directory",
                data_dir.display()
            ));
        }
        std::fs::create_dir_all(data_dir).map_err(|e| {
            format!(
                "data directory {}: cannot create it: {e}",
                data_dir.display()
            )
        })?;
        let path = data_dir.join(DB_FILE);
        let conn = SCHEMA.open_for_writing(&path)?;
        Ok(EmbeddedStore {
            db: Arc::new(Mutex::new(Db {
                conn,
                path,
                // Due at once: whatever expired while the gateway was down goes at the first write.
                next_prune: Instant::now(),
            })),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Whether `nonce` was already claimed by `client` and has not expired.
    pub async fn nonce_seen(&self, client: &str, nonce: &str) -> Result<bool, StoreError> {
        let (client, nonce) = (client.to_owned(), nonce.to_owned());
        self.with_db(move |db, now| {
            db.conn
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM nonces
                        WHERE client = ?1 AND nonce = ?2 AND expires_ms > ?3)",
                    params![client, nonce, now],
                    |r| r.get(0),
                )
                .map_err(|e| fail(&db.path, e))
        })
        .await
    }

    /// Claims `nonce` for `client` for `ttl`: `true` when it is newly claimed, `false` when it was
    /// already claimed and has not expired.
    pub async fn claim_nonce(
        &self,
        client: &str,
        nonce: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let (client, nonce) = (client.to_owned(), nonce.to_owned());
        self.with_db(move |db, now| {
            let claimed = claim_nonce(&mut db.conn, &client, &nonce, now, expiry(now, ttl))
                .map_err(|e| fail(&db.path, e))?;
            db.prune_if_due(now);
            Ok(claimed)
        })
        .await
    }

    /// Takes one token from `client`'s bucket, which starts full with `bucket.burst` tokens and
    /// refills at `bucket.per_second` up to `bucket.burst`.
    pub async fn take_token(&self, client: &str, bucket: Bucket) -> Result<Rate, StoreError> {
        let mut buckets = self.buckets.lock().map_err(|_| {
            StoreError(
                "embedded store: the rate buckets' lock is poisoned (an earlier operation panicked)"
                    .to_owned(),
            )
        })?;
        let now = Instant::now();
        let burst = f64::from(bucket.burst);
        // A client's first take finds its bucket full.
        let (tokens, last) = buckets.entry(client.to_owned()).or_insert((burst, now));
        // NaN, zero and negative rates all mean "no refill"; only a rate that can bring a token
        // back is used in arithmetic, so nothing below divides by zero.
        let refill = (bucket.per_second > 0.0 && burst >= 1.0).then_some(bucket.per_second);
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *last = now;
        // `min` also brings a bucket down to a burst lowered since, and maps the NaN of an
        // infinite rate times zero elapsed to a full bucket.
        *tokens = match refill {
            Some(rate) => (*tokens + elapsed * rate).min(burst),
            None => tokens.min(burst),
        };
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return Ok(Rate::Allowed);
        }
        let retry_after = match refill {
            Some(rate) => Duration::try_from_secs_f64((1.0 - *tokens) / rate)
                .unwrap_or(MAX_RETRY_AFTER)
                .clamp(MIN_RETRY_AFTER, MAX_RETRY_AFTER),
            None => NO_REFILL_RETRY,
        };
        Ok(Rate::Limited { retry_after })
    }

    /// Records `key` as in flight for `claim` for `ttl` and answers [`Begun::Started`], unless it
    /// is already recorded and unexpired: then the record is answered as it is.
    pub async fn begin(
        &self,
        key: &str,
        claim: &Claim,
        owner: &str,
        ttl: Duration,
    ) -> Result<Begun, StoreError> {
        let (key, claim, owner) = (key.to_owned(), claim.clone(), owner.to_owned());
        self.with_db(move |db, now| {
            let found = begin(&mut db.conn, &key, &claim, &owner, now, expiry(now, ttl))
                .map_err(|e| fail(&db.path, e))?;
            db.prune_if_due(now);
            match found {
                None => Ok(Begun::Started),
                Some((claim, None)) => Ok(Begun::Existing(Record {
                    claim,
                    response: None,
                })),
                Some((claim, Some(blob))) => match StoredResponse::decode(&blob) {
                    Ok(response) => Ok(Begun::Existing(Record {
                        claim,
                        response: Some(response),
                    })),
                    Err(e) => Err(StoreError(format!(
                        "embedded store {}: the stored response of idempotency key {key} is \
                         unreadable: {e}",
                        db.path.display()
                    ))),
                },
            }
        })
        .await
    }

    /// Deletes `key`'s record if `owner` began it and it has no answer: a request that began a key
    /// and then forwarded nothing gives it back.
    pub async fn release(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        let (key, owner) = (key.to_owned(), owner.to_owned());
        self.with_db(move |db, _| {
            db.conn
                .execute(
                    "DELETE FROM idempotency WHERE key = ?1 AND owner = ?2 AND response IS NULL",
                    params![key, owner],
                )
                .map_err(|e| fail(&db.path, e))?;
            Ok(())
        })
        .await
    }

    /// Stores `response` as the answer to `key`, if the key is recorded, unexpired, was begun by
    /// `client` and has no answer yet; its expiry stays as [`begin`](Self::begin) set it. Anything
    /// else leaves the store as it is and is not an error: an expired key has nothing to complete,
    /// and the first answer stored is the one replayed.
    pub async fn complete(
        &self,
        key: &str,
        client: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        let (key, client, blob) = (key.to_owned(), client.to_owned(), response.encode());
        self.with_db(move |db, now| {
            db.conn
                .execute(
                    "UPDATE idempotency SET response = ?1
                     WHERE key = ?2 AND client = ?3 AND response IS NULL AND expires_ms > ?4",
                    params![blob, key, client, now],
                )
                .map_err(|e| fail(&db.path, e))?;
            db.prune_if_due(now);
            Ok(())
        })
        .await
    }

    /// Runs `f` with the connection on Tokio's blocking threads, so SQLite's I/O never stalls the
    /// async ones. `f` gets the time read under the lock, so operations see time in the order they
    /// run.
    async fn with_db<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db, i64) -> Result<T, StoreError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        // `spawn_blocking` panics outside a runtime; asking for the handle first makes that an
        // error instead.
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            StoreError(format!(
                "embedded store: no Tokio runtime to run SQLite on: {e}"
            ))
        })?;
        runtime
            .spawn_blocking(move || {
                let mut db = db.lock().map_err(|_| {
                    StoreError(
                        "embedded store: the database lock is poisoned (an earlier operation \
                         panicked)"
                            .to_owned(),
                    )
                })?;
                f(&mut db, now_ms())
            })
            .await
            .map_err(|e| StoreError(format!("embedded store: the SQLite task failed: {e}")))?
    }
}

impl Db {
    /// Deletes expired rows if the last prune is a minute old.
    fn prune_if_due(&mut self, now: i64) {
        let instant = Instant::now();
        if instant < self.next_prune {
            return;
        }
        // Rescheduled before trying, so a prune that fails is not retried on every request.
        self.next_prune = instant + PRUNE_EVERY;
        // The caller's own work is already committed, and a prune is housekeeping: failing the
        // request for it would refuse a request that was served. A database that really is failing
        // shows in the next operation's own error.
        let _ = prune(&mut self.conn, now);
    }
}

/// A SQLite error during an operation as a [`StoreError`].
fn fail(path: &Path, e: rusqlite::Error) -> StoreError {
    StoreError(format!("embedded store {}: {e}", path.display()))
}

/// The nonce part of [`EmbeddedStore::claim_nonce`], in one transaction.
fn claim_nonce(
    conn: &mut Connection,
    client: &str,
    nonce: &str,
    now: i64,
    expires_ms: i64,
) -> rusqlite::Result<bool> {
    // IMMEDIATE takes the write lock at BEGIN, where the busy timeout applies, and holds it from
    // the check to the write.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "DELETE FROM nonces WHERE client = ?1 AND nonce = ?2 AND expires_ms <= ?3",
        params![client, nonce, now],
    )?;
    let inserted = tx.execute(
        "INSERT OR IGNORE INTO nonces (client, nonce, expires_ms) VALUES (?1, ?2, ?3)",
        params![client, nonce, expires_ms],
    )?;
    tx.commit()?;
    Ok(inserted == 1)
}

/// The SQLite part of [`EmbeddedStore::begin`], in one transaction: `None` when the key was
/// recorded now, else the claim and the raw response of the record found.
fn begin(
    conn: &mut Connection,
    key: &str,
    claim: &Claim,
    owner: &str,
    now: i64,
    expires_ms: i64,
) -> rusqlite::Result<Option<(Claim, Option<Vec<u8>>)>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // An expired record is no record: the key starts afresh, for whichever client.
    tx.execute(
        "DELETE FROM idempotency WHERE key = ?1 AND expires_ms <= ?2",
        params![key, now],
    )?;
    let inserted = tx.execute(
        "INSERT OR IGNORE INTO idempotency
            (key, client, method, path, body_sha256, owner, expires_ms, response)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)",
        params![
            key,
            claim.client,
            claim.method,
            claim.path,
            claim.body_sha256,
            owner,
            expires_ms
        ],
    )?;
    let found = if inserted == 1 {
        None
    } else {
        tx.query_row(
            "SELECT client, method, path, body_sha256, response FROM idempotency WHERE key = ?1",
            params![key],
            |r| {
                Ok((
                    Claim {
                        client: r.get(0)?,
                        method: r.get(1)?,
                        path: r.get(2)?,
                        body_sha256: r.get(3)?,
                    },
                    r.get(4)?,
                ))
            },
        )
        .optional()?
    };
    tx.commit()?;
    // The row was there when the insert was ignored, and the transaction kept it there; a missing
    // one would mean the database is not doing what it says.
    match (inserted, found) {
        (1, _) => Ok(None),
        (_, Some(found)) => Ok(Some(found)),
        (_, None) => Err(rusqlite::Error::QueryReturnedNoRows),
    }
}

/// Deletes every expired nonce and record, in one transaction.
fn prune(conn: &mut Connection, now: i64) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute("DELETE FROM nonces WHERE expires_ms <= ?1", params![now])?;
    tx.execute(
        "DELETE FROM idempotency WHERE expires_ms <= ?1",
        params![now],
    )?;
    tx.commit()
}

/// Now in unix milliseconds; a clock before 1970 reads as 1970, which only makes rows live longer.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `now + ttl` in unix milliseconds, saturating rather than wrapping for an absurd `ttl`.
fn expiry(now: i64, ttl: Duration) -> i64 {
    now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    //! What only the embedded store does: SQLite under the data directory (a reopen, a `kill -9`,
    //! pruning, the file's identity), rate buckets in memory, SQLite work off the async threads.
    //! The contract it shares with the Redis store is tested once for both, in `store`.

    use super::*;
    use crate::testutil::{claim, response, TempDir, KEY, MINUTE};

    /// A second key, completed by [`write_state`].
    const DONE_KEY: &str = "0a0c6b1e-8a43-4d2b-9c7e-2f1a3b4c5d6e";

    fn open(dir: &TempDir) -> EmbeddedStore {
        EmbeddedStore::open(&dir.0).expect("store opens")
    }

    /// A second connection to the store's file, as a `sqlite3` shell would have.
    fn side_connection(dir: &TempDir) -> Connection {
        let conn = Connection::open(dir.0.join(DB_FILE)).expect("file opens");
        conn.busy_timeout(payerr_sqlite::BUSY_TIMEOUT)
            .expect("busy timeout");
        conn
    }

    fn count(conn: &Connection, table: &str) -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .expect("count")
    }

    /// Leaves [`KEY`] in flight, [`DONE_KEY`] completed and nonce `n-1` claimed, all for
    /// `shop-1`.
    async fn write_state(store: &EmbeddedStore) {
        for key in [KEY, DONE_KEY] {
            assert_eq!(
                store.begin(key, &claim("shop-1"), "owner-1", MINUTE).await,
                Ok(Begun::Started)
            );
        }
        store
            .complete(DONE_KEY, "shop-1", &response(201))
            .await
            .expect("complete");
        assert_eq!(store.claim_nonce("shop-1", "n-1", MINUTE).await, Ok(true));
    }

    /// What [`write_state`] left is all there.
    async fn assert_state_kept(store: &EmbeddedStore) {
        assert_eq!(
            store.begin(KEY, &claim("shop-1"), "owner-1", MINUTE).await,
            Ok(Begun::Existing(Record {
                claim: claim("shop-1"),
                response: None
            }))
        );
        assert_eq!(
            store
                .begin(DONE_KEY, &claim("shop-1"), "owner-1", MINUTE)
                .await,
            Ok(Begun::Existing(Record {
                claim: claim("shop-1"),
                response: Some(response(201))
            }))
        );
        assert_eq!(store.nonce_seen("shop-1", "n-1").await, Ok(true));
        assert_eq!(store.claim_nonce("shop-1", "n-1", MINUTE).await, Ok(false));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_token_takes_succeed_as_often_as_allowed() {
        let dir = TempDir::new("race-rate");
        let store = Arc::new(open(&dir));
        // A rate slow enough that no token comes back during the test.
        let bucket = Bucket {
            per_second: 0.001,
            burst: 10,
        };
        let takes: Vec<_> = (0..100)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.take_token("shop-1", bucket).await })
            })
            .collect();
        let mut allowed = 0;
        for task in takes {
            allowed += usize::from(task.await.expect("task runs").expect("take") == Rate::Allowed);
        }
        assert_eq!(allowed, 10);
    }

    #[tokio::test]
    async fn records_and_nonces_outlive_a_reopen() {
        let dir = TempDir::new("reopen");
        // A directory that does not exist yet, two levels down.
        let nested = TempDir(dir.0.join("a").join("b"));
        write_state(&open(&nested)).await;
        assert_state_kept(&open(&nested)).await;
    }

    #[tokio::test]
    async fn a_bucket_allows_its_burst_then_refills() {
        let dir = TempDir::new("rate");
        let store = open(&dir);
        let bucket = Bucket {
            per_second: 10.0,
            burst: 5,
        };
        for _ in 0..5 {
            assert_eq!(store.take_token("shop-1", bucket).await, Ok(Rate::Allowed));
        }
        match store.take_token("shop-1", bucket).await {
            Ok(Rate::Limited { retry_after }) => {
                assert!(retry_after > Duration::ZERO, "{retry_after:?}");
                assert!(retry_after <= Duration::from_millis(100), "{retry_after:?}");
            }
            other => panic!("the sixth take should be limited: {other:?}"),
        }
        // Another client has its own bucket.
        assert_eq!(store.take_token("shop-2", bucket).await, Ok(Rate::Allowed));

        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(store.take_token("shop-1", bucket).await, Ok(Rate::Allowed));
    }

    #[tokio::test]
    async fn odd_buckets_never_panic() {
        let dir = TempDir::new("odd-rate");
        let store = open(&dir);
        for (i, per_second) in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e-300, 1e300]
            .into_iter()
            .enumerate()
        {
            for burst in [0, 1, u32::MAX] {
                let client = format!("c-{i}-{burst}");
                let bucket = Bucket { per_second, burst };
                for _ in 0..3 {
                    match store.take_token(&client, bucket).await {
                        Ok(Rate::Allowed) => {}
                        Ok(Rate::Limited { retry_after }) => {
                            assert!(retry_after > Duration::ZERO);
                            assert!(retry_after <= MAX_RETRY_AFTER);
                        }
                        Err(e) => panic!("{per_second} {burst}: {e}"),
                    }
                }
            }
        }
        let none = Bucket {
            per_second: 0.0,
            burst: 1,
        };
        assert_eq!(store.take_token("no-refill", none).await, Ok(Rate::Allowed));
        assert_eq!(
            store.take_token("no-refill", none).await,
            Ok(Rate::Limited {
                retry_after: NO_REFILL_RETRY
            })
        );
    }

    #[tokio::test]
    async fn open_names_a_path_that_cannot_be_the_directory() {
        let dir = TempDir::new("not-a-dir");
        std::fs::create_dir_all(&dir.0).expect("dir");
        let file = dir.0.join("file");
        std::fs::write(&file, b"x").expect("file");
        for bad in [file.clone(), file.join("sub")] {
            let e = EmbeddedStore::open(&bad)
                .err()
                .expect("a file is not a data directory");
            assert!(e.contains(&bad.display().to_string()), "{e}");
        }
    }

    #[tokio::test]
    async fn the_file_is_the_front_doors_and_foreign_files_are_refused_in_its_words() {
        // Opening, marking, WAL, migrating and refusing are `payerr_sqlite`'s (tested there); this
        // is the front door database's own mark, version and words.
        let dir = TempDir::new("identity");
        drop(open(&dir));
        let conn = side_connection(&dir);
        let pragma = |name: &str| -> i64 {
            conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
                .expect("pragma")
        };
        assert_eq!(
            (pragma("application_id"), pragma("user_version")),
            (i64::from(APPLICATION_ID), SCHEMA.version())
        );
        assert_eq!(
            (count(&conn, "nonces"), count(&conn, "idempotency")),
            (0, 0)
        );

        conn.pragma_update(None, "user_version", SCHEMA.version() + 1)
            .expect("bump");
        let e = EmbeddedStore::open(&dir.0).err().expect("newer is refused");
        assert!(e.contains("newer") && e.contains(DB_FILE), "{e}");

        let other = TempDir::new("foreign");
        std::fs::create_dir_all(&other.0).expect("dir");
        let foreign = Connection::open(other.0.join(DB_FILE)).expect("foreign");
        foreign
            .execute_batch("CREATE TABLE t (x)")
            .expect("foreign table");
        drop(foreign);
        let e = EmbeddedStore::open(&other.0)
            .err()
            .expect("foreign is refused");
        assert!(e.contains("not a payerr front door database"), "{e}");

        let garbage = TempDir::new("garbage");
        std::fs::create_dir_all(&garbage.0).expect("dir");
        std::fs::write(garbage.0.join(DB_FILE), vec![7u8; 4096]).expect("garbage");
        let e = EmbeddedStore::open(&garbage.0)
            .err()
            .expect("garbage is refused");
        assert!(
            e.contains(DB_FILE) && e.contains("not a payerr front door database"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn an_unreadable_stored_response_is_an_error() {
        let dir = TempDir::new("corrupt");
        let store = open(&dir);
        assert_eq!(
            store.begin(KEY, &claim("shop-1"), "owner-1", MINUTE).await,
            Ok(Begun::Started)
        );
        side_connection(&dir)
            .execute(
                "UPDATE idempotency SET response = x'ff00' WHERE key = ?1",
                params![KEY],
            )
            .expect("corrupt");
        let e = store
            .begin(KEY, &claim("shop-1"), "owner-1", MINUTE)
            .await
            .expect_err("corrupt record");
        assert!(e.0.contains(KEY) && e.0.contains("unreadable"), "{e}");
    }

    #[tokio::test]
    async fn expired_rows_are_pruned_and_live_ones_kept() {
        let dir = TempDir::new("prune");
        let store = open(&dir);
        let short = Duration::from_millis(20);
        for i in 0..10 {
            let key = format!("short-{i}");
            assert_eq!(
                store.begin(&key, &claim("shop-1"), "owner-1", short).await,
                Ok(Begun::Started)
            );
            let nonce = format!("short-{i}");
            assert_eq!(store.claim_nonce("shop-1", &nonce, short).await, Ok(true));
        }
        assert_eq!(
            store.begin(KEY, &claim("shop-1"), "owner-1", MINUTE).await,
            Ok(Begun::Started)
        );
        assert_eq!(store.claim_nonce("shop-1", "long", MINUTE).await, Ok(true));
        let side = side_connection(&dir);
        // The first write pruned (nothing had expired yet); the next prune waits a minute.
        assert_eq!(
            (count(&side, "idempotency"), count(&side, "nonces")),
            (11, 11)
        );

        tokio::time::sleep(Duration::from_millis(100)).await;
        store.db.lock().expect("lock").next_prune = Instant::now();
        store
            .complete("unknown", "shop-1", &response(200))
            .await
            .expect("complete");
        assert_eq!(
            (count(&side, "idempotency"), count(&side, "nonces")),
            (1, 1)
        );
        assert_eq!(store.nonce_seen("shop-1", "long").await, Ok(true));
    }

    /// Set in the child process of the crash test: the directory it writes to before it is killed.
    const CRASH_DIR: &str = "PAYERR_EMBEDDED_CRASH_DIR";

    /// The promise itself: what a gateway wrote before a `kill -9` is there after it. The test runs
    /// itself again as a child process that writes and then has itself killed with SIGKILL (no
    /// destructor runs, the connection is never closed, the WAL never checkpointed).
    #[cfg(unix)]
    #[tokio::test]
    async fn what_was_written_before_a_kill_9_is_there_after_it() {
        if let Some(dir) = std::env::var_os(CRASH_DIR) {
            let store = EmbeddedStore::open(Path::new(&dir)).expect("child opens");
            write_state(&store).await;
            let _ = std::process::Command::new("sh")
                .args(["-c", &format!("kill -9 {}", std::process::id())])
                .status();
            // Only reached if the kill failed; the parent then sees a normal exit and fails.
            std::thread::sleep(Duration::from_secs(10));
            return;
        }

        let dir = TempDir::new("kill-9");
        let module = module_path!();
        let test = format!(
            "{}::what_was_written_before_a_kill_9_is_there_after_it",
            module.split_once("::").map_or(module, |(_, rest)| rest)
        );
        let child = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([test.as_str(), "--exact", "--test-threads=1", "--nocapture"])
            .env(CRASH_DIR, &dir.0)
            .output()
            .expect("child runs");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            child.status.signal(),
            Some(9),
            "the child should die by SIGKILL after writing: {:?}\n{}\n{}",
            child.status,
            String::from_utf8_lossy(&child.stdout),
            String::from_utf8_lossy(&child.stderr)
        );

        assert_state_kept(&open(&dir)).await;
    }

    #[test]
    fn operations_can_run_on_any_task() {
        fn send<T: Send>(_: &T) {}
        let dir = TempDir::new("send");
        let store = open(&dir);
        let bucket = Bucket {
            per_second: 1.0,
            burst: 1,
        };
        send(&store.nonce_seen("c", "n"));
        send(&store.claim_nonce("c", "n", MINUTE));
        send(&store.take_token("c", bucket));
        send(&store.begin(KEY, &claim("c"), "owner-1", MINUTE));
        send(&store.complete(KEY, "c", &response(200)));
    }

    #[test]
    fn outside_a_runtime_an_operation_is_an_error() {
        let dir = TempDir::new("no-runtime");
        let store = open(&dir);
        // Polled by a runtime without Tokio's context: a minimal one suffices here.
        let e = block_on_outside_tokio(store.nonce_seen("shop-1", "n-1")).expect_err("no runtime");
        assert!(e.0.contains("runtime"), "{e}");
    }

    /// Polls a future to completion on this thread, outside any Tokio runtime.
    fn block_on_outside_tokio<F: std::future::Future>(f: F) -> F::Output {
        use std::task::{Context, Poll, Wake, Waker};
        struct Noop;
        impl Wake for Noop {
            fn wake(self: Arc<Self>) {}
        }
        let waker = Waker::from(Arc::new(Noop));
        let mut cx = Context::from_waker(&waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
                return out;
            }
            std::thread::yield_now();
        }
    }
}
