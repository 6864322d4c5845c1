//! Helpers for the crate's unit tests.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use payerr::{Category, Outcome};

use crate::event::{AttemptKind, Event};

/// A plain successful first send; tests change the fields they care about.
pub fn event(at_ms: i64, request_id: &str, provider: &str, attempt: u32) -> Event {
    Event {
        at_ms,
        request_id: request_id.to_owned(),
        provider: provider.to_owned(),
        dialect: "portone".to_owned(),
        method: "POST".to_owned(),
        path: "/payments".to_owned(),
        attempt,
        kind: AttemptKind::Send,
        http_status: Some(200),
        outcome: Outcome::Succeeded,
        category: Category::Approved,
        code: "approved".to_owned(),
        provider_code: Some("2000".to_owned()),
        latency_us: 1000,
        error: None,
        operation_id: None,
    }
}

/// A fresh, empty directory for one test, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("payerr-events-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
