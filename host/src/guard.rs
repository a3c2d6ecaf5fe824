//! Automatic renewal: a [`LeaseGuard`] keeps a lease alive while the caller works, and says so at
//! once when it cannot.
//!
//! A background task extends the lease every third of its ttl (owner-checked `extend`, never a
//! touch). If an extension fails for a transient reason it retries until the lease's own
//! valid-until; if the lease is lost (`LOCK_LOST`) or its valid-until passes first, the guard
//! reports the loss through [`LeaseGuard::lost`] — a future the caller can `select!` on — and stops.
//! Dropping the guard or calling [`LeaseGuard::release`] stops renewal and releases the lease.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::lease::Lease;
use crate::lock::Lock;

/// Why a guarded lease was lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseLost {
    /// The lock said the lease is gone (expired, evicted, taken over, server restarted).
    Lost(String),
    /// No extension succeeded before the lease's valid-until; the last error, if any.
    Expired(Option<String>),
}

impl std::fmt::Display for LeaseLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeaseLost::Lost(why) => write!(f, "{why}"),
            LeaseLost::Expired(Some(e)) => write!(
                f,
                "lease expired before it could be renewed (last error: {e})"
            ),
            LeaseLost::Expired(None) => write!(f, "lease expired before it could be renewed"),
        }
    }
}

#[derive(Debug, Clone)]
enum State {
    Held(Lease),
    Lost(LeaseLost),
    Released,
}

enum Command {
    Release(oneshot::Sender<Result<bool, Error>>),
}

/// A lease renewed in the background until released, dropped or lost.
pub struct LeaseGuard {
    state: watch::Receiver<State>,
    commands: mpsc::UnboundedSender<Command>,
    task: Option<JoinHandle<()>>,
}

/// Renewal interval as a fraction of the ttl.
const RENEW_DIVISOR: u32 = 3;
/// Pause between retries of a failed extension.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

impl LeaseGuard {
    /// Starts renewing `lease` (which `lock` acquired) every third of its ttl; see [`Lock::guard`],
    /// which checks that the lease can be renewed.
    pub(crate) fn new(lock: Arc<Lock>, lease: Lease, correlation_id: Option<String>) -> LeaseGuard {
        let (state_tx, state) = watch::channel(State::Held(lease.clone()));
        let (commands, command_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(renew(lock, lease, correlation_id, state_tx, command_rx));
        LeaseGuard {
            state,
            commands,
            task: Some(task),
        }
    }

    /// The current lease (its CAS and valid-until move with each renewal); `None` once lost.
    pub fn lease(&self) -> Option<Lease> {
        match &*self.state.borrow() {
            State::Held(lease) => Some(lease.clone()),
            _ => None,
        }
    }

    /// Resolves when the lease is lost; pending forever while it is held.
    pub async fn lost(&mut self) -> LeaseLost {
        loop {
            if let State::Lost(why) = &*self.state.borrow_and_update() {
                return why.clone();
            }
            if self.state.changed().await.is_err() {
                // The renewal task ended without a loss (released): never resolves.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Stops renewing and releases the lease. `true` if this deleted it.
    pub async fn release(mut self) -> Result<bool, Error> {
        let (reply, result) = oneshot::channel();
        if self.commands.send(Command::Release(reply)).is_err() {
            return Ok(false);
        }
        let released = result.await.unwrap_or(Ok(false));
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        released
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        // The task releases the lease and exits; nobody waits for the answer.
        let (reply, _) = oneshot::channel();
        let _ = self.commands.send(Command::Release(reply));
    }
}

async fn renew(
    lock: Arc<Lock>,
    mut lease: Lease,
    correlation_id: Option<String>,
    state: watch::Sender<State>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let cid = correlation_id.as_deref();
    let ttl_ms = i64::try_from(lease.ttl.as_millis()).unwrap_or(i64::MAX);
    loop {
        let next = tokio::time::sleep(lease.ttl / RENEW_DIVISOR);
        tokio::select! {
            biased;
            command = commands.recv() => {
                let released = lock.release(cid, &lease).await;
                let _ = state.send(State::Released);
                if let Some(Command::Release(reply)) = command {
                    let _ = reply.send(released);
                }
                return;
            }
            _ = next => {}
        }
        let mut last_error = None;
        loop {
            let Some(valid_until) = lease.valid_until else {
                // `Lock::guard` refuses such a lease; never leave a caller waiting on `lost()`.
                let _ = state.send(State::Lost(LeaseLost::Expired(None)));
                return;
            };
            let current = lease.clone();
            let extend = lock.extend(cid, &current, ttl_ms);
            tokio::pin!(extend);
            let outcome = tokio::select! {
                biased;
                result = &mut extend => Some(result),
                _ = tokio::time::sleep_until(valid_until) => None,
            };
            match outcome {
                Some(Ok(renewed)) => {
                    lease = renewed;
                    let _ = state.send(State::Held(lease.clone()));
                    break;
                }
                Some(Err(Error::Lock(e))) if e.code == crate::ErrorCode::LockLost => {
                    let _ = state.send(State::Lost(LeaseLost::Lost(e.message)));
                    return;
                }
                Some(Err(e)) if lease.remaining() > Duration::ZERO => {
                    last_error = Some(e.to_string());
                    tokio::time::sleep(RETRY_PAUSE.min(lease.remaining())).await;
                }
                Some(Err(e)) => {
                    let _ = state.send(State::Lost(LeaseLost::Expired(Some(e.to_string()))));
                    return;
                }
                None => {
                    // Report first; then let the call finish and give back anything it renewed.
                    let _ = state.send(State::Lost(LeaseLost::Expired(last_error.take())));
                    if let Ok(renewed) = extend.await {
                        let _ = lock.release(cid, &renewed).await;
                    }
                    return;
                }
            }
        }
    }
}

impl Lock {
    /// Wraps a lease this lock acquired (or extended) in a [`LeaseGuard`] that renews it with its
    /// own ttl. A lease parsed from a handle has neither ttl nor valid-until: `INVALID_LEASE`.
    pub fn guard(
        self: &Arc<Self>,
        lease: Lease,
        correlation_id: Option<&str>,
    ) -> Result<LeaseGuard, Error> {
        if lease.valid_until.is_none() || lease.ttl.is_zero() {
            return Err(Error::Lock(crate::error::LockError {
                category: crate::error::ErrorCategory::BadRequest,
                code: crate::ErrorCode::InvalidLease,
                message: "a lease parsed from a handle has no ttl or valid-until to renew by: \
                          extend it first (Lock::extend returns a lease that has both) and guard \
                          the extended lease"
                    .into(),
                correlation_id: correlation_id.map(str::to_owned),
            }));
        }
        Ok(LeaseGuard::new(
            Arc::clone(self),
            lease,
            correlation_id.map(str::to_owned),
        ))
    }
}
