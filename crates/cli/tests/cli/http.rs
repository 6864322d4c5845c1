//! A minimal blocking HTTP/1.1 client for the `payerr serve` end-to-end tests.
//!
//! std only. [`request`], [`raw`], [`get`] and [`post_json`] open one connection per request;
//! [`Conn`] keeps one connection alive across requests. A response body is framed by
//! `Transfer-Encoding: chunked`, else by `Content-Length`, else by the end of the connection.
//! This is test code: every I/O or protocol failure panics with the request it belongs to.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Read and write timeout of every connection.
const TIMEOUT: Duration = Duration::from_secs(10);

/// One HTTP response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The value of the first header called `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics with the body text if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the HTTP {} response body is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }

    /// The body as text (invalid UTF-8 is replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request on a new connection and reads the whole response.
///
/// Adds `Host`, `Connection: close` and, when `body` is non-empty or the method is POST,
/// `Content-Length`; each only if `headers` does not already set it (case-insensitively).
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let bytes = encode(addr, method, path, headers, body, true);
    exchange(addr, &bytes, method, &format!("{method} {path}"))
}

/// Writes `bytes` as-is on a new connection and reads the response.
///
/// The write side is left open (no half-close): a request whose body is shorter than its
/// `Content-Length` gets an answer only when the server gives up waiting for the rest.
pub fn raw(addr: &str, bytes: &[u8]) -> Reply {
    let method = bytes
        .split(u8::is_ascii_whitespace)
        .next()
        .unwrap_or_default();
    let method = String::from_utf8_lossy(method);
    exchange(addr, bytes, &method, "raw request")
}

/// `GET path`.
pub fn get(addr: &str, path: &str) -> Reply {
    request(addr, "GET", path, &[], &[])
}

/// `POST path` with a JSON body.
pub fn post_json(addr: &str, path: &str, body: &str) -> Reply {
    request(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

/// One kept-alive connection: requests are sent one after another on the same socket.
pub struct Conn {
    addr: String,
    stream: BufReader<TcpStream>,
}

impl Conn {
    /// Connects to `addr`.
    pub fn open(addr: &str) -> Conn {
        let stream = connect(addr, &format!("opening a connection to {addr}"));
        Conn {
            addr: addr.to_owned(),
            stream: BufReader::new(stream),
        }
    }

    /// Sends one request (like [`request`], but without `Connection: close`) and reads exactly
    /// one response.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let what = format!(
            "{method} {path} on a kept-alive connection to {}",
            self.addr
        );
        let bytes = encode(&self.addr, method, path, headers, body, false);
        let stream = self.stream.get_mut();
        let written = stream.write_all(&bytes).and_then(|()| stream.flush());
        finish(&mut self.stream, written, method, &what)
    }
}

impl Conn {
    /// Writes bytes as they are: a request head and part of its body, the rest later.
    pub fn write(&mut self, bytes: &[u8]) {
        let stream = self.stream.get_mut();
        stream
            .write_all(bytes)
            .and_then(|()| stream.flush())
            .unwrap_or_else(|e| panic!("writing to {}: {e}", self.addr));
    }

    /// Reads until the server closes the connection (within the read timeout); what it sent.
    pub fn read_to_end(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        self.stream
            .read_to_end(&mut rest)
            .unwrap_or_else(|e| panic!("waiting for {} to close the connection: {e}", self.addr));
        rest
    }

    /// Reads one response to a request sent with [`Conn::write`].
    pub fn read(&mut self, method: &str) -> Reply {
        read_reply(&mut self.stream, method)
            .unwrap_or_else(|e| panic!("reading a response from {}: {e}", self.addr))
    }
}

fn connect(addr: &str, what: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("{what}: connecting: {e}"));
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .unwrap_or_else(|e| panic!("{what}: setting timeouts: {e}"));
    stream
}

/// The request head and body, with the default headers the caller did not set.
fn encode(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    close: bool,
) -> Vec<u8> {
    let given = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !given("host") {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    if close && !given("connection") {
        head.push_str("Connection: close\r\n");
    }
    let wants_length = !body.is_empty() || method.eq_ignore_ascii_case("POST");
    if wants_length && !given("content-length") && !given("transfer-encoding") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Sends `bytes` on a new connection and reads one response.
fn exchange(addr: &str, bytes: &[u8], method: &str, what: &str) -> Reply {
    let what = format!("{what} to {addr}");
    let mut stream = connect(addr, &what);
    let written = stream.write_all(bytes).and_then(|()| stream.flush());
    finish(&mut BufReader::new(stream), written, method, &what)
}

/// Reads the response once the request is written. A failed write is fatal only when no
/// response can be read either: a server may answer and close without reading a body it refuses.
fn finish(reader: &mut impl BufRead, written: io::Result<()>, method: &str, what: &str) -> Reply {
    match (read_reply(reader, method), written) {
        (Ok(reply), _) => reply,
        (Err(read), Ok(())) => panic!("{what}: reading the response: {read}"),
        (Err(read), Err(write)) => {
            panic!("{what}: writing the request: {write}; then reading the response: {read}")
        }
    }
}

/// Reads one final response, skipping interim `1xx` responses (except `101`).
fn read_reply(r: &mut impl BufRead, method: &str) -> io::Result<Reply> {
    loop {
        let line = read_line(r)?.ok_or_else(|| bad("the connection closed without a response"))?;
        let status = parse_status(&line)?;
        let headers = read_headers(r)?;
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        let mut reply = Reply {
            status,
            headers,
            body: Vec::new(),
        };
        let bodiless = method.eq_ignore_ascii_case("HEAD")
            || (100..200).contains(&status)
            || status == 204
            || status == 304;
        if !bodiless {
            reply.body = read_body(r, &reply)?;
        }
        return Ok(reply);
    }
}

fn parse_status(line: &str) -> io::Result<u16> {
    let mut parts = line.split_whitespace();
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    match code.parse() {
        Ok(status) if version.starts_with("HTTP/1.") && code.len() == 3 => Ok(status),
        _ => Err(bad(format!("bad status line {line:?}"))),
    }
}

/// Reads header lines up to and including the empty line that ends them.
fn read_headers(r: &mut impl BufRead) -> io::Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    loop {
        let line = read_line(r)?.ok_or_else(|| bad("the connection closed inside the headers"))?;
        if line.is_empty() {
            return Ok(headers);
        }
        match line.split_once(':') {
            Some((name, value)) if !name.trim().is_empty() => {
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
            _ => return Err(bad(format!("bad header line {line:?}"))),
        }
    }
}

fn read_body(r: &mut impl BufRead, reply: &Reply) -> io::Result<Vec<u8>> {
    if let Some(coding) = reply.header("transfer-encoding") {
        let last = coding.rsplit(',').next().unwrap_or_default().trim();
        if last.eq_ignore_ascii_case("chunked") {
            return read_chunked(r);
        }
    } else if let Some(length) = reply.header("content-length") {
        let length: u64 = length
            .parse()
            .map_err(|_| bad(format!("bad Content-Length {length:?}")))?;
        return read_exactly(r, length);
    }
    let mut body = Vec::new();
    r.read_to_end(&mut body)?;
    Ok(body)
}

fn read_chunked(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line =
            read_line(r)?.ok_or_else(|| bad("the connection closed inside a chunked body"))?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(size, 16)
            .map_err(|_| bad(format!("bad chunk size line {line:?}")))?;
        if size == 0 {
            read_headers(r)?; // trailers
            return Ok(body);
        }
        body.extend(read_exactly(r, size)?);
        if read_line(r)?.as_deref() != Some("") {
            return Err(bad("a chunk is not followed by CRLF"));
        }
    }
}

fn read_exactly(r: &mut impl BufRead, length: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    r.by_ref().take(length).read_to_end(&mut bytes)?;
    if bytes.len() as u64 != length {
        return Err(bad(format!(
            "the connection closed after {} of {length} body bytes",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// One line without its line ending; `None` at the end of the connection.
fn read_line(r: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    if r.read_until(b'\n', &mut line)? == 0 {
        return Ok(None);
    }
    if line.pop() != Some(b'\n') {
        return Err(bad("the connection closed in the middle of a line"));
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(String::from_utf8_lossy(&line).into_owned()))
}

fn bad(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}
