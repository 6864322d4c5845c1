//! Serving one connection: hyper's HTTP/1.1 settings, the time a client gets to send each request
//! head, and the graceful stop that tells every connection to finish its request and close.
//!
//! Both used to be hyper's and hyper-util's, at about 1,500 instructions per request in the gateway
//! (bench/README.md): hyper's header-read timeout allocates a timer and enters it in Tokio's timer
//! wheel for every request head (and takes it out again), and hyper-util's `GracefulShutdown` polls a
//! `watch` channel, taking its lock, every time a connection is polled. Here a connection has one
//! timer for its whole life, moved only when it fires, and a request costs the head clock two
//! stores and a reading of the time; the stop and the timer are given the connection's waker once.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::rt::{Read, Write};
use hyper::server::conn::http1;
use hyper::service::{HttpService, Service};
use hyper::{Request, Response};
use pin_project_lite::pin_project;
use tokio::sync::futures::OwnedNotified;
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

/// The connections of one runtime: how each is served, and their graceful stop.
pub struct Connections {
    builder: http1::Builder,
    head_timeout: Duration,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// Set when the stop begins, before `stop` wakes the connections.
    stopping: AtomicBool,
    stop: Arc<Notify>,
    /// Served connections that have not ended.
    open: AtomicUsize,
    none_open: Notify,
}

/// Why a connection ended other than by closing normally.
#[derive(Debug)]
pub enum ConnectionError {
    /// hyper's: a malformed request, a reset, a closed socket.
    Http(hyper::Error),
    /// The client sent no complete request head within this time after the connection opened or
    /// its previous answer.
    HeadTimeout(Duration),
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionError::Http(e) => e.fmt(f),
            ConnectionError::HeadTimeout(timeout) => write!(
                f,
                "no request head within {} ms; the connection is closed",
                timeout.as_millis()
            ),
        }
    }
}

impl StdError for ConnectionError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            ConnectionError::Http(e) => Some(e),
            ConnectionError::HeadTimeout(_) => None,
        }
    }
}

impl Connections {
    /// Connections whose clients get `head_timeout` to send each request head: from the moment
    /// the connection opens, and from each answer on (so an idle kept-alive connection, or a
    /// client that takes that long to read its answer, is closed too).
    pub fn new(head_timeout: Duration) -> Connections {
        let mut builder = http1::Builder::new();
        // The head timeout is ours (`Served`); hyper's would cost a timer per request.
        builder.header_read_timeout(None);
        Connections {
            builder,
            head_timeout,
            shared: Arc::default(),
        }
    }

    /// Serves HTTP/1.1 on `io` with `service` until the connection closes, the client is too slow
    /// with a request head, or the stop (told to finish, at once if the stop has begun).
    ///
    /// The wait for the next head starts when the service's answer is ready. The servers here
    /// answer with whole bodies, which hyper has then taken; a streamed body that took longer than
    /// the head timeout would be cut.
    pub fn serve<I, S, B>(&self, io: I, service: S) -> Served<I, S>
    where
        S: Service<Request<Incoming>, Response = Response<B>>,
        S::Error: Into<Box<dyn StdError + Send + Sync>>,
        I: Read + Write + Unpin,
        B: Body + 'static,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        self.shared.open.fetch_add(1, Ordering::AcqRel);
        let clock = Arc::new(HeadClock::new());
        let service = Timed {
            service,
            clock: Arc::clone(&clock),
        };
        Served {
            connection: self.builder.serve_connection(io, service),
            // Made now, it sees a stop that begins before the first poll.
            stop: Arc::clone(&self.shared.stop).notified_owned(),
            head_timer: tokio::time::sleep_until(clock.opened + self.head_timeout),
            clock,
            head_timeout: self.head_timeout,
            waker: None,
            told: false,
            open: Open(Arc::clone(&self.shared)),
        }
    }

    /// Tells every connection to finish and close, and waits until none is open. (Dropped without
    /// it, the group tells none: the runtime's end closes them.)
    pub async fn shutdown(self) {
        let shared = self.shared;
        shared.stopping.store(true, Ordering::Release);
        shared.stop.notify_waiters();
        loop {
            // Made before the count is read: a last connection ending in between still wakes it.
            let none_open = shared.none_open.notified();
            if shared.open.load(Ordering::Acquire) == 0 {
                return;
            }
            none_open.await;
        }
    }
}

/// When a connection began to wait for its next request head, or that it is serving one.
struct HeadClock {
    opened: Instant,
    /// Nanoseconds from `opened`, or [`SERVING`].
    waiting_since: AtomicU64,
}

/// `waiting_since` while a request is being answered: no head is awaited.
const SERVING: u64 = u64::MAX;

impl HeadClock {
    fn new() -> HeadClock {
        HeadClock {
            opened: Instant::now(),
            waiting_since: AtomicU64::new(0),
        }
    }

    /// When the connection began to wait for a head; `None` while it serves a request.
    fn waiting_since(&self) -> Option<Instant> {
        // One connection's requests come one after another, on its own task: no ordering needed.
        match self.waiting_since.load(Ordering::Relaxed) {
            SERVING => None,
            ns => Some(self.opened + Duration::from_nanos(ns)),
        }
    }
}

/// The connection's service, keeping its [`HeadClock`].
pub struct Timed<S> {
    service: S,
    clock: Arc<HeadClock>,
}

impl<S, B> Service<Request<Incoming>> for Timed<S>
where
    S: Service<Request<Incoming>, Response = Response<B>>,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = TimedCall<S::Future>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        // hyper calls the service once the head is read whole.
        self.clock.waiting_since.store(SERVING, Ordering::Relaxed);
        TimedCall {
            call: self.service.call(request),
            clock: Arc::clone(&self.clock),
        }
    }
}

pin_project! {
    /// A request being answered; its answer starts the wait for the next head.
    pub struct TimedCall<F> {
        #[pin]
        call: F,
        clock: Arc<HeadClock>,
    }
}

impl<F: Future> Future for TimedCall<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let answered = this.call.poll(cx);
        if answered.is_ready() {
            let since = this.clock.opened.elapsed().as_nanos();
            let since = u64::try_from(since).unwrap_or(SERVING - 1);
            this.clock.waiting_since.store(since, Ordering::Relaxed);
        }
        answered
    }
}

pin_project! {
    /// A connection being served (see [`Connections::serve`]).
    pub struct Served<I, S>
    where
        Timed<S>: HttpService<Incoming>,
    {
        #[pin]
        connection: http1::Connection<I, Timed<S>>,
        #[pin]
        stop: OwnedNotified,
        // Set for a head timeout after the last answer; moved on only when it fires.
        #[pin]
        head_timer: Sleep,
        clock: Arc<HeadClock>,
        head_timeout: Duration,
        // The waker `stop` and `head_timer` hold: a connection's task keeps one waker for its
        // whole life, so they are polled (which takes a lock) once, and again only if it changes.
        waker: Option<Waker>,
        // Whether the connection was told to finish.
        told: bool,
        // Last: the connection (and whatever it hands on, such as a lingering request's count) is
        // dropped before it leaves the count, so a stop that saw the count reach zero sees the
        // rest too (listener.rs settles after draining).
        open: Open,
    }
}

/// One open connection in the count; its drop, however the connection ends, takes it out.
struct Open(Arc<Shared>);

impl Drop for Open {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.none_open.notify_waiters();
        }
    }
}

impl<I, S, B> Future for Served<I, S>
where
    S: Service<Request<Incoming>, Response = Response<B>>,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    I: Read + Write + Unpin,
    B: Body + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Output = Result<(), ConnectionError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if !this.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *this.waker = Some(cx.waker().clone());
            // Whether they are ready is for the flag and `is_elapsed` to say. The timer is polled
            // before the connection, which spends the task's cooperative budget: a timer polled
            // without budget would not be entered in the wheel, and no head timeout would exist.
            let _ = this.stop.as_mut().poll(cx);
            let _ = this.head_timer.as_mut().poll(cx);
        }
        if !*this.told && this.open.0.stopping.load(Ordering::Acquire) {
            *this.told = true;
            this.connection.as_mut().graceful_shutdown();
        }
        // The connection first: a head that came in time is read, even when this poll comes after
        // the deadline (the task had to wait for a core).
        let served = this.connection.poll(cx).map_err(ConnectionError::Http);
        if served.is_pending() {
            while this.head_timer.is_elapsed() {
                let now = Instant::now();
                let deadline = match this.clock.waiting_since() {
                    Some(since) => since + *this.head_timeout,
                    // A request is being answered: no head is due; look again a timeout later.
                    None => now + *this.head_timeout,
                };
                if deadline <= now {
                    return Poll::Ready(Err(ConnectionError::HeadTimeout(*this.head_timeout)));
                }
                this.head_timer.as_mut().reset(deadline);
                // A deadline passed by now fires at once, waking no one: look again.
                if this.head_timer.as_mut().poll(cx).is_pending() {
                    break;
                }
            }
        }
        served
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::task::JoinHandle;

    const PAY: &[u8] = b"POST /pay HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n";
    const LONG: Duration = Duration::from_secs(30);

    /// A client and the server's end of its connection.
    async fn connected() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let client = TcpStream::connect(listener.local_addr().expect("an address"))
            .await
            .expect("connects");
        let (stream, _) = listener.accept().await.expect("accepts");
        (client, stream)
    }

    /// The server's end served, each request answered "paid" after `delay`.
    fn served(
        connections: &Connections,
        stream: TcpStream,
        delay: Duration,
    ) -> impl Future<Output = Result<(), ConnectionError>> + Send + 'static {
        let service = service_fn(move |_req| async move {
            tokio::time::sleep(delay).await;
            Ok::<_, std::convert::Infallible>(Response::new(String::from("paid")))
        });
        connections.serve(TokioIo::new(stream), service)
    }

    /// A client of a connection served on a task of its own, which gives how it ended.
    async fn serve_one(
        connections: &Connections,
        delay: Duration,
    ) -> (TcpStream, JoinHandle<Result<(), ConnectionError>>) {
        let (client, stream) = connected().await;
        (client, tokio::spawn(served(connections, stream, delay)))
    }

    async fn read_to_end(client: &mut TcpStream) -> String {
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut answer))
            .await
            .expect("the server closes the connection")
            .expect("reads");
        String::from_utf8_lossy(&answer).into_owned()
    }

    /// Sends a request and reads its answer, leaving the connection open.
    async fn pay(client: &mut TcpStream) {
        client.write_all(PAY).await.expect("writes");
        pay_answered(client).await;
    }

    /// Reads the answer to a request sent.
    async fn pay_answered(client: &mut TcpStream) {
        let mut answer = Vec::new();
        while !answer.ends_with(b"paid") {
            let mut chunk = [0; 512];
            let n = client.read(&mut chunk).await.expect("reads");
            assert!(n > 0, "answered before closing");
            answer.extend_from_slice(&chunk[..n]);
        }
    }

    /// An idle connection that never had a request, one that had one and waits for the next, and
    /// one with a request in flight: the stop closes the first two and lets the third answer.
    async fn the_stop_closes_idle_connections_and_lets_a_request_in_flight_finish() {
        let connections = Connections::new(LONG);
        let (mut fresh, _) = serve_one(&connections, Duration::ZERO).await;
        let (mut kept, _) = serve_one(&connections, Duration::ZERO).await;
        pay(&mut kept).await;
        let (mut busy, _) = serve_one(&connections, Duration::from_millis(200)).await;
        busy.write_all(PAY).await.expect("writes");
        tokio::time::sleep(Duration::from_millis(50)).await;

        let stop = tokio::spawn(connections.shutdown());
        assert_eq!(
            read_to_end(&mut fresh).await,
            "",
            "the fresh connection is closed"
        );
        assert_eq!(
            read_to_end(&mut kept).await,
            "",
            "the kept-alive one is closed"
        );
        let answer = read_to_end(&mut busy).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.ends_with("paid"), "{answer}");
        tokio::time::timeout(Duration::from_secs(5), stop)
            .await
            .expect("the stop ends with the last connection")
            .expect("stops");
    }

    #[tokio::test]
    async fn on_one_thread_the_stop_closes_idle_connections_and_lets_a_request_in_flight_finish() {
        the_stop_closes_idle_connections_and_lets_a_request_in_flight_finish().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_two_threads_the_stop_closes_idle_connections_and_lets_a_request_in_flight_finish() {
        the_stop_closes_idle_connections_and_lets_a_request_in_flight_finish().await;
    }

    #[tokio::test]
    async fn a_connection_served_after_the_stop_began_is_told_at_once() {
        let connections = Connections::new(LONG);
        let (mut client, stream) = connected().await;
        // Made before the stop, first polled after it.
        let early = served(&connections, stream, Duration::ZERO);
        connections.shared.stopping.store(true, Ordering::Release);
        connections.shared.stop.notify_waiters();
        let early = tokio::spawn(early);
        let (mut late, later) = serve_one(&connections, Duration::ZERO).await;
        assert_eq!(read_to_end(&mut client).await, "");
        assert_eq!(read_to_end(&mut late).await, "");
        early.await.expect("ends").expect("closes normally");
        later.await.expect("ends").expect("closes normally");
        assert_eq!(connections.shared.open.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn a_connection_dropped_unpolled_or_aborted_leaves_no_count_behind() {
        let connections = Connections::new(LONG);
        let (_client, stream) = connected().await;
        let unpolled = served(&connections, stream, Duration::ZERO);
        let (_other, task) = serve_one(&connections, Duration::ZERO).await;
        assert_eq!(connections.shared.open.load(Ordering::Acquire), 2);
        drop(unpolled);
        task.abort();
        let _ = task.await;
        tokio::time::timeout(Duration::from_secs(5), connections.shutdown())
            .await
            .expect("no connection is left to wait for");
    }

    #[tokio::test]
    async fn the_stop_waits_for_no_connection_when_none_is_open() {
        tokio::time::timeout(Duration::from_secs(5), Connections::new(LONG).shutdown())
            .await
            .expect("returns at once");
    }

    const HEAD_TIMEOUT: Duration = Duration::from_millis(300);

    /// Waits for the connection to end by its head timeout; how long that was after `since`.
    async fn cut_off(
        task: JoinHandle<Result<(), ConnectionError>>,
        since: Instant,
        timeout: Duration,
    ) -> Duration {
        let end = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the connection ends")
            .expect("its task ends");
        match end {
            Err(ConnectionError::HeadTimeout(t)) => assert_eq!(t, timeout),
            other => panic!("ended by {other:?}, not its head timeout"),
        }
        since.elapsed()
    }

    #[tokio::test]
    async fn a_client_that_sends_no_whole_head_in_time_is_cut_off() {
        let connections = Connections::new(HEAD_TIMEOUT);
        let start = Instant::now();
        let (mut silent, quiet) = serve_one(&connections, Duration::ZERO).await;
        let (mut slow, slowed) = serve_one(&connections, Duration::ZERO).await;
        // Half a head, then nothing.
        slow.write_all(b"POST /pay HTTP/1.1\r\nhost:")
            .await
            .expect("writes");
        for (client, task) in [(&mut silent, quiet), (&mut slow, slowed)] {
            let after = cut_off(task, start, HEAD_TIMEOUT).await;
            assert!(after >= HEAD_TIMEOUT, "cut after {after:?}");
            assert_eq!(read_to_end(client).await, "", "closed without an answer");
        }
    }

    const ONE_SECOND: Duration = Duration::from_secs(1);

    /// A connection with a head timeout of one second and answers that take `delay`, sent
    /// `requests` requests `gap` apart and then left idle: how long after the last answer it was
    /// cut off (measured from when the client read it, a moment after the server sent it).
    async fn cut_after_the_last_answer(delay: Duration, requests: u32, gap: Duration) -> Duration {
        let connections = Connections::new(ONE_SECOND);
        let (mut client, task) = serve_one(&connections, delay).await;
        for _ in 0..requests {
            tokio::time::sleep(gap).await;
            pay(&mut client).await;
        }
        cut_off(task, Instant::now(), ONE_SECOND).await
    }

    #[tokio::test]
    async fn each_answer_gives_the_client_the_time_again() {
        // A request every quarter of the timeout, for two and a half timeouts.
        let after = cut_after_the_last_answer(Duration::ZERO, 10, ONE_SECOND / 4).await;
        assert!(
            after >= ONE_SECOND * 3 / 4,
            "closed {after:?} after the last answer"
        );
    }

    #[tokio::test]
    async fn a_request_being_answered_is_not_cut_and_the_time_counts_from_its_answer() {
        // The answer takes longer than the timeout: the timer fires while it is being made, and
        // again half a timeout after it.
        let after = cut_after_the_last_answer(ONE_SECOND * 3 / 2, 1, Duration::ZERO).await;
        // A timeout after the answer, not two timeouts after the opening (half a timeout later).
        assert!(
            after >= ONE_SECOND * 13 / 20,
            "closed {after:?} after the answer"
        );
    }

    #[tokio::test]
    async fn a_head_that_came_in_time_is_served_even_when_read_after_the_deadline() {
        let timeout = Duration::from_millis(500);
        let connections = Connections::new(timeout);
        let (mut client, _task) = serve_one(&connections, Duration::ZERO).await;
        tokio::time::sleep(timeout * 4 / 5).await;
        client.write_all(PAY).await.expect("writes");
        // The only thread is busy past the deadline: the head and the timer are seen together.
        std::thread::sleep(timeout * 2 / 5);
        pay_answered(&mut client).await;
    }
}
