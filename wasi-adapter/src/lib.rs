//! `memlock:lock/socket` and `memlock:lock/clock` implemented inside wasm over WASI 0.2
//! (`wasi:sockets`, `wasi:clocks`, `wasi:io`), through Rust's std.
//!
//! Composed in front of the lock component (`memlock-compose`), it turns the lock into a component
//! that imports only WASI and `discovery`: a host that implements WASI natively (wasmtime-py's
//! `add_wasip2`) then serves every round trip without calling back into its own language. Each
//! host import call through wasmtime-py costs tens of microseconds of Python value conversion,
//! more than a memcached round trip; here a lock operation is one call from Python and nothing
//! back.
//!
//! Semantics are the WIT's: `exchange` writes the request and reads the start of the reply,
//! both within one deadline; `receive` reads more. A sleep (only blocking acquires sleep) asks
//! the host's `interrupt.interrupted` every 50 ms, so a signal or a `close` from another thread
//! ends the wait promptly (`sleep-ns` returns `false`, the lock returns `CANCELLED`). Name
//! lookup is WASI's and is not bounded by the connect timeout: configure addresses, or names
//! your resolver answers quickly. `TCP_NODELAY` is requested, but WASI 0.2 has no such option, so Nagle's
//! algorithm stays on; the lock writes one request per round trip and waits for its reply, so
//! Nagle never holds a segment back.
//!
//! WASI 0.2 has no TLS: a connection that asks for it is carried by the host through the
//! imported `tls-bridge` (Python's `ssl`), each call a crossing into the host; plaintext
//! connections stay here.

#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

wit_bindgen::generate!({
    path: "../wit",
    world: "wasi-adapter",
});

use exports::memlock::lock::clock::Guest as ClockGuest;
use exports::memlock::lock::socket::{
    Connection, Guest as SocketGuest, GuestConnection, SocketError, TlsSettings,
};
use memlock::lock::tls_bridge;

struct Adapter;

/// How often a sleep asks whether the call should stop.
const INTERRUPT_CHECK: Duration = Duration::from_millis(50);

export!(Adapter);

impl ClockGuest for Adapter {
    /// WASI's monotonic clock as it is (`clock_gettime(CLOCK_MONOTONIC)` is
    /// `wasi:clocks/monotonic-clock.now`), not rebased: a host that knows where its WASI clock
    /// starts can then read a lease's `valid-until-ns` on its own clock.
    fn now_ns() -> u64 {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into the timespec we own.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
        (now.tv_sec as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(now.tv_nsec as u64)
    }

    fn sleep_ns(ns: u64) -> bool {
        let end = Instant::now() + Duration::from_nanos(ns);
        loop {
            if memlock::lock::interrupt::interrupted() {
                return false;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(INTERRUPT_CHECK));
        }
    }
}

impl SocketGuest for Adapter {
    type Connection = Stream;
}

/// One stream. `RefCell`: WIT methods take `&self`, and a component instance runs one call at a
/// time.
pub enum Stream {
    Tcp {
        stream: RefCell<TcpStream>,
        buffer: RefCell<Vec<u8>>,
    },
    /// A TLS stream the host carries (`tls-bridge`), by its number.
    Bridged(u32),
}

impl Drop for Stream {
    fn drop(&mut self) {
        if let Stream::Bridged(stream) = self {
            tls_bridge::close(*stream);
        }
    }
}

fn deadline(timeout_ms: u32) -> Instant {
    Instant::now() + Duration::from_millis(u64::from(timeout_ms.max(1)))
}

/// Time left until `deadline`, or `timed-out`. Never zero: std reads a zero timeout as "none".
fn left(deadline: Instant) -> Result<Duration, SocketError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(SocketError::TimedOut)
    } else {
        Ok(left)
    }
}

fn socket_error(e: &std::io::Error) -> SocketError {
    match e.kind() {
        // As the Rust host maps them (`host/src/imports/socket.rs`); a socket timeout from std
        // (`SO_RCVTIMEO`) is `WouldBlock`.
        ErrorKind::TimedOut | ErrorKind::WouldBlock => SocketError::TimedOut,
        ErrorKind::ConnectionRefused
        | ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::NotFound
        | ErrorKind::AddrNotAvailable
        | ErrorKind::HostUnreachable
        | ErrorKind::NetworkUnreachable => SocketError::Refused,
        ErrorKind::UnexpectedEof | ErrorKind::BrokenPipe | ErrorKind::NotConnected => {
            SocketError::Closed
        }
        _ => SocketError::Other,
    }
}

impl Stream {
    /// Writes `request`, then reads between 1 and `max_bytes` bytes, all before `deadline`.
    fn round_trip(
        &self,
        request: &[u8],
        max_bytes: u32,
        deadline: Instant,
    ) -> Result<Vec<u8>, SocketError> {
        let (stream, buffer) = match self {
            Stream::Tcp { stream, buffer } => (stream, buffer),
            Stream::Bridged(stream) => {
                let timeout_ms = left(deadline)?.as_millis().clamp(1, u128::from(u32::MAX)) as u32;
                return if request.is_empty() {
                    tls_bridge::receive(*stream, max_bytes, timeout_ms)
                } else {
                    tls_bridge::exchange(*stream, request, max_bytes, timeout_ms)
                };
            }
        };
        let mut stream = stream.borrow_mut();
        if !request.is_empty() {
            stream
                .set_write_timeout(Some(left(deadline)?))
                .map_err(|e| socket_error(&e))?;
            stream.write_all(request).map_err(|e| socket_error(&e))?;
        }
        stream
            .set_read_timeout(Some(left(deadline)?))
            .map_err(|e| socket_error(&e))?;
        let mut buffer = buffer.borrow_mut();
        buffer.resize(max_bytes.max(1) as usize, 0);
        match stream.read(&mut buffer) {
            Ok(0) => Err(SocketError::Closed),
            Ok(n) => Ok(buffer[..n].to_vec()),
            Err(e) => Err(socket_error(&e)),
        }
    }
}

impl GuestConnection for Stream {
    fn connect(
        host: String,
        port: u16,
        timeout_ms: u32,
        tls: Option<TlsSettings>,
    ) -> Result<Connection, SocketError> {
        if let Some(tls) = tls {
            let stream = tls_bridge::open(&host, port, timeout_ms, &tls)?;
            return Ok(Connection::new(Stream::Bridged(stream)));
        }
        let deadline = deadline(timeout_ms);
        let addresses = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| socket_error(&e))?;
        let mut last = SocketError::Refused;
        for address in addresses {
            match TcpStream::connect_timeout(&address, left(deadline)?) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(Connection::new(Stream::Tcp {
                        stream: RefCell::new(stream),
                        buffer: RefCell::new(Vec::new()),
                    }));
                }
                Err(e) => last = socket_error(&e),
            }
        }
        Err(last)
    }

    fn exchange(
        &self,
        request: Vec<u8>,
        max_bytes: u32,
        timeout_ms: u32,
    ) -> Result<Vec<u8>, SocketError> {
        self.round_trip(&request, max_bytes, deadline(timeout_ms))
    }

    fn send(&self, request: Vec<u8>, timeout_ms: u32) -> Result<(), SocketError> {
        let deadline = deadline(timeout_ms);
        match self {
            Stream::Bridged(stream) => {
                let timeout_ms = left(deadline)?.as_millis().clamp(1, u128::from(u32::MAX)) as u32;
                tls_bridge::send(*stream, &request, timeout_ms)
            }
            Stream::Tcp { stream, .. } => {
                let mut stream = stream.borrow_mut();
                stream
                    .set_write_timeout(Some(left(deadline)?))
                    .map_err(|e| socket_error(&e))?;
                stream.write_all(&request).map_err(|e| socket_error(&e))
            }
        }
    }

    fn receive(&self, max_bytes: u32, timeout_ms: u32) -> Result<Vec<u8>, SocketError> {
        self.round_trip(&[], max_bytes, deadline(timeout_ms))
    }
}
