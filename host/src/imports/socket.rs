//! `memlock:lock/socket`: byte streams from the host's [`crate::net::Network`], each call bounded
//! by the timeout the component passes. A stream that timed out mid-read may have consumed bytes;
//! the component drops such a connection, and so may we.

use std::io;
use std::pin::Pin;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, Sleep};
use wasmtime::component::Resource;

use crate::bindings::memlock::lock::socket::{Host, HostConnection, SocketError, TlsSettings};
use crate::net::NetStream;
use crate::state::HostState;

/// The resource behind the WIT `socket.connection`: a stream and the timer that bounds its calls.
pub struct Connection {
    stream: Box<dyn NetStream>,
    timer: Option<Timer>,
    /// Where reads land before the bytes read are handed over: a read reserves up to the
    /// component's `max-bytes` (kilobytes) and a reply is tens of bytes, so the large buffer is
    /// kept rather than allocated per read.
    read_buffer: Vec<u8>,
}

/// One timer per connection, moved to each call's deadline. Moving a timer that has not fired to
/// a later deadline is one atomic update; a fresh `tokio::time::timeout` per call inserts and
/// removes a timer-wheel entry (under the driver's lock) every round trip. A timer belongs to the
/// runtime it was made in, so a call from another runtime makes a new one.
struct Timer {
    runtime: tokio::runtime::Id,
    sleep: Pin<Box<Sleep>>,
}

/// The connection's timer (made in the current runtime if it has none from there), set to fire at
/// `deadline`.
fn arm(slot: &mut Option<Timer>, deadline: Instant) -> Pin<&mut Sleep> {
    let runtime = tokio::runtime::Handle::current().id();
    let timer = match slot.take() {
        Some(mut timer) if timer.runtime == runtime => {
            timer.sleep.as_mut().reset(deadline);
            timer
        }
        _ => Timer {
            runtime,
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
        },
    };
    slot.insert(timer).sleep.as_mut()
}

impl Connection {
    /// Writes `request` (if any), then reads the start of the reply; `timeout_ms` bounds both
    /// together. With an empty request this is a `receive`: more of a reply, waiting at most
    /// `timeout_ms` for the first byte.
    async fn exchange(
        &mut self,
        request: &[u8],
        max_bytes: u32,
        timeout_ms: u32,
    ) -> Result<Vec<u8>, SocketError> {
        let Connection {
            stream,
            timer,
            read_buffer,
        } = self;
        let timer = arm(timer, Instant::now() + timeout(timeout_ms));
        let exchanged = async {
            stream.write_all(request).await?;
            read_some(stream, read_buffer, max_bytes).await
        };
        tokio::select! {
            biased;
            read = exchanged => finish_read(read),
            () = timer => Err(SocketError::TimedOut),
        }
    }
}

impl Connection {
    /// Writes all of `request` within `timeout_ms`; reads nothing.
    async fn send(&mut self, request: &[u8], timeout_ms: u32) -> Result<(), SocketError> {
        let Connection { stream, timer, .. } = self;
        let timer = arm(timer, Instant::now() + timeout(timeout_ms));
        tokio::select! {
            biased;
            written = async {
                stream.write_all(request).await?;
                // A TLS stream may hold records back until flushed; nothing reads after this.
                stream.flush().await
            } => written.map_err(|e| socket_error(&e)),
            () = timer => Err(SocketError::TimedOut),
        }
    }
}

/// Largest single read handed to the component.
const MAX_READ: usize = 64 * 1024;

fn timeout(ms: u32) -> Duration {
    Duration::from_millis(u64::from(ms))
}

pub(crate) fn socket_error(e: &io::Error) -> SocketError {
    use io::ErrorKind::*;
    // A TLS failure after the handshake: with TLS 1.3 a server that refuses the client's
    // certificate says so in an alert the first read receives.
    if let Some(why) = crate::tls::failure(e) {
        return SocketError::Tls(why);
    }
    match e.kind() {
        ConnectionRefused | ConnectionReset | ConnectionAborted | NotFound | AddrNotAvailable
        | HostUnreachable | NetworkUnreachable => SocketError::Refused,
        BrokenPipe | UnexpectedEof | NotConnected => SocketError::Closed,
        // A blocking socket's timeout surfaces as `WouldBlock` on Unix.
        TimedOut | WouldBlock => SocketError::TimedOut,
        _ => SocketError::Other,
    }
}

/// Reads what is there (waiting for at least one byte), up to `max_bytes`.
async fn read_some(
    stream: &mut (impl AsyncReadExt + Unpin),
    buffer: &mut Vec<u8>,
    max_bytes: u32,
) -> io::Result<Vec<u8>> {
    // The buffer is zeroed once per connection, not per read: zeroing per call showed up as 12 %
    // of a lock cycle.
    let max = (max_bytes as usize).clamp(1, MAX_READ);
    if buffer.len() < max {
        buffer.resize(max, 0);
    }
    let n = stream.read(&mut buffer[..max]).await?;
    Ok(buffer[..n].to_vec())
}

/// A read's outcome as the component sees it: end of file (nothing read) is `closed`.
fn finish_read(read: io::Result<Vec<u8>>) -> Result<Vec<u8>, SocketError> {
    match read {
        Err(e) => Err(socket_error(&e)),
        Ok(buf) if buf.is_empty() => Err(SocketError::Closed),
        Ok(buf) => Ok(buf),
    }
}

impl Host for HostState {}

impl HostConnection for HostState {
    async fn connect(
        &mut self,
        host: String,
        port: u16,
        timeout_ms: u32,
        tls: Option<TlsSettings>,
    ) -> wasmtime::Result<Result<Resource<Connection>, SocketError>> {
        // One deadline for the TCP connect and the TLS handshake.
        let network = self.network.clone();
        let connect = async {
            let stream = network.connect(&host, port).await.map_err(|e| {
                tracing::debug!(%host, port, error = %e, "connect failed");
                socket_error(&e)
            })?;
            match &tls {
                None => Ok(stream),
                Some(settings) => crate::tls::handshake(stream, settings, (&host, port))
                    .await
                    .map_err(|why| {
                        tracing::debug!(%host, port, error = %why, "TLS handshake failed");
                        SocketError::Tls(why)
                    }),
            }
        };
        let connected = tokio::time::timeout(timeout(timeout_ms), connect).await;
        Ok(match connected {
            Err(_) => Err(SocketError::TimedOut),
            Ok(Err(e)) => Err(e),
            Ok(Ok(stream)) => Ok(self.table.push(Connection {
                stream,
                timer: None,
                read_buffer: Vec::new(),
            })?),
        })
    }

    async fn exchange(
        &mut self,
        stream: Resource<Connection>,
        request: Vec<u8>,
        max_bytes: u32,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, SocketError>> {
        let connection = self.table.get_mut(&stream)?;
        Ok(connection.exchange(&request, max_bytes, timeout_ms).await)
    }

    async fn send(
        &mut self,
        stream: Resource<Connection>,
        request: Vec<u8>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<(), SocketError>> {
        let connection = self.table.get_mut(&stream)?;
        Ok(connection.send(&request, timeout_ms).await)
    }

    async fn receive(
        &mut self,
        stream: Resource<Connection>,
        max_bytes: u32,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, SocketError>> {
        let connection = self.table.get_mut(&stream)?;
        Ok(connection.exchange(&[], max_bytes, timeout_ms).await)
    }

    async fn drop(&mut self, stream: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(stream)?;
        Ok(())
    }
}
