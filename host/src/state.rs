//! What one component instance's store holds: WASI (the component's `wasi:random` import),
//! the resource table of open sockets, and the host's network, discovery and credential store.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::credentials::CredentialStore;
use crate::discovery::Discovery;
use crate::net::Network;

pub struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) network: Arc<dyn Network>,
    pub(crate) discovery: Arc<dyn Discovery>,
    pub(crate) credential_store: Arc<dyn CredentialStore>,
    pub(crate) clock_origin: tokio::time::Instant,
    pub(crate) clock_rate: f64,
    /// Raised when the caller of the running call gave up; the clock's sleep watches it.
    pub(crate) cancel: Arc<crate::cancel::Cancel>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
