//! `memlock:lock/discovery`: forwards to the host's [`crate::discovery::Discovery`].

use crate::bindings::memlock::lock::discovery::Host;
use crate::state::HostState;

impl Host for HostState {
    async fn resolve_all(
        &mut self,
        correlation_id: Option<String>,
        key: String,
    ) -> wasmtime::Result<Result<Vec<Vec<(String, String)>>, String>> {
        Ok(self.discovery.resolve_all(correlation_id.as_deref(), &key))
    }
}
