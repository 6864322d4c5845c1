//! HTTP/1.1 on a provider connection (RFC 9112), the client's half: a request written whole, a
//! response head parsed and its body's framing decided in the order the RFC gives (§6.3), a
//! chunked body decoded as it arrives.
//!
//! The gateway's own code rather than hyper's client: the request's task drives its connection
//! itself, with no connection task and no channel between the two, which cost a fifth of the
//! request path's instructions (bench/README.md). Parsing is httparse's, as in hyper.

use std::mem::MaybeUninit;
use std::time::Duration;

use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::Method;

/// Largest response head (status line, headers and any informational responses before it).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Most headers a response may have.
const MAX_HEADERS: usize = 128;

/// Headers the gateway adds to a provider's answer (`Payerr-*`, `X-Request-Id`): a response's map
/// is made with room for them, so that adding them does not grow it.
const ADDED_HEADERS: usize = 10;

/// Headers that belong to one connection, not to the message (RFC 9110 §7.6.1), plus those the
/// gateway sets itself for the next hop, and `Expect`: the gateway has the whole body before it
/// forwards anything, so a `100-continue` is answered to the client and not asked of the provider
/// (which may not support it). `Connection` comes first ([`keep_end_to_end`] relies on it), and the
/// headers it names are hop-by-hop too.
///
/// [`keep_end_to_end`]: crate::upstream::keep_end_to_end
pub const HOP_BY_HOP: [HeaderName; 12] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::HOST,
    header::CONTENT_LENGTH,
    header::EXPECT,
];

/// `Keep-Alive`, whose `timeout=` says how long the provider keeps an idle connection.
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");

/// The trimmed, non-empty elements of comma-separated header values.
pub fn tokens<'a>(values: impl Iterator<Item = &'a [u8]>) -> impl Iterator<Item = &'a [u8]> {
    values
        .flat_map(|v| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// Longest chunk-size line (extensions included) and longest trailer section of a chunked body.
const MAX_CHUNK_LINE_BYTES: usize = 4096;

/// Why a message could not be written or read; the text is for the log and the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub String);

impl WireError {
    fn new(text: impl Into<String>) -> WireError {
        WireError(text.into())
    }
}

/// Appends the request to `out`: request line, `Host`, `headers` (already end-to-end only),
/// framing, blank line. The body goes after it.
pub fn write_request(
    out: &mut Vec<u8>,
    method: &Method,
    target: &str,
    host: &HeaderValue,
    headers: &HeaderMap,
    body_len: usize,
) -> Result<(), WireError> {
    // The target comes from a request hyper parsed and a prefix the configuration checked, but it
    // is what splits the request line: nothing that could end it or start another goes out.
    if !target.starts_with('/') || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(WireError(format!(
            "cannot build an upstream request for {target:?}"
        )));
    }
    if method == Method::CONNECT {
        return Err(WireError::new("CONNECT is not forwarded"));
    }
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        // The callers pass end-to-end headers only; framing headers slipping through would make
        // the provider read a body other than the one written.
        if HOP_BY_HOP.contains(name) {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    // RFC 9110 §8.6: no Content-Length on a request without content whose method expects none.
    let expects_content = matches!(*method, Method::POST | Method::PUT | Method::PATCH);
    if body_len > 0 || expects_content {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(itoa::Buffer::new().format(body_len).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// How a response's body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: an answer to `HEAD`, a 204 or a 304.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the provider closes the connection.
    UntilClose,
}

/// A response head.
#[derive(Debug)]
pub struct Head {
    /// The status, 200 to 599 (informational responses before it are skipped).
    pub status: u16,
    /// The end-to-end headers: neither [`HOP_BY_HOP`] ones nor those `Connection` names.
    pub headers: HeaderMap,
    /// How the body is delimited.
    pub framing: Framing,
    /// Whether the connection can carry another request once this body is read.
    pub keep_alive: bool,
    /// How long the provider keeps the connection open while idle, when it says so
    /// (`Keep-Alive: timeout=N`).
    pub idle_timeout: Option<Duration>,
}

/// Parses the response at the start of `buf` to a request made with `method`: `None` while its
/// head is incomplete, else the head and the bytes it took (informational responses included).
pub fn parse_head(buf: &[u8], method: &Method) -> Result<Option<(Head, usize)>, WireError> {
    let mut start = 0;
    loop {
        // Left uninitialized, as hyper does: filling 128 slots costs more than parsing a head.
        let mut slots = [const { MaybeUninit::uninit() }; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut response,
            &buf[start..],
            &mut slots,
        );
        let len = match parsed {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(WireError(format!("malformed response head: {e}"))),
        };
        let status = response.code.unwrap_or_default();
        if !(100..=599).contains(&status) {
            return Err(WireError(format!(
                "malformed response head: status {status}"
            )));
        }
        if status == 101 {
            return Err(WireError::new(
                "the provider switched protocols, which the gateway never asks for",
            ));
        }
        if (100..200).contains(&status) {
            // 100 Continue, 103 Early Hints: the final response follows on the same connection.
            start += len;
            continue;
        }
        let version_1_1 = response.version == Some(1);
        let raw = &*response.headers;
        let values = |name: &'static HeaderName| {
            raw.iter()
                .filter(move |h| h.name.eq_ignore_ascii_case(name.as_str()))
                .map(|h| h.value)
        };
        let (framing, reusable) = framing(
            status,
            method,
            values(&header::TRANSFER_ENCODING),
            values(&header::CONTENT_LENGTH),
        )?;
        // What `Connection` lists: `close`, and the names of further hop-by-hop headers.
        let named = || tokens(values(&header::CONNECTION));
        let close = named().any(|t| t.eq_ignore_ascii_case(b"close"));
        let keep_alive = reusable && version_1_1 && !close;
        let idle_timeout = tokens(values(&KEEP_ALIVE))
            .find_map(|t| {
                let (name, value) = t.split_at(t.iter().position(|&b| b == b'=')?);
                name.trim_ascii()
                    .eq_ignore_ascii_case(b"timeout")
                    .then(|| parse_length(value[1..].trim_ascii()))?
            })
            .map(Duration::from_secs);
        // The map holds the end-to-end headers only: what the hop-by-hop ones say is the
        // connection's, read above.
        let mut headers = HeaderMap::with_capacity(raw.len() + ADDED_HEADERS);
        for h in raw {
            let hop = HOP_BY_HOP
                .iter()
                .any(|hop| h.name.eq_ignore_ascii_case(hop.as_str()))
                || named().any(|n| n.eq_ignore_ascii_case(h.name.as_bytes()));
            if hop {
                continue;
            }
            let name = HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| WireError(format!("malformed header name {:?}", h.name)))?;
            let value = HeaderValue::from_bytes(h.value)
                .map_err(|_| WireError(format!("malformed value of header {}", h.name)))?;
            headers.append(name, value);
        }
        let head = Head {
            status,
            headers,
            framing,
            keep_alive,
            idle_timeout,
        };
        return Ok(Some((head, start + len)));
    }
}

/// The body's framing from the `Transfer-Encoding` and `Content-Length` values, and whether it
/// leaves the connection reusable.
fn framing<'a>(
    status: u16,
    method: &Method,
    transfer_encoding: impl Iterator<Item = &'a [u8]>,
    content_length: impl Iterator<Item = &'a [u8]>,
) -> Result<(Framing, bool), WireError> {
    if method == Method::HEAD || status == 204 || status == 304 {
        return Ok((Framing::Empty, true));
    }
    let mut content_length = content_length.peekable();
    let mut transfer_encoding = transfer_encoding.peekable();
    if transfer_encoding.peek().is_some() {
        // With Content-Length as well, Transfer-Encoding wins but the connection is not to be
        // trusted with another message (§6.3, point 3).
        let reusable = content_length.peek().is_none();
        return Ok(match tokens(transfer_encoding).last() {
            Some(coding) if coding.eq_ignore_ascii_case(b"chunked") => (Framing::Chunked, reusable),
            _ => (Framing::UntilClose, false),
        });
    }
    let mut length = None;
    // A list of the same value, repeated or comma-separated, is that value (RFC 9110 §8.6).
    for value in content_length {
        for part in value.split(|&b| b == b',') {
            let n = parse_length(part.trim_ascii())
                .ok_or_else(|| WireError::new("malformed Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(WireError::new("conflicting Content-Length values"));
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(n) => (Framing::Length(n), true),
        None => (Framing::UntilClose, false),
    })
}

/// Digits only, at most 18 of them (no sign, no overflow).
fn parse_length(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

/// Decodes a chunked body as its bytes arrive, whatever the boundaries between reads.
#[derive(Debug, Default)]
pub struct Chunked {
    state: ChunkState,
    /// Bytes of the current size line or of the trailer section, bounded.
    line: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Reading the size's hex digits; the size so far and whether a digit was seen.
    #[default]
    SizeStart,
    Size(u64),
    /// After the size: whitespace or an extension up to CR.
    Extension(u64),
    /// CR seen after the size line: LF next.
    SizeLf(u64),
    /// In a chunk's data, with this many bytes left.
    Data(u64),
    /// After a chunk's data: CR, then LF.
    DataCr,
    DataLf,
    /// After the last chunk: trailer fields, each ending in CRLF, up to an empty line. Whether the
    /// current line is empty so far, and whether its CR was seen.
    Trailer {
        empty: bool,
        cr: bool,
    },
    /// The body is complete.
    Done,
}

impl Chunked {
    /// Decodes what it can of `input`, appending the data to `body`, which may not grow beyond
    /// `limit`; returns the bytes consumed. Bytes after the end of the body are left unconsumed.
    pub fn decode(
        &mut self,
        input: &[u8],
        body: &mut Vec<u8>,
        limit: usize,
    ) -> Result<usize, WireError> {
        let mut at = 0;
        while at < input.len() && self.state != ChunkState::Done {
            let byte = input[at];
            self.state = match self.state {
                ChunkState::Data(left) => {
                    let take = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(input.len() - at);
                    body.extend_from_slice(&input[at..at + take]);
                    at += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        ChunkState::DataCr
                    } else {
                        ChunkState::Data(left)
                    };
                    continue;
                }
                ChunkState::SizeStart | ChunkState::Size(_) => {
                    let size = match self.state {
                        ChunkState::Size(size) => Some(size),
                        _ => None,
                    };
                    match (char::from(byte).to_digit(16), size) {
                        (Some(digit), _) => {
                            let size = size.unwrap_or(0);
                            if size >> 60 != 0 {
                                return Err(WireError::new("chunk size too large"));
                            }
                            ChunkState::Size(size << 4 | u64::from(digit))
                        }
                        (None, None) => return Err(WireError::new("malformed chunk size")),
                        (None, Some(size)) => self.after_size(byte, size, body.len(), limit)?,
                    }
                }
                ChunkState::Extension(size) => match byte {
                    b'\r' => ChunkState::SizeLf(size),
                    b'\n' => return Err(WireError::new("malformed chunk size line")),
                    _ => ChunkState::Extension(size),
                },
                ChunkState::SizeLf(size) => match byte {
                    b'\n' if size == 0 => ChunkState::Trailer {
                        empty: true,
                        cr: false,
                    },
                    b'\n' => {
                        self.line = 0;
                        ChunkState::Data(size)
                    }
                    _ => return Err(WireError::new("malformed chunk size line")),
                },
                ChunkState::DataCr => match byte {
                    b'\r' => ChunkState::DataLf,
                    _ => return Err(WireError::new("chunk data longer than its size")),
                },
                ChunkState::DataLf => match byte {
                    b'\n' => ChunkState::SizeStart,
                    _ => return Err(WireError::new("chunk data longer than its size")),
                },
                ChunkState::Trailer { empty, cr } => match (byte, cr) {
                    (b'\n', true) if empty => ChunkState::Done,
                    (b'\n', true) => ChunkState::Trailer {
                        empty: true,
                        cr: false,
                    },
                    (b'\r', false) => ChunkState::Trailer { empty, cr: true },
                    (b'\r' | b'\n', _) | (_, true) => {
                        return Err(WireError::new("malformed chunked trailer"))
                    }
                    _ => ChunkState::Trailer {
                        empty: false,
                        cr: false,
                    },
                },
                ChunkState::Done => unreachable!("the loop stops at the end of the body"),
            };
            at += 1;
            if !matches!(self.state, ChunkState::Data(_) | ChunkState::SizeStart) {
                self.line += 1;
                if self.line > MAX_CHUNK_LINE_BYTES {
                    return Err(WireError::new("chunk size line or trailer too long"));
                }
            }
        }
        Ok(at)
    }

    /// The state after a chunk size's last digit, once `byte` ends it; the chunk must fit `limit`.
    fn after_size(
        &mut self,
        byte: u8,
        size: u64,
        have: usize,
        limit: usize,
    ) -> Result<ChunkState, WireError> {
        if size > (limit - have.min(limit)) as u64 {
            return Err(WireError(format!("response body over {limit} bytes")));
        }
        match byte {
            b'\r' => Ok(ChunkState::SizeLf(size)),
            b';' | b' ' | b'\t' => Ok(ChunkState::Extension(size)),
            _ => Err(WireError::new("malformed chunk size")),
        }
    }

    /// Whether the whole body, trailers included, has been read.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn head(response: &str, method: &Method) -> Result<Option<(Head, usize)>, WireError> {
        parse_head(response.as_bytes(), method)
    }

    fn complete(response: &str) -> Head {
        let (head, len) = head(response, &Method::POST).unwrap().unwrap();
        assert_eq!(len, response.len(), "the whole head is taken");
        head
    }

    fn failure(response: &str) -> String {
        head(response, &Method::POST).unwrap_err().0
    }

    #[test]
    fn a_request_is_written_with_its_host_headers_and_length() {
        let mut headers = HeaderMap::new();
        // Framing and `Expect` are the gateway's to write, never passed through.
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        headers.insert("expect", HeaderValue::from_static("100-continue"));
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.append("x-trace", HeaderValue::from_static("a"));
        headers.append("x-trace", HeaderValue::from_static("b"));
        let host = HeaderValue::from_static("psp.example:8443");
        let mut out = Vec::new();
        write_request(
            &mut out,
            &Method::POST,
            "/v1/pay?x=1",
            &host,
            &headers,
            1234,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /v1/pay?x=1 HTTP/1.1\r\nhost: psp.example:8443\r\n\
             content-type: application/json\r\nx-trace: a\r\nx-trace: b\r\n\
             content-length: 1234\r\n\r\n"
        );

        // Without content: a length only where the method expects content.
        for (method, length) in [
            (Method::GET, ""),
            (Method::DELETE, ""),
            (Method::PUT, "content-length: 0\r\n"),
        ] {
            let mut out = Vec::new();
            write_request(&mut out, &method, "/p", &host, &HeaderMap::new(), 0).unwrap();
            let expected =
                format!("{method} /p HTTP/1.1\r\nhost: psp.example:8443\r\n{length}\r\n");
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }

    #[test]
    fn a_target_that_could_split_the_request_is_refused() {
        let host = HeaderValue::from_static("psp");
        for target in ["/a b", "/a\r\nx: y", "/a\n", "*", "", "http://x/"] {
            let mut out = Vec::new();
            let written =
                write_request(&mut out, &Method::GET, target, &host, &HeaderMap::new(), 0);
            assert!(written.is_err(), "{target:?}");
        }
        let mut out = Vec::new();
        assert!(
            write_request(&mut out, &Method::CONNECT, "/", &host, &HeaderMap::new(), 0).is_err()
        );
    }

    #[test]
    fn an_incomplete_head_asks_for_more() {
        let response = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n";
        for end in 0..response.len() {
            assert!(
                head(&response[..end], &Method::POST).unwrap().is_none(),
                "{end}"
            );
        }
        assert!(head(response, &Method::POST).unwrap().is_some());
    }

    #[test]
    fn the_body_is_framed_as_rfc_9112_orders() {
        let h = complete("HTTP/1.1 402 Payment Required\r\nContent-Length: 12\r\nX-A: 1\r\n\r\n");
        assert_eq!(
            (h.status, h.framing, h.keep_alive),
            (402, Framing::Length(12), true)
        );
        assert_eq!(h.headers["x-a"], "1");

        // Informational answers come before the real one.
        let h = complete("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
        assert_eq!((h.status, h.framing), (201, Framing::Length(0)));
        assert!(!h.headers.contains_key("link"));

        // Repeated or listed lengths that agree are one length.
        let h = complete("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(h.framing, Framing::Length(5));

        let h = complete("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::Chunked, true));
        let h = complete(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n\r\n",
        );
        assert_eq!((h.framing, h.keep_alive), (Framing::Chunked, true));
        // Transfer-Encoding over Content-Length, and the connection not trusted afterwards.
        let h =
            complete("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::Chunked, false));
        // A coding that does not end in chunked: the body runs to the close.
        let h = complete("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::UntilClose, false));
        let h = complete("HTTP/1.1 200 OK\r\nServer: x\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::UntilClose, false));

        // No body, whatever the headers say.
        for (status, method) in [(204, Method::POST), (304, Method::GET), (200, Method::HEAD)] {
            let response = format!("HTTP/1.1 {status} X\r\nContent-Length: 10\r\n\r\n");
            let (h, _) = head(&response, &method).unwrap().unwrap();
            assert_eq!(
                (h.framing, h.keep_alive),
                (Framing::Empty, true),
                "{status} {method}"
            );
        }
    }

    #[test]
    fn a_head_holds_at_most_max_headers() {
        let with = |n: usize| {
            let fields: String = (0..n).map(|i| format!("X-H{i}: {i}\r\n")).collect();
            format!("HTTP/1.1 200 OK\r\n{fields}\r\n")
        };
        assert_eq!(complete(&with(MAX_HEADERS)).headers.len(), MAX_HEADERS);
        assert_eq!(
            failure(&with(MAX_HEADERS + 1)),
            "malformed response head: too many headers"
        );
    }

    #[test]
    fn the_connection_s_headers_stay_behind() {
        let h = complete(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\n\
             X-Hop: 1\r\nX-Kept: 2\r\nTransfer-Encoding: chunked\r\nTrailer: T\r\n\
             Retry-After: 3\r\nUpgrade: h2\r\nProxy-Connection: x\r\n\r\n",
        );
        let mut names: Vec<&str> = h.headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["retry-after", "x-kept"]);
        assert_eq!(h.framing, Framing::Chunked);
        // Room for the headers the gateway adds.
        assert!(h.headers.capacity() >= 2 + ADDED_HEADERS);
    }

    #[test]
    fn the_provider_s_idle_timeout_is_read() {
        for (header, timeout) in [
            ("Keep-Alive: timeout=5, max=1000\r\n", Some(5)),
            ("Keep-Alive: max=10 , Timeout = 30\r\n", Some(30)),
            ("Keep-Alive: max=10\r\n", None),
            ("Keep-Alive: timeout=soon\r\n", None),
            ("", None),
        ] {
            let h = complete(&format!(
                "HTTP/1.1 200 OK\r\n{header}Content-Length: 0\r\n\r\n"
            ));
            assert_eq!(h.idle_timeout, timeout.map(Duration::from_secs), "{header}");
        }
    }

    #[test]
    fn only_a_persistent_http_1_1_answer_keeps_the_connection() {
        let h = complete(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n",
        );
        assert!(!h.keep_alive);
        let h = complete("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert!(!h.keep_alive);
        let h = complete("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n");
        assert!(h.keep_alive);
    }

    #[test]
    fn a_head_that_cannot_be_trusted_is_an_error() {
        for (response, error) in [
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                "conflicting Content-Length values",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
                "malformed Content-Length",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                "malformed Content-Length",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 1234567890123456789\r\n\r\n",
                "malformed Content-Length",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
                "malformed Content-Length",
            ),
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
                "the provider switched protocols, which the gateway never asks for",
            ),
        ] {
            assert_eq!(failure(response), error, "{response:?}");
        }
        for response in [
            "HTTP/1.1 600 Beyond\r\n\r\n",
            "HTTP/1.1 099 Below\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "SMTP ready\r\n\r\n",
            "HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
        ] {
            assert!(
                failure(response).starts_with("malformed response head"),
                "{response:?}"
            );
        }
    }

    /// Decodes `input` fed in pieces of `piece` bytes: the body, the bytes consumed, whether done.
    fn dechunk(
        input: &[u8],
        piece: usize,
        limit: usize,
    ) -> Result<(Vec<u8>, usize, bool), WireError> {
        let mut decoder = Chunked::default();
        let mut body = Vec::new();
        let mut at = 0;
        while at < input.len() && !decoder.is_done() {
            let end = (at + piece.max(1)).min(input.len());
            let used = decoder.decode(&input[at..end], &mut body, limit)?;
            assert!(
                decoder.is_done() || used == end - at,
                "a decoder that is not done takes all it is given"
            );
            at += used;
        }
        Ok((body, at, decoder.is_done()))
    }

    #[test]
    fn a_chunked_body_is_decoded_and_what_follows_is_left() {
        let input = b"4\r\nWiki\r\n5;name=value\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\nHTTP/1.1";
        for piece in [1, 2, 3, 7, 1000] {
            let (body, used, done) = dechunk(input, piece, 1000).unwrap();
            assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.");
            assert!(done);
            assert_eq!(&input[used..], b"HTTP/1.1");
        }
        // Not done until the empty line after the trailers.
        let (_, _, done) = dechunk(b"0\r\nExpires: never\r\n", 1, 1000).unwrap();
        assert!(!done);
    }

    #[test]
    fn a_chunked_body_that_cannot_be_trusted_is_an_error() {
        for (input, error) in [
            (
                &b"3\r\nabcd\r\n0\r\n\r\n"[..],
                "chunk data longer than its size",
            ),
            (b"3\r\nabc\n0\r\n\r\n", "chunk data longer than its size"),
            (b"x\r\n", "malformed chunk size"),
            (b"\r\n", "malformed chunk size"),
            (b"3x\r\n", "malformed chunk size"),
            (b"3\n", "malformed chunk size"),
            (b"3;a\n", "malformed chunk size line"),
            (b"3\rx", "malformed chunk size line"),
            (b"0\r\nA: b\n\r\n", "malformed chunked trailer"),
            (b"10000000000000000\r\n", "chunk size too large"),
            (b"401\r\n", "response body over 1024 bytes"),
        ] {
            assert_eq!(
                dechunk(input, 1, 1024).unwrap_err().0,
                error,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        // The limit counts what came before.
        let fits = dechunk(b"200\r\n", 1, 1024).map(|_| ());
        assert!(fits.is_ok());
        let mut two = b"200\r\n".to_vec();
        two.extend([b'a'; 0x200]);
        two.extend(b"\r\n201\r\n");
        assert_eq!(
            dechunk(&two, 64, 1024).unwrap_err().0,
            "response body over 1024 bytes"
        );
        // An endless extension is cut off.
        let mut long = b"1;".to_vec();
        long.extend([b'a'; MAX_CHUNK_LINE_BYTES]);
        assert_eq!(
            dechunk(&long, 100, 1024).unwrap_err().0,
            "chunk size line or trailer too long"
        );
    }

    /// `body` in chunks of the given sizes (the rest in one last chunk), with extensions on some.
    fn chunked(body: &[u8], sizes: &[usize], trailer: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = body;
        let mut sizes = sizes.iter();
        while !rest.is_empty() {
            let size = sizes.next().map_or(rest.len(), |&s| s.clamp(1, rest.len()));
            if size % 2 == 0 {
                out.extend(format!("{size:X};ext=\"v\"\r\n").bytes());
            } else {
                out.extend(format!("{size:x}\r\n").bytes());
            }
            out.extend_from_slice(&rest[..size]);
            out.extend(b"\r\n");
            rest = &rest[size..];
        }
        out.extend(b"0\r\n");
        if trailer {
            out.extend(b"Trailer-Field: 1\r\n");
        }
        out.extend(b"\r\n");
        out
    }

    proptest! {
        #[test]
        fn any_chunking_read_in_any_pieces_gives_the_body_back(
            body in proptest::collection::vec(any::<u8>(), 0..600),
            sizes in proptest::collection::vec(1usize..200, 0..8),
            trailer in any::<bool>(),
            piece in 1usize..64,
            after in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let mut input = chunked(&body, &sizes, trailer);
            let length = input.len();
            input.extend(&after);
            let (decoded, used, done) = dechunk(&input, piece, 600).unwrap();
            prop_assert_eq!(decoded, body);
            prop_assert!(done);
            prop_assert_eq!(used, length);
        }

        #[test]
        fn any_bytes_are_decoded_or_refused_within_the_limit(
            input in proptest::collection::vec(any::<u8>(), 0..300),
            piece in 1usize..16,
        ) {
            if let Ok((body, used, _)) = dechunk(&input, piece, 64) {
                prop_assert!(body.len() <= 64);
                prop_assert!(used <= input.len());
            }
        }

        #[test]
        fn any_head_bytes_are_parsed_or_refused_without_panic(input in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut response = b"HTTP/1.1 200 OK\r\n".to_vec();
            response.extend(&input);
            if let Ok(Some((_, used))) = parse_head(&response, &Method::GET) {
                prop_assert!(used <= response.len());
            }
            let _ = parse_head(&input, &Method::GET);
        }
    }
}
