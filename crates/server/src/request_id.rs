//! Request ids, echoed in `X-Request-Id` and written in every log line of a request: the service and
//! the gateway use the same rules.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};

use hyper::header::{HeaderName, HeaderValue};

/// Header carrying the request id, taken from the client when it sends a sane one. A name rather
/// than a `&str`: a map looks a name up as it is, a `&str` only after parsing it.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Request ids: the client's `X-Request-Id` when it is 1–128 characters of `[A-Za-z0-9._:-]`, else
/// a fresh one, unique in the process and unlikely to repeat across processes.
pub struct RequestIds {
    /// `req_{8 hex digits}_{8 hex digits}_`, random per generator.
    prefix: String,
    next: AtomicU64,
}

impl RequestIds {
    /// A generator with its own random prefix.
    pub fn new() -> RequestIds {
        let random = RandomState::new().hash_one(std::process::id());
        let mut prefix = String::with_capacity(ID_LEN);
        prefix.push_str("req_");
        push_hex(&mut prefix, random >> 32);
        prefix.push('_');
        push_hex(&mut prefix, random & 0xffff_ffff);
        prefix.push('_');
        RequestIds {
            prefix,
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
            // Written by hand: `format!` costs several times more, on every request.
            None => {
                let mut id = String::with_capacity(ID_LEN);
                id.push_str(&self.prefix);
                push_hex(&mut id, self.next.fetch_add(1, Ordering::Relaxed));
                id
            }
        }
    }
}

/// Length of a fresh id while its counter fits in eight hex digits.
const ID_LEN: usize = 30;

/// `n` in lowercase hex, at least eight digits (as `{:08x}`).
fn push_hex(out: &mut String, n: u64) {
    let digits = (16 - n.leading_zeros() as usize / 4).max(8);
    for shift in (0..digits).rev() {
        let nibble = (n >> (shift * 4)) & 0xf;
        out.push(char::from_digit(nibble as u32, 16).unwrap_or('0'));
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

    #[test]
    fn hex_groups_are_written_as_format_writes_them() {
        for n in [
            0,
            1,
            0xabc,
            0xffff_ffff,
            0x1_0000_0000,
            u64::MAX >> 3,
            u64::MAX,
        ] {
            let mut out = String::new();
            push_hex(&mut out, n);
            assert_eq!(out, format!("{n:08x}"));
        }
        let ids = RequestIds::new();
        let first = ids.for_request(None);
        let second = ids.for_request(None);
        assert_eq!(first[..22], second[..22], "one prefix per generator");
        assert_eq!((&first[22..], &second[22..]), ("00000001", "00000002"));
    }
}
