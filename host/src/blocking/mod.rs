//! The synchronous embedding: [`BlockingLock`] runs the same component on the calling thread,
//! for callers that wait for the answer anyway (a CLI, a worker thread, a script).
//!
//! The async [`crate::Lock`] runs each export call on a fiber, so that an import (a socket read,
//! a sleep) can suspend it and give the thread back to tokio: every call and every import that
//! waits pays stack switches and a wake-up. Here imports are plain functions that block the thread
//! (std sockets with timeouts, `thread::sleep`), and a call is a direct call into wasm. Everything
//! else is shared: the engine and compiled component ([`crate::Runtime`]), the WIT types, leases,
//! errors, TLS setup, discovery and credential stores. What differs is only the call and import
//! glue: a second `bindgen!` (sync) and a second linker.

pub(crate) mod bindings;
mod imports;
mod lock;
pub(crate) mod socket;
pub(crate) mod state;

pub use lock::{BlockingEnvironment, BlockingLock};
