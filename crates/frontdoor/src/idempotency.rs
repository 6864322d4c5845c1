//! Idempotency keys as seed 000 describes them: a UUID v4 per POST, scoped to the client, bound to
//! the method, path and body of its first request, answered once upstream and replayed after.

use crate::rejection::Rejection;

/// The request header carrying the key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The response header marking a replayed answer.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// Checks that `key` is a UUID v4 (`xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`, either case) and
/// returns it in lowercase, so that one key written two ways is one key.
pub fn parse_key(key: &[u8]) -> Result<String, Rejection> {
    let shape_ok = key.len() == 36
        && key.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
        && key[14] == b'4'
        && matches!(key[19].to_ascii_lowercase(), b'8' | b'9' | b'a' | b'b');
    if !shape_ok {
        return Err(Rejection::idempotence(
            "invalid_key_format",
            "invalid idempotency key format: Idempotency-Key must be a UUID v4, e.g. 5f0c6b1e-8a43-4d2b-9c7e-2f1a3b4c5d6e",
        ));
    }
    // The shape check above admits ASCII only.
    Ok(String::from_utf8_lossy(key).to_ascii_lowercase())
}

/// Who began a key and with which request: a later request with the same key must match it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The client's id (empty when the gateway has no clients).
    pub client: String,
    /// The request method.
    pub method: String,
    /// The request path and query, as the client sent it.
    pub path: String,
    /// Lowercase hex SHA-256 of the request body.
    pub body_sha256: String,
}

impl Claim {
    /// How a later request with the same key relates to this one: `Ok` when it is the same request,
    /// else the seed 000 error that says what differs.
    pub fn compare(&self, later: &Claim) -> Result<(), Rejection> {
        if self.client != later.client {
            Err(Rejection::idempotence(
                "key_mismatch_account",
                "key does not belong to account: this Idempotency-Key was used by another client",
            ))
        } else if self.method != later.method || self.path != later.path {
            Err(Rejection::idempotence(
                "key_mismatch_api",
                "api associated with key is not the original: this Idempotency-Key was first used with another method or path",
            ))
        } else if self.body_sha256 != later.body_sha256 {
            Err(Rejection::idempotence(
                "key_mismatch_params",
                "the request body differs from the first request with this Idempotency-Key: use a new key for a new request",
            ))
        } else {
            Ok(())
        }
    }
}

/// A completed answer kept for replay: status, headers and body, byte for byte.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers in order, names lowercase.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Body.
    pub body: Vec<u8>,
}

/// First byte of the encoding, so that a later layout can be told apart.
const ENCODING_VERSION: u8 = 1;

impl StoredResponse {
    /// The stored form: a version byte, the status, then length-prefixed header names, values and
    /// the body (lengths as u32 big-endian).
    pub fn encode(&self) -> Vec<u8> {
        let size = self
            .headers
            .iter()
            .map(|(n, v)| 8 + n.len() + v.len())
            .sum::<usize>()
            + self.body.len()
            + 11;
        let mut out = Vec::with_capacity(size);
        out.push(ENCODING_VERSION);
        out.extend_from_slice(&self.status.to_be_bytes());
        out.extend_from_slice(&(self.headers.len() as u32).to_be_bytes());
        for (name, value) in &self.headers {
            put(&mut out, name.as_bytes());
            put(&mut out, value);
        }
        put(&mut out, &self.body);
        out
    }

    /// Reads [`encode`](Self::encode)'s form; anything else is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<StoredResponse, String> {
        let mut r = Reader(bytes);
        if r.take(1)? != [ENCODING_VERSION] {
            return Err("unknown stored response version".to_owned());
        }
        let status = u16::from_be_bytes([r.take(1)?[0], r.take(1)?[0]]);
        let count = r.u32()?;
        // Each header takes at least 8 bytes, so a count past that is a corrupt record, not an
        // allocation to attempt.
        if count as usize > r.0.len() / 8 {
            return Err("stored response header count is larger than the record".to_owned());
        }
        let mut headers = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let name = String::from_utf8(r.field()?.to_vec())
                .map_err(|_| "stored header name is not UTF-8".to_owned())?;
            headers.push((name, r.field()?.to_vec()));
        }
        let body = r.field()?.to_vec();
        if !r.0.is_empty() {
            return Err("stored response has trailing bytes".to_owned());
        }
        Ok(StoredResponse {
            status,
            headers,
            body,
        })
    }
}

fn put(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u32).to_be_bytes());
    out.extend_from_slice(field);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("stored response is truncated".to_owned());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn field(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn only_uuid_v4_keys_are_accepted() {
        let good = "5F0C6B1E-8A43-4D2B-9C7E-2F1A3B4C5D6E";
        assert_eq!(
            parse_key(good.as_bytes()).unwrap(),
            good.to_ascii_lowercase()
        );
        for bad in [
            "",
            "order-42",
            "5f0c6b1e-8a43-1d2b-9c7e-2f1a3b4c5d6e", // version 1
            "5f0c6b1e-8a43-4d2b-7c7e-2f1a3b4c5d6e", // wrong variant
            "5f0c6b1e8a434d2b9c7e2f1a3b4c5d6e",     // no hyphens
            "5f0c6b1e-8a43-4d2b-9c7e-2f1a3b4c5d6g",
            "{5f0c6b1e-8a43-4d2b-9c7e-2f1a3b4c5d6}",
        ] {
            let e = parse_key(bad.as_bytes()).unwrap_err();
            assert_eq!(
                (e.kind, e.code),
                ("idempotence_error", "invalid_key_format")
            );
        }
    }

    #[test]
    fn a_later_request_is_compared_account_then_api_then_params() {
        let first = Claim {
            client: "shop-1".into(),
            method: "POST".into(),
            path: "/acme/payments".into(),
            body_sha256: "aa".into(),
        };
        let with = |f: &dyn Fn(&mut Claim)| {
            let mut c = first.clone();
            f(&mut c);
            first.compare(&c).map_err(|e| e.code)
        };
        assert_eq!(with(&|_| {}), Ok(()));
        assert_eq!(
            with(&|c| c.client = "shop-2".into()),
            Err("key_mismatch_account")
        );
        assert_eq!(
            with(&|c| c.path = "/acme/refunds".into()),
            Err("key_mismatch_api")
        );
        assert_eq!(with(&|c| c.method = "PUT".into()), Err("key_mismatch_api"));
        assert_eq!(
            with(&|c| c.body_sha256 = "bb".into()),
            Err("key_mismatch_params")
        );
        // Another client is named first, whatever else differs: a key says nothing of other
        // clients' requests.
        assert_eq!(
            with(&|c| {
                c.client = "shop-2".into();
                c.path = "/x".into();
            }),
            Err("key_mismatch_account")
        );
    }

    fn response() -> impl Strategy<Value = StoredResponse> {
        (
            any::<u16>(),
            proptest::collection::vec(
                (
                    "[a-z-]{0,12}",
                    proptest::collection::vec(any::<u8>(), 0..20),
                ),
                0..6,
            ),
            proptest::collection::vec(any::<u8>(), 0..200),
        )
            .prop_map(|(status, headers, body)| StoredResponse {
                status,
                headers,
                body,
            })
    }

    proptest! {
        #[test]
        fn stored_responses_round_trip(r in response()) {
            prop_assert_eq!(StoredResponse::decode(&r.encode()), Ok(r));
        }

        #[test]
        fn any_bytes_decode_to_a_value_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = StoredResponse::decode(&bytes);
        }

        #[test]
        fn a_truncated_record_is_an_error(r in response(), cut in 1usize..50) {
            let bytes = r.encode();
            let keep = bytes.len().saturating_sub(cut);
            prop_assert!(StoredResponse::decode(&bytes[..keep]).is_err());
        }
    }
}
