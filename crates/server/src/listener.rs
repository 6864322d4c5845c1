//! The accept loop of every payerr server (the service, the simulator, the gateway): accepting
//! connections, serving each on its own task, SIGHUP when asked for, and a graceful stop on SIGTERM
//! or SIGINT that waits a bounded time for the connections still open.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::config::LogLevel;
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
    /// Time a client gets to send a request head.
    pub header_read_timeout: Duration,
    /// After SIGTERM or SIGINT, how long open connections get to finish.
    pub grace: Duration,
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

    /// Serves each accepted connection with the future `connect` makes of it (through the builder
    /// and the graceful-shutdown watcher it is given), calls `on_hangup` on SIGHUP, and on SIGTERM or
    /// SIGINT stops accepting, calls `stopping`, and waits at most the grace period.
    pub async fn serve<C, F>(
        self,
        serving: Serving<'_>,
        mut connect: C,
        on_hangup: impl Fn(),
        stopping: impl FnOnce(),
    ) where
        C: FnMut(TcpStream, &http1::Builder, &GracefulShutdown) -> F,
        F: Future<Output = Result<(), hyper::Error>> + Send + 'static,
    {
        let Listener {
            listener,
            mut hangup,
            mut terminate,
            mut interrupt,
            ..
        } = self;
        let logger = serving.logger;
        let graceful = GracefulShutdown::new();
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(serving.header_read_timeout);
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
                        let connection = connect(stream, &builder, &graceful);
                        let logger = logger.clone();
                        tokio::spawn(async move {
                            if let Err(e) = connection.await {
                                logger.log(LogLevel::Debug, "connection ended", &[("error", Field::Str(&e.to_string()))]);
                            }
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: wait a moment instead of spinning.
                        logger.log(LogLevel::Warn, "accept failed", &[("error", Field::Str(&e.to_string()))]);
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
        tokio::select! {
            _ = graceful.shutdown() => logger.log(LogLevel::Info, "stopped", &[]),
            _ = tokio::time::sleep(serving.grace) => logger.log(
                LogLevel::Warn,
                "grace period over; closing the remaining connections",
                &[("grace_ms", Field::U64(serving.grace.as_millis() as u64))],
            ),
        }
    }
}
