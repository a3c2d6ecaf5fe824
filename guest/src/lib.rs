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

pub mod config;
pub mod driver;
pub mod error;
pub mod key;
pub mod lease;
pub mod lock;
pub mod protocol;
pub mod ttl;

#[cfg(target_arch = "wasm32")]
mod component;

pub use error::{Category, Code, LockError};
pub use lease::Lease;
pub use lock::MemcachedLock;
