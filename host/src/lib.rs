//! memlock's host: runs the memlock WebAssembly component in wasmtime, with real TCP (tokio),
//! and offers it as a typed async Rust API ([`Lock`]) and the `memlock` CLI.
//!
//! - [`runtime`]: the engine and the compiled component (once per process, cached on disk);
//! - [`lock`]: the [`Lock`] API over component instances (home instances routed by key, spares
//!   for `extend`); [`blocking`]: [`BlockingLock`], the same component called synchronously on
//!   the caller's thread;
//! - `imports`: the component's imports (socket, clock, discovery, credentials) on the store's
//!   [`state`];
//! - [`net`], [`discovery`] and [`credentials`]: what those imports are backed by, swappable (the
//!   simulation plugs in turmoil's network); [`tls`]: the handshake the socket import adds when a
//!   connection asks for TLS;
//! - [`lease`]: leases, fencing tokens and portable handles; [`guard`]: automatic renewal.

mod bindings;
pub mod blocking;
mod cache;
mod cancel;
pub mod credentials;
pub mod discovery;
pub mod error;
pub mod guard;
mod imports;
pub mod lease;
pub mod lock;
pub mod net;
pub mod runtime;
mod state;
pub mod tls;

pub use blocking::{BlockingEnvironment, BlockingLock};
pub use credentials::{CredentialStore, MemoryCredentialStore};
pub use discovery::{Discovery, MemoryDiscovery};
pub use error::{Error, ErrorCategory, ErrorCode, LockError};
pub use guard::{LeaseGuard, LeaseLost};
pub use lease::{FencingToken, Lease, OwnerToken, ServerProcess};
pub use lock::{Environment, Lock};
pub use runtime::{COMPONENT_WASM, Runtime};
