//! The blocking lock's clock, discovery and credential imports (the socket has its own file).

use std::time::Duration;

use super::bindings::memlock::lock::{clock, credentials, discovery};
use super::state::BlockingState;

impl crate::bindings::memlock::lock::types::Host for BlockingState {}

impl clock::Host for BlockingState {
    /// Nanoseconds since the lock's clock origin; lease deadlines are on this scale.
    fn now_ns(&mut self) -> wasmtime::Result<u64> {
        Ok(self.clock_origin.elapsed().as_nanos() as u64)
    }

    /// Sleeps the calling thread (a blocking acquire's wait between attempts). Nothing cancels a
    /// blocking call: its timeout bounds it.
    fn sleep_ns(&mut self, ns: u64) -> wasmtime::Result<bool> {
        std::thread::sleep(Duration::from_nanos(ns));
        Ok(true)
    }
}

impl discovery::Host for BlockingState {
    fn resolve_all(
        &mut self,
        correlation_id: Option<String>,
        key: String,
    ) -> wasmtime::Result<Result<Vec<Vec<(String, String)>>, String>> {
        Ok(self.discovery.resolve_all(correlation_id.as_deref(), &key))
    }
}

impl credentials::Host for BlockingState {
    fn lookup(
        &mut self,
        correlation_id: Option<String>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<(String, String)>>, String>> {
        Ok(self
            .credential_store
            .lookup(correlation_id.as_deref(), &key))
    }
}
