//! Talking to a provider: keep-alive HTTP/1.1 connections pooled per worker thread, headers
//! filtered as a proxy must, and every failure classified by whether the request can have reached
//! the provider, which is what decides between a safe retry and an unknown outcome.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::uri::Authority;
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use payerr::NoResponse;
use payerr_server::listener::{cores, current_worker};
use tokio::net::TcpStream;

/// Largest provider response read; a larger one is a failed attempt (it was sent: unknown).
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// An idle connection unused this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Idle connections kept per worker and provider; beyond, a connection is closed after its answer.
pub const MAX_IDLE: usize = 256;

/// What came back from one attempt.
#[derive(Debug)]
pub enum Reply {
    /// The provider answered.
    Response {
        /// Its status.
        status: u16,
        /// Its headers.
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
/// A connection is driven by the runtime that opened it; sharing one pool between the workers'
/// runtimes would hand each exchange across threads. Each pool is only ever used by its own thread,
/// so its lock is never contended.
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
    sender: SendRequest<Full<Bytes>>,
    since: Instant,
}

impl Pool {
    /// Closes the connections idle for `idle_timeout` or more.
    fn expire(&mut self, idle_timeout: Duration) {
        while self
            .idle
            .front()
            .is_some_and(|idle| idle.since.elapsed() >= idle_timeout)
        {
            self.idle.pop_front();
        }
    }
}

/// Closes a pool's connections as they expire, until none is left idle.
async fn reap(pool: Arc<Mutex<Pool>>, idle_timeout: Duration) {
    loop {
        let wait = {
            let mut pool = lock(&pool);
            pool.expire(idle_timeout);
            match pool.idle.front() {
                Some(oldest) => idle_timeout.saturating_sub(oldest.since.elapsed()),
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
    fn checkout(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut pool = lock(self.pool());
        while let Some(idle) = pool.idle.pop_back() {
            if idle.since.elapsed() < self.idle_timeout && idle.sender.is_ready() {
                return Some(idle.sender);
            }
        }
        None
    }

    /// Keeps a connection whose exchange is over for the next request, on a task of the calling
    /// runtime.
    fn checkin(&self, sender: SendRequest<Full<Bytes>>) {
        if !sender.is_ready() {
            return;
        }
        let shared = self.pool();
        let mut pool = lock(shared);
        pool.expire(self.idle_timeout);
        if pool.idle.len() < MAX_IDLE {
            pool.idle.push_back(Idle {
                sender,
                since: Instant::now(),
            });
        }
        if !pool.reaper && !pool.idle.is_empty() {
            pool.reaper = true;
            tokio::spawn(reap(shared.clone(), self.idle_timeout));
        }
    }

    /// A new connection, driven by a task of the calling runtime.
    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, Failure> {
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
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Failure::NotSent(format!("cannot connect: {}", source_text(&e))))?;
        // Ends when the provider closes the connection, or once the sender is dropped.
        tokio::spawn(connection);
        Ok(sender)
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
        let Ok(uri) = Uri::try_from(path_and_query) else {
            return Reply::Failed {
                sent: NoResponse::NotSent,
                error: format!("cannot build an upstream request for {path_and_query:?}"),
            };
        };
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method.clone();
        *request.uri_mut() = uri;
        *request.headers_mut() = headers.clone();
        request
            .headers_mut()
            .insert(header::HOST, self.host.clone());
        // Set once a request may have been written: a deadline that passes before, while
        // connecting, leaves the request certainly unsent.
        let written = AtomicBool::new(false);
        let exchange = self.exchange(request, &written);
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
        mut request: Request<Full<Bytes>>,
        written: &AtomicBool,
    ) -> Result<Reply, Failure> {
        loop {
            let (mut sender, reused) = match self.checkout() {
                Some(sender) => (sender, true),
                // Boxed: opening a connection is the rare path (connections are kept), and its
                // handshake's state inline would make every request's task larger.
                None => (Box::pin(self.connect()).await?, false),
            };
            written.store(true, Ordering::Relaxed);
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    let body = Limited::new(body, MAX_RESPONSE_BYTES)
                        .collect()
                        .await
                        .map_err(|e| Failure::MaybeSent(format!("response body failed: {e}")))?
                        .to_bytes();
                    self.checkin(sender);
                    return Ok(Reply::Response {
                        status: parts.status.as_u16(),
                        headers: parts.headers,
                        body,
                    });
                }
                Err(mut e) => match e.take_message() {
                    // A pooled connection the provider closed while it was idle hands the request
                    // back unwritten: it goes on another connection.
                    Some(unsent) if reused => {
                        written.store(false, Ordering::Relaxed);
                        request = unsent;
                        continue;
                    }
                    Some(_) => {
                        return Err(Failure::NotSent(format!(
                            "cannot send: {}",
                            source_text(e.error())
                        )))
                    }
                    None => {
                        return Err(Failure::MaybeSent(format!(
                            "request failed: {}",
                            source_text(e.error())
                        )))
                    }
                },
            }
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

/// The innermost cause: hyper's outer errors say little ("connection closed before message
/// completed" is the useful part).
fn source_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(inner) = cause {
        text = format!("{text}: {inner}");
        cause = inner.source();
    }
    text
}

/// Headers that belong to one connection, not to the message (RFC 9110 §7.6.1), plus those the
/// client or hyper sets for the next hop.
const HOP_BY_HOP: [HeaderName; 11] = [
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
];

/// Removes the headers not to pass on: hop-by-hop ones and those the `Connection` header names.
pub fn keep_end_to_end(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    // A message has a handful of headers: looking at each is cheaper than looking up every name.
    let dropped: Vec<HeaderName> = headers
        .keys()
        .filter(|name| HOP_BY_HOP.contains(name) || named.contains(name))
        .cloned()
        .collect();
    for name in dropped {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use hyper::header::HeaderValue;

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
}
