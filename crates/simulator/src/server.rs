//! Sockets, time and signals: accepting connections, reading bodies, carrying out each plan (answer,
//! answer late, hold, reset), one log line per request, and a shutdown that never waits on a held
//! connection.

use std::error::Error;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use payerr_server::connection::Connections;
use payerr_server::listener::{per_core, Listener, Serving};
use payerr_server::log::{Field, Logger};
use payerr_server::LogLevel;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::provider::{Decision, Plan, Provider, Reply, Request as Play};
use crate::rejection::Rejection;

/// Largest request body read; a provider's request is far smaller.
const MAX_BODY: usize = 1024 * 1024;

/// Time a client gets to send a request head, and then its body.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// On SIGTERM or SIGINT, how long answers in flight get to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why a connection ends without an answer: the plan said so, or the server is stopping.
#[derive(Debug)]
struct NoAnswer(&'static str);

impl fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Error for NoAnswer {}

/// Everything the connections share.
struct State {
    provider: Provider,
    logger: Arc<Logger>,
    /// Becomes true when the server stops: held connections let go, slow answers go out at once.
    stopping: watch::Receiver<bool>,
}

impl State {
    async fn stopped(&self) {
        let mut stopping = self.stopping.clone();
        // An error means the sender is gone, which also means the server is stopping.
        let _ = stopping.wait_for(|stop| *stop).await;
    }

    async fn handle(
        &self,
        req: Request<Incoming>,
        reset: &AtomicBool,
    ) -> Result<Response<Full<Bytes>>, NoAnswer> {
        let started = Instant::now();
        let (parts, body) = req.into_parts();
        let target = payerr::pan::mask_pans(parts.uri.path_and_query().map_or("/", |p| p.as_str()))
            .into_owned();
        let decision = match read_body(body, &parts.headers, CLIENT_TIMEOUT).await {
            Ok(body) => self.provider.decide(&Play {
                method: &parts.method,
                path: parts.uri.path(),
                headers: &parts.headers,
                body: &body,
            }),
            Err(r) => Decision {
                plan: Plan::Answer {
                    reply: Reply::rejection(&r),
                    delay: None,
                },
                fault: None,
                operation: None,
            },
        };
        // Ids come from paths and bodies, so they may hold a card number too.
        let operation = decision.operation.as_deref().map(payerr::pan::mask_pans);
        let log = |status: Option<u16>| {
            let mut fields = vec![
                ("method", Field::Str(parts.method.as_str())),
                ("target", Field::Str(&target)),
            ];
            if let Some(status) = status {
                fields.push(("status", Field::U64(status.into())));
            }
            if let Some(fault) = decision.fault {
                fields.push(("fault", Field::Str(fault.name())));
            }
            if let Some(id) = &operation {
                fields.push(("operation", Field::Str(id)));
            }
            let elapsed = started.elapsed().as_micros() as u64;
            fields.push(("duration_us", Field::U64(elapsed)));
            self.logger.log(LogLevel::Info, "request", &fields);
        };
        match &decision.plan {
            Plan::Answer { reply, delay } => {
                if let Some(delay) = delay {
                    // Stopping the server sends slow answers at once rather than making it wait.
                    tokio::select! {
                        _ = tokio::time::sleep(*delay) => {}
                        _ = self.stopped() => {}
                    }
                }
                log(Some(reply.status));
                Ok(response(reply))
            }
            Plan::Hold => {
                log(None);
                // hyper drops this future when the client closes the connection.
                self.stopped().await;
                Err(NoAnswer("held connection released on shutdown"))
            }
            Plan::Reset => {
                log(None);
                reset.store(true, Ordering::Relaxed);
                Err(NoAnswer("connection reset as asked"))
            }
        }
    }
}

/// Reads at most [`MAX_BODY`] bytes; a declared or actual larger body is a 413, and a body that has
/// not come whole within `time` a 408 (else a client sending less than its `Content-Length` would
/// hold its connection and task for ever).
async fn read_body<B>(
    body: B,
    headers: &hyper::HeaderMap,
    time: Duration,
) -> Result<Bytes, Rejection>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn Error + Send + Sync>>,
{
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(Rejection::body_too_large(MAX_BODY));
    }
    let Ok(read) = tokio::time::timeout(time, Limited::new(body, MAX_BODY).collect()).await else {
        return Err(Rejection::request_timeout(time));
    };
    match read {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(Rejection::body_too_large(MAX_BODY)),
        Err(e) => Err(Rejection::unreadable_body(&e.to_string())),
    }
}

fn response(reply: &Reply) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(reply.body.clone()));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(reply.content_type),
    );
    if let Some(seconds) = reply.retry_after_s {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if let Some(allow) = reply.allow {
        headers.insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    if reply.close {
        // hyper closes the connection after an answer that says so (RFC 9110 §15.5.9).
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A connection that can be closed with a TCP RST: once `reset` is set, shutting down writes
/// nothing (no FIN) and dropping closes the socket with `SO_LINGER` 0, which sends the RST.
struct ResettableStream {
    stream: TcpStream,
    reset: Arc<AtomicBool>,
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.reset.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.reset.load(Ordering::Relaxed) {
            // Zero linger never blocks: close() discards what is unsent and sends the RST.
            let _ = self.stream.set_zero_linger();
        }
    }
}

/// Serves until SIGTERM or SIGINT.
pub(crate) async fn serve(
    addr: SocketAddr,
    provider: Provider,
    logger: Arc<Logger>,
) -> Result<(), String> {
    let listener = Listener::bind(addr, false).await?;
    let (stop, stopping) = watch::channel(false);
    let state = Arc::new(State {
        provider,
        logger: logger.clone(),
        stopping,
    });
    logger.log(
        LogLevel::Info,
        "listening",
        &[
            ("addr", Field::Str(&listener.local.to_string())),
            ("dialect", Field::Str(&state.provider.dialect().id)),
            ("version", Field::Str(env!("CARGO_PKG_VERSION"))),
        ],
    );
    let serving = Serving {
        logger: &logger,
        header_read_timeout: CLIENT_TIMEOUT,
        grace: SHUTDOWN_GRACE,
        threading: per_core(),
    };
    let serving_state = state.clone();
    let connect = move |stream, connections: &Connections| {
        let reset = Arc::new(AtomicBool::new(false));
        let io = TokioIo::new(ResettableStream {
            stream,
            reset: reset.clone(),
        });
        let state = serving_state.clone();
        let service = service_fn(move |req| {
            let (state, reset) = (state.clone(), reset.clone());
            async move { state.handle(req, &reset).await }
        });
        connections.serve(io, service)
    };
    // Held connections (the timeout fault) are released when stopping, so the drain never waits on
    // them.
    let release = || {
        let _ = stop.send(true);
    };
    listener.serve(serving, connect, || {}, release).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::{Body, Frame};

    /// A body that brings its first byte and never the rest, as a client sending less than its
    /// `Content-Length` does.
    struct Stalled {
        sent: bool,
    }

    impl Body for Stalled {
        type Data = Bytes;
        type Error = io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
            if self.sent {
                return Poll::Pending;
            }
            self.sent = true;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"{")))))
        }
    }

    fn read(body: impl Body<Data = Bytes, Error = io::Error>) -> Result<Bytes, Rejection> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        let time = Duration::from_millis(50);
        // Bounded here too, so that a read_body that never gives up fails the test, not hangs it.
        let headers = hyper::HeaderMap::new();
        let read = async {
            tokio::time::timeout(Duration::from_secs(10), read_body(body, &headers, time)).await
        };
        runtime
            .block_on(read)
            .expect("read_body answers within its time")
    }

    #[test]
    fn a_body_that_does_not_come_whole_in_time_is_a_408_that_closes_the_connection() {
        let rejection = read(Stalled { sent: false }).expect_err("times out");
        assert_eq!(
            (rejection.status, rejection.code, rejection.close),
            (408, "request_timeout", true)
        );
        let answer = response(&Reply::rejection(&rejection));
        assert_eq!(answer.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(answer.headers()[header::CONNECTION], "close");
    }

    #[test]
    fn a_whole_body_is_read_and_answers_keep_the_connection() {
        let body =
            http_body_util::Full::new(Bytes::from_static(b"{}")).map_err(|never| match never {});
        assert_eq!(read(body).expect("read"), "{}");
        let answer = response(&Reply::rejection(&Rejection::body_too_large(1)));
        assert!(answer.headers().get(header::CONNECTION).is_none());
    }
}
