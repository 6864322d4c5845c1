//! The accept loop of every payerr server (the service, the simulator, the gateway): accepting
//! connections, serving each on its own task, SIGHUP when asked for, and a graceful stop on SIGTERM
//! or SIGINT that waits a bounded time for the connections still open and for the requests that
//! outlived theirs ([`linger`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::time::Instant;

use crate::config::LogLevel;
use crate::connection::{ConnectionError, Connections};
use crate::log::{Field, Logger};

/// A bound socket with its signal handlers already installed, so that a signal sent as soon as the
/// `listening` line is logged is never missed (nor kills the process).
pub struct Listener {
    listener: TcpListener,
    /// The address bound (the real port when 0 was asked for).
    pub local: SocketAddr,
    hangup: Option<Signal>,
    terminate: Signal,
    interrupt: Signal,
}

/// How the loop serves and stops.
pub struct Serving<'a> {
    /// Where accept errors, connection errors and the stop are logged.
    pub logger: &'a Arc<Logger>,
    /// Time a client gets to send each request head, from the connection's opening and from each
    /// answer (an idle keep-alive connection is closed after it).
    pub header_read_timeout: Duration,
    /// After SIGTERM or SIGINT, how long open connections and lingering requests ([`linger`]) get
    /// to finish.
    pub grace: Duration,
    /// Which threads serve the connections.
    pub threading: Threading,
}

/// Which threads serve the connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threading {
    /// Every connection is a task of the caller's runtime: with a multi-threaded runtime, work
    /// stealing spreads requests of uneven cost (a batch of a thousand normalizations next to a
    /// health check) over all cores.
    Shared,
    /// Connections are dealt round robin to this many threads, each running a single-threaded
    /// runtime that serves its connections whole: every task of a request (the connection, its
    /// handler, a proxy's upstream exchange) stays on one thread, with no hand-offs between threads.
    /// For short, I/O-bound requests, as a proxy's, that is worth a fifth of the throughput and
    /// more on a small machine (bench/README.md). See [`per_core`].
    Dealt(usize),
}

/// [`Threading::Dealt`] with one thread per core.
pub fn per_core() -> Threading {
    Threading::Dealt(cores())
}

/// The number of cores the process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

impl Listener {
    /// Binds `addr` and watches SIGTERM and SIGINT, and SIGHUP when `hangup` (otherwise SIGHUP keeps
    /// its default: it ends the process).
    pub async fn bind(addr: SocketAddr, hangup: bool) -> Result<Listener, String> {
        let signals =
            |kind: SignalKind| signal(kind).map_err(|e| format!("cannot watch signals: {e}"));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let local = listener
            .local_addr()
            .map_err(|e| format!("cannot read the listening address: {e}"))?;
        Ok(Listener {
            listener,
            local,
            hangup: hangup.then(|| signals(SignalKind::hangup())).transpose()?,
            terminate: signals(SignalKind::terminate())?,
            interrupt: signals(SignalKind::interrupt())?,
        })
    }

    /// Serves each accepted connection with the future `connect` makes of it (through the
    /// [`Connections`] it is given, which time request heads and stop connections gracefully) on
    /// the threads `serving.threading` says, calls `on_hangup` on SIGHUP, and on SIGTERM or SIGINT
    /// stops accepting, calls `stopping`, and waits at most the grace period.
    pub async fn serve<C, F>(
        self,
        serving: Serving<'_>,
        connect: C,
        on_hangup: impl Fn(),
        stopping: impl FnOnce(),
    ) where
        C: Fn(TcpStream, &Connections) -> F + Send + Sync + 'static,
        F: Future<Output = Result<(), ConnectionError>> + Send + 'static,
    {
        let Listener {
            listener,
            mut hangup,
            mut terminate,
            mut interrupt,
            ..
        } = self;
        let logger = serving.logger;
        let connect = Arc::new(connect);
        let mut serve = match serving.threading {
            Threading::Shared => Destination::Here(Connections::new(serving.header_read_timeout)),
            Threading::Dealt(count) => match Workers::start(&serving, count, &connect) {
                Ok(workers) => Destination::Dealt(workers, 0),
                Err(e) => {
                    logger.log(
                        LogLevel::Error,
                        "cannot start the worker threads",
                        &[("error", Field::Str(&e))],
                    );
                    return;
                }
            },
        };
        let reason = loop {
            let hangup = async {
                match &mut hangup {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        // Answers are small and written whole: send them at once.
                        let _ = stream.set_nodelay(true);
                        serve.take(stream, &*connect, logger);
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: wait a moment instead of spinning.
                        accept_failed(logger, &e);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                _ = hangup => on_hangup(),
                _ = terminate.recv() => break "SIGTERM",
                _ = interrupt.recv() => break "SIGINT",
            }
        };
        stopping();
        drop(listener);
        logger.log(
            LogLevel::Info,
            "shutting down",
            &[("signal", Field::Str(reason))],
        );
        let deadline = Instant::now() + serving.grace;
        let drained = match serve {
            // A connection task that lets a request linger takes the count as it ends, before
            // the drain sees it gone: settling after the drain misses none.
            Destination::Here(here) => drain(here, serving.grace).await && settle(deadline).await,
            Destination::Dealt(workers, _) => workers.stop(deadline).await,
        };
        if drained {
            logger.log(LogLevel::Info, "stopped", &[]);
        } else {
            logger.log(
                LogLevel::Warn,
                "grace period over; closing the remaining connections and cutting the requests left",
                &[("grace_ms", Field::U64(serving.grace.as_millis() as u64))],
            );
        }
    }
}

/// Where accepted connections go.
enum Destination {
    /// Tasks of the accepting runtime.
    Here(Connections),
    /// Dealt to worker threads; the count of connections dealt so far.
    Dealt(Workers, usize),
}

impl Destination {
    fn take<C, F>(&mut self, stream: TcpStream, connect: &C, logger: &Arc<Logger>)
    where
        C: Fn(TcpStream, &Connections) -> F,
        F: Future<Output = Result<(), ConnectionError>> + Send + 'static,
    {
        match self {
            Destination::Here(here) => spawn_connection(connect(stream, here), logger),
            // The worker registers the socket with its own runtime.
            Destination::Dealt(workers, dealt) => match stream.into_std() {
                Ok(stream) => {
                    if !workers.deal(*dealt, stream) {
                        logger.log(
                            LogLevel::Error,
                            "a worker thread has stopped; its connection is closed",
                            &[("worker", Field::U64((*dealt % workers.queues.len()) as u64))],
                        );
                    }
                    *dealt = dealt.wrapping_add(1);
                }
                Err(e) => accept_failed(logger, &e),
            },
        }
    }
}

/// A connection that could not be taken: accepting it, or handing it to a worker, failed.
fn accept_failed(logger: &Logger, e: &std::io::Error) {
    logger.log(
        LogLevel::Warn,
        "accept failed",
        &[("error", Field::Str(&e.to_string()))],
    );
}

/// Serves one connection on a task of the current runtime.
fn spawn_connection<F>(connection: F, logger: &Arc<Logger>)
where
    F: Future<Output = Result<(), ConnectionError>> + Send + 'static,
{
    let logger = logger.clone();
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            logger.log(
                LogLevel::Debug,
                "connection ended",
                &[("error", Field::Str(&e.to_string()))],
            );
        }
    });
}

/// Waits for the watched connections to finish, at most `grace`; whether they all did.
async fn drain(connections: Connections, grace: Duration) -> bool {
    tokio::select! {
        _ = connections.shutdown() => true,
        _ = tokio::time::sleep(grace) => false,
    }
}

/// Requests still running without a connection, and the wake-up of a stop waiting for none.
struct Lingerers {
    count: AtomicUsize,
    none_left: Notify,
}

/// One count per process, so that taking it costs a request nothing until it lingers: servers
/// sharing a process (in tests) each wait for the other's too, within their grace period.
static LINGERERS: Lingerers = Lingerers {
    count: AtomicUsize::new(0),
    none_left: Notify::const_new(),
};

/// A request that goes on after its connection closed, as a gateway request whose client hung up
/// goes on to the provider. Until this is dropped, a graceful stop waits for it as for an open
/// connection (within the grace period); with [`Threading::Dealt`], the worker runtimes keep
/// running until then.
#[must_use = "the request counts as lingering only while this is held"]
#[derive(Debug)]
pub struct Lingering(());

/// Counts a request that has lost its connection but goes on; see [`Lingering`].
pub fn linger() -> Lingering {
    LINGERERS.count.fetch_add(1, Ordering::SeqCst);
    Lingering(())
}

impl Drop for Lingering {
    fn drop(&mut self) {
        if LINGERERS.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            LINGERERS.none_left.notify_waiters();
        }
    }
}

/// Waits until no request lingers, at most until `deadline`; whether none was left.
async fn settle(deadline: Instant) -> bool {
    let none_left = async {
        loop {
            // Registered before the count is read: a last drop in between still wakes it.
            let notified = LINGERERS.none_left.notified();
            if LINGERERS.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    };
    tokio::time::timeout_at(deadline, none_left).await.is_ok()
}

/// The worker threads, each with its runtime and the queue of connections dealt to it.
struct Workers {
    queues: Vec<mpsc::UnboundedSender<std::net::TcpStream>>,
    /// Whether each worker drained its connections within the grace period.
    drained: Vec<oneshot::Receiver<bool>>,
    /// Dropped once every worker has drained (or died): then they stop their runtimes.
    release: watch::Sender<()>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Workers {
    fn start<C, F>(serving: &Serving<'_>, count: usize, connect: &Arc<C>) -> Result<Workers, String>
    where
        C: Fn(TcpStream, &Connections) -> F + Send + Sync + 'static,
        F: Future<Output = Result<(), ConnectionError>> + Send + 'static,
    {
        let count = count.max(1);
        let (release, released) = watch::channel(());
        let mut workers = Workers {
            queues: Vec::with_capacity(count),
            drained: Vec::with_capacity(count),
            release,
            threads: Vec::with_capacity(count),
        };
        for index in 0..count {
            let (queue, incoming) = mpsc::unbounded_channel();
            let (drained, drained_rx) = oneshot::channel();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start a worker's runtime: {e}"))?;
            let worker = Worker {
                incoming,
                connect: connect.clone(),
                connections: Connections::new(serving.header_read_timeout),
                logger: serving.logger.clone(),
                grace: serving.grace,
            };
            // Every worker keeps its runtime running until all have drained: a resource one worker
            // made (a pooled store connection) may be in use on another, and only its own runtime
            // drives it.
            let mut released = released.clone();
            let thread = std::thread::Builder::new()
                .name(format!("payerr-worker-{index}"))
                .spawn(move || {
                    WORKER.set(Some(index));
                    runtime.block_on(async move {
                        let _ = drained.send(worker.run().await);
                        // Ends when the sender is dropped.
                        let _ = released.changed().await;
                    });
                    // Connections still open after the grace period are dropped here.
                    runtime.shutdown_timeout(Duration::from_secs(1));
                })
                .map_err(|e| format!("cannot start a worker thread: {e}"))?;
            workers.queues.push(queue);
            workers.drained.push(drained_rx);
            workers.threads.push(thread);
        }
        Ok(workers)
    }

    /// Hands a connection to the `n`-th worker (modulo their number); false when that worker is
    /// gone (the connection is then closed).
    fn deal(&self, n: usize, stream: std::net::TcpStream) -> bool {
        // A worker's queue closes only when it stops, which happens after the accept loop ends,
        // unless the worker died.
        self.queues[n % self.queues.len()].send(stream).is_ok()
    }

    /// Stops every worker and waits for them; whether all drained, and no request lingered, by
    /// `deadline` (the end of the grace period).
    async fn stop(self, deadline: Instant) -> bool {
        let Workers {
            queues,
            drained,
            release,
            threads,
        } = self;
        drop(queues);
        let mut all = true;
        for worker in drained {
            // A worker that died answers nothing: it did not drain.
            all &= worker.await.unwrap_or(false);
        }
        // A lingering request runs on a worker's runtime: the runtimes stop only after it.
        all &= settle(deadline).await;
        drop(release);
        // The workers are past their grace period: only their runtimes' shutdown is left.
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
        all
    }
}

/// One worker thread's loop.
struct Worker<C> {
    incoming: mpsc::UnboundedReceiver<std::net::TcpStream>,
    connect: Arc<C>,
    connections: Connections,
    logger: Arc<Logger>,
    grace: Duration,
}

impl<C, F> Worker<C>
where
    C: Fn(TcpStream, &Connections) -> F + Send + Sync + 'static,
    F: Future<Output = Result<(), ConnectionError>> + Send + 'static,
{
    /// Serves the connections dealt until the queue closes, then drains; whether it drained within
    /// the grace period.
    async fn run(mut self) -> bool {
        while let Some(stream) = self.incoming.recv().await {
            match TcpStream::from_std(stream) {
                Ok(stream) => {
                    spawn_connection((self.connect)(stream, &self.connections), &self.logger)
                }
                Err(e) => accept_failed(&self.logger, &e),
            }
        }
        drain(self.connections, self.grace).await
    }
}

thread_local! {
    /// The index of the worker thread this is, on worker threads.
    static WORKER: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// The index of the worker thread the caller runs on (`0..n` for [`Threading::Dealt`]`(n)`), `None`
/// off the worker threads. Resources that belong to one runtime (pooled connections) are kept per
/// worker with it.
pub fn current_worker() -> Option<usize> {
    WORKER.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test: the count is the process's, and tests run in parallel.
    #[test]
    fn settle_waits_for_lingering_requests_until_its_deadline() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let soon = || Instant::now() + Duration::from_millis(50);
            assert!(settle(soon()).await, "nothing lingers");
            let lingering = linger();
            assert!(!settle(soon()).await, "waited for until the deadline");
            let ends = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                drop(lingering);
            });
            let long = Instant::now() + Duration::from_secs(30);
            assert!(settle(long).await, "the wait ends with the last one");
            ends.await.expect("the request ends");
        });
    }
}
