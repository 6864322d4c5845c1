//! The client side of RESP2, Redis's wire protocol, as far as the [Redis store](crate::redis)
//! needs it: commands go out as arrays of bulk strings, and replies are parsed incrementally from
//! whatever bytes have arrived.
//!
//! The parser reads bytes from the network, so it trusts no length it is given: bulk strings,
//! arrays, lines and nesting are capped, nothing is allocated for a length before the bytes behind
//! it are there, and malformed input is an error, never a panic.

/// Largest bulk string accepted. Redis allows 512 MiB; the store's values are responses kept for
/// replay, far smaller, so anything this large is a confused peer rather than data.
pub const MAX_BULK: usize = 64 * 1024 * 1024;
/// Most elements accepted in one array.
pub const MAX_ARRAY: usize = 1024 * 1024;
/// Deepest nesting of arrays accepted: the parser recurses, so the depth bounds the stack.
pub const MAX_DEPTH: usize = 16;
/// Longest simple string or error line accepted.
pub const MAX_LINE: usize = 64 * 1024;
/// Longest length or integer line: an `i64` takes at most 20 characters.
const MAX_NUMBER_LINE: usize = 32;

/// One command, as Redis expects it from a client: an array of bulk strings. Arguments are bytes,
/// so keys and values need no escaping.
pub fn command(args: &[&[u8]]) -> Vec<u8> {
    let size = args.iter().map(|a| a.len() + 16).sum::<usize>() + 16;
    let mut out = Vec::with_capacity(size);
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for arg in args {
        out.push(b'$');
        out.extend_from_slice(arg.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A RESP2 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`: a status line.
    Simple(String),
    /// `-ERR ...`: the command failed; the text is Redis's message.
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$3 abc`, or `None` for the nil bulk string (`$-1`).
    Bulk(Option<Vec<u8>>),
    /// `*2 ...`, or `None` for the nil array (`*-1`).
    Array(Option<Vec<Reply>>),
}

/// Parses one reply from the start of `buf`: `Ok(None)` when `buf` holds only part of one, so the
/// caller reads more and tries again; `Ok(Some((reply, consumed)))` with the number of bytes the
/// reply took; `Err` when the bytes cannot be RESP2.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    parse_at(buf, 0, 0)
}

/// Parses the reply starting at `pos`; answers it and the position just past it.
fn parse_at(buf: &[u8], pos: usize, depth: usize) -> Result<Option<(Reply, usize)>, String> {
    let Some(&kind) = buf.get(pos) else {
        return Ok(None);
    };
    let start = pos + 1;
    match kind {
        b'+' | b'-' => {
            let Some((line, next)) = line(buf, start, MAX_LINE)? else {
                return Ok(None);
            };
            // Status and error lines are ASCII from Redis; a stray byte is not worth refusing the
            // reply over.
            let text = String::from_utf8_lossy(line).into_owned();
            let reply = if kind == b'+' {
                Reply::Simple(text)
            } else {
                Reply::Error(text)
            };
            Ok(Some((reply, next)))
        }
        b':' => {
            let Some((line, next)) = line(buf, start, MAX_NUMBER_LINE)? else {
                return Ok(None);
            };
            Ok(Some((Reply::Integer(integer(line)?), next)))
        }
        b'$' => {
            let Some((line, next)) = line(buf, start, MAX_NUMBER_LINE)? else {
                return Ok(None);
            };
            let Some(len) = length(line, MAX_BULK, "bulk string")? else {
                return Ok(Some((Reply::Bulk(None), next)));
            };
            // The length is checked against the bytes present before anything is copied.
            let end = next.saturating_add(len);
            if buf.len() < end.saturating_add(2) {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err("bulk string is not followed by CRLF".to_owned());
            }
            Ok(Some((Reply::Bulk(Some(buf[next..end].to_vec())), end + 2)))
        }
        b'*' => {
            if depth >= MAX_DEPTH {
                return Err(format!("arrays nested deeper than {MAX_DEPTH}"));
            }
            let Some((line, mut next)) = line(buf, start, MAX_NUMBER_LINE)? else {
                return Ok(None);
            };
            let Some(count) = length(line, MAX_ARRAY, "array")? else {
                return Ok(Some((Reply::Array(None), next)));
            };
            // Every element takes at least three bytes (`+\r\n`), so the bytes present bound what
            // is worth reserving, whatever count the peer claims.
            let mut items = Vec::with_capacity(count.min((buf.len() - next) / 3));
            for _ in 0..count {
                let Some((item, after)) = parse_at(buf, next, depth + 1)? else {
                    return Ok(None);
                };
                items.push(item);
                next = after;
            }
            Ok(Some((Reply::Array(Some(items)), next)))
        }
        other => Err(format!("unexpected reply type byte 0x{other:02x}")),
    }
}

/// The line starting at `start`, without its CRLF, and the position after the CRLF. A line longer
/// than `max` is an error even before its end arrives, so that garbage cannot make the caller
/// buffer forever.
fn line(buf: &[u8], start: usize, max: usize) -> Result<Option<(&[u8], usize)>, String> {
    let rest = buf.get(start..).unwrap_or_default();
    // A CR may end the scanned window with its LF still to come, hence the one extra byte.
    let window = &rest[..rest.len().min(max + 2)];
    match window.windows(2).position(|w| w == b"\r\n") {
        Some(end) => Ok(Some((&rest[..end], start + end + 2))),
        None if window.len() >= max + 2 => Err(format!("reply line longer than {max} bytes")),
        None => Ok(None),
    }
}

/// A signed decimal: `-?[0-9]+`, nothing else, no overflow.
fn integer(line: &[u8]) -> Result<i64, String> {
    let (negative, digits) = match line.split_first() {
        Some((b'-', digits)) => (true, digits),
        _ => (false, line),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(format!(
            "invalid integer {:?}",
            String::from_utf8_lossy(line)
        ));
    }
    // Accumulated negatively so that i64::MIN, whose magnitude has no positive i64, parses too.
    let mut value: i64 = 0;
    for d in digits {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_sub(i64::from(d - b'0')))
            .ok_or_else(|| "integer out of range".to_owned())?;
    }
    if negative {
        Ok(value)
    } else {
        value
            .checked_neg()
            .ok_or_else(|| "integer out of range".to_owned())
    }
}

/// A bulk or array length: `None` for the nil `-1`, an error for other negatives and for anything
/// past `max`.
fn length(line: &[u8], max: usize, what: &str) -> Result<Option<usize>, String> {
    match integer(line)? {
        -1 => Ok(None),
        n if n < 0 => Err(format!("negative {what} length {n}")),
        n => match usize::try_from(n) {
            Ok(n) if n <= max => Ok(Some(n)),
            _ => Err(format!("{what} length {n} is over the limit of {max}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The server side of the protocol, to check the parser against.
    fn encode(reply: &Reply, out: &mut Vec<u8>) {
        match reply {
            Reply::Simple(s) => out.extend_from_slice(format!("+{s}\r\n").as_bytes()),
            Reply::Error(s) => out.extend_from_slice(format!("-{s}\r\n").as_bytes()),
            Reply::Integer(n) => out.extend_from_slice(format!(":{n}\r\n").as_bytes()),
            Reply::Bulk(None) => out.extend_from_slice(b"$-1\r\n"),
            Reply::Bulk(Some(b)) => {
                out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Array(None) => out.extend_from_slice(b"*-1\r\n"),
            Reply::Array(Some(items)) => {
                out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
                for item in items {
                    encode(item, out);
                }
            }
        }
    }

    fn encoded(reply: &Reply) -> Vec<u8> {
        let mut out = Vec::new();
        encode(reply, &mut out);
        out
    }

    fn reply() -> impl Strategy<Value = Reply> {
        let leaf = prop_oneof![
            "[^\r\n]{0,20}".prop_map(Reply::Simple),
            "[^\r\n]{0,20}".prop_map(Reply::Error),
            any::<i64>().prop_map(Reply::Integer),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40))
                .prop_map(Reply::Bulk),
            Just(Reply::Array(None)),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            proptest::collection::vec(inner, 0..6).prop_map(|v| Reply::Array(Some(v)))
        })
    }

    proptest! {
        #[test]
        fn a_reply_parses_back_to_itself(r in reply()) {
            let bytes = encoded(&r);
            prop_assert_eq!(parse(&bytes), Ok(Some((r, bytes.len()))));
        }

        #[test]
        fn every_strict_prefix_asks_for_more(r in reply()) {
            let bytes = encoded(&r);
            for cut in 0..bytes.len() {
                prop_assert_eq!(parse(&bytes[..cut]), Ok(None), "prefix of {} bytes", cut);
            }
        }

        #[test]
        fn any_bytes_parse_or_fail_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(Some((_, consumed))) = parse(&bytes) {
                prop_assert!(consumed <= bytes.len());
            }
        }

        #[test]
        fn bytes_that_look_like_resp_never_panic(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just(b"*".to_vec()), Just(b"$".to_vec()), Just(b":".to_vec()),
                    Just(b"+".to_vec()), Just(b"-".to_vec()), Just(b"\r\n".to_vec()),
                    "-?[0-9]{1,20}".prop_map(String::into_bytes),
                    proptest::collection::vec(any::<u8>(), 0..4),
                ],
                0..40,
            )
        ) {
            let bytes = parts.concat();
            if let Ok(Some((_, consumed))) = parse(&bytes) {
                prop_assert!(consumed <= bytes.len());
            }
        }

        #[test]
        fn replies_back_to_back_parse_one_after_the_other(a in reply(), b in reply()) {
            let (first, second) = (encoded(&a), encoded(&b));
            let both = [first.as_slice(), second.as_slice()].concat();
            prop_assert_eq!(parse(&both), Ok(Some((a, first.len()))));
            prop_assert_eq!(parse(&both[first.len()..]), Ok(Some((b, second.len()))));
        }
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(
            command(&[b"SET", b"k\r\n", b""]),
            b"*3\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$0\r\n\r\n".to_vec()
        );
        let bytes = command(&[b"GET", &[0, 255, 13]]);
        let expected = Reply::Array(Some(vec![
            Reply::Bulk(Some(b"GET".to_vec())),
            Reply::Bulk(Some(vec![0, 255, 13])),
        ]));
        assert_eq!(parse(&bytes), Ok(Some((expected, bytes.len()))));
    }

    #[test]
    fn untrusted_lengths_are_bounded() {
        let too_long = format!("${}\r\n", MAX_BULK + 1);
        assert!(parse(too_long.as_bytes()).is_err());
        // At the limit the length is fine and the parser waits for the bytes, having allocated
        // nothing for them.
        assert_eq!(parse(format!("${MAX_BULK}\r\nabc").as_bytes()), Ok(None));
        assert!(parse(format!("*{}\r\n", MAX_ARRAY + 1).as_bytes()).is_err());
        assert_eq!(parse(format!("*{MAX_ARRAY}\r\n").as_bytes()), Ok(None));
        assert!(parse(b"$99999999999999999999999\r\n").is_err());
        assert!(parse(b"$-2\r\n").is_err());
        assert!(parse(b"*-5\r\n").is_err());
        let deep = "*1\r\n".repeat(MAX_DEPTH + 1);
        assert!(parse(deep.as_bytes()).is_err());
        let ok_depth = format!("{}:1\r\n", "*1\r\n".repeat(MAX_DEPTH));
        assert!(matches!(parse(ok_depth.as_bytes()), Ok(Some(_))));
        let endless = [b"+".as_slice(), &vec![b'a'; MAX_LINE + 2]].concat();
        assert!(parse(&endless).is_err());
        assert_eq!(parse(&endless[..MAX_LINE + 1]), Ok(None));
        assert!(parse(b":12345678901234567890123456789012345").is_err());
    }

    #[test]
    fn malformed_replies_are_errors() {
        for bad in [
            b"?\r\n".as_slice(),
            b":\r\n",
            b":+1\r\n",
            b":1a\r\n",
            b":9223372036854775808\r\n",
            b"$3\r\nabcd\r\n",
            b"$x\r\n",
            b"_\r\n",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(
            parse(b":-9223372036854775808\r\n"),
            Ok(Some((Reply::Integer(i64::MIN), 23)))
        );
        assert_eq!(parse(b"$-1\r\n"), Ok(Some((Reply::Bulk(None), 5))));
        assert_eq!(parse(b"*-1\r\n"), Ok(Some((Reply::Array(None), 5))));
    }
}
