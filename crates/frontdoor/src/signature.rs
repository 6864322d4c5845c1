//! The request signature (docs/client-guide.md): lowercase hex HMAC-SHA256 of the client's secret
//! over `METHOD\nPATH_WITH_QUERY\nTIMESTAMP\nNONCE\nhex(SHA256(body))`.
//!
//! The body enters as its hash so that a client can sign without holding the body twice, and every
//! part is separated by a newline, which none of them may contain, so two different requests never
//! sign the same text.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Lowercase hex SHA-256 of `body`.
pub fn body_sha256_hex(body: &[u8]) -> String {
    hex(&Sha256::digest(body))
}

/// The text a client signs.
pub fn signing_string(
    method: &str,
    path_with_query: &str,
    timestamp: &str,
    nonce: &str,
    body_sha256_hex: &str,
) -> String {
    [method, path_with_query, timestamp, nonce, body_sha256_hex].join("\n")
}

/// The signature of `text` with `secret`, as a client sends it.
pub fn sign(secret: &[u8], text: &str) -> String {
    hex(&mac(secret, text).finalize().into_bytes())
}

/// Whether `signature` (hex, either case) is `secret`'s signature of `text`. The comparison takes
/// the same time wherever the first wrong byte is, so timing tells an attacker nothing.
pub fn verify(secret: &[u8], text: &str, signature: &[u8]) -> bool {
    match unhex(signature) {
        Some(bytes) => mac(secret, text).verify_slice(&bytes).is_ok(),
        None => false,
    }
}

fn mac(secret: &[u8], text: &str) -> HmacSha256 {
    // HMAC takes a key of any length (long keys are hashed), so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(text.as_bytes());
    mac
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// Decodes a 32-byte hex signature; anything else is `None`.
fn unhex(text: &[u8]) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_answer_vectors() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            body_sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    /// The worked example of docs/client-guide.md, text and signature.
    #[test]
    fn the_client_guides_example_signs_as_documented() {
        let text = signing_string(
            "POST",
            "/acme/v1/payments",
            "1795305600",
            "n-1",
            &body_sha256_hex(b"{}"),
        );
        assert_eq!(
            text,
            "POST\n/acme/v1/payments\n1795305600\nn-1\n44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(
            sign(b"s3cret", &text),
            "9e894b113e921bcd9999a52c580a183f85017d45539580a4e171420724f2c3d2"
        );
    }

    #[test]
    fn verification_accepts_the_signature_in_either_case_and_nothing_else() {
        let sig = sign(b"s3cret", "text");
        assert!(verify(b"s3cret", "text", sig.as_bytes()));
        assert!(verify(b"s3cret", "text", sig.to_uppercase().as_bytes()));
        assert!(!verify(b"s3cret", "text2", sig.as_bytes()));
        assert!(!verify(b"other", "text", sig.as_bytes()));
        assert!(!verify(b"s3cret", "text", &sig.as_bytes()[..62]));
        assert!(!verify(b"s3cret", "text", b""));
        let mut flipped = sig.into_bytes();
        flipped[63] = if flipped[63] == b'0' { b'1' } else { b'0' };
        assert!(!verify(b"s3cret", "text", &flipped));
    }

    proptest! {
        #[test]
        fn any_header_value_is_checked_without_panic(sig in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = verify(b"k", "t", &sig);
        }

        #[test]
        fn a_signature_verifies_against_its_own_text(secret in ".{0,80}", text in ".{0,200}") {
            let sig = sign(secret.as_bytes(), &text);
            prop_assert!(verify(secret.as_bytes(), &text, sig.as_bytes()));
        }
    }
}
