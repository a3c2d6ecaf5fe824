//! `memlock:lock/credentials`: forwards to the host's [`crate::credentials::CredentialStore`].

use crate::bindings::memlock::lock::credentials::Host;
use crate::state::HostState;

impl Host for HostState {
    async fn lookup(
        &mut self,
        correlation_id: Option<String>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<(String, String)>>, String>> {
        Ok(self
            .credential_store
            .lookup(correlation_id.as_deref(), &key))
    }
}
