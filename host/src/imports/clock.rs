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
    async fn now_ns(&mut self) -> wasmtime::Result<u64> {
        Ok(u64::try_from(self.clock_origin.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    async fn sleep_ns(&mut self, ns: u64) -> wasmtime::Result<()> {
        tokio::time::sleep(Duration::from_nanos(ns)).await;
        Ok(())
    }
}
