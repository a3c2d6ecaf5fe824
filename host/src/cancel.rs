//! Cancellation of one call into a component instance.
//!
//! In async Rust a caller gives up by dropping a future (`tokio::time::timeout`, `select!`). A
//! component instance cannot be abandoned halfway through a call, so [`Detached`] lets the call
//! run to its end in a task of its own and raises the call's [`Cancel`]: the clock import's sleep
//! then returns at once (`false`), which ends a blocking acquire between attempts; a round trip
//! already on the wire finishes within `options.timeout`, and the caller of [`Detached`] gives
//! back what it acquired (see `crate::lock`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::sync::Notify;

/// Raised when the caller of a running call has gone away.
#[derive(Debug, Default)]
pub(crate) struct Cancel {
    cancelled: AtomicBool,
    wake: Notify,
}

impl Cancel {
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        // Stores a permit if nobody waits yet, so a sleep that starts later still sees it.
        self.wake.notify_one();
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Runs `nap` unless cancelled first: `true` if it ran to its end.
    pub(crate) async fn interruptible(&self, nap: impl Future<Output = ()>) -> bool {
        if self.is_cancelled() {
            return false;
        }
        // Biased: the simulation needs the same choice on every run.
        tokio::select! {
            biased;
            _ = self.wake.notified() => false,
            _ = nap => true,
        }
    }
}

/// A call that finishes even when its caller drops it: dropped before completion, it raises its
/// [`Cancel`] and moves to a task of its own on the current tokio runtime. Outside a runtime
/// there is nowhere to finish it; it is dropped, and the instance it was in is marked poisoned
/// and replaced on its next use (`crate::lock`).
pub(crate) struct Detached<T: Send + 'static> {
    work: Option<Pin<Box<dyn Future<Output = T> + Send>>>,
    cancel: Arc<Cancel>,
}

impl<T: Send + 'static> Detached<T> {
    pub(crate) fn new(work: impl Future<Output = T> + Send + 'static, cancel: Arc<Cancel>) -> Self {
        Detached {
            work: Some(Box::pin(work)),
            cancel,
        }
    }
}

impl<T: Send + 'static> Future for Detached<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let Some(work) = self.work.as_mut() else {
            return Poll::Pending;
        };
        let output = std::task::ready!(work.as_mut().poll(cx));
        self.work = None;
        Poll::Ready(output)
    }
}

impl<T: Send + 'static> Drop for Detached<T> {
    fn drop(&mut self) {
        if let Some(work) = self.work.take() {
            self.cancel.cancel();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(work);
            }
        }
    }
}
