//! A request's handling that a client hanging up cannot cut short.
//!
//! hyper drops a request's future when its connection closes. For the gateway that would cancel an
//! upstream call half way: the attempt unrecorded, its idempotency key stranded, its outcome known
//! to nobody. [`Detachable`] runs the handling on the connection's own task, as any future, and
//! only if it is dropped before the end hands the rest to a task of its own, which finishes it.
//! Spawning a task for every request did the same at a cost paid by every request; this pays it
//! only for the requests whose client went away. Such a request counts as lingering
//! ([`payerr_server::listener::linger`]): a graceful stop waits for it, within its grace period,
//! so that its attempts are recorded and its answer stored before the gateway exits.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use payerr_server::listener::linger;

/// Runs `handling` to its end even if this future is dropped first. Resolves to its output, or to
/// `Err(Panicked)` when it panicked (the panic is caught here, as a spawned task's would be).
pub(crate) struct Detachable<F: Future + Send + 'static>
where
    F::Output: Send,
{
    /// Boxed so that it can be handed to a task of its own half way; `None` once finished.
    handling: Option<Pin<Box<F>>>,
}

/// The handling panicked.
#[derive(Debug)]
pub(crate) struct Panicked;

impl<F: Future + Send + 'static> Detachable<F>
where
    F::Output: Send,
{
    pub(crate) fn new(handling: F) -> Detachable<F> {
        Detachable {
            handling: Some(Box::pin(handling)),
        }
    }
}

impl<F: Future + Send + 'static> Future for Detachable<F>
where
    F::Output: Send,
{
    type Output = Result<F::Output, Panicked>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(handling) = self.handling.as_mut() else {
            // Polled again after it resolved: it never resolves twice.
            return Poll::Pending;
        };
        let polled = catch_unwind(AssertUnwindSafe(|| handling.as_mut().poll(cx)));
        let output = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(output)) => Ok(output),
            Err(_) => Err(Panicked),
        };
        // Finished, or not to be polled again after a panic: nothing is left to detach.
        self.handling = None;
        Poll::Ready(output)
    }
}

impl<F: Future + Send + 'static> Drop for Detachable<F>
where
    F::Output: Send,
{
    fn drop(&mut self) {
        let Some(handling) = self.handling.take() else {
            return;
        };
        // Outside a runtime (the runtime itself is being torn down) there is nothing left to finish
        // it on; the stop has already waited for in-flight requests as long as it could.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            // No connection is left for a graceful stop to wait for: it waits for this instead.
            let lingering = linger();
            runtime.spawn(async move {
                let _lingering = lingering;
                handling.await
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use tokio::sync::oneshot;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    }

    #[test]
    fn a_handling_runs_on_the_task_that_polls_it() {
        let answer = runtime().block_on(Detachable::new(async { 42 }));
        assert_eq!(answer.ok(), Some(42));
    }

    #[test]
    fn a_handling_dropped_half_way_is_finished_on_a_task_of_its_own() {
        let rt = runtime();
        let finished = Arc::new(AtomicBool::new(false));
        let (go, wait) = oneshot::channel::<()>();
        let flag = Arc::clone(&finished);
        rt.block_on(async move {
            let mut handling = Box::pin(Detachable::new(async move {
                let _ = wait.await;
                flag.store(true, Ordering::SeqCst);
            }));
            // Started, then dropped, as hyper drops a request whose client hung up.
            assert!(futures_poll_once(handling.as_mut()).await.is_pending());
            drop(handling);
            go.send(()).expect("the handling still waits");
            for _ in 0..100 {
                tokio::task::yield_now().await;
            }
        });
        assert!(finished.load(Ordering::SeqCst));
    }

    #[test]
    fn a_panic_is_an_error_not_a_lost_connection() {
        let answer = runtime().block_on(Detachable::new(async {
            if std::hint::black_box(true) {
                panic!("a defect");
            }
        }));
        assert!(answer.is_err());
    }

    /// Polls `future` once, as the first poll of a connection's task would.
    async fn futures_poll_once<F: Future + Unpin>(mut future: F) -> Poll<F::Output> {
        std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut future).poll(cx))).await
    }
}
