//! Helpers for the crate's unit tests: the records they store, and a fresh place for each test's
//! state (a directory for the embedded store, a key prefix in the test Redis).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::idempotency::{Claim, StoredResponse};
use crate::redis::RedisStore;

/// An idempotency key (UUID v4).
pub const KEY: &str = "5f0c6b1e-8a43-4d2b-9c7e-2f1a3b4c5d6e";

/// A ttl no test outlives, short enough that keys left in a shared Redis soon go.
pub const MINUTE: Duration = Duration::from_secs(60);

/// A ttl that has run out after [`sleep_past_short`].
pub const SHORT: Duration = Duration::from_millis(50);

/// Sleeps until whatever was given the ttl [`SHORT`] has expired, with a margin for a slow machine.
pub async fn sleep_past_short() {
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// What `client` sends: one POST with a fixed body.
pub fn claim(client: &str) -> Claim {
    Claim {
        client: client.to_owned(),
        method: "POST".to_owned(),
        path: "/acme/payments?x=1".to_owned(),
        body_sha256: "ab".repeat(32),
    }
}

/// An answer whose header values and body hold every byte value, NULs, CR LF and invalid UTF-8,
/// so that a replay equal to it is a replay byte for byte.
pub fn response(status: u16) -> StoredResponse {
    StoredResponse {
        status,
        headers: vec![
            ("content-type".to_owned(), b"application/json".to_vec()),
            ("x-empty".to_owned(), Vec::new()),
            ("x-raw".to_owned(), vec![0, 0xff, b'\r', b'\n', 0x80]),
        ],
        body: [
            b"{\"id\":\"pay_1\"}".as_slice(),
            &[0xff, 0xfe, 0, b'\r', b'\n', 0xc3],
            &(0..=255u8).collect::<Vec<_>>(),
            &[0, 0, 0],
        ]
        .concat(),
    }
}

/// A fresh directory under the system's temporary one (not created), removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "payerr-embedded-{name}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The test Redis: `PAYERR_TEST_REDIS`, else the default local one.
pub fn redis_url() -> String {
    std::env::var("PAYERR_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A prefix no other test, run or person uses, so that tests share the Redis without seeing each
/// other's keys and nothing needs flushing.
pub fn prefix(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("payerr-test:{}:{nanos}:{name}:", std::process::id())
}

/// A store on the test Redis with keys under `prefix`; two with one prefix act as two gateways
/// sharing their state.
pub async fn redis_store(prefix: &str) -> RedisStore {
    match RedisStore::connect(&redis_url(), prefix).await {
        Ok(s) => s,
        Err(e) => panic!(
            "these tests need a Redis at {} (PAYERR_TEST_REDIS): {e}",
            redis_url()
        ),
    }
}
