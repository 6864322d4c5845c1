//! Request ids, echoed in `X-Request-Id` and written in every log line of a request: the service and
//! the gateway use the same rules.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};

use hyper::header::HeaderValue;

/// Header carrying the request id, taken from the client when it sends a sane one.
pub const REQUEST_ID: &str = "x-request-id";

/// Request ids: the client's `X-Request-Id` when it is 1–128 characters of `[A-Za-z0-9._:-]`, else
/// a fresh one, unique in the process and unlikely to repeat across processes.
pub struct RequestIds {
    prefix: u64,
    next: AtomicU64,
}

impl RequestIds {
    /// A generator with its own random prefix.
    pub fn new() -> RequestIds {
        RequestIds {
            prefix: RandomState::new().hash_one(std::process::id()),
            next: AtomicU64::new(1),
        }
    }

    /// The id of a request that carried `given` as its `X-Request-Id`.
    pub fn for_request(&self, given: Option<&HeaderValue>) -> String {
        let valid = |v: &&HeaderValue| {
            let b = v.as_bytes();
            (1..=128).contains(&b.len())
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || b"._:-".contains(c))
        };
        match given.filter(valid).and_then(|v| v.to_str().ok()) {
            Some(id) => id.to_owned(),
            // Groups of at most eight hex digits between underscores: however the digits fall, no
            // run of 13 or more can look like a card number and be masked in logs and events.
            None => format!(
                "req_{:08x}_{:08x}_{:08x}",
                self.prefix >> 32,
                self.prefix & 0xffff_ffff,
                self.next.fetch_add(1, Ordering::Relaxed)
            ),
        }
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        RequestIds::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_keep_sane_client_ids_and_replace_others() {
        let ids = RequestIds::new();
        let given = HeaderValue::from_static("abc-123.x:y_z");
        assert_eq!(ids.for_request(Some(&given)), "abc-123.x:y_z");
        let spaced = HeaderValue::from_static("has space");
        let fresh = ids.for_request(Some(&spaced));
        assert!(fresh.starts_with("req_") && fresh.len() == 30, "{fresh}");
        assert_eq!(payerr::pan::mask_pans(&fresh), fresh);
        assert_ne!(ids.for_request(None), ids.for_request(None));
        let long = HeaderValue::from_str(&"a".repeat(129)).unwrap();
        assert!(ids.for_request(Some(&long)).starts_with("req_"));
    }
}
