//! `memlock:lock/clock` over tokio time: real time in `memlock`, simulated time under turmoil
//! (which is why this never reads `std::time`).

use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

use crate::bindings::memlock::lock::clock::Host;
use crate::state::HostState;

/// The default clock origin: first use in this process.
pub fn process_origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

impl Host for HostState {
    /// Nanoseconds since the instance's clock origin; lease deadlines are on this scale.
    fn now_ns(&mut self) -> wasmtime::Result<u64> {
        let elapsed = self.clock_origin.elapsed().as_nanos() as f64 * self.clock_rate;
        Ok(elapsed as u64)
    }

    /// Sleeps unless the call is cancelled first ([`crate::lock`] cancels when its caller drops
    /// the call's future): then `false`, and the component ends the call.
    async fn sleep_ns(&mut self, ns: u64) -> wasmtime::Result<bool> {
        let nap = tokio::time::sleep(Duration::from_nanos((ns as f64 / self.clock_rate) as u64));
        Ok(self.cancel.interruptible(nap).await)
    }
}

/// WASI's monotonic clock on tokio time, for runs that must be reproducible.
pub struct TokioMonotonicClock(pub Instant);

impl wasmtime_wasi::HostMonotonicClock for TokioMonotonicClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// WASI's wall clock pinned to the unix epoch: the component never reads wall time, and a
/// reproducible run must not either.
pub struct FixedWallClock;

impl wasmtime_wasi::HostWallClock for FixedWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}
