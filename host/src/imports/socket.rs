//! `memlock:lock/socket`: byte streams from the host's [`crate::net::Network`], each call bounded
//! by the timeout the component passes. A stream that timed out mid-read may have consumed bytes;
//! the component drops such a connection, and so may we.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wasmtime::component::Resource;

use crate::bindings::memlock::lock::socket::{Host, HostConnection, SocketError};
use crate::net::Stream;
use crate::state::HostState;

/// Largest single read handed to the component.
const MAX_READ: usize = 64 * 1024;

fn timeout(ms: u32) -> Duration {
    Duration::from_millis(u64::from(ms))
}

fn socket_error(e: &io::Error) -> SocketError {
    use io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused | ConnectionReset | ConnectionAborted | NotFound | AddrNotAvailable
        | HostUnreachable | NetworkUnreachable => SocketError::Refused,
        BrokenPipe | UnexpectedEof | NotConnected => SocketError::Closed,
        TimedOut => SocketError::TimedOut,
        _ => SocketError::Other,
    }
}

/// Reads what is there (waiting for at least one byte), up to `max_bytes`.
async fn read_some(
    stream: &mut (impl AsyncReadExt + Unpin),
    max_bytes: u32,
) -> io::Result<Vec<u8>> {
    // Read into spare capacity: zeroing a buffer per call showed up as 12 % of a lock cycle.
    let mut buf = Vec::with_capacity((max_bytes as usize).clamp(1, MAX_READ));
    stream.read_buf(&mut buf).await?;
    Ok(buf)
}

/// A read's outcome as the component sees it: end of file (nothing read) is `closed`.
fn finish_read(
    read: Result<io::Result<Vec<u8>>, tokio::time::error::Elapsed>,
) -> Result<Vec<u8>, SocketError> {
    match read {
        Err(_) => Err(SocketError::TimedOut),
        Ok(Err(e)) => Err(socket_error(&e)),
        Ok(Ok(buf)) if buf.is_empty() => Err(SocketError::Closed),
        Ok(Ok(buf)) => Ok(buf),
    }
}

impl Host for HostState {}

impl HostConnection for HostState {
    async fn connect(
        &mut self,
        host: String,
        port: u16,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Resource<Stream>, SocketError>> {
        let connected =
            tokio::time::timeout(timeout(timeout_ms), self.network.connect(&host, port)).await;
        Ok(match connected {
            Err(_) => Err(SocketError::TimedOut),
            Ok(Err(e)) => {
                tracing::debug!(%host, port, error = %e, "connect failed");
                Err(socket_error(&e))
            }
            Ok(Ok(stream)) => Ok(self.table.push(Stream(stream))?),
        })
    }

    async fn exchange(
        &mut self,
        stream: Resource<Stream>,
        request: Vec<u8>,
        max_bytes: u32,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, SocketError>> {
        let stream = &mut self.table.get_mut(&stream)?.0;
        let exchanged = tokio::time::timeout(timeout(timeout_ms), async {
            stream.write_all(&request).await?;
            read_some(stream, max_bytes).await
        })
        .await;
        Ok(finish_read(exchanged))
    }

    async fn receive(
        &mut self,
        stream: Resource<Stream>,
        max_bytes: u32,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, SocketError>> {
        let stream = &mut self.table.get_mut(&stream)?.0;
        let read = tokio::time::timeout(timeout(timeout_ms), read_some(stream, max_bytes)).await;
        Ok(finish_read(read))
    }

    async fn drop(&mut self, stream: Resource<Stream>) -> wasmtime::Result<()> {
        self.table.delete(stream)?;
        Ok(())
    }
}
