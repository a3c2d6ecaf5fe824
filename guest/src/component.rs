//! The WebAssembly component: wit-bindgen glue and nothing else.
//!
//! [`WitHost`] implements [`Host`] over the WIT imports (`socket`, `clock`, `discovery`,
//! `credentials`; randomness
//! comes from WASI's `random`, which every WASI host seeds). The exported `memcached-lock` resource
//! forwards each call to [`crate::MemcachedLock`] and converts types at the boundary.

use crate::prelude::*;

use core::cell::RefCell;

use crate::driver::{ConnectionParams, Host, SocketError};
use crate::error::{Category, Code, LockError};
use crate::random::{RandomPool, RandomUnavailable};

wit_bindgen::generate!({
    path: "../wit",
    world: "memlock",
});

use exports::memlock::lock::lock::{Guest, GuestMemcachedLock};
use memlock::lock::types as wit;
use memlock::lock::{clock, credentials, discovery, socket};

/// The allocator: the crate is `no_std`, so the component brings its own (dlmalloc over
/// `memory.grow`, the one Rust's std uses on `wasm32-unknown-unknown`).
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// A panic is a bug in this crate, never a reaction to input (every server byte and caller value
/// is checked and answered with a typed error). It traps: the host sees the trap as a runtime
/// error and discards the instance. No message is formatted, which keeps `core::fmt`'s panic
/// machinery out of the component.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

// `memcmp`, `memcpy` and `memset` come from wasi-libc's `libc.a`, as they do in a std build; only
// those objects are linked, and they import nothing.
#[link(name = "c")]
unsafe extern "C" {}

/// The canonical ABI's allocation entry point, which the host calls to pass lists and strings in.
/// Rust's std defines it on `wasm32-wasip2`, and wit-bindgen relies on that there, so a `no_std`
/// component defines it itself, over the global allocator.
///
/// # Safety
/// Called only by the host's canonical ABI: `align` is a power of two, and `old_ptr`/`old_len`
/// describe an allocation this function returned with the same `align`.
#[unsafe(no_mangle)]
unsafe extern "C" fn cabi_realloc(
    old_ptr: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    use alloc::alloc::{Layout, alloc, realloc};
    let new_ptr = if old_len == 0 {
        if new_len == 0 {
            // A zero-sized allocation: any aligned, non-null pointer.
            return align as *mut u8;
        }
        // SAFETY: the canonical ABI passes a power-of-two `align` and a non-zero size.
        unsafe { alloc(Layout::from_size_align_unchecked(new_len, align)) }
    } else {
        // SAFETY: `old_ptr` was returned by this function with this layout (see above).
        unsafe {
            realloc(
                old_ptr,
                Layout::from_size_align_unchecked(old_len, align),
                new_len,
            )
        }
    };
    if new_ptr.is_null() {
        // Out of memory: trap, as std's version does.
        core::arch::wasm32::unreachable()
    }
    new_ptr
}

struct WitHost {
    random: RefCell<RandomPool>,
}

impl Host for WitHost {
    type Stream = socket::Connection;

    fn connect(
        &self,
        host: &str,
        port: u16,
        timeout_ms: u32,
        tls: Option<&crate::security::Tls>,
    ) -> Result<Self::Stream, SocketError> {
        let tls = tls.map(|t| socket::TlsSettings {
            server_name: t.server_name.clone().unwrap_or_else(|| host.to_owned()),
            ca_file: t.ca_file.clone(),
            cert_file: t.cert_file.clone(),
            key_file: t.key_file.clone(),
            verify: t.verify,
        });
        socket::Connection::connect(host, port, timeout_ms, tls.as_ref()).map_err(socket_error)
    }

    fn exchange(
        &self,
        stream: &Self::Stream,
        request: &[u8],
        max_bytes: u32,
        timeout_ms: u32,
        reply: &mut Vec<u8>,
    ) -> Result<(), SocketError> {
        let chunk = stream
            .exchange(request, max_bytes, timeout_ms)
            .map_err(socket_error)?;
        append(reply, chunk);
        Ok(())
    }

    fn send(
        &self,
        stream: &Self::Stream,
        request: &[u8],
        timeout_ms: u32,
    ) -> Result<(), SocketError> {
        stream.send(request, timeout_ms).map_err(socket_error)
    }

    fn receive(
        &self,
        stream: &Self::Stream,
        max_bytes: u32,
        timeout_ms: u32,
        reply: &mut Vec<u8>,
    ) -> Result<(), SocketError> {
        let chunk = stream
            .receive(max_bytes, timeout_ms)
            .map_err(socket_error)?;
        append(reply, chunk);
        Ok(())
    }

    fn now_ns(&self) -> u64 {
        clock::now_ns()
    }

    fn sleep_ns(&self, ns: u64) -> bool {
        clock::sleep_ns(ns)
    }

    fn random_u64(&self) -> u64 {
        // An owner token is fresh randomness or nothing: a failing source traps the instance
        // (the host sees a runtime error) rather than hand out stale or zero bytes.
        match self.random.borrow_mut().next_u64(getrandom::fill) {
            Ok(word) => word,
            Err(RandomUnavailable) => core::arch::wasm32::unreachable(),
        }
    }

    fn resolve_all(
        &self,
        correlation_id: Option<&str>,
        key: &str,
    ) -> Result<Vec<ConnectionParams>, String> {
        discovery::resolve_all(correlation_id, key)
    }

    fn lookup_credential(
        &self,
        correlation_id: Option<&str>,
        key: &str,
    ) -> Result<Option<ConnectionParams>, String> {
        credentials::lookup(correlation_id, key)
    }
}

/// Adds bytes an import returned to a connection's buffer. The usual case is a whole reply into
/// an empty buffer: then the import's allocation becomes the buffer, with no copy.
fn append(buffer: &mut Vec<u8>, chunk: Vec<u8>) {
    if buffer.is_empty() {
        *buffer = chunk;
    } else {
        buffer.extend_from_slice(&chunk);
    }
}

fn socket_error(e: socket::SocketError) -> SocketError {
    match e {
        socket::SocketError::Refused => SocketError::Refused,
        socket::SocketError::TimedOut => SocketError::TimedOut,
        socket::SocketError::Closed => SocketError::Closed,
        socket::SocketError::Tls(why) => SocketError::Tls(why),
        socket::SocketError::Other => SocketError::Other,
    }
}

fn to_wit_error(e: LockError) -> wit::LockError {
    wit::LockError {
        category: match e.category() {
            Category::Unknown => wit::ErrorCategory::Unknown,
            Category::Internal => wit::ErrorCategory::Internal,
            Category::Misconfiguration => wit::ErrorCategory::Misconfiguration,
            Category::NoResponse => wit::ErrorCategory::NoResponse,
            Category::FailedInvocation => wit::ErrorCategory::FailedInvocation,
            Category::BadRequest => wit::ErrorCategory::BadRequest,
            Category::InvalidState => wit::ErrorCategory::InvalidState,
            Category::Conflict => wit::ErrorCategory::Conflict,
            Category::Unsupported => wit::ErrorCategory::Unsupported,
            Category::Unauthorized => wit::ErrorCategory::Unauthorized,
        },
        code: match e.code {
            Code::InvalidConfig => wit::ErrorCode::InvalidConfig,
            Code::NoConnection => wit::ErrorCode::NoConnection,
            Code::CannotResolve => wit::ErrorCode::CannotResolve,
            Code::NotOpened => wit::ErrorCode::NotOpened,
            Code::InvalidKey => wit::ErrorCode::InvalidKey,
            Code::InvalidTtl => wit::ErrorCode::InvalidTtl,
            Code::InvalidLease => wit::ErrorCode::InvalidLease,
            Code::LockTimeout => wit::ErrorCode::LockTimeout,
            Code::LockLost => wit::ErrorCode::LockLost,
            Code::Unsupported => wit::ErrorCode::Unsupported,
            Code::ConnectFailed => wit::ErrorCode::ConnectFailed,
            Code::Timeout => wit::ErrorCode::Timeout,
            Code::ServerDown => wit::ErrorCode::ServerDown,
            Code::Protocol => wit::ErrorCode::ProtocolError,
            Code::ServerError => wit::ErrorCode::ServerError,
            Code::ClientError => wit::ErrorCode::ClientError,
            Code::Cancelled => wit::ErrorCode::Cancelled,
            Code::Unauthorized => wit::ErrorCode::Unauthorized,
            Code::TlsFailed => wit::ErrorCode::TlsFailed,
            Code::NoQuorum => wit::ErrorCode::NoQuorum,
        },
        message: e.message,
        correlation_id: e.correlation_id,
    }
}

fn to_wit_lease(l: crate::Lease) -> wit::Lease {
    wit::Lease {
        key: l.key,
        owner_token: wit::OwnerToken {
            high: l.owner_token.high,
            low: l.owner_token.low,
        },
        cas: l.cas,
        server_process: wit::ServerProcess {
            pid: l.server_process.pid,
            started_at: l.server_process.started_at,
            incarnation: l.server_process.incarnation,
        },
        ttl_ms: l.ttl_ms,
        valid_until_ns: l.valid_until_ns,
        fencing_token: wit::FencingToken {
            server_start: l.fencing_token.server_start,
            sequence: l.fencing_token.sequence,
        },
    }
}

fn from_wit_lease(l: wit::Lease) -> crate::Lease {
    crate::Lease {
        key: l.key,
        owner_token: crate::lease::OwnerToken {
            high: l.owner_token.high,
            low: l.owner_token.low,
        },
        cas: l.cas,
        server_process: crate::protocol::ServerProcess {
            pid: l.server_process.pid,
            started_at: l.server_process.started_at,
            incarnation: l.server_process.incarnation,
        },
        ttl_ms: l.ttl_ms,
        valid_until_ns: l.valid_until_ns,
        fencing_token: crate::lease::FencingToken {
            server_start: l.fencing_token.server_start,
            sequence: l.fencing_token.sequence,
        },
    }
}

struct Component;

impl Guest for Component {
    type MemcachedLock = LockResource;
}

/// The exported resource. WIT methods take `&self`; calls never overlap, so a `RefCell` suffices.
struct LockResource(RefCell<crate::MemcachedLock<WitHost>>);

type R<T> = Result<T, wit::LockError>;

impl GuestMemcachedLock for LockResource {
    fn new() -> Self {
        LockResource(RefCell::new(crate::MemcachedLock::new(WitHost {
            random: RefCell::new(RandomPool::default()),
        })))
    }

    fn configure(&self, config: Vec<(String, String)>) -> R<()> {
        self.0.borrow_mut().configure(&config).map_err(to_wit_error)
    }

    fn set_references(&self, descriptors: Vec<String>) -> R<()> {
        self.0
            .borrow_mut()
            .set_references(&descriptors)
            .map_err(to_wit_error)
    }

    fn open(&self, correlation_id: Option<String>) -> R<()> {
        self.0
            .borrow_mut()
            .open(correlation_id.as_deref())
            .map_err(to_wit_error)
    }

    fn is_open(&self) -> bool {
        self.0.borrow().is_open()
    }

    fn close(&self, correlation_id: Option<String>) -> R<()> {
        self.0
            .borrow_mut()
            .close(correlation_id.as_deref())
            .map_err(to_wit_error)
    }

    fn try_acquire_lock(
        &self,
        correlation_id: Option<String>,
        key: Vec<u8>,
        ttl_ms: i64,
    ) -> R<bool> {
        self.0
            .borrow_mut()
            .try_acquire_lock(correlation_id.as_deref(), &key, ttl_ms)
            .map_err(to_wit_error)
    }

    fn acquire_lock(
        &self,
        correlation_id: Option<String>,
        key: Vec<u8>,
        ttl_ms: i64,
        timeout_ms: i64,
    ) -> R<()> {
        self.0
            .borrow_mut()
            .acquire_lock(correlation_id.as_deref(), &key, ttl_ms, timeout_ms)
            .map_err(to_wit_error)
    }

    fn release_lock(&self, correlation_id: Option<String>, key: Vec<u8>) -> R<()> {
        self.0
            .borrow_mut()
            .release_lock(correlation_id.as_deref(), &key)
            .map_err(to_wit_error)
    }

    fn try_acquire(
        &self,
        correlation_id: Option<String>,
        key: Vec<u8>,
        ttl_ms: i64,
    ) -> R<Option<wit::Lease>> {
        self.0
            .borrow_mut()
            .try_acquire(correlation_id.as_deref(), &key, ttl_ms)
            .map(|l| l.map(to_wit_lease))
            .map_err(to_wit_error)
    }

    fn acquire(
        &self,
        correlation_id: Option<String>,
        key: Vec<u8>,
        ttl_ms: i64,
        timeout_ms: i64,
    ) -> R<wit::Lease> {
        self.0
            .borrow_mut()
            .acquire(correlation_id.as_deref(), &key, ttl_ms, timeout_ms)
            .map(to_wit_lease)
            .map_err(to_wit_error)
    }

    fn extend(
        &self,
        correlation_id: Option<String>,
        lease: wit::Lease,
        ttl_ms: i64,
    ) -> R<wit::Lease> {
        self.0
            .borrow_mut()
            .extend(correlation_id.as_deref(), &from_wit_lease(lease), ttl_ms)
            .map(to_wit_lease)
            .map_err(to_wit_error)
    }

    fn release(&self, correlation_id: Option<String>, lease: wit::Lease) -> R<bool> {
        self.0
            .borrow_mut()
            .release(correlation_id.as_deref(), &from_wit_lease(lease))
            .map_err(to_wit_error)
    }
}

export!(Component);
