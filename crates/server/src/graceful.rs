//! The graceful stop of open connections: each watched connection is told to finish the request it
//! is serving and then close, and the stop waits for the last one to end.
//!
//! hyper-util's `GracefulShutdown` does the same, but polls its stop signal (a `watch` channel, whose
//! every poll takes a lock) each time a connection is polled, two or three times per request: about
//! 500 instructions per request in the gateway (bench/README.md). Here a connection registers its
//! task for the signal once, at its first poll, and afterwards reads a flag.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use hyper_util::server::graceful::GracefulConnection;
use pin_project_lite::pin_project;
use tokio::sync::futures::OwnedNotified;
use tokio::sync::Notify;

/// The connections of one runtime, stopped together.
#[derive(Default)]
pub struct Graceful {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// Set when the stop begins, before `stop` wakes the connections.
    stopping: AtomicBool,
    stop: Arc<Notify>,
    /// Watched connections that have not ended.
    open: AtomicUsize,
    none_open: Notify,
}

impl Graceful {
    /// A group with no connection yet.
    pub fn new() -> Graceful {
        Graceful::default()
    }

    /// Serves `connection` until it ends, telling it to finish and close when the stop begins (at
    /// once if it already has).
    pub fn watch<C: GracefulConnection>(&self, connection: C) -> Watched<C> {
        self.shared.open.fetch_add(1, Ordering::AcqRel);
        Watched {
            connection,
            // Made now, it sees a stop that begins before its first poll.
            stop: Arc::clone(&self.shared.stop).notified_owned(),
            waker: None,
            told: false,
            open: Open(Arc::clone(&self.shared)),
        }
    }

    /// Tells every watched connection to finish and close, and waits until none is open. (A group
    /// dropped without it tells none: the runtime's end closes them.)
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

pin_project! {
    /// A connection served under a [`Graceful`] stop.
    pub struct Watched<C> {
        #[pin]
        connection: C,
        #[pin]
        stop: OwnedNotified,
        // The waker `stop` holds: a connection's task keeps one waker for its whole life, so
        // `stop` is polled (which takes its lock) once, and again only if the waker changes.
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

impl<C: GracefulConnection> Future for Watched<C> {
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let mut this = self.project();
        if !*this.told {
            if !this.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *this.waker = Some(cx.waker().clone());
                // Gives the stop this poll's waker; whether it is ready is the flag's to say.
                let _ = this.stop.as_mut().poll(cx);
            }
            if this.open.0.stopping.load(Ordering::Acquire) {
                *this.told = true;
                this.connection.as_mut().graceful_shutdown();
            }
        }
        this.connection.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::task::JoinHandle;

    const PAY: &[u8] = b"POST /pay HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n";

    /// A client and the server's end of its connection.
    async fn connected() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let client = TcpStream::connect(listener.local_addr().expect("an address"))
            .await
            .expect("connects");
        let (stream, _) = listener.accept().await.expect("accepts");
        (client, stream)
    }

    /// The server's end served under `graceful`, each request answered "paid" after `delay`.
    fn watched(
        graceful: &Graceful,
        stream: TcpStream,
        delay: Duration,
    ) -> impl Future<Output = Result<(), hyper::Error>> + Send + 'static {
        let service = service_fn(move |_req| async move {
            tokio::time::sleep(delay).await;
            Ok::<_, std::convert::Infallible>(hyper::Response::new(String::from("paid")))
        });
        graceful.watch(http1::Builder::new().serve_connection(TokioIo::new(stream), service))
    }

    /// A client of a connection served on a task of its own.
    async fn serve_one(graceful: &Graceful, delay: Duration) -> (TcpStream, JoinHandle<()>) {
        let (client, stream) = connected().await;
        let connection = watched(graceful, stream, delay);
        let task = tokio::spawn(async move {
            let _ = connection.await;
        });
        (client, task)
    }

    async fn read_to_end(client: &mut TcpStream) -> String {
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut answer))
            .await
            .expect("the server closes the connection")
            .expect("reads");
        String::from_utf8_lossy(&answer).into_owned()
    }

    /// An idle connection that never had a request, one that had one and waits for the next, and
    /// one with a request in flight: the stop closes the first two and lets the third answer.
    async fn the_stop_closes_idle_connections_and_lets_a_request_in_flight_finish() {
        let graceful = Graceful::new();
        let (mut fresh, _) = serve_one(&graceful, Duration::ZERO).await;
        let (mut kept, _) = serve_one(&graceful, Duration::ZERO).await;
        kept.write_all(PAY).await.expect("writes");
        let mut answer = Vec::new();
        while !answer.ends_with(b"paid") {
            let mut chunk = [0; 512];
            let n = kept.read(&mut chunk).await.expect("reads");
            assert!(n > 0, "answered before closing");
            answer.extend_from_slice(&chunk[..n]);
        }
        let (mut busy, _) = serve_one(&graceful, Duration::from_millis(200)).await;
        busy.write_all(PAY).await.expect("writes");
        tokio::time::sleep(Duration::from_millis(50)).await;

        let stop = tokio::spawn(graceful.shutdown());
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
    async fn a_connection_watched_after_the_stop_began_is_told_at_once() {
        let graceful = Graceful::new();
        let (mut client, stream) = connected().await;
        // Watched before the stop, first polled after it.
        let early = watched(&graceful, stream, Duration::ZERO);
        graceful.shared.stopping.store(true, Ordering::Release);
        graceful.shared.stop.notify_waiters();
        let early = tokio::spawn(early);
        let (mut late, served) = serve_one(&graceful, Duration::ZERO).await;
        assert_eq!(read_to_end(&mut client).await, "");
        assert_eq!(read_to_end(&mut late).await, "");
        let _ = early.await.expect("the connection ends");
        served.await.expect("the connection ends");
        assert_eq!(graceful.shared.open.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn a_connection_dropped_unpolled_or_aborted_leaves_no_count_behind() {
        let graceful = Graceful::new();
        let (_client, stream) = connected().await;
        let unpolled = watched(&graceful, stream, Duration::ZERO);
        let (_other, served) = serve_one(&graceful, Duration::ZERO).await;
        assert_eq!(graceful.shared.open.load(Ordering::Acquire), 2);
        drop(unpolled);
        served.abort();
        let _ = served.await;
        tokio::time::timeout(Duration::from_secs(5), graceful.shutdown())
            .await
            .expect("no connection is left to wait for");
    }

    #[tokio::test]
    async fn the_stop_waits_for_no_connection_when_none_is_open() {
        tokio::time::timeout(Duration::from_secs(5), Graceful::new().shutdown())
            .await
            .expect("returns at once");
    }
}
