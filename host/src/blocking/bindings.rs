//! The component's interface generated a second time, synchronously: plain `fn` imports and
//! exports, no fibers. Types shared with the async bindings (`types`, the socket resource's
//! errors and settings) are the same Rust types, so leases and errors convert alike.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "memlock",
    imports: {
        default: trappable,
    },
    with: {
        "memlock:lock/types": crate::bindings::memlock::lock::types,
        "memlock:lock/socket.connection": crate::blocking::socket::Connection,
    },
});
