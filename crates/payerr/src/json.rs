//! A JSON writer for verdicts: the same bytes as `serde_json::to_writer`, written without serde.
//!
//! Why it exists: a verdict is mostly long catalog texts (message, remedy, detail), and serde_json
//! checks every byte of a string against its escape table one at a time. In the HTTP service that was
//! the largest single cost of `POST /v1/normalize` after the kernel's. Here a string is first checked
//! whole, 32 bytes at a time in a loop the compiler turns into vector instructions, and copied as
//! is when nothing in it needs escaping (nearly always: catalog texts). The few that need escaping
//! are escaped exactly as serde_json does; the integration tests compare both writers on every
//! golden verdict and on arbitrary ones.

/// Writes one JSON object's members. Keys are the contract's field names: plain ASCII, never escaped.
pub(crate) struct JsonWriter<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> JsonWriter<'a> {
    /// Opens an object.
    pub(crate) fn object(out: &'a mut Vec<u8>) -> JsonWriter<'a> {
        out.push(b'{');
        JsonWriter { out, first: true }
    }

    /// Writes `"key":` and returns the buffer for the value.
    pub(crate) fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    pub(crate) fn str(&mut self, key: &str, value: &str) {
        write_str(self.key(key), value);
    }

    /// A string, or `null`.
    pub(crate) fn opt_str(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(value) => self.str(key, value),
            None => self.key(key).extend_from_slice(b"null"),
        }
    }

    /// A string, or nothing at all (serde's `skip_serializing_if = "Option::is_none"`).
    pub(crate) fn some_str(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.str(key, value);
        }
    }

    pub(crate) fn bool(&mut self, key: &str, value: bool) {
        let text: &[u8] = if value { b"true" } else { b"false" };
        self.key(key).extend_from_slice(text);
    }

    pub(crate) fn u64(&mut self, key: &str, value: u64) {
        let mut digits = itoa::Buffer::new();
        let text = digits.format(value);
        self.key(key).extend_from_slice(text.as_bytes());
    }

    /// A number, or `null`.
    pub(crate) fn opt_u64(&mut self, key: &str, value: Option<u64>) {
        match value {
            Some(value) => self.u64(key, value),
            None => self.key(key).extend_from_slice(b"null"),
        }
    }

    /// Closes the object.
    pub(crate) fn end(self) {
        self.out.push(b'}');
    }
}

/// Appends `text` as a JSON string, escaped as serde_json escapes it: `"` and `\`, the short forms
/// `\b \t \n \f \r`, other control characters as `\u00XX`; everything else, non-ASCII included, as is.
pub(crate) fn write_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    if is_plain(bytes) {
        out.extend_from_slice(bytes);
    } else {
        write_escaped(out, bytes);
    }
    out.push(b'"');
}

/// Whether no byte needs escaping. Each 32-byte block is folded without an early exit, which is
/// what lets the compiler check it with a few vector instructions.
fn is_plain(bytes: &[u8]) -> bool {
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        if block.iter().fold(false, |any, &b| any | escaped(b)) {
            return false;
        }
    }
    !blocks.remainder().iter().any(|&b| escaped(b))
}

/// Whether JSON needs `b` escaped: a control character, `"` or `\`.
fn escaped(b: u8) -> bool {
    (b < 0x20) | (b == b'"') | (b == b'\\')
}

/// The body of a string that needs escaping somewhere.
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    let mut at = 0;
    while at < bytes.len() {
        // Skip whole words that need no escaping; a word that might is looked at byte by byte.
        if let Some(word) = bytes.get(at..at + 8) {
            let word = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
            if !needs_escape(word) {
                at += 8;
                continue;
            }
        }
        let byte = bytes[at];
        let escaped: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            0x0c => b"\\f",
            b'\r' => b"\\r",
            0x00..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ],
            _ => {
                at += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..at]);
        out.extend_from_slice(escaped);
        at += 1;
        start = at;
    }
    out.extend_from_slice(&bytes[start..]);
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Whether any of the eight bytes is a control character, `"` or `\` (exact, no false negatives:
/// the classic "has a byte less than n" and "has a zero byte" bit tricks).
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let quote = zero_byte(word ^ (ONES * u64::from(b'"')));
    let backslash = zero_byte(word ^ (ONES * u64::from(b'\\')));
    (below_space | quote | backslash) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(text: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, text);
        String::from_utf8(out).expect("UTF-8 in, UTF-8 out")
    }

    #[test]
    fn every_ascii_character_is_escaped_as_serde_json_escapes_it_anywhere() {
        // At every position of a short text (the byte loop only), of one under a block and of one
        // longer than two 32-byte blocks (the block check, its remainder and the word scan).
        for byte in 0u8..=0x7f {
            let c = char::from(byte);
            for len in [1, 10, 70] {
                for at in 0..len {
                    let text = format!("{}{c}{}", "x".repeat(at), "y".repeat(len - 1 - at));
                    assert_eq!(
                        written(&text),
                        serde_json::to_string(&text).unwrap(),
                        "{byte:#x} at {at} of {len}"
                    );
                }
            }
        }
        let plain = "é".repeat(40) + &"~".repeat(33);
        assert_eq!(written(&plain), serde_json::to_string(&plain).unwrap());
    }

    #[test]
    fn the_plain_test_is_exact_for_every_byte() {
        for byte in 0u8..=0xff {
            let flagged = byte < 0x20 || byte == b'"' || byte == b'\\';
            for at in [0, 13, 31, 32, 63, 64, 70] {
                let mut bytes = vec![b'a'; 71];
                bytes[at] = byte;
                assert_eq!(is_plain(&bytes), !flagged, "{byte:#x} at {at}");
            }
        }
    }

    #[test]
    fn non_ascii_and_mixed_texts_match_serde_json() {
        for text in [
            "",
            "余额不足，请充值后重试",
            "tab\there \"quoted\" back\\slash\u{7f}\u{1}",
            "We're confirming your payment. Please don't pay again; we'll update you shortly.",
            "\u{1b}[31mred\u{1b}[0m 🙂",
        ] {
            assert_eq!(written(text), serde_json::to_string(text).unwrap());
        }
    }

    #[test]
    fn the_word_test_is_exact() {
        // Every byte value in every lane, the rest of the word clean (and the rest dirty, which must
        // still be flagged).
        for byte in 0u8..=0xff {
            let flagged = byte < 0x20 || byte == b'"' || byte == b'\\';
            for lane in 0..8 {
                let mut word = [b'a'; 8];
                word[lane] = byte;
                assert_eq!(
                    needs_escape(u64::from_le_bytes(word)),
                    flagged,
                    "{byte:#x} at {lane}"
                );
                let mut dirty = [0u8; 8];
                dirty[lane] = byte;
                assert!(needs_escape(u64::from_le_bytes(dirty)));
            }
        }
    }
}
