//! The lock's I/O, behind one trait.
//!
//! [`Host`] is everything the lock needs from outside: a byte stream per server (TLS when asked),
//! a monotonic clock, randomness, discovery and credential stores. The component implements it over its WIT imports (`component.rs`);
//! tests and the native benchmark can implement it over anything. The logic above it
//! ([`crate::lock`]) and the codec below it ([`crate::protocol`]) never touch I/O themselves.

use crate::prelude::*;

pub mod connection;
pub mod servers;
pub mod sharding;

/// Why a socket operation failed, as the host reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketError {
    Refused,
    TimedOut,
    Closed,
    /// The TLS handshake failed; the host's reason.
    Tls(String),
    Other,
}

impl core::fmt::Display for SocketError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SocketError::Refused => "connection refused",
            SocketError::TimedOut => "timed out",
            SocketError::Closed => "connection closed by the server",
            SocketError::Tls(why) => return write!(f, "TLS handshake failed: {why}"),
            SocketError::Other => "network error",
        })
    }
}

/// ConfigParams pairs of one resolved connection.
pub type ConnectionParams = Vec<(String, String)>;

/// What the lock needs from its environment.
pub trait Host {
    /// An open byte stream to one server; dropping it closes it.
    type Stream;

    /// Opens a stream, TLS when `tls` is given (its handshake within `timeout_ms` too).
    fn connect(
        &self,
        host: &str,
        port: u16,
        timeout_ms: u32,
        tls: Option<&crate::security::Tls>,
    ) -> Result<Self::Stream, SocketError>;
    /// Writes all of `request`, then appends between 1 and `max_bytes` bytes of the reply to
    /// `reply`, all within `timeout_ms`. A failure may come after some of `request` was written.
    /// Appending (rather than returning a new buffer) lets a native host read straight into the
    /// connection's buffer.
    fn exchange(
        &self,
        stream: &Self::Stream,
        request: &[u8],
        max_bytes: u32,
        timeout_ms: u32,
        reply: &mut Vec<u8>,
    ) -> Result<(), SocketError>;
    /// Writes all of `request` within `timeout_ms`, reading nothing (several servers' requests
    /// go out before any reply is awaited).
    fn send(
        &self,
        stream: &Self::Stream,
        request: &[u8],
        timeout_ms: u32,
    ) -> Result<(), SocketError>;
    /// More of a reply: appends between 1 and `max_bytes` bytes to `reply`.
    fn receive(
        &self,
        stream: &Self::Stream,
        max_bytes: u32,
        timeout_ms: u32,
        reply: &mut Vec<u8>,
    ) -> Result<(), SocketError>;

    /// Monotonic nanoseconds.
    fn now_ns(&self) -> u64;
    /// Sleeps; `false` when the host cut the sleep short because the call was cancelled.
    fn sleep_ns(&self, ns: u64) -> bool;
    /// Uniformly random bits (owner tokens, jitter).
    fn random_u64(&self) -> u64;

    /// pip-services `IDiscovery.resolveAll`.
    fn resolve_all(
        &self,
        correlation_id: Option<&str>,
        key: &str,
    ) -> Result<Vec<ConnectionParams>, String>;

    /// pip-services `ICredentialStore.lookup`: the credential's parameters, `None` when unknown.
    fn lookup_credential(
        &self,
        correlation_id: Option<&str>,
        key: &str,
    ) -> Result<Option<ConnectionParams>, String>;
}

/// Milliseconds to nanoseconds, saturating.
pub fn ms_to_ns(ms: u64) -> u64 {
    ms.saturating_mul(1_000_000)
}

/// A timeout for one host call: what is left until `deadline_ns`, in whole milliseconds, at least 1.
pub fn remaining_ms(now_ns: u64, deadline_ns: u64) -> u32 {
    let left = deadline_ns.saturating_sub(now_ns).div_ceil(1_000_000);
    left.clamp(1, u64::from(u32::MAX)) as u32
}
