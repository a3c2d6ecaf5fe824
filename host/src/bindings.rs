//! Host-side bindings generated from `wit/memlock.wit`. Imports are async (they wait on tokio or
//! turmoil I/O); to the component they are ordinary blocking calls.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "memlock",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "memlock:lock/socket.connection": crate::net::Stream,
    },
});

pub use memlock::lock::types::{ErrorCategory, FencingToken, Lease, LockError};
