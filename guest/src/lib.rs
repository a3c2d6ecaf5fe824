//! memlock's lock logic: everything between a caller's `try_acquire_lock` and the bytes on the
//! wire, with no I/O of its own.
//!
//! - [`protocol`]: the memcached codec (encode requests, parse replies without trusting the server);
//! - [`key`], [`ttl`], [`config`], [`lease`]: validated inputs and outputs;
//! - [`driver`]: the [`driver::Host`] trait (sockets, clock, randomness, discovery), connection
//!   pooling and failure policy;
//! - [`lock`]: the lock's semantics;
//! - `component` (wasm32 only): the wit-bindgen glue that makes this a WebAssembly component,
//!   implementing `Host` over the WIT imports.
//!
//! Built natively, the same code runs in unit tests and benchmarks.
//!
//! The crate is `no_std` (with `alloc`): on wasm32 that keeps Rust's std (its I/O, panic hook and
//! formatting of panic messages) out of the component, which is most of what a std build weighs.
//! [`component`] supplies the allocator and the panic handler there.

#![no_std]

extern crate alloc;
// Natively, std supplies the allocator and panic handler (the crate is also a cdylib) and the tests.
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

/// What `std`'s prelude would have given every module.
mod prelude {
    pub use alloc::borrow::ToOwned;
    pub use alloc::format;
    pub use alloc::string::String;
    pub use alloc::vec;
    pub use alloc::vec::Vec;
}

pub mod config;
pub mod driver;
pub mod error;
pub mod key;
pub mod lease;
pub mod lock;
pub mod protocol;
pub mod random;
pub mod security;
pub mod small_map;
pub mod ttl;

#[cfg(target_arch = "wasm32")]
mod component;

pub use error::{Category, Code, LockError};
pub use lease::Lease;
pub use lock::MemcachedLock;
