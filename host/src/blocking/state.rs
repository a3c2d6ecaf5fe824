//! What a blocking lock's store holds: WASI (the component's `wasi:random`), the table of open
//! sockets, discovery, the credential store and the clock origin.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::credentials::CredentialStore;
use crate::discovery::Discovery;

pub struct BlockingState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) discovery: Arc<dyn Discovery>,
    pub(crate) credential_store: Arc<dyn CredentialStore>,
    pub(crate) clock_origin: Instant,
}

impl WasiView for BlockingState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
