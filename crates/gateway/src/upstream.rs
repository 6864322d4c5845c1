//! Talking to a provider: keep-alive HTTP/1.1 connections pooled per worker thread, headers
//! filtered as a proxy must, and every failure classified by whether the request can have reached
//! the provider, which is what decides between a safe retry and an unknown outcome.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::http::uri::Authority;
use hyper::Method;
use payerr::NoResponse;
use payerr_server::listener::{cores, current_worker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::wire::{self, tokens, Chunked, Framing, HOP_BY_HOP, MAX_HEAD_BYTES};

/// Largest provider response read; a larger one is a failed attempt (it was sent: unknown).
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// An idle connection unused this long is closed. Under the 60 s after which common load
/// balancers close idle connections without saying so: a connection the provider closes just as a
/// request goes out on it turns a payment into an unknown outcome.
const IDLE_TIMEOUT: Duration = Duration::from_secs(50);

/// Taken off the idle time a provider announces (`Keep-Alive: timeout=N`), for the same reason.
const IDLE_MARGIN: Duration = Duration::from_secs(1);

/// Idle connections kept per worker and provider; beyond, a connection is closed after its answer.
pub const MAX_IDLE: usize = 256;

/// A connection's read buffer: what one read asks for, and what it keeps between exchanges.
const READ_BYTES: usize = 8 * 1024;

/// A body up to this size goes out in the same write as the request's head.
const COALESCED_BODY_BYTES: usize = 16 * 1024;

/// What came back from one attempt.
#[derive(Debug)]
pub enum Reply {
    /// The provider answered.
    Response {
        /// Its status.
        status: u16,
        /// Its end-to-end headers (hop-by-hop ones are the connection's, kept by the wire code).
        headers: HeaderMap,
        /// Its body.
        body: Bytes,
    },
    /// No answer: whether it was sent, and what went wrong.
    Failed {
        /// Whether the provider can have processed it.
        sent: NoResponse,
        /// What happened, for the log and the event.
        error: String,
    },
}

/// The connections to one provider: a pool of idle keep-alive connections per worker thread, plus
/// one for callers off the workers.
///
/// A connection is read and written by the request that took it from the pool, on that request's
/// task: no task or channel stands between the two. Each pool is only ever used by its own
/// thread, so its lock is never contended; the pools are per thread so that a connection stays
/// registered with the runtime that opened it.
#[derive(Debug)]
pub struct Upstream {
    /// `host:port` to connect to.
    address: String,
    /// The `Host` header of every request.
    host: HeaderValue,
    connect_timeout: Duration,
    idle_timeout: Duration,
    pools: Box<[Arc<Mutex<Pool>>]>,
}

/// One worker's idle connections to a provider.
#[derive(Debug, Default)]
struct Pool {
    /// Oldest first.
    idle: VecDeque<Idle>,
    /// Whether a task of the worker's runtime is closing the connections that expire.
    reaper: bool,
}

#[derive(Debug)]
struct Idle {
    connection: Connection,
    /// When it stops being used: the gateway's idle timeout, or sooner when the provider announced
    /// a shorter one.
    until: Instant,
}

impl Pool {
    /// Closes the connections at the front (the oldest) whose time is up. One further back whose
    /// provider announced a shorter time is never taken after it (see `checkout`), and is closed
    /// once the ones before it are.
    fn expire(&mut self) {
        let now = Instant::now();
        while self.idle.front().is_some_and(|idle| idle.until <= now) {
            self.idle.pop_front();
        }
    }
}

/// Closes a pool's connections as they expire, until none is left idle.
async fn reap(pool: Arc<Mutex<Pool>>) {
    loop {
        let wait = {
            let mut pool = lock(&pool);
            pool.expire();
            match pool.idle.front() {
                Some(oldest) => oldest.until.saturating_duration_since(Instant::now()),
                None => {
                    pool.reaper = false;
                    return;
                }
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// A pool holds no invariant a panic could break half way.
fn lock(pool: &Mutex<Pool>) -> std::sync::MutexGuard<'_, Pool> {
    pool.lock().unwrap_or_else(|e| e.into_inner())
}

/// One keep-alive connection to a provider, between exchanges: nothing unread, nothing unsent.
#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    /// Bytes read and not yet used; kept between exchanges for its allocation.
    read: Vec<u8>,
    /// The request being written; kept between exchanges for its allocation.
    write: Vec<u8>,
}

/// Why a request could not be written.
enum WriteFailure {
    /// Not a byte of it left: the provider cannot have it.
    Unwritten(io::Error),
    /// Some of it may be on the wire.
    Partly(io::Error),
}

impl Connection {
    fn new(stream: TcpStream) -> Connection {
        Connection {
            stream,
            read: Vec::with_capacity(READ_BYTES),
            write: Vec::with_capacity(READ_BYTES),
        }
    }

    /// Whether the provider has neither closed this idle connection nor sent anything on it.
    /// No system call unless something arrived since the last read (Tokio tracks readiness).
    fn is_open(&self) -> bool {
        matches!(self.stream.try_read(&mut [0; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Writes the request in `write`, then `body`.
    async fn send(&mut self, body: &[u8]) -> Result<(), WriteFailure> {
        let coalesce = body.len() <= COALESCED_BODY_BYTES;
        if coalesce {
            self.write.extend_from_slice(body);
        }
        let sent = self.write_all(if coalesce { &[] } else { body }).await;
        // A large head or body is not kept for the connection's life.
        if self.write.capacity() > MAX_HEAD_BYTES {
            self.write = Vec::with_capacity(READ_BYTES);
        }
        sent
    }

    /// Writes `write`, then `rest`, telling whether any byte went before a failure.
    async fn write_all(&mut self, rest: &[u8]) -> Result<(), WriteFailure> {
        let parts: [&[u8]; 2] = [&self.write, rest];
        let mut any_written = false;
        for mut part in parts {
            while !part.is_empty() {
                let failure = match self.stream.write(part).await {
                    Ok(0) => io::Error::from(io::ErrorKind::WriteZero),
                    Ok(n) => {
                        any_written = true;
                        part = &part[n..];
                        continue;
                    }
                    Err(e) => e,
                };
                return Err(if any_written {
                    WriteFailure::Partly(failure)
                } else {
                    WriteFailure::Unwritten(failure)
                });
            }
        }
        Ok(())
    }

    /// Reads more into the read buffer; `Ok(false)` when the provider closed the connection.
    async fn fill(&mut self) -> Result<bool, String> {
        self.read.reserve(READ_BYTES);
        match self.stream.read_buf(&mut self.read).await {
            Ok(0) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) => Err(format!("reading the response failed: {e}")),
        }
    }

    /// Reads the response to a request made with `method`, whole; for how long the connection can
    /// be kept for another exchange, if it can (`None` inside: the gateway's own idle timeout).
    async fn receive(
        &mut self,
        method: &Method,
    ) -> Result<(Reply, Option<Option<Duration>>), String> {
        let (head, mut at) = loop {
            if let Some(parsed) = wire::parse_head(&self.read, method).map_err(|e| e.0)? {
                break parsed;
            }
            if self.read.len() >= MAX_HEAD_BYTES {
                return Err(format!("response head over {MAX_HEAD_BYTES} bytes"));
            }
            if !self.fill().await? {
                return Err("the provider closed the connection before answering".to_owned());
            }
        };
        let too_large = || format!("response body over {MAX_RESPONSE_BYTES} bytes");
        let closed_early = || "the provider closed the connection before the body ended".to_owned();
        let body = match head.framing {
            Framing::Empty => Bytes::new(),
            Framing::Length(length) => {
                let length = usize::try_from(length)
                    .ok()
                    .filter(|&n| n <= MAX_RESPONSE_BYTES)
                    .ok_or_else(too_large)?;
                // Room as announced, up to a point: a length is only a claim until bytes come.
                let missing = (at + length).saturating_sub(self.read.len());
                self.read.reserve(missing.min(READ_BYTES * 128));
                while self.read.len() - at < length {
                    if !self.fill().await? {
                        return Err(closed_early());
                    }
                }
                let body = Bytes::copy_from_slice(&self.read[at..at + length]);
                at += length;
                body
            }
            Framing::Chunked => {
                let mut decoder = Chunked::default();
                let mut body = Vec::new();
                loop {
                    at += decoder
                        .decode(&self.read[at..], &mut body, MAX_RESPONSE_BYTES)
                        .map_err(|e| e.0)?;
                    if decoder.is_done() {
                        break;
                    }
                    // All of it was decoded: the buffer starts afresh.
                    self.read.clear();
                    at = 0;
                    if !self.fill().await? {
                        return Err(closed_early());
                    }
                }
                Bytes::from(body)
            }
            Framing::UntilClose => {
                while self.fill().await? {
                    if self.read.len() - at > MAX_RESPONSE_BYTES {
                        return Err(too_large());
                    }
                }
                let body = Bytes::copy_from_slice(&self.read[at..]);
                at = self.read.len();
                body
            }
        };
        // Bytes after the answer are not the answer to anything sent: the connection is not
        // trusted with another exchange.
        let keep = (head.keep_alive && at == self.read.len()).then_some(head.idle_timeout);
        self.read.clear();
        if self.read.capacity() > MAX_HEAD_BYTES {
            self.read = Vec::with_capacity(READ_BYTES);
        }
        let reply = Reply::Response {
            status: head.status,
            headers: head.headers,
            body,
        };
        Ok((reply, keep))
    }
}

impl Upstream {
    /// Connections to `authority` (the upstream URL's, validated), whose set-up is bounded by
    /// `connect_timeout`.
    pub fn new(authority: &Authority, connect_timeout: Duration) -> Result<Upstream, String> {
        let port = authority.port_u16().unwrap_or(80);
        // An IPv6 literal comes bracketed; the socket address wants it bare.
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let address = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        // Credentials in the URL are not for the Host header.
        let host_header = authority.as_str().rsplit('@').next().unwrap_or_default();
        let host = HeaderValue::from_str(host_header)
            .map_err(|_| format!("upstream host {host_header:?} is not a valid Host header"))?;
        Ok(Upstream {
            address,
            host,
            connect_timeout,
            idle_timeout: IDLE_TIMEOUT,
            pools: (0..=cores()).map(|_| Arc::default()).collect(),
        })
    }

    /// The calling worker's pool.
    fn pool(&self) -> &Arc<Mutex<Pool>> {
        current_worker()
            .and_then(|worker| self.pools.get(worker + 1))
            .unwrap_or(&self.pools[0])
    }

    /// The most recently used idle connection that is still open and fresh, if any.
    fn checkout(&self) -> Option<Connection> {
        let mut pool = lock(self.pool());
        let now = Instant::now();
        while let Some(idle) = pool.idle.pop_back() {
            if now < idle.until && idle.connection.is_open() {
                return Some(idle.connection);
            }
        }
        None
    }

    /// Keeps a connection whose exchange is over for the next request, for the gateway's idle
    /// timeout or, when the provider announced one (`announced`), for a margin less, whichever is
    /// shorter; a task of the calling runtime closes it once it expires.
    fn checkin(&self, connection: Connection, announced: Option<Duration>) {
        let keep = announced.map_or(self.idle_timeout, |provider| {
            provider.saturating_sub(IDLE_MARGIN).min(self.idle_timeout)
        });
        if keep.is_zero() {
            return;
        }
        let shared = self.pool();
        let mut pool = lock(shared);
        pool.expire();
        if pool.idle.len() < MAX_IDLE {
            pool.idle.push_back(Idle {
                connection,
                until: Instant::now() + keep,
            });
        }
        if !pool.reaper && !pool.idle.is_empty() {
            pool.reaper = true;
            tokio::spawn(reap(shared.clone()));
        }
    }

    /// A new connection.
    async fn connect(&self) -> Result<Connection, Failure> {
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(&self.address))
            .await
            .map_err(|_| {
                Failure::NotSent(format!(
                    "cannot connect: no connection within {} ms",
                    self.connect_timeout.as_millis()
                ))
            })?
            .map_err(|e| Failure::NotSent(format!("cannot connect: {e}")))?;
        // Requests are written whole: send them at once.
        let _ = stream.set_nodelay(true);
        Ok(Connection::new(stream))
    }

    /// Sends one request (`path_and_query` in origin form) and reads the whole answer within
    /// `timeout`.
    pub async fn send(
        &self,
        method: &Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: Bytes,
        timeout: Duration,
    ) -> Reply {
        // Set once a request may have been written: a deadline that passes before, while
        // connecting, leaves the request certainly unsent.
        let written = AtomicBool::new(false);
        let exchange = self.exchange(method, path_and_query, headers, &body, &written);
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(Failure::NotSent(error))) => Reply::Failed {
                sent: NoResponse::NotSent,
                error,
            },
            Ok(Err(Failure::MaybeSent(error))) => Reply::Failed {
                sent: NoResponse::MaybeSent,
                error,
            },
            Err(_) => Reply::Failed {
                sent: if written.load(Ordering::Relaxed) {
                    NoResponse::MaybeSent
                } else {
                    NoResponse::NotSent
                },
                error: format!("no answer within {} ms", timeout.as_millis()),
            },
        }
    }

    /// One request on a pooled or new connection, its answer read whole; `written` is set while
    /// the request may be on the wire.
    async fn exchange(
        &self,
        method: &Method,
        target: &str,
        headers: &HeaderMap,
        body: &[u8],
        written: &AtomicBool,
    ) -> Result<Reply, Failure> {
        loop {
            let (mut connection, reused) = match self.checkout() {
                Some(connection) => (connection, true),
                // Boxed: opening a connection is the rare path (connections are kept), and its
                // state inline would make every request's task larger.
                None => (Box::pin(self.connect()).await?, false),
            };
            connection.write.clear();
            wire::write_request(
                &mut connection.write,
                method,
                target,
                &self.host,
                headers,
                body.len(),
            )
            .map_err(|e| Failure::NotSent(e.0))?;
            written.store(true, Ordering::Relaxed);
            match connection.send(body).await {
                Ok(()) => {}
                // A pooled connection the provider closed while it was idle took none of the
                // request: it goes on another connection.
                Err(WriteFailure::Unwritten(_)) if reused => {
                    written.store(false, Ordering::Relaxed);
                    continue;
                }
                Err(WriteFailure::Unwritten(e)) => {
                    return Err(Failure::NotSent(format!("cannot send: {e}")))
                }
                Err(WriteFailure::Partly(e)) => {
                    return Err(Failure::MaybeSent(format!("request failed: {e}")))
                }
            }
            let (reply, keep) = connection
                .receive(method)
                .await
                .map_err(Failure::MaybeSent)?;
            if let Some(announced) = keep {
                self.checkin(connection, announced);
            }
            return Ok(reply);
        }
    }
}

/// Why an exchange failed before a whole response was read, by whether the request can have
/// reached the provider.
enum Failure {
    /// Certainly not: no connection, or a connection that refused it before writing it.
    NotSent(String),
    /// Maybe: it may have been written, whole or in part.
    MaybeSent(String),
}

/// Removes the headers not to pass on: hop-by-hop ones (`wire::HOP_BY_HOP`) and those the
/// `Connection` header names.
pub fn keep_end_to_end(headers: &mut HeaderMap) {
    // One look at each name, and no allocation unless `Connection` names some: a request always
    // has a couple of them (`Host`, `Content-Length`), and this runs on every one.
    let mut found = 0u16;
    for name in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|hop| hop == name) {
            found |= 1 << i;
        }
    }
    if found & 1 != 0 {
        let named: Vec<HeaderName> = tokens(
            headers
                .get_all(&HOP_BY_HOP[0])
                .iter()
                .map(HeaderValue::as_bytes),
        )
        .filter_map(|name| HeaderName::from_bytes(name).ok())
        .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if found & (1 << i) != 0 {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::Full;
    use hyper::header::HeaderValue;
    use hyper_util::rt::TokioIo;

    use super::*;

    #[test]
    fn hop_by_hop_headers_stay_behind() {
        let mut headers = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-trace"),
            ("x-trace", "1"),
            ("host", "gateway"),
            ("transfer-encoding", "chunked"),
            ("authorization", "Bearer t"),
            ("idempotency-key", "k1"),
        ] {
            headers.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        keep_end_to_end(&mut headers);
        // Removing swaps entries: the order of different names is not kept, nor meaningful.
        let mut names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["authorization", "idempotency-key"]);
    }

    fn upstream(addr: std::net::SocketAddr) -> Upstream {
        let authority: Authority = addr.to_string().parse().unwrap();
        Upstream::new(&authority, Duration::from_secs(2)).unwrap()
    }

    async fn post(upstream: &Upstream, timeout: Duration) -> Reply {
        upstream
            .send(
                &Method::POST,
                "/prefix/pay?x=1",
                &HeaderMap::new(),
                Bytes::from_static(b"{}"),
                timeout,
            )
            .await
    }

    #[tokio::test]
    async fn a_refused_connection_is_not_sent_and_a_silent_server_may_have_it() {
        // A port nobody listens on: bind one, note it, close it.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let reply = post(&upstream(addr), Duration::from_secs(2)).await;
        assert!(
            matches!(
                reply,
                Reply::Failed {
                    sent: NoResponse::NotSent,
                    ..
                }
            ),
            "{reply:?}"
        );

        // A server that accepts and reads but never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let (socket, _) = silent.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(socket);
        });
        let reply = post(&upstream(addr), Duration::from_millis(200)).await;
        assert!(
            matches!(
                reply,
                Reply::Failed {
                    sent: NoResponse::MaybeSent,
                    ..
                }
            ),
            "{reply:?}"
        );
        held.abort();
    }

    #[tokio::test]
    async fn a_deadline_that_passes_while_connecting_is_not_sent() {
        // A listener that never accepts, its queue filled: further connections hang in SYN.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(1).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut queued = Vec::new();
        for _ in 0..8 {
            match tokio::time::timeout(
                Duration::from_millis(100),
                tokio::net::TcpStream::connect(addr),
            )
            .await
            {
                Ok(Ok(stream)) => queued.push(stream),
                _ => break,
            }
        }
        let reply = post(&upstream(addr), Duration::from_millis(300)).await;
        assert!(
            matches!(
                &reply,
                Reply::Failed {
                    sent: NoResponse::NotSent,
                    error,
                } if error.starts_with("no answer within 300 ms")
            ),
            "{reply:?}"
        );
        drop(listener);
    }

    /// A provider that answers one request per connection, then closes it; what each request's
    /// head was.
    async fn one_answer_per_connection(
        listener: tokio::net::TcpListener,
        connections: usize,
    ) -> Vec<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut heads = Vec::new();
        for _ in 0..connections {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut received = Vec::new();
            let mut buf = [0u8; 1024];
            while !received.windows(6).any(|w| w == b"\r\n\r\n{}") {
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0, "the request ended early");
                received.extend_from_slice(&buf[..n]);
            }
            heads.push(String::from_utf8_lossy(&received).into_owned());
            socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await
                .unwrap();
            // No `Connection: close`: the gateway learns of the close only from the socket.
            drop(socket);
        }
        heads
    }

    #[tokio::test]
    async fn a_pooled_connection_closed_by_the_provider_is_replaced_not_an_unknown() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let provider = tokio::spawn(one_answer_per_connection(listener, 2));
        let upstream = upstream(addr);
        for _ in 0..2 {
            let reply = post(&upstream, Duration::from_secs(2)).await;
            assert!(
                matches!(&reply, Reply::Response { status: 200, body, .. } if body == "ok"),
                "{reply:?}"
            );
            // The provider's close reaches the idle connection before the next request.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let heads = provider.await.unwrap();
        for head in heads {
            assert!(
                head.starts_with("POST /prefix/pay?x=1 HTTP/1.1\r\n"),
                "{head}"
            );
            assert!(
                head.to_ascii_lowercase()
                    .contains(&format!("\r\nhost: {addr}\r\n")),
                "{head}"
            );
        }
    }

    /// A provider answering `ok` to every request; the count of connections it accepted.
    async fn provider() -> (
        std::net::SocketAddr,
        std::sync::Arc<std::sync::atomic::AtomicUsize>,
    ) {
        let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (socket, _) = server.accept().await.unwrap();
                counted.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(
                    TokioIo::new(socket),
                    hyper::service::service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from_static(b"ok"),
                        )))
                    }),
                ));
            }
        });
        (addr, accepted)
    }

    #[tokio::test]
    async fn a_kept_connection_serves_the_next_request() {
        let (addr, accepted) = provider().await;
        let upstream = upstream(addr);
        for _ in 0..5 {
            let reply = post(&upstream, Duration::from_secs(2)).await;
            assert!(
                matches!(reply, Reply::Response { status: 200, .. }),
                "{reply:?}"
            );
        }
        assert_eq!(accepted.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn an_idle_connection_is_closed_when_it_expires_with_no_more_traffic() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let provider = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let mut received = Vec::new();
            while !received.ends_with(b"{}") {
                let n = socket.read(&mut buf).await.unwrap();
                received.extend_from_slice(&buf[..n]);
            }
            socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await
                .unwrap();
            // Kept alive by the provider: only the gateway can close it now.
            let answered = Instant::now();
            let closed = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf)).await;
            (matches!(closed, Ok(Ok(0))), answered.elapsed())
        });
        let mut upstream = upstream(addr);
        upstream.idle_timeout = Duration::from_millis(200);
        let reply = post(&upstream, Duration::from_secs(2)).await;
        assert!(
            matches!(reply, Reply::Response { status: 200, .. }),
            "{reply:?}"
        );
        let (closed, after) = provider.await.unwrap();
        assert!(closed, "the idle connection was not closed");
        assert!(
            after >= Duration::from_millis(200),
            "closed after {after:?}"
        );
    }

    #[tokio::test]
    async fn a_host_name_is_resolved_and_each_address_tried() {
        let (addr, _) = provider().await;
        // `localhost` may resolve to ::1 first, where nothing listens.
        let authority: Authority = format!("localhost:{}", addr.port()).parse().unwrap();
        let upstream = Upstream::new(&authority, Duration::from_secs(2)).unwrap();
        let reply = post(&upstream, Duration::from_secs(2)).await;
        assert!(
            matches!(reply, Reply::Response { status: 200, .. }),
            "{reply:?}"
        );
    }

    /// A provider that answers the requests it gets, on whatever connection, with `answers` in
    /// turn, raw; after an answer marked `true` it closes the connection. The number of
    /// connections it accepted.
    async fn scripted(
        answers: &'static [(&'static [u8], bool)],
    ) -> (
        std::net::SocketAddr,
        std::sync::Arc<std::sync::atomic::AtomicUsize>,
    ) {
        use std::sync::atomic::AtomicUsize;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let next = Arc::new(AtomicUsize::new(0));
        let counted = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = server.accept().await.unwrap();
                counted.fetch_add(1, Ordering::Relaxed);
                let next = next.clone();
                tokio::spawn(async move {
                    let mut received = Vec::new();
                    let mut buf = [0u8; 1024];
                    loop {
                        // Every request of `post` ends in its body, `{}`.
                        while !received.ends_with(b"\r\n\r\n{}") {
                            match socket.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => received.extend_from_slice(&buf[..n]),
                            }
                        }
                        received.clear();
                        let (answer, close) = answers[next.fetch_add(1, Ordering::Relaxed)];
                        socket.write_all(answer).await.unwrap();
                        if close {
                            return;
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    /// The status and body `post` got, or the failure.
    async fn replies(upstream: &Upstream, count: usize) -> Vec<Result<(u16, String), String>> {
        let mut replies = Vec::new();
        for _ in 0..count {
            replies.push(match post(upstream, Duration::from_secs(2)).await {
                Reply::Response { status, body, .. } => {
                    Ok((status, String::from_utf8_lossy(&body).into_owned()))
                }
                Reply::Failed { sent, error } => {
                    assert_eq!(sent, NoResponse::MaybeSent, "{error}");
                    Err(error)
                }
            });
        }
        replies
    }

    #[tokio::test]
    async fn every_framing_is_read_and_the_connection_kept_while_it_can_be() {
        static ANSWERS: [(&[u8], bool); 5] = [
            (
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 402 Payment Required\r\nContent-Length: 8\r\n\r\ndeclined",
                false,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n",
                false,
            ),
            (b"HTTP/1.1 204 No Content\r\n\r\n", false),
            // Told to close: the next request goes on a new connection.
            (
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
                true,
            ),
            // No framing: the body runs to the close.
            (b"HTTP/1.1 503 Service Unavailable\r\n\r\nbusy, try later", true),
        ];
        let (addr, accepted) = scripted(&ANSWERS).await;
        let upstream = upstream(addr);
        let got = replies(&upstream, 3).await;
        assert_eq!(
            got,
            [
                Ok((402, "declined".to_owned())),
                Ok((200, "abcde".to_owned())),
                Ok((204, String::new())),
            ]
        );
        assert_eq!(accepted.load(Ordering::Relaxed), 1);
        let got = replies(&upstream, 2).await;
        assert_eq!(
            got,
            [
                Ok((200, "ok".to_owned())),
                Ok((503, "busy, try later".to_owned()))
            ]
        );
        assert_eq!(accepted.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn an_answer_that_cannot_be_trusted_may_have_been_processed() {
        static ANSWERS: [(&[u8], bool); 6] = [
            (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", true),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
                true,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
                false,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
                false,
            ),
            (b"<html>bad gateway</html>\r\n\r\n", false),
            (b"", true),
        ];
        let (addr, _) = scripted(&ANSWERS).await;
        let upstream = upstream(addr);
        let got = replies(&upstream, 6).await;
        let errors: Vec<&str> = got
            .iter()
            .map(|r| {
                r.as_ref()
                    .map_or_else(String::as_str, |ok| unreachable!("{ok:?}"))
            })
            .collect();
        assert_eq!(
            errors,
            [
                "the provider closed the connection before the body ended",
                "the provider closed the connection before the body ended",
                "response body over 16777216 bytes",
                "conflicting Content-Length values",
                "malformed response head: invalid HTTP version",
                "the provider closed the connection before answering",
            ]
        );
    }

    #[tokio::test]
    async fn bytes_after_an_answer_or_a_short_idle_time_keep_no_connection() {
        static ANSWERS: [(&[u8], bool); 5] = [
            // Not the answer to anything sent: the connection is not trusted again.
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n",
                false,
            ),
            // The provider keeps it one second: less the margin, not at all.
            (
                b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 2\r\n\r\nok",
                false,
            ),
            // Five seconds: kept.
            (
                b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok",
                false,
            ),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false),
        ];
        let (addr, accepted) = scripted(&ANSWERS).await;
        let upstream = upstream(addr);
        let got = replies(&upstream, 5).await;
        assert!(
            got.iter().all(|r| r == &Ok((200, "ok".to_owned()))),
            "{got:?}"
        );
        assert_eq!(accepted.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_pooled_connection_reset_by_the_provider_is_replaced_not_an_unknown() {
        use std::sync::mpsc;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let runtime = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let (reset, do_reset) = mpsc::channel::<()>();
        let (was_reset, reset_done) = mpsc::channel::<()>();
        // The provider, on a thread and runtime of its own: the gateway's runtime must not run
        // while the reset arrives, so that nothing has told it of the reset when it takes the
        // connection from the pool.
        let provider = std::thread::spawn(move || {
            runtime().block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let answer = |socket: tokio::net::TcpStream| async move {
                    let mut socket = socket;
                    let mut received = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !received.ends_with(b"\r\n\r\n{}") {
                        let n = socket.read(&mut buf).await.unwrap();
                        assert!(n > 0, "the request ended early");
                        received.extend_from_slice(&buf[..n]);
                    }
                    socket
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        .await
                        .unwrap();
                    socket
                };
                let (first, _) = listener.accept().await.unwrap();
                let first = answer(first).await;
                do_reset.recv().unwrap();
                first.set_zero_linger().unwrap();
                drop(first);
                was_reset.send(()).unwrap();
                let (second, _) = listener.accept().await.unwrap();
                drop(answer(second).await);
            });
        });
        runtime().block_on(async move {
            let upstream = upstream(addr);
            let ok = |reply: &Reply| matches!(reply, Reply::Response { status: 200, body, .. } if body == "ok");
            let reply = post(&upstream, Duration::from_secs(2)).await;
            assert!(ok(&reply), "{reply:?}");
            reset.send(()).unwrap();
            // Blocking, on purpose (see above).
            reset_done.recv().unwrap();
            std::thread::sleep(Duration::from_millis(20));
            let reply = post(&upstream, Duration::from_secs(2)).await;
            assert!(ok(&reply), "{reply:?}");
        });
        provider.join().unwrap();
    }
}
