//! Host-side bindings generated from `wit/memlock.wit`. Imports are async (they wait on tokio or
//! turmoil I/O); to the component they are ordinary blocking calls. `now-ns` never waits, so it
//! is a plain synchronous host function: that skips the async call machinery on a call made
//! once per lock operation.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "memlock",
    imports: {
        "memlock:lock/clock.now-ns": trappable,
        default: async | trappable,
    },
    exports: { default: async },
    with: {
        "memlock:lock/socket.connection": crate::imports::Connection,
    },
});

pub use memlock::lock::types::{
    ErrorCategory, ErrorCode, FencingToken, Lease, LockError, OwnerToken, ServerProcess,
};
